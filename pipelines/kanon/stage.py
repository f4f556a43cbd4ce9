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

import csv
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from pipelines.errors import InternalError, PipelinesError, SpecError
from pipelines.kanon.hierarchy import Hierarchy
from pipelines.kanon.metrics import information_loss_spark
from pipelines.kanon.mondrian import QI, CategoricalQI, NumericQI
from pipelines.kanon.privacy import Requirement
from pipelines.kanon.spark import spark_mondrian
from pipelines.kanon.verify import Asked, check_spark
from pipelines.spec.models import KAnonymity

RAW = "__kanon_raw_"
COUNTED = "__kanon_counted"


def _rows(path: str, where: str) -> list[list[str]]:
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{where}: hierarchy file {path} does not exist")
    with p.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh, delimiter=";"))


def load_qis(ka: KAnonymity) -> tuple[list[QI], dict[str, list[list[str]]]]:
    """The kernel's QI objects and the raw hierarchy rows (for the checker)."""
    qis: list[QI] = []
    rows_of: dict[str, list[list[str]]] = {}
    for name, q in ka.quasi_identifiers.items():
        if q.type in ("numeric", "date"):
            qis.append(NumericQI(name, date=q.type == "date"))
            continue
        where = f"k_anonymity.quasi_identifiers.{name}.hierarchy"
        rows = _rows(q.hierarchy, where)
        try:
            qis.append(CategoricalQI(name, Hierarchy.from_rows(Path(q.hierarchy).name, rows)))
        except ValueError as exc:
            raise SpecError(f"{where}: {exc}") from None
        rows_of[name] = rows
    return qis, rows_of


def released_schema(schema: StructType, ka: KAnonymity) -> StructType:
    """The output schema once the QIs are generalized (QIs become strings)."""
    return StructType(
        [
            StructField(f.name, StringType(), True) if f.name in ka.quasi_identifiers else f
            for f in schema.fields
        ]
    )


def requirement(ka: KAnonymity) -> Requirement:
    """What every class must meet (the producer's view of the spec)."""
    ld, tc = ka.l_diversity, ka.t_closeness
    return Requirement(
        k=ka.k,
        l=ld.l if ld else 1,
        l_kind=ld.kind if ld else "distinct",
        c=ld.c if ld else None,
        t=tc.t if tc else None,
        ordered=bool(tc and tc.distance == "ordered"),
    )


def asked(ka: KAnonymity) -> Asked:
    """What the checker verifies (the checker's view of the same spec)."""
    ld, tc = ka.l_diversity, ka.t_closeness
    return Asked(
        k=ka.k,
        l=ld.l if ld else None,
        l_kind=ld.kind if ld else "distinct",
        c=ld.c if ld else None,
        t=tc.t if tc else None,
        ordered=bool(tc and tc.distance == "ordered"),
    )


def _check_nulls(df: DataFrame, names: list[str], partition: str) -> None:
    counts = df.agg(*[F.sum(F.col(n).isNull().cast("long")).alias(n) for n in names]).first()
    bad = [f"{n} ({counts[n]} rows)" for n in names if counts[n]]
    if bad:
        raise SpecError(
            f"partition {partition}: k_anonymity needs non-null quasi-identifiers and "
            f"sensitive values; null in: {', '.join(bad)}"
        )


def anonymize(
    df: DataFrame,
    ka: KAnonymity,
    partition: str,
    loaded: tuple[list[QI], dict[str, list[list[str]]]] | None = None,
    window: DataFrame | None = None,
) -> tuple[DataFrame, dict[str, Any], DataFrame]:
    """k-anonymize ``df`` and verify it.

    ``loaded`` is :func:`load_qis`'s result when the caller already has it.
    ``window``: the earlier partitions' desensitized rows (same columns), which
    shape the classes but are not released. Returns the released rows, a summary
    for the manifest, and the persisted frame they are read from (the caller
    unpersists it after writing).
    """
    qis, rows_of = loaded if loaded is not None else load_qis(ka)
    names = list(ka.quasi_identifiers)
    dates = [q.name for q in qis if isinstance(q, NumericQI) and q.date]
    numeric = [q.name for q in qis if isinstance(q, NumericQI) and not q.date]
    checked = names + ([ka.sensitive] if ka.sensitive else [])
    _check_nulls(df, checked, partition)

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
    req = requirement(ka)
    anon = (
        spark_mondrian(
            rows,
            qis,
            req,
            sensitive=ka.sensitive if req.needs_sensitive else None,
            counted=COUNTED if window is not None else None,
            local_rows=ka.local_rows,
        )
        .where(F.col(COUNTED))
        .drop(COUNTED)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    report = check_spark(
        anon,
        originals={n: RAW + n for n in names},
        numeric=numeric,
        dates=dates,
        hierarchies=rows_of,
        asked=asked(ka),
        sensitive=ka.sensitive if req.needs_sensitive else None,
    )
    allowed = ka.max_suppression * report.rows
    if report.suppressed > allowed:
        anon.unpersist()
        raise PipelinesError(
            f"partition {partition}: k-anonymity needs {report.suppressed} of {report.rows} "
            f"records suppressed (k_anonymity.max_suppression allows {ka.max_suppression:.1%})"
        )
    if report.violations:
        anon.unpersist()
        raise InternalError(
            f"partition {partition}: k-anonymity verification failed: "
            + "; ".join(report.violations)
        )
    summary = {
        "k": ka.k,
        "l": ka.l_diversity.model_dump() if ka.l_diversity else None,
        "t": ka.t_closeness.model_dump() if ka.t_closeness else None,
        "window": ka.window,
        "quasi_identifiers": names,
        "classes": report.classes,
        "smallest_class": report.k,
        "fewest_sensitive_values": report.l,
        "entropy_l": report.entropy_l,
        "recursive_ratio": report.recursive_ratio,
        "largest_t": report.t,
        "suppressed": report.suppressed,
        "untruthful_cells": sum(report.untruthful.values()),
        "mean_class_size": report.class_sizes.get("mean"),
        "discernibility": report.discernibility,
        "dm_normalized": report.discernibility / report.rows**2 if report.rows else 0.0,
        "prosecutor_risk": report.prosecutor_risk,
        "verified_by": "pipelines.kanon.verify.check_spark",
        **information_loss_spark(
            anon,
            originals={n: RAW + n for n in names},
            numeric=numeric,
            dates=dates,
            hierarchies=rows_of,
        ),
    }
    return anon.drop(*[RAW + n for n in names]), summary, anon
