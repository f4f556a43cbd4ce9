"""Spec discovery's rules on hand-made profiles: each proposal, and a draft that validates."""

from __future__ import annotations

import yaml

from pipelines.discover import ColumnProfile, propose, suggest
from pipelines.spec import spec_from_dict


def col(name, type_="string", rows=1000, nulls=0, distinct=900, sampled=1000, hits=None,
        whole=None, mean_length=12.0):  # fmt: skip
    return ColumnProfile(name, type_, rows, nulls, distinct, sampled if type_ == "string" else 0,
                         hits or {}, whole or {}, mean_length)  # fmt: skip


def test_a_column_whose_values_are_one_entity_gets_its_action_and_evidence():
    email = propose(col("c17", whole={"email": 980}, hits={"email": 990}, nulls=2))
    assert email.action == "{kind: hash, canonical: email}"
    assert email.evidence == "98% EMAIL, 0% null, distinct 90%"
    assert propose(col("field_a", whole={"us_ssn": 700})).action == "{kind: drop}"
    assert propose(col("x", whole={"person": 600})).action == "{kind: surrogate, domain: person_name}"
    assert "keep_last: 4" in propose(col("x", whole={"credit_card": 999})).action
    # Under half: not enough to decide by values (a name may still decide).
    assert propose(col("x", whole={"email": 400})).action == "{kind: keep}"


def test_free_text_with_pii_is_scrubbed():
    note = propose(col("c3", mean_length=140, hits={"email": 40, "phone": 25}))
    assert note.action == "{kind: scrub}"
    assert note.evidence.startswith("free text, mean length 140; EMAIL 4%, PHONE 2%")
    assert propose(col("comment", mean_length=20)).action == "{kind: scrub}"  # named like text
    assert propose(col("c4", mean_length=140)).action == "{kind: keep}"  # long, but no PII seen


def test_names_decide_when_values_do_not():
    assert propose(col("customerEmail")).action == "{kind: hash, canonical: email}"
    assert propose(col("ssn", "bigint")).action == "{kind: drop}"
    assert propose(col("last_name")).action == "{kind: surrogate, domain: person_name}"
    assert propose(col("zip_code")).action == "{kind: generalize, method: prefix, length: 3}"
    birth = propose(col("date_of_birth", "date"))
    assert birth.action == "{kind: generalize, method: age, top: 90, rename: date_of_birth_age}"
    assert (birth.quasi_identifier, birth.output) == ("numeric", "date_of_birth_age")
    assert propose(col("gender")).quasi_identifier == "categorical"
    assert propose(col("order_id", "bigint", distinct=1000)).privacy_unit
    assert not propose(col("status_id", "int", distinct=5)).privacy_unit  # not an identifier
    assert propose(col("amount", "double")).action == "{kind: keep}"


def test_the_draft_validates_and_holds_no_value():
    profiles = [
        col("customer_id", "bigint", distinct=1000),
        col("c1", whole={"email": 1000}),
        col("First Name"),
        col("birthdate", "date"),
        col("postal", mean_length=5),
        col("notes", mean_length=90, hits={"phone": 30}),
        col("amount", "double"),
        col("dt"),
    ]
    text = suggest(profiles, {"table": "raw.customers"}, "dt", "customers")
    spec = spec_from_dict(yaml.safe_load(text))
    assert spec.privacy_unit == "customer_id" and spec.undeclared == "fail"
    assert spec.columns["First_Name"].source_name == "First Name"
    assert spec.columns["c1"].kind == "hash" and spec.columns["notes"].kind == "scrub"
    assert "dt" not in spec.columns and spec.sink.table == "anon.customers"
    assert "#     birthdate_age: {type: numeric}" in text  # QI candidates, commented out
    assert "#     postal: {type: categorical}" in text
    assert spec.k_anonymity is None


def test_a_draft_without_identifier_says_to_review_the_privacy_unit():
    text = suggest([col("amount", "double"), col("city")], {"path": "raw/x", "format": "csv"},
                   "dt", "x")  # fmt: skip
    spec = spec_from_dict(yaml.safe_load(text))
    assert spec.privacy_unit == "amount" and "review: no identifier column was found" in text
    assert spec.sink.path == "raw/x_anonymized"
