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
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import __version__
from pipelines.errors import QualityGateFailed, SpecError
from pipelines.keys import resolve_keys
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


def run_partition(
    spec: PipelineSpec | str | Path,
    partition: str,
    *,
    master: str | None = None,
    conf: dict[str, str] | None = None,
    warehouse: str | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Anonymize and publish one source partition. Raises a :class:`PipelinesError`."""
    # Spark imports stay inside the function: the spec and CLI help stay fast.
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from pipelines.desensitize import check_schema, desensitize, output_columns
    from pipelines.quality.docs import add_published, index_path
    from pipelines.quality.gate import run_gate
    from pipelines.quality.suites import check_escalations, input_suite, output_suite
    from pipelines.session import get_session, session_warehouse
    from pipelines.storage import Table, new_run_id, parse_partition

    step = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    mark = t_start

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings[name] = round(now - mark, 3)
        mark = now

    spec_obj = spec if isinstance(spec, PipelineSpec) else load_spec(spec)
    partition_date = parse_partition(partition)
    keys = resolve_keys(spec_obj)  # before any data is read
    run_id = new_run_id()
    log.info("run %s: pipeline %s partition %s", run_id, spec_obj.name, partition)

    step("starting Spark")
    spark = get_session(master=master, conf=conf, warehouse=warehouse)
    wh = session_warehouse(spark)
    source = Table(spec_obj.source, spec_obj.partition_column, wh)
    sink = Table(spec_obj.sink, spec_obj.partition_column, wh)
    lap("session")

    step(f"checking source {source.display}")
    raw = source.read_partition(spark, partition)
    undeclared = check_schema(spec_obj, raw.columns, source.display)
    in_suite = input_suite(spec_obj, raw.schema, sink.input_history(spark, partition))
    # Row counts are observed on the first action over these plans (the staging
    # write, or the k-anonymity stage's first pass); the input gate reads `raw` alone.
    observed_in, observed_out = Observation("input"), Observation("output")
    out = desensitize(
        raw.observe(observed_in, F.count(F.lit(1)).alias("rows")), spec_obj, keys, partition_date
    ).observe(observed_out, F.count(F.lit(1)).alias("rows"))
    columns = output_columns(spec_obj, raw.columns)
    schema = out.schema
    hierarchies = None
    if spec_obj.k_anonymity is not None:
        from pipelines.kanon.stage import load_qis, released_schema

        hierarchies = load_qis(spec_obj.k_anonymity)  # files readable and valid, before any work
        schema = released_schema(schema, spec_obj.k_anonymity)
    types = {f.name: f.dataType for f in schema.fields}
    check_escalations(spec_obj, in_suite, output_suite(spec_obj, columns, types, 0))
    sink.check_schema_compatible(spark, schema)
    lap("plan")

    # What identifies this run in its manifest or quarantine note.
    identity = {
        "run_id": run_id,
        "pipeline": spec_obj.name,
        "partition": {"column": spec_obj.partition_column, "value": partition},
        "spec_hash": spec_hash(spec_obj),
        "code_version": code_version(),
    }

    def fail_gate(gate: GateResult, staged: Path | None, *passed: GateResult) -> QualityGateFailed:
        note = {
            **identity,
            "quarantined_at": _now(),
            "failed_stage": gate.stage,
            "gates": {g.stage: g.to_dict() for g in (*passed, gate)},
        }
        where = sink.quarantine(spark, staged, partition, run_id, note)
        log.error("run %s: partition %s failed the %s gate", run_id, partition, gate.stage)
        return QualityGateFailed(
            f"partition {partition}: {gate.stage} gate failed: {gate.describe_failures()}; "
            f"nothing published; gate result and data in {where}"
        )

    step("input gate")
    in_gate, _ = run_gate(in_suite, raw, spec_obj.name)
    lap("input_gate")
    if not in_gate.passed:
        raise fail_gate(in_gate, None)

    kanon_summary, persisted = None, None
    if spec_obj.k_anonymity is not None:
        from pipelines.kanon.stage import anonymize

        window, earlier = _window_rows(spark, source, spec_obj, keys, partition_date)
        step("k-anonymizing" + (f" with {len(earlier)} earlier partitions" if earlier else ""))
        out, kanon_summary, persisted = anonymize(
            out, spec_obj.k_anonymity, partition, hierarchies, window
        )
        kanon_summary["window_partitions"] = earlier
        lap("k_anonymity")

    staged = sink.staging_dir(spark, run_id, partition)
    try:
        step("desensitizing and staging")
        sink.write_staged(out, staged)
        if persisted is not None:
            persisted.unpersist()
        input_rows = int(observed_in.get["rows"])
        output_rows = int(observed_out.get["rows"])
        suppressed = 0
        lap("desensitize_and_stage")
        step("output gate")
        out_suite = output_suite(spec_obj, columns, types, input_rows - suppressed)
        staged_df = sink.read_staged(spark, staged, schema)
        out_gate, gx_out = run_gate(out_suite, staged_df, spec_obj.name)
        lap("output_gate")
        if not out_gate.passed:
            raise fail_gate(out_gate, staged, in_gate)
        docs = index_path(wh) if spec_obj.quality.docs else None
        manifest = {
            **identity,
            "key_fingerprints": {name: k.fingerprint for name, k in keys.items()},
            "source": source.display,
            "sink": sink.display,
            "input_rows": input_rows,
            "output_rows": output_rows,
            "suppressed_rows": suppressed,
            "columns": _describe_actions(spec_obj, undeclared),
            "output_schema": {f.name: f.dataType.simpleString() for f in schema.fields},
            "k_anonymity": kanon_summary,
            "quality": {
                "input": in_gate.to_dict(),
                "output": out_gate.to_dict(),
                "warnings": [c["id"] for g in (in_gate, out_gate) for c in g.failures("warning")],
                "data_docs": str(docs) if docs else None,
            },
            "spark": {"version": spark.version, "master": spark.sparkContext.master},
            "published_at": _now(),
            "status": "published",
        }
        step("publishing")
        lap("manifest")
        manifest["timings"] = {**timings, "total": round(time.perf_counter() - t_start, 3)}
        location = sink.publish(spark, staged, partition, manifest)
    except QualityGateFailed:
        raise
    except BaseException:
        sink.discard(staged)
        log.error("run %s: partition %s failed; nothing published", run_id, partition)
        raise
    if docs is not None:
        step("building Data Docs")
        try:
            add_published(wh, gx_out, f"{spec_obj.partition_column}={partition}", run_id)
        except Exception as exc:  # the partition is published; the report is secondary
            log.warning("run %s: Data Docs not updated (%s)", run_id, type(exc).__name__)
    log.info(
        "run %s: partition %s published, %d rows in, %d rows out",
        run_id,
        partition,
        input_rows,
        output_rows,
    )
    return RunResult(
        run_id=run_id,
        pipeline=spec_obj.name,
        partition=partition,
        status="published",
        input_rows=input_rows,
        output_rows=output_rows,
        published=location,
        manifest=manifest,
    )


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
