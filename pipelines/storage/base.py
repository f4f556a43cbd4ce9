"""The storage interface: one table of partitions, staged and published atomically.

A :class:`Table` reads source partitions and publishes sink partitions. Publishing
is two-phase: a run *stages* its output under its run id (invisible to readers),
the gates check the staged data, and :meth:`Table.publish` makes it the partition
in one atomic step, a directory swap on a path table, a metastore pointer swap on
a catalog table, and (for table formats) a table commit. Everything else a run
records (state between steps, manifests and their history, quarantined runs, run
keys) lives under the table's *control root* with the names of
:mod:`pipelines.storage.layout`, so backends differ only in how data is read,
staged, committed and versioned.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import MissingInputError
from pipelines.manifest import Manifest, ReleaseManifest, read_manifest
from pipelines.partition import Partition, dirname_value
from pipelines.records import QuarantineNote
from pipelines.spec.tables import TableRef
from pipelines.storage import layout
from pipelines.storage.files import match_modes, remove_if_empty, write_json

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType


@dataclass(frozen=True)
class Staged:
    """A run's staged partition.

    Attributes:
        run_id: The run that staged it.
        partition: The partition it will replace.
        path: The directory holding the staged data files and the run's state files.
    """

    run_id: str
    partition: Partition
    path: Path


@dataclass(frozen=True)
class Version:
    """A retained version of a published partition.

    Attributes:
        run_id: The run that produced it.
        path: Where its files are (None for a table format's snapshot).
        current: Whether it is the published version.
        commit: The table format's snapshot id or table version (None for directories).
    """

    run_id: str
    path: Path | None
    current: bool
    commit: str | None = None


class Table(ABC):
    """One table, partitioned by one string column holding ISO dates."""

    def __init__(
        self, ref: TableRef, partition_column: str, warehouse: Path, spark: SparkSession,
        quarantine_root: Path | None = None,
    ) -> None:  # fmt: skip
        """Bind the table reference to a session and warehouse.

        Args:
            ref: The spec's table reference.
            partition_column: The partition column.
            warehouse: The warehouse root (relative paths resolve against it).
            spark: The session reading and writing the data.
            quarantine_root: Where quarantined runs go (``quality.quarantine_dir``), or
                None for ``<control root>/_quarantine``.
        """
        self.ref = ref
        self.partition_column = partition_column
        self.warehouse = Path(warehouse)
        self.spark = spark
        self.quarantine_root = quarantine_root
        #: The snapshot id or version the last read_partition read (table formats).
        self.last_read_version: str | None = None
        #: The version the next read is pinned to (``read_partition(at=…)``).
        self.pinned: str | None = None
        self._opened()

    def _opened(self) -> None:  # noqa: B027 (optional hook)
        """Check or prepare the session for this table (nothing by default)."""

    # ------------------------------------------------------------------ backend

    @property
    @abstractmethod
    def display(self) -> str:
        """The table as messages name it."""

    @property
    @abstractmethod
    def control_root(self) -> Path:
        """The directory holding the product's records for this table (see layout)."""

    @abstractmethod
    def exists(self) -> bool:
        """Whether the table exists at all.

        Returns:
            True if it exists.
        """

    @abstractmethod
    def partition_values(self) -> set[str]:
        """The values of every partition the table has.

        Returns:
            Partition values.
        """

    @abstractmethod
    def partition_exists(self, partition: Partition) -> bool:
        """Whether the partition exists (it may be empty).

        Args:
            partition: The partition.

        Returns:
            True if it exists.
        """

    @abstractmethod
    def _read(self, partition: Partition, types: dict[str, str]) -> DataFrame:
        """The rows of an existing partition, without the partition column."""

    @abstractmethod
    def staged(self, run_id: str, partition: Partition) -> Staged:
        """The staging location of a run (which may not exist yet).

        Args:
            run_id: The run.
            partition: The partition it stages.

        Returns:
            The staged partition's handle.
        """

    @abstractmethod
    def staging_dirs(self) -> list[Staged]:
        """Every staging location of a run not (yet) published.

        In flight, waiting between orchestrated steps, or abandoned by a killed run
        (holding only Spark's ``_temporary``, or a manifest that never swapped in).
        Whether a live run owns one, the partition's lease tells.

        Returns:
            The staged runs, sorted by partition and run id.
        """

    @abstractmethod
    def _commit(self, staged: Staged, manifest: Manifest | ReleaseManifest) -> str:
        """Make the staged partition the published one, atomically; return its location."""

    @abstractmethod
    def published_location(self, partition: Partition) -> str | None:
        """Where the published partition is, as messages and results show it.

        Args:
            partition: The partition.

        Returns:
            The directory holding it (path and catalog tables), the table and commit
            (table formats), or None when the partition is not published.
        """

    @abstractmethod
    def versions(self, partition: Partition) -> list[Version]:
        """The retained versions of a partition, oldest first.

        Args:
            partition: The partition.

        Returns:
            The versions, the published one included.
        """

    def restore(self, partition: Partition, run_id: str, new_run_id: str, at: str) -> str:
        """Publish a retained earlier version of a partition again, as a new publish.

        The version's files are copied (the retained version stays as it is) into a
        new staging location and published atomically with a copy of its manifest:
        ``status: restored``, ``restored_from: <run id>``, the new run id and time.

        Args:
            partition: The partition.
            run_id: The run whose version to restore (see :meth:`versions`).
            new_run_id: The restore's own run id.
            at: The publish time (UTC, ISO 8601).

        Returns:
            The published location.

        Raises:
            MissingInputError: No retained version of that run (or it is the published one),
                or the retained version has no manifest.
            BaseException: Whatever makes the publish fail, re-raised after the new staging
                location is discarded.
        """
        kept = {v.run_id: v for v in self.versions(partition) if not v.current}
        if run_id not in kept:
            have = ", ".join(sorted(kept)) or "none"
            raise MissingInputError(
                f"partition {partition}: no retained version of run {run_id} (retained: {have})"
            )
        version = kept[run_id]
        assert version.path is not None  # directory tables; table formats override
        old = read_manifest(version.path / layout.MANIFEST)
        if not isinstance(old, Manifest):
            raise MissingInputError(f"partition {partition}: version {run_id} has no manifest")
        staged = self.staged(new_run_id, partition)
        staged.path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(version.path, staged.path, ignore=shutil.ignore_patterns(layout.MANIFEST))
        manifest = restored_manifest(old, new_run_id, at, run_id)
        try:
            return self.publish(staged, manifest)
        except BaseException:
            self.discard(staged)
            raise

    def check_schema_compatible(  # noqa: B027 (optional hook)
        self, schema: StructType, partition: Partition | None = None
    ) -> None:
        """Refuse to publish a schema the existing table cannot take (default: any schema).

        Args:
            schema: The staged output's schema.
            partition: The partition it would be published as (None: any).
        """

    # ------------------------------------------------------------------ shared

    def read_partition(
        self,
        partition: Partition,
        types: Mapping[str, str] | None = None,
        names: Mapping[str, str] | None = None,
        at: str | None = None,
    ) -> DataFrame:
        """The partition's rows without the partition column.

        Text formats (CSV) have no schema of their own: ``types`` (source column ->
        Spark type name, the spec's ``type:``) is the read schema, other columns are
        strings; records may span lines (quoted newlines, ``multiLine``); and a row
        that does not fit the schema is kept, its fields null, and flagged in the
        boolean column ``MALFORMED`` for the input gate to count (its text is never
        exposed). Such a frame is persisted (Spark refuses queries on its
        corrupt-record column otherwise): ``unpersist_source`` it after use (both in
        :mod:`pipelines.storage.text`).

        Args:
            partition: The partition.
            types: Declared Spark types by column key (text formats only).
            names: Column key -> the source column's actual name, for columns the spec
                renames on reading (``source_name:``); the frame uses the keys.
            at: Read as of this snapshot id / table version (table formats only; the
                version read is left in :attr:`last_read_version`).

        Returns:
            A DataFrame (lazy).

        Raises:
            MissingInputError: The table or the partition does not exist.
            SpecError: ``at`` given for a table that is not Iceberg or Delta.
        """
        from pipelines.errors import SpecError

        if at is not None and self.ref.format not in ("iceberg", "delta"):
            raise SpecError(
                f"--source-version: {self.display} is not an Iceberg or Delta table; "
                "only those keep earlier versions to read"
            )
        self.pinned = at
        if not self.exists():
            raise MissingInputError(f"source table {self.display} does not exist")
        if not self.partition_exists(partition):
            raise MissingInputError(
                f"source partition {partition.dirname} of {self.display} does not exist"
            )
        names = dict(names or {})
        by_source = {names.get(k, k): t for k, t in (types or {}).items()}
        df = self._read(partition, by_source)
        present = set(df.columns)
        return df.withColumnsRenamed({src: k for k, src in names.items() if src in present})

    def _only(self, df: DataFrame, partition: Partition) -> DataFrame:
        """The rows of one partition of a whole-table frame, without the partition column."""
        from pyspark.sql import functions as F

        from pipelines.errors import SpecError

        if self.partition_column not in df.columns:
            raise SpecError(
                f"partition_column: '{self.partition_column}' is not a column of {self.display}"
            )
        part = F.col(self.partition_column).cast("string")
        return df.where(part == F.lit(partition.value)).drop(self.partition_column)

    @property
    def stage_format(self) -> str:
        """The file format of staged (and quarantined) data: the table's own, or Parquet."""
        return self.ref.format

    def _options(self) -> dict[str, str]:
        opts = {"header": "true"} if self.ref.format == "csv" else {}
        return {**opts, **self.ref.options}

    def write_staged(self, df: DataFrame, staged: Staged) -> None:
        """Write the partition's data files into the run's staging location.

        Args:
            df: The rows to stage (without the partition column).
            staged: Where (:meth:`staged`).
        """
        writer = df.write.format(self.stage_format).options(**self._options())
        writer.mode("errorifexists").save(str(staged.path))
        match_modes(staged.path, self.control_root)

    def read_staged(self, staged: Staged, schema: StructType) -> DataFrame:
        """The staged rows, read back with the planned output schema.

        Args:
            staged: The staged partition.
            schema: Its schema.

        Returns:
            A DataFrame (lazy).
        """
        reader = self.spark.read.format(self.stage_format).options(**self._options())
        return reader.schema(schema).load(str(staged.path))

    def copy_staged(self, staged: Staged, dest: Path) -> None:
        """Copy a staged run's directory (data files and state) to ``dest``.

        Args:
            staged: The staged partition.
            dest: A directory that does not exist yet.
        """
        shutil.copytree(staged.path, dest)

    def publish(self, staged: Staged, manifest: Manifest | ReleaseManifest) -> str:
        """Atomically make ``staged`` the partition, with its manifest.

        The manifest is written into the staged directory first, so it swaps in with
        the data, and a copy goes to the publish history.

        Args:
            staged: The staged partition.
            manifest: Its manifest.

        Returns:
            The published location.
        """
        record = manifest.to_json()
        write_json(staged.path / layout.MANIFEST, record)
        match_modes(staged.path, self.control_root)  # the manifest too
        location = self._commit(staged, manifest)
        history = self.control_root / layout.MANIFESTS / staged.partition.dirname
        write_json(history / f"{manifest.run_id}.json", record)
        return location

    def discard(self, staged: Staged) -> None:
        """Remove a staged partition that will not be published.

        Args:
            staged: The staged partition.
        """
        shutil.rmtree(staged.path, ignore_errors=True)
        remove_if_empty(staged.path.parent)

    def read_manifest(self, partition: Partition) -> Manifest | ReleaseManifest | None:
        """The manifest of the published partition.

        Args:
            partition: The partition.

        Returns:
            The manifest, or None when the partition is not published.
        """
        # Directory tables: the manifest swapped in with the data. Table formats override.
        location = self.published_location(partition)
        return None if location is None else read_manifest(Path(location) / layout.MANIFEST)

    def input_history(self, before: Partition) -> list[int]:
        """Input row counts of the published partitions before ``before``, newest first.

        Each partition counts once, with its latest manifest in the publish history.

        Args:
            before: Only partitions strictly before this one count.

        Returns:
            Row counts.
        """
        history = self.control_root / layout.MANIFESTS
        if not history.is_dir():
            return []
        counts = []
        for part in sorted(history.iterdir(), reverse=True):
            value = dirname_value(self.partition_column, part.name)
            if value is None or value >= before.value:
                continue
            runs = sorted(part.glob("*.json"))
            if runs:
                counts.append(read_manifest(runs[-1]).input_rows)
        return counts

    def quarantine(
        self, staged: Staged | None, partition: Partition, run_id: str, note: QuarantineNote
    ) -> Path:
        """Move a staged partition that failed a gate aside, with the gate results.

        The published partition is not touched. Layout:
        ``_quarantine/<col>=<value>/<run id>/`` holding ``data/`` (the staged files,
        absent when the input gate failed before staging) and ``gate.json``.

        Args:
            staged: The staged partition, or None if nothing was staged.
            partition: The partition.
            run_id: The failed run.
            note: Why.

        Returns:
            The quarantine directory.
        """
        base = self.quarantine_base
        dest = self.quarantine_dir(partition, run_id)
        for d in (base, dest.parent, dest):  # owner-only: the data may not be anonymized
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o700)
        if staged is not None and staged.path.exists():
            shutil.move(staged.path, dest / layout.QUARANTINED_DATA)  # a rename on one disk
            self._after_stage_moved(staged)
        write_json(dest / layout.GATE_NOTE, note.to_json())
        return dest

    @property
    def quarantine_base(self) -> Path:
        """Where quarantined runs go: ``quality.quarantine_dir`` or ``<root>/_quarantine``.

        Created owner-only (mode 0700): a quarantined run's data failed a gate and may
        hold PII the published table's readers must not see.
        """
        return layout.quarantine_base(self.control_root, self.quarantine_root)

    def quarantine_dir(self, partition: Partition, run_id: str) -> Path:
        """The directory of one quarantined run.

        Args:
            partition: The partition.
            run_id: The quarantined run.

        Returns:
            ``<quarantine base>/<col>=<value>/<run id>``.
        """
        return layout.quarantine_dir(self.quarantine_base, partition.dirname, run_id)

    def _after_stage_moved(self, staged: Staged) -> None:  # noqa: B027 (optional hook)
        """Tidy what the staged directory's move left behind (nothing by default)."""

    def quarantined(self) -> list[tuple[Partition, str, Path]]:
        """Every quarantined run, oldest first per partition.

        Returns:
            ``(partition, run id, directory)`` triples.
        """
        root = self.quarantine_base
        out = []
        if root.is_dir():
            for part in sorted(root.iterdir()):
                partition = Partition.from_dirname(self.partition_column, part.name, str(part))
                if partition is not None:
                    out += [(partition, run.name, run) for run in sorted(part.iterdir())]
        return out

    def run_pointer(self, partition: Partition, run_key: str) -> Path:
        """Where an orchestrated run (``--run-key``) records its current run id.

        Args:
            partition: The partition.
            run_key: The orchestrator's run id.

        Returns:
            The record's path.
        """
        return layout.run_pointer(self.control_root, partition.dirname, run_key)

    def describe(self) -> dict[str, Any]:
        """What a status report shows of the table.

        Returns:
            Its display name and control root.
        """
        return {"table": self.display, "root": str(self.control_root)}


def restored_manifest(old: Manifest, new_run_id: str, at: str, run_id: str) -> Manifest:
    """The manifest of a restore: the restored version's, as a new publish.

    Args:
        old: The restored version's manifest.
        new_run_id: The restore's own run id.
        at: The publish time (UTC, ISO 8601).
        run_id: The run whose version is restored.

    Returns:
        ``old`` with the new run id and time, ``status: restored``, ``restored_from``.
    """
    import dataclasses

    return dataclasses.replace(
        old,
        identity=dataclasses.replace(old.identity, run_id=new_run_id),
        status="restored",
        published_at=at,
        restored_from=run_id,
    )


def staged_under(root: Path, run_id: str, partition: Partition) -> Staged:
    """A staging location ``<root>/_staging/<run id>/<col>=<value>/``.

    Args:
        root: The table's root (path tables) or control root (table formats).
        run_id: The run.
        partition: The partition it stages.

    Returns:
        The handle.
    """
    return Staged(run_id, partition, root / layout.STAGING / run_id / partition.dirname)


def staging_under(root: Path, partition_column: str) -> list[Staged]:
    """Every ``<root>/_staging/<run id>/<col>=<value>/`` directory.

    Args:
        root: As for :func:`staged_under`.
        partition_column: The partition column.

    Returns:
        The staged runs, sorted by partition and run id.
    """
    out = []
    for d in root.glob(f"{layout.STAGING}/*/{partition_column}=*"):
        partition = Partition.from_dirname(partition_column, d.name, str(d))
        out.append(Staged(d.parent.name, partition, d))
    return sorted(out, key=lambda st: (st.partition.value, st.run_id))


def refuse_schema_change(
    table: str, existing: StructType, new: StructType, partition_column: str
) -> None:
    """Refuse to publish a schema other than an existing table's.

    Args:
        table: The table as messages name it.
        existing: The table's schema (its partition column is ignored).
        new: The staged output's schema (without the partition column).
        partition_column: The partition column.

    Raises:
        PublishError: The column names or types differ (names the columns).
    """
    from pipelines.errors import PublishError

    old = {
        f.name: f.dataType.simpleString() for f in existing.fields if f.name != partition_column
    }
    got = {f.name: f.dataType.simpleString() for f in new.fields}
    if old != got:
        cols = sorted({name for name, _ in set(old.items()) ^ set(got.items())})
        raise PublishError(
            f"sink {table}: output schema differs from the published table in "
            f"columns {', '.join(cols)}; publish to a new table or migrate this one first"
        )


def open_table(
    ref: TableRef,
    partition_column: str,
    warehouse: Path,
    spark: SparkSession,
    quarantine: Path | None = None,
) -> Table:
    """The backend for a table reference.

    Args:
        ref: The spec's table reference.
        partition_column: The partition column.
        warehouse: The warehouse root.
        spark: The session.
        quarantine: Where quarantined runs go (``quality.quarantine_dir``), or None for
            ``<table root>/_quarantine``.

    Returns:
        An :class:`~pipelines.storage.formats.IcebergTable` or
        :class:`~pipelines.storage.formats.DeltaTable` for those formats, else a
        :class:`~pipelines.storage.hive.CatalogTable` for ``table:`` and a
        :class:`~pipelines.storage.path.PathTable` for ``path:``.
    """
    if ref.format in ("iceberg", "delta"):
        from pipelines.storage.formats import DeltaTable, IcebergTable

        cls = IcebergTable if ref.format == "iceberg" else DeltaTable
        return cls(ref, partition_column, warehouse, spark, quarantine)
    if ref.table is not None:
        from pipelines.storage.hive import CatalogTable

        return CatalogTable(ref, partition_column, warehouse, spark, quarantine)
    from pipelines.storage.path import PathTable

    return PathTable(ref, partition_column, warehouse, spark, quarantine)
