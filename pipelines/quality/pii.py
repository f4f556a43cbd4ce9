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


def _without_dates(col: Column) -> Column:
    return F.regexp_replace(col, ISO_DATE, " ")


def _matches(col: Column, pattern: str) -> Column:
    return F.regexp_extract_all(col, F.lit(pattern), 0)


def _digits(s: Column) -> Column:
    return F.regexp_replace(s, r"\D", "")


def luhn_valid(digits: Column) -> Column:
    """Luhn checksum of a digit string.

    From the right, every second digit is doubled (minus 9 when above 9); the sum of
    all digits must be ≡ 0 (mod 10).
    """
    values = F.transform(
        F.split(F.reverse(digits), ""),
        lambda d, i: F.when(
            i % 2 == 1,
            F.when(d.cast("int") * 2 > 9, d.cast("int") * 2 - 9).otherwise(d.cast("int") * 2),
        ).otherwise(d.cast("int")),
    )
    return (F.length(digits) > 0) & (F.aggregate(values, F.lit(0), lambda a, x: a + x) % 10 == 0)


def iban_valid(compact: Column) -> Column:
    """ISO 13616 IBAN check on a compact (space-free) candidate.

    Move the first four characters to the end, map A..Z to 10..35; the resulting
    number must be ≡ 1 (mod 97), computed digit by digit so it stays in range.
    """
    rearranged = F.concat(F.substring(compact, 5, 64), F.substring(compact, 1, 4))
    chars = F.split(rearranged, "")

    def step(acc: Column, ch: Column) -> Column:
        is_digit = ch.rlike("^[0-9]$")
        letter_value = F.ascii(ch) - 55  # 'A' = 65 -> 10
        return F.when(is_digit, (acc * 10 + ch.cast("int")) % 97).otherwise(
            (acc * 100 + letter_value) % 97
        )

    return F.aggregate(chars, F.lit(0), step) == 1


def _digit_count(col: Column) -> Column:
    # One regex pass that deletes the non-digit runs. (`translate` is slower: Spark's
    # UTF8String.translate allocates a String per character.)
    return F.length(F.regexp_replace(col, "[^0-9]+", ""))


# Every phone or card match holds a digit not preceded by a word character: its
# leading digit, or the one after its leading '+' or '('. Blanking dates out first
# does not change what precedes a digit, because ISO_DATE cannot end right before one.
_MATCH_START = r"(?<!\w)\d"


def _email(col: Column) -> tuple[list[Column], Column]:
    return [col.contains("@")], col.rlike(EMAIL)


def _phone(col: Column) -> tuple[list[Column], Column]:
    hits = F.filter(
        _matches(_without_dates(col), PHONE), lambda m: F.length(_digits(m)).between(10, 15)
    )
    return [_digit_count(col) >= 10, col.rlike(_MATCH_START)], F.size(hits) > 0


def _national_id(col: Column) -> tuple[list[Column], Column]:
    return [_digit_count(col) >= 9, col.contains("-")], col.rlike(SSN)


def _payment_card(col: Column) -> tuple[list[Column], Column]:
    hits = F.filter(
        F.transform(_matches(_without_dates(col), CARD), _digits),
        lambda d: F.length(d).between(13, 19) & luhn_valid(d),
    )
    return [_digit_count(col) >= 13, col.rlike(_MATCH_START)], F.size(hits) > 0


def _iban(col: Column) -> tuple[list[Column], Column]:
    hits = F.filter(
        F.transform(_matches(col, IBAN), lambda m: F.regexp_replace(m, " ", "")),
        iban_valid,
    )
    return [_digit_count(col) >= 8, col.rlike("[A-Z]{2}[0-9]{2}")], F.size(hits) > 0


def _ipv4(col: Column) -> tuple[list[Column], Column]:
    return [_digit_count(col) >= 4, col.contains(".")], col.rlike(IPV4)


def _ipv6(col: Column) -> tuple[list[Column], Column]:
    hits = F.filter(_matches(col, IPV6), lambda m: F.length(m) > 2)
    return [col.contains(":")], F.size(hits) > 0


# Each builder returns (guards, match): guards are cheap conditions every match
# satisfies (enough digits, an '@', a place where a match can begin), so the costly
# extraction and checksums run only on the few values that pass them. They nest as
# `when(g1, when(g2, match))`: Spark's subexpression elimination computes an
# expression once per row for every position it is always evaluated in, so the
# digit count, first guard of five detectors, is computed once, while the second
# guards stay behind the first (as `g1 & g2` they would be hoisted and run on every
# row: the phone and card guards share their regex).
_BUILDERS = {
    "email": _email,
    "phone": _phone,
    "national_id": _national_id,
    "payment_card": _payment_card,
    "iban": _iban,
    "ipv4": _ipv4,
    "ipv6": _ipv6,
}


def detector(col: Column, name: str) -> Column:
    """Boolean expression: whether the value contains an identifier of kind ``name``."""
    guards, out = _BUILDERS[name](col)
    for guard in reversed(guards):
        out = F.when(guard, out).otherwise(False)
    return out


def unguarded(col: Column, name: str) -> Column:
    """The same test without its guards (null: False): the reference they must match."""
    return F.coalesce(_BUILDERS[name](col)[1], F.lit(False))


def detectors(col: Column) -> dict[str, Column]:
    """Name -> boolean expression, for every detector."""
    return {name: detector(col, name) for name in _BUILDERS}


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
        col = F.col(field.name)
        for name, hit in detectors(col).items():
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
