"""Privacy budgets as values, and the two-phase accounting of one release.

:class:`Budget` is a privacy loss in one accounting, pure ε-DP or ρ-zCDP, plus the
δ of group selection, with the arithmetic composition needs: losses add
(sequential composition), scale, compare. Modelled on Tumult Analytics'
``privacy_budget.py``.

:class:`Accountant` splits a release's budget in two phases (PipelineDP's
``budget_accounting.py``): every mechanism first *requests* a share by weight; the
budget is split once, when every request is in; after the mechanisms are
calibrated, each one's privacy loss *by OpenDP's own privacy map* is checked
against its share. A mechanism over its share (beyond :data:`TOLERANCE`, relative)
is an :class:`~pipelines.errors.InternalError`, raised before any noise is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pipelines.errors import InternalError, SpecError

#: Relative slack when comparing a privacy map's output with its share: OpenDP rounds
#: its float arithmetic conservatively (up), so an exactly calibrated mechanism can
#: map to its share times (1 + a few ulps).
TOLERANCE = 1e-9

Measure = Literal["pure", "zcdp"]


@dataclass(frozen=True)
class Budget:
    """A privacy loss, or a budget: ε (pure DP) or ρ (zCDP), plus a δ.

    Attributes:
        measure: ``pure`` (ε-DP) or ``zcdp`` (ρ-zCDP, Bun & Steinke 2016).
        value: ε or ρ, finite and ≥ 0.
        delta: The δ of approximate DP (group selection), in [0, 1).

    Example:
        >>> Budget.pure(0.5) + Budget.pure(0.25, delta=1e-6)
        Budget(measure='pure', value=0.75, delta=1e-06)
        >>> Budget.pure(1.0).cost(unit="rho")  # a pure ε mechanism is ε²/2-zCDP
        0.5
    """

    measure: Measure
    value: float
    delta: float = 0.0

    def __post_init__(self) -> None:
        """Refuse values no budget can have.

        Raises:
            InternalError: The measure is neither ``pure`` nor ``zcdp``, the value is not
                finite and ≥ 0, or δ is not in [0, 1).
        """
        if self.measure not in ("pure", "zcdp"):
            raise InternalError(f"unknown privacy measure {self.measure!r}")
        if not (math.isfinite(self.value) and self.value >= 0):
            raise InternalError(f"privacy loss {self.value!r} is not finite and non-negative")
        if not (math.isfinite(self.delta) and 0 <= self.delta < 1):
            raise InternalError(f"delta {self.delta!r} is not in [0, 1)")

    @classmethod
    def pure(cls, epsilon: float, delta: float = 0.0) -> Budget:
        """An ε-DP loss.

        Args:
            epsilon: ε.
            delta: δ (of group selection).

        Returns:
            The budget.
        """
        return cls("pure", epsilon, delta)

    @classmethod
    def zcdp(cls, rho: float, delta: float = 0.0) -> Budget:
        """A ρ-zCDP loss.

        Args:
            rho: ρ.
            delta: δ (of group selection).

        Returns:
            The budget.
        """
        return cls("zcdp", rho, delta)

    @property
    def epsilon(self) -> float:
        """ε of a pure budget (0 for zCDP): the ledger's ``epsilon`` column."""
        return self.value if self.measure == "pure" else 0.0

    @property
    def rho(self) -> float:
        """ρ of a zCDP budget (0 for pure): the ledger's ``rho`` column."""
        return self.value if self.measure == "zcdp" else 0.0

    def __add__(self, other: Budget) -> Budget:
        """Sequential composition: values and δ add (same measure only).

        Args:
            other: A loss in the same measure.

        Returns:
            The composed loss: value and δ are the sums.

        Raises:
            InternalError: The measures differ (pure ε and ρ-zCDP do not add directly).
        """
        if other.measure != self.measure:
            raise InternalError(f"cannot add {other.measure} to {self.measure} privacy loss")
        return Budget(self.measure, self.value + other.value, self.delta + other.delta)

    def __mul__(self, factor: float) -> Budget:
        """A share of the budget: value and δ times ``factor``.

        Args:
            factor: The share, normally in [0, 1] (a negative result fails validation).

        Returns:
            The scaled budget, same measure.
        """
        return Budget(self.measure, self.value * factor, self.delta * factor)

    __rmul__ = __mul__

    def fits(self, limit: Budget) -> bool:
        """Whether this loss is within ``limit`` (value and δ, with :data:`TOLERANCE`).

        Args:
            limit: A budget of the same measure.

        Returns:
            True if both value and δ fit.
        """
        return (self.value <= limit.value * (1 + TOLERANCE)
                and self.delta <= limit.delta * (1 + TOLERANCE))  # fmt: skip

    def cost(self, unit: Literal["epsilon", "rho"]) -> float:
        """The loss in a policy's unit.

        Args:
            unit: ``epsilon`` (pure-DP policies) or ``rho`` (zCDP policies).

        Returns:
            ε; or ρ, where a pure ε loss costs ε²/2 (Bun & Steinke 2016, Prop. 1.4).

        Raises:
            SpecError: A zCDP loss under an ε policy (zCDP does not imply pure DP).
        """
        if unit == "epsilon":
            if self.measure != "pure":
                raise SpecError(
                    "dp_budget.epsilon cannot account a zCDP release; use dp_budget.rho"
                )
            return self.value
        return self.value**2 / 2 if self.measure == "pure" else self.value

    def to_json(self) -> dict[str, Any]:
        """The ledger's and manifests' form.

        Returns:
            ``{"measure", "epsilon", "rho", "delta"}``.
        """
        return {"measure": self.measure, "epsilon": self.epsilon, "rho": self.rho,
                "delta": self.delta}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Budget:
        """Read the ledger's and manifests' form.

        Args:
            data: ``{"measure", "epsilon", "rho", "delta"}``.

        Returns:
            The budget.
        """
        value = data["epsilon"] if data["measure"] == "pure" else data["rho"]
        return cls(data["measure"], float(value), float(data["delta"]))


@dataclass
class Accountant:
    """The two-phase accounting of one release (see the module docstring).

    Args:
        total: The release's budget.

    Attributes:
        total: The release's budget (its δ belongs to group selection).
        weights: Mechanism name -> requested weight (phase 1).
        losses: Mechanism name -> privacy loss by OpenDP's map (phase 2).
    """

    total: Budget
    weights: dict[str, float] = field(default_factory=dict)
    losses: dict[str, float] = field(default_factory=dict)
    _shares: dict[str, float] | None = None

    def request(self, name: str, weight: float = 1.0) -> None:
        """Phase 1: a mechanism asks for a share of the budget by weight.

        Args:
            name: The mechanism (a metric, or ``selection``).
            weight: Its relative weight (> 0).

        Raises:
            InternalError: The split was already made, or the weight is not positive.
        """
        if self._shares is not None:
            raise InternalError(f"mechanism {name} requested budget after the split")
        if not (math.isfinite(weight) and weight > 0):
            raise InternalError(f"mechanism {name} requested weight {weight!r}")
        self.weights[name] = weight

    @property
    def shares(self) -> dict[str, float]:
        """The split, made once on first use: share = total · weight / Σ weights (ε or ρ).

        Raises:
            InternalError: No mechanism requested a share before the split.
        """
        if self._shares is None:
            if not self.weights:
                raise InternalError("a release with no mechanism")
            whole = sum(self.weights.values())
            self._shares = {n: self.total.value * w / whole for n, w in self.weights.items()}
        return self._shares

    def verify(self, name: str, loss: float, share: float | None = None) -> None:
        """Phase 2: check a calibrated mechanism's privacy loss against its share.

        Args:
            name: The mechanism (or a part of it, e.g. ``avg.count``).
            loss: Its loss by OpenDP's privacy map (ε or ρ).
            share: The part of the budget it may spend (default: its whole share).

        Raises:
            InternalError: The loss is not finite, or exceeds the share.
        """
        allowed = self.shares[name.split(".")[0]] if share is None else share
        if not (math.isfinite(loss) and loss >= 0) or loss > allowed * (1 + TOLERANCE):
            raise InternalError(
                f"mechanism {name}: privacy loss {loss!r} by OpenDP's map exceeds its share "
                f"{allowed!r}; nothing was drawn"
            )
        self.losses[name] = loss
