"""What every step of a run shares: the run's context, its result, and opening it.

:func:`open_run` starts (or reuses) the Spark session and opens the plan's source
and sink tables; :class:`RunContext` carries them, the plan and the step's timings
through :mod:`pipelines.runner`'s steps.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import QualityGateFailed
from pipelines.manifest import Manifest
from pipelines.plan import RunPlan
from pipelines.records import GateResult, QuarantineNote, RunIdentity, RunState

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from pipelines.spec import PipelineSpec
    from pipelines.storage.base import Staged, Table

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def now() -> str:
    """The current UTC time as ISO 8601 with seconds (what records hold).

    Returns:
        ``YYYY-MM-DDTHH:MM:SS+00:00``.
    """
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class RunResult:
    """What one run (or step) did; also the CLI's ``--json`` payload.

    Attributes:
        run_id: The run.
        pipeline: The spec's name.
        partition: The partition value.
        status: ``staged``, ``validated`` or ``published``.
        input_rows: Rows read.
        output_rows: Rows staged or published.
        published: The published (or staged) location.
        record: The run's manifest once published, else its state.
    """

    run_id: str
    pipeline: str
    partition: str
    status: str
    input_rows: int
    output_rows: int
    published: str
    record: Manifest | RunState = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """The JSON summary (without the full record).

        Returns:
            Run id, pipeline, partition, status, row counts, location and timings.
        """
        fields = ("run_id", "pipeline", "partition", "status", "input_rows", "output_rows")
        return {**{f: getattr(self, f) for f in fields}, "published": self.published,
                "timings": self.record.timings}  # fmt: skip


@dataclass
class RunContext:
    """What every step of one partition's run shares: plan, session, tables, timings.

    Attributes:
        plan: The run plan (bound to the source schema once it is known).
        spark: The session.
        warehouse: The warehouse root.
        source: The source table.
        sink: The sink table.
        docs_root: Where the Data Docs site goes (:func:`docs_root`).
        progress: Reports a step to the user (the CLI's status line).
        timings: Phase -> seconds of this step.
        source_version: Read an Iceberg or Delta source as of this snapshot id or
            version (None: the current one).
        source_pin: The run key record the version read is written to as soon as
            it is known (an orchestrated ``desensitize`` step; None otherwise).
    """

    plan: RunPlan
    spark: SparkSession
    warehouse: Path
    source: Table
    sink: Table
    docs_root: Path
    progress: Progress
    timings: dict[str, float] = field(default_factory=dict)
    source_version: str | None = None
    source_pin: Path | None = None
    _mark: float = field(default_factory=time.perf_counter)

    def lap(self, name: str) -> None:
        """Record the seconds since the previous lap under ``name``.

        Args:
            name: The phase.
        """
        t = time.perf_counter()
        self.timings[name] = round(t - self._mark, 3)
        self._mark = t

    def identity(self, run_id: str) -> RunIdentity:
        """The identity of a run of this plan.

        Args:
            run_id: The run.

        Returns:
            Its identity.
        """
        p = self.plan
        return RunIdentity(run_id, p.spec.name, p.partition, p.spec_hash, p.code_version)

    def staged(self, run_id: str) -> Staged:
        """The staging location of a run of this partition.

        Args:
            run_id: The run.

        Returns:
            Its handle.
        """
        return self.sink.staged(run_id, self.plan.partition)

    def quarantine(self, state: RunState, gate: GateResult, staged: Staged | None) -> str:
        """Quarantine a run that failed a gate, with the gate results.

        Args:
            state: The run's state so far.
            gate: The failed gate.
            staged: Its staged data, or None if nothing was staged.

        Returns:
            The one-line message of the :class:`QualityGateFailed` to raise (the failed
            checks with their counts, and where the quarantined run is).
        """
        note = QuarantineNote(state.identity, now(), gate.stage, {**state.gates, gate.stage: gate})
        run_id, partition = state.identity.run_id, self.plan.partition
        where = self.sink.quarantine(staged, partition, run_id, note)
        log.error("run %s: partition %s failed the %s gate", run_id, partition, gate.stage)
        kept = "gate result and data" if staged is not None else "gate result"
        return (
            f"partition {partition}: {gate.stage} gate failed: {gate.describe_failures()}; "
            f"nothing published; {kept} in {where}"
        )

    @contextlib.contextmanager
    def discard_on_failure(self, staged: Staged) -> Iterator[None]:
        """Discard the staged run if the block fails (a failed gate moved it already).

        Args:
            staged: The staged run.

        Yields:
            Nothing.

        Raises:
            QualityGateFailed: Re-raised unchanged; the failed gate quarantined the run.
            BaseException: Any other failure of the block, re-raised after the staged run
                is discarded.
        """
        try:
            yield
        except QualityGateFailed:
            raise
        except BaseException:
            self.sink.discard(staged)
            log.error(
                "run %s: partition %s failed; nothing published", staged.run_id, staged.partition
            )
            raise


def docs_root(spec: PipelineSpec, warehouse: Path, explicit: bool) -> Path:
    """Where a spec's Data Docs site lives: the warehouse, or beside a path sink.

    A path sink run without a warehouse given (no ``--warehouse``, no
    ``$ANONYMIZE_WAREHOUSE``) keeps its Data Docs under ``<sink>/_quality/`` rather
    than in a ``./warehouse`` the user never asked for.

    Args:
        spec: The pipeline spec.
        warehouse: The warehouse root in use.
        explicit: Whether a warehouse was given.

    Returns:
        The directory holding ``_quality/``.
    """
    from pipelines.storage import layout

    if spec.sink.path is not None and spec.sink.format in ("parquet", "csv") and not explicit:
        return layout.table_dir(warehouse, spec.sink.path, None)
    return warehouse


def open_run(
    plan: RunPlan, master: str | None, conf: dict[str, str] | None, warehouse: str | None,
    progress: Progress | None,
) -> RunContext:  # fmt: skip
    """Start (or reuse) the Spark session and open the plan's source and sink.

    Args:
        plan: The run plan.
        master: Spark master URL (default: local, or what spark-submit set).
        conf: Extra Spark properties.
        warehouse: The warehouse root (default: ``$ANONYMIZE_WAREHOUSE`` or ``./warehouse``).
        progress: Reports steps to the user, or None.

    Returns:
        The run's context.
    """
    from pipelines.session import (
        get_session,
        import_gx_in_background,
        session_warehouse,
        warehouse_given,
    )
    from pipelines.storage.base import open_table

    t0 = time.perf_counter()
    report = progress or (lambda _msg: None)
    report("starting Spark")
    import_gx_in_background()  # the gates need it next
    spark = get_session(master=master, conf=conf, warehouse=warehouse)
    wh = session_warehouse(spark)
    spec = plan.spec
    ctx = RunContext(
        plan=plan,
        spark=spark,
        warehouse=wh,
        source=open_table(spec.source, spec.partition_column, wh, spark),
        sink=open_table(spec.sink, spec.partition_column, wh, spark, spec.quarantine_root(wh)),
        docs_root=docs_root(spec, wh, warehouse_given(warehouse)),
        progress=report,
        _mark=t0,
    )
    ctx.lap("session")
    return ctx
