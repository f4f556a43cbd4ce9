"""What every action compiler receives, and the type checks they share."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DataType,
    DateType,
    DecimalType,
    FractionalType,
    IntegralType,
    NumericType,
    StringType,
    TimestampNTZType,
    TimestampType,
)

from pipelines.desensitize.keyed import KeyRing
from pipelines.errors import SpecError


@dataclass
class Context:
    """Per-run inputs of the action compilers."""

    ring: KeyRing
    privacy_unit: str
    partition_date: dt.date


def require(column: str, kind: str, dtype: DataType, allowed: tuple[type, ...], what: str) -> None:
    """Raise a :class:`SpecError` naming the column when ``dtype`` is not acceptable."""
    if not isinstance(dtype, allowed):
        raise SpecError(
            f"columns.{column}: '{kind}' needs {what}; the source column is {dtype.simpleString()}"
        )


STRINGY = (StringType,)
TEXT_LIKE = (StringType, IntegralType, DateType)  # types with one canonical string form
NUMERIC = (NumericType,)
INTEGRAL = (IntegralType,)
FRACTIONAL = (FractionalType, DecimalType)
DATES = (DateType, TimestampType, TimestampNTZType)


def normalized(col: Column, steps: tuple[str, ...]) -> Column:
    r"""Apply declared normalizations in order.

    ``trim`` strips leading/trailing ASCII whitespace (space, \\t, \\n, \\x0b, \\f, \\r),
    i.e. Python's ``s.strip(" \\t\\n\\x0b\\f\\r")``; ``lower`` is Java's ``toLowerCase``.
    """
    out = col.cast("string")
    for step in steps:
        if step == "trim":
            out = F.btrim(out, F.lit(" \t\n\x0b\f\r"))  # cheaper than a regex
        elif step == "lower":
            out = F.lower(out)
    return out
