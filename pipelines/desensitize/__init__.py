"""Column desensitization compiled to native Spark SQL expressions (no Python UDFs).

One module per family; :data:`COMPILERS` maps each spec ``kind`` (and generalize
``method``) to a function ``(column, action, source type, context) -> Column``.
:func:`desensitize` checks the source schema against the spec (fail closed), then
builds a single ``select``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql.types import DataType

from pipelines.desensitize import basic, generalize, mask, pseudonymize, shift, surrogate
from pipelines.desensitize.base import Context
from pipelines.desensitize.keyed import KeyRing
from pipelines.errors import InternalError, SpecError
from pipelines.keys import Key
from pipelines.spec.models import PipelineSpec

Compiler = Callable[[str, Any, DataType, Context], Column]

COMPILERS: dict[str, Compiler] = {
    "keep": basic.keep,
    "redact": basic.redact,
    "mask": mask.mask,
    "hash": pseudonymize.pseudonym,
    "surrogate": surrogate.surrogate,
    "generalize/bucket": generalize.bucket,
    "generalize/date": generalize.truncate_date,
    "generalize/age": generalize.age,
    "generalize/prefix": generalize.prefix,
    "date_shift": shift.date_shift,
    "noise": shift.noise,
}


def action_name(action: Any) -> str:
    """Registry name of an action: its kind, plus the method for generalize."""
    return f"{action.kind}/{action.method}" if action.kind == "generalize" else action.kind


def check_schema(spec: PipelineSpec, source_columns: list[str], where: str) -> list[str]:
    """Fail closed: every declared column must exist and every source column be declared.

    Returns the undeclared columns that ``undeclared: drop`` removes; raises
    :class:`SpecError` listing every problem otherwise. Runs on the schema only,
    before any data is read.
    """
    present = [c for c in source_columns if c != spec.partition_column]
    missing = [c for c in spec.columns if c not in present]
    undeclared = [c for c in present if c not in spec.columns]
    problems = []
    if missing:
        problems.append(f"columns: declared but not in source {where}: {', '.join(missing)}")
    if undeclared and spec.undeclared == "fail":
        problems.append(
            f"source {where} has columns the spec does not mention: {', '.join(undeclared)}; "
            "declare each under 'columns' (kind: keep/drop/...) or set 'undeclared: drop'"
        )
    if problems:
        raise SpecError("\n".join(problems))
    return undeclared


def desensitize(
    df: DataFrame, spec: PipelineSpec, keys: dict[str, Key], partition_date: dt.date
) -> DataFrame:
    """Apply every column action in one projection; output keeps source column order.

    The partition column is not part of the output (it is the partition itself);
    dropped and (with ``undeclared: drop``) undeclared columns are removed.
    """
    check_schema(spec, df.columns, "")
    ring = KeyRing(keys)
    ctx = Context(ring=ring, privacy_unit=spec.privacy_unit, partition_date=partition_date)
    dtypes = {f.name: f.dataType for f in df.schema.fields}
    exprs = []
    for name in df.columns:
        action = spec.columns.get(name)
        if action is None or action.kind == "drop":
            continue
        compiler = COMPILERS.get(action_name(action))
        if compiler is None:
            raise InternalError(f"no compiler for action {action_name(action)}")
        exprs.append(compiler(name, action, dtypes[name], ctx).alias(action.rename or name))
    if not exprs:
        raise SpecError("columns: every column is dropped; the output would have no columns")
    return ring.attach(df).select(*exprs)


def output_columns(spec: PipelineSpec, source_columns: list[str]) -> list[str]:
    """Names of the published columns, in order (the output contract's column list)."""
    return [
        spec.columns[c].rename or c
        for c in source_columns
        if c != spec.partition_column and c in spec.columns and spec.columns[c].kind != "drop"
    ]
