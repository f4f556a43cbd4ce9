"""The engine on Spark: native screens on every row, Python confirmation on candidates.

A value reaches Python only if some entity's *screen* (Spark SQL: cheap guards, then a
Java regex) says it may hold that entity. The screens are supersets of the engine's
confirmation (``tests/spark/test_pii_screens.py`` checks it with generated values), so
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
    """SQL boolean (``{c}`` the column): the screen of a numeric entity's extra pattern."""
    return f"coalesce({_C} RLIKE {_raw(e.pattern_screen)}, false)"


def screen_sql(
    entity: str, column: str, digits: str = DIGIT_COUNT, run: str = LONGEST_RUN
) -> str:
    """Spark SQL boolean: the value of ``column`` may hold ``entity`` (false for null).

    Args:
        entity: A catalogue name.
        column: The string column's name.
        digits: SQL of the value's digit count (:data:`DIGIT_COUNT`), or of a name
            bound to it once for several screens (:func:`screen_mask`).
        run: Likewise, SQL of the value's :data:`LONGEST_RUN`.

    Returns:
        SQL text: the entity's guards, then its screen.
    """
    e: Entity = BY_NAME[entity]
    if e.numeric:
        guards = (f"{DIGIT_COUNT} >= {e.min_digits}",)
        leaf = f"{_C} RLIKE {_raw(e.screen)}" if e.screen else f"{run} >= {e.min_digits}"
    else:
        guards = e.guards
        leaf = f"{_C} RLIKE {_raw(e.screen)}"
    sql = _nest(guards, leaf).replace(DIGIT_COUNT, digits).replace(LONGEST_RUN, run)
    if e.pattern_screen:
        sql = f"({sql} OR {_pattern_screen_sql(e)})"
    return sql.replace(_C, _quote(column))


def screen(entity: str, column: str) -> Column:
    """The parsed :func:`screen_sql`.

    Args:
        entity: A catalogue name.
        column: The string column's name.

    Returns:
        A boolean column (false for null).
    """
    from pyspark.sql import functions as F

    return F.expr(screen_sql(entity, column))


def any_screen(entities: Sequence[str], column: str) -> Column:
    """Whether the value passes some entity's screen, compactly (generated code stays small).

    The numeric entities' screens nest (a run of k digits holds a run of fewer), so
    the one with the fewest digits stands for all of them.

    Args:
        entities: Catalogue names.
        column: The text column.

    Returns:
        A boolean column (false for null).
    """
    from pyspark.sql import functions as F

    numeric = [BY_NAME[e] for e in entities if BY_NAME[e].numeric]
    flags = [screen(e, column) for e in entities if not BY_NAME[e].numeric]
    flags += [F.expr(_pattern_screen_sql(e).replace(_C, _quote(column)))
              for e in numeric if e.pattern_screen]  # fmt: skip
    if numeric:
        k = min(e.min_digits for e in numeric)
        flags.append(F.expr(_nest((f"{DIGIT_COUNT} >= {k}",), f"{_C} RLIKE {_raw(_digit_run(k))}")
                            .replace(_C, _quote(column))))  # fmt: skip
    return F.greatest(*flags, F.lit(False))


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
        flag = screen_sql(name, column, "_pii_facts.digits", "_pii_facts.run")
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
    candidates = df.select(F.col(column)).where(any_screen(screened, column))
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
