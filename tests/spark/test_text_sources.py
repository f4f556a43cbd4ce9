"""CSV sources: read with the spec's declared types, records spanning lines parsed as
one, and rows that do not parse counted by the input gate, never published."""

from __future__ import annotations

import json
import uuid

import pytest

from pipelines.errors import QualityGateFailed
from pipelines.runner import run_partition
from pipelines.spec import spec_from_dict
from tests.specs import spec_data


def csv_source(warehouse, text: str, day: str = "2026-11-25") -> str:
    name = f"c{uuid.uuid4().hex[:8]}"
    part = warehouse / name / "raw" / f"dt={day}"
    part.mkdir(parents=True)
    (part / "part-0.csv").write_text(text)
    return name


def make(name: str, columns: dict, **over):
    return spec_from_dict(spec_data(columns, source={"path": f"{name}/raw", "format": "csv"},
                                    sink={"path": f"{name}/anon"}, **over))  # fmt: skip


def test_a_quoted_newline_is_one_record_not_an_invented_row(spark, warehouse, key_env):
    """The reported case: the published amount held `Jane Q Private"` and a unit `x` appeared."""
    name = csv_source(warehouse, 'uid,note,amount\np1,"first line\nx,y,Jane Q Private",5\n'
                                 'p2,plain,7\n')  # fmt: skip
    columns = {"uid": {"kind": "keep"}, "note": {"kind": "redact"},
               "amount": {"kind": "keep", "type": "double"}}  # fmt: skip
    res = run_partition(make(name, columns), "2026-11-25")
    rows = sorted(map(tuple, spark.read.parquet(res.published).collect()))
    assert rows == [("p1", "[REDACTED]", 5.0), ("p2", "[REDACTED]", 7.0)]
    assert (res.input_rows, res.output_rows) == (2, 2)
    assert "Jane" not in (warehouse / name / "anon").joinpath(
        "dt=2026-11-25", "_manifest.json").read_text()  # fmt: skip


def test_columns_are_typed_by_the_spec_one_numeric_one_kept_as_text(spark, warehouse, key_env):
    name = csv_source(warehouse, "uid,zip,amount\np1,01234,10.5\np2,98765,20\n")
    columns = {"uid": {"kind": "hash"},
               "zip": {"kind": "generalize", "method": "prefix", "length": 3, "type": "string"},
               "amount": {"kind": "noise", "max_abs": 1.0, "round": 2, "type": "double"}}  # fmt: skip
    res = run_partition(make(name, columns), "2026-11-25")
    out = {r.zip: r.amount for r in spark.read.parquet(res.published).collect()}
    assert set(out) == {"012", "987"}  # the leading zero kept: read as a string
    assert abs(out["012"] - 10.5) <= 1.0 and abs(out["987"] - 20.0) <= 1.0
    assert all(round(v, 2) == v for v in out.values())  # noise rounded to 2 decimals
    assert res.record.output_schema["amount"] == "double"


def test_rows_that_do_not_parse_fail_the_input_gate_with_a_count(spark, warehouse, key_env):
    name = csv_source(warehouse, "uid,amount\np1,5\np2,Jane Q Private\np3,12,34\n")
    columns = {"uid": {"kind": "keep"}, "amount": {"kind": "keep", "type": "double"}}
    with pytest.raises(QualityGateFailed, match=r"input.malformed \(2 of 3 values\)") as err:
        run_partition(make(name, columns), "2026-11-25")
    assert "Jane" not in str(err.value)
    assert not (warehouse / name / "anon" / "dt=2026-11-25").exists()
    [note] = (warehouse / name / "anon" / "_quarantine" / "dt=2026-11-25").glob("*/gate.json")
    text = note.read_text()
    assert "Jane" not in text and json.loads(text)["failed_stage"] == "input"
