"""The budget ledger: refusal with the remaining budget, rolling windows, parallel
composition, refunds, and no overspending under concurrent processes."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from pipelines.dp.accounting import Budget
from pipelines.dp.ledger import Ledger
from pipelines.errors import BudgetExceededError
from pipelines.spec.dp import BudgetPolicy
from tests.postgres import postgres_server

PURE = Budget.pure(1.0)


def test_refuses_over_budget_naming_what_remains(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    policy = BudgetPolicy(epsilon=2.5, window=7)
    ledger.reserve("d", "2026-11-01", "r", "run1", PURE, policy)
    ledger.reserve("d", "2026-11-02", "r", "run2", PURE, policy)
    with pytest.raises(BudgetExceededError, match=r"needs epsilon 1 .*only 0\.5 of 2\.5 remains"):
        ledger.reserve("d", "2026-11-03", "r", "run3", PURE, policy)
    assert [c.status for c in ledger.history("d")] == ["reserved", "reserved"]
    assert ledger.remaining("d", policy, "2026-11-03").remaining == pytest.approx(0.5)


def test_rolling_window_counts_every_window_containing_the_partition(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    policy = BudgetPolicy(epsilon=2.0, window=3)
    ledger.reserve("d", "2026-11-01", "r", "a", PURE, policy)
    ledger.reserve("d", "2026-11-05", "r", "b", PURE, policy)
    # 11-03 shares a 3-day window with 11-01 (01..03) and with 11-05 (03..05): 2 each, fine
    ledger.reserve("d", "2026-11-03", "r", "c", PURE, policy)
    with pytest.raises(BudgetExceededError):  # 11-04: window 03..05 would hold 3
        ledger.reserve("d", "2026-11-04", "r", "d", PURE, policy)
    ledger.reserve("d", "2026-11-08", "r", "e", PURE, policy)  # outside every window
    ledger.reserve("other", "2026-11-03", "r", "f", PURE, policy)  # another dataset


def test_refunds_do_not_count_and_person_partition_composes_in_parallel(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    policy = BudgetPolicy(epsilon=1.0, window=30, unit="person_partition")
    first = ledger.reserve("d", "2026-11-01", "r", "a", PURE, policy)
    ledger.reserve("d", "2026-11-02", "r", "b", PURE, policy)  # its own partition: allowed
    with pytest.raises(BudgetExceededError):
        ledger.reserve("d", "2026-11-01", "r", "c", PURE, policy)
    ledger.settle(first, "refunded")
    ledger.reserve("d", "2026-11-01", "r", "c", PURE, policy)
    assert ledger.released("d", "2026-11-01", "r") is None  # nothing spent yet


def test_spent_sums_each_partitions_unrefunded_charges_in_the_policys_unit(tmp_path):
    """What the report and the demo show as charged to a partition: reserved and
    spent charges count, refunded ones do not, in ε, or in ρ (a pure ε = 1 charge
    costs ρ = 0.5) under a zCDP policy; the policy names its unit and limit."""
    ledger = Ledger(tmp_path / "l.sqlite")
    policy = BudgetPolicy(epsilon=10.0)
    ledger.reserve("d", "2026-11-01", "r", "a", PURE, policy)
    spent = ledger.reserve("d", "2026-11-01", "s", "a", Budget.pure(0.25), policy)
    ledger.settle(spent, "spent")
    gone = ledger.reserve("d", "2026-11-02", "r", "b", PURE, policy)
    ledger.settle(gone, "refunded")
    ledger.reserve("other", "2026-11-01", "r", "c", PURE, policy)  # another dataset
    assert ledger.spent("d", policy) == {"2026-11-01": pytest.approx(1.25)}
    zcdp = BudgetPolicy(rho=2.0)
    assert ledger.spent("d", zcdp) == {"2026-11-01": pytest.approx(0.5 + 0.25**2 / 2)}
    assert (policy.symbol, policy.total, zcdp.symbol, zcdp.total) == ("ε", 10.0, "ρ", 2.0)


def test_zcdp_policy_charges_pure_releases_rho_epsilon_squared_over_two(tmp_path):
    policy = BudgetPolicy(rho=1.0)
    assert PURE.cost("rho") == 0.5
    assert Budget.zcdp(0.3).cost("rho") == 0.3
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.reserve("d", "2026-11-01", "r", "a", PURE, policy)
    ledger.reserve("d", "2026-11-01", "r", "b", PURE, policy)
    with pytest.raises(BudgetExceededError, match="rho"):
        ledger.reserve("d", "2026-11-02", "r", "c", Budget.pure(0.1), policy)
    delta_policy = BudgetPolicy(epsilon=10, delta=1e-6)
    with pytest.raises(BudgetExceededError, match="delta"):
        ledger.reserve("e", "2026-11-01", "r", "d", Budget.pure(1.0, 2e-6), delta_policy)


def _spend(args):  # a separate process
    path, partition = args
    policy = BudgetPolicy(epsilon=5.0, window=30)
    try:
        Ledger(path).reserve("d", partition, "r", f"run-{partition}", PURE, policy)
        return 1
    except BudgetExceededError:
        return 0


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL server on loopback, started (and stopped) by the test."""
    pytest.importorskip("psycopg", reason="psycopg (the dev extra) is not installed")
    with postgres_server() as (host, port):
        yield f"postgresql+psycopg://postgres@{host}:{port}/postgres"


def _race(target) -> list:  # noqa: ANN001
    jobs = [(target, f"2026-11-{d:02d}") for d in range(1, 13)]
    with mp.get_context("spawn").Pool(6) as pool:
        won = pool.map(_spend, jobs)
    assert sum(won) == 5
    return Ledger(target).history("d")


@pytest.mark.slow
def test_concurrent_processes_never_overspend(tmp_path):
    """12 processes race for a budget of 5 (1 each, different partitions): exactly 5 win."""
    path = tmp_path / "l.sqlite"
    Ledger(path)
    charges = _race(path)
    assert len(charges) == 5 and sum(c.budget.epsilon for c in charges) == 5.0


@pytest.mark.slow
def test_shared_postgresql_ledger_refuses_and_serializes(postgres_url):
    """The same rules and the same race on a PostgreSQL ledger (a SQLAlchemy URL)."""
    charges = _race(postgres_url)
    assert len(charges) == 5
    ledger = Ledger(postgres_url)
    with pytest.raises(BudgetExceededError, match="only 0 of 5 remains"):
        ledger.reserve("d", "2026-11-20", "r", "late", PURE, BudgetPolicy(epsilon=5.0))
    ledger.settle(charges[0].id, "spent")
    assert ledger.released("d", charges[0].partition, "r").run_id == charges[0].run_id
