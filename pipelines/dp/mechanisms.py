"""The DP mechanisms of a release: sensitivities, noise scales, error bars, OpenDP.

Noise comes from OpenDP (``opendp`` 0.16, its ``contrib`` measurements): discrete
Laplace and discrete Gaussian on integer vectors (exact samplers, Canonne, Kamath &
Steinke 2020) and the exponential-mechanism quantile; OpenDP's privacy maps check
or search each scale. Group selection is in :mod:`pipelines.dp.selection`. Nothing
here draws from numpy or ``random``: floating-point samplers
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
* selection (private keys): see :mod:`pipelines.dp.selection`.
"""

from __future__ import annotations

import math
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
