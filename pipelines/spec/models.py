"""The pipeline spec: one dataset's anonymization pipeline, typed and frozen.

Imports only the standard library, pydantic and the action registry (which imports
no Spark), so the Airflow DAG processor can parse specs without Spark (a test
guards that).

A spec declares, for one dataset: where the raw table is, where the anonymized
table is published, the partition and privacy-unit columns, the secrets by
reference, and one action per source column, chosen by a discriminated ``kind``
(the actions live in :mod:`pipelines.desensitize.actions`).

Example:
    >>> spec = PipelineSpec.model_validate({
    ...     "version": 1, "name": "events",
    ...     "source": {"table": "raw.events"}, "sink": {"table": "anon.events"},
    ...     "partition_column": "dt", "privacy_unit": "user_id",
    ...     "keys": {"main": {"env": "EVENTS_KEY"}},
    ...     "columns": {"user_id": {"kind": "hash"}, "note": {"kind": "drop"}},
    ... })
    >>> spec.columns["user_id"].encoding
    'hex'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field

from pipelines.desensitize.registry import KEYED_KINDS, ColumnAction
from pipelines.spec.base import IDENT, Frozen, plain_key
from pipelines.spec.dp import BudgetPolicy, Release, release_problems
from pipelines.spec.kanon import KAnonymity, kanon_problems
from pipelines.spec.quality import QualitySpec
from pipelines.spec.schedule import Schedule
from pipelines.spec.tables import TABLE_FORMATS, KeyRef, TableRef


class PipelineSpec(Frozen):
    """One dataset's anonymization pipeline."""

    version: Literal[1] = Field(description="Spec format version.")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Pipeline id (DAG anon__<name>).")
    description: str = ""
    source: TableRef
    sink: TableRef
    partition_column: str = Field(pattern=IDENT)
    privacy_unit: str = Field(pattern=IDENT)
    keys: dict[str, KeyRef] = Field(default_factory=dict)
    undeclared: Literal["fail", "drop"] = Field(
        "fail", description="A source column not in 'columns': fail the run, or drop it."
    )
    columns: dict[str, ColumnAction]
    quality: QualitySpec = Field(default_factory=QualitySpec)
    k_anonymity: KAnonymity | None = None
    releases: dict[str, Release] = Field(default_factory=dict)
    dp_budget: BudgetPolicy | None = None
    schedule: Schedule = Field(default_factory=Schedule)

    def keyed_columns(self) -> dict[str, str]:
        """Every column whose action uses a secret.

        Returns:
            Source column -> key name.
        """
        return {c: a.key for c, a in self.columns.items()
                if a.kind in KEYED_KINDS and a.uses_key()}  # fmt: skip

    def table_formats(self) -> list[str]:
        """The table formats (Iceberg, Delta Lake) its source and sinks use.

        Returns:
            Sorted format names; empty when only parquet and csv tables are used.
        """
        refs = [self.source, self.sink, *(r.sink for r in self.releases.values())]
        return sorted({r.format for r in refs} & set(TABLE_FORMATS))

    def quarantine_root(self, warehouse: Path, release: str | None = None) -> Path | None:
        """The directory quarantined runs of this pipeline go to, if ``quality.quarantine_dir``.

        Args:
            warehouse: The warehouse root (relative directories resolve against it).
            release: A DP release's name, for its sink; None for the pipeline's sink.

        Returns:
            ``<quarantine_dir>/<name>[/<release>]``, or None for the table's own
            ``_quarantine``.
        """
        if self.quality.quarantine_dir is None:
            return None
        root = Path(warehouse) / self.quality.quarantine_dir / self.name
        return root / release if release else root

    def source_names(self) -> dict[str, str]:
        """Columns whose source name differs from their key (``source_name:``).

        Returns:
            Key -> the source column's actual name.
        """
        return {c: a.source_name for c, a in self.columns.items() if a.source_name}

    def declared_types(self) -> dict[str, str]:
        """The ``type:`` of every column that declares one (a text source's read schema).

        Returns:
            Source column -> Spark type name.
        """
        return {c: a.type for c, a in self.columns.items() if a.type}


def reference_problems(spec: PipelineSpec) -> list[tuple[str, str]]:
    """Cross-field checks that name the spec path.

    Args:
        spec: A spec whose fields validated one by one.

    Returns:
        ``[(spec path, message), ...]``, empty for a consistent spec.
    """
    problems = _column_problems(spec)
    published, clashes = _published_names(spec)
    problems += clashes
    for column in spec.quality.allow_pii:
        if column not in published:
            problems.append(
                (f"quality.allow_pii.{column}", f"'{column}' is not a published output column")
            )
    if spec.k_anonymity is not None:
        problems += kanon_problems(spec.k_anonymity, published)
    problems += release_problems(spec.releases, spec.dp_budget, set(spec.columns))
    return problems + _table_problems(spec)


def _column_problems(spec: PipelineSpec) -> list[tuple[str, str]]:
    """Column keys and source names, the partition column, the privacy unit, keys."""
    problems: list[tuple[str, str]] = []
    if spec.partition_column in spec.columns:
        problems.append((
            f"columns.{spec.partition_column}",
            "the partition column is carried through implicitly; remove it from 'columns'",
        ))  # fmt: skip
    if spec.privacy_unit not in spec.columns:
        problems.append((
            "privacy_unit", f"'{spec.privacy_unit}' must be declared in 'columns' (e.g. kind: hash)"
        ))  # fmt: skip
    for column, key in spec.keyed_columns().items():
        if key not in spec.keys:
            declared = ", ".join(sorted(spec.keys)) or "none"
            problems.append(
                (f"columns.{column}.key", f"unknown key '{key}'; declared keys: {declared}")
            )
    for column in spec.columns:
        if not re.match(IDENT, column):
            plain = plain_key(column)
            problems.append((
                f"columns.{column}",
                "column keys must be plain identifiers (letters, digits, _); keep the source "
                f"name in source_name, e.g. {plain}: {{source_name: {column!r}, kind: ...}}",
            ))  # fmt: skip
    for column, action in spec.columns.items():
        for i, known in enumerate(getattr(action, "known_values", None) or ()):
            if known not in spec.columns or known == column:
                problems.append((
                    f"columns.{column}.known_values.{i}",
                    f"'{known}' is not another column of this spec (known values are the row's "
                    "values of other declared columns)",
                ))  # fmt: skip
    taken: dict[str, str] = {}
    for column, source in spec.source_names().items():
        if source in spec.columns and source != column:
            problems.append((f"columns.{column}.source_name",
                             f"'{source}' is also a key under 'columns'"))  # fmt: skip
        if source in taken:
            problems.append((f"columns.{column}.source_name",
                             f"'{source}' is also the source of '{taken[source]}'"))  # fmt: skip
        taken[source] = column
    return problems


def _published_names(spec: PipelineSpec) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Published name -> source column, and the problems of names that clash.

    A published name may clash with another column's or with the partition column.
    """
    published: dict[str, str] = {}
    problems = []
    for column, action in spec.columns.items():
        out = action.published_as(column)
        if out is None:
            continue
        if out in published or out == spec.partition_column:
            clash = published.get(out, spec.partition_column)
            problems.append(
                (f"columns.{column}.rename", f"output column '{out}' clashes with '{clash}'")
            )
        published[out] = column
    return published, problems


def _table_problems(spec: PipelineSpec) -> list[tuple[str, str]]:
    """The sink is not the source."""
    problems = []
    if spec.source.table and spec.sink.table and spec.source.table == spec.sink.table:
        problems.append(("sink.table", "the sink must differ from the source"))
    if spec.source.path and spec.sink.path and spec.source.path == spec.sink.path:
        problems.append(("sink.path", "the sink must differ from the source"))
    return problems
