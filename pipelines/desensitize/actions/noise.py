"""``noise``: bounded keyed uniform noise on a number. Not differential privacy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from pipelines.desensitize.operator import ActionSpec, Context, Operator

if TYPE_CHECKING:
    from pyspark.sql import Column
    from pyspark.sql.types import DataType


class NoiseSpec(ActionSpec):
    """Bounded keyed uniform noise on a number. NOT differential privacy.

    The value x becomes x + u·m with u uniform in [-1, 1] derived from
    HMAC(key, column, privacy unit, x), and m = ``max_abs`` or ``max_relative``·|x|.
    Integral columns are rounded to whole numbers and decimal columns to their scale;
    ``round: N`` rounds a float or double to N decimal places (a double holding
    amounts with 2 decimals would otherwise publish 6+). Reruns reproduce the same
    noise. This only blurs values; it gives no formal guarantee (use a ``releases``
    DP aggregate for that).
    """

    kind: Literal["noise"]
    max_abs: float | None = Field(None, gt=0)
    max_relative: float | None = Field(None, gt=0, le=1)
    key: str = "main"
    round: int | None = Field(
        None, ge=0, le=15, description="Decimal places of the noised value (float/double)."
    )

    @model_validator(mode="after")
    def _one_bound(self) -> NoiseSpec:
        if (self.max_abs is None) == (self.max_relative is None):
            raise ValueError("give exactly one of 'max_abs' or 'max_relative'")
        return self


class NoiseOperator(Operator, spec=NoiseSpec):
    """x + u·m with u = 2·(first 52 bits of HMAC / 2^52) - 1 ∈ [-1, 1).

    The HMAC message is column name, privacy unit and value, separated by NUL.
    Integral and decimal columns are rounded back to their type.
    """

    label = "Noised (bounded, not DP)"
    accepts = "numeric"
    keyed = True
    action: NoiseSpec

    def output_type(self, dtype: DataType) -> DataType:
        """The source type.

        Args:
            dtype: The source column's Spark type.

        Returns:
            ``dtype``.
        """
        return dtype

    def compile(self, ctx: Context) -> Column:
        """The noised value, cast back to the source type.

        Args:
            ctx: The run's compile context.

        Returns:
            A column of the source type.
        """
        from pyspark.sql import functions as F
        from pyspark.sql.types import DecimalType, IntegralType

        from pipelines.desensitize.keyed import hex_to_long, utf8

        x, a, dtype = F.col(self.column), self.action, ctx.dtype
        message = utf8(
            F.concat(
                F.lit(self.column + "\x00"),
                F.col(ctx.privacy_unit).cast("string"),
                F.lit("\x00"),
                x.cast("string"),
            )
        )
        h = ctx.ring.hmac_hex(a.key, message, purpose="noise")
        u = hex_to_long(h, 1, 13).cast("double") / float(2**52) * 2.0 - 1.0
        m = F.lit(a.max_abs) if a.max_abs is not None else F.abs(x.cast("double")) * a.max_relative
        noisy = x.cast("double") + u * m
        if isinstance(dtype, IntegralType | DecimalType):
            noisy = F.round(noisy, dtype.scale if isinstance(dtype, DecimalType) else 0)
        if a.round is not None:
            noisy = F.round(noisy, a.round)
        return noisy.cast(dtype)
