"""The anonymize CLI in-process: exit codes, JSON last line, spec commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_spec_validate_ok_and_bad(tmp_path):
    res = runner.invoke(app, ["spec", "validate", str(ROOT / "conf" / "pipelines" / "demo.yaml")])
    assert res.exit_code == 0 and "ok" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "conf" / "pipelines" / "demo.yaml").read_text().replace("kind: hash", "kind: hsah"))
    res = runner.invoke(app, ["spec", "validate", str(bad)])
    assert res.exit_code == 3
    assert "columns.customer_id.kind: unknown 'hsah'; did you mean 'hash'?" in res.output


def test_spec_schema_is_json():
    res = runner.invoke(app, ["spec", "schema"])
    assert res.exit_code == 0
    assert json.loads(res.output)["title"] == "PipelineSpec"


def test_run_exit_codes(spark, tmp_path, monkeypatch):
    # The demo spec reading a table no test creates (the demo's own may exist by now).
    spec = tmp_path / "demo.yaml"
    spec.write_text((ROOT / "conf" / "pipelines" / "demo.yaml").read_text()
                    .replace("table: raw.customer_events", "table: raw.never_created"))  # fmt: skip
    monkeypatch.delenv("ANONYMIZE_DEMO_KEY", raising=False)
    res = runner.invoke(app, ["run", str(spec), "--partition", "2026-11-01"])
    assert res.exit_code == 3 and "ANONYMIZE_DEMO_KEY is not set" in res.output
    monkeypatch.setenv("ANONYMIZE_DEMO_KEY", "k" * 32)
    res = runner.invoke(app, ["run", str(spec), "--partition", "2026-11-01"])
    assert res.exit_code == 4 and "raw.never_created does not exist" in res.output
    res = runner.invoke(app, ["run", str(spec), "--partition", "2026-11-01", "--conf", "novalue"])
    assert res.exit_code == 2


@pytest.mark.slow
def test_spark_errors_are_reported_without_their_message(monkeypatch):
    """A Spark error message may quote a cell value: only class and condition are printed."""
    import pipelines.runner

    def boom(*args, **kwargs):
        raise RuntimeError("value 'jane.doe@mail.com' cannot be cast")

    monkeypatch.setattr(pipelines.runner, "run_partition", boom)
    res = runner.invoke(app, ["run", str(ROOT / "conf" / "pipelines" / "demo.yaml"), "--partition", "2026-11-01"])
    assert res.exit_code == 1
    assert "run failed: RuntimeError" in res.output and "jane.doe" not in res.output
