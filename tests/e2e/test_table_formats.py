"""Table-format jars: pinned and checked at set-up, and working with the pinned Spark.

The spark-submit test ships the jars with ``--jars``, as cluster runs will, and
commits with each format what a publish needs: one partition replaced (others kept),
an empty partition replacing a full one, and the run's id in the commit.
"""

from __future__ import annotations

import hashlib
import json
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


JOB = '''
import json, sys
from pyspark.sql import SparkSession, functions as F
work = sys.argv[1]
spark = (SparkSession.builder
    .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
    .config("spark.sql.catalog.ice", "org.apache.iceberg.spark.SparkCatalog")
    .config("spark.sql.catalog.ice.type", "hadoop")
    .config("spark.sql.catalog.ice.warehouse", work + "/iceberg")
    .config("spark.sql.warehouse.dir", work + "/warehouse")
    .getOrCreate())
schema = "v int, dt string"
first = spark.createDataFrame([(1, "2026-11-01"), (2, "2026-11-02")], schema)
again = spark.createDataFrame([(5, "2026-11-01")], schema)
empty = spark.createDataFrame([], schema)
rows = lambda df: sorted((r.v, r.dt) for r in df.collect())
out = {"spark": spark.version}

first.writeTo("ice.db.t").partitionedBy(F.col("dt")).create()
again.writeTo("ice.db.t").option("snapshot-property.anonymize.run-id", "run-1") \\
    .overwrite(F.col("dt") == "2026-11-01")
out["iceberg_replaced"] = rows(spark.table("ice.db.t"))
out["iceberg_run_id"] = spark.sql(
    "select summary['anonymize.run-id'] as r from ice.db.t.snapshots order by committed_at desc limit 1"
).first().r
empty.writeTo("ice.db.t").overwrite(F.col("dt") == "2026-11-02")
out["iceberg_emptied"] = rows(spark.table("ice.db.t"))

path = work + "/delta"
first.write.format("delta").partitionBy("dt").save(path)
again.write.format("delta").mode("overwrite").option("replaceWhere", "dt = '2026-11-01'") \\
    .option("userMetadata", "run-1").save(path)
out["delta_replaced"] = rows(spark.read.format("delta").load(path))
out["delta_run_id"] = spark.sql(f"describe history delta.`{path}` limit 1").first().userMetadata
empty.write.format("delta").mode("overwrite").option("replaceWhere", "dt = '2026-11-02'").save(path)
out["delta_emptied"] = rows(spark.read.format("delta").load(path))
print("RESULT " + json.dumps(out))
'''


@pytest.mark.slow
def test_iceberg_and_delta_replace_one_partition_with_the_pinned_spark(tmp_path):
    """Both formats, their jars shipped with ``--jars``: partition replace, empty replace, run id."""
    job = tmp_path / "job.py"
    job.write_text(JOB)
    conf = jars.spark_conf()
    spark_submit = Path(sys.executable).with_name("spark-submit")
    proc = subprocess.run(
        [str(spark_submit), "--master", "local[1]", "--jars", conf["spark.jars"],
         "--conf", f"spark.sql.extensions={conf['spark.sql.extensions']}",
         "--conf", "spark.ui.enabled=false", str(job), str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )  # fmt: skip
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    assert out["spark"] == __import__("pyspark").__version__  # the pinned Spark
    for fmt in ("iceberg", "delta"):
        assert out[f"{fmt}_replaced"] == [[2, "2026-11-02"], [5, "2026-11-01"]], fmt
        assert out[f"{fmt}_emptied"] == [[5, "2026-11-01"]], fmt
        assert out[f"{fmt}_run_id"] == "run-1", fmt
