"""JVM artifacts of the table formats: pinned, fetched once at set-up, never at run time.

Apache Iceberg's Spark runtime (one shaded jar) and Delta Lake's Spark module with its
storage layer, built for Spark 4.1 and Scala 2.13. ``make jars`` (``python -m
pipelines.jars fetch``) downloads each from Maven Central, or the repository in
``$ANONYMIZE_MAVEN_REPO`` (a mirror), into the project's ``.jars/`` folder
(``$ANONYMIZE_JARS`` names another) and refuses any whose SHA-256 differs from its
pin below. Sessions put them on the driver and executor classpath with
``spark.jars`` and spark-submit runs ship them with ``--jars``, so no machine
resolves anything at run time (``spark.jars.packages``, Ivy resolution at start-up,
is never used).

Versions: Iceberg 1.11.0 and Delta Lake 4.4.0, both built against Spark 4.1; with
Iceberg, its AWS bundle (``S3FileIO``) and the JDBC drivers its JDBC catalog uses
(SQLite 3.54.1.0, PostgreSQL 42.7.14). Delta
4.1.0 was reported binary-incompatible with Spark 4.1.2 and later; 4.4.0 works with
the pinned 4.1.3 (``tests/e2e/test_table_formats.py`` commits a partition with each).
Of Delta's dependencies only ``delta-storage`` is taken: the others (Delta Kernel,
Unity Catalog clients) serve features this project does not use, and their Jackson,
Parquet and Hadoop versions would shadow Spark's own on the classpath. Pins are the
artifacts' SHA-256, taken when first fetched and checked against the SHA-1 that
Maven Central publishes beside each.

Why our own download: an HTTP GET and a digest are the standard library's
``urllib`` and ``hashlib``; Maven's resolver would also pull the transitive
dependencies left out on purpose above.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import MissingInputError, PipelinesError

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Jar:
    """One pinned Maven artifact.

    Attributes:
        group: Maven group id.
        artifact: Maven artifact id.
        version: Exact version.
        sha256: Hex SHA-256 of the jar.
        table_format: The table format it serves (``iceberg`` or ``delta``).
    """

    group: str
    artifact: str
    version: str
    sha256: str
    table_format: str

    @property
    def filename(self) -> str:
        """The jar's file name (``<artifact>-<version>.jar``)."""
        return f"{self.artifact}-{self.version}.jar"

    def url(self, repository: str) -> str:
        """The jar's address in a Maven repository layout.

        Args:
            repository: The repository's base URL (``https://…/maven2`` or ``file:…``).

        Returns:
            The URL.
        """
        group = self.group.replace(".", "/")
        return f"{repository.rstrip('/')}/{group}/{self.artifact}/{self.version}/{self.filename}"


JARS: tuple[Jar, ...] = (
    Jar("org.apache.iceberg", "iceberg-spark-runtime-4.1_2.13", "1.11.0",
        "d6ea6c5d099288daeb7d5a92061bd3d7d8f296492632b42378e5f2f0e3066242", "iceberg"),
    Jar("io.delta", "delta-spark_4.1_2.13", "4.4.0",
        "75a9400986853c061f5109f012547de2545a5759e5e752e5ef633dabe16a4f10", "delta"),
    Jar("io.delta", "delta-storage", "4.4.0",
        "c46735481fa8e326b0957be02b4420cbcab4b325bb08009b7f2045a95133f1cc", "delta"),
    # Iceberg's own S3 client (S3FileIO with the AWS SDK v2, shaded): object-store tables
    # without Hadoop's S3A, whose SDK bundle is ten times the size.
    Jar("org.apache.iceberg", "iceberg-aws-bundle", "1.11.0",
        "38f01da7e96850cdd05e6616d758b77b43314b712a8808e3f9a824d56976162f", "iceberg"),
    # JDBC drivers of Iceberg's JDBC catalog (SQLite for one machine, PostgreSQL shared).
    Jar("org.xerial", "sqlite-jdbc", "3.54.1.0",
        "f8dce420a6016278497f4f0560f65602b9db858de141b541cf91a4644ebe4639", "iceberg"),
    Jar("org.postgresql", "postgresql", "42.7.14",
        "73914527305a40cce504b0d3d90b23caf565136912d607ae8ae7c5895512332c", "iceberg"),
)  # fmt: skip

#: Spark SQL extensions each format needs (``spark.sql.extensions``).
EXTENSIONS = {
    "iceberg": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
    "delta": "io.delta.sql.DeltaSparkSessionExtension",
}


#: The session catalog Delta Lake's catalog tables need (``spark.sql.catalog.spark_catalog``).
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


class JarChecksumError(PipelinesError):
    """A downloaded or present jar is not the pinned artifact."""


def running_from_zip() -> bool:
    """Whether this package is imported from a zip (``--py-files``) with no jar folder set.

    Returns:
        True when the jars can only come from the session (spark-submit ``--jars``).
    """
    return not os.environ.get("ANONYMIZE_JARS") and not _ROOT.is_dir()


def jar_dir() -> Path:
    """Where the jars are: ``$ANONYMIZE_JARS``, else the project's ``.jars/``.

    Returns:
        The directory (it may not exist).
    """
    return Path(os.environ.get("ANONYMIZE_JARS") or _ROOT / ".jars").resolve()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _intact(path: Path, jar: Jar) -> bool:
    """Whether ``path`` is a file holding exactly the pinned artifact."""
    if not path.is_file():
        return False
    st = path.stat()
    return _digest(str(path), st.st_size, st.st_mtime_ns) == jar.sha256


@functools.lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    """A file's SHA-256, once per (path, size, modification time) in a process."""
    return _sha256(Path(path))


def fetch(
    dest: Path | None = None, repository: str | None = None, jars: Sequence[Jar] = JARS
) -> list[Path]:
    """Download every pinned jar not already present and intact.

    Each download goes to a temporary file in ``dest`` and is renamed into place only
    once its SHA-256 matches the pin, so an interrupted or wrong download leaves
    nothing behind under the jar's name.

    Args:
        dest: The jar directory (default :func:`jar_dir`).
        repository: Maven repository base URL (default ``$ANONYMIZE_MAVEN_REPO``, else
            Maven Central).
        jars: The artifacts (default :data:`JARS`).

    Returns:
        The jar paths, in ``jars`` order.

    Raises:
        JarChecksumError: A download's SHA-256 differs from its pin (nothing is kept).
    """
    dest = dest or jar_dir()
    repository = repository or os.environ.get("ANONYMIZE_MAVEN_REPO") or MAVEN_CENTRAL
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for jar in jars:
        path = dest / jar.filename
        if not _intact(path, jar):
            fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{jar.filename}.")
            try:
                with os.fdopen(fd, "wb") as out, urllib.request.urlopen(jar.url(repository)) as src:  # noqa: S310 (a pinned https or file URL)
                    while block := src.read(1 << 20):
                        out.write(block)
                got = _sha256(Path(tmp))
                if got != jar.sha256:
                    raise JarChecksumError(
                        f"{jar.filename}: SHA-256 {got} from {repository} is not the pinned "
                        f"{jar.sha256}; not kept"
                    )
                os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from other users' workers
                os.replace(tmp, path)
            finally:
                Path(tmp).unlink(missing_ok=True)
        paths.append(path)
    return paths


def classpath(
    formats: Sequence[str] = ("iceberg", "delta"), dest: Path | None = None
) -> list[Path]:
    """The jars of the given table formats, checked present and intact.

    Args:
        formats: Table formats (``iceberg``, ``delta``).
        dest: The jar directory (default :func:`jar_dir`).

    Returns:
        Jar paths.

    Raises:
        MissingInputError: A jar is missing (one line naming it and ``make jars``).
        JarChecksumError: A jar present is not the pinned artifact.
    """
    dest = dest or jar_dir()
    paths = []
    for jar in (j for j in JARS if j.table_format in formats):
        path = dest / jar.filename
        if not path.is_file():
            raise MissingInputError(
                f"{jar.table_format} needs {path}, which is missing: run `make jars` once "
                f"(it fetches the pinned jars from Maven Central; nothing is fetched at run time)"
            )
        if not _intact(path, jar):
            raise JarChecksumError(
                f"{path}: not the pinned artifact (SHA-256 differs); run `make jars`"
            )
        paths.append(path)
    return paths


def spark_conf(
    formats: Sequence[str] = ("iceberg", "delta"), dest: Path | None = None
) -> dict[str, str]:
    """Spark properties putting the formats' jars and SQL extensions on a new session.

    Args:
        formats: Table formats (``iceberg``, ``delta``).
        dest: The jar directory (default :func:`jar_dir`).

    Returns:
        ``spark.jars`` and ``spark.sql.extensions``.
    """
    return {
        "spark.jars": ",".join(str(p) for p in classpath(formats, dest)),
        "spark.sql.extensions": ",".join(EXTENSIONS[f] for f in formats),
    }


def submit_conf(
    formats: Sequence[str], dest: Path | None = None, verify: bool = True
) -> dict[str, str]:
    """Spark properties a spark-submit of a run using ``formats`` needs.

    ``spark.jars`` is what ``--jars`` sets: the driver and every executor get the
    jars from the submitting machine, so workers need no network.

    Args:
        formats: Table formats the run uses (none: no properties).
        dest: The jar directory (default :func:`jar_dir`).
        verify: Check the jars are present and intact (the DAG file skips it: a
            parse must not hash 100+ MB, nor fail every DAG when jars are missing;
            spark-submit then names a missing jar itself).

    Returns:
        ``spark.jars``, ``spark.sql.extensions`` and, with Delta, the session catalog.
    """
    if not formats:
        return {}
    if verify:
        conf = spark_conf(formats, dest)
    else:
        paths = [(dest or jar_dir()) / j.filename for j in JARS if j.table_format in formats]
        conf = {"spark.jars": ",".join(map(str, paths)),
                "spark.sql.extensions": ",".join(EXTENSIONS[f] for f in formats)}  # fmt: skip
    if "delta" in formats:
        conf["spark.sql.catalog.spark_catalog"] = DELTA_CATALOG
    return conf


def session_conf(dest: Path | None = None) -> dict[str, str]:
    """What a new embedded session needs for the table formats whose jars are present.

    Formats whose jars are missing are left out (a run that uses one then fails with
    :func:`classpath`'s one-line error); with Delta present, the session catalog is
    Delta's (it hands other tables on to the Hive catalog).

    Args:
        dest: The jar directory (default :func:`jar_dir`).

    Returns:
        ``spark.jars``, ``spark.sql.extensions`` and ``spark.sql.catalog.spark_catalog``,
        or nothing when no format's jars are present.
    """
    dest = dest or jar_dir()
    missing = {j.table_format for j in JARS if not (dest / j.filename).is_file()}
    present = [f for f in EXTENSIONS if f not in missing]
    return submit_conf(present, dest)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipelines.jars fetch|classpath``: fetch the jars, or print their paths.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        The exit code.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "fetch"
    if command not in ("fetch", "classpath") or len(args) > 1:
        print("usage: python -m pipelines.jars [fetch|classpath]", file=sys.stderr)
        return 2
    try:
        paths = fetch() if command == "fetch" else classpath()
    except (PipelinesError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(",".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
