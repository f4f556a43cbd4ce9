"""What every spec model shares: frozen pydantic models, identifier and type patterns.

Imports only pydantic, so the Airflow DAG processor can parse specs without Spark.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

#: A plain identifier: what Spark SQL accepts unquoted as a column name.
IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"

#: Spark SQL type names a column may declare (checked by the input gate).
SPARK_TYPE = (
    r"^(string|boolean|tinyint|smallint|int|bigint|float|double|date|timestamp|"
    r"timestamp_ntz|binary|decimal\(\d+,\d+\))$"
)


class Frozen(BaseModel):
    """Base of every spec model: immutable, unknown fields rejected, every float finite.

    ``allow_inf_nan=False`` makes ``.inf``, ``-.inf`` and ``.nan`` in YAML an error
    at their path for every float field of every model (an infinite budget would
    otherwise calibrate zero noise); ranges are each field's own constraints.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def plain_key(name: str) -> str:
    """A spec column key for a source column name: a plain ASCII identifier.

    The spec keeps the original in ``source_name``. Used by the spec's own error hint
    and by ``spec suggest`` (one rule, so a hint and a draft agree).

    Args:
        name: The source column's name.

    Returns:
        ``name`` if it is a plain identifier of at most 64 characters, else a sanitized
        one (other characters, non-ASCII letters included, as ``_``; ``c_`` before a
        digit; ``column`` for nothing left).
    """
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
        return name
    plain = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")[:60] or "column"
    return plain if re.match(r"[A-Za-z_]", plain) else f"c_{plain}"
