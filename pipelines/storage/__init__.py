"""Storage: one interface, one implementation per backend.

Rooms:
    layout  every name of the on-disk layout (no Spark import).
    files   local-filesystem primitives (atomic JSON, directory exchange).
    base    the :class:`~pipelines.storage.base.Table` interface and :func:`open_table`.
    path    path tables (Parquet/CSV directories, published by a directory swap).
    hive    catalog tables (Hive metastore, published by a partition pointer swap).

Importing this package imports no Spark; the backends import it when they run.
"""

from __future__ import annotations

import datetime as dt
import uuid


def new_run_id(now: dt.datetime | None = None) -> str:
    """A unique run id that sorts by start time.

    Args:
        now: The start time (default: now, UTC).

    Returns:
        ``YYYYmmddTHHMMSSZ-<8 hex>``.
    """
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
