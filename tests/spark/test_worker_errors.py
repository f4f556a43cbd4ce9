"""Errors raised inside Spark Python workers reach the user as the driver would raise
them: the same one-line message and exit code, no JVM frames, no cell values."""

from __future__ import annotations

import uuid

import pytest
import yaml
from typer.testing import CliRunner

from pipelines.errors import InternalError, SpecError, driver_errors, from_worker
from tests.hierarchies import CITY_ROWS
from tests.specs import spec_data


def raising(error: Exception):
    def in_worker(batches):
        for batch in batches:
            raise error
            yield batch

    return in_worker


@pytest.mark.parametrize("error", [
    SpecError("columns.x: a message\non two lines"),
    InternalError("an invariant broke"),
], ids=["spec", "internal"])  # fmt: skip
def test_an_error_of_ours_in_map_in_pandas_is_rebuilt_on_the_driver(spark, error):
    with pytest.raises(type(error)) as caught, driver_errors():
        spark.range(3).mapInPandas(raising(error), "id long").collect()
    assert str(caught.value) == str(error)  # no traceback, no JVM frames
    assert caught.value.exit_code == error.exit_code


def test_an_error_that_is_not_ours_passes_through_unchanged(spark):
    with pytest.raises(Exception) as caught, driver_errors():
        spark.range(3).mapInPandas(raising(KeyError("x")), "id long").collect()
    assert "KeyError" in str(caught.value) and from_worker(caught.value) is caught.value


def test_a_qi_value_missing_from_its_hierarchy_is_exit_3_naming_the_column(spark, warehouse,
                                                                         key_env, tmp_path):  # fmt: skip
    """The reported case: a blank city ended as `kanon failed: PythonException`, exit 1."""
    from pipelines.cli import app

    hier = tmp_path / "city.csv"
    hier.write_text("\n".join(";".join(r) for r in CITY_ROWS) + "\n")
    name = f"w{uuid.uuid4().hex[:8]}"
    cities = [r[0] for r in CITY_ROWS]
    rows = [(f"u{i}", cities[i % 6] if i != 7 else " ", "2026-11-20") for i in range(60)]
    spark.createDataFrame(rows, "uid string, city string, dt string").write.partitionBy("dt") \
        .parquet(str(warehouse / name / "raw"))  # fmt: skip
    ka = {"k": 3, "quasi_identifiers": {"city": {"type": "categorical", "hierarchy": str(hier)}}}
    spec = spec_data({"uid": {"kind": "hash"}, "city": {"kind": "keep"}}, k_anonymity=ka,
                     source={"path": str(warehouse / name / "raw")},
                     sink={"path": str(warehouse / name / "anon")})  # fmt: skip
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    for command in (["run"], ["kanon"]):
        res = CliRunner().invoke(app, [*command, str(spec_file), "--partition", "2026-11-20"])
        assert res.exit_code == 3, res.output
        errors = [line for line in res.output.splitlines() if line.startswith("error")]
        assert len(errors) == 1 and "k_anonymity.quasi_identifiers.city: 1 distinct value(s) are " \
            "not in the hierarchy city.csv" in errors[0]  # fmt: skip
        assert "Traceback" not in res.output and "at org.apache" not in res.output
    assert not (warehouse / name / "anon" / "dt=2026-11-20").exists()
