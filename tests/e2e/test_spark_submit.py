"""The spark-submit job and its zip: contents and exit codes. spark-submit runs that
publish are in ``test_cluster.py`` (standalone cluster against local mode, row for
row) and ``test_airflow.py`` (every DAG task is one)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pipelines.packaging import build_zip
from pipelines.pii import native

ROOT = Path(__file__).resolve().parents[2]


def test_zip_contains_package_and_data(tmp_path):
    z = build_zip(tmp_path)
    names = zipfile.ZipFile(z).namelist()
    assert "pipelines/runner.py" in names and "pipelines/desensitize/dictionaries/cities.txt" in names
    assert not any(n.endswith(".pyc") for n in names)
    # The PII screen: its source (the jar's name is its digest) and the current jar only.
    jars = [n for n in names if n.endswith(".jar")]
    assert jars == [f"pipelines/pii/java/{native.jar_name()}"]
    assert "pipelines/pii/java/anonymize/pii/ScreenMask.java" in names


@pytest.mark.slow
def test_spark_submit_exit_code_for_bad_spec(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\n")
    spark_submit = Path(sys.executable).with_name("spark-submit")
    proc = subprocess.run(
        [str(spark_submit), "--master", "local[1]", str(ROOT / "jobs" / "anonymize.py"), str(bad),
         "--partition", "2026-11-25"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    # spark-submit's PythonRunner merges the Python driver's stderr into stdout.
    assert "source: required field is missing" in proc.stdout + proc.stderr
