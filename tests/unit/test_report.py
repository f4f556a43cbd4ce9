"""The report command's refusals, without Spark (pages themselves: tests/spark/test_demo.py)."""

from __future__ import annotations

from pathlib import Path

from pipelines.cli import main

DEMO = str(Path(__file__).resolve().parents[2] / "conf" / "pipelines" / "demo.yaml")


def test_report_of_a_table_with_nothing_published_exits_4_in_one_line(tmp_path, capsys):
    assert main(["report", DEMO, "--warehouse", str(tmp_path)]) == 4
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "anon.customer_events has no published partition" in err
    assert not (tmp_path / "_quality").exists()  # nothing written
    assert not (tmp_path / "_dp").exists()  # no ledger created to be read


def test_report_of_an_invalid_partition_exits_3_naming_the_option(tmp_path, capsys):
    assert main(["report", DEMO, "--warehouse", str(tmp_path), "--partition", "2026-13-01"]) == 3
    assert "--partition" in capsys.readouterr().err
