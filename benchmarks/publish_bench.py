"""Stage + publish per storage backend, against a plain Parquet write of the same frame.

    python benchmarks/publish_bench.py [--rows 2000000] [--repeats 5]

One partition of generated demo rows (``desensitize_bench.py``'s data) is
desensitized once by the demo spec and cached. Then, per repeat and backend, the
cached frame is staged (``Table.write_staged``) and published (``Table.publish``,
with the run's manifest under a new run id) into: a path table (directory swap),
a Hive catalog table (partition pointer swap), an Iceberg table (one overwrite
commit) and a Delta table (one transaction committing the staged files). The
baseline, timed in the same loop, is ``frame.write.parquet`` of the same cached
frame to a fresh directory. Prints the median seconds per backend and its ratio to the baseline's
median (target: every backend at most 1.3x).
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from desensitize_bench import arguments, prepare  # noqa: E402

from pipelines.partition import Partition  # noqa: E402
from pipelines.runner import run_partition  # noqa: E402
from pipelines.session import session_warehouse  # noqa: E402
from pipelines.spec.tables import TableRef  # noqa: E402
from pipelines.storage import new_run_id  # noqa: E402
from pipelines.storage.base import open_table  # noqa: E402

BACKENDS = {
    "path": TableRef(path="pub/path"),
    "hive": TableRef(table="pub.hive_events"),
    "iceberg": TableRef(table="pub.events", format="iceberg"),
    "delta": TableRef(path="pub/delta", format="delta"),
}


def main() -> None:
    args = arguments(__doc__).parse_args()
    spark, spec, _raw, day, work = prepare(args)
    res = run_partition(spec, day)  # desensitized once, by the shipped demo spec
    frame = spark.read.parquet(res.published).cache()
    rows = frame.count()
    partition = Partition.parse(spec.partition_column, day)
    wh = session_warehouse(spark)
    column = spec.partition_column
    tables = {name: open_table(ref, column, wh, spark) for name, ref in BACKENDS.items()}
    times: dict[str, list[float]] = {"plain parquet write": [], **{n: [] for n in tables}}
    staging: dict[str, list[float]] = {n: [] for n in tables}
    for i in range(args.repeats + 1):  # the first round warms each path up, untimed
        target = work / "plain"
        shutil.rmtree(target, ignore_errors=True)
        t = time.perf_counter()
        frame.write.parquet(str(target))
        if i:
            times["plain parquet write"].append(time.perf_counter() - t)
        for name, table in tables.items():
            run_id = new_run_id()
            manifest = dataclasses.replace(
                res.record, identity=dataclasses.replace(res.record.identity, run_id=run_id)
            )
            t = time.perf_counter()
            staged = table.staged(run_id, partition)
            staged.path.parent.mkdir(parents=True, exist_ok=True)
            table.write_staged(frame, staged)
            middle = time.perf_counter()
            table.publish(staged, manifest)
            if i:
                times[name].append(time.perf_counter() - t)
                staging[name].append(middle - t)
        print(f"round {i}/{args.repeats} done", file=sys.stderr)
    base = statistics.median(times["plain parquet write"])
    print(f"stage + publish of {rows:,} desensitized rows (one partition), "
          f"median of {args.repeats}")  # fmt: skip
    print(f"{'backend':<22}{'seconds':>9}{'ratio':>8}{'stage s':>9}{'publish s':>11}")
    for name, samples in times.items():
        med = statistics.median(samples)
        line = f"{name:<22}{med:>9.2f}{med / base:>8.2f}"
        if name in staging:
            stage = statistics.median(staging[name])
            line += f"{stage:>9.2f}{med - stage:>11.2f}"
        print(line)


if __name__ == "__main__":
    main()
