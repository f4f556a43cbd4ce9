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

from typing import TYPE_CHECKING

from pipelines.pii import spark as engine
from pipelines.spec.quality import DEFAULT_COUNTRIES, PII_DETECTORS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

DETECTORS = PII_DETECTORS

# (id(df), column) -> (df, countries, counts): one confirming pass per column serves the
# metric of every entity of that column. Holding the DataFrame keeps its id from being
# reused while the entry lives; the gate clears the cache before and after a run.
_CONFIRMED: dict[tuple[int, str], tuple[DataFrame, tuple[str, ...], dict[str, int]]] = {}
_COUNTRIES: list[tuple[str, ...]] = [DEFAULT_COUNTRIES]


def begin(countries: tuple[str, ...] = DEFAULT_COUNTRIES) -> None:
    """Start a scan: forget earlier confirmations, set the phone regions.

    Args:
        countries: Regions whose national phone formats count (``quality.pii_countries``).
    """
    _CONFIRMED.clear()
    _COUNTRIES[0] = tuple(countries)


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


def confirmed_count(df: DataFrame, column: str, name: str, candidates: int) -> int:
    """How many values of ``column`` hold entity ``name``, given its candidate count.

    The first call for a column confirms every gate entity of that column in one pass
    over the rows any screen lets through; later calls read the result.

    Args:
        df: The data scanned.
        column: The string column's name.
        name: A catalogue entity.
        candidates: How many rows pass the entity's screen.

    Returns:
        How many rows of ``df`` hold the entity in ``column``.
    """
    if candidates == 0:
        return 0
    countries = _COUNTRIES[0]
    cached = _CONFIRMED.get((id(df), column))
    if cached is None or cached[0] is not df or cached[1] != countries:
        counts = engine.confirmed_counts(df, column, engine.GATE_ENTITIES, countries)
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
    keys = [
        (field.name, name)
        for field in df.schema.fields
        if isinstance(field.dataType, StringType)
        for name in engine.GATE_ENTITIES
        if name not in allowed.get(field.name, set())
    ]
    if not keys:
        return {}
    row = df.agg(*[count_of(candidate(c, n)) for c, n in keys]).collect()[0]
    begin(countries)
    try:
        counts: dict[str, dict[str, int]] = {}
        for i, (column, name) in enumerate(keys):
            n = confirmed_count(df, column, name, int(row[i] or 0))
            counts.setdefault(column, {})[name] = n
        return counts
    finally:
        _CONFIRMED.clear()
