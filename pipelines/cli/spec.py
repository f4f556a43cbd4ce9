"""Commands on spec files: validate, schema (no Spark, no data, no keys), suggest (Spark)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.common import (
    MasterOption,
    WarehouseOption,
    emit_json,
    err,
    fail,
    out,
    setup_logging,
    spec_app,
)
from pipelines.errors import PipelinesError


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
            err.print(f"[red]error[/] {exc}", highlight=False)
            continue
        out.print(f"[green]ok[/] {f}: pipeline '{spec.name}', {len(spec.columns)} columns")
    if failed:
        raise typer.Exit(3)


@spec_app.command("schema")
def spec_schema() -> None:
    """Print the JSON Schema of the spec format (for editors)."""
    from pipelines.spec import json_schema

    emit_json(json_schema())


@spec_app.command("suggest")
def spec_suggest(
    source: Annotated[
        str, typer.Option(help="Raw table (db.name), or a path (holding a / or with --format).")
    ],
    partition: Annotated[str, typer.Option(help="The partition to profile (YYYY-MM-DD).")],
    partition_column: Annotated[str, typer.Option(help="The partition column.")] = "dt",
    fmt: Annotated[
        str | None, typer.Option("--format", help="parquet or csv: SOURCE is a path.")
    ] = None,
    sample: Annotated[int, typer.Option(min=1, help="Rows the PII engine reads.")] = 2000,
    name: Annotated[str | None, typer.Option(help="Pipeline name (default: the table's).")] = None,
    preset: Annotated[
        str | None,
        typer.Option(help="hipaa-safe-harbor: dates to the year, ages over 89 as 90, 3-digit "
                     "ZIPs (restricted ones as 000), and a review list."),
    ] = None,
    master: MasterOption = None,
    warehouse: WarehouseOption = None,
) -> None:
    """Profile one raw partition and print a draft spec (review it before running it).

    Counts only reach the draft (shares of nulls, distinct values and PII per entity),
    never a value. Example: ``anonymize spec suggest --source raw.customers
    --partition 2026-11-01 > conf/pipelines/customers.yaml``.
    """
    import re

    from pipelines.discover import profile, suggest
    from pipelines.errors import SpecError
    from pipelines.partition import Partition
    from pipelines.session import get_session, session_warehouse
    from pipelines.spec.tables import TableRef
    from pipelines.storage.base import open_table
    from pipelines.storage.text import unpersist_source, without_flags

    setup_logging(False)
    try:
        from pipelines.discover import PRESETS

        if preset is not None and preset not in PRESETS:
            raise SpecError(f"--preset: unknown '{preset}'; one of {', '.join(PRESETS)}")
        if fmt not in (None, "parquet", "csv"):
            raise SpecError(f"--format: '{fmt}' is not parquet or csv")
        if name is not None and not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise SpecError(f"--name: '{name}' is not a pipeline name (lower case, digits, _)")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", partition_column):
            raise SpecError(f"--partition-column: '{partition_column}' is not a plain column name")
        is_path = fmt is not None or "/" in source
        try:
            ref = TableRef(path=source, format=fmt or "parquet") if is_path else None
            ref = ref or TableRef(table=source)
        except ValueError:
            what = "is neither a table (db.name) nor a path (with a / or --format)"
            raise SpecError(f"--source: '{source}' {what}") from None
        part = Partition.parse(partition_column, partition)
        spark = get_session(master=master, warehouse=warehouse)
        table = open_table(ref, partition_column, session_warehouse(spark), spark)
        df = table.read_partition(part)
        try:
            profiles = profile(without_flags(df), sample)
        finally:
            unpersist_source(df)
        stem = re.sub(r"[^a-z0-9_]+", "_", source.rstrip("/").split("/")[-1].split(".")[-1].lower())
        pipeline = name or (stem.strip("_") if re.match(r"[a-z]", stem) else f"p_{stem}".strip("_"))
        source_map = {"path": source, "format": ref.format} if is_path else {"table": source}
        text = suggest(profiles, source_map, partition_column, pipeline, preset)
    except Exception as exc:
        fail(exc, "spec suggest")
    typer.echo(text, nl=False)
