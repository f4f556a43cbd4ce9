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
