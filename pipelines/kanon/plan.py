"""The k-anonymity part of a run plan: the block, its loaded hierarchies, its guarantees.

Built before any Spark work (hierarchy files are read and validated here, so a bad
file stops the run before data is read). No Spark import.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import SpecError
from pipelines.kanon.hierarchy import Hierarchy
from pipelines.kanon.mondrian import QI, CategoricalQI, NumericQI
from pipelines.kanon.privacy import Requirement
from pipelines.kanon.verify import Guarantees
from pipelines.spec.kanon import KAnonymity


def _rows(path: str, where: str) -> list[list[str]]:
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{where}: hierarchy file {path} does not exist")
    with p.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh, delimiter=";"))


@dataclass(frozen=True)
class KAnonymityPlan:
    """What the k-anonymity stage of a run needs, loaded once.

    Attributes:
        spec: The spec's ``k_anonymity`` block.
        qis: The kernel's quasi-identifiers, in the block's order (categorical ones
            with their parsed hierarchy).
        hierarchy_rows: The raw hierarchy rows per categorical QI, for the
            independent checker (which parses them itself).
    """

    spec: KAnonymity
    qis: tuple[QI, ...]
    hierarchy_rows: Mapping[str, list[list[str]]]

    @classmethod
    def load(cls, ka: KAnonymity) -> KAnonymityPlan:
        """Read and validate every hierarchy file of the block.

        Args:
            ka: The validated block.

        Returns:
            The plan.

        Raises:
            SpecError: A hierarchy file is missing or malformed (names the spec path).
        """
        qis: list[QI] = []
        rows_of: dict[str, list[list[str]]] = {}
        for name, q in ka.quasi_identifiers.items():
            if q.type in ("numeric", "date"):
                qis.append(NumericQI(name, date=q.type == "date"))
                continue
            where = f"k_anonymity.quasi_identifiers.{name}.hierarchy"
            rows = _rows(q.hierarchy, where)
            try:
                qis.append(CategoricalQI(name, Hierarchy.from_rows(Path(q.hierarchy).name, rows)))
            except ValueError as exc:
                raise SpecError(f"{where}: {exc}") from None
            rows_of[name] = rows
        return cls(ka, tuple(qis), rows_of)

    @property
    def names(self) -> list[str]:
        """The quasi-identifier columns, in the block's order."""
        return list(self.spec.quasi_identifiers)

    @property
    def requirement(self) -> Requirement:
        """What every equivalence class must meet (the producer's view of the block)."""
        ld, tc = self.spec.l_diversity, self.spec.t_closeness
        return Requirement(
            k=self.spec.k,
            l=ld.l if ld else 1,
            l_kind=ld.kind if ld else "distinct",
            c=ld.c if ld else None,
            t=tc.t if tc else None,
            ordered=bool(tc and tc.distance == "ordered"),
        )

    @property
    def guarantees(self) -> Guarantees:
        """What the independent checker verifies (its own view of the same block)."""
        ld, tc = self.spec.l_diversity, self.spec.t_closeness
        return Guarantees(
            k=self.spec.k,
            l=ld.l if ld else None,
            l_kind=ld.kind if ld else "distinct",
            c=ld.c if ld else None,
            t=tc.t if tc else None,
            ordered=bool(tc and tc.distance == "ordered"),
        )
