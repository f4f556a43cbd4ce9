"""Typed records: the JSON shapes round-trip, and manifests written before versioning
(no ``manifest_version``) still read."""

from __future__ import annotations

import json

from pipelines.manifest import (
    MANIFEST_VERSION,
    Manifest,
    Quality,
    ReleaseManifest,
    manifest_from_json,
    read_manifest,
)
from pipelines.partition import Partition
from pipelines.records import CheckResult, GateResult, RunIdentity, RunState

CHECK = {"id": "output.row_count", "expectation": "expect_table_row_count_to_equal",
         "column": None, "description": "2 rows", "severity": "error", "success": True,
         "observed": {"observed_value": 2}}  # fmt: skip
GATE = {"stage": "output", "passed": True, "seconds": 0.5, "checks": [CHECK], "notes": [],
        "allowed_pii": {}}  # fmt: skip
IDENTITY = {"run_id": "20261125T101500Z-1a2b3c4d", "pipeline": "demo",
            "partition": {"column": "dt", "value": "2026-11-25"}, "spec_hash": "ab" * 32,
            "code_version": "0.1.0"}  # fmt: skip
# What the runner wrote before manifests had a version.
V0_MANIFEST = {
    **IDENTITY, "key_fingerprints": {"main": "0123456789abcdef"}, "source": "raw.t",
    "sink": "anon.t", "input_rows": 2, "output_rows": 2, "suppressed_rows": 0,
    "columns": {"uid": {"kind": "hash"}}, "output_schema": {"uid": "string"},
    "k_anonymity": None,
    "quality": {"input": {**GATE, "stage": "input"}, "output": GATE, "warnings": [],
                "data_docs": None},
    "spark": {"version": "4.1.3", "master": "local[2]"}, "published_at": "2026-11-25T10:15:09+00:00",
    "status": "published", "timings": {"total": 3.2},
}  # fmt: skip
V0_OVERRIDE = {
    **IDENTITY, "input_rows": 8, "output_rows": 8, "suppressed_rows": 0,
    "output_schema": {"uid": "string"},
    "quality": {"overridden": {"input": {**GATE, "stage": "input"},
                               "output": {**GATE, "passed": False}}, "failed_stage": "output"},
    "override": {"quarantined_run": "r0", "by": "ops", "at": "t", "reason": "checked by hand"},
    "published_at": "2026-11-25T11:00:00+00:00", "status": "released_from_quarantine",
}  # fmt: skip


def test_unversioned_manifests_read_as_version_0_with_every_field(tmp_path):
    m = Manifest.from_json(V0_MANIFEST)
    assert m.version == 0 and m.run_id == IDENTITY["run_id"]
    assert m.identity.partition == Partition.parse("dt", "2026-11-25")
    assert m.quality.output.checks[0] == CheckResult(**CHECK) and m.input_rows == 2
    again = m.to_json()
    assert again["manifest_version"] == MANIFEST_VERSION
    assert {k: again[k] for k in V0_MANIFEST} == V0_MANIFEST  # every field kept as it was
    o = Manifest.from_json(V0_OVERRIDE)
    assert o.quality.overridden and not o.quality.output.passed and o.override["reason"]
    path = tmp_path / "_manifest.json"
    path.write_text(json.dumps(V0_MANIFEST))
    assert read_manifest(path) == m and read_manifest(tmp_path / "missing.json") is None


def test_records_round_trip_through_json():
    gate = GateResult.from_json(GATE)
    identity = RunIdentity.from_json(IDENTITY)
    state = RunState(identity, "validated", {"main": "f" * 16}, "{}", "{}", 5, 4, 1,
                     {"k": 2}, {"output": gate}, {"plan": 0.1})  # fmt: skip
    assert RunState.from_json(json.loads(json.dumps(state.to_json()))) == state
    manifest = Manifest(identity, "published", "t", 5, 4, 1, {"uid": "string"},
                        quality=Quality(gate, gate, ["input.volume"], "/docs"))  # fmt: skip
    assert Manifest.from_json(json.loads(json.dumps(manifest.to_json()))) == manifest
    release = ReleaseManifest(identity, "by_day", "published", "t", "anon.r", ["day"], "public",
                              3, True, {"measure": "pure", "epsilon": 1.0, "rho": 0.0,
                                        "delta": 0.0, "ledger_id": 1},
                              {"metrics": {}}, {"release": gate}, {"day": "date"})  # fmt: skip
    back = manifest_from_json(json.loads(json.dumps(release.to_json())))
    assert isinstance(back, ReleaseManifest) and back == release
    assert gate.describe_failures() == "" and GateResult.from_json(
        {**GATE, "passed": False, "checks": [{**CHECK, "success": False}]}
    ).describe_failures() == "output.row_count (observed 2)"
