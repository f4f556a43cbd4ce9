"""The DP math: samplers against their exact pmf, calibration, conversions, thresholds.

Statistical tests use a fixed false-alarm rate of 1e-6 per test (the samplers are
OpenDP's CSPRNG-driven exact samplers, so the tests cannot be seeded): a correct
sampler fails one of them about once in a million runs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from pipelines.dp import mechanisms as mech
from pipelines.dp import selection
from pipelines.dp.accounting import Budget
from pipelines.dp.plan import plan_release
from pipelines.spec.dp import Release

ALPHA = 1e-6
N = 20_000


def chi_square_against_pmf(noise: mech.DiscreteNoise, samples: np.ndarray) -> float:
    """p-value of Pearson's test of the samples against the exact pmf (tails pooled)."""
    reach = int(math.ceil(3 * noise.scale)) + 1
    support = np.arange(-reach, reach + 1)
    probs = noise.pmf(support)
    expected = np.append(probs, 1 - probs.sum()) * len(samples)
    inside = np.clip(samples, -reach - 1, reach + 1)
    observed = np.array([np.count_nonzero(samples == x) for x in support]
                        + [np.count_nonzero(np.abs(inside) > reach)])  # fmt: skip
    keep = expected >= 5  # Pearson's rule; pool the sparse cells into the tail cell
    obs = np.append(observed[keep], observed[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    if exp[-1] < 5:
        obs, exp = obs[:-1], exp[:-1]
        exp = exp * obs.sum() / exp.sum()
    return float(stats.chisquare(obs, exp).pvalue)


@pytest.mark.slow
@pytest.mark.parametrize("noise", [mech.DiscreteNoise("laplace", 0.7), mech.DiscreteNoise("laplace", 4.0),
                                   mech.DiscreteNoise("gaussian", 1.5), mech.DiscreteNoise("gaussian", 6.0)])  # fmt: skip
def test_samplers_match_the_exact_pmf_and_variance(noise):
    samples = np.array(noise.add([0] * N))
    assert chi_square_against_pmf(noise, samples) > ALPHA
    # Calibration: the sample variance is within the CLT band of the exact variance
    # (Var of the sample variance ≈ (μ4 − σ⁴)/n, μ4 from the pmf).
    reach = int(math.ceil(40 * noise.scale)) + 10
    x = np.arange(-reach, reach + 1).astype(float)
    p = noise.pmf(x)
    var, mu4 = (x**2 * p).sum(), (x**4 * p).sum()
    z = (samples.var() - var) / math.sqrt((mu4 - var**2) / N)
    assert abs(z) < stats.norm.isf(ALPHA / 2), (samples.var(), var)
    assert noise.variance() == pytest.approx(var, rel=1e-9)
    assert abs(samples.mean()) < stats.norm.isf(ALPHA / 2) * math.sqrt(var / N)


def test_noise_is_added_to_the_values():
    """Each value comes back as itself plus its own centred noise, in order."""
    values = [10**12, -7] * 1000
    for noise in (mech.DiscreteNoise("laplace", 3.0), mech.DiscreteNoise("gaussian", 3.0)):
        diffs = np.array(noise.add(values)) - np.array(values)
        # P(noise = 0) ≈ 0.165 (Laplace b=3) or 0.133 (Gaussian σ=3): most values move
        assert len(diffs) == len(values) and np.count_nonzero(diffs) > 1500
        assert (np.abs(diffs) < 10**6).all()  # order kept: no value landed on another
        sd = math.sqrt(noise.variance() / len(values))
        assert abs(diffs.mean()) < stats.norm.isf(ALPHA / 2) * sd


def test_half_width_is_the_95_percent_quantile_of_the_exact_pmf():
    for noise in (mech.DiscreteNoise("laplace", 10.0), mech.DiscreteNoise("gaussian", 10.0)):
        t = noise.half_width()
        x = np.arange(-t, t + 1)
        assert noise.pmf(x).sum() >= 0.95 > noise.pmf(x[1:-1]).sum()
    # ≈ b·ln 20 for a wide discrete Laplace, ≈ 1.96σ for a wide discrete Gaussian
    assert mech.DiscreteNoise("laplace", 100.0).half_width() == pytest.approx(100 * math.log(20), rel=0.01)
    assert mech.DiscreteNoise("gaussian", 100.0).half_width() == pytest.approx(196, abs=1)


def test_scales_follow_the_formulas_and_opendp_maps():
    import opendp.prelude as dp

    dp.enable_features("contrib")
    assert mech.laplace(12, 0.5).scale == 24.0  # b = Δ1/ε
    g = mech.gaussian(3.0, 0.5)  # σ = Δ2/√(2ρ)
    assert g.scale == pytest.approx(3.0)
    m = dp.m.make_gaussian(dp.vector_domain(dp.atom_domain(T="i64")), dp.l2_distance(T="i64"),
                           scale=g.scale)  # fmt: skip
    assert m.map(3) == pytest.approx(0.5)  # OpenDP's own accounting agrees
    rho = mech.rho_from_approx(1.0, 1e-6)
    assert mech.approx_from_rho(rho, 1e-6) == pytest.approx(1.0)
    assert rho == pytest.approx((math.sqrt(1 + math.log(1e6)) - math.sqrt(math.log(1e6))) ** 2)


def test_selection_table_is_the_optimal_dp_sequence():
    """π(1) = δ/L0; every step meets both DP constraints; π reaches 1; more groups
    than Laplace thresholding at the same (ε, δ)."""
    sel = selection.selection(l0=4, share=1 / 3, delta=1e-6, zcdp=False)
    pi = np.array(sel.table)
    eps, dlt = 1 / 3 / 4, 1e-6 / 4
    assert pi[0] == 0 and pi[1] == pytest.approx(dlt, rel=1e-5) and pi[-1] == 1.0
    assert (np.diff(pi) >= 0).all()
    assert (pi[1:] <= np.exp(eps) * pi[:-1] + dlt + 1e-15).all()
    assert (1 - pi[:-1] <= np.exp(eps) * (1 - pi[1:]) + dlt + 1e-15).all()
    # the optimum is tight: one of the two constraints binds at every step below 1
    tight = np.minimum(np.exp(eps) * pi[:-1] + dlt, 1 + np.exp(-eps) * (pi[:-1] + dlt - 1))
    assert pi[1:-1] == pytest.approx(tight[:-1], rel=1e-5)
    # Laplace thresholding at the same budget: τ = 1 + b·ln(L0/(2δ)), b = L0/ε = 12
    assert sel.threshold < 1 + 12 * math.log(4 / 2e-6) - 30
    assert selection.selection(l0=4, share=0.5, delta=1e-6, zcdp=True).epsilon == pytest.approx(1.0)


@pytest.mark.slow
def test_selection_keeps_groups_at_the_table_rates():
    """Empirical keep rates of 1-person and mid-size groups match π(n) (binomial band)."""
    sel = selection.selection(l0=1, share=1.0, delta=0.05, zcdp=False)
    trials = 20_000
    for n in (1, sel.threshold):
        p = sel.keep_probability(n)
        rate = len(sel.select({str(i): n for i in range(trials)})) / trials
        assert abs(rate - p) < stats.norm.isf(ALPHA / 2) * math.sqrt(p * (1 - p) / trials)
    assert sel.select({"big": sel.always}) == {"big": sel.always}
    assert sel.select({"none": 0}) == {}


@pytest.mark.slow
def test_bernoulli_is_exact_in_distribution():
    for p in (0.3, 1e-3, 0.999):
        draws = sum(selection.bernoulli(p) for _ in range(40_000))
        assert abs(draws / 40_000 - p) < stats.norm.isf(ALPHA / 2) * math.sqrt(p * (1 - p) / 40_000)
    assert selection.bernoulli(0.0) is False and selection.bernoulli(1.0) is True


def test_plan_splits_the_budget_and_charges_it():
    rel = Release.model_validate({
        "sink": {"path": "x"}, "group_by": ["region"], "keys": "private",
        "bounds": {"max_groups_per_unit": 4, "max_rows_per_group": 5},
        "metrics": {"n": {"kind": "count"},
                    "total": {"kind": "sum", "column": "amount", "lower": 0, "upper": 100,
                              "resolution": 0.01}},
        "budget": {"epsilon": 1.0, "split": {"selection": 2}}})  # fmt: skip
    p = plan_release(rel)
    assert p.shares == pytest.approx({"n": 0.25, "total": 0.25, "selection": 0.5})
    assert p.noises["n"].scale == pytest.approx(4 * 5 / 0.25)  # Δ1 = L0·L∞
    assert p.noises["total"].scale == pytest.approx(4 * 5 * 10_000 / 0.25)  # fixed point
    assert p.charge() == Budget.pure(1.0, 1e-6)
    assert p.selection.epsilon == pytest.approx(0.5) and p.selection.l0 == 4
    z = plan_release(rel.model_copy(update={"budget": rel.budget.model_copy(
        update={"epsilon": 1.0, "delta": 1e-6, "noise": "gaussian"})}))  # fmt: skip
    assert z.zcdp and z.total == pytest.approx(mech.rho_from_approx(1.0, 1e-6))
    assert z.noises["n"].scale == pytest.approx(2 * 5 / math.sqrt(2 * z.shares["n"]))


@pytest.mark.slow
def test_release_noise_is_calibrated_end_to_end():
    """Many groups with the same truth through the release finisher (no Spark):
    the spread of each metric equals its planned noise; means are unbiased."""
    import pandas as pd

    from pipelines.dp.release import ROWS, UNITS, NoisyBatches

    rel = Release.model_validate({
        "sink": {"path": "x"}, "group_by": ["g"], "keys": {"values": {"g": ["x"]}},
        "bounds": {"max_groups_per_unit": 2, "max_rows_per_group": 3},
        "metrics": {"n": {"kind": "count"},
                    "total": {"kind": "sum", "column": "v", "lower": 0, "upper": 10, "resolution": 1}},
        "budget": {"rho": 0.5}})  # fmt: skip
    p = plan_release(rel)
    groups = 4000
    batch = pd.DataFrame({"g": [str(i) for i in range(groups)], ROWS: 10_000, UNITS: 5000,
                          "total": 50_000})  # fmt: skip
    out = next(iter(NoisyBatches(rel, p, True, False)([batch])))
    for metric, truth in (("n", 10_000), ("total", 50_000)):
        noise = p.noises[metric]
        errors = out[metric].to_numpy(dtype=float) - truth
        var = noise.variance()
        assert abs(errors.mean()) < stats.norm.isf(ALPHA / 2) * math.sqrt(var / groups)
        # sample variance of a Gaussian-like sum: sd ≈ var·√(2/n)
        assert abs(errors.var() - var) < stats.norm.isf(ALPHA / 2) * var * math.sqrt(2 / groups)
