"""Strict multidimensional Mondrian (LeFevre, DeWitt, Ramakrishnan, ICDE 2006).

A partition is split recursively, never overlapping: on the quasi-identifier (QI)
with the widest *normalized* range first, falling back to the next widest when a
split is not allowed. A split is allowed only when every part keeps at least
``k`` records (and, with l-diversity, at least ``l`` distinct sensitive values).

* Numeric QI: split at the median value (``x < m`` vs ``x ≥ m``, or ``x ≤ m`` vs
  ``x > m`` when that is the balanced allowed one). Width = (max − min) / (global
  max − global min).
* Categorical QI with a hierarchy: the partition's node is the lowest common
  ancestor (LCA) of its raw values; the split follows that node's children. Every
  child holding ≥ k records becomes a part; children below k are pooled into one
  more part when the pool reaches k, else into the smallest large part (a pooled
  part is released as its LCA, so it stays truthful). Width = (leaves under the
  node − 1) / (leaves in the hierarchy − 1).

When no split is allowed, the partition is an equivalence class: each numeric QI
is released as ``[lo-hi]`` (or the value itself when lo = hi) and each categorical
QI as the label of the LCA node. Every released cell covers the record's own raw
value (truthfulness), and no record is suppressed unless the whole input has
fewer than ``k`` records (then all are, and the caller decides).

This module is the single-machine kernel: pure numpy over one pandas DataFrame. It
is written here rather than taken from a library because the Python k-anonymity
packages available (anjana, pycanon) implement full-domain generalization or only
measure; none implements strict Mondrian with hierarchies, and the kernel must run
inside Spark's ``applyInPandas`` on each group of the distributed top splits.
Deterministic: the same input (in any row order) gives the same output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.errors import SpecError
from pipelines.kanon.hierarchy import Hierarchy
from pipelines.kanon.privacy import Requirement

SUPPRESSED = "*"


@dataclass(frozen=True)
class NumericQI:
    """A numeric quasi-identifier released as a range.

    ``date=True``: the values are days since 1970-01-01 and are released as ISO
    dates, ``[2024-01-01-2024-03-31]`` (each end is exactly ten characters).
    """

    name: str
    date: bool = False


@dataclass(frozen=True)
class CategoricalQI:
    """A categorical quasi-identifier released as a hierarchy node."""

    name: str
    hierarchy: Hierarchy


QI = NumericQI | CategoricalQI


@dataclass
class Result:
    """Generalized QI columns (strings, input row order) and what was done."""

    released: pd.DataFrame
    classes: int
    suppressed: int


_EPOCH = np.datetime64("1970-01-01", "D")


def _fmt(x: float, date: bool = False) -> str:
    if date:
        return str(_EPOCH + np.timedelta64(int(x), "D"))
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def sensitive_codes(values: pd.Series, domain: list | None, where: str) -> tuple[np.ndarray, int]:
    """Codes 0..m−1 of the sensitive values in ``domain`` (sorted; default: the values').

    Args:
        values: The sensitive column.
        domain: The sorted sensitive values of the whole partition, or None to use the
            sorted distinct ``values``.
        where: The spec path named in errors.

    Returns:
        Each value's code (int64, index into the domain) and m, the domain's size.

    Raises:
        SpecError: A value is null, or is not in ``domain``.
    """
    if values.isna().any():
        raise SpecError(f"{where}: the sensitive column has null values")
    if domain is None:
        domain = sorted(values.unique())
    codes = pd.Categorical(values, categories=domain).codes.astype(np.int64)
    if (codes < 0).any():
        raise SpecError(f"{where}: a sensitive value outside the partition's domain")
    return codes, len(domain)


class _Kernel:
    def __init__(
        self,
        df: pd.DataFrame,
        qis: list[QI],
        req: Requirement,
        sensitive: str | None,
        domain: list | None,
        counted: str | None,
    ):
        self.qis, self.req = qis, req
        self.data: list[np.ndarray] = []
        self.spans: list[float] = []
        for q in qis:
            if isinstance(q, NumericQI):
                x = pd.to_numeric(df[q.name], errors="raise").to_numpy(dtype=np.float64)
                if np.isnan(x).any():
                    raise SpecError(f"k_anonymity.quasi_identifiers.{q.name}: null values")
                self.data.append(x)
                span = float(x.max() - x.min()) if len(x) else 0.0
                self.spans.append(span or 1.0)
            else:
                codes = q.hierarchy.codes(df[q.name].astype(str).to_numpy(), q.name)
                self.data.append(codes)
                self.spans.append(float(max(len(q.hierarchy.leaves) - 1, 1)))
        n = len(df)
        self.codes, self.bins = np.zeros(n, dtype=np.int64), 1
        if req.needs_sensitive:
            if sensitive is None:
                raise ValueError("l-diversity and t-closeness need a sensitive column")
            self.codes, self.bins = sensitive_codes(df[sensitive], domain, "k_anonymity.sensitive")
        self.weights = (
            np.ones(n) if counted is None else df[counted].to_numpy(dtype=bool).astype(np.float64)
        )
        if req.t is not None and not req.reference:
            self.req = req.with_reference(self.hist(np.arange(n)))

    # ---------------------------------------------------------------- helpers

    def _node_level(self, i: int, idx: np.ndarray) -> int:
        """Level of the LCA of the partition's values for categorical QI i."""
        anc = self.qis[i].hierarchy.ancestors
        leaves = np.unique(self.data[i][idx])
        for level in range(anc.shape[1]):
            if np.all(anc[leaves, level] == anc[leaves[0], level]):
                return level
        return anc.shape[1] - 1

    def _width(self, i: int, idx: np.ndarray) -> float:
        q = self.qis[i]
        if isinstance(q, NumericQI):
            x = self.data[i][idx]
            return float(x.max() - x.min()) / self.spans[i]
        level = self._node_level(i, idx)
        anc = q.hierarchy.ancestors
        node = anc[self.data[i][idx[0]], level]
        return float(np.count_nonzero(anc[:, level] == node) - 1) / self.spans[i]

    def hist(self, part: np.ndarray) -> np.ndarray:
        """Counted records of the part per sensitive value.

        Args:
            part: Row positions of the part.

        Returns:
            Float array of length :attr:`bins`: the summed counted-record weights (1 or 0 per
            row) of the part per sensitive value code.
        """
        return np.bincount(self.codes[part], weights=self.weights[part], minlength=self.bins)

    def _ok(self, part: np.ndarray) -> bool:
        return self.req.ok(self.hist(part))

    # ---------------------------------------------------------------- splits

    def _split_numeric(self, i: int, idx: np.ndarray) -> list[np.ndarray] | None:
        x = self.data[i][idx]
        m = np.partition(x, len(x) // 2)[len(x) // 2]
        best = None
        for left_mask in (x < m, x <= m):
            left, right = idx[left_mask], idx[~left_mask]
            if self._ok(left) and self._ok(right):
                balance = abs(len(left) - len(right))
                if best is None or balance < best[0]:
                    best = (balance, [left, right])
        return None if best is None else best[1]

    def _split_categorical(self, i: int, idx: np.ndarray) -> list[np.ndarray] | None:
        level = self._node_level(i, idx)
        if level == 0:
            return None
        children = self.qis[i].hierarchy.ancestors[self.data[i][idx], level - 1]
        ids, inverse = np.unique(children, return_inverse=True)
        groups = [idx[inverse == j] for j in range(len(ids))]
        large = [g for g in groups if self._ok(g)]
        small = [g for g in groups if not self._ok(g)]
        if small:
            pool = np.concatenate(small)
            if self._ok(pool):
                large.append(pool)
            elif large:
                counted = [self.hist(g).sum() for g in large]
                smallest = min(range(len(large)), key=lambda j: (counted[j], j))
                large[smallest] = np.concatenate([large[smallest], pool])
                if not self._ok(large[smallest]):  # entropy/recursive/t are not
                    return None  # closed under adding arbitrary records
            else:
                return None
        return [np.sort(g) for g in large] if len(large) >= 2 else None

    def _split(self, idx: np.ndarray) -> list[np.ndarray] | None:
        widths = [self._width(i, idx) for i in range(len(self.qis))]
        for i in sorted(range(len(self.qis)), key=lambda j: (-widths[j], j)):
            if widths[i] <= 0:
                break
            split = (
                self._split_numeric(i, idx)
                if isinstance(self.qis[i], NumericQI)
                else self._split_categorical(i, idx)
            )
            if split is not None:
                return split
        return None

    # ---------------------------------------------------------------- output

    def _release(self, idx: np.ndarray, out: list[np.ndarray]) -> None:
        for i, q in enumerate(self.qis):
            if isinstance(q, NumericQI):
                x = self.data[i][idx]
                lo, hi = _fmt(x.min(), q.date), _fmt(x.max(), q.date)
                out[i][idx] = lo if lo == hi else f"[{lo}-{hi}]"
            else:
                level = self._node_level(i, idx)
                node = q.hierarchy.ancestors[self.data[i][idx[0]], level]
                out[i][idx] = q.hierarchy.labels[node]

    def run(self, n: int) -> tuple[list[np.ndarray], int]:
        out = [np.empty(n, dtype=object) for _ in self.qis]
        stack = [np.arange(n)]
        classes = 0
        while stack:
            idx = stack.pop()
            parts = self._split(idx)
            if parts is None:
                self._release(idx, out)
                classes += 1
            else:
                stack.extend(reversed(parts))
        return out, classes


def mondrian(
    df: pd.DataFrame,
    qis: list[QI],
    k: int | Requirement,
    *,
    sensitive: str | None = None,
    l: int = 1,  # noqa: E741 (the letter of the literature)
    domain: list | None = None,
    counted: str | None = None,
) -> Result:
    """k-anonymize the QI columns of ``df``.

    ``k`` is a number (with ``l``: distinct l-diversity over ``sensitive``) or a full
    :class:`Requirement`. ``domain``: the sorted sensitive values when ``df`` is one
    group of a larger partition (t-closeness then needs the requirement's reference
    distribution too). ``counted``: a boolean column; only those records count
    towards the requirement (the others are window rows; they are released too).
    Null numeric QIs, values missing from a hierarchy and bad sensitive values raise
    ValueError (from the kernel).

    Args:
        df: The records (one group, or the whole input).
        qis: The quasi-identifiers, in the order widths are compared on ties.
        k: The minimum class size, or a full requirement.
        sensitive: The sensitive column, needed for l-diversity and t-closeness.
        l: Distinct l-diversity, when ``k`` is a number.
        domain: The sorted sensitive values of the whole partition (default: ``df``'s).
        counted: A boolean column marking the records that count, or None for all.

    Returns:
        The released QI columns as strings, in ``df``'s index and order, with the
        number of classes; when the records as a whole miss the requirement, every QI
        is ``*``, no class is formed and every record counts as suppressed.
    """
    req = k if isinstance(k, Requirement) else Requirement(k, l)
    n = len(df)
    if n == 0:
        return Result(pd.DataFrame({q.name: [] for q in qis}, dtype=object), 0, 0)
    kernel = _Kernel(df, qis, req, sensitive, domain, counted)
    if not kernel._ok(np.arange(n)):
        released = pd.DataFrame({q.name: [SUPPRESSED] * n for q in qis}, index=df.index)
        return Result(released, 0, n)
    columns, classes = kernel.run(n)
    released = pd.DataFrame({q.name: c for q, c in zip(qis, columns, strict=True)}, index=df.index)
    return Result(released, classes, 0)
