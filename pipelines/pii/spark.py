"""The engine on Spark: a native screen on every value, Python confirmation on candidates.

A value reaches Python only if some entity's *screen* says it may hold that entity.
Screens run in the JVM: one Java UDF (:mod:`pipelines.pii.native`) computes, per
value, a bit mask of the entities whose screens pass, from the catalogue's guards
(:class:`pipelines.pii.catalogue.Guards`, facts of the value counted in one pass over
its characters) and its Java regexes, run only where the guards pass. The screens are
supersets of the engine's confirmation (``tests/spark/test_pii.py`` checks it with
generated values), so skipping the other rows loses nothing. Candidates travel to
Python as Arrow batches (``mapInArrow`` for the gate's counts, Arrow UDFs for
``scrub``), where :func:`pipelines.pii.engine.find` confirms them with the validators.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa  # at module level: Arrow UDF type hints resolve against the globals

from pipelines.errors import InternalError
from pipelines.pii import native
from pipelines.pii.catalogue import BY_NAME, CATALOGUE, Entity, Guards
from pipelines.pii.engine import ACCENTED, PLAIN, find
from pipelines.spec.quality import DEFAULT_COUNTRIES

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: The gate's entities: every catalogue entity (known values need the raw row).
GATE_ENTITIES: tuple[str, ...] = tuple(e.name for e in CATALOGUE if e.gate)
#: Bit of each entity in a screen mask: its index in the catalogue.
BIT = {e.name: i for i, e in enumerate(CATALOGUE)}
#: The SQL function a session registers (:func:`register`).
FUNCTION = "anonymize_pii_screen"


def _quote(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


def _guards(g: Guards) -> tuple[str, str, str]:
    """A :class:`Guards` as ``ScreenMask.add`` takes it: minimums, all, any."""
    minimums = ",".join(
        f"{f.name}={int(getattr(g, f.name))}"
        for f in fields(g)
        if f.name not in ("contains", "contains_any") and getattr(g, f.name)
    )
    # Substrings are newline-separated for Java (Guards refuses empty or multi-line ones).
    return minimums, "\n".join(g.contains), "\n".join(g.contains_any)


def screens(e: Entity) -> list[tuple[Guards, str]]:
    """The native screens of one entity: (guards, Java regex or "" for none).

    A numeric entity's candidates are digit runs of at least ``min_digits`` digits
    starting where :data:`pipelines.pii.engine.RUN` starts one, which is exactly its
    guards' ``started_run``; with no regex of its own that is its whole screen. An
    entity with a ``pattern_screen`` has a second screen for that form.

    Args:
        e: A catalogue entity.

    Returns:
        One or two screens; a value passing either may hold the entity.
    """
    g = e.guards
    if e.numeric:
        k = e.min_digits
        g = replace(g, digits=max(g.digits, k), run=max(g.run, k),
                    started_run=max(g.started_run, k))  # fmt: skip
    out = [(g, e.screen)]
    if e.pattern_screen:
        out.append((e.pattern_guards, e.pattern_screen))
    return out


_LOCK = threading.Lock()
#: Sessions (``sessionUUID``) holding the function: one registration each.
_REGISTERED: set[str] = set()
#: The screen's class, by jar path, as the first session's loader defined it.
_CLASSES: dict[str, Any] = {}


def register(spark: SparkSession) -> None:
    """Register :data:`FUNCTION` (``string -> bigint`` screen mask) in the session, once.

    The screen's jar (:func:`pipelines.pii.native.jar_path`, built when missing) joins
    the session's class loader on the driver and the jars executors fetch from it, as
    ``ADD JAR`` does but without its Hive side (with Hive support that starts the
    metastore client, which a run on path tables never needs). The UDF is then built
    from the catalogue and registered as a temporary function.

    Args:
        spark: The session.
    """
    jss = spark._jsparkSession  # noqa: SLF001 (py4j: a Java UDF has no Python API)
    with _LOCK:
        if jss.sessionUUID() in _REGISTERED:
            return
        jvm = spark._jvm  # noqa: SLF001
        path = native.jar_path()
        loader = jss.sharedState().jarClassLoader()
        url = jvm.java.io.File(str(path)).toURI().toURL()
        if url.toString() not in {u.toString() for u in loader.getURLs()}:
            loader.addURL(url)
            spark.sparkContext._jsc.addJar(str(path))  # noqa: SLF001
        gateway = spark.sparkContext._gateway  # noqa: SLF001
        # One class per driver: py4j keeps the methods it found by class name, so a
        # second session's loader must not define the class again (its methods would
        # be called on the first one's with a ClassCastException).
        cls = _CLASSES.get(str(path))
        if cls is None:
            cls = _CLASSES[str(path)] = jvm.java.lang.Class.forName(native.CLASS, True, loader)
        constructor = cls.getDeclaredConstructor(gateway.new_array(jvm.java.lang.Class, 0))
        udf = constructor.newInstance(gateway.new_array(jvm.java.lang.Object, 0))
        for e in CATALOGUE:
            for guards, regex in screens(e):
                udf.add(BIT[e.name], *_guards(guards), regex)
        jss.udf().register(FUNCTION, udf.function())
        _REGISTERED.add(jss.sessionUUID())


def mask_sql(column: str) -> str:
    """SQL: the screen mask of ``column`` (every entity's bit; 0 for null).

    Registers the function in this thread's active session first (:func:`register`).

    Args:
        column: The string column's name.

    Returns:
        SQL text of a bigint.

    Raises:
        InternalError: This thread has no active session.
    """
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        raise InternalError("the PII screen needs an active Spark session in this thread")
    register(spark)
    return f"{FUNCTION}({_quote(column)})"


def _bits(entities: Sequence[str]) -> int:
    return functools.reduce(lambda a, b: a | b, (1 << BIT[e] for e in entities), 0)


def screen(entity: str, column: str) -> Column:
    """Whether the value passes ``entity``'s screen (false for null).

    Args:
        entity: A catalogue name.
        column: The string column's name.

    Returns:
        A boolean column.
    """
    return screen_mask((entity,), column) != 0


def screen_mask(entities: Sequence[str], column: str, known: Sequence[str] = ()) -> Column:
    """Which of ``entities``' screens the value passes, as a bit mask (0: none, or null).

    Bit :data:`BIT` [e] is set when the value may hold entity e; the known-value
    screen (``known`` columns) sets the PERSON bit. Python then looks for those
    entities only (:func:`entities_in`): the screens are supersets, so an entity
    whose screen failed cannot be in the value, not even to win an overlap.

    Args:
        entities: Catalogue names.
        column: The text column.
        known: Columns holding the row's known values (``scrub``), if any.

    Returns:
        A bigint column.
    """
    from pyspark.sql import functions as F

    sql = f"({mask_sql(column)} & {_bits(entities)}L)"
    if known and "person" in entities:
        person = 1 << BIT["person"]
        sql = f"({sql} | CASE WHEN {known_screen_sql(column, known)} THEN {person}L ELSE 0L END)"
    return F.expr(sql)


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
    # name on a column allowed to hold names) need no confirming, only overlaps. The
    # counted entities are among the screened ones, so those rows' masks are not 0.
    mask = F.expr(mask_sql(column))
    rows = (
        df.select(F.col(column), mask.alias("_pii_mask"))
        .where(F.expr(f"(_pii_mask & {_bits(names)}L) != 0"))
        .select(F.col(column), F.expr(f"_pii_mask & {_bits(screened)}L").alias("_pii_mask"))
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
    """An Arrow UDF ``(text, known array, screen mask) -> struct<text, spans>``.

    Called with the text nulled out where no screen passed, so only candidate rows
    reach the engine, which looks only for the entities whose screens passed.

    ``text`` is the rendered text for ``placeholder`` and ``mask`` (the other modes
    render after the digests are computed, :func:`render_udf`); null input, null out.
    The spans are built column by column (:func:`_span_lists`): a Python dict per span
    converted by Arrow cost more than finding it.

    Args:
        entities: Catalogue names to find.
        countries: Regions of national phone formats.
        mode: ``placeholder``, ``mask``, ``token`` or ``surrogate``.
        char: The masking character.

    Returns:
        The UDF.
    """
    from pyspark.sql.functions import arrow_udf

    from pipelines.pii import engine

    @arrow_udf(f"struct<text:string,spans:{SPAN_TYPE}>")
    def spans(texts: pa.Array, known: pa.Array, masks: pa.Array) -> pa.Array:
        out_text: list[str | None] = []
        found_per_row: list[list[engine.Span] | None] = []
        rows = zip(texts.to_pylist(), known.to_pylist(), masks.to_pylist(), strict=True)
        for text, values, mask in rows:
            if text is None:
                out_text.append(None)
                found_per_row.append(None)
                continue
            screened = entities_in(mask)  # the screens are supersets: nothing else is there
            found = engine.find(text, screened, countries, values or ())
            found_per_row.append(found)
            if mode == "placeholder":
                replacements = [engine.placeholder(s.entity) for s in found]
            elif mode == "mask":
                replacements = [engine.mask(text[s.start : s.end], char) for s in found]
            out_text.append(engine.render(text, found, replacements) if mode in _SELF else None)
        return pa.StructArray.from_arrays(
            [pa.array(out_text, pa.string()), _span_lists(found_per_row)], names=["text", "spans"]
        )

    return spans


def _span_lists(rows: list[list[Any] | None]) -> pa.Array:
    """Arrow ``list<struct<entity, start, end, canonical>>`` of each row's spans (None: null).

    Args:
        rows: Per row, its :class:`pipelines.pii.engine.Span` s, or None.

    Returns:
        An Arrow list array of :data:`SPAN_TYPE`.
    """
    offsets, nulls = [0], []
    entity, start, end, canonical = [], [], [], []
    for found in rows:
        nulls.append(found is None)
        for s in found or ():
            entity.append(s.entity)
            start.append(s.start)
            end.append(s.end)
            canonical.append(s.canonical)
        offsets.append(len(entity))
    values = pa.StructArray.from_arrays(
        [pa.array(entity, pa.string()), pa.array(start, pa.int32()), pa.array(end, pa.int32()),
         pa.array(canonical, pa.string())],
        names=["entity", "start", "end", "canonical"],
    )  # fmt: skip
    return pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()), values, mask=pa.array(nulls, pa.bool_())
    )


def render_udf(mode: str, countries: tuple[str, ...] = DEFAULT_COUNTRIES) -> Any:
    """An Arrow UDF ``(text, spans, replacements) -> text`` for ``token``/``surrogate``.

    For ``token`` the replacements are the rendered tokens; for ``surrogate`` they are
    the spans' keyed digests, turned into never-real values here
    (:func:`pipelines.pii.surrogates.surrogate`).

    Args:
        mode: ``token`` or ``surrogate``.
        countries: The phone regions the gate checks (surrogates avoid them).

    Returns:
        The UDF.
    """
    from pyspark.sql.functions import arrow_udf

    from pipelines.pii import engine
    from pipelines.pii.surrogates import surrogate

    @arrow_udf("string")
    def render(texts: pa.Array, spans: pa.Array, replacements: pa.Array) -> pa.Array:
        out = []
        rows = zip(texts.to_pylist(), spans.to_pylist(), replacements.to_pylist(), strict=True)
        for text, found, values in rows:
            if text is None or found is None:
                out.append(None)
                continue
            parsed = [engine.Span(s["start"], s["end"], s["entity"], s["canonical"]) for s in found]
            if mode == "surrogate":
                values = [surrogate(s.entity, text[s.start:s.end], d, countries)
                          for s, d in zip(parsed, values, strict=True)]  # fmt: skip
            out.append(engine.render(text, parsed, list(values)))
        return pa.array(out, pa.string())

    return render


def canonical_udf(entity: str, countries: tuple[str, ...]) -> Any:
    """An Arrow UDF: each value's canonical form as ``entity`` (``hash: {canonical: …}``).

    The same function ``scrub`` tokens use, so a token in a note equals the pseudonym
    of a column holding the value. Null stays null.

    Args:
        entity: A catalogue name.
        countries: Regions of national phone formats.

    Returns:
        The UDF (string -> string).
    """
    from pyspark.sql.functions import arrow_udf

    canonical = BY_NAME[entity].canonical

    @arrow_udf("string")
    def canonical_form(values: pa.Array) -> pa.Array:
        return pa.array(
            [None if v is None else canonical(v.strip(), countries) for v in values.to_pylist()],
            pa.string(),
        )

    return canonical_form
