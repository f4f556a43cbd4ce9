"""Every name of the on-disk layout, in one place.

No Spark import: the DAG factory's sensor and failure callback and the CLI use these
too. A table's *control root* holds the product's own records beside (path and
catalog tables) or apart from (table formats, later) its data:

A table format's (Iceberg, Delta Lake) data may sit on an object store where no
rename is atomic and no lock exists, so its control root is local, apart from the
data: ``<warehouse>/_anonymize/<format>/…`` (:func:`control_dir`). The table's own
commits say which run published a partition (their properties name the run); the
control root keeps what a commit cannot: staged Parquet between steps, manifests,
quarantined runs and leases.

``<control root>/``
    ``_staging/<run id>/<col>=<value>/``   a path table's or table format's staged partition
    ``_versions/<col>=<value>/<run id>/``  a catalog table's versions (staged, published, kept)
    ``_trash/<col>=<value>/<run id>/``     a path table's replaced versions (``keep_versions``)
    ``_manifests/<col>=<value>/<run id>.json``  the publish history
    ``_quarantine/<col>=<value>/<run id>/``     a run that failed a gate:
        ``data/`` (its staged files, if any) and ``gate.json`` (:data:`GATE_NOTE`)
    ``_runs/<col>=<value>/<run key>.json``  the run id an orchestrated run started
    ``_leases/<col>=<value>.lock``          the lease: the run holding the partition

Inside a staged or published partition directory: ``_manifest.json`` (published,
swapped in with the data), ``_stage.json`` (a staged run's state) and
``_gx_result.json`` (its output-gate result, for Data Docs). Spark's readers skip
names starting with ``_``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.spec.tables import TableRef

STAGING = "_staging"
VERSIONS = "_versions"
TRASH = "_trash"
MANIFESTS = "_manifests"
QUARANTINE = "_quarantine"
RUNS = "_runs"
LEASES = "_leases"

MANIFEST = "_manifest.json"
STATE = "_stage.json"
GX_RESULT = "_gx_result.json"
GATE_NOTE = "gate.json"
RELEASED_NOTE = "released.json"
QUARANTINED_DATA = "data"

#: The warehouse's DP area: ``_dp/ledger.sqlite`` and ``_dp/store/<pipeline>/<release>/<day>/``.
DP = "_dp"
#: The default budget ledger's file and the stored releases' folder, under :data:`DP`.
LEDGER = "ledger.sqlite"
DP_STORE = "store"
RELEASE_MANIFEST = "_release_manifest.json"
#: Table formats' control roots: ``<warehouse>/_anonymize/<format>/…``.
FORMATS_CONTROL = "_anonymize"
#: The default Hadoop catalog's warehouse for Iceberg tables: ``<warehouse>/iceberg``.
ICEBERG_WAREHOUSE = "iceberg"
#: The Data Docs site and its GX store: ``<warehouse>/_quality/``.
QUALITY = "_quality"


def table_dir(warehouse: Path, path: str | None, table: str | None) -> Path:
    """A table's directory, without asking a metastore.

    Args:
        warehouse: The warehouse root.
        path: A path table's path (relative paths resolve against the warehouse).
        table: A catalog table's ``db.name`` (its default location under the warehouse).

    Returns:
        The directory.
    """
    if table is None:
        return Path(warehouse) / (path or "")  # an absolute path stays itself
    db, _, name = table.rpartition(".")
    return Path(warehouse) / f"{db or 'default'}.db" / name


def control_dir(warehouse: Path, ref: TableRef) -> Path:
    """A table's control root, computed without Spark or a metastore.

    Args:
        warehouse: The warehouse root.
        ref: The spec's table reference.

    Returns:
        For parquet and csv tables, the table's directory (:func:`table_dir`); for
        Iceberg ``<warehouse>/_anonymize/iceberg/<catalog>/<namespace>/<name>``; for
        Delta ``<warehouse>/_anonymize/delta/<db>/<name>`` (catalog table) or
        ``<warehouse>/_anonymize/delta/path/<path as a name>-<8 hex>`` (path table:
        the hash keeps two paths that read alike apart).
    """
    if ref.format not in ("iceberg", "delta"):
        return table_dir(warehouse, ref.path, ref.table)
    base = Path(warehouse) / FORMATS_CONTROL / ref.format
    if ref.format == "iceberg":
        assert ref.table is not None
        return base / ref.iceberg_catalog.name / Path(*ref.table.split("."))
    if ref.table is not None:
        db, _, name = ref.table.rpartition(".")
        return base / (db or "default") / name
    assert ref.path is not None
    digest = hashlib.sha256(ref.path.encode()).hexdigest()[:8]
    slug = re.sub(r"[^A-Za-z0-9_.=-]+", "_", ref.path.strip("/"))[-80:] or "_"
    return base / "path" / f"{slug}-{digest}"


def run_pointer(root: Path, partition_dirname: str, run_key: str) -> Path:
    """The record of the pipeline run id an orchestrated run (``--run-key``) started.

    Args:
        root: The table's control root.
        partition_dirname: ``<col>=<value>``.
        run_key: The orchestrator's run id (Airflow's ``run_id``).

    Returns:
        The record's path.
    """
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", run_key)
    return Path(root) / RUNS / partition_dirname / f"{name}.json"


def pointed_run_id(pointer: Path) -> str | None:
    """The pipeline run id a run key record (:func:`run_pointer`) holds.

    Args:
        pointer: The record's path.

    Returns:
        The run id, or None when there is no record.
    """
    return json.loads(pointer.read_text())["run_id"] if pointer.is_file() else None


def quarantine_base(root: Path, custom: Path | None) -> Path:
    """Where a table's quarantined runs go.

    Args:
        root: The table's control root.
        custom: The spec's ``quality.quarantine_dir`` folder for this table
            (``PipelineSpec.quarantine_root``), or None.

    Returns:
        ``custom``, or ``<root>/_quarantine``.
    """
    return Path(custom) if custom is not None else Path(root) / QUARANTINE


def quarantine_dir(base: Path, partition_dirname: str, run_id: str) -> Path:
    """Where a run that failed a gate is kept.

    Args:
        base: The table's quarantine base (:func:`quarantine_base`).
        partition_dirname: ``<col>=<value>``.
        run_id: The quarantined run.

    Returns:
        ``<base>/<col>=<value>/<run id>``.
    """
    return Path(base) / partition_dirname / run_id


def lease_file(root: Path, partition_dirname: str) -> Path:
    """The file whose lock is the partition's lease (see :mod:`pipelines.storage.lease`).

    Args:
        root: The table's control root (computable without a metastore:
            :func:`table_dir`).
        partition_dirname: ``<col>=<value>``.

    Returns:
        The lease file's path.
    """
    return Path(root) / LEASES / f"{partition_dirname}.lock"
