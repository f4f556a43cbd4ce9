"""Pseudonym tokens never look like PII to the output gate, at any allowed format.

A hex token of 12 digits read as a phone number, one of 16 digits passing Luhn as a
card (174 all-digit tokens in 300,000 values, 17 Luhn-valid). Tokens are now one word
(letters, digits, ``_``), and tokens of up to 34 characters carry ``_`` second, so no
detector can match inside a token or a whole one; the bound is 0 by construction.
"""

from __future__ import annotations

import re

import pytest

from pipelines.desensitize.actions.pseudonym import SHAPED_UP_TO, TOKEN_FORMATS, token_shape
from pipelines.quality.pii import scan
from pipelines.spec.models import PipelineSpec
from tests.spark.helpers import desensitized, make_spec

FORMATS = [(enc, n) for enc, (_, full, _) in TOKEN_FORMATS.items() for n in range(8, full + 1)]


def test_every_allowed_format_is_one_word_and_short_ones_carry_an_underscore():
    for enc, n in FORMATS:
        regex, bits = token_shape(enc, n)
        assert re.fullmatch(r"\^\[[A-Za-z0-9_-]+\](_\[[A-Za-z0-9_-]+\])?\{\d+\}\$", regex), regex
        assert ("]_[" in regex) == (n <= SHAPED_UP_TO)
        assert bits >= 4 * 7  # even the shortest keeps 28 bits; the README asks for 64


# One format of each risk the shape removes: all-digit hex read as phone (12) or card
# (16), base32/base64url at lengths of alphanumeric IBANs (20, 22, 29), base64url's
# '-' (43), and the longest unshaped ones. The whole matrix (134 formats x 1,000,000
# rows, 26 minutes here) is benchmarks/token_formats.py; 100,000 rows per format here
# keep the test under a minute with the full PII catalogue (the bound is 0 by
# construction, so any count above 0 is a bug, whatever the sample size).
SAMPLE = [("hex", 12), ("hex", 16), ("hex", 35), ("base32", 20), ("base32", 29),
          ("base64url", 22), ("base64url", 43)]  # fmt: skip


def test_100k_tokens_of_risky_formats_match_no_detector(spark, key_env):
    """A 100,000-row frame, one column per sampled format, through the PII scan."""
    from pyspark.sql import functions as F

    columns = {f"{enc}_{n}": {"kind": "hash", "encoding": enc, "length": n} for enc, n in SAMPLE}
    spec: PipelineSpec = make_spec(columns)
    ids = spark.range(100_000).select(F.col("id").cast("string").alias("uid"))
    source = ids.select("uid", *[F.col("uid").alias(c) for c in columns])
    tokens = desensitized(source, spec).drop("uid")
    counts = scan(tokens)
    found = {f"{c}.{d}": n for c, per in counts.items() for d, n in per.items() if n}
    assert found == {}
    sample = tokens.limit(1).collect()[0].asDict()
    for enc, n in SAMPLE:
        assert re.fullmatch(token_shape(enc, n)[0], sample[f"{enc}_{n}"])


@pytest.mark.parametrize(("enc", "n"), [("hex", 12), ("hex", 16), ("base64url", 43)])
def test_the_reported_formats_pass_the_output_gate(spark, key_env, enc, n):
    """hex 12 (phone) and hex 16 (card) on an 'ip' column failed the output gate."""
    from pyspark.sql import functions as F

    from pipelines.plan import compile_plan
    from pipelines.quality.gate import run_gate
    from pipelines.quality.suites import output_suite

    spec = make_spec({"ip": {"kind": "hash", "encoding": enc, "length": n}})
    source = spark.range(100_000).select(F.col("id").cast("string").alias("uid"),
                                         F.concat(F.lit("10.0."), F.col("id")).alias("ip"))  # fmt: skip
    out = desensitized(source, spec)
    plan = compile_plan(spec, "2026-11-25", resolve=False).bind(source.schema, "t")
    gate, _ = run_gate(output_suite(plan, 100_000), out, "t")
    assert gate.passed, gate.describe_failures()
