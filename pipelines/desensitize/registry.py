"""The column actions by kind: every module of :mod:`pipelines.desensitize.actions`.

Importing this module imports each action module, which registers its operators
(:class:`~pipelines.desensitize.operator.Operator` subclasses). The spec's
``columns`` union (:data:`ColumnAction`) is built from them: kinds in alphabetical
order, and a kind with several spec models (``generalize``) discriminated by
``method``. No Spark is imported.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Annotated, Any, Union

from pydantic import Field

from pipelines.desensitize import actions
from pipelines.desensitize.operator import OPERATORS, ActionSpec, Operator
from pipelines.errors import InternalError

for _module in sorted(m.name for m in pkgutil.iter_modules(actions.__path__)):
    importlib.import_module(f"{actions.__name__}.{_module}")


def _kind(spec: type[ActionSpec]) -> str:
    return spec.model_fields["kind"].annotation.__args__[0]


def _variants(kind: str) -> list[type[ActionSpec]]:
    return [s for s in OPERATORS if _kind(s) == kind]


#: Every action kind users can write, alphabetically.
KINDS: tuple[str, ...] = tuple(sorted({_kind(s) for s in OPERATORS}))

#: Kinds whose action uses a secret.
KEYED_KINDS: tuple[str, ...] = tuple(
    k for k in KINDS if any(OPERATORS[s].keyed for s in _variants(k))
)


def _kind_type(kind: str) -> Any:
    variants = _variants(kind)
    if len(variants) == 1:
        return variants[0]
    return Annotated[Union[tuple(variants)], Field(discriminator="method")]  # noqa: UP007


#: The type of one entry of the spec's ``columns``: a union discriminated by ``kind``.
ColumnAction = Annotated[
    Union[tuple(_kind_type(k) for k in KINDS)],  # noqa: UP007
    Field(discriminator="kind"),
]


def operator_for(column: str, action: ActionSpec) -> Operator:
    """The operator of one column.

    Args:
        column: The source column's name.
        action: Its validated action.

    Returns:
        The registered operator, bound to the column.

    Raises:
        InternalError: No operator is registered for the action's model.
    """
    cls = OPERATORS.get(type(action))
    if cls is None:
        raise InternalError(f"no operator registered for {type(action).__name__}")
    return cls(column, action)


def label(action: ActionSpec) -> str:
    """How DAG docs name the result of an action ("Masked", "Pseudonymized …").

    Args:
        action: A validated action.

    Returns:
        The operator's label.
    """
    return OPERATORS[type(action)].label
