"""Commands of the DP releases and their budget ledger: release, budget show/history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.cli.common import (
    LogLevelOption,
    MasterOption,
    WarehouseOption,
    app,
    budget_app,
    emit_json,
    err,
    fail,
    out,
    setup_logging,
    spark_conf,
)
from pipelines.errors import SpecError


@app.command()
def release(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML) with releases.")],
    partition: Annotated[str, typer.Option(help="Partition value, e.g. 2026-11-25.")],
    names: Annotated[
        list[str] | None, typer.Option("--release", help="Only this release (repeatable).")
    ] = None,
    re_release: Annotated[
        bool, typer.Option("--re-release", help="Draw fresh noise for a released partition.")
    ] = False,
    master: MasterOption = None,
    warehouse: WarehouseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summaries as JSON.")] = False,
    log_level: LogLevelOption = None,
) -> None:
    """Publish the spec's DP aggregate releases for one partition (exit 6 if over budget).

    An already released partition is not recomputed or charged (its stored release
    is republished if the published copy is missing); --re-release draws fresh
    noise and is charged.
    """
    setup_logging(False, log_level)
    from pipelines.dp.run import release_partition

    try:
        with err.status(f"{spec.name} {partition}: DP releases"):
            results = release_partition(
                spec, partition, names=names, re_release=re_release, master=master,
                warehouse=warehouse, conf=spark_conf([], log_level),
            )  # fmt: skip
    except Exception as exc:
        fail(exc, "release")
    for r in results:
        c = r.charged
        cost = "nothing" if c is None else (
            f"rho {c.rho:.4g}" if c.measure == "zcdp" else f"epsilon {c.epsilon:.4g}"
        ) + (f", delta {c.delta:.2g}" if c.delta else "")  # fmt: skip
        err.print(f"{r.release}: {r.status} ({r.manifest.released_groups} groups), charged "
                  f"{cost}: {r.published}", highlight=False)  # fmt: skip
    if as_json:
        emit_json({"releases": [r.to_json() for r in results]})


def _ledger(spec: Path, warehouse: str | None) -> tuple[Any, Any]:
    from pipelines.dp.ledger import Ledger, ledger_url
    from pipelines.session import warehouse_root
    from pipelines.spec import load_spec

    spec_obj = load_spec(spec)
    if spec_obj.dp_budget is None:
        raise SpecError("dp_budget: the spec declares no DP budget")
    return spec_obj, Ledger(ledger_url(spec_obj.dp_budget, warehouse_root(warehouse)))


@budget_app.command("show")
def budget_show(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML) with dp_budget.")],
    partition: Annotated[
        str | None, typer.Option(help="Partition whose windows to check (default: today).")
    ] = None,
    warehouse: WarehouseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Total, used and remaining budget for a partition under the spec's policy."""
    import datetime as dt

    try:
        spec_obj, ledger = _ledger(spec, warehouse)
        day = partition or dt.date.today().isoformat()
        state = ledger.remaining(spec_obj.name, spec_obj.dp_budget, day)
    except Exception as exc:
        fail(exc, "budget show")
    p = spec_obj.dp_budget
    out.print(
        f"{spec_obj.name} at {day}: {state.unit} used {state.used:.6g} of "
        f"{state.total:.6g}, remaining {state.remaining:.6g}; delta used "
        f"{state.delta_used:.3g} of {state.delta_total:.3g} "
        f"(window {p.window} days, unit {p.unit})",
        highlight=False,
    )
    if as_json:
        emit_json({"dataset": spec_obj.name, "partition": day, **state.to_json()})


@budget_app.command("history")
def budget_history(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML) with dp_budget.")],
    warehouse: WarehouseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Every charge in the ledger for the spec's dataset."""
    from rich.table import Table

    try:
        spec_obj, ledger = _ledger(spec, warehouse)
        rows = [c.to_json() for c in ledger.history(spec_obj.name)]
    except Exception as exc:
        fail(exc, "budget history")
    table = Table(title=f"budget ledger: {spec_obj.name}")
    cols = ("id", "partition", "release", "run_id", "measure", "epsilon", "rho", "delta",
            "status", "created_at", "note")  # fmt: skip
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*[("" if r[c] is None else str(r[c])) for c in cols])
    out.print(table)
    if as_json:
        emit_json({"dataset": spec_obj.name, "charges": rows})
