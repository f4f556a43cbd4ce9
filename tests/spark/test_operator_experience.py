"""What an operator meets: quiet default output, --log-level, no stray ./warehouse,
owner-only quarantine, staged files with the table's permissions, source names that
are not identifiers."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from pipelines.errors import QualityGateFailed, SpecError
from pipelines.runner import run_partition
from pipelines.spec import load_spec, spec_from_dict
from tests.conftest import TEST_KEY
from tests.spark.helpers import PLANTED, apply, clean_rows
from tests.specs import spec_data

ANONYMIZE = str(Path(sys.executable).with_name("anonymize"))
DDL = "uid string, note string, amount double, dt string"
COLUMNS = {"uid": {"kind": "hash", "length": 40}, "note": {"kind": "keep"}, "amount": {"kind": "keep"}}
JVM_NOISE = ("Using incubator modules", "resolves to a loopback address", "SPARK_LOCAL_IP")


def cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANON_TEST_KEY": TEST_KEY, "PYSPARK_PYTHON": sys.executable}
    env.pop("ANONYMIZE_WAREHOUSE", None)
    return subprocess.run([ANONYMIZE, *args, "--master", "local[1]", "--conf",
                           "spark.ui.enabled=false"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def test_default_output_is_the_product_alone_and_log_level_reaches_everything(spark, tmp_path):
    """A 3,000-row run wrote ~640 stderr lines, 211 of them GX INFO lines."""
    raw, sink = tmp_path / "raw", tmp_path / "anon"
    spark.createDataFrame(clean_rows("2026-11-25", 3000), DDL).write.partitionBy("dt") \
        .parquet(str(raw))  # fmt: skip
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(yaml.safe_dump(spec_data(COLUMNS, source={"path": str(raw)},
                                                  sink={"path": str(sink)})))  # fmt: skip
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    quiet = cli(["run", str(spec_file), "--partition", "2026-11-25"], cwd)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    lines = [x for x in quiet.stderr.splitlines() if x.strip() and not any(n in x for n in JVM_NOISE)]
    assert len(lines) <= 2 and lines[-1].startswith("published t 2026-11-25: 3000 rows"), lines
    assert not (cwd / "warehouse").exists()  # no stray warehouse, no Derby, no _quality here
    assert (sink / "_quality" / "data_docs" / "index.html").is_file()  # docs beside the sink
    loud = cli(["run", str(spec_file), "--partition", "2026-11-25", "--log-level", "INFO"], cwd)
    assert loud.returncode == 0, loud.stderr[-2000:]
    assert "pipelines.runner" in loud.stderr  # the product's INFO lines
    assert " INFO " in loud.stderr and "great_expectations" in loud.stderr  # Spark's, GX's
    bad = cli(["run", str(spec_file), "--partition", "2026-11-25", "--log-level", "LOUD"], cwd)
    assert bad.returncode == 2 and "--log-level" in bad.stderr


def test_quarantine_is_owner_only_and_can_live_elsewhere(spark, tables, tmp_path):
    write, make, _, sink = tables
    write(clean_rows("2026-11-25", 5) + [("u9", f"mail {PLANTED['email']}", 1.0, "2026-11-25")])
    spec = make()
    with pytest.raises(QualityGateFailed):
        run_partition(spec, "2026-11-25")
    base = sink / "_quarantine"
    [run] = list((base / "dt=2026-11-25").iterdir())
    for d in (base, base / "dt=2026-11-25", run):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    assert (run / "data").is_dir()
    elsewhere = spec.model_copy(update={"quality": spec.quality.model_copy(
        update={"quarantine_dir": str(tmp_path / "private")})})  # fmt: skip
    with pytest.raises(QualityGateFailed, match=str(tmp_path / "private" / "t")):
        run_partition(elsewhere, "2026-11-25")
    [moved] = list((tmp_path / "private" / "t" / "dt=2026-11-25").iterdir())
    assert stat.S_IMODE((tmp_path / "private" / "t").stat().st_mode) == 0o700
    from pipelines.ops import quarantine_list, quarantine_release

    assert [e["run_id"] for e in quarantine_list(elsewhere)] == [moved.name]
    quarantine_release(elsewhere, "2026-11-25", moved.name, "checked by hand")
    assert spark.read.parquet(str(sink / "dt=2026-11-25")).count() == 6


def test_staged_and_published_files_take_the_table_permissions(spark, tables):
    write, make, _, sink = tables
    write(clean_rows("2026-11-25", 5))
    spec = make()
    run_partition(spec, "2026-11-25")
    sink.chmod(0o750)  # the team restricts the table
    res = run_partition(spec, "2026-11-25")
    part = Path(res.published)
    assert stat.S_IMODE(part.stat().st_mode) == 0o750
    assert {stat.S_IMODE(f.stat().st_mode) for f in part.iterdir() if f.is_file()} == {0o640}


def test_source_columns_that_are_not_identifiers_are_read_by_source_name(spark, warehouse,
                                                                        key_env, tmp_path):  # fmt: skip
    name = f"n{uuid.uuid4().hex[:8]}"
    raw = warehouse / name / "raw"
    spark.createDataFrame([("u1", "Zoé", "Nice", 43.7, "2026-11-25")],
                          "uid string, `prénom` string, `home city` string, `geo.lat` double, dt string") \
        .write.partitionBy("dt").parquet(str(raw))  # fmt: skip
    columns = {"uid": {"kind": "hash"},
               "prenom": {"kind": "surrogate", "domain": "first_name", "source_name": "prénom"},
               "home_city": {"kind": "keep", "source_name": "home city"},
               "lat": {"kind": "generalize", "method": "bucket", "width": 1, "source_name": "geo.lat"}}  # fmt: skip
    spec = spec_from_dict(spec_data(columns, source={"path": str(raw)},
                                    sink={"path": str(warehouse / name / "anon")}))  # fmt: skip
    res = run_partition(spec, "2026-11-25")
    [row] = spark.read.parquet(res.published).collect()
    assert row.home_city == "Nice" and row.lat == "[43, 44)" and row.prenom != "Zoé"
    text = "\n".join(["version: 1", "name: t", "source: {path: a}", "sink: {path: b}",
                      "partition_column: dt", "privacy_unit: uid", "columns:",
                      "  uid: {kind: keep}", "  geo.lat: {kind: keep}"])  # fmt: skip
    f = tmp_path / "s.yaml"
    f.write_text(text)
    with pytest.raises(SpecError, match=r"s.yaml:9: columns.geo.lat: column keys must be plain "
                       r"identifiers.*geo_lat: \{source_name: 'geo.lat'"):  # fmt: skip
        load_spec(f)


def test_noise_keeps_a_decimal_columns_scale(spark, key_env):
    from decimal import Decimal

    rows = [("u1", Decimal("12.34")), ("u2", Decimal("0.05"))]
    got = apply(spark, rows, "uid string, a decimal(10,2)", {"a": {"kind": "noise", "max_abs": 1}})
    assert all(r.a.as_tuple().exponent == -2 for r in got)


def test_manifest_stays_strict_json(spark, tables):
    write, make, _, sink = tables
    write(clean_rows("2026-11-25", 3))
    spec = make()
    run_partition(spec, "2026-11-25")
    text = (sink / "dt=2026-11-25" / "_manifest.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


@pytest.mark.parametrize("drifted", ["int", "string", "bigint"])
def test_a_path_table_refuses_a_column_typed_unlike_its_other_partitions(spark, tables, drifted):
    """A source day whose all-null ``amount`` was written as int32 (or as text) would
    publish a partition that readers of the whole path table cannot merge with the
    double-typed ones: refused, naming the column, both types and the other partition;
    nothing of that day is published. With no other partition published, it publishes."""
    from pipelines.errors import PublishError

    write, make, raw, sink = tables
    write(clean_rows("2026-11-25", 5))
    spec = make()
    run_partition(spec, "2026-11-25")
    day = raw / "dt=2026-11-26"
    spark.createDataFrame([("u1", "order 1 shipped", None)], f"uid string, note string, amount {drifted}") \
        .write.parquet(str(day))  # fmt: skip
    with pytest.raises(PublishError) as caught:
        run_partition(spec, "2026-11-26")
    message = str(caught.value)
    assert f"amount as {drifted} (it holds double)" in message and "partition dt=2026-11-25" in message
    assert "\n" not in message and not (sink / "dt=2026-11-26").exists()
    shutil.rmtree(sink / "dt=2026-11-25")
    assert run_partition(spec, "2026-11-26").output_rows == 1
