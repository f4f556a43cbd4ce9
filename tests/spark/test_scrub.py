"""``scrub``: PII spans in free text replaced on Spark, the rest kept; tokens join to ``hash``."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from tests.conftest import TEST_KEY
from tests.spark.helpers import apply

pytestmark = pytest.mark.usefixtures("key_env")

DDL = "uid string, name string, email string, note string"
NOTE = "Spoke with JOSE garcia; mail Ana.Roe@Example.COM, call +33 6 12 34 56 78. Thanks!"
ROWS = [
    ("u1", "José García", "ana.roe@example.com", NOTE),
    ("u2", "Ann Lee", "x@y.io", "nothing to see"),
    ("u3", None, None, None),
    ("u4", "Bo Li", "z@w.io", ""),
    ("u5", "Cy Po", "c@p.io", "x" * 100_000 + " ssn 123-45-6789"),
]


def scrub(spark, **params):
    columns = {"name": {"kind": "drop"}, "email": {"kind": "hash", "canonical": "email"},
               "note": {"kind": "scrub", **params}}  # fmt: skip
    return {r["uid"]: r for r in apply(spark, ROWS, DDL, columns)}


def test_placeholders_replace_spans_and_keep_the_rest(spark):
    out = scrub(spark)
    assert out["u1"]["note"] == "Spoke with <PERSON>; mail <EMAIL>, call <PHONE>. Thanks!"
    assert out["u2"]["note"] == "nothing to see"
    assert out["u3"]["note"] is None and out["u4"]["note"] == ""
    assert out["u5"]["note"] == "x" * 100_000 + " ssn <US_SSN>"


def test_tokens_equal_the_hash_of_the_canonical_value(spark):
    out = scrub(spark, replace_with="token", length=None)
    digest = hmac.new(TEST_KEY.encode(), b"ana.roe@example.com", hashlib.sha256).hexdigest()
    assert f"<EMAIL:{digest}>" in out["u1"]["note"]
    assert out["u1"]["email"] == digest  # hash with canonical: email joins to the note's token
    phone = hmac.new(TEST_KEY.encode(), b"+33612345678", hashlib.sha256).hexdigest()
    assert f"<PHONE:{phone}>" in out["u1"]["note"]


def test_surrogates_and_masks(spark):
    out = scrub(spark, replace_with="surrogate")
    note = out["u1"]["note"]
    assert "@anon.invalid" in note and "+44 7700 900" in note and "Ana.Roe" not in note
    assert scrub(spark, replace_with="surrogate")["u1"]["note"] == note  # consistent
    masked = scrub(spark, replace_with="mask")["u1"]["note"]
    assert masked == "Spoke with **** ******; mail ***.***@*******.***, call *** * ** ** ** **. Thanks!"


@pytest.mark.parametrize("mode", ["surrogate", "mask"])
def test_surrogate_and_mask_outputs_hold_nothing_the_gate_detects(spark, mode):
    """A scrubbed column never fails the gate on its own output: every supported format
    of every entity, and the cases a review found blocked (a masked or surrogate
    password after its keyword, a SIN surrogate that was an Italian mobile number, a
    placeholder name after a title or a name label)."""
    from pipelines.pii import engine
    from tests.unit.test_pii_engine import POSITIVE

    notes = [v for values in POSITIVE.values() for v in values] + [
        "password: hunter2; api_key=abcdef123456", "SIN 130 692 544", "Mr Bean called",
        "Customer name: Friedrich Rosemann", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG",
    ]
    rows = [(f"u{i}", "Ann Lee", "a@b.io", note) for i, note in enumerate(notes)]
    columns = {"name": {"kind": "drop"}, "email": {"kind": "drop"},
               "note": {"kind": "scrub", "replace_with": mode}}  # fmt: skip
    out = apply(spark, rows, DDL, columns)
    leaks = [(r["note"], engine.find(r["note"])) for r in out if engine.find(r["note"])]
    assert leaks == []
    assert all(r["note"] != note for r, note in zip(out, notes, strict=True))  # all scrubbed


def test_only_the_named_entities_are_scrubbed(spark):
    out = scrub(spark, entities=["email"])
    assert out["u1"]["note"] == "Spoke with JOSE garcia; mail <EMAIL>, call +33 6 12 34 56 78. Thanks!"


def _leaky_rows(day: str) -> list[tuple]:
    from tests.spark.helpers import PLANTED, clean_rows

    rows = clean_rows(day, 20)
    for i, value in enumerate(PLANTED.values()):
        rows[i] = (rows[i][0], f"customer says: {value} call back", 1.0, day)
    return rows


def test_scrubbed_run_publishes_no_planted_value_anywhere(spark, tables, caplog):
    """Scrub in a real run: published, counted per entity, no planted value in any file."""
    import logging

    from pipelines.runner import run_partition
    from tests.spark.helpers import GATE_COLUMNS, PLANTED

    caplog.set_level(logging.INFO)
    write, make, _, sink = tables
    write(_leaky_rows("2026-11-21"))
    columns = {**GATE_COLUMNS, "note": {"kind": "scrub"}}
    res = run_partition(make(columns=columns), "2026-11-21")
    assert res.record.quality.output.passed
    counts = res.record.action_counts["note"]
    assert counts["scrubbed.email"] == 1 and counts["scrubbed.credit_card"] == 1
    assert counts["scrubbed.phone"] == 1 and sum(counts.values()) == 3
    notes = [r["note"] for r in spark.read.parquet(res.published).collect()]
    assert sorted(n for n in notes if "<" in n) == sorted(
        f"customer says: <{label}> call back" for label in ("EMAIL", "CREDIT_CARD", "PHONE")
    )
    everything = caplog.text
    for path in sink.rglob("*"):
        if path.is_file():
            everything += path.read_bytes().decode("utf-8", errors="replace")
    for value in PLANTED.values():
        assert value not in everything and value.replace(" ", "") not in everything


def test_output_gate_blocks_a_span_the_scrub_was_told_to_skip(spark, tables):
    from pipelines.errors import QualityGateFailed
    from pipelines.runner import run_partition
    from tests.spark.helpers import GATE_COLUMNS

    write, make, _, sink = tables
    write(_leaky_rows("2026-11-22"))
    columns = {**GATE_COLUMNS, "note": {"kind": "scrub", "entities": ["email", "credit_card"]}}
    with pytest.raises(QualityGateFailed) as err:
        run_partition(make(columns=columns), "2026-11-22")
    assert "output.pii.note.phone (observed 1)" in str(err.value)
    assert "output.pii.note.email" not in str(err.value)
    assert not (sink / "dt=2026-11-22").exists()
