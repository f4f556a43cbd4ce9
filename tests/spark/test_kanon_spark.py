"""Distributed Mondrian: Spark top splits + applyInPandas finish, checked independently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.kanon.mondrian import CategoricalQI, NumericQI, mondrian
from pipelines.kanon.privacy import Requirement
from pipelines.kanon.spark import spark_mondrian
from pipelines.kanon.verify import check
from tests.hierarchies import CITIES, CITY_ROWS


def synthetic(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "rid": np.arange(n, dtype=np.int64),
            "age": rng.integers(18, 90, n),
            "zip": rng.integers(10000, 10400, n),
            "city": rng.choice([r[0] for r in CITY_ROWS], n),
            "sick": rng.choice(["y", "n", "m"], n),
        }
    )


QIS = [NumericQI("age"), NumericQI("zip"), CategoricalQI("city", CITIES)]


@pytest.mark.parametrize(("k", "l", "local_rows"), [(5, 1, 300), (10, 2, 500), (3, 1, 10**9)])
def test_spark_mondrian_is_k_anonymous_truthful_and_splits_in_spark(spark, k, l, local_rows):  # noqa: E741
    pdf = synthetic(4000)
    df = spark.createDataFrame(pdf).repartition(3)
    out = spark_mondrian(df, QIS, k, sensitive="sick", l=l, local_rows=local_rows)
    assert out.columns == list(pdf.columns)
    got = out.toPandas().sort_values("rid").reset_index(drop=True)
    assert len(got) == len(pdf) and (got["rid"].to_numpy() == pdf["rid"].to_numpy()).all()
    assert (got["sick"] == pdf["sick"]).all()  # non-QI columns untouched
    report = check(pdf, got, numeric=["age", "zip"], hierarchies={"city": CITY_ROWS}, k=k,
                   sensitive="sick", l=l)  # fmt: skip
    assert report.violations == [] and report.suppressed == 0
    # Utility stays close to the single-machine kernel's (classes of similar size).
    local = mondrian(pdf, QIS, k, sensitive="sick", l=l)
    assert report.classes >= 0.7 * local.classes


REQUIREMENTS = [
    (Requirement(5, 2, "entropy"), {"l": 2, "l_kind": "entropy"}),
    (Requirement(4, 2, "recursive", c=2.0), {"l": 2, "l_kind": "recursive", "c": 2.0}),
    (Requirement(5, t=0.2, ordered=True), {"t": 0.2, "ordered": True}),
    (Requirement(5, 2, t=0.15), {"l": 2, "t": 0.15}),
]


@pytest.mark.parametrize(("req", "kwargs"), REQUIREMENTS)
def test_spark_mondrian_meets_entropy_recursive_and_t_closeness(spark, req, kwargs):
    """Histogram-based splits in Spark (tiny local_rows), checked by both checkers."""
    from pyspark.sql import functions as F

    from pipelines.kanon.verify import Guarantees, check_spark

    rng = np.random.default_rng(5)
    pdf = synthetic(3000, seed=5).assign(sev=rng.choice([1, 2, 3, 4, 5], 3000, p=[.4, .3, .15, .1, .05]))  # fmt: skip
    sens = "sev" if kwargs.get("ordered") else "sick"
    df = spark.createDataFrame(pdf).repartition(3)
    raw = df.select("*", *[F.col(c).alias(f"raw_{c}") for c in ("age", "zip", "city")])
    out = spark_mondrian(raw, QIS, req, sensitive=sens, local_rows=300).cache()
    got = out.toPandas().sort_values("rid").reset_index(drop=True)
    local = check(pdf, got, numeric=["age", "zip"], hierarchies={"city": CITY_ROWS}, k=req.k,
                  sensitive=sens, **kwargs)  # fmt: skip
    assert local.violations == [] and local.suppressed == 0 and local.classes > 30
    asked = Guarantees(req.k, kwargs.get("l"), kwargs.get("l_kind", "distinct"), kwargs.get("c"),
                  kwargs.get("t"), kwargs.get("ordered", False))  # fmt: skip
    remote = check_spark(out, originals={c: f"raw_{c}" for c in ("age", "zip", "city")},
                         numeric=["age", "zip"], hierarchies={"city": CITY_ROWS}, guarantees=asked,
                         sensitive=sens)  # fmt: skip
    assert remote.violations == []
    assert (remote.k, remote.l, remote.classes) == (local.k, local.l, local.classes)
    assert remote.entropy_l == pytest.approx(local.entropy_l)
    assert remote.recursive_ratio == pytest.approx(local.recursive_ratio)
    assert remote.t == pytest.approx(local.t)
    out.unpersist()


def test_spark_mondrian_suppresses_an_input_smaller_than_k(spark):
    df = spark.createDataFrame(synthetic(4))
    got = spark_mondrian(df, QIS, 5).toPandas()
    assert (got[["age", "zip", "city"]] == "*").all().all() and len(got) == 4


def test_spark_phase_does_not_collect_records(spark, monkeypatch):
    """With a tiny local_rows, several Spark rounds run; what the driver collects is
    per-group statistics (no record column, far fewer rows than records)."""
    DataFrame = type(spark.range(1))  # the classic implementation, not the abstract base
    collected: list[list] = []
    real = DataFrame.collect

    def recording(self):
        rows = real(self)
        collected.append(rows)
        return rows

    monkeypatch.setattr(DataFrame, "collect", recording)
    df = spark.createDataFrame(synthetic(3000))
    out = spark_mondrian(df, QIS, 5, local_rows=200)
    monkeypatch.setattr(DataFrame, "collect", real)
    fields = {name for rows in collected for row in rows for name in row.asDict()}
    assert "n" in fields and "__kanon_group" in fields  # the recording saw the statistics
    assert not fields & {"rid", "age", "zip", "city", "sick"}, fields  # no record value
    assert sum(len(rows) for rows in collected) < 3000 // 5  # statistics, not records
    rounds = [rows for rows in collected if rows and "n" in rows[0].asDict()]
    assert len(rounds) >= 3  # group statistics of several Spark rounds
    assert out.count() == 3000


def test_spark_checker_agrees_with_the_pandas_checker_and_catches_violations(spark):
    from pyspark.sql import functions as F

    from pipelines.kanon.verify import Guarantees, check_spark

    pdf = synthetic(1500, seed=3)
    df = spark.createDataFrame(pdf)
    kept = df.select("*", *[F.col(c).alias(f"raw_{c}") for c in ("age", "zip", "city")])
    out = spark_mondrian(kept, QIS, 5, sensitive="sick", l=2, local_rows=400)
    originals = {c: f"raw_{c}" for c in ("age", "zip", "city")}
    args = dict(originals=originals, numeric=["age", "zip"], hierarchies={"city": CITY_ROWS},
                guarantees=Guarantees(5, 2), sensitive="sick")  # fmt: skip
    report = check_spark(out, **args)
    local = check(pdf, out.toPandas().sort_values("rid").reset_index(drop=True),
                  numeric=["age", "zip"], hierarchies={"city": CITY_ROWS}, k=5,
                  sensitive="sick", l=2)  # fmt: skip
    assert report.violations == [] == local.violations
    assert (report.k, report.l, report.classes) == (local.k, local.l, local.classes)
    # The class-size histogram: the same from both checkers, and it adds up to the
    # classes and records of the released table, each class in the bin holding its size.
    assert report.class_histogram == local.class_histogram
    sizes = out.toPandas().groupby(["age", "zip", "city"]).size()
    assert sum(b["classes"] for b in report.class_histogram) == len(sizes) == report.classes
    assert sum(b["records"] for b in report.class_histogram) == sizes.sum() == 1500
    for b in report.class_histogram:
        hi = b["to"] if b["to"] is not None else float("inf")
        assert b["classes"] == ((sizes >= b["from"]) & (sizes <= hi)).sum()
    first = report.class_histogram[0]
    assert first["from"] <= sizes.min() <= (first["to"] or sizes.min()) and sizes.min() >= 5
    from pipelines.kanon.metrics import measure

    metrics = measure(pdf, out.toPandas().sort_values("rid").reset_index(drop=True),
                      numeric=["age", "zip"], hierarchies={"city": CITY_ROWS})  # fmt: skip
    assert report.discernibility == pytest.approx(metrics["discernibility"])
    from pipelines.kanon.metrics import information_loss_spark

    loss = information_loss_spark(out, originals=originals, numeric=["age", "zip"],
                                  hierarchies={"city": CITY_ROWS})  # fmt: skip
    assert loss["gcp"] == pytest.approx(metrics["gcp"]) and 0 < loss["gcp"] < 1
    assert loss["ncp"] == pytest.approx(metrics["ncp"])
    for key in ("highest", "average", "records_above"):
        assert report.prosecutor_risk[key] == pytest.approx(metrics["prosecutor_risk"][key])
    # Planted: one record's age range no longer covers it, one city label is wrong,
    # and one record gets a unique tuple (a class of 1).
    bad = out.withColumn(
        "age", F.when(F.col("rid") == 0, F.lit("[200-300]")).otherwise(F.col("age"))
    ).withColumn("city", F.when(F.col("rid") == 1, F.lit("nowhere")).otherwise(F.col("city")))
    report = check_spark(bad, **args)
    assert report.untruthful == {"age": 1, "zip": 0, "city": 1}
    assert report.k == 1 and any(v.startswith("k:") for v in report.violations)


def test_run_applies_k_anonymity_verifies_and_gates_it(spark, warehouse, key_env, tmp_path):
    import uuid

    from pipelines.errors import PipelinesError
    from pipelines.runner import run_partition
    from pipelines.spec import spec_from_dict
    from tests.specs import spec_data

    hier = tmp_path / "city.csv"
    hier.write_text("\n".join(";".join(r) for r in CITY_ROWS) + "\n")
    pdf = (
        synthetic(600, seed=11)
        .drop(columns=["rid"])
        .assign(uid=[f"u{i}" for i in range(600)], dt="2026-11-20")
    )
    name = f"k{uuid.uuid4().hex[:8]}"
    spark.createDataFrame(pdf).write.partitionBy("dt").parquet(str(warehouse / name / "raw"))
    columns = {"uid": {"kind": "hash", "length": 16}, "age": {"kind": "keep"},
               "zip": {"kind": "keep"}, "city": {"kind": "keep"}, "sick": {"kind": "keep"}}  # fmt: skip
    ka = {"k": 5, "sensitive": "sick", "l_diversity": {"l": 2},
          "quasi_identifiers": {"age": {"type": "numeric"}, "zip": {"type": "numeric"},
                                "city": {"type": "categorical", "hierarchy": str(hier)}}}  # fmt: skip
    spec = spec_from_dict(spec_data(columns, source={"path": f"{name}/raw"},
                                    sink={"path": f"{name}/anon"}, k_anonymity=ka))  # fmt: skip
    res = run_partition(spec, "2026-11-20")
    summary = res.record.k_anonymity
    assert summary["smallest_class"] >= 5 and summary["fewest_sensitive_values"] >= 2
    assert summary["untruthful_cells"] == 0 and summary["suppressed"] == 0
    assert summary["prosecutor_risk"]["highest"] <= 1 / 5 and summary["discernibility"] >= 600 * 5
    gate = {c.id: c for c in res.record.quality.output.checks}
    assert gate["output.k_anonymity"].success and gate["output.l_diversity"].success
    assert res.record.output_schema["age"] == "string"
    published = spark.read.parquet(res.published).toPandas()
    assert len(published) == 600
    assert published.groupby(["age", "zip", "city"]).size().min() >= 5

    too_big = spec_from_dict(spec_data(columns, source={"path": f"{name}/raw"},
                                       sink={"path": f"{name}/anon2"},
                                       k_anonymity={**ka, "k": 1000}))  # fmt: skip
    with pytest.raises(PipelinesError, match="600 of 600 records suppressed"):
        run_partition(too_big, "2026-11-20")
    assert not (warehouse / name / "anon2" / "dt=2026-11-20").exists()

    # Standalone: `anonymize kanon` reports and writes --out, publishes nothing.
    import json

    import yaml
    from typer.testing import CliRunner

    from pipelines.cli import app

    spec_file = tmp_path / "spec.yaml"
    data = spec.model_dump(mode="json", exclude_defaults=True)
    data["sink"] = {"path": f"{name}/anon3"}
    spec_file.write_text(yaml.safe_dump(data))
    out_dir = tmp_path / "released"
    res = CliRunner().invoke(app, ["kanon", str(spec_file), "--partition", "2026-11-20",
                                   "--out", str(out_dir), "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["smallest_class"] >= 5 and 0 < report["gcp"] < 1 and "GCP" in res.stdout
    assert report["classes"] == summary["classes"]  # deterministic: same as the run
    assert spark.read.parquet(str(out_dir)).count() == 600
    assert not (warehouse / name / "anon3").exists()
    data.pop("k_anonymity")
    spec_file.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(app, ["kanon", str(spec_file), "--partition", "2026-11-20"])
    assert res.exit_code == 3 and "no k_anonymity block" in res.output


def test_run_with_dates_entropy_t_closeness_and_a_window(spark, warehouse, key_env, tmp_path):
    """Three daily partitions; the run anonymizes the 20th with the two days before it."""
    import datetime as dt
    import uuid

    from pipelines.runner import run_partition
    from pipelines.spec import spec_from_dict
    from tests.specs import spec_data

    hier = tmp_path / "city.csv"
    hier.write_text("\n".join(";".join(r) for r in CITY_ROWS) + "\n")
    rng = np.random.default_rng(3)
    frames = []
    for day, n in (("2026-11-18", 300), ("2026-11-19", 300), ("2026-11-20", 400)):
        base = synthetic(n, seed=int(day[-2:])).drop(columns=["rid", "zip", "sick"])
        frames.append(base.assign(
            uid=[f"u{day}{i}" for i in range(n)], dt=day,
            seen=[dt.date(2026, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 300, n)],
            sev=rng.choice([1, 2, 3, 4], n, p=[.4, .3, .2, .1]),
        ))  # fmt: skip
    name = f"w{uuid.uuid4().hex[:8]}"
    raw = spark.createDataFrame(pd.concat(frames, ignore_index=True))
    raw.write.partitionBy("dt").parquet(str(warehouse / name / "raw"))
    columns = {"uid": {"kind": "hash", "length": 16}, "age": {"kind": "keep"},
               "seen": {"kind": "keep"}, "city": {"kind": "keep"}, "sev": {"kind": "keep"}}  # fmt: skip
    ka = {"k": 5, "sensitive": "sev", "window": 3,
          "l_diversity": {"l": 2, "kind": "entropy"},
          "t_closeness": {"t": 0.3, "distance": "ordered"},
          "quasi_identifiers": {"age": {"type": "numeric"}, "seen": {"type": "date"},
                                "city": {"type": "categorical", "hierarchy": str(hier)}}}  # fmt: skip
    spec = spec_from_dict(spec_data(columns, source={"path": f"{name}/raw"},
                                    sink={"path": f"{name}/anon"}, k_anonymity=ka))  # fmt: skip
    res = run_partition(spec, "2026-11-20")
    summary = res.record.k_anonymity
    assert summary["window_partitions"] == ["2026-11-19", "2026-11-18"]
    assert summary["smallest_class"] >= 5 and summary["entropy_l"] >= 2 - 1e-9
    assert summary["largest_t"] <= 0.3 + 1e-9 and summary["untruthful_cells"] == 0
    assert 0 < summary["ncp"]["seen"] < 1 and 0 < summary["gcp"] < 1
    gate = {c.id: c for c in res.record.quality.output.checks}
    for check_id in ("output.k_anonymity", "output.l_diversity", "output.t_closeness"):
        assert gate[check_id].success, check_id
    published = spark.read.parquet(res.published).toPandas()
    assert len(published) == 400  # only the current partition is published
    assert published.groupby(["age", "seen", "city"]).size().min() >= 5
    assert (
        published["seen"]
        .str.fullmatch(r"\[\d{4}-\d\d-\d\d-\d{4}-\d\d-\d\d\]|\d{4}-\d\d-\d\d")
        .all()
    )


def test_information_loss_of_date_ranges_by_hand(spark):
    """Four distinct days; [1st-3rd] covers two of them: cost (2-1)/(4-1) each."""
    import datetime as dt

    from pipelines.kanon.metrics import information_loss_spark

    d = dt.date
    rows = [("[2026-01-01-2026-01-03]", d(2026, 1, 1)), ("[2026-01-01-2026-01-03]", d(2026, 1, 3)),
            ("2026-01-05", d(2026, 1, 5)), ("*", d(2026, 1, 7))]  # fmt: skip
    df = spark.createDataFrame(rows, "day string, raw date")
    loss = information_loss_spark(df, originals={"day": "raw"}, numeric=[], dates=["day"],
                                  hierarchies={})  # fmt: skip
    assert loss["ncp"]["day"] == pytest.approx((1 / 3 + 1 / 3 + 0 + 1) / 4)


def test_everything_suppressed_costs_one_per_cell_in_the_stage_summary(spark, warehouse, key_env):
    """10 rows, one age and one date, k=20, max_suppression 1: every cell is '*', so
    NCP is 1 per QI and GCP 1 (was reported 0.0); the summary is strict JSON."""
    import datetime as dt
    import json
    import uuid

    from pipelines.checks import kanon_partition
    from pipelines.spec import spec_from_dict
    from tests.specs import spec_data

    name = f"d{uuid.uuid4().hex[:8]}"
    rows = [(f"u{i}", 40, dt.date(2024, 5, 1), "2026-11-20") for i in range(10)]
    spark.createDataFrame(rows, "uid string, age int, visit date, dt string") \
        .write.partitionBy("dt").parquet(str(warehouse / name / "raw"))  # fmt: skip
    columns = {"uid": {"kind": "hash"}, "age": {"kind": "keep"}, "visit": {"kind": "keep"}}
    ka = {"k": 20, "max_suppression": 1.0,
          "quasi_identifiers": {"age": {"type": "numeric"}, "visit": {"type": "date"}}}  # fmt: skip
    spec = spec_from_dict(spec_data(columns, source={"path": f"{name}/raw"},
                                    sink={"path": f"{name}/anon"}, k_anonymity=ka))  # fmt: skip
    summary = kanon_partition(spec, "2026-11-20")
    assert summary["suppressed"] == 10
    assert summary["ncp"] == {"age": 1.0, "visit": 1.0} and summary["gcp"] == 1.0
    json.dumps(summary, allow_nan=False)


def test_a_k_anonymized_partition_publishes_to_an_iceberg_table(spark, warehouse, key_env, tmp_path):
    """The published Iceberg partition, read back by Spark, has every class of size >= k."""
    import uuid

    from pipelines.runner import run_partition
    from pipelines.spec import spec_from_dict
    from tests.specs import spec_data

    pdf = synthetic(400, seed=5).drop(columns=["rid", "city"]).assign(
        uid=[f"u{i}" for i in range(400)], dt="2026-11-20")  # fmt: skip
    name = f"ki{uuid.uuid4().hex[:8]}"
    spark.createDataFrame(pdf).write.partitionBy("dt").parquet(str(warehouse / name / "raw"))
    columns = {"uid": {"kind": "hash", "length": 16}, "age": {"kind": "keep"},
               "zip": {"kind": "keep"}, "sick": {"kind": "keep"}}  # fmt: skip
    ka = {"k": 6, "quasi_identifiers": {"age": {"type": "numeric"}, "zip": {"type": "numeric"}}}
    sink = {"format": "iceberg", "table": f"kanon.{name}"}
    spec = spec_from_dict(spec_data(columns, source={"path": f"{name}/raw"}, sink=sink,
                                    k_anonymity=ka))  # fmt: skip
    res = run_partition(spec, "2026-11-20")
    assert res.record.k_anonymity["smallest_class"] >= 6
    published = spark.table(f"anonymize_iceberg.kanon.{name}").toPandas()
    assert len(published) == 400 and published.groupby(["age", "zip"]).size().min() >= 6
