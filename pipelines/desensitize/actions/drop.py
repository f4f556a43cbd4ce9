"""``drop``: the column is removed from the output."""

from __future__ import annotations

from typing import ClassVar, Literal

from pipelines.desensitize.operator import ActionSpec, Operator


class DropSpec(ActionSpec):
    """Remove the column from the output."""

    publishes: ClassVar[bool] = False
    kind: Literal["drop"]


class DropOperator(Operator, spec=DropSpec):
    """Publishes nothing: the column is not part of the output contract."""

    label = "Dropped"
