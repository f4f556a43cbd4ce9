"""Shared fixtures: one local SparkSession for the whole test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TEST_KEY = "test-key-0123456789abcdef-0123456789abcdef"
SHARED = Path(__file__).resolve().parents[2] / "shared"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the shared SparkSession ``spark`` (``-m "not spark"`` skips them)."""
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.spark)


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("warehouse")


@pytest.fixture(scope="session")
def spark(warehouse: Path):
    """local[2], UI off, few shuffle partitions, Hive catalog with Derby in a temp dir."""
    os.environ.setdefault("SPARK_TESTING", "1")
    from pipelines.session import get_session

    session = get_session(
        master="local[2]",
        warehouse=str(warehouse),
        conf={
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.sql.adaptive.enabled": "false",
            # Delta Lake rebuilds a table's snapshot with 50 tasks by default.
            "spark.databricks.delta.snapshotPartitions": "2",
            "spark.sql.sources.parallelPartitionDiscovery.parallelism": "4",
        },
        app_name="pipelines-tests",
    )
    yield session
    session.stop()


@pytest.fixture()
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ANON_TEST_KEY", TEST_KEY)
    return TEST_KEY


def written_besides_leases(root: Path) -> list[Path]:
    """Files under a sink's root other than partition lease files (``_leases/``).

    A run takes its partition's lease (a lock file that is never deleted) before
    anything else, so a run refused before writing leaves only that behind.
    """
    if not root.exists():
        return []
    return [p for p in root.rglob("*") if p.is_file() and "_leases" not in p.parts]
