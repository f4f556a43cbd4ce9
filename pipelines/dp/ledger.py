"""The privacy-budget ledger: every DP release's charge, persistent and transactional.

SQLite at ``<warehouse>/_dp/ledger.sqlite`` by default, or any SQLAlchemy URL in
``dp_budget.ledger`` for a database shared by several machines (PostgreSQL is
supported and tested; its driver, ``psycopg``, is not a default dependency). A
charge is *reserved* inside one transaction that first takes a write lock
(SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``LOCK TABLE … IN SHARE ROW EXCLUSIVE
MODE``), then sums the charges the policy counts and refuses if the new one would
exceed the total: concurrent runs (of any partition, in any process or machine)
are serialized, so two runs can never both spend the last of a budget. A
reservation becomes *spent* when the release is published (or once noise may
have been drawn), or *refunded* when the run fails before any noise was drawn.
Spent and reserved charges count; refunded ones do not.

Policy (``dp_budget``): with ``unit: person`` every window of ``window``
consecutive partition days must keep Σ cost ≤ the total (sequential composition
of everything a person could appear in), and Σ δ ≤ ``delta``; the check covers
every window that contains the new partition, so back-fills are safe. With
``unit: person_partition`` partitions compose in parallel: only the partition's
own charges count. Cost is ε (``dp_budget.epsilon``) or ρ (``dp_budget.rho``; a
pure ε charge costs ε²/2).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from pipelines.dp.accounting import Budget
from pipelines.errors import BudgetExceededError, InternalError, SpecError
from pipelines.partition import parse_day
from pipelines.spec.dp import BudgetPolicy
from pipelines.storage import layout

_META = sa.MetaData()
CHARGES = sa.Table(
    "dp_charges",
    _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(200), nullable=False),
    sa.Column("partition", sa.String(10), nullable=False),
    sa.Column("release", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("measure", sa.String(8), nullable=False),
    sa.Column("epsilon", sa.Float, nullable=False),
    sa.Column("rho", sa.Float, nullable=False),
    sa.Column("delta", sa.Float, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("settled_at", sa.String(32)),
    sa.Column("note", sa.String(500)),
    sa.CheckConstraint("status IN ('reserved', 'spent', 'refunded')", name="dp_charge_status"),
    sa.Index("dp_charges_by_dataset", "dataset", "partition"),
)


@dataclass(frozen=True)
class Charge:
    """One row of the ledger.

    Attributes:
        id: The row id.
        dataset: The spec's name.
        partition: The partition value.
        release: The release's name.
        run_id: The run that reserved it.
        budget: What was charged.
        status: ``reserved``, ``spent`` or ``refunded``.
        created_at: When reserved (UTC, ISO 8601).
        settled_at: When spent or refunded.
        note: Why a charge is spent without a stored release, if so.
    """

    id: int
    dataset: str
    partition: str
    release: str
    run_id: str
    budget: Budget
    status: str
    created_at: str
    settled_at: str | None
    note: str | None

    @classmethod
    def from_row(cls, row: Any) -> Charge:
        """Read a database row.

        Args:
            row: A ``dp_charges`` row.

        Returns:
            The charge.
        """
        m = dict(row._mapping)
        budget = Budget.from_json(m)
        names = [f.name for f in dataclasses.fields(cls) if f.name != "budget"]
        return cls(budget=budget, **{k: m[k] for k in names})

    def to_json(self) -> dict[str, Any]:
        """The ``budget history --json`` form: the row's columns.

        Returns:
            A JSON-ready dict.
        """
        out = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "budget"
        }
        return {**out, **self.budget.to_json()}


@dataclass(frozen=True)
class BudgetState:
    """A dataset's budget as of one partition: the worst window containing it.

    Attributes:
        unit: ``epsilon`` or ``rho``.
        total: The policy's total.
        used: Spent and reserved cost in the fullest window containing the partition.
        remaining: ``max(total - used, 0)``.
        delta_total: The policy's δ.
        delta_used: Summed δ in the fullest window.
    """

    unit: str
    total: float
    used: float
    remaining: float
    delta_total: float
    delta_used: float

    def to_json(self) -> dict[str, Any]:
        """The ``budget show --json`` form.

        Returns:
            A JSON-ready dict.
        """
        return dataclasses.asdict(self)


def policy_unit(policy: BudgetPolicy) -> Literal["epsilon", "rho"]:
    """The unit a policy counts in.

    Args:
        policy: The spec's ``dp_budget``.

    Returns:
        ``epsilon`` or ``rho``.
    """
    return "epsilon" if policy.epsilon is not None else "rho"


def ledger_url(policy: BudgetPolicy, warehouse: Path) -> str:
    """The ledger database: the policy's URL, or SQLite under the warehouse.

    Args:
        policy: The spec's ``dp_budget``.
        warehouse: The warehouse root.

    Returns:
        A SQLAlchemy URL.
    """
    if policy.ledger is not None:
        return policy.ledger
    path = Path(warehouse) / layout.DP / layout.LEDGER
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _engine(url: str) -> sa.Engine:
    try:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise SpecError(f"dp_budget.ledger: cannot use {url.split('://')[0]}:// ({exc})") from None
    if engine.dialect.name == "sqlite":
        # pysqlite's own transaction handling would BEGIN DEFERRED; take the write
        # lock at BEGIN so the read-check-insert of a reservation is serialized.
        @sa.event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_conn, _record) -> None:  # noqa: ANN001
            dbapi_conn.isolation_level = None
            dbapi_conn.execute("PRAGMA busy_timeout = 120000")

        @sa.event.listens_for(engine, "begin")
        def _immediate(conn) -> None:  # noqa: ANN001
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    elif engine.dialect.name != "postgresql":
        raise SpecError(
            f"dp_budget.ledger: {engine.dialect.name} is not supported (sqlite or postgresql)"
        )
    return engine


class Ledger:
    """One ledger database (SQLAlchemy URL or a SQLite file path)."""

    def __init__(self, url: str | Path):
        """Open (and create on first use) the ledger's tables.

        Args:
            url: A SQLAlchemy URL (``sqlite://`` or ``postgresql://``), or a plain path for a
                SQLite file (its parent directory is created).
        """
        url = str(url)
        if "://" not in url:  # a plain path: SQLite
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{url}"
        self.url = url
        self.engine = _engine(url)
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":  # first use may be concurrent
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7243110)")
            _META.create_all(conn, checkfirst=True)

    def _lock(self, conn: sa.Connection) -> None:
        if self.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE dp_charges IN SHARE ROW EXCLUSIVE MODE")

    # ------------------------------------------------------------------ policy

    @staticmethod
    def _window_use(
        rows: list[tuple[str, Budget]], policy: BudgetPolicy, day: dt.date
    ) -> tuple[float, float]:
        """Largest (cost, δ) over the windows containing ``day`` (or the day itself)."""
        per_day: dict[dt.date, list[float]] = {}
        unit = policy_unit(policy)
        for partition, budget in rows:
            acc = per_day.setdefault(dt.date.fromisoformat(partition), [0.0, 0.0])
            acc[0] += budget.cost(unit)
            acc[1] += budget.delta
        if policy.unit == "person_partition":
            return tuple(per_day.get(day, [0.0, 0.0]))  # type: ignore[return-value]
        worst = (0.0, 0.0)
        for start in range(policy.window):
            first = day - dt.timedelta(days=policy.window - 1 - start)
            last = first + dt.timedelta(days=policy.window - 1)
            used = [v for d, v in per_day.items() if first <= d <= last]
            c, dl = sum(v[0] for v in used), sum(v[1] for v in used)
            worst = (max(worst[0], c), max(worst[1], dl))
        return worst

    @staticmethod
    def _rows_near(
        conn: sa.Connection, dataset: str, day: dt.date, window: int
    ) -> list[tuple[str, Budget]]:
        lo = (day - dt.timedelta(days=window - 1)).isoformat()
        hi = (day + dt.timedelta(days=window - 1)).isoformat()
        q = sa.select(CHARGES).where(
            CHARGES.c.dataset == dataset,
            CHARGES.c.partition.between(lo, hi),
            CHARGES.c.status != "refunded",
        )
        return [(r.partition, Budget.from_json(r._mapping)) for r in conn.execute(q)]

    def remaining(self, dataset: str, policy: BudgetPolicy, partition: str) -> BudgetState:
        """Total, used (worst window containing the partition) and remaining budget.

        Args:
            dataset: The spec's name.
            policy: Its ``dp_budget``.
            partition: The partition value.

        Returns:
            The budget state.
        """
        day = parse_day(partition, "partition")
        with self.engine.connect() as conn:
            rows = self._rows_near(conn, dataset, day, policy.window)
        used, used_delta = self._window_use(rows, policy, day)
        total = policy.total
        return BudgetState(policy_unit(policy), total, used, max(total - used, 0.0),
                           policy.delta, used_delta)  # fmt: skip

    # ------------------------------------------------------------------ charges

    def reserve(
        self,
        dataset: str,
        partition: str,
        release: str,
        run_id: str,
        charge: Budget,
        policy: BudgetPolicy,
    ) -> int:
        """Atomically check the policy and record a reserved charge.

        A zCDP charge under an ε policy raises SpecError (from :meth:`Budget.cost`), and a
        malformed ``partition`` raises SpecError (from ``parse_day``), before anything is read.

        Args:
            dataset: The spec's name.
            partition: The partition value.
            release: The release's name.
            run_id: The reserving run.
            charge: The release's whole budget.
            policy: The spec's ``dp_budget``.

        Returns:
            The charge's id (to settle it).

        Raises:
            BudgetExceededError: The charge would exceed the policy in some window
                containing the partition (the message says what remains).
        """
        day = parse_day(partition, "partition")
        unit = policy_unit(policy)
        new = charge.cost(unit)
        total = policy.total
        with self.engine.begin() as conn:
            self._lock(conn)
            rows = self._rows_near(conn, dataset, day, policy.window)
            used, used_delta = self._window_use(rows, policy, day)
            after, after_delta = self._window_use([*rows, (partition, charge)], policy, day)
            if after > total * (1 + 1e-12) or after_delta > policy.delta * (1 + 1e-12):
                raise BudgetExceededError(
                    f"release {release} of partition {partition}: needs {unit} {new:.6g} "
                    f"(delta {charge.delta:.3g}) but only {max(total - used, 0):.6g} of "
                    f"{total:.6g} remains (delta {max(policy.delta - used_delta, 0):.3g} of "
                    f"{policy.delta:.3g}) in the {policy.window}-day window; nothing computed"
                )
            result = conn.execute(
                CHARGES.insert().values(
                    dataset=dataset,
                    partition=partition,
                    release=release,
                    run_id=run_id,
                    **charge.to_json(),
                    status="reserved",
                    created_at=_now(),
                )  # fmt: skip
            )
            return int(result.inserted_primary_key[0])

    def settle(self, charge_id: int, status: str, note: str | None = None) -> None:
        """Mark a reservation spent (published, or noise drawn) or refunded.

        Args:
            charge_id: What :meth:`reserve` returned.
            status: ``spent`` or ``refunded``.
            note: Why a spent charge has no stored release, if so.

        Raises:
            InternalError: An unknown status.
        """
        if status not in ("spent", "refunded"):
            raise InternalError(f"unknown ledger status {status!r}")
        with self.engine.begin() as conn:
            conn.execute(
                CHARGES.update()
                .where(CHARGES.c.id == charge_id, CHARGES.c.status == "reserved")
                .values(status=status, settled_at=_now(), note=note)
            )

    def released(self, dataset: str, partition: str, release: str) -> Charge | None:
        """The latest spent charge of this release and partition (its run).

        Args:
            dataset: The spec's name.
            partition: The partition value.
            release: The release's name.

        Returns:
            The charge, or None when the partition was never released.
        """
        q = (
            sa.select(CHARGES)
            .where(
                CHARGES.c.dataset == dataset,
                CHARGES.c.partition == partition,
                CHARGES.c.release == release,
                CHARGES.c.status == "spent",
                CHARGES.c.note.is_(None),
            )
            .order_by(CHARGES.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return Charge.from_row(row) if row else None

    def spent(self, dataset: str, policy: BudgetPolicy) -> dict[str, float]:
        """The budget charged to each partition: its spent and reserved charges.

        Args:
            dataset: The spec's name.
            policy: Its ``dp_budget`` (gives the unit: ε, or ρ under zCDP).

        Returns:
            Cost in the policy's unit per partition value (partitions never charged,
            or only refunded, are absent).
        """
        unit = policy_unit(policy)
        out: dict[str, float] = {}
        for c in self.history(dataset):
            if c.status != "refunded":
                out[c.partition] = out.get(c.partition, 0.0) + c.budget.cost(unit)
        return out

    def history(self, dataset: str) -> list[Charge]:
        """Every charge of the dataset, oldest first.

        Args:
            dataset: The spec's name.

        Returns:
            The charges.
        """
        q = sa.select(CHARGES).where(CHARGES.c.dataset == dataset).order_by(CHARGES.c.id)
        with self.engine.connect() as conn:
            return [Charge.from_row(r) for r in conn.execute(q)]
