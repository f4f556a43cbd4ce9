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
2. free text (mean length ≥ 30 characters) with PII in ≥ 1 % of values, or named
   like a note: ``scrub``;
3. the column's name says what it holds (``email``, ``phone``, ``ssn``, ``birth``,
   ``zip``, …; the names are in :data:`NAME_HINTS`): that kind's action;
4. an identifier (named ``id``/``*_id``/``uuid``, ≥ 90 % distinct): a keyed pseudonym,
   and the first one is the privacy unit;
5. otherwise ``keep``.

A person reviews the draft before it runs: the header says so, and names what the
rules cannot know (PII the engine does not detect, such as names off its lists;
columns whose meaning only the business knows).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
        out.append(ColumnProfile(
            name=name, type=dtype, rows=rows, nulls=rows - int(counts[f"n{i}"]),
            distinct=int(counts[f"d{i}"]), sampled=len(values), hits=hits, whole=whole,
            mean_length=sum(map(len, values)) / len(values) if values else 0.0,
        ))  # fmt: skip
    return out


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

#: What a column's name says it holds (lower-cased name, searched), in this order.
NAME_HINTS: tuple[tuple[str, str], ...] = (
    ("email", r"e_?mail"),
    ("phone", r"phone|mobile|(^|_)(tel|fax|cell)(_|$)"),
    ("national_id", r"ssn|social_sec|national_id|passport|tax_id"
                    r"|(^|_)(nino|nir|bsn|cpf|sin|nif|aadhaar)(_|$)"),
    ("credit_card", r"card_?(number|no|num)|(^|_)(cc|pan)(_|$)|credit_card"),
    ("iban", r"iban|account_?(number|no)"),
    ("ip", r"(^|_)ip(_?addr(ess)?)?(_|$)"),
    ("street_address", r"address|street"),
    ("birth", r"birth|(^|_)dob(_|$)"),
    ("postal", r"zip|postal|post_?code|(^|_)plz(_|$)"),
    ("gender", r"(^|_)(gender|sex)(_|$)"),
    ("age", r"(^|_)age(_|$)"),
    ("id", r"(^|_)(id|uuid|guid)$|_id$|^id_"),
    ("person", r"(^|_)((first|last|full|given|family|middle|sur)_?name|name|surname"
               r"|customer|patient)(_|$)"),
    ("text", r"note|comment|description|message|text|remark|body|feedback"),
)  # fmt: skip


def _hint(name: str) -> str | None:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)  # camelCase -> camel_case
    lowered = re.sub(r"[\s\-]+", "_", snake.lower())
    return next((kind for kind, pattern in NAME_HINTS if re.search(pattern, lowered)), None)


@dataclass(frozen=True)
class Proposal:
    """The action proposed for one column, and why.

    Attributes:
        column: The source column.
        action: Flow-style YAML of the action.
        evidence: The comment (shares and counts only).
        quasi_identifier: The ``k_anonymity`` QI type it would have (``numeric``,
            ``categorical``, ``date``), or None; ``output`` names the published column.
        output: The published column's name (after ``rename``).
        privacy_unit: Whether it may serve as the privacy unit (an identifier).
    """

    column: str
    action: str
    evidence: str
    quasi_identifier: str | None = None
    output: str | None = None
    privacy_unit: bool = False


def _share(n: int, of: int) -> str:
    return f"{100 * n / of:.0f}%" if of else "n/a"


def propose(p: ColumnProfile) -> Proposal:
    """The action for one column (the module's rules, first match wins).

    Args:
        p: The column's profile.

    Returns:
        The proposal.
    """
    facts = f"{_share(p.nulls, p.rows)} null, distinct {_share(p.distinct, p.rows - p.nulls)}"
    hint = _hint(p.name)
    top = max(p.whole.items(), key=lambda kv: kv[1], default=(None, 0))
    if top[0] is not None and p.sampled and top[1] / p.sampled >= 0.5:
        entity, n = top
        action = "{kind: drop}" if entity in _DROPPED else ACTIONS[entity]
        return Proposal(p.name, action, f"{_share(n, p.sampled)} {entity.upper()}, {facts}")
    found = sum(p.hits.values())
    if p.type == "string" and (p.mean_length >= 30 or hint == "text") and (
        hint == "text" or (p.sampled and max(p.hits.values(), default=0) / p.sampled >= 0.01)
    ):
        ranked = sorted(p.hits.items(), key=lambda kv: -kv[1])[:4]
        entities = ", ".join(f"{e.upper()} {_share(n, p.sampled)}" for e, n in ranked)
        why = f"free text, mean length {p.mean_length:.0f}" + (f"; {entities}" if found else "")
        return Proposal(p.name, "{kind: scrub}", f"{why}; {facts}")
    by_name = {
        "email": ACTIONS["email"], "phone": ACTIONS["phone"], "iban": ACTIONS["iban"],
        "national_id": "{kind: drop}", "credit_card": ACTIONS["credit_card"],
        "ip": "{kind: hash}", "street_address": "{kind: redact}",
    }  # fmt: skip
    if hint in by_name and (p.type == "string" or hint == "national_id"):
        why = f"named like {hint.replace('_', ' ')}"
        return Proposal(p.name, by_name[hint], f"{why}; {facts}")
    if hint == "person" and p.type == "string":
        return Proposal(p.name, ACTIONS["person"], f"named like a person's name; {facts}")
    if hint == "birth" and p.type == "date":
        out = key_of(p.name) + "_age"
        action = f"{{kind: generalize, method: age, top: 90, rename: {out}}}"
        why = "a birth date, as an age (top-coded at 90)"
        return Proposal(p.name, action, f"{why}; {facts}", "numeric", out)
    if hint == "birth":
        return Proposal(p.name, "{kind: drop}", f"named like a birth date; {facts}")
    if hint == "postal" and p.type == "string":
        why = "a postal code, to its 3-character prefix"
        action = "{kind: generalize, method: prefix, length: 3}"
        return Proposal(p.name, action, f"{why}; {facts}", "categorical")
    if hint == "gender":
        return Proposal(p.name, "{kind: keep}", f"quasi-identifier; {facts}", "categorical")
    if hint == "age" and p.type in _NUMERIC:
        return Proposal(p.name, "{kind: keep}", f"quasi-identifier; {facts}", "numeric")
    if hint == "id" and p.rows - p.nulls and p.distinct / (p.rows - p.nulls) >= 0.9:
        return Proposal(p.name, "{kind: hash}", f"an identifier (keyed pseudonym); {facts}",
                        privacy_unit=True)  # fmt: skip
    if p.type in ("date", "timestamp"):
        why = "a date, quasi-identifier candidate"
        return Proposal(p.name, "{kind: keep}", f"{why}; {facts}", "date")
    return Proposal(p.name, "{kind: keep}", facts)


_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double")


def key_of(name: str) -> str:
    """A spec column key for a source column (a plain identifier; ``source_name`` keeps it).

    Args:
        name: The source column's name.

    Returns:
        ``name`` if it is a plain identifier, else a sanitized one (``c_`` before a digit).
    """
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return name
    plain = re.sub(r"\W+", "_", name).strip("_") or "column"
    return plain if re.match(r"[A-Za-z_]", plain) else f"c_{plain}"


def suggest(
    profiles: Sequence[ColumnProfile],
    source: dict[str, str],
    partition_column: str,
    name: str,
) -> str:
    """A draft spec (YAML text with comments) that validates.

    Args:
        profiles: The columns' profiles (:func:`profile`), the partition column excluded.
        source: The ``source:`` mapping (``table`` or ``path`` and ``format``).
        partition_column: The partition column.
        name: The pipeline's name (lower case, ``[a-z][a-z0-9_]*``).

    Returns:
        The spec text.
    """
    proposals = [propose(p) for p in profiles if p.name != partition_column]
    keys: dict[str, str] = {}
    for pr in proposals:
        key = key_of(pr.column)
        while key in keys.values() or key == partition_column:
            key += "_"
        keys[pr.column] = key
    unit = next((keys[pr.column] for pr in proposals if pr.privacy_unit), None)
    unit = unit or next((keys[pr.column] for pr in proposals if "kind: hash" in pr.action), None)
    if "table" in source:
        sink = {"table": "anon." + source["table"].split(".")[-1]}
    else:
        sink = {"path": source["path"].rstrip("/") + "_anonymized", "format": "parquet"}
    lines = [
        f"# Draft spec proposed by `anonymize spec suggest` from one partition of {_flow(source)}.",
        "# Review every column before running it: the evidence comments are shares of a sample",
        "# (never values); PII the engine cannot see (names off its lists, codes whose meaning",
        "# only the business knows) needs a person's eye.",
        "version: 1",
        f"name: {name}",
        f"source: {_flow(source)}",
        f"sink: {_flow(sink)}",
        f"partition_column: {partition_column}",
    ]
    if unit is None:
        unit = keys[proposals[0].column] if proposals else "id"
        lines.append(f"privacy_unit: {unit}   # review: no identifier column was found")
    else:
        lines.append(f"privacy_unit: {unit}")
    lines += ["keys:", "  main: {env: ANONYMIZE_KEY}", "undeclared: fail", "columns:"]
    width = max((len(k) for k in keys.values()), default=0)
    for pr in proposals:
        key = keys[pr.column]
        action = pr.action
        if key != pr.column:
            action = "{source_name: " + json.dumps(pr.column) + ", " + action[1:]
        lines.append(f"  {key}:{' ' * (width - len(key))} {action}   # {pr.evidence}")
    qis = [(pr.output or keys[pr.column], pr.quasi_identifier)
           for pr in proposals if pr.quasi_identifier]  # fmt: skip
    if qis:
        lines += ["# Quasi-identifier candidates: uncomment to apply k-anonymity over them.",
                  "# k_anonymity:", "#   k: 5", "#   quasi_identifiers:"]  # fmt: skip
        lines += [f"#     {out}: {{type: {kind}}}" for out, kind in qis]
    return "\n".join(lines) + "\n"


def _flow(mapping: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in mapping.items()) + "}"
