"""PII detectors fire on planted identifiers (also inside free text) and not on clean output."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from pipelines.quality.pii import (
    DETECTORS,
    candidate,
    count_of,
    detectors,
    needs_confirmation,
    scan,
    unguarded,
)

POSITIVE = {
    "email": ["reach me at jane.roe+x@mail.example.co.uk today", "A@B.IO"],
    "phone": ["call +1 212-555-0134 now", "(646) 555 0199", "+12125550134", "+44 20 7946 0958", "tel 212.555.0134", "2026-01-05 call 212-555-0134"],
    "national_id": ["ssn 123-45-6789 on file", "078-05-1120"],
    "payment_card": ["card 4111 1111 1111 1111 exp 12/29", "5500-0000-0000-0004", "4012888888881881", "378282246310005", "[2026-01-01-2026-03-31] 4111 1111 1111 1111"],
    "iban": ["pay to DE89 3704 0044 0532 0130 00 please", "GB82WEST12345698765432"],
    "ipv4": ["from 192.168.0.1:8080", "8.8.8.8"],
    "ipv6": ["peer 2001:db8:85a3::8a2e:370:7334 ok", "fe80::1", "2001:0db8:0000:0000:0000:ff00:0042:8329"],
}
NEGATIVE = [
    "2026-11-25", "10:07:54", "2026-11-01 10:07:54", "[REDACTED]", "**** **** **** 1234", "+# ###-###-##47",
    "E00000003072", "33.88", "order 12345", "4111 1111 1111 1112",  # Luhn-invalid
    # mod-97 invalid; its trailing 18 digits also fail Luhn (with "...01" they pass Luhn
    # by a 1-in-10 coincidence, and flagging that as a possible card is fail-closed)
    "DE89 3704 0044 0532 0130 02",
    "000-12-3456", "999.1.1.1", "std::vector", "version 1.2.3.4.5", "mb3ma6kmbeaadpe6d4to",
    "53ymlwz2xeyk2nwlfthi", "a" * 64, "Nathan Rivera", "", "12:30", "v1.2.3",
    "[10003-10399]", "[2125550100-2125550199]",  # k-anonymity ranges
    "[2026-01-01-2026-03-31]", "[2024-02-29-2026-12-31]", "2026-01-01 - 2026-03-31",  # dates
]


def detect(spark, values):
    df = spark.createDataFrame([(v,) for v in values], "v string")
    exprs = [e.alias(k) for k, e in detectors("v").items()]
    return [r.asDict() for r in df.select(*exprs).collect()]


@pytest.mark.parametrize("kind", DETECTORS)
def test_detector_fires_on_planted_values(spark, kind):
    for value, flags in zip(POSITIVE[kind], detect(spark, POSITIVE[kind]), strict=True):
        assert flags[kind], f"{kind} missed a planted value #{POSITIVE[kind].index(value)}"


def test_no_detector_fires_on_clean_values(spark):
    for value, flags in zip(NEGATIVE, detect(spark, NEGATIVE), strict=True):
        fired = [k for k, v in flags.items() if v]
        assert not fired, f"{fired} fired on clean value #{NEGATIVE.index(value)}"


# Pieces that put digits, signs and dates next to each other in every way the guards
# reason about: a '+' or '(' right after a date, digits right after letters, etc.
PIECES = [v for vs in POSITIVE.values() for v in vs] + NEGATIVE + [
    "2026-01-01", "+1", "(212)", "555", "0134", "4111", "DE89", "E0", "x", "-", " ", ".", ":", "[", "]",
]
fragments = st.sampled_from(PIECES) | st.text(alphabet="0123456789 -+().:[]@AZaz_", max_size=12)


# No shrinking: every step would be a Spark job; the failing value is in the message.
@settings(
    max_examples=5,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(values=st.lists(st.lists(fragments, max_size=6).map("".join), min_size=300, max_size=600))
def test_guards_never_change_a_detector_answer(spark, values):
    """Guards and screens only skip values a detector's definition would not flag anyway.

    The candidate test (guards and screen, the scan's first pass) holds for every
    value the definition flags, and is the definition itself for detectors without
    a confirming step.
    """
    df = spark.createDataFrame([(v,) for v in [*values, None]], "v string")
    guarded = [e.alias(k) for k, e in detectors("v").items()]
    exact = [unguarded("v", k).alias(f"{k}_exact") for k in DETECTORS]
    screened = [F.coalesce(candidate("v", k), F.lit(False)).alias(f"{k}_candidate") for k in DETECTORS]
    for row in df.select("v", *guarded, *exact, *screened).collect():
        for k in DETECTORS:
            assert bool(row[k]) == row[f"{k}_exact"], (k, row["v"])
            if needs_confirmation(k):
                assert row[f"{k}_candidate"] or not row[k], (k, row["v"])
            else:
                assert row[f"{k}_candidate"] == row[f"{k}_exact"], (k, row["v"])


def test_hex_pseudonyms_do_not_look_like_phones_or_cards(spark):
    import hashlib

    tokens = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(300)]
    assert not any(any(f.values()) for f in detect(spark, tokens))


def test_scan_counts_every_row_and_honours_allowed(spark):
    rows = [("x@y.com", "call +1 212-555-0134", 1)] * 3 + [(None, "clean", 2), ("none", "4111111111111111", 3)]
    # Candidates the second pass must reject: Luhn-invalid, a mod-97-invalid IBAN, "::".
    rows += [("4111 1111 1111 1112", "DE89 3704 0044 0532 0130 02", 4), ("std::vector", "x :: y", 5)]
    df = spark.createDataFrame(rows, "email string, note string, n int")
    counts = scan(df, allowed={"email": {"email"}})
    assert "email" not in counts["email"] and counts["email"]["phone"] == 0
    assert counts["note"]["phone"] == 3 and counts["note"]["payment_card"] == 1
    assert counts["email"]["payment_card"] == 0 and counts["note"]["iban"] == 0
    assert counts["email"]["ipv6"] == 0 and counts["note"]["ipv6"] == 0
    first_pass = df.agg(*[count_of(candidate(c, k)).alias(f"{c}_{k}") for c, k in
                          [("email", "payment_card"), ("note", "iban"), ("note", "ipv6")]]).first()  # fmt: skip
    assert first_pass.asDict() == {"email_payment_card": 1, "note_iban": 1, "note_ipv6": 1}  # all confirmed away
    assert "n" not in counts  # only string columns are scanned
    assert set(counts["note"]) == set(DETECTORS)


def test_demo_output_is_clean_except_allowed_surrogates(spark, tmp_path, monkeypatch):
    from rich.console import Console

    from pipelines.demo import run_demo

    monkeypatch.delenv("ANONYMIZE_DEMO_KEY", raising=False)
    summary = run_demo(rows=400, days=1, out=tmp_path / "d", console=Console(stderr=True))
    published = spark.table(summary["published_table"]).where("dt = '2026-11-01'")
    counts = scan(published, allowed={"email": {"email"}})
    leaks = {c: {k: n for k, n in d.items() if n} for c, d in counts.items()}
    assert not any(leaks.values()), leaks
    raw = spark.table(summary["raw_table"]).where("dt = '2026-11-01'")
    raw_counts = scan(raw)
    # Positive control: the same scan finds the planted PII in the raw table.
    assert raw_counts["email"]["email"] == 400 and raw_counts["national_id"]["national_id"] == 400
    assert raw_counts["card_number"]["payment_card"] == 400 and raw_counts["note"]["email"] > 0
    assert raw_counts["phone"]["phone"] == 400
