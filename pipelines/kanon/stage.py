"""The k-anonymity stage of a run: anonymize the desensitized partition, verify it.

The raw value of every QI is kept in a hidden column while Mondrian runs, so the
independent Spark checker (:func:`pipelines.kanon.verify.check_spark`) can test
truthfulness row by row; then the hidden columns are dropped. A violated
guarantee fails the run before anything is staged. The output gate checks k and l
again on the staged files.
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
from pipelines.kanon.mondrian import QI, CategoricalQI, NumericQI
from pipelines.kanon.spark import spark_mondrian
from pipelines.kanon.verify import check_spark
from pipelines.spec.models import KAnonymity

RAW = "__kanon_raw_"


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
        if q.type == "numeric":
            qis.append(NumericQI(name))
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


def anonymize(
    df: DataFrame,
    ka: KAnonymity,
    partition: str,
    loaded: tuple[list[QI], dict[str, list[list[str]]]] | None = None,
) -> tuple[DataFrame, dict[str, Any], DataFrame]:
    """k-anonymize ``df`` and verify it.

    ``loaded`` is :func:`load_qis`'s result when the caller already has it.
    Returns the released rows, a summary for the manifest, and the persisted frame
    they are read from (the caller unpersists it after writing).
    """
    qis, rows_of = loaded if loaded is not None else load_qis(ka)
    names = list(ka.quasi_identifiers)
    l = ka.l_diversity.l if ka.l_diversity else 1  # noqa: E741
    with_raw = df.select("*", *[F.col(n).alias(RAW + n) for n in names])
    anon = spark_mondrian(
        with_raw, qis, ka.k, sensitive=ka.sensitive, l=l, local_rows=ka.local_rows
    ).persist(StorageLevel.MEMORY_AND_DISK)
    report = check_spark(
        anon,
        originals={n: RAW + n for n in names},
        numeric=[q.name for q in qis if isinstance(q, NumericQI)],
        hierarchies=rows_of,
        k=ka.k,
        sensitive=ka.sensitive,
        l=l if ka.l_diversity else None,
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
        "l": l if ka.l_diversity else None,
        "quasi_identifiers": names,
        "classes": report.classes,
        "smallest_class": report.k,
        "fewest_sensitive_values": report.l,
        "suppressed": report.suppressed,
        "untruthful_cells": sum(report.untruthful.values()),
        "mean_class_size": report.class_sizes.get("mean"),
        "discernibility": report.discernibility,
        "dm_normalized": report.discernibility / report.rows**2 if report.rows else 0.0,
        "prosecutor_risk": report.prosecutor_risk,
        "verified_by": "pipelines.kanon.verify.check_spark",
    }
    return anon.drop(*[RAW + n for n in names]), summary, anon
