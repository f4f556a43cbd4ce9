"""Compute one DP release on Spark: bound contributions, aggregate, select, add noise.

1. Public keys: rows outside the declared keys are dropped first (so bounding only
   spends a unit's L0 groups on groups that can be released).
2. Contribution bounding, deterministic and unbiased: each unit keeps the L0 of its
   groups with the smallest keyed hash of (unit, group), and in each kept group the
   L∞ rows with the smallest keyed hash of the row (:func:`bound`). The hash is Spark's xxhash64
   seeded with a value derived from the spec's key, so the choice does not depend
   on the values being aggregated and is the same on every re-run.
3. Aggregation per group in Spark: rows, distinct units, fixed-point sums and
   centered sums (longs), and for quantiles the group's clamped values.
4. Noise and selection per group in ``mapInPandas`` (Arrow batches on the
   executors; the driver never sees a group): private keys keep each group with
   the selection's probability π(n) of its number of units (an exact Bernoulli
   draw); OpenDP draws the noise; then post-processing.

``noise=False`` computes the same table without noise or selection threshold: for
tests of the non-noise logic only (the CLI has no such switch).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StructField, StructType
from pyspark.sql.window import Window

from pipelines.dp.plan import ReleasePlan, centered, fixed
from pipelines.spec.dp import (
    CountMetric,
    MeanMetric,
    PublicKeys,
    QuantileMetric,
    Release,
    SumMetric,
    UnitsMetric,
)

ROWS, UNITS = "__dp_rows", "__dp_units"


def public_keys(
    keys: PublicKeys, group_by: tuple[str, ...], source: DataFrame, warehouse: Any
) -> DataFrame:
    """The declared keys as a DataFrame with the group_by columns (source types).

    A key table is read whole (its group_by columns, distinct); otherwise the keys
    are the product of the per-column values and ranges.

    Args:
        keys: The release's declared public keys: a key table, or values and ranges
            per group_by column (ranges of dates step in days, stop excluded).
        group_by: The release's group_by columns.
        source: The source partition; gives the Spark session and the columns' types.
        warehouse: Where a relative key-table path resolves.

    Returns:
        One row per declared key, with exactly the ``group_by`` columns cast to the
        source's types (lazy for a key table; built on the driver otherwise).
    """
    spark = source.sparkSession
    if keys.table is not None:
        ref = keys.table
        if ref.table:
            table = spark.table(ref.table)
        else:
            from pathlib import Path

            path = Path(ref.path)
            path = path if path.is_absolute() else Path(warehouse) / path
            opts = {"header": "true"} if ref.format == "csv" else {}
            table = spark.read.format(ref.format).options(**{**opts, **ref.options}).load(str(path))
        return table.select(
            *[F.col(c).cast(source.schema[c].dataType).alias(c) for c in group_by]
        ).distinct()
    columns = []
    for col in group_by:
        if col in keys.values:
            columns.append(list(keys.values[col]))
        else:
            r = keys.ranges[col]
            if isinstance(r.start, int) and isinstance(r.stop, int):
                columns.append(list(range(r.start, r.stop, r.step)))
            else:
                days = pd.date_range(str(r.start), str(r.stop), freq=f"{r.step}D", inclusive="left")
                columns.append([d.date().isoformat() for d in days])
    rows = list(itertools.product(*columns))
    schema = StructType([StructField(c, source.schema[c].dataType, True) for c in group_by])
    cast = [tuple(_as(v, f.dataType) for v, f in zip(r, schema.fields, strict=True)) for r in rows]
    return spark.createDataFrame(cast, schema)


def _as(value: Any, dtype: Any) -> Any:
    from pyspark.sql.types import DateType, IntegralType, StringType

    if isinstance(dtype, StringType):
        return str(value)
    if isinstance(dtype, IntegralType):
        return int(value)
    if isinstance(dtype, DateType):
        import datetime as dt

        return dt.date.fromisoformat(str(value))
    return value


def _values(rel: Release) -> dict[str, Any]:
    """Per metric that reads a column: the row's value as aggregated (fixed point etc.)."""
    out = {}
    for name, m in rel.metrics.items():
        if not isinstance(m, SumMetric | MeanMetric | QuantileMetric):
            continue
        clamped = F.least(
            F.greatest(F.col(m.column).cast("double"), F.lit(m.lower)), F.lit(m.upper)
        )
        if isinstance(m, SumMetric):
            out[name] = F.round(clamped / m.resolution).cast("long")
        elif isinstance(m, MeanMetric):
            mid = fixed((m.lower + m.upper) / 2, m.resolution)
            out[centered(name)] = F.round(clamped / m.resolution).cast("long") - F.lit(mid)
        else:
            out[name] = clamped
    return out


def bound(df: DataFrame, rel: Release, unit: str, seed: str) -> DataFrame:
    """Keep ≤ L0 groups per unit and ≤ L∞ rows per (unit, group), by keyed hash.

    A unit keeps the L0 groups with the smallest keyed hash of (unit, group) and,
    in each, the L∞ rows with the smallest keyed hash of the row. One shuffle (by
    unit) and one sort: a unit's rows in (group hash, group, row hash) order; the
    group rank is the running count of group starts, the row's rank in its group
    its distance from the group's first row. ``__dp_first`` marks each kept
    (unit, group)'s first row, so distinct units are counted without a distinct
    aggregation. (Measured faster here than ranking
    with two windows, or than collecting each (unit, group)'s rows into arrays.)

    Args:
        df: The rows to bound (the unit, group_by and metric columns).
        rel: The release: its group_by and contribution bounds L0, L∞.
        unit: The privacy-unit column.
        seed: The hash seed (:func:`seed_for`).

    Returns:
        The kept rows (lazy): ``df``'s columns plus the boolean ``__dp_first``.
    """
    l0, linf = rel.bounds.max_groups_per_unit, rel.bounds.max_rows_per_group
    groups = [F.col(c) for c in rel.group_by]
    seed_col = F.lit(seed)
    hashed = df.withColumns({
        "__dp_hg": F.xxhash64(seed_col, F.lit("group"), F.col(unit), *groups),
        "__dp_hr": F.xxhash64(seed_col, F.lit("row"), *[F.col(c) for c in df.columns]),
    })  # fmt: skip
    w = Window.partitionBy(unit).orderBy("__dp_hg", *rel.group_by, "__dp_hr")
    upto = w.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    cell = F.struct("__dp_hg", *groups)
    first = F.coalesce(F.lag(cell).over(w) != cell, F.lit(True))  # first row of a group
    return (
        hashed.withColumns({"__dp_n": F.row_number().over(w), "__dp_first": first})
        .withColumns(
            {
                "__dp_g": F.sum(F.col("__dp_first").cast("int")).over(upto),  # group rank
                "__dp_s": F.max(F.when(F.col("__dp_first"), F.col("__dp_n"))).over(upto),
            }
        )  # fmt: skip
        .where((F.col("__dp_g") <= l0) & (F.col("__dp_n") - F.col("__dp_s") < linf))
        .drop("__dp_hg", "__dp_hr", "__dp_n", "__dp_g", "__dp_s")
    )


def aggregate(bounded: DataFrame, rel: Release) -> DataFrame:
    """Per group: rows, distinct units, fixed-point (centered) sums, quantile values.

    Args:
        bounded: The output of :func:`bound`.
        rel: The release.

    Returns:
        One row per group (lazy): the group_by columns, ``__dp_rows``, ``__dp_units``,
        a long sum per sum metric, a long centered sum per mean metric (``__dp_csum_<name>``)
        and the list of clamped values per quantile metric.
    """
    aggs = [F.count(F.lit(1)).alias(ROWS), F.sum(F.col("__dp_first").cast("long")).alias(UNITS)]
    for key, value in _values(rel).items():
        if isinstance(rel.metrics.get(key), QuantileMetric):
            aggs.append(F.collect_list(value).alias(key))
        else:
            aggs.append(F.sum(value).alias(key))
    return bounded.groupBy(*rel.group_by).agg(*aggs)


def output_schema(source: DataFrame, rel: Release) -> StructType:
    """group_by columns (source types), then one column per metric.

    Args:
        source: The source partition (for the group_by columns' types).
        rel: The release.

    Returns:
        The release table's schema: counts and units are longs, other metrics doubles.
    """
    fields = [StructField(c, source.schema[c].dataType, True) for c in rel.group_by]
    for name, m in rel.metrics.items():
        integral = isinstance(m, CountMetric | UnitsMetric)
        fields.append(StructField(name, LongType() if integral else DoubleType(), False))
    return StructType(fields)


def compute(
    source: DataFrame,
    rel: Release,
    unit: str,
    seed: str,
    plan: ReleasePlan,
    *,
    warehouse: Any = ".",
    noise: bool = True,
) -> DataFrame:
    """The release table (lazy): bounding and aggregation in Spark, noise per batch.

    Args:
        source: The source partition's rows.
        rel: The release.
        unit: The privacy-unit column.
        seed: The bounding hash seed (:func:`seed_for`).
        plan: The release's calibrated mechanisms.
        warehouse: Where relative key-table paths resolve.
        noise: False only for tests of the non-noise logic.

    Returns:
        The release table (group keys, then one column per metric).
    """
    private = rel.keys == "private"
    keys = None
    if not private:
        keys = public_keys(rel.keys, rel.group_by, source, warehouse)
        source = source.join(F.broadcast(keys), on=list(rel.group_by), how="left_semi")
    needed = {unit, *rel.group_by} | {
        m.column for m in rel.metrics.values() if hasattr(m, "column")
    }
    agg = aggregate(bound(source.select(*sorted(needed)), rel, unit, seed), rel)
    if keys is not None:  # every declared key, zeros where no data
        agg = keys.join(agg, on=list(rel.group_by), how="left")
        fills = {ROWS: 0, UNITS: 0}
        for name, m in rel.metrics.items():
            if isinstance(m, SumMetric):
                fills[name] = 0
            elif isinstance(m, MeanMetric):
                fills[centered(name)] = 0
        agg = agg.fillna(fills)
        for name, m in rel.metrics.items():
            if isinstance(m, QuantileMetric):
                agg = agg.withColumn(name, F.coalesce(F.col(name), F.array().cast("array<double>")))
    schema = output_schema(source, rel)
    return agg.mapInPandas(NoisyBatches(rel, plan, noise, private), schema)


class NoisyBatches:
    """Selection, noise and post-processing of Arrow batches of groups (on executors).

    Pickled into the ``mapInPandas`` closure: it holds the release and its plan
    (scales, selection table), never a key.
    """

    def __init__(self, rel: Release, plan: ReleasePlan, noise: bool, private: bool) -> None:
        """Hold what every batch needs.

        Args:
            rel: The release.
            plan: Its calibrated mechanisms.
            noise: False only for tests of the non-noise logic.
            private: Private keys: groups pass private selection.
        """
        self.rel, self.plan, self.noise, self.private = rel, plan, noise, private

    def _noisy(self, key: str, values: pd.Series) -> pd.Series:
        ints = values.fillna(0).astype("int64").tolist()
        return pd.Series(
            self.plan.noises[key].add(ints) if self.noise else ints, index=values.index
        )

    def __call__(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """Release each batch of aggregated groups.

        Args:
            batches: An iterator of pandas frames of :func:`aggregate`'s columns.

        Yields:
            Frames of the release's output columns.
        """
        rel = self.rel
        for pdf in batches:
            if self.private:
                if self.noise:
                    keys = [json.dumps(list(map(str, r)), separators=(",", ":"))
                            for r in pdf[list(rel.group_by)].itertuples(index=False)]  # fmt: skip
                    kept = self.plan.selection.select(dict(zip(keys, pdf[UNITS], strict=True)))
                    pdf = pdf[[k in kept for k in keys]]
                else:
                    pdf = pdf[pdf[UNITS] > 0]
            out = pdf[list(rel.group_by)].copy()
            for name, m in rel.metrics.items():
                if isinstance(m, CountMetric):
                    out[name] = self._noisy(name, pdf[ROWS]).clip(lower=0)
                elif isinstance(m, UnitsMetric):
                    out[name] = self._noisy(name, pdf[UNITS]).clip(lower=0)
                elif isinstance(m, SumMetric):
                    total = self._noisy(name, pdf[name]) * m.resolution
                    out[name] = total.clip(lower=0) if m.lower >= 0 else total
                elif isinstance(m, MeanMetric):
                    count = self._noisy(f"{name}.count", pdf[ROWS]).clip(lower=1)
                    shifted = self._noisy(f"{name}.sum", pdf[centered(name)]) * m.resolution
                    mid = fixed((m.lower + m.upper) / 2, m.resolution) * m.resolution
                    out[name] = (mid + shifted / count).clip(m.lower, m.upper)
                elif isinstance(m, QuantileMetric):
                    out[name] = [self._quantile(name, m, v) for v in pdf[name]]
            yield out

    def _quantile(self, name: str, m: QuantileMetric, values: Any) -> float:
        values = [float(v) for v in (values if values is not None else [])]
        if self.noise:
            return self.plan.quantiles[name].release(values)
        if not values:
            return float(m.lower)
        return float(pd.Series(values).quantile(m.q, interpolation="lower"))


def seed_for(key_bytes: bytes | None, release: str) -> str:
    """The bounding hash seed: derived from the spec's key (or the release name).

    Args:
        key_bytes: The privacy unit's key material, or None when the unit is not keyed.
        release: The release's name.

    Returns:
        16 hex characters: the first 64 bits of
        SHA-256(key ‖ NUL ``dp-bounding`` NUL ‖ release name), the key empty when None.
    """
    material = (key_bytes or b"") + b"\x00dp-bounding\x00" + release.encode()
    return hashlib.sha256(material).hexdigest()[:16]
