"""Unicode normalization of keyed actions: equal to Python, byte for byte.

References are built with ``unicodedata.normalize``, an explicit White_Space set (not
``str.strip``, which strips more) and ``str.casefold`` (not ``lower``), and the
pseudonyms compared with Python's ``hmac``. Generated strings mix combining marks,
every White_Space character, full-width forms, ß and final sigma, drawn from the
characters Python's Unicode database assigns (ICU may know newer ones; normalization
and case folding of assigned characters are stable across Unicode versions).
"""

from __future__ import annotations

import hashlib
import hmac
import sys
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.desensitize.keyed import WHITE_SPACE
from tests.conftest import TEST_KEY
from tests.spark.helpers import apply

# U+0009-000D, 0020, 0085, 00A0, 1680, 2000-200A, 2028, 2029, 202F, 205F, 3000 (PropList.txt)
WHITE_SPACE_POINTS = [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                      0x2028, 0x2029, 0x202F, 0x205F, 0x3000]  # fmt: skip


def reference(value: str, steps: list[str]) -> str:
    for step in steps:
        if step in ("nfc", "nfkc"):
            value = unicodedata.normalize(step.upper(), value)
        elif step == "trim_unicode":
            value = value.strip(WHITE_SPACE)
        elif step == "casefold":
            value = value.casefold()
        elif step == "trim":  # ASCII white space, as before
            value = value.strip(" \t\n\x0b\f\r")
    return value


def token(value: str) -> str:
    return hmac.new(TEST_KEY.encode(), value.encode("utf-8"), hashlib.sha256).hexdigest()


def assigned(c: str) -> bool:
    return unicodedata.category(c) not in ("Cn", "Cs")


PIECES = st.sampled_from(
    ["José", "Núñez", "Jose\u0301", "Nun\u0303ez", "ＢＯＢ@Ｘ.ＣＯＭ", "bob@x.com", "Straße", "STRASSE",
     "ΣΑΣ", "σας", "ﬁ", "Å", "A\u030a", "\u212b", "İ", "ǅ", "①", "㍿", " ", "\t"]
    + [chr(c) for c in WHITE_SPACE_POINTS]
)  # fmt: skip
ANY = st.characters(codec="utf-8").filter(assigned)
TEXTS = st.lists(st.one_of(PIECES, ANY.map(str)), max_size=8).map("".join)
STEPS = [["nfc"], ["nfkc"], ["trim_unicode"], ["casefold"], ["nfkc", "trim_unicode", "casefold"],
         ["casefold", "nfkc"], ["trim", "nfc"]]  # fmt: skip


def test_the_white_space_set_is_unicodes():
    assert sorted(map(ord, WHITE_SPACE)) == WHITE_SPACE_POINTS
    assert unicodedata.unidata_version >= "14.0" and sys.version_info >= (3, 11)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(TEXTS, min_size=20, max_size=60), which=st.sampled_from(range(len(STEPS))))
def test_normalized_pseudonyms_equal_python_hmac(spark, key_env, values, which):
    steps = STEPS[which]
    rows = [(f"u{i}", v) for i, v in enumerate(values)]
    got = apply(spark, rows, "uid string, v string", {"v": {"kind": "hash", "normalize": steps}})
    want = [token(reference(v, steps)) for v in values]
    assert [r.v for r in got] == want


def test_reported_forms_meet_under_the_recommended_normalization(spark, key_env):
    """NFC and NFD names, U+00A0/U+3000 padding and full-width forms used to differ."""
    steps = ["nfkc", "trim_unicode", "casefold"]
    rows = [("a", "José Núñez"), ("b", unicodedata.normalize("NFD", "José Núñez")),
            ("c", "\u00a0josé núñez\u3000"), ("d", "ＢＯＢ@X.COM"), ("e", "bob@x.com"),
            ("f", None)]  # fmt: skip
    out = {r.uid: r.v for r in apply(spark, rows, "uid string, v string",
                                     {"v": {"kind": "hash", "normalize": steps}})}  # fmt: skip
    assert out["a"] == out["b"] == out["c"] and out["d"] == out["e"] and out["f"] is None
    old = {r.uid: r.v for r in apply(spark, rows, "uid string, v string",
                                     {"v": {"kind": "hash", "normalize": ["trim", "lower"]}})}  # fmt: skip
    assert old["a"] != old["b"] and old["d"] != old["e"]  # the defaults stay as they were
    surrogates = {r.uid: r.v for r in apply(spark, rows, "uid string, v string", {
        "v": {"kind": "surrogate", "domain": "email", "normalize": steps}})}  # fmt: skip
    assert surrogates["d"] == surrogates["e"] and surrogates["a"] == surrogates["b"]
