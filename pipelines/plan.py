"""The compiled run plan: everything a run needs, decided once, before any Spark work.

:func:`compile_plan` validates nothing twice and reads no data: it takes the
validated spec, parses the partition, resolves the keys (fingerprints only in
anything printable: :class:`~pipelines.keys.KeySet`), loads the k-anonymity
hierarchies and binds one operator to every column. Once the source's schema is
known (a metadata lookup, no data read), :meth:`RunPlan.bind` checks it against the
spec (fail closed) and fixes the output contract: the published columns in order,
their types, the domain each must stay in and the PII each may hold. Every later
step (the transforms, the gates, the manifest) reads the bound plan; none re-derives
it from the spec.

A plan holds keys, so it is never pickled (a :class:`~pipelines.keys.Key` refuses
to be) and never captured in an executor closure: transforms build Spark
expressions from it on the driver.
"""

from __future__ import annotations

import dataclasses
import functools
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines import __version__
from pipelines.desensitize.operator import Domain, Operator
from pipelines.desensitize.registry import operator_for
from pipelines.errors import InternalError, SpecError
from pipelines.keys import KeySet, resolve_keys
from pipelines.partition import Partition
from pipelines.spec.loader import load_spec, spec_hash
from pipelines.spec.models import PipelineSpec

if TYPE_CHECKING:
    from pyspark.sql.types import DataType, StructType

    from pipelines.kanon.plan import KAnonymityPlan


@functools.cache
def code_version() -> str:
    """The package version, plus the git commit when running from a checkout.

    Returns:
        ``0.1.0`` or ``0.1.0+g<12 hex digits>``.
    """
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return f"{__version__}+g{sha}"
    except (OSError, subprocess.SubprocessError):
        return __version__


@dataclass(frozen=True)
class OutputColumn:
    """One published column of the output contract.

    Attributes:
        name: The published name.
        source: The source column it is computed from.
        operator: The column's operator.
        dtype: Its Spark type as the desensitize stage produces it.
        released: Its Spark type as published (k-anonymity releases QIs as strings).
        domain: What the output gate checks its values against (None: any value).
        allowed_pii: PII detectors it may match (by construction or ``quality.allow_pii``).
    """

    name: str
    source: str
    operator: Operator
    dtype: DataType
    released: DataType
    domain: Domain | None
    allowed_pii: tuple[str, ...]


@dataclass(frozen=True)
class OutputContract:
    """What the run must publish, derived from the spec and the source schema once.

    Attributes:
        source_schema: The source partition's schema without the partition column.
        columns: The published columns, in source column order (in spec order for a
            published partition's contract, ``bind_published``: the gate compares
            column names as a set).
        undeclared: Source columns the spec does not mention (``undeclared: drop``).
        descriptions: Every source column's action as manifests record it.
    """

    source_schema: StructType
    columns: tuple[OutputColumn, ...]
    undeclared: tuple[str, ...]
    descriptions: Mapping[str, dict[str, Any]]

    @property
    def names(self) -> list[str]:
        """Published column names, in order."""
        return [c.name for c in self.columns]

    @property
    def schema(self) -> StructType:
        """The published schema (after k-anonymity), nullable columns."""
        from pyspark.sql.types import StructField, StructType

        return StructType([StructField(c.name, c.released, True) for c in self.columns])

    @property
    def allowed_pii(self) -> dict[str, list[str]]:
        """Published column -> PII detectors it may match (only columns with any)."""
        return {c.name: sorted(c.allowed_pii) for c in sorted(self.columns, key=lambda c: c.name)
                if c.allowed_pii}  # fmt: skip


@dataclass(frozen=True)
class RunPlan:
    """One run of one partition, compiled (see the module docstring).

    Attributes:
        spec: The validated spec.
        spec_hash: SHA-256 of the spec's canonical JSON.
        code_version: :func:`code_version` at compile time.
        partition: The partition this run processes.
        keys: The resolved keys (empty when the step needs none).
        operators: One operator per declared column, in spec order.
        kanon: The k-anonymity plan, if the spec has the block.
        contract: The output contract, once :meth:`bind` has seen the source schema.
    """

    spec: PipelineSpec
    spec_hash: str
    code_version: str
    partition: Partition
    keys: KeySet
    operators: tuple[Operator, ...]
    kanon: KAnonymityPlan | None
    contract: OutputContract | None = None

    @property
    def bound(self) -> OutputContract:
        """The output contract; an internal error if :meth:`bind` was not called.

        Raises:
            InternalError: The plan was not bound to a source schema yet.
        """
        if self.contract is None:
            raise InternalError("the run plan is used before it was bound to a source schema")
        return self.contract

    def at(self, partition: Partition) -> RunPlan:
        """The same plan for another partition (unbound: its schema may differ).

        Args:
            partition: The other partition.

        Returns:
            A plan sharing spec, keys and hierarchies.
        """
        return dataclasses.replace(self, partition=partition, contract=None)

    def source_reading(self) -> tuple[dict[str, str], dict[str, str]]:
        """How to read the source: declared types and source names by column key.

        Returns:
            ``(types, names)`` for :meth:`~pipelines.storage.base.Table.read_partition`.
        """
        return self.spec.declared_types(), self.spec.source_names()

    def window(self) -> list[Partition]:
        """The earlier partitions of the k-anonymity window, newest first.

        Returns:
            ``k_anonymity.window - 1`` partitions (none without the block).
        """
        size = self.kanon.spec.window if self.kanon is not None else 1
        return [self.partition.shifted(-d) for d in range(1, size)]

    def bind(self, source_schema: StructType, where: str) -> RunPlan:
        """Check the source schema against the spec and fix the output contract.

        Args:
            source_schema: The source partition's schema (the partition column, if
                present, is ignored).
            where: The source as messages name it.

        Returns:
            The plan with its :attr:`contract`.

        Raises:
            SpecError: A declared column is missing, a source column is undeclared
                (with ``undeclared: fail``), an action does not accept its column's
                type, or every column is dropped.
        """
        from pyspark.sql.types import StructType

        spec = self.spec
        fields = [f for f in source_schema.fields if f.name != spec.partition_column]
        present = [f.name for f in fields]
        missing = [c for c in spec.columns if c not in present]
        undeclared = [c for c in present if c not in spec.columns]
        problems = []
        if missing:
            problems.append(f"columns: declared but not in source {where}: {', '.join(missing)}")
        if undeclared and spec.undeclared == "fail":
            problems.append(
                f"source {where} has columns the spec does not mention: {', '.join(undeclared)}; "
                "declare each under 'columns' (kind: keep/drop/...) or set 'undeclared: drop'"
            )
        if problems:
            raise SpecError("\n".join(problems))
        ops = {op.column: op for op in self.operators}
        columns = []
        for f in fields:
            op = ops.get(f.name)
            if op is not None and op.output_name is not None:
                op.check_source(f.dataType)
                columns.append(self._output_column(op, op.output_type(f.dataType)))
        if not columns:
            raise SpecError("columns: every column is dropped; the output would have no columns")
        descriptions = {op.column: op.describe() for op in self.operators}
        for name in undeclared:
            descriptions[name] = {"kind": "drop", "reason": "undeclared"}
        contract = OutputContract(
            StructType(fields), tuple(columns), tuple(undeclared), descriptions
        )
        return dataclasses.replace(self, contract=contract)

    def _output_column(self, op: Operator, dtype: DataType) -> OutputColumn:
        """One published column: the operator's contract, seen through the spec."""
        from pyspark.sql.types import StringType

        name = op.output_name
        assert name is not None
        is_qi = self.kanon is not None and name in self.kanon.names
        allowed = {*op.allowed_pii(), *self.spec.quality.allow_pii.get(name, ())}
        return OutputColumn(
            name=name,
            source=op.column,
            operator=op,
            dtype=dtype,
            released=StringType() if is_qi else dtype,  # QIs become ranges/nodes
            domain=None if is_qi else op.domain(),
            allowed_pii=tuple(sorted(allowed)),
        )

    def bind_published(self, output_schema: Mapping[str, str]) -> RunPlan:
        """The contract of an already published partition, from its manifest's schema.

        For checking published data on demand, when the source may be gone: the
        names, domains and allowed PII follow from the spec, the types from the
        manifest (as published).

        Args:
            output_schema: Published column -> Spark type name (the manifest's).

        Returns:
            The plan with its :attr:`contract`.
        """
        from pyspark.sql.types import NullType, StructType, _parse_datatype_string

        # A column the spec publishes but the manifest lacks (the spec changed since)
        # stays in the contract, typed null: the gate then reports it missing.
        columns = [
            self._output_column(op, _parse_datatype_string(output_schema[op.output_name])
                                if op.output_name in output_schema else NullType())
            for op in self.operators if op.output_name is not None
        ]  # fmt: skip
        descriptions = {op.column: op.describe() for op in self.operators}
        contract = OutputContract(StructType([]), tuple(columns), (), descriptions)
        return dataclasses.replace(self, contract=contract)


def compile_plan(
    spec: PipelineSpec | str | Path, partition: str | Partition, *, resolve: bool = True
) -> RunPlan:
    """Compile the plan of one run.

    Order matters for failing early: the spec is validated, then the partition
    parsed, then the keys resolved (a missing key stops the run before any data is
    read), then the hierarchies loaded. Each of these steps raises SpecError (a
    KeyMaterialError for a key) when the spec, the partition value, a key or a
    hierarchy is invalid.

    Args:
        spec: A validated spec or the path of its YAML file.
        partition: The partition value (``YYYY-MM-DD``) or a parsed partition.
        resolve: Resolve the keys. Steps that only validate or publish a staged run
            need none.

    Returns:
        The unbound plan.
    """
    spec = spec if isinstance(spec, PipelineSpec) else load_spec(spec)
    if not isinstance(partition, Partition):
        partition = Partition.parse(spec.partition_column, partition)
    keys = resolve_keys(spec) if resolve else KeySet()
    operators = tuple(operator_for(c, a) for c, a in spec.columns.items())
    for op in operators:
        op.link(dict(spec.columns))
    kanon = None
    if spec.k_anonymity is not None:
        from pipelines.kanon.plan import KAnonymityPlan

        kanon = KAnonymityPlan.load(spec.k_anonymity)
    return RunPlan(
        spec=spec,
        spec_hash=spec_hash(spec),
        code_version=code_version(),
        partition=partition,
        keys=keys,
        operators=operators,
        kanon=kanon,
    )
