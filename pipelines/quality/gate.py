"""Run a gate's suite with Great Expectations on the job's own SparkSession.

**No raw value leaves a gate.** GX result formats carry sample unexpected values
even at BASIC; every validation here runs with ``partial_unexpected_count: 0`` and
no unexpected rows or index queries, and :func:`_sanitize` then keeps only counts
(plus column and type names for the schema expectations) in each result and strips
exception messages, which can quote cell values. The sanitized GX result is what
Data Docs render; the :class:`GateResult` is what manifests, quarantine notes,
logs and the CLI show.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from pipelines.errors import InternalError
from pipelines.quality import pii
from pipelines.records import CheckResult, GateResult

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from pipelines.quality.suites import Suite

log = logging.getLogger(__name__)

RESULT_FORMAT = {
    "result_format": "BASIC",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}
_COUNT_KEYS = ("element_count", "missing_count", "unexpected_count", "unexpected_percent")
# Expectations whose observed value is schema (column or type names), not data.
_SCHEMA_TYPES = ("expect_table_columns_to_match_set", "expect_column_values_to_be_of_type")


def _exception_class(info: dict[str, Any]) -> str:
    """The exception's class name from a GX traceback, without its message."""
    tb = (info or {}).get("exception_traceback") or ""
    last = tb.strip().splitlines()[-1] if tb.strip() else ""
    return last.split(":", 1)[0].strip().rsplit(".", 1)[-1] or "Exception"


def _safe_observed(kind: str, result: dict[str, Any]) -> dict[str, Any]:
    out = {k: result[k] for k in _COUNT_KEYS if isinstance(result.get(k), int | float)}
    value = result.get("observed_value")
    if isinstance(value, bool | int | float):
        out["observed_value"] = value
    elif isinstance(value, dict) and all(isinstance(v, int) for v in value.values()):
        out["observed_value"] = value
    elif kind in _SCHEMA_TYPES and isinstance(value, str | list):
        out["observed_value"] = value
    return out


def _sanitize(result: Any) -> None:
    """Reduce a GX suite result, in place, to counts and schema names."""
    for r in result.results:
        kind = r.expectation_config.type
        raised = bool((r.exception_info or {}).get("raised_exception"))
        safe = _safe_observed(kind, r.result or {})
        if raised:
            safe = {"error": _exception_class(r.exception_info)}
            r.success = False
        r.result = safe
        r.exception_info = {
            "raised_exception": raised,
            "exception_message": None,
            "exception_traceback": None,
        }


@functools.cache
def _batch_definition() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    from pipelines.quality import expectations  # noqa: F401 (registers custom expectations)

    # In memory only: no store, no docs site; Data Docs are built by docs.py.
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    ctx = gx.get_context(project_config=config)
    # persist=False: GX would otherwise cache the whole partition in executor memory.
    source = ctx.data_sources.add_spark("pipelines", persist=False)
    return source.add_dataframe_asset("partition").add_batch_definition_whole_dataframe("all")


_GATE_LOCK = threading.Lock()


def run_gate(suite: Suite, df: DataFrame, name: str) -> tuple[GateResult, Any]:
    """Validate ``df`` against ``suite`` (the caller decides what a failure means).

    Args:
        suite: The gate's checks.
        df: The data to validate.
        name: The pipeline's name (the GX suite is ``<name>.<stage>``).

    Returns:
        The gate result (counts only) and the sanitized GX result (for Data Docs).

    Raises:
        InternalError: GX returned no result for some check.
    """
    import great_expectations as gx

    t0 = time.perf_counter()
    by_id = {c.id: c for c in suite.checks}
    expectations = []
    for c in suite.checks:
        meta = {"check": c.id, "severity": c.severity, "description": c.description}
        expectations.append(c.expectation.copy(update={"meta": meta}))  # GX models: pydantic v1
    gx_suite = gx.ExpectationSuite(name=f"{name}.{suite.stage}", expectations=expectations)
    # One gate at a time per process: GX's in-memory context (one data source, one
    # batch definition) and the PII check's confirmations are shared, so two runs in
    # threads of one driver would validate each other's data.
    with _GATE_LOCK:
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": df})
        pii.begin(suite.pii_countries, suite.allowed_pii)
        try:
            result = batch.validate(gx_suite, result_format=RESULT_FORMAT)
        finally:
            pii.begin()  # drop the confirmations (and the DataFrames they hold)
    _sanitize(result)
    checks = []
    for r in result.results:
        check = by_id[r.expectation_config.meta["check"]]
        checks.append(
            CheckResult(
                id=check.id,
                expectation=r.expectation_config.type,
                column=check.column,
                description=check.description,
                severity=check.severity,
                success=bool(r.success),
                observed=r.result,
            )
        )
    order = {c.id: i for i, c in enumerate(suite.checks)}
    checks.sort(key=lambda c: order[c.id])
    if len(checks) != len(suite.checks):
        missing = sorted(set(by_id) - {c.id for c in checks})
        raise InternalError(f"{suite.stage} gate: GX returned no result for {', '.join(missing)}")
    passed = not any(not c.success and c.severity == "error" for c in checks)
    gate = GateResult(
        stage=suite.stage,
        passed=passed,
        seconds=round(time.perf_counter() - t0, 3),
        checks=checks,
        notes=list(suite.notes),
        allowed_pii=dict(suite.allowed_pii),
    )
    for c in checks:
        if not c.success:
            log.warning(
                "%s gate: %s %s failed (%s)", suite.stage, c.severity, c.id, c.observed_text()
            )
    return gate, result
