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

import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipelines.errors import BudgetExceededError, SpecError
from pipelines.spec.models import BudgetPolicy

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


def ledger_url(policy: BudgetPolicy, warehouse: Path) -> str:
    """The ledger database: the policy's URL, or SQLite under the warehouse."""
    if policy.ledger is not None:
        return policy.ledger
    path = Path(warehouse) / "_dp" / "ledger.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def cost(policy: BudgetPolicy, charge: dict[str, Any]) -> float:
    """A charge in the policy's unit: ε, or ρ (pure ε costs ε²/2)."""
    if policy.epsilon is not None:
        if charge["measure"] != "pure":
            raise SpecError("dp_budget.epsilon cannot account a zCDP release; use dp_budget.rho")
        return float(charge["epsilon"])
    if charge["measure"] == "pure":
        return float(charge["epsilon"]) ** 2 / 2
    return float(charge["rho"])


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
        rows: list[dict[str, Any]], policy: BudgetPolicy, day: dt.date
    ) -> tuple[float, float]:
        """Largest (cost, δ) over the windows containing ``day`` (or the day itself)."""
        per_day: dict[dt.date, list[float]] = {}
        for r in rows:
            d = dt.date.fromisoformat(r["partition"])
            acc = per_day.setdefault(d, [0.0, 0.0])
            acc[0] += cost(policy, r)
            acc[1] += r["delta"]
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
    ) -> list[dict[str, Any]]:
        lo = (day - dt.timedelta(days=window - 1)).isoformat()
        hi = (day + dt.timedelta(days=window - 1)).isoformat()
        q = sa.select(CHARGES).where(
            CHARGES.c.dataset == dataset,
            CHARGES.c.partition.between(lo, hi),
            CHARGES.c.status != "refunded",
        )
        return [dict(r._mapping) for r in conn.execute(q)]

    def remaining(self, dataset: str, policy: BudgetPolicy, partition: str) -> dict[str, float]:
        """Total, used (worst window containing the partition) and remaining budget."""
        day = dt.date.fromisoformat(partition)
        with self.engine.connect() as conn:
            rows = self._rows_near(conn, dataset, day, policy.window)
        used, used_delta = self._window_use(rows, policy, day)
        total = policy.epsilon if policy.epsilon is not None else policy.rho
        return {
            "unit": "epsilon" if policy.epsilon is not None else "rho",
            "total": total,
            "used": used,
            "remaining": max(total - used, 0.0),
            "delta_total": policy.delta,
            "delta_used": used_delta,
        }

    # ------------------------------------------------------------------ charges

    def reserve(
        self,
        dataset: str,
        partition: str,
        release: str,
        run_id: str,
        charge: dict[str, Any],
        policy: BudgetPolicy,
    ) -> int:
        """Atomically check the policy and record a reserved charge; refuse if over."""
        day = dt.date.fromisoformat(partition)
        new = cost(policy, charge)
        total = policy.epsilon if policy.epsilon is not None else policy.rho
        unit = "epsilon" if policy.epsilon is not None else "rho"
        with self.engine.begin() as conn:
            self._lock(conn)
            rows = self._rows_near(conn, dataset, day, policy.window)
            probe = {
                "partition": partition,
                **{k: charge[k] for k in ("measure", "epsilon", "rho", "delta")},
            }
            used, used_delta = self._window_use(rows, policy, day)
            after, after_delta = self._window_use([*rows, probe], policy, day)
            if after > total * (1 + 1e-12) or after_delta > policy.delta * (1 + 1e-12):
                raise BudgetExceededError(
                    f"release {release} of partition {partition}: needs {unit} {new:.6g} "
                    f"(delta {charge['delta']:.3g}) but only {max(total - used, 0):.6g} of "
                    f"{total:.6g} remains (delta {max(policy.delta - used_delta, 0):.3g} of "
                    f"{policy.delta:.3g}) in the {policy.window}-day window; nothing computed"
                )
            result = conn.execute(
                CHARGES.insert().values(
                    dataset=dataset,
                    partition=partition,
                    release=release,
                    run_id=run_id,
                    measure=charge["measure"],
                    epsilon=charge["epsilon"],
                    rho=charge["rho"],
                    delta=charge["delta"],
                    status="reserved",
                    created_at=_now(),
                )  # fmt: skip
            )
            return int(result.inserted_primary_key[0])

    def settle(self, charge_id: int, status: str, note: str | None = None) -> None:
        """Mark a reservation spent (published, or noise drawn) or refunded."""
        if status not in ("spent", "refunded"):
            raise ValueError(status)
        with self.engine.begin() as conn:
            conn.execute(
                CHARGES.update()
                .where(CHARGES.c.id == charge_id, CHARGES.c.status == "reserved")
                .values(status=status, settled_at=_now(), note=note)
            )

    def released(self, dataset: str, partition: str, release: str) -> dict[str, Any] | None:
        """The latest spent charge of this release and partition (its run), if any."""
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
        return dict(row._mapping) if row else None

    def history(self, dataset: str) -> list[dict[str, Any]]:
        """Every charge of the dataset, oldest first."""
        q = sa.select(CHARGES).where(CHARGES.c.dataset == dataset).order_by(CHARGES.c.id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]
