"""An exclusive lease on one partition of one table: one run at a time.

The lease is an advisory ``flock`` on a small file under the table's control
root, ``_leases/<col>=<value>.lock``, taken before Spark starts (its path needs no
metastore) and held for the whole run or step. The file records the holder's run
id, process, host and start time, so a second run can say who holds it.

A holder that dies (``kill -9``, a lost machine's process) loses its lock with its
open file: the operating system releases ``flock`` locks when the process ends, so
the next run takes the lease over at once: the takeover timeout is zero, and no
stale-lease heuristics are needed. This holds on local filesystems and on NFSv4
(whose clients map ``flock`` to byte-range locks); warehouses on filesystems
without working locks must not run two runs of one partition at once. Lock files
are never deleted (deleting one while another process opens it would let two
processes lock different files).

Written here rather than taken from a library: the standard library's ``fcntl`` is
the whole mechanism, and the holder record is a few lines of JSON.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from pipelines.errors import PartitionBusyError
from pipelines.partition import Partition
from pipelines.spec.tables import TableRef
from pipelines.storage import layout


def _holder(fd: int) -> dict[str, object]:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}


def _age(started: object) -> str:
    try:
        since = dt.datetime.fromisoformat(str(started))
        seconds = (dt.datetime.now(dt.UTC) - since).total_seconds()
    except (ValueError, TypeError):
        return "an unknown time"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


@contextlib.contextmanager
def partition_lease(path: Path, run_id: str, what: str) -> Iterator[None]:
    """Hold the exclusive lease of one partition for the block.

    Args:
        path: The lease file (:func:`pipelines.storage.layout.lease_file`).
        run_id: The run taking the lease (recorded for whoever finds it held).
        what: The partition and table, for the error message.

    Yields:
        Nothing; the lease is released when the block ends, however it ends.

    Raises:
        PartitionBusyError: Another live process holds the lease (exit 7); the
            message names its run id, age, process and host.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            h = _holder(fd)
            raise PartitionBusyError(
                f"{what} is being processed by run {h.get('run_id', '?')} (started "
                f"{_age(h.get('started_at'))} ago, pid {h.get('pid', '?')} on "
                f"{h.get('host', '?')}); try again when it ends"
            ) from None
        record = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
                  "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lease_held(path: Path) -> dict[str, object] | None:
    """Whether a live process holds the lease, without taking it for long.

    Args:
        path: The lease file.

    Returns:
        The holder's record, or None when nobody holds it.
    """
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(fd) or {"run_id": "?"}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def sink_lease(
    table: TableRef, partition: Partition, warehouse: str | None, holder: str
) -> contextlib.AbstractContextManager[None]:
    """The lease of one partition of a sink, found without starting Spark or a metastore.

    The lease file lives under the table's control root as
    :func:`~pipelines.storage.layout.control_dir` computes it (a path table's root; a
    catalog table's default location under the warehouse; a table format's local
    control folder), so every run of the same table and warehouse agrees on it.

    Args:
        table: The sink's table reference (the spec's sink or a release's).
        partition: The partition.
        warehouse: The warehouse root option, resolved as the run's session will
            resolve it (:func:`~pipelines.session.run_warehouse`).
        holder: What the lease file records as its holder (a run id).

    Returns:
        The lease, as a context manager (:func:`partition_lease`).
    """
    from pipelines.session import run_warehouse

    root = layout.control_dir(run_warehouse(warehouse), table)
    what = f"partition {partition.dirname} of {table.display}"
    return partition_lease(layout.lease_file(root, partition.dirname), holder, what)
