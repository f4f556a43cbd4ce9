"""PII detectors as native Spark SQL expressions, and a single-pass scan that counts them.

Each detector is a boolean expression over one string column that is true when the
value *contains* the kind of identifier anywhere (free text included):

* ``email``: ``local@domain.tld``.
* ``phone``: an optional ``+country`` prefix, an optional ``(area)``, then digit groups
  separated by space, dot or dash, delimited by non-word characters (and not by
  ``:``, so date-times do not count, nor by ``[``/``]``, so k-anonymity ranges do
  not), and holding
  10 to 15 digits in total (so ISO dates and short numbers do not count).
* Phone and card detection first blank out ISO dates (``YYYY-MM-DD`` with a valid
  month and day): a date range such as ``[2026-01-01-2026-03-31]`` (how k-anonymity
  releases date QIs) is 12–16 digits in dash-separated groups and would otherwise
  read as a phone or, Luhn permitting, a card. Neither format groups digits 4-2-2.
* ``national_id``: US SSN ``AAA-GG-SSSS`` with the reserved areas 000, 666 and 9xx
  and zero groups excluded.
* ``payment_card``: 13–19 digits, optionally grouped by spaces or dashes, that pass
  the Luhn checksum (so order numbers rarely count).
* ``iban``: two letters, two check digits and 11–30 alphanumerics (spaces allowed
  every 4), that pass the ISO 13616 mod-97 check.
* ``ipv4``: four dotted octets 0–255; ``ipv6``: eight groups, or a ``::``-compressed form.

Checksums (Luhn, mod-97) run as Spark higher-order functions (``aggregate`` over the
characters): native, no Python UDF. Nothing here returns values: the scan returns
counts per (column, detector), so its results can go into manifests and reports.

The expressions are written as Spark SQL text and parsed once per (column,
detector) with ``F.expr``. Built with the Python Column API they took ~14,000 py4j
round trips for the 62 checks of the demo's output gate (each higher-order lambda
costs hundreds): ~1.9 s of driver time per validation, whatever the data size.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from pipelines.spec.models import PII_DETECTORS

EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# Not inside "[lo-hi]" brackets: k-anonymity releases numeric QIs as such ranges
# ("[10003-10399]" is two postal codes, not a phone number).
PHONE = r"(?<![\w+:\[])(\+\d{1,3}[ .-]?)?(\(\d{1,4}\)[ .-]?)?\d{2,4}([ .-]?\d{2,4}){1,5}(?![\w:\]])"
SSN = r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])"
CARD = r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])"
IBAN = r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])"
_OCTET = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = rf"(?<![\d.]){_OCTET}(\.{_OCTET}){{3}}(?![\d.])"
_H = r"[0-9A-Fa-f]{1,4}"
IPV6 = rf"(?<![\w:])(({_H}:){{7}}{_H}|({_H}(:{_H}){{0,6}})?::({_H}(:{_H}){{0,6}})?)(?![\w:])"


ISO_DATE = r"(?<!\d)\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(?!\d)"

_C = "__COLUMN__"  # placeholder for the quoted column in the templates below


def _raw(pattern: str) -> str:
    """A Spark SQL raw string literal (no escape processing) holding ``pattern``."""
    assert "'" not in pattern, pattern
    return f"r'{pattern}'"


_DIGIT_COUNT = f"length(regexp_replace({_C}, '[^0-9]+', ''))"
_WITHOUT_DATES = f"regexp_replace({_C}, {_raw(ISO_DATE)}, ' ')"
_NON_DIGIT = _raw(r"\D")

# Luhn checksum of the digit string `d`: from the right, every second digit is
# doubled (minus 9 when above 9); the sum of all digits must be ≡ 0 (mod 10).
_LUHN = (
    "(length(d) > 0 AND aggregate(transform(split(reverse(d), ''), (x, i) -> "
    "CASE WHEN i % 2 = 1 THEN CASE WHEN int(x) * 2 > 9 THEN int(x) * 2 - 9 ELSE int(x) * 2 END "
    "ELSE int(x) END), 0, (acc, y) -> acc + y) % 10 = 0)"
)
# ISO 13616 check of the compact (space-free) candidate `m`: move the first four
# characters to the end, map A..Z to 10..35; the number must be ≡ 1 (mod 97),
# computed character by character so it stays in range.
_MOD97 = (
    "(aggregate(split(concat(substring(m, 5, 64), substring(m, 1, 4)), ''), 0, (acc, ch) -> "
    "CASE WHEN ch RLIKE '^[0-9]$' THEN (acc * 10 + int(ch)) % 97 "
    "ELSE (acc * 100 + ascii(ch) - 55) % 97 END) = 1)"
)

# Every phone or card match holds a digit not preceded by a word character: its
# leading digit, or the one after its leading '+' or '('. Blanking dates out first
# does not change what precedes a digit, because ISO_DATE cannot end right before one.
_MATCH_START = r"(?<!\w)\d"

# Detector -> (guards, match), SQL over the value `__COLUMN__`. Guards are cheap
# conditions every match satisfies (enough digits, an '@', a place where a match
# can begin), so the costly extraction and checksums run only on the few values that
# pass them. They nest as CASE WHEN g1 THEN CASE WHEN g2 THEN match …: Spark's
# subexpression elimination computes an expression once per row for every position
# it is always evaluated in, so the digit count, first guard of five detectors, is
# computed once, while the second guards stay behind the first (as `g1 AND g2` they
# would be hoisted and run on every row: the phone and card guards share a regex).
_SQL: dict[str, tuple[tuple[str, ...], str]] = {
    "email": ((f"contains({_C}, '@')",), f"{_C} RLIKE {_raw(EMAIL)}"),
    "phone": (
        (f"{_DIGIT_COUNT} >= 10", f"{_C} RLIKE {_raw(_MATCH_START)}"),
        f"size(filter(regexp_extract_all({_WITHOUT_DATES}, {_raw(PHONE)}, 0), "
        f"m -> length(regexp_replace(m, {_NON_DIGIT}, '')) BETWEEN 10 AND 15)) > 0",
    ),
    "national_id": (
        (f"{_DIGIT_COUNT} >= 9", f"contains({_C}, '-')"),
        f"{_C} RLIKE {_raw(SSN)}",
    ),
    "payment_card": (
        (f"{_DIGIT_COUNT} >= 13", f"{_C} RLIKE {_raw(_MATCH_START)}"),
        f"size(filter(transform(regexp_extract_all({_WITHOUT_DATES}, {_raw(CARD)}, 0), "
        f"m -> regexp_replace(m, {_NON_DIGIT}, '')), "
        f"d -> length(d) BETWEEN 13 AND 19 AND {_LUHN})) > 0",
    ),
    "iban": (
        (f"{_DIGIT_COUNT} >= 8", f"{_C} RLIKE '[A-Z]{{2}}[0-9]{{2}}'"),
        f"size(filter(transform(regexp_extract_all({_C}, {_raw(IBAN)}, 0), "
        f"m -> regexp_replace(m, ' ', '')), m -> {_MOD97})) > 0",
    ),
    "ipv4": ((f"{_DIGIT_COUNT} >= 4", f"contains({_C}, '.')"), f"{_C} RLIKE {_raw(IPV4)}"),
    "ipv6": (
        (f"contains({_C}, ':')",),
        f"size(filter(regexp_extract_all({_C}, {_raw(IPV6)}, 0), m -> length(m) > 2)) > 0",
    ),
}


def _bind(template: str, column: str) -> str:
    return template.replace(_C, "`" + column.replace("`", "``") + "`")


def detector_sql(column: str, name: str) -> str:
    """SQL boolean: whether the value of ``column`` contains an identifier of kind ``name``."""
    guards, sql = _SQL[name]
    for guard in reversed(guards):
        sql = f"CASE WHEN {guard} THEN {sql} ELSE false END"
    return _bind(sql, column)


def detector(column: str, name: str) -> Column:
    """Boolean expression: whether the value contains an identifier of kind ``name``."""
    return F.expr(detector_sql(column, name))


def unguarded(column: str, name: str) -> Column:
    """The same test without its guards (null: False): the reference they must match."""
    return F.expr(f"coalesce({_bind(_SQL[name][1], column)}, false)")


def detectors(column: str) -> dict[str, Column]:
    """Name -> boolean expression, for every detector."""
    return {name: detector(column, name) for name in _SQL}


DETECTORS = PII_DETECTORS


def scan(df: DataFrame, allowed: dict[str, set[str]] | None = None) -> dict[str, dict[str, int]]:
    """Count, in one pass over every row, values containing each kind of PII.

    Every string column is checked with every detector. ``allowed`` maps a column to
    detectors it may match (an email surrogate column may hold emails). Returns
    ``{column: {detector: count}}``: counts only, never values.
    """
    allowed = allowed or {}
    aggs, keys = [], []
    for field in df.schema.fields:
        if not isinstance(field.dataType, StringType):
            continue
        for name, hit in detectors(field.name).items():
            if name in allowed.get(field.name, set()):
                continue
            keys.append((field.name, name))
            aggs.append(F.sum(F.when(hit, 1).otherwise(0)).alias(f"c{len(keys)}"))  # null: 0
    if not aggs:
        return {}
    row = df.agg(*aggs).collect()[0]
    counts: dict[str, dict[str, int]] = {}
    for i, (column, name) in enumerate(keys, start=1):
        counts.setdefault(column, {})[name] = int(row[f"c{i}"] or 0)
    return counts
