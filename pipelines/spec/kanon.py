"""The ``k_anonymity`` block: quasi-identifiers, k, l-diversity, t-closeness."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from pipelines.spec.base import Frozen


class NumericQI(Frozen):
    """A numeric quasi-identifier, released as the range ``[lo-hi]`` of its class."""

    type: Literal["numeric"]


class CategoricalQI(Frozen):
    """A categorical quasi-identifier, released as a node of its hierarchy.

    The node is the lowest one covering the class. Hierarchy file: ARX CSV
    (``;``-separated, no header, raw value first, root last).
    """

    type: Literal["categorical"]
    hierarchy: str = Field(description="Hierarchy CSV path (relative: to the working dir).")


class DateQI(Frozen):
    """A date quasi-identifier, released as ``[YYYY-MM-DD-YYYY-MM-DD]`` (or one date)."""

    type: Literal["date"]


QuasiIdentifier = Annotated[NumericQI | DateQI | CategoricalQI, Field(discriminator="type")]


class LDiversity(Frozen):
    """l-diversity of the sensitive column in every class (Machanavajjhala et al. 2007).

    ``distinct``: at least ``l`` distinct values. ``entropy``: −Σ p·ln p ≥ ln l.
    ``recursive`` (c,l): with value counts r₁ ≥ r₂ ≥ … ≥ r_m, r₁ < c·(r_l + … + r_m).
    """

    l: int = Field(ge=2)  # noqa: E741
    kind: Literal["distinct", "entropy", "recursive"] = "distinct"
    c: float | None = Field(None, gt=0, description="The c of recursive (c,l)-diversity.")


class TCloseness(Frozen):
    """t-closeness (Li, Li, Venkatasubramanian 2007).

    Every class's sensitive distribution p lies within Earth Mover's Distance ``t``
    of the whole partition's distribution q.

    ``equal``: D = ½·Σ|pᵢ − qᵢ| (categorical). ``ordered``: D = Σᵢ|Σ_{j≤i}(pⱼ − qⱼ)|/(m − 1)
    over the m values in the column's natural sort order (numeric).
    """

    t: float = Field(gt=0, le=1)
    distance: Literal["equal", "ordered"] = "equal"


class KAnonymity(Frozen):
    """Strict Mondrian over the published quasi-identifier columns (see README)."""

    k: int = Field(ge=2)
    quasi_identifiers: dict[str, QuasiIdentifier] = Field(min_length=1)
    sensitive: str | None = None
    l_diversity: LDiversity | None = None
    t_closeness: TCloseness | None = None
    max_suppression: float = Field(0.0, ge=0, le=1)
    window: int = Field(
        1,
        ge=1,
        le=366,
        description="Anonymize the last N source partitions together, publish the current one.",
    )
    local_rows: int = Field(200_000, ge=1000, description="Largest group finished locally.")


def kanon_problems(ka: KAnonymity, published: dict[str, str]) -> list[tuple[str, str]]:
    """Cross-field checks of the block against the published columns.

    Args:
        ka: The validated block.
        published: Published column name -> source column name.

    Returns:
        ``[(spec path, message), ...]``, empty when the block is consistent.
    """
    problems = []
    for name in ka.quasi_identifiers:
        if name not in published:
            problems.append(
                (f"k_anonymity.quasi_identifiers.{name}", f"'{name}' is not a published column")
            )
    if ka.sensitive is not None:
        if ka.sensitive not in published:
            problems.append(
                ("k_anonymity.sensitive", f"'{ka.sensitive}' is not a published column")
            )
        elif ka.sensitive in ka.quasi_identifiers:
            problems.append(("k_anonymity.sensitive", "the sensitive column cannot be a QI"))
    for block in ("l_diversity", "t_closeness"):
        if getattr(ka, block) is not None and ka.sensitive is None:
            problems.append((f"k_anonymity.{block}", "needs k_anonymity.sensitive"))
    ld = ka.l_diversity
    if ld is not None and (ld.kind == "recursive") != (ld.c is not None):
        problems.append(
            (
                "k_anonymity.l_diversity.c",
                "recursive (c,l)-diversity needs c (e.g. c: 3); other kinds take no c",
            )
        )
    return problems
