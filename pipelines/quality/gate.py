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
import time
from dataclasses import asdict, dataclass, field
from typing import Any

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


@dataclass
class GateResult:
    """Outcome of one gate: pass/fail per check, counts only."""

    stage: str
    passed: bool
    seconds: float
    checks: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    allowed_pii: dict[str, list[str]] = field(default_factory=dict)

    def failures(self, severity: str = "error") -> list[dict[str, Any]]:
        """Failed checks of the given severity."""
        return [c for c in self.checks if not c["success"] and c["severity"] == severity]

    def describe_failures(self, severity: str = "error") -> str:
        """``id (count)`` for each failed check, for messages."""
        failed = self.failures(severity)
        return ", ".join(f"{c['id']} ({_observed_text(c['observed'])})" for c in failed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what manifests and quarantine notes hold)."""
        return asdict(self)


def _observed_text(observed: dict[str, Any]) -> str:
    if "unexpected_count" in observed:
        return f"{observed['unexpected_count']} of {observed.get('element_count', '?')} values"
    value = observed.get("observed_value")
    if isinstance(value, dict) and "classes_below_k" in value:
        return f"{value['classes_below_k']} classes below k"
    if "error" in observed:
        return f"error {observed['error']}"
    return f"observed {value}"


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

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
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


def run_gate(suite: Suite, df: DataFrame, name: str) -> tuple[GateResult, Any]:
    """Validate ``df`` against ``suite``.

    Returns the gate result and the sanitized GX result (for Data Docs). Does not
    raise on failure: the caller decides.
    """
    import great_expectations as gx

    t0 = time.perf_counter()
    by_id = {c.id: c for c in suite.checks}
    expectations = []
    for c in suite.checks:
        meta = {"check": c.id, "severity": c.severity, "description": c.description}
        expectations.append(c.expectation.copy(update={"meta": meta}))  # GX models: pydantic v1
    gx_suite = gx.ExpectationSuite(name=f"{name}.{suite.stage}", expectations=expectations)
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": df})
    result = batch.validate(gx_suite, result_format=RESULT_FORMAT)
    _sanitize(result)
    checks = []
    for r in result.results:
        check = by_id[r.expectation_config.meta["check"]]
        checks.append(
            {
                "id": check.id,
                "expectation": r.expectation_config.type,
                "column": check.column,
                "description": check.description,
                "severity": check.severity,
                "success": bool(r.success),
                "observed": r.result,
            }
        )
    order = {c.id: i for i, c in enumerate(suite.checks)}
    checks.sort(key=lambda c: order[c["id"]])
    if len(checks) != len(suite.checks):
        missing = sorted(set(by_id) - {c["id"] for c in checks})
        raise RuntimeError(f"{suite.stage} gate: GX returned no result for {', '.join(missing)}")
    passed = not any(not c["success"] and c["severity"] == "error" for c in checks)
    gate = GateResult(
        stage=suite.stage,
        passed=passed,
        seconds=round(time.perf_counter() - t0, 3),
        checks=checks,
        notes=list(suite.notes),
        allowed_pii=dict(suite.allowed_pii),
    )
    for c in checks:
        if not c["success"]:
            log.warning(
                "%s gate: %s %s failed (%s)",
                suite.stage,
                c["severity"],
                c["id"],
                _observed_text(c["observed"]),
            )
    return gate, result
