"""The one base spec document the tests vary (no Spark import)."""

from __future__ import annotations


def spec_data(columns: dict, /, **over) -> dict:
    """A valid spec document with ``columns``; any top-level field (``columns`` too) can be
    overridden through ``over``."""
    data = {
        "version": 1,
        "name": "t",
        "source": {"path": "raw/t"},
        "sink": {"path": "anon/t"},
        "partition_column": "dt",
        "privacy_unit": "uid",
        "keys": {"main": {"env": "ANON_TEST_KEY"}},
        "columns": columns,
    }
    data.update(over)
    return data
