"""Keyed perturbations: per-unit date shifting and bounded numeric noise (not DP)."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, DateType, DecimalType, IntegralType

from pipelines.desensitize.base import DATES, NUMERIC, Context, require
from pipelines.desensitize.keyed import hex_to_long, utf8
from pipelines.spec.models import DateShift, Noise


def unit_offset_days(ctx: Context, key: str, max_days: int) -> Column:
    """Offset in [-N, -1] ∪ [1, N] from h = HMAC(subkey("date_shift"), unit) mod 2N.

    offset = h - N for h < N, else h - N + 1. Zero is excluded so every unit moves.
    The subkey does not depend on the column, so all dates of a unit move together.
    """
    unit = utf8(F.col(ctx.privacy_unit).cast("string"))
    h = hex_to_long(ctx.ring.hmac_hex(key, unit, purpose="date_shift"), 1) % (2 * max_days)
    return F.when(h < max_days, h - max_days).otherwise(h - max_days + 1).cast("int")


def date_shift(name: str, action: DateShift, dtype: DataType, ctx: Context) -> Column:
    """The date (or timestamp) moved by the unit's keyed offset."""
    require(name, "date_shift", dtype, DATES, "a date or timestamp column")
    offset = unit_offset_days(ctx, action.key, action.max_days)
    if isinstance(dtype, DateType):
        return F.date_add(F.col(name), offset)
    return F.col(name) + F.make_dt_interval(days=offset)


def noise(name: str, action: Noise, dtype: DataType, ctx: Context) -> Column:
    """X + u·m with u = 2·(first 52 bits of HMAC / 2^52) - 1 ∈ [-1, 1).

    The HMAC message is column name, privacy unit and value, separated by NUL.
    Integral and decimal columns are rounded back to their type. Not DP.
    """
    require(name, "noise", dtype, NUMERIC, "a numeric column")
    x = F.col(name)
    message = utf8(
        F.concat(
            F.lit(name + "\x00"),
            F.col(ctx.privacy_unit).cast("string"),
            F.lit("\x00"),
            x.cast("string"),
        )
    )
    h = ctx.ring.hmac_hex(action.key, message, purpose="noise")
    u = hex_to_long(h, 1, 13).cast("double") / float(2**52) * 2.0 - 1.0
    m = (
        F.lit(action.max_abs)
        if action.max_abs is not None
        else F.abs(x.cast("double")) * action.max_relative
    )
    noisy = x.cast("double") + u * m
    if isinstance(dtype, (IntegralType, DecimalType)):
        noisy = F.round(noisy, dtype.scale if isinstance(dtype, DecimalType) else 0)
    return noisy.cast(dtype)
