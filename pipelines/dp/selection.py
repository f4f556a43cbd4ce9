"""Private group selection: which groups of a release with private keys are released.

Per group the number of distinct privacy units n (each unit in at most L0 groups) is
kept with the optimal probability π(n) of Desfontaines, Voss, Gipson & Mandayam
(PoPETs 2022) at (ε/L0, δ/L0) per group (see :class:`Selection`); a group one
person could make appear is kept with probability δ/L0, at most δ over its L0
groups. Under zCDP the selection's (ε, δ) is charged as approximate zCDP (ε²/2, δ).

Written here because OpenDP 0.16 has only threshold mechanisms, which keep fewer
groups at the same (ε, δ). The table is verified in exact rational arithmetic, and
each keep decision is an exact Bernoulli draw from the OS CSPRNG (``secrets``), not
a floating-point sampler.
"""

from __future__ import annotations

import functools
import itertools
import math
import secrets
from dataclasses import dataclass

from pipelines.errors import InternalError


@dataclass(frozen=True)
class Selection:
    """Private group selection: keep a group with n distinct units with probability π(n).

    The optimal (ε, δ) partition selection of Desfontaines, Voss, Gipson & Mandayam
    (PoPETs 2022) for a unit in one group, with ε' = ε/L0 and δ' = δ/L0 per group
    (a unit is in at most L0 groups; basic composition):

        π(0) = 0,  π(n) = min(e^ε'·π(n−1) + δ',  1 + e^−ε'·(π(n−1) + δ' − 1),  1)

    — the largest keep probabilities with π(n) ≤ e^ε'·π(n−1) + δ' and
    1 − π(n−1) ≤ e^ε'·(1 − π(n)) + δ', so a group one person creates (n = 1) is kept
    with probability δ' and, over its L0 groups, δ in total. The table is computed
    in floating point and then *verified* in exact rational arithmetic (with a
    rational lower bound of e^ε'); each keep decision is an exact Bernoulli draw
    (:func:`bernoulli`) from the OS CSPRNG. Written here because OpenDP 0.16 has
    only threshold mechanisms, which keep fewer groups at the same (ε, δ).
    """

    epsilon: float  # ε of the whole selection (pure-DP part); ρ = ε²/2 under zCDP
    delta: float
    l0: int

    @functools.cached_property
    def table(self) -> tuple[float, ...]:
        """π(0), π(1), …, up to the first n with π(n) = 1.

        Returns:
            The keep probabilities indexed by the number of distinct units n, verified exactly
            against the constraints at (ε/L0, δ/L0); computed once and cached.
        """
        eps, dlt = self.epsilon / self.l0, self.delta / self.l0
        # Built with ε', δ' shrunk by a millionth so float rounding cannot cross the
        # constraints that _verify then checks exactly at the true ε', δ'.
        grow, shrink = math.exp(eps * (1 - 1e-6)), math.exp(-eps * (1 - 1e-6))
        dlt_safe = dlt * (1 - 1e-6)
        pi = [0.0]
        while pi[-1] < 1.0 and len(pi) < 10_000_000:
            prev = pi[-1]
            pi.append(min(grow * prev + dlt_safe, 1 + shrink * (prev + dlt_safe - 1), 1.0))
        _verify(pi, eps, dlt)
        return tuple(pi)

    def keep_probability(self, n: int) -> float:
        """π(n) (1 beyond the table).

        Args:
            n: The group's number of distinct privacy units.

        Returns:
            The probability of keeping the group, in [0, 1].
        """
        return self.table[n] if n < len(self.table) else 1.0

    @property
    def threshold(self) -> int:
        """The smallest n with π(n) ≥ 1/2 (what a threshold mechanism would call τ)."""
        return next(n for n, p in enumerate(self.table) if p >= 0.5)

    @property
    def always(self) -> int:
        """The smallest n with π(n) = 1: groups this large are always released."""
        return len(self.table) - 1

    def select(self, counts: dict[str, int]) -> dict[str, int]:
        """The kept keys (with their exact unit counts, for the caller's bookkeeping only).

        Args:
            counts: Group key -> exact number of distinct privacy units in the group.

        Returns:
            The subset of ``counts`` whose groups won their Bernoulli(π(n)) draw; the counts
            are exact and must not be published.
        """
        return {k: n for k, n in counts.items() if bernoulli(self.keep_probability(int(n)))}


def _verify(pi: list[float], eps: float, dlt: float) -> None:
    """Check the DP constraints of the keep table exactly (Fractions)."""
    from fractions import Fraction

    e_lo = Fraction(math.exp(eps)) * Fraction(999_999_999_999, 10**12)  # ≤ e^ε
    d = Fraction(dlt)
    for prev, cur in itertools.pairwise(Fraction(p) for p in pi):
        if not (cur <= e_lo * prev + d and 1 - prev <= e_lo * (1 - cur) + d):
            raise InternalError("partition-selection table violates its DP constraints")


def bernoulli(p: float) -> bool:
    """An exact Bernoulli(p) draw for a float p: p = a/2^k exactly; draw k random bits.

    Args:
        p: The probability; ≤ 0 never and ≥ 1 always succeeds, without drawing.

    Returns:
        True with probability exactly ``p``, from the OS CSPRNG (:mod:`secrets`).
    """
    if p <= 0:
        return False
    if p >= 1:
        return True
    from fractions import Fraction

    frac = Fraction(p)
    k = frac.denominator.bit_length() - 1  # denominator is 2^k
    return secrets.randbits(k) < frac.numerator


def selection(l0: int, share: float, delta: float, zcdp: bool) -> Selection:
    """The selection spending ``share`` (ε; or ρ under zCDP, as ε = √(2ρ)) and ``delta``.

    Args:
        l0: L0, the most groups one privacy unit contributes to.
        share: The selection's share of the budget: ε, or ρ when ``zcdp``.
        delta: The δ the selection may spend over all groups.
        zcdp: Whether ``share`` is a ρ (zCDP accounting) rather than an ε.

    Returns:
        The group selection at (ε, δ) for units in at most ``l0`` groups.
    """
    epsilon = math.sqrt(2 * share) if zcdp else share
    return Selection(epsilon, delta, l0)
