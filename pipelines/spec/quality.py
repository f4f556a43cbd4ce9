"""Data-quality settings: per-column input expectations and the two gates' options."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from pipelines.spec.base import Frozen

#: The output gate's PII detectors (``quality.allow_pii`` names them).
PII_DETECTORS = ("email", "phone", "national_id", "payment_card", "iban", "ipv4", "ipv6")
PiiDetector = Literal["email", "phone", "national_id", "payment_card", "iban", "ipv4", "ipv6"]


class ColumnExpect(Frozen):
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


class VolumeBand(Frozen):
    """Input row count band from the recent published partitions' manifests.

    With m the median input count of the last ``window`` published partitions:
    ``m·(1 − tolerance) ≤ rows ≤ m·(1 + tolerance)``. Checked only once
    ``min_history`` partitions have been published.
    """

    window: int = Field(7, ge=1)
    tolerance: float = Field(0.5, gt=0)
    min_history: int = Field(3, ge=1)
    severity: Literal["error", "warning"] = "warning"


class QualitySpec(Frozen):
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
    quarantine_dir: str | None = Field(
        None,
        description="Owner-only directory for quarantined runs (relative: to the warehouse); "
        "default <table>/_quarantine. Runs go to <dir>/<pipeline>/<col>=<value>/<run id>.",
    )
