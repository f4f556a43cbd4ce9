"""Build the spark-submit artifacts: the package zip, and the table formats' jars.

``spark-submit --py-files`` puts ``.zip``, ``.egg`` and ``.py`` files on the
executors' path, but not ``.whl`` files, so the package ships as a zip. Package
data (surrogate dictionaries, log4j config, the PII screen's source and jar) is
included; it is read with ``importlib.resources``, which works from inside a zip.
The Iceberg and Delta Lake jars go beside it (``<out>/jars/``), copied from the
pinned, checked set (:mod:`pipelines.jars`), for ``--jars``: a cluster's workers
then need no network.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Sequence
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


def ship_jars(out_dir: str | Path, formats: Sequence[str]) -> dict[str, str]:
    """Copy the formats' pinned jars into ``<out_dir>/jars/``; the submit properties.

    Args:
        out_dir: The output directory (created if missing).
        formats: Table formats (``iceberg``, ``delta``).

    Returns:
        ``spark.jars`` (the copies; what ``--jars`` sets), ``spark.sql.extensions``
        and, with Delta, ``spark.sql.catalog.spark_catalog``.

    Raises:
        SpecError: An unknown format.
    """
    from pipelines import jars
    from pipelines.errors import SpecError

    unknown = sorted(set(formats) - set(jars.EXTENSIONS))
    if unknown:
        raise SpecError(f"--format: unknown {', '.join(unknown)}; one of "
                        f"{', '.join(jars.EXTENSIONS)}")  # fmt: skip
    dest = Path(out_dir).resolve() / "jars"
    dest.mkdir(parents=True, exist_ok=True)
    for path in jars.classpath(formats):  # present and intact, or one line saying which
        shutil.copy2(path, dest / path.name)
    return jars.submit_conf(formats, dest)  # checks the copies too
