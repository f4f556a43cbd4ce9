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
    """One run of the demo (``anonymize demo --rows 1500 --days 3 --json``, in process)
    that several tests inspect.

    Returns:
        The summary: the JSON object on the command's last stdout line.
    """
    import json

    from typer.testing import CliRunner

    from pipelines.cli import app

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ANONYMIZE_DEMO_KEY", raising=False)
        out = tmp_path_factory.mktemp("demo") / "demo"
        res = CliRunner().invoke(app, ["demo", "--rows", "1500", "--days", "3", "--out",
                                       str(out), "--json"])  # fmt: skip
        assert res.exit_code == 0, res.output[-3000:]
        return json.loads(res.stdout.strip().splitlines()[-1])
