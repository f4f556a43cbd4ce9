"""Names inside a sink directory that more than one process agrees on.

No Spark imports: the DAG factory's failure callback uses these too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path


def table_dir(warehouse: Path, path: str | None, table: str | None) -> Path:
    """A table's directory, without asking a metastore.

    A path table's root (relative paths resolve against the warehouse), or a catalog
    table's default location under the warehouse.
    """
    if table is None:
        return Path(warehouse) / (path or "")  # an absolute path stays itself
    db, _, name = table.rpartition(".")
    return Path(warehouse) / f"{db or 'default'}.db" / name


def run_pointer(sink_root: Path, partition_column: str, value: str, run_key: str) -> Path:
    """The record of the pipeline run id an orchestrated run (``--run-key``) started."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", run_key)
    return Path(sink_root) / "_runs" / f"{partition_column}={value}" / f"{name}.json"


def pointed_run_id(pointer: Path) -> str | None:
    """The pipeline run id a run key record (:func:`run_pointer`) holds; None if absent."""
    return json.loads(pointer.read_text())["run_id"] if pointer.is_file() else None
