"""Table-format jars: pinned and checked at set-up, shipped beside the package zip.

What the formats do with them (with the pinned Spark) is tested by the run lifecycle
in tests/spark/test_backends.py, in the shared session and in processes started with
the jars (the SIGKILL tests), and by the standalone-cluster test with ``--jars``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import jars
from pipelines.errors import MissingInputError


def _fake(tmp_path: Path, content: bytes, pinned: bytes) -> tuple[jars.Jar, str]:
    """A one-artifact Maven repository under tmp_path holding ``content``."""
    jar = jars.Jar("org.example", "thing", "1.0", hashlib.sha256(pinned).hexdigest(), "iceberg")
    path = tmp_path / "repo" / "org" / "example" / "thing" / "1.0" / jar.filename
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    return jar, (tmp_path / "repo").as_uri()


def test_pinned_jars_are_present_and_match_their_checksums():
    paths = jars.classpath()
    assert [p.name for p in paths] == [j.filename for j in jars.JARS]


def test_a_download_with_another_checksum_is_refused_and_nothing_kept(tmp_path):
    jar, repo = _fake(tmp_path, b"tampered", pinned=b"genuine")
    dest = tmp_path / "jars"
    with pytest.raises(jars.JarChecksumError, match=r"thing-1\.0\.jar: SHA-256 .* is not the pinned"):
        jars.fetch(dest, repo, [jar])
    assert list(dest.iterdir()) == []


def test_an_intact_jar_is_kept_and_not_fetched_again(tmp_path):
    jar, repo = _fake(tmp_path, b"genuine", pinned=b"genuine")
    dest = tmp_path / "jars"
    assert jars.fetch(dest, repo, [jar]) == [dest / "thing-1.0.jar"]
    # Present and intact: the (now unreachable) repository is not asked again.
    assert jars.fetch(dest, (tmp_path / "gone").as_uri(), [jar]) == [dest / "thing-1.0.jar"]


def test_a_missing_jar_is_one_line_naming_it_and_make_jars(tmp_path):
    with pytest.raises(MissingInputError) as err:
        jars.classpath(["delta"], tmp_path)
    message = str(err.value)
    assert "\n" not in message and "delta-spark_4.1_2.13-4.4.0.jar" in message
    assert "make jars" in message


def test_a_tampered_jar_on_the_classpath_is_refused(tmp_path):
    (tmp_path / "delta-storage-4.4.0.jar").write_bytes(b"x")
    for jar in jars.JARS:
        if jar.filename != "delta-storage-4.4.0.jar" and jar.table_format == "delta":
            os.symlink(jars.jar_dir() / jar.filename, tmp_path / jar.filename)
    with pytest.raises(jars.JarChecksumError, match="delta-storage-4.4.0.jar"):
        jars.classpath(["delta"], tmp_path)


def test_build_zip_ships_the_formats_jars_and_prints_the_submit_options(tmp_path):
    """`anonymize build-zip --format iceberg --format delta`: the zip, the pinned jars
    copied beside it (same bytes), and a line of spark-submit options naming the copies."""
    cli = Path(sys.executable).with_name("anonymize")
    done = subprocess.run([str(cli), "build-zip", "--out", str(tmp_path), "--format", "iceberg",
                           "--format", "delta"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    zipped, options = done.stdout.strip().splitlines()
    assert Path(zipped).is_file() and Path(zipped).parent == tmp_path
    shipped = sorted((tmp_path / "jars").iterdir())
    assert [p.name for p in shipped] == sorted(j.filename for j in jars.JARS)
    for path in shipped:
        pinned = next(j for j in jars.JARS if j.filename == path.name)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == pinned.sha256
    words = options.split()
    assert words[0] == "--jars" and sorted(words[1].split(",")) == [str(p) for p in shipped]
    assert f"spark.sql.catalog.spark_catalog={jars.DELTA_CATALOG}" in words
    bad = subprocess.run([str(cli), "build-zip", "--out", str(tmp_path), "--format", "hudi"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 3 and "--format: unknown hudi" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1

