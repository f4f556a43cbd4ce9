"""Pipeline specs: pydantic models and the YAML loader. Imports no Spark.

Rooms: ``base`` (frozen model base, patterns), ``tables`` (table and key
references), ``quality``, ``kanon``, ``dp``, ``schedule`` (the blocks of a spec),
``models`` (the whole spec and its cross-field checks; the column actions come from
:mod:`pipelines.desensitize.actions`) and ``loader`` (YAML with errors naming the
path and line).

The names below resolve lazily, so importing one block (say ``pipelines.spec.base``
from an action module) does not import the whole spec.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PipelineSpec", "json_schema", "load_spec", "spec_from_dict", "spec_hash"]


def __getattr__(name: str) -> Any:
    """Import the loader's and models' public names on first use.

    Args:
        name: The attribute looked up on ``pipelines.spec``.

    Returns:
        :class:`~pipelines.spec.models.PipelineSpec`, or the loader's attribute of that
        name.

    Raises:
        AttributeError: ``name`` is not one of the package's public names.
    """
    if name == "PipelineSpec":
        from pipelines.spec.models import PipelineSpec

        return PipelineSpec
    if name in __all__:
        from pipelines.spec import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'pipelines.spec' has no attribute {name!r}")
