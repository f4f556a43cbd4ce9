"""The DP mechanisms of a release: sensitivities, noise scales, error bars, OpenDP.

Noise comes from OpenDP (``opendp`` 0.16, its ``contrib`` measurements): discrete
Laplace and discrete Gaussian on integer vectors (exact samplers, Canonne, Kamath &
Steinke 2020) and the exponential-mechanism quantile; OpenDP's privacy maps check
or search each scale. Group selection is ours (OpenDP has no optimal one): a table
of keep probabilities verified in exact arithmetic and exact Bernoulli draws from
``secrets``. Nothing here draws from numpy or ``random``: floating-point samplers
leak through their low bits (Mironov 2012).

Notation: a privacy unit keeps at most L0 groups and at most L∞ rows per group
(contribution bounding). Values are clamped to [lo, hi] and put in fixed point:
v ↦ round(clamp(v)/r) for a resolution r, so sums are exact integers.

* count of rows:     Δ1 = L0·L∞,            Δ2 = √L0·L∞
* count of units:    Δ1 = L0,               Δ2 = √L0
* sum (fixed point): Δ1 = L0·L∞·M,          Δ2 = √L0·L∞·M,  M = max(|lo|, |hi|)/r
* centered sum (for the mean, values v − mid, mid = (lo + hi)/2):
                     Δ1 = L0·L∞·⌈(hi − lo)/(2r)⌉, and Δ2 likewise with √L0
* pure ε-DP: discrete Laplace, scale b = Δ1/ε (pmf ∝ e^{−|x|/b}).
* ρ-zCDP: discrete Gaussian, σ = Δ2/√(2ρ) (pmf ∝ e^{−x²/(2σ²)}); (ε, δ) budgets
  become ρ = (√(ε + ln(1/δ)) − √ln(1/δ))², the inverse of ε = ρ + 2√(ρ·ln(1/δ))
  (Bun & Steinke 2016, Prop. 1.3); a pure ε mechanism costs ρ = ε²/2 (Prop. 1.4).
* quantile: per group the exponential mechanism over evenly spaced candidates
  (OpenDP ``make_private_quantile``, Smith 2011); a unit changes L∞ rows of at most
  L0 groups, so each group gets ε/L0 (ρ/L0) with symmetric distance L∞.
* mean: mid + noisy centered sum / max(noisy count, 1), clamped to [lo, hi]
  (post-processing); its budget is split evenly between the two.
* selection (private keys): per group the number of distinct units n (each unit in
  at most L0 groups), kept with the optimal probability π(n) of Desfontaines et
  al. 2022 at (ε/L0, δ/L0) per group (see :class:`Selection`); a group one person
  could make appear is kept with probability δ/L0, at most δ over its L0 groups.
  Under zCDP the selection's (ε, δ) is charged as approximate zCDP (ε²/2, δ).
"""

from __future__ import annotations

import functools
import itertools
import math
import secrets
from dataclasses import dataclass

import numpy as np

from pipelines.errors import InternalError

CONFIDENCE = 0.95


def _dp():  # noqa: ANN202
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def rho_from_approx(epsilon: float, delta: float) -> float:
    """The ρ whose zCDP guarantee implies (ε, δ)-DP: (√(ε + L) − √L)², L = ln(1/δ).

    The inverse of :func:`approx_from_rho` (Bun & Steinke 2016, Prop. 1.3).

    Args:
        epsilon: ε of the (ε, δ)-DP budget, ≥ 0.
        delta: δ of the (ε, δ)-DP budget, in (0, 1).

    Returns:
        ρ, the largest zCDP loss that still implies (ε, δ)-DP.
    """
    log = math.log(1 / delta)
    return (math.sqrt(epsilon + log) - math.sqrt(log)) ** 2


def approx_from_rho(rho: float, delta: float) -> float:
    """ε of (ε, δ)-DP implied by ρ-zCDP: ρ + 2√(ρ·ln(1/δ)).

    Bun & Steinke 2016, Prop. 1.3.

    Args:
        rho: ρ of the zCDP loss, ≥ 0.
        delta: The target δ, in (0, 1).

    Returns:
        ε such that ρ-zCDP implies (ε, δ)-DP.
    """
    return rho + 2 * math.sqrt(rho * math.log(1 / delta))


@dataclass(frozen=True)
class DiscreteNoise:
    """Integer noise added to a vector of integer aggregates (units of the aggregate).

    Attributes:
        kind: ``laplace`` (discrete Laplace, pmf ∝ e^{−|x|/b}) or ``gaussian``
            (discrete Gaussian, pmf ∝ e^{−x²/(2σ²)}).
        scale: b or σ, in integer units (finite, > 0).
    """

    kind: str
    scale: float

    def __post_init__(self) -> None:
        """Refuse a scale no mechanism may have: zero or non-finite noise is no noise.

        Raises:
            InternalError: The scale is not finite or not > 0.
        """
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise InternalError(f"{self.kind} noise scale {self.scale!r} is not finite and > 0")

    def measurement(self):  # noqa: ANN201
        """OpenDP's measurement on i64 vectors.

        Discrete Laplace under the L1 distance (an integer), discrete Gaussian under
        the L2 distance (a float: √L0·L∞ is generally irrational).

        Returns:
            An OpenDP ``Measurement``.
        """
        dp = _dp()
        domain = dp.vector_domain(dp.atom_domain(T="i64"))
        if self.kind == "laplace":
            return dp.m.make_laplace(domain, dp.l1_distance(T="i64"), scale=self.scale)
        return dp.m.make_gaussian(domain, dp.l2_distance(T="f64"), scale=self.scale)

    def privacy_loss(self, sensitivity: float) -> float:
        """The privacy loss by OpenDP's map at the given sensitivity.

        The Laplace's L1 sensitivity is an integer and is passed as one. The
        Gaussian's L2 sensitivity √L0·L∞·M is generally not, and is passed unrounded
        as a float (an ``L2Distance<f64>`` metric over the i64 vector); OpenDP
        rounds the map's arithmetic up, so the result is never below the true ρ.

        Args:
            sensitivity: Δ1 (Laplace) or Δ2 (Gaussian).

        Returns:
            ε (Laplace) or ρ (Gaussian).
        """
        d_in = int(sensitivity) if self.kind == "laplace" else float(sensitivity)
        return float(self.measurement().map(d_in))

    def add(self, values: list[int]) -> list[int]:
        """Add independent noise to each value (OpenDP's exact sampler).

        Args:
            values: Integer aggregates.

        Returns:
            The noisy values.
        """
        return self.measurement()([int(v) for v in values])

    @property
    def _support_half_width(self) -> int:
        """Half-width of the support the pmf is summed over (mass beyond: < e^-40)."""
        return int(math.ceil(40 * max(self.scale, 1))) + 10

    def pmf(self, x: np.ndarray) -> np.ndarray:
        """Exact probability mass at the integers ``x`` (normalized numerically).

        Args:
            x: Integers.

        Returns:
            P(noise = x) for each.
        """
        reach = self._support_half_width
        support = np.arange(-reach, reach + 1)
        if self.kind == "laplace":
            weights = np.exp(-np.abs(support) / self.scale)
        else:
            weights = np.exp(-(support.astype(float) ** 2) / (2 * self.scale**2))
        weights /= weights.sum()
        return np.interp(x, support, weights, left=0.0, right=0.0)

    def tail(self, k: int) -> float:
        """P(noise ≥ k), from the exact pmf (closed form for the discrete Laplace).

        Args:
            k: An integer.

        Returns:
            The probability.
        """
        if self.kind == "laplace":
            a = math.exp(-1 / self.scale)  # P(X ≥ k) = a^k/(1 + a) for k ≥ 1, symmetric
            return a**k / (1 + a) if k >= 1 else 1 - a ** (1 - k) / (1 + a)
        return float(self.pmf(np.arange(k, k + self._support_half_width + 1)).sum())

    def variance(self) -> float:
        """Var of the noise: discrete Laplace 2e^{−1/b}/(1 − e^{−1/b})²; Gaussian by sum.

        Returns:
            The variance, in squared integer units.
        """
        if self.kind == "laplace":
            a = math.exp(-1 / self.scale)
            return 2 * a / (1 - a) ** 2
        x = np.arange(-self._support_half_width, self._support_half_width + 1)
        return float((x.astype(float) ** 2 * self.pmf(x)).sum())

    def half_width(self, confidence: float = CONFIDENCE) -> int:
        """Smallest integer t with P(|noise| ≤ t) ≥ confidence (from the exact pmf).

        Args:
            confidence: The coverage, e.g. 0.95.

        Returns:
            t, in integer units.
        """
        x = np.arange(0, self._support_half_width + 1)
        p = self.pmf(x)
        inside = np.cumsum(np.where(x == 0, p, 2 * p))
        return int(x[np.searchsorted(inside, confidence)])

    def describe(self, unit: float = 1.0) -> dict[str, object]:
        """Distribution, scale and 95 % half-width in output units.

        Args:
            unit: Output units per integer unit (a sum's resolution).

        Returns:
            The error report's entry.
        """
        name = "discrete Laplace" if self.kind == "laplace" else "discrete Gaussian"
        return {
            "distribution": name,
            "scale": self.scale * unit,
            "scale_meaning": "b, pmf ∝ exp(-|x|/b)" if self.kind == "laplace" else "sigma",
            "ci95_half_width": self.half_width() * unit,
        }


def laplace(l1: int, epsilon: float) -> DiscreteNoise:
    """Discrete Laplace with b = Δ1/ε.

    Args:
        l1: The L1 sensitivity Δ1 (an integer).
        epsilon: The ε it may spend.

    Returns:
        The noise.
    """
    return DiscreteNoise("laplace", l1 / epsilon)


def gaussian(l2: float, rho: float) -> DiscreteNoise:
    """Discrete Gaussian with σ = Δ2/√(2ρ).

    Args:
        l2: The L2 sensitivity Δ2.
        rho: The ρ it may spend.

    Returns:
        The noise.
    """
    return DiscreteNoise("gaussian", l2 / math.sqrt(2 * rho))


def noise_for(l1: int, l2: float, share: float, zcdp: bool) -> DiscreteNoise:
    """The noise spending ``share`` on an aggregate vector.

    Args:
        l1: The L1 sensitivity (pure DP).
        l2: The L2 sensitivity (zCDP).
        share: ε, or ρ when ``zcdp``.
        zcdp: Gaussian noise accounted in ρ, else Laplace in ε.

    Returns:
        The noise.
    """
    return gaussian(l2, share) if zcdp else laplace(l1, share)


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


@dataclass(frozen=True)
class Quantile:
    """Per-group exponential-mechanism quantile over fixed candidates."""

    q: float
    candidates: tuple[float, ...]
    scale: float
    zcdp: bool

    def measurement(self):  # noqa: ANN201
        """OpenDP's private quantile over one group's (clamped) values.

        Returns:
            An OpenDP ``Measurement`` from a vector of floats to one of the candidates, under the
            symmetric distance, in max divergence (pure) or zCDP.
        """
        dp = _dp()
        measure = dp.zero_concentrated_divergence() if self.zcdp else dp.max_divergence()
        return dp.m.make_private_quantile(
            dp.vector_domain(dp.atom_domain(T=float, nan=False)),
            dp.symmetric_distance(),
            measure,
            candidates=list(self.candidates),
            alpha=self.q,
            scale=self.scale,
        )

    def release(self, values: list[float]) -> float:
        """One group's private quantile (a candidate).

        Args:
            values: The group's values, already clamped to the candidates' range.

        Returns:
            The chosen candidate.
        """
        return float(self.measurement()(values))

    def rank_half_width(self, confidence: float = CONFIDENCE) -> float:
        """Rank error bound of the exponential mechanism with probability ``confidence``.

        With score sensitivity Δ = L∞ and noise scale s: the chosen candidate's score is
        within s·2·ln(m/(1 − confidence)) of the best (McSherry & Talwar 2007), m
        candidates.

        Args:
            confidence: The probability the bound holds, in (0, 1).

        Returns:
            The half-width 2·s·ln(m/(1 − confidence)), in score (rank) units.
        """
        return 2 * self.scale * math.log(len(self.candidates) / (1 - confidence))


def quantile(
    q: float, lo: float, hi: float, count: int, linf: int, share: float, zcdp: bool
) -> Quantile:
    """Scale so that each group's quantile spends ``share`` at symmetric distance L∞.

    The scale is found by OpenDP's ``binary_search_param`` on the privacy map.

    Args:
        q: The quantile, in [0, 1] (0.5 for the median).
        lo: The smallest candidate (the clamping lower bound).
        hi: The largest candidate (the clamping upper bound).
        count: The number of evenly spaced candidates in [lo, hi] (≥ 2).
        linf: L∞, the most rows one unit contributes to a group (the symmetric distance).
        share: The budget each group's quantile spends: ε, or ρ when ``zcdp``.
        zcdp: Account in ρ-zCDP rather than pure ε-DP.

    Returns:
        The calibrated quantile mechanism.
    """
    step = (hi - lo) / (count - 1)
    candidates = tuple(lo + i * step for i in range(count))
    dp = _dp()

    def make(scale: float):  # noqa: ANN202
        return Quantile(q, candidates, scale, zcdp).measurement()

    scale = dp.binary_search_param(make, d_in=linf, d_out=share, T=float)
    return Quantile(q, candidates, scale, zcdp)
