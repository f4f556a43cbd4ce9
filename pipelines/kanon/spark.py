"""Distributed strict Mondrian: top splits in Spark, each small group finished locally.

The scheme of published Spark Mondrian work: while a group is larger than
``local_rows``, Spark computes the group's statistics (count, min/max and median of
each numeric QI, the lowest common hierarchy level of each categorical QI) and the
sizes of the candidate parts, the driver picks the split with the same rules as the
local kernel (widest normalized QI first, every part ≥ k and l-diverse), and the
rows get their new group id through a broadcast join. The driver only ever holds
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
from pyspark.sql.types import StringType, StructField, StructType

from pipelines.kanon.mondrian import QI, SUPPRESSED, CategoricalQI, NumericQI, mondrian

G = "__kanon_group"


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


def _stats(df: DataFrame, qis: list[QI], sensitive: str | None) -> dict[int, dict]:
    aggs = [F.count(F.lit(1)).alias("n")]
    if sensitive:
        aggs.append(F.countDistinct(sensitive).alias("s"))
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


def spark_mondrian(
    df: DataFrame,
    qis: list[QI],
    k: int,
    *,
    sensitive: str | None = None,
    l: int = 1,  # noqa: E741
    local_rows: int = 200_000,
    max_rounds: int = 64,
) -> DataFrame:
    """k-anonymize the QI columns of ``df``; QIs come back as strings, other columns as is.

    No record is suppressed unless the whole input has fewer than k records (or is
    not l-diverse), in which case every QI of every record is ``*``.
    """
    if k < 1 or l < 1 or local_rows < 1:
        raise ValueError("k, l and local_rows must be at least 1")
    original_cols = df.columns
    sens = sensitive if (sensitive is not None and l > 1) else None
    spans: list[float] = []
    work = _with_ancestors(df, qis).withColumn(G, F.lit(0).cast("long"))
    first = _stats(work, qis, sens)
    total = first.get(0, {"n": 0})
    for i, q in enumerate(qis):
        if isinstance(q, NumericQI):
            spans.append(float((total.get(f"hi{i}") or 0) - (total.get(f"lo{i}") or 0)) or 1.0)
        else:
            spans.append(float(max(len(q.hierarchy.leaves) - 1, 1)))
    if total["n"] == 0:
        return df.select(*[F.col(c).cast("string") if c in {q.name for q in qis} else F.col(c)
                           for c in original_cols])  # fmt: skip
    if total["n"] < k or (sens and total["s"] < l):
        return df.select(*[F.lit(SUPPRESSED).alias(c) if c in {q.name for q in qis} else F.col(c)
                           for c in original_cols])  # fmt: skip
    next_id = 1
    stats = first
    for _ in range(max_rounds):
        big = {g: r for g, r in stats.items() if r["n"] > local_rows}
        if not big:
            break
        splits = _choose_splits(work, qis, k, l, sens, big, spans)
        if not splits:
            break
        work, next_id = _apply_splits(work, qis, splits, next_id)
        work = work.localCheckpoint(eager=True)
        stats = _stats(work, qis, sens)
    return _finish(work, qis, k, l, sens, original_cols)


def _ok(n: int, s: int | None, k: int, l: int) -> bool:  # noqa: E741
    return n >= k and (s is None or s >= l)


def _choose_splits(work, qis, k, l, sens, big, spans) -> list[_Split]:  # noqa: ANN001, PLR0913, E741
    """One allowed split per big group (or none), measured exactly in Spark."""
    spark = work.sparkSession
    groups = sorted(big)
    gtable = spark.createDataFrame([(g,) for g in groups], f"{G} bigint")
    scoped = work.join(F.broadcast(gtable), on=G)
    # Exact part sizes for the numeric candidates (x < m and x <= m) in one pass.
    medians: dict[int, dict[int, float]] = {}
    numeric_counts: dict[int, dict] = {g: {} for g in groups}
    aggs = []
    for i, q in enumerate(qis):
        if isinstance(q, NumericQI):
            medians[i] = {g: big[g][f"m{i}"] for g in groups}
    if medians:
        rows = [(g, *[float(medians[i][g]) for i in sorted(medians)]) for g in groups]
        mcols = ", ".join(f"m{i} double" for i in sorted(medians))
        mtable = spark.createDataFrame(rows, f"{G} bigint, {mcols}")
        with_m = scoped.join(F.broadcast(mtable), on=G)
        for i in sorted(medians):
            x = F.col(qis[i].name).cast("double")
            for tag, cond in (("lt", x < F.col(f"m{i}")), ("le", x <= F.col(f"m{i}"))):
                aggs.append(F.sum(F.when(cond, 1).otherwise(0)).alias(f"{tag}{i}"))
                if sens:
                    aggs.append(F.countDistinct(F.when(cond, F.col(sens))).alias(f"{tag}{i}_s"))
                    aggs.append(F.countDistinct(F.when(~cond, F.col(sens))).alias(f"{tag}{i}_sr"))
        numeric_counts = {r[G]: r.asDict() for r in with_m.groupBy(G).agg(*aggs).collect()}
    # Child sizes for the categorical candidates.
    child_counts: dict[int, dict[int, dict[int, tuple[int, int | None]]]] = {}
    for i, q in enumerate(qis):
        if not isinstance(q, CategoricalQI):
            continue
        levels = {g: _lca_level(big[g], i, q) for g in groups}
        ltable = spark.createDataFrame([(g, lv) for g, lv in levels.items()], f"{G} bigint, lv int")
        child = F.element_at(F.col(_anc_col(q)), F.col("lv"))  # level lv-1, 1-based: lv
        part = scoped.join(F.broadcast(ltable), on=G).where(F.col("lv") > 0)
        cagg = [F.count(F.lit(1)).alias("n")]
        if sens:
            cagg.append(F.countDistinct(sens).alias("s"))
        for r in part.groupBy(G, child.alias("child")).agg(*cagg).collect():
            child_counts.setdefault(i, {}).setdefault(r[G], {})[r["child"]] = (
                r["n"],
                r["s"] if sens else None,
            )
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
            split = (
                _numeric_split(g, i, row, numeric_counts[g], k, l, sens)
                if isinstance(qis[i], NumericQI)
                else _categorical_split(
                    g, i, row, qis[i], child_counts.get(i, {}).get(g, {}), k, l, sens
                )  # fmt: skip
            )
            if split is not None:
                splits.append(split)
                break
    return splits


def _numeric_split(g, i, row, counts, k, l, sens) -> _Split | None:  # noqa: ANN001, PLR0913, E741
    n, best = row["n"], None
    for tag, inclusive in (("lt", False), ("le", True)):
        left = counts[f"{tag}{i}"]
        ls = counts.get(f"{tag}{i}_s") if sens else None
        rs = counts.get(f"{tag}{i}_sr") if sens else None
        if _ok(left, ls, k, l) and _ok(n - left, rs, k, l):
            balance = abs(2 * left - n)
            if best is None or balance < best[0]:
                best = (balance, _Split(g, i, median=float(row[f"m{i}"]), inclusive=inclusive))
    return None if best is None else best[1]


def _categorical_split(g, i, row, q, children, k, l, sens) -> _Split | None:  # noqa: ANN001, PLR0913, E741
    """Mirror of the local kernel's rule: children ≥ k alone, the rest pooled."""
    level = _lca_level(row, i, q)
    if level == 0 or not children:
        return None
    ids = sorted(children)
    # Distinct sensitive counts of a pool are not the sum of its children's: only
    # pool when no l-diversity is asked, or refuse pooling (conservative).
    large = [c for c in ids if _ok(children[c][0], children[c][1], k, l)]
    small = [c for c in ids if c not in large]
    parts = [[c] for c in large]
    if small:
        pool_n = sum(children[c][0] for c in small)
        if not sens and pool_n >= k:
            parts.append(small)
        elif not sens and parts:
            smallest = min(range(len(parts)), key=lambda j: (children[parts[j][0]][0], j))
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


def _finish(work, qis, k, l, sens, original_cols) -> DataFrame:  # noqa: ANN001, PLR0913, E741
    """Run the local kernel on every group with applyInPandas."""
    qi_names = {q.name for q in qis}
    fields = [
        StructField(f.name, StringType() if f.name in qi_names else f.dataType, f.nullable)
        for f in work.schema.fields
        if f.name in original_cols
    ]
    schema = StructType(fields)
    names = [f.name for f in fields]

    def finish(pdf: pd.DataFrame) -> pd.DataFrame:
        res = mondrian(pdf, qis, k, sensitive=sens, l=l)
        out = pdf[names].copy()
        for q in qis:
            out[q.name] = res.released[q.name].astype(str).to_numpy()
        return out

    done = (
        work.select(*names, G)
        .groupBy(G)
        .applyInPandas(lambda pdf: finish(pdf.drop(columns=[G])), schema)
    )
    return done.select(*original_cols)
