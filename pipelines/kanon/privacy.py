"""The privacy requirement a Mondrian part must meet, evaluated on a histogram.

A part is described by ``hist``: how many of its *counted* records hold each
sensitive value (value codes 0..m−1 in the column's sort order; one bin when no
sensitive column is configured). Counted records are the partition being released;
rows of earlier partitions in a window shape the splits but do not count.

With n = Σ hist and p = hist / n (the part's distribution), q the whole partition's:

* k-anonymity: n ≥ k.
* distinct l-diversity: at least l values with p > 0.
* entropy l-diversity: −Σ p·ln p ≥ ln l.
* recursive (c,l)-diversity: with counts sorted r₁ ≥ r₂ ≥ … ≥ r_m,
  r₁ < c·(r_l + r_{l+1} + … + r_m).
* t-closeness, equal distance (categorical): ½·Σ|pᵢ − qᵢ| ≤ t.
* t-closeness, ordered distance (numeric): Σ_{i=1..m} |Σ_{j≤i}(pⱼ − qⱼ)| / (m − 1) ≤ t.

All of them hold for the union of two parts that meet them (Machanavajjhala et al.
2007, Li et al. 2007: the EMD of a mixture is at most the larger EMD), which is what
lets Mondrian stop at the first part that cannot be split. A small tolerance (1e-9)
absorbs floating-point rounding in the entropy and distances.

Both producers (the local kernel and the Spark split chooser) use this class; the
checker in :mod:`pipelines.kanon.verify` recomputes every measure on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-9


@dataclass(frozen=True)
class Requirement:
    """k plus optional l-diversity and t-closeness, as in the spec's k_anonymity block."""

    k: int
    l: int = 1  # noqa: E741
    l_kind: str = "distinct"
    c: float | None = None
    t: float | None = None
    ordered: bool = False
    reference: tuple[float, ...] = ()  # q: the whole partition's distribution

    def __post_init__(self) -> None:
        if self.k < 1 or self.l < 1:
            raise ValueError("k and l must be at least 1")
        if self.l_kind not in ("distinct", "entropy", "recursive"):
            raise ValueError(f"unknown l-diversity kind {self.l_kind!r}")
        if self.l_kind == "recursive" and self.l > 1 and self.c is None:
            raise ValueError("recursive (c,l)-diversity needs c")

    @property
    def needs_sensitive(self) -> bool:
        """Whether l-diversity or t-closeness is asked (both need a sensitive column)."""
        return self.l > 1 or self.t is not None

    def with_reference(self, hist: np.ndarray) -> Requirement:
        """The same requirement with q taken from the whole partition's histogram.

        Args:
            hist: Counted records per sensitive value code over the whole partition.

        Returns:
            A copy whose :attr:`reference` is ``hist / Σ hist`` (empty when the sum is 0).
        """
        total = float(hist.sum())
        q = tuple(float(x) / total for x in hist) if total else ()
        return Requirement(self.k, self.l, self.l_kind, self.c, self.t, self.ordered, q)

    def ok(self, hist: np.ndarray) -> bool:
        """Whether a part with this histogram of counted records meets the requirement.

        Args:
            hist: Counted records of the part per sensitive value code (one bin without a
                sensitive column).

        Returns:
            True if the part meets k, then l-diversity and t-closeness where asked.

        Raises:
            ValueError: t-closeness is asked but no reference distribution was set (see
                :meth:`with_reference`).
        """
        n = float(hist.sum())
        if n < self.k:
            return False
        if self.l > 1 and not self._diverse(hist, n):
            return False
        if self.t is not None:
            if not self.reference:
                raise ValueError("t-closeness needs the reference distribution (with_reference)")
            return distance(hist / n, np.asarray(self.reference), self.ordered) <= self.t + EPS
        return True

    def _diverse(self, hist: np.ndarray, n: float) -> bool:
        present = hist[hist > 0]
        if len(present) < self.l:
            return False
        if self.l_kind == "entropy":
            p = present / n
            return float(-(p * np.log(p)).sum()) >= np.log(self.l) - EPS
        if self.l_kind == "recursive":
            r = np.sort(present)[::-1]
            return float(r[0]) < self.c * float(r[self.l - 1 :].sum())
        return True


def distance(p: np.ndarray, q: np.ndarray, ordered: bool) -> float:
    """Earth Mover's Distance between two distributions over the same m values.

    Args:
        p: A distribution over the m value codes (sums to 1).
        q: The reference distribution over the same codes.
        ordered: Use the ordered distance (numeric values, in code order):
            Σ_i |Σ_{j≤i}(pⱼ − qⱼ)| / (m − 1); else the equal distance ½·Σ|pᵢ − qᵢ|.

    Returns:
        The distance, in [0, 1].
    """
    if ordered:
        m = len(p)
        return float(np.abs(np.cumsum(p - q)).sum() / (m - 1)) if m > 1 else 0.0
    return float(np.abs(p - q).sum() / 2)
