"""pyspark and pyspark-client are one version: Python and pandas UDFs construct and run."""

from __future__ import annotations

from importlib.metadata import version

import pandas as pd
from pyspark.sql import functions as F


def test_pyspark_and_client_versions_match():
    assert version("pyspark") == version("pyspark-client")
    import pyspark

    assert pyspark.__version__ == version("pyspark")


def test_pandas_is_pinned_below_3():
    assert int(pd.__version__.split(".")[0]) == 2


def test_pandas_udf_and_apply_in_pandas_run(spark):
    @F.pandas_udf("long")
    def plus_one(s: pd.Series) -> pd.Series:
        return s + 1

    df = spark.range(10).withColumn("g", F.col("id") % 2)
    assert [r[0] for r in df.select(plus_one("id")).orderBy(1).collect()] == list(range(1, 11))

    def total(pdf: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"g": [pdf.g.iloc[0]], "s": [pdf.id.sum()]})

    sums = {r.g: r.s for r in df.groupBy("g").applyInPandas(total, "g long, s long").collect()}
    assert sums == {0: 20, 1: 25}
