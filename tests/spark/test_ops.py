"""Operations: partition status, quarantine list / release / drop, rerun."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.errors import QualityGateFailed
from pipelines.runner import run_partition
from tests.spark.helpers import PLANTED, clean_rows


def test_status_and_quarantine_release_and_drop(spark, tables, tmp_path, warehouse):
    write, make, raw, sink = tables
    write(clean_rows("2026-11-10", 8))
    write(clean_rows("2026-11-11", 7) + [("u9", f"mail {PLANTED['email']}", 1.0, "2026-11-11")])
    write(clean_rows("2026-11-12", 5))
    spec = make()
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_defaults=True)))
    first = run_partition(spec, "2026-11-10")
    with pytest.raises(QualityGateFailed):
        run_partition(spec, "2026-11-11")
    runner = CliRunner()
    wh = ["--warehouse", str(warehouse)]
    res = runner.invoke(app, ["status", str(spec_file), *wh, "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["partition"]: r for r in json.loads(res.stdout.strip().splitlines()[-1])[str(spec_file)]}
    assert rows["2026-11-10"]["state"] == "published" and rows["2026-11-10"]["run_id"] == first.run_id
    assert rows["2026-11-11"]["state"] == "quarantined"
    assert rows["2026-11-11"]["failed"] == ["output.pii.note.email"]
    assert rows["2026-11-12"]["state"] == "missing"
    assert PLANTED["email"] not in res.output
    # A run staged by an orchestrated desensitize step that never went on shows up;
    # the published and quarantined rows list no staged run.
    staged = run_partition(spec, "2026-11-12", step="desensitize", run_key="manual__abandoned")
    rows = {r["partition"]: r for r in json.loads(runner.invoke(
        app, ["status", str(spec_file), *wh, "--json"]).stdout.strip().splitlines()[-1])[str(spec_file)]}  # fmt: skip
    assert rows["2026-11-12"]["state"] == "staged" and rows["2026-11-12"]["staged"] == [staged.run_id]
    assert "staged" not in rows["2026-11-10"] and "staged" not in rows["2026-11-11"]
    res = runner.invoke(app, ["quarantine", "list", str(spec_file), *wh, "--json"])
    [entry] = json.loads(res.stdout.strip().splitlines()[-1])["quarantine"]
    assert entry["partition"] == "2026-11-11" and entry["has_data"]
    # Releasing needs a reason, and records the override in the manifest.
    res = runner.invoke(app, ["quarantine", "release", str(spec_file), "--partition", "2026-11-11",
                              "--run-id", entry["run_id"], "--reason", " ", *wh])  # fmt: skip
    assert res.exit_code == 3 and "--reason" in res.output
    res = runner.invoke(app, ["quarantine", "release", str(spec_file), "--partition", "2026-11-11",
                              "--run-id", entry["run_id"], "--reason", "test address", *wh])  # fmt: skip
    assert res.exit_code == 0, res.output
    manifest = json.loads((sink / "dt=2026-11-11" / "_manifest.json").read_text())
    assert manifest["status"] == "released_from_quarantine"
    assert manifest["override"]["reason"] == "test address" and manifest["input_rows"] == 8
    assert spark.read.parquet(str(sink / "dt=2026-11-11")).count() == 8
    # The source still holds the leak: a rerun quarantines again; drop removes that.
    res = runner.invoke(app, ["rerun", str(spec_file), "--partition", "2026-11-11", *wh])
    assert res.exit_code == 5 and "was published" in res.output
    entries = json.loads(runner.invoke(app, ["quarantine", "list", str(spec_file), *wh, "--json"])
                         .stdout.strip().splitlines()[-1])["quarantine"]  # fmt: skip
    fresh = [e for e in entries if not e["released"]]
    assert len(fresh) == 1
    res = runner.invoke(app, ["quarantine", "drop", str(spec_file), "--partition", "2026-11-11",
                              "--run-id", fresh[0]["run_id"], *wh])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert not (sink / "_quarantine" / "dt=2026-11-11" / fresh[0]["run_id"]).exists()
    left = json.loads(runner.invoke(app, ["quarantine", "list", str(spec_file), *wh, "--json"])
                      .stdout.strip().splitlines()[-1])["quarantine"]  # fmt: skip
    assert [e["run_id"] for e in left] == [entry["run_id"]]
    res = runner.invoke(app, ["quarantine", "drop", str(spec_file), "--partition", "2026-11-11",
                              "--run-id", "20200101T000000Z-00000000", *wh])  # fmt: skip
    assert res.exit_code == 4
    # A run id is a path component: anything else is refused before any file is touched.
    for bad in ("nope", "../..", f"{entry['run_id']}/../..", ""):
        res = runner.invoke(app, ["quarantine", "drop", str(spec_file), "--partition",
                                  "2026-11-11", "--run-id", bad, *wh])  # fmt: skip
        assert res.exit_code == 3 and "is not a run id" in res.output, bad
    assert (sink / "_quarantine" / "dt=2026-11-11" / entry["run_id"]).is_dir()
