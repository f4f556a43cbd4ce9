"""Runs that publish nothing: one gate on demand, or the k-anonymity stage alone."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pipelines.errors import MissingInputError, SpecError, driver_errors
from pipelines.manifest import Manifest
from pipelines.plan import compile_plan
from pipelines.records import GateResult
from pipelines.run_context import open_run
from pipelines.spec.models import PipelineSpec
from pipelines.storage.text import without_flags


def validate_partition(
    spec: PipelineSpec | str | Path,
    partition: str,
    stage: str = "output",
    *,
    master: str | None = None,
    conf: dict[str, str] | None = None,
    warehouse: str | None = None,
) -> GateResult:
    """Run one gate on demand; never publishes, moves or writes anything.

    Args:
        spec: A validated spec or its YAML path.
        partition: The partition value.
        stage: ``input`` checks the raw partition; ``output`` the published one,
            against the spec's contract and the counts in its manifest.
        master: Spark master URL.
        conf: Extra Spark properties.
        warehouse: The warehouse root.

    Returns:
        The gate's result.

    Raises:
        MissingInputError: The source partition, or the published one, is missing.
    """
    from pipelines.quality.gate import run_gate
    from pipelines.quality.suites import input_suite, output_suite

    ctx = open_run(compile_plan(spec, partition, resolve=False), master, conf, warehouse, None)
    plan, name = ctx.plan, ctx.plan.spec.name
    if stage == "input":
        raw = ctx.source.read_partition(plan.partition, *plan.source_reading())
        history = ctx.sink.input_history(plan.partition)
        return run_gate(input_suite(plan, raw.schema, history), raw, name)[0]
    manifest = ctx.sink.read_manifest(plan.partition)
    if not isinstance(manifest, Manifest):
        raise MissingInputError(
            f"partition {plan.partition.dirname} of {ctx.sink.display} is not published"
        )
    bound = plan.bind_published(manifest.output_schema)
    suite = output_suite(bound, manifest.input_rows - manifest.suppressed_rows)
    published = ctx.sink.read_partition(plan.partition, manifest.output_schema)
    return run_gate(suite, without_flags(published), name)[0]


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

    For tuning k, l, t and the QIs before scheduling a pipeline. Publishes nothing,
    writes no manifest and runs no quality gate, so ``out`` must be a private
    scratch location.

    Args:
        spec: A validated spec (with a ``k_anonymity`` block) or its YAML path.
        partition: The partition value.
        out: Write the released rows here as Parquet (a new directory), or None.
        master: Spark master URL.
        conf: Extra Spark properties.
        warehouse: The warehouse root.

    Returns:
        The stage's summary (the manifest's ``k_anonymity`` block) with ``seconds``.

    Raises:
        SpecError: The spec has no ``k_anonymity`` block, or the source does not fit.
    """
    from pipelines.desensitize.transform import with_desensitized
    from pipelines.kanon.transform import with_k_anonymity
    from pipelines.runner import window_rows

    plan = compile_plan(spec, partition)
    if plan.kanon is None:
        raise SpecError("k_anonymity: the spec has no k_anonymity block")
    ctx = open_run(plan, master, conf, warehouse, None)
    raw = without_flags(ctx.source.read_partition(plan.partition, *plan.source_reading()))
    ctx.plan = ctx.plan.bind(raw.schema, ctx.source.display)
    rows = raw.transform(with_desensitized(ctx.plan))
    t0 = time.perf_counter()
    with driver_errors():
        window, earlier = window_rows(ctx)
        stage = with_k_anonymity(plan.kanon, plan.partition, window)
        released = rows.transform(stage)
        try:
            if out is not None:
                released.write.mode("errorifexists").parquet(out)
        finally:
            stage.unpersist()
    return {**stage.summary, "window_partitions": earlier,
            "seconds": round(time.perf_counter() - t0, 3)}  # fmt: skip
