"""What every column action is: a spec model and an operator, registered by kind.

One module per action kind under :mod:`pipelines.desensitize.actions` defines the
action's spec model (a subclass of :class:`ActionSpec`, with a ``kind`` literal)
and its operator (a subclass of :class:`Operator` naming that model). Subclassing
registers the pair; nothing else has to change to add an action. The operator of
one column owns everything the product knows about the action:

* validation of the source column's type (:meth:`Operator.check_source`);
* the Spark expression computing the output (:meth:`Operator.compile`);
* the output contract: the published name and type, the domain the output gate
  checks, and the PII kinds the column may hold by construction;
* the human description: a label for DAG docs and the manifest's description.

This module imports no Spark at module level (the spec models, which the Airflow DAG
processor parses, are defined next to the operators); :meth:`Operator.compile` and
the type methods import pyspark when they run. The shape follows Presidio's
anonymizer operators (``presidio_anonymizer/operators/operator.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from pipelines.errors import SpecError
from pipelines.spec.base import IDENT, SPARK_TYPE, Frozen
from pipelines.spec.quality import ColumnExpect

if TYPE_CHECKING:
    import datetime as dt

    from pyspark.sql import Column
    from pyspark.sql.types import DataType

    from pipelines.desensitize.keyed import KeyRing


class ActionSpec(Frozen):
    """Fields every column action has, whatever its kind.

    Attributes:
        publishes: Whether the column reaches the output at all (``drop`` does not).
    """

    publishes: ClassVar[bool] = True

    rename: str | None = Field(
        None, pattern=IDENT, description="Publish the result under this column name."
    )
    type: str | None = Field(
        None,
        pattern=SPARK_TYPE,
        description="Spark SQL type the raw column must have (e.g. string, bigint, date).",
    )
    expect: ColumnExpect | None = Field(
        None, description="Input-gate expectations on the raw values of this column."
    )
    source_name: str | None = Field(
        None,
        min_length=1,
        description="The source column's name when it is not an identifier (prénom, home "
        "city, geo.lat); the key under 'columns' is then the name the pipeline uses.",
    )

    def uses_key(self) -> bool:
        """Whether this action, as configured, needs its ``key`` (keyed kinds only).

        Returns:
            True by default; actions keyed only in some modes say otherwise.
        """
        return True

    def published_as(self, column: str) -> str | None:
        """The published name of the column this action is declared on.

        The one rule, which every other place reads from here: a column is published
        as its ``rename``, or its own name, unless its action does not publish it.

        Args:
            column: The column's key under ``columns``.

        Returns:
            The output column's name, or None when the column is dropped.
        """
        return (self.rename or column) if self.publishes else None


ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"


class DateInput(ActionSpec):
    """Fields of actions that read dates: a string source column needs its ``format``.

    ``format`` is a Spark datetime pattern (``yyyy-MM-dd``, ``dd.MM.yyyy``…); a value
    that does not parse with it fails the input gate (``input.format.<column>``,
    counted, never guessed).
    """

    format: str | None = Field(
        None, min_length=1, description="Datetime pattern of a string source column."
    )


#: Normalizations a keyed action may apply before hashing, in the order listed:
#: ``trim`` (ASCII white space), ``lower`` (Java's toLowerCase), ``nfc``/``nfkc``
#: (Unicode normalization forms), ``trim_unicode`` (every Unicode White_Space
#: character) and ``casefold`` (Unicode full case folding). See
#: :func:`pipelines.desensitize.keyed.normalized`.
Normalization = Literal["trim", "lower", "nfc", "nfkc", "trim_unicode", "casefold"]


@dataclass(frozen=True)
class Domain:
    """The values an output column may take, as the output gate checks them.

    Attributes:
        rule: ``regex`` (the whole value matches ``regex``), ``in_set`` (one of
            ``values``), ``max_length`` (at most ``high`` characters), ``between``
            (``low`` ≤ value ≤ ``high``, either may be None) or ``truncated_date``
            (the first day of its ``unit``, month or year).
        what: Completes the sentence "<column> is …" in gate results.
        token: Whether this is a pseudonym's token format (check id
            ``output.token.<column>``; otherwise ``output.domain.<column>``).
    """

    rule: Literal["regex", "in_set", "max_length", "between", "truncated_date"]
    what: str
    regex: str | None = None
    values: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    unit: str | None = None
    token: bool = False


@dataclass(frozen=True)
class Context:
    """Per-run inputs of :meth:`Operator.compile`.

    Attributes:
        ring: Collects the keyed digests the expressions use (key material stays in it).
        privacy_unit: The privacy-unit column (per-unit date offsets and noise).
        partition_date: The partition's day (ages are computed as of this day).
        dtype: The source column's Spark type.
    """

    ring: KeyRing
    privacy_unit: str
    partition_date: dt.date
    dtype: DataType


#: Source type families an operator can accept, and how an error names them.
FAMILIES = {
    "string": "a string column",
    "text": "a string, integer or date column",
    "numeric": "a numeric column",
    "date": "a date or timestamp column",
}


def _family_types(family: str) -> tuple[type, ...]:
    from pyspark.sql import types as T

    return {
        "string": (T.StringType,),
        "text": (T.StringType, T.IntegralType, T.DateType),  # one canonical string form
        "numeric": (T.NumericType,),
        "date": (T.DateType, T.TimestampType, T.TimestampNTZType),
    }[family]


#: Every registered operator class by its spec model class.
OPERATORS: dict[type[ActionSpec], type[Operator]] = {}


class Operator:
    """One column's action: compilation, output contract and description.

    Subclass with ``class MaskOperator(Operator, spec=MaskSpec)`` to register.

    Attributes:
        spec: The action's spec model class (set by registration).
        label: How DAG docs name the columns this action produces ("Masked").
        accepts: The source type family (a key of :data:`FAMILIES`), or None for any.
        keyed: Whether the action uses a secret (its spec then has a ``key`` field).

    An operator's output contract is its methods: ``output_type``, ``domain`` and
    ``allowed_pii`` (PII detectors the output may match by construction: a
    surrogate email *is* an email).
    """

    spec: ClassVar[type[ActionSpec]]
    label: ClassVar[str] = ""
    accepts: ClassVar[str | None] = None
    keyed: ClassVar[bool] = False

    def __init_subclass__(cls, spec: type[ActionSpec] | None = None, **kwargs: Any) -> None:
        """Register a concrete operator for its spec model.

        Args:
            spec: The action's spec model class; None for an abstract intermediate class,
                which is not registered.

        Keyword Args:
            **kwargs: Passed on to the next class's ``__init_subclass__``.
        """
        super().__init_subclass__(**kwargs)
        if spec is not None:
            cls.spec = spec
            OPERATORS[spec] = cls

    def __init__(self, column: str, action: ActionSpec) -> None:
        """Bind the operator to one source column and its validated action.

        Args:
            column: The source column's name.
            action: The column's validated action spec.
        """
        self.column = column
        self.action = action

    def __repr__(self) -> str:
        """``MaskOperator('phone')``.

        Returns:
            The class name and the bound column.
        """
        return f"{type(self).__name__}({self.column!r})"

    @property
    def name(self) -> str:
        """The action's registry name: its kind, plus the method where kinds have several."""
        method = getattr(self.action, "method", None)
        return f"{self.action.kind}/{method}" if method else self.action.kind

    @property
    def output_name(self) -> str | None:
        """The published column name (``rename`` or the source name); None if dropped."""
        return self.action.published_as(self.column)

    @property
    def key(self) -> str | None:
        """The name of the key the action uses, if it is keyed."""
        if not (self.keyed and self.action.uses_key()):
            return None
        return getattr(self.action, "key", None)

    @property
    def source_format(self) -> str | None:
        """The datetime pattern of a string source column, for actions that read dates."""
        return getattr(self.action, "format", None)

    def link(self, columns: dict[str, ActionSpec]) -> None:
        """See the spec's other columns, once, when the plan is compiled (default: nothing).

        Args:
            columns: The spec's columns (key -> validated action).
        """

    def check_source(self, dtype: DataType) -> None:
        """Refuse a source column whose type the action cannot take.

        Args:
            dtype: The source column's Spark type.

        Raises:
            SpecError: The type is not in the action's family; the message names the
                column and the type.
        """
        accepts = self.accepts
        if self.source_format is not None:
            from pyspark.sql.types import StringType

            if not isinstance(dtype, StringType):
                raise SpecError(
                    f"columns.{self.column}.format: a format is for string columns holding "
                    f"dates; the source column is {dtype.simpleString()} (remove 'format')"
                )
            return
        if accepts is not None and not isinstance(dtype, _family_types(accepts)):
            raise SpecError(
                f"columns.{self.column}: '{self.name}' needs {FAMILIES[accepts]}; "
                f"the source column is {dtype.simpleString()}"
                + (" (a string of dates needs 'format', e.g. yyyy-MM-dd)" if accepts == "date"
                   else "")
            )

    def output_type(self, dtype: DataType) -> DataType:
        """The published column's Spark type, given the source column's.

        Args:
            dtype: The source column's Spark type.

        Returns:
            The output type (this default: a string).
        """
        from pyspark.sql.types import StringType

        return StringType()

    def compile(self, ctx: Context) -> Column:
        """The Spark expression computing the published value from the source row.

        Args:
            ctx: The run's compile context.

        Returns:
            A Column over the source columns (and the key ring's digests).

        Raises:
            NotImplementedError: A publishing operator did not implement it.
        """
        raise NotImplementedError(f"{type(self).__name__}.compile")

    def flags(self, ctx: Context) -> dict[str, Column]:
        """Counted events, reported in the manifest as ``{column: {flag: count}}``.

        Boolean expressions over a row, true when the action did something the
        manifest must report (a date nulled as out of range, a sentinel passed through).

        Args:
            ctx: The run's compile context.

        Returns:
            Flag name -> boolean column (none by default).
        """
        return {}

    def domain(self) -> Domain | None:
        """The output domain the gate checks, or None where any value of the type is valid.

        Returns:
            The domain, or None.
        """
        return None

    def allowed_pii(self) -> tuple[str, ...]:
        """PII detectors the output may match by construction.

        Returns:
            Detector names (empty by default).
        """
        return ()

    def describe(self) -> dict[str, Any]:
        """The action as recorded in manifests: its validated fields, defaults included.

        Returns:
            A JSON-ready mapping.
        """
        return self.action.model_dump(mode="json")


def date_value(column: str, fmt: str | None) -> Column:
    """The source value as a date or timestamp: parsed with ``fmt`` from a string column.

    Args:
        column: The source column.
        fmt: Its datetime pattern, for a string column; None for a date/timestamp column.

    Returns:
        A date column (parsed; null where it does not parse) or the column itself.
    """
    from pyspark.sql import functions as F

    if fmt is None:
        return F.col(column)
    return F.try_to_date(F.col(column), fmt)
