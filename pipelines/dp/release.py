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
   executors; the driver never sees a group): OpenDP draws; private keys keep the
   groups whose noisy unit count clears the threshold; then post-processing.

``noise=False`` computes the same table without noise or selection threshold: for
tests of the non-noise logic only (the CLI has no such switch).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StructField, StructType
from pyspark.sql.window import Window

from pipelines.dp import mechanisms as mech
from pipelines.spec.models import (
    CountMetric,
    MeanMetric,
    PublicKeys,
    QuantileMetric,
    Release,
    SumMetric,
    UnitsMetric,
)

ROWS, UNITS = "__dp_rows", "__dp_units"


@dataclass
class Plan:
    """Every mechanism of one release with its budget share (the accounting)."""

    zcdp: bool
    total: float  # ε, or ρ when zcdp
    selection: mech.Selection | None
    noises: dict[str, mech.Noise] = field(default_factory=dict)  # aggregate column -> noise
    quantiles: dict[str, mech.Quantile] = field(default_factory=dict)
    shares: dict[str, float] = field(default_factory=dict)

    def charge(self) -> dict[str, float]:
        """What the ledger is charged: ε or ρ, and δ (selection)."""
        return {
            "measure": "zcdp" if self.zcdp else "pure",
            "epsilon": 0.0 if self.zcdp else self.total,
            "rho": self.total if self.zcdp else 0.0,
            "delta": self.selection.delta if self.selection else 0.0,
        }


def _centered(metric: str) -> str:
    return f"__dp_csum_{metric}"


def _reach(m: SumMetric | MeanMetric, centered: bool = False) -> int:
    """Largest |fixed-point value| a row can contribute (minus the midpoint if centered).

    Spark rounds v/r half up and Python's ``round`` to even, so the bound uses floor
    and ceil of the bounds: it can only over-state the sensitivity, never under.
    """
    lo, hi = math.floor(m.lower / m.resolution), math.ceil(m.upper / m.resolution)
    if centered:
        mid = _fixed((m.lower + m.upper) / 2, m.resolution)
        return max(hi - mid, mid - lo)
    return max(abs(lo), abs(hi))


def _fixed(v: float, r: float) -> int:
    return int(round(v / r))


def plan(rel: Release) -> Plan:
    """Split the budget and calibrate every mechanism (no data is touched)."""
    b = rel.budget
    zcdp = b.zcdp
    if b.rho is not None:
        total = b.rho
    elif zcdp:
        total = mech.rho_from_approx(b.epsilon, b.delta)
    else:
        total = b.epsilon
    private = rel.keys == "private"
    parts = list(rel.metrics) + (["selection"] if private else [])
    weights = {p: b.split.get(p, 1.0) for p in parts}
    shares = {p: total * w / sum(weights.values()) for p, w in weights.items()}
    l0, linf = rel.bounds.max_groups_per_unit, rel.bounds.max_rows_per_group
    root = math.sqrt(l0)
    out = Plan(zcdp=zcdp, total=total, selection=None, shares=shares)
    if private:
        out.selection = mech.selection(l0, shares["selection"], b.selection_delta, zcdp)
    for name, m in rel.metrics.items():
        share = shares[name]
        if isinstance(m, CountMetric):
            out.noises[name] = mech.noise_for(l0 * linf, root * linf, share, zcdp)
        elif isinstance(m, UnitsMetric):
            out.noises[name] = mech.noise_for(l0, root, share, zcdp)
        elif isinstance(m, SumMetric):
            big = _reach(m)
            out.noises[name] = mech.noise_for(l0 * linf * big, root * linf * big, share, zcdp)
        elif isinstance(m, MeanMetric):
            half = _reach(m, centered=True)
            out.noises[f"{name}.count"] = mech.noise_for(l0 * linf, root * linf, share / 2, zcdp)
            out.noises[f"{name}.sum"] = mech.noise_for(
                l0 * linf * half, root * linf * half, share / 2, zcdp
            )
        elif isinstance(m, QuantileMetric):
            out.quantiles[name] = mech.quantile(
                m.q, m.lower, m.upper, m.candidates, linf, share / l0, zcdp
            )
    return out


def public_keys(
    keys: PublicKeys, group_by: tuple[str, ...], source: DataFrame, warehouse: Any
) -> DataFrame:
    """The declared keys as a DataFrame with the group_by columns (source types).

    A key table is read whole (its group_by columns, distinct); otherwise the keys
    are the product of the per-column values and ranges.
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
            mid = _fixed((m.lower + m.upper) / 2, m.resolution)
            out[_centered(name)] = F.round(clamped / m.resolution).cast("long") - F.lit(mid)
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
    """Per group: rows, distinct units, fixed-point (centered) sums, quantile values."""
    aggs = [F.count(F.lit(1)).alias(ROWS), F.sum(F.col("__dp_first").cast("long")).alias(UNITS)]
    for key, value in _values(rel).items():
        if isinstance(rel.metrics.get(key), QuantileMetric):
            aggs.append(F.collect_list(value).alias(key))
        else:
            aggs.append(F.sum(value).alias(key))
    return bounded.groupBy(*rel.group_by).agg(*aggs)


def output_schema(source: DataFrame, rel: Release) -> StructType:
    """group_by columns (source types), then one column per metric."""
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
    plan_: Plan,
    *,
    warehouse: Any = ".",
    noise: bool = True,
) -> DataFrame:
    """The release table (lazy): bounding and aggregation in Spark, noise per batch."""
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
                fills[_centered(name)] = 0
        agg = agg.fillna(fills)
        for name, m in rel.metrics.items():
            if isinstance(m, QuantileMetric):
                agg = agg.withColumn(name, F.coalesce(F.col(name), F.array().cast("array<double>")))
    schema = output_schema(source, rel)
    finisher = _Finisher(rel, plan_, noise, private)
    return agg.mapInPandas(finisher, schema)


class _Finisher:
    """Noise, selection and post-processing of one Arrow batch of groups (executors)."""

    def __init__(self, rel: Release, plan_: Plan, noise: bool, private: bool):
        self.rel, self.plan, self.noise, self.private = rel, plan_, noise, private

    def _noisy(self, key: str, values: pd.Series) -> pd.Series:
        ints = values.fillna(0).astype("int64").tolist()
        return pd.Series(
            self.plan.noises[key].add(ints) if self.noise else ints, index=values.index
        )

    def __call__(self, batches):  # noqa: ANN001, ANN204
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
                    centered = self._noisy(f"{name}.sum", pdf[_centered(name)]) * m.resolution
                    mid = _fixed((m.lower + m.upper) / 2, m.resolution) * m.resolution
                    out[name] = (mid + centered / count).clip(m.lower, m.upper)
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
    """The bounding hash seed: derived from the spec's key (or the release name)."""
    material = (key_bytes or b"") + b"\x00dp-bounding\x00" + release.encode()
    return hashlib.sha256(material).hexdigest()[:16]
