"""One run of one partition: fail closed, atomic publish, idempotent reruns."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest

from pipelines.errors import (
    KeyMaterialError,
    MissingInputError,
    PublishError,
    QualityGateFailed,
    SpecError,
)
from pipelines.runner import run_partition
from pipelines.spec import spec_from_dict
from pipelines.storage import base as storage_base
from pipelines.storage import files as storage_files
from tests.conftest import written_besides_leases
from tests.spark.helpers import digest_tree
from tests.specs import spec_data

DDL = "uid string, email string, amount double, dt string"


def rows_for(day: str, n: int, tag: str = "") -> list[tuple]:
    return [(f"u{i % 7}", f"p{i}{tag}@mail.com", float(i), day) for i in range(n)]


COLUMNS = {
    "uid": {"kind": "hash", "length": 16},
    "email": {"kind": "surrogate", "domain": "email"},
    "amount": {"kind": "keep"},
}


def make(src: dict, snk: dict, **over) -> object:
    return spec_from_dict(spec_data(COLUMNS, source=src, sink=snk, **over))


@pytest.fixture()
def path_tables(spark, warehouse, key_env):
    """A fresh raw path table with three partitions; returns (spec, raw_root, sink_root)."""
    name = f"t{uuid.uuid4().hex[:8]}"
    raw = warehouse / name / "raw"
    data = rows_for("2026-11-24", 30) + rows_for("2026-11-25", 50) + rows_for("2026-11-26", 10)
    spark.createDataFrame(data, DDL).write.partitionBy("dt").parquet(str(raw))
    spec = make({"path": f"{name}/raw"}, {"path": f"{name}/anon"})
    return spec, raw, warehouse / name / "anon"


def catalog_tables(spark, name: str, rows: list[tuple]) -> object:
    """A fresh raw catalog table rawc.<name> of ``rows``; the spec publishing to anonc.<name>."""
    spark.sql("CREATE DATABASE IF NOT EXISTS rawc")
    spark.sql(f"DROP TABLE IF EXISTS rawc.{name}")
    spark.sql(f"DROP TABLE IF EXISTS anonc.{name}")
    spark.createDataFrame(rows, DDL).write.partitionBy("dt").saveAsTable(f"rawc.{name}")
    return make({"table": f"rawc.{name}"}, {"table": f"anonc.{name}"})


def test_path_table_publish_and_manifest(spark, path_tables):
    spec, _, sink = path_tables
    res = run_partition(spec, "2026-11-25")
    assert (res.input_rows, res.output_rows) == (50, 50)
    part = sink / "dt=2026-11-25"
    manifest = json.loads((part / "_manifest.json").read_text())
    assert manifest["run_id"] == res.run_id and manifest["input_rows"] == 50
    assert manifest["key_fingerprints"]["main"] and len(manifest["spec_hash"]) == 64
    assert manifest["columns"]["email"]["kind"] == "surrogate"
    assert set(manifest["timings"]) >= {"total", "desensitize_and_stage"}
    assert (sink / "_manifests" / "dt=2026-11-25" / f"{res.run_id}.json").is_file()
    df = spark.read.parquet(str(sink))
    assert df.count() == 50 and set(df.columns) == {"uid", "email", "amount", "dt"}
    assert not list((sink / "_staging").glob("*"))  # staging cleaned up


def test_rerun_replaces_only_that_partition_idempotently(spark, path_tables):
    spec, _, sink = path_tables
    run_partition(spec, "2026-11-24")
    first = run_partition(spec, "2026-11-25")
    other_before = digest_tree(sink / "dt=2026-11-24")
    rows_before = sorted(map(tuple, spark.read.parquet(str(sink / "dt=2026-11-25")).collect()))
    second = run_partition(spec, "2026-11-25")
    assert second.run_id != first.run_id
    assert digest_tree(sink / "dt=2026-11-24") == other_before
    rows_after = sorted(map(tuple, spark.read.parquet(str(sink / "dt=2026-11-25")).collect()))
    assert rows_after == rows_before  # keyed actions: same output on rerun
    assert spark.read.parquet(str(sink)).count() == 30 + 50
    trash = sink / "_trash" / "dt=2026-11-25"
    assert len(list(trash.iterdir())) == 1  # exactly one previous version kept


def test_failure_between_staging_and_publish_leaves_published_identical(spark, path_tables, monkeypatch):
    spec, _, sink = path_tables
    run_partition(spec, "2026-11-25")
    before = digest_tree(sink / "dt=2026-11-25")

    def boom(*args, **kwargs):
        raise RuntimeError("injected failure before publish")

    monkeypatch.setattr(storage_base.Table, "publish", boom)
    with pytest.raises(RuntimeError, match="injected"):
        run_partition(spec, "2026-11-25")
    assert digest_tree(sink / "dt=2026-11-25") == before
    assert not any(p.is_file() for p in (sink / "_staging").rglob("*"))  # staged data discarded


def test_failure_during_swap_fallback_is_never_a_mix(spark, path_tables, monkeypatch):
    """Without renameat2 the fallback renames twice; a failure of the second rename
    puts the old version back: the partition is the old one, whole, never a mix."""
    import os

    from pipelines.storage import path as path_backend

    spec, _, sink = path_tables
    run_partition(spec, "2026-11-25")
    before = digest_tree(sink / "dt=2026-11-25")
    monkeypatch.setattr(storage_files, "exchange", lambda a, b: False)
    real_rename, calls = os.rename, []

    def second_rename_fails(src, dst):
        calls.append((str(src), str(dst)))
        if len(calls) == 2 and str(dst).endswith("dt=2026-11-25"):  # the new version moving in
            raise OSError("injected: rename failed during the swap")
        return real_rename(src, dst)

    monkeypatch.setattr(path_backend.os, "rename", second_rename_fails)
    with pytest.raises(OSError, match="injected"):
        run_partition(spec, "2026-11-25")
    monkeypatch.setattr(path_backend.os, "rename", real_rename)
    assert len(calls) == 3  # old version aside, new one in (failed), old one back
    assert digest_tree(sink / "dt=2026-11-25") == before
    assert not any(p.is_file() for p in (sink / "_staging").rglob("*"))  # staged data discarded
    # The fallback's normal path publishes whole partitions too.
    res = run_partition(spec, "2026-11-25")
    manifest = json.loads((sink / "dt=2026-11-25" / "_manifest.json").read_text())
    assert manifest["run_id"] == res.run_id
    assert spark.read.parquet(str(sink / "dt=2026-11-25")).count() == 50


def test_undeclared_column_fails_closed_before_anything_is_written(spark, warehouse, key_env):
    raw = warehouse / "undeclared" / "raw"
    spark.createDataFrame([("u", "e", 1.0, "ssn", "x", "2026-11-25")], "uid string, email string, amount double, ssn string, zz string, dt string") \
        .write.mode("overwrite").partitionBy("dt").parquet(str(raw))
    spec = make({"path": "undeclared/raw"}, {"path": "undeclared/anon"})
    with pytest.raises(SpecError, match="does not mention: ssn, zz"):
        run_partition(spec, "2026-11-25")
    assert written_besides_leases(warehouse / "undeclared" / "anon") == []
    spec = make({"path": "undeclared/raw"}, {"path": "undeclared/anon"}, undeclared="drop")
    res = run_partition(spec, "2026-11-25")
    assert res.record.columns["ssn"] == {"kind": "drop", "reason": "undeclared"}
    assert "ssn" not in spark.read.parquet(res.published).columns


def test_missing_key_stops_before_any_data_is_read(spark, monkeypatch):
    monkeypatch.delenv("ANON_TEST_KEY", raising=False)
    spec = make({"path": "does/not/exist"}, {"path": "nowhere"})
    # The source does not exist either: the key error must come first.
    with pytest.raises(KeyMaterialError, match="ANON_TEST_KEY is not set"):
        run_partition(spec, "2026-11-25")


def test_missing_partition_and_table_are_clear_errors(spark, path_tables):
    spec, _, _ = path_tables
    with pytest.raises(MissingInputError, match=r"partition dt=2026-12-31 of .* does not exist"):
        run_partition(spec, "2026-12-31")
    spec = make({"table": "raw.nope"}, {"table": "anon.nope"})
    with pytest.raises(MissingInputError, match="source table raw.nope does not exist"):
        run_partition(spec, "2026-11-25")
    with pytest.raises(SpecError, match="not an ISO date"):
        run_partition(spec, "25/11/2026")


def test_empty_partition_fails_the_input_gate_unless_allowed(spark, path_tables):
    spec, raw, sink = path_tables
    empty_dir = raw / "dt=2026-11-27"
    spark.createDataFrame([], "uid string, email string, amount double").write.parquet(str(empty_dir))
    with pytest.raises(QualityGateFailed, match=r"input.row_count \(observed 0\)"):
        run_partition(spec, "2026-11-27")
    assert not (sink / "dt=2026-11-27").exists()
    spec = spec.model_copy(update={"quality": spec.quality.model_copy(update={"allow_empty": True})})
    res = run_partition(spec, "2026-11-27")
    assert (res.input_rows, res.output_rows) == (0, 0)
    assert json.loads((sink / "dt=2026-11-27" / "_manifest.json").read_text())["output_rows"] == 0
    assert spark.read.parquet(str(sink / "dt=2026-11-27")).count() == 0


def test_catalog_tables_publish_rerun_and_read_by_sql(spark, key_env):
    spec = catalog_tables(spark, "events", rows_for("2026-11-24", 12) + rows_for("2026-11-25", 20))
    a = run_partition(spec, "2026-11-24")
    b = run_partition(spec, "2026-11-25")
    counts = {r.dt: r.n for r in spark.sql("SELECT dt, count(*) n FROM anonc.events GROUP BY dt").collect()}
    assert counts == {"2026-11-24": 12, "2026-11-25": 20}
    before = sorted(map(tuple, spark.table("anonc.events").where("dt='2026-11-25'").collect()))
    c = run_partition(spec, "2026-11-25")
    assert c.published != b.published  # new version directory, metastore pointer swapped
    after = sorted(map(tuple, spark.table("anonc.events").where("dt='2026-11-25'").collect()))
    assert after == before
    assert Path(b.published).is_dir()  # previous version kept for in-flight readers
    assert Path(a.published).is_dir()
    from pipelines.partition import Partition
    from pipelines.session import session_warehouse
    from pipelines.storage.base import open_table

    sink = open_table(spec.sink, "dt", session_warehouse(spark), spark)
    assert sink.read_manifest(Partition.parse("dt", "2026-11-25")).run_id == c.run_id


def test_catalog_schema_change_is_refused(spark, key_env):
    spec = catalog_tables(spark, "schema_t", rows_for("2026-11-25", 5))
    run_partition(spec, "2026-11-25")
    data = spec.model_dump(mode="json")
    data["columns"]["amount"] = {"kind": "generalize", "method": "bucket", "width": 10}
    with pytest.raises(PublishError, match="differs from the published table in columns amount"):
        run_partition(spec_from_dict(data), "2026-11-25")


def test_csv_source_and_sink(spark, warehouse, key_env):
    raw = warehouse / "csvt" / "raw"
    spark.createDataFrame(rows_for("2026-11-25", 8), DDL).write.partitionBy("dt").option("header", "true").csv(str(raw))
    spec = make({"path": "csvt/raw", "format": "csv"}, {"path": "csvt/anon", "format": "csv"},
                columns={"uid": {"kind": "hash"}, "email": {"kind": "mask", "keep_last": 3}, "amount": {"kind": "keep"}})
    res = run_partition(spec, "2026-11-25")
    out = spark.read.option("header", "true").csv(res.published)
    assert out.count() == 8 and all(r.email.endswith("com") and "@" in r.email for r in out.collect())


def test_concurrent_reader_never_sees_a_mix(spark, path_tables, warehouse):
    """A reader polling the partition during republishes never combines two versions.

    Each read lists the directory and then opens the listed files. A read whose listing
    straddles the swap sees no files (names of the old version, stat'ed after it moved)
    and one that listed the old version before the swap fails to open it: both are
    documented outcomes of a path table. What must never happen is a read that counts
    files from two versions, or only part of one.
    """
    import pyarrow.dataset as ds

    spec, raw, sink = path_tables
    # Two source versions of the same partition with different sizes.
    small = raw.parent / "raw_small"
    spark.createDataFrame(rows_for("2026-11-25", 40, "s"), DDL).write.partitionBy("dt").parquet(str(small))
    spec_small = spec.model_copy(update={"source": spec.source.model_copy(update={"path": str(small)})})
    run_partition(spec, "2026-11-25")
    reads, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                d = ds.dataset(str(sink / "dt=2026-11-25"), format="parquet")
                # Spark names every file of one write part-<n>-<job uuid>-...
                jobs = {Path(f).name.split("-", 2)[2][:36] for f in d.files}
                reads.append((len(jobs), d.count_rows()))
            except (FileNotFoundError, OSError):
                reads.append(None)  # listed the version that moved before opening it

    t = threading.Thread(target=reader)
    t.start()
    try:
        for s in (spec_small, spec, spec_small, spec):
            run_partition(s, "2026-11-25")
    finally:
        stop.set()
        t.join()
    whole = [r for r in reads if r and r[0]]
    assert whole, reads
    assert all(jobs == 1 and rows in (40, 50) for jobs, rows in whole), whole
    assert all(r[1] == 0 for r in reads if r and not r[0]), reads


def test_partition_schema_comes_from_its_own_files(spark, warehouse, key_env):
    """A later partition with an extra column does not leak into an older partition's read."""
    raw = warehouse / "evolve" / "raw"
    spark.createDataFrame(rows_for("2026-11-24", 5), DDL).write.partitionBy("dt").parquet(str(raw))
    spark.createDataFrame([("u", "e@x.com", 1.0, "123-45-6789", "2026-11-25")],
                          "uid string, email string, amount double, ssn string, dt string") \
        .write.mode("append").partitionBy("dt").parquet(str(raw))
    spec = make({"path": "evolve/raw"}, {"path": "evolve/anon"})
    assert run_partition(spec, "2026-11-24").output_rows == 5
    with pytest.raises(SpecError, match="does not mention: ssn"):
        run_partition(spec, "2026-11-25")


KEY = "scheduled__2026-11-25T00:00:00+00:00"  # an Airflow run id, as the DAG passes it


def test_orchestrated_steps_publish_what_one_run_publishes(spark, path_tables):
    spec, _, sink = path_tables
    whole = run_partition(spec, "2026-11-24")
    rows_whole = sorted(map(tuple, spark.read.parquet(whole.published).drop("dt").collect()))

    staged = run_partition(spec, "2026-11-25", step="desensitize", run_key=KEY)
    assert staged.status == "staged" and not (sink / "dt=2026-11-25").exists()
    assert (Path(staged.published) / "_stage.json").is_file()
    validated = run_partition(spec, "2026-11-25", step="validate", run_key=KEY)
    assert (validated.status, validated.run_id) == ("validated", staged.run_id)
    assert not (sink / "dt=2026-11-25").exists()  # validated, not yet visible
    published = run_partition(spec, "2026-11-25", step="publish", run_key=KEY)
    assert (published.status, published.run_id) == ("published", staged.run_id)
    part = sink / "dt=2026-11-25"
    manifest = json.loads((part / "_manifest.json").read_text())
    assert manifest["run_id"] == staged.run_id and manifest["input_rows"] == 50
    assert manifest["quality"]["input"]["passed"] and manifest["quality"]["output"]["passed"]
    assert manifest["key_fingerprints"] == whole.record.key_fingerprints
    assert set(manifest["timings"]) >= {"desensitize_and_stage", "output_gate", "total"}
    assert not (part / "_stage.json").exists() and not (part / "_gx_result.json").exists()
    assert set(manifest) == set(whole.record.to_json())  # the same manifest as an in-process run

    # Repeating validate or publish after the publish changes nothing.
    before = digest_tree(sink)
    for step in ("validate", "publish"):
        again = run_partition(spec, "2026-11-25", step=step, run_key=KEY)
        assert (again.status, again.run_id) == ("published", staged.run_id)
    assert digest_tree(sink) == before

    # Clearing the whole Airflow run: a new run id under the same key, republished.
    redo = run_partition(spec, "2026-11-25", step="desensitize", run_key=KEY)
    assert redo.run_id != staged.run_id
    assert digest_tree(sink / "dt=2026-11-25") == before_part(before)  # staging is not publishing
    run_partition(spec, "2026-11-25", step="validate", run_key=KEY)
    run_partition(spec, "2026-11-25", step="publish", run_key=KEY)
    manifest = json.loads((part / "_manifest.json").read_text())
    assert manifest["run_id"] == redo.run_id
    assert spark.read.parquet(str(sink)).count() == 30 + 50
    rows = spark.read.parquet(str(sink / "dt=2026-11-24")).collect()
    assert sorted(map(tuple, rows)) == rows_whole  # the other partition untouched


def before_part(tree: dict[str, str], part: str = "dt=2026-11-25") -> dict[str, str]:
    return {k.removeprefix(part + "/"): v for k, v in tree.items() if k.startswith(part + "/")}


def test_orchestrated_steps_refuse_out_of_order_and_clean_up(spark, path_tables):
    spec, _, sink = path_tables
    with pytest.raises(SpecError, match="needs --run-key"):
        run_partition(spec, "2026-11-25", step="validate")
    with pytest.raises(SpecError, match="unknown 'stage'"):
        run_partition(spec, "2026-11-25", step="stage", run_key=KEY)
    with pytest.raises(MissingInputError, match="run the desensitize step first"):
        run_partition(spec, "2026-11-25", step="validate", run_key=KEY)
    first = run_partition(spec, "2026-11-25", step="desensitize", run_key=KEY)
    with pytest.raises(PublishError, match="not validated"):
        run_partition(spec, "2026-11-25", step="publish", run_key=KEY)
    # A retried desensitize discards its unpublished predecessor.
    second = run_partition(spec, "2026-11-25", step="desensitize", run_key=KEY)
    assert not Path(first.published).exists() and Path(second.published).is_dir()
    # Another Airflow run of the same partition stages beside it, untouched by it.
    other = run_partition(spec, "2026-11-25", step="desensitize", run_key="manual__1")
    assert Path(second.published).is_dir() and Path(other.published).is_dir()


def test_orchestrated_validate_quarantines_a_failed_output(spark, path_tables, monkeypatch):
    from pipelines.quality import gate

    spec, _, sink = path_tables
    run_partition(spec, "2026-11-25", step="desensitize", run_key=KEY)
    real = gate.run_gate

    def failing(suite, df, name):
        result, gx = real(suite, df, name)
        result.passed = False
        result.checks[0].success = False
        return result, gx

    monkeypatch.setattr(gate, "run_gate", failing)
    with pytest.raises(QualityGateFailed, match="output gate failed"):
        run_partition(spec, "2026-11-25", step="validate", run_key=KEY)
    monkeypatch.setattr(gate, "run_gate", real)
    notes = list((sink / "_quarantine" / "dt=2026-11-25").glob("*/gate.json"))
    assert len(notes) == 1 and json.loads(notes[0].read_text())["gates"]["input"]["passed"]
    with pytest.raises(MissingInputError, match="quarantined, discarded or replaced"):
        run_partition(spec, "2026-11-25", step="publish", run_key=KEY)
    assert not (sink / "dt=2026-11-25").exists()


def test_orchestrated_steps_on_a_catalog_table_keep_the_published_version(spark, key_env):
    spec = catalog_tables(spark, "steps", rows_for("2026-11-25", 20))
    for step in ("desensitize", "validate", "publish"):
        done = run_partition(spec, "2026-11-25", step=step, run_key=KEY)
    assert spark.table("anonc.steps").count() == 20
    # A retried desensitize under the same key must not discard the published version.
    redo = run_partition(spec, "2026-11-25", step="desensitize", run_key=KEY)
    assert Path(done.published).is_dir() and redo.run_id != done.run_id
    assert spark.table("anonc.steps").count() == 20
    # The retried desensitize is staged, not published: status lists it beside the
    # published version (catalog layout: _versions/dt=<day>/<run id>).
    from pipelines.ops import status

    [row] = [r for r in status(spec) if r["partition"] == "2026-11-25"]
    assert row["state"] == "published" and row["run_id"] == done.run_id
    assert row["staged"] == [redo.run_id]


def test_restore_publishes_a_retained_version_again(spark, path_tables, key_env, tmp_path):
    """Path table: the version the last publish replaced comes back whole, as a new publish."""
    import yaml
    from typer.testing import CliRunner

    from pipelines.cli import app

    spec, raw, sink = path_tables
    small = raw.parent / "raw_small"
    spark.createDataFrame(rows_for("2026-11-25", 40, "s"), DDL).write.partitionBy("dt").parquet(str(small))
    spec_small = spec.model_copy(update={"source": spec.source.model_copy(update={"path": str(small)})})
    first = run_partition(spec, "2026-11-25")
    first_rows = sorted(map(tuple, spark.read.parquet(first.published).collect()))
    run_partition(spec_small, "2026-11-25")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_defaults=True)))
    wh = ["--warehouse", str(sink.parent.parent)]
    res = CliRunner().invoke(app, ["restore", str(spec_file), "--partition", "2026-11-25",
                                   "--to", first.run_id, *wh])  # fmt: skip
    assert res.exit_code == 0, res.output
    part = sink / "dt=2026-11-25"
    assert sorted(map(tuple, spark.read.parquet(str(part)).collect())) == first_rows
    manifest = json.loads((part / "_manifest.json").read_text())
    assert manifest["status"] == "restored" and manifest["restored_from"] == first.run_id
    assert manifest["run_id"] != first.run_id and manifest["input_rows"] == 50
    res = CliRunner().invoke(app, ["restore", str(spec_file), "--partition", "2026-11-25",
                                   "--to", "20200101T000000Z-deadbeef", *wh])  # fmt: skip
    assert res.exit_code == 4 and "no retained version of run 20200101T000000Z-deadbeef" in res.output


def test_restore_on_a_catalog_table_points_back_at_the_kept_version(spark, key_env):
    from pipelines.ops import restore

    spec = catalog_tables(spark, "restore_t", rows_for("2026-11-25", 20))
    first = run_partition(spec, "2026-11-25")
    before = sorted(map(tuple, spark.table("anonc.restore_t").collect()))
    spark.createDataFrame(rows_for("2026-11-25", 12, "b"), DDL).write.mode("overwrite") \
        .insertInto("rawc.restore_t")  # fmt: skip
    run_partition(spec, "2026-11-25")
    assert spark.table("anonc.restore_t").count() == 12
    restore(spec, "2026-11-25", first.run_id)
    assert sorted(map(tuple, spark.table("anonc.restore_t").collect())) == before
