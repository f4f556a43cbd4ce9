"""Data-quality settings: per-column input expectations and the two gates' options."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipelines.spec.base import Frozen

#: The PII entities of the detection engine (:data:`pipelines.pii.catalogue.CATALOGUE`,
#: in its priority order; a unit test keeps the two equal). ``quality.allow_pii`` and
#: ``scrub.entities`` name them.
PII_ENTITIES = (
    "credential", "url_userinfo", "email", "iban", "cn_resident_id", "fr_nir", "in_aadhaar",
    "br_cpf", "de_tax_id", "credit_card", "us_ssn", "ca_sin", "nl_bsn", "uk_nino", "es_nif",
    "it_fiscal_code", "ipv4", "phone", "ipv6", "mac_address", "date_of_birth", "street_address",
    "person",
)  # fmt: skip
#: Former detector names, still accepted: ``national_id`` was the US SSN detector.
PII_ALIASES = {"national_id": "us_ssn", "payment_card": "credit_card"}
PiiEntity = Literal[
    "credential", "url_userinfo", "email", "iban", "credit_card", "cn_resident_id", "fr_nir",
    "in_aadhaar", "br_cpf", "de_tax_id", "us_ssn", "ca_sin", "nl_bsn", "uk_nino", "es_nif",
    "it_fiscal_code", "ipv4", "phone", "ipv6", "mac_address", "date_of_birth", "street_address",
    "person", "national_id", "payment_card",
]  # fmt: skip
#: The output gate checks every entity (known values need the raw row, which it lacks).
PII_DETECTORS = PII_ENTITIES
#: Phone regions whose national formats count when a spec names none (ISO 3166 alpha-2).
DEFAULT_COUNTRIES = ("US", "CA", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "CN", "JP", "BR")


def phone_regions(value: tuple[str, ...]) -> tuple[str, ...]:
    """Validate phone regions against libphonenumber's (imported only here).

    Args:
        value: Region codes as written.

    Returns:
        The codes, upper case.

    Raises:
        ValueError: A code is not a region libphonenumber knows.
    """
    import phonenumbers

    bad = [c for c in value if c.upper() not in phonenumbers.SUPPORTED_REGIONS]
    if bad:
        raise ValueError(f"unknown phone region(s) {', '.join(bad)}: use ISO 3166 alpha-2 codes")
    return tuple(c.upper() for c in value)


def resolve_entity(name: str) -> str:
    """The entity name of a current or former detector name.

    Args:
        name: ``email``, ``payment_card``…

    Returns:
        The catalogue name (``credit_card`` for ``payment_card``).
    """
    return PII_ALIASES.get(name, name)


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
    allow_pii: dict[str, tuple[PiiEntity, ...]] = Field(default_factory=dict)
    pii_countries: tuple[str, ...] = Field(
        DEFAULT_COUNTRIES,
        min_length=1,
        description="Regions whose national phone formats the output gate recognizes.",
    )
    escalate: tuple[str, ...] = ()

    @field_validator("allow_pii")
    @classmethod
    def _entity_names(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return {c: tuple(dict.fromkeys(resolve_entity(n) for n in names))
                for c, names in value.items()}  # fmt: skip

    @field_validator("pii_countries")
    @classmethod
    def _regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return phone_regions(value)

    docs: bool = Field(True, description="Build Data Docs pages for published partitions.")
    quarantine_dir: str | None = Field(
        None,
        description="Owner-only directory for quarantined runs (relative: to the warehouse); "
        "default <table>/_quarantine. Runs go to <dir>/<pipeline>/<col>=<value>/<run id>.",
    )
