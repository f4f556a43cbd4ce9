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


def test_spark_checker_agrees_with_the_pandas_checker_and_catches_violations(spark):
    from pyspark.sql import functions as F

    from pipelines.kanon.verify import check_spark

    pdf = synthetic(1500, seed=3)
    df = spark.createDataFrame(pdf)
    kept = df.select("*", *[F.col(c).alias(f"raw_{c}") for c in ("age", "zip", "city")])
    out = spark_mondrian(kept, QIS, 5, sensitive="sick", l=2, local_rows=400)
    originals = {c: f"raw_{c}" for c in ("age", "zip", "city")}
    args = dict(originals=originals, numeric=["age", "zip"], hierarchies={"city": CITY_ROWS},
                k=5, sensitive="sick", l=2)  # fmt: skip
    report = check_spark(out, **args)
    local = check(pdf, out.toPandas().sort_values("rid").reset_index(drop=True),
                  numeric=["age", "zip"], hierarchies={"city": CITY_ROWS}, k=5,
                  sensitive="sick", l=2)  # fmt: skip
    assert report.violations == [] == local.violations
    assert (report.k, report.l, report.classes) == (local.k, local.l, local.classes)
    # Planted: one record's age range no longer covers it, one city label is wrong,
    # and one record gets a unique tuple (a class of 1).
    bad = out.withColumn(
        "age", F.when(F.col("rid") == 0, F.lit("[200-300]")).otherwise(F.col("age"))
    ).withColumn(
        "city", F.when(F.col("rid") == 1, F.lit("nowhere")).otherwise(F.col("city"))
    )
    report = check_spark(bad, **args)
    assert report.untruthful == {"age": 1, "zip": 0, "city": 1}
    assert report.k == 1 and any(v.startswith("k:") for v in report.violations)
