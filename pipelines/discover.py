"""Spec discovery: profile a raw partition and draft a spec (``anonymize spec suggest``).

:func:`profile` reads one partition once for its counts (rows, nulls, approximate
distinct values: HyperLogLog++ at 5 % relative error) and samples the first ``sample``
rows of its string columns, which the free-text PII engine (:func:`pipelines.pii.engine.find`)
reads on the driver: per entity, how many sampled values hold it and how many *are*
it (one span covering the trimmed value). The sample stays in memory; only counts
leave this module.

:func:`suggest` turns the profiles into a draft spec that validates: one proposed
action per column, each with a YAML comment giving its evidence (shares and counts,
never a value), quasi-identifier candidates in a commented-out ``k_anonymity:`` block,
``undeclared: fail`` and a key reference. The rules, first match wins:

1. most sampled values (≥ 50 %) are one entity as a whole: that entity's action
   (:data:`ACTIONS`: a joinable pseudonym for email, phone and IBAN, a name
   surrogate, the last four digits of a card, national identifiers and credentials
   dropped, addresses redacted, IP addresses pseudonymized);
2. column-level evidence, for a column whose name says nothing (no value in a
   column has a context keyword beside it, but all of them together speak): short
   values of which ≥ 30 % hold one entity (phones with extensions, mixed locales); ≥ 90 % passing
   one identifier's check digits (:data:`CHECKSUMMED`; a keyed pseudonym marked
   "review", as company register numbers share some checks); ≥ 90 % name-shaped
   values of which ≥ 30 % are found as people; single words ≥ 60 % on the name
   lists; ≥ 90 % address-shaped values of which ≥ 10 % hold a street address — each
   with a floor on distinct values, so a categorical column does not pass;
3. free text (mean length ≥ 30 characters) with PII in ≥ 1 % of values, or named
   like a note: ``scrub``;
4. the column's name says what it holds (``email``, ``phone``, ``ssn``, ``birth``,
   ``zip``, …; the names are in :data:`NAME_HINTS`): that kind's action on a string;
   a keyed pseudonym for an integer or date named like PII (a ``phone`` bigint),
   ``drop`` marked "review" for other types (an ``emails`` array, a ``contact``
   struct), whose values the engine does not read;
5. an identifier (named ``id``/``*_id``/``uuid``): a keyed pseudonym (a foreign key
   to a person is as identifying as the person's own key); the privacy unit is the
   first identifier never null, one naming a person (``customer_id``) first;
6. otherwise ``keep`` (dates, ages, postal codes and gender are listed as
   quasi-identifier candidates).

A person reviews the draft before it runs: the header says so, and names what the
rules cannot know (PII the engine does not detect, such as names off its lists;
columns whose meaning only the business knows).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pipelines.spec.base import plain_key
from pipelines.spec.quality import DEFAULT_COUNTRIES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class ColumnProfile:
    """What one column of a partition looks like (counts only, never values).

    Attributes:
        name: The source column's name.
        type: Its Spark type (``simpleString``: ``string``, ``date``, ``bigint``, …).
        rows: Rows in the partition.
        nulls: Null values.
        distinct: Approximate distinct non-null values.
        sampled: Non-null values the PII engine read (string columns; else 0).
        hits: Entity -> sampled values holding at least one span of it.
        whole: Entity -> sampled values that are one span of it, whole.
        mean_length: Mean length of the sampled values (0 when none).
        checksummed: Entity -> sampled values that, whole, pass that entity's checksum
            (:data:`CHECKSUMMED`) though no context keyword stands beside them.
        name_like: Sampled values shaped like a person's name (2 to 5 words, each
            capitalised or a particle, no digits).
        address_like: Sampled values shaped like a street address (a number and a
            word of 3 letters or more, at most 80 characters, no ``@``).
        listed_names: Sampled values that are one capitalised word on the engine's
            first-name or surname lists (a first or last name alone).
    """

    name: str
    type: str
    rows: int
    nulls: int
    distinct: int
    sampled: int = 0
    hits: dict[str, int] = field(default_factory=dict)
    whole: dict[str, int] = field(default_factory=dict)
    mean_length: float = 0.0
    checksummed: dict[str, int] = field(default_factory=dict)
    name_like: int = 0
    address_like: int = 0
    listed_names: int = 0


def profile(
    df: DataFrame, sample: int = 2000, countries: Sequence[str] = DEFAULT_COUNTRIES
) -> list[ColumnProfile]:
    """Profile every column of one partition (one aggregation, one sample).

    Args:
        df: The partition's rows (without the partition column).
        sample: Rows whose string values the PII engine reads (the first ones).
        countries: Phone regions whose national formats count.

    Returns:
        One profile per column, in the frame's order.
    """
    from pyspark.sql import functions as F

    from pipelines.pii import engine

    def column(name: str):  # noqa: ANN202 (any source name, quoted)
        return F.col("`" + name.replace("`", "``") + "`")

    aggs = [F.count(F.lit(1)).alias("_rows")]
    for i, c in enumerate(df.columns):
        aggs.append(F.count(column(c)).alias(f"n{i}"))
        aggs.append(F.approx_count_distinct(column(c)).alias(f"d{i}"))
    counts = df.agg(*aggs).first()
    rows = int(counts["_rows"])
    strings = [c for c, t in df.dtypes if t == "string"]
    picked = df.select(*[column(c) for c in strings]).limit(sample)
    sampled = picked.collect() if strings else []
    regions = tuple(countries)
    out = []
    for i, (name, dtype) in enumerate(df.dtypes):
        hits: dict[str, int] = {}
        whole: dict[str, int] = {}
        checksummed: dict[str, int] = {}
        values = [r[name] for r in sampled if r[name] is not None] if name in strings else []
        for value in values:
            spans = engine.find(value, None, regions)
            for entity in {s.entity for s in spans}:
                hits[entity] = hits.get(entity, 0) + 1
            stripped = value.strip()
            start = len(value) - len(value.lstrip())
            one = spans[0] if len(spans) == 1 else None
            if one is not None and (one.start, one.end) == (start, start + len(stripped)):
                whole[one.entity] = whole.get(one.entity, 0) + 1
            for entity in _checksums(stripped, regions):
                checksummed[entity] = checksummed.get(entity, 0) + 1
        out.append(ColumnProfile(
            name=name, type=dtype, rows=rows, nulls=rows - int(counts[f"n{i}"]),
            distinct=int(counts[f"d{i}"]), sampled=len(values), hits=hits, whole=whole,
            mean_length=sum(map(len, values)) / len(values) if values else 0.0,
            checksummed=checksummed, name_like=sum(map(_name_like, values)),
            address_like=sum(map(_address_like, values)),
            listed_names=sum(map(_listed_name, values)),
        ))  # fmt: skip
    return out


#: Entities whose values carry a check digit (or two), so that a column of values that
#: pass it whole, nearly all of them, holds that entity even with no context keyword
#: beside each value: a random number passes one in 10 (Luhn, Verhoeff), 11 (the
#: Dutch 11-test, Germany's ISO 7064) or 97-100 (NIR, CPF); a random 9-digit number
#: passes the SIN or the BSN check 1 in 6. Not the US SSN (its rules accept 88% of
#: random 9-digit numbers), phones or IP addresses. Company register numbers share
#: some of these checks (France's SIREN and Canada's BN the SIN's Luhn, the Dutch
#: RSIN the BSN's 11-test), so such a column gets a keyed pseudonym marked "review".
CHECKSUMMED = ("fr_nir", "in_aadhaar", "br_cpf", "de_tax_id", "credit_card", "ca_sin", "nl_bsn")
#: Share of sampled values that must pass (a column of random numbers passes about
#: 1/10 of the time: 90% of 2,000 is beyond any chance).
CHECKSUM_SHARE = 0.9
#: A name-shaped column is a name column when this share of its values are found as
#: people (first name and surname on the engine's lists): Faker's European names were
#: found 40% of the time, a city or product column about never.
NAME_SHARE = 0.3
#: An address-shaped column is an address column when this share of its values hold a
#: street address the engine finds (a street type word): 17% to 30% for the mixed-locale
#: columns of the benchmark, but 7-9% for Faker's en_US ones alone and none for Italian
#: or Polish ones, which stay kept (a known gap: the engine knows few street words).
ADDRESS_SHARE = 0.1
#: Share of values that must have the name's or the address's shape.
SHAPE_SHARE = 0.9
#: A column of single words is a column of first names or surnames when this share of
#: them are on the name lists (Faker's en_US: 77% and 83%) and it has at least
#: :data:`LISTED_NAME_DISTINCT` distinct values (30 when 90% are listed: a column of
#: Chinese surnames has few); Adult's ``race`` ("White", "Black") is 97% listed
#: surnames, with 5 values.
LISTED_NAME_SHARE = 0.6
LISTED_NAME_DISTINCT = 100
#: Distinct values below which a column is categorical, not identifying, for the
#: checksum and name-shape rules (30 hospital names, one merchant's routing number).
MIN_DISTINCT = 100
#: Entities a short column (mean length under :data:`SHORT`) holds when
#: :data:`CONTAINED_SHARE` of its values contain one: a phone with an extension is not
#: a whole phone, and a mixed-locale phone column had 45% of its values found (the
#: engine finds no phone in bare random digit strings of 8 to 12 digits: 0 of 2,000).
CONTAINED = ("phone", "email", "iban", "ipv4", "ipv6", "mac_address", "credit_card")
CONTAINED_SHARE = 0.3
SHORT = 30

_NAME_WORD = re.compile(r"^(?:[^\W\d_][^\W\d_'’.\-]*|[^\W\d_]+(?:['’.\-][^\W\d_]*)*)$")
_PARTICLE = re.compile(r"^(?:van|von|der|den|de|del|della|di|da|dos|du|le|la|bin|al|y|e)$")


def _checksums(value: str, regions: tuple[str, ...]) -> list[str]:
    """The :data:`CHECKSUMMED` entities a whole value (digits and separators) passes."""
    from pipelines.pii.catalogue import BY_NAME
    from pipelines.pii.engine import RUN

    if not RUN.fullmatch(value):
        return []
    digits = sum(c.isdigit() for c in value)
    out = []
    for name in CHECKSUMMED:
        e = BY_NAME[name]
        if e.min_digits <= digits <= e.max_digits and e.validate(value, regions):
            out.append(name)
    return out


def _name_like(value: str) -> bool:
    words = value.split()
    return 2 <= len(words) <= 5 and all(
        _NAME_WORD.match(w) and (w[0].isupper() or _PARTICLE.match(w)) for w in words
    )


def _listed_name(value: str) -> bool:
    from pipelines.pii import names

    word = value.strip()
    if " " in word or not word[:1].isupper() or not _NAME_WORD.match(word):
        return False
    folded = names.fold(word)
    return folded in names.first_names() or folded in names.surnames()


def _address_like(value: str) -> bool:
    return (len(value) <= 80 and "@" not in value and any(c.isdigit() for c in value)
            and re.search(r"[^\W\d_]{3}", value) is not None)  # fmt: skip


#: Each entity's proposed action when a column holds it (flow-style YAML).
ACTIONS: dict[str, str] = {
    "email": "{kind: hash, canonical: email}",
    "phone": "{kind: hash, canonical: phone}",
    "iban": "{kind: hash, canonical: iban}",
    "person": "{kind: surrogate, domain: person_name}",
    "credit_card": '{kind: mask, keep_last: 4, separators: " -", char: "*"}',
    "ipv4": "{kind: hash}",
    "ipv6": "{kind: hash}",
    "mac_address": "{kind: hash}",
    "street_address": "{kind: redact}",
    "url_userinfo": "{kind: drop}",
    "credential": "{kind: drop}",
    "date_of_birth": "{kind: drop}",
}
#: National identifiers (and SSN-like numbers): dropped.
_DROPPED = ("us_ssn", "ca_sin", "uk_nino", "fr_nir", "de_tax_id", "es_nif", "it_fiscal_code",
            "nl_bsn", "in_aadhaar", "cn_resident_id", "br_cpf")  # fmt: skip

#: What a column's name says it holds, in this order: the lower-cased name (camelCase
#: split, spaces and dashes as ``_``) is searched; ``(^|_)…(_|$)`` means a whole part.
NAME_HINTS: tuple[tuple[str, str], ...] = (
    ("email", r"e_?mail"),
    ("phone", r"phone|(^|_)(mobile|tel|fax|cell|msisdn)(_|$)"),
    ("national_id", r"ssn|social_sec|national_id|passport|tax_?id"
                    r"|(^|_)(nino|nir|bsn|cpf|sin|nif|nie|aadhaar)(_|$)"),
    ("credit_card", r"card_?(number|no|num)|(^|_)(cc|pan)(_|$)|credit_?card"),
    ("iban", r"iban|account_?(number|no)"),
    ("ip", r"(^|_)(ip|ipv4|ipv6|mac)(_?addr(ess)?)?(_|$)|ip_?address|mac_?address"),
    ("street_address", r"(^|_)(street|address|addr|address_line\d*)(_|$)"),
    ("birth", r"birth|(^|_)dob(_|$)"),
    ("postal", r"zip|postal|post_?code|(^|_)plz(_|$)"),
    ("gender", r"(^|_)(gender|sex)(_|$)"),
    ("age", r"(^|_)age(_|$)"),
    ("id", r"(^|_)(id|uuid|guid)$|_id$|^id_"),
    ("person", r"(^|_)(first|last|full|given|family|middle|maiden|sur|person|customer|patient"
               r"|client|contact|user)_?name(_|$)|^name$|(^|_)surname(_|$)"),
    ("text", r"(^|_)(notes?|comments?|description|message|text|remarks?|body|feedback|memo)(_|$)"),
)  # fmt: skip
#: Identifier columns that name a person (preferred as the privacy unit).
_PERSON_ID = re.compile(r"(customer|user|person|patient|member|client|account|subscriber"
                        r"|employee|citizen|guest|passenger|student)")  # fmt: skip


def _hint(name: str) -> str | None:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)  # camelCase -> camel_case
    lowered = re.sub(r"[\s\-]+", "_", snake.lower())
    return next((kind for kind, pattern in NAME_HINTS if re.search(pattern, lowered)), None)


@dataclass(frozen=True)
class Proposal:
    """The action proposed for one column, and why.

    Attributes:
        column: The source column.
        action: Flow-style YAML of the action, without the braces' ``source_name``.
        evidence: The comment (shares and counts only).
        quasi_identifier: The ``k_anonymity`` entry it would have (flow-style YAML), or None.
        rename: The published name the action gives it (``generalize: age``), or None.
        identifier: Whether it is an identifier (a privacy unit candidate).
    """

    column: str
    action: str
    evidence: str
    quasi_identifier: str | None = None
    rename: str | None = None
    identifier: bool = False


def _share(n: int, of: int) -> str:
    """``n`` of ``of`` in percent, capped at 100 (distinct counts are approximate).

    Whole percents, but one decimal near 0 and 100, so only none reads ``0%`` and only
    all reads ``100%``.
    """
    if not of:
        return "n/a"
    pct = min(100.0, 100 * n / of)
    if 0 < pct < 0.1:
        return "<0.1%"
    if 99.9 < pct < 100:
        return ">99.9%"
    if 0 < pct < 1 or 99 < pct < 100:
        return f"{pct:.1f}%"
    return f"{pct:.0f}%"


_NUMERIC = re.compile(r"(tinyint|smallint|int|bigint|float|double|decimal.*)$")
_DATES = ("date", "timestamp", "timestamp_ntz")
#: Types the keyed pseudonym (``hash``) takes: strings, integers, dates.
_HASHABLE = re.compile(r"(string|tinyint|smallint|int|bigint|date)$")


def propose(p: ColumnProfile, text_source: bool = False) -> Proposal:
    """The action for one column (the module's rules, first match wins).

    Args:
        p: The column's profile.
        text_source: The source is CSV (every column a string; ``type:`` declares one).

    Returns:
        The proposal.
    """
    present = p.rows - p.nulls
    facts = f"{_share(p.nulls, p.rows)} null, distinct {_share(p.distinct, present)}"
    hint = _hint(p.name)
    top = max(p.whole.items(), key=lambda kv: kv[1], default=(None, 0))
    if top[0] is not None and p.sampled and top[1] / p.sampled >= 0.5:
        entity, n = top
        action = "{kind: drop}" if entity in _DROPPED else ACTIONS[entity]
        return Proposal(p.name, action, f"{_share(n, p.sampled)} {entity.upper()}, {facts}")
    if hint is None and p.sampled:
        column_level = _column_evidence(p, facts)
        if column_level is not None:
            return column_level
    if p.type == "string" and (
        hint == "text"
        or (p.mean_length >= 30 and max(p.hits.values(), default=0) >= 0.01 * p.sampled > 0)
    ):
        ranked = sorted(p.hits.items(), key=lambda kv: -kv[1])[:4]
        entities = ", ".join(f"{e.upper()} {_share(n, p.sampled)}" for e, n in ranked)
        why = f"free text, mean length {p.mean_length:.0f}" + (f"; {entities}" if ranked else "")
        return Proposal(p.name, "{kind: scrub}", f"{why}; {facts}")
    if hint in _PII_BY_NAME:
        why = f"named like {hint.replace('_', ' ')}"
        if p.type == "string":
            return Proposal(p.name, _PII_BY_NAME[hint], f"{why}; {facts}")
        if _HASHABLE.match(p.type) and hint != "national_id":
            return Proposal(p.name, "{kind: hash}", f"{why}, a {p.type} (keyed pseudonym); {facts}")
        return Proposal(p.name, "{kind: drop}", f"review: {why}, a {p.type}; {facts}")
    if hint == "person":
        if p.type == "string":
            return Proposal(p.name, ACTIONS["person"], f"named like a person's name; {facts}")
        return Proposal(p.name, "{kind: drop}", f"review: named like a name, a {p.type}; {facts}")
    if hint == "birth":
        if p.type == "date" or (text_source and p.type == "string"):
            declared = "type: date, " if p.type == "string" else ""
            action = f"{{{declared}kind: generalize, method: age, top: 90}}"
            why = "a birth date, as an age (top-coded at 90)"
            return Proposal(p.name, action, f"{why}; {facts}", "{type: numeric}", "_age")
        return Proposal(p.name, "{kind: drop}", f"named like a birth date, a {p.type}; {facts}")
    if hint == "postal":
        if p.type == "string":
            action = "{kind: generalize, method: prefix, length: 3}"
            why = "a postal code, to its 3-character prefix"
            return Proposal(p.name, action, f"{why}; {facts}", "{type: numeric}")
        why = "quasi-identifier: a postal code stored as a number (coarsen it)"
        return Proposal(p.name, "{kind: keep}", f"{why}; {facts}", "{type: numeric}")
    if hint == "gender":
        qi = f"{{type: categorical, hierarchy: hierarchies/{p.name}.csv}}"
        return Proposal(p.name, "{kind: keep}", f"quasi-identifier; {facts}", qi)
    if hint == "age" and (_NUMERIC.match(p.type) or text_source):
        declared = "{type: int, kind: keep}" if p.type == "string" else "{kind: keep}"
        return Proposal(p.name, declared, f"quasi-identifier; {facts}", "{type: numeric}")
    if hint == "id" and _HASHABLE.match(p.type):
        return Proposal(p.name, "{kind: hash}", f"an identifier (keyed pseudonym); {facts}",
                        identifier=True)  # fmt: skip
    if p.type in _DATES:
        return Proposal(p.name, "{kind: keep}", f"a date, quasi-identifier candidate; {facts}",
                        "{type: date}")  # fmt: skip
    return Proposal(p.name, "{kind: keep}", facts)


def _column_evidence(p: ColumnProfile, facts: str) -> Proposal | None:
    """Rule 2: what no single value shows and the whole column does (see the module doc)."""
    n = p.sampled
    contained = max(((e, p.hits.get(e, 0)) for e in CONTAINED), key=lambda kv: kv[1])
    if p.mean_length < SHORT and contained[1] / n >= CONTAINED_SHARE:
        entity, k = contained
        return Proposal(p.name, ACTIONS[entity], f"{_share(k, n)} hold {entity.upper()}, {facts}")
    summed = max(p.checksummed.items(), key=lambda kv: kv[1], default=(None, 0))
    if summed[0] is not None and summed[1] / n >= CHECKSUM_SHARE and p.distinct >= MIN_DISTINCT:
        entity, k = summed
        why = f"{_share(k, n)} pass the {entity.upper()} check digits"
        if entity == "credit_card":
            return Proposal(p.name, ACTIONS[entity], f"{why}, {facts}")
        return Proposal(p.name, "{kind: hash}", f"review: {why} (a national identifier, or a "
                        f"company register number sharing the check), {facts}")  # fmt: skip
    people = p.hits.get("person", 0)
    if p.name_like / n >= SHAPE_SHARE and people / n >= NAME_SHARE and p.distinct >= MIN_DISTINCT:
        why = f"name-shaped, {_share(people, n)} PERSON"
        return Proposal(p.name, ACTIONS["person"], f"{why}, {facts}")
    listed = p.listed_names / n
    floor = 30 if listed >= 0.9 else LISTED_NAME_DISTINCT
    if listed >= LISTED_NAME_SHARE and p.distinct >= floor:
        why = f"{_share(p.listed_names, n)} listed first names or surnames"
        return Proposal(p.name, ACTIONS["person"], f"{why}, {facts}")
    streets = p.hits.get("street_address", 0)
    if p.address_like / n >= SHAPE_SHARE and streets / n >= ADDRESS_SHARE:
        why = f"address-shaped, {_share(streets, n)} STREET_ADDRESS"
        return Proposal(p.name, ACTIONS["street_address"], f"{why}, {facts}")
    return None


#: The action a name rule gives a string column.
_PII_BY_NAME = {
    "email": ACTIONS["email"], "phone": ACTIONS["phone"], "iban": ACTIONS["iban"],
    "national_id": "{kind: drop}", "credit_card": ACTIONS["credit_card"],
    "ip": "{kind: hash}", "street_address": "{kind: redact}",
}  # fmt: skip


#: Presets ``spec suggest --preset`` applies on top of the proposals.
PRESETS = ("hipaa-safe-harbor",)
#: Safe Harbor's 18 identifier categories, 45 CFR 164.514(b)(2)(i)(A)-(R).
SAFE_HARBOR_IDENTIFIERS = (
    "names", "geographic subdivisions smaller than a state (street, city, county, ZIP beyond "
    "its first 3 digits)", "all elements of dates except the year, and ages over 89",
    "telephone numbers", "fax numbers", "email addresses", "social security numbers",
    "medical record numbers", "health plan beneficiary numbers", "account numbers",
    "certificate/license numbers", "vehicle identifiers and serial numbers, license plates",
    "device identifiers and serial numbers", "URLs", "IP addresses",
    "biometric identifiers (finger and voice prints)", "full-face photographs and comparable "
    "images", "any other unique identifying number, characteristic or code",
)  # fmt: skip


def safe_harbor(pr: Proposal, p: ColumnProfile) -> Proposal:
    """A proposal tightened to HIPAA's Safe Harbor method (45 CFR 164.514(b)(2)).

    Dates go to their year; ages are top-coded at 90 ("over 89" as one group); postal
    codes go to their 3-digit prefix with the low-population prefixes as ``000``
    (:data:`~pipelines.desensitize.actions.generalize.HIPAA_RESTRICTED_ZIP3`), a
    numeric one is dropped; keyed pseudonyms and surrogates stay, marked for review
    (they are derived from the identifier, which Safe Harbor's re-identification code,
    164.514(c), must not be). Other proposals are unchanged.

    Args:
        pr: The column's proposal (:func:`propose`).
        p: The column's profile.

    Returns:
        The proposal under the preset.
    """
    hint = _hint(p.name)
    why = "Safe Harbor"
    if hint == "postal":
        if p.type == "string":
            action = "{kind: generalize, method: prefix, length: 3, map: hipaa-zip3}"
            return replace(pr, action=action, evidence=f"{why}: 3-digit ZIP, restricted "
                           f"prefixes as 000; {pr.evidence}")  # fmt: skip
        return replace(pr, action="{kind: drop}", quasi_identifier=None,
                       evidence=f"{why}: a ZIP stored as a {p.type}; {pr.evidence}")  # fmt: skip
    if "method: age" in pr.action:
        return pr  # top-coded at 90 already: 90 stands for "90 or older"
    if hint == "age" and "kind: keep" in pr.action:
        declared = "type: int, " if "type: int" in pr.action else ""
        action = f"{{{declared}kind: generalize, method: bucket, width: 1, top: 90, output: lower}}"
        return replace(pr, action=action, evidence=f"{why}: ages over 89 as 90; {pr.evidence}")
    if p.type in _DATES and "kind: keep" in pr.action:
        action = "{kind: generalize, method: date, to: year}"
        return replace(pr, action=action, evidence=f"{why}: the year only; {pr.evidence}")
    if "kind: hash" in pr.action or "kind: surrogate" in pr.action:
        note = "review: a keyed pseudonym is derived from the identifier (164.514(c))"
        return replace(pr, evidence=f"{note}; {pr.evidence}")
    return pr


def _safe_harbor_review(partition_column: str) -> list[str]:
    """What a person must still check under Safe Harbor (comment lines)."""
    lines = [
        "# HIPAA Safe Harbor (45 CFR 164.514(b)(2)) was applied where the evidence allowed.",
        "# A person must still review:",
        f"#  - the partition column '{partition_column}' is a full date, published as it is:",
        "#    a date of service or event counts as a date element; aggregate to a year or",
        "#    use expert determination (164.514(b)(1));",
        "#  - keyed pseudonyms and surrogates ('review' above) are derived from identifiers;",
        "#  - that no column holds one of the 18 identifiers the profile cannot recognise:",
    ]
    lines += [f"#      {name};" for name in SAFE_HARBOR_IDENTIFIERS]
    lines += ["#  - that the organisation has no actual knowledge that the rest could identify",
              "#    a person (164.514(b)(2)(ii))."]  # fmt: skip
    return lines


def suggest(
    profiles: Sequence[ColumnProfile],
    source: dict[str, str],
    partition_column: str,
    name: str,
    preset: str | None = None,
) -> str:
    """A draft spec (YAML text with comments) that validates.

    Args:
        profiles: The columns' profiles (:func:`profile`); the partition column's is ignored.
        source: The ``source:`` mapping (``table``, or ``path`` and ``format``).
        partition_column: The partition column.
        name: The pipeline's name (lower case, ``[a-z][a-z0-9_]*``).
        preset: ``hipaa-safe-harbor`` (:func:`safe_harbor`), or None.

    Returns:
        The spec text.

    Raises:
        SpecError: No column besides the partition column, or an unknown preset.
    """
    from pipelines.errors import SpecError

    if preset is not None and preset not in PRESETS:
        raise SpecError(f"--preset: unknown '{preset}'; one of {', '.join(PRESETS)}")
    text_source = source.get("format") == "csv"
    proposals = [propose(p, text_source) for p in profiles if p.name != partition_column]
    if preset == "hipaa-safe-harbor":
        by_name = {p.name: p for p in profiles}
        proposals = [safe_harbor(pr, by_name[pr.column]) for pr in proposals]
    if not proposals:
        raise SpecError("the partition has no column besides the partition column")
    keys = _keys([pr.column for pr in proposals], partition_column)
    taken = set(keys.values()) | {partition_column}
    renames: dict[str, str] = {}
    for pr in proposals:
        if pr.rename:
            out = keys[pr.column] + pr.rename
            while out in taken:
                out += "_"
            taken.add(out)
            renames[pr.column] = out
    unit, unit_note = _privacy_unit(proposals, profiles, keys)
    if "table" in source:
        stem = source["table"].split(".")[-1]
        table = f"anon.{stem}" if f"anon.{stem}" != source["table"] else f"anon.{stem}_anon"
        sink = {"table": table}
    else:
        sink = {"path": source["path"].rstrip("/") + "_anonymized", "format": "parquet"}
    lines = [
        f"# Draft spec proposed by `anonymize spec suggest` from one partition of {_flow(source)}.",
        "# Review every column before running it: the evidence comments are shares of a sample",
        "# (never values); PII the engine cannot see (names off its lists, codes whose meaning",
        "# only the business knows) needs a person's eye. Lines marked 'review' need a decision.",
        "version: 1",
        f"name: {name}",
        f"source: {_flow(source)}",
        f"sink: {_flow(sink)}",
        f"partition_column: {partition_column}",
        f"privacy_unit: {unit}" + (f"   # review: {unit_note}" if unit_note else ""),
        "keys:",
        "  main: {env: ANONYMIZE_KEY}",
        "undeclared: fail",
        "columns:",
    ]
    width = max(len(k) for k in keys.values())
    for pr in proposals:
        key = keys[pr.column]
        extra = ([f"source_name: {json.dumps(pr.column)}"] if key != pr.column else []) + (
            [f"rename: {renames[pr.column]}"] if pr.column in renames else []
        )
        action = pr.action if not extra else "{" + ", ".join(extra) + ", " + pr.action[1:]
        lines.append(f"  {key}:{' ' * (width - len(key))} {action}   # {pr.evidence}")
    qis = [(renames.get(pr.column, keys[pr.column]), pr.quasi_identifier)
           for pr in proposals if pr.quasi_identifier]  # fmt: skip
    if qis:
        lines += [
            "# Quasi-identifier candidates: uncomment to apply k-anonymity over them (a",
            "# categorical one needs its ARX hierarchy file written first).",
            "# k_anonymity:", "#   k: 5", "#   quasi_identifiers:",
        ]  # fmt: skip
        lines += [f"#     {out}: {qi}" for out, qi in qis]
    if preset == "hipaa-safe-harbor":
        lines += _safe_harbor_review(partition_column)
    return "\n".join(lines) + "\n"


def _keys(columns: list[str], partition_column: str) -> dict[str, str]:
    """Source column -> spec key: plain names kept, others sanitized to an unused key."""
    keys = {c: c for c in columns if plain_key(c) == c}
    taken = set(columns) | {partition_column}  # no key may be another column's source name
    for c in columns:
        if c not in keys:
            key = plain_key(c)
            while key in taken:
                key += "_"
            keys[c] = key
            taken.add(key)
    return {c: keys[c] for c in columns}


def _privacy_unit(
    proposals: list[Proposal], profiles: Sequence[ColumnProfile], keys: dict[str, str]
) -> tuple[str, str | None]:
    """The privacy unit's key, and a note when a person must check it.

    An identifier never null, one naming a person first (``customer_id``); else any
    identifier or pseudonymized column never null; else the first column.
    """
    nulls = {p.name: p.nulls for p in profiles}
    ids = [pr for pr in proposals if pr.identifier]
    ordered = sorted(ids, key=lambda pr: _PERSON_ID.search(pr.column.lower()) is None)
    for pr in ordered:
        if not nulls.get(pr.column):
            return keys[pr.column], None
    for pr in proposals:
        if "kind: hash" in pr.action and not nulls.get(pr.column):
            return keys[pr.column], "no identifier column without nulls was found"
    first = proposals[0].column
    return keys[first], "no identifier or pseudonymized column without nulls was found"


def _flow(mapping: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in mapping.items()) + "}"
