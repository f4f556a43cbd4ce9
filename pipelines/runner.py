"""One run of one partition, as a straight sequence.

    plan -> read -> input gate -> transforms -> stage -> output gate -> publish

1. :func:`~pipelines.plan.compile_plan`: validate the spec, parse the partition,
   resolve every key (a missing key stops the run before any data is read), load
   the hierarchies;
2. read the source partition and bind the plan to its schema (undeclared columns
   and wrong types stop the run before anything is written);
3. the input gate on the raw partition;
4. the transforms, desensitize and (where configured) k-anonymity, and the staged
   write under a run-scoped location;
5. the output gate on the staged data (failure: quarantine, nothing published);
6. the atomic publish with its manifest, then Data Docs.

Any failure after staging began discards the staged data; the published table is
left exactly as it was. Steps 1-4 are the ``desensitize`` step, 5 is ``validate``
and 6 is ``publish``: one process runs all three (``step="all"``), or an
orchestrator runs them as separate tasks tied together by a run key (see
:func:`run_partition`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import (
    MissingInputError,
    PublishError,
    QualityGateFailed,
    SpecError,
    driver_errors,
)
from pipelines.manifest import Manifest, Quality
from pipelines.plan import compile_plan
from pipelines.records import RunState, add_timings
from pipelines.run_context import Progress, RunContext, RunResult, now, open_run
from pipelines.spec.models import PipelineSpec
from pipelines.storage import layout, new_run_id
from pipelines.storage.files import write_json
from pipelines.storage.lease import sink_lease

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

STEPS = ("all", "desensitize", "validate", "publish")
_RUN_KEY = re.compile(r"[A-Za-z0-9_.:+-]{1,200}")


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
    source_version: str | None = None,
) -> RunResult:
    """Anonymize and publish one source partition.

    ``step="all"`` does everything in this process. An orchestrator runs the steps
    as separate tasks (``desensitize``, ``validate``, ``publish``) tied together by
    ``run_key`` (Airflow's run id): ``desensitize`` starts a fresh run id under the
    key and stages; ``validate`` runs the output gate on that staged run (quarantine
    on failure); ``publish`` publishes it. Each step is idempotent: repeating
    ``desensitize`` restages under a new run id (discarding the unpublished old
    one) from the Iceberg or Delta source version the first try read, and
    repeating ``validate`` or ``publish`` after the run was published changes
    nothing.

    Besides the errors below, the steps it runs raise: SpecError for a bad spec,
    partition or key (exit 3); MissingInputError when the source partition or the
    staged run is missing (exit 4); QualityGateFailed when a gate failed and the run
    is quarantined (exit 5); PublishError when the sink's schema changed since staging.

    Args:
        spec: A validated spec or its YAML path.
        partition: The partition value (``YYYY-MM-DD``).
        master: Spark master URL.
        conf: Extra Spark properties.
        warehouse: The warehouse root.
        progress: Reports steps to the user.
        step: ``all``, ``desensitize``, ``validate`` or ``publish``.
        run_key: The orchestrator's run id (required for single steps).
        source_version: Read an Iceberg or Delta source as of this snapshot id or
            table version (a previous run's ``source_version``: the same input again);
            None reads the current one. The version read is in the manifest.

    Returns:
        What the run (or step) did.

    Raises:
        SpecError: An unknown step, or a single step without a valid run key (exit 3).
    """
    if step not in STEPS:
        raise SpecError(f"--step: unknown '{step}'; one of {', '.join(STEPS)}")
    if step != "all" and (run_key is None or not _RUN_KEY.fullmatch(run_key)):
        raise SpecError(
            f"--step {step} needs --run-key (letters, digits and _ . : + -), the id that "
            "ties the steps of one orchestrated run together, e.g. Airflow's run id"
        )
    plan = compile_plan(spec, partition, resolve=step in ("all", "desensitize"))
    run_id = new_run_id()
    holder = run_id if step in ("all", "desensitize") else f"{run_key} ({step} step)"
    with sink_lease(plan.spec.sink, plan.partition, warehouse, holder):
        with driver_errors():
            ctx = open_run(plan, master, conf, warehouse, progress)
            ctx.source_version = source_version
            return _run_step(ctx, step, run_key, run_id)


def _run_step(ctx: RunContext, step: str, run_key: str | None, run_id: str) -> RunResult:
    """One step (or all of them) of a run whose context is open, holding its lease."""
    plan = ctx.plan
    if step == "all":
        state = stage(ctx, run_id)
        state, gx_result = validate(ctx, state)
        return publish(ctx, state, gx_result)
    assert run_key is not None
    pointer = ctx.sink.run_pointer(plan.partition, run_key)
    if step == "desensitize":
        earlier = json.loads(pointer.read_text()) if pointer.is_file() else {}
        pinned = earlier.get("source_version") if ctx.source_version is None else None
        if ctx.source.ref.format not in ("iceberg", "delta"):
            pinned = None  # the spec's source is no longer a table format: nothing to pin
        if pinned is not None:  # a retried or cleared run reads what its first try read
            ctx.source_version = pinned
        _discard_unpublished(ctx, earlier.get("run_id"))
        record = {"run_key": run_key, "run_id": run_id, "at": now()}
        # The pin is kept through this try and written as soon as the source is read,
        # so a try that fails later (or is killed) leaves it for the next.
        write_json(pointer, record | ({"source_version": pinned} if pinned else {}))
        ctx.source_pin = pointer
        try:
            state = stage(ctx, run_id)
        except MissingInputError as exc:
            if pinned is not None and str(exc).startswith("--source-version:"):
                raise MissingInputError(
                    f"partition {plan.partition}: run key {run_key} first read source "
                    f"{ctx.source.display} at version {pinned}, which it no longer has "
                    "(expired by gc?); start a new run (a new DAG run) to read the source "
                    "as it is now"
                ) from None
            raise
        return _result(ctx, state, "staged")
    state = _load_state(ctx, run_key, layout.pointed_run_id(pointer))
    if state is None:  # published by an earlier try of this step
        manifest = ctx.sink.read_manifest(plan.partition)
        assert isinstance(manifest, Manifest)
        return _result(ctx, manifest, "published", ctx.sink.published_location(plan.partition))
    if step == "validate":
        if state.status != "validated":
            state, _ = validate(ctx, state)
        return _result(ctx, state, "validated")
    if state.status != "validated":
        raise PublishError(
            f"partition {plan.partition}: run {state.identity.run_id} is staged but not "
            "validated; run the validate step first"
        )
    return publish(ctx, state, _load_gx_result(ctx.staged(state.identity.run_id).path))


def _result(
    ctx: RunContext, record: Manifest | RunState, status: str, where: Any = None
) -> RunResult:
    run_id = record.run_id if isinstance(record, Manifest) else record.identity.run_id
    return RunResult(
        run_id=run_id,
        pipeline=ctx.plan.spec.name,
        partition=ctx.plan.partition.value,
        status=status,
        input_rows=record.input_rows,
        output_rows=record.output_rows,
        published=str(where or ctx.staged(run_id).path),
        record=record,
    )


def _discard_unpublished(ctx: RunContext, run_id: str | None) -> None:
    """Drop the staged data of an earlier try under the same run key, unless published."""
    if run_id is None:
        return
    old = ctx.staged(run_id)
    if old.path.exists() and str(old.path) != ctx.sink.published_location(ctx.plan.partition):
        ctx.sink.discard(old)


def _load_state(ctx: RunContext, run_key: str, run_id: str | None) -> RunState | None:
    """The state of the run staged under ``run_key``; None when it is already published."""
    partition = ctx.plan.partition
    if run_id is None:
        raise MissingInputError(
            f"partition {partition}: no run staged under run key {run_key}; "
            "run the desensitize step first"
        )
    manifest = ctx.sink.read_manifest(partition)
    if manifest is not None and manifest.run_id == run_id:
        return None
    state_file = ctx.staged(run_id).path / layout.STATE
    if not state_file.is_file():
        raise MissingInputError(
            f"partition {partition}: run {run_id} (run key {run_key}) has no staged data; "
            "it was quarantined, discarded or replaced; run the desensitize step again"
        )
    state = RunState.from_json(json.loads(state_file.read_text()))
    from pyspark.sql.types import StructType

    schema = StructType.fromJson(json.loads(state.source_schema))
    ctx.plan = ctx.plan.bind(schema, ctx.source.display)  # as the desensitize step bound it
    return state


def window_rows(ctx: RunContext) -> tuple[DataFrame | None, list[str]]:
    """Desensitized rows of the k-anonymity window's earlier source partitions.

    ``k_anonymity.window: N`` covers the N - 1 days before the partition; days
    without a source partition are skipped.

    Args:
        ctx: The run's context (its plan bound to the current partition's schema).

    Returns:
        The union of the earlier partitions' desensitized rows (None when none exists),
        and the values of the partitions it covers, newest first.
    """
    from pipelines.desensitize.transform import with_desensitized
    from pipelines.storage.text import without_flags

    window, earlier = None, []
    for p in ctx.plan.window():
        if ctx.source.partition_exists(p):
            reading = ctx.plan.source_reading()
            rows = without_flags(ctx.source.read_partition(p, *reading, at=ctx.source_version))
            plan = ctx.plan.at(p).bind(rows.schema, f"{ctx.source.display} partition {p}")
            prev = rows.transform(with_desensitized(plan, count_flags=False))
            window = prev if window is None else window.unionByName(prev)
            earlier.append(p.value)
    return window, earlier


def stage(ctx: RunContext, run_id: str) -> RunState:
    """Read, input gate, transforms, staged write: the ``desensitize`` step.

    A missing source partition raises MissingInputError, and a source that does not
    fit the spec SpecError (from binding the plan), before anything is written.

    Args:
        ctx: The run's context.
        run_id: The new run's id.

    Returns:
        The staged run's state (also written beside the staged data).

    Raises:
        QualityGateFailed: The input gate failed; the run is quarantined with no data.
    """
    from pipelines.quality.gate import run_gate

    log.info("run %s: pipeline %s partition %s", run_id, ctx.plan.spec.name, ctx.plan.partition)
    raw, in_suite, state = _read_and_bind(ctx, run_id)
    ctx.progress("input gate")
    in_gate, _ = run_gate(in_suite, raw, ctx.plan.spec.name)
    ctx.lap("input_gate")
    if not in_gate.passed:
        raise QualityGateFailed(ctx.quarantine(state, in_gate, None))
    state = dataclasses.replace(state, gates={"input": in_gate})
    return _transform_and_write(ctx, raw, state)


def _read_and_bind(ctx: RunContext, run_id: str) -> tuple[DataFrame, Any, RunState]:
    """Read the source, bind the plan to its schema, build the input suite, start the state."""
    from pipelines.quality.suites import check_escalations, input_suite, output_suite
    from pipelines.storage.text import without_flags

    partition, source, sink = ctx.plan.partition, ctx.source, ctx.sink
    ctx.progress(f"checking source {source.display}")
    raw = source.read_partition(partition, *ctx.plan.source_reading(), at=ctx.source_version)
    ctx.source_version = source.last_read_version  # the window's reads: the same snapshot
    if ctx.source_pin is not None and ctx.source_version is not None:
        record = json.loads(ctx.source_pin.read_text())
        write_json(ctx.source_pin, record | {"source_version": ctx.source_version})
    plan = ctx.plan = ctx.plan.bind(without_flags(raw).schema, source.display)
    contract = plan.bound
    in_suite = input_suite(plan, raw.schema, sink.input_history(partition))
    check_escalations(plan.spec, in_suite, output_suite(plan, 0))
    sink.check_schema_compatible(contract.schema, partition)
    ctx.lap("plan")
    state = RunState(
        identity=ctx.identity(run_id),
        status="staging",
        key_fingerprints=plan.keys.fingerprints(),
        source_schema=contract.source_schema.json(),
        output_schema=contract.schema.json(),
        input_rows=0, output_rows=0, suppressed_rows=0, k_anonymity=None,
        gates={}, timings={}, source_version=source.last_read_version,
    )  # fmt: skip
    return raw, in_suite, state


def _transform_and_write(ctx: RunContext, raw: DataFrame, state: RunState) -> RunState:
    """Desensitize (and k-anonymize) the partition and write it to the run's staging."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from pipelines.desensitize.transform import with_desensitized
    from pipelines.storage.text import unpersist_source, without_flags

    plan = ctx.plan
    # Row counts are observed on the first action over these plans (the staging
    # write, or the k-anonymity stage's first pass); the input gate read `raw` alone.
    # Names of the run's own: Spark pairs observations with metrics by name, so runs
    # at once in one session (threads) would otherwise read each other's counts.
    run = state.identity.run_id
    observed_in, observed_out = Observation(f"input_{run}"), Observation(f"output_{run}")
    out = without_flags(raw).observe(observed_in, F.count(F.lit(1)).alias("rows"))
    desensitize = with_desensitized(plan)
    out = out.transform(desensitize)
    kanon, earlier = None, []
    if plan.kanon is not None:
        from pipelines.kanon.transform import with_k_anonymity

        window, earlier = window_rows(ctx)
        more = f" with {len(earlier)} earlier partitions" if earlier else ""
        ctx.progress(f"k-anonymizing{more}")
        kanon = with_k_anonymity(plan.kanon, plan.partition, window)
        out = out.transform(kanon)
        ctx.lap("k_anonymity")
    out = out.observe(observed_out, F.count(F.lit(1)).alias("rows"))
    staged = ctx.staged(state.identity.run_id)
    with ctx.discard_on_failure(staged):
        ctx.progress("desensitizing and staging")
        ctx.sink.write_staged(out, staged)
        unpersist_source(raw)
        if kanon is not None:
            kanon.unpersist()
        ctx.lap("desensitize_and_stage")
        state = dataclasses.replace(
            state,
            status="staged",
            input_rows=int(observed_in.get["rows"]),
            output_rows=int(observed_out.get["rows"]),
            k_anonymity=None if kanon is None else {**kanon.summary, "window_partitions": earlier},
            action_counts=desensitize.counts(),
            timings=dict(ctx.timings),
        )
        ctx.timings.clear()  # each step adds its own laps to the state's
        write_json(staged.path / layout.STATE, state.to_json())
    return state


def validate(ctx: RunContext, state: RunState) -> tuple[RunState, Any]:
    """The output gate on the staged run: the ``validate`` step.

    Args:
        ctx: The run's context (its plan bound to the source schema).
        state: The staged run's state.

    Returns:
        The validated state and the GX result (for Data Docs).

    Raises:
        QualityGateFailed: The output gate failed; the run and its data are quarantined.
    """
    from pyspark.sql.types import StructType

    from pipelines.quality.gate import run_gate
    from pipelines.quality.suites import output_suite

    staged = ctx.staged(state.identity.run_id)
    with ctx.discard_on_failure(staged):
        ctx.progress("output gate")
        suite = output_suite(ctx.plan, state.input_rows - state.suppressed_rows)
        schema = StructType.fromJson(json.loads(state.output_schema))
        out_gate, gx_result = run_gate(
            suite, ctx.sink.read_staged(staged, schema), ctx.plan.spec.name
        )
        ctx.lap("output_gate")
        if not out_gate.passed:
            raise QualityGateFailed(ctx.quarantine(state, out_gate, staged))
        state = dataclasses.replace(
            state,
            status="validated",
            gates={**state.gates, "output": out_gate},
            timings=add_timings(state.timings, ctx.timings),
        )
        ctx.timings.clear()
        write_json(staged.path / layout.STATE, state.to_json())
        write_json(staged.path / layout.GX_RESULT, gx_result.to_json_dict())
    return state, gx_result


def _load_gx_result(staged: Path) -> Any:
    from great_expectations.core.expectation_validation_result import (
        expectationSuiteValidationResultSchema,
    )

    return expectationSuiteValidationResultSchema.load(
        json.loads((staged / layout.GX_RESULT).read_text())
    )


def manifest_of(ctx: RunContext, state: RunState, data_docs: Path | None) -> Manifest:
    """The manifest a validated run publishes.

    Args:
        ctx: The run's context.
        state: The validated run's state.
        data_docs: The Data Docs index page, if the site is built.

    Returns:
        The manifest (without timings of the publish itself).
    """
    from pyspark.sql.types import StructType

    gates = state.gates
    warnings = [c.id for g in (gates["input"], gates["output"]) for c in g.failures("warning")]
    schema = StructType.fromJson(json.loads(state.output_schema))
    return Manifest(
        identity=state.identity,
        status="published",
        published_at=now(),
        input_rows=state.input_rows,
        output_rows=state.output_rows,
        suppressed_rows=state.suppressed_rows,
        output_schema={f.name: f.dataType.simpleString() for f in schema.fields},
        key_fingerprints=state.key_fingerprints,
        source=ctx.source.display,
        sink=ctx.sink.display,
        columns=dict(ctx.plan.bound.descriptions),
        k_anonymity=state.k_anonymity,
        action_counts=state.action_counts,
        quality=Quality(
            gates["input"], gates["output"], warnings, str(data_docs) if data_docs else None
        ),  # fmt: skip
        spark={"version": ctx.spark.version, "master": ctx.spark.sparkContext.master},
        source_version=state.source_version,
    )


def publish(ctx: RunContext, state: RunState, gx_result: Any) -> RunResult:
    """Publish the validated run atomically with its manifest, then Data Docs.

    A sink whose schema changed since staging raises PublishError (from the sink's
    schema check); the staged run is then discarded. A failure to update Data Docs is
    only logged: the partition is already published.

    Args:
        ctx: The run's context.
        state: The validated run's state.
        gx_result: Its output-gate GX result.

    Returns:
        The published run.
    """
    from pyspark.sql.types import StructType

    from pipelines.quality.docs import add_published, index_path

    run_id, partition = state.identity.run_id, ctx.plan.partition
    staged = ctx.staged(run_id)
    docs = index_path(ctx.docs_root) if ctx.plan.spec.quality.docs else None
    with ctx.discard_on_failure(staged):
        ctx.progress("publishing")
        # The table may have changed since staging.
        output = StructType.fromJson(json.loads(state.output_schema))
        ctx.sink.check_schema_compatible(output, partition)
        ctx.lap("manifest")
        timings = add_timings(state.timings, ctx.timings)
        manifest = dataclasses.replace(
            manifest_of(ctx, state, docs),
            timings={**timings, "total": round(sum(timings.values()), 3)},
        )
        for name in (layout.STATE, layout.GX_RESULT):
            (staged.path / name).unlink(missing_ok=True)
        location = ctx.sink.publish(staged, manifest)
    if docs is not None:
        ctx.progress("building Data Docs")
        try:
            add_published(ctx.docs_root, gx_result, partition.dirname, run_id)
        except Exception as exc:  # the partition is published; the report is secondary
            log.warning("run %s: Data Docs not updated (%s)", run_id, type(exc).__name__)
    log.info("run %s: partition %s published, %d rows in, %d rows out",
             run_id, partition, manifest.input_rows, manifest.output_rows)  # fmt: skip
    return _result(ctx, manifest, "published", location)
