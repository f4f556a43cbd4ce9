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


def _manifest(run_id: str, published_at: str, rows: int, k_anonymity: dict | None) -> dict:
    from pipelines.manifest import Manifest
    from pipelines.partition import Partition
    from pipelines.records import RunIdentity

    identity = RunIdentity(run_id, "demo", Partition.parse("dt", "2026-11-01"), "0" * 64, "0.1.0")
    return Manifest(identity, "published", published_at, rows, rows, 0, {"amount": "double"},
                    k_anonymity=k_anonymity).to_json()  # fmt: skip


def test_report_shows_the_last_published_run_and_renders_older_manifest_shapes(tmp_path):
    """Publish order, not run-id order: the run that started first published last.
    A k-anonymity block of an older manifest (a bare l, no t/ncp/gcp/histogram)
    renders; a stray directory beside the partitions' histories is skipped."""
    import json

    import yaml

    from pipelines.report import build
    from pipelines.spec.loader import spec_from_dict

    spec = yaml.safe_load(Path(DEMO).read_text())
    spec["sink"] = {"path": "anon"}
    for rel in spec["releases"].values():
        rel["sink"] = {"path": "rel"}
    spec = spec_from_dict(spec)
    history = tmp_path / "anon" / "_manifests" / "dt=2026-11-01"
    history.mkdir(parents=True)
    old_kanon = {"k": 5, "l": 2, "quasi_identifiers": ["age"], "classes": 3, "smallest_class": 6,
                 "suppressed": 0}  # fmt: skip
    early = _manifest("20261101T100000Z-ffffffff", "2026-11-01T11:00:00+00:00", 111, old_kanon)
    late = _manifest("20261101T100500Z-00000000", "2026-11-01T10:06:00+00:00", 222, None)
    for m in (early, late):
        (history / f"{m['run_id']}.json").write_text(json.dumps(m))
    (tmp_path / "anon" / "_manifests" / "dt=2026-11-01.bak").mkdir()  # not a partition
    page = build(spec, tmp_path, tmp_path, "2026-11-01")
    html = page.read_text()
    assert "20261101T100000Z-ffffffff" in html and ">111<" in html  # published last
    assert ">222<" not in html
    assert "publish 2 of this partition" in html
    index = (page.parent / "index.html").read_text()
    assert index.count('href="dt=2026-11-01.html"') == 1
