"""The DP mechanisms of a release: sensitivities, noise scales, error bars, OpenDP.

Every random draw comes from OpenDP (``opendp`` 0.16, its ``contrib`` measurements):
discrete Laplace and discrete Gaussian on integer vectors (exact samplers, Canonne,
Kamath & Steinke 2020), the exponential-mechanism quantile, and the Laplace /
Gaussian threshold mechanisms for group selection. Nothing here draws from numpy or
``random``: floating-point samplers leak through their low bits (Mironov 2012).
OpenDP's privacy maps are used to check (or search) each scale, so the accounting
is OpenDP's, not a formula of ours.

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
* selection (private keys): per group the number of distinct units (each unit in at
  most L0 groups, once each), noised and released only at or above a threshold τ
  (OpenDP's Laplace / Gaussian threshold measurements); τ is the smallest value
  with L0·P(X ≥ τ − 1) ≤ δ, so the groups one person could make appear are
  released with probability at most δ in total (see :func:`selection`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95


def _dp():  # noqa: ANN202
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def rho_from_approx(epsilon: float, delta: float) -> float:
    """The ρ whose zCDP guarantee implies (ε, δ)-DP: (√(ε + L) − √L)², L = ln(1/δ)."""
    log = math.log(1 / delta)
    return (math.sqrt(epsilon + log) - math.sqrt(log)) ** 2


def approx_from_rho(rho: float, delta: float) -> float:
    """ε of (ε, δ)-DP implied by ρ-zCDP: ρ + 2√(ρ·ln(1/δ))."""
    return rho + 2 * math.sqrt(rho * math.log(1 / delta))


@dataclass(frozen=True)
class Noise:
    """Integer noise added to a vector of integer aggregates (units of the aggregate)."""

    kind: str  # "laplace" (discrete) or "gaussian" (discrete)
    scale: float  # b or σ, in integer units

    def add(self, values: list[int]) -> list[int]:
        """Return ``values`` plus independent noise (OpenDP's exact sampler)."""
        dp = _dp()
        domain = dp.vector_domain(dp.atom_domain(T="i64"))
        if self.kind == "laplace":
            m = dp.m.make_laplace(domain, dp.l1_distance(T="i64"), scale=self.scale)
        else:
            m = dp.m.make_gaussian(domain, dp.l2_distance(T="i64"), scale=self.scale)
        return m([int(v) for v in values])

    def pmf(self, x: np.ndarray) -> np.ndarray:
        """Exact probability mass at the integers ``x`` (normalized numerically)."""
        reach = int(math.ceil(40 * max(self.scale, 1))) + 10
        support = np.arange(-reach, reach + 1)
        if self.kind == "laplace":
            weights = np.exp(-np.abs(support) / self.scale)
        else:
            weights = np.exp(-(support.astype(float) ** 2) / (2 * self.scale**2))
        weights /= weights.sum()
        return np.interp(x, support, weights, left=0.0, right=0.0)

    def tail(self, k: int) -> float:
        """P(noise ≥ k), from the exact pmf (closed form for the discrete Laplace)."""
        if self.kind == "laplace":
            a = math.exp(-1 / self.scale)  # P(X ≥ k) = a^k/(1 + a) for k ≥ 1, symmetric
            return a**k / (1 + a) if k >= 1 else 1 - a ** (1 - k) / (1 + a)
        reach = k + int(math.ceil(40 * max(self.scale, 1))) + 10
        return float(self.pmf(np.arange(k, reach + 1)).sum())

    def variance(self) -> float:
        """Var of the noise: discrete Laplace 2e^{−1/b}/(1 − e^{−1/b})²; Gaussian by sum."""
        if self.kind == "laplace":
            a = math.exp(-1 / self.scale)
            return 2 * a / (1 - a) ** 2
        reach = int(math.ceil(40 * max(self.scale, 1))) + 10
        x = np.arange(-reach, reach + 1)
        return float((x.astype(float) ** 2 * self.pmf(x)).sum())

    def half_width(self, confidence: float = CONFIDENCE) -> int:
        """Smallest integer t with P(|noise| ≤ t) ≥ confidence (from the exact pmf)."""
        reach = int(math.ceil(40 * max(self.scale, 1))) + 10
        x = np.arange(0, reach + 1)
        p = self.pmf(x)
        inside = np.cumsum(np.where(x == 0, p, 2 * p))
        return int(x[np.searchsorted(inside, confidence)])

    def describe(self, unit: float = 1.0) -> dict[str, object]:
        """Distribution, scale and 95 % half-width in output units (× ``unit``)."""
        name = "discrete Laplace" if self.kind == "laplace" else "discrete Gaussian"
        return {
            "distribution": name,
            "scale": self.scale * unit,
            "scale_meaning": "b, pmf ∝ exp(-|x|/b)" if self.kind == "laplace" else "sigma",
            "ci95_half_width": self.half_width() * unit,
        }


def laplace(l1: int, epsilon: float) -> Noise:
    """Discrete Laplace with b = Δ1/ε, checked against OpenDP's privacy map."""
    noise = Noise("laplace", l1 / epsilon)
    dp = _dp()
    m = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64"), scale=noise.scale
    )
    spent = m.map(int(l1))
    if spent > epsilon * (1 + 1e-9):
        raise AssertionError(f"OpenDP map gives epsilon {spent} > {epsilon}")
    return noise


def gaussian(l2: float, rho: float) -> Noise:
    """Discrete Gaussian with σ = Δ2/√(2ρ) (OpenDP's map at integer Δ2 agrees; tested)."""
    return Noise("gaussian", l2 / math.sqrt(2 * rho))


def noise_for(l1: int, l2: float, share: float, zcdp: bool) -> Noise:
    """The noise spending ``share`` (ε, or ρ when ``zcdp``) on an aggregate vector."""
    return gaussian(l2, share) if zcdp else laplace(l1, share)


@dataclass(frozen=True)
class Selection:
    """Private group selection: noisy distinct-unit counts released above ``threshold``."""

    kind: str  # "laplace" | "gaussian"
    scale: float
    threshold: int
    epsilon_or_rho: float
    delta: float

    def measurement(self):  # noqa: ANN201
        """The OpenDP threshold measurement over a {group key: unit count} map."""
        dp = _dp()
        domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T="i64"))
        if self.kind == "laplace":
            metric = dp.l01inf_distance(dp.absolute_distance(T="i64"))
            return dp.m.make_laplace_threshold(
                domain, metric, scale=self.scale, threshold=self.threshold
            )
        metric = dp.l02inf_distance(dp.absolute_distance(T="i64"))
        return dp.m.make_gaussian_threshold(
            domain, metric, scale=self.scale, threshold=self.threshold
        )

    def select(self, counts: dict[str, int]) -> dict[str, int]:
        """The released keys with their noisy counts (the rest are dropped)."""
        return self.measurement()({k: int(v) for k, v in counts.items()})


def selection(l0: int, share: float, delta: float, zcdp: bool) -> Selection:
    """Scale from the budget share; the smallest threshold τ whose δ is ≤ ``delta``.

    Each unit adds 1 to the distinct-unit count of at most L0 groups. Groups present
    in both neighbouring datasets differ by 1 in at most L0 counts: ε = L0/b
    (Laplace) or ρ = L0/(2σ²) (Gaussian, L2 = √L0). A group only the removed unit
    creates has count 1 and is released with probability P(1 + X ≥ τ); there are at
    most L0 of them, so δ = L0·P(X ≥ τ − 1) (Korolova et al. 2009; Wilson et al.
    2020), computed from the exact noise pmf.

    OpenDP's own map for these measurements (0.16) reports the release probability
    of a count-*0* key, P(X ≥ τ), which is smaller (at b = 1, by a factor e); a test
    found this empirically. τ is therefore sized by the formula above and checked to
    be at least as large as OpenDP's choice; OpenDP still does the sampling.
    """
    if zcdp:
        kind, scale = "gaussian", math.sqrt(l0) / math.sqrt(2 * share)
        d_in = (l0, math.ceil(math.sqrt(l0)), 1)
    else:
        kind, scale, d_in = "laplace", l0 / share, (l0, l0, 1)
    noise = Noise(kind, scale)
    threshold = 2
    while l0 * noise.tail(threshold - 1) > delta:
        threshold += 1 if threshold < 64 else threshold // 8
    while threshold > 2 and l0 * noise.tail(threshold - 2) <= delta:
        threshold -= 1
    sel = Selection(kind, scale, threshold, share, delta)
    spent, opendp_delta = sel.measurement().map(d_in)
    if spent > share * (1 + 1e-6) or opendp_delta > delta:
        raise AssertionError(f"selection spends ({spent}, {opendp_delta}) > ({share}, {delta})")
    return sel


@dataclass(frozen=True)
class Quantile:
    """Per-group exponential-mechanism quantile over fixed candidates."""

    q: float
    candidates: tuple[float, ...]
    scale: float
    zcdp: bool

    def measurement(self):  # noqa: ANN201
        """OpenDP's private quantile over one group's (clamped) values."""
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
        """One group's private quantile (a candidate)."""
        return float(self.measurement()(values))

    def rank_half_width(self, confidence: float = CONFIDENCE) -> float:
        """Rank error bound of the exponential mechanism with probability ``confidence``.

        With score sensitivity Δ = L∞ and noise scale s: the chosen candidate's score is
        within s·2·ln(m/(1 − confidence)) of the best (McSherry & Talwar 2007), m
        candidates.
        """
        return 2 * self.scale * math.log(len(self.candidates) / (1 - confidence))


def quantile(
    q: float, lo: float, hi: float, count: int, linf: int, share: float, zcdp: bool
) -> Quantile:
    """Scale so that each group's quantile spends ``share`` at symmetric distance L∞."""
    step = (hi - lo) / (count - 1)
    candidates = tuple(lo + i * step for i in range(count))
    dp = _dp()

    def make(scale: float):  # noqa: ANN202
        return Quantile(q, candidates, scale, zcdp).measurement()

    scale = dp.binary_search_param(make, d_in=linf, d_out=share, T=float)
    return Quantile(q, candidates, scale, zcdp)
