"""The compiled run plan: keys by fingerprint only, never pickled; the output contract
bound once from the spec and the source schema."""

from __future__ import annotations

import pickle

import pytest
from pyspark.sql.types import (
    DateType,
    DecimalType,
    StringType,
    StructField,
    StructType,
)

from pipelines.errors import KeyMaterialError, SpecError
from pipelines.plan import compile_plan
from pipelines.spec import spec_from_dict
from tests.conftest import TEST_KEY
from tests.specs import spec_data

COLUMNS = {
    "uid": {"kind": "hash", "encoding": "base32", "length": 20},
    "mail": {"kind": "surrogate", "domain": "email"},
    "ssn": {"kind": "drop"},
    "birth": {"kind": "generalize", "method": "age", "top": 90, "rename": "age"},
    "zip": {"kind": "generalize", "method": "prefix", "length": 3},
    "note": {"kind": "keep"},
    "amount": {"kind": "noise", "max_abs": 1.0},
}


def schema(**types) -> StructType:
    """A schema built without a SparkSession (fromDDL needs one)."""
    return StructType([StructField(name, t, True) for name, t in types.items()])


TEXT = StringType()
FIELDS = {"note": TEXT, "uid": TEXT, "mail": TEXT, "ssn": TEXT, "birth": DateType(), "zip": TEXT,
          "amount": DecimalType(10, 2), "dt": TEXT}  # fmt: skip
SOURCE = schema(**FIELDS)


def spec(**over):
    return spec_from_dict(spec_data(COLUMNS, **over))


def test_plan_holds_keys_by_fingerprint_and_refuses_to_be_pickled(key_env):
    plan = compile_plan(spec(), "2026-11-25")
    fingerprint = plan.keys["main"].fingerprint
    assert plan.keys.fingerprints() == {"main": fingerprint}
    assert TEST_KEY not in repr(plan) and fingerprint in repr(plan.keys)
    with pytest.raises(TypeError, match="must not be pickled"):
        pickle.dumps(plan)
    with pytest.raises(TypeError, match="must not be pickled"):
        pickle.dumps(plan.keys["main"])


def test_plan_fails_early_in_order_partition_then_keys(monkeypatch):
    monkeypatch.delenv("ANON_TEST_KEY", raising=False)
    with pytest.raises(SpecError, match="not an ISO date"):
        compile_plan(spec(), "20261125")
    with pytest.raises(KeyMaterialError, match="ANON_TEST_KEY is not set"):
        compile_plan(spec(), "2026-11-25")
    assert len(compile_plan(spec(), "2026-11-25", resolve=False).keys) == 0  # validate/publish steps


def test_contract_is_the_published_columns_in_source_order_with_operator_types(key_env):
    contract = compile_plan(spec(), "2026-11-25").bind(SOURCE, "src").bound
    assert contract.names == ["note", "uid", "mail", "age", "zip", "amount"]  # source order
    types = {c.name: c.dtype.simpleString() for c in contract.columns}
    assert types == {"note": "string", "uid": "string", "mail": "string", "age": "int",
                     "zip": "string", "amount": "decimal(10,2)"}  # fmt: skip
    by_name = {c.name: c for c in contract.columns}
    assert by_name["uid"].domain.regex == "^[a-z2-7]_[a-z2-7]{18}$" and by_name["uid"].domain.token
    assert by_name["age"].domain.high == 90 and by_name["zip"].domain.high == 3
    assert by_name["note"].domain is None and by_name["amount"].domain is None
    assert contract.allowed_pii == {"mail": ["email"]}
    assert contract.descriptions["ssn"] == {"kind": "drop", "rename": None, "type": None,
                                            "expect": None, "source_name": None}  # fmt: skip
    assert "dt" not in contract.names and "ssn" not in contract.names


def test_contract_releases_quasi_identifiers_as_strings_without_a_domain(key_env, tmp_path):
    ka = {"k": 2, "quasi_identifiers": {"age": {"type": "numeric"}, "zip": {"type": "numeric"}}}
    plan = compile_plan(spec(k_anonymity=ka), "2026-11-25").bind(SOURCE, "src")
    by_name = {c.name: c for c in plan.bound.columns}
    assert by_name["age"].dtype.simpleString() == "int"  # as desensitized ...
    assert by_name["age"].released.simpleString() == "string"  # ... and as published
    assert by_name["age"].domain is None and by_name["zip"].domain is None
    assert plan.window() == []
    ka_window = {**ka, "window": 3}
    plan = compile_plan(spec(k_anonymity=ka_window), "2026-11-25")
    assert [p.value for p in plan.window()] == ["2026-11-24", "2026-11-23"]
    pickle.dumps(plan.kanon)  # what executors may receive: no key inside


def test_bind_fails_closed_naming_columns_and_types(key_env):
    plan = compile_plan(spec(), "2026-11-25")
    extra = schema(**FIELDS, secret=TEXT, other=TEXT)
    with pytest.raises(SpecError, match="does not mention: secret, other"):
        plan.bind(extra, "src")
    assert plan.at(plan.partition).spec is plan.spec
    dropped = compile_plan(spec(undeclared="drop"), "2026-11-25").bind(extra, "src").bound
    assert dropped.undeclared == ("secret", "other")
    assert dropped.descriptions["secret"] == {"kind": "drop", "reason": "undeclared"}
    missing = schema(uid=TEXT, mail=TEXT)
    with pytest.raises(SpecError, match="declared but not in source src: ssn, birth, zip, note, amount"):
        plan.bind(missing, "src")
    wrong = schema(**{**FIELDS, "birth": TEXT})
    with pytest.raises(SpecError, match="columns.birth: 'generalize/age' needs a date or timestamp "
                                        "column; the source column is string"):  # fmt: skip
        plan.bind(wrong, "src")
