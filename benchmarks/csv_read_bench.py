"""What reading CSV sources with multi-line records costs.

    python benchmarks/csv_read_bench.py [--rows 2000000] [--files 4] [--repeats 5]

Writes ``--rows`` rows of the demo schema as CSV (``--files`` files, each a single
record per line, so both parsers read the same rows), then alternates, in one
session: reading with ``multiLine`` off (Spark splits files into blocks, as before)
and with it on (what a source is read with now, so a quoted newline stays inside
its record; a file is then parsed by one task), each with the spec's schema and
the malformed-row flag, counting rows and malformed rows. Prints medians and the
ratio on over off.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql.types import StringType, StructField, StructType  # noqa: E402

from pipelines.demo import raw_events  # noqa: E402
from pipelines.session import get_session  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--master", default="local[*]")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="csv-bench-"))
    conf = {"spark.ui.enabled": "false", "spark.driver.memory": "4g"}
    spark = get_session(master=args.master, warehouse=str(work / "wh"), conf=conf)
    [events] = raw_events(args.rows, 1).values()
    events["note"] = events["note"].str.replace("\n", " ")
    events = events.drop(columns=["event_time", "birthdate", "signup_date"])
    path = work / "csv"
    spark.createDataFrame(events).repartition(args.files).write.option("header", "true") \
        .csv(str(path))  # fmt: skip
    names = list(events.columns)
    schema = StructType([StructField(n, StringType()) for n in names]
                        + [StructField("_bad", StringType())])  # fmt: skip

    def read(multi_line: bool) -> None:
        df = (spark.read.schema(schema).options(header="true", mode="PERMISSIVE",
              multiLine=str(multi_line).lower(), columnNameOfCorruptRecord="_bad")
              .csv(str(path)).cache())  # fmt: skip
        df.agg(F.count(F.lit(1)), F.sum(F.col("_bad").isNotNull().cast("int"))).collect()
        df.unpersist()

    runs = {"multiline_off": lambda: read(False), "multiline_on": lambda: read(True)}
    for fn in runs.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"rows": args.rows, "files": args.files, "median_s": {
        k: round(v, 2) for k, v in med.items()},
        "ratio_on_over_off": round(med["multiline_on"] / med["multiline_off"], 3)}))  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
