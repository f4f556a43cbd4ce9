"""Every gate check fires on its planted defect, passes on clean data, and reports counts only."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql.types import StructType

from pipelines.plan import compile_plan
from pipelines.quality.gate import run_gate
from pipelines.quality.suites import input_suite, output_suite, volume_band
from pipelines.spec import spec_from_dict
from tests.specs import spec_data


def bound(spec, source_schema):
    """The spec's run plan for one day, bound to a source schema."""
    return compile_plan(spec, "2026-11-25", resolve=False).bind(source_schema, "test source")

INPUT_COLUMNS = {
    "uid": {"kind": "hash", "type": "string"},
    "amount": {"kind": "keep", "type": "double", "expect": {"min": 0, "max": 100}},
    "country": {"kind": "keep", "expect": {"in_set": ["DE", "FR"], "not_null": True}},
    "code": {"kind": "keep", "expect": {"regex": "[A-Z]{3}-[0-9]{2}", "severity": "warning"}},
}
INPUT_DDL = "uid string, amount double, country string, code string"
CLEAN_INPUT = [("u1", 5.0, "DE", "ABC-12"), ("u2", 99.5, "FR", "XYZ-00"), ("u3", 0.0, "DE", None)]


def failed(gate) -> set[str]:
    return {c.id for c in gate.checks if not c.success}


def run_input(spark, rows, ddl=INPUT_DDL, history=(), **quality):
    spec = spec_from_dict(spec_data(INPUT_COLUMNS, quality=quality))
    df = spark.createDataFrame(rows, ddl)
    plan = compile_plan(spec, "2026-11-25", resolve=False)
    return run_gate(input_suite(plan, df.schema, list(history)), df, "t")[0]


def test_input_gate_passes_clean_data(spark):
    gate = run_input(spark, CLEAN_INPUT, history=[3, 3, 4])
    assert gate.passed and not failed(gate), gate.checks
    ids = [c.id for c in gate.checks]
    assert {"input.columns", "input.type.uid", "input.not_null.uid", "input.row_count"} <= set(ids)
    assert {"input.volume", "input.range.amount", "input.in_set.country", "input.regex.code"} <= set(ids)


@pytest.mark.parametrize(
    ("rows", "ddl", "expected"),
    [
        ([("u1", 5.0, "DE")], "uid string, amount double, country string", {"input.columns"}),
        ([("u1", 5, "DE", None)], "uid string, amount int, country string, code string",
         {"input.type.amount"}),
        ([(None, 5.0, "DE", None)], INPUT_DDL, {"input.not_null.uid"}),
        ([], INPUT_DDL, {"input.row_count"}),
        ([("u1", 500.0, "DE", None), ("u2", -1.0, "DE", None)], INPUT_DDL, {"input.range.amount"}),
        ([("u1", 1.0, "IT", None)], INPUT_DDL, {"input.in_set.country"}),
        ([("u1", 1.0, None, None)], INPUT_DDL, {"input.not_null.country"}),
        ([("u1", 1.0, "DE", "abc-12")], INPUT_DDL, {"input.regex.code"}),
    ],
    ids=["missing-column", "wrong-type", "null-unit", "empty", "range", "in-set", "not-null", "regex"],
)  # fmt: skip
def test_input_checks_fire_on_planted_defects(spark, rows, ddl, expected):
    gate = run_input(spark, rows, ddl, history=[1, 1, 1])
    assert failed(gate) == expected
    # the regex check is declared a warning: it alone does not fail the gate
    assert gate.passed == (expected == {"input.regex.code"})


def test_volume_band_from_history(spark):
    spec = spec_from_dict(spec_data(INPUT_COLUMNS, quality={"volume": {"window": 3, "tolerance": 0.5}}))
    assert volume_band(spec, [100, 90, 110, 5000]) == (50, 150)  # window 3: median 100
    assert volume_band(spec, [100, 90]) is None  # below min_history (3)
    gate = run_input(spark, CLEAN_INPUT, history=[10, 10, 10])  # 3 rows, band 5..15
    assert failed(gate) == {"input.volume"} and gate.passed  # a warning by default
    gate = run_input(spark, CLEAN_INPUT, history=[10, 10, 10], escalate=["input.vol*"])
    assert failed(gate) == {"input.volume"} and not gate.passed
    gate = run_input(spark, CLEAN_INPUT, history=[10])
    assert "input.volume" not in [c.id for c in gate.checks]
    assert any("input.volume: not checked" in n for n in gate.notes)


OUTPUT_COLUMNS = {
    "uid": {"kind": "hash", "encoding": "base32", "length": 12},
    "name": {"kind": "surrogate", "domain": "person_name"},
    "mail": {"kind": "surrogate", "domain": "email"},
    "ssn": {"kind": "drop"},
    "street": {"kind": "redact"},
    "zip": {"kind": "generalize", "method": "prefix", "length": 3},
    "birth": {"kind": "generalize", "method": "age", "top": 90, "rename": "age"},
    "month": {"kind": "generalize", "method": "date", "to": "month"},
    "income": {"kind": "generalize", "method": "bucket", "width": 1000},
    "note": {"kind": "keep"},
    "memo": {"kind": "keep"},
}
OUT_DDL = (
    "uid string, name string, mail string, street string, zip string, age int, month date, "
    "income string, note string, memo string"
)
D1 = dt.date(2026, 11, 1)
CLEAN_OUTPUT = [
    ("m_3ma6kmbeaa", "Ann Lee", "ann.lee@example.org", "[REDACTED]", "101", 34, D1, "[1000, 2000)",
     "order 12345 shipped 2026-11-25 10:07", "v1.2.3 ref 4111 1111 1111 1112"),
    ("5_ymlwz2xeyk", "Bo Chan", "bo@example.net", None, "941", 90, None, ">=5000", None,
     "ok :: DE89 3704 0044 0532 0130 02"),
]  # fmt: skip
# The memos are near misses: candidates of the scan's first pass (a Luhn-invalid card
# number, "::", a mod-97-invalid IBAN) that its confirming pass must clear.


# The raw columns OUTPUT_COLUMNS turns into OUT_DDL.
SOURCE_DDL = (
    "uid string, name string, mail string, ssn string, street string, zip string, birth date, "
    "month date, income int, note string, memo string"
)


def run_output(spark, rows, ddl=OUT_DDL, expected_rows=2, **quality):
    spec = spec_from_dict(spec_data(OUTPUT_COLUMNS, privacy_unit="uid", quality=quality))
    df = spark.createDataFrame(rows, StructType.fromDDL(ddl))
    plan = bound(spec, StructType.fromDDL(SOURCE_DDL))
    return run_gate(output_suite(plan, expected_rows), df, "t")


def test_output_gate_passes_clean_data_and_checks_every_string_column_for_pii(spark):
    gate, _ = run_output(spark, CLEAN_OUTPUT)
    assert gate.passed and not failed(gate), [c for c in gate.checks if not c.success]
    ids = {c.id for c in gate.checks}
    for col in ("uid", "name", "street", "zip", "income", "note", "memo"):
        assert {f"output.pii.{col}.{d}" for d in ("email", "phone", "credit_card", "iban")} <= ids
    assert "output.pii.mail.email" not in ids  # an email surrogate is allowed to be an email
    assert "output.pii.mail.phone" in ids  # ... but nothing else
    assert gate.allowed_pii == {"mail": ["email"], "name": ["person"]}  # surrogates by construction
    assert {"output.token.uid", "output.domain.age", "output.domain.month"} <= ids


# A leak planted in otherwise clean output: each value sits in free text.
LEAKS = {
    "email": "please forward to jane.roe@corp-mail.example.com asap",
    "credit_card": "paid with 4111 1111 1111 1111 on monday",
    "phone": "callback +44 20 7946 0958 after 5",
    "us_ssn": "ssn 536-22-1845 verified",
    "uk_nino": "NI number AB 12 34 56 C on file",
    "person": "spoke to Maria Garcia today",
    "iban": "refund to DE89 3704 0044 0532 0130 00",
    "ipv4": "login from 81.2.69.142 blocked",
    "ipv6": "peer 2001:470:85a3::8a2e:370:7334 seen",
}


def test_output_pii_leaks_in_free_text_fail_per_entity_with_counts_only(spark, caplog):
    """One row per planted entity, in one gate run: each entity's check counts its row."""
    rows = [CLEAN_OUTPUT[0][:8] + (LEAKS[kind], "fine") for kind in LEAKS] + [CLEAN_OUTPUT[1]]
    gate, gx_result = run_output(spark, rows, expected_rows=len(rows))
    assert not gate.passed
    assert failed(gate) == {f"output.pii.note.{kind}" for kind in LEAKS}
    by_id = {c.id: c for c in gate.checks}
    for kind in LEAKS:
        assert by_id[f"output.pii.note.{kind}"].observed == {"observed_value": 1}, kind
    text = json.dumps(gate.to_json()) + json.dumps(gx_result.to_json_dict()) + caplog.text
    for leak in LEAKS.values():
        assert leak not in text
        for token in leak.split():
            if len(token) >= 5 and (any(ch.isdigit() for ch in token) or "@" in token):
                assert token not in text


def test_output_domain_checks_fire_on_planted_defects(spark):
    bad = [
        ("NOT-A-TOKEN!", "Ann Lee", "x@example.org", "leaked street", "10115", 130,
         dt.date(2026, 11, 7), "1000-2000", "fine", "fine"),
        CLEAN_OUTPUT[1],
    ]  # fmt: skip
    gate, _ = run_output(spark, bad, expected_rows=3)
    assert failed(gate) == {
        "output.token.uid",
        "output.domain.street",
        "output.domain.zip",
        "output.domain.age",
        "output.domain.month",
        "output.domain.income",
        "output.row_count",
    }
    by_id = {c.id: c for c in gate.checks}
    assert by_id["output.domain.age"].observed["unexpected_count"] == 1
    assert by_id["output.row_count"].observed == {"observed_value": 2}
    for check in gate.checks:  # counts and schema names only, never a value
        assert "partial_unexpected_list" not in check.observed
        assert "leaked street" not in json.dumps(vars(check))


def test_output_schema_contract_catches_a_column_that_should_be_dropped(spark):
    ddl = OUT_DDL + ", ssn string"
    rows = [r + ("078-05-1120",) for r in CLEAN_OUTPUT]
    gate, _ = run_output(spark, rows, ddl=ddl)
    assert failed(gate) == {"output.columns"}
    assert "078-05-1120" not in json.dumps(gate.to_json())


def test_k_anonymity_expectation_counts_small_classes(spark):
    from pipelines.quality.expectations import ExpectColumnsToBeKAnonymous
    from pipelines.quality.suites import Check, Suite

    rows = [("a", 1), ("a", 1), ("a", 1), ("b", 2), ("b", 2), ("c", None)]
    df = spark.createDataFrame(rows, "zip string, age int")
    for k, ok in ((1, True), (2, False), (3, False)):
        exp = ExpectColumnsToBeKAnonymous(column_list=["zip", "age"], k=k)
        gate, _ = run_gate(Suite("output", [Check("output.k_anonymity", exp)]), df, "t")
        observed = gate.checks[0].observed["observed_value"]
        assert gate.passed is ok
        assert observed["classes"] == 3 and observed["smallest_class"] == 1
        below = {1: 0, 2: 1, 3: 2}[k]
        assert observed["classes_below_k"] == below
        assert observed["rows_in_classes_below_k"] == {1: 0, 2: 1, 3: 3}[k]
