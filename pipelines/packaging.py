"""Build the ``--py-files`` artifact: a zip of the ``pipelines`` package.

``spark-submit --py-files`` puts ``.zip``, ``.egg`` and ``.py`` files on the
executors' path, but not ``.whl`` files, so the package ships as a zip. Package
data (surrogate dictionaries, log4j config, the PII screen's source and jar) is
included; it is read with ``importlib.resources``, which works from inside a zip.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from pipelines import __version__

PACKAGE = Path(__file__).resolve().parent


def build_zip(out_dir: str | Path = "dist") -> Path:
    """Write ``<out_dir>/pipelines-<version>.zip`` and return its path.

    Args:
        out_dir: The output directory (created if missing); relative to the working directory.

    Returns:
        The absolute path of the zip, which holds the package under ``pipelines/`` without
        ``__pycache__`` or ``.pyc`` files, with the current PII screen jar.
    """
    from pipelines.pii import native

    current = native.jar_path().name  # built first if missing: the zip must carry it
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"pipelines-{__version__}.zip"
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(PACKAGE.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            if path.name.startswith(".") or (path.suffix == ".jar" and path.name != current):
                continue  # a build's temporary, or a jar of an earlier source
            zf.write(path, Path("pipelines") / path.relative_to(PACKAGE))
    tmp.replace(target)
    return target
