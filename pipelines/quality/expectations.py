"""Great Expectations custom expectations for checks GX does not ship.

* :class:`ExpectColumnValuesToNotContainPii`: no value of a string column contains
  an identifier of one kind (email, phone, national id, Luhn-valid payment card,
  mod-97-valid IBAN, IPv4/IPv6, …), anywhere in the text, as the engine of
  :mod:`pipelines.quality.pii` finds it. One table metric computes the native screen
  masks of every string column and ORs them in one pass over every row (a full scan,
  not a sample); a second pass per column confirms the rows a checked entity's screen
  passed, where there are any.
* :class:`ExpectColumnValuesToBeTruncatedDates`: every date is the first day of its
  month (or year): the domain of ``generalize: date``.
* :class:`ExpectColumnsToBeKAnonymous`: every combination of the given columns that
  occurs, occurs at least ``k`` times (equivalence classes of size ≥ k).

Every observed value is a count: none of these expectations can put a cell value
into a validation result.

GX registers expectations and metrics when their classes are defined, so this module
is imported (lazily, with GX) by :mod:`pipelines.quality.gate` only.
"""

from __future__ import annotations

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no network, no usage events

from typing import Any, ClassVar  # noqa: E402

from great_expectations.execution_engine import SparkDFExecutionEngine  # noqa: E402
from great_expectations.expectations.expectation import (  # noqa: E402
    BatchExpectation,
    ColumnAggregateExpectation,
)
from great_expectations.expectations.metrics import (  # noqa: E402
    ColumnAggregateMetricProvider,
    column_aggregate_partial,
)
from great_expectations.expectations.metrics.metric_provider import metric_value  # noqa: E402
from great_expectations.expectations.metrics.table_metric_provider import (  # noqa: E402
    TableMetricProvider,
)
from pyspark.sql import functions as F  # noqa: E402

from pipelines.errors import InternalError  # noqa: E402
from pipelines.quality import pii  # noqa: E402

_SCREENED = "table.pii_screened"


def _count(metrics: dict[str, Any], name: str) -> int:
    return int(metrics[name] or 0)


# --------------------------------------------------------------------------- PII


class TablePiiScreened(TableMetricProvider):
    """Column -> which entities' native screens some value of it passes (an OR of masks).

    One Spark job for every string column of the table: the masks are projected, then
    OR-ed, so each value's mask is computed once (``bit_or`` of the UDF inside an
    aggregate would evaluate it twice per row: once for its null test).
    """

    metric_name = _SCREENED

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics,  # noqa: ANN001, PLR0913
               runtime_configuration):  # fmt: skip
        from great_expectations.core.metric_domain_types import MetricDomainTypes

        df, _, _ = execution_engine.get_compute_domain(
            metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        return pii.screened(df)


class ColumnValuesPiiMatchCount(ColumnAggregateMetricProvider):
    """Number of values containing an identifier of kind ``detector``.

    Confirmed by a second pass over the rows whose screens passed, when some value
    passed a checked entity's screen: on clean data, no second pass.
    """

    metric_name = "column_values.pii_match_count"
    value_keys = ("detector",)

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics,  # noqa: ANN001, PLR0913
               runtime_configuration):  # fmt: skip
        from great_expectations.core.metric_domain_types import MetricDomainTypes

        df, _, accessor = execution_engine.get_compute_domain(
            metric_domain_kwargs, domain_type=MetricDomainTypes.COLUMN
        )
        column = accessor["column"]
        masks = metrics[_SCREENED]
        if column not in masks:  # fail closed: a column not screened is not clean
            raise InternalError(f"PII check on {column!r}, which the screen pass did not cover")
        return pii.confirmed_count(df, column, metric_value_kwargs["detector"], masks[column])

    @classmethod
    def _get_evaluation_dependencies(cls, metric, configuration=None, execution_engine=None,  # noqa: ANN001, ANN206
                                     runtime_configuration=None):  # fmt: skip
        from great_expectations.validator.metric_configuration import MetricConfiguration

        dependencies = super()._get_evaluation_dependencies(
            metric=metric,
            configuration=configuration,
            execution_engine=execution_engine,
            runtime_configuration=runtime_configuration,
        )
        # The table's screened masks (one pass for every column): the confirming
        # pass looks only for entities whose screens some value of the column passed.
        table = {k: v for k, v in metric.metric_domain_kwargs.items() if k != "column"}
        dependencies[_SCREENED] = MetricConfiguration(
            metric_name=_SCREENED, metric_domain_kwargs=table
        )
        return dependencies


class ExpectColumnValuesToNotContainPii(ColumnAggregateExpectation):
    """No value of the column contains an identifier of kind ``detector``.

    Observed value: the number of values that do (a count, never a value).
    """

    detector: str
    metric_dependencies = ("column_values.pii_match_count",)
    success_keys = ("detector",)
    domain_keys: ClassVar[tuple[str, ...]] = ("column", "row_condition", "condition_parser")

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):  # noqa: ANN001
        n = _count(metrics, "column_values.pii_match_count")
        return {"success": n == 0, "result": {"observed_value": n}}


# --------------------------------------------------------------------------- dates


class ColumnValuesUntruncatedDateCount(ColumnAggregateMetricProvider):
    """Number of non-null dates that are not the first day of their ``unit``."""

    metric_name = "column_values.untruncated_date_count"
    value_keys = ("unit",)

    @column_aggregate_partial(engine=SparkDFExecutionEngine)
    def _spark(cls, column, unit: str, **kwargs):  # noqa: ANN001
        first = F.trunc(column.cast("date"), "MM" if unit == "month" else "YYYY")
        return F.sum(F.when(column.isNotNull() & (column.cast("date") != first), 1).otherwise(0))


class ExpectColumnValuesToBeTruncatedDates(ColumnAggregateExpectation):
    """Every date is the first day of its ``unit`` (``month`` or ``year``)."""

    unit: str
    metric_dependencies = ("column_values.untruncated_date_count",)
    success_keys = ("unit",)
    domain_keys: ClassVar[tuple[str, ...]] = ("column", "row_condition", "condition_parser")

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):  # noqa: ANN001
        n = _count(metrics, "column_values.untruncated_date_count")
        return {"success": n == 0, "result": {"observed_value": n}}


class ColumnValuesUnparseableDateCount(ColumnAggregateMetricProvider):
    """Number of non-null strings that do not parse as a date with ``format``."""

    metric_name = "column_values.unparseable_date_count"
    value_keys = ("format",)

    @column_aggregate_partial(engine=SparkDFExecutionEngine)
    def _spark(cls, column, format: str, **kwargs):  # noqa: ANN001, A002 (GX's value key)
        bad = column.isNotNull() & F.try_to_date(column, format).isNull()
        return F.sum(F.when(bad, 1).otherwise(0))


class ExpectColumnValuesToParseAsDates(ColumnAggregateExpectation):
    """Every non-null string parses as a date with ``format`` (a Spark datetime pattern).

    Observed value: how many do not (a count, never a value).
    """

    format: str
    metric_dependencies = ("column_values.unparseable_date_count",)
    success_keys = ("format",)
    domain_keys: ClassVar[tuple[str, ...]] = ("column", "row_condition", "condition_parser")

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):  # noqa: ANN001
        n = _count(metrics, "column_values.unparseable_date_count")
        return {"success": n == 0, "result": {"observed_value": n}}


# --------------------------------------------------------------------------- k-anonymity


class TableEquivalenceClasses(TableMetricProvider):
    """Sizes of the equivalence classes over ``column_list``.

    How many classes, the smallest class, and how many classes and rows sit in
    classes smaller than ``k``.

    Nulls form their own value (a null quasi-identifier is a value an attacker sees).
    """

    metric_name = "table.equivalence_classes"
    value_keys = ("column_list", "k")

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics,  # noqa: ANN001, PLR0913
               runtime_configuration):  # fmt: skip
        from great_expectations.core.metric_domain_types import MetricDomainTypes

        df, _, _ = execution_engine.get_compute_domain(
            metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        k = int(metric_value_kwargs["k"])
        sizes = df.groupBy(*[F.col(c) for c in metric_value_kwargs["column_list"]]).count()
        row = sizes.agg(
            F.count(F.lit(1)).alias("classes"),
            F.min("count").alias("smallest"),
            F.sum(F.when(F.col("count") < k, 1).otherwise(0)).alias("small_classes"),
            F.sum(F.when(F.col("count") < k, F.col("count")).otherwise(0)).alias("small_rows"),
        ).collect()[0]
        return {
            "classes": int(row["classes"]),
            "smallest_class": int(row["smallest"] or 0),
            "classes_below_k": int(row["small_classes"] or 0),
            "rows_in_classes_below_k": int(row["small_rows"] or 0),
        }


class ExpectColumnsToBeKAnonymous(BatchExpectation):
    """Every combination of ``column_list`` values that occurs, occurs ≥ ``k`` times."""

    column_list: list[str]
    k: int
    metric_dependencies = ("table.equivalence_classes",)
    success_keys = ("column_list", "k")
    domain_keys: ClassVar[tuple[str, ...]] = ("row_condition", "condition_parser")

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):  # noqa: ANN001
        observed = metrics["table.equivalence_classes"]
        return {"success": observed["classes_below_k"] == 0, "result": {"observed_value": observed}}


class TableSensitiveDiversity(TableMetricProvider):
    """l-diversity and t-closeness measures of the classes over ``column_list``.

    The fewest distinct ``sensitive`` values in a class (``l``), exp of the lowest
    class entropy (``entropy_l``), the largest c₁/(c_l + … + c_m) (``recursive_ratio``)
    and the largest distance to the table's distribution (``t``; ``distance`` equal
    or ordered). Computed by :func:`pipelines.kanon.verify.diversity_spark`, the
    independent checker, never by the anonymizer.
    """

    metric_name = "table.sensitive_diversity"
    value_keys = ("column_list", "sensitive", "l", "distance")

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics,  # noqa: ANN001, PLR0913
               runtime_configuration):  # fmt: skip
        from great_expectations.core.metric_domain_types import MetricDomainTypes

        from pipelines.kanon.verify import diversity_spark

        df, _, _ = execution_engine.get_compute_domain(
            metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        v = metric_value_kwargs
        return diversity_spark(
            df,
            df,
            list(v["column_list"]),
            v["sensitive"],
            l=int(v["l"]),
            ordered=v["distance"] == "ordered",
        )


class ExpectColumnsToBeLDiverse(BatchExpectation):
    """Every class over ``column_list`` is l-diverse in ``sensitive``.

    ``kind``: distinct (≥ l values), entropy (exp of entropy ≥ l) or recursive
    (c₁ < c·(c_l + … + c_m)).
    """

    column_list: list[str]
    sensitive: str
    l: int  # noqa: E741
    kind: str = "distinct"
    c: float | None = None
    distance: str = "equal"  # a metric key only, shared with the t-closeness check
    metric_dependencies = ("table.sensitive_diversity",)
    success_keys = ("column_list", "sensitive", "l", "kind", "c", "distance")
    domain_keys: ClassVar[tuple[str, ...]] = ("row_condition", "condition_parser")

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):  # noqa: ANN001
        m = metrics["table.sensitive_diversity"]
        ok = m["l"] >= self.l
        if self.kind == "entropy":
            ok = ok and m["entropy_l"] >= self.l * (1 - 1e-9)
        elif self.kind == "recursive":
            ok = ok and m["recursive_ratio"] < self.c
        observed = {k: m[k] for k in ("l", "entropy_l", "recursive_ratio")}
        return {"success": bool(ok), "result": {"observed_value": observed}}


class ExpectColumnsToBeTClose(BatchExpectation):
    """Every class's ``sensitive`` distribution is within ``t`` of the table's (EMD)."""

    column_list: list[str]
    sensitive: str
    t: float
    l: int = 1  # noqa: E741 (a metric key only)
    distance: str = "equal"
    metric_dependencies = ("table.sensitive_diversity",)
    success_keys = ("column_list", "sensitive", "t", "l", "distance")
    domain_keys: ClassVar[tuple[str, ...]] = ("row_condition", "condition_parser")

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):  # noqa: ANN001
        largest = metrics["table.sensitive_diversity"]["t"]
        return {"success": largest <= self.t + 1e-9, "result": {"observed_value": largest}}
