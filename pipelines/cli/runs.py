"""Commands that run the pipeline: run, rerun, validate, kanon, demo, build-zip."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.cli.common import (
    JsonOption,
    LogLevelOption,
    MasterOption,
    WarehouseOption,
    app,
    emit_json,
    err,
    fail,
    out,
    setup_logging,
    spark_conf,
)


@app.command()
def run(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    partition: Annotated[str, typer.Option(help="Source partition value, e.g. 2026-11-25.")],
    master: MasterOption = None,
    conf: Annotated[list[str] | None, typer.Option(help="Spark property key=value.")] = None,
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also show the product's INFO lines.")
    ] = False,
    log_level: LogLevelOption = None,
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
    source_version: Annotated[
        str | None,
        typer.Option(
            help="Read an Iceberg/Delta source as of this snapshot id or table version "
            "(a manifest's source_version: the same input again)."
        ),
    ] = None,
) -> None:
    """Anonymize one source partition and publish it atomically."""
    setup_logging(verbose, log_level)
    properties = spark_conf(conf or [], log_level)  # usage errors exit 2, before any work
    from pipelines.runner import run_partition

    try:
        with err.status(f"{spec.name} {partition}") as status:
            result = run_partition(
                spec,
                partition,
                master=master,
                conf=properties,
                warehouse=warehouse,
                progress=lambda msg: status.update(f"{spec.name} {partition}: {msg}"),
                step=step,
                run_key=run_key,
                source_version=source_version,
            )
    except Exception as exc:  # one line, never a stack of cell values
        fail(exc, "run")
    err.print(
        f"{result.status} {result.pipeline} {result.partition}: {result.output_rows} rows "
        f"-> {result.published} (run {result.run_id})"
    )
    if as_json:
        emit_json(result.summary())


@app.command()
def rerun(
    spec: Annotated[Path, typer.Argument(help="Pipeline spec (YAML).")],
    partition: Annotated[str, typer.Option(help="Partition value, e.g. 2026-11-25.")],
    master: MasterOption = None,
    warehouse: WarehouseOption = None,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
    latest_source: Annotated[
        bool,
        typer.Option(
            "--latest-source",
            help="Read an Iceberg/Delta source as it is now, not at the version the "
            "published run read.",
        ),
    ] = False,
) -> None:
    """Run a partition again and republish it atomically.

    The previous version stays retained (see the README's storage section). An
    Iceberg or Delta source is read at the snapshot the published run read (its
    manifest's source_version), so the rerun sees the same input, unless
    ``--latest-source``. DP releases are not part of it (``anonymize release``;
    never charged twice).
    """
    from pipelines.ops import status as partition_status

    setup_logging(False, log_level)
    try:
        before = {r["partition"]: r for r in partition_status(spec, master=master,
                                                              warehouse=warehouse)}  # fmt: skip
    except Exception as exc:
        fail(exc, "rerun")
    prev = before.get(partition, {})
    pinned = None if latest_source else prev.get("source_version")
    at = f", source read at {pinned}" if pinned else ""
    err.print(f"{partition}: was {prev.get('state', 'missing')} "
              f"(run {prev.get('run_id') or '-'}{at})", highlight=False)  # fmt: skip
    run(spec, partition, master=master, conf=None, warehouse=warehouse, as_json=as_json,
        verbose=False, log_level=log_level, source_version=pinned)  # fmt: skip


def _print_gate(gate: Any) -> None:
    from rich.table import Table

    table = Table(title=f"{gate.stage} gate", title_justify="left")
    for col in ("check", "severity", "result", "observed"):
        table.add_column(col)
    for c in gate.checks:
        mark = "[green]pass[/]" if c.success else "[red]FAIL[/]"
        observed = ", ".join(f"{k}={v}" for k, v in c.observed.items())
        table.add_row(c.id, c.severity, mark, observed)
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
    master: MasterOption = None,
    warehouse: WarehouseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the gate result as JSON.")] = False,
    log_level: LogLevelOption = None,
) -> None:
    """Run a quality gate on demand (exit 5 if an error-severity check fails)."""
    if stage not in ("input", "output"):
        raise typer.BadParameter("expected 'input' or 'output'", param_hint="--stage")
    setup_logging(False, log_level)
    from pipelines.checks import validate_partition

    try:
        with err.status(f"{spec.name} {partition}: {stage} gate"):
            gate = validate_partition(spec, partition, stage, master=master, warehouse=warehouse,
                                      conf=spark_conf([], log_level))  # fmt: skip
    except Exception as exc:
        fail(exc, "validate")
    _print_gate(gate)
    verdict = "[green]passed[/]" if gate.passed else "[red]failed[/]"
    err.print(f"{stage} gate {verdict} for {partition}", highlight=False)
    if as_json:
        emit_json(gate.to_json())
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
    master: MasterOption = None,
    warehouse: WarehouseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    log_level: LogLevelOption = None,
) -> None:
    """k-anonymize one partition alone and report its guarantees and metrics.

    Desensitizes, k-anonymizes (with the spec's window) and verifies, then prints
    classes, suppression, l, t, information loss and re-identification risk.
    Publishes nothing and runs no quality gate: for tuning a spec before `run`.
    """
    setup_logging(False, log_level)
    from pipelines.checks import kanon_partition

    try:
        with err.status(f"{spec.name} {partition}: k-anonymizing"):
            summary = kanon_partition(
                spec, partition, out=out_dir, master=master, warehouse=warehouse,
                conf=spark_conf([], log_level),
            )  # fmt: skip
    except Exception as exc:
        fail(exc, "kanon")
    _print_kanon(summary)
    if as_json:
        emit_json(summary)


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

        ("discernibility (normalized)",
         "n/a" if s["dm_normalized"] is None else f"{s['dm_normalized']:.5f}"),
        ("prosecutor risk (highest / average)", f"{risk['highest']:.3f} / {risk['average']:.3f}"),
        ("window partitions", ", ".join(s["window_partitions"]) or "none"),
        ("untruthful cells", str(s["untruthful_cells"])),
    ]
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)


@app.command()
def demo(
    rows: Annotated[int, typer.Option(min=0, help="Rows in the raw table.")] = 20_000,
    days: Annotated[int, typer.Option(min=1, max=366, help="Daily partitions.")] = 3,
    out_dir: Annotated[Path, typer.Option("--out", help="Demo warehouse directory.")] = Path(
        "demo-warehouse"
    ),
    as_json: JsonOption = False,
) -> None:
    """Generate a synthetic raw warehouse with PII and run the whole pipeline on it.

    Per day: desensitize (free text scrubbed), k-anonymize, both gates, publish, and
    the DP release charged to the ledger; then the report pages (path printed last).
    """
    setup_logging(False)
    from pipelines.demo import run_demo

    try:
        summary = run_demo(rows=rows, days=days, out=out_dir, console=err)
    except Exception as exc:
        fail(exc, "demo")
    if as_json:
        emit_json(summary)


@app.command("build-zip")
def build_zip_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("dist"),
    formats: Annotated[
        list[str] | None,
        typer.Option("--format", help="Also ship this table format's jars (iceberg, delta; "
                     "repeatable) into <out>/jars/."),
    ] = None,
) -> None:
    """Build the package zip for spark-submit --py-files and print its path.

    With --format, the format's pinned jars are copied beside it and a second line
    gives the spark-submit options that ship them (--jars, --conf).
    """
    from pipelines.errors import PipelinesError
    from pipelines.packaging import build_zip, ship_jars

    try:
        conf = ship_jars(out_dir, formats) if formats else {}
        zipped = build_zip(out_dir)
    except PipelinesError as exc:
        fail(exc, "build-zip")
    out.print(str(zipped))
    if conf:
        options = [f"--jars {conf.pop('spark.jars')}"]
        options += [f"--conf {k}={v}" for k, v in conf.items()]
        out.print(" ".join(options))
