"""Pipeline spec models: typed, frozen, unknown fields rejected.

This module imports only the standard library and pydantic, so the Airflow DAG
processor can parse specs without Spark (a test guards that).

A spec declares, for one dataset: where the raw table is, where the anonymized
table is published, the partition and privacy-unit columns, the secrets by
reference, and one action per source column, chosen by a discriminated ``kind``.

Example:
    >>> spec = PipelineSpec.model_validate({
    ...     "version": 1, "name": "events",
    ...     "source": {"table": "raw.events"}, "sink": {"table": "anon.events"},
    ...     "partition_column": "dt", "privacy_unit": "user_id",
    ...     "keys": {"main": {"env": "EVENTS_KEY"}},
    ...     "columns": {"user_id": {"kind": "hash"}, "note": {"kind": "drop"}},
    ... })
    >>> spec.columns["user_id"].encoding
    'hex'
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SPEC_VERSION = 1
_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- secrets


class KeyRef(_Frozen):
    """A secret referenced by name: an environment variable or a key file, never inline.

    ``encoding`` says how the referenced text becomes key bytes: ``utf8`` takes the
    text as is (what ``hmac.new(os.environ[NAME].encode(), ...)`` does), ``hex`` and
    ``base64`` decode it. Surrounding whitespace (a trailing newline in a key file)
    is stripped before decoding.
    """

    env: str | None = Field(None, description="Environment variable holding the key.")
    file: str | None = Field(None, description="Path of a file holding the key.")
    encoding: Literal["utf8", "hex", "base64"] = "utf8"

    @model_validator(mode="after")
    def _one_source(self) -> KeyRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self


# --------------------------------------------------------------------------- tables


class TableRef(_Frozen):
    """A Spark catalog table (``table: db.name``) or a path with a ``format``.

    Relative paths resolve against the warehouse root (``--warehouse``, the
    ``ANONYMIZE_WAREHOUSE`` variable, or ``./warehouse``).
    """

    table: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
    path: str | None = None
    format: Literal["parquet", "csv"] = "parquet"
    options: dict[str, str] = Field(
        default_factory=dict, description="Extra reader/writer options (e.g. CSV 'header')."
    )

    @model_validator(mode="after")
    def _one_location(self) -> TableRef:
        if (self.table is None) == (self.path is None):
            raise ValueError("give exactly one of 'table' or 'path'")
        return self

    @property
    def display(self) -> str:
        """Human-readable location (table name or ``format:path``)."""
        return self.table if self.table else f"{self.format}:{self.path}"


# --------------------------------------------------------------------------- actions


# Spark SQL type names a column may declare (checked by the input gate).
_TYPE = (
    r"^(string|boolean|tinyint|smallint|int|bigint|float|double|date|timestamp|"
    r"timestamp_ntz|binary|decimal\(\d+,\d+\))$"
)


class ColumnExpect(_Frozen):
    """Expectations on a raw column, checked by the input gate before any work.

    ``min``/``max`` bound numeric (or date, as ISO text) values inclusively; ``in_set``
    lists the allowed values; ``regex`` must match the whole value. Nulls pass every
    check except ``not_null``. ``severity: warning`` records a failure and carries on.
    """

    not_null: bool = False
    min: float | str | None = None
    max: float | str | None = None
    in_set: tuple[str | int | float | bool, ...] | None = None
    regex: str | None = None
    severity: Literal["error", "warning"] = "error"

    @model_validator(mode="after")
    def _valid_regex(self) -> ColumnExpect:
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from None
        return self


class _Action(_Frozen):
    rename: str | None = Field(
        None, pattern=_IDENT, description="Publish the result under this column name."
    )
    type: str | None = Field(
        None,
        pattern=_TYPE,
        description="Spark SQL type the raw column must have (e.g. string, bigint, date).",
    )
    expect: ColumnExpect | None = Field(
        None, description="Input-gate expectations on the raw values of this column."
    )


Normalization = Literal["trim", "lower"]


class Keep(_Action):
    """Publish the column unchanged. Use only for columns that are not PII."""

    kind: Literal["keep"]


class Drop(_Action):
    """Remove the column from the output."""

    kind: Literal["drop"]


class Redact(_Action):
    """Replace every non-null value with a constant (``value``; null if ``value`` is null).

    ``keep_nulls: false`` replaces nulls too, so the output does not reveal which rows
    had a value.
    """

    kind: Literal["redact"]
    value: str | None = "[REDACTED]"
    keep_nulls: bool = True


class Mask(_Action):
    """Mask characters, keeping the first/last few and the separator characters.

    Every character that is not kept is replaced: letters by ``letter`` (default
    ``char``), digits by ``digit`` (default ``char``), anything else by ``char``.
    A value no longer than ``keep_first + keep_last`` is masked entirely, so a
    short value is never published in clear. Positions count Unicode code points.
    """

    kind: Literal["mask"]
    keep_first: int = Field(0, ge=0)
    keep_last: int = Field(0, ge=0)
    separators: str = Field(" -@.", description="Characters kept as is wherever they occur.")
    char: str = Field("*", min_length=1, max_length=1)
    letter: str | None = Field(None, min_length=1, max_length=1)
    digit: str | None = Field(None, min_length=1, max_length=1)


class Hash(_Action):
    """Keyed pseudonym: HMAC-SHA256(key, UTF-8(normalized value)).

    ``encoding`` renders the 32-byte digest as ``hex`` (64 chars), ``base32``
    (RFC 4648 alphabet, lower case, no padding) or ``base64url`` (no padding),
    truncated to ``length`` characters when given. A token of L characters keeps
    4L (hex), 5L (base32) or 6L (base64url) bits; keep at least 64 bits where
    pseudonyms must stay distinct. Non-string columns are cast to their Spark
    string form first. Null stays null.
    """

    kind: Literal["hash"]
    key: str = "main"
    encoding: Literal["hex", "base32", "base64url"] = "hex"
    length: int | None = Field(None, ge=8)
    normalize: tuple[Normalization, ...] = ()

    @model_validator(mode="after")
    def _length_fits(self) -> Hash:
        limit = {"hex": 64, "base32": 48, "base64url": 43}[self.encoding]
        if self.length is not None and self.length > limit:
            raise ValueError(f"length {self.length} exceeds {limit} for encoding {self.encoding}")
        return self


class Surrogate(_Action):
    """Consistent fake value chosen by keyed hash from a dictionary shipped in the package.

    The same input and key give the same surrogate in every partition and table
    (the choice depends only on the key, the domain and the normalized value).
    Distinct inputs may share a surrogate (dictionaries are finite): use ``hash``
    where uniqueness matters.
    """

    kind: Literal["surrogate"]
    domain: Literal["person_name", "first_name", "last_name", "email", "city", "phone"]
    key: str = "main"
    normalize: tuple[Normalization, ...] = ()


class GeneralizeBucket(_Action):
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
    def _order(self) -> GeneralizeBucket:
        if self.bottom is not None and self.top is not None and self.bottom >= self.top:
            raise ValueError("bottom must be below top")
        return self


class GeneralizeDate(_Action):
    """Date or timestamp to the first day of its month or year (a date)."""

    kind: Literal["generalize"]
    method: Literal["date"]
    to: Literal["month", "year"]


class GeneralizeAge(_Action):
    """Birthdate to age in whole years as of the partition date, optionally top-coded.

    ``top: 90`` publishes every age of 90 or more as 90.
    """

    kind: Literal["generalize"]
    method: Literal["age"]
    top: int | None = Field(None, gt=0)


class GeneralizePrefix(_Action):
    """String truncated to its first ``length`` characters (e.g. postal codes)."""

    kind: Literal["generalize"]
    method: Literal["prefix"]
    length: int = Field(ge=0)


Generalize = Annotated[
    GeneralizeBucket | GeneralizeDate | GeneralizeAge | GeneralizePrefix,
    Field(discriminator="method"),
]


class DateShift(_Action):
    """Shift dates by a keyed per-privacy-unit offset in [-max_days, -1] ∪ [1, max_days].

    Every date column of one privacy unit moves by the same offset, in every
    partition, so intervals within a unit are preserved. A row whose privacy unit
    is null gets a null date.
    """

    kind: Literal["date_shift"]
    max_days: int = Field(ge=1, le=3650)
    key: str = "main"


class Noise(_Action):
    """Bounded keyed uniform noise on a number. NOT differential privacy.

    The value x becomes x + u·m with u uniform in [-1, 1] derived from
    HMAC(key, column, privacy unit, x), and m = ``max_abs`` or ``max_relative``·|x|.
    Integral columns are rounded. Reruns reproduce the same noise. This only blurs
    values; it gives no formal guarantee (use a ``releases`` DP aggregate for that).
    """

    kind: Literal["noise"]
    max_abs: float | None = Field(None, gt=0)
    max_relative: float | None = Field(None, gt=0, le=1)
    key: str = "main"

    @model_validator(mode="after")
    def _one_bound(self) -> Noise:
        if (self.max_abs is None) == (self.max_relative is None):
            raise ValueError("give exactly one of 'max_abs' or 'max_relative'")
        return self


ColumnAction = Annotated[
    Keep | Drop | Redact | Mask | Hash | Surrogate | Generalize | DateShift | Noise,
    Field(discriminator="kind"),
]

KEYED_KINDS = ("hash", "surrogate", "date_shift", "noise")


# --------------------------------------------------------------------------- quality

PII_DETECTORS = ("email", "phone", "national_id", "payment_card", "iban", "ipv4", "ipv6")
PiiDetector = Literal["email", "phone", "national_id", "payment_card", "iban", "ipv4", "ipv6"]


class VolumeBand(_Frozen):
    """Input row count band from the recent published partitions' manifests.

    With m the median input count of the last ``window`` published partitions:
    ``m·(1 − tolerance) ≤ rows ≤ m·(1 + tolerance)``. Checked only once
    ``min_history`` partitions have been published.
    """

    window: int = Field(7, ge=1)
    tolerance: float = Field(0.5, gt=0)
    min_history: int = Field(3, ge=1)
    severity: Literal["error", "warning"] = "warning"


class QualitySpec(_Frozen):
    """Data-quality gates. Every built-in check is on; the spec can only tighten them.

    ``allow_pii`` lets an output column match named PII detectors (a surrogate email
    column is allowed ``email`` automatically); ``escalate`` raises warnings to errors
    for the checks whose ids match the given glob patterns (e.g. ``input.volume``).
    """

    allow_empty: bool = Field(False, description="An empty source partition passes the gate.")
    volume: VolumeBand | None = Field(default_factory=VolumeBand)
    allow_pii: dict[str, tuple[PiiDetector, ...]] = Field(default_factory=dict)
    escalate: tuple[str, ...] = ()
    docs: bool = Field(True, description="Build Data Docs pages for published partitions.")


# --------------------------------------------------------------------------- k-anonymity


class NumericQI(_Frozen):
    """A numeric quasi-identifier, released as the range ``[lo-hi]`` of its class."""

    type: Literal["numeric"]


class CategoricalQI(_Frozen):
    """A categorical quasi-identifier, released as a node of its hierarchy.

    The node is the lowest one covering the class. Hierarchy file: ARX CSV
    (``;``-separated, no header, raw value first, root last).
    """

    type: Literal["categorical"]
    hierarchy: str = Field(description="Hierarchy CSV path (relative: to the working dir).")


class DateQI(_Frozen):
    """A date quasi-identifier, released as ``[YYYY-MM-DD-YYYY-MM-DD]`` (or one date)."""

    type: Literal["date"]


QuasiIdentifier = Annotated[NumericQI | DateQI | CategoricalQI, Field(discriminator="type")]


class LDiversity(_Frozen):
    """l-diversity of the sensitive column in every class (Machanavajjhala et al. 2007).

    ``distinct``: at least ``l`` distinct values. ``entropy``: −Σ p·ln p ≥ ln l.
    ``recursive`` (c,l): with value counts r₁ ≥ r₂ ≥ … ≥ r_m, r₁ < c·(r_l + … + r_m).
    """

    l: int = Field(ge=2)  # noqa: E741
    kind: Literal["distinct", "entropy", "recursive"] = "distinct"
    c: float | None = Field(None, gt=0, description="The c of recursive (c,l)-diversity.")


class TCloseness(_Frozen):
    """t-closeness (Li, Li, Venkatasubramanian 2007).

    Every class's sensitive distribution p lies within Earth Mover's Distance ``t``
    of the whole partition's distribution q.

    ``equal``: D = ½·Σ|pᵢ − qᵢ| (categorical). ``ordered``: D = Σᵢ|Σ_{j≤i}(pⱼ − qⱼ)|/(m − 1)
    over the m values in the column's natural sort order (numeric).
    """

    t: float = Field(gt=0, le=1)
    distance: Literal["equal", "ordered"] = "equal"


class KAnonymity(_Frozen):
    """Strict Mondrian over the published quasi-identifier columns (see README)."""

    k: int = Field(ge=2)
    quasi_identifiers: dict[str, QuasiIdentifier] = Field(min_length=1)
    sensitive: str | None = None
    l_diversity: LDiversity | None = None
    t_closeness: TCloseness | None = None
    max_suppression: float = Field(0.0, ge=0, le=1)
    window: int = Field(
        1,
        ge=1,
        le=366,
        description="Anonymize the last N source partitions together, publish the current one.",
    )
    local_rows: int = Field(200_000, ge=1000, description="Largest group finished locally.")


# --------------------------------------------------------------------------- DP releases


class CountMetric(_Frozen):
    """Rows per group (after contribution bounding)."""

    kind: Literal["count"]


class UnitsMetric(_Frozen):
    """Distinct privacy units per group."""

    kind: Literal["count_units"]


class _Bounded(_Frozen):
    column: str = Field(pattern=_IDENT)
    lower: float
    upper: float
    resolution: float = Field(
        0.01, gt=0, description="Fixed-point step: values are clamped, then rounded to it."
    )

    @model_validator(mode="after")
    def _ordered(self) -> _Bounded:
        if not self.lower < self.upper:
            raise ValueError("lower must be below upper")
        return self


class SumMetric(_Bounded):
    """Sum of the column clamped to [lower, upper], in fixed point."""

    kind: Literal["sum"]


class MeanMetric(_Bounded):
    """Mean of the clamped column: midpoint + noisy centered sum / noisy count."""

    kind: Literal["mean"]


class QuantileMetric(_Bounded):
    """A quantile of the clamped column by the exponential mechanism (OpenDP noisy max).

    The output is one of ``candidates`` evenly spaced values in [lower, upper].
    """

    kind: Literal["quantile"]
    q: float = Field(gt=0, lt=1)
    candidates: int = Field(101, ge=2, le=10_001)


Metric = Annotated[
    CountMetric | UnitsMetric | SumMetric | MeanMetric | QuantileMetric,
    Field(discriminator="kind"),
]


class KeyRange(_Frozen):
    """Integers ``start, start+step, … < stop``, or dates (ISO) a day apart up to ``stop``."""

    start: int | str
    stop: int | str
    step: int = Field(1, ge=1)


class PublicKeys(_Frozen):
    """Declared group keys: the product of per-column values or ranges, or a table."""

    values: dict[str, tuple[str | int, ...]] = Field(default_factory=dict)
    ranges: dict[str, KeyRange] = Field(default_factory=dict)
    table: TableRef | None = None


class Bounds(_Frozen):
    """Contribution bounds per privacy unit (L0 groups, L∞ rows per group)."""

    max_groups_per_unit: int = Field(ge=1)
    max_rows_per_group: int = Field(1, ge=1)


class ReleaseBudget(_Frozen):
    """One release's budget and its split.

    ``epsilon`` alone: pure ε-DP, discrete Laplace noise. ``rho``: ρ-zCDP, discrete
    Gaussian noise. ``epsilon`` + ``delta`` with ``noise: gaussian``: converted to
    ρ = (√(ε + ln(1/δ)) − √ln(1/δ))² (Bun & Steinke 2016, Prop. 1.3). With private
    keys, ``selection_delta`` is the δ of group selection. ``split`` weighs the
    metrics and ``selection`` (default: equal weights).
    """

    epsilon: float | None = Field(None, gt=0)
    rho: float | None = Field(None, gt=0)
    delta: float | None = Field(None, gt=0, lt=1)
    noise: Literal["laplace", "gaussian"] | None = None
    selection_delta: float = Field(1e-6, gt=0, lt=1)
    split: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_budget(self) -> ReleaseBudget:
        if (self.epsilon is None) == (self.rho is None):
            raise ValueError("give exactly one of 'epsilon' or 'rho'")
        if self.rho is not None and (self.delta is not None or self.noise == "laplace"):
            raise ValueError("rho (zCDP) takes no delta and uses gaussian noise")
        if self.delta is not None and self.noise != "gaussian":
            raise ValueError("epsilon with delta is for noise: gaussian (pure epsilon has none)")
        if any(w <= 0 for w in self.split.values()):
            raise ValueError("split weights must be positive")
        return self

    @property
    def zcdp(self) -> bool:
        """Whether the release is accounted in ρ-zCDP (Gaussian-family noise)."""
        return self.rho is not None or self.noise == "gaussian"


class Release(_Frozen):
    """One differentially private aggregate table, published per partition."""

    sink: TableRef
    group_by: tuple[str, ...] = Field(min_length=1)
    keys: Literal["private"] | PublicKeys = "private"
    bounds: Bounds
    metrics: dict[str, Metric] = Field(min_length=1)
    budget: ReleaseBudget


class BudgetPolicy(_Frozen):
    """The dataset's total budget over a rolling window of partitions (the ledger's rule).

    Give ``epsilon`` (pure and approximate DP; every release must use Laplace noise)
    or ``rho`` (zCDP; a pure ε release is charged ρ = ε²/2, Bun & Steinke 2016,
    Prop. 1.4). ``delta`` bounds the summed δ of group selections in a window.

    ``unit: person`` (default): a person may appear in every partition, so charges
    compose sequentially over every ``window``-day span. ``unit: person_partition``
    declares the privacy unit to be a person *on one day*: partitions are disjoint
    in that unit and compose in parallel (each partition has the whole budget),
    which protects a day of a person, not the person (see README).
    """

    epsilon: float | None = Field(None, gt=0)
    rho: float | None = Field(None, gt=0)
    delta: float = Field(1e-5, ge=0, lt=1)
    window: int = Field(30, ge=1, le=3660)
    unit: Literal["person", "person_partition"] = "person"
    ledger: str | None = Field(
        None,
        description="SQLAlchemy URL (sqlite or postgresql); default <warehouse>/_dp/ledger.sqlite.",
    )

    @model_validator(mode="after")
    def _one_total(self) -> BudgetPolicy:
        if (self.epsilon is None) == (self.rho is None):
            raise ValueError("give exactly one of 'epsilon' or 'rho'")
        return self


# --------------------------------------------------------------------------- schedule


class Schedule(_Frozen):
    """How the pipeline's Airflow DAG runs (one run per partition day)."""

    cron: str = Field("@daily", description="Airflow schedule (cron or preset).")
    start_date: str = Field("2026-01-01", pattern=r"^\d{4}-\d{2}-\d{2}$")
    catchup: bool = False
    max_active_runs: int = Field(1, ge=1, le=64)
    retries: int = Field(2, ge=0, le=10, description="For transient failures only.")
    retry_delay_minutes: float = Field(5, gt=0)
    source_timeout_minutes: float = Field(
        360, gt=0, description="How long to wait for the source partition."
    )
    spark_conn_id: str = "spark_default"
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description="Spark properties for every spark-submit task (--conf key=value).",
    )
    owner: str = "data-platform"


# --------------------------------------------------------------------------- pipeline


class PipelineSpec(_Frozen):
    """One dataset's anonymization pipeline."""

    version: Literal[1] = Field(description="Spec format version.")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Pipeline id (DAG anon__<name>).")
    description: str = ""
    source: TableRef
    sink: TableRef
    partition_column: str = Field(pattern=_IDENT)
    privacy_unit: str = Field(pattern=_IDENT)
    keys: dict[str, KeyRef] = Field(default_factory=dict)
    undeclared: Literal["fail", "drop"] = Field(
        "fail", description="A source column not in 'columns': fail the run, or drop it."
    )
    columns: dict[str, ColumnAction]
    quality: QualitySpec = Field(default_factory=QualitySpec)
    k_anonymity: KAnonymity | None = None
    releases: dict[str, Release] = Field(default_factory=dict)
    dp_budget: BudgetPolicy | None = None
    schedule: Schedule = Field(default_factory=Schedule)

    def keyed_columns(self) -> dict[str, str]:
        """Column name -> key name, for every action that uses a secret."""
        return {c: a.key for c, a in self.columns.items() if a.kind in KEYED_KINDS}


def reference_problems(spec: PipelineSpec) -> list[tuple[str, str]]:
    """Cross-field checks that name the spec path: ``[(path, message), ...]``."""
    problems: list[tuple[str, str]] = []
    if spec.partition_column in spec.columns:
        problems.append(
            (
                f"columns.{spec.partition_column}",
                "the partition column is carried through implicitly; remove it from 'columns'",
            )
        )
    if spec.privacy_unit not in spec.columns:
        problems.append(
            (
                "privacy_unit",
                f"'{spec.privacy_unit}' must be declared in 'columns' (e.g. kind: hash)",
            )
        )
    for column, key in spec.keyed_columns().items():
        if key not in spec.keys:
            declared = ", ".join(sorted(spec.keys)) or "none"
            problems.append(
                (f"columns.{column}.key", f"unknown key '{key}'; declared keys: {declared}")
            )
    published: dict[str, str] = {}
    for column, action in spec.columns.items():
        if action.kind == "drop":
            continue
        out = action.rename or column
        if out in published or out == spec.partition_column:
            clash = published.get(out, spec.partition_column)
            problems.append(
                (f"columns.{column}.rename", f"output column '{out}' clashes with '{clash}'")
            )
        published[out] = column
    for column in spec.quality.allow_pii:
        if column not in published:
            problems.append(
                (f"quality.allow_pii.{column}", f"'{column}' is not a published output column")
            )
    if spec.k_anonymity is not None:
        problems += _kanon_problems(spec.k_anonymity, published)
    problems += _release_problems(spec)
    for column in spec.columns:
        if not re.match(_IDENT, column):
            problems.append((f"columns.{column}", "column names must be plain identifiers"))
    if spec.source.table and spec.sink.table and spec.source.table == spec.sink.table:
        problems.append(("sink.table", "the sink must differ from the source"))
    if spec.source.path and spec.sink.path and spec.source.path == spec.sink.path:
        problems.append(("sink.path", "the sink must differ from the source"))
    return problems


def _kanon_problems(ka: KAnonymity, published: dict[str, str]) -> list[tuple[str, str]]:
    """k-anonymity settings must name published columns, consistently."""
    problems = []
    for name in ka.quasi_identifiers:
        if name not in published:
            problems.append(
                (f"k_anonymity.quasi_identifiers.{name}", f"'{name}' is not a published column")
            )
    if ka.sensitive is not None:
        if ka.sensitive not in published:
            problems.append(
                ("k_anonymity.sensitive", f"'{ka.sensitive}' is not a published column")
            )
        elif ka.sensitive in ka.quasi_identifiers:
            problems.append(("k_anonymity.sensitive", "the sensitive column cannot be a QI"))
    for block in ("l_diversity", "t_closeness"):
        if getattr(ka, block) is not None and ka.sensitive is None:
            problems.append((f"k_anonymity.{block}", "needs k_anonymity.sensitive"))
    ld = ka.l_diversity
    if ld is not None and (ld.kind == "recursive") != (ld.c is not None):
        problems.append(
            (
                "k_anonymity.l_diversity.c",
                "recursive (c,l)-diversity needs c (e.g. c: 3); other kinds take no c",
            )
        )
    return problems


def _release_problems(spec: PipelineSpec) -> list[tuple[str, str]]:
    """Releases read raw source columns declared in ``columns``; budgets must fit."""
    problems = []
    if spec.releases and spec.dp_budget is None:
        problems.append(("dp_budget", "releases need a dp_budget (the ledger's total and window)"))
    for name, rel in spec.releases.items():
        where = f"releases.{name}"
        if not re.match(r"^[a-z][a-z0-9_]*$", name):
            problems.append((where, "release names are lowercase identifiers"))
        for col in rel.group_by:
            if col not in spec.columns:
                problems.append((f"{where}.group_by", f"'{col}' is not a declared source column"))
        for metric, m in rel.metrics.items():
            column = getattr(m, "column", None)
            if column is not None and column not in spec.columns:
                problems.append(
                    (f"{where}.metrics.{metric}.column", f"'{column}' is not a declared column")
                )
        if isinstance(rel.keys, PublicKeys):
            declared = set(rel.keys.values) | set(rel.keys.ranges)
            if rel.keys.table is None and declared != set(rel.group_by):
                problems.append(
                    (f"{where}.keys", "public keys must give values or ranges for every group_by "
                     "column (or a table)")
                )  # fmt: skip
        wanted = set(rel.metrics) | ({"selection"} if rel.keys == "private" else set())
        for part in rel.budget.split:
            if part not in wanted:
                problems.append(
                    (
                        f"{where}.budget.split.{part}",
                        f"not a metric of this release ({', '.join(sorted(wanted))})",
                    )
                )
        policy = spec.dp_budget
        if policy is not None:
            if rel.budget.zcdp and policy.rho is None:
                problems.append(
                    (f"{where}.budget", "Gaussian noise is accounted in rho: give dp_budget.rho")
                )
            if not rel.budget.zcdp and policy.epsilon is None:
                problems.append((f"{where}.budget", "pure epsilon releases need dp_budget.epsilon"))
    return problems
