"""Path tables: ``<root>/<col>=<value>/`` directories of Parquet or CSV files.

A run writes ``<root>/_staging/<run id>/<col>=<value>/`` (ignored by Spark's
partition discovery because it starts with ``_``), then swaps it into place: with
Linux ``renameat2(RENAME_EXCHANGE)`` the two directories trade places in one atomic
step; where the filesystem lacks it, the old directory is renamed aside and the new
one renamed in. Either way a reader never combines files of two versions, because
every version's files have their own names. What a path table cannot give is
snapshot isolation: readers (Hadoop's local filesystem, pyarrow) list a directory's
names and then stat each one by path, so a listing that straddles the swap finds
none of the old names and sees the partition with no files (measured: 2 of 5,500
pyarrow reads while swapping in a tight loop); a read whose listing succeeded
before the swap fails with file-not-found when it opens the moved files. Readers
that need a consistent snapshot use a catalog table. The previous version moves to
``<root>/_trash/<col>=<value>/<run id>/``, named after the run that produced it; the
sink's ``keep_versions`` most recently replaced ones are kept there (to inspect or
restore), by publish order.

The filesystem operations use the local (or mounted) filesystem.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.partition import Partition, dirname_value
from pipelines.storage import files, layout
from pipelines.storage.base import Staged, Table, Version, staged_under, staging_under
from pipelines.storage.text import read_text

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

    from pipelines.manifest import Manifest, ReleaseManifest


class PathTable(Table):
    """A table that is a directory tree (``path:`` + ``format``)."""

    @property
    def display(self) -> str:
        """The table's root directory."""
        return str(self.root)

    @property
    def root(self) -> Path:
        """The table's root directory (relative paths resolve against the warehouse)."""
        return layout.table_dir(self.warehouse, self.ref.path, None)

    @property
    def control_root(self) -> Path:
        """The table's root: records live beside the partitions."""
        return self.root

    def partition_dir(self, partition: Partition) -> Path:
        """The directory of one published partition.

        Args:
            partition: The partition.

        Returns:
            ``<root>/<col>=<value>``.
        """
        return self.root / partition.dirname

    def exists(self) -> bool:
        """Whether the root directory exists.

        Returns:
            True if it does.
        """
        return self.root.is_dir()

    def partition_values(self) -> set[str]:
        """Values of the ``<col>=<value>`` directories under the root.

        Returns:
            Partition values.
        """
        if not self.exists():
            return set()
        values = (dirname_value(self.partition_column, p.name) for p in self.root.iterdir()
                  if p.is_dir())  # fmt: skip
        return {v for v in values if v is not None}

    def partition_exists(self, partition: Partition) -> bool:
        """Whether the partition's directory exists.

        Args:
            partition: The partition.

        Returns:
            True if it does.
        """
        return self.partition_dir(partition).is_dir()

    def _read(self, partition: Partition, types: dict[str, str]) -> DataFrame:
        reader = self.spark.read.format(self.ref.format).options(**self._options())
        part_dir = self.partition_dir(partition)
        if files.has_data_files(part_dir):
            if self.ref.format == "csv":
                return read_text(self.spark, "csv", self._options(), str(part_dir), types)
            # The partition's own files define its schema (other partitions may
            # predate a schema change).
            return reader.load(str(part_dir))
        # Empty partition: only the table root can supply a schema.
        whole = reader.option("basePath", str(self.root)).load(str(self.root))
        return self._only(whole, partition)

    def staged(self, run_id: str, partition: Partition) -> Staged:
        """``<root>/_staging/<run id>/<col>=<value>/``.

        Args:
            run_id: The run.
            partition: The partition it stages.

        Returns:
            The handle.
        """
        return staged_under(self.root, run_id, partition)

    def staging_dirs(self) -> list[Staged]:
        """Every ``_staging/<run id>/<col>=<value>/`` directory.

        Returns:
            The staged runs, sorted by partition and run id.
        """
        return staging_under(self.root, self.partition_column)

    def _commit(self, staged: Staged, manifest: Manifest | ReleaseManifest) -> str:
        final = self.partition_dir(staged.partition)
        final.parent.mkdir(parents=True, exist_ok=True)
        if not final.exists():
            os.rename(staged.path, final)
        else:
            # The replaced version goes aside under the run that produced it; the
            # sink's keep_versions versions are kept there, by publish order (not run
            # ids: a run that started first may publish last).
            trash = self.root / layout.TRASH / final.name
            trash.mkdir(parents=True, exist_ok=True)
            aside = trash / (_run_of(final / layout.MANIFEST) or f"before-{staged.run_id}")
            while aside.exists():  # the same version published twice (a republish)
                aside = aside.with_name(aside.name + "+")
            if files.exchange(staged.path, final):
                os.rename(staged.path, aside)  # now the previous version
            else:
                self._swap_by_renames(staged.path, final, aside)
            files.prune_versions(list(trash.iterdir()), self.ref.keep_versions, latest=aside)
        files.remove_if_empty(staged.path.parent)
        return str(final)

    @staticmethod
    def _swap_by_renames(new: Path, final: Path, aside: Path) -> None:
        """The fallback without ``renameat2``: old version aside, new one in.

        Between the two renames the partition is absent (readers see no partition,
        never a mix). If the second rename fails, the old version is put back
        before the error propagates, so the published partition is unchanged.
        """
        os.rename(final, aside)
        try:
            os.rename(new, final)
        except BaseException:
            os.rename(aside, final)
            raise

    def _after_stage_moved(self, staged: Staged) -> None:
        files.remove_if_empty(staged.path.parent)

    def check_schema_compatible(
        self, schema: StructType, partition: Partition | None = None
    ) -> None:
        """Refuse a column typed otherwise than in the newest other published partition.

        A path table has no schema of its own: each partition's files carry theirs,
        and a reader of the whole table fails on (or mis-reads) a column whose type
        differs between partitions. Added and dropped columns are allowed (Parquet
        schema merging takes them); CSV tables carry no types.

        Args:
            schema: The staged output's schema.
            partition: The partition it would replace (not compared with itself).

        Raises:
            PublishError: A column's type differs (names the columns, both types and
                the partition compared with).
        """
        from pipelines.errors import PublishError
        from pipelines.manifest import Manifest, read_manifest

        if self.ref.format == "csv" or not self.exists():
            return
        for d in sorted(self.root.iterdir(), key=lambda p: p.name, reverse=True):
            value = dirname_value(self.partition_column, d.name)
            if value is None or (partition is not None and value == partition.value):
                continue
            try:  # only published partitions of this table (dt=latest, a .bak: not)
                Partition.parse(self.partition_column, value)
                record = read_manifest(d / layout.MANIFEST)
            except Exception:  # noqa: BLE001 (not a partition, or not our manifest)
                continue
            if not isinstance(record, Manifest):
                continue
            old = record.output_schema
            got = {f.name: f.dataType.simpleString() for f in schema.fields}
            changed = [f"{n} as {t} (it holds {old[n]})" for n, t in got.items()
                       if n in old and old[n] != t]  # fmt: skip
            if changed:
                raise PublishError(
                    f"sink {self.display}: this run would publish {', '.join(changed)}, "
                    f"unlike partition {d.name}: a reader of the whole table cannot take both; "
                    "fix the source partition's types, or publish to a new table"
                )
            return

    def published_location(self, partition: Partition) -> str | None:
        """The partition's directory, if it exists.

        Args:
            partition: The partition.

        Returns:
            The directory or None.
        """
        d = self.partition_dir(partition)
        return str(d) if d.is_dir() else None

    def versions(self, partition: Partition) -> list[Version]:
        """The replaced versions kept in ``_trash`` and the published one.

        Args:
            partition: The partition.

        Returns:
            Oldest first.
        """
        out = []
        trash = self.root / layout.TRASH / partition.dirname
        for d in sorted(trash.iterdir()) if trash.is_dir() else []:
            manifest = d / layout.MANIFEST
            run_id = _run_of(manifest) or d.name
            out.append(Version(run_id, d, current=False))
        current = self.partition_dir(partition)
        if current.is_dir():
            out.append(Version(_run_of(current / layout.MANIFEST) or "", current, current=True))
        return out


def _run_of(manifest: Path) -> str | None:
    from pipelines.manifest import read_manifest

    record = read_manifest(manifest)
    return record.run_id if record is not None else None
