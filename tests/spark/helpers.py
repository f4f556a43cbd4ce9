"""Build specs and apply single actions in tests."""

from __future__ import annotations

import datetime as dt

from pipelines.desensitize import desensitize
from pipelines.keys import resolve_keys
from pipelines.spec import spec_from_dict
from tests.specs import spec_data

PARTITION = dt.date(2026, 11, 25)


def make_spec(columns: dict, **over) -> object:
    return spec_from_dict(spec_data({"uid": {"kind": "keep"}, **columns}, **over))


def apply(spark, rows, ddl: str, columns: dict, partition=PARTITION):
    """Run desensitize over an in-memory frame; returns collected rows (order kept)."""
    df = spark.createDataFrame(rows, ddl)
    spec = make_spec(columns)
    out = desensitize(df, spec, resolve_keys(spec), partition)
    return out.collect()
