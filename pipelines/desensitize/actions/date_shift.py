"""``date_shift``: dates moved by a keyed per-privacy-unit offset, kept in range."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from pipelines.desensitize.operator import ISO_DATE, Context, DateInput, Operator, date_value

if TYPE_CHECKING:
    from pyspark.sql import Column
    from pyspark.sql.types import DataType

#: The dates Spark, pandas and Parquet readers agree on (Spark's DateType range).
FIRST_DAY, LAST_DAY = dt.date(1, 1, 1), dt.date(9999, 12, 31)


class DateShiftSpec(DateInput):
    """Shift dates by a keyed per-privacy-unit offset in [-max_days, -1] ∪ [1, max_days].

    Every date column of one privacy unit moves by the same offset, in every
    partition, so intervals within a unit are preserved. A row whose privacy unit
    is null gets a null date.

    A shifted date outside 0001-01-01..9999-12-31 is published as null and counted
    in the manifest (``action_counts.<column>.out_of_range``): publishing it would
    break readers (pandas cannot read year 10000) and reveal the unit's offset.
    ``sentinels`` lists "no date" markers (``9999-12-31``, ``1900-01-01``) that are
    never shifted: ``sentinel: keep`` (default) publishes them as they are,
    ``sentinel: null`` as null; either way they are counted (``…sentinel``). For a
    timestamp, a sentinel is matched on its date.
    """

    kind: Literal["date_shift"]
    max_days: int = Field(ge=1, le=3650)
    key: str = "main"
    sentinels: tuple[str, ...] = Field((), description="Marker dates that are never shifted.")
    sentinel: Literal["keep", "null"] = "keep"

    @field_validator("sentinels")
    @classmethod
    def _iso_dates(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for day in value:
            try:
                if not re.match(ISO_DATE, day):
                    raise ValueError
                dt.date.fromisoformat(day)
            except ValueError:
                raise ValueError(f"sentinel '{day}' is not a date written YYYY-MM-DD") from None
        return value


def unit_offset_days(ctx: Context, key: str, max_days: int) -> Column:
    """The privacy unit's offset in [-N, -1] ∪ [1, N] days.

    h = HMAC(subkey("date_shift"), unit) mod 2N; offset = h - N for h < N, else
    h - N + 1. Zero is excluded so every unit moves. The subkey does not depend on
    the column, so all dates of a unit move together.

    Args:
        ctx: The run's compile context (privacy unit and key ring).
        key: The key's name.
        max_days: N.

    Returns:
        An int column.
    """
    from pyspark.sql import functions as F

    from pipelines.desensitize.keyed import hex_to_long, utf8

    unit = utf8(F.col(ctx.privacy_unit).cast("string"))
    h = hex_to_long(ctx.ring.hmac_hex(key, unit, purpose="date_shift"), 1) % (2 * max_days)
    return F.when(h < max_days, h - max_days).otherwise(h - max_days + 1).cast("int")


class DateShiftOperator(Operator, spec=DateShiftSpec):
    """The date (or timestamp) moved by the unit's keyed offset, kept in range."""

    label = "Date-shifted"
    accepts = "date"
    keyed = True
    action: DateShiftSpec

    def output_type(self, dtype: DataType) -> DataType:
        """The source type (a date stays a date, a timestamp a timestamp; a string a date).

        Args:
            dtype: The source column's Spark type.

        Returns:
            ``dtype``, or ``DateType()`` for a string with a ``format``.
        """
        from pyspark.sql.types import DateType

        return DateType() if self.source_format else dtype

    def _parts(self, ctx: Context) -> tuple[Column, Column, Column]:
        """(source value, shifted value, is a sentinel) as Spark expressions."""
        from pyspark.sql import functions as F
        from pyspark.sql.types import DateType

        value = date_value(self.column, self.source_format)
        offset = unit_offset_days(ctx, self.action.key, self.action.max_days)
        if self.source_format or isinstance(ctx.dtype, DateType):
            shifted = F.date_add(value, offset)
        else:
            shifted = value + F.make_dt_interval(days=offset)
        days = [F.lit(d).cast("date") for d in self.action.sentinels]
        sentinel = F.to_date(value).isin(*days) if days else F.lit(False)
        return value, shifted, sentinel

    def _out_of_range(self, shifted: Column) -> Column:
        from pyspark.sql import functions as F

        day = F.to_date(shifted)  # py4j cannot pass year 1 as a literal date: cast text
        first, last = (F.lit(d.isoformat()).cast("date") for d in (FIRST_DAY, LAST_DAY))
        return (day < first) | (day > last)

    def compile(self, ctx: Context) -> Column:
        """``date_add(d, offset)`` (``t + offset days`` for timestamps), kept in range.

        Args:
            ctx: The run's compile context.

        Returns:
            A column of :meth:`output_type`; null where the shift leaves the valid
            range; sentinels kept or nulled.
        """
        from pyspark.sql import functions as F

        value, shifted, sentinel = self._parts(ctx)
        typed_null = F.lit(None).cast(self.output_type(ctx.dtype))
        kept = value if self.action.sentinel == "keep" else typed_null
        return (
            F.when(sentinel, kept)
            .when(self._out_of_range(shifted), typed_null)
            .otherwise(shifted)
        )

    def flags(self, ctx: Context) -> dict[str, Column]:
        """``out_of_range`` (shifted outside 0001..9999, published null) and ``sentinel``.

        Args:
            ctx: The run's compile context.

        Returns:
            Flag name -> boolean column.
        """
        from pyspark.sql import functions as F

        _, shifted, sentinel = self._parts(ctx)
        out = {"out_of_range": ~sentinel & F.coalesce(self._out_of_range(shifted), F.lit(False))}
        if self.action.sentinels:
            out["sentinel"] = F.coalesce(sentinel, F.lit(False))
        return out
