"""Table formats: Apache Iceberg and Delta Lake tables, published by one table commit.

A run's state lives under the table's local control root
(``<warehouse>/_anonymize/<format>/…/_staging/<run id>/<col>=<value>/``, see
:func:`pipelines.storage.layout.control_dir`); its rows are staged

* Iceberg, once the table exists partitioned by the partition column: in the
  table, on a branch of the run's own that readers of ``main`` do not see (see
  ``IcebergTable``'s staging section);
* otherwise (Delta, and the publish that creates an Iceberg table): as Parquet
  in that directory, recording the table's version at that point,

where the gates read them and a failed run is quarantined (as Parquet), as on the
other backends. Publishing is then **one atomic commit** of the table format that
replaces exactly that partition:

* Iceberg: an overwrite by the partition filter (an empty partition replaces a
  full one: a delete commit), adding the branch's files (metadata only), or
  ``DataFrameWriterV2.overwrite(<col> = <value>)`` of the staged Parquet;
* Delta Lake, once the table exists: one transaction of Delta's own (started at
  the version the run staged at) removing the partition's files and adding the
  staged files, hard-linked into the partition's directory (see ``DeltaTable``'s
  section on committing staged files; metadata only); for the publish that creates
  the table, and tables whose properties ask Delta's writer for more than Parquet
  (constraints, column mapping, change data feed, …):
  ``DataFrameWriterV2.overwrite(<col> = <value>)``, which Delta runs as
  ``replaceWhere``, checking that every written row satisfies the condition.

Readers get snapshot isolation: a query sees the table as of one snapshot (one
table version), so the old partition or the new one, never an empty or mixed one;
nothing is renamed, so it holds on object stores too. Concurrent writers are
optimistic: commits to different partitions both land (the formats retry their
metadata commit), runs of one partition are serialized by the partition's lease,
and a publish fails if another writer committed to its partition since its
staging began (Delta's writer path: another run's publish commit).

Every publish commit carries the run's identity (``anonymize.run-id``,
``anonymize.partition``, ``anonymize.pipeline``, ``anonymize.spec-hash``,
``anonymize.code-version``, ``anonymize.key-fingerprints``): Iceberg as snapshot
summary properties, Delta as the commit's ``userMetadata`` (a JSON object under
``anonymize``). The published manifest of a partition is the one of the run
named by the newest such commit in the table's current history; the manifest is
kept in the control root's publish history (``_manifests/``) with the commit's
snapshot id or version. Retained versions of a partition are its earlier publish
commits not yet expired; a restore reads one by time travel and commits it again.

Sources: Iceberg's Spark writes and metadata tables
(https://iceberg.apache.org/docs/latest/spark-writes/,
https://iceberg.apache.org/docs/latest/spark-queries/#inspecting-tables) and Delta
Lake's selective overwrite and table history
(https://docs.delta.io/latest/delta-batch.html#selective-overwrite,
https://docs.delta.io/latest/delta-utility.html#retrieve-delta-table-history).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import re
import shutil
import uuid
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import jars
from pipelines.errors import MissingInputError, PublishError, SpecError
from pipelines.manifest import Manifest, ReleaseManifest, publish_order, read_manifest
from pipelines.partition import Partition, dirname_value
from pipelines.records import QuarantineNote
from pipelines.spec.tables import KeyRef
from pipelines.storage import layout
from pipelines.storage.base import (
    Staged,
    Table,
    Version,
    refuse_schema_change,
    restored_manifest,
    staged_under,
    staging_under,
)
from pipelines.storage.files import match_modes, match_modes_files, remove_if_empty, write_json
from pipelines.storage.hive import sql_ident

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

_ICEBERG_CATALOG = "org.apache.iceberg.spark.SparkCatalog"
_PREFIX = "anonymize."
#: What the formats raise when a concurrent commit conflicts with ours.
_CONFLICT = re.compile(
    r"ValidationException: (Found (new )?conflicting|Cannot determine history)|"
    r"Concurrent(Append|DeleteRead|DeleteDelete|Transaction|Write)Exception|DELTA_CONCURRENT_|"
    r"(Metadata|Protocol)ChangedException"
)
#: Files no snapshot references are removed only this many hours old or older,
#: whatever the retention: a concurrent writer's files are unreferenced until its
#: commit lands (Iceberg's procedure refuses less than 24 hours for that reason).
ORPHAN_FLOOR_HOURS = 24.0
#: In a staged directory: the Iceberg branch holding the run's staged rows.
_IN_TABLE = "_iceberg_branch.json"
#: In a directory staged as Parquet: the table's snapshot or version when the run
#: staged (``{"base": null}``: no table yet), ``_<format>_base.json``.
_BASE = "_{fmt}_base.json"
log = logging.getLogger(__name__)


class _Conflict(Exception):
    """A commit to the partition since the run staged, found before committing."""


class _Stale(Exception):
    """The table version a run staged at is no longer in the table's log."""


def _writer_enforced(node: Any) -> bool:
    """Whether a Delta schema (JSON) asks its writer for a check, at any depth.

    Column metadata other than a comment (generated, identity, invariants, defaults,
    CHAR/VARCHAR) or a NOT NULL field, array element or map value anywhere.
    """
    if isinstance(node, dict):
        if set(node.get("metadata") or {}) - {"comment"}:
            return True
        if any(node.get(k) is False for k in ("nullable", "containsNull", "valueContainsNull")):
            return True
        return any(_writer_enforced(v) for v in node.values())
    if isinstance(node, list):
        return any(_writer_enforced(v) for v in node)
    return False


class _KeepStaged(Exception):
    """A staged run's branch could not be removed: keep its directory for gc."""


def _branch_marker(directory: Path) -> dict[str, str] | None:
    """The Iceberg branch marker in a staged (or quarantined) run's directory, if any."""
    marker = directory / _IN_TABLE
    return json.loads(marker.read_text()) if marker.is_file() else None


@dataclass(frozen=True)
class Commit:
    """A publish commit of one partition.

    Attributes:
        run_id: The run it published.
        version: Its Iceberg snapshot id or Delta table version.
    """

    run_id: str
    version: str


def commit_properties(manifest: Manifest | ReleaseManifest) -> dict[str, str]:
    """What a publish commit records of its run (keys without the ``anonymize.`` prefix).

    Args:
        manifest: The run's manifest.

    Returns:
        ``run-id``, ``partition``, ``pipeline``, ``spec-hash``, ``code-version`` and
        ``key-fingerprints`` (a JSON object of fingerprints, never keys).
    """
    identity = manifest.identity
    fingerprints = getattr(manifest, "key_fingerprints", {}) or {}
    return {
        "run-id": identity.run_id,
        "partition": identity.partition.value,
        "pipeline": identity.pipeline,
        "spec-hash": identity.spec_hash,
        "code-version": identity.code_version,
        "key-fingerprints": json.dumps(fingerprints, sort_keys=True),
    }


class FormatTable(Table):
    """What Iceberg and Delta tables share: local staging, a commit per publish."""

    fmt: str = ""

    def _opened(self) -> None:
        self._check_session()

    def _check_session(self) -> None:
        """Refuse, in one line, a session started without the format's jars."""
        extensions = self.spark.conf.get("spark.sql.extensions", "") or ""
        if jars.EXTENSIONS[self.fmt] not in extensions:
            if not jars.running_from_zip():  # (a zip holds no jars: nothing to check)
                jars.classpath([self.fmt])  # missing or tampered jars: say so first
            raise MissingInputError(
                f"{self.display}: this Spark session was started without {self.fmt}'s jars "
                f"and SQL extensions; start it with pipelines.session.get_session, or give "
                f"spark-submit the --jars and --conf that `anonymize build-zip --format "
                f"{self.fmt}` prints (spark.sql.extensions={jars.EXTENSIONS[self.fmt]})"
            )

    # ------------------------------------------------------------------ per format

    @property
    @abstractmethod
    def ident(self) -> str:
        """The table as a Spark SQL identifier."""

    @abstractmethod
    def commits(self) -> list[tuple[Commit, str]]:
        """Every publish commit in the table's current history, oldest first.

        Returns:
            ``(commit, partition value)`` pairs.
        """

    @abstractmethod
    def _all_versions(self) -> set[str]:
        """Every snapshot id / table version still readable by time travel."""

    @abstractmethod
    def current_version(self) -> str | None:
        """The table's current snapshot id or version.

        Returns:
            It, or None before the first commit.
        """

    @abstractmethod
    def _read_at(self, version: str | None) -> DataFrame:
        """The whole table as of a snapshot or version (None: the current one)."""

    @abstractmethod
    def _write_commit(self, rows: DataFrame, partition: Partition, props: dict[str, str],
                      base: str | None) -> None:  # fmt: skip
        """Replace exactly one partition with ``rows`` in one commit carrying ``props``.

        ``base`` is the snapshot or version the run staged at (None: not recorded);
        a commit to the partition by another writer since then must fail it.
        """

    @abstractmethod
    def expire(self, older_than_hours: float, dry_run: bool) -> list[str]:
        """Remove what only snapshots/versions older than the retention still hold.

        Args:
            older_than_hours: The retention: snapshots (Iceberg) or removed data files
                (Delta) older than this many hours go, the current one never.
            dry_run: Only list what would go.

        Returns:
            One line per snapshot expired or file removed.
        """

    @abstractmethod
    def _create_container(self) -> None:
        """Create the namespace or database the table goes in, if it has one."""

    # ------------------------------------------------------------------ Table

    @property
    def display(self) -> str:
        """``iceberg:<catalog>.<namespace>.<name>`` or ``delta:<path or db.name>``."""
        return self.ref.display

    @property
    def control_root(self) -> Path:
        """``<warehouse>/_anonymize/<format>/…`` (local: see the module docstring)."""
        return layout.control_dir(self.warehouse, self.ref)

    @property
    def stage_format(self) -> str:
        """Staged and quarantined data are Parquet files."""
        return "parquet"

    def _options(self) -> dict[str, str]:
        return {}

    def exists(self) -> bool:
        """Whether the catalog (or the path) has the table.

        Returns:
            True if it does.
        """
        return bool(self.spark.catalog.tableExists(self.ident))

    def partition_values(self) -> set[str]:
        """Partitions holding rows, and partitions published empty.

        Returns:
            Partition values.
        """
        if not self.exists():
            return set()
        rows = self._current().select(self.partition_column).distinct().collect()
        values = {str(r[0]) for r in rows if r[0] is not None}
        history = self.control_root / layout.MANIFESTS
        recorded = {dirname_value(self.partition_column, d.name) for d in history.glob("*=*")}
        return values | {value for _, value in self.commits()} | (recorded - {None})

    def partition_exists(self, partition: Partition) -> bool:
        """Whether the partition has rows or was published (possibly empty).

        Args:
            partition: The partition.

        Returns:
            True if it does.
        """
        if not self.exists():
            return False
        from pyspark.sql import functions as F

        table = self._current()
        part = F.col(self.partition_column).cast("string") == F.lit(partition.value)
        if not table.where(part).limit(1).isEmpty():
            return True
        recorded = (self.control_root / layout.MANIFESTS / partition.dirname).is_dir()
        return recorded or self.published_commit(partition) is not None

    def _current(self) -> DataFrame:
        """The table as of now; refuses (SpecError) one without the partition column."""
        table = self._read_at(None)
        if self.partition_column not in table.columns:
            raise SpecError(
                f"partition_column: '{self.partition_column}' is not a column of {self.display}"
            )
        return table

    def _read(self, partition: Partition, types: dict[str, str]) -> DataFrame:
        version = self.pinned or self.current_version()
        if self.pinned is not None and self.pinned not in self._all_versions():
            raise MissingInputError(
                f"--source-version: {self.display} has no snapshot or version {self.pinned} "
                "(expired, or never made)"
            )
        self.last_read_version = version
        return self._only(self._read_at(version), partition)

    def staged(self, run_id: str, partition: Partition) -> Staged:
        """``<control root>/_staging/<run id>/<col>=<value>/`` (Parquet).

        Args:
            run_id: The run.
            partition: The partition it stages.

        Returns:
            The handle.
        """
        return staged_under(self.control_root, run_id, partition)

    def staging_dirs(self) -> list[Staged]:
        """Every staged run under the control root that the table has not committed.

        A staged run the table did commit (its process died, or failed, between the
        commit and the publish history) has its manifest moved into the history
        here, and is not listed: it is published, not abandoned.

        Returns:
            The staged runs, sorted by partition and run id.
        """
        staged = staging_under(self.control_root, self.partition_column)
        committed = self._committed_runs() if staged else set()
        out = []
        for st in staged:
            manifest = read_manifest(st.path / layout.MANIFEST)
            if st.run_id in committed and manifest is not None:
                self._record(st.partition, manifest)
                self._remove_staged(st)
            else:
                out.append(st)
        return out

    def _after_stage_moved(self, staged: Staged) -> None:
        remove_if_empty(staged.path.parent)

    def check_schema_compatible(
        self, schema: StructType, partition: Partition | None = None
    ) -> None:
        """Refuse to publish into an existing table with a different schema.

        Args:
            schema: The staged output's schema.
            partition: Unused (the whole table has one schema).
        """
        if self.exists():
            refuse_schema_change(self.display, self._read_at(None).schema, schema,
                                 self.partition_column)  # fmt: skip

    def _staged_rows(self, staged: Staged, manifest: Manifest | ReleaseManifest) -> DataFrame:
        """The staged rows with the partition column, in the table's column order."""
        from pyspark.sql import functions as F

        ddl = ", ".join(f"`{n}` {t}" for n, t in manifest.output_schema.items())
        rows = self.spark.read.schema(ddl).parquet(str(staged.path))
        if not self.exists():
            return rows.withColumn(self.partition_column, F.lit(staged.partition.value))
        columns = self._read_at(None).schema  # the partition column may be a DATE
        value = F.lit(staged.partition.value).cast(columns[self.partition_column].dataType)
        return rows.withColumn(self.partition_column, value).select(*columns.fieldNames())

    def write_staged(self, df: DataFrame, staged: Staged) -> None:
        """Stage the rows as Parquet, recording the table's version at this point.

        The publish validates from that version: another writer's commit to the
        partition since then fails it (between an orchestrated run's steps, too).

        Args:
            df: The rows to stage (without the partition column).
            staged: Where (:meth:`staged`).
        """
        base = self.current_version() if self.exists() else None
        super().write_staged(df, staged)
        write_json(staged.path / _BASE.format(fmt=self.fmt), {"base": base})

    def copy_staged(self, staged: Staged, dest: Path) -> None:
        """Copy a staged run's directory to ``dest`` (for the DP store), without its base.

        Args:
            staged: The staged partition.
            dest: A directory that does not exist yet.
        """
        # The copy is published again later, on another base: no version recorded.
        shutil.copytree(staged.path, dest, ignore=shutil.ignore_patterns(_BASE.format(fmt="*")))

    def _recorded_base(self, staged: Staged, manifest: Manifest | ReleaseManifest) -> str | None:
        """The version the run staged at (None: not recorded, or no table then).

        Raises:
            PublishError: The run staged before the table existed, and another run
                has published the partition since.
        """
        recorded = staged.path / _BASE.format(fmt=self.fmt)
        if not recorded.is_file():
            return None
        base = json.loads(recorded.read_text())["base"]
        if base is None and self.published_commit(staged.partition) is not None:
            raise self._conflict(staged, manifest)  # published since: not by this run
        return base

    def _commit(self, staged: Staged, manifest: Manifest | ReleaseManifest) -> str:
        version = self._table_commit(staged, manifest)
        return self._location(Commit(manifest.run_id, version or "?"))

    def _table_commit(self, staged: Staged, manifest: Manifest | ReleaseManifest) -> str | None:
        """Commit the staged partition to the table.

        Returns:
            The commit's snapshot id or version when known without a history query
            (None: :meth:`publish` looks it up).
        """
        return self._writer_commit(staged, manifest, self._recorded_base(staged, manifest))

    def _writer_commit(self, staged: Staged, manifest: Manifest | ReleaseManifest,
                       base: str | None) -> None:  # fmt: skip
        """Write the staged rows through the format's writer, validated from ``base``."""
        props = commit_properties(manifest)
        if not self.exists():
            cols = ", ".join(f"`{n}` {t}" for n, t in manifest.output_schema.items())
            self._create_container()
            self.spark.sql(
                f"CREATE TABLE IF NOT EXISTS {self.ident} ({cols}, `{self.partition_column}` "
                f"STRING) USING {self.fmt} PARTITIONED BY (`{self.partition_column}`)"
            )
        try:
            self._write_commit(self._staged_rows(staged, manifest), staged.partition, props, base)
        except Exception as exc:
            self._raise_conflict(exc, staged, manifest)
            raise

    def _raise_conflict(self, exc: Exception, staged: Staged,
                        manifest: Manifest | ReleaseManifest) -> None:  # fmt: skip
        """Raise a one-line PublishError if ``exc`` is the format's commit conflict."""
        if isinstance(exc, _Conflict) or _CONFLICT.search(f"{type(exc).__name__} {exc}"):
            raise self._conflict(staged, manifest) from None

    def _conflict(self, staged: Staged, manifest: Manifest | ReleaseManifest) -> PublishError:
        return PublishError(
            f"partition {staged.partition} of {self.display}: another writer committed "
            f"to it while run {manifest.run_id} was staged or publishing; nothing of this "
            "run was committed: run it again"
        )

    def publish(self, staged: Staged, manifest: Manifest | ReleaseManifest) -> str:
        """Commit the staged partition to the table, then record its manifest.

        The manifest goes into the staged directory first, then the commit, then the
        publish history with the commit's version; the staged files go last. Once
        the commit has landed nothing undoes it: a crash or an error before the
        history record leaves the staged manifest, which :meth:`discard` keeps and
        :meth:`staging_dirs` (``status``, ``gc``) moves into the history.

        Args:
            staged: The staged partition.
            manifest: Its manifest.

        Returns:
            ``<table> @ <snapshot id or version>``.
        """
        write_json(staged.path / layout.MANIFEST, manifest.to_json())
        match_modes(staged.path, self.control_root)
        version = self._table_commit(staged, manifest)
        if version is None:  # look the commit up in the table's history
            mine = [c for c, value in self.commits()
                    if value == staged.partition.value and c.run_id == manifest.run_id]  # fmt: skip
            version = mine[-1].version if mine else None
        self._record(staged.partition, dataclasses.replace(manifest, table_version=version))
        self.discard(staged)
        return self._location(Commit(manifest.run_id, version or "?"))

    def _record(self, partition: Partition, manifest: Manifest | ReleaseManifest) -> None:
        history = self.control_root / layout.MANIFESTS / partition.dirname
        write_json(history / f"{manifest.run_id}.json", manifest.to_json())

    def _committed_runs(self) -> set[str]:
        return {c.run_id for c, _ in self.commits()} if self.exists() else set()

    def _location(self, commit: Commit) -> str:
        return f"{self.display} @ {commit.version}"

    def published_commit(self, partition: Partition) -> Commit | None:
        """The newest publish commit of the partition in the table's current history.

        Args:
            partition: The partition.

        Returns:
            The commit, or None when no run published the partition.
        """
        if not self.exists():
            return None
        mine = [c for c, value in self.commits() if value == partition.value]
        return mine[-1] if mine else None

    def published_location(self, partition: Partition) -> str | None:
        """``<table> @ <snapshot id or version>`` of the partition's publish commit.

        Args:
            partition: The partition.

        Returns:
            The location, or None when the partition is not published.
        """
        commit = self.published_commit(partition)
        return None if commit is None else self._location(commit)

    def read_manifest(self, partition: Partition) -> Manifest | ReleaseManifest | None:
        """The manifest of the run whose commit published the partition.

        Args:
            partition: The partition.

        Returns:
            The manifest with its commit's version, or None when not published (a
            commit naming a run whose manifest is gone raises MissingInputError).
        """
        commit = self.published_commit(partition)
        if commit is not None:
            return self._manifest_of(partition, commit)
        # No publish commit retained (gc expired them, or Delta cleaned up its log):
        # the newest record of the publish history, if the table still exists.
        history = self.control_root / layout.MANIFESTS / partition.dirname
        files = sorted(history.glob("*.json"), key=publish_order)
        records = [m for m in map(read_manifest, files) if m is not None]
        if not records or not self.exists():
            return None
        return records[-1]

    def _manifest_of(self, partition: Partition, commit: Commit) -> Manifest | ReleaseManifest:
        history = self.control_root / layout.MANIFESTS / partition.dirname
        manifest = read_manifest(history / f"{commit.run_id}.json") or read_manifest(
            self.staged(commit.run_id, partition).path / layout.MANIFEST
        )  # a crash between the commit and the history record left it staged
        if manifest is None:
            raise MissingInputError(
                f"partition {partition} of {self.display}: commit {commit.version} published "
                f"run {commit.run_id}, whose manifest is missing from {history}"
            )
        if manifest.table_version is None and history.joinpath(f"{commit.run_id}.json").is_file():
            self._record(partition, dataclasses.replace(manifest, table_version=commit.version))
        return dataclasses.replace(manifest, table_version=commit.version)

    def versions(self, partition: Partition) -> list[Version]:
        """The partition's publish commits still in the table's history, oldest first.

        Args:
            partition: The partition.

        Returns:
            Versions (no path: a snapshot or table version, read by time travel).
        """
        if not self.exists():
            return []
        mine = [c for c, value in self.commits() if value == partition.value]
        return [
            Version(c.run_id, None, current=i == len(mine) - 1, commit=c.version)
            for i, c in enumerate(mine)
        ]

    def restore(self, partition: Partition, run_id: str, new_run_id: str, at: str) -> str:
        """Commit an earlier published version of the partition again, as a new publish.

        The partition's rows are read as of that run's commit (time travel), staged
        and published with a copy of its manifest (``status: restored``).

        Args:
            partition: The partition.
            run_id: The run whose version to restore.
            new_run_id: The restore's own run id.
            at: The publish time (UTC, ISO 8601).

        Returns:
            The published location.

        Raises:
            MissingInputError: No earlier commit of that run (or it is the published one).
            BaseException: Whatever makes the publish fail, re-raised after the new
                staging location is discarded.
        """
        kept = {v.run_id: v for v in self.versions(partition) if not v.current}
        if run_id not in kept:
            have = ", ".join(sorted(kept)) or "none"
            raise MissingInputError(
                f"partition {partition}: no retained version of run {run_id} (retained: {have})"
            )
        commit = Commit(run_id, kept[run_id].commit or "")
        old = self._manifest_of(partition, commit)
        if not isinstance(old, Manifest):
            raise MissingInputError(f"partition {partition}: version {run_id} has no manifest")
        staged = self.staged(new_run_id, partition)
        try:
            rows = self._only(self._read_at(commit.version), partition)
            staged.path.parent.mkdir(parents=True, exist_ok=True)
            self._stage_old(rows, staged, commit)
            manifest = dataclasses.replace(
                restored_manifest(old, new_run_id, at, run_id), table_version=None
            )
            return self.publish(staged, manifest)
        except BaseException:
            self.discard(staged)
            raise

    def _stage_old(self, rows: DataFrame, staged: Staged, commit: Commit) -> None:
        """Stage an earlier version's rows; one line if gc removed its files."""
        try:
            self.write_staged(rows, staged)
        except Exception as exc:
            if "FileNotFound" not in f"{type(exc).__name__} {exc}":
                raise
            gone = MissingInputError(
                f"partition {staged.partition}: version {commit.version} of run "
                f"{commit.run_id} can no longer be read (gc removed its files)"
            )
            raise gone from None

    def discard(self, staged: Staged) -> None:
        """Remove a staged partition, unless the table committed it without its record.

        Args:
            staged: The staged partition.
        """
        history = self.control_root / layout.MANIFESTS / staged.partition.dirname
        if (staged.path / layout.MANIFEST).is_file() and not (
            history / f"{staged.run_id}.json"
        ).is_file() and staged.run_id in self._committed_runs():
            return  # the only record of a published run: staging_dirs moves it
        self._remove_staged(staged)

    def _remove_staged(self, staged: Staged) -> None:
        """Delete a staged run's directory (and whatever else holds its staged rows)."""
        shutil.rmtree(staged.path, ignore_errors=True)
        remove_if_empty(staged.path.parent)

    def describe(self) -> dict[str, Any]:
        """What a status report shows of the table.

        Returns:
            Its display name, control root, format and current snapshot or version.
        """
        current = self.current_version() if self.exists() else None
        return {**super().describe(), "format": self.fmt, "current_version": current}


def _without_credentials(uri: str) -> str:
    """A catalog URI with any user info and password, token or secret parameter masked."""
    uri = re.sub(r"//[^/@]*@", "//***@", uri)
    return re.sub(r"(?i)((?:password|passwd|pwd|token|secret|credential)[^=&;]*=)[^&;]*",
                  r"\1***", uri)  # fmt: skip


def _root_cause(exc: Exception) -> str:
    """The innermost Java exception behind a py4j or PySpark error, in one line.

    Args:
        exc: The Python-side error.

    Returns:
        ``<Java class simple name>: <first line of its message>``, or the Python
        error's first line when no Java exception is attached.
    """
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    if java is None:
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    while java.getCause() is not None and not java.getCause().equals(java):
        java = java.getCause()
    message = (str(java.getMessage() or "").strip().splitlines() or [""])[0]
    name = java.getClass().getSimpleName()
    return f"{name}: {message}" if message else name


def _property(catalog: str, key: str, value: str | KeyRef) -> str:
    """A catalog property's value; a secret reference is read from its variable or file."""
    if isinstance(value, str):
        return value
    where = f"catalog {catalog} properties.{key}"
    if value.env is not None:
        text = os.environ.get(value.env)
        if not text:
            raise SpecError(f"{where}: environment variable {value.env} is not set")
        return text.strip()
    try:
        return Path(value.file or "").read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SpecError(f"{where}: cannot read {value.file} ({exc.strerror})") from None


class IcebergTable(FormatTable):
    """An Iceberg table in a Hadoop, JDBC or REST catalog (``format: iceberg``)."""

    fmt = "iceberg"

    def _opened(self) -> None:
        super()._opened()
        self._register_catalog()
        if self.ref.iceberg_catalog.type in ("jdbc", "rest"):
            self._probe_catalog()

    def _probe_catalog(self) -> None:
        """Reach a JDBC or REST catalog once now, so that failing says which and why.

        Raises:
            MissingInputError: The catalog cannot be loaded or reached (one line: its
                name, URI and the root cause, with configured values masked).
        """
        cat = self.ref.iceberg_catalog
        try:  # loading the catalog initializes it (REST: its config call; JDBC: connect)
            self.spark._jsparkSession.sessionState().catalogManager().catalog(cat.name)  # noqa: SLF001
        except Exception as exc:
            uri = _without_credentials(cat.uri or "")
            cause = _root_cause(exc).replace(cat.uri or "\0", uri)
            prefix = f"spark.sql.catalog.{cat.name}."
            secrets = [v for k, v in self._catalog_conf().items()
                       if k.startswith(prefix) and k[len(prefix):] in cat.properties]  # fmt: skip
            for value in sorted(secrets, key=len, reverse=True):  # never echoed, not in part
                cause = cause.replace(value, "***")
            raise MissingInputError(
                f"catalog.uri: Iceberg catalog '{cat.name}' ({cat.type}, {uri}) cannot "
                f"be reached: {cause}"
            ) from None

    def _catalog_conf(self) -> dict[str, str]:
        cat = self.ref.iceberg_catalog
        prefix = f"spark.sql.catalog.{cat.name}"
        warehouse = cat.warehouse or str(self.warehouse / layout.ICEBERG_WAREHOUSE)
        if "://" not in warehouse and not Path(warehouse).is_absolute():
            warehouse = str(self.warehouse / warehouse)
        conf = {prefix: _ICEBERG_CATALOG, f"{prefix}.type": cat.type,
                f"{prefix}.warehouse": warehouse}  # fmt: skip
        if cat.uri:
            conf[f"{prefix}.uri"] = cat.uri
        if cat.type == "jdbc":  # the catalog schema with views (Spark asks for views)
            conf[f"{prefix}.jdbc.schema-version"] = "V1"
        conf.update({f"{prefix}.{k}": _property(cat.name, k, v) for k, v in cat.properties.items()})
        return conf

    def _register_catalog(self) -> None:
        """Set the catalog's properties in the session, or check they are already those.

        Spark loads a catalog once per session from ``spark.sql.catalog.<name>.*``;
        a second spec naming the same catalog differently would silently get the
        first one's, so that is refused.
        """
        conf = self._catalog_conf()
        name = self.ref.iceberg_catalog.name
        for key, value in conf.items():
            have = self.spark.conf.get(key, None)
            if have is not None and have != value:  # values may be secrets: never shown
                setting = key.removeprefix(f"spark.sql.catalog.{name}").lstrip(".") or "class"
                raise SpecError(
                    f"catalog.name: Spark catalog '{name}' is already configured in this "
                    f"session with another '{setting}'; give this catalog another name"
                )
        for key, value in conf.items():
            self.spark.conf.set(key, value)

    @property
    def ident(self) -> str:
        """``catalog.namespace.name``, quoted."""
        assert self.ref.table is not None
        return sql_ident(f"{self.ref.iceberg_catalog.name}.{self.ref.table}")

    def _history(self) -> DataFrame:
        from pyspark.sql import functions as F

        snapshots = self.spark.table(f"{self.ident}.snapshots")
        lineage = self.spark.table(f"{self.ident}.history").where(F.col("is_current_ancestor"))
        return snapshots.join(lineage.select("snapshot_id"), "snapshot_id")

    def commits(self) -> list[tuple[Commit, str]]:
        """Publish commits among the current snapshot's ancestors, oldest first.

        Returns:
            ``(commit, partition value)`` pairs.
        """
        from pyspark.sql import functions as F

        rows = (
            self._history()
            .where(F.col("summary").getItem(_PREFIX + "run-id").isNotNull())
            .select(
                "snapshot_id",
                "committed_at",
                F.col("summary").getItem(_PREFIX + "run-id").alias("run_id"),
                F.col("summary").getItem(_PREFIX + "partition").alias("partition"),
            )
            .orderBy("committed_at", "snapshot_id")
            .collect()
        )
        return [(Commit(r.run_id, str(r.snapshot_id)), r.partition) for r in rows]

    def _all_versions(self) -> set[str]:
        rows = self.spark.table(f"{self.ident}.snapshots").select("snapshot_id").collect()
        return {str(r.snapshot_id) for r in rows}

    def current_version(self) -> str | None:
        """The current snapshot id.

        Returns:
            The id, or None for a table without snapshots.
        """
        from pyspark.sql import functions as F

        row = self.spark.table(f"{self.ident}.history").where(F.col("is_current_ancestor"))
        row = row.orderBy(F.col("made_current_at").desc()).select("snapshot_id").first()
        return None if row is None else str(row.snapshot_id)

    def _read_at(self, version: str | None) -> DataFrame:
        reader = self.spark.read
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.table(self.ident)

    def _write_commit(self, rows: DataFrame, partition: Partition, props: dict[str, str],
                      base: str | None) -> None:  # fmt: skip
        from pyspark.sql import functions as F

        writer = rows.writeTo(self.ident)
        for key, value in props.items():
            writer = writer.option(f"snapshot-property.{_PREFIX}{key}", value)
        # Serializable: a commit to this partition by another writer since the
        # snapshot this write started from fails it (Iceberg's ValidationException)
        # rather than one publish silently replacing the other.
        base = base or self.current_version()
        writer = writer.option("isolation-level", "serializable")
        if base is not None:
            writer = writer.option("validate-from-snapshot-id", base)
        # One partition value: nothing to cluster (the default hash distribution
        # shuffles every row by the partition column first: all of them to one key).
        writer = writer.option("distribution-mode", "none")
        writer.overwrite(F.col(self.partition_column) == F.lit(partition.value))

    # ------------------------------------------------------------------ staging in the table
    #
    # Once the table exists with a snapshot and is partitioned by the partition
    # column (identity), a run stages its rows in the table itself, on a branch of
    # its own (``anonymize_<run id>``) made at the current snapshot: readers of the
    # table (its ``main`` branch) do not see it. The gates read the branch; the
    # publish is then a commit of metadata only on ``main``, an overwrite by the
    # partition filter that adds the data files the branch's write added (none for
    # an empty partition), validated from the snapshot the branch began at, so a
    # commit to this partition by any other writer since staging fails it. The rows
    # are written once, not staged as Parquet and written again. The staged
    # directory under the control root keeps the run's state and a marker naming
    # the branch. The first publish (it creates the table) and tables partitioned
    # otherwise stage Parquet as the other formats do.

    def _java_table(self) -> Any:
        """The table through Iceberg's Java API (py4j: pyspark has no Python one)."""
        jvm = self.spark._jvm  # noqa: SLF001
        return jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(
            self.spark._jsparkSession, self.ident  # noqa: SLF001
        )

    def _stages_in_table(self) -> Any:
        """The Java table, if runs stage in it; None otherwise.

        They do once it has a snapshot and identity partitions on a string or date
        partition column (an overwrite by the column's value then removes whole files).
        """
        if not self.exists():
            return None
        table = self._java_table()
        table.refresh()  # the catalog may cache it: see other drivers' commits
        field = table.schema().findField(self.partition_column)
        if table.currentSnapshot() is None or field is None:
            return None
        if str(field.type().typeId().toString()) not in ("STRING", "DATE"):
            return None
        spec = table.spec().fields()
        if not any(f.sourceId() == field.fieldId() and f.transform().isIdentity() for f in spec):
            return None
        return table

    def _branch_ident(self, branch: str) -> str:
        return f"{self.ident}.`branch_{branch}`"

    @staticmethod
    def _staged_branch(staged: Staged) -> dict[str, str] | None:
        """The branch marker of a run staged in the table, or None (staged as Parquet)."""
        return _branch_marker(staged.path)

    def write_staged(self, df: DataFrame, staged: Staged) -> None:
        """Stage the rows on a branch of the table, or as Parquet (see above).

        The marker naming the branch is written before the branch is made, so a
        failure or a kill at any point leaves a staged directory that discard, status
        and gc find (and with it the branch, if it was made).

        Args:
            df: The rows to stage (without the partition column).
            staged: Where its state goes (:meth:`staged`).
        """
        from pyspark.sql import functions as F

        table = self._stages_in_table()
        if table is None:  # staged as Parquet; the publish validates from this snapshot
            super().write_staged(df, staged)
            return
        branch = "anonymize_" + re.sub(r"\W", "_", staged.run_id)
        staged.path.mkdir(parents=True, exist_ok=True)
        write_json(staged.path / _IN_TABLE, {"branch": branch})
        table.manageSnapshots().createBranch(branch).commit()  # at the current snapshot
        table.refresh()
        base = str(table.snapshot(branch).snapshotId())
        write_json(staged.path / _IN_TABLE, {"branch": branch, "base": base})
        match_modes(staged.path, self.control_root)
        columns = self._read_at(None).schema
        value = F.lit(staged.partition.value).cast(columns[self.partition_column].dataType)
        rows = df.withColumn(self.partition_column, value).select(*columns.fieldNames())
        rows.writeTo(self._branch_ident(branch)).option("distribution-mode", "none").overwrite(
            F.col(self.partition_column) == value
        )

    def _branch_rows(self, staged: Staged, branch: str) -> DataFrame:
        return self._only(self.spark.table(self._branch_ident(branch)), staged.partition)

    def read_staged(self, staged: Staged, schema: StructType) -> DataFrame:
        """The staged rows (from the run's branch when staged in the table).

        Args:
            staged: The staged partition.
            schema: Its schema.

        Returns:
            A DataFrame (lazy).
        """
        marker = self._staged_branch(staged)
        if marker is None:
            return super().read_staged(staged, schema)
        return self._branch_rows(staged, marker["branch"]).select(*schema.fieldNames())

    def _table_commit(self, staged: Staged, manifest: Manifest | ReleaseManifest) -> str | None:
        marker = self._staged_branch(staged)
        if marker is None:
            return super()._table_commit(staged, manifest)
        table = self._java_table()
        table.refresh()
        head = table.snapshot(marker["branch"])
        if head is None or "base" not in marker:
            raise MissingInputError(
                f"partition {staged.partition} of {self.display}: the branch "
                f"{marker['branch']} holding run {manifest.run_id}'s staged rows is gone"
            )
        jvm = self.spark._jvm  # noqa: SLF001
        where = jvm.org.apache.iceberg.expressions.Expressions.equal(
            self.partition_column, staged.partition.value
        )
        op = table.newOverwrite().overwriteByRowFilter(where)
        added = 0
        if str(head.snapshotId()) != marker["base"]:  # the branch's write committed files
            files = head.addedDataFiles(table.io()).iterator()
            while files.hasNext():
                op, added = op.addFile(files.next()), added + 1
        op = op.validateFromSnapshot(int(marker["base"])).conflictDetectionFilter(where)
        op = op.validateNoConflictingData().validateNoConflictingDeletes()
        if added:  # every file added holds only rows of this partition
            op = op.validateAddedFilesMatchOverwriteFilter()
        for key, value in commit_properties(manifest).items():
            op = op.set(_PREFIX + key, value)
        try:
            op.commit()
        except Exception as exc:
            self._raise_conflict(exc, staged, manifest)
            raise
        mine = table.currentSnapshot()  # ours, unless another commit came right after
        if mine.summary().get(_PREFIX + "run-id") == manifest.run_id:
            return str(mine.snapshotId())
        return None  # the branch goes with the staged directory (discard)

    def _drop_branch(self, staged: Staged, published: bool) -> None:
        """Remove the run's branch, if it has one; unpublished, its rows go at once.

        A run that did not publish (discarded, quarantined, killed) may hold rows its
        gate failed: its branch's snapshot is expired with the branch, deleting the
        data files only it held, so they cannot be read by snapshot id afterwards.
        A failure is logged, not raised: the staged directory stays, and gc retries.
        """
        marker = self._staged_branch(staged)
        if marker is None or not self.exists():
            return
        try:
            table = self._java_table()
            table.refresh()
            head = table.snapshot(marker["branch"])
            if table.refs().containsKey(marker["branch"]):
                table.manageSnapshots().removeBranch(marker["branch"]).commit()
            if not published and head is not None and str(head.snapshotId()) != marker.get("base"):
                self._expire_unpublished(table, head.snapshotId())
        except Exception as exc:  # another process dropped it first, or the catalog is down
            log.warning("%s: branch %s of run %s not removed (%s); gc retries", self.display,
                        marker["branch"], staged.run_id, type(exc).__name__)  # fmt: skip
            raise _KeepStaged from None

    def _remove_staged(self, staged: Staged) -> None:
        if self._staged_branch(staged) is None:
            super()._remove_staged(staged)
            return
        history = self.control_root / layout.MANIFESTS / staged.partition.dirname
        published = (history / f"{staged.run_id}.json").is_file() or (
            staged.run_id in self._committed_runs()
        )
        try:
            self._drop_branch(staged, published)
        except _KeepStaged:
            return
        super()._remove_staged(staged)

    def _write_parquet(self, staged: Staged, dest: Path) -> None:
        """Write a branch-staged run's rows as Parquet files into ``dest`` (all or nothing)."""
        marker = self._staged_branch(staged)
        assert marker is not None
        tmp = dest.parent / f".{dest.name}.writing"
        shutil.rmtree(tmp, ignore_errors=True)
        self._branch_rows(staged, marker["branch"]).write.parquet(str(tmp))
        dest.mkdir(parents=True, exist_ok=True)
        for f in tmp.iterdir():
            f.rename(dest / f.name)
        tmp.rmdir()

    def quarantine(self, staged: Staged | None, partition: Partition, run_id: str,
                   note: QuarantineNote) -> Path:  # fmt: skip
        """Quarantine as the other tables do: the staged rows as Parquet files in ``data/``.

        If copying the rows out of the run's branch fails, the branch is kept and its
        marker goes into ``data/`` with the run's state: the rows stay where they
        are, never discarded.

        Args:
            staged: The staged partition, or None if nothing was staged.
            partition: The partition.
            run_id: The failed run.
            note: Why.

        Returns:
            The quarantine directory.
        """
        if staged is not None and self._staged_branch(staged) is not None:
            try:
                self._write_parquet(staged, staged.path)
            except Exception as exc:
                log.warning("%s: run %s quarantined on its branch (copy failed: %s)",
                            self.display, run_id, type(exc).__name__)  # fmt: skip
            else:
                try:
                    self._drop_branch(staged, published=False)
                except _KeepStaged:
                    pass  # gc's expire drops anonymize_ branches without a staged run
                (staged.path / _IN_TABLE).unlink()
                match_modes(staged.path, self.control_root)
        return super().quarantine(staged, partition, run_id, note)

    def copy_staged(self, staged: Staged, dest: Path) -> None:
        """Copy the staged run to ``dest``, its rows as Parquet files (for the DP store).

        Args:
            staged: The staged partition.
            dest: A directory that does not exist yet.
        """
        super().copy_staged(staged, dest)
        (dest / _IN_TABLE).unlink(missing_ok=True)
        if self._staged_branch(staged) is not None:
            self._write_parquet(staged, dest)

    def expire(self, older_than_hours: float, dry_run: bool) -> list[str]:
        """Expire snapshots older than the retention, then delete orphan files.

        Iceberg's ``expire_snapshots`` procedure drops the snapshots (never the
        current one) and deletes the data files only they referenced;
        ``remove_orphan_files`` deletes files no snapshot references (a killed
        writer's) once :data:`ORPHAN_FLOOR_HOURS` old (or the retention, if longer),
        so a commit in flight keeps its files.

        Args:
            older_than_hours: The retention in hours.
            dry_run: Only list the snapshots and orphan files that would go.

        Returns:
            ``snapshot <id> (<committed at>)`` and ``orphan <file>`` lines.
        """
        from pyspark.sql import functions as F

        if not self.exists():
            return []
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(hours=older_than_hours)
        stamp = self._local(cutoff)
        lines = self._drop_orphan_branches(cutoff, dry_run)
        refs = self.spark.table(f"{self.ident}.refs").select("snapshot_id")
        old = (
            self.spark.table(f"{self.ident}.snapshots")
            .where(F.col("committed_at") < F.lit(stamp).cast("timestamp"))
            .join(refs, "snapshot_id", "left_anti")  # branch heads stay: a staged run's too
            .select("snapshot_id", "committed_at")
            .orderBy("committed_at")
            .collect()
        )
        lines += [f"snapshot {r.snapshot_id} ({r.committed_at:%Y-%m-%d %H:%M:%S})" for r in old]
        # The procedures get the catalog-qualified name: given ``db.name`` alone, Iceberg
        # first tries ``db`` as a catalog and logs that failure's stack trace.
        catalog, table = self.ident.partition(".")[0], self.ident.replace("'", "\\'")
        if not dry_run and old:
            self.spark.sql(
                f"CALL {catalog}.system.expire_snapshots(table => '{table}', "
                f"older_than => TIMESTAMP '{stamp}', retain_last => 1)"
            ).collect()
        floor = dt.datetime.now(dt.UTC) - dt.timedelta(
            hours=max(older_than_hours, ORPHAN_FLOOR_HOURS)
        )
        orphans = self.spark.sql(
            f"CALL {catalog}.system.remove_orphan_files(table => '{table}', "
            f"older_than => TIMESTAMP '{self._local(floor)}', "
            f"dry_run => {str(dry_run).lower()})"
        ).collect()
        return lines + [f"orphan {r.orphan_file_location}" for r in orphans]

    def _drop_orphan_branches(self, cutoff: Any, dry_run: bool) -> list[str]:
        """Drop ``anonymize_<run id>`` branches no staged run names, made before ``cutoff``.

        They are left when a process died between making its branch and recording
        it, or a quarantine could not remove its branch. Each goes with its head
        snapshot expired, so its rows cannot be read afterwards.
        """
        dirs = [st.path for st in self.staging_dirs()]
        dirs += [where / layout.QUARANTINED_DATA for _, _, where in self.quarantined()]
        named = {m["branch"] for d in dirs if (m := _branch_marker(d)) is not None}
        table = self._java_table()
        table.refresh()
        lines = []
        for name in list(table.refs().keySet()):
            made = re.fullmatch(r"anonymize_(\d{8}T\d{6}Z)_[0-9a-f]{8}", str(name))
            if made is None or name in named:
                continue
            when = dt.datetime.strptime(made.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
            if when >= cutoff:
                continue
            lines.append(f"branch {name} (no staged run)")
            if not dry_run:
                head = table.snapshot(name)
                table.manageSnapshots().removeBranch(name).commit()
                if head is not None:
                    self._expire_unpublished(table, head.snapshotId())
        return lines

    def _expire_unpublished(self, table: Any, snapshot_id: int) -> None:
        """Expire a dropped branch's head now, unless a ref or main's lineage holds it."""
        table.refresh()
        held = {ref.snapshotId() for ref in table.refs().values()}
        current = table.currentSnapshot()
        util = self.spark._jvm.org.apache.iceberg.util.SnapshotUtil  # noqa: SLF001
        if snapshot_id in held or (
            current is not None and util.isAncestorOf(table, current.snapshotId(), snapshot_id)
        ):
            return
        table.expireSnapshots().expireSnapshotId(snapshot_id).commit()

    def _local(self, when: Any) -> str:
        """A UTC time as a timestamp literal in the session's time zone (how Spark reads it)."""
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(self.spark.conf.get("spark.sql.session.timeZone", "UTC") or "UTC")
        return when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S.%f")

    def _create_container(self) -> None:
        self.spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {self.ident.rpartition('.')[0]}")



class DeltaTable(FormatTable):
    """A Delta Lake table by path or in the session catalog (``format: delta``)."""

    fmt = "delta"

    def _opened(self) -> None:
        super()._opened()
        self._catalog_location: str | None = None  # resolved by _delta_log

    def _check_session(self) -> None:
        super()._check_session()
        if self.spark.conf.get("spark.sql.catalog.spark_catalog", "") != jars.DELTA_CATALOG:
            raise MissingInputError(
                f"{self.display}: this Spark session's spark_catalog is not Delta's; start it "
                f"with spark.sql.catalog.spark_catalog={jars.DELTA_CATALOG}"
            )

    @property
    def path(self) -> Path | None:
        """A path table's directory (relative paths resolve against the warehouse)."""
        if self.ref.path is None:
            return None
        return layout.table_dir(self.warehouse, self.ref.path, None)

    @property
    def ident(self) -> str:
        """``delta.`<path>``` or the quoted ``db.name``."""
        if self.path is not None:
            return "delta.`" + str(self.path).replace("`", "``") + "`"
        assert self.ref.table is not None
        return sql_ident(self.ref.table)

    def exists(self) -> bool:
        """Whether the path holds a Delta table, or the catalog has the table.

        Returns:
            True if it does.
        """
        if self.path is None:
            return super().exists()
        jvm = self.spark._jvm  # noqa: SLF001 (py4j: no Python API without the delta-spark wheel)
        return bool(
            jvm.io.delta.tables.DeltaTable.isDeltaTable(self.spark._jsparkSession, str(self.path))  # noqa: SLF001
        )

    def _history(self) -> DataFrame:
        return self.spark.sql(f"DESCRIBE HISTORY {self.ident}")

    def commits(self) -> list[tuple[Commit, str]]:
        """Publish commits in the table's history (not yet cleaned up), oldest first.

        Returns:
            ``(commit, partition value)`` pairs.
        """
        from pyspark.sql import functions as F

        meta = F.col("userMetadata")
        rows = (
            self._history()
            .select(
                "version",
                F.get_json_object(meta, f"$.anonymize.{'run-id'}").alias("run_id"),
                F.get_json_object(meta, "$.anonymize.partition").alias("partition"),
            )
            .where(F.col("run_id").isNotNull())
            .orderBy("version")
            .collect()
        )
        return [(Commit(r.run_id, str(r.version)), r.partition) for r in rows]

    def _all_versions(self) -> set[str]:
        return {str(r.version) for r in self._history().select("version").collect()}

    def current_version(self) -> str | None:
        """The current table version.

        Returns:
            The version, or None before the first commit.
        """
        if not self.exists():
            return None
        none = self.spark._jvm.scala.Option.empty()  # noqa: SLF001
        version = int(self._delta_log().update(False, none, none).version())
        return None if version < 0 else str(version)  # (the log's listing: no Spark job)

    def _read_at(self, version: str | None) -> DataFrame:
        reader = self.spark.read
        if version is not None:
            reader = reader.option("versionAsOf", version)
        if self.path is not None:
            return reader.format("delta").load(str(self.path))
        return reader.table(self.ident)

    def _write_commit(self, rows: DataFrame, partition: Partition, props: dict[str, str],
                      base: str | None) -> None:  # fmt: skip
        from pyspark.sql import functions as F

        # Delta's writer cannot validate from an earlier version: a publish of this
        # partition by another run since the staging one fails it here instead.
        if base is not None and any(
            value == partition.value and int(c.version) > int(base) for c, value in self.commits()
        ):
            raise _Conflict(f"partition {partition} committed since version {base}")
        metadata = json.dumps({"anonymize": props}, sort_keys=True)
        writer = rows.writeTo(self.ident).option("userMetadata", metadata)
        # An overwrite that removes and adds no file (an empty partition over nothing)
        # must still commit: the commit is the publish record.
        skip = "spark.databricks.delta.skipRecordingEmptyCommits"
        before = self.spark.conf.get(skip, "true")
        self.spark.conf.set(skip, "false")
        try:
            writer.overwrite(F.col(self.partition_column) == F.lit(partition.value))
        finally:
            self.spark.conf.set(skip, before)

    # ------------------------------------------------------------------ committing staged files
    #
    # Delta Lake has no public way to commit data files written beforehand (nothing
    # like Iceberg's branches or its Java API's overwrite with added files), so a
    # publish through Delta's writer reads the staged Parquet back and writes every
    # row a second time (3.3x a plain write's time in benchmarks/publish_bench.py).
    # Where nothing in the table asks the writer for more than writing Parquet, the
    # publish instead commits the staged files themselves, through Delta's own
    # optimistic transaction (``DeltaLog.startTransaction``: the class its writer
    # commits with, so its protocol, conflict and log handling apply): the files are
    # hard-linked into the table's partition directory, then one transaction, started
    # at the version the run staged at, removes the partition's files as of that
    # version and adds the staged ones. A commit to the partition by any writer since
    # then fails it with Delta's conflict exceptions. That transaction class is
    # Delta's internal Scala API, not a public one: it is used against the pinned jar
    # only (pipelines/jars.py), and tests/spark/test_backends.py exercises it there.
    # Committed files carry their row count as statistics, not column min/max: data
    # skipping inside the partition does not apply to them (partition pruning does).

    #: Table properties under which the staged files may be committed as they are;
    #: any other ``delta.*`` property (constraints, column mapping, change data feed,
    #: row tracking, type widening, UniForm, …) has the rows written by Delta's writer.
    _COMMIT_FILES_PROPERTIES = frozenset({
        "delta.appendOnly",  # the transaction itself refuses to remove files
        "delta.checkpointInterval",
        "delta.checkpoint.writeStatsAsJson",
        "delta.checkpoint.writeStatsAsStruct",
        "delta.dataSkippingNumIndexedCols",
        "delta.dataSkippingStatsColumns",
        "delta.deletedFileRetentionDuration",
        "delta.enableDeletionVectors",
        "delta.enableExpiredLogCleanup",
        "delta.isolationLevel",
        "delta.logRetentionDuration",
    })  # fmt: skip

    def _table_commit(self, staged: Staged, manifest: Manifest | ReleaseManifest) -> str | None:
        if not self.exists():  # the first publish creates the table (Delta's writer)
            return super()._table_commit(staged, manifest)
        base = self._recorded_base(staged, manifest)
        delta_log = self._delta_log()
        try:
            snapshot = self._snapshot(delta_log, base)
        except _Stale:
            raise PublishError(
                f"partition {staged.partition} of {self.display}: version {base}, which run "
                f"{manifest.run_id} staged at, is no longer in the table's log (cleaned up "
                "since): nothing of this run was committed: run it again"
            ) from None
        files = self._staged_files(staged)
        target = self._link_target(delta_log, snapshot, staged, [f for f, _ in files], manifest)
        if target is None:
            return self._writer_commit(staged, manifest, base)
        linked: list[tuple[Path, int]] = []
        created: list[Path] = []
        try:
            for f, rows in files:  # a second name for each staged file: no byte is copied
                name = target / f"{re.sub(r'[^0-9A-Za-z_-]', '_', manifest.run_id)}-{f.name}"
                if name.exists() and not name.samefile(f):  # not this run's: never touched
                    name = target / f"{uuid.uuid4().hex[:8]}-{name.name}"
                if not name.exists():  # (else this run's link, from a killed attempt)
                    os.link(f, name)
                    created.append(name)
                # Now, not the staging time: VACUUM keeps unreferenced files younger than
                # its retention, and the commit records this time.
                os.utime(name)
                linked.append((name, rows))
        except OSError as exc:  # no hard links here (EPERM, EXDEV, …): Delta's writer
            log.info("%s: staged files not linked (%s); publishing through Delta's writer",
                     self.display, exc.strerror)  # fmt: skip
            for name in created:
                name.unlink(missing_ok=True)
            return self._writer_commit(staged, manifest, base)
        try:
            match_modes_files([name for name, _ in linked], target)
            version = self._commit_files(delta_log, snapshot, staged.partition, linked, manifest)
        except Exception as exc:
            self._unlink_uncommitted(created, manifest.run_id)
            self._raise_conflict(exc, staged, manifest)
            raise
        return str(version)

    def _unlink_uncommitted(self, linked: list[Path], run_id: str) -> None:
        """Remove a failed publish's links, once sure no commit of its run landed.

        When that cannot be told, they stay: files no version references are
        orphans, which gc's VACUUM removes after its retention.
        """
        try:
            committed = run_id in self._committed_runs()
        except Exception:  # noqa: BLE001 (the original error is what gets raised)
            return
        if not committed:
            for f in linked:
                f.unlink(missing_ok=True)

    def _delta_log(self) -> Any:
        """The table's ``DeltaLog`` (py4j); a catalog table's location is looked up once."""
        jvm = self.spark._jvm  # noqa: SLF001
        if self.path is not None:
            location = str(self.path)
        else:
            location = self._catalog_location
            if location is None:
                location = self.spark.sql(f"DESCRIBE DETAIL {self.ident}").first().location
                self._catalog_location = location
        return jvm.org.apache.spark.sql.delta.DeltaLog.forTable(self.spark._jsparkSession, location)  # noqa: SLF001

    def _snapshot(self, delta_log: Any, base: str | None) -> Any:
        """The table as of the version the run staged at (None: the current one)."""
        none = self.spark._jvm.scala.Option.empty()  # noqa: SLF001
        if base is None:
            return delta_log.update(False, none, none)
        try:
            return delta_log.getSnapshotAt(int(base), none, none, False)
        except Exception as exc:  # its log entries were cleaned up: too old to validate
            raise _Stale(f"version {base} is no longer readable") from exc

    @staticmethod
    def _staged_files(staged: Staged) -> list[tuple[Path, int]]:
        """The staged Parquet files holding rows (Spark may write one without).

        Returns:
            ``(file, row count)`` pairs, the count read from the file's footer.
        """
        import pyarrow.parquet as pq

        names = sorted(staged.path.glob("*.parquet"))
        files = [p for p in names if p.is_file() and p.name[0] not in "._"]
        counted = [(p, pq.read_metadata(p).num_rows) for p in files]
        return [(p, rows) for p, rows in counted if rows > 0]

    def _link_target(self, delta_log: Any, snapshot: Any, staged: Staged, files: list[Path],
                     manifest: Manifest | ReleaseManifest) -> Path | None:  # fmt: skip
        """The partition directory the staged files can be committed from, or None.

        None when anything needs Delta's writer: a table property outside
        :data:`_COMMIT_FILES_PROPERTIES`, a column with metadata (generated, identity,
        invariants, defaults, CHAR/VARCHAR) or NOT NULL, other partition columns or a
        partition column other than STRING or DATE, another schema than the staged
        one, or a table not on the staged files' local filesystem.
        """
        from pyspark.sql.types import StructType

        jvm = self.spark._jvm  # noqa: SLF001
        meta = snapshot.metadata()
        convert = jvm.scala.jdk.javaapi.CollectionConverters
        properties = dict(convert.asJava(meta.configuration()))
        if any(k.startswith("delta.") and k not in self._COMMIT_FILES_PROPERTIES
               for k in properties):  # fmt: skip
            return None
        if list(convert.asJava(meta.partitionColumns())) != [self.partition_column]:
            return None
        schema = json.loads(meta.schemaString())
        if _writer_enforced(schema):
            return None
        types = {f.name: f.dataType.simpleString() for f in StructType.fromJson(schema).fields}
        if types.pop(self.partition_column, None) not in ("string", "date"):
            return None
        if types != dict(manifest.output_schema):
            return None
        uri = delta_log.dataPath().toUri()
        if (uri.getScheme() or "file") != "file":
            return None
        escape = jvm.org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils.escapePathName
        directory = f"{escape(self.partition_column)}={escape(staged.partition.value)}"
        target = Path(uri.getPath()) / directory
        if files:
            target.mkdir(parents=True, exist_ok=True)
            if target.stat().st_dev != files[0].stat().st_dev:
                return None  # another filesystem: no hard link
        return target

    def _commit_files(self, delta_log: Any, snapshot: Any, partition: Partition,
                      files: list[tuple[Path, int]],
                      manifest: Manifest | ReleaseManifest) -> int:  # fmt: skip
        """One Delta transaction replacing the partition's files with ``files``.

        Args:
            delta_log: The table's ``DeltaLog``.
            snapshot: The version the transaction starts at.
            partition: The partition replaced.
            files: ``(file in the partition's directory, row count)`` pairs.
            manifest: The run's manifest (its identity goes in the commit).

        Returns:
            The committed table version.
        """
        jvm = self.spark._jvm  # noqa: SLF001
        js = self.spark._jsparkSession  # noqa: SLF001
        none, some = jvm.scala.Option.empty(), jvm.scala.Some
        convert = jvm.scala.jdk.javaapi.CollectionConverters
        txn = delta_log.startTransaction(none, some(snapshot))
        column = self.partition_column.replace("`", "``")
        value = partition.value.replace("\\", "\\\\").replace("'", "\\'")
        predicate = f"`{column}` = '{value}'"
        # Reading the partition's files through the transaction records the predicate:
        # the conflict check at commit compares other commits since ``snapshot`` with it.
        where = js.sessionState().sqlParser().parseExpression(predicate)
        current = txn.filterFiles(convert.asScala(jvm.java.util.ArrayList([where])).toList(), False)
        now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        actions = jvm.java.util.ArrayList()
        for i in range(current.size()):
            actions.add(current.apply(i).removeWithTimestamp(now, True))
        add = jvm.org.apache.spark.sql.delta.actions.AddFile
        values = getattr(jvm, "scala.collection.immutable.Map$Map1")(
            self.partition_column, partition.value
        )
        hadoop_path = jvm.org.apache.hadoop.fs.Path
        for f, rows in files:
            stats = json.dumps({"numRecords": rows})
            relative = hadoop_path(f"{f.parent.name}/{f.name}").toUri().toString()
            actions.add(add.apply(
                relative, values, f.stat().st_size, int(f.stat().st_mtime * 1000), True, stats,
                getattr(add, "apply$default$7")(), None, none, none, none, none, none,
            ))  # fmt: skip
        metadata = json.dumps({"anonymize": commit_properties(manifest)}, sort_keys=True)
        operation = getattr(jvm, "org.apache.spark.sql.delta.DeltaOperations$Write")(
            jvm.org.apache.spark.sql.SaveMode.Overwrite, none, some(predicate), some(metadata),
            none, none, none, none, none,
        )  # fmt: skip
        return int(txn.commit(convert.asScala(actions).toList(), operation))

    def expire(self, older_than_hours: float, dry_run: bool) -> list[str]:
        """``VACUUM``: delete data files no version newer than the retention needs.

        One retention governs both the files of old versions and files no version
        references (a killed writer's, or a concurrent writer's before its commit),
        so it is never below :data:`ORPHAN_FLOOR_HOURS`. Versions older than it stay
        in the history but can no longer be read (nor restored). Delta refuses a
        retention under 7 days unless its check is off; an explicit shorter
        ``--older-than`` turns it off for this command only (a reader running a
        query longer than that may then fail).

        Args:
            older_than_hours: The retention in hours.
            dry_run: Only list the files that would go.

        Returns:
            ``file <path>`` lines of a dry run; one ``vacuumed`` line otherwise.
        """
        if not self.exists():
            return []
        hours = max(older_than_hours, ORPHAN_FLOOR_HOURS)
        # VACUUM lists the table's directories with Spark's partition-discovery
        # parallelism (10,000 tasks by default: minutes of empty tasks on a small
        # machine); a few tasks per core list as fast.
        check = "false" if hours < 168 else None  # None: leave Delta's check as it is
        settings = {
            "spark.databricks.delta.retentionDurationCheck.enabled": check,
            "spark.sql.sources.parallelPartitionDiscovery.parallelism":
                str(max(8, 4 * self.spark.sparkContext.defaultParallelism)),
        }  # fmt: skip
        before = {k: self.spark.conf.get(k, None) for k in settings}
        for key, value in settings.items():
            if value is not None:
                self.spark.conf.set(key, value)
        try:
            vacuum = f"VACUUM {self.ident} RETAIN {hours:.6f} HOURS"
            if dry_run:
                files = [r[0] for r in self.spark.sql(vacuum + " DRY RUN").collect()]
            else:
                self.spark.sql(vacuum).collect()
                files = []
        finally:
            for key, value in before.items():
                if value is None:
                    self.spark.conf.unset(key)
                else:
                    self.spark.conf.set(key, value)
        if not dry_run:
            return [f"vacuumed {self.display} (retention {hours:g} h)"]
        return [f"file {f}" for f in files]

    def _create_container(self) -> None:
        db = self.ref.table.rpartition(".")[0] if self.ref.table else ""
        if db:  # a catalog table in a database (a path table has none)
            self.spark.sql(f"CREATE DATABASE IF NOT EXISTS `{db}`")



