"""How a pipeline's Airflow DAG runs."""

from __future__ import annotations

from pydantic import Field

from pipelines.spec.base import Frozen


class Schedule(Frozen):
    """How the pipeline's Airflow DAG runs (one run per partition day)."""

    cron: str = Field("@daily", description="Airflow schedule (cron or preset).")
    start_date: str = Field("2026-01-01", pattern=r"^\d{4}-\d{2}-\d{2}$")
    catchup: bool = False
    max_active_runs: int = Field(1, ge=1, le=64)
    retries: int = Field(2, ge=0, le=10, description="For transient failures only.")
    retry_delay_minutes: float = Field(5, gt=0)
    source_timeout_minutes: float = Field(
        360, gt=0, description="How long to wait for the source partition."
    )
    spark_conn_id: str = "spark_default"
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description="Spark properties for every spark-submit task (--conf key=value).",
    )
    owner: str = "data-platform"
