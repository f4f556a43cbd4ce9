"""Distributed strict Mondrian: top splits in Spark, each small group finished locally.

The scheme of published Spark Mondrian work: while a group is larger than
``local_rows``, Spark computes the group's statistics (count, min/max and median of
each numeric QI, the lowest common hierarchy level of each categorical QI) and the
sizes of the candidate parts, the driver picks the split with the same rules as the
local kernel (widest normalized QI first, every part meeting the
:class:`~pipelines.kanon.privacy.Requirement` on its histogram of sensitive
values, counted exactly), and the rows get their new group id through a
broadcast join. The driver only ever holds
per-group statistics (one row per group and QI), never records. Once every group
fits, ``applyInPandas`` runs :func:`pipelines.kanon.mondrian.mondrian` on each group
(Arrow batches, one group per call).

Groups never overlap (a split partitions a group by value), so k-anonymity,
l-diversity and truthfulness of each group's output hold for the whole output.
Widths are normalized by the whole input's spans in the Spark phase and by the
group's own spans in the local phase. The split value of a large numeric group is
Spark's ``percentile_approx`` (accuracy 10,000): any value it returns gives a valid
split because the part sizes are then counted exactly, but on groups above
10,000 rows it may differ with the input's partitioning, so the output is
deterministic for a given input layout (the local phase for any row order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from pipelines.errors import SpecError
from pipelines.kanon.mondrian import QI, SUPPRESSED, CategoricalQI, NumericQI, mondrian
from pipelines.kanon.privacy import Requirement

G = "__kanon_group"
S = "__kanon_s"  # sensitive value code, 0..m-1 in the column's sort order (0 without one)
W = "__kanon_w"  # 1 when the record counts towards the requirement, 0 for window rows
MAX_SENSITIVE_VALUES = 10_000


@dataclass(frozen=True)
class _Split:
    group: int
    qi: int
    median: float | None = None  # numeric: part = x > m (inclusive) or x >= m
    inclusive: bool = True
    level: int = 0  # categorical: children are ancestors at this level
    mapping: tuple[tuple[int, int], ...] = ()  # categorical: child id -> part index


def _anc_col(q: CategoricalQI) -> str:
    return f"__kanon_anc_{q.name}"


def _with_ancestors(df: DataFrame, qis: list[QI]) -> DataFrame:
    """Add, per categorical QI, the array of its node ids from leaf (index 1) to root."""
    spark = df.sparkSession
    for q in qis:
        if isinstance(q, CategoricalQI):
            h = q.hierarchy
            rows = [(leaf, [int(a) for a in h.ancestors[i]]) for i, leaf in enumerate(h.leaves)]
            table = spark.createDataFrame(rows, f"`{q.name}` string, `{_anc_col(q)}` array<bigint>")
            df = df.join(F.broadcast(table), on=q.name, how="left")
    return df


def _stats(df: DataFrame, qis: list[QI]) -> dict[int, dict]:
    aggs = [F.count(F.lit(1)).alias("n")]
    for i, q in enumerate(qis):
        if isinstance(q, NumericQI):
            x = F.col(q.name).cast("double")
            aggs += [
                F.min(x).alias(f"lo{i}"),
                F.max(x).alias(f"hi{i}"),
                F.percentile_approx(x, 0.5, 10000).alias(f"m{i}"),
            ]
        else:
            for level in range(q.hierarchy.ancestors.shape[1]):
                a = F.element_at(F.col(_anc_col(q)), level + 1)
                aggs += [F.min(a).alias(f"a{i}_{level}_lo"), F.max(a).alias(f"a{i}_{level}_hi")]
    return {r[G]: r.asDict() for r in df.groupBy(G).agg(*aggs).collect()}


def _lca_level(row: dict, i: int, q: CategoricalQI) -> int:
    for level in range(q.hierarchy.ancestors.shape[1]):
        if row[f"a{i}_{level}_lo"] == row[f"a{i}_{level}_hi"]:
            return level
    return q.hierarchy.height


def sensitive_domain(df: DataFrame, sensitive: str, limit: int = MAX_SENSITIVE_VALUES) -> list:
    """The sorted distinct sensitive values (the driver holds at most ``limit``).

    Args:
        df: The records to be k-anonymized.
        sensitive: The sensitive column.
        limit: The most distinct values accepted.

    Returns:
        The distinct values in Spark's sort order (their index is the value code).

    Raises:
        SpecError: The column holds nulls, or more than ``limit`` distinct values.
    """
    where = f"k_anonymity.sensitive ({sensitive})"
    if df.where(F.col(sensitive).isNull()).limit(1).count():
        raise SpecError(f"{where}: null values; fill or redact them before k-anonymity")
    ordered = df.select(sensitive).distinct().orderBy(sensitive).limit(limit + 1)
    values = [r[0] for r in ordered.collect()]
    if len(values) > limit:
        raise SpecError(f"{where}: more than {limit} distinct values; generalize the column first")
    return values


def spark_mondrian(
    df: DataFrame,
    qis: list[QI],
    k: int | Requirement,
    *,
    sensitive: str | None = None,
    l: int = 1,  # noqa: E741
    counted: str | None = None,
    local_rows: int = 200_000,
    max_rounds: int = 64,
) -> DataFrame:
    """k-anonymize the QI columns of ``df``; QIs come back as strings, other columns as is.

    ``k`` is a number (with ``l``: distinct l-diversity) or a :class:`Requirement`.
    ``counted``: a boolean column; only those records count towards the
    requirement (window rows shape the splits but do not count). No record is
    suppressed unless the counted records as a whole miss the requirement, in
    which case every QI of every record is ``*``.

    Args:
        df: The records (lazy), with the QI, sensitive and counted columns.
        qis: The quasi-identifiers.
        k: The minimum class size, or a full requirement.
        sensitive: The sensitive column, needed for l-diversity and t-closeness.
        l: Distinct l-diversity, when ``k`` is a number.
        counted: A boolean column marking the records that count, or None for all.
        local_rows: Groups of at most this many rows are finished by the local kernel;
            larger ones are split in Spark.
        max_rounds: The most rounds of Spark splits; groups still larger after them are
            finished locally anyway.

    Returns:
        ``df``'s columns in order, QIs as strings (generalized cells, or ``*``).

    Raises:
        ValueError: ``local_rows`` is below 1, or l-diversity or t-closeness is asked
            without a sensitive column.
    """
    req = k if isinstance(k, Requirement) else Requirement(k, l)
    if local_rows < 1:
        raise ValueError("local_rows must be at least 1")
    original_cols = df.columns
    qi_names = {q.name for q in qis}
    work = _with_ancestors(df, qis).withColumn(G, F.lit(0).cast("long"))
    bins = 1
    if req.needs_sensitive:
        if sensitive is None:
            raise ValueError("l-diversity and t-closeness need a sensitive column")
        domain = sensitive_domain(df, sensitive)
        bins = len(domain)
        codes = df.sparkSession.createDataFrame(
            [(v, i) for i, v in enumerate(domain)],
            StructType([df.schema[sensitive], StructField(S, LongType(), False)]),
        )
        work = work.join(F.broadcast(codes), on=sensitive, how="left")
    else:
        work = work.withColumn(S, F.lit(0).cast("long"))
    weight = F.col(counted).cast("long") if counted else F.lit(1).cast("long")
    work = work.withColumn(W, weight)
    hist = _hist(work.groupBy(S).agg(F.sum(W).alias("w")).collect(), bins)
    if req.t is not None and hist.sum():
        req = req.with_reference(hist)  # q: the counted records' distribution
    first = _stats(work, qis)
    total = first.get(0, {"n": 0})
    if total["n"] == 0:
        return df.select(*[F.col(c).cast("string") if c in qi_names else F.col(c)
                           for c in original_cols])  # fmt: skip
    if not req.ok(hist):
        return df.select(*[F.lit(SUPPRESSED).alias(c) if c in qi_names else F.col(c)
                           for c in original_cols])  # fmt: skip
    spans: list[float] = []
    for i, q in enumerate(qis):
        if isinstance(q, NumericQI):
            spans.append(float((total.get(f"hi{i}") or 0) - (total.get(f"lo{i}") or 0)) or 1.0)
        else:
            spans.append(float(max(len(q.hierarchy.leaves) - 1, 1)))
    next_id = 1
    stats = first
    for _ in range(max_rounds):
        big = {g: r for g, r in stats.items() if r["n"] > local_rows}
        if not big:
            break
        splits = _choose_splits(work, qis, req, bins, big, spans)
        if not splits:
            break
        work, next_id = _apply_splits(work, qis, splits, next_id)
        work = work.localCheckpoint(eager=True)
        stats = _stats(work, qis)
    return _finish(work, qis, req, bins, original_cols)


def _hist(rows: list, bins: int, key: str = "w") -> np.ndarray:
    h = np.zeros(bins)
    for r in rows:
        h[r[S]] += r[key] or 0
    return h


def _choose_splits(work, qis, req, bins, big, spans) -> list[_Split]:  # noqa: ANN001, PLR0913
    """One allowed split per big group (or none), measured exactly in Spark.

    The driver receives, per group, the histogram (counted records per sensitive
    value) of each candidate part: groups × candidates × sensitive values numbers.
    """
    spark = work.sparkSession
    groups = sorted(big)
    gtable = spark.createDataFrame([(g,) for g in groups], f"{G} bigint")
    scoped = work.join(F.broadcast(gtable), on=G)
    numeric = [i for i, q in enumerate(qis) if isinstance(q, NumericQI)]
    # Whole-group histograms and, for each numeric QI, those of x < m and x <= m.
    aggs = [F.sum(W).alias("w")]
    with_m = scoped
    if numeric:
        rows = [(g, *[float(big[g][f"m{i}"]) for i in numeric]) for g in groups]
        mcols = ", ".join(f"m{i} double" for i in numeric)
        mtable = spark.createDataFrame(rows, f"{G} bigint, {mcols}")
        with_m = scoped.join(F.broadcast(mtable), on=G)
        for i in numeric:
            x = F.col(qis[i].name).cast("double")
            for tag, cond in (("lt", x < F.col(f"m{i}")), ("le", x <= F.col(f"m{i}"))):
                aggs.append(F.sum(F.when(cond, F.col(W)).otherwise(0)).alias(f"{tag}{i}"))
    totals: dict[int, np.ndarray] = {g: np.zeros(bins) for g in groups}
    lefts: dict[tuple[int, str], np.ndarray] = {}
    for r in with_m.groupBy(G, S).agg(*aggs).collect():
        totals[r[G]][r[S]] += r["w"] or 0
        for i in numeric:
            for tag in ("lt", "le"):
                lefts.setdefault((r[G], f"{tag}{i}"), np.zeros(bins))[r[S]] += r[f"{tag}{i}"] or 0
    # Child histograms for the categorical candidates.
    children: dict[tuple[int, int], dict[int, np.ndarray]] = {}
    for i, q in enumerate(qis):
        if not isinstance(q, CategoricalQI):
            continue
        levels = {g: _lca_level(big[g], i, q) for g in groups}
        ltable = spark.createDataFrame([(g, lv) for g, lv in levels.items()], f"{G} bigint, lv int")
        child = F.element_at(F.col(_anc_col(q)), F.col("lv"))  # level lv-1, 1-based: lv
        part = scoped.join(F.broadcast(ltable), on=G).where(F.col("lv") > 0)
        for r in part.groupBy(G, child.alias("child"), S).agg(F.sum(W).alias("w")).collect():
            hists = children.setdefault((i, r[G]), {})
            hists.setdefault(r["child"], np.zeros(bins))[r[S]] += r["w"] or 0
    splits = []
    for g in groups:
        row = big[g]
        widths = []
        for i, q in enumerate(qis):
            if isinstance(q, NumericQI):
                widths.append(float(row[f"hi{i}"] - row[f"lo{i}"]) / spans[i])
            else:
                level = _lca_level(row, i, q)
                anc = q.hierarchy.ancestors
                node = row[f"a{i}_{level}_lo"]
                widths.append(float(np.count_nonzero(anc[:, level] == node) - 1) / spans[i])
        for i in sorted(range(len(qis)), key=lambda j: (-widths[j], j)):
            if widths[i] <= 0:
                break
            if isinstance(qis[i], NumericQI):
                split = _numeric_split(g, i, row, totals[g], lefts, req)
            else:
                split = _categorical_split(g, i, row, qis[i], children.get((i, g), {}), req)
            if split is not None:
                splits.append(split)
                break
    return splits


def _numeric_split(g, i, row, total, lefts, req) -> _Split | None:  # noqa: ANN001, PLR0913
    best = None
    for tag, inclusive in (("lt", False), ("le", True)):
        left = lefts.get((g, f"{tag}{i}"), np.zeros_like(total))
        if req.ok(left) and req.ok(total - left):
            balance = abs(2 * left.sum() - total.sum())
            if best is None or balance < best[0]:
                best = (balance, _Split(g, i, median=float(row[f"m{i}"]), inclusive=inclusive))
    return None if best is None else best[1]


def _categorical_split(g, i, row, q, children, req) -> _Split | None:  # noqa: ANN001, PLR0913
    """Mirror of the local kernel's rule for splitting along a hierarchy.

    Children meeting the requirement alone are parts; the rest are pooled into one
    more part, or into the smallest part (then re-checked).
    """
    level = _lca_level(row, i, q)
    if level == 0 or not children:
        return None
    ids = sorted(children)
    large = [c for c in ids if req.ok(children[c])]
    small = [c for c in ids if c not in large]
    parts = [[c] for c in large]
    if small:
        pool = sum((children[c] for c in small), np.zeros_like(children[ids[0]]))
        if req.ok(pool):
            parts.append(small)
        elif parts:
            counted = [children[p[0]].sum() for p in parts]
            smallest = min(range(len(parts)), key=lambda j: (counted[j], j))
            if not req.ok(children[parts[smallest][0]] + pool):
                return None
            parts[smallest] = parts[smallest] + small
        else:
            return None
    if len(parts) < 2:
        return None
    mapping = tuple((c, p) for p, members in enumerate(parts) for c in members)
    return _Split(g, i, level=level, mapping=mapping)


def _apply_splits(work: DataFrame, qis: list[QI], splits: list[_Split], next_id: int):  # noqa: ANN202
    """Give the rows of each split group their part's new group id (broadcast joins)."""
    spark = work.sparkSession
    keyed = []  # (group, key, new id)
    spec = []  # (group, qi, median, inclusive, level)
    for s in splits:
        parts = 2 if s.median is not None else (max(p for _, p in s.mapping) + 1)
        ids = list(range(next_id, next_id + parts))
        next_id += parts
        spec.append((s.group, s.qi, s.median, s.inclusive, s.level))
        if s.median is not None:
            keyed += [(s.group, 0, ids[0]), (s.group, 1, ids[1])]
        else:
            keyed += [(s.group, child, ids[p]) for child, p in s.mapping]
    st = spark.createDataFrame(spec, f"{G} bigint, sq int, sm double, si boolean, sl int")
    kt = spark.createDataFrame(keyed, f"{G} bigint, skey bigint, snew bigint")
    key = F.lit(None).cast("long")
    for i, q in enumerate(qis):
        if isinstance(q, NumericQI):
            x = F.col(q.name).cast("double")
            right = F.when(F.col("si"), x > F.col("sm")).otherwise(x >= F.col("sm"))
            k_i = F.when(right, 1).otherwise(0).cast("long")
        else:
            k_i = F.element_at(F.col(_anc_col(q)), F.col("sl"))
        key = F.when(F.col("sq") == i, k_i).otherwise(key)
    out = (
        work.join(F.broadcast(st), on=G, how="left")
        .withColumn("skey", key)
        .join(F.broadcast(kt), on=[G, "skey"], how="left")
        .withColumn(G, F.coalesce(F.col("snew"), F.col(G)))
        .drop("sq", "sm", "si", "sl", "skey", "snew")
    )
    return out, next_id


def _finish(work, qis, req, bins, original_cols) -> DataFrame:  # noqa: ANN001
    """Run the local kernel on every group with applyInPandas."""
    qi_names = {q.name for q in qis}
    fields = [
        StructField(f.name, StringType() if f.name in qi_names else f.dataType, f.nullable)
        for f in work.schema.fields
        if f.name in original_cols
    ]
    schema = StructType(fields)
    names = [f.name for f in fields]
    domain = list(range(bins))

    def finish(pdf: pd.DataFrame) -> pd.DataFrame:
        res = mondrian(pdf, qis, req, sensitive=S, domain=domain, counted=W)
        out = pdf[names].copy()
        for q in qis:
            out[q.name] = res.released[q.name].astype(str).to_numpy()
        return out

    done = (
        work.select(*names, S, W, G)
        .groupBy(G)
        .applyInPandas(lambda pdf: finish(pdf.drop(columns=[G])), schema)
    )
    return done.select(*original_cols)
