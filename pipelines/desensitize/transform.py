"""The desensitize stage as a DataFrame -> DataFrame transform built from the run plan."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from pipelines.desensitize.keyed import KeyRing
from pipelines.desensitize.operator import Context
from pipelines.errors import InternalError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from pipelines.plan import RunPlan

_FLAG = "__anon_f"


class Desensitize:
    """Every column's operator in one projection: ``out = df.transform(Desensitize(plan))``.

    The output has exactly the contract's columns, in source order: dropped and
    undeclared columns and the partition column are not part of it. Keyed digests
    come from a broadcast one-row key frame (:class:`~pipelines.desensitize.keyed.KeyRing`),
    so no key material appears in the query plan. The operators' flags (dates nulled
    as out of range, sentinels…) are counted by a Spark ``Observation`` on the first
    action over the result; :meth:`counts` reads them afterwards.
    """

    def __init__(self, plan: RunPlan, count_flags: bool = True) -> None:
        """Hold the plan; nothing is built until the transform is applied.

        Args:
            plan: A plan bound to the source schema (:meth:`~pipelines.plan.RunPlan.bind`).
            count_flags: Observe the operators' flags (the run's own partition); False
                for rows that only shape k-anonymity classes.
        """
        self.plan = plan
        self.count_flags = count_flags
        self._flags: dict[str, tuple[str, str]] = {}
        self._observation = None

    def __call__(self, df: DataFrame) -> DataFrame:
        """Desensitize ``df``.

        Args:
            df: The source partition's rows.

        Returns:
            The contract's columns, lazily.

        Raises:
            InternalError: An operator's compiled type disagrees with its declared
                ``output_type`` (a bug in that operator).
        """
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        contract = self.plan.bound
        ring = KeyRing(self.plan.keys)
        dtypes = {f.name: f.dataType for f in df.schema.fields}
        exprs, flags = [], []
        self._flags = {}  # counts() reads the latest application's flags
        for column in contract.columns:
            ctx = Context(ring, self.plan.spec.privacy_unit, self.plan.partition.day,
                          dtypes[column.source])  # fmt: skip
            exprs.append(column.operator.compile(ctx).alias(column.name))
            if self.count_flags:
                for flag, condition in column.operator.flags(ctx).items():
                    alias = f"{_FLAG}{len(self._flags)}"
                    self._flags[alias] = (column.name, flag)
                    flags.append(condition.alias(alias))
        keyed = ring.attach(df)
        produced = [(f.name, f.dataType) for f in keyed.select(*exprs).schema.fields]
        promised = [(c.name, c.dtype) for c in contract.columns]
        if produced != promised:  # an operator's output_type disagrees with its compile
            raise InternalError(f"desensitized schema {produced} differs from {promised}")
        if not flags:
            return keyed.select(*exprs)
        # A name of its own: Spark pairs an observation with its query's metrics by
        # name, so two runs observing at once in one session would read each other's.
        self._observation = Observation(f"desensitize_flags_{uuid.uuid4().hex}")
        sums = [F.sum(F.col(a).cast("long")).alias(a) for a in self._flags]
        return keyed.select(*exprs, *flags).observe(self._observation, *sums).drop(*self._flags)

    def counts(self) -> dict[str, dict[str, int]]:
        """The flags counted by the first action over the transform's result.

        Returns:
            Published column -> flag -> count (empty when no operator has flags).
        """
        if self._observation is None:
            return {}
        got = self._observation.get
        out: dict[str, dict[str, int]] = {}
        for alias, (column, flag) in self._flags.items():
            out.setdefault(column, {})[flag] = int(got[alias] or 0)
        return out


def with_desensitized(plan: RunPlan, count_flags: bool = True) -> Desensitize:
    """The desensitize stage of a run, for ``df.transform``.

    Args:
        plan: A plan bound to the source schema.
        count_flags: Count the operators' flags (see :class:`Desensitize`).

    Returns:
        The transform.
    """
    return Desensitize(plan, count_flags)
