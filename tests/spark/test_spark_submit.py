"""spark-submit jobs/anonymize.py with the package zip gives what an in-process run gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pipelines.packaging import build_zip
from pipelines.runner import run_partition
from tests.conftest import TEST_KEY

ROOT = Path(__file__).resolve().parents[2]


SPEC = """
version: 1
name: {name}
source: {{path: {raw}}}
sink: {{path: {sink}}}
partition_column: dt
privacy_unit: uid
keys: {{main: {{env: ANON_TEST_KEY}}}}
columns:
  uid: {{kind: hash, encoding: base32, length: 20}}
  email: {{kind: surrogate, domain: email}}
  amount: {{kind: keep}}
"""


def source_and_specs(spark, raw: Path, tmp_path: Path, name: str, rows: int, users: int,
                     files: int = 1) -> tuple[Path, Path]:  # fmt: skip
    """Write a one-partition source (2026-11-25); return specs publishing to
    ``tmp_path/local_out`` (in-process) and ``tmp_path/<name>_out`` (spark-submit)."""
    data = [(f"u{i % users}", f"p{i}@mail.com", float(i), "2026-11-25") for i in range(rows)]
    spark.createDataFrame(data, "uid string, email string, amount double, dt string") \
        .repartition(files).write.mode("overwrite").partitionBy("dt").parquet(str(raw))  # fmt: skip
    local, remote = tmp_path / "local.yaml", tmp_path / f"{name}.yaml"
    local.write_text(SPEC.format(name=name, raw=raw, sink=tmp_path / "local_out"))
    remote.write_text(SPEC.format(name=name, raw=raw, sink=tmp_path / f"{name}_out"))
    return local, remote


def test_zip_contains_package_and_data(tmp_path):
    z = build_zip(tmp_path)
    names = zipfile.ZipFile(z).namelist()
    assert "pipelines/runner.py" in names and "pipelines/desensitize/dictionaries/cities.txt" in names
    assert not any(n.endswith(".pyc") for n in names)


@pytest.mark.slow
def test_spark_submit_matches_in_process(spark, warehouse, key_env, tmp_path):
    local_spec, submit_spec = source_and_specs(spark, warehouse / "submit" / "raw", tmp_path,
                                               "submit", rows=25, users=5)  # fmt: skip
    run_partition(local_spec, "2026-11-25")

    z = build_zip(tmp_path / "dist")
    spark_submit = Path(sys.executable).with_name("spark-submit")
    env = {**os.environ, "ANON_TEST_KEY": TEST_KEY, "PYSPARK_PYTHON": sys.executable}
    proc = subprocess.run(
        [str(spark_submit), "--master", "local[2]", "--conf", "spark.ui.enabled=false",
         "--py-files", str(z), str(ROOT / "jobs" / "anonymize.py"), str(submit_spec),
         "--partition", "2026-11-25", "--warehouse", str(tmp_path / "wh"), "--json"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["output_rows"] == 25 and summary["status"] == "published"
    a = sorted(map(tuple, spark.read.parquet(str(tmp_path / "local_out")).collect()))
    b = sorted(map(tuple, spark.read.parquet(str(tmp_path / "submit_out")).collect()))
    assert a == b and len(a) == 25


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
