"""Retention of replaced versions by publish order, within one second too."""

from __future__ import annotations

import json

from pipelines.storage.files import prune_versions


def _version(root, run_id: str, published_at: str):
    d = root / run_id
    d.mkdir()
    (d / "_manifest.json").write_text(json.dumps({"run_id": run_id, "published_at": published_at}))
    return d


def test_the_version_just_replaced_is_kept_even_when_published_in_the_same_second(tmp_path):
    """Run A started first (smaller id) and published last, in the same second as B:
    the version a later publish replaced is A's, and it must be the one kept."""
    same = "2026-12-02T01:27:12+00:00"
    b = _version(tmp_path, "20261202T012710Z-651c9494", same)
    a = _version(tmp_path, "20261202T012708Z-8b0ed96e", same)
    assert prune_versions([a, b], 1, latest=a) == [b]
    assert a.is_dir() and not b.exists()


def test_older_versions_go_by_publish_time_not_run_id(tmp_path):
    new = _version(tmp_path, "20261201T000000Z-00000001", "2026-12-02T10:00:00+00:00")
    mid = _version(tmp_path, "20261202T000000Z-00000002", "2026-12-02T09:00:00+00:00")
    old = _version(tmp_path, "20261203T000000Z-00000003", "2026-12-02T08:00:00+00:00")
    (tmp_path / "staged").mkdir()  # no manifest: not a published version, left alone
    gone = prune_versions([new, mid, old, tmp_path / "staged"], 2)
    assert gone == [old] and (tmp_path / "staged").is_dir()
    assert prune_versions([new, mid], 0) == [new, mid]


def test_publish_order_within_one_second_follows_the_write_time_not_the_run_id(tmp_path):
    """The one ordering of publishes (report history, format fallback, retention): two
    records of the same second sort by when each was written, then the later second
    after both whatever the run ids, and an unreadable record first."""
    import os

    from pipelines.manifest import publish_order

    def record(name: str, at: str, written_ns: int):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"run_id": name, "published_at": at}))
        os.utime(path, ns=(written_ns, written_ns))
        return path

    same = "2026-12-02T01:27:12+00:00"
    late_start = record("20261202T012710Z-ffffffff", same, 1_000)  # started last, published first
    early_start = record("20261202T012708Z-00000000", same, 2_000)
    naive_later = record("20261202T000000Z-11111111", "2026-12-02T01:27:13", 500)  # no zone: UTC
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    ordered = sorted([naive_later, early_start, broken, late_start], key=publish_order)
    assert ordered == [broken, late_start, early_start, naive_later]
