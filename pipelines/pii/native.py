"""The native screen: ``ScreenMask.java``, compiled once, shipped to Spark, registered.

Screening is the one part of PII detection that touches every value of every string
column, so it runs in the JVM, beside the data: a Java UDF (source in
``pipelines/pii/java/``) configured with the catalogue's guards and regexes
(:func:`pipelines.pii.spark.register`). Its jar is named after the SHA-256 of the
source, so a jar built from other code is never used. ``make jars`` builds it next to
the source (``javac`` of the installed JDK against the installed PySpark's jars);
when it is missing a session builds it on first use, and fails with one line when no
JDK is there. ``anonymize build-zip`` includes it in the ``--py-files`` zip, from which
it is extracted on the driver. Sessions add it to their class loader on the driver
and to the jars executors fetch from the driver, as ``--jars`` would (nothing to
install on a cluster's machines).
"""

from __future__ import annotations

import atexit
import hashlib
import os
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
    """The jar's file name: ``anonymize-pii-<12 hex>.jar``, from the source and Spark.

    The first 12 hex digits of the SHA-256 of the source, a NUL and the PySpark
    version it compiles against: neither other code nor a jar built for another Spark
    is ever loaded.

    Returns:
        The file name.
    """
    import pyspark

    source = (_java_dir() / _SOURCE).read_bytes()
    digest = hashlib.sha256(source + b"\0" + pyspark.__version__.encode()).hexdigest()
    return f"anonymize-pii-{digest[:12]}.jar"


def build(dest: Path) -> Path:
    """Compile the source into ``dest/<jar_name()>`` (replaced atomically).

    Compiled for Java 17 against the installed PySpark's jars (``UDF1``,
    ``functions.udf``) by the JDK's ``javac``; the jar is written with ``zipfile`` (a
    jar is a zip), so the JDK's ``jar`` tool is not needed. Each build writes its own
    temporary file and renames it into place, so processes building at once each
    leave a whole jar (the same bytes' worth of classes).

    Args:
        dest: The directory (created if missing).

    Returns:
        The jar's path.

    Raises:
        MissingInputError: No ``javac`` on the PATH, or ``javac`` failed (its first
            error line is in the message).
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
        done = subprocess.run(  # noqa: S603 (javac from PATH, fixed arguments)
            [javac, "--release", "17", "-nowarn", "-cp", str(spark_jars / "*"),
             "-d", str(classes), str(src)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            first = next((x for x in done.stderr.splitlines() if x.strip()), "no output")
            raise MissingInputError(f"javac could not build the PII screen jar: {first}")
        fd, partial = tempfile.mkstemp(dir=dest, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as jar:
                for path in sorted(classes.rglob("*.class")):
                    jar.write(path, path.relative_to(classes).as_posix())
            os.chmod(partial, 0o644)  # mkstemp's 0600 would hide it from other users
            os.replace(partial, target)
        finally:
            Path(partial).unlink(missing_ok=True)
    return target


def _intact(jar: Path) -> bool:
    """Whether ``jar`` is a readable zip holding the screen's class."""
    try:
        with zipfile.ZipFile(jar) as z:
            return CLASS.replace(".", "/") + ".class" in z.namelist() and z.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


_EXTRACTED: dict[str, Path] = {}


def jar_path() -> Path:
    """The current jar on the driver's disk: found, else built, else extracted from a zip.

    Looked for next to the source (a checkout, or an install that ships it), then in
    :func:`pipelines.jars.jar_dir` (``.jars/`` or ``$ANONYMIZE_JARS``). Built next to
    the source, or, where that directory is not writable (an installed package), in
    the jar directory. From inside a ``--py-files`` zip it is extracted once per
    process into a temporary directory removed at exit.

    Returns:
        A path to the jar.

    Raises:
        MissingInputError: The jar is missing and cannot be built (no ``javac``, or a
            directory that cannot be written).
    """
    from pipelines.jars import jar_dir

    name = jar_name()
    packaged = _java_dir() / name
    if isinstance(packaged, Path):  # an installed or checked-out package
        for found in (packaged, jar_dir() / name):
            if found.is_file() and _intact(found):
                return found
        here = packaged.parent
        try:
            return build(here if os.access(here, os.W_OK) else jar_dir())
        except OSError as exc:
            raise MissingInputError(f"cannot write the PII screen jar: {exc}") from exc
    if name not in _EXTRACTED:
        if not packaged.is_file():
            raise MissingInputError(
                f"{name} is not in the package zip: rebuild it with `anonymize build-zip` "
                "on a machine with a JDK (it compiles the PII screen first)"
            )
        tmp = Path(tempfile.mkdtemp(prefix="anonymize-jar-"))
        atexit.register(shutil.rmtree, tmp, True)
        (tmp / name).write_bytes(packaged.read_bytes())
        _EXTRACTED[name] = tmp / name
    return _EXTRACTED[name]


def prune() -> list[Path]:
    """Remove jars of earlier sources next to the source (``make jars`` calls it).

    Not part of a build: a running job may still serve its jar to executors that join
    late, so only the set-up step, run deliberately, removes old ones.

    Returns:
        The removed paths.
    """
    here = _java_dir()
    if not isinstance(here, Path):
        return []
    current = jar_name()
    stale = [p for p in here.glob("anonymize-pii-*.jar") if p.name != current]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def main() -> int:
    """``python -m pipelines.pii.native``: build the jar if needed, prune old ones, print it.

    Returns:
        The exit code (1 with one line on stderr when it cannot be built).
    """
    import sys

    try:
        path = jar_path()
    except MissingInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    prune()
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
