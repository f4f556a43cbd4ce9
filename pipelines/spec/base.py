"""What every spec model shares: frozen pydantic models, identifier and type patterns.

Imports only pydantic, so the Airflow DAG processor can parse specs without Spark.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

#: A plain identifier: what Spark SQL accepts unquoted as a column name.
IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"

#: Spark SQL type names a column may declare (checked by the input gate).
SPARK_TYPE = (
    r"^(string|boolean|tinyint|smallint|int|bigint|float|double|date|timestamp|"
    r"timestamp_ntz|binary|decimal\(\d+,\d+\))$"
)


class Frozen(BaseModel):
    """Base of every spec model: immutable, and unknown fields are rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")
