"""The desensitize stage as a DataFrame -> DataFrame transform built from the run plan."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pipelines.desensitize.keyed import KeyRing
from pipelines.desensitize.operator import Context
from pipelines.errors import InternalError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from pipelines.plan import RunPlan


def with_desensitized(plan: RunPlan) -> Callable[[DataFrame], DataFrame]:
    """The transform applying every column's operator in one projection.

    The output has exactly the contract's columns, in source order: dropped and
    undeclared columns and the partition column are not part of it. Keyed digests
    come from a broadcast one-row key frame (:class:`~pipelines.desensitize.keyed.KeyRing`),
    so no key material appears in the query plan.

    Args:
        plan: A plan bound to the source schema (:meth:`~pipelines.plan.RunPlan.bind`).

    Returns:
        ``df -> desensitized df``, for ``df.transform``.
    """
    contract = plan.bound

    def desensitized(df: DataFrame) -> DataFrame:
        ring = KeyRing(plan.keys)
        dtypes = {f.name: f.dataType for f in df.schema.fields}
        exprs = []
        for column in contract.columns:
            ctx = Context(ring, plan.spec.privacy_unit, plan.partition.day, dtypes[column.source])
            exprs.append(column.operator.compile(ctx).alias(column.name))
        out = ring.attach(df).select(*exprs)
        produced = [(f.name, f.dataType) for f in out.schema.fields]
        promised = [(c.name, c.dtype) for c in contract.columns]
        if produced != promised:  # an operator's output_type disagrees with its compile
            raise InternalError(
                f"desensitized schema {produced} differs from the contract {promised}"
            )
        return out

    return desensitized
