"""The output gate's PII scan: counts per (column, entity) from the detection engine.

The engine is :mod:`pipelines.pii`. The gate uses every entity of its catalogue
except the row's known values (it sees anonymized data only). Counting runs in two
passes: one Spark job ORs, per column, the native screen masks of every value (a
GX table metric), which says which entities' screens some value passed; then, for
each column where a checked entity's did, one pass over those rows only confirms
them in Python (validators, context, overlap resolution) and counts per entity. On
clean data the second pass does not run. Nothing here returns values: the results
are counts, fit for manifests and reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from pipelines.pii import spark as engine
from pipelines.spec.quality import DEFAULT_COUNTRIES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# (id(df), column) -> (df, countries, counts): one confirming pass per column serves the
# metric of every entity of that column. Holding the DataFrame keeps its id from being
# reused while the entry lives; the gate clears the cache before and after a run.
_CONFIRMED: dict[tuple[int, str], tuple[DataFrame, tuple[str, ...], dict[str, int]]] = {}
_COUNTRIES: list[tuple[str, ...]] = [DEFAULT_COUNTRIES]
_ALLOWED: dict[str, frozenset[str]] = {}


def begin(
    countries: tuple[str, ...] = DEFAULT_COUNTRIES,
    allowed: Mapping[str, Iterable[str]] | None = None,
) -> None:
    """Start a scan: forget earlier confirmations, set the phone regions and exemptions.

    Args:
        countries: Regions whose national phone formats count (``quality.pii_countries``).
        allowed: Column -> entities not checked on it (``quality.allow_pii``): the
            confirming pass skips rows that only they could be in.
    """
    _CONFIRMED.clear()
    _COUNTRIES[0] = tuple(countries)
    _ALLOWED.clear()
    _ALLOWED.update({c: frozenset(v) for c, v in (allowed or {}).items()})


def screened(df: DataFrame) -> dict[str, int]:
    """Per string column, the OR of its values' screen masks (which entities may be in it).

    One Spark job: the masks are projected, then OR-ed.

    Args:
        df: The data.

    Returns:
        Column -> mask (bits as :data:`pipelines.pii.spark.BIT`; 0 when no value passes
        any screen, or there are no rows).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    columns = [f.name for f in df.schema.fields if isinstance(f.dataType, StringType)]
    if not columns:
        return {}
    masks = df.select(*[F.expr(engine.mask_sql(c)).alias(f"_m{i}") for i, c in enumerate(columns)])
    row = masks.agg(*[F.bit_or(f"_m{i}") for i in range(len(columns))]).collect()[0]
    return {c: int(row[i] or 0) for i, c in enumerate(columns)}


def confirmed_count(df: DataFrame, column: str, name: str, mask: int) -> int:
    """How many values of ``column`` hold entity ``name``, given the column's screened mask.

    The first call for a column confirms, in one pass, every checked entity whose
    screen some value passed (not in ``quality.allow_pii`` for the column), over the
    rows one of their screens lets through; every entity whose screen passed competes
    for overlaps there. Later calls read the result.

    Args:
        df: The data scanned.
        column: The string column's name.
        name: A catalogue entity.
        mask: The column's mask from :func:`screened` (0 for none).

    Returns:
        How many rows of ``df`` hold the entity in ``column``.
    """
    present = [e for e in engine.entities_in(mask) if e in engine.GATE_ENTITIES]
    if name not in present:
        return 0
    countries = _COUNTRIES[0]
    cached = _CONFIRMED.get((id(df), column))
    if cached is None or cached[0] is not df or cached[1] != countries:
        checked = [e for e in present if e not in _ALLOWED.get(column, ())]
        counts = engine.confirmed_counts(df, column, checked, countries, present)
        _CONFIRMED[(id(df), column)] = (df, countries, counts)
        cached = _CONFIRMED[(id(df), column)]
    return cached[2].get(name, 0)


def scan(
    df: DataFrame,
    allowed: dict[str, set[str]] | None = None,
    countries: tuple[str, ...] = DEFAULT_COUNTRIES,
) -> dict[str, dict[str, int]]:
    """Count values holding each entity, over every row of every string column.

    Args:
        df: The data to scan.
        allowed: Column -> entities not checked on it (None: every entity everywhere).
        countries: Regions whose national phone formats count.

    Returns:
        ``{column: {entity: count}}``: counts only, never values. A string column all
        of whose entities are allowed is absent; so is every non-string column.
    """
    from pyspark.sql.types import StringType

    allowed = allowed or {}
    columns = [f.name for f in df.schema.fields if isinstance(f.dataType, StringType)]
    checked = {c: [n for n in engine.GATE_ENTITIES if n not in allowed.get(c, set())]
               for c in columns}  # fmt: skip
    columns = [c for c in columns if checked[c]]
    if not columns:
        return {}
    # Every entity's screen counts (allowed ones too: they compete for overlaps).
    masks = screened(df.select(*columns))
    begin(countries, allowed)
    try:
        return {c: {n: confirmed_count(df, c, n, masks[c]) for n in checked[c]} for c in columns}
    finally:
        _CONFIRMED.clear()
