"""``date_shift``: dates moved by a keyed per-privacy-unit offset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from pipelines.desensitize.operator import ActionSpec, Context, Operator

if TYPE_CHECKING:
    from pyspark.sql import Column
    from pyspark.sql.types import DataType


class DateShiftSpec(ActionSpec):
    """Shift dates by a keyed per-privacy-unit offset in [-max_days, -1] ∪ [1, max_days].

    Every date column of one privacy unit moves by the same offset, in every
    partition, so intervals within a unit are preserved. A row whose privacy unit
    is null gets a null date.
    """

    kind: Literal["date_shift"]
    max_days: int = Field(ge=1, le=3650)
    key: str = "main"


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
    """The date (or timestamp) moved by the unit's keyed offset, in its source type."""

    label = "Date-shifted"
    accepts = "date"
    keyed = True
    action: DateShiftSpec

    def output_type(self, dtype: DataType) -> DataType:
        """The source type (a date stays a date, a timestamp a timestamp).

        Args:
            dtype: The source column's Spark type.

        Returns:
            ``dtype``.
        """
        return dtype

    def compile(self, ctx: Context) -> Column:
        """``date_add(d, offset)``, or ``t + offset days`` for timestamps.

        Args:
            ctx: The run's compile context.

        Returns:
            A column of the source type.
        """
        from pyspark.sql import functions as F
        from pyspark.sql.types import DateType

        offset = unit_offset_days(ctx, self.action.key, self.action.max_days)
        if isinstance(ctx.dtype, DateType):
            return F.date_add(F.col(self.column), offset)
        return F.col(self.column) + F.make_dt_interval(days=offset)
