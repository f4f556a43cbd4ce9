"""Generalization: numeric buckets with top/bottom coding, date truncation, age, prefixes."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, IntegralType

from pipelines.desensitize.base import DATES, NUMERIC, STRINGY, Context, require
from pipelines.spec.models import GeneralizeAge, GeneralizeBucket, GeneralizeDate, GeneralizePrefix


def _fmt(value: Column | float, integral: bool) -> Column:
    col = value if isinstance(value, Column) else F.lit(value)
    return col.cast("bigint").cast("string") if integral else col.cast("double").cast("string")


def bucket(name: str, action: GeneralizeBucket, dtype: DataType, ctx: Context) -> Column:
    """Bucket lower bound lo = anchor + floor((x - anchor) / width) * width.

    anchor = ``bottom`` if given, else 0. Values < bottom and ≥ top form the two
    coded tails. Labels are ``[lo, lo+width)``, ``<bottom``, ``>=top``; with integral
    parameters they print as integers.
    """
    require(name, "generalize/bucket", dtype, NUMERIC, "a numeric column")
    x = F.col(name).cast("double")
    params = [action.width, action.bottom or 0.0, action.top or 0.0]
    integral = all(float(p).is_integer() for p in params)
    anchor = action.bottom or 0.0
    lo = F.floor((x - anchor) / action.width) * action.width + anchor
    if action.output == "lower":
        out_type = dtype if integral and isinstance(dtype, IntegralType) else "double"
        value = lo
        if action.bottom is not None:
            value = F.when(x < action.bottom, F.lit(action.bottom)).otherwise(value)
        if action.top is not None:
            value = F.when(x >= action.top, F.lit(action.top)).otherwise(value)
        return F.when(x.isNull(), None).otherwise(value).cast(out_type)
    label = F.concat(
        F.lit("["), _fmt(lo, integral), F.lit(", "), _fmt(lo + action.width, integral), F.lit(")")
    )
    if action.bottom is not None:
        label = F.when(
            x < action.bottom, F.concat(F.lit("<"), _fmt(action.bottom, integral))
        ).otherwise(label)
    if action.top is not None:
        label = F.when(
            x >= action.top, F.concat(F.lit(">="), _fmt(action.top, integral))
        ).otherwise(label)
    return F.when(x.isNull(), F.lit(None).cast("string")).otherwise(label)


def truncate_date(name: str, action: GeneralizeDate, dtype: DataType, ctx: Context) -> Column:
    """First day of the value's month or year, as a date."""
    require(name, "generalize/date", dtype, DATES, "a date or timestamp column")
    return F.trunc(F.col(name).cast("date"), "MM" if action.to == "month" else "YYYY")


def age(name: str, action: GeneralizeAge, dtype: DataType, ctx: Context) -> Column:
    """Whole years between the birthdate and the partition date.

    age = year(p) - year(b) - [ (month(p), day(p)) < (month(b), day(b)) ]
    (someone born on 29 February turns a year older on 1 March in common years),
    then top-coded to ``min(age, top)``.
    """
    require(name, "generalize/age", dtype, DATES, "a date or timestamp column")
    b = F.col(name).cast("date")
    p = F.lit(ctx.partition_date)
    before_birthday = (F.month(p) < F.month(b)) | (
        (F.month(p) == F.month(b)) & (F.dayofmonth(p) < F.dayofmonth(b))
    )
    years = F.year(p) - F.year(b) - F.when(before_birthday, 1).otherwise(0)
    if action.top is not None:
        years = F.least(years, F.lit(action.top))  # least() skips nulls: guard below
    return F.when(b.isNull(), F.lit(None)).otherwise(years).cast("int")


def prefix(name: str, action: GeneralizePrefix, dtype: DataType, ctx: Context) -> Column:
    """The first ``length`` characters (e.g. a postal code's district)."""
    require(name, "generalize/prefix", dtype, STRINGY, "a string column")
    return (
        F.substring(F.col(name), 1, action.length)
        if action.length
        else F.when(F.col(name).isNotNull(), F.lit(""))
    )
