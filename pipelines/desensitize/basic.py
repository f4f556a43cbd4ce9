"""keep and redact."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from pipelines.desensitize.base import Context
from pipelines.spec.models import Keep, Redact


def keep(name: str, action: Keep, dtype: DataType, ctx: Context) -> Column:
    """The column unchanged."""
    return F.col(name)


def redact(name: str, action: Redact, dtype: DataType, ctx: Context) -> Column:
    """A constant (string) for every value; nulls stay null unless ``keep_nulls`` is false."""
    constant = F.lit(action.value).cast("string")
    if action.keep_nulls:
        return F.when(F.col(name).isNotNull(), constant).otherwise(F.lit(None).cast("string"))
    return constant
