"""``generalize``: numeric buckets with coded tails, date truncation, ages, prefixes.

One kind with four methods, discriminated by ``method``; each method is its own
spec model and operator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from pipelines.desensitize.operator import (
    ActionSpec,
    Context,
    DateInput,
    Domain,
    Operator,
    date_value,
)

if TYPE_CHECKING:
    from pyspark.sql import Column
    from pyspark.sql.types import DataType

_NUM = r"-?[0-9]+(\.[0-9]+)?([Ee][-+]?[0-9]+)?"


class GeneralizeBucketSpec(ActionSpec):
    """Numeric value to a bucket of ``width``, with coded tails.

    Values below ``bottom`` / at or above ``top`` are coded into one open-ended bucket.

    ``output: range`` gives a label (``[20, 30)``, ``<18``, ``>=90``);
    ``output: lower`` gives the bucket's lower bound as a number (``bottom``/``top``
    for the coded tails).
    """

    kind: Literal["generalize"]
    method: Literal["bucket"]
    width: float = Field(gt=0)
    bottom: float | None = None
    top: float | None = None
    output: Literal["range", "lower"] = "range"

    @model_validator(mode="after")
    def _order(self) -> GeneralizeBucketSpec:
        if self.bottom is not None and self.top is not None and self.bottom >= self.top:
            raise ValueError("bottom must be below top")
        return self


class GeneralizeDateSpec(DateInput):
    """Date or timestamp to the first day of its month or year (a date)."""

    kind: Literal["generalize"]
    method: Literal["date"]
    to: Literal["month", "year"]


class GeneralizeAgeSpec(DateInput):
    """Birthdate to age in whole years as of the partition date, optionally top-coded.

    ``top: 90`` publishes every age of 90 or more as 90.
    """

    kind: Literal["generalize"]
    method: Literal["age"]
    top: int | None = Field(None, gt=0)


#: The 3-digit ZIP code prefixes HIPAA's Safe Harbor method publishes as ``000``:
#: those whose areas held 20,000 people or fewer in the 2000 Census (45 CFR
#: 164.514(b)(2)(i)(B); the 17 prefixes are listed in HHS Office for Civil Rights,
#: "Guidance Regarding Methods for De-identification of Protected Health
#: Information", 2012, section 3.3, "the initial three digits of a ZIP code").
HIPAA_RESTRICTED_ZIP3: tuple[str, ...] = (
    "036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831",
    "878", "879", "884", "890", "893",
)  # fmt: skip
#: Named prefix maps for ``map:``.
PREFIX_MAPS: dict[str, dict[str, str]] = {
    "hipaa-zip3": dict.fromkeys(HIPAA_RESTRICTED_ZIP3, "000"),
}


class GeneralizePrefixSpec(ActionSpec):
    """String truncated to its first ``length`` characters (e.g. postal codes).

    ``map`` publishes some prefixes as another value: a mapping (``{"036": "000"}``),
    or ``hipaa-zip3``, the 3-digit ZIP prefixes HIPAA Safe Harbor sets to ``000``
    (:data:`HIPAA_RESTRICTED_ZIP3`).
    """

    kind: Literal["generalize"]
    method: Literal["prefix"]
    length: int = Field(ge=0)
    map: dict[str, str] | Literal["hipaa-zip3"] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _map_fits(self) -> GeneralizePrefixSpec:
        for prefix, value in self.mapping().items():
            if len(prefix) != self.length:
                raise ValueError(f"map: prefix {prefix!r} is not {self.length} characters long")
            if len(value) > self.length:
                raise ValueError(f"map: {prefix!r} maps to more than {self.length} characters")
        return self

    def mapping(self) -> dict[str, str]:
        """The prefix map (a named one resolved).

        Returns:
            Prefix -> published value.
        """
        return PREFIX_MAPS[self.map] if isinstance(self.map, str) else dict(self.map)


def _fmt(value: Column | float, integral: bool) -> Column:
    from pyspark.sql import Column
    from pyspark.sql import functions as F

    col = value if isinstance(value, Column) else F.lit(value)
    return col.cast("bigint").cast("string") if integral else col.cast("double").cast("string")


class BucketOperator(Operator, spec=GeneralizeBucketSpec):
    """Bucket lower bound lo = anchor + floor((x - anchor) / width) * width.

    anchor = ``bottom`` if given, else 0. Values < bottom and ≥ top form the two
    coded tails. Labels are ``[lo, lo+width)``, ``<bottom``, ``>=top``; with integral
    parameters they print as integers.
    """

    label = "Generalized"
    accepts = "numeric"
    action: GeneralizeBucketSpec

    @property
    def _integral(self) -> bool:
        a = self.action
        return all(float(p).is_integer() for p in (a.width, a.bottom or 0.0, a.top or 0.0))

    def output_type(self, dtype: DataType) -> DataType:
        """A label string; with ``output: lower`` the source's integral type or a double.

        Args:
            dtype: The source column's Spark type.

        Returns:
            The output type.
        """
        from pyspark.sql.types import DoubleType, IntegralType, StringType

        if self.action.output == "range":
            return StringType()
        return dtype if self._integral and isinstance(dtype, IntegralType) else DoubleType()

    def compile(self, ctx: Context) -> Column:
        """The bucket label (or lower bound) of each value; null stays null.

        Args:
            ctx: The run's compile context.

        Returns:
            A column of :meth:`output_type`.
        """
        from pyspark.sql import functions as F

        a, integral = self.action, self._integral
        x = F.col(self.column).cast("double")
        anchor = a.bottom or 0.0
        lo = F.floor((x - anchor) / a.width) * a.width + anchor
        if a.output == "lower":
            value = lo
            if a.bottom is not None:
                value = F.when(x < a.bottom, F.lit(a.bottom)).otherwise(value)
            if a.top is not None:
                value = F.when(x >= a.top, F.lit(a.top)).otherwise(value)
            return F.when(x.isNull(), None).otherwise(value).cast(self.output_type(ctx.dtype))
        label = F.concat(
            F.lit("["), _fmt(lo, integral), F.lit(", "), _fmt(lo + a.width, integral), F.lit(")")
        )
        if a.bottom is not None:
            below = F.concat(F.lit("<"), _fmt(a.bottom, integral))
            label = F.when(x < a.bottom, below).otherwise(label)
        if a.top is not None:
            above = F.concat(F.lit(">="), _fmt(a.top, integral))
            label = F.when(x >= a.top, above).otherwise(label)
        return F.when(x.isNull(), F.lit(None).cast("string")).otherwise(label)

    def domain(self) -> Domain | None:
        """A bucket label, or (``output: lower``) a number within the coded range.

        Returns:
            The domain, or None for lower bounds without coded tails.
        """
        a = self.action
        if a.output == "range":
            return Domain(
                "regex", "a bucket label", regex=rf"^(\[{_NUM}, {_NUM}\)|<{_NUM}|>={_NUM})$"
            )
        if a.bottom is None and a.top is None:
            return None
        return Domain("between", "within its coded range", low=a.bottom, high=a.top)


class DateTruncOperator(Operator, spec=GeneralizeDateSpec):
    """The first day of the value's month or year, as a date."""

    label = "Generalized"
    accepts = "date"
    action: GeneralizeDateSpec

    def output_type(self, dtype: DataType) -> DataType:
        """A date.

        Args:
            dtype: The source column's Spark type.

        Returns:
            ``DateType()``.
        """
        from pyspark.sql.types import DateType

        return DateType()

    def compile(self, ctx: Context) -> Column:
        """``trunc(date, 'MM' | 'YYYY')``.

        Args:
            ctx: The run's compile context.

        Returns:
            A date column.
        """
        from pyspark.sql import functions as F

        unit = "MM" if self.action.to == "month" else "YYYY"
        return F.trunc(date_value(self.column, self.source_format).cast("date"), unit)

    def domain(self) -> Domain:
        """The first day of a month (year).

        Returns:
            A ``truncated_date`` domain.
        """
        return Domain(
            "truncated_date", f"the first day of its {self.action.to}", unit=self.action.to
        )


class AgeOperator(Operator, spec=GeneralizeAgeSpec):
    """Whole years between the birthdate and the partition date.

    age = year(p) - year(b) - [ (month(p), day(p)) < (month(b), day(b)) ]
    (someone born on 29 February turns a year older on 1 March in common years),
    then top-coded to ``min(age, top)``.
    """

    label = "Generalized"
    accepts = "date"
    action: GeneralizeAgeSpec

    def output_type(self, dtype: DataType) -> DataType:
        """An int.

        Args:
            dtype: The source column's Spark type.

        Returns:
            ``IntegerType()``.
        """
        from pyspark.sql.types import IntegerType

        return IntegerType()

    def compile(self, ctx: Context) -> Column:
        """The age in whole years as of the partition date; null stays null.

        Args:
            ctx: The run's compile context (its partition date).

        Returns:
            An int column.
        """
        from pyspark.sql import functions as F

        b = date_value(self.column, self.source_format).cast("date")
        p = F.lit(ctx.partition_date)
        before_birthday = (F.month(p) < F.month(b)) | (
            (F.month(p) == F.month(b)) & (F.dayofmonth(p) < F.dayofmonth(b))
        )
        years = F.year(p) - F.year(b) - F.when(before_birthday, 1).otherwise(0)
        if self.action.top is not None:
            years = F.least(years, F.lit(self.action.top))  # least() skips nulls: guard below
        return F.when(b.isNull(), F.lit(None)).otherwise(years).cast("int")

    def domain(self) -> Domain:
        """An age in 0..top (150 without top-coding).

        Returns:
            A ``between`` domain.
        """
        top = self.action.top or 150
        return Domain("between", f"an age in 0..{top}", low=0, high=top)


class PrefixOperator(Operator, spec=GeneralizePrefixSpec):
    """The first ``length`` characters (e.g. a postal code's district), some mapped."""

    label = "Generalized"
    accepts = "string"
    action: GeneralizePrefixSpec

    def compile(self, ctx: Context) -> Column:
        """The prefix; null stays null.

        Args:
            ctx: The run's compile context.

        Returns:
            A string column.
        """
        from pyspark.sql import functions as F

        n = self.action.length
        source = F.col(self.column)
        prefix = F.substring(source, 1, n) if n else F.when(source.isNotNull(), F.lit(""))
        by_value: dict[str, list[str]] = {}
        for key, value in sorted(self.action.mapping().items()):
            by_value.setdefault(value, []).append(key)
        out = None
        for value, keys in by_value.items():  # one test per published value
            hit = prefix.isin(keys)
            out = F.when(hit, F.lit(value)) if out is None else out.when(hit, F.lit(value))
        return prefix if out is None else out.otherwise(prefix)

    def domain(self) -> Domain:
        """At most ``length`` characters.

        Returns:
            A ``max_length`` domain.
        """
        n = self.action.length
        return Domain("max_length", f"at most {n} characters long", high=n)
