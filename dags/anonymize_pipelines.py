"""One Airflow DAG per pipeline spec in ``conf/pipelines/`` (``anon__<name>``).

Parse-time work is only: read the YAML specs next to this file with the spec
models (pydantic and yaml; no Spark, no network, no Airflow Variables) and build
the DAGs. With ``get_parsing_context()`` a task process builds only its own DAG.

Tasks, one partition per run, keyed by the run's data interval (``ds``); the
three ``jobs/anonymize.py`` steps are tied together by the Airflow run id
(``--run-key``), and each is idempotent (``anonymize run --help``):

* ``wait_for_source``: the source partition exists (path tables; a catalog
  source is checked by the job itself, which exits 4 if it is missing);
* ``desensitize``: input gate, desensitize, k-anonymize where configured, stage;
* ``validate``: the output gate on the staged partition (quarantine on failure);
* ``publish``: the atomic publish; the published table is this task's Asset;
* ``release__<name>``: ``jobs/release.py --release <name>`` per DP release.

Spark connection ``spark_conn_id`` (``spark_default``: local unless the connection
points at a cluster); the package goes to executors as ``dist/pipelines-<v>.zip``
(``anonymize build-zip``). Transient failures are retried with exponential
backoff; a failed gate (exit 5), an exceeded budget (exit 6) or a bad spec/key
(exit 3) fail at once — they need a person. A failure callback logs one line with
the run id and where to look.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Asset, get_parsing_context
from airflow.sdk.exceptions import AirflowFailException

from pipelines import __version__, jars
from pipelines.desensitize.registry import label
from pipelines.partition import Partition
from pipelines.spec.loader import load_spec
from pipelines.spec.models import PipelineSpec
from pipelines.storage import layout

ROOT = Path(__file__).resolve().parents[1]
# Deployment settings come from the environment at parse time (no Airflow Variable,
# no network): the specs directory, the warehouse root every job and sensor gets
# explicitly, and the --py-files zip (`anonymize build-zip`).
SPECS = Path(os.environ.get("ANONYMIZE_SPECS", ROOT / "conf" / "pipelines"))
WAREHOUSE = os.environ.get("ANONYMIZE_WAREHOUSE", str(ROOT / "warehouse"))
PY_FILES = os.environ.get("ANONYMIZE_PY_FILES", str(ROOT / "dist" / f"pipelines-{__version__}.zip"))
JOBS = ROOT / "jobs"
NO_RETRY_EXIT_CODES = {3: "bad spec or key", 5: "quality gate failed", 6: "DP budget exceeded"}
log = logging.getLogger(__name__)


def describe(spec: PipelineSpec) -> str:
    """The DAG's doc_md: what each column becomes, k-anonymity and DP budgets.

    Args:
        spec: A validated spec.

    Returns:
        Markdown.
    """
    by_label: dict[str, list[str]] = {}
    for column, action in spec.columns.items():
        by_label.setdefault(label(action), []).append(column)
    lines = [
        f"## {spec.name}",
        "",
        spec.description or "",
        "",
        f"Source `{spec.source.display}` → published `{spec.sink.display}`, partition "
        f"`{spec.partition_column}`, privacy unit `{spec.privacy_unit}`.",
        "",
    ]
    for name, columns in sorted(by_label.items()):
        lines.append(f"- **{name}**: {', '.join(sorted(columns))}")
    ka = spec.k_anonymity
    if ka is not None:
        extra = []
        if ka.l_diversity:
            extra.append(f"{ka.l_diversity.kind} l={ka.l_diversity.l}")
        if ka.t_closeness:
            extra.append(f"t={ka.t_closeness.t} ({ka.t_closeness.distance})")
        extra.append(f"window {ka.window}")
        qis = ", ".join(ka.quasi_identifiers)
        lines.append(f"- **k-anonymity**: k={ka.k} over {qis}; {', '.join(extra)}")
    for name, rel in spec.releases.items():
        b = rel.budget
        if b.rho is not None:
            budget = f"ρ={b.rho}"
        elif b.zcdp:
            budget = f"(ε={b.epsilon}, δ={b.delta}) Gaussian"
        else:
            budget = f"ε={b.epsilon}"
        keys = "private" if rel.keys == "private" else "public"
        lines.append(
            f"- **DP release `{name}`**: by {', '.join(rel.group_by)}, "
            f"{', '.join(rel.metrics)}; {budget}; {keys} keys"
        )
    if spec.dp_budget is not None:
        p = spec.dp_budget
        total = f"ε={p.epsilon}" if p.epsilon is not None else f"ρ={p.rho}"
        lines.append(f"- **DP budget**: {total}, δ={p.delta} per {p.window} days ({p.unit})")
    return "\n".join(lines)


def _source_ready(path: str, partition_column: str, day: str) -> bool:
    # Not named `ds`: Airflow passes context variables by parameter name, and refuses a
    # positional argument whose parameter is named like one.
    return (Path(path) / Partition.parse(partition_column, day).dirname).is_dir()


def _on_failure(spec: PipelineSpec, context: Mapping[str, Any]) -> None:
    log.error("%s", failure_summary(spec, context))


def failure_summary(spec: PipelineSpec, context: Mapping[str, Any]) -> str:
    """One line: DAG, task, partition, Airflow and pipeline run ids, where to look.

    Args:
        spec: The DAG's spec.
        context: The failed task's Airflow context.

    Returns:
        The line.
    """
    ti = context.get("task_instance")
    ds, airflow_run = context.get("ds"), context.get("run_id") or ""
    root = layout.control_dir(Path(WAREHOUSE), spec.sink)
    try:
        part = Partition.parse(spec.partition_column, ds or "").dirname
    except ValueError:  # SpecError: a callback reports; it never fails itself
        part = f"{spec.partition_column}={ds}"
    try:
        run_id = layout.pointed_run_id(layout.run_pointer(root, part, airflow_run)) or "-"
    except (OSError, ValueError, KeyError):  # a callback reports; it never fails itself
        run_id = "-"
    base = layout.quarantine_base(root, spec.quarantine_root(Path(WAREHOUSE)))
    quarantine = layout.quarantine_dir(base, part, run_id)
    where = (f"quarantine {quarantine} ({layout.GATE_NOTE})" if quarantine.is_dir()
             else f"manifests {root / layout.MANIFESTS / part}")  # fmt: skip
    return (
        f"anonymize failure: dag=anon__{spec.name} task={getattr(ti, 'task_id', '?')} "
        f"partition={ds} airflow_run={airflow_run} run_id={run_id} "
        f"try={getattr(ti, 'try_number', '?')}; see the task log and the {where}"
    )


class PipelineSparkSubmit(SparkSubmitOperator):
    """spark-submit that fails without retry on exits that need a person."""

    def execute(self, context: Mapping[str, Any]) -> Any:
        """Run spark-submit; exits 3, 5 and 6 become AirflowFailException (no retry).

        Args:
            context: The task's Airflow context.

        Returns:
            What ``SparkSubmitOperator.execute`` returns (pushed to XCom by Airflow).

        Raises:
            AirflowFailException: spark-submit exited 3 (bad spec or key), 5 (quality gate
                failed) or 6 (DP budget exceeded): the task fails without retry.
            Exception: Any other failure, re-raised unchanged so Airflow retries it.
        """
        try:
            return super().execute(context)
        except Exception as exc:
            match = re.search(r"Error code is: (\d+)", str(exc))
            code = int(match.group(1)) if match else None
            if code in NO_RETRY_EXIT_CODES:
                raise AirflowFailException(
                    f"{self.task_id}: exit {code} ({NO_RETRY_EXIT_CODES[code]}); not retried"
                ) from exc
            raise


def _spark_task(spec: PipelineSpec, spec_file: Path, task_id: str, job: str, args: list[str],
                outlets: list | None = None) -> PipelineSparkSubmit:  # fmt: skip
    return PipelineSparkSubmit(
        task_id=task_id,
        application=str(JOBS / job),
        application_args=[
            str(spec_file),
            "--partition",
            "{{ ds }}",
            "--warehouse",
            WAREHOUSE,
            *args,
        ],  # fmt: skip
        py_files=PY_FILES,
        conn_id=spec.schedule.spark_conn_id,
        # Iceberg/Delta jars from this machine, shipped to the cluster (spark.jars is
        # --jars); the spec's own spark_conf comes last.
        conf={**jars.submit_conf(spec.table_formats(), verify=False),
              **spec.schedule.spark_conf},  # fmt: skip
        name=f"anon__{spec.name}__{task_id}",
        outlets=outlets or [],
    )


def build_dag(spec: PipelineSpec, spec_file: Path) -> DAG:
    """The DAG of one spec.

    Args:
        spec: The validated spec (its schedule, source, sink and releases).
        spec_file: The spec's YAML file, passed to the jobs.

    Returns:
        The DAG ``anon__<name>``: ``wait_for_source`` (path sources only), then
        ``desensitize``, ``validate`` and ``publish``, then one ``release__<name>`` task
        per DP release.
    """
    from airflow.providers.standard.sensors.python import PythonSensor

    s = spec.schedule
    dag = DAG(
        dag_id=f"anon__{spec.name}",
        schedule=s.cron,
        start_date=dt.datetime.fromisoformat(s.start_date).replace(tzinfo=dt.UTC),
        catchup=s.catchup,
        max_active_runs=s.max_active_runs,
        doc_md=describe(spec),
        tags=["anonymize", spec.name],
        default_args={
            "owner": s.owner,
            "retries": s.retries,
            "retry_delay": dt.timedelta(minutes=s.retry_delay_minutes),
            "retry_exponential_backoff": True,
            "on_failure_callback": functools.partial(_on_failure, spec),
        },
    )
    with dag:
        tasks = []
        if spec.source.path is not None and spec.source.format in ("parquet", "csv"):
            source = str(layout.table_dir(Path(WAREHOUSE), spec.source.path, None))
            tasks.append(PythonSensor(
                task_id="wait_for_source",
                python_callable=_source_ready,
                op_args=[source, spec.partition_column, "{{ ds }}"],
                mode="reschedule",
                poke_interval=300,
                timeout=s.source_timeout_minutes * 60,
                retries=0,
            ))  # fmt: skip
        # One Airflow run's steps share its run id as --run-key: desensitize stages a
        # fresh run under it, validate and publish continue that staged run.
        for step in ("desensitize", "validate", "publish"):
            outlets = [Asset(f"anonymize://{spec.name}/{spec.sink.display}")]
            tasks.append(_spark_task(spec, spec_file, step, "anonymize.py",
                                     ["--step", step, "--run-key", "{{ run_id }}"],
                                     outlets if step == "publish" else None))  # fmt: skip
        for i, t in enumerate(tasks[1:], start=1):
            tasks[i - 1] >> t
        for name in spec.releases:
            tasks[-1] >> _spark_task(spec, spec_file, f"release__{name}", "release.py",
                                     ["--release", name])  # fmt: skip
    return dag


def build_all(specs_dir: Path = SPECS) -> dict[str, DAG]:
    """Every spec's DAG (only the running task's DAG inside a task process).

    An invalid spec raises SpecError (from the loader) at parse time.

    Args:
        specs_dir: The directory of spec files (``*.yaml``).

    Returns:
        DAG id -> DAG, for every spec (or just the running task's).
    """
    wanted = get_parsing_context().dag_id
    dags = {}
    for spec_file in sorted(specs_dir.glob("*.yaml")):
        spec = load_spec(spec_file)
        dag_id = f"anon__{spec.name}"
        if wanted is not None and wanted != dag_id:
            continue
        dags[dag_id] = build_dag(spec, spec_file)
    return dags


globals().update(build_all())
