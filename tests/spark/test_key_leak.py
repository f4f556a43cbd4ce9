"""Key material never appears in query plans, the SQL status store (UI, event log) or logs."""

from __future__ import annotations

import base64
import contextlib
import io
import logging

import pytest

from pipelines.desensitize.keyed import hmac_pads
from pipelines.keys import resolve_keys
from pipelines.runner import run_partition
from tests.conftest import TEST_KEY
from tests.spark.helpers import make_spec


def forbidden_strings(spec) -> list[str]:
    out = [TEST_KEY, TEST_KEY.encode().hex()]
    for key in resolve_keys(spec).values():
        purposes = ("date_shift", "noise", "surrogate/email", "scrub/surrogate")
        materials = [key.material] + [key.derive(p) for p in purposes]
        for m in materials:
            for pad in hmac_pads(m):
                # hex (as plans print binary literals), base64, and Python's list form
                out += [pad.hex(), pad.hex().upper(), base64.b64encode(pad).decode(), str(list(pad))[:40]]
            out += [m.hex(), m.hex().upper()]
    return out


def test_no_key_material_in_plans_status_store_or_logs(spark, warehouse, key_env, caplog, capfd):
    import datetime as dt

    rows = [(f"u{i}", f"user{i}@example.com", dt.date(1990, 1, 1), float(i), f"call +1 212-736-01{i:02d}",
             "2026-11-25") for i in range(20)]  # fmt: skip
    spark.createDataFrame(rows, "uid string, email string, bd date, amt double, note string, dt string") \
        .write.mode("overwrite").partitionBy("dt").parquet(str(warehouse / "leak" / "raw"))
    spec = make_spec(
        {
            "uid": {"kind": "hash"},
            "email": {"kind": "surrogate", "domain": "email"},
            "bd": {"kind": "date_shift", "max_days": 5},
            "amt": {"kind": "noise", "max_abs": 1},
            "note": {"kind": "scrub", "replace_with": "token"},  # per-span HMACs in the JVM
        },
        source={"path": "leak/raw"},
        sink={"path": "leak/anon"},
    )
    caplog.set_level(logging.DEBUG)
    spark.sparkContext.setLogLevel("INFO")
    try:
        result = run_partition(spec, "2026-11-25")
    finally:
        spark.sparkContext.setLogLevel("WARN")
    assert result.output_rows == 20
    notes = [r["note"] for r in spark.read.parquet(result.published).collect()]
    assert all(n.startswith("call <PHONE:") for n in notes), notes[:2]

    # Plans of the same transformation, in every explain mode.
    from tests.spark.helpers import desensitized

    df = spark.read.parquet(str(warehouse / "leak" / "raw")).drop("dt")
    out = desensitized(df, spec, dt.date(2026, 11, 25))
    texts = [out._jdf.queryExecution().toString()]
    for mode in ("simple", "extended", "codegen", "cost", "formatted"):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            out.explain(mode)
        texts.append(buf.getvalue())
    # What the Spark UI's SQL tab and the event log show for every execution so far.
    store = spark._jsparkSession.sharedState().statusStore()
    executions = store.executionsList()
    assert executions.size() > 0
    for i in range(executions.size()):
        ex = executions.apply(i)
        texts.append(ex.physicalPlanDescription())
        texts.append(ex.description())
    captured = capfd.readouterr()
    texts += [captured.out, captured.err, caplog.text]
    manifest = (warehouse / "leak" / "anon" / "dt=2026-11-25" / "_manifest.json").read_text()
    texts.append(manifest)
    blob = "\n".join(texts)
    assert "__anon_k" in blob  # the plans were really captured
    leaks = [s for s in forbidden_strings(spec) if s in blob]
    if leaks:  # pytest.fail, not assert: assertion rewriting would print the key material
        pytest.fail(f"{len(leaks)} key-derived strings found in plans, logs or the manifest")
    assert resolve_keys(spec)["main"].fingerprint in manifest
