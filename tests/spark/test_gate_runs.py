"""Gates inside `run`: quarantine on failure, published data untouched, results in the
manifest and Data Docs, and no planted raw value anywhere a gate writes."""

from __future__ import annotations

import json
import logging

import pytest

from pipelines.checks import validate_partition
from pipelines.errors import QualityGateFailed, SpecError
from pipelines.runner import run_partition
from tests.conftest import written_besides_leases
from tests.spark.helpers import PLANTED, clean_rows, digest_tree


def test_pii_leak_is_quarantined_and_published_partition_untouched(spark, tables, caplog):
    caplog.set_level(logging.INFO)
    write, make, raw, sink = tables
    write(clean_rows("2026-11-20", 20))
    spec = make()
    first = run_partition(spec, "2026-11-20")
    gates = first.record.quality
    assert gates.input.passed and gates.output.passed
    assert {c.id for c in gates.output.checks} >= {"output.pii.note.email", "output.row_count"}
    docs = sink / "_quality" / "data_docs"  # a path sink keeps its Data Docs beside it
    assert gates.data_docs == str(docs / "index.html") and (docs / "index.html").is_file()
    pages = list((docs / "validations").rglob("dt=2026-11-20.html"))
    assert pages, "no Data Docs page for the published partition"
    published = digest_tree(sink / "dt=2026-11-20")

    # The source partition is rewritten with PII planted in the free-text column.
    leaky = clean_rows("2026-11-20", 20)
    for i, value in enumerate(PLANTED.values()):
        leaky[i] = (leaky[i][0], f"customer says: {value} call back", 1.0, "2026-11-20")
    (raw / "dt=2026-11-20").rename(raw / "_old")
    write(leaky)
    with pytest.raises(QualityGateFailed) as err:
        run_partition(spec, "2026-11-20")
    message = str(err.value)
    assert "output.pii.note.email" in message
    for check in ("output.pii.note.email", "output.pii.note.credit_card", "output.pii.note.phone"):
        assert f"{check} (observed 1)" in message
    assert digest_tree(sink / "dt=2026-11-20") == published
    assert not (sink / "_staging").exists() or not any((sink / "_staging").iterdir())

    runs = list((sink / "_quarantine" / "dt=2026-11-20").iterdir())
    assert len(runs) == 1
    note = json.loads((runs[0] / "gate.json").read_text())
    assert note["failed_stage"] == "output" and not note["gates"]["output"]["passed"]
    assert note["gates"]["input"]["passed"]
    regex = next(c for c in note["gates"]["input"]["checks"] if c["id"] == "input.regex.note")
    assert regex["observed"]["unexpected_count"] == 3  # the planted rows, counted not quoted
    assert spark.read.parquet(str(runs[0] / "data")).count() == 20  # the staged data, kept aside
    assert not list((docs / "validations").rglob(f"*{runs[0].name}*"))  # failed: not in Data Docs

    everything = caplog.text + message + (runs[0] / "gate.json").read_text()
    everything += "".join(p.read_text() for p in sink.rglob("*.json"))
    everything += "".join(p.read_text(errors="replace") for p in docs.rglob("*.html"))
    everything += "".join(p.read_text() for p in (sink / "_quality" / "store").rglob("*.json"))
    for value in PLANTED.values():
        assert value not in everything
        assert value.replace(" ", "") not in everything


def test_volume_band_reads_manifest_history(spark, tables):
    write, make, _, sink = tables
    for day, n in (("2026-11-01", 20), ("2026-11-02", 22), ("2026-11-03", 18), ("2026-11-04", 200)):
        write(clean_rows(day, n))
    spec = make(quality={"volume": {"window": 3, "tolerance": 0.5, "min_history": 2}})
    for day in ("2026-11-01", "2026-11-02", "2026-11-03"):
        run_partition(spec, day)
    res = run_partition(spec, "2026-11-04")  # 200 rows vs a 10..30 band: a warning, published
    assert res.record.quality.warnings == ["input.volume"]
    volume = next(c for c in res.record.quality.input.checks if c.id == "input.volume")
    assert volume.description == "rows within 10..30 (recent published partitions)"
    assert volume.observed == {"observed_value": 200} and volume.severity == "warning"

    strict = make(quality={"volume": {"window": 3, "tolerance": 0.5, "min_history": 2},
                           "escalate": ["input.volume"]})  # fmt: skip
    before = digest_tree(sink / "dt=2026-11-04")
    with pytest.raises(QualityGateFailed, match=r"input gate failed: input.volume \(observed 200\)"):
        run_partition(strict, "2026-11-04")
    assert digest_tree(sink / "dt=2026-11-04") == before
    quarantined = list((sink / "_quarantine" / "dt=2026-11-04").iterdir())
    assert [p.name for p in quarantined[0].iterdir()] == ["gate.json"]  # nothing was staged


def test_escalating_an_unknown_check_is_a_spec_error(spark, tables):
    write, make, _, sink = tables
    write(clean_rows("2026-11-05", 5))
    with pytest.raises(SpecError, match="quality.escalate: 'input.volum' match no check"):
        run_partition(make(quality={"escalate": ["input.volum"]}), "2026-11-05")
    assert written_besides_leases(sink) == []


def test_validate_on_demand_checks_published_output_and_raw_input(spark, tables):
    write, make, _, _ = tables
    write(clean_rows("2026-11-06", 8))
    spec = make()
    run_partition(spec, "2026-11-06")
    out = validate_partition(spec, "2026-11-06", "output")
    assert out.passed and out.stage == "output"
    assert next(c for c in out.checks if c.id == "output.row_count").observed == {
        "observed_value": 8
    }
    inp = validate_partition(spec, "2026-11-06", "input")
    assert inp.passed and inp.stage == "input"


def test_cli_validate_exits_5_naming_the_check_and_quality_docs_prints_the_site(
    spark, tables, tmp_path
):
    import yaml
    from typer.testing import CliRunner

    from pipelines.cli import app

    write, make, raw, sink = tables
    write(clean_rows("2026-11-07", 6) + [(None, "order 9 shipped", 1.0, "2026-11-08")])
    spec_file = tmp_path / "spec.yaml"
    data = make().model_dump(mode="json", exclude_defaults=True)
    data["sink"]["path"] = str(sink)  # absolute: the CLI's warehouse is not the session's
    spec_file.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    res = runner.invoke(app, ["validate", str(spec_file), "--partition", "2026-11-08", "--stage", "input", "--json"])
    assert res.exit_code == 5, res.output
    assert "input.not_null.uid" in res.output and "FAIL" in res.output
    gate = json.loads(res.stdout.strip().splitlines()[-1])
    assert gate["passed"] is False
    res = runner.invoke(app, ["run", str(spec_file), "--partition", "2026-11-08"])
    assert res.exit_code == 5, res.output
    assert "input gate failed: input.not_null.uid (1 of 1 values)" in res.output
    assert "_quarantine" in res.output and not (sink / "dt=2026-11-08").exists()
    res = runner.invoke(app, ["validate", str(spec_file), "--partition", "2026-11-07", "--stage", "input"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["validate", str(spec_file), "--partition", "2026-11-07"])
    assert res.exit_code == 4 and "is not published" in res.output
    run_partition(make(), "2026-11-07")
    res = runner.invoke(app, ["validate", str(spec_file), "--partition", "2026-11-07"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["quality", "docs", str(spec_file)])  # beside the path sink
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(sink / "_quality/data_docs/index.html")
    res = runner.invoke(app, ["quality", "docs", "--warehouse", str(tmp_path / "nowhere")])
    assert res.exit_code == 4 and "no Data Docs yet" in res.output


def test_contract_of_a_published_partition_comes_from_the_spec_and_its_manifest(spark, key_env):
    """On-demand output validation has no source: names from the spec, types as published."""
    from pipelines.plan import compile_plan
    from pipelines.spec import spec_from_dict
    from tests.specs import spec_data

    columns = {"uid": {"kind": "hash"}, "birth": {"kind": "generalize", "method": "age", "rename": "age"},
               "amount": {"kind": "keep"}}  # fmt: skip
    plan = compile_plan(spec_from_dict(spec_data(columns)), "2026-11-25", resolve=False)
    contract = plan.bind_published({"uid": "string", "age": "int"}).bound  # amount: added since
    assert contract.names == ["uid", "age", "amount"]  # spec order
    types = {c.name: c.released.simpleString() for c in contract.columns}
    assert types == {"uid": "string", "age": "int", "amount": "void"}  # the gate reports it missing
    assert contract.columns[1].domain.high == 150
