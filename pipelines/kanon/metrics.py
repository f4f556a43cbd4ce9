"""Utility and risk of a k-anonymized table (what goes into manifests and reports).

N = records in the original, d = number of QIs, EC = equivalence classes of the
released (non-suppressed) records.

* ``suppressed``: released records whose every QI is ``*``.
* ``classes``, ``class_sizes``: number of ECs; min / median / mean / max size.
* ``discernibility`` (Bayardo & Agrawal 2005): DM = Σ_EC |EC|² + suppressed · N;
  ``dm_normalized`` = DM / N² (1 = one class or everything suppressed).
* ``ncp`` per QI and ``gcp`` (Ghinita et al. 2007, count-based NCP of Iyengar):
  a released cell standing for ``cover`` of the QI's ``|dom|`` distinct original
  values costs (cover − 1) / (|dom| − 1); ``*`` and suppressed cells cost 1. With
  one distinct value (|dom| = 1) a cell that is not ``*`` costs 0 (it loses
  nothing), and ``*`` still costs 1. NCP of a QI = mean over its N cells; GCP =
  mean over all N·d cells; with N = 0 both are undefined and reported as None
  (``null`` in JSON), as is ``dm_normalized``. These are the definitions of
  ``shared/bench/peers/kanon_peers.py`` (a test compares).
* prosecutor re-identification risk (ARX): a released record's risk is 1/|EC|;
  ``highest`` = 1 / smallest EC, ``average`` = mean over released records
  (= classes / released records), ``records_above`` = share of released records
  whose risk exceeds ``threshold``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

_NUM = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"  # as Mondrian prints numbers (repr may use e-05)
_RANGE = re.compile(rf"^\[({_NUM})-({_NUM})\]$")
_DATE_RANGE = re.compile(r"^\[(\d{4}-\d{2}-\d{2})-(\d{4}-\d{2}-\d{2})\]$")
MAX_DOMAIN = 2_000_000  # distinct raw values of one numeric QI held by the cost UDF


def cell_cost(suppressed: bool, cover: int, size: int) -> float:
    """The NCP cost of one released cell (module docstring).

    Args:
        suppressed: The cell is ``*``.
        cover: How many of the QI's distinct original values the cell stands for.
        size: |dom|, the QI's number of distinct original values.

    Returns:
        1 for ``*``; (cover − 1)/(|dom| − 1), or 0 when |dom| ≤ 1.
    """
    if suppressed:
        return 1.0
    return (cover - 1) / (size - 1) if size > 1 else 0.0


def _covers_numeric(cell: str, dom: np.ndarray) -> int:
    m = _RANGE.match(cell)
    if m:
        lo, hi = float(m.group(1)), float(m.group(2))
        return max(1, int(((dom >= lo) & (dom <= hi)).sum()))
    return 1


def measure(
    original: pd.DataFrame,
    released: pd.DataFrame,
    *,
    numeric: list[str],
    hierarchies: dict[str, list[list[str]]],
    risk_threshold: float = 0.2,
) -> dict[str, Any]:
    """Metrics of ``released`` (same rows and order as ``original``).

    The definitions are those of the module docstring.

    Args:
        original: The records before anonymization, with the raw QI columns.
        released: The anonymized records, same rows in the same order; a QI cell is a
            raw value, a ``[lo-hi]`` range, a hierarchy label or ``*``.
        numeric: The numeric QIs (released as ranges).
        hierarchies: Categorical QI -> its hierarchy rows (raw value first, root last).
        risk_threshold: The prosecutor risk above which a record counts in
            ``records_above``.

    Returns:
        ``records``, ``suppressed``, ``classes``, ``class_sizes`` (min, median, mean,
        max), ``discernibility``, ``dm_normalized``, ``ncp`` (QI -> NCP), ``gcp`` and
        ``prosecutor_risk`` (highest, average, threshold, records_above).
    """
    qis = list(numeric) + list(hierarchies)
    n = len(original)
    rel = released[qis].astype(str).reset_index(drop=True)
    suppressed = (rel == "*").all(axis=1)
    kept = rel[~suppressed]
    sizes = kept.groupby(qis, sort=False).size() if len(kept) else pd.Series(dtype=int)
    ncp: dict[str, float | None] = {}
    for col in qis:
        dom_values = original[col].astype(str).unique()
        size = len(dom_values)
        if col in hierarchies:
            leaves_of: dict[str, set[str]] = {}
            for row in hierarchies[col]:
                for label in row:
                    leaves_of.setdefault(label.strip(), set()).add(row[0].strip())
            dom = set(dom_values)
            raw_labels = {row[0].strip() for row in hierarchies[col] if row}

            def cover(cell: str, leaves_of=leaves_of, dom=dom, size=size, raw=raw_labels) -> int:  # noqa: ANN001
                if cell == "*":
                    return size
                if cell in dom and (cell in raw or cell not in leaves_of):
                    return 1
                return max(1, len(leaves_of.get(cell, {cell}) & dom))
        else:
            dom_num = np.sort(pd.to_numeric(pd.Series(dom_values)).to_numpy(dtype=float))

            def cover(cell: str, dom_num=dom_num, size=size) -> int:  # noqa: ANN001
                return size if cell == "*" else _covers_numeric(cell, dom_num)

        counts = rel[col].value_counts()
        cost = sum(cnt * cell_cost(v == "*", cover(v), size) for v, cnt in counts.items())
        ncp[col] = float(cost / n) if n else None
    released_n = int(len(kept))
    if released_n:
        per_record = 1.0 / kept.groupby(qis, sort=False)[qis[0]].transform("size")
    else:
        per_record = pd.Series(dtype=float)
    return {
        "records": n,
        "suppressed": int(suppressed.sum()),
        "classes": int(len(sizes)),
        "class_sizes": {
            "min": int(sizes.min()) if len(sizes) else 0,
            "median": float(sizes.median()) if len(sizes) else 0.0,
            "mean": float(sizes.mean()) if len(sizes) else 0.0,
            "max": int(sizes.max()) if len(sizes) else 0,
        },
        "discernibility": int((sizes.astype(np.int64) ** 2).sum() + int(suppressed.sum()) * n),
        "dm_normalized": float(((sizes.astype(float) ** 2).sum() + suppressed.sum() * n) / n**2)
        if n
        else None,
        "ncp": ncp,
        "gcp": float(np.mean(list(ncp.values())))  # type: ignore[arg-type]
        if ncp and None not in ncp.values()
        else None,
        "prosecutor_risk": {
            "highest": float(1.0 / sizes.min()) if len(sizes) else 0.0,
            "average": float(len(sizes) / released_n) if released_n else 0.0,
            "threshold": risk_threshold,
            "records_above": float((per_record > risk_threshold).mean()) if released_n else 0.0,
        },
    }


def information_loss_spark(
    df: Any,
    *,
    originals: dict[str, str],
    numeric: list[str],
    hierarchies: dict[str, list[list[str]]],
    dates: list[str] = (),
) -> dict[str, Any]:
    """NCP per QI and GCP of a released DataFrame, as :func:`measure` defines them.

    ``df`` holds the released QI columns and each QI's raw value in
    ``originals[qi]``. Costs are computed once per distinct released cell (one per
    class and QI), weighted by its row count. The cover of a range is found by
    binary search in the QI's sorted distinct raw values, which a pandas UDF holds
    (at most ``MAX_DOMAIN`` values); a categorical label's cover is a small table
    built from the hierarchy.

    Args:
        df: The released rows, with the raw QI values alongside (a Spark DataFrame).
        originals: QI -> the column of ``df`` holding its raw value.
        numeric: The numeric QIs (released as ``[lo-hi]`` ranges).
        hierarchies: Categorical QI -> its hierarchy rows (raw value first, root last).
        dates: The date QIs (released as ``[YYYY-MM-DD-YYYY-MM-DD]`` ranges).

    Returns:
        ``{"ncp": {qi: NCP}, "gcp": GCP}``. NCP is None for an empty partition and
        for a numeric or date QI with more than ``MAX_DOMAIN`` distinct raw values;
        GCP is None when any NCP is.
    """
    from pyspark.sql import functions as F

    spark = df.sparkSession
    n = df.count()
    ncp: dict[str, float | None] = {}
    for q in [*numeric, *dates]:
        is_date = q in dates
        raw = F.col(originals[q])
        raw = F.datediff(F.to_date(raw), F.lit("1970-01-01")) if is_date else raw.cast("double")
        values = df.select(raw.alias("v")).distinct().orderBy("v").limit(MAX_DOMAIN + 1)
        dom = np.array([r["v"] for r in values.collect()], dtype=float)
        if len(dom) > MAX_DOMAIN:
            ncp[q] = None  # too many distinct values to hold: unknown, null in JSON
            continue
        pattern = _DATE_RANGE.pattern if is_date else _RANGE.pattern

        cost = _range_cost(dom, pattern, is_date)
        cells = df.groupBy(F.col(q).alias("cell")).count()
        total = cells.agg(F.sum(cost("cell") * F.col("count"))).first()[0]
        ncp[q] = float(total or 0.0) / n if n else None
    for q, rows in hierarchies.items():
        dom = {
            r["v"]
            for r in df.select(F.col(originals[q]).cast("string").alias("v")).distinct().collect()
        }
        size = len(dom)
        leaves_of: dict[str, set[str]] = {}
        for row in rows:
            for label in row:
                leaves_of.setdefault(label.strip(), set()).add(row[0].strip())
        raw_labels = {row[0].strip() for row in rows if row}
        covers = [("*", size)] + [
            (label, 1 if label in dom and label in raw_labels else max(1, len(leaves & dom)))
            for label, leaves in leaves_of.items()
            if label != "*"
        ]
        table = spark.createDataFrame(covers, "cell string, cover long")
        cells = df.groupBy(F.col(q).alias("cell")).count().join(F.broadcast(table), "cell", "left")
        cover = F.coalesce(F.col("cover"), F.lit(1)).cast("double")
        per = (cover - 1) / (size - 1) if size > 1 else F.lit(0.0)
        per = F.when(F.col("cell") == "*", F.lit(1.0)).otherwise(per)
        total = cells.agg(F.sum(per * F.col("count"))).first()[0]
        ncp[q] = float(total or 0.0) / n if n else None
    known = [v for v in ncp.values() if v is not None]
    return {"ncp": ncp, "gcp": float(np.mean(known)) if len(known) == len(ncp) and ncp else None}


def _range_cost(dom: np.ndarray, pattern: str, is_date: bool) -> Any:
    """A pandas UDF: cell -> (cover − 1)/(|dom| − 1), cover by binary search in ``dom``."""
    from pyspark.sql.functions import pandas_udf

    size = len(dom)
    epoch = np.datetime64("1970-01-01", "D")

    def ends(part: pd.Series) -> np.ndarray:
        if is_date:
            days = (pd.to_datetime(part).to_numpy("datetime64[D]") - epoch).astype(float)
            return np.where(part.isna().to_numpy(), np.nan, days)
        return part.astype(float).to_numpy()

    @pandas_udf("double")
    def cost(cells: pd.Series) -> pd.Series:
        if size <= 1:  # one distinct value: only "*" loses information
            return pd.Series(np.where(cells.to_numpy() == "*", 1.0, 0.0))
        parts = cells.str.extract(pattern)
        lo, hi = ends(parts[0]), ends(parts[1])
        cover = np.searchsorted(dom, hi, "right") - np.searchsorted(dom, lo, "left")
        cover = np.where(np.isnan(lo), 1, np.maximum(cover, 1)).astype(float)
        cover = np.where(cells.to_numpy() == "*", size, cover)
        return pd.Series((cover - 1) / (size - 1))

    return cost
