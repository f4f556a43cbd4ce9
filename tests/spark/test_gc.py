"""What killed runs leave behind: status shows every staging directory, gc removes the
abandoned ones (and old trash and run records), never a live run's or published data."""

from __future__ import annotations

import json
import os
import time
import uuid

import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.partition import Partition
from pipelines.runner import run_partition
from pipelines.spec import spec_from_dict
from pipelines.storage.lease import sink_lease
from tests.spark.helpers import digest_tree
from tests.specs import spec_data

DDL = "uid string, email string, amount double, dt string"
COLUMNS = {"uid": {"kind": "hash", "length": 40}, "email": {"kind": "drop"}, "amount": {"kind": "keep"}}


def aged(path, days: float) -> None:
    t = time.time() - days * 86400
    for p in [path, *path.rglob("*")]:
        os.utime(p, (t, t))


def test_status_lists_every_staging_directory_and_gc_removes_the_abandoned(spark, warehouse,
                                                                          key_env, tmp_path):  # fmt: skip
    name = f"g{uuid.uuid4().hex[:8]}"
    raw, sink = warehouse / name / "raw", warehouse / name / "anon"
    rows = [(f"u{i}", "e", float(i), d) for d in ("2026-11-24", "2026-11-25") for i in range(8)]
    spark.createDataFrame(rows, DDL).write.partitionBy("dt").parquet(str(raw))
    spec = spec_from_dict(spec_data(COLUMNS, source={"path": str(raw)}, sink={"path": str(sink)}))
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_defaults=True)))
    run_partition(spec, "2026-11-25")
    run_partition(spec, "2026-11-25")  # a previous version in _trash
    waiting = run_partition(spec, "2026-11-25", step="desensitize", run_key="manual__k")
    # What killed runs leave: two with only Spark's _temporary, one staged with its manifest.
    left = []
    for i, files in enumerate((["_temporary/0/_temporary/part"], ["_temporary/0/x"],
                               ["part-0.parquet", "_manifest.json"])):  # fmt: skip
        d = sink / "_staging" / f"20261125T00000{i}Z-dead000{i}" / "dt=2026-11-25"
        for f in files:
            (d / f).parent.mkdir(parents=True, exist_ok=True)
            (d / f).write_text("x")
        left.append(d.parent.name)
    published = digest_tree(sink / "dt=2026-11-25")
    runner = CliRunner()
    wh = ["--warehouse", str(warehouse)]
    status = json.loads(runner.invoke(app, ["status", str(spec_file), *wh, "--json"])
                        .stdout.strip().splitlines()[-1])[str(spec_file)]  # fmt: skip
    [row] = [r for r in status if r["partition"] == "2026-11-25"]
    assert row["state"] == "published" and sorted(row["staged"]) == sorted([*left, waiting.run_id])

    # gc: nothing is old enough yet; with everything aged, the abandoned go.
    res = runner.invoke(app, ["gc", str(spec_file), *wh, "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout.strip().splitlines()[-1])["removed"] == []
    for d in (sink / "_staging", sink / "_trash", sink / "_runs"):
        aged(d, 10)
    # A live run of the other partition: its staging must survive.
    other = sink / "_staging" / "20261124T000000Z-live0000" / "dt=2026-11-24"
    (other / "_temporary").mkdir(parents=True)
    aged(other.parent, 10)
    with sink_lease(spec.sink, Partition.parse("dt", "2026-11-24"), str(warehouse), "live"):
        res = runner.invoke(app, ["gc", str(spec_file), *wh, "--dry-run", "--json"])
        would = json.loads(res.stdout.strip().splitlines()[-1])["removed"]
        assert len(would) == 4 + 1 + 1  # 4 staging dirs, 1 trash version, 1 run key record
        assert all(os.path.exists(p) for p in would)  # a dry run removes nothing
        res = runner.invoke(app, ["gc", str(spec_file), *wh])
        assert res.exit_code == 0, res.output
    assert not any((sink / "_staging").glob("*/dt=2026-11-25"))
    assert not any((sink / "_trash").rglob("*")) and not any((sink / "_runs").rglob("*.json"))
    assert other.is_dir()  # the live run's staging is kept
    assert digest_tree(sink / "dt=2026-11-25") == published  # published data untouched
    res = runner.invoke(app, ["gc", str(spec_file), *wh, "--older-than", "a week"])
    assert res.exit_code == 3 and "--older-than: 'a week' is not a duration" in res.output
