"""Build specs and apply single actions in tests."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from pipelines.desensitize.transform import with_desensitized
from pipelines.partition import Partition
from pipelines.plan import compile_plan
from pipelines.spec import spec_from_dict
from tests.specs import spec_data

PARTITION = dt.date(2026, 11, 25)


def make_spec(columns: dict, **over) -> object:
    return spec_from_dict(spec_data({"uid": {"kind": "keep"}, **columns}, **over))


def desensitized(df, spec, day: dt.date = PARTITION):
    """The desensitize stage of ``spec`` over an in-memory frame (lazy)."""
    plan = compile_plan(spec, Partition(spec.partition_column, day)).bind(df.schema, "test frame")
    return df.transform(with_desensitized(plan))


def apply(spark, rows, ddl: str, columns: dict, partition=PARTITION):
    """Run desensitize over an in-memory frame; returns collected rows (order kept)."""
    df = spark.createDataFrame(rows, ddl)
    return desensitized(df, make_spec(columns), partition).collect()


def digest_tree(root: Path) -> dict[str, str]:
    """Content hash of every file under root (relative path -> sha256)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# The gate tests' table (fixture ``tables`` in conftest): a free-text note column.
GATE_DDL = "uid string, note string, amount double, dt string"
GATE_COLUMNS = {
    "uid": {"kind": "hash", "length": 16},
    # The regex makes the input gate meet the planted PII too (as a warning): GX would
    # list such values as "unexpected" unless the gate suppresses them.
    "note": {"kind": "keep", "expect": {"regex": "order [0-9]+ shipped", "severity": "warning"}},
    "amount": {"kind": "keep"},
}
PLANTED = {
    "email": "jane.roe@corp-mail.example.com",
    "card": "4111 1111 1111 1111",
    "phone": "+44 20 7946 0958",
}


def clean_rows(day: str, n: int) -> list[tuple]:
    """``n`` rows of the gate tests' table without PII."""
    return [(f"u{i % 5}", f"order {i} shipped", float(i), day) for i in range(n)]
