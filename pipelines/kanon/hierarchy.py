"""Generalization hierarchies in ARX's CSV format.

One row per raw value, ``;``-separated, no header: column 0 is the raw value,
column i its level-i generalization, the last column the root (usually ``*``).
Nodes are identified by (level, label); every node must have one parent (a label
that appears under two different parents at the same level is an error).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.errors import SpecError


@dataclass(frozen=True)
class Hierarchy:
    """A tree over the raw values of one categorical quasi-identifier."""

    name: str
    leaves: tuple[str, ...]
    #: ancestors[leaf, level] = node id; level 0 is the leaf itself.
    ancestors: np.ndarray = field(repr=False)
    #: labels[node id] = released label of that node.
    labels: tuple[str, ...] = field(repr=False)

    @property
    def height(self) -> int:
        """Levels above the raw values."""
        return self.ancestors.shape[1] - 1

    def codes(self, values: np.ndarray, column: str) -> np.ndarray:
        """Leaf index of each raw value; an error naming the column for unknown values.

        Args:
            values: The raw values of the quasi-identifier (strings).
            column: The quasi-identifier, named in the error.

        Returns:
            int64 array of the same length: each value's position in :attr:`leaves`.

        Raises:
            SpecError: A value is not a leaf of the hierarchy (the message gives only the
                first unknown value's length, never the value).
        """
        index = {v: i for i, v in enumerate(self.leaves)}
        try:
            return np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))
        except KeyError as exc:
            raise SpecError(
                f"k_anonymity.quasi_identifiers.{column}: a value is not in the "
                f"hierarchy {self.name} (first unknown value has {len(str(exc.args[0]))} "
                "characters; values are not printed)"
            ) from None

    @classmethod
    def from_rows(cls, name: str, rows: list[list[str]]) -> Hierarchy:
        """Build from parsed CSV rows (all of the same length).

        Cells are stripped and blank rows skipped.

        Args:
            name: The hierarchy's name (its file name), used in errors.
            rows: One row per raw value: the value, then its generalizations up to the root.

        Returns:
            The hierarchy.

        Raises:
            ValueError: No rows, rows of different lengths, a node with two different
                parents, or a raw value listed twice.
        """
        rows = [[c.strip() for c in r] for r in rows if r and any(c.strip() for c in r)]
        if not rows:
            raise ValueError(f"hierarchy {name}: no rows")
        width = len(rows[0])
        if any(len(r) != width for r in rows):
            raise ValueError(f"hierarchy {name}: rows have different numbers of columns")
        node_ids: dict[tuple[int, str], int] = {}
        parent: dict[int, int] = {}
        labels: list[str] = []
        anc = np.empty((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            for level, label in enumerate(row):
                key = (level, label)
                if key not in node_ids:
                    node_ids[key] = len(labels)
                    labels.append(label)
                anc[i, level] = node_ids[key]
                if level:
                    child = anc[i, level - 1]
                    if parent.setdefault(child, anc[i, level]) != anc[i, level]:
                        raise ValueError(
                            f"hierarchy {name}: '{row[level - 1]}' at level {level - 1} "
                            "has two different parents"
                        )
        leaves = tuple(r[0] for r in rows)
        if len(set(leaves)) != len(leaves):
            raise ValueError(f"hierarchy {name}: a raw value is listed twice")
        return cls(name=name, leaves=leaves, ancestors=anc, labels=tuple(labels))

    @classmethod
    def read(cls, path: str | Path) -> Hierarchy:
        """Read an ARX hierarchy file.

        A malformed hierarchy raises ValueError (see :meth:`from_rows`).

        Args:
            path: The ``;``-separated UTF-8 CSV file, without header.

        Returns:
            The hierarchy, named after the file.
        """
        p = Path(path)
        with p.open(newline="", encoding="utf-8") as fh:
            return cls.from_rows(p.name, list(csv.reader(fh, delimiter=";")))
