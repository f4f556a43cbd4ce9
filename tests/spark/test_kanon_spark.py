"""Distributed Mondrian: Spark top splits + applyInPandas finish, checked independently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.kanon.mondrian import CategoricalQI, NumericQI, mondrian
from pipelines.kanon.spark import spark_mondrian
from pipelines.kanon.verify import check
from tests.unit.test_mondrian import CITIES, CITY_ROWS


def synthetic(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "rid": np.arange(n, dtype=np.int64),
            "age": rng.integers(18, 90, n),
            "zip": rng.integers(10000, 10400, n),
            "city": rng.choice([r[0] for r in CITY_ROWS], n),
            "sick": rng.choice(["y", "n", "m"], n),
        }
    )


QIS = [NumericQI("age"), NumericQI("zip"), CategoricalQI("city", CITIES)]


@pytest.mark.parametrize(("k", "l", "local_rows"), [(5, 1, 300), (10, 2, 500), (3, 1, 10**9)])
def test_spark_mondrian_is_k_anonymous_truthful_and_splits_in_spark(spark, k, l, local_rows):  # noqa: E741
    pdf = synthetic(4000)
    df = spark.createDataFrame(pdf).repartition(3)
    out = spark_mondrian(df, QIS, k, sensitive="sick", l=l, local_rows=local_rows)
    assert out.columns == list(pdf.columns)
    got = out.toPandas().sort_values("rid").reset_index(drop=True)
    assert len(got) == len(pdf) and (got["rid"].to_numpy() == pdf["rid"].to_numpy()).all()
    assert (got["sick"] == pdf["sick"]).all()  # non-QI columns untouched
    report = check(pdf, got, numeric=["age", "zip"], hierarchies={"city": CITY_ROWS}, k=k,
                   sensitive="sick", l=l)  # fmt: skip
    assert report.violations == [] and report.suppressed == 0
    # Utility stays close to the single-machine kernel's (classes of similar size).
    local = mondrian(pdf, QIS, k, sensitive="sick", l=l)
    assert report.classes >= 0.7 * local.classes


def test_spark_mondrian_suppresses_an_input_smaller_than_k(spark):
    df = spark.createDataFrame(synthetic(4))
    got = spark_mondrian(df, QIS, 5).toPandas()
    assert (got[["age", "zip", "city"]] == "*").all().all() and len(got) == 4


def test_spark_phase_does_not_collect_records(spark, monkeypatch):
    """With a tiny local_rows, several Spark rounds run; the driver sees only stats."""
    import pipelines.kanon.spark as ks

    calls = []
    real = ks._apply_splits

    def counting(*args, **kwargs):
        calls.append(len(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(ks, "_apply_splits", counting)
    df = spark.createDataFrame(synthetic(3000))
    out = spark_mondrian(df, QIS, 5, local_rows=200)
    assert len(calls) >= 3 and out.count() == 3000
