"""The DAG factory: parses fast without Spark, one DAG per spec with the expected
task graph, doc_md from the spec, and no retry on exits that need a person."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"


def write_specs(directory: Path, n: int) -> None:
    """n path-source specs, each with a DP release (and the demo columns)."""
    demo = yaml.safe_load((ROOT / "conf" / "pipelines" / "demo.yaml").read_text())
    for i in range(n):
        spec = {**demo, "name": f"p{i:02d}", "source": {"path": f"raw/p{i}"},
                "sink": {"path": f"anon/p{i}"},
                "releases": {"by_postal": {
                    "sink": {"path": f"rel/p{i}"}, "group_by": ["postal_code"],
                    "bounds": {"max_groups_per_unit": 1},
                    "metrics": {"n": {"kind": "count"}}, "budget": {"epsilon": 1.0}}},
                "dp_budget": {"epsilon": 10}}  # fmt: skip
        (directory / f"p{i:02d}.yaml").write_text(yaml.safe_dump(spec))


def run_python(code: str, tmp_path: Path) -> dict:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "PYTHONPATH": str(DAGS)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=300, check=True).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def test_twenty_specs_parse_fast_without_spark(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    write_specs(specs, 20)
    result = run_python(f"""
import json, sys, time
import anonymize_pipelines as m
from pathlib import Path
t = time.perf_counter()
dags = m.build_all(Path({str(specs)!r}))
took = time.perf_counter() - t
d = dags["anon__p03"]
print(json.dumps({{"n": len(dags), "seconds": took, "pyspark": "pyspark" in sys.modules,
                  "graph": {{t.task_id: sorted(t.downstream_task_ids) for t in d.tasks}},
                  "doc": d.doc_md, "retries": d.default_args["retries"]}}))
""", tmp_path)  # fmt: skip
    assert result["n"] == 20 and not result["pyspark"]
    assert result["seconds"] < 1.0, result["seconds"]  # the specs' share of parse time
    assert result["graph"] == {"wait_for_source": ["desensitize"], "desensitize": ["validate"],
                               "validate": ["publish"], "publish": ["release__by_postal"],
                               "release__by_postal": []}  # fmt: skip
    assert "**Dropped**: national_id" in result["doc"]
    assert "DP release `by_postal`" in result["doc"] and "DP budget" in result["doc"]
    assert result["retries"] == 2


def test_dagbag_has_every_spec_without_import_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    result = run_python(f"""
import json
try:  # the import path moved during 3.x
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder={str(DAGS)!r})
print(json.dumps({{"errors": {{k: str(v)[:300] for k, v in bag.import_errors.items()}},
                  "dags": sorted(bag.dag_ids),
                  "tasks": {{d: sorted(t.task_id for t in bag.dags[d].tasks) for d in bag.dag_ids}},
                  "outlets": [str(o.uri) for o in bag.dags["anon__demo"].get_task("publish").outlets]}}))
""", tmp_path)  # fmt: skip
    specs = sorted(yaml.safe_load(p.read_text())["name"]
                   for p in (ROOT / "conf" / "pipelines").glob("*.yaml"))  # fmt: skip
    assert result["errors"] == {}
    assert result["dags"] == [f"anon__{n}" for n in specs]
    # A catalog source has no file sensor (the job exits 4 if the partition is missing).
    assert result["tasks"]["anon__demo"] == ["desensitize", "publish", "release__by_region",
                                            "validate"]
    assert result["outlets"] == ["anonymize://demo/anon.customer_events"]


def test_gate_and_budget_failures_are_not_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.syspath_prepend(str(DAGS))
    pytest.importorskip("airflow.providers.apache.spark", reason="the Airflow Spark provider")
    import anonymize_pipelines as m
    from airflow.exceptions import AirflowException
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.spec import load_spec

    spec = load_spec(ROOT / "conf" / "pipelines" / "demo.yaml")
    task = m._spark_task(spec, ROOT / "conf" / "pipelines" / "demo.yaml", "anonymize",
                         "anonymize.py", [])  # fmt: skip
    assert "--warehouse" in task.application_args and task.py_files.endswith(".zip")
    for code, expected in ((5, AirflowFailException), (6, AirflowFailException),
                           (1, AirflowException), (4, AirflowException)):  # fmt: skip
        def boom(self, context, code=code):  # noqa: ANN001, ANN202
            raise AirflowException(f"Cannot execute: spark-submit ... Error code is: {code}.")

        monkeypatch.setattr(SparkSubmitOperator, "execute", boom)
        with pytest.raises(expected) as err:
            task.execute({})
        assert (type(err.value) is AirflowFailException) == (code in (5, 6))


def test_failure_callback_line_names_the_run_and_the_quarantine(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.syspath_prepend(str(DAGS))
    import anonymize_pipelines as m

    from pipelines.spec import load_spec
    from pipelines.storage.layout import run_pointer

    monkeypatch.setattr(m, "WAREHOUSE", str(tmp_path))
    spec = load_spec(ROOT / "conf" / "pipelines" / "demo.yaml")  # sink anon.customer_events
    airflow_run = "scheduled__2026-11-25T00:00:00+00:00"

    class TI:
        task_id, try_number = "validate", 1

    context = {"task_instance": TI(), "ds": "2026-11-25", "run_id": airflow_run}
    line = m.failure_summary(spec, context)
    assert "run_id=- " in line and "dag=anon__demo task=validate partition=2026-11-25" in line
    root = tmp_path / "anon.db" / "customer_events"
    pointer = run_pointer(root, "dt=2026-11-25", airflow_run)
    pointer.parent.mkdir(parents=True)
    pointer.write_text(json.dumps({"run_id": "20261125T010203Z-abcd1234"}))
    assert "run_id=20261125T010203Z-abcd1234" in m.failure_summary(spec, context)
    assert f"manifests {root / '_manifests' / 'dt=2026-11-25'}" in m.failure_summary(spec, context)
    quarantined = root / "_quarantine" / "dt=2026-11-25" / "20261125T010203Z-abcd1234"
    quarantined.mkdir(parents=True)
    assert f"quarantine {quarantined}" in m.failure_summary(spec, context)
    assert "\n" not in m.failure_summary(spec, context)


def test_a_table_format_spec_ships_its_jars_and_extensions_to_spark_submit(tmp_path, monkeypatch):
    """The cluster gets the Iceberg jars from the Airflow machine (spark.jars is what
    --jars sets) and the SQL extensions; a parquet spec gets neither; the spec's own
    spark_conf still wins."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.syspath_prepend(str(DAGS))
    import anonymize_pipelines as m

    from pipelines import jars
    from pipelines.spec import load_spec, spec_from_dict

    demo = load_spec(ROOT / "conf" / "pipelines" / "demo.yaml")
    data = demo.model_dump(mode="json", exclude_none=True)
    data["sink"] = {"format": "iceberg", "table": "anon.customer_events"}
    data["schedule"]["spark_conf"] = {"spark.executor.memory": "2g"}
    spec = spec_from_dict(data)
    task = m._spark_task(spec, tmp_path / "s.yaml", "anonymize", "anonymize.py", [])
    shipped = task.conf["spark.jars"].split(",")
    assert [Path(p).name for p in shipped] == [j.filename for j in jars.JARS if j.table_format == "iceberg"]
    assert task.conf["spark.sql.extensions"] == jars.EXTENSIONS["iceberg"]
    assert task.conf["spark.executor.memory"] == "2g"
    plain = m._spark_task(demo, tmp_path / "d.yaml", "anonymize", "anonymize.py", [])
    assert "spark.jars" not in plain.conf


def test_the_source_sensor_pokes_with_airflow_context_and_sees_the_partition(tmp_path, monkeypatch):
    """Airflow passes context variables by parameter name: the sensor's callable
    once had a parameter named `ds` and failed every run ("reserved" key)."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.syspath_prepend(str(DAGS))
    pytest.importorskip("airflow.providers.apache.spark", reason="the Airflow Spark provider")
    (tmp_path / "specs").mkdir()
    write_specs(tmp_path / "specs", 1)
    import anonymize_pipelines as m

    monkeypatch.setattr(m, "WAREHOUSE", str(tmp_path / "wh"))  # not the checkout's ./warehouse

    [dag] = m.build_all(tmp_path / "specs").values()
    sensor = dag.get_task("wait_for_source")
    source, column, _ = sensor.op_args
    context = {"ds": "2026-11-25", "logical_date": None, "params": {}}
    assert source.startswith(str(tmp_path / "wh"))
    sensor.op_args = [source, column, "2026-11-25"]  # as rendered from "{{ ds }}"
    assert not bool(sensor.poke(context))
    (Path(source) / "dt=2026-11-25").mkdir(parents=True)
    assert bool(sensor.poke(context))
