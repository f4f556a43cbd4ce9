"""Sources and specs the end-to-end tests share."""

from __future__ import annotations

from pathlib import Path

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
