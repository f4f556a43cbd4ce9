"""One run of one partition: plan, read, desensitize, stage, publish atomically.

Order matters for failing closed and early:

1. load the spec and parse the partition (bad spec: nothing touched);
2. resolve every key (missing key: no data read);
3. check the source exists and its schema against the spec (undeclared columns:
   nothing written);
4. desensitize in one projection and write to a run-scoped staging location;
5. write the manifest into the staged partition and publish it atomically.

Any failure after staging began discards the staged data; the published table is
left exactly as it was.

Steps 1–4 are the ``desensitize`` step, the output gate on the staged data is
``validate`` and step 5 is ``publish``: one process runs all three (``step="all"``),
or an orchestrator runs them as separate tasks tied together by a run key (see
:func:`run_partition`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import __version__
from pipelines.errors import PublishError, QualityGateFailed, SpecError
from pipelines.keys import resolve_keys
from pipelines.layout import pointed_run_id, run_pointer
from pipelines.spec import load_spec, spec_hash
from pipelines.spec.models import PipelineSpec

if TYPE_CHECKING:
    from pipelines.quality.gate import GateResult

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class RunResult:
    """What one run did; also the CLI's ``--json`` payload."""

    run_id: str
    pipeline: str
    partition: str
    status: str
    input_rows: int
    output_rows: int
    published: str
    manifest: dict[str, Any] = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary without the full manifest."""
        d = asdict(self)
        d.pop("manifest")
        d["timings"] = self.manifest.get("timings", {})
        return d


@functools.cache
def code_version() -> str:
    """Package version, plus the git commit when running from a checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return f"{__version__}+g{sha}"
    except (OSError, subprocess.SubprocessError):
        return __version__


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _describe_actions(spec: PipelineSpec, undeclared: list[str]) -> dict[str, Any]:
    cols: dict[str, Any] = {
        name: action.model_dump(mode="json") for name, action in spec.columns.items()
    }
    for name in undeclared:
        cols[name] = {"kind": "drop", "reason": "undeclared"}
    return cols


STATE = "_stage.json"  # the staged run's state, beside its data files (Spark skips `_` files)
STEPS = ("all", "desensitize", "validate", "publish")
_RUN_KEY = re.compile(r"[A-Za-z0-9_.:+-]{1,200}")


@dataclass
class _Partition:
    """What every step of one partition's run shares: spec, session, tables, timings."""

    spec: PipelineSpec
    partition: str
    spark: Any
    warehouse: Path
    source: Any
    sink: Any
    progress: Progress
    timings: dict[str, float] = field(default_factory=dict)
    mark: float = field(default_factory=time.perf_counter)

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.mark, 3)
        self.mark = now

    def fail_gate(
        self, state: dict[str, Any], gate: GateResult, staged: Path | None
    ) -> QualityGateFailed:
        """Quarantine the staged data with the gate results; the error to raise."""
        note = {
            **state["identity"],
            "quarantined_at": _now(),
            "failed_stage": gate.stage,
            "gates": {**state["gates"], gate.stage: gate.to_dict()},
        }
        run_id = state["identity"]["run_id"]
        where = self.sink.quarantine(self.spark, staged, self.partition, run_id, note)
        log.error("run %s: partition %s failed the %s gate", run_id, self.partition, gate.stage)
        return QualityGateFailed(
            f"partition {self.partition}: {gate.stage} gate failed: {gate.describe_failures()}; "
            f"nothing published; gate result and data in {where}"
        )

    def staged(self, run_id: str) -> Path:
        return self.sink.staging_dir(self.spark, run_id, self.partition)

    @contextlib.contextmanager
    def discard_on_failure(self, staged: Path, run_id: str) -> Iterator[None]:
        """A failure in the block discards the staged run (a failed gate moved it already)."""
        try:
            yield
        except QualityGateFailed:
            raise
        except BaseException:
            self.sink.discard(staged)
            log.error("run %s: partition %s failed; nothing published", run_id, self.partition)
            raise

    def pointed_run_id(self, run_key: str) -> str | None:
        """The run id the orchestrated run ``run_key`` started last, if any."""
        return pointed_run_id(self.pointer(run_key))

    def pointer(self, run_key: str) -> Path:
        """Where an orchestrated run (``--run-key``) records its current run id."""
        root = self.sink.sink_root(self.spark)
        return run_pointer(root, self.spec.partition_column, self.partition, run_key)


def _open(
    spec_obj: PipelineSpec,
    partition: str,
    master: str | None,
    conf: dict[str, str] | None,
    warehouse: str | None,
    progress: Progress | None,
) -> _Partition:
    """Start (or reuse) the session and resolve the partition's source and sink."""
    from pipelines.session import get_session, session_warehouse
    from pipelines.storage import Table

    t0 = time.perf_counter()
    step = progress or (lambda _msg: None)
    step("starting Spark")
    spark = get_session(master=master, conf=conf, warehouse=warehouse)
    wh = session_warehouse(spark)
    p = _Partition(
        spec=spec_obj,
        partition=partition,
        spark=spark,
        warehouse=wh,
        source=Table(spec_obj.source, spec_obj.partition_column, wh),
        sink=Table(spec_obj.sink, spec_obj.partition_column, wh),
        progress=step,
        mark=t0,
    )
    p.lap("session")
    return p


def run_partition(
    spec: PipelineSpec | str | Path,
    partition: str,
    *,
    master: str | None = None,
    conf: dict[str, str] | None = None,
    warehouse: str | None = None,
    progress: Progress | None = None,
    step: str = "all",
    run_key: str | None = None,
) -> RunResult:
    """Anonymize and publish one source partition. Raises a :class:`PipelinesError`.

    ``step="all"`` does everything in this process. An orchestrator runs the steps
    as separate tasks (``desensitize``, ``validate``, ``publish``) tied together by
    ``run_key`` (Airflow's run id): ``desensitize`` starts a fresh run id under the
    key and stages; ``validate`` runs the output gate on that staged run (quarantine
    on failure); ``publish`` publishes it. Each step is idempotent: repeating
    ``desensitize`` restages under a new run id (discarding the unpublished old
    one), and repeating ``validate`` or ``publish`` after the run was published
    changes nothing.
    """
    if step not in STEPS:
        raise SpecError(f"--step: unknown '{step}'; one of {', '.join(STEPS)}")
    if step != "all" and (run_key is None or not _RUN_KEY.fullmatch(run_key)):
        raise SpecError(
            f"--step {step} needs --run-key (letters, digits and _ . : + -), the id that "
            "ties the steps of one orchestrated run together, e.g. Airflow's run id"
        )
    from pipelines.storage import new_run_id, parse_partition, write_json

    spec_obj = spec if isinstance(spec, PipelineSpec) else load_spec(spec)
    parse_partition(partition)
    keys = resolve_keys(spec_obj) if step in ("all", "desensitize") else {}  # before any data
    p = _open(spec_obj, partition, master, conf, warehouse, progress)
    if step == "all":
        state = _stage(p, new_run_id(), keys)
        state, gx_result = _validate(p, state)
        return _publish(p, state, gx_result)
    if step == "desensitize":
        _discard_unpublished(p, p.pointed_run_id(run_key))
        run_id = new_run_id()
        write_json(p.pointer(run_key), {"run_key": run_key, "run_id": run_id, "at": _now()})
        return _result(p, _stage(p, run_id, keys), "staged")
    state = _load_state(p, run_key)
    if state is None:  # published by an earlier try of this step
        manifest = p.sink.read_manifest(p.spark, partition)
        return _result(p, manifest, "published", p.sink.published_location(p.spark, partition))
    if step == "validate":
        if state["status"] != "validated":
            state, _ = _validate(p, state)
        return _result(p, state, "validated")
    if state["status"] != "validated":
        run_id = state["identity"]["run_id"]
        raise PublishError(
            f"partition {partition}: run {run_id} is staged but not validated; "
            "run the validate step first"
        )
    return _publish(p, state, _load_gx_result(p.staged(state["identity"]["run_id"])))


def _result(p: _Partition, record: dict[str, Any], status: str, location: Any = None) -> RunResult:
    ident = record.get("identity", record)
    run_id = ident["run_id"]
    return RunResult(
        run_id=run_id,
        pipeline=p.spec.name,
        partition=p.partition,
        status=status,
        input_rows=int(record["input_rows"]),
        output_rows=int(record["output_rows"]),
        published=str(location or p.staged(run_id)),
        manifest=record,
    )


def _discard_unpublished(p: _Partition, run_id: str | None) -> None:
    """Drop the staged data of an earlier try under the same run key, unless published."""
    if run_id is None:
        return
    old = p.staged(run_id)
    if old.exists() and old != p.sink.published_location(p.spark, p.partition):
        p.sink.discard(old)


def _load_state(p: _Partition, run_key: str) -> dict[str, Any] | None:
    """The state of the run staged under ``run_key``; None when it is already published."""
    from pipelines.errors import MissingInputError

    run_id = p.pointed_run_id(run_key)
    if run_id is None:
        raise MissingInputError(
            f"partition {p.partition}: no run staged under run key {run_key}; "
            "run the desensitize step first"
        )
    manifest = p.sink.read_manifest(p.spark, p.partition)
    if manifest is not None and manifest["run_id"] == run_id:
        return None
    state_file = p.staged(run_id) / STATE
    if not state_file.is_file():
        raise MissingInputError(
            f"partition {p.partition}: run {run_id} (run key {run_key}) has no staged data; "
            "it was quarantined, discarded or replaced; run the desensitize step again"
        )
    return json.loads(state_file.read_text())


def _stage(p: _Partition, run_id: str, keys: dict[str, Any]) -> dict[str, Any]:
    """Input gate, desensitize (+ k-anonymize), write the staged partition and its state."""
    # Spark imports stay inside the function: the spec and CLI help stay fast.
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from pipelines.desensitize import check_schema, desensitize, output_columns
    from pipelines.quality.gate import run_gate
    from pipelines.quality.suites import check_escalations, input_suite, output_suite
    from pipelines.storage import parse_partition, write_json

    spec, spark, source, sink = p.spec, p.spark, p.source, p.sink
    partition, partition_date = p.partition, parse_partition(p.partition)
    log.info("run %s: pipeline %s partition %s", run_id, spec.name, partition)
    p.progress(f"checking source {source.display}")
    raw = source.read_partition(spark, partition)
    undeclared = check_schema(spec, raw.columns, source.display)
    in_suite = input_suite(spec, raw.schema, sink.input_history(spark, partition))
    # Row counts are observed on the first action over these plans (the staging
    # write, or the k-anonymity stage's first pass); the input gate reads `raw` alone.
    observed_in, observed_out = Observation("input"), Observation("output")
    out = desensitize(
        raw.observe(observed_in, F.count(F.lit(1)).alias("rows")), spec, keys, partition_date
    ).observe(observed_out, F.count(F.lit(1)).alias("rows"))
    columns = output_columns(spec, raw.columns)
    schema = out.schema
    hierarchies = None
    if spec.k_anonymity is not None:
        from pipelines.kanon.stage import load_qis, released_schema

        hierarchies = load_qis(spec.k_anonymity)  # files readable and valid, before any work
        schema = released_schema(schema, spec.k_anonymity)
    types = {f.name: f.dataType for f in schema.fields}
    check_escalations(spec, in_suite, output_suite(spec, columns, types, 0))
    sink.check_schema_compatible(spark, schema)
    p.lap("plan")

    state: dict[str, Any] = {
        # What identifies this run in its manifest or quarantine note.
        "identity": {
            "run_id": run_id,
            "pipeline": spec.name,
            "partition": {"column": spec.partition_column, "value": partition},
            "spec_hash": spec_hash(spec),
            "code_version": code_version(),
        },
        "status": "staging",
        "key_fingerprints": {name: k.fingerprint for name, k in keys.items()},
        "undeclared": undeclared,
        "columns": columns,
        "schema": schema.json(),
        "gates": {},
    }
    p.progress("input gate")
    in_gate, _ = run_gate(in_suite, raw, spec.name)
    p.lap("input_gate")
    if not in_gate.passed:
        raise p.fail_gate(state, in_gate, None)
    state["gates"]["input"] = in_gate.to_dict()

    kanon_summary, persisted = None, None
    if spec.k_anonymity is not None:
        from pipelines.kanon.stage import anonymize

        window, earlier = _window_rows(spark, source, spec, keys, partition_date)
        p.progress(
            "k-anonymizing" + (f" with {len(earlier)} earlier partitions" if earlier else "")
        )
        out, kanon_summary, persisted = anonymize(
            out, spec.k_anonymity, partition, hierarchies, window
        )
        kanon_summary["window_partitions"] = earlier
        p.lap("k_anonymity")

    staged = p.staged(run_id)
    with p.discard_on_failure(staged, run_id):
        p.progress("desensitizing and staging")
        sink.write_staged(out, staged)
        if persisted is not None:
            persisted.unpersist()
        state["input_rows"] = int(observed_in.get["rows"])
        state["output_rows"] = int(observed_out.get["rows"])
        state["suppressed_rows"] = 0
        state["k_anonymity"] = kanon_summary
        state["status"] = "staged"
        p.lap("desensitize_and_stage")
        state["timings"] = dict(p.timings)
        p.timings.clear()  # each step adds its own laps to the state's
        write_json(staged / STATE, state)
    return state


def _validate(p: _Partition, state: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The output gate on the staged run; quarantine it on failure."""
    from pipelines.quality.gate import run_gate
    from pipelines.quality.suites import output_suite
    from pipelines.storage import write_json

    run_id = state["identity"]["run_id"]
    staged = p.staged(run_id)
    schema = _schema(state)
    types = {f.name: f.dataType for f in schema.fields}
    with p.discard_on_failure(staged, run_id):
        p.progress("output gate")
        expected = state["input_rows"] - state["suppressed_rows"]
        suite = output_suite(p.spec, state["columns"], types, expected)
        staged_df = p.sink.read_staged(p.spark, staged, schema)
        out_gate, gx_result = run_gate(suite, staged_df, p.spec.name)
        p.lap("output_gate")
        if not out_gate.passed:
            raise p.fail_gate(state, out_gate, staged)
        state = {
            **state,
            "status": "validated",
            "gates": {**state["gates"], "output": out_gate.to_dict()},
        }
        state["timings"] = _add_timings(state["timings"], p.timings)
        p.timings.clear()
        write_json(staged / STATE, state)
        write_json(staged / "_gx_result.json", gx_result.to_json_dict())
    return state, gx_result


def _schema(state: dict[str, Any]) -> Any:
    """The staged run's output schema (a StructType)."""
    from pyspark.sql.types import StructType

    return StructType.fromJson(json.loads(state["schema"]))


def _add_timings(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """Seconds per phase over the steps of a run (each step starts its own session)."""
    return {k: round(a.get(k, 0.0) + b.get(k, 0.0), 3) for k in {**a, **b}}


def _load_gx_result(staged: Path) -> Any:
    from great_expectations.core.expectation_validation_result import (
        expectationSuiteValidationResultSchema,
    )

    return expectationSuiteValidationResultSchema.load(
        json.loads((staged / "_gx_result.json").read_text())
    )


def _publish(p: _Partition, state: dict[str, Any], gx_result: Any) -> RunResult:
    """Write the manifest and publish the validated run atomically; then Data Docs."""
    from pipelines.quality.docs import add_published, index_path
    from pipelines.quality.gate import GateResult

    ident = state["identity"]
    run_id, partition, spark, sink = ident["run_id"], p.partition, p.spark, p.sink
    staged = p.staged(run_id)
    schema = _schema(state)
    gates = state["gates"]
    docs = index_path(p.warehouse) if p.spec.quality.docs else None
    manifest = {
        **ident,
        "key_fingerprints": state["key_fingerprints"],
        "source": p.source.display,
        "sink": sink.display,
        "input_rows": state["input_rows"],
        "output_rows": state["output_rows"],
        "suppressed_rows": state["suppressed_rows"],
        "columns": _describe_actions(p.spec, state["undeclared"]),
        "output_schema": {f.name: f.dataType.simpleString() for f in schema.fields},
        "k_anonymity": state["k_anonymity"],
        "quality": {
            "input": gates["input"],
            "output": gates["output"],
            "warnings": [
                c["id"]
                for stage in ("input", "output")
                for c in GateResult(**gates[stage]).failures("warning")
            ],
            "data_docs": str(docs) if docs else None,
        },
        "spark": {"version": spark.version, "master": spark.sparkContext.master},
        "published_at": _now(),
        "status": "published",
    }
    with p.discard_on_failure(staged, run_id):
        p.progress("publishing")
        sink.check_schema_compatible(spark, schema)  # the table may have changed since staging
        p.lap("manifest")
        timings = _add_timings(state["timings"], p.timings)
        manifest["timings"] = {**timings, "total": round(sum(timings.values()), 3)}
        for name in (STATE, "_gx_result.json"):
            (staged / name).unlink(missing_ok=True)
        location = sink.publish(spark, staged, partition, manifest)
    if docs is not None:
        p.progress("building Data Docs")
        try:
            add_published(p.warehouse, gx_result, f"{p.spec.partition_column}={partition}", run_id)
        except Exception as exc:  # the partition is published; the report is secondary
            log.warning("run %s: Data Docs not updated (%s)", run_id, type(exc).__name__)
    log.info(
        "run %s: partition %s published, %d rows in, %d rows out",
        run_id,
        partition,
        manifest["input_rows"],
        manifest["output_rows"],
    )
    return _result(p, manifest, "published", location)


def _window_rows(spark, source, spec, keys, partition_date):  # noqa: ANN001, ANN202
    """Desensitized rows of the source partitions of the window's earlier days.

    ``k_anonymity.window: N`` covers the N − 1 days before the partition; days
    without a source partition are skipped. Returns (rows or None, their values).
    """
    from pipelines.desensitize import check_schema, desensitize

    window, earlier = None, []
    for days in range(1, spec.k_anonymity.window):
        value = (partition_date - dt.timedelta(days=days)).isoformat()
        if source.partition_exists(spark, value):
            rows = source.read_partition(spark, value)
            check_schema(spec, rows.columns, f"{source.display} partition {value}")
            prev = desensitize(rows, spec, keys, dt.date.fromisoformat(value))
            window = prev if window is None else window.unionByName(prev)
            earlier.append(value)
    return window, earlier


def kanon_partition(
    spec: PipelineSpec | str | Path,
    partition: str,
    *,
    out: str | None = None,
    master: str | None = None,
    conf: dict[str, str] | None = None,
    warehouse: str | None = None,
) -> dict[str, Any]:
    """The k-anonymity stage alone: desensitize, k-anonymize and verify one partition.

    For tuning k, l, t and the QIs before scheduling a pipeline: returns the stage's
    summary (the manifest's ``k_anonymity`` block) and, with ``out``, writes the
    released rows there as Parquet. Publishes nothing, writes no manifest and runs
    no quality gate, so ``out`` must be a private scratch location.
    """
    from pipelines.desensitize import check_schema, desensitize
    from pipelines.kanon.stage import anonymize, load_qis
    from pipelines.session import get_session, session_warehouse
    from pipelines.storage import Table, parse_partition

    spec_obj = spec if isinstance(spec, PipelineSpec) else load_spec(spec)
    if spec_obj.k_anonymity is None:
        raise SpecError("k_anonymity: the spec has no k_anonymity block")
    partition_date = parse_partition(partition)
    keys = resolve_keys(spec_obj)
    hierarchies = load_qis(spec_obj.k_anonymity)
    spark = get_session(master=master, conf=conf, warehouse=warehouse)
    source = Table(spec_obj.source, spec_obj.partition_column, session_warehouse(spark))
    raw = source.read_partition(spark, partition)
    check_schema(spec_obj, raw.columns, source.display)
    rows = desensitize(raw, spec_obj, keys, partition_date)
    window, earlier = _window_rows(spark, source, spec_obj, keys, partition_date)
    t0 = time.perf_counter()
    released, summary, persisted = anonymize(
        rows, spec_obj.k_anonymity, partition, hierarchies, window
    )
    try:
        if out is not None:
            released.write.mode("errorifexists").parquet(out)
    finally:
        persisted.unpersist()
    summary["window_partitions"] = earlier
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    return summary


def validate_partition(
    spec: PipelineSpec | str | Path,
    partition: str,
    stage: str = "output",
    *,
    master: str | None = None,
    conf: dict[str, str] | None = None,
    warehouse: str | None = None,
) -> GateResult:
    """Run one gate on demand and return its result.

    ``input`` checks the raw partition; ``output`` the published one, against the
    spec's contract and the counts in its manifest. Never publishes, moves or
    writes anything.
    """
    from pyspark.sql.types import _parse_datatype_string

    from pipelines.errors import MissingInputError
    from pipelines.quality.gate import run_gate
    from pipelines.quality.suites import input_suite, output_suite
    from pipelines.session import get_session, session_warehouse
    from pipelines.storage import Table, parse_partition

    spec_obj = spec if isinstance(spec, PipelineSpec) else load_spec(spec)
    parse_partition(partition)
    spark = get_session(master=master, conf=conf, warehouse=warehouse)
    wh = session_warehouse(spark)
    source = Table(spec_obj.source, spec_obj.partition_column, wh)
    sink = Table(spec_obj.sink, spec_obj.partition_column, wh)
    if stage == "input":
        raw = source.read_partition(spark, partition)
        suite = input_suite(spec_obj, raw.schema, sink.input_history(spark, partition))
        return run_gate(suite, raw, spec_obj.name)[0]
    manifest = sink.read_manifest(spark, partition)
    if manifest is None:
        raise MissingInputError(
            f"partition {spec_obj.partition_column}={partition} of {sink.display} is not published"
        )
    columns = [a.rename or c for c, a in spec_obj.columns.items() if a.kind != "drop"]
    types = {n: _parse_datatype_string(t) for n, t in manifest["output_schema"].items()}
    expected = int(manifest["input_rows"]) - int(manifest.get("suppressed_rows", 0))
    suite = output_suite(spec_obj, columns, types, expected)
    return run_gate(suite, sink.read_partition(spark, partition), spec_obj.name)[0]
