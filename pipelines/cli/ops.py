"""Commands for operating published tables: status, quarantine, Data Docs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.common import (
    MasterOption,
    WarehouseOption,
    app,
    emit_json,
    err,
    fail,
    out,
    quality_app,
    quarantine_app,
    setup_logging,
)
from pipelines.errors import SpecError


def _specs(spec: Path | None) -> list[Path]:
    if spec is not None:
        return [spec]
    found = sorted(Path("conf/pipelines").glob("*.yaml"))
    if not found:
        raise SpecError("no SPEC given and no conf/pipelines/*.yaml here")
    return found


@app.command()
def status(
    spec: Annotated[Path | None, typer.Argument(help="Spec (default: conf/pipelines/*).")] = None,
    master: MasterOption = None,
    warehouse: WarehouseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Per partition: published / quarantined / staged / missing, with run id and time."""
    from rich.table import Table

    from pipelines.ops import status as partition_status

    setup_logging(False)
    report = {}
    try:
        for path in _specs(spec):
            report[str(path)] = partition_status(path, master=master, warehouse=warehouse)
    except Exception as exc:
        fail(exc, "status")
    for path, rows in report.items():
        table = Table(title=str(path))
        for col in ("partition", "state", "run id", "at", "note"):
            table.add_column(col, overflow="fold")  # ids wrap, never cut to "…"
        for r in rows:
            note = ", ".join(r.get("failed", [])) or (
                f"later run {r['later_quarantine']} quarantined" if "later_quarantine" in r
                else (r.get("status") or ""))  # fmt: skip
            if r.get("staged") and r["state"] != "staged":
                staged = f"staged, unpublished: {', '.join(r['staged'])}"
                note = f"{note}; {staged}" if note else staged
            if r.get("running"):
                running = f"run {r['running']} holds it now"
                note = f"{note}; {running}" if note else running
            versions = [f"commit {r['table_version']}"] if r.get("table_version") else []
            if r.get("source_version"):
                versions.append(f"source read at {r['source_version']}")
            if versions:
                note = "; ".join([note, ", ".join(versions)] if note else [", ".join(versions)])
            table.add_row(r["partition"], r["state"], r["run_id"] or "", r["at"] or "", note)
        out.print(table)
    if as_json:
        emit_json(report)


@quarantine_app.command("list")
def quarantine_list_cmd(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    master: MasterOption = None,
    warehouse: WarehouseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Quarantined runs: partition, run id, failed stage and checks (counts only)."""
    from rich.table import Table

    from pipelines.ops import quarantine_list

    setup_logging(False)
    try:
        entries = quarantine_list(spec, master=master, warehouse=warehouse)
    except Exception as exc:
        fail(exc, "quarantine list")
    table = Table(title=f"quarantine: {spec}")
    for col in ("partition", "run id", "stage", "failed checks", "data", "released"):
        table.add_column(col)
    for e in entries:
        table.add_row(e["partition"], e["run_id"], e["failed_stage"] or "",
                      ", ".join(e["failed_checks"]), "yes" if e["has_data"] else "no",
                      "yes" if e["released"] else "")  # fmt: skip
    out.print(table)
    if as_json:
        emit_json({"quarantine": entries})


@quarantine_app.command("release")
def quarantine_release_cmd(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    partition: Annotated[str, typer.Option(help="Partition value.")],
    run_id: Annotated[str, typer.Option("--run-id", help="The quarantined run.")],
    reason: Annotated[str, typer.Option(help="Why the failed gate is overridden (recorded).")],
    master: MasterOption = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Publish a quarantined run's data despite its failed gate (recorded in the manifest)."""
    from pipelines.ops import quarantine_release

    setup_logging(False)
    try:
        where = quarantine_release(spec, partition, run_id, reason, master=master,
                                   warehouse=warehouse)  # fmt: skip
    except Exception as exc:
        fail(exc, "quarantine release")
    err.print(f"released {partition} (run {run_id}) despite its gate: {where}", highlight=False)


@quarantine_app.command("drop")
def quarantine_drop_cmd(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    partition: Annotated[str, typer.Option(help="Partition value.")],
    run_id: Annotated[str, typer.Option("--run-id", help="The quarantined run.")],
    master: MasterOption = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Delete a quarantined run's data and gate result."""
    from pipelines.ops import quarantine_drop

    setup_logging(False)
    try:
        where = quarantine_drop(spec, partition, run_id, master=master, warehouse=warehouse)
    except Exception as exc:
        fail(exc, "quarantine drop")
    err.print(f"dropped {where}", highlight=False)


@quality_app.command("docs")
def quality_docs(
    spec: Annotated[
        Path | None, typer.Argument(help="A spec whose path sink keeps its own Data Docs.")
    ] = None,
    warehouse: WarehouseOption = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
) -> None:
    """Print the path of the Data Docs site (built when partitions are published).

    The site is under the warehouse; a spec with a path sink run without a warehouse
    given keeps it beside the sink (pass the spec to find it).
    """
    from pipelines.quality.docs import index_path
    from pipelines.run_context import docs_root
    from pipelines.session import warehouse_given, warehouse_root
    from pipelines.spec import load_spec

    root = warehouse_root(warehouse)
    if spec is not None:
        try:
            root = docs_root(load_spec(spec), root, warehouse_given(warehouse))
        except Exception as exc:
            fail(exc, "quality docs")
    index = index_path(root)
    if not index.is_file():
        hint = "" if spec else " (a path sink run without a warehouse keeps its own: pass the spec)"
        err.print(f"no Data Docs yet under {index.parent}: publish a partition first{hint}")
        raise typer.Exit(4)
    out.print(str(index), highlight=False)
    if open_browser:
        import webbrowser

        webbrowser.open(index.as_uri())


@app.command()
def report(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    partition: Annotated[
        str | None, typer.Option(help="One partition's page (default: every partition).")
    ] = None,
    warehouse: WarehouseOption = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the page's path as JSON.")] = False,
) -> None:
    """Write the privacy/utility report pages (HTML, beside the Data Docs) and print one.

    Built from the manifests, the DP ledger and the released tables only; no raw data
    is read and no Spark session is started. Prints the table page, or the
    partition's page with --partition.
    """
    from pipelines.report import build
    from pipelines.run_context import docs_root
    from pipelines.session import warehouse_given, warehouse_root
    from pipelines.spec import load_spec

    setup_logging(False)
    try:
        spec_obj = load_spec(spec)
        wh = warehouse_root(warehouse)
        page = build(spec_obj, wh, docs_root(spec_obj, wh, warehouse_given(warehouse)), partition)
    except Exception as exc:
        fail(exc, "report")
    out.print(str(page), highlight=False)
    if open_browser:
        import webbrowser

        webbrowser.open(page.as_uri())
    if as_json:
        emit_json({"report": str(page), "table_page": str(page.parent / "index.html")})


@app.command()
def restore(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    partition: Annotated[str, typer.Option(help="Partition value.")],
    to: Annotated[str, typer.Option("--to", help="The run whose retained version to publish.")],
    master: MasterOption = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Publish a retained earlier version of a partition again (recorded like a publish)."""
    from pipelines.ops import restore as restore_version

    setup_logging(False)
    try:
        where = restore_version(spec, partition, to, master=master, warehouse=warehouse)
    except Exception as exc:
        fail(exc, "restore")
    err.print(f"restored {partition} to the version of run {to}: {where}", highlight=False)


@app.command("gc")
def gc_cmd(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    older_than: Annotated[
        str, typer.Option("--older-than", help="Age threshold: 30m, 12h, 7d (0s: all).")
    ] = "7d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List, remove nothing.")] = False,
    master: MasterOption = None,
    warehouse: WarehouseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the paths as JSON.")] = False,
) -> None:
    """Remove abandoned staging, old retained versions and old run records.

    Never a live run's files (a partition whose lease is held is skipped), never
    published data, manifests or quarantined runs.
    """
    from pipelines.ops import gc

    setup_logging(False)
    try:
        removed = gc(spec, older_than, dry_run=dry_run, master=master, warehouse=warehouse)
    except Exception as exc:
        fail(exc, "gc")
    verb = "would remove" if dry_run else "removed"
    for path in removed:
        err.print(f"{verb} {path}", highlight=False)
    err.print(f"{verb} {len(removed)} path(s)", highlight=False)
    if as_json:
        emit_json({"dry_run": dry_run, "removed": removed})
