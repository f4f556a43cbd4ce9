"""Storage: one interface, one implementation per backend.

Rooms:
    layout  every name of the on-disk layout (no Spark import).
    files   local-filesystem primitives (atomic JSON, directory exchange).
    base    the :class:`~pipelines.storage.base.Table` interface and :func:`open_table`.
    text    reading text (CSV) partitions: declared types, flagged malformed rows.
    lease   the per-partition lease (an exclusive ``flock``) concurrent runs meet.
    path    path tables (Parquet/CSV directories, published by a directory swap).
    hive    catalog tables (Hive metastore, published by a partition pointer swap).

Importing this package imports no Spark; the backends import it when they run.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

from pipelines.errors import SpecError

_RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")


def new_run_id(now: dt.datetime | None = None) -> str:
    """A unique run id that sorts by start time.

    Args:
        now: The start time (default: now, UTC).

    Returns:
        ``YYYYmmddTHHMMSSZ-<8 hex>``.
    """
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def check_run_id(value: str, where: str) -> str:
    """Refuse anything but a run id (it becomes a path component).

    Args:
        value: The run id a user gave.
        where: The option naming it in the error (``--run-id``).

    Returns:
        ``value``.

    Raises:
        SpecError: ``value`` is not of the form ``YYYYmmddTHHMMSSZ-<8 hex>``.
    """
    if not _RUN_ID.fullmatch(value):
        raise SpecError(f"{where}: '{value}' is not a run id (like 20261125T101500Z-1a2b3c4d)")
    return value
