"""One run per partition at a time (a lease), and versions kept by publish order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from pipelines.errors import PartitionBusyError
from pipelines.partition import Partition
from pipelines.runner import run_partition
from pipelines.spec import spec_from_dict
from pipelines.storage.lease import sink_lease
from tests.conftest import TEST_KEY
from tests.specs import spec_data

ROOT = Path(__file__).resolve().parents[2]
DDL = "uid string, email string, amount double, dt string"
COLUMNS = {"uid": {"kind": "hash", "length": 40}, "email": {"kind": "surrogate", "domain": "email"},
           "amount": {"kind": "keep"}}  # fmt: skip
DAY = Partition.parse("dt", "2026-11-25")


def path_source(spark, root: Path, n: int = 20) -> None:
    rows = [(f"u{i % 5}", f"p{i}@mail.com", float(i), DAY.value) for i in range(n)]
    spark.createDataFrame(rows, DDL).write.mode("overwrite").partitionBy("dt").parquet(str(root))


def make(raw: Path, sink: Path, **over):
    return spec_from_dict(spec_data(COLUMNS, source={"path": str(raw)}, sink={"path": str(sink)},
                                    **over))  # fmt: skip


def test_a_held_partition_refuses_a_second_run_naming_the_holder(spark, warehouse, key_env):
    name = f"l{uuid.uuid4().hex[:8]}"
    raw, sink = warehouse / name / "raw", warehouse / name / "anon"
    path_source(spark, raw)
    spec = make(raw, sink)
    with sink_lease(spec.sink, DAY, str(warehouse), "20261125T000000Z-feedbeef"):
        with pytest.raises(PartitionBusyError, match=r"being processed by run "
                           r"20261125T000000Z-feedbeef \(started 0 min \d+ s ago") as err:  # fmt: skip
            run_partition(spec, DAY.value)
        assert err.value.exit_code == 7
        # refused before anything was read or written (the sink holds only the lease)
        assert [p.name for p in sink.iterdir()] == ["_leases"]
    assert run_partition(spec, DAY.value).status == "published"


def test_a_release_of_a_held_partition_is_refused_before_any_charge(spark, warehouse, key_env):
    from pipelines.dp.ledger import Ledger
    from pipelines.dp.run import release_partition

    name = f"l{uuid.uuid4().hex[:8]}"
    raw = warehouse / name / "raw"
    path_source(spark, raw)
    rel = {"sink": {"path": str(warehouse / name / "rel")}, "group_by": ["email"],
           "bounds": {"max_groups_per_unit": 1}, "metrics": {"n": {"kind": "count"}},
           "budget": {"epsilon": 1.0}}  # fmt: skip
    spec = make(raw, warehouse / name / "anon", name=name, releases={"r": rel},
                dp_budget={"epsilon": 3.0})  # fmt: skip
    with sink_lease(spec.releases["r"].sink, DAY, str(warehouse), "held"), \
            pytest.raises(PartitionBusyError, match="run held"):  # fmt: skip
        release_partition(spec, DAY.value, warehouse=str(warehouse))
    assert Ledger(warehouse / "_dp" / "ledger.sqlite").history(name) == []


HOLD = """
import sys, time
from pipelines.partition import Partition
from pipelines.spec import load_spec
from pipelines.storage.lease import sink_lease
spec = load_spec(sys.argv[1])
with sink_lease(spec.sink, Partition.parse("dt", "2026-11-25"), sys.argv[2], "doomed"):
    print("held", flush=True)
    time.sleep(600)
"""


SINKS = {
    "path": lambda name: {"path": f"{name}/anon"},
    "hive": lambda name: {"table": f"lease.{name}"},
    "iceberg": lambda name: {"table": f"lease.{name}", "format": "iceberg"},
    "delta": lambda name: {"path": f"{name}/anon_delta", "format": "delta"},
}


@pytest.mark.parametrize("backend", SINKS)
def test_a_dead_holders_lease_is_taken_over_at_once(spark, warehouse, key_env, tmp_path, backend):
    """A process killed (SIGKILL) while holding a partition's lease blocks nobody:
    on every backend, where the lease lives beside the table's control data."""
    name = f"l{uuid.uuid4().hex[:8]}"
    raw = warehouse / name / "raw"
    path_source(spark, raw)
    spec = spec_from_dict(spec_data(COLUMNS, source={"path": str(raw)}, sink=SINKS[backend](name)))
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_defaults=True)))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(spec_file), str(warehouse)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(PartitionBusyError, match="run doomed"):
            run_partition(spec, DAY.value)
        os.kill(holder.pid, signal.SIGKILL)  # dies holding the lease
        holder.wait(timeout=30)
        assert run_partition(spec, DAY.value).status == "published"  # no timeout to wait out
    finally:
        if holder.poll() is None:
            holder.kill()


def test_two_runs_started_together_one_publishes_the_other_exits_7(spark, key_env, tmp_path):
    """Both used to exit 0 and report published."""
    wh = tmp_path / "wh"
    raw, sink = tmp_path / "raw", tmp_path / "anon"
    path_source(spark, raw, 40)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(make(raw, sink).model_dump(mode="json", exclude_defaults=True)))
    env = {**os.environ, "ANON_TEST_KEY": TEST_KEY, "PYSPARK_PYTHON": sys.executable}
    cmd = [str(Path(sys.executable).with_name("anonymize")), "run", str(spec_file), "--partition",
           DAY.value, "--warehouse", str(wh), "--master", "local[1]", "--conf", "spark.ui.enabled=false"]  # fmt: skip
    procs = [subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    done = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 7], [d[1][-1500:] for d in done]
    loser = next(d for p, d in zip(procs, done, strict=True) if p.returncode == 7)
    assert "is being processed by run" in loser[1] and "Traceback" not in loser[1]
    manifest = json.loads((sink / "dt=2026-11-25" / "_manifest.json").read_text())
    assert manifest["status"] == "published" and manifest["input_rows"] == 40


KEY_A, KEY_B = "manual__a", "manual__b"


def test_versions_are_kept_by_publish_order_and_named_by_their_run(spark, warehouse, key_env):
    """Run A starts first and publishes last: the version it replaced is B's, kept under
    B's run id; the next publish keeps A's (retention used to sort by run id)."""
    name = f"l{uuid.uuid4().hex[:8]}"
    raw, sink = warehouse / name / "raw", warehouse / name / "anon"
    path_source(spark, raw)
    spec = make(raw, sink)
    a = run_partition(spec, DAY.value, step="desensitize", run_key=KEY_A)
    time.sleep(1.1)  # run ids sort by start second
    b = run_partition(spec, DAY.value, step="desensitize", run_key=KEY_B)
    assert a.run_id < b.run_id
    for key in (KEY_B, KEY_A):
        run_partition(spec, DAY.value, step="validate", run_key=key)
        run_partition(spec, DAY.value, step="publish", run_key=key)
    trash = sink / "_trash" / "dt=2026-11-25"
    assert [p.name for p in trash.iterdir()] == [b.run_id]  # the version A replaced: B's
    c = run_partition(spec, DAY.value)
    assert [p.name for p in trash.iterdir()] == [a.run_id]  # the version C replaced: A's
    assert json.loads((sink / "dt=2026-11-25" / "_manifest.json").read_text())["run_id"] == c.run_id


def test_catalog_versions_are_kept_by_publish_order(spark, key_env):
    spark.sql("CREATE DATABASE IF NOT EXISTS rawl")
    spark.sql("DROP TABLE IF EXISTS rawl.order_t")
    spark.sql("DROP TABLE IF EXISTS anonl.order_t")
    rows = [(f"u{i % 5}", f"p{i}@mail.com", float(i), DAY.value) for i in range(10)]
    spark.createDataFrame(rows, DDL).write.partitionBy("dt").saveAsTable("rawl.order_t")
    spec = spec_from_dict(spec_data(COLUMNS, source={"table": "rawl.order_t"},
                                    sink={"table": "anonl.order_t"}))  # fmt: skip
    a = run_partition(spec, DAY.value, step="desensitize", run_key=KEY_A)
    time.sleep(1.1)
    b = run_partition(spec, DAY.value, step="desensitize", run_key=KEY_B)
    for key in (KEY_B, KEY_A):
        run_partition(spec, DAY.value, step="validate", run_key=key)
        done = run_partition(spec, DAY.value, step="publish", run_key=key)
    versions = Path(done.published).parent
    assert sorted(p.name for p in versions.iterdir()) == sorted([a.run_id, b.run_id])
    c = run_partition(spec, DAY.value)
    assert sorted(p.name for p in versions.iterdir()) == sorted([a.run_id, c.run_id])
