"""Build specs and apply single actions in tests."""

from __future__ import annotations

import datetime as dt

from pipelines.desensitize import desensitize
from pipelines.keys import resolve_keys
from pipelines.spec import spec_from_dict

PARTITION = dt.date(2026, 11, 25)


def make_spec(columns: dict, **over) -> object:
    data = {
        "version": 1,
        "name": "t",
        "source": {"path": "raw/t"},
        "sink": {"path": "anon/t"},
        "partition_column": "dt",
        "privacy_unit": "uid",
        "keys": {"main": {"env": "ANON_TEST_KEY"}},
        "columns": {"uid": {"kind": "keep"}, **columns},
    }
    data.update(over)
    return spec_from_dict(data)


def apply(spark, rows, ddl: str, columns: dict, partition=PARTITION):
    """Run desensitize over an in-memory frame; returns collected rows (order kept)."""
    df = spark.createDataFrame(rows, ddl)
    spec = make_spec(columns)
    out = desensitize(df, spec, resolve_keys(spec), partition)
    return out.collect()
