"""The k-anonymity stage of a run: anonymize the desensitized partition, verify it.

The raw value of every QI is kept in a hidden column while Mondrian runs, so the
independent Spark checker (:func:`pipelines.kanon.verify.check_spark`) can test
truthfulness row by row; then the hidden columns are dropped. A violated
guarantee fails the run before anything is staged. The output gate checks k, l
and t again on the staged files.

Window: with ``k_anonymity.window: N``, the desensitized rows of the partitions of
the N − 1 preceding days are anonymized together with the current partition's.
Only the current partition's records count towards k, l and t (so every released
class holds at least k of them, and the gate's per-partition check still applies),
but the earlier days' records move the split points and are released in the same
classes, so a person present on consecutive days tends to fall into the same
class boxes instead of fresh ones each day. This narrows, not closes, the
intersection attack across days (see README).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.errors import InternalError, PipelinesError, SpecError
from pipelines.kanon.metrics import information_loss_spark
from pipelines.kanon.mondrian import CategoricalQI, NumericQI
from pipelines.kanon.spark import spark_mondrian
from pipelines.kanon.verify import check_spark

if TYPE_CHECKING:
    from pipelines.kanon.plan import KAnonymityPlan
    from pipelines.partition import Partition

RAW = "__kanon_raw_"
COUNTED = "__kanon_counted"


def _check_inputs(df: DataFrame, plan: KAnonymityPlan, where: str) -> None:
    """Fail before any Mondrian work on rows the stage cannot take (on the driver).

    Quasi-identifiers and the sensitive column must be non-null, and every value of a
    categorical QI must be a leaf of its hierarchy. Raised here, the error names the
    column and counts (never values); raised inside a Spark worker it would arrive
    as a Python traceback.
    """
    ka = plan.spec
    names = plan.names + ([ka.sensitive] if ka.sensitive else [])
    counts = df.agg(*[F.sum(F.col(n).isNull().cast("long")).alias(n) for n in names]).first()
    bad = [f"{n} ({counts[n]} rows)" for n in names if counts[n]]
    if bad:
        raise SpecError(
            f"{where}: k_anonymity needs non-null quasi-identifiers and "
            f"sensitive values; null in: {', '.join(bad)}"
        )
    spark = df.sparkSession
    for q in plan.qis:
        if isinstance(q, CategoricalQI):
            leaves = spark.createDataFrame([(v,) for v in q.hierarchy.leaves], "__leaf string")
            values = df.select(F.col(q.name).cast("string").alias("__leaf")).distinct()
            unknown = values.join(F.broadcast(leaves), "__leaf", "left_anti").count()
            if unknown:
                raise SpecError(
                    f"{where}: k_anonymity.quasi_identifiers.{q.name}: {unknown} distinct "
                    f"value(s) are not in the hierarchy {q.hierarchy.name} (values are not "
                    "printed); add them to the hierarchy file"
                )


class KAnonymityStage:
    """The k-anonymity stage as a transform: ``released = desensitized.transform(stage)``.

    Calling it runs Mondrian and the independent verification (Spark jobs), then
    leaves the released rows persisted: :attr:`summary` holds what the manifest
    records, and :meth:`unpersist` frees the cache once the rows are written.
    """

    def __init__(
        self, plan: KAnonymityPlan, partition: Partition, window: DataFrame | None = None
    ) -> None:
        """Set up the stage; nothing runs until it is called.

        Args:
            plan: The run plan's k-anonymity part.
            partition: The partition being released (for messages).
            window: The earlier partitions' desensitized rows (same columns), which shape
                the classes but are not released; None without a window.
        """
        self.plan = plan
        self.partition = partition
        self.window = window
        self.summary: dict[str, Any] = {}
        self._persisted: DataFrame | None = None

    def unpersist(self) -> None:
        """Free the cached released rows (after they were written)."""
        if self._persisted is not None:
            self._persisted.unpersist()
            self._persisted = None

    def __call__(self, df: DataFrame) -> DataFrame:
        """k-anonymize ``df`` and verify the result.

        A quasi-identifier or the sensitive column holding nulls in ``df`` raises SpecError
        (from the null check) before Mondrian runs.

        Args:
            df: The partition's desensitized rows.

        Returns:
            The released rows (quasi-identifiers generalized to strings).

        Raises:
            PipelinesError: More records would be suppressed than ``max_suppression``.
            InternalError: The independent checker found a violated guarantee.
        """
        ka, names = self.plan.spec, self.plan.names
        # The input checks and Mondrian each read the desensitized rows: computed once,
        # kept until the released rows are (the checker's first job caches those).
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        window = self.window
        if window is not None:
            window = window.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            _check_inputs(df, self.plan, f"partition {self.partition}")
            if window is not None:
                where = f"the window before partition {self.partition}"
                _check_inputs(window, self.plan, where)
            anon = self._anonymized(df, window)
            report = check_spark(
                anon,
                **self._columns(),
                hierarchies=dict(self.plan.hierarchy_rows),
                guarantees=self.plan.guarantees,
                sensitive=self._sensitive,
            )
        finally:
            df.unpersist()
            if window is not None:
                window.unpersist()
        if report.suppressed > ka.max_suppression * report.rows:
            self.unpersist()
            raise PipelinesError(
                f"partition {self.partition}: k-anonymity needs {report.suppressed} of "
                f"{report.rows} records suppressed (k_anonymity.max_suppression allows "
                f"{ka.max_suppression:.1%})"
            )
        if report.violations:
            self.unpersist()
            raise InternalError(
                f"partition {self.partition}: k-anonymity verification failed: "
                + "; ".join(report.violations)
            )
        self.summary = self._summary(anon, report)
        return anon.drop(*[RAW + n for n in names])

    @property
    def _sensitive(self) -> str | None:
        """The sensitive column, where l-diversity or t-closeness needs it."""
        return self.plan.spec.sensitive if self.plan.requirement.needs_sensitive else None

    def _columns(self) -> dict[str, Any]:
        """The checker's and the metrics' view of the QIs: raw copies, numeric, dates."""
        qis = self.plan.qis
        return {
            "originals": {n: RAW + n for n in self.plan.names},
            "numeric": [q.name for q in qis if isinstance(q, NumericQI) and not q.date],
            "dates": [q.name for q in qis if isinstance(q, NumericQI) and q.date],
        }

    def _anonymized(self, df: DataFrame, window: DataFrame | None) -> DataFrame:
        """Mondrian over the partition (and the window), persisted, raw QIs kept aside."""
        names, dates = self.plan.names, self._columns()["dates"]

        def prepare(frame: DataFrame, counted: bool) -> DataFrame:
            out = frame.select(
                "*", *[F.col(n).alias(RAW + n) for n in names], F.lit(counted).alias(COUNTED)
            )
            for n in dates:  # days since the epoch; released as ISO dates
                out = out.withColumn(n, F.datediff(F.to_date(F.col(n)), F.lit("1970-01-01")))
            return out

        rows = prepare(df, True)
        if window is not None:
            rows = rows.unionByName(prepare(window, False))
        anon = spark_mondrian(
            rows,
            list(self.plan.qis),
            self.plan.requirement,
            sensitive=self._sensitive,
            counted=COUNTED if window is not None else None,
            local_rows=self.plan.spec.local_rows,
        )
        self._persisted = (
            anon.where(F.col(COUNTED)).drop(COUNTED).persist(StorageLevel.MEMORY_AND_DISK)
        )
        return self._persisted

    def _summary(self, anon: DataFrame, report: Any) -> dict[str, Any]:
        """What the manifest records: the guarantees asked and measured, utility, risk."""
        ka = self.plan.spec
        return {
            "k": ka.k,
            "l": ka.l_diversity.model_dump() if ka.l_diversity else None,
            "t": ka.t_closeness.model_dump() if ka.t_closeness else None,
            "window": ka.window,
            "quasi_identifiers": self.plan.names,
            "classes": report.classes,
            "smallest_class": report.k,
            "fewest_sensitive_values": report.l,
            "entropy_l": report.entropy_l,
            "recursive_ratio": report.recursive_ratio,
            "largest_t": report.t,
            "suppressed": report.suppressed,
            "untruthful_cells": sum(report.untruthful.values()),
            "mean_class_size": report.class_sizes.get("mean"),
            "class_size_histogram": report.class_histogram,
            "discernibility": report.discernibility,
            "dm_normalized": report.discernibility / report.rows**2 if report.rows else None,
            "prosecutor_risk": report.prosecutor_risk,
            "verified_by": "pipelines.kanon.verify.check_spark",
            **information_loss_spark(
                anon, **self._columns(), hierarchies=dict(self.plan.hierarchy_rows)
            ),
        }


def with_k_anonymity(
    plan: KAnonymityPlan, partition: Partition, window: DataFrame | None = None
) -> KAnonymityStage:
    """The k-anonymity stage of a run, for ``df.transform``.

    Args:
        plan: The run plan's k-anonymity part.
        partition: The partition being released.
        window: The earlier partitions' desensitized rows, or None.

    Returns:
        The stage (call it on the desensitized rows; then read its ``summary``).
    """
    return KAnonymityStage(plan, partition, window)
