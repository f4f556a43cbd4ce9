"""A throwaway PostgreSQL server on loopback for the tests that need one.

Started and stopped by the test (``.ci/run`` installs Debian's ``postgresql`` where
its server binaries are missing): the DP ledger's shared-database test and the
Iceberg JDBC catalog over PostgreSQL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator

import pytest


def _server_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@contextlib.contextmanager
def postgres_server() -> Iterator[tuple[str, int]]:
    """Start a server (trust authentication, user ``postgres``); yield (host, port).

    Skips the test, saying why, when the server binaries are not installed.
    """
    initdb, pg_ctl = _server_bin("initdb"), _server_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    root = tempfile.mkdtemp(prefix="anonymize-pg-")
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = os.path.join(root, "data")
    subprocess.run([*run_as, initdb, "-D", data, "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run([*run_as, pg_ctl, "-D", data, "-w", "-l", os.path.join(root, "log"),
                    "-o", f"-p {port} -h 127.0.0.1 -k {root}", "start"],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield "127.0.0.1", port
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", data, "-m", "immediate", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
