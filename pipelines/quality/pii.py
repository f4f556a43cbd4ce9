"""The output gate's PII scan: counts per (column, entity) from the detection engine.

The engine is :mod:`pipelines.pii`. The gate uses every entity of its catalogue
except the row's known values (it sees anonymized data only). Counting runs in two
passes: one code-generated Spark aggregate counts, for every (column, entity), the
values passing the entity's native screen (GX bundles these column aggregates into a
single ``df.agg``); then, for each column with candidates, one pass over its candidate
rows only confirms them in Python (validators, context, overlap resolution) and counts
per entity. On clean data the second pass does not run. Nothing here returns values:
the results are counts, fit for manifests and reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from pipelines.pii import spark as engine
from pipelines.spec.quality import DEFAULT_COUNTRIES

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

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


def candidate(column: str, name: str) -> Column:
    """The entity's native screen on ``column``: a superset of its confirmed matches.

    Args:
        column: The string column's name.
        name: A catalogue entity.

    Returns:
        A boolean expression (false for null) that Spark can code-generate.
    """
    return engine.screen(name, column)


def count_of(flag: Column) -> Column:
    """Aggregate: how many rows ``flag`` is true for (null counts 0).

    Args:
        flag: A boolean expression.

    Returns:
        A sum aggregate (null over no rows).
    """
    from pyspark.sql import functions as F

    return F.sum(F.when(flag, 1).otherwise(0))


def confirmed_count(df: DataFrame, column: str, name: str, candidates: dict[str, int]) -> int:
    """How many values of ``column`` hold entity ``name``, given every entity's candidates.

    The first call for a column confirms, in one pass, every checked entity with
    candidates (not in ``quality.allow_pii`` for the column), over the rows one of their
    screens lets through; every entity with candidates competes for overlaps there.
    Later calls read the result.

    Args:
        df: The data scanned.
        column: The string column's name.
        name: A catalogue entity.
        candidates: Entity -> how many rows pass its screen (every gate entity).

    Returns:
        How many rows of ``df`` hold the entity in ``column``.
    """
    if not candidates.get(name):
        return 0
    countries = _COUNTRIES[0]
    cached = _CONFIRMED.get((id(df), column))
    if cached is None or cached[0] is not df or cached[1] != countries:
        screened = [e for e in engine.GATE_ENTITIES if candidates.get(e)]
        checked = [e for e in screened if e not in _ALLOWED.get(column, ())]
        counts = engine.confirmed_counts(df, column, checked, countries, screened)
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
    # Every entity's screen is counted (allowed ones too: they compete for overlaps).
    keys = [(c, n) for c in columns for n in engine.GATE_ENTITIES]
    row = df.agg(*[count_of(candidate(c, n)) for c, n in keys]).collect()[0]
    screened: dict[str, dict[str, int]] = {}
    for i, (column, name) in enumerate(keys):
        screened.setdefault(column, {})[name] = int(row[i] or 0)
    begin(countries, allowed)
    try:
        return {c: {n: confirmed_count(df, c, n, screened[c]) for n in checked[c]} for c in columns}
    finally:
        _CONFIRMED.clear()
