"""The engine on Spark: native screens on every row, Python confirmation on candidates.

A value reaches Python only if some entity's *screen* (Spark SQL: cheap guards, then a
Java regex) says it may hold that entity. The screens are supersets of the engine's
confirmation (``tests/spark/test_pii.py`` checks it with generated values), so
skipping the other rows loses nothing. Candidates travel to Python as Arrow batches
(``mapInArrow`` for the gate's counts, a pandas UDF for ``scrub``), where
:func:`pipelines.pii.engine.find` confirms them with the validators.

Screens are Spark SQL text parsed once per (column, entity) with ``F.expr``: built
with the Python Column API each regex costs py4j round trips on the driver.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd  # at module level: pandas UDF type hints resolve against these globals

from pipelines.pii.catalogue import BY_NAME, CATALOGUE, DIGIT_COUNT, LONGEST_RUN, Entity
from pipelines.pii.engine import ACCENTED, PLAIN, find

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame

_C = "{c}"

#: The gate's entities: every catalogue entity (known values need the raw row).
GATE_ENTITIES: tuple[str, ...] = tuple(e.name for e in CATALOGUE if e.gate)


def _raw(pattern: str) -> str:
    """A Spark SQL raw string literal holding a regex (no escape processing)."""
    assert "'" not in pattern, pattern
    return f"r'{pattern}'"


def _quote(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


def _digit_run(k: int) -> str:
    """Java regex: k digits, at most two of ``[ -./()]`` between neighbours.

    It starts where a digit run of :data:`pipelines.pii.engine.RUN`, or one of its
    groups, can.
    """
    return rf"(?:^|[^A-Za-z0-9_+])[+(]?[0-9](?:[ \-./()]{{0,2}}[0-9]){{{k - 1}}}"


def _nest(conditions: Sequence[str], leaf: str) -> str:
    """``CASE WHEN g1 THEN CASE WHEN g2 … THEN leaf``: guards stay in order.

    Nested CASEs keep each guard behind the previous one (``g1 AND g2`` may be
    reordered or hoisted), and the first guard, always evaluated, is shared across
    entities by Spark's subexpression elimination (the digit count above all).
    """
    for condition in reversed(conditions):
        leaf = f"CASE WHEN {condition} THEN {leaf} ELSE false END"
    return leaf


def _pattern_screen_sql(e: Entity) -> str:
    """SQL: the value matches the entity's ``pattern_screen`` (false for null)."""
    return f"coalesce({_C} RLIKE {_raw(e.pattern_screen)}, false)"


def _union(*regexes: str) -> str:
    """Java regex matching where any of ``regexes`` does (a leading ``(?i)`` kept local)."""
    return "|".join(f"(?i:{r[4:]})" if r.startswith("(?i)") else f"(?:{r})" for r in regexes)


def _rlike(regex: str) -> str:
    return f"{_C} RLIKE {_raw(regex)}"


# ------------------------------------------------------------------ the gate's first pass
#
# The gate's first pass evaluates every entity's screen on every value of every string
# column (23 entities x 9 columns on the demo output), so its cost is the regex calls
# per value: even ``[0-9]`` costs some 20 times a ``length`` or ``contains`` (Spark
# decodes the value to a Java String and builds a Matcher per call), and a pattern
# trying an alternation at every position (``(?:^|[^A-Za-z0-9_+])…``, ``(?i)``
# keyword lists) several times more. So each gate screen starts with a test shared by a group
# of entities, written identically in each: Spark's subexpression elimination computes
# an expression in that always-evaluated position once per value, and a clean value
# costs the few group tests (mostly regex-free) instead of a regex per entity. Each
# group test is a superset of its members' screens (the union of their regexes, behind
# a length every member's match needs), so the gate screens stay supersets of the
# engine (``tests/spark/test_pii.py``).

#: White space as Python's ``\s`` sees it: a space, or else one regex call for the
#: other ASCII white space or any non-ASCII character (Unicode's other separators
#: and \x85 are all non-ASCII). Ten ``contains`` cost about twice that call.
_ANY_SPACE = "(contains({c}, ' ') OR " + _rlike(r"[\t-\r\x1c-\x1f\x{80}-\x{10FFFF}]") + ")"
#: Some letter may be upper or title case: an ASCII capital changes under ``lower``;
#: any non-ASCII character passes (a few capitals have no lower case).
_MAY_BE_CAPITAL = f"({_C} <> lower({_C}) OR octet_length({_C}) > length({_C}))"
#: Six characters of digit runs, starting with a digit: every numeric entity without
#: a screen of its own (a run of 7+ digits with at most two separators between
#: neighbours; IPv4 has its own) and every digit-heavy pattern (a NINO's six digits,
#: a DNI's seven, a Corsican NIR's runs).
_NUMERIC = f"CASE WHEN length({_C}) >= 6 THEN {_rlike(r'[0-9][0-9 ./()-]{5}')} ELSE false END"
#: Plain numeric entities: then a digit run as long as the shortest of theirs.
_RUN_DIGITS = min(e.min_digits for e in CATALOGUE if e.numeric and not e.screen)


def _behind(test: str, regexes: Sequence[str]) -> str:
    """A shared test: ``test``, then any of ``regexes`` (one expression, computed once)."""
    return f"CASE WHEN {test} THEN {_rlike(_union(*regexes))} ELSE false END"


_B = BY_NAME
_PLAIN_NUMERIC = _behind(_NUMERIC, (_digit_run(_RUN_DIGITS),))
_HAS_DIGIT = _rlike("[0-9]")
#: The credential pattern's literal prefixes (case-sensitive there), then its keyword
#: form, which needs ``:``, ``=`` or white space (``… is …``) after the keyword.
_CREDENTIAL = "(" + " OR ".join(
    [f"contains({_C}, '{p}')" for p in (
        "-----", "AKIA", "ASIA", "ABIA", "ACCA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
        "github_pat_", "xox", "AIza", "_live_", "_test_", "eyJ",
    )]
    + [f"contains({_C}, ':')", f"contains({_C}, '=')", _ANY_SPACE]
) + ")"  # fmt: skip
#: Entity -> the gate screen's shared first test. Minimum lengths: an IBAN has 15
#: characters or more, a codice fiscale 16; both have two letters, then two digits
#: (or omocodic letters). A date of birth or a street address has a digit.
_FIRST: dict[str, str] = {
    **dict.fromkeys((e.name for e in CATALOGUE if e.numeric and not e.screen), _PLAIN_NUMERIC),
    **dict.fromkeys(
        ("uk_nino", "es_nif", "cn_resident_id", "fr_nir:pattern"),
        _behind(
            _NUMERIC,
            (
                _B["uk_nino"].screen,
                _B["es_nif"].screen,
                _B["cn_resident_id"].screen,
                _B["fr_nir"].pattern_screen,
            ),
        ),
    ),  # fmt: skip
    **dict.fromkeys(
        ("iban", "it_fiscal_code"),
        _behind(f"length({_C}) >= 15", ("[A-Za-z]{2}[0-9LMNP-Vlmnp-v]{2}",)),
    ),
    **dict.fromkeys(
        ("date_of_birth", "street_address"),
        _behind(_HAS_DIGIT, (_B["date_of_birth"].screen, _B["street_address"].screen)),
    ),  # fmt: skip
    "credential": _CREDENTIAL,
    "person": _ANY_SPACE,
    "ipv4": f"contains({_C}, '.')",
    "mac_address": f"(contains({_C}, ':') OR contains({_C}, '-') OR contains({_C}, '.'))",
    "phone:pattern": f"contains({_C}, 'x')",  # the extension's "x" or "ext"
}
#: Further regex-free guards of a gate screen, after the shared test.
_THEN: dict[str, tuple[str, ...]] = {"person": (_MAY_BE_CAPITAL,)}
_COSTLY = (DIGIT_COUNT, LONGEST_RUN, "RLIKE")


def gate_screen_sql(entity: str, column: str) -> str:
    """Spark SQL boolean: the gate's first-pass screen of ``entity`` (false for null).

    A superset of :func:`screen_sql` (and so of the engine), built to be cheap on
    every value of every column: a test shared with other entities first, then
    regex-free guards, then the entity's own regex. No higher-order function: one
    anywhere in an aggregate turns off code generation for all of it (they are
    ``CodegenFallback``), and the gate counts every screen in one aggregate.

    Args:
        entity: A catalogue name.
        column: The string column's name.

    Returns:
        SQL text.
    """
    e = BY_NAME[entity]
    if e.numeric and not e.screen:
        guards = (_FIRST[entity],)
        leaf = _rlike(_digit_run(e.min_digits)) if e.min_digits > _RUN_DIGITS else "true"
    else:
        # The catalogue's regex-free guards; its digit counts and white-space regex are
        # replaced by the shared tests (a regex apiece, per entity, per value).
        first = _FIRST.get(entity)
        own = tuple(g for g in e.guards
                    if not any(x in g for x in _COSTLY) and not (first and g in first))  # fmt: skip
        guards = ((first,) if first else ()) + own + _THEN.get(entity, ())
        leaf = _rlike(e.screen)
    sql = _nest(guards, leaf)
    if e.pattern_screen:
        pattern = _pattern_screen_sql(e)
        if f"{entity}:pattern" in _FIRST:
            pattern = _nest((_FIRST[f"{entity}:pattern"],), pattern)
        sql = f"({sql} OR {pattern})"
    return sql.replace(_C, _quote(column))


def screen_sql(entity: str, column: str, facts: str | None = None) -> str:
    """Spark SQL boolean: the value of ``column`` may hold ``entity`` (false for null).

    Used inside :func:`screen_mask`, a higher-order function, where ``facts`` names a
    struct holding the value's digit count and longest run, computed once per value
    and compared by every screen. Standalone (``facts`` None), the guards on
    :data:`LONGEST_RUN` (a ``transform``) are left out and a numeric entity's digit run
    is a regex.

    Args:
        entity: A catalogue name.
        column: The string column's name.
        facts: SQL of a struct ``<digits: DIGIT_COUNT, run: LONGEST_RUN>`` of the
            value, or None.

    Returns:
        SQL text: the entity's guards, then its screen.
    """
    e: Entity = BY_NAME[entity]
    if e.numeric:
        guards = (f"{DIGIT_COUNT} >= {e.min_digits}",)
        if e.screen:
            leaf = f"{_C} RLIKE {_raw(e.screen)}"
        elif facts:
            leaf = f"{LONGEST_RUN} >= {e.min_digits}"
        else:
            leaf = f"{_C} RLIKE {_raw(_digit_run(e.min_digits))}"
    else:
        guards = e.guards if facts else tuple(g for g in e.guards if LONGEST_RUN not in g)
        leaf = f"{_C} RLIKE {_raw(e.screen)}"
    sql = _nest(guards, leaf)
    if facts:
        sql = sql.replace(DIGIT_COUNT, f"{facts}.digits").replace(LONGEST_RUN, f"{facts}.run")
    if e.pattern_screen:
        sql = f"({sql} OR {_pattern_screen_sql(e)})"
    return sql.replace(_C, _quote(column))


def screen(entity: str, column: str) -> Column:
    """The parsed :func:`gate_screen_sql`: the gate's screen of one entity.

    Args:
        entity: A catalogue name.
        column: The string column's name.

    Returns:
        A boolean column (false for null).
    """
    from pyspark.sql import functions as F

    return F.expr(gate_screen_sql(entity, column))


def any_screen(entities: Sequence[str], column: str) -> Column:
    """Whether the value passes some entity's gate screen.

    Args:
        entities: Catalogue names.
        column: The text column.

    Returns:
        A boolean column (false for null).
    """
    from pyspark.sql import functions as F

    return F.greatest(*[screen(e, column) for e in entities], F.lit(False))


#: Bit of each entity in a screen mask: its index in the catalogue.
BIT = {e.name: i for i, e in enumerate(CATALOGUE)}


def screen_mask(entities: Sequence[str], column: str, known: Sequence[str] = ()) -> Column:
    """Which entities' screens the value passes, as a bit mask (0: none, or null value).

    Bit :data:`BIT` [e] is set when the value may hold entity e; the known-value
    screen (``known`` columns) sets the PERSON bit. Python then looks for those
    entities only (:func:`entities_in`): the screens are supersets, so an entity
    whose screen failed cannot be in the value, not even to win an overlap.

    The sum is wrapped in ``aggregate`` over an array, a higher-order function, which
    Spark evaluates without generating code. On purpose: two dozen screens generated
    inline next to a wide upstream projection (the desensitize stage's HMACs) exceed
    the JVM's 64 KB method limit (Spark then falls back to interpreting the whole
    stage, or fails under ``SPARK_TESTING``); interpreted, only the mask is.

    Args:
        entities: Catalogue names.
        column: The text column.
        known: Columns holding the row's known values (``scrub``), if any.

    Returns:
        A bigint column.
    """
    from pyspark.sql import functions as F

    # The digit count and the longest run are bound once per value (``_pii_facts``) and
    # shared by every screen; interpreted code has no subexpression elimination.
    terms = []
    for name in entities:
        flag = screen_sql(name, column, facts="_pii_facts")
        if name == "person" and known:
            flag = f"({flag} OR {known_screen_sql(column, known)})"
        terms.append(f"CASE WHEN {flag} THEN {1 << BIT[name]}L ELSE 0L END")
    facts = f"named_struct('digits', {DIGIT_COUNT}, 'run', {LONGEST_RUN})"
    facts = facts.replace(_C, _quote(column))
    return F.expr(
        f"aggregate(array({facts}), 0L, (_pii_mask, _pii_facts) -> _pii_mask + {' + '.join(terms)})"
    )


@functools.lru_cache(maxsize=4096)
def entities_in(mask: int) -> tuple[str, ...]:
    """The entities whose bits :func:`screen_mask` set.

    Args:
        mask: A screen mask.

    Returns:
        Catalogue names, in catalogue order.
    """
    return tuple(name for name, bit in BIT.items() if mask >> bit & 1)


def fold_sql(expr: str) -> str:
    """Spark SQL of :func:`pipelines.pii.engine.fold` (same table, same lower-casing).

    Args:
        expr: SQL of a string expression.

    Returns:
        SQL of its folded form.
    """
    return f"translate(lower(translate({expr}, '{ACCENTED}', '{PLAIN}')), 'ς', 'σ')"


def known_screen_sql(column: str, known: Sequence[str]) -> str:
    """SQL boolean: some word of some known value occurs (folded) in the text.

    A superset of :func:`pipelines.pii.engine.find`'s known-value matches, which are
    whole values or their words, folded the same way.

    Args:
        column: The text column.
        known: The columns holding the row's own PII values.

    Returns:
        SQL text (false when the text or every known value is null).
    """
    text = fold_sql(_quote(column))
    values = ", ".join(f"CAST({_quote(k)} AS STRING)" for k in known)
    split = r"split(coalesce(_pii_v, ''), r'[ \t\n\x0b\f\r]+')"
    words = f"flatten(transform(array({values}), _pii_v -> {split}))"
    found = f"length(_pii_w) >= 3 AND instr({text}, {fold_sql('_pii_w')}) > 0"
    return f"coalesce(exists({words}, _pii_w -> {found}), false)"


# ------------------------------------------------------------------ the gate's counts


class _Counter:
    """Picklable ``mapInArrow`` function: per entity, how many values hold it."""

    def __init__(self, column: str, entities: tuple[str, ...], countries: tuple[str, ...]):
        """Hold what to count.

        Args:
            column: The scanned column (the batches' only column).
            entities: Entities to count.
            countries: Regions of national phone formats.
        """
        self.column, self.entities, self.countries = column, entities, countries

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        counts = dict.fromkeys(self.entities, 0)
        for batch in batches:
            texts, masks = batch.column(0).to_pylist(), batch.column(1).to_pylist()
            for text, mask in zip(texts, masks, strict=True):
                # Every entity whose screen passed competes for overlaps (one whose screen
                # failed cannot be there); only the checked ones are counted.
                found = {s.entity for s in find(text, entities_in(mask), self.countries)}
                for name in found & counts.keys():
                    counts[name] += 1
        yield pa.RecordBatch.from_pydict(
            {"entity": list(counts), "n": list(counts.values())},
            schema=pa.schema([("entity", pa.string()), ("n", pa.int64())]),
        )


def confirmed_counts(
    df: DataFrame,
    column: str,
    entities: Sequence[str],
    countries: Sequence[str],
    screened: Sequence[str],
) -> dict[str, int]:
    """How many values of ``column`` hold each entity: Python over candidate rows only.

    Args:
        df: The data.
        column: A string column.
        entities: The entities to count (catalogue names).
        countries: Regions of national phone formats.
        screened: The entities whose screens some value of the column passed (a first
            pass counted them); no other entity can be in the column.

    Returns:
        Entity -> number of values holding at least one (after overlap resolution
        against every screened entity, so a phone inside an email is not a phone).
    """
    from pyspark.sql import functions as F

    names = tuple(entities)
    if not screened:
        return dict.fromkeys(names, 0)
    # Rows where a counted entity may be: an allowed entity's candidates (a surrogate
    # name on a column allowed to hold names) need no confirming, only overlaps.
    candidates = df.select(F.col(column)).where(any_screen(names, column))
    rows = (
        candidates.select(F.col(column), screen_mask(screened, column).alias("mask"))
        .where(F.col("mask") != 0)
        .mapInArrow(_Counter(column, names, tuple(countries)), "entity string, n long")
        .groupBy("entity")
        .agg(F.sum("n").alias("n"))
        .collect()
    )
    out = dict.fromkeys(names, 0)
    out.update({r["entity"]: int(r["n"]) for r in rows})
    return out


# ------------------------------------------------------------------ scrub

#: Modes rendered in the first pass (they need no digest).
_SELF = ("placeholder", "mask")
SPAN_TYPE = "array<struct<entity:string,start:int,end:int,canonical:string>>"


def spans_udf(entities: tuple[str, ...], countries: tuple[str, ...], mode: str, char: str) -> Any:
    """A pandas UDF ``(text, known array, screen mask) -> struct<text, spans>``.

    Called with the text nulled out where no screen passed, so only candidate rows
    reach the engine, which looks only for the entities whose screens passed.

    ``text`` is the rendered text for ``placeholder`` and ``mask`` (the other modes
    render after the digests are computed, :func:`render_udf`); null input, null out.

    Args:
        entities: Catalogue names to find.
        countries: Regions of national phone formats.
        mode: ``placeholder``, ``mask``, ``token`` or ``surrogate``.
        char: The masking character.

    Returns:
        The UDF.
    """
    from pyspark.sql.functions import pandas_udf

    from pipelines.pii import engine

    @pandas_udf(f"struct<text:string,spans:{SPAN_TYPE}>")
    def spans(texts: pd.Series, known: pd.Series, masks: pd.Series) -> pd.DataFrame:
        out_text, out_spans = [], []
        for text, values, mask in zip(texts, known, masks, strict=True):
            if text is None:
                out_text.append(None)
                out_spans.append(None)
                continue
            screened = entities_in(int(mask))  # the screens are supersets: nothing else is there
            known_values = list(values) if values is not None else ()
            found = engine.find(text, screened, countries, known_values)
            if mode == "placeholder":
                replacements = [engine.placeholder(s.entity) for s in found]
            else:
                replacements = [engine.mask(text[s.start : s.end], char) for s in found]
            out_text.append(engine.render(text, found, replacements) if mode in _SELF else None)
            out_spans.append([
                {"entity": s.entity, "start": s.start, "end": s.end, "canonical": s.canonical}
                for s in found
            ])  # fmt: skip
        return pd.DataFrame({"text": out_text, "spans": out_spans})

    return spans


def render_udf(mode: str) -> Any:
    """A pandas UDF ``(text, spans, replacements) -> text`` for ``token``/``surrogate``.

    For ``token`` the replacements are the rendered tokens; for ``surrogate`` they are
    the spans' keyed digests, turned into never-real values here
    (:func:`pipelines.pii.surrogates.surrogate`).

    Args:
        mode: ``token`` or ``surrogate``.

    Returns:
        The UDF.
    """
    from pyspark.sql.functions import pandas_udf

    from pipelines.pii import engine
    from pipelines.pii.surrogates import surrogate

    @pandas_udf("string")
    def render(texts: pd.Series, spans: pd.Series, replacements: pd.Series) -> pd.Series:
        out = []
        for text, found, values in zip(texts, spans, replacements, strict=True):
            if text is None or found is None:
                out.append(None)
                continue
            parsed = [engine.Span(s["start"], s["end"], s["entity"], s["canonical"]) for s in found]
            if mode == "surrogate":
                values = [surrogate(s.entity, text[s.start:s.end], d)
                          for s, d in zip(parsed, values, strict=True)]  # fmt: skip
            out.append(engine.render(text, parsed, list(values)))
        return pd.Series(out, dtype=object)

    return render


def canonical_udf(entity: str, countries: tuple[str, ...]) -> Any:
    """A pandas UDF: each value's canonical form as ``entity`` (``hash: {canonical: …}``).

    The same function ``scrub`` tokens use, so a token in a note equals the pseudonym
    of a column holding the value. Null stays null.

    Args:
        entity: A catalogue name.
        countries: Regions of national phone formats.

    Returns:
        The UDF (string -> string).
    """
    from pyspark.sql.functions import pandas_udf

    canonical = BY_NAME[entity].canonical

    @pandas_udf("string")
    def canonical_form(values: pd.Series) -> pd.Series:
        return pd.Series(
            [None if v is None else canonical(v.strip(), countries) for v in values], dtype=object
        )

    return canonical_form
