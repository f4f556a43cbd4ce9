"""The native screen: ``ScreenMask.java``, compiled once, shipped to Spark, registered.

Screening is the one part of PII detection that touches every value of every string
column, so it runs in the JVM, beside the data: a Java UDF (source in
``pipelines/pii/java/``) configured with the catalogue's guards and regexes
(:func:`pipelines.pii.spark.register`). Its jar is named after the SHA-256 of the
source, so a jar built from other code is never used. ``make jars`` builds it next to
the source (``javac`` of the installed JDK against the installed PySpark's jars);
when it is missing a session builds it on first use, and fails with one line when no
JDK is there. ``anonymize build-zip`` includes it in the ``--py-files`` zip, from which
it is extracted on the driver; sessions add it with ``ADD JAR``, so executors fetch it
from the driver, as with ``--jars`` (nothing to install on a cluster's machines).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import zipfile
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from pipelines.errors import MissingInputError

#: The UDF's class and its source, relative to ``pipelines/pii/java``.
CLASS = "anonymize.pii.ScreenMask"
_SOURCE = "anonymize/pii/ScreenMask.java"


def _java_dir() -> Traversable:
    return resources.files("pipelines.pii") / "java"


def jar_name() -> str:
    """The jar's file name: ``anonymize-pii-<first 12 hex of the source's SHA-256>.jar``.

    Returns:
        The file name.
    """
    digest = hashlib.sha256((_java_dir() / _SOURCE).read_bytes()).hexdigest()
    return f"anonymize-pii-{digest[:12]}.jar"


def build(dest: Path) -> Path:
    """Compile the source into ``dest/<jar_name()>`` (replaced atomically).

    Compiled for Java 17 against the installed PySpark's jars (``UDF1``,
    ``functions.udf``) by the JDK's ``javac``; the jar is written with ``zipfile`` (a
    jar is a zip), so the JDK's ``jar`` tool is not needed. Jars of earlier sources in
    ``dest`` are removed.

    Args:
        dest: The directory (created if missing).

    Returns:
        The jar's path.

    Raises:
        MissingInputError: No ``javac`` on the PATH.
    """
    import pyspark

    javac = shutil.which("javac")
    if javac is None:
        raise MissingInputError(
            f"the PII screen jar {jar_name()} is missing and there is no javac to build it: "
            "install a JDK 17 and run `make jars` (or ship a build-zip that includes it)"
        )
    spark_jars = Path(pyspark.__file__).parent / "jars"
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / jar_name()
    with tempfile.TemporaryDirectory() as tmp, resources.as_file(_java_dir() / _SOURCE) as src:
        classes = Path(tmp) / "classes"
        subprocess.run(  # noqa: S603 (javac from PATH, fixed arguments)
            [javac, "--release", "17", "-nowarn", "-cp", str(spark_jars / "*"),
             "-d", str(classes), str(src)],
            check=True, capture_output=True,
        )  # fmt: skip
        partial = dest / f".{target.name}.tmp"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as jar:
            for path in sorted(classes.rglob("*.class")):
                jar.write(path, path.relative_to(classes).as_posix())
        partial.replace(target)
    for stale in dest.glob("anonymize-pii-*.jar"):  # built from earlier sources
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


def jar_path() -> Path:
    """The current jar on the driver's disk: built here if missing, extracted from a zip.

    Returns:
        A path to the jar. From inside a ``--py-files`` zip it is a copy in a temporary
        directory that lives as long as the process.

    Raises:
        MissingInputError: The jar is missing and cannot be built (no ``javac``).
    """
    name = jar_name()
    packaged = _java_dir() / name
    if isinstance(packaged, Path):  # an installed or checked-out package
        return packaged if packaged.is_file() else build(packaged.parent)
    if packaged.is_file():  # inside a zip: extract it
        out = Path(tempfile.mkdtemp(prefix="anonymize-jar-")) / name
        out.write_bytes(packaged.read_bytes())
        return out
    raise MissingInputError(
        f"{name} is not in the package zip: rebuild it with `anonymize build-zip` on a "
        "machine with a JDK (it compiles the PII screen first)"
    )


def main() -> int:
    """``python -m pipelines.pii.native``: build the jar if needed and print its path.

    Returns:
        The exit code (1 with one line on stderr when it cannot be built).
    """
    import sys

    try:
        print(jar_path())
    except (MissingInputError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        print(f"error: {exc} {detail.decode(errors='replace').strip()}".strip(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
