"""``redact``: every value becomes one constant."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pipelines.desensitize.operator import ActionSpec, Context, Domain, Operator

if TYPE_CHECKING:
    from pyspark.sql import Column


class RedactSpec(ActionSpec):
    """Replace every non-null value with a constant (``value``; null if ``value`` is null).

    ``keep_nulls: false`` replaces nulls too, so the output does not reveal which rows
    had a value.
    """

    kind: Literal["redact"]
    value: str | None = "[REDACTED]"
    keep_nulls: bool = True


class RedactOperator(Operator, spec=RedactSpec):
    """A constant string for every value; nulls stay null unless ``keep_nulls`` is false."""

    label = "Redacted"
    action: RedactSpec

    def compile(self, ctx: Context) -> Column:
        """The constant, guarded by the source's nulls where asked.

        Args:
            ctx: The run's compile context.

        Returns:
            A string column.
        """
        from pyspark.sql import functions as F

        constant = F.lit(self.action.value).cast("string")
        if self.action.keep_nulls:
            source = F.col(self.column)
            return F.when(source.isNotNull(), constant).otherwise(F.lit(None).cast("string"))
        return constant

    def domain(self) -> Domain | None:
        """The redaction constant, when there is one.

        Returns:
            An ``in_set`` domain of the constant, or None for a null constant.
        """
        if self.action.value is None:
            return None
        return Domain("in_set", "redacted", values=(self.action.value,))
