"""The plan of one DP release: its budget split, and every mechanism calibrated and verified.

Sensitivities and noise formulas are listed in :mod:`pipelines.dp.mechanisms`; the
accounting's two phases are :class:`~pipelines.dp.accounting.Accountant`'s. No data
is touched and no Spark is imported: a plan is computed on the driver and pickled
into the executors' ``mapInPandas`` closure (it holds scales and the selection
table, never a key).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipelines.dp import mechanisms as mech
from pipelines.dp import selection as sel_mech
from pipelines.dp.accounting import Accountant, Budget
from pipelines.spec.dp import (
    CountMetric,
    MeanMetric,
    QuantileMetric,
    Release,
    SumMetric,
    UnitsMetric,
)


@dataclass
class ReleasePlan:
    """Every mechanism of one release, calibrated and verified (the accounting).

    Attributes:
        accountant: The release's two-phase accounting (budget, shares, verified losses).
        selection: Private group selection, for private keys.
        noises: Aggregate column -> its noise (``<mean>.count``/``<mean>.sum`` for means).
        quantiles: Quantile metric -> its exponential mechanism.
    """

    accountant: Accountant
    selection: sel_mech.Selection | None = None
    noises: dict[str, mech.DiscreteNoise] = field(default_factory=dict)
    quantiles: dict[str, mech.Quantile] = field(default_factory=dict)

    @property
    def zcdp(self) -> bool:
        """Whether the release is accounted in ρ-zCDP."""
        return self.accountant.total.measure == "zcdp"

    @property
    def total(self) -> float:
        """The release's ε, or ρ when :attr:`zcdp`."""
        return self.accountant.total.value

    @property
    def shares(self) -> dict[str, float]:
        """Mechanism -> its share of :attr:`total`."""
        return self.accountant.shares

    def charge(self) -> Budget:
        """What the ledger is charged: the whole budget, with the selection's δ.

        Returns:
            The charge.
        """
        return self.accountant.total


def centered(metric: str) -> str:
    """The aggregate column of a mean's centered fixed-point sum.

    Args:
        metric: The mean metric's name.

    Returns:
        The column name.
    """
    return f"__dp_csum_{metric}"


def _max_fixed(m: SumMetric | MeanMetric, centered: bool = False) -> int:
    """Largest |fixed-point value| a row can contribute (minus the midpoint if centered).

    Spark rounds v/r half up and Python's ``round`` to even, so the bound uses floor
    and ceil of the bounds: it can only over-state the sensitivity, never under.
    """
    lo, hi = math.floor(m.lower / m.resolution), math.ceil(m.upper / m.resolution)
    if centered:
        mid = fixed((m.lower + m.upper) / 2, m.resolution)
        return max(hi - mid, mid - lo)
    return max(abs(lo), abs(hi))


def fixed(v: float, r: float) -> int:
    """A value in fixed point: round(v / r), half to even.

    Args:
        v: The value.
        r: The resolution.

    Returns:
        The integer.
    """
    return int(round(v / r))


def _budget(rel: Release) -> Budget:
    b = rel.budget
    delta = b.selection_delta if rel.keys == "private" else 0.0
    if b.rho is not None:
        return Budget.zcdp(b.rho, delta)
    if b.zcdp:
        return Budget.zcdp(mech.rho_from_approx(b.epsilon, b.delta), delta)
    return Budget.pure(b.epsilon, delta)


def plan_release(rel: Release) -> ReleasePlan:
    """Split the budget, calibrate every mechanism and verify it (no data is touched).

    Phase 1: each metric (and group selection, for private keys) requests a share
    by its ``budget.split`` weight; the budget is split once. Phase 2: each
    mechanism is calibrated to its share, then its loss by OpenDP's privacy map at
    its sensitivity is checked against the share (Gaussian Δ2 passed unrounded, see
    :meth:`~pipelines.dp.mechanisms.DiscreteNoise.privacy_loss`). Sensitivities are
    listed in :mod:`pipelines.dp.mechanisms`. A mechanism whose loss exceeds its
    share, or whose scale is not finite, raises InternalError (from the accountant
    and the mechanisms), before any noise is drawn.

    Args:
        rel: The validated release.

    Returns:
        The plan.
    """
    acct = Accountant(_budget(rel))
    zcdp = acct.total.measure == "zcdp"
    private = rel.keys == "private"
    for name in [*rel.metrics, *(["selection"] if private else [])]:
        acct.request(name, rel.budget.split.get(name, 1.0))
    shares = acct.shares
    l0, linf = rel.bounds.max_groups_per_unit, rel.bounds.max_rows_per_group
    root = math.sqrt(l0)
    out = ReleasePlan(acct)

    def noise(key: str, l1: int, l2: float, share: float) -> None:
        out.noises[key] = n = mech.noise_for(l1, l2, share, zcdp)
        acct.verify(key, n.privacy_loss(l2 if zcdp else l1), share)

    if private:
        sel = sel_mech.selection(l0, shares["selection"], acct.total.delta, zcdp)
        sel.table  # noqa: B018 (built and verified in exact arithmetic now, before any draw)
        acct.verify("selection", sel.epsilon**2 / 2 if zcdp else sel.epsilon)
        out.selection = sel
    for name, m in rel.metrics.items():
        share = shares[name]
        if isinstance(m, CountMetric):
            noise(name, l0 * linf, root * linf, share)
        elif isinstance(m, UnitsMetric):
            noise(name, l0, root, share)
        elif isinstance(m, SumMetric):
            big = _max_fixed(m)
            noise(name, l0 * linf * big, root * linf * big, share)
        elif isinstance(m, MeanMetric):
            half = _max_fixed(m, centered=True)
            noise(f"{name}.count", l0 * linf, root * linf, share / 2)
            noise(f"{name}.sum", l0 * linf * half, root * linf * half, share / 2)
        elif isinstance(m, QuantileMetric):
            q = mech.quantile(m.q, m.lower, m.upper, m.candidates, linf, share / l0, zcdp)
            # A unit changes L∞ rows in at most L0 groups: L0-fold composition.
            acct.verify(name, l0 * float(q.measurement().map(linf)))
            out.quantiles[name] = q
    return out
