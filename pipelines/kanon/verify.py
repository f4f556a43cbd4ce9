"""Independent check of a k-anonymized table against its original.

Shares no code with the anonymizer (:mod:`pipelines.kanon.mondrian` and its
hierarchy class): it parses hierarchy rows and released cells itself, so a bug in
the producer cannot hide in a helper both use. Given the original records and the
released records in the same row order, it measures:

* suppression: released rows whose every QI is ``*``;
* equivalence classes: released rows grouped by their QI tuple; ``k`` = the
  smallest class (suppressed rows are not a class);
* l-diversity of the sensitive column per class, with counts c₁ ≥ … ≥ c_m of its
  values in the class and n = Σc: ``l`` = the fewest distinct values in a class;
  ``entropy_l`` = exp(min over classes of −Σ (c/n)·ln(c/n)); ``recursive_ratio`` =
  the largest c₁ / (c_l + … + c_m) (recursive (c,l)-diversity holds iff it is < c);
* ``t`` = the largest Earth Mover's Distance between a class's sensitive
  distribution p and the whole table's q: ½·Σ|pᵢ − qᵢ| (equal distance) or
  Σᵢ|Σ_{j≤i}(pⱼ − qⱼ)| / (m − 1) over the values in sort order (ordered distance);
* truthfulness: every released cell covers the record's own raw value — a numeric
  cell ``[lo-hi]`` (or a plain number) contains it, a date cell
  ``[YYYY-MM-DD-YYYY-MM-DD]`` (or one date) likewise, a categorical cell is the raw
  value or one of its ancestors in the hierarchy, ``*`` covers everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# A released plain number, as Mondrian prints it (``repr`` of a float may use an exponent).
_NUMBER = r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$"
_RANGE = re.compile(r"^\[(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)-(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\]$")
_DATE = r"\d{4}-\d{2}-\d{2}"
_DATE_RANGE = re.compile(rf"^\[({_DATE})-({_DATE})\]$")
TOLERANCE = 1e-9  # floating-point slack on entropy and distances
#: Lower edges of the class-size histogram's bins (the last bin is open): every size
#: up to 10, where k usually lies, then wider bins.
CLASS_SIZE_BINS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 30, 50, 100, 200, 500, 1000, 10_000)


def class_size_histogram(classes: list[int], records: list[int]) -> list[dict[str, Any]]:
    """The histogram of equivalence-class sizes, trimmed to its non-empty span.

    Args:
        classes: Classes per bin of :data:`CLASS_SIZE_BINS`.
        records: Records in those classes, per bin.

    Returns:
        ``[{"from": lo, "to": hi or None, "classes": n, "records": r}, ...]`` from the
        first to the last non-empty bin; ``[]`` when there is no class.
    """
    bins = [
        {"from": lo, "to": (hi - 1 if hi else None), "classes": int(c), "records": int(r)}
        for lo, hi, c, r in zip(
            CLASS_SIZE_BINS, [*CLASS_SIZE_BINS[1:], None], classes, records, strict=True
        )
    ]
    used = [i for i, b in enumerate(bins) if b["classes"]]
    return bins[used[0] : used[-1] + 1] if used else []


@dataclass(frozen=True)
class Guarantees:
    """The guarantees to check: k, and optionally l-diversity and t-closeness."""

    k: int
    l: int | None = None  # noqa: E741
    l_kind: str = "distinct"
    c: float | None = None
    t: float | None = None
    ordered: bool = False


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
    class_histogram: list[dict[str, Any]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    discernibility: float | None = None
    prosecutor_risk: dict[str, float] = field(default_factory=dict)
    entropy_l: float | None = None
    recursive_ratio: float | None = None
    t: float | None = None

    def judge(self, guarantees: Guarantees) -> None:
        """Append a violation for every guarantee in ``guarantees`` that does not hold.

        Measures that were not computed (None) are not judged.

        Args:
            guarantees: The guarantees the release promises.
        """
        if self.k is not None and self.k < guarantees.k:
            self.violations.append(
                f"k: smallest equivalence class has {self.k} records (< {guarantees.k})"
            )
        if guarantees.l is not None and self.l is not None:
            if self.l < guarantees.l:
                self.violations.append(
                    f"l: a class has only {self.l} distinct sensitive values (< {guarantees.l})"
                )
            elif guarantees.l_kind == "entropy" and self.entropy_l < guarantees.l * (1 - TOLERANCE):
                self.violations.append(
                    f"l: a class has entropy l {self.entropy_l:.4f} (< {guarantees.l})"
                )
            elif guarantees.l_kind == "recursive" and not self.recursive_ratio < guarantees.c:
                self.violations.append(
                    f"l: a class has c₁/(c_l+…+c_m) = {self.recursive_ratio:.4f} "
                    f"(recursive ({guarantees.c},{guarantees.l})-diversity needs < {guarantees.c})"
                )
        if guarantees.t is not None and self.t is not None and self.t > guarantees.t + TOLERANCE:
            self.violations.append(f"t: a class is at distance {self.t:.4f} (> {guarantees.t})")
        for col, n in self.untruthful.items():
            if n:
                self.violations.append(
                    f"truthfulness: {n} released {col} values do not cover the raw"
                )


def _date_covers(cell: str, raw: str) -> bool:
    if cell == "*":
        return True
    m = _DATE_RANGE.match(cell)
    if m:
        return m.group(1) <= raw <= m.group(2)  # ISO dates order as strings
    return cell == raw


def _diversity(counts: np.ndarray, q: np.ndarray, l: int | None) -> dict[str, Any]:  # noqa: E741
    """Class measures from a classes × values count matrix (values in sort order).

    ``q``: the whole table's distribution over the same values.
    """
    n = counts.sum(axis=1, keepdims=True)
    p = counts / n
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0).sum(axis=1)
        desc = -np.sort(-counts, axis=1)
        tail = desc[:, (l or 1) - 1 :].sum(axis=1)
        ratio = np.where(tail > 0, desc[:, 0] / np.where(tail > 0, tail, 1), np.inf)
    m = counts.shape[1]
    equal = np.abs(p - q).sum(axis=1) / 2
    ordered = np.abs(np.cumsum(p - q, axis=1)).sum(axis=1) / (m - 1) if m > 1 else equal * 0
    return {
        "l": int((counts > 0).sum(axis=1).min()),
        "entropy_l": float(np.exp(entropy.min())),
        "recursive_ratio": float(ratio.max()),
        "t_equal": float(equal.max()),
        "t_ordered": float(ordered.max()),
    }


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
    l_kind: str = "distinct",
    c: float | None = None,
    t: float | None = None,
    ordered: bool = False,
    dates: list[str] = (),
    max_suppressed: float = 0.0,
) -> Check:
    """Measure ``released`` (same rows, same order as ``original``) and list violations.

    ``hierarchies`` maps each categorical QI to its rows (raw value first, then its
    generalizations up to the root), as read from the ARX CSV file. ``dates``: QIs
    whose raw values are dates (``datetime.date`` or ISO strings).

    Args:
        original: The records before anonymization.
        released: The anonymized records, same rows in the same order.
        numeric: The numeric QIs.
        hierarchies: Categorical QI -> its hierarchy rows.
        k: The minimum class size to check.
        sensitive: The sensitive column, for l-diversity and t-closeness measures.
        l: The l of l-diversity to check, or None.
        l_kind: ``distinct``, ``entropy`` or ``recursive``.
        c: The c of recursive (c,l)-diversity.
        t: The t of t-closeness to check, or None.
        ordered: Judge t by the ordered distance (numeric sensitive values) rather than
            the equal distance.
        dates: The date QIs.
        max_suppressed: The largest share of suppressed records that is not a violation.

    Returns:
        The measures, with ``violations`` empty when every guarantee holds.

    Raises:
        ValueError: ``original`` and ``released`` differ in length.
    """
    if len(original) != len(released):
        raise ValueError("original and released must have the same rows in the same order")
    qis = list(numeric) + list(dates) + list(hierarchies)
    rel = released[qis].astype(str).reset_index(drop=True)
    orig = original.reset_index(drop=True)
    suppressed_mask = (rel == "*").all(axis=1)
    kept = rel[~suppressed_mask]
    untruthful: dict[str, int] = {}
    for col in numeric:
        raw = pd.to_numeric(orig[col]).astype(float)
        ok = [_numeric_covers(c, r) for c, r in zip(rel[col], raw, strict=True)]
        untruthful[col] = ok.count(False)
    for col in dates:
        raw = orig[col].astype(str)
        ok = [_date_covers(c, r) for c, r in zip(rel[col], raw, strict=True)]
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
        which = np.searchsorted(CLASS_SIZE_BINS, sizes.to_numpy(), side="right") - 1
        per_bin = np.bincount(which, minlength=len(CLASS_SIZE_BINS))
        rec_bin = np.bincount(which, weights=sizes.to_numpy(), minlength=len(CLASS_SIZE_BINS))
        out.class_histogram = class_size_histogram(per_bin.tolist(), rec_bin.tolist())
        if sensitive is not None:
            values = orig[sensitive]
            with_s = kept.assign(__s=values.loc[kept.index].to_numpy())
            counts = with_s.groupby([*qis, "__s"], dropna=False).size().unstack(fill_value=0)
            domain = sorted(values.unique())
            counts = counts.reindex(columns=domain, fill_value=0).to_numpy(dtype=float)
            q = values.value_counts().reindex(domain).to_numpy(dtype=float) / len(values)
            d = _diversity(counts, q, l)
            out.l, out.entropy_l, out.recursive_ratio = d["l"], d["entropy_l"], d["recursive_ratio"]
            out.t = d["t_ordered"] if ordered else d["t_equal"]
    out.judge(Guarantees(k, l, l_kind, c, t, ordered))
    if out.suppressed > max_suppressed * max(out.rows, 1):
        out.violations.append(
            f"suppression: {out.suppressed} of {out.rows} records (limit {max_suppressed:.1%})"
        )
    return out


def check_spark(
    df: Any,
    *,
    originals: dict[str, str],
    numeric: list[str],
    hierarchies: dict[str, list[list[str]]],
    guarantees: Guarantees,
    sensitive: str | None = None,
    dates: list[str] = (),
) -> Check:
    """The same checks as :func:`check`, computed by Spark on a released DataFrame.

    ``df`` holds the released QI columns and, for each QI, its raw value in the
    column ``originals[qi]`` (so truthfulness is checked row by row without
    collecting anything); the driver receives a handful of numbers, plus the sorted
    sensitive values when l-diversity or t-closeness is checked.

    Args:
        df: The released rows with the raw QI values alongside (a Spark DataFrame).
        originals: QI -> the column of ``df`` holding its raw value.
        numeric: The numeric QIs.
        hierarchies: Categorical QI -> its hierarchy rows.
        guarantees: The guarantees to judge.
        sensitive: The sensitive column, for l-diversity and t-closeness measures.
        dates: The date QIs.

    Returns:
        The measures (with ``class_sizes`` holding the mean only, the class-size
        histogram, discernibility and prosecutor risk at threshold 0.2), with
        ``violations`` empty when every guarantee holds. Suppression is measured, not
        judged: the caller applies its limit.
    """
    from pyspark.sql import functions as F

    qis = list(numeric) + list(dates) + list(hierarchies)
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
            | (cell.rlike(_NUMBER) & (cell.cast("double") == raw))
        )
        checks.append(F.sum(F.when(covers, 0).otherwise(1)).alias(f"u_{q}"))
    for q in dates:
        cell, raw = F.col(q), F.col(originals[q]).cast("date").cast("string")
        lo = F.regexp_extract(cell, _DATE_RANGE.pattern, 1)
        hi = F.regexp_extract(cell, _DATE_RANGE.pattern, 2)
        covers = (cell == "*") | ((lo != "") & (lo <= raw) & (raw <= hi)) | (cell == raw)
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
    classes = kept.groupBy(*qis).agg(F.count(F.lit(1)).alias("n"))
    threshold = 0.2  # prosecutor risk threshold: records in classes smaller than 5
    summary = [
        F.count(F.lit(1)).alias("classes"),
        F.min("n").alias("k"),
        F.sum(F.col("n").cast("double") ** 2).alias("dm"),
        F.sum("n").alias("kept"),
        F.sum(F.when(1.0 / F.col("n") > threshold, F.col("n")).otherwise(0)).alias("risky"),
    ]
    for i, (lo, hi) in enumerate(zip(CLASS_SIZE_BINS, [*CLASS_SIZE_BINS[1:], None], strict=True)):
        in_bin = (F.col("n") >= lo) if hi is None else F.col("n").between(lo, hi - 1)
        summary.append(F.sum(F.when(in_bin, 1).otherwise(0)).alias(f"hc{i}"))
        summary.append(F.sum(F.when(in_bin, F.col("n")).otherwise(0)).alias(f"hr{i}"))
    c = classes.agg(*summary).collect()[0]
    out = Check(
        rows=int(totals["rows"]),
        suppressed=int(totals["sup"] or 0),
        classes=int(c["classes"]),
        k=int(c["k"]) if c["k"] is not None else None,
        l=None,
        untruthful={q: int(totals[f"u_{q}"] or 0) for q in qis},
    )
    if sensitive is not None and out.classes:
        g = guarantees
        d = diversity_spark(df, kept, qis, sensitive, l=g.l or 1, ordered=g.ordered)
        out.l, out.entropy_l, out.recursive_ratio, out.t = (
            d["l"], d["entropy_l"], d["recursive_ratio"], d["t"]
        )  # fmt: skip
    kept_n = int(c["kept"] or 0)
    out.class_sizes = {"mean": kept_n / out.classes if out.classes else 0.0}
    bins = range(len(CLASS_SIZE_BINS))
    out.class_histogram = class_size_histogram(
        [int(c[f"hc{i}"] or 0) for i in bins], [int(c[f"hr{i}"] or 0) for i in bins]
    )
    # Discernibility (DM = Σ|EC|² + suppressed·N) and prosecutor risk, as in metrics.py.
    out.discernibility = float(c["dm"] or 0) + out.suppressed * out.rows
    out.prosecutor_risk = {
        "highest": 1.0 / out.k if out.k else 0.0,
        "average": out.classes / kept_n if kept_n else 0.0,
        "threshold": threshold,
        "records_above": float(c["risky"] or 0) / kept_n if kept_n else 0.0,
    }
    out.judge(guarantees)
    return out


def diversity_spark(
    df: Any,
    kept: Any,
    qis: list[str],
    sensitive: str,
    *,
    l: int = 1,  # noqa: E741
    ordered: bool = False,
) -> dict[str, float]:
    """l-diversity and t-closeness measures of the classes of ``kept`` (see module doc).

    ``df`` gives the reference distribution q (the whole table), ``kept`` the rows
    grouped into classes by ``qis``. Spark SQL array functions over each class's
    counts; the driver holds the sorted sensitive values and one result row.

    Args:
        df: The whole released table (Spark DataFrame), for q and the sensitive values.
        kept: The non-suppressed rows of ``df``.
        qis: The QI columns that define the classes.
        sensitive: The sensitive column.
        l: The l of recursive (c,l)-diversity, for ``recursive_ratio``.
        ordered: Return the ordered distance as ``t``, else the equal distance.

    Returns:
        ``l`` (fewest distinct values in a class), ``entropy_l``, ``recursive_ratio``
        (largest; infinite when a class has fewer than ``l`` values) and ``t`` (largest
        distance to q).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegerType, StructField, StructType

    spark = df.sparkSession
    freq = df.groupBy(sensitive).count().orderBy(sensitive).collect()
    total = sum(r["count"] for r in freq)
    m = len(freq)
    codes = spark.createDataFrame(
        [(r[sensitive], i) for i, r in enumerate(freq)],
        StructType([df.schema[sensitive], StructField("__v", IntegerType(), False)]),
    )
    ref = spark.createDataFrame([([r["count"] / total for r in freq],)], "__q array<double>")
    per_value = kept.join(F.broadcast(codes), on=sensitive).groupBy(*qis, "__v").count()
    hist = per_value.groupBy(*qis).agg(
        F.map_from_entries(F.collect_list(F.struct("__v", "count"))).alias("__h"),
        F.sum("count").cast("double").alias("__n"),
    )
    lv = l
    measures = (
        hist.crossJoin(F.broadcast(ref))
        .select(
            F.expr(f"transform(sequence(0, {m - 1}), i -> coalesce(__h[i], 0L))").alias("cnt"),
            "__n",
            "__q",
        )
        .select(
            F.expr("size(filter(cnt, x -> x > 0))").alias("d"),
            F.expr(
                "aggregate(cnt, 0D, (a, x) -> a + IF(x > 0, -(x / __n) * ln(x / __n), 0D))"
            ).alias("h"),
            F.expr(
                f"""IF(size(filter(cnt, x -> x > 0)) < {lv}, CAST('Infinity' AS DOUBLE),
                element_at(sort_array(cnt, false), 1) /
                aggregate(slice(sort_array(cnt, false), {lv}, {m}), 0D, (a, x) -> a + x))"""
            ).alias("r"),
            F.expr(
                "aggregate(zip_with(cnt, __q, (x, y) -> abs(x / __n - y)), 0D, (a, x) -> a + x) / 2"
            ).alias("te"),
            F.expr(
                """aggregate(zip_with(cnt, __q, (x, y) -> x / __n - y),
                         named_struct('c', 0D, 's', 0D),
                         (a, x) -> named_struct('c', a.c + x, 's', a.s + abs(a.c + x)),
                         a -> a.s)"""
            ).alias("to"),
        )
    )
    row = measures.agg(
        F.min("d").alias("l"),
        F.min("h").alias("h"),
        F.max("r").alias("r"),
        F.max("te").alias("te"),
        F.max("to").alias("to"),
    ).collect()[0]
    if ordered:
        t = float(row["to"]) / (m - 1) if m > 1 else 0.0
    else:
        t = float(row["te"])
    return {
        "l": int(row["l"]),
        "entropy_l": float(np.exp(row["h"])),
        "recursive_ratio": float(row["r"]),
        "t": t,
    }
