"""Local-filesystem primitives the path and catalog backends share.

Atomic JSON writes, an atomic directory exchange (Linux ``renameat2``), pruning of
kept versions. Written here because the standard library has no directory exchange,
and the rest is a few lines each.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def to_json(payload: Any, **kwargs: Any) -> str:
    """Strict JSON text: a non-finite float is an error, never ``NaN``/``Infinity`` text.

    Every JSON the product writes goes through here (manifests, run state, quarantine
    notes, ``--json`` output). A value that is legitimately unknown is written as
    ``null`` by its producer.

    A non-finite float raises ValueError (``json.dumps(allow_nan=False)``).

    Args:
        payload: A JSON-ready value (dates and paths are written as strings).

    Keyword Args:
        kwargs: Passed to :func:`json.dumps` (``indent``, ``sort_keys``).

    Returns:
        The JSON text.
    """
    return json.dumps(payload, allow_nan=False, default=str, **kwargs)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write strict JSON through a temporary file and a rename (never half a file).

    Args:
        path: The destination (parent directories are created).
        payload: A JSON-ready mapping.
    """
    write_text_atomic(path, to_json(payload, indent=2, sort_keys=True) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file through a temporary file and a rename (never half a file).

    Args:
        path: The destination (parent directories are created).
        text: The content (UTF-8).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories with ``renameat2(RENAME_EXCHANGE)``.

    Args:
        a: One directory.
        b: The other.

    Returns:
        True if swapped; False where the C library or filesystem lacks it.
    """
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def match_modes(tree: Path, like: Path) -> None:
    """Give a staged tree the permissions of the table it joins.

    Spark writes with the process umask; a staged version becomes the published one
    (a catalog table points at it, a path table swaps it in), so its directories get
    the table root's mode and its files that mode without execute bits.

    Args:
        tree: The staged directory.
        like: The table's root (nothing changes when it does not exist yet).
    """
    if not like.is_dir():
        return
    dir_mode = like.stat().st_mode & 0o777
    file_mode = dir_mode & 0o666
    for path in [tree, *tree.rglob("*")]:
        path.chmod(dir_mode if path.is_dir() else file_mode)


def has_data_files(directory: Path) -> bool:
    """Whether a directory holds files Spark would read (not ``_`` or ``.`` prefixed).

    Args:
        directory: The directory to search, recursively.

    Returns:
        True if a non-empty data file exists.
    """
    return any(
        p.is_file() and not p.name.startswith(("_", ".")) and p.stat().st_size > 0
        for p in directory.rglob("*")
    )


def prune_versions(versions: list[Path], keep: int, latest: Path | None = None) -> list[Path]:
    """Delete all but the ``keep`` most recently published of some version directories.

    Retention follows publish order, not run ids (a run that started first may
    publish last): ``latest`` (the version the publish just replaced) first, then the
    others in publish order (:func:`pipelines.manifest.publish_order`). A directory
    without a readable manifest is not a published version and is left alone.

    Args:
        versions: Published version directories (the current one excluded).
        keep: How many to keep (0 keeps none).
        latest: The most recently replaced version, if known (kept when ``keep`` >= 1).

    Returns:
        The directories deleted.
    """
    from pipelines.manifest import publish_order

    def published(version: Path) -> bool:
        try:
            return "published_at" in json.loads((version / "_manifest.json").read_text())
        except (OSError, ValueError, TypeError):
            return False

    # ``latest`` is known to be the newest, whatever the clocks say
    dated = sorted(((v == latest, publish_order(v / "_manifest.json"), v)
                    for v in versions if published(v)),
                   key=lambda entry: entry[:2], reverse=True)  # fmt: skip
    gone = [entry[-1] for entry in dated[keep:]]
    for v in gone:
        shutil.rmtree(v, ignore_errors=True)
    return gone


def remove_if_empty(directory: Path) -> None:
    """Remove a directory that holds nothing.

    Args:
        directory: The directory.
    """
    if directory.name and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()


def match_modes_files(files: list[Path], like: Path) -> None:
    """Give files the mode of the directory they are in, without execute bits.

    Args:
        files: The files.
        like: Their directory.
    """
    if not files:
        return
    mode = like.stat().st_mode & 0o666
    for path in files:
        path.chmod(mode)
