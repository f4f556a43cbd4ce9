"""Typed records of a run: gate results, the run's identity and state, quarantine notes.

Each record is a dataclass with ``to_json()`` (a JSON-ready dict) and ``from_json()``;
manifests, the records published with a partition, are in :mod:`pipelines.manifest`.
No Spark or Great Expectations import, so the CLI and the DAG's callbacks can read
them cheaply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.partition import Partition

# --------------------------------------------------------------------------- gates


@dataclass
class CheckResult:
    """One check of a gate: pass/fail and what was observed, counts only.

    Attributes:
        id: Stable check id (``output.pii.note.email``).
        expectation: The Great Expectations expectation type.
        column: The column checked, if one.
        description: One line for people.
        severity: ``error`` (blocks publishing) or ``warning``.
        success: Whether the check passed.
        observed: Counts (``unexpected_count``, ``observed_value``…), never a value.
    """

    id: str
    expectation: str
    column: str | None
    description: str
    severity: str
    success: bool
    observed: dict[str, Any]

    def observed_text(self) -> str:
        """What was observed, for messages (``3 of 50 values``, ``observed 0``).

        Returns:
            One short phrase.
        """
        o = self.observed
        if "unexpected_count" in o:
            return f"{o['unexpected_count']} of {o.get('element_count', '?')} values"
        value = o.get("observed_value")
        if isinstance(value, dict) and "classes_below_k" in value:
            return f"{value['classes_below_k']} classes below k"
        if "error" in o:
            return f"error {o['error']}"
        return f"observed {value}"


@dataclass
class GateResult:
    """Outcome of one gate: pass/fail per check, counts only.

    Attributes:
        stage: ``input``, ``output`` or ``release.<name>``.
        passed: No error-severity check failed.
        seconds: Wall time of the validation.
        checks: Every check, in suite order.
        notes: Checks that were not applicable, and why.
        allowed_pii: Column -> PII detectors the spec allows it to match.
    """

    stage: str
    passed: bool
    seconds: float
    checks: list[CheckResult]
    notes: list[str] = field(default_factory=list)
    allowed_pii: dict[str, list[str]] = field(default_factory=dict)

    def failures(self, severity: str = "error") -> list[CheckResult]:
        """Failed checks of one severity.

        Args:
            severity: ``error`` or ``warning``.

        Returns:
            The failed checks, in suite order.
        """
        return [c for c in self.checks if not c.success and c.severity == severity]

    def describe_failures(self, severity: str = "error") -> str:
        """``id (observed)`` for each failed check, for messages.

        Args:
            severity: ``error`` or ``warning``.

        Returns:
            A comma-separated list.
        """
        return ", ".join(f"{c.id} ({c.observed_text()})" for c in self.failures(severity))

    def to_json(self) -> dict[str, Any]:
        """The JSON form (what manifests and quarantine notes hold).

        Returns:
            A JSON-ready dict.
        """
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GateResult:
        """Read the JSON form.

        Args:
            data: What :meth:`to_json` wrote.

        Returns:
            The gate result.
        """
        checks = [CheckResult(**c) for c in data["checks"]]
        return cls(**{**data, "checks": checks})


# --------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class RunIdentity:
    """What identifies one run in its state, manifest or quarantine note.

    Attributes:
        run_id: ``YYYYmmddTHHMMSSZ-<8 hex>``, unique and sortable by start time.
        pipeline: The spec's name.
        partition: The partition the run processes.
        spec_hash: SHA-256 of the spec's canonical JSON.
        code_version: The package version (and git commit).
    """

    run_id: str
    pipeline: str
    partition: Partition
    spec_hash: str
    code_version: str

    def to_json(self) -> dict[str, Any]:
        """The JSON form, flattened into the records that carry it.

        Returns:
            A JSON-ready dict.
        """
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "partition": {"column": self.partition.column, "value": self.partition.value},
            "spec_hash": self.spec_hash,
            "code_version": self.code_version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunIdentity:
        """Read the identity fields of a record.

        Args:
            data: A record holding the fields of :meth:`to_json`.

        Returns:
            The identity.
        """
        part = data["partition"]
        return cls(
            run_id=data["run_id"],
            pipeline=data["pipeline"],
            partition=Partition.parse(part["column"], part["value"], "partition"),
            spec_hash=data["spec_hash"],
            code_version=data["code_version"],
        )


def add_timings(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    """Seconds per phase over the steps of a run (each step starts its own session).

    Args:
        a: Phase -> seconds.
        b: Phase -> seconds.

    Returns:
        The per-phase sums, rounded to milliseconds.
    """
    return {k: round(a.get(k, 0.0) + b.get(k, 0.0), 3) for k in {**a, **b}}


@dataclass(frozen=True)
class RunState:
    """A staged run between its steps: the ``_stage.json`` file beside the staged data.

    Attributes:
        identity: The run.
        status: ``staged`` (written, not validated) or ``validated`` (output gate passed).
        key_fingerprints: Key name -> fingerprint of the keys the run used.
        source_schema: The source partition's schema (Spark JSON), to bind the plan again.
        output_schema: The staged data's schema (Spark JSON).
        input_rows: Rows read from the source partition.
        output_rows: Rows staged.
        suppressed_rows: Rows suppressed by k-anonymity.
        k_anonymity: The k-anonymity stage's summary, if any.
        gates: Stage -> result of the gates run so far.
        timings: Phase -> seconds so far.
        action_counts: Published column -> counted operator flag -> rows (dates nulled
            as out of range, sentinels kept).
        source_version: The snapshot id or table version an Iceberg or Delta source
            was read at (None for other sources).
    """

    identity: RunIdentity
    status: str
    key_fingerprints: dict[str, str]
    source_schema: str
    output_schema: str
    input_rows: int
    output_rows: int
    suppressed_rows: int
    k_anonymity: dict[str, Any] | None
    gates: dict[str, GateResult]
    timings: dict[str, float]
    action_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    source_version: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form.

        Returns:
            A JSON-ready dict.
        """
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["identity"] = self.identity.to_json()
        out["gates"] = {k: g.to_json() for k, g in self.gates.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunState:
        """Read the JSON form.

        Args:
            data: What :meth:`to_json` wrote.

        Returns:
            The state.
        """
        return cls(**{
            **data,
            "identity": RunIdentity.from_json(data["identity"]),
            "gates": {k: GateResult.from_json(g) for k, g in data["gates"].items()},
        })  # fmt: skip


@dataclass(frozen=True)
class QuarantineNote:
    """Why a run was quarantined: the ``gate.json`` beside the quarantined data.

    Attributes:
        identity: The quarantined run (absent in release quarantines, which carry
            ``run_id`` and ``release`` only).
        quarantined_at: UTC time.
        failed_stage: The gate that failed (``input``, ``output``, ``release.<name>``).
        gates: Stage -> result of every gate run.
        release: The DP release, for a quarantined release.
    """

    identity: RunIdentity | None
    quarantined_at: str
    failed_stage: str
    gates: dict[str, GateResult]
    release: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form.

        Returns:
            A JSON-ready dict.
        """
        out: dict[str, Any] = self.identity.to_json() if self.identity else {}
        out.update(
            quarantined_at=self.quarantined_at,
            failed_stage=self.failed_stage,
            gates={k: g.to_json() for k, g in self.gates.items()},
        )
        if self.release is not None:
            out["release"] = self.release
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QuarantineNote:
        """Read the JSON form.

        Args:
            data: A parsed ``gate.json``.

        Returns:
            The note.
        """
        gates = {k: GateResult.from_json(g) for k, g in data.get("gates", {}).items()}
        return cls(
            identity=RunIdentity.from_json(data) if "pipeline" in data else None,
            quarantined_at=data.get("quarantined_at", ""),
            failed_stage=data.get("failed_stage") or next(iter(gates), ""),
            gates=gates,
            release=data.get("release"),
        )

    @property
    def failed_checks(self) -> list[str]:
        """Ids of the failed checks of the failed gate."""
        gate = self.gates.get(self.failed_stage)
        return [c.id for c in gate.checks if not c.success] if gate else []
