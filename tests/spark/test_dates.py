"""Date actions at the edges of the calendar, sentinel dates, and dates held in strings."""

from __future__ import annotations

import datetime as dt
import uuid

import pyarrow.parquet as pq
import pytest

from pipelines.errors import QualityGateFailed
from pipelines.runner import run_partition
from pipelines.spec import spec_from_dict
from tests.spark.helpers import apply
from tests.specs import spec_data

LAST, FIRST = dt.date(9999, 12, 31), dt.date(1, 1, 1)


def source(spark, warehouse, rows, ddl):
    name = f"d{uuid.uuid4().hex[:8]}"
    spark.createDataFrame(rows, ddl).write.partitionBy("dt").parquet(str(warehouse / name / "raw"))
    return name


def test_shifted_dates_never_leave_the_calendar_and_are_counted(spark, warehouse, key_env):
    """9999-12-31 + 30 days used to publish year 10000 (pandas could not read the partition)."""
    rows = [(f"u{i}", LAST - dt.timedelta(days=i % 3), FIRST + dt.timedelta(days=i % 3),
             "2026-11-25") for i in range(120)]  # fmt: skip
    name = source(spark, warehouse, rows, "uid string, late date, early date, dt string")
    columns = {"uid": {"kind": "hash"}, "late": {"kind": "date_shift", "max_days": 30},
               "early": {"kind": "date_shift", "max_days": 30}}  # fmt: skip
    spec = spec_from_dict(spec_data(columns, source={"path": f"{name}/raw"},
                                    sink={"path": f"{name}/anon"}))  # fmt: skip
    res = run_partition(spec, "2026-11-25")
    table = pq.read_table(res.published).to_pandas()  # readable: nothing past 9999 or before 0001
    late = [d for d in table["late"] if d is not None]
    early = [d for d in table["early"] if d is not None]
    assert all(d <= LAST for d in late) and all(d >= FIRST for d in early)
    counts = res.record.action_counts
    # Every unit moves by a non-zero offset: forward ones leave the calendar on the late
    # side, backward ones on the early side (up to the 0-2 days of headroom).
    assert counts["late"]["out_of_range"] == table["late"].isna().sum() > 0
    assert counts["early"]["out_of_range"] == table["early"].isna().sum() > 0
    assert counts["late"]["out_of_range"] + counts["early"]["out_of_range"] >= 100


@pytest.mark.parametrize("mode", ["keep", "null"])
def test_sentinel_dates_are_never_shifted(spark, key_env, mode):
    rows = [("u1", LAST), ("u2", dt.date(1900, 1, 1)), ("u3", dt.date(2020, 6, 15)), ("u4", None)]
    action = {"kind": "date_shift", "max_days": 10, "sentinels": ["9999-12-31", "1900-01-01"],
              "sentinel": mode}  # fmt: skip
    got = {r.uid: r.d for r in apply(spark, rows, "uid string, d date", {"d": action})}
    if mode == "keep":
        assert got["u1"] == LAST and got["u2"] == dt.date(1900, 1, 1)
    else:
        assert got["u1"] is None and got["u2"] is None
    assert got["u3"] != dt.date(2020, 6, 15) and abs((got["u3"] - dt.date(2020, 6, 15)).days) <= 10
    assert got["u4"] is None


def test_timestamps_at_the_edge_stay_in_range(spark, key_env):
    late = dt.datetime(9999, 12, 31, 12, 0)
    rows = [(f"u{i}", late) for i in range(40)]
    got = [r.t for r in apply(spark, rows, "uid string, t timestamp",
                              {"t": {"kind": "date_shift", "max_days": 5}})]  # fmt: skip
    assert any(t is None for t in got) and all(t is None or t <= late for t in got)


def test_date_actions_read_string_dates_with_a_format(spark, key_env):
    rows = [("u1", "1987-04-12", "12.04.1987"), ("u2", None, None)]
    columns = {
        "b": {"kind": "generalize", "method": "age", "format": "yyyy-MM-dd", "rename": "age"},
        "m": {"kind": "generalize", "method": "date", "to": "month", "format": "dd.MM.yyyy"},
    }
    [one, two] = apply(spark, rows, "uid string, b string, m string", columns)
    assert one.age == 39 and one.m == dt.date(1987, 4, 1)  # as of 2026-11-25
    assert two.age is None and two.m is None
    shifted = apply(spark, rows, "uid string, b string, m string", {
        "b": {"kind": "date_shift", "max_days": 3, "format": "yyyy-MM-dd"}, "m": {"kind": "drop"}})
    assert isinstance(shifted[0].b, dt.date) and abs((shifted[0].b - dt.date(1987, 4, 12)).days) <= 3


def test_unparseable_string_dates_fail_the_input_gate_counted(spark, warehouse, key_env):
    rows = [("u1", "1987-04-12", "2026-11-25"), ("u2", "12/04/1987", "2026-11-25"),
            ("u3", "not a date", "2026-11-25"), ("u4", None, "2026-11-25")]  # fmt: skip
    name = source(spark, warehouse, rows, "uid string, b string, dt string")
    columns = {"uid": {"kind": "hash"},
               "b": {"kind": "generalize", "method": "age", "format": "yyyy-MM-dd"}}  # fmt: skip
    spec = spec_from_dict(spec_data(columns, source={"path": f"{name}/raw"},
                                    sink={"path": f"{name}/anon"}))  # fmt: skip
    with pytest.raises(QualityGateFailed, match=r"input.format.b \(observed 2\)"):
        run_partition(spec, "2026-11-25")
    assert not (warehouse / name / "anon" / "dt=2026-11-25").exists()


def test_a_format_on_a_date_column_is_refused_naming_the_column(spark, key_env):
    from pipelines.errors import SpecError

    with pytest.raises(SpecError, match="columns.d.format: a format is for string columns"):
        apply(spark, [("u", dt.date(2020, 1, 1))], "uid string, d date",
              {"d": {"kind": "date_shift", "max_days": 3, "format": "yyyy-MM-dd"}})  # fmt: skip
    with pytest.raises(SpecError, match=r"needs a date or timestamp column.*needs 'format'"):
        apply(spark, [("u", "2020-01-01")], "uid string, d string",
              {"d": {"kind": "date_shift", "max_days": 3}})  # fmt: skip
