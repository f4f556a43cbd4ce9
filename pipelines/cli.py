"""The ``anonymize`` command.

Exit codes: 0 success; 1 run failed; 2 usage error; 3 bad spec or key;
4 missing input; 5 quality gate failed; 6 privacy budget exceeded.
Logs go to stderr and carry run id, partition and counts, never cell values or
keys; with ``--json`` the last line on stdout is one JSON object.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pipelines.errors import PipelinesError, SpecError

# Tracebacks never show local variables: they may hold cell values or key bytes.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help=__doc__,
    pretty_exceptions_show_locals=False,
)
spec_app = typer.Typer(no_args_is_help=True, help="Validate specs and print their JSON Schema.")
app.add_typer(spec_app, name="spec")
quality_app = typer.Typer(no_args_is_help=True, help="Data-quality reports.")
app.add_typer(quality_app, name="quality")
budget_app = typer.Typer(no_args_is_help=True, help="The DP privacy-budget ledger.")
app.add_typer(budget_app, name="budget")
quarantine_app = typer.Typer(no_args_is_help=True, help="Partitions that failed a gate.")
app.add_typer(quarantine_app, name="quarantine")

err = Console(stderr=True, soft_wrap=True)  # never break an error line
out = Console(soft_wrap=True)


WarehouseOption = Annotated[
    str | None,
    typer.Option(help="Warehouse root (default $ANONYMIZE_WAREHOUSE or ./warehouse)."),
]


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=False)],
        force=True,
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)


def _parse_conf(pairs: list[str]) -> dict[str, str]:
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected key=value, got '{pair}'", param_hint="--conf")
        conf[key.strip()] = value
    return conf


def _fail(exc: BaseException, what: str = "run") -> None:
    """Print one error line and exit with the error's code.

    Our own errors carry messages written to name columns and partitions only. Any
    other exception (Spark, IO) is reported by class and Spark error condition alone:
    Spark messages can quote cell values (e.g. CAST_INVALID_INPUT names the value).
    """
    if isinstance(exc, PipelinesError | AssertionError):
        message = str(exc)
    else:
        condition = getattr(exc, "getCondition", lambda: None)()
        message = f"{what} failed: {type(exc).__name__}" + (f" [{condition}]" if condition else "")
    err.print(f"[bold red]error[/] ({type(exc).__name__}): {message}", highlight=False)
    raise typer.Exit(getattr(exc, "exit_code", 1))


def _emit_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


@app.command()
def run(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    partition: Annotated[str, typer.Option(help="Source partition value, e.g. 2026-11-25.")],
    master: Annotated[str | None, typer.Option(help="Spark master URL (default local[*]).")] = None,
    conf: Annotated[list[str] | None, typer.Option(help="Spark property key=value.")] = None,
    warehouse: WarehouseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary last.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = True,
    step: Annotated[
        str,
        typer.Option(
            help="all, or one step for an orchestrator: desensitize (stage), validate "
            "(output gate), publish. Steps need --run-key."
        ),
    ] = "all",
    run_key: Annotated[
        str | None,
        typer.Option(help="Ties the steps of one orchestrated run together (Airflow's run id)."),
    ] = None,
) -> None:
    """Anonymize one source partition and publish it atomically."""
    _setup_logging(verbose)
    spark_conf = _parse_conf(conf or [])  # usage errors exit 2, before any work
    from pipelines.runner import run_partition

    try:
        with err.status(f"{spec.name} {partition}") as status:
            result = run_partition(
                spec,
                partition,
                master=master,
                conf=spark_conf,
                warehouse=warehouse,
                progress=lambda msg: status.update(f"{spec.name} {partition}: {msg}"),
                step=step,
                run_key=run_key,
            )
    except Exception as exc:  # one line, never a stack of cell values
        _fail(exc, "run")
    err.print(
        f"{result.status} {result.pipeline} {result.partition}: {result.output_rows} rows "
        f"-> {result.published} (run {result.run_id})"
    )
    if as_json:
        _emit_json(result.summary())


def _print_gate(gate: Any) -> None:
    from rich.table import Table

    table = Table(title=f"{gate.stage} gate", title_justify="left")
    for col in ("check", "severity", "result", "observed"):
        table.add_column(col)
    for c in gate.checks:
        mark = "[green]pass[/]" if c["success"] else "[red]FAIL[/]"
        observed = ", ".join(f"{k}={v}" for k, v in c["observed"].items())
        table.add_row(c["id"], c["severity"], mark, observed)
    err.print(table)
    for note in gate.notes:
        err.print(f"note: {note}", highlight=False)
    if gate.allowed_pii:
        allowed = "; ".join(f"{c}: {', '.join(k)}" for c, k in gate.allowed_pii.items())
        err.print(f"PII allowed by the spec: {allowed}", highlight=False)


@app.command()
def validate(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    partition: Annotated[str, typer.Option(help="Partition value, e.g. 2026-11-25.")],
    stage: Annotated[
        str, typer.Option(help="input: the raw partition; output: the published one.")
    ] = "output",
    master: Annotated[str | None, typer.Option(help="Spark master URL (default local[*]).")] = None,
    warehouse: WarehouseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the gate result as JSON.")] = False,
) -> None:
    """Run a quality gate on demand (exit 5 if an error-severity check fails)."""
    if stage not in ("input", "output"):
        raise typer.BadParameter("expected 'input' or 'output'", param_hint="--stage")
    _setup_logging(False)
    from pipelines.runner import validate_partition

    try:
        with err.status(f"{spec.name} {partition}: {stage} gate"):
            gate = validate_partition(spec, partition, stage, master=master, warehouse=warehouse)
    except Exception as exc:
        _fail(exc, "validate")
    _print_gate(gate)
    verdict = "[green]passed[/]" if gate.passed else "[red]failed[/]"
    err.print(f"{stage} gate {verdict} for {partition}", highlight=False)
    if as_json:
        _emit_json(gate.to_dict())
    if not gate.passed:
        raise typer.Exit(5)


@app.command()
def kanon(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML) with a k_anonymity block.")],
    partition: Annotated[str, typer.Option(help="Partition value, e.g. 2026-11-25.")],
    out_dir: Annotated[
        str | None,
        typer.Option("--out", help="Write the released rows here (Parquet, a new directory)."),
    ] = None,
    master: Annotated[str | None, typer.Option(help="Spark master URL (default local[*]).")] = None,
    warehouse: WarehouseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """k-anonymize one partition alone and report its guarantees and metrics.

    Desensitizes, k-anonymizes (with the spec's window) and verifies, then prints
    classes, suppression, l, t, information loss and re-identification risk.
    Publishes nothing and runs no quality gate: for tuning a spec before `run`.
    """
    _setup_logging(False)
    from pipelines.runner import kanon_partition

    try:
        with err.status(f"{spec.name} {partition}: k-anonymizing"):
            summary = kanon_partition(
                spec, partition, out=out_dir, master=master, warehouse=warehouse
            )
    except Exception as exc:
        _fail(exc, "kanon")
    _print_kanon(summary)
    if as_json:
        _emit_json(summary)


def _print_kanon(s: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="k-anonymity", show_header=False)
    risk = s["prosecutor_risk"]
    rows = [
        ("quasi-identifiers", ", ".join(s["quasi_identifiers"])),
        ("k (asked / smallest class)", f"{s['k']} / {s['smallest_class']}"),
        ("classes (mean size)", f"{s['classes']} ({s['mean_class_size']:.1f})"),
        ("suppressed records", str(s["suppressed"])),
        ("l (distinct / entropy)", f"{s['fewest_sensitive_values']} / {s['entropy_l']}"),
        ("largest t", str(s["largest_t"])),
        ("GCP", "n/a" if s["gcp"] is None else f"{s['gcp']:.4f}"),
        ("NCP", ", ".join(f"{q} {v:.3f}" for q, v in s["ncp"].items())),
        ("discernibility (normalized)", f"{s['dm_normalized']:.5f}"),
        ("prosecutor risk (highest / average)", f"{risk['highest']:.3f} / {risk['average']:.3f}"),
        ("window partitions", ", ".join(s["window_partitions"]) or "none"),
        ("untruthful cells", str(s["untruthful_cells"])),
    ]
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)


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
    master: Annotated[str | None, typer.Option(help="Spark master URL (default local[*]).")] = None,
    warehouse: WarehouseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summaries as JSON.")] = False,
) -> None:
    """Publish the spec's DP aggregate releases for one partition (exit 6 if over budget).

    An already released partition is not recomputed or charged (its stored release
    is republished if the published copy is missing); --re-release draws fresh
    noise and is charged.
    """
    _setup_logging(False)
    from pipelines.dp.run import release_partition

    try:
        with err.status(f"{spec.name} {partition}: DP releases"):
            results = release_partition(
                spec, partition, names=names, re_release=re_release, master=master,
                warehouse=warehouse,
            )  # fmt: skip
    except Exception as exc:
        _fail(exc, "release")
    for r in results:
        charged = r["charged"]
        cost = "nothing" if charged is None else (
            f"rho {charged['rho']:.4g}" if charged["measure"] == "zcdp"
            else f"epsilon {charged['epsilon']:.4g}"
        ) + (f", delta {charged['delta']:.2g}" if charged and charged["delta"] else "")  # fmt: skip
        groups = r["manifest"].get("released_groups")
        err.print(f"{r['release']}: {r['status']} ({groups} groups), charged {cost}: "
                  f"{r['published']}", highlight=False)  # fmt: skip
    if as_json:
        _emit_json({"releases": [{k: v for k, v in r.items() if k != "manifest"} | {
            "error_report": r["manifest"].get("error_report")} for r in results]})  # fmt: skip


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
        _fail(exc, "budget show")
    p = spec_obj.dp_budget
    out.print(
        f"{spec_obj.name} at {day}: {state['unit']} used {state['used']:.6g} of "
        f"{state['total']:.6g}, remaining {state['remaining']:.6g}; delta used "
        f"{state['delta_used']:.3g} of {state['delta_total']:.3g} "
        f"(window {p.window} days, unit {p.unit})",
        highlight=False,
    )
    if as_json:
        _emit_json({"dataset": spec_obj.name, "partition": day, **state})


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
        rows = ledger.history(spec_obj.name)
    except Exception as exc:
        _fail(exc, "budget history")
    table = Table(title=f"budget ledger: {spec_obj.name}")
    cols = ("id", "partition", "release", "run_id", "measure", "epsilon", "rho", "delta",
            "status", "created_at", "note")  # fmt: skip
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*[("" if r[c] is None else str(r[c])) for c in cols])
    out.print(table)
    if as_json:
        _emit_json({"dataset": spec_obj.name, "charges": rows})


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
    master: Annotated[str | None, typer.Option(help="Spark master URL (default local[*]).")] = None,
    warehouse: WarehouseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Per partition: published / quarantined / staged / missing, with run id and time."""
    from rich.table import Table

    from pipelines.ops import status as partition_status

    _setup_logging(False)
    report = {}
    try:
        for path in _specs(spec):
            report[str(path)] = partition_status(path, master=master, warehouse=warehouse)
    except Exception as exc:
        _fail(exc, "status")
    for path, rows in report.items():
        table = Table(title=str(path))
        for col in ("partition", "state", "run id", "at", "note"):
            table.add_column(col)
        for r in rows:
            note = ", ".join(r.get("failed", [])) or (
                f"later run {r['later_quarantine']} quarantined" if "later_quarantine" in r
                else (r.get("status") or ""))  # fmt: skip
            if r.get("staged") and r["state"] != "staged":
                staged = f"staged, unpublished: {', '.join(r['staged'])}"
                note = f"{note}; {staged}" if note else staged
            table.add_row(r["partition"], r["state"], r["run_id"] or "", r["at"] or "", note)
        out.print(table)
    if as_json:
        _emit_json(report)


@app.command()
def rerun(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    partition: Annotated[str, typer.Option(help="Partition value, e.g. 2026-11-25.")],
    master: Annotated[str | None, typer.Option(help="Spark master URL (default local[*]).")] = None,
    warehouse: WarehouseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary last.")] = False,
) -> None:
    """Run a partition again and republish it atomically.

    The previous version stays in the sink's _trash/ until the next publish. DP
    releases are not part of it (``anonymize release``; never charged twice).
    """
    from pipelines.ops import status as partition_status

    _setup_logging(True)
    try:
        before = {r["partition"]: r for r in partition_status(spec, master=master,
                                                              warehouse=warehouse)}  # fmt: skip
    except Exception as exc:
        _fail(exc, "rerun")
    prev = before.get(partition, {})
    err.print(f"{partition}: was {prev.get('state', 'missing')} "
              f"(run {prev.get('run_id') or '-'})", highlight=False)  # fmt: skip
    run(spec, partition, master=master, conf=None, warehouse=warehouse, as_json=as_json,
        verbose=True)  # fmt: skip


@quarantine_app.command("list")
def quarantine_list_cmd(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    master: Annotated[str | None, typer.Option(help="Spark master URL (default local[*]).")] = None,
    warehouse: WarehouseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Quarantined runs: partition, run id, failed stage and checks (counts only)."""
    from rich.table import Table

    from pipelines.ops import quarantine_list

    _setup_logging(False)
    try:
        entries = quarantine_list(spec, master=master, warehouse=warehouse)
    except Exception as exc:
        _fail(exc, "quarantine list")
    table = Table(title=f"quarantine: {spec}")
    for col in ("partition", "run id", "stage", "failed checks", "data", "released"):
        table.add_column(col)
    for e in entries:
        table.add_row(e["partition"], e["run_id"], e["failed_stage"] or "",
                      ", ".join(e["failed_checks"]), "yes" if e["has_data"] else "no",
                      "yes" if e["released"] else "")  # fmt: skip
    out.print(table)
    if as_json:
        _emit_json({"quarantine": entries})


@quarantine_app.command("release")
def quarantine_release_cmd(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    partition: Annotated[str, typer.Option(help="Partition value.")],
    run_id: Annotated[str, typer.Option("--run-id", help="The quarantined run.")],
    reason: Annotated[str, typer.Option(help="Why the failed gate is overridden (recorded).")],
    master: Annotated[str | None, typer.Option(help="Spark master URL (default local[*]).")] = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Publish a quarantined run's data despite its failed gate (recorded in the manifest)."""
    from pipelines.ops import quarantine_release

    _setup_logging(False)
    try:
        where = quarantine_release(spec, partition, run_id, reason, master=master,
                                   warehouse=warehouse)  # fmt: skip
    except Exception as exc:
        _fail(exc, "quarantine release")
    err.print(f"released {partition} (run {run_id}) despite its gate: {where}", highlight=False)


@quarantine_app.command("drop")
def quarantine_drop_cmd(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    partition: Annotated[str, typer.Option(help="Partition value.")],
    run_id: Annotated[str, typer.Option("--run-id", help="The quarantined run.")],
    master: Annotated[str | None, typer.Option(help="Spark master URL (default local[*]).")] = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Delete a quarantined run's data and gate result."""
    from pipelines.ops import quarantine_drop

    _setup_logging(False)
    try:
        where = quarantine_drop(spec, partition, run_id, master=master, warehouse=warehouse)
    except Exception as exc:
        _fail(exc, "quarantine drop")
    err.print(f"dropped {where}", highlight=False)


@quality_app.command("docs")
def quality_docs(
    warehouse: WarehouseOption = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open it in a browser.")] = False,
) -> None:
    """Print the path of the Data Docs site (built when partitions are published)."""
    from pipelines.quality.docs import index_path
    from pipelines.session import warehouse_root

    index = index_path(warehouse_root(warehouse))
    if not index.is_file():
        err.print(f"no Data Docs yet under {index.parent}: publish a partition first")
        raise typer.Exit(4)
    out.print(str(index), highlight=False)
    if open_browser:
        import webbrowser

        webbrowser.open(index.as_uri())


@app.command()
def demo(
    rows: Annotated[int, typer.Option(min=0, help="Rows in the raw table.")] = 20_000,
    days: Annotated[int, typer.Option(min=1, max=366, help="Daily partitions.")] = 3,
    out_dir: Annotated[Path, typer.Option("--out", help="Demo warehouse directory.")] = Path(
        "demo-warehouse"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary last.")] = False,
) -> None:
    """Generate a synthetic raw warehouse with PII and anonymize every partition."""
    _setup_logging(False)
    from pipelines.demo import run_demo

    try:
        summary = run_demo(rows=rows, days=days, out=out_dir, console=err)
    except Exception as exc:
        _fail(exc, "demo")
    if as_json:
        _emit_json(summary)


@app.command("build-zip")
def build_zip_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("dist"),
) -> None:
    """Build the package zip for spark-submit --py-files and print its path."""
    from pipelines.packaging import build_zip

    out.print(str(build_zip(out_dir)))


@spec_app.command("validate")
def spec_validate(
    files: Annotated[list[Path], typer.Argument(help="Spec files to validate.")],
) -> None:
    """Validate spec files (no Spark, no data, no keys needed)."""
    from pipelines.spec import load_spec

    failed = False
    for f in files:
        try:
            spec = load_spec(f)
        except PipelinesError as exc:
            failed = True
            err.print(f"[red]invalid[/] {exc}", highlight=False)
            continue
        out.print(f"[green]ok[/] {f}: pipeline '{spec.name}', {len(spec.columns)} columns")
    if failed:
        raise typer.Exit(3)


@spec_app.command("schema")
def spec_schema() -> None:
    """Print the JSON Schema of the spec format (for editors)."""
    from pipelines.spec import json_schema

    _emit_json(json_schema())


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    try:
        app(args=argv, prog_name="anonymize", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
