"""Manifests: the record published with every partition, versioned.

This module is the only place a manifest's JSON shape is written or read (the
storage backends call :meth:`Manifest.to_json` and :func:`read_manifest`). No Spark
import.

Shapes (``Manifest.to_json()`` of a published partition)::

    {"manifest_version": 1, "run_id": "20261125T101500Z-1a2b3c4d", "pipeline": "demo",
     "partition": {"column": "dt", "value": "2026-11-25"}, "spec_hash": "<64 hex>",
     "code_version": "0.1.0+g<sha>", "key_fingerprints": {"main": "<16 hex>"},
     "source": "raw.events", "sink": "anon.events", "input_rows": 50, "output_rows": 50,
     "suppressed_rows": 0, "columns": {"email": {"kind": "surrogate", ...}},
     "output_schema": {"email": "string"}, "k_anonymity": null | {...},
     "quality": {"input": GateResult, "output": GateResult, "warnings": ["input.volume"],
                 "data_docs": "<path>" | null},
     "spark": {"version": "4.1.3", "master": "local[2]"}, "timings": {"total": 3.2, ...},
     "published_at": "2026-11-25T10:15:09+00:00", "status": "published"}

Manifests written before versioning have no ``manifest_version``; they read as
version 0 with the same fields. A partition released from quarantine has
``status: released_from_quarantine`` and an ``override`` block; a DP release's
manifest is a :class:`ReleaseManifest`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.records import GateResult, RunIdentity

#: Optional fields a manifest leaves out while they are None.
_OMITTED_WHEN_NONE = frozenset(
    {"override", "restored_from", "republished_from", "table_version", "source_version"}
)

#: The version :meth:`Manifest.to_json` and :meth:`ReleaseManifest.to_json` write.
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Quality:
    """The gate results a manifest records.

    Attributes:
        input: The input gate's result (absent on an override of a failed output).
        output: The output gate's result.
        warnings: Ids of warning-severity checks that failed, over both gates.
        data_docs: The Data Docs index page, if built.
        overridden: Whether a person published the partition despite these results.
    """

    input: GateResult | None
    output: GateResult | None
    warnings: list[str] = field(default_factory=list)
    data_docs: str | None = None
    overridden: bool = False

    def to_json(self) -> dict[str, Any]:
        """The JSON form.

        Returns:
            A JSON-ready dict.
        """
        out: dict[str, Any] = {
            "input": self.input.to_json() if self.input else None,
            "output": self.output.to_json() if self.output else None,
            "warnings": list(self.warnings),
            "data_docs": self.data_docs,
        }
        if self.overridden:
            out["overridden"] = True
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Quality:
        """Read the JSON form (and the unversioned override shape).

        Args:
            data: What :meth:`to_json` wrote.

        Returns:
            The quality record.
        """
        if "overridden" in data and isinstance(data["overridden"], dict):  # version 0
            gates = data["overridden"]
            data = {"input": gates.get("input"), "output": gates.get("output"), "overridden": True}
        gate = {
            k: GateResult.from_json(data[k]) if data.get(k) else None for k in ("input", "output")
        }
        return cls(
            input=gate["input"],
            output=gate["output"],
            warnings=list(data.get("warnings", [])),
            data_docs=data.get("data_docs"),
            overridden=bool(data.get("overridden", False)),
        )


@dataclass(frozen=True)
class Manifest:
    """The record published with one partition of an anonymized table.

    Attributes:
        identity: The run that produced the published data.
        status: ``published``, ``released_from_quarantine`` or ``restored``.
        published_at: UTC time of the publish (ISO 8601, seconds).
        input_rows: Rows read from the source partition.
        output_rows: Rows published.
        suppressed_rows: Rows suppressed by k-anonymity.
        output_schema: Published column -> Spark type name.
        key_fingerprints: Key name -> fingerprint (never the key).
        source: The source table as displayed.
        sink: The sink table as displayed.
        columns: Source column -> its action, as validated (defaults included).
        k_anonymity: The k-anonymity stage's summary, if any.
        action_counts: Published column -> counted operator flag -> rows (e.g.
            ``{"signup_date": {"out_of_range": 0, "sentinel": 3}}``).
        quality: The gate results.
        spark: Spark version and master.
        timings: Phase -> seconds.
        override: Who published a quarantined run despite its gate, when and why.
        restored_from: The run whose version a restore put back.
        table_version: The table format's commit that published it (an Iceberg
            snapshot id, a Delta table version); None for path and catalog tables.
        source_version: The source table format's snapshot or version it was read at
            (a re-run of the run reads the same); None for other sources.
        version: The format version it was read in (0: written before versioning);
            :meth:`to_json` always writes the current shape and version.
    """

    identity: RunIdentity
    status: str
    published_at: str
    input_rows: int
    output_rows: int
    suppressed_rows: int
    output_schema: dict[str, str]
    key_fingerprints: dict[str, str] = field(default_factory=dict)
    source: str | None = None
    sink: str | None = None
    columns: dict[str, Any] = field(default_factory=dict)
    k_anonymity: dict[str, Any] | None = None
    action_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    quality: Quality | None = None
    spark: dict[str, str] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    override: dict[str, Any] | None = None
    restored_from: str | None = None
    table_version: str | None = None
    source_version: str | None = None
    version: int = MANIFEST_VERSION

    @property
    def run_id(self) -> str:
        """The run that produced the published data."""
        return self.identity.run_id

    def to_json(self) -> dict[str, Any]:
        """The JSON form (see the module docstring).

        Returns:
            A JSON-ready dict.
        """
        out: dict[str, Any] = {"manifest_version": MANIFEST_VERSION, **self.identity.to_json()}
        for f in dataclasses.fields(self):
            if f.name in ("identity", "version"):
                continue
            value = getattr(self, f.name)
            if f.name in _OMITTED_WHEN_NONE and value is None:
                continue
            out[f.name] = value.to_json() if isinstance(value, Quality) else value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Manifest:
        """Read a manifest of any version.

        Args:
            data: A parsed ``_manifest.json``.

        Returns:
            The manifest.
        """
        names = {f.name for f in dataclasses.fields(cls)} - {"identity", "quality", "version"}
        quality = data.get("quality")
        return cls(
            identity=RunIdentity.from_json(data),
            quality=Quality.from_json(quality) if quality else None,
            version=int(data.get("manifest_version", 0)),
            **{k: data[k] for k in names if k in data},
        )


@dataclass(frozen=True)
class ReleaseManifest:
    """The record published with one partition of a DP release table.

    Attributes:
        identity: The run that drew the noise.
        release: The release's name in the spec.
        status: ``published``.
        published_at: UTC time of the (re)publish.
        sink: The release table as displayed.
        group_by: The group key columns.
        keys: ``private`` (selected groups) or ``public`` (declared keys).
        released_groups: Rows (groups) published.
        noise: False only for tests of the non-noise logic.
        charge: The ledger charge: measure, epsilon, rho, delta and ledger id.
        error_report: Per metric: mechanism, noise scale and 95 % half-width.
        quality: ``{"release": GateResult}``.
        output_schema: Column -> Spark type name.
        key_fingerprints: Key name -> fingerprint of the key the contribution
            bounding's hash seed derives from (never the key).
        republished_from: The run whose stored release a republish copied.
        table_version: The table format's commit that published it (see
            :class:`Manifest`).
        version: The manifest format version.
    """

    identity: RunIdentity
    release: str
    status: str
    published_at: str
    sink: str
    group_by: list[str]
    keys: str
    released_groups: int
    noise: bool
    charge: dict[str, Any]
    error_report: dict[str, Any]
    quality: dict[str, GateResult]
    output_schema: dict[str, str]
    key_fingerprints: dict[str, str] = field(default_factory=dict)
    republished_from: str | None = None
    table_version: str | None = None
    version: int = MANIFEST_VERSION

    @property
    def run_id(self) -> str:
        """The run that drew the released noise (a republish keeps its own id)."""
        return self.identity.run_id

    def to_json(self) -> dict[str, Any]:
        """The JSON form.

        Returns:
            A JSON-ready dict.
        """
        out: dict[str, Any] = {"manifest_version": MANIFEST_VERSION, **self.identity.to_json()}
        for f in dataclasses.fields(self):
            if f.name in ("identity", "version"):
                continue
            value = getattr(self, f.name)
            if f.name in _OMITTED_WHEN_NONE and value is None:
                continue
            out[f.name] = (
                {k: g.to_json() for k, g in value.items()} if f.name == "quality" else value
            )
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReleaseManifest:
        """Read a release manifest of any version.

        Args:
            data: A parsed release manifest.

        Returns:
            The manifest.
        """
        names = {f.name for f in dataclasses.fields(cls)} - {"identity", "quality", "version"}
        return cls(
            identity=RunIdentity.from_json(data),
            quality={k: GateResult.from_json(g) for k, g in data["quality"].items()},
            version=int(data.get("manifest_version", 0)),
            **{k: data[k] for k in names if k in data},
        )


def manifest_from_json(data: Mapping[str, Any]) -> Manifest | ReleaseManifest:
    """Read a partition's manifest, whichever table it belongs to.

    Args:
        data: A parsed ``_manifest.json``.

    Returns:
        A :class:`ReleaseManifest` (it names a ``release``) or a :class:`Manifest`.
    """
    return ReleaseManifest.from_json(data) if "release" in data else Manifest.from_json(data)


def read_manifest(path: Path) -> Manifest | ReleaseManifest | None:
    """Read a manifest file.

    Args:
        path: A ``_manifest.json`` (or a copy in the publish history).

    Returns:
        The manifest, or None when the file does not exist.
    """
    if not path.is_file():
        return None
    return manifest_from_json(json.loads(path.read_text()))


def publish_order(path: Path) -> tuple[dt.datetime, int, str]:
    """Sort key putting manifest files in the order their runs were published.

    ``published_at`` first (a run that started first, a smaller run id, may publish
    last; a restore publishes an earlier run's rows again), then, within its second,
    the time the file was written (it is written at publish), then the file's name.
    The one ordering of publishes: the report's history, a table format's fallback
    to its publish history and the retention of path and catalog versions use it.

    Args:
        path: A manifest file (``_manifest.json`` or a publish-history record) that
            :func:`read_manifest` can read.

    Returns:
        ``(published_at, write time in ns, name)``; a record without a readable time
        sorts first.
    """
    try:
        record = json.loads(path.read_text())
        written = path.stat().st_mtime_ns
        when = dt.datetime.fromisoformat(str(record["published_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return dt.datetime.min.replace(tzinfo=dt.UTC), 0, path.name
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when, written, path.name
