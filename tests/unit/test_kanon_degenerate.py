"""Utility metrics on degenerate domains, against the documented definition.

A released cell standing for ``cover`` of |dom| original values costs
(cover − 1)/(|dom| − 1); ``*`` costs 1, also when |dom| = 1; NCP = mean over N cells,
GCP = mean over the QIs' NCPs; with N = 0 they are undefined (None).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipelines.kanon.metrics import cell_cost, measure

CASES = {
    # name: (original ages, released ages, NCP, dm_normalized)
    "one distinct value, released": ([40] * 10, ["40"] * 10, 0.0, 1.0),
    "one distinct value, all suppressed": ([40] * 10, ["*"] * 10, 1.0, 1.0),
    "one row, suppressed": ([33], ["*"], 1.0, 1.0),
    "one row, released": ([33], ["33"], 0.0, 1.0),
    "two values, one range": ([20, 30, 20, 30], ["[20-30]"] * 4, 1.0, 1.0),
    "two values, exact": ([20, 30, 20, 30], ["20", "30", "20", "30"], 0.0, 0.5),
    "three values, half suppressed": ([1, 2, 3, 1], ["*", "*", "[1-2]", "[1-2]"], 0.75, 0.75),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_ncp_gcp_and_discernibility_follow_the_definition(name):
    ages, released, ncp, dm = CASES[name]
    m = measure(pd.DataFrame({"age": ages}), pd.DataFrame({"age": released}),
                numeric=["age"], hierarchies={})  # fmt: skip
    assert m["ncp"]["age"] == pytest.approx(ncp)
    assert m["gcp"] == pytest.approx(ncp)
    assert m["dm_normalized"] == pytest.approx(dm)


def test_suppressed_categorical_cells_cost_one_even_with_one_value():
    rows = [["berlin", "north", "*"]]
    m = measure(pd.DataFrame({"city": ["berlin"] * 4}), pd.DataFrame({"city": ["*"] * 4}),
                numeric=[], hierarchies={"city": rows})  # fmt: skip
    assert m["ncp"] == {"city": 1.0} and m["gcp"] == 1.0 and m["suppressed"] == 4


def test_an_empty_partition_has_undefined_metrics_written_as_null():
    m = measure(pd.DataFrame({"age": []}), pd.DataFrame({"age": []}), numeric=["age"],
                hierarchies={})  # fmt: skip
    assert m["ncp"] == {"age": None} and m["gcp"] is None and m["dm_normalized"] is None
    assert json.loads(json.dumps(m, allow_nan=False))["gcp"] is None  # strict JSON holds


def test_cell_cost_table():
    assert [cell_cost(True, 1, 1), cell_cost(False, 1, 1), cell_cost(False, 3, 5),
            cell_cost(True, 5, 5)] == [1.0, 0.0, 0.5, 1.0]  # fmt: skip
