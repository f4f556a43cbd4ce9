"""An Iceberg table on an S3-compatible object store, where no rename is atomic.

moto's S3 server runs in this process on 127.0.0.1; the table's data and metadata go
through Iceberg's own ``S3FileIO`` (the ``iceberg-aws-bundle`` jar, not Hadoop's
S3A) and its catalog is a JDBC catalog over SQLite. The run's control data stays
local (``<warehouse>/_anonymize/…``). Publishing, rerunning, restoring and reading
all work with nothing renamed on the store.
"""

from __future__ import annotations

import uuid

import pytest

from pipelines.partition import Partition
from pipelines.runner import run_partition
from pipelines.session import session_warehouse
from pipelines.spec import spec_from_dict
from pipelines.storage.base import open_table
from tests.specs import spec_data

DDL = "uid string, email string, amount double, dt string"
COLUMNS = {"uid": {"kind": "hash", "length": 16}, "email": {"kind": "surrogate", "domain": "email"},
           "amount": {"kind": "keep"}}  # fmt: skip
BUCKET = "warehouse"


@pytest.fixture(scope="module")
def s3(spark):
    """moto's S3 server on loopback, a bucket, and the AWS SDK pointed at it."""
    import boto3  # with moto (pyproject: dev)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
    client.create_bucket(Bucket=BUCKET)
    # The AWS SDK's default credential chain reads these JVM system properties (a
    # deployment uses its environment, profile or instance role: no secret in a spec).
    system = spark._jvm.java.lang.System  # noqa: SLF001
    system.setProperty("aws.accessKeyId", "test")
    system.setProperty("aws.secretAccessKey", "test")
    system.setProperty("aws.region", "us-east-1")
    yield endpoint, client
    server.stop()


def test_iceberg_on_an_object_store_publishes_reruns_and_restores(spark, warehouse, key_env, s3, tmp_path):
    from pipelines.ops import restore

    endpoint, client = s3
    name = f"o{uuid.uuid4().hex[:8]}"
    raw = warehouse / name / "raw"
    rows = [(f"u{i % 5}", f"p{i}@mail.com", float(i), d) for d in ("2026-11-24", "2026-11-25")
            for i in range(20 if d.endswith("25") else 8)]  # fmt: skip
    spark.createDataFrame(rows, DDL).write.partitionBy("dt").parquet(str(raw))
    catalog = {
        "type": "jdbc", "name": f"s3_{name}", "uri": f"jdbc:sqlite:{tmp_path / 'catalog.sqlite'}",
        "warehouse": f"s3://{BUCKET}/{name}",
        "properties": {"io-impl": "org.apache.iceberg.aws.s3.S3FileIO", "s3.endpoint": endpoint,
                       "s3.path-style-access": "true", "client.region": "us-east-1"},
    }  # fmt: skip
    sink = {"format": "iceberg", "table": f"anon.{name}", "catalog": catalog}
    spec = spec_from_dict(spec_data(COLUMNS, source={"path": str(raw)}, sink=sink))
    first = run_partition(spec, "2026-11-25")
    run_partition(spec, "2026-11-24")
    second = run_partition(spec, "2026-11-25")
    table = spark.table(f"s3_{name}.anon.{name}")
    assert {r.dt: r.n for r in table.groupBy("dt").count().withColumnRenamed("count", "n").collect()} \
        == {"2026-11-24": 8, "2026-11-25": 20}  # fmt: skip
    # Data and metadata are objects in the bucket; nothing of the table is local.
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=name)["Contents"]]
    assert any(k.endswith(".parquet") and "/data/" in k for k in keys)
    assert any(k.endswith(".metadata.json") for k in keys)
    sink_table = open_table(spec.sink, "dt", session_warehouse(spark), spark)
    assert not (sink_table.control_root / "data").exists()
    assert str(sink_table.control_root).startswith(str(session_warehouse(spark)))
    restore(spec, "2026-11-25", first.run_id)
    manifest = sink_table.read_manifest(Partition.parse("dt", "2026-11-25"))
    assert manifest.restored_from == first.run_id and manifest.run_id not in (first.run_id, second.run_id)
