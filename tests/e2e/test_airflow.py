"""The demo DAG run by Airflow 3 itself (``dag.test()``) against local Spark: every task
is a real ``spark-submit`` of ``jobs/*.py`` with the package zip, the metadata
database is SQLite in a temp dir, and the warehouse is a temp dir too.

The demo spec reads and publishes path tables here (so the DAG starts with its
``wait_for_source`` sensor): a Hive catalog table would cost every task a few seconds
of metastore start-up, and catalog publishing has tests of its own.

One day is published with its manifest and gate results; a backfill over two days
publishes both partitions; re-running one day republishes that day only, and its
DP release is republished without a second charge in the budget ledger.

Backfill here means one ``dag.test()`` per logical date, as ``airflow backfill
create`` runs them one after another (``max_active_runs: 1``); the scheduler and API
server that a real backfill needs are not started by the test suite.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipelines.packaging import build_zip
from tests.conftest import TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAYS = ("2026-11-01", "2026-11-02")
RELEASE = {
    "sink": {"path": "anon/customer_postal_counts"},
    "group_by": ["postal_code"],
    "bounds": {"max_groups_per_unit": 1, "max_rows_per_group": 1},
    "metrics": {"customers": {"kind": "count"}},
    "budget": {"epsilon": 0.5},
}
RUN_DAG = """
import datetime as dt, json, sys
sys.path.insert(0, {dags!r})
import anonymize_pipelines as m
dag = m.build_all()["anon__demo"]
day = dt.datetime.fromisoformat(sys.argv[1]).replace(tzinfo=dt.UTC)
dr = dag.test(logical_date=day, mark_success_pattern=sys.argv[2] if len(sys.argv) > 2 else None)
print(json.dumps({{"state": str(dr.state), "run_id": dr.run_id,
                  "tasks": {{t.task_id: str(t.state) for t in dr.get_task_instances()}}}}))
"""
GENERATE = """
import sys
from pathlib import Path
import pyarrow as pa, pyarrow.parquet as pq
from pipelines.demo import raw_events
for day, events in raw_events(600, 3).items():
    (Path(sys.argv[1]) / "raw" / f"dt={day}").mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(events, preserve_index=False),
                   Path(sys.argv[1]) / "raw" / f"dt={day}" / "part-0.parquet",
                   coerce_timestamps="us")
"""


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """Environment for Airflow runs of the demo DAG: (run(day, skip=None), warehouse)."""
    pytest.importorskip("airflow.providers.apache.spark", reason="the Airflow Spark provider")
    if not (BIN / "spark-submit").exists():
        pytest.skip("spark-submit is not installed next to this Python (pip pyspark ships it)")
    work = tmp_path_factory.mktemp("airflow_e2e")
    wh, specs = work / "wh", work / "specs"
    specs.mkdir()
    # The shipped demo spec with a DP release of its own (private keys) and without
    # k-anonymity (its own tests cover it; here it would only add seconds to each run).
    demo = yaml.safe_load((ROOT / "conf" / "pipelines" / "demo.yaml").read_text())
    demo.pop("k_anonymity")
    demo |= {"source": {"path": "raw"}, "sink": {"path": "anon/customer_events"}}
    demo |= {"releases": {"postal": RELEASE}, "dp_budget": {"epsilon": 5, "window": 30},
             # No retry: a failure fails the run instead of waiting. A quicker JVM start
             # (C1 only, no UI) for these tiny partitions: about 1.7 s less per task.
             "schedule": {"retries": 0, "spark_conf": {
                 "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2",
                 "spark.driver.extraJavaOptions": f"-XX:TieredStopAtLevel=1 "
                                                  f"-Dderby.system.home={wh}"}}}
    (specs / "demo.yaml").write_text(yaml.safe_dump(demo))
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # spark-submit
        "PYSPARK_PYTHON": sys.executable,
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "ANONYMIZE_SPECS": str(specs),
        "ANONYMIZE_WAREHOUSE": str(wh),
        "ANONYMIZE_PY_FILES": str(build_zip(work / "dist")),
        "ANONYMIZE_DEMO_KEY": TEST_KEY,
    }

    def call(args: list[str], log: str) -> str:
        proc = subprocess.run(args, env=env, cwd=work, capture_output=True, text=True,
                              timeout=900)  # fmt: skip
        (work / log).write_text(proc.stdout + proc.stderr)
        assert proc.returncode == 0, f"{args[:3]} failed; see {work / log}:\n{proc.stderr[-3000:]}"
        return proc.stdout

    call([str(BIN / "airflow"), "db", "migrate"], "migrate.log")
    call([sys.executable, "-c", GENERATE, str(wh)], "generate.log")
    script = work / "run_dag.py"
    script.write_text(RUN_DAG.format(dags=str(ROOT / "dags")))
    runs = iter(range(100))

    def run(day: str, skip: str | None = None) -> dict:
        args = [sys.executable, str(script), day, *([skip] if skip else [])]
        out = call(args, f"dag_{day}_{next(runs)}.log")
        return json.loads(out.strip().splitlines()[-1])

    return run, wh


def published(wh: Path, table: str, day: str) -> Path:
    """The published partition's directory (a path table's, swapped in by the publish)."""
    return wh / "anon" / table / f"dt={day}"


def run_of(part: Path) -> str:
    return json.loads((part / "_manifest.json").read_text())["run_id"]


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir()) if p.is_file()}  # fmt: skip


def rows(directory: Path) -> list[tuple]:
    table = pq.read_table([str(p) for p in sorted(directory.glob("*.parquet"))])
    return sorted(map(tuple, (tuple(r.values()) for r in table.to_pylist())))


def test_dag_test_publishes_one_partition_with_manifest_and_gates(airflow):
    run, wh = airflow
    result = run(DAYS[0], skip="release__.*")  # the release is the next test's subject
    assert result["state"] == "success", result
    assert result["tasks"] == {"desensitize": "success", "validate": "success",
                               "publish": "success", "release__postal": "success",
                               "wait_for_source": "success"}  # fmt: skip
    part = published(wh, "customer_events", DAYS[0])
    manifest = json.loads((part / "_manifest.json").read_text())
    assert manifest["status"] == "published" and manifest["input_rows"] == 200
    assert manifest["output_rows"] == 200 and len(rows(part)) == 200
    assert manifest["quality"]["input"]["passed"] and manifest["quality"]["output"]["passed"]
    assert "national_id" not in manifest["output_schema"]
    assert set(manifest["timings"]) >= {"desensitize_and_stage", "output_gate", "manifest"}
    # The three tasks were one run: the Airflow run id points at the published run id.
    [pointer] = (wh / "anon" / "customer_events" / "_runs" / f"dt={DAYS[0]}").glob("*.json")
    record = json.loads(pointer.read_text())
    assert (record["run_key"], record["run_id"]) == (result["run_id"], manifest["run_id"])
    assert Path(manifest["quality"]["data_docs"]).is_file()


def test_backfill_publishes_each_day_and_a_rerun_changes_nothing_else(airflow):
    from pipelines.dp.ledger import Ledger

    run, wh = airflow
    if not (wh / "anon" / "customer_events" / "_manifests" / f"dt={DAYS[0]}").is_dir():
        assert run(DAYS[0], skip="release__.*")["state"] == "success"
    assert run(DAYS[1])["state"] == "success"
    parts = {day: published(wh, "customer_events", day) for day in DAYS}
    assert [len(rows(p)) for p in parts.values()] == [200, 200]
    before = {day: digest(p) for day, p in parts.items()}
    rows_before, run_before = rows(parts[DAYS[1]]), run_of(parts[DAYS[1]])
    release_before = digest(published(wh, "customer_postal_counts", DAYS[1]))
    ledger = Ledger(f"sqlite:///{wh / '_dp' / 'ledger.sqlite'}")
    charges = [c for c in ledger.history("demo") if c.partition == DAYS[1]]
    assert [c.status for c in charges] == ["spent"]

    again = run(DAYS[1])  # a new Airflow run of the same day, as a cleared backfill makes
    assert again["state"] == "success", again
    after = published(wh, "customer_events", DAYS[1])
    assert run_of(after) != run_before  # republished under a new run id ...
    assert rows(after) == rows_before  # ... with the same rows (keyed, deterministic)
    assert digest(parts[DAYS[0]]) == before[DAYS[0]]  # the other day untouched
    # The completed DP release was republished as stored, not drawn or charged again.
    assert digest(published(wh, "customer_postal_counts", DAYS[1])) == release_before
    charges = [c for c in ledger.history("demo") if c.partition == DAYS[1]]
    assert [c.status for c in charges] == ["spent"]
