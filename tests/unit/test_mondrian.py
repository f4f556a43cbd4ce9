"""Strict Mondrian: k-anonymous, l-diverse and truthful on random data, checked by an
independent verifier; the verifier itself catches planted violations."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.kanon.hierarchy import Hierarchy
from pipelines.kanon.mondrian import CategoricalQI, NumericQI, mondrian
from pipelines.kanon.verify import check
from tests.hierarchies import CITIES, CITY_ROWS

SHARED = Path(__file__).resolve().parents[3] / "shared"
ADULT = SHARED / "data" / "adult"


def table(ages, cities, sick):
    return pd.DataFrame({"age": ages, "city": cities, "sick": sick})


rows = st.lists(
    st.tuples(
        st.integers(0, 40),
        st.sampled_from([r[0] for r in CITY_ROWS]),
        st.sampled_from(["y", "n", "m"]),
    ),
    min_size=0,
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(rows, st.integers(1, 8))
def test_output_is_k_anonymous_and_truthful(data, k):
    df = table(*zip(*data, strict=True)) if data else table([], [], [])
    res = mondrian(df, [NumericQI("age"), CategoricalQI("city", CITIES)], k)
    report = check(df, res.released, numeric=["age"], hierarchies={"city": CITY_ROWS}, k=k,
                   max_suppressed=1.0 if len(df) < k else 0.0)  # fmt: skip
    assert report.violations == []
    assert res.suppressed == (len(df) if 0 < len(df) < k else 0)
    if len(df) >= k:
        assert report.k >= k and report.classes == res.classes


@settings(max_examples=80, deadline=None)
@given(rows, st.integers(1, 5), st.integers(1, 3))
def test_l_diversity_holds_when_feasible(data, k, l):  # noqa: E741
    df = table(*zip(*data, strict=True)) if data else table([], [], [])
    res = mondrian(df, [NumericQI("age"), CategoricalQI("city", CITIES)], k, sensitive="sick", l=l)
    report = check(df, res.released, numeric=["age"], hierarchies={"city": CITY_ROWS}, k=k,
                   sensitive="sick", l=l, max_suppressed=1.0)  # fmt: skip
    assert report.violations == []
    if res.suppressed == 0 and len(df):
        assert report.l >= l


@settings(max_examples=40, deadline=None)
@given(rows.filter(lambda r: len(r) > 10), st.integers(1, 5), st.randoms())
def test_deterministic_whatever_the_row_order(data, k, rnd):
    df = table(*zip(*data, strict=True))
    qis = [NumericQI("age"), CategoricalQI("city", CITIES)]
    a = mondrian(df, qis, k).released
    order = list(range(len(df)))
    rnd.shuffle(order)
    b = mondrian(df.iloc[order], qis, k).released.sort_index()
    pd.testing.assert_frame_equal(a, b)


def test_releases_ranges_and_hierarchy_nodes():
    df = table([20, 21, 22, 23, 50, 51, 52, 53], ["berlin", "kiel"] * 2 + ["ulm", "munich"] * 2,
               ["y"] * 8)  # fmt: skip
    res = mondrian(df, [NumericQI("age"), CategoricalQI("city", CITIES)], 4)
    assert res.classes == 2
    assert sorted(set(map(tuple, res.released.to_numpy()))) == [
        ("[20-23]", "north"),
        ("[50-53]", "south"),
    ]


def test_checker_catches_planted_violations():
    df = table([20, 21, 22, 23], ["berlin", "kiel", "ulm", "munich"], ["y", "y", "n", "n"])
    good = pd.DataFrame({"age": ["[20-23]"] * 4, "city": ["*"] * 4})
    assert check(df, good, numeric=["age"], hierarchies={"city": CITY_ROWS}, k=4).violations == []
    small = pd.DataFrame({"age": ["[20-21]"] * 2 + ["[22-23]"] * 2, "city": ["*"] * 4})
    assert check(df, small, numeric=["age"], hierarchies={"city": CITY_ROWS}, k=3).k == 2
    wrong = pd.DataFrame({"age": ["[20-22]"] * 4, "city": ["north", "north", "*", "*"]})
    report = check(df, wrong, numeric=["age"], hierarchies={"city": CITY_ROWS}, k=2)
    assert report.untruthful == {"age": 1, "city": 0}
    wrong_city = pd.DataFrame({"age": ["[20-23]"] * 4, "city": ["south"] * 4})
    report = check(df, wrong_city, numeric=["age"], hierarchies={"city": CITY_ROWS}, k=4)
    assert report.untruthful["city"] == 2 and any("truthfulness" in v for v in report.violations)
    l_bad = pd.DataFrame({"age": ["[20-21]"] * 2 + ["[22-23]"] * 2, "city": ["*"] * 4})
    report = check(df, l_bad, numeric=["age"], hierarchies={"city": CITY_ROWS}, k=2,
                   sensitive="sick", l=2)  # fmt: skip
    assert report.l == 1 and any(v.startswith("l:") for v in report.violations)


def test_unknown_category_names_the_column_not_the_value():
    df = table([1, 2], ["berlin", "secret-town"], ["y", "n"])
    with pytest.raises(ValueError, match=r"quasi_identifiers\.city") as err:
        mondrian(df, [CategoricalQI("city", CITIES)], 1)
    assert "secret-town" not in str(err.value)


def adult():
    """Adult as strings, its hierarchy rows per categorical QI, and the kernel's QIs."""
    df = pd.read_csv(ADULT / "adult.csv", sep=";", dtype=str, keep_default_na=False)
    cats = ["sex", "race", "marital-status", "education", "native-country", "workclass",
            "occupation"]  # fmt: skip
    rows_of = {}
    for c in cats:
        with open(ADULT / f"adult_hierarchy_{c}.csv", newline="") as fh:
            rows_of[c] = list(csv.reader(fh, delimiter=";"))
    qis = [NumericQI("age")] + [CategoricalQI(c, Hierarchy.from_rows(c, rows_of[c])) for c in cats]
    return df, rows_of, qis


@pytest.mark.skipif(not ADULT.is_dir(), reason="../shared/data/adult is absent (benchmark data)")
def test_adult_k10_is_verified_and_generalizes_little():
    df, rows_of, qis = adult()
    res = mondrian(df, qis, 10, sensitive="salary-class", l=1)
    report = check(df, res.released, numeric=["age"], hierarchies=rows_of, k=10)
    assert report.violations == [] and report.suppressed == 0
    # Utility: most records keep their exact sex and race; classes stay small.
    assert (res.released["sex"] == df["sex"]).mean() > 0.9
    assert report.class_sizes["median"] < 20 and np.isfinite(report.class_sizes["mean"])


@settings(max_examples=60, deadline=None)
@given(rows.filter(lambda r: len(r) >= 3), st.integers(1, 6))
def test_checker_agrees_with_pycanon(data, k):
    """pycanon (a separate, published implementation) computes the same k and l."""
    anonymity = pytest.importorskip("pycanon.anonymity", reason="pycanon is installed by make")
    df = table(*zip(*data, strict=True))
    res = mondrian(df, [NumericQI("age"), CategoricalQI("city", CITIES)], min(k, len(df)))
    released = res.released.assign(sick=df["sick"].to_numpy())
    report = check(df, res.released, numeric=["age"], hierarchies={"city": CITY_ROWS}, k=1,
                   sensitive="sick")  # fmt: skip
    assert report.k == anonymity.k_anonymity(released, ["age", "city"])
    assert report.l == anonymity.l_diversity(released, ["age", "city"], ["sick"])
    # and on an unanonymized table, where classes are arbitrary
    assert check(df, df.astype(str), numeric=["age"], hierarchies={"city": CITY_ROWS}, k=1,
                 sensitive="sick").k == anonymity.k_anonymity(df, ["age", "city"])  # fmt: skip


@pytest.mark.skipif(not ADULT.is_dir(), reason="../shared (Adult data, kanon_peers.py) is absent")
def test_metrics_match_the_peer_measurement_script(tmp_path):
    """Our GCP, DM and class counts equal shared/bench/peers/kanon_peers.py's on Adult."""
    import json
    import subprocess
    import sys

    from pipelines.kanon.metrics import measure

    df, rows_of, qis = adult()
    res = mondrian(df, qis, 10)
    out = df.copy()
    for q in qis:
        out[q.name] = res.released[q.name]
    path = tmp_path / "k10.csv"
    out.to_csv(path, sep=";", index=False)
    ours = measure(df, res.released, numeric=["age"], hierarchies=rows_of)
    peer = json.loads(
        subprocess.run(
            [sys.executable, str(SHARED / "bench" / "peers" / "kanon_peers.py"),
             str(ADULT / "adult.csv"), str(path), "--qi", ",".join(q.name for q in qis),
             "--hierarchies", str(ADULT), "--k", "10", "--no-pycanon"],
            capture_output=True, text=True, check=True, timeout=300,
        ).stdout
    )  # fmt: skip
    assert ours["gcp"] == pytest.approx(peer["gcp"], abs=1e-9)
    assert ours["discernibility"] == pytest.approx(peer["dm"])
    assert ours["classes"] == peer["ec_count"]
    assert ours["prosecutor_risk"]["highest"] == pytest.approx(1 / 10, abs=0.1)
