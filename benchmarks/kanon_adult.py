"""Strict Mondrian on the Adult benchmark table, output readable by kanon_peers.py.

    python benchmarks/kanon_adult.py --data ../shared/data/adult --k 10 [--l 2] --out OUT.csv
        [--l-kind distinct|entropy|recursive] [--c C] [--t T]

QIs: age (numeric, released as ranges), sex, race, marital-status, education,
native-country, workclass, occupation (categorical, along the ARX hierarchies);
sensitive: salary-class. Writes the original columns, ';'-separated, rows in
input order, and prints the wall time of the anonymization (median of --repeats).
Measure the output with ../shared/bench/peers/kanon_peers.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.kanon.hierarchy import Hierarchy  # noqa: E402
from pipelines.kanon.mondrian import CategoricalQI, NumericQI, mondrian  # noqa: E402
from pipelines.kanon.privacy import Requirement  # noqa: E402

CATEGORICAL = ["sex", "race", "marital-status", "education", "native-country", "workclass",
               "occupation"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True, help="directory with adult.csv and hierarchies")
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--l", type=int, default=1)
    ap.add_argument("--l-kind", default="distinct", choices=["distinct", "entropy", "recursive"])
    ap.add_argument("--c", type=float, default=None, help="c of recursive (c,l)-diversity")
    ap.add_argument("--t", type=float, default=None, help="t-closeness (equal distance)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    data = Path(args.data)
    df = pd.read_csv(data / "adult.csv", sep=";", dtype=str, keep_default_na=False)
    qis = [NumericQI("age")] + [
        CategoricalQI(c, Hierarchy.read(data / f"adult_hierarchy_{c}.csv")) for c in CATEGORICAL
    ]
    req = Requirement(args.k, args.l, args.l_kind, args.c, args.t)
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        res = mondrian(df, qis, req, sensitive="salary-class")
        times.append(time.perf_counter() - t)
    out = df.copy()
    for q in qis:
        out[q.name] = res.released[q.name]
    out.to_csv(args.out, sep=";", index=False)
    summary = {"k": args.k, "l": args.l, "l_kind": args.l_kind, "c": args.c, "t": args.t,
               "classes": res.classes, "suppressed": res.suppressed}  # fmt: skip
    print(json.dumps({**summary, "wall_s": round(statistics.median(times), 3)}))


if __name__ == "__main__":
    main()
