"""``keep``: publish the column unchanged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pipelines.desensitize.operator import ActionSpec, Context, Operator

if TYPE_CHECKING:
    from pyspark.sql import Column
    from pyspark.sql.types import DataType


class KeepSpec(ActionSpec):
    """Publish the column unchanged. Use only for columns that are not PII."""

    kind: Literal["keep"]


class KeepOperator(Operator, spec=KeepSpec):
    """The value as it is, in its source type."""

    label = "Kept"

    def output_type(self, dtype: DataType) -> DataType:
        """The source type.

        Args:
            dtype: The source column's Spark type.

        Returns:
            ``dtype`` itself.
        """
        return dtype

    def compile(self, ctx: Context) -> Column:
        """The source column.

        Args:
            ctx: The run's compile context.

        Returns:
            The column itself.
        """
        from pyspark.sql import functions as F

        return F.col(self.column)
