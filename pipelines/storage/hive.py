"""Catalog tables (``table: db.name``, Hive metastore): publish by a pointer swap.

Every publish writes a new version directory
``<table location>/_versions/<col>=<value>/<run id>/`` and then points the metastore
partition at it (``ADD PARTITION`` / ``SET LOCATION``), a single metastore
transaction. The sink's ``keep_versions`` versions published before it are kept
(at least the one replaced: a query planned before the swap may still be reading
it), for ``anonymize restore``; older ones are deleted.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import PublishError, SpecError
from pipelines.partition import Partition, dirname_value
from pipelines.storage import files, layout
from pipelines.storage.base import Staged, Table, Version, refuse_schema_change

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

    from pipelines.manifest import Manifest, ReleaseManifest


def sql_ident(table: str) -> str:
    """A ``db.name`` as quoted Spark SQL identifiers.

    Args:
        table: ``db.name`` or ``name``.

    Returns:
        ```db`.`name```.
    """
    return ".".join(f"`{p}`" for p in table.split("."))


def sql_string(value: str) -> str:
    """A Spark SQL string literal.

    Args:
        value: Any text.

    Returns:
        The quoted, escaped literal.
    """
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class CatalogTable(Table):
    """A metastore table whose partitions point at immutable version directories."""

    @property
    def name(self) -> str:
        """The table's ``db.name``."""
        assert self.ref.table is not None
        return self.ref.table

    @property
    def display(self) -> str:
        """The table's ``db.name``."""
        return self.name

    def _location(self) -> Path:
        for r in self.spark.sql(f"DESCRIBE TABLE EXTENDED {sql_ident(self.name)}").collect():
            if r[0].strip() == "Location":
                return Path(r[1].strip().removeprefix("file:"))
        raise PublishError(f"cannot find the location of table {self.name}")

    @property
    def control_root(self) -> Path:
        """The table's location (its default location under the warehouse until created)."""
        if self.exists():
            return self._location()
        return layout.table_dir(self.warehouse, None, self.name)

    def _spec(self, partition: Partition) -> str:
        return f"{self.partition_column}={sql_string(partition.value)}"

    def exists(self) -> bool:
        """Whether the metastore knows the table.

        Returns:
            True if it does.
        """
        return self.spark.catalog.tableExists(self.name)

    def partition_values(self) -> set[str]:
        """The table's partitions by ``SHOW PARTITIONS``.

        Returns:
            Partition values.
        """
        if not self.exists():
            return set()
        rows = self.spark.sql(f"SHOW PARTITIONS {sql_ident(self.name)}").collect()
        segments = (seg for r in rows for seg in r[0].split("/"))
        values = (dirname_value(self.partition_column, seg) for seg in segments)
        return {v for v in values if v is not None}

    def partition_exists(self, partition: Partition) -> bool:
        """Whether the metastore has the partition.

        Args:
            partition: The partition.

        Returns:
            True if it does.

        Raises:
            SpecError: The table is not partitioned by the spec's partition column.
        """
        try:
            rows = self.spark.sql(
                f"SHOW PARTITIONS {sql_ident(self.name)} PARTITION ({self._spec(partition)})"
            )
            return bool(rows.limit(1).collect())
        except Exception as exc:  # not partitioned by the column, or not partitioned at all
            raise SpecError(
                f"partition_column: table {self.name} is not partitioned by "
                f"'{self.partition_column}' ({type(exc).__name__})"
            ) from None

    def _read(self, partition: Partition, types: dict[str, str]) -> DataFrame:
        return self._only(self.spark.table(self.name), partition)

    def staged(self, run_id: str, partition: Partition) -> Staged:
        """A new version directory, ``_versions/<col>=<value>/<run id>/``.

        Args:
            run_id: The run.
            partition: The partition it stages.

        Returns:
            The handle.
        """
        root = self.control_root / layout.VERSIONS / partition.dirname / run_id
        return Staged(run_id, partition, root)

    def staging_dirs(self) -> list[Staged]:
        """Version directories of runs that never published (not in the publish history).

        Returns:
            The staged runs, sorted by partition and run id.
        """
        root = self.control_root
        out = []
        for d in root.glob(f"{layout.VERSIONS}/{self.partition_column}=*/*"):
            published = root / layout.MANIFESTS / d.parent.name / f"{d.name}.json"
            if d.is_dir() and not published.is_file():
                partition = Partition.from_dirname(self.partition_column, d.parent.name, str(d))
                out.append(Staged(d.name, partition, d))
        return sorted(out, key=lambda st: (st.partition.value, st.run_id))

    def check_schema_compatible(
        self, schema: StructType, partition: Partition | None = None
    ) -> None:
        """Refuse to publish into an existing table with a different schema.

        Args:
            schema: The staged output's schema (:func:`refuse_schema_change` raises
                PublishError naming the columns that differ).
            partition: Unused (the whole table has one schema).
        """
        if self.exists():
            refuse_schema_change(self.name, self.spark.table(self.name).schema, schema,
                                 self.partition_column)  # fmt: skip

    def _create(self, schema: dict[str, str]) -> None:
        db = self.name.rpartition(".")[0]
        if db:
            self.spark.sql(f"CREATE DATABASE IF NOT EXISTS `{db}`")
        cols = ", ".join(f"`{n}` {t}" for n, t in schema.items())
        opts = " OPTIONS (header 'true')" if self.ref.format == "csv" else ""
        # An explicit LOCATION (external table): the version directory already
        # exists there, and DROP TABLE must never delete published data.
        self.spark.sql(
            f"CREATE TABLE {sql_ident(self.name)} ({cols}, `{self.partition_column}` STRING) "
            f"USING {self.ref.format}{opts} PARTITIONED BY (`{self.partition_column}`) "
            f"LOCATION {sql_string(str(self.control_root))}"
        )

    def _commit(self, staged: Staged, manifest: Manifest | ReleaseManifest) -> str:
        if not self.exists():
            self._create(manifest.output_schema)
        previous = self._published_dir(staged.partition)
        table, spec, where = (
            sql_ident(self.name),
            self._spec(staged.partition),
            sql_string(str(staged.path)),
        )
        if self.partition_exists(staged.partition):
            self.spark.sql(f"ALTER TABLE {table} PARTITION ({spec}) SET LOCATION {where}")
        else:
            self.spark.sql(f"ALTER TABLE {table} ADD PARTITION ({spec}) LOCATION {where}")
        self.spark.catalog.refreshTable(self.name)
        # Keep the new version and the sink's keep_versions published before it (at
        # least the one it replaced: a query planned before the swap may still read
        # it), by publish order. Staged runs (no manifest yet) stay for their own
        # steps, or for gc.
        older = [v for v in staged.path.parent.iterdir()
                 if v != staged.path and (v / layout.MANIFEST).is_file()]  # fmt: skip
        files.prune_versions(older, self.ref.keep_versions, latest=previous)
        return str(staged.path)

    def published_location(self, partition: Partition) -> str | None:
        """The directory the metastore partition points at.

        Args:
            partition: The partition.

        Returns:
            The directory, or None when the partition is not published.
        """
        if not self.exists() or not self.partition_exists(partition):
            return None
        rows = self.spark.sql(
            f"DESCRIBE FORMATTED {sql_ident(self.name)} PARTITION ({self._spec(partition)})"
        ).collect()
        for r in rows:
            if r[0].strip() == "Location":
                return r[1].strip().removeprefix("file:")
        return None

    def _published_dir(self, partition: Partition) -> Path | None:
        location = self.published_location(partition)
        return None if location is None else Path(location)

    def versions(self, partition: Partition) -> list[Version]:
        """The version directories that hold a manifest (published now or before).

        Args:
            partition: The partition.

        Returns:
            Oldest first.
        """
        current = self._published_dir(partition)
        root = self.control_root / layout.VERSIONS / partition.dirname
        dirs = (
            sorted(d for d in root.iterdir() if (d / layout.MANIFEST).is_file())
            if root.is_dir()
            else []
        )
        return [Version(d.name, d, current=d == current) for d in dirs]
