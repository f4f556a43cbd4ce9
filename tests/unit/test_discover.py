"""Spec discovery's rules on hand-made profiles: each proposal, and drafts that validate."""

from __future__ import annotations

import pytest
import yaml

from pipelines.discover import ColumnProfile, propose, suggest
from pipelines.errors import SpecError
from pipelines.spec import spec_from_dict


def col(name, type_="string", rows=1000, nulls=0, distinct=900, sampled=1000, hits=None,
        whole=None, mean_length=12.0):  # fmt: skip
    return ColumnProfile(name, type_, rows, nulls, distinct, sampled if type_ == "string" else 0,
                         hits or {}, whole or {}, mean_length)  # fmt: skip


def draft(profiles, source=None, partition_column="dt"):
    text = suggest(profiles, source or {"table": "raw.t"}, partition_column, "t")
    return text, spec_from_dict(yaml.safe_load(text))


def test_a_column_whose_values_are_one_entity_gets_its_action_and_evidence():
    email = propose(col("c17", whole={"email": 980}, hits={"email": 990}, nulls=2))
    assert email.action == "{kind: hash, canonical: email}"
    assert email.evidence == "98% EMAIL, 0.2% null, distinct 90%"
    assert propose(col("field_a", whole={"us_ssn": 700})).action == "{kind: drop}"
    assert propose(col("x", whole={"person": 600})).action == "{kind: surrogate, domain: person_name}"
    assert "keep_last: 4" in propose(col("x", whole={"credit_card": 999})).action
    # Under half: not enough to decide by values (a name may still decide).
    assert propose(col("x", whole={"email": 400})).action == "{kind: keep}"


@pytest.mark.parametrize(("n", "of", "text"), [
    (0, 1000, "0%"), (2, 1000, "0.2%"), (1, 100000, "<0.1%"), (996, 1000, "99.6%"),
    (99999, 100000, ">99.9%"), (1000, 1000, "100%"), (1040, 1000, "100%"), (5, 0, "n/a"),
])  # fmt: skip
def test_shares_read_zero_and_all_only_when_they_are(n, of, text):
    from pipelines.discover import _share

    assert _share(n, of) == text


def test_free_text_with_pii_is_scrubbed():
    note = propose(col("c3", mean_length=140, hits={"email": 40, "phone": 25}))
    assert note.action == "{kind: scrub}"
    assert note.evidence.startswith("free text, mean length 140; EMAIL 4%, PHONE 2%")
    assert propose(col("comment", mean_length=20)).action == "{kind: scrub}"  # named like text
    assert propose(col("c4", mean_length=140)).action == "{kind: keep}"  # long, but no PII seen
    assert propose(col("context", mean_length=12)).action == "{kind: keep}"  # not "text"


@pytest.mark.parametrize(("name", "type_", "action"), [
    ("customerEmail", "string", "{kind: hash, canonical: email}"),
    ("ssn", "bigint", "{kind: drop}"),
    ("last_name", "string", "{kind: surrogate, domain: person_name}"),
    ("zip_code", "string", "{kind: generalize, method: prefix, length: 3}"),
    ("phone", "bigint", "{kind: hash}"),  # PII in a typed column: pseudonymized, not kept
    ("card_number", "bigint", "{kind: hash}"),
    ("emails", "array<string>", "{kind: drop}"),  # nested: dropped for review
    ("email", "binary", "{kind: drop}"),
    ("mac_address", "string", "{kind: hash}"),  # not a street address
    ("customer_id", "bigint", "{kind: hash}"),  # a repeating foreign key is still a key
    ("automobile", "string", "{kind: keep}"),  # not a mobile phone
    ("product_name", "string", "{kind: keep}"),  # not a person's name
    ("company_name", "string", "{kind: keep}"),
    ("customer_type", "string", "{kind: keep}"),
    ("status_code", "string", "{kind: keep}"),
    ("amount", "double", "{kind: keep}"),
])  # fmt: skip
def test_names_decide_when_values_do_not(name, type_, action):
    assert propose(col(name, type_, distinct=250)).action == action


def test_quasi_identifier_candidates():
    birth = propose(col("date_of_birth", "date"))
    assert birth.action == "{kind: generalize, method: age, top: 90}" and birth.rename == "_age"
    assert birth.quasi_identifier == "{type: numeric}"
    assert propose(col("dob", "string"), text_source=True).action.startswith("{type: date, ")
    assert propose(col("gender")).quasi_identifier.startswith("{type: categorical, hierarchy: ")
    assert propose(col("age", "decimal(5,1)")).quasi_identifier == "{type: numeric}"
    assert propose(col("zip", "int")).quasi_identifier == "{type: numeric}"
    assert propose(col("seen_at", "timestamp_ntz")).quasi_identifier == "{type: date}"


def test_the_draft_validates_and_holds_no_value():
    profiles = [
        col("order_id", "bigint", distinct=1000),
        col("customer_id", "bigint", distinct=300),
        col("c1", whole={"email": 1000}),
        col("First Name"),
        col("birthdate", "date"),
        col("postal", mean_length=5),
        col("notes", mean_length=90, hits={"phone": 30}),
        col("amount", "double"),
        col("dt"),
    ]
    text, spec = draft(profiles, {"table": "raw.customers"})
    assert spec.privacy_unit == "customer_id"  # the identifier naming a person
    assert spec.undeclared == "fail" and spec.sink.table == "anon.customers"
    assert spec.columns["First_Name"].source_name == "First Name"
    assert spec.columns["c1"].kind == "hash" and spec.columns["notes"].kind == "scrub"
    assert spec.columns["birthdate"].rename == "birthdate_age" and "dt" not in spec.columns
    assert "#     birthdate_age: {type: numeric}" in text  # QI candidates, commented out
    assert spec.k_anonymity is None


def test_uncommenting_the_quasi_identifiers_gives_a_valid_block():
    text, _ = draft([col("customer_id", "bigint"), col("birthdate", "date"), col("zip"),
                     col("gender")])  # fmt: skip
    lines = text.splitlines()
    start = lines.index("# k_anonymity:")
    uncommented = "\n".join(lines[:start] + [ln[2:] for ln in lines[start:]])
    spec = spec_from_dict(yaml.safe_load(uncommented))
    assert sorted(spec.k_anonymity.quasi_identifiers) == ["birthdate_age", "gender", "zip"]


@pytest.mark.parametrize("names", [
    ["prénom", "Straße", "名前"],  # non-ASCII names: ASCII keys, source_name keeps them
    ["a b", "a_b"],  # a sanitized key must not be another column's name
    ["!!!", "column"],
    ["x" * 1100],  # longer than YAML's 1024-character simple key
    ["#x", "a:b", 'q"uote', "{br}", "dob_age"],
])  # fmt: skip
def test_odd_column_names_still_give_a_valid_draft(names):
    text, spec = draft([col("id", "bigint", distinct=1000)] + [col(n) for n in names])
    assert sorted(c.source_name or k for k, c in spec.columns.items()) == sorted(["id", *names])


def test_edge_cases_give_a_valid_draft_or_a_clear_error():
    # The birth date's age must not take the partition column's name.
    _, spec = draft([col("id", "bigint"), col("dob", "date")], partition_column="dob_age")
    assert spec.columns["dob"].rename == "dob_age_"
    # Source already named anon.*: the sink differs.
    _, spec = draft([col("id", "bigint")], {"table": "anon.customers"})
    assert spec.sink.table == "anon.customers_anon"
    # Nothing but the partition column.
    with pytest.raises(SpecError, match="no column besides the partition column"):
        draft([col("dt")])


def test_the_privacy_unit_is_never_null_or_flagged_for_review():
    text, spec = draft([col("coupon_id", "bigint", nulls=900), col("user_id", "bigint")])
    assert spec.privacy_unit == "user_id" and "privacy_unit: user_id\n" in text
    text, spec = draft([col("amount", "double"), col("city")], {"path": "raw/x", "format": "csv"})
    assert spec.privacy_unit == "amount" and "review: no identifier or pseudonymized" in text
    assert spec.sink.path == "raw/x_anonymized"


def test_the_hipaa_safe_harbor_preset_drafts_a_valid_spec_with_its_rules_and_a_review_list():
    profiles = [
        col("patient_id", "bigint", distinct=300),
        col("c1", whole={"email": 1000}),
        col("birthdate", "date"),
        col("admitted", "date"),
        col("age", "int", distinct=80),
        col("zip", mean_length=5),
        col("zip_number", "int"),
        col("amount", "double"),
        col("dt"),
    ]
    text = suggest(profiles, {"table": "raw.visits"}, "dt", "visits", "hipaa-safe-harbor")
    spec = spec_from_dict(yaml.safe_load(text))
    assert spec.columns["zip"].mapping()["036"] == "000" and spec.columns["zip"].length == 3
    assert spec.columns["zip_number"].kind == "drop"
    assert spec.columns["admitted"].method == "date" and spec.columns["admitted"].to == "year"
    age = spec.columns["age"]
    assert (age.method, age.width, age.top, age.output) == ("bucket", 1, 90, "lower")
    assert spec.columns["birthdate"].top == 90  # an age, 90 standing for "90 or older"
    assert spec.columns["amount"].kind == "keep"
    assert "review: a keyed pseudonym is derived from the identifier" in text
    assert "# HIPAA Safe Harbor (45 CFR 164.514(b)(2))" in text
    assert "partition column 'dt' is a full date" in text and "biometric identifiers" in text
    plain = suggest(profiles, {"table": "raw.visits"}, "dt", "visits")
    assert "hipaa-zip3" not in plain and "Safe Harbor" not in plain


def test_an_unknown_preset_is_a_one_line_error():
    with pytest.raises(SpecError, match="--preset: unknown 'gdpr'; one of hipaa-safe-harbor"):
        suggest([col("uid", "bigint")], {"table": "raw.t"}, "dt", "t", "gdpr")


def test_column_level_evidence_decides_what_single_values_cannot():
    """No context keyword stands beside a value in a column: nearly all values passing
    a check digit, or name- or address-shaped values a share of which the engine
    finds, decide the column; below the thresholds it is kept."""
    import dataclasses

    bsn = dataclasses.replace(col("c03"), checksummed={"nl_bsn": 995, "ca_sin": 90})
    assert propose(bsn).action == "{kind: hash}"  # a company's RSIN passes it too
    assert propose(bsn).evidence.startswith("review: 99.5% pass the NL_BSN check digits")
    # A name that says what the column is decides instead (an id with a Luhn digit).
    ids = dataclasses.replace(col("customer_id"), checksummed={"ca_sin": 1000})
    assert propose(ids).action == "{kind: hash}" and propose(ids).identifier
    # One merchant's routing number on most rows: a category, not people.
    few = dataclasses.replace(col("c05", distinct=40), checksummed={"nl_bsn": 950})
    assert propose(few).action == "{kind: keep}"
    # Short values half of which hold a phone (extensions keep them from being whole).
    phones = col("c06", hits={"phone": 690}, whole={"phone": 240}, mean_length=17)
    assert propose(phones).action == "{kind: hash, canonical: phone}"
    card = dataclasses.replace(col("c04"), checksummed={"credit_card": 1000})
    assert "keep_last: 4" in propose(card).action
    chance = dataclasses.replace(col("order_no"), checksummed={"nl_bsn": 95, "ca_sin": 100})
    assert propose(chance).action == "{kind: keep}"  # a random number passes 1 in 10
    names = dataclasses.replace(col("field_g", hits={"person": 400}), name_like=990)
    assert propose(names).action == "{kind: surrogate, domain: person_name}"
    cities = dataclasses.replace(col("field_h", hits={"person": 20}), name_like=990)
    assert propose(cities).action == "{kind: keep}"  # capitalised words, few people
    hospitals = dataclasses.replace(col("field_i", hits={"person": 410}, distinct=30),
                                    name_like=990)  # fmt: skip
    assert propose(hospitals).action == "{kind: keep}"  # 30 values: a category
    addresses = dataclasses.replace(col("field_w", hits={"street_address": 150}), address_like=950)
    assert propose(addresses).action == "{kind: redact}"
    skus = dataclasses.replace(col("sku", hits={"street_address": 3}), address_like=1000)
    assert propose(skus).action == "{kind: keep}"


def test_the_shape_tests_and_checksums_on_values():
    from pipelines.discover import _address_like, _checksums, _name_like

    assert _name_like("Myrthe van Emmelen-Gerritsen") and _name_like("Dott. Eliana Udinesi")
    assert not _name_like("Galaxy S21 Ultra")  # no digits in a name
    assert not _name_like("Paris") and not _name_like("order 12 shipped") and not _name_like("")
    assert _address_like("Via Valerio, 161") and _address_like("870 Lee Gateway Apt. 653")
    assert not _address_like("jane@example.com 12") and not _address_like("12345")
    regions = ("NL", "CA", "BR")
    assert _checksums("111222333", regions) == ["nl_bsn"]  # 11-proof: 9*1+8*1+...-1*3
    assert _checksums("599 802 543", regions) == ["ca_sin"]  # Luhn
    assert _checksums("599 802 544", regions) == []  # one digit off
    assert _checksums("12a45", regions) == []  # not a digit run


def test_a_column_of_single_first_names_or_surnames_is_a_name_column_when_varied():
    import dataclasses

    from pipelines.discover import _listed_name

    assert _listed_name("Mary") and _listed_name("Johnson") and not _listed_name("red")
    assert not _listed_name("Mary Ann") and not _listed_name("")
    firsts = dataclasses.replace(col("c16", distinct=600), listed_names=770)
    assert propose(firsts).action == "{kind: surrogate, domain: person_name}"
    assert propose(firsts).evidence.startswith("77% listed first names or surnames")
    race = dataclasses.replace(col("field_q", distinct=5), listed_names=966)  # White, Black
    assert propose(race).action == "{kind: keep}"
    chinese = dataclasses.replace(col("field_r", distinct=91), listed_names=960)  # Wang, Li, …
    assert propose(chinese).action == "{kind: surrogate, domain: person_name}"
