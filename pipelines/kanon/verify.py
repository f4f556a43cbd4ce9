"""Independent check of a k-anonymized table against its original.

Shares no code with the anonymizer (:mod:`pipelines.kanon.mondrian` and its
hierarchy class): it parses hierarchy rows and released cells itself, so a bug in
the producer cannot hide in a helper both use. Given the original records and the
released records in the same row order, it measures:

* suppression: released rows whose every QI is ``*``;
* equivalence classes: released rows grouped by their QI tuple; ``k`` = the
  smallest class (suppressed rows are not a class);
* ``l`` (distinct l-diversity) = the fewest distinct sensitive values in a class;
* truthfulness: every released cell covers the record's own raw value — a numeric
  cell ``[lo-hi]`` (or a plain number) contains it, a categorical cell is the raw
  value or one of its ancestors in the hierarchy, ``*`` covers everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

_RANGE = re.compile(r"^\[(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)-(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\]$")


@dataclass
class Check:
    """What the checker found; ``violations`` empty means every guarantee holds."""

    rows: int
    suppressed: int
    classes: int
    k: int | None
    l: int | None  # noqa: E741
    untruthful: dict[str, int]
    class_sizes: dict[str, float] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    discernibility: float | None = None
    prosecutor_risk: dict[str, float] = field(default_factory=dict)


def _numeric_covers(cell: str, raw: float) -> bool:
    if cell == "*":
        return True
    m = _RANGE.match(cell)
    if m:
        return float(m.group(1)) <= raw <= float(m.group(2))
    try:
        return float(cell) == raw
    except ValueError:
        return False


def check(
    original: pd.DataFrame,
    released: pd.DataFrame,
    *,
    numeric: list[str],
    hierarchies: dict[str, list[list[str]]],
    k: int,
    sensitive: str | None = None,
    l: int | None = None,  # noqa: E741
    max_suppressed: float = 0.0,
) -> Check:
    """Measure ``released`` (same rows, same order as ``original``) and list violations.

    ``hierarchies`` maps each categorical QI to its rows (raw value first, then its
    generalizations up to the root), as read from the ARX CSV file.
    """
    if len(original) != len(released):
        raise ValueError("original and released must have the same rows in the same order")
    qis = list(numeric) + list(hierarchies)
    rel = released[qis].astype(str).reset_index(drop=True)
    orig = original.reset_index(drop=True)
    suppressed_mask = (rel == "*").all(axis=1)
    kept = rel[~suppressed_mask]
    untruthful: dict[str, int] = {}
    for col in numeric:
        raw = pd.to_numeric(orig[col]).astype(float)
        ok = [_numeric_covers(c, r) for c, r in zip(rel[col], raw, strict=True)]
        untruthful[col] = ok.count(False)
    for col, rows in hierarchies.items():
        ancestors = {r[0].strip(): {c.strip() for c in r} for r in rows if r}
        ok = [
            c == "*" or c in ancestors.get(str(r), {str(r)})
            for c, r in zip(rel[col], orig[col].astype(str), strict=True)
        ]
        untruthful[col] = ok.count(False)
    out = Check(
        rows=len(rel),
        suppressed=int(suppressed_mask.sum()),
        classes=0,
        k=None,
        l=None,
        untruthful=untruthful,
    )
    if len(kept):
        sizes = kept.groupby(qis, sort=False, dropna=False).size()
        out.classes = int(len(sizes))
        out.k = int(sizes.min())
        out.class_sizes = {
            "min": float(sizes.min()),
            "median": float(sizes.median()),
            "mean": float(sizes.mean()),
            "max": float(sizes.max()),
        }
        if sensitive is not None:
            with_s = kept.assign(__s=orig.loc[kept.index, sensitive].to_numpy())
            out.l = int(with_s.groupby(qis, sort=False, dropna=False)["__s"].nunique().min())
    if out.k is not None and out.k < k:
        out.violations.append(f"k: smallest equivalence class has {out.k} records (< {k})")
    if l is not None and out.l is not None and out.l < l:
        out.violations.append(f"l: a class has only {out.l} distinct sensitive values (< {l})")
    if out.suppressed > max_suppressed * max(out.rows, 1):
        out.violations.append(
            f"suppression: {out.suppressed} of {out.rows} records (limit {max_suppressed:.1%})"
        )
    for col, n in untruthful.items():
        if n:
            out.violations.append(f"truthfulness: {n} released {col} values do not cover the raw")
    return out


def check_spark(
    df: Any,
    *,
    originals: dict[str, str],
    numeric: list[str],
    hierarchies: dict[str, list[list[str]]],
    k: int,
    sensitive: str | None = None,
    l: int | None = None,  # noqa: E741
) -> Check:
    """The same checks as :func:`check`, computed by Spark on a released DataFrame.

    ``df`` holds the released QI columns and, for each QI, its raw value in the
    column ``originals[qi]`` (so truthfulness is checked row by row without
    collecting anything); the driver receives a handful of counts.
    """
    from pyspark.sql import functions as F

    qis = list(numeric) + list(hierarchies)
    is_star = F.lit(True)
    for q in qis:
        is_star = is_star & (F.col(q) == "*")
    checks = [F.count(F.lit(1)).alias("rows"), F.sum(F.when(is_star, 1).otherwise(0)).alias("sup")]
    work = df
    for q in numeric:
        cell, raw = F.col(q), F.col(originals[q]).cast("double")
        lo = F.regexp_extract(cell, _RANGE.pattern, 1)
        hi = F.regexp_extract(cell, _RANGE.pattern, 2)
        covers = (
            (cell == "*")
            | ((lo != "") & (lo.cast("double") <= raw) & (raw <= hi.cast("double")))
            | (cell.rlike(r"^-?\d+(\.\d+)?$") & (cell.cast("double") == raw))
        )
        checks.append(F.sum(F.when(covers, 0).otherwise(1)).alias(f"u_{q}"))
    spark = df.sparkSession
    for i, (q, rows) in enumerate(hierarchies.items()):
        pairs = {(r[0].strip(), c.strip()) for r in rows if r for c in r}
        table = spark.createDataFrame(sorted(pairs), f"__raw{i} string, __lab{i} string")
        table = table.withColumn(f"__hit{i}", F.lit(True))
        same_raw = F.col(originals[q]).cast("string") == F.col(f"__raw{i}")
        work = work.join(F.broadcast(table), same_raw & (F.col(q) == F.col(f"__lab{i}")), "left")
        covers = (F.col(q) == "*") | F.col(f"__hit{i}").isNotNull()
        checks.append(F.sum(F.when(covers, 0).otherwise(1)).alias(f"u_{q}"))
    totals = work.agg(*checks).collect()[0]
    kept = df.where(~is_star)
    class_aggs = [F.count(F.lit(1)).alias("n")]
    if sensitive is not None:
        class_aggs.append(F.countDistinct(sensitive).alias("s"))
    classes = kept.groupBy(*qis).agg(*class_aggs)
    threshold = 0.2  # prosecutor risk threshold: records in classes smaller than 5
    summary = [
        F.count(F.lit(1)).alias("classes"),
        F.min("n").alias("k"),
        F.sum(F.col("n").cast("double") ** 2).alias("dm"),
        F.sum("n").alias("kept"),
        F.sum(F.when(1.0 / F.col("n") > threshold, F.col("n")).otherwise(0)).alias("risky"),
    ]
    if sensitive is not None:
        summary.append(F.min("s").alias("l"))
    c = classes.agg(*summary).collect()[0]
    out = Check(
        rows=int(totals["rows"]),
        suppressed=int(totals["sup"] or 0),
        classes=int(c["classes"]),
        k=int(c["k"]) if c["k"] is not None else None,
        l=int(c["l"]) if sensitive is not None and c["l"] is not None else None,
        untruthful={q: int(totals[f"u_{q}"] or 0) for q in qis},
    )
    kept_n = int(c["kept"] or 0)
    out.class_sizes = {"mean": kept_n / out.classes if out.classes else 0.0}
    # Discernibility (DM = Σ|EC|² + suppressed·N) and prosecutor risk, as in metrics.py.
    out.discernibility = float(c["dm"] or 0) + out.suppressed * out.rows
    out.prosecutor_risk = {
        "highest": 1.0 / out.k if out.k else 0.0,
        "average": out.classes / kept_n if kept_n else 0.0,
        "threshold": threshold,
        "records_above": float(c["risky"] or 0) / kept_n if kept_n else 0.0,
    }
    if out.k is not None and out.k < k:
        out.violations.append(f"k: smallest equivalence class has {out.k} records (< {k})")
    if l is not None and out.l is not None and out.l < l:
        out.violations.append(f"l: a class has only {out.l} distinct sensitive values (< {l})")
    for q, n in out.untruthful.items():
        if n:
            out.violations.append(f"truthfulness: {n} released {q} values do not cover the raw")
    return out
