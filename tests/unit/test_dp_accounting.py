"""Two-phase DP accounting: budgets as values, shares split once, every mechanism's
loss checked against its share by OpenDP's map before anything is drawn."""

from __future__ import annotations

import doctest
import math

import pytest

from pipelines.dp import accounting
from pipelines.dp import mechanisms as mech
from pipelines.dp.accounting import Accountant, Budget
from pipelines.dp.plan import plan_release
from pipelines.errors import InternalError, SpecError
from pipelines.spec.dp import Release

METRICS = {
    "n": {"kind": "count"},
    "users": {"kind": "count_units"},
    "total": {"kind": "sum", "column": "v", "lower": -5, "upper": 10, "resolution": 0.1},
    "avg": {"kind": "mean", "column": "v", "lower": 0, "upper": 10},
    "p50": {"kind": "quantile", "column": "v", "lower": 0, "upper": 10, "q": 0.5},
}


def release(keys="private", **budget) -> Release:
    return Release.model_validate({
        "sink": {"path": "x"}, "group_by": ["g"], "keys": keys,
        "bounds": {"max_groups_per_unit": 3, "max_rows_per_group": 2},
        "metrics": METRICS, "budget": budget or {"epsilon": 1.0}})  # fmt: skip


def test_budget_docstring_examples_hold():
    assert doctest.testmod(accounting).failed == 0


def test_budgets_add_scale_compare_and_convert():
    a, b = Budget.pure(0.5, 1e-7), Budget.pure(0.25)
    assert a + b == Budget.pure(0.75, 1e-7) and 2 * b == Budget.pure(0.5)
    assert b.fits(a) and not a.fits(b)
    assert Budget.pure(0.3).cost("epsilon") == 0.3 and Budget.zcdp(0.2).cost("rho") == 0.2
    assert Budget.pure(0.4).cost("rho") == pytest.approx(0.08)  # ε²/2
    with pytest.raises(SpecError, match="dp_budget.epsilon cannot account a zCDP"):
        Budget.zcdp(0.1).cost("epsilon")
    with pytest.raises(InternalError):
        Budget.pure(0.1) + Budget.zcdp(0.1)
    for bad in (math.inf, math.nan, -1.0):
        with pytest.raises(InternalError):
            Budget.pure(bad)
    assert Budget.from_json(Budget.zcdp(0.3, 1e-6).to_json()) == Budget.zcdp(0.3, 1e-6)


def test_shares_are_split_once_after_every_request():
    acct = Accountant(Budget.pure(1.0))
    acct.request("a", 1)
    acct.request("b", 3)
    assert acct.shares == {"a": 0.25, "b": 0.75}
    with pytest.raises(InternalError, match="after the split"):
        acct.request("c")
    with pytest.raises(InternalError, match="exceeds its share"):
        acct.verify("a", 0.25 * (1 + 1e-6))
    acct.verify("a", 0.25 * (1 + 1e-12))  # OpenDP's conservative rounding is tolerated
    with pytest.raises(InternalError):
        Accountant(Budget.pure(1.0)).request("x", 0)


@pytest.mark.parametrize("budget", [{"epsilon": 1.0}, {"rho": 0.5},
                                    {"epsilon": 1.0, "delta": 1e-6, "noise": "gaussian"}])  # fmt: skip
def test_every_mechanism_is_verified_against_its_share_by_opendp(budget):
    plan = plan_release(release(**budget))
    acct = plan.accountant
    assert set(acct.losses) == {"selection", "n", "users", "total", "avg.count", "avg.sum", "p50"}
    for name, loss in acct.losses.items():
        share = acct.shares[name.split(".")[0]] / (2 if "." in name else 1)
        assert loss <= share * (1 + accounting.TOLERANCE), name
        if name not in ("selection", "p50"):  # exact calibrations: the map lands on the share
            assert loss == pytest.approx(share, rel=1e-6), name
    assert plan.charge() == acct.total


def test_gaussian_with_an_irrational_l2_sensitivity_is_checked_unrounded():
    """Δ2 = √L0·L∞ = 2√3 for the count: OpenDP's map at the float Δ2 equals ρ."""
    plan = plan_release(release(rho=0.5))
    noise = plan.noises["n"]
    assert noise.scale == pytest.approx(2 * math.sqrt(3) / math.sqrt(2 * plan.shares["n"]))
    assert noise.privacy_loss(2 * math.sqrt(3)) == pytest.approx(plan.shares["n"], rel=1e-9)
    assert noise.privacy_loss(4) > plan.shares["n"]  # rounding Δ2 up to 4 would overstate it


def test_an_under_noised_mechanism_stops_the_release_before_any_draw(monkeypatch):
    real = mech.gaussian
    monkeypatch.setattr(mech, "gaussian", lambda l2, rho: real(l2 / 2, rho))  # σ halved: 4ρ
    with pytest.raises(InternalError, match="exceeds its share"):
        plan_release(release(rho=0.5))
    real_laplace = mech.laplace
    monkeypatch.setattr(mech, "laplace", lambda l1, eps: real_laplace(l1, eps * 1.01))
    with pytest.raises(InternalError, match="exceeds its share"):
        plan_release(release(epsilon=1.0))


@pytest.mark.parametrize("scale", [0.0, -1.0, math.inf, math.nan])
def test_a_noise_scale_that_is_zero_or_not_finite_is_refused(scale):
    with pytest.raises(InternalError, match="not finite and > 0"):
        mech.DiscreteNoise("laplace", scale)


def test_an_infinite_budget_that_slipped_past_validation_stops_before_any_draw():
    """Belt and braces: the spec refuses .inf; a model built around validation still
    cannot calibrate zero noise."""
    rel = release(epsilon=1.0)
    for bad in ({"epsilon": math.inf}, {"rho": math.inf, "epsilon": None}):
        broken = rel.model_copy(update={"budget": rel.budget.model_copy(update=bad)})
        with pytest.raises(InternalError, match="not finite"):
            plan_release(broken)
