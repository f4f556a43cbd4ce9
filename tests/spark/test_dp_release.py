"""DP releases on Spark: bounding, exact aggregates with noise off, keys, selection,
and the run: ledger charge, idempotent re-run, re-release, refusal, error report."""

from __future__ import annotations

import json
import shutil
import uuid

import numpy as np
import pandas as pd
import pytest

from pipelines.dp.plan import plan_release
from pipelines.dp.release import compute
from pipelines.spec.dp import Release

METRICS = {
    "n": {"kind": "count"},
    "users": {"kind": "count_units"},
    "total": {"kind": "sum", "column": "amount", "lower": 0, "upper": 100},
    "avg": {"kind": "mean", "column": "amount", "lower": 0, "upper": 100},
    "p50": {"kind": "quantile", "column": "amount", "lower": 0, "upper": 100, "q": 0.5},
}


def release(keys, l0=2, linf=3, **budget) -> Release:
    return Release.model_validate({
        "sink": {"path": "rel"}, "group_by": ["region"], "keys": keys,
        "bounds": {"max_groups_per_unit": l0, "max_rows_per_group": linf},
        "metrics": METRICS, "budget": budget or {"epsilon": 1.0}})  # fmt: skip


def light_rows(n=600, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"uid": np.arange(n), "region": rng.choice(["a", "b", "c"], n),
                         "amount": np.round(rng.uniform(0, 120, n), 2)})  # fmt: skip


def test_bounding_caps_a_heavy_unit_and_is_deterministic(spark):
    light = light_rows()
    heavy = pd.DataFrame({"uid": 10**6, "region": ["a"] * 40 + ["b"] * 40 + ["c"] * 40,
                          "amount": 50.0})  # fmt: skip
    df = spark.createDataFrame(pd.concat([light, heavy], ignore_index=True))
    rel = release({"values": {"region": ["a", "b", "c", "z"]}}, l0=2, linf=3)
    got = compute(df, rel, "uid", "seed", plan_release(rel), noise=False).toPandas().set_index("region")
    base = light.groupby("region").size()
    extra = got["n"].reindex(["a", "b", "c"]) - base
    assert sorted(extra.tolist()) == [0, 3, 3]  # the heavy unit: 2 groups × 3 rows
    assert (got["users"].reindex(["a", "b", "c"]) - light.groupby("region")["uid"].nunique()).sum() == 2
    assert got.loc["z", "n"] == 0 and got.loc["z", "users"] == 0  # declared key, no data
    again = compute(df, rel, "uid", "seed", plan_release(rel), noise=False).toPandas().set_index("region")
    assert again.sort_index().equals(got.sort_index())


def test_aggregates_are_exact_with_noise_off(spark):
    light = light_rows()
    df = spark.createDataFrame(light)
    rel = release({"values": {"region": ["a", "b", "c"]}})
    got = compute(df, rel, "uid", "s", plan_release(rel), noise=False).toPandas()
    got = got.set_index("region").sort_index()
    clamped = light.assign(amount=light["amount"].clip(0, 100))
    truth = clamped.groupby("region")["amount"]
    assert (got["n"] == truth.size()).all()
    assert got["total"].to_numpy() == pytest.approx(truth.sum().sort_index().to_numpy(), abs=1e-6)
    assert got["avg"].to_numpy() == pytest.approx(truth.mean().sort_index().to_numpy(), abs=1e-6)
    lower_median = truth.quantile(0.5, interpolation="lower").sort_index()
    assert got["p50"].to_numpy() == pytest.approx(lower_median.to_numpy())


def test_noise_has_the_planned_scale_and_private_keys_hide_small_groups(spark):
    rng = np.random.default_rng(2)
    big = pd.DataFrame({"uid": np.arange(4000), "region": rng.choice(["a", "b"], 4000),
                        "amount": 10.0})  # fmt: skip
    lonely = pd.DataFrame({"uid": [10**6 + i for i in range(20)],
                           "region": [f"solo{i}" for i in range(20)], "amount": 1.0})  # fmt: skip
    df = spark.createDataFrame(pd.concat([big, lonely], ignore_index=True)).cache()
    rel = release("private", l0=1, linf=1)
    p = plan_release(rel)
    outs = [compute(df, rel, "uid", "s", p).toPandas() for _ in range(3)]
    for out in outs:
        assert set(out["region"]) == {"a", "b"}  # groups of one person never appear
    truth = big.groupby("region").size()
    errors = [o.set_index("region")["n"] - truth for o in outs]
    bound = p.noises["n"].half_width() * 3  # far outside: P ≈ 0
    assert all((e.abs() <= bound).all() for e in errors)
    assert p.selection.threshold > 1


@pytest.fixture
def release_spec(spark, warehouse):
    from pipelines.spec import spec_from_dict
    from tests.specs import spec_data

    name = f"dp{uuid.uuid4().hex[:8]}"
    rows = []
    for day in ("2026-11-01", "2026-11-02", "2026-11-03"):
        rows.append(light_rows(400, seed=int(day[-1])).assign(dt=day))
    spark.createDataFrame(pd.concat(rows, ignore_index=True)).write.partitionBy("dt").parquet(
        str(warehouse / name / "raw")
    )
    columns = {"uid": {"kind": "hash"}, "region": {"kind": "keep"}, "amount": {"kind": "keep"}}

    def make(total=2.5, **over):
        rel = {"sink": {"path": f"{name}/by_region"}, "group_by": ["region"],
               "keys": {"values": {"region": ["a", "b", "c"]}},
               "bounds": {"max_groups_per_unit": 1, "max_rows_per_group": 1},
               "metrics": METRICS, "budget": {"epsilon": 1.0}, **over}  # fmt: skip
        return spec_from_dict(spec_data(columns, name=name, source={"path": f"{name}/raw"},
                                        sink={"path": f"{name}/anon"},
                                        releases={"by_region": rel},
                                        dp_budget={"epsilon": total, "window": 7}))  # fmt: skip

    return make, warehouse / name


def test_release_run_charges_once_republishes_and_refuses_over_budget(spark, release_spec, key_env):
    from pipelines.dp.ledger import Ledger
    from pipelines.dp.run import release_partition
    from pipelines.errors import BudgetExceededError

    make, root = release_spec
    spec = make()
    [first] = release_partition(spec, "2026-11-01")
    assert first.status == "published" and first.charged.epsilon == 1.0
    published = spark.read.parquet(first.published).toPandas()
    assert sorted(published.columns) == sorted(["region", *METRICS])
    assert len(published) == 3
    manifest = json.loads((root / "by_region" / "dt=2026-11-01" / "_manifest.json").read_text())
    report = manifest["error_report"]
    assert report["metrics"]["n"]["distribution"] == "discrete Laplace"
    assert report["metrics"]["n"]["scale"] == pytest.approx(1 / 0.2)  # Δ1 = 1, ε share 0.2
    assert report["metrics"]["total"]["ci95_half_width"] > 0
    assert report["bounding"]["rows_and_units_dropped"] == "withheld"
    # Re-run: nothing computed, nothing charged.
    [again] = release_partition(spec, "2026-11-01")
    assert again.status == "already released" and again.charged is None
    # The published copy lost: the stored release is republished, still free.
    shutil.rmtree(root / "by_region" / "dt=2026-11-01")
    [back] = release_partition(spec, "2026-11-01")
    assert back.status == "republished" and back.charged is None
    assert spark.read.parquet(back.published).toPandas().sort_values("region").reset_index(
        drop=True).equals(published.sort_values("region").reset_index(drop=True))  # fmt: skip
    # --re-release draws fresh noise and is charged: 2 of 2.5 spent in the window.
    [fresh] = release_partition(spec, "2026-11-01", re_release=True)
    assert fresh.status == "published" and fresh.charged.epsilon == 1.0
    ledger = Ledger(root.parent / "_dp" / "ledger.sqlite")
    before = ledger.history(spec.name)
    with pytest.raises(BudgetExceededError, match=r"only 0\.5 of 2\.5 remains"):
        release_partition(spec, "2026-11-02")
    assert ledger.history(spec.name) == before  # refused before anything was recorded
    assert not (root / "by_region" / "dt=2026-11-02").exists()
    assert [c.status for c in before] == ["spent", "spent"]


def test_release_to_a_catalog_table_and_a_failed_publish_keeps_the_charge(
        spark, release_spec, key_env, monkeypatch):  # fmt: skip
    from pipelines.dp.ledger import Ledger
    from pipelines.dp.run import release_partition
    from pipelines.storage.base import Table

    make, root = release_spec
    table = f"dpc.{root.name}"
    spec = make(sink={"table": table})
    real = Table.publish

    def boom(*args, **kwargs):
        raise OSError("injected: disk full while publishing")

    monkeypatch.setattr(Table, "publish", boom)
    with pytest.raises(OSError, match="injected"):
        release_partition(spec, "2026-11-01")
    ledger = Ledger(root.parent / "_dp" / "ledger.sqlite")
    [charge] = ledger.history(spec.name)
    assert charge.status == "spent"  # noise was drawn: the spend stands
    monkeypatch.setattr(Table, "publish", real)
    # The next run publishes the stored release into the new catalog table, free.
    [done] = release_partition(spec, "2026-11-01")
    assert done.status == "republished" and done.charged is None
    assert spark.table(table).where("dt = '2026-11-01'").count() == 3
    assert len(ledger.history(spec.name)) == 1


def test_cli_release_and_budget_commands(spark, release_spec, key_env, tmp_path, warehouse):
    import yaml
    from typer.testing import CliRunner

    from pipelines.cli import app

    make, _ = release_spec
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(make(total=1.5).model_dump(mode="json", exclude_defaults=True)))
    runner = CliRunner()
    res = runner.invoke(app, ["release", str(spec_file), "--partition", "2026-11-03", "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout.strip().splitlines()[-1])
    assert payload["releases"][0]["status"] == "published"
    assert payload["releases"][0]["error_report"]["metrics"]["users"]["distribution"]
    res = runner.invoke(app, ["release", str(spec_file), "--partition", "2026-11-02"])
    assert res.exit_code == 6 and "remains" in res.output
    res = runner.invoke(app, ["budget", "show", str(spec_file), "--partition", "2026-11-03",
                              "--warehouse", str(warehouse), "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    state = json.loads(res.stdout.strip().splitlines()[-1])
    assert state["used"] == 1.0 and state["remaining"] == 0.5
    res = runner.invoke(app, ["budget", "history", str(spec_file), "--warehouse", str(warehouse),
                              "--json"])  # fmt: skip
    charges = json.loads(res.stdout.strip().splitlines()[-1])["charges"]
    assert [c["status"] for c in charges] == ["spent"]


def test_release_gate_blocks_a_bad_release_table(spark, release_spec, key_env, monkeypatch):
    """A release table with a null group key and a mean out of bounds is not published."""
    from pyspark.sql import functions as F

    from pipelines.dp import release as rl
    from pipelines.dp.ledger import Ledger
    from pipelines.dp.run import release_partition
    from pipelines.errors import QualityGateFailed

    real = rl.compute

    def broken(*args, **kwargs):
        out = real(*args, **kwargs)
        bad = out.limit(1).withColumn("region", F.lit(None).cast("string")).withColumn(
            "avg", F.lit(1e9))  # fmt: skip
        return out.unionByName(bad)

    monkeypatch.setattr(rl, "compute", broken)
    make, root = release_spec
    spec = make()
    with pytest.raises(QualityGateFailed, match=r"release\.not_null\.region.*release\.row_count"
                       r"|release\.row_count.*release\.not_null\.region|release\.range\.avg"):
        release_partition(spec, "2026-11-02")
    assert not (root / "by_region" / "dt=2026-11-02").exists()
    [charge] = Ledger(root.parent / "_dp" / "ledger.sqlite").history(spec.name)
    assert charge.status == "spent"  # noise was drawn: the budget stays spent


def test_public_keys_from_ranges_values_and_a_table(spark, tmp_path):
    """Dates × regions from a range and a list; or read from a key table."""
    import datetime as dt

    from pipelines.dp.release import public_keys
    from pipelines.spec.dp import PublicKeys

    source = spark.createDataFrame([(dt.date(2026, 1, 1), "a", 1)], "day date, region string, n int")
    keys = PublicKeys.model_validate({"ranges": {"day": {"start": "2026-01-30", "stop": "2026-02-02"}},
                                      "values": {"region": ["a", "b"]}})  # fmt: skip
    got = public_keys(keys, ("day", "region"), source, tmp_path).toPandas()
    assert len(got) == 3 * 2 and sorted(set(got["day"])) == [
        dt.date(2026, 1, 30), dt.date(2026, 1, 31), dt.date(2026, 2, 1)]  # fmt: skip
    ints = PublicKeys.model_validate({"ranges": {"n": {"start": 0, "stop": 10, "step": 5}}})
    assert sorted(public_keys(ints, ("n",), source, tmp_path).toPandas()["n"]) == [0, 5]
    spark.createDataFrame([("a",), ("b",), ("b",)], "region string").write.parquet(str(tmp_path / "k"))
    table = PublicKeys.model_validate({"table": {"path": "k"}})
    assert sorted(public_keys(table, ("region",), source, tmp_path).toPandas()["region"]) == ["a", "b"]


@pytest.mark.parametrize("fmt", ["iceberg", "delta"])
def test_a_release_publishes_to_a_table_format_charged_once(spark, release_spec, key_env, fmt):
    """A DP release table as an Iceberg or Delta table: one commit per partition naming
    the run; a re-run republishes nothing and charges nothing."""
    from pipelines.dp.ledger import Ledger
    from pipelines.dp.run import release_partition
    from pipelines.keys import resolve_keys
    from pipelines.partition import Partition
    from pipelines.session import session_warehouse
    from pipelines.storage.base import open_table

    make, root = release_spec
    sink = {"format": "iceberg", "table": f"dpf.{root.name}"} if fmt == "iceberg" else \
        {"format": "delta", "path": f"{root.name}/by_region_delta"}  # fmt: skip
    spec = make(sink=sink)
    [first] = release_partition(spec, "2026-11-01")
    [again] = release_partition(spec, "2026-11-01")
    assert first.status == "published" and again.status == "already released"
    assert again.charged is None and len(Ledger(root.parent / "_dp" / "ledger.sqlite").history(spec.name)) == 1
    table = open_table(spec.releases["by_region"].sink, "dt", session_warehouse(spark), spark)
    manifest = table.read_manifest(Partition.parse("dt", "2026-11-01"))
    assert manifest.run_id == first.manifest.run_id and manifest.table_version is not None
    # The bounding hash seed derives from the privacy unit's key: its fingerprint is
    # recorded in the manifest and in the table's commit, like a desensitizing run's.
    unit_key = spec.columns[spec.privacy_unit].key
    assert manifest.key_fingerprints == {unit_key: resolve_keys(spec)[unit_key].fingerprint}
    if fmt == "iceberg":
        summary = spark.sql(f"SELECT summary FROM {table.ident}.snapshots ORDER BY committed_at DESC "
                            "LIMIT 1").first().summary  # fmt: skip
        committed = summary["anonymize.key-fingerprints"]
    else:
        meta = spark.sql(f"DESCRIBE HISTORY {table.ident} LIMIT 1").first().userMetadata
        committed = json.loads(meta)["anonymize"]["key-fingerprints"]
    assert json.loads(committed) == manifest.key_fingerprints
    rows = table.read_partition(Partition.parse("dt", "2026-11-01")).toPandas()
    assert sorted(rows["region"]) == ["a", "b", "c"] and sorted(rows.columns) == sorted(["region", *METRICS])
    # The next partition stages in the existing table (Iceberg: on a branch); the DP
    # store still keeps a Parquet copy of exactly what was published.
    [second] = release_partition(spec, "2026-11-02")
    [kept] = list((session_warehouse(spark) / "_dp" / "store").rglob(second.manifest.run_id))
    stored = sorted(map(tuple, spark.read.parquet(str(kept)).select("region", *METRICS).collect()))
    published = table.read_partition(Partition.parse("dt", "2026-11-02")).select("region", *METRICS)
    assert stored == sorted(map(tuple, published.collect())) and len(stored) == 3
