"""Fixtures the Spark tests share."""

from __future__ import annotations

import uuid

import pytest

from pipelines.spec import spec_from_dict
from tests.spark.helpers import GATE_COLUMNS, GATE_DDL
from tests.specs import spec_data


@pytest.fixture()
def tables(spark, warehouse, key_env):
    """A fresh raw path table for the gate tests: (write rows, make spec, raw root, sink root)."""
    name = f"g{uuid.uuid4().hex[:8]}"
    raw = warehouse / name / "raw"

    def write(rows):
        spark.createDataFrame(rows, GATE_DDL).write.mode("append").partitionBy("dt").parquet(
            str(raw)
        )

    def spec(**over):
        src, snk = {"path": f"{name}/raw"}, {"path": f"{name}/anon"}
        return spec_from_dict(spec_data(GATE_COLUMNS, source=src, sink=snk, **over))

    return write, spec, raw, warehouse / name / "anon"


@pytest.fixture(scope="session")
def demo_run(spark, tmp_path_factory):
    """One run of the demo (1,500 rows over 3 days) that several tests inspect.

    Returns:
        ``run_demo``'s summary.
    """
    from rich.console import Console

    from pipelines.demo import run_demo

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ANONYMIZE_DEMO_KEY", raising=False)
        out = tmp_path_factory.mktemp("demo") / "demo"
        return run_demo(rows=1500, days=3, out=out, console=Console(stderr=True))
