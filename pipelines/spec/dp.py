"""Differentially private releases: metrics, group keys, contribution bounds, budgets."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from pipelines.spec.base import IDENT, Frozen
from pipelines.spec.tables import TableRef


class CountMetric(Frozen):
    """Rows per group (after contribution bounding)."""

    kind: Literal["count"]


class UnitsMetric(Frozen):
    """Distinct privacy units per group."""

    kind: Literal["count_units"]


class _Bounded(Frozen):
    column: str = Field(pattern=IDENT)
    lower: float
    upper: float
    resolution: float = Field(
        0.01, gt=0, description="Fixed-point step: values are clamped, then rounded to it."
    )

    @model_validator(mode="after")
    def _ordered(self) -> _Bounded:
        if not self.lower < self.upper:
            raise ValueError("lower must be below upper")
        return self


class SumMetric(_Bounded):
    """Sum of the column clamped to [lower, upper], in fixed point."""

    kind: Literal["sum"]


class MeanMetric(_Bounded):
    """Mean of the clamped column: midpoint + noisy centered sum / noisy count."""

    kind: Literal["mean"]


class QuantileMetric(_Bounded):
    """A quantile of the clamped column by the exponential mechanism (OpenDP noisy max).

    The output is one of ``candidates`` evenly spaced values in [lower, upper].
    """

    kind: Literal["quantile"]
    q: float = Field(gt=0, lt=1)
    candidates: int = Field(101, ge=2, le=10_001)


Metric = Annotated[
    CountMetric | UnitsMetric | SumMetric | MeanMetric | QuantileMetric,
    Field(discriminator="kind"),
]


class KeyRange(Frozen):
    """Integers ``start, start+step, … < stop``, or dates (ISO) a day apart up to ``stop``."""

    start: int | str
    stop: int | str
    step: int = Field(1, ge=1)


class PublicKeys(Frozen):
    """Declared group keys: the product of per-column values or ranges, or a table."""

    values: dict[str, tuple[str | int, ...]] = Field(default_factory=dict)
    ranges: dict[str, KeyRange] = Field(default_factory=dict)
    table: TableRef | None = None


class Bounds(Frozen):
    """Contribution bounds per privacy unit (L0 groups, L∞ rows per group)."""

    max_groups_per_unit: int = Field(ge=1)
    max_rows_per_group: int = Field(1, ge=1)


class ReleaseBudget(Frozen):
    """One release's budget and its split.

    ``epsilon`` alone: pure ε-DP, discrete Laplace noise. ``rho``: ρ-zCDP, discrete
    Gaussian noise. ``epsilon`` + ``delta`` with ``noise: gaussian``: converted to
    ρ = (√(ε + ln(1/δ)) − √ln(1/δ))² (Bun & Steinke 2016, Prop. 1.3). With private
    keys, ``selection_delta`` is the δ of group selection. ``split`` weighs the
    metrics and ``selection`` (default: equal weights).
    """

    epsilon: float | None = Field(None, gt=0)
    rho: float | None = Field(None, gt=0)
    delta: float | None = Field(None, gt=0, lt=1)
    noise: Literal["laplace", "gaussian"] | None = None
    selection_delta: float = Field(1e-6, gt=0, lt=1)
    split: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_budget(self) -> ReleaseBudget:
        if (self.epsilon is None) == (self.rho is None):
            raise ValueError("give exactly one of 'epsilon' or 'rho'")
        if self.rho is not None and (self.delta is not None or self.noise == "laplace"):
            raise ValueError("rho (zCDP) takes no delta and uses gaussian noise")
        if self.delta is not None and self.noise != "gaussian":
            raise ValueError("epsilon with delta is for noise: gaussian (pure epsilon has none)")
        if any(w <= 0 for w in self.split.values()):
            raise ValueError("split weights must be positive")
        return self

    @property
    def zcdp(self) -> bool:
        """Whether the release is accounted in ρ-zCDP (Gaussian-family noise)."""
        return self.rho is not None or self.noise == "gaussian"


class Release(Frozen):
    """One differentially private aggregate table, published per partition."""

    sink: TableRef
    group_by: tuple[str, ...] = Field(min_length=1)
    keys: Literal["private"] | PublicKeys = "private"
    bounds: Bounds
    metrics: dict[str, Metric] = Field(min_length=1)
    budget: ReleaseBudget

    @model_validator(mode="after")
    def _metric_names(self) -> Release:
        for name in self.metrics:  # each becomes a column of the release table
            if not re.match(IDENT, name):
                raise ValueError(
                    f"metrics: {name!r} is not a column name (letters, digits and _, "
                    "not starting with a digit)"
                )
        return self


class BudgetPolicy(Frozen):
    """The dataset's total budget over a rolling window of partitions (the ledger's rule).

    Give ``epsilon`` (pure and approximate DP; every release must use Laplace noise)
    or ``rho`` (zCDP; a pure ε release is charged ρ = ε²/2, Bun & Steinke 2016,
    Prop. 1.4). ``delta`` bounds the summed δ of group selections in a window.

    ``unit: person`` (default): a person may appear in every partition, so charges
    compose sequentially over every ``window``-day span. ``unit: person_partition``
    declares the privacy unit to be a person *on one day*: partitions are disjoint
    in that unit and compose in parallel (each partition has the whole budget),
    which protects a day of a person, not the person (see README).
    """

    epsilon: float | None = Field(None, gt=0)
    rho: float | None = Field(None, gt=0)
    delta: float = Field(1e-5, ge=0, lt=1)
    window: int = Field(30, ge=1, le=3660)
    unit: Literal["person", "person_partition"] = "person"
    ledger: str | None = Field(
        None,
        description="SQLAlchemy URL (sqlite or postgresql); default <warehouse>/_dp/ledger.sqlite.",
    )

    @property
    def total(self) -> float:
        """The budget per window (per partition under ``person_partition``): ε or ρ."""
        total = self.epsilon if self.epsilon is not None else self.rho
        assert total is not None  # one of them, by _one_total
        return total

    @property
    def symbol(self) -> str:
        """``ε`` or ``ρ``: how reports and the demo name the policy's unit."""
        return "ε" if self.epsilon is not None else "ρ"

    @model_validator(mode="after")
    def _one_total(self) -> BudgetPolicy:
        if (self.epsilon is None) == (self.rho is None):
            raise ValueError("give exactly one of 'epsilon' or 'rho'")
        return self


def release_problems(
    releases: dict[str, Release], policy: BudgetPolicy | None, declared: set[str]
) -> list[tuple[str, str]]:
    """Cross-field checks: releases read declared source columns; budgets must fit.

    Args:
        releases: The spec's releases by name.
        policy: The spec's ``dp_budget``, if any.
        declared: The source columns the spec declares.

    Returns:
        ``[(spec path, message), ...]``, empty when the releases are consistent.
    """
    problems = []
    if releases and policy is None:
        problems.append(("dp_budget", "releases need a dp_budget (the ledger's total and window)"))
    for name, rel in releases.items():
        where = f"releases.{name}"
        if not re.match(r"^[a-z][a-z0-9_]*$", name):
            problems.append((where, "release names are lowercase identifiers"))
        for col in rel.group_by:
            if col not in declared:
                problems.append((f"{where}.group_by", f"'{col}' is not a declared source column"))
        for metric, m in rel.metrics.items():
            column = getattr(m, "column", None)
            if column is not None and column not in declared:
                problems.append(
                    (f"{where}.metrics.{metric}.column", f"'{column}' is not a declared column")
                )
        if isinstance(rel.keys, PublicKeys):
            given = set(rel.keys.values) | set(rel.keys.ranges)
            if rel.keys.table is None and given != set(rel.group_by):
                problems.append(
                    (f"{where}.keys", "public keys must give values or ranges for every group_by "
                     "column (or a table)")
                )  # fmt: skip
        wanted = set(rel.metrics) | ({"selection"} if rel.keys == "private" else set())
        for part in rel.budget.split:
            if part not in wanted:
                problems.append(
                    (
                        f"{where}.budget.split.{part}",
                        f"not a metric of this release ({', '.join(sorted(wanted))})",
                    )
                )
        if policy is not None:
            if rel.budget.zcdp and policy.rho is None:
                problems.append(
                    (f"{where}.budget", "Gaussian noise is accounted in rho: give dp_budget.rho")
                )
            if not rel.budget.zcdp and policy.epsilon is None:
                problems.append((f"{where}.budget", "pure epsilon releases need dp_budget.epsilon"))
    return problems
