"""Commands on spec files: validate, schema (no Spark, no data, no keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.common import emit_json, err, out, spec_app
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
