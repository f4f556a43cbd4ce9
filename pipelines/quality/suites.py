"""Expectation suites built in code from the spec: one per gate stage.

A suite is a list of :class:`Check`: a stable id (``input.not_null.uid``,
``output.pii.note.email``), a GX expectation, a severity, and one line for humans.
Nothing here touches data; :mod:`pipelines.quality.gate` runs the checks.

**Input gate** (raw partition, before any work):

* ``input.columns``: the columns are exactly the declared ones (plus the undeclared
  ones ``undeclared: drop`` removes);
* ``input.type.<col>``: a declared ``type`` matches;
* ``input.not_null.<col>``: the privacy-unit column is never null (the partition
  column is the partition itself, so it cannot be null);
* ``input.row_count``: at least one row, unless ``quality.allow_empty``;
* ``input.volume``: rows within ``median·(1 ± tolerance)`` of the recent published
  partitions' input counts (``quality.volume``; a warning unless escalated);
* ``input.<check>.<col>``: the column's ``expect`` block (not_null, range, in_set,
  regex) at its declared severity.

**Output gate** (staged anonymized partition, before publish):

* ``output.columns`` and ``output.type.<col>``: exactly the contract's columns and
  types (dropped columns absent);
* ``output.token.<col>``: pseudonyms are tokens of their declared alphabet and length;
* ``output.domain.<col>``: generalized and redacted columns stay in their domains;
* ``output.pii.<col>.<detector>``: no string value contains PII of any kind the spec
  does not allow for that column (every detector, every string column, every row);
* ``output.row_count``: rows equal input rows minus documented suppressions;
* ``output.k_anonymity`` / ``output.l_diversity`` / ``output.t_closeness``: with a
  ``k_anonymity`` block, every class over the QIs has ≥ k records, is l-diverse in
  the sensitive column (distinct, entropy or recursive) and t-close to the
  partition's distribution, measured by the independent checker's functions.

Severities: ``error`` blocks publishing, ``warning`` is recorded and publishes.
``quality.escalate`` raises warnings to errors; nothing lowers an error, and the
only way to exempt a column from a PII detector is ``quality.allow_pii`` (recorded in
every gate result).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from statistics import median
from typing import TYPE_CHECKING, Any

from pyspark.sql.types import StringType, StructType, _parse_datatype_string

from pipelines.errors import SpecError
from pipelines.spec.models import PipelineSpec
from pipelines.spec.quality import DEFAULT_COUNTRIES, PII_DETECTORS

if TYPE_CHECKING:
    from pipelines.desensitize.operator import Domain
    from pipelines.plan import RunPlan


@dataclass(frozen=True)
class Check:
    """One expectation of a gate."""

    id: str
    expectation: Any = field(repr=False)
    severity: str = "error"
    description: str = ""
    column: str | None = None


@dataclass
class Suite:
    """The checks of one stage, plus notes on checks that were not applicable."""

    stage: str
    checks: list[Check]
    notes: list[str] = field(default_factory=list)
    allowed_pii: dict[str, list[str]] = field(default_factory=dict)
    pii_countries: tuple[str, ...] = DEFAULT_COUNTRIES


def _gx() -> Any:
    from pipelines.quality import expectations  # registers the custom expectations

    return expectations


def _type_name(simple: str) -> str:
    """Spark type class name GX compares against (``bigint`` -> ``LongType``)."""
    return type(_parse_datatype_string(simple)).__name__


def _escalate(spec: PipelineSpec, checks: list[Check]) -> list[Check]:
    """Apply ``quality.escalate`` globs (warning -> error)."""
    out = []
    for c in checks:
        if c.severity == "warning" and any(
            fnmatch.fnmatchcase(c.id, p) for p in spec.quality.escalate
        ):
            c = Check(c.id, c.expectation, "error", c.description, c.column)
        out.append(c)
    return out


def unmatched_escalations(spec: PipelineSpec, suites: list[Suite]) -> list[str]:
    """``quality.escalate`` patterns that match no check of the given suites.

    Args:
        spec: The validated spec.
        suites: The suites whose check ids the patterns are matched against.

    Returns:
        The patterns (in spec order) that match no check id, case-sensitively.
    """
    ids = [c.id for s in suites for c in s.checks]
    return [p for p in spec.quality.escalate if not any(fnmatch.fnmatchcase(i, p) for i in ids)]


def volume_band(spec: PipelineSpec, history: list[int]) -> tuple[int, int] | None:
    """``(low, high)``: the allowed input rows, or None without enough history.

    ``history`` holds recent input counts, newest first; ``window`` of it is used.

    Args:
        spec: The validated spec (its ``quality.volume``).
        history: Input row counts of recent published partitions, newest first.

    Returns:
        ``(int(m·(1 − tolerance)), ceil(m·(1 + tolerance)))`` with m the median of the
        newest ``window`` counts; None when the spec has no volume band or fewer than
        ``min_history`` counts are available.
    """
    band = spec.quality.volume
    if band is None:
        return None
    recent = history[: band.window]
    if len(recent) < band.min_history:
        return None
    m = median(recent)
    return int(m * (1 - band.tolerance)), int(-(-m * (1 + band.tolerance) // 1))


def input_suite(plan: RunPlan, schema: StructType, history: list[int]) -> Suite:
    """Checks on the raw partition, against the spec (the raw data may not fit it).

    Args:
        plan: The run plan.
        schema: The raw partition's schema, without the partition column.
        history: Input row counts of recent published partitions, newest first.

    Returns:
        The input gate's suite.
    """
    _gx()
    from great_expectations import expectations as E

    from pipelines.storage.text import MALFORMED

    spec = plan.spec
    present = [f.name for f in schema.fields if f.name not in (spec.partition_column, MALFORMED)]
    flagged = MALFORMED in schema.fieldNames()  # a text source flags rows that do not parse
    expected = list(spec.columns)
    if spec.undeclared == "drop":
        expected += [c for c in present if c not in spec.columns]
    checks = [
        Check(
            "input.columns",
            E.ExpectTableColumnsToMatchSet(
                column_set=expected + [MALFORMED] * flagged, exact_match=True
            ),
            description="columns are exactly the declared ones",
        )
    ]
    checks += _input_column_checks(E, spec, present)
    if flagged:
        checks.append(
            Check(
                "input.malformed",
                E.ExpectColumnValuesToBeInSet(column=MALFORMED, value_set=[False]),
                description="every row parses with the columns' declared types",
            )
        )
    if not spec.quality.allow_empty:
        checks.append(
            Check(
                "input.row_count",
                E.ExpectTableRowCountToBeBetween(min_value=1),
                description="the partition is not empty",
            )
        )
    volume, notes = _volume_check(E, spec, history)
    return Suite("input", _escalate(spec, checks + volume), notes)


def _input_column_checks(E: Any, spec: PipelineSpec, present: list[str]) -> list[Check]:  # noqa: N803
    """Checks of each declared column present in the raw data.

    Its type, the privacy unit never null, a date column's format, the user's
    expectations.
    """
    checks = []
    for name, action in spec.columns.items():
        if name not in present:
            continue  # input.columns reports it
        if action.type:
            checks.append(
                Check(
                    f"input.type.{name}",
                    E.ExpectColumnValuesToBeOfType(column=name, type_=_type_name(action.type)),
                    description=f"{name} is {action.type}",
                    column=name,
                )
            )
        if name == spec.privacy_unit:
            checks.append(
                Check(
                    f"input.not_null.{name}",
                    E.ExpectColumnValuesToNotBeNull(column=name),
                    description="the privacy unit is never null",
                    column=name,
                )
            )
        fmt = getattr(action, "format", None)
        if fmt is not None:
            checks.append(
                Check(
                    f"input.format.{name}",
                    _gx().ExpectColumnValuesToParseAsDates(column=name, format=fmt),
                    description=f"{name} parses as dates with {fmt}",
                    column=name,
                )
            )
        if action.expect is not None:
            checks.extend(_column_expectations(E, name, action.expect))
    return checks


def _volume_check(E: Any, spec: PipelineSpec, history: list[int]) -> tuple[list[Check], list[str]]:  # noqa: N803
    """The row-count band from recent history, or a note saying why it is not checked."""
    band = volume_band(spec, history)
    if band is not None:
        lo, hi = band
        check = Check(
            "input.volume",
            E.ExpectTableRowCountToBeBetween(min_value=lo, max_value=hi),
            spec.quality.volume.severity,
            f"rows within {lo}..{hi} (recent published partitions)",
        )
        return [check], []
    if spec.quality.volume is None:
        return [], []
    return [], [
        f"input.volume: not checked, {len(history)} published partition(s) of history "
        f"(needs {spec.quality.volume.min_history})"
    ]


def _column_expectations(E: Any, name: str, ex: Any) -> list[Check]:  # noqa: N803
    out = []
    sev = ex.severity
    if ex.not_null:
        exp = E.ExpectColumnValuesToNotBeNull(column=name)
        out.append(Check(f"input.not_null.{name}", exp, sev, f"{name} is never null", name))
    if ex.min is not None or ex.max is not None:
        out.append(
            Check(
                f"input.range.{name}",
                E.ExpectColumnValuesToBeBetween(column=name, min_value=ex.min, max_value=ex.max),
                sev,
                f"{name} within [{ex.min}, {ex.max}]",
                name,
            )
        )
    if ex.in_set is not None:
        exp = E.ExpectColumnValuesToBeInSet(column=name, value_set=list(ex.in_set))
        out.append(Check(f"input.in_set.{name}", exp, sev, f"{name} in its allowed set", name))
    if ex.regex is not None:
        exp = E.ExpectColumnValuesToMatchRegex(column=name, regex=f"^(?:{ex.regex})$")
        out.append(Check(f"input.regex.{name}", exp, sev, f"{name} matches its pattern", name))
    return out


def output_suite(plan: RunPlan, expected_rows: int) -> Suite:
    """Checks on the staged anonymized partition, from the plan's output contract.

    Args:
        plan: The run plan, bound to the source schema.
        expected_rows: Input rows minus suppressions.

    Returns:
        The output gate's suite.
    """
    ex = _gx()
    from great_expectations import expectations as E

    spec, contract = plan.spec, plan.bound
    checks = [
        Check(
            "output.columns",
            E.ExpectTableColumnsToMatchSet(column_set=contract.names, exact_match=True),
            description="columns are exactly the contract's (dropped columns absent)",
        )
    ]
    for c in contract.columns:
        checks.append(
            Check(
                f"output.type.{c.name}",
                E.ExpectColumnValuesToBeOfType(column=c.name, type_=type(c.released).__name__),
                description=f"{c.name} is {c.released.simpleString()}",
                column=c.name,
            )
        )
    for c in contract.columns:
        if c.domain is not None:
            checks.append(_domain_check(E, ex, c.name, c.domain))
    if plan.kanon is not None:
        checks += _kanon_checks(ex, plan.kanon.spec)
    for c in contract.columns:
        if not isinstance(c.released, StringType):
            continue
        for det in PII_DETECTORS:
            if det in c.allowed_pii:
                continue
            checks.append(
                Check(
                    f"output.pii.{c.name}.{det}",
                    ex.ExpectColumnValuesToNotContainPii(column=c.name, detector=det),
                    description=f"no {det.replace('_', ' ')} in {c.name}",
                    column=c.name,
                )
            )
    checks.append(
        Check(
            "output.row_count",
            E.ExpectTableRowCountToEqual(value=expected_rows),
            description=f"{expected_rows} rows (input minus suppressions)",
        )
    )
    return Suite("output", _escalate(spec, checks), allowed_pii=contract.allowed_pii,
                 pii_countries=spec.quality.pii_countries)  # fmt: skip


def _kanon_checks(ex: Any, ka: Any) -> list[Check]:
    """k-anonymity, and l-diversity and t-closeness where asked, on the staged data."""
    qis = list(ka.quasi_identifiers)
    checks = [
        Check(
            "output.k_anonymity",
            ex.ExpectColumnsToBeKAnonymous(column_list=qis, k=ka.k),
            description=f"every class over {', '.join(qis)} has at least {ka.k} records",
        )
    ]
    ld, tc = ka.l_diversity, ka.t_closeness
    # Both share one metric computation when their metric keys (l, distance) agree.
    lv, distance = (ld.l if ld else 1), (tc.distance if tc else "equal")
    if ld is not None:
        checks.append(
            Check(
                "output.l_diversity",
                ex.ExpectColumnsToBeLDiverse(
                    column_list=qis, sensitive=ka.sensitive, l=ld.l, kind=ld.kind, c=ld.c,
                    distance=distance,
                ),  # fmt: skip
                description=f"every class is {ld.kind} {ld.l}-diverse in {ka.sensitive}",
            )
        )
    if tc is not None:
        checks.append(
            Check(
                "output.t_closeness",
                ex.ExpectColumnsToBeTClose(
                    column_list=qis, sensitive=ka.sensitive, t=tc.t, l=lv, distance=distance
                ),
                description=f"every class is within {tc.distance} distance {tc.t} "
                f"of the partition's {ka.sensitive} distribution",
            )
        )
    return checks


def _domain_check(E: Any, ex: Any, name: str, domain: Domain) -> Check:  # noqa: N803
    """The GX expectation of an operator's declared output domain."""
    if domain.rule == "regex":
        expectation = E.ExpectColumnValuesToMatchRegex(column=name, regex=domain.regex)
    elif domain.rule == "in_set":
        expectation = E.ExpectColumnValuesToBeInSet(column=name, value_set=list(domain.values))
    elif domain.rule == "max_length":
        expectation = E.ExpectColumnValueLengthsToBeBetween(column=name, max_value=domain.high)
    elif domain.rule == "between":
        expectation = E.ExpectColumnValuesToBeBetween(
            column=name, min_value=domain.low, max_value=domain.high
        )
    else:
        expectation = ex.ExpectColumnValuesToBeTruncatedDates(column=name, unit=domain.unit)
    check_id = f"output.{'token' if domain.token else 'domain'}.{name}"
    return Check(check_id, expectation, description=f"{name} is {domain.what}", column=name)


def check_escalations(spec: PipelineSpec, *suites: Suite) -> None:
    """Refuse ``quality.escalate`` patterns that match no check.

    A typo would otherwise silently leave a warning a warning.

    Args:
        spec: The validated spec.

    Other Args:
        *suites: Every suite of the run; a pattern must match a check of one of them.

    Raises:
        SpecError: Some pattern matches no check (the message lists them).
    """
    bad = unmatched_escalations(spec, list(suites))
    if bad:
        raise SpecError(
            "quality.escalate: "
            + ", ".join(repr(p) for p in bad)
            + " match no check; check ids look like input.volume or output.pii.<column>.<kind>"
        )


def release_suite(spec: PipelineSpec, name: str, schema: StructType, keys: int | None) -> Suite:
    """The gate of one DP release table, run on the staged release before publish.

    Exactly the declared columns and types (group_by, then metrics); group keys
    never null; with public keys exactly one row per declared key; counts ≥ 0;
    means and quantiles within their clamping bounds. (Every released private key
    passed selection by construction: the table holds no unit counts to re-check.)

    Args:
        spec: The validated spec.
        name: The release's name under ``releases``.
        schema: The release table's schema (group_by columns, then metrics).
        keys: The number of declared public keys, or None for private keys.

    Returns:
        The release gate's suite (stage ``release.<name>``), without escalation.
    """
    _gx()
    from great_expectations import expectations as E

    rel = spec.releases[name]
    checks = [
        Check(
            "release.columns",
            E.ExpectTableColumnsToMatchOrderedList(column_list=[f.name for f in schema.fields]),
            description="exactly the group_by and metric columns, in order",
        )
    ]
    for f in schema.fields:
        checks.append(
            Check(f"release.type.{f.name}",
                  E.ExpectColumnValuesToBeOfType(column=f.name, type_=type(f.dataType).__name__),
                  description=f"{f.name} is {f.dataType.simpleString()}", column=f.name)
        )  # fmt: skip
    for col in rel.group_by:
        checks.append(Check(f"release.not_null.{col}", E.ExpectColumnValuesToNotBeNull(column=col),
                            description=f"group key {col} is never null", column=col))  # fmt: skip
    if keys is not None:
        checks.append(Check("release.row_count", E.ExpectTableRowCountToEqual(value=keys),
                            description=f"one row per declared key ({keys})"))  # fmt: skip
    for metric, m in rel.metrics.items():
        if m.kind in ("count", "count_units"):
            bounds = {"min_value": 0}
        elif m.kind in ("mean", "quantile"):
            bounds = {"min_value": m.lower, "max_value": m.upper}
        else:
            continue
        checks.append(Check(f"release.range.{metric}",
                            E.ExpectColumnValuesToBeBetween(column=metric, **bounds),
                            description=f"{metric} within {bounds}", column=metric))  # fmt: skip
    return Suite(stage=f"release.{name}", checks=checks)
