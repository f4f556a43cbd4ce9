"""The run lifecycle on every storage backend: path, Hive catalog, Iceberg and Delta Lake.

Each test runs once per backend and observes the published table through Spark
and :class:`~pipelines.storage.base.Table` only, so one assertion holds every
backend to the same contract: publish with a manifest, rerun idempotently, replace
exactly one partition (an empty one too), leave everything as it was when a run
fails or a gate quarantines it, continue orchestrated steps, show status, restore.
Table formats are compared by snapshot/version (a failed run adds no commit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pipelines.errors import QualityGateFailed
from pipelines.partition import Partition
from pipelines.runner import run_partition
from pipelines.session import session_warehouse
from pipelines.spec import spec_from_dict
from pipelines.storage.base import Table, open_table
from tests.specs import spec_data

DDL = "uid string, email string, amount double, note string, dt string"
COLUMNS = {
    "uid": {"kind": "hash", "length": 16},
    "email": {"kind": "surrogate", "domain": "email"},
    "amount": {"kind": "keep"},
    "note": {"kind": "keep"},
}
BACKENDS = ["path", "hive", "iceberg", "delta"]


def rows_for(day: str, n: int, tag: str = "") -> list[tuple]:
    return [(f"u{i % 7}", f"p{i}{tag}@mail.com", float(i), f"note {i}", day) for i in range(n)]


def sink_ref(backend: str, name: str) -> dict:
    return {
        "path": {"path": f"{name}/anon"},
        "hive": {"table": f"anonb.{name}"},
        "iceberg": {"table": f"anonb.{name}", "format": "iceberg"},
        "delta": {"path": f"{name}/anon_delta", "format": "delta"},
    }[backend]


@dataclass
class Setup:
    spec: object
    backend: str
    raw: object

    def sink(self, spark) -> Table:
        return open_table(self.spec.sink, "dt", session_warehouse(spark), spark,
                          self.spec.quarantine_root(session_warehouse(spark)))  # fmt: skip

    def rows(self, spark, day: str) -> list[tuple]:
        """The published rows of one partition, as any reader of the table sees them."""
        sink = self.sink(spark)
        partition = Partition.parse("dt", day)
        if not sink.exists() or not sink.partition_exists(partition):
            return []
        return sorted(map(tuple, sink.read_partition(partition).collect()))

    def version(self, spark) -> object:
        """What a failed run must leave unchanged: the partitions' manifests and rows,
        and for table formats the current snapshot/version."""
        sink = self.sink(spark)
        current = sink.describe().get("current_version")
        runs = {}
        for day in sorted(sink.partition_values()):
            m = sink.read_manifest(Partition.parse("dt", day))
            runs[day] = (m.run_id if m else None, self.rows(spark, day))
        return current, runs

    def snapshot_ids(self, spark) -> set[int]:
        """Every snapshot of an Iceberg sink, on any branch (empty for other backends)."""
        if self.backend != "iceberg" or not self.sink(spark).exists():
            return set()
        table = f"anonymize_iceberg.{self.spec.sink.table}"
        refs = {r.name for r in spark.table(f"{table}.refs").collect()}
        assert refs == {"main"}, refs
        return {r.snapshot_id for r in spark.table(f"{table}.snapshots").collect()}


def fresh_setup(spark, warehouse, backend: str) -> Setup:
    """A fresh raw path table with three partitions and a spec publishing to the backend."""
    name = f"b{uuid.uuid4().hex[:8]}"
    raw = warehouse / name / "raw"
    data = rows_for("2026-11-24", 30) + rows_for("2026-11-25", 50) + rows_for("2026-11-26", 10)
    spark.createDataFrame(data, DDL).write.partitionBy("dt").parquet(str(raw))
    spec = spec_from_dict(spec_data(COLUMNS, source={"path": f"{name}/raw"},
                                    sink=sink_ref(backend, name)))  # fmt: skip
    return Setup(spec, backend, raw)


@pytest.fixture(params=BACKENDS)
def backend(request, spark, warehouse, key_env):
    """:func:`fresh_setup` for each backend."""
    return fresh_setup(spark, warehouse, request.param)


def test_publish_writes_rows_and_a_manifest_naming_the_commit(spark, backend):
    res = run_partition(backend.spec, "2026-11-25")
    assert (res.input_rows, res.output_rows) == (50, 50)
    sink = backend.sink(spark)
    manifest = sink.read_manifest(Partition.parse("dt", "2026-11-25"))
    assert manifest.run_id == res.run_id and manifest.input_rows == 50
    assert manifest.key_fingerprints["main"] and len(manifest.identity.spec_hash) == 64
    rows = backend.rows(spark, "2026-11-25")
    assert len(rows) == 50 and not any("@mail.com" in r[1] for r in rows)
    assert not sink.staging_dirs()  # nothing left staged
    if backend.backend in ("iceberg", "delta"):
        # The table's own newest commit, read without the product's code: its version
        # is the manifest's and it carries the run's identity.
        if backend.backend == "iceberg":
            last = spark.sql(f"SELECT snapshot_id, summary FROM anonymize_iceberg.{backend.spec.sink.table}"
                             ".snapshots ORDER BY committed_at DESC LIMIT 1").first()  # fmt: skip
            version, props = str(last.snapshot_id), {k.removeprefix("anonymize."): v
                                                     for k, v in last.summary.items()}  # fmt: skip
        else:
            last = spark.sql(f"DESCRIBE HISTORY delta.`{sink.path}` LIMIT 1").first()
            version, props = str(last.version), json.loads(last.userMetadata)["anonymize"]
        assert manifest.table_version == version and res.published.endswith(f"@ {version}")
        assert props["run-id"] == res.run_id and props["partition"] == "2026-11-25"
        assert props["spec-hash"] == manifest.identity.spec_hash
        assert props["code-version"] == manifest.identity.code_version
        assert json.loads(props["key-fingerprints"]) == manifest.key_fingerprints
        history = sink.control_root / "_manifests" / "dt=2026-11-25" / f"{res.run_id}.json"
        assert json.loads(history.read_text())["table_version"] == version


def test_rerun_replaces_only_its_partition_with_the_same_rows(spark, backend):
    run_partition(backend.spec, "2026-11-24")
    first = run_partition(backend.spec, "2026-11-25")
    other = backend.rows(spark, "2026-11-24")
    before = backend.rows(spark, "2026-11-25")
    second = run_partition(backend.spec, "2026-11-25")
    assert second.run_id != first.run_id
    assert backend.rows(spark, "2026-11-25") == before  # keyed actions: same output
    assert backend.rows(spark, "2026-11-24") == other
    sink = backend.sink(spark)
    assert sink.read_manifest(Partition.parse("dt", "2026-11-25")).run_id == second.run_id
    assert sink.partition_values() == {"2026-11-24", "2026-11-25"}


def test_an_empty_partition_replaces_a_full_one(spark, backend):
    run_partition(backend.spec, "2026-11-25")
    empty = backend.raw.parent / "raw_empty"
    spark.createDataFrame([], DDL).write.partitionBy("dt").parquet(str(empty))
    spark.createDataFrame([], DDL.rsplit(",", 1)[0]).write.parquet(str(empty / "dt=2026-11-25"))
    spec = backend.spec.model_copy(update={
        "source": backend.spec.source.model_copy(update={"path": str(empty)}),
        "quality": backend.spec.quality.model_copy(update={"allow_empty": True}),
    })  # fmt: skip
    res = run_partition(spec, "2026-11-25")
    assert res.output_rows == 0 and backend.rows(spark, "2026-11-25") == []
    sink = backend.sink(spark)
    assert "2026-11-25" in sink.partition_values()  # published, empty
    assert sink.read_manifest(Partition.parse("dt", "2026-11-25")).run_id == res.run_id
    # Empty over empty: a commit that changes no file still records the publish.
    again = run_partition(spec, "2026-11-25")
    assert sink.read_manifest(Partition.parse("dt", "2026-11-25")).run_id == again.run_id


def test_a_failed_commit_leaves_the_table_as_it_was(spark, backend, monkeypatch):
    run_partition(backend.spec, "2026-11-25")
    before, snapshots = backend.version(spark), backend.snapshot_ids(spark)
    cls = type(backend.sink(spark))

    def boom(*args, **kwargs):
        raise RuntimeError("injected failure in the commit")

    # the table formats' publish commits through _table_commit (it returns the version)
    monkeypatch.setattr(cls, "_table_commit" if backend.backend in FORMATS else "_commit", boom)
    with pytest.raises(RuntimeError, match="injected"):
        run_partition(backend.spec, "2026-11-25")
    monkeypatch.undo()
    assert backend.version(spark) == before and backend.snapshot_ids(spark) == snapshots
    assert not backend.sink(spark).staging_dirs()  # the staged data discarded


def test_a_failed_gate_quarantines_and_leaves_the_table_as_it_was(spark, backend):
    """The failed run's rows are in the owner-only quarantine, and nowhere in the table
    (an Iceberg run staged on a branch: the branch and its snapshot are gone)."""
    run_partition(backend.spec, "2026-11-25")
    before = backend.version(spark)
    snapshots = backend.snapshot_ids(spark)
    leaky = backend.raw.parent / "raw_leaky"
    rows = [(u, e, a, f"call me at {e}", d) for u, e, a, _, d in rows_for("2026-11-25", 20, "x")]
    spark.createDataFrame(rows, DDL).write.partitionBy("dt").parquet(str(leaky))
    spec = backend.spec.model_copy(update={
        "source": backend.spec.source.model_copy(update={"path": str(leaky)})})  # fmt: skip
    with pytest.raises(QualityGateFailed, match="note"):
        run_partition(spec, "2026-11-25")
    assert backend.version(spark) == before
    sink = backend.sink(spark)
    [(partition, run_id, where)] = sink.quarantined()
    assert partition.value == "2026-11-25" and spark.read.parquet(str(where / "data")).count() == 20
    assert backend.snapshot_ids(spark) == snapshots
    from pipelines.ops import status

    [row] = [r for r in status(spec) if r["partition"] == "2026-11-25"]
    assert row["state"] == "published" and row["later_quarantine"] == run_id


def test_orchestrated_steps_publish_and_status_shows_the_run(spark, backend):
    from pipelines.ops import status

    key = f"airflow-{uuid.uuid4().hex[:6]}"
    staged = run_partition(backend.spec, "2026-11-26", step="desensitize", run_key=key)
    [row] = [r for r in status(backend.spec) if r["partition"] == "2026-11-26"]
    assert row["state"] == "staged" and row["staged"] == [staged.run_id]
    run_partition(backend.spec, "2026-11-26", step="validate", run_key=key)
    done = run_partition(backend.spec, "2026-11-26", step="publish", run_key=key)
    again = run_partition(backend.spec, "2026-11-26", step="publish", run_key=key)  # a retry
    assert done.run_id == again.run_id == staged.run_id and again.status == "published"
    assert len(backend.rows(spark, "2026-11-26")) == 10
    [row] = [r for r in status(backend.spec) if r["partition"] == "2026-11-26"]
    assert row["state"] == "published" and row["run_id"] == staged.run_id and "staged" not in row


def test_restore_puts_an_earlier_version_back_as_a_new_publish(spark, backend):
    from pipelines.ops import restore

    first = run_partition(backend.spec, "2026-11-25")
    first_rows = backend.rows(spark, "2026-11-25")
    small = backend.raw.parent / "raw_small"
    spark.createDataFrame(rows_for("2026-11-25", 12, "s"), DDL).write.partitionBy("dt").parquet(str(small))
    spec_small = backend.spec.model_copy(update={
        "source": backend.spec.source.model_copy(update={"path": str(small)})})  # fmt: skip
    run_partition(spec_small, "2026-11-25")
    assert len(backend.rows(spark, "2026-11-25")) == 12
    restore(backend.spec, "2026-11-25", first.run_id)
    assert backend.rows(spark, "2026-11-25") == first_rows
    manifest = backend.sink(spark).read_manifest(Partition.parse("dt", "2026-11-25"))
    assert manifest.status == "restored" and manifest.restored_from == first.run_id
    assert manifest.run_id != first.run_id and manifest.input_rows == 50


@pytest.mark.parametrize("kind", ["path", "hive"])
def test_keep_versions_sets_how_many_replaced_versions_restore_can_put_back(
    spark, warehouse, key_env, kind
):
    from pipelines.errors import MissingInputError
    from pipelines.ops import restore

    setup = fresh_setup(spark, warehouse, kind)
    keep2 = setup.spec.model_copy(update={
        "sink": setup.spec.sink.model_copy(update={"keep_versions": 2})})  # fmt: skip
    part = Partition.parse("dt", "2026-11-25")
    runs = [run_partition(keep2, "2026-11-25").run_id for _ in range(4)]
    sink = setup.sink(spark)
    # The published run and the two published before it; the first is gone.
    assert sorted(v.run_id for v in sink.versions(part)) == sorted(runs[1:])
    assert [v.run_id for v in sink.versions(part) if v.current] == [runs[3]]
    restore(keep2, "2026-11-25", runs[1])  # the oldest one kept
    assert sink.read_manifest(part).restored_from == runs[1]
    with pytest.raises(MissingInputError, match="no retained version"):
        restore(keep2, "2026-11-25", runs[0])
    # The default keeps one: after the next publish, only the version it replaced.
    last = run_partition(setup.spec, "2026-11-25").run_id
    kept = {v.run_id for v in sink.versions(part)}
    assert len(kept) == 2 and last in kept


# --------------------------------------------------------------------- table formats only

FORMATS = ["iceberg", "delta"]


@pytest.fixture(params=FORMATS)
def fmt(request, spark, warehouse, key_env):
    """:func:`fresh_setup` for each table format."""
    return fresh_setup(spark, warehouse, request.param)


def _reader(spark, setup: Setup):
    """What an outside reader of the published table queries (no product code)."""
    sink = setup.sink(spark)
    if setup.backend == "iceberg":
        return lambda: spark.table(f"anonymize_iceberg.{setup.spec.sink.table}")
    return lambda: spark.read.format("delta").load(str(sink.path))


def test_a_reader_polling_during_republishes_sees_a_whole_partition(spark, fmt):
    """Snapshot isolation: while one partition is republished from two sources of 50
    and 12 rows, every read of it sees 50 or 12 rows, never 0 and never a mix."""
    import threading

    small = fmt.raw.parent / "raw_small"
    spark.createDataFrame(rows_for("2026-11-25", 12, "s"), DDL).write.partitionBy("dt").parquet(str(small))
    spec_small = fmt.spec.model_copy(update={
        "source": fmt.spec.source.model_copy(update={"path": str(small)})})  # fmt: skip
    run_partition(fmt.spec, "2026-11-25")
    read = _reader(spark, fmt)
    done, seen, errors = threading.Event(), [], []

    def poll():
        try:
            while not done.is_set():
                seen.append(read().where("dt = '2026-11-25'").count())
        except Exception as exc:  # surfaced below
            errors.append(exc)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for spec in (spec_small, fmt.spec, spec_small, fmt.spec):
            run_partition(spec, "2026-11-25")
    finally:
        done.set()
        reader.join()
    assert not errors, errors
    assert len(seen) >= 4 and set(seen) <= {50, 12}, sorted(set(seen))


def test_concurrent_publishes_of_different_partitions_both_land(spark, fmt):
    import threading

    run_partition(fmt.spec, "2026-11-24")  # the table exists: both commit to it
    results, errors = {}, []

    def run(day):
        try:
            results[day] = run_partition(fmt.spec, day)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in ("2026-11-25", "2026-11-26")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    counts = {r.dt: r.n for r in _reader(spark, fmt)().groupBy("dt").count()
              .withColumnRenamed("count", "n").collect()}  # fmt: skip
    assert counts == {"2026-11-24": 30, "2026-11-25": 50, "2026-11-26": 10}
    sink = fmt.sink(spark)
    for day, res in results.items():
        assert sink.read_manifest(Partition.parse("dt", day)).run_id == res.run_id


def test_gc_expires_old_versions_and_orphans_and_keeps_the_published_one(spark, fmt):
    """gc --older-than: Iceberg expires older snapshots (their versions can no longer be
    restored); both remove files no version references once a day old (a concurrent
    writer's files are unreferenced until it commits), never younger ones."""
    import os
    import time

    from pipelines.ops import gc

    first = run_partition(fmt.spec, "2026-11-25")
    run_partition(fmt.spec, "2026-11-25")
    sink = fmt.sink(spark)
    partition = Partition.parse("dt", "2026-11-25")
    data = (sink.warehouse / "iceberg" / "anonb" / fmt.spec.sink.table.split(".")[1] / "data"
            if fmt.backend == "iceberg" else sink.path)  # fmt: skip
    [part_dir] = [d for d in data.iterdir() if d.name == "dt=2026-11-25"]
    old_orphan, new_orphan = part_dir / "killed-writer.parquet", part_dir / "in-flight.parquet"
    for f in (old_orphan, new_orphan):
        f.write_bytes(b"PAR1")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old_orphan, (two_days_ago, two_days_ago))
    published = fmt.rows(spark, "2026-11-25")

    kept = gc(fmt.spec, "7d")  # nothing that old (Delta: VACUUM ran, removing nothing)
    assert kept == [] if fmt.backend == "iceberg" else [r.startswith("vacuumed ") for r in kept] == [True]
    assert old_orphan.exists() and fmt.rows(spark, "2026-11-25") == published
    if fmt.backend == "iceberg":
        removed = gc(fmt.spec, "0s", dry_run=True)
        assert any(str(old_orphan) in r for r in removed), removed
        assert not any(str(new_orphan) in r for r in removed), removed
        assert old_orphan.exists()  # a dry run removes nothing
    removed = gc(fmt.spec, "0s")
    assert new_orphan.exists() and fmt.rows(spark, "2026-11-25") == published
    if fmt.backend == "iceberg":  # the earlier snapshots are gone: nothing to restore
        assert not old_orphan.exists() and any(r.startswith("snapshot ") for r in removed)
        assert [v.current for v in sink.versions(partition)] == [True]
    else:  # VACUUM ran; Delta keeps a day of versions whatever --older-than says
        ops = {r.operation for r in spark.sql(f"DESCRIBE HISTORY {sink.ident}").collect()}
        assert {"VACUUM START", "VACUUM END"} <= ops
        assert first.run_id in {v.run_id for v in sink.versions(partition)}


def test_a_table_format_source_is_read_at_a_pinned_version(spark, warehouse, key_env):
    """Iceberg and Delta sources: the manifest records the snapshot/version read, and a
    run pinned to it reads the same input after the source has changed."""
    from pyspark.sql import functions as F

    from pipelines.errors import MissingInputError, SpecError

    name = f"s{uuid.uuid4().hex[:8]}"
    for source, sink in (
        ({"table": f"rawb.{name}", "format": "iceberg"}, {"path": f"{name}/anon_i"}),
        ({"path": f"{name}/raw_delta", "format": "delta"}, {"table": f"anonb.{name}_d", "format": "iceberg"}),
    ):  # fmt: skip
        spec = spec_from_dict(spec_data(COLUMNS, source=source, sink=sink))
        src = open_table(spec.source, "dt", session_warehouse(spark), spark)  # registers its catalog
        first = spark.createDataFrame(rows_for("2026-11-25", 20), DDL)
        writer = first.writeTo(src.ident).partitionedBy(F.col("dt"))
        writer.create() if source["format"] == "iceberg" else writer.using("delta").create()
        one = run_partition(spec, "2026-11-25")
        pinned = one.record.source_version if hasattr(one.record, "source_version") else None
        manifest = open_table(spec.sink, "dt", session_warehouse(spark), spark).read_manifest(
            Partition.parse("dt", "2026-11-25"))
        assert manifest.source_version is not None and manifest.input_rows == 20, pinned
        spark.createDataFrame(rows_for("2026-11-25", 5, "late"), DDL).writeTo(src.ident).append()
        assert run_partition(spec, "2026-11-25").input_rows == 25  # the current version
        again = run_partition(spec, "2026-11-25", source_version=manifest.source_version)
        assert again.input_rows == 20  # the same input as the first run
        with pytest.raises(MissingInputError, match="--source-version: .* has no snapshot or version 999"):
            run_partition(spec, "2026-11-25", source_version="999")
    path_spec = spec_from_dict(spec_data(COLUMNS, source={"path": f"{name}/anon_i"}, sink={"path": f"{name}/x"}))
    with pytest.raises(SpecError, match="--source-version: .* is not an Iceberg or Delta table"):
        run_partition(path_spec, "2026-11-25", source_version="1")


def test_a_retried_desensitize_step_reads_the_source_version_its_first_try_read(
        spark, warehouse, key_env, tmp_path, monkeypatch):  # fmt: skip
    """Airflow retries or clears a task under the same run id (run key): its
    desensitize step reads an Iceberg source at the snapshot the first try read; a new
    run key reads the current one. ``status`` shows that version for a path sink too."""
    from typer.testing import CliRunner

    from pipelines.cli import app, common

    name = f"r{uuid.uuid4().hex[:8]}"
    data = spec_data(COLUMNS, source={"table": f"rawb.{name}", "format": "iceberg"},
                     sink={"path": f"{name}/anon"})  # fmt: skip
    spec = spec_from_dict(data)
    src = open_table(spec.source, "dt", session_warehouse(spark), spark)
    spark.createDataFrame(rows_for("2026-11-25", 20), DDL).writeTo(src.ident).partitionedBy("dt").create()
    from pipelines.errors import MissingInputError
    from pipelines.storage.path import PathTable

    def fail_after_reading(*args):
        raise RuntimeError("the first try dies after reading the source")

    with monkeypatch.context() as m:  # the try Airflow retries: it failed after its read
        m.setattr(PathTable, "check_schema_compatible", fail_after_reading)
        with pytest.raises(RuntimeError, match="first try dies"):
            run_partition(spec, "2026-11-25", step="desensitize", run_key="manual__one")
    spark.createDataFrame(rows_for("2026-11-25", 5, "late"), DDL).writeTo(src.ident).append()
    first = run_partition(spec, "2026-11-25", step="desensitize", run_key="manual__one")
    assert first.input_rows == 20 and first.record.source_version is not None
    retried = run_partition(spec, "2026-11-25", step="desensitize", run_key="manual__one")
    assert retried.run_id != first.run_id and retried.input_rows == 20
    assert retried.record.source_version == first.record.source_version
    for step in ("validate", "publish"):
        run_partition(spec, "2026-11-25", step=step, run_key="manual__one")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(data))
    monkeypatch.setattr(common.out, "width", 300)  # one line per partition
    shown = CliRunner().invoke(app, ["status", str(spec_file), "--warehouse", str(warehouse)])
    assert shown.exit_code == 0, shown.output
    assert f"source read at {first.record.source_version}" in " ".join(shown.output.split())
    other = run_partition(spec, "2026-11-25", step="desensitize", run_key="manual__two")
    assert other.input_rows == 25 and other.record.source_version != first.record.source_version
    # A pin to a snapshot gc expired (here: one never made) fails the retry saying so.
    sink = open_table(spec.sink, "dt", session_warehouse(spark), spark)
    pointer = sink.run_pointer(Partition.parse("dt", "2026-11-25"), "manual__two")
    pointer.write_text(json.dumps(json.loads(pointer.read_text()) | {"source_version": "123"}))
    with pytest.raises(MissingInputError, match="run key manual__two first read source .* at "
                                                "version 123, which it no longer has"):  # fmt: skip
        run_partition(spec, "2026-11-25", step="desensitize", run_key="manual__two")


def test_an_unreachable_jdbc_catalog_is_named_in_one_line(spark, warehouse, key_env, tmp_path):
    """A JDBC catalog whose database cannot be opened: the error names the YAML path,
    the catalog, its URI and the cause, instead of a bare Py4JJavaError."""
    from pipelines.errors import MissingInputError

    uri = f"jdbc:sqlite:{tmp_path}/no/such/dir/catalog.db"
    sink = {"table": "anonb.t", "format": "iceberg",
            "catalog": {"name": "unreachable_jdbc", "type": "jdbc", "uri": uri}}  # fmt: skip
    spec = spec_from_dict(spec_data(COLUMNS, source={"path": "nowhere"}, sink=sink))
    with pytest.raises(MissingInputError) as caught:
        open_table(spec.sink, "dt", session_warehouse(spark), spark)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("catalog.uri: Iceberg catalog 'unreachable_jdbc'")
    assert uri in message and "cannot be reached: " in message


@pytest.fixture(params=["sqlite", "postgresql"])
def jdbc_catalog(request, tmp_path):
    """An Iceberg JDBC catalog's ``uri`` and a query of its own table list: over a
    SQLite file, or a PostgreSQL server the test starts on loopback."""
    if request.param == "sqlite":
        import sqlite3

        db = tmp_path / "catalog.sqlite"

        def tables() -> list[tuple]:
            with sqlite3.connect(db) as con:
                return con.execute("SELECT table_namespace, table_name FROM iceberg_tables").fetchall()

        yield {"uri": f"jdbc:sqlite:{db}"}, tables
        return
    import psycopg

    from tests.postgres import postgres_server

    with postgres_server() as (host, port):
        def tables() -> list[tuple]:
            with psycopg.connect(f"postgresql://postgres@{host}:{port}/postgres") as con:
                return con.execute("SELECT table_namespace, table_name FROM iceberg_tables").fetchall()

        yield {"uri": f"jdbc:postgresql://{host}:{port}/postgres",
               "properties": {"jdbc.user": "postgres"}}, tables  # fmt: skip


def test_an_iceberg_jdbc_catalog_publishes_and_restores(spark, warehouse, key_env, tmp_path, jdbc_catalog):
    from pipelines.ops import restore

    conn, catalog_tables = jdbc_catalog
    name = f"j{uuid.uuid4().hex[:8]}"
    raw = warehouse / name / "raw"
    spark.createDataFrame(rows_for("2026-11-25", 20), DDL).write.partitionBy("dt").parquet(str(raw))
    catalog = {"type": "jdbc", "name": f"jdbc_{name}", **conn, "warehouse": str(tmp_path / "data")}
    sink = {"table": f"anon.{name}", "format": "iceberg", "catalog": catalog}
    spec = spec_from_dict(spec_data(COLUMNS, source={"path": str(raw)}, sink=sink))
    first = run_partition(spec, "2026-11-25")
    run_partition(spec, "2026-11-25")
    restore(spec, "2026-11-25", first.run_id)
    assert catalog_tables() == [("anon", name)]  # the catalog's own record of the table
    assert spark.table(f"jdbc_{name}.anon.{name}").count() == 20
    manifest = open_table(spec.sink, "dt", session_warehouse(spark), spark).read_manifest(
        Partition.parse("dt", "2026-11-25"))
    assert manifest.restored_from == first.run_id


def test_a_crash_after_the_commit_keeps_the_published_runs_manifest(spark, fmt, monkeypatch):
    """The commit landed, then recording the manifest failed: the run is published
    (status says so, its manifest is found) and gc does not take it for abandoned."""
    from pipelines.ops import gc, status

    cls = type(fmt.sink(spark))
    real = cls._record

    def fail_once(self, partition, manifest):
        monkeypatch.setattr(cls, "_record", real)
        raise OSError("injected: disk full after the commit")

    monkeypatch.setattr(cls, "_record", fail_once)
    with pytest.raises(OSError, match="injected"):
        run_partition(fmt.spec, "2026-11-25")
    [row] = [r for r in status(fmt.spec) if r["partition"] == "2026-11-25"]
    assert row["state"] == "published" and "staged" not in row
    assert len(fmt.rows(spark, "2026-11-25")) == 50
    assert gc(fmt.spec, "0s", dry_run=True) == []  # nothing abandoned, nothing unreferenced
    assert fmt.sink(spark).read_manifest(Partition.parse("dt", "2026-11-25")).run_id == row["run_id"]


def test_manifests_outlive_expired_commits(spark, warehouse, key_env):
    """After gc expired the snapshots that published a partition, status still shows
    it published, from the publish history."""
    from pipelines.ops import gc, status

    name = f"x{uuid.uuid4().hex[:8]}"
    raw = warehouse / name / "raw"
    spark.createDataFrame(rows_for("2026-11-24", 6) + rows_for("2026-11-25", 9), DDL) \
        .write.partitionBy("dt").parquet(str(raw))  # fmt: skip
    spec = spec_from_dict(spec_data(COLUMNS, source={"path": str(raw)}, sink=sink_ref("iceberg", name)))
    first = run_partition(spec, "2026-11-24")
    run_partition(spec, "2026-11-25")
    run_partition(spec, "2026-11-25")
    gc(spec, "0s")  # expires every snapshot but the current one, which published 11-25
    rows = {r["partition"]: r for r in status(spec)}
    assert rows["2026-11-24"]["state"] == "published" and rows["2026-11-24"]["run_id"] == first.run_id


def test_a_commit_to_the_partition_since_staging_fails_the_publish_clearly(spark, fmt):
    """Both formats validate the publish from the version its staging began at: a run
    of the partition that published between this run's steps fails this publish
    (PublishError, one line), nothing of it committed, the other run's data kept, and
    (Delta) the staged files it had linked into the table removed again."""
    from pipelines.errors import PublishError

    run_partition(fmt.spec, "2026-11-25")
    key = f"airflow-{uuid.uuid4().hex[:6]}"
    run_partition(fmt.spec, "2026-11-25", step="desensitize", run_key=key)
    run_partition(fmt.spec, "2026-11-25", step="validate", run_key=key)
    other = run_partition(fmt.spec, "2026-11-25")  # the other writer, in between
    before = fmt.version(spark)
    sink = fmt.sink(spark)
    files = set(sink.path.rglob("*.parquet")) if fmt.backend == "delta" else set()
    with pytest.raises(PublishError) as err:
        run_partition(fmt.spec, "2026-11-25", step="publish", run_key=key)
    assert "another writer committed to it" in str(err.value) and "\n" not in str(err.value)
    assert fmt.version(spark) == before
    assert sink.read_manifest(Partition.parse("dt", "2026-11-25")).run_id == other.run_id
    assert not sink.staging_dirs()  # the failed run's staging (its branch too) is gone
    if fmt.backend == "iceberg":
        table = f"anonymize_iceberg.{fmt.spec.sink.table}"
        assert {r.name for r in spark.table(f"{table}.refs").collect()} == {"main"}
    else:
        assert set(sink.path.rglob("*.parquet")) == files


def test_two_concurrent_delta_publishes_of_one_partition_one_wins_none_lost(spark, warehouse, key_env):
    """Two runs staged from the same version publish the same partition one after the
    other: the first commits, the second fails with the one-line conflict (Delta's own
    conflict check on the transaction), and the partition holds the first run's rows."""
    from pipelines.errors import PublishError

    setup = fresh_setup(spark, warehouse, "delta")
    run_partition(setup.spec, "2026-11-25")
    keys = [f"airflow-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for key in keys:  # both stage from the same table version
        run_partition(setup.spec, "2026-11-25", step="desensitize", run_key=key)
        run_partition(setup.spec, "2026-11-25", step="validate", run_key=key)
    first = run_partition(setup.spec, "2026-11-25", step="publish", run_key=keys[0])
    with pytest.raises(PublishError, match="another writer committed to it"):
        run_partition(setup.spec, "2026-11-25", step="publish", run_key=keys[1])
    sink = setup.sink(spark)
    assert sink.read_manifest(Partition.parse("dt", "2026-11-25")).run_id == first.run_id
    assert len(setup.rows(spark, "2026-11-25")) == 50


def test_a_delta_publish_commits_the_staged_files_without_writing_them_again(spark, warehouse, key_env):
    """Once the table exists, the publish commits the staged Parquet files themselves
    (linked into the partition's directory under the run's id, row counts as their
    statistics): the partition's files afterwards are exactly the staged ones, and
    the rows equal a fresh read of them."""
    from pyspark.sql import functions as F

    setup = fresh_setup(spark, warehouse, "delta")
    run_partition(setup.spec, "2026-11-24")
    key = f"airflow-{uuid.uuid4().hex[:6]}"
    run_partition(setup.spec, "2026-11-25", step="desensitize", run_key=key)
    [st] = setup.sink(spark).staging_dirs()
    staged = {p.name for p in st.path.glob("*.parquet")}
    staged_rows = sorted(map(tuple, spark.read.parquet(str(st.path)).collect()))
    run_partition(setup.spec, "2026-11-25", step="validate", run_key=key)
    run = run_partition(setup.spec, "2026-11-25", step="publish", run_key=key).run_id
    sink = setup.sink(spark)
    table = spark.read.format("delta").load(str(sink.path)).where("dt = '2026-11-25'")
    files = {tuple(r[0].rsplit("/", 2)[-2:]) for r in table.select(F.input_file_name()).collect()}
    assert files and all(d == "dt=2026-11-25" for d, _ in files)
    assert {name for _, name in files} <= {f"{run}-{name}" for name in staged}  # linked
    assert sorted(map(tuple, table.drop("dt").collect())) == staged_rows
    last = spark.sql(f"DESCRIBE HISTORY delta.`{sink.path}` LIMIT 1").first()
    assert last.operation == "WRITE" and last.operationParameters["mode"] == "Overwrite"
    adds = [json.loads(line)["add"] for line in (sink.path / "_delta_log" /
            f"{last.version:020d}.json").read_text().splitlines() if '"add"' in line]  # fmt: skip
    assert sum(json.loads(a["stats"])["numRecords"] for a in adds) == 50


def test_a_delta_table_with_a_constraint_is_published_through_deltas_writer(spark, warehouse, key_env):
    """A CHECK constraint is for Delta's writer to enforce: the staged files are not
    committed as they are, the rows go through the writer, which refuses a row
    breaking it (nothing committed)."""
    setup = fresh_setup(spark, warehouse, "delta")
    run_partition(setup.spec, "2026-11-24")
    path = setup.sink(spark).path
    spark.sql(f"ALTER TABLE delta.`{path}` ADD CONSTRAINT small CHECK (amount < 40)")
    before = setup.version(spark)
    with pytest.raises(Exception, match="(?i)constraint|CHECK"):
        run_partition(setup.spec, "2026-11-25")  # amounts 0..49
    assert setup.version(spark) == before
    spark.sql(f"ALTER TABLE delta.`{path}` DROP CONSTRAINT small")


@pytest.mark.parametrize("fmt", ["iceberg"], indirect=True)
def test_an_iceberg_rerun_stages_on_a_branch_and_publishes_its_files(spark, fmt):
    """Once the table exists a run writes its rows once, on a branch of its own that
    readers of main do not see; the publish commit adds exactly the files that write
    added (no second write) and the branch goes."""
    from pyspark.sql import functions as F

    table = f"anonymize_iceberg.{fmt.spec.sink.table}"

    def files(name: str) -> set[str]:
        rows = spark.table(name).where("dt = '2026-11-26'").select(F.input_file_name())
        return {r[0] for r in rows.collect()}

    run_partition(fmt.spec, "2026-11-25")
    key = f"airflow-{uuid.uuid4().hex[:6]}"
    staged = run_partition(fmt.spec, "2026-11-26", step="desensitize", run_key=key)
    [st] = fmt.sink(spark).staging_dirs()
    assert not list(st.path.glob("*.parquet"))  # nothing staged as Parquet
    branch = f"anonymize_{staged.run_id.replace('-', '_')}"
    assert {r.name for r in spark.table(f"{table}.refs").collect()} == {"main", branch}
    assert spark.table(table).where("dt = '2026-11-26'").count() == 0  # main: not yet
    on_branch = files(f"{table}.`branch_{branch}`")
    assert len(on_branch) >= 1
    run_partition(fmt.spec, "2026-11-26", step="validate", run_key=key)
    run_partition(fmt.spec, "2026-11-26", step="publish", run_key=key)
    assert files(table) == on_branch  # the very files staged: written once
    assert spark.table(table).where("dt = '2026-11-26'").count() == 10
    assert {r.name for r in spark.table(f"{table}.refs").collect()} == {"main"}
    last = spark.table(f"{table}.snapshots").orderBy(F.col("committed_at").desc()).first()
    assert last.summary["anonymize.run-id"] == staged.run_id and last.operation == "overwrite"


#: `anonymize run --step publish` that SIGKILLs itself mid-publish: Iceberg with the
#: rows on the run's branch, before the commit; Delta with the staged files linked into
#: the table's partition directory, before its transaction commits.
KILLED_RUN = """
import os, signal, sys
from pipelines.storage import formats

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[1] == "iceberg":
    formats.IcebergTable._table_commit = die
else:  # the staged files are linked into the table; killed before its transaction commits
    def link_and_die(self, delta_log, snapshot, partition, files, manifest):
        assert files and all(f.is_file() and rows > 0 for f, rows in files)
        die()

    formats.DeltaTable._commit_files = link_and_die
sys.argv = ["anonymize", *sys.argv[2:]]
from pipelines.cli import main
main()
"""


def test_a_run_killed_mid_publish_leaves_the_table_as_it_was(spark, fmt, warehouse, tmp_path):
    """SIGKILL during the publish step: the table's current version, rows and manifests
    are as they were; status shows the dead run as staged; the next run publishes; gc
    discards the dead run's staging (its Iceberg branch too)."""
    from pipelines.ops import gc, status
    from tests.conftest import TEST_KEY

    run_partition(fmt.spec, "2026-11-25")
    before = fmt.version(spark)
    key = f"airflow-{uuid.uuid4().hex[:6]}"  # staged and validated here; published there
    run_partition(fmt.spec, "2026-11-25", step="desensitize", run_key=key)
    run_partition(fmt.spec, "2026-11-25", step="validate", run_key=key)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(fmt.spec.model_dump(mode="json", exclude_defaults=True)))
    # Delta's session catalog opens the Hive metastore: a Derby of its own (ours is locked).
    derby = f"jdbc:derby:;databaseName={tmp_path / 'metastore_db'};create=true"
    cmd = [sys.executable, "-c", KILLED_RUN, fmt.backend, "run", str(spec_file), "--partition",
           "2026-11-25", "--step", "publish", "--run-key", key,
           "--warehouse", str(warehouse), "--master", "local[1]",
           "--conf", "spark.ui.enabled=false"]  # fmt: skip
    if fmt.backend == "delta":
        cmd += ["--conf", f"spark.hadoop.javax.jdo.option.ConnectionURL={derby}"]
    env = {**os.environ, "ANON_TEST_KEY": TEST_KEY, "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run(cmd, env=env, cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == -9, done.stderr[-2000:]
    assert fmt.version(spark) == before
    if fmt.backend == "delta":  # killed before its commit: its files are in the table, unreferenced
        from pyspark.sql import functions as F

        sink = fmt.sink(spark)
        live = {r[0].rsplit("/", 1)[-1] for r in spark.read.format("delta")
                .load(str(sink.path)).select(F.input_file_name()).collect()}  # fmt: skip
        assert {f.name for f in sink.path.rglob("*.parquet")} - live
    [row] = [r for r in status(fmt.spec) if r["partition"] == "2026-11-25"]
    assert row["state"] == "published" and len(row["staged"]) == 1
    refs_of = f"anonymize_iceberg.{fmt.spec.sink.table}.refs"
    if fmt.backend == "iceberg":  # the dead run's rows are on its branch, not on main
        dead = f"anonymize_{row['staged'][0].replace('-', '_')}"
        assert {r.name for r in spark.table(refs_of).collect()} == {"main", dead}
    again = run_partition(fmt.spec, "2026-11-25")
    assert again.status == "published" and len(fmt.rows(spark, "2026-11-25")) == 50
    assert gc(fmt.spec, "0s", dry_run=True)  # the dead run's staging is listed
    gc(fmt.spec, "0s")
    assert not fmt.sink(spark).staging_dirs()
    if fmt.backend == "iceberg":
        assert {r.name for r in spark.table(refs_of).collect()} == {"main"}
    assert len(fmt.rows(spark, "2026-11-25")) == 50


def _iceberg_refs(spark, setup: Setup) -> set[str]:
    return {r.name for r in spark.table(f"anonymize_iceberg.{setup.spec.sink.table}.refs").collect()}


@pytest.mark.parametrize("fmt", ["iceberg"], indirect=True)
def test_a_failure_after_the_branch_is_made_discards_it(spark, fmt, monkeypatch):
    """The branch write fails once the run's branch exists: the run's staging, branch
    and snapshot all go, and the table is as it was."""
    from pipelines.storage.formats import IcebergTable

    run_partition(fmt.spec, "2026-11-25")
    before, snapshots = fmt.version(spark), fmt.snapshot_ids(spark)

    def boom(self, branch):
        raise RuntimeError("injected: the branch write failed")

    monkeypatch.setattr(IcebergTable, "_branch_ident", boom)
    with pytest.raises(RuntimeError, match="injected"):
        run_partition(fmt.spec, "2026-11-25")
    monkeypatch.undo()
    assert fmt.version(spark) == before and _iceberg_refs(spark, fmt) == {"main"}
    assert fmt.snapshot_ids(spark) == snapshots and not fmt.sink(spark).staging_dirs()


@pytest.mark.parametrize("fmt", ["iceberg"], indirect=True)
def test_gc_drops_an_old_run_branch_no_staged_run_names(spark, fmt):
    """A branch left by a process that died before recording it goes with gc once it
    is older than the retention; a recent one, and main, stay."""
    from pipelines.ops import gc

    run_partition(fmt.spec, "2026-11-25")
    table = f"anonymize_iceberg.{fmt.spec.sink.table}"
    for name in ("anonymize_20200101T000000Z_deadbeef", "anonymize_29990101T000000Z_deadbeef"):
        spark.sql(f"ALTER TABLE {table} CREATE BRANCH {name}")
    listed = gc(fmt.spec, "1d", dry_run=True)
    assert "branch anonymize_20200101T000000Z_deadbeef (no staged run)" in listed
    assert not any("29990101" in line for line in listed)
    gc(fmt.spec, "1d")
    assert _iceberg_refs(spark, fmt) == {"main", "anonymize_29990101T000000Z_deadbeef"}


def test_an_iceberg_table_partitioned_by_a_date_column_takes_publishes(spark, warehouse, key_env):
    """A table made outside the pipeline with a DATE partition column: the first and
    the next publish (staged on a branch) cast the partition value to its type."""
    name = f"d{uuid.uuid4().hex[:8]}"
    raw = warehouse / name / "raw"
    spark.createDataFrame(rows_for("2026-11-25", 9), DDL).write.partitionBy("dt").parquet(str(raw))
    table = f"anonymize_iceberg.anonb.{name}"
    spark.sql("CREATE NAMESPACE IF NOT EXISTS anonymize_iceberg.anonb")
    spark.sql(f"CREATE TABLE {table} (uid string, email string, amount double, note string, "
              "dt date) USING iceberg PARTITIONED BY (dt)")  # fmt: skip
    spec = spec_from_dict(spec_data(COLUMNS, source={"path": str(raw)}, sink=sink_ref("iceberg", name)))
    run_partition(spec, "2026-11-25")  # no snapshot yet: staged as Parquet
    again = run_partition(spec, "2026-11-25")  # staged on a branch
    rows = spark.table(table).collect()
    assert len(rows) == 9 and {str(r.dt) for r in rows} == {"2026-11-25"}
    sink = open_table(spec.sink, "dt", session_warehouse(spark), spark)
    assert sink.read_manifest(Partition.parse("dt", "2026-11-25")).run_id == again.run_id


@pytest.mark.parametrize("fmt", ["iceberg"], indirect=True)
def test_two_runs_staged_before_the_table_existed_one_publishes_the_other_fails(spark, fmt):
    """Both stage as Parquet (no table yet); the first publish creates the table; the
    second was staged before that commit, so it fails clearly instead of replacing it."""
    from pipelines.errors import PublishError

    first, second = (f"airflow-{uuid.uuid4().hex[:6]}" for _ in range(2))
    for key in (first, second):
        run_partition(fmt.spec, "2026-11-25", step="desensitize", run_key=key)
        run_partition(fmt.spec, "2026-11-25", step="validate", run_key=key)
    won = run_partition(fmt.spec, "2026-11-25", step="publish", run_key=first)
    with pytest.raises(PublishError, match="another writer committed to it"):
        run_partition(fmt.spec, "2026-11-25", step="publish", run_key=second)
    sink = fmt.sink(spark)
    assert sink.read_manifest(Partition.parse("dt", "2026-11-25")).run_id == won.run_id
