"""The privacy-budget ledger: every DP release's charge, persistent and transactional.

SQLite (stdlib ``sqlite3``) at ``<warehouse>/_dp/ledger.sqlite`` by default, or the
``sqlite:///path`` URL in ``dp_budget.ledger``. A charge is *reserved* inside one
``BEGIN IMMEDIATE`` transaction that first sums the charges the policy counts and
refuses if the new one would exceed the total: SQLite's write lock serializes
concurrent runs (of any partition, in any process), so two runs can never both
spend the last of a budget. A reservation becomes *spent* when the release is
published, or *refunded* when the run fails before any noise was drawn. Spent
and reserved charges count; refunded ones do not.

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
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from pipelines.errors import BudgetExceededError, SpecError
from pipelines.spec.models import BudgetPolicy

_SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL,
    partition TEXT NOT NULL,
    release TEXT NOT NULL,
    run_id TEXT NOT NULL,
    measure TEXT NOT NULL,
    epsilon REAL NOT NULL,
    rho REAL NOT NULL,
    delta REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('reserved', 'spent', 'refunded')),
    created_at TEXT NOT NULL,
    settled_at TEXT,
    note TEXT
);
CREATE INDEX IF NOT EXISTS charges_by_dataset ON charges (dataset, partition);
"""


def ledger_path(policy: BudgetPolicy, warehouse: Path) -> Path:
    """Where the ledger lives: the policy's sqlite URL, or under the warehouse."""
    if policy.ledger is None:
        return Path(warehouse) / "_dp" / "ledger.sqlite"
    if not policy.ledger.startswith("sqlite:///"):
        raise SpecError(
            "dp_budget.ledger: only sqlite:///PATH URLs are supported (no other database "
            "driver is built in yet)"
        )
    return Path(policy.ledger.removeprefix("sqlite:///"))


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


class Ledger:
    """One ledger database; every method opens its own short connection."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    # ------------------------------------------------------------------ policy

    @staticmethod
    def _window_use(
        rows: list[sqlite3.Row], policy: BudgetPolicy, day: dt.date
    ) -> tuple[float, float]:
        """Largest (cost, δ) over the windows containing ``day`` (or the day itself)."""
        per_day: dict[dt.date, list[float]] = {}
        for r in rows:
            d = dt.date.fromisoformat(r["partition"])
            acc = per_day.setdefault(d, [0.0, 0.0])
            acc[0] += cost(policy, dict(r))
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

    def _rows_near(
        self, db: sqlite3.Connection, dataset: str, day: dt.date, window: int
    ) -> list[sqlite3.Row]:
        lo = (day - dt.timedelta(days=window - 1)).isoformat()
        hi = (day + dt.timedelta(days=window - 1)).isoformat()
        return db.execute(
            "SELECT * FROM charges WHERE dataset = ? AND partition BETWEEN ? AND ? "
            "AND status != 'refunded'",
            (dataset, lo, hi),
        ).fetchall()

    def remaining(self, dataset: str, policy: BudgetPolicy, partition: str) -> dict[str, float]:
        """Total, used (worst window containing the partition) and remaining budget."""
        day = dt.date.fromisoformat(partition)
        with closing(self._connect()) as db:
            used, used_delta = self._window_use(
                self._rows_near(db, dataset, day, policy.window), policy, day
            )
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
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._rows_near(db, dataset, day, policy.window)
                probe = {
                    "partition": partition,
                    "delta": charge["delta"],
                    **{k: charge[k] for k in ("measure", "epsilon", "rho")},
                }
                used, used_delta = self._window_use(rows, policy, day)
                after, after_delta = self._window_use([*rows, probe], policy, day)
                if after > total * (1 + 1e-12) or after_delta > policy.delta * (1 + 1e-12):
                    db.execute("ROLLBACK")
                    raise BudgetExceededError(
                        f"release {release} of partition {partition}: needs {unit} {new:.6g} "
                        f"(delta {charge['delta']:.3g}) but only {max(total - used, 0):.6g} of "
                        f"{total:.6g} remains (delta {max(policy.delta - used_delta, 0):.3g} of "
                        f"{policy.delta:.3g}) in the {policy.window}-day window; nothing computed"
                    )
                cur = db.execute(
                    "INSERT INTO charges (dataset, partition, release, run_id, measure, "
                    "epsilon, rho, delta, status, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'reserved', ?)",
                    (dataset, partition, release, run_id, charge["measure"], charge["epsilon"],
                     charge["rho"], charge["delta"], _now()),
                )  # fmt: skip
                db.execute("COMMIT")
                return int(cur.lastrowid)
            except BudgetExceededError:
                raise
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def settle(self, charge_id: int, status: str, note: str | None = None) -> None:
        """Mark a reservation spent (published, or noise drawn) or refunded."""
        if status not in ("spent", "refunded"):
            raise ValueError(status)
        with closing(self._connect()) as db:
            db.execute(
                "UPDATE charges SET status = ?, settled_at = ?, note = ? "
                "WHERE id = ? AND status = 'reserved'",
                (status, _now(), note, charge_id),
            )

    def released(self, dataset: str, partition: str, release: str) -> dict[str, Any] | None:
        """The latest spent charge of this release and partition (its run), if any."""
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT * FROM charges WHERE dataset = ? AND partition = ? AND release = ? "
                "AND status = 'spent' AND note IS NULL ORDER BY id DESC LIMIT 1",
                (dataset, partition, release),
            ).fetchone()
        return dict(row) if row else None

    def history(self, dataset: str) -> list[dict[str, Any]]:
        """Every charge of the dataset, oldest first."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT * FROM charges WHERE dataset = ? ORDER BY id", (dataset,)
            ).fetchall()
        return [dict(r) for r in rows]
