"""What orchestration costs: the demo DAG through Airflow against one in-process run.

    python benchmarks/dag_overhead.py [--rows 1000000] [--repeats 3]

Generates one demo partition of ``--rows`` rows (the raw catalog table of
``anonymize demo``) in a scratch warehouse, then measures, alternating, per repeat:

* ``in_process``: one ``anonymize run`` process (JVM start included) — the baseline;
* ``dag``: ``dag.test()`` of ``anon__demo`` for that day: three ``spark-submit``
  tasks (desensitize, validate, publish) with the package zip, Airflow's metadata
  database in SQLite; the wall time of the whole DAG run and of each task;
* ``spark_submit_noop``: ``spark-submit`` of a job that only starts the session the
  jobs use (Hive support, Derby metastore) and stops it: the fixed cost per task.

Prints medians and the ratios dag / in_process and noop / in_process. Each run
republishes the same partition (reruns are idempotent), so every repeat does the
same work.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAY = "2026-11-01"
GENERATE = """
import sys
from pathlib import Path
from pipelines.demo import raw_events, write_raw
from pipelines.session import get_session
spark = get_session(warehouse=sys.argv[1])
write_raw(spark, raw_events(int(sys.argv[2]), 1), Path(sys.argv[1]) / "_generate")
"""
NOOP = """
from pipelines.session import get_session
get_session().sql("SHOW DATABASES").collect()
"""
RUN_DAG = """
import datetime as dt, json, sys, time
sys.path.insert(0, {dags!r})
import anonymize_pipelines as m
dag = m.build_all()["anon__demo"]
t = time.perf_counter()
dr = dag.test(logical_date=dt.datetime.fromisoformat({day!r}).replace(tzinfo=dt.UTC))
took = time.perf_counter() - t
tasks = {{ti.task_id: (ti.end_date - ti.start_date).total_seconds()
         for ti in dr.get_task_instances()}}
print(json.dumps({{"state": str(dr.state), "seconds": took, "tasks": tasks}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None, help="Scratch directory (kept).")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="dag_overhead_"))
    wh = work / "wh"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYSPARK_PYTHON": sys.executable,
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "ANONYMIZE_WAREHOUSE": str(wh),
        "ANONYMIZE_DEMO_KEY": os.environ.get("ANONYMIZE_DEMO_KEY", "bench-" + "0" * 58),
    }

    def call(argv: list[str]) -> tuple[float, str]:
        t = time.perf_counter()
        proc = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True)
        took = time.perf_counter() - t
        if proc.returncode != 0:
            sys.exit(f"{argv[:3]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return took, proc.stdout

    work.mkdir(parents=True, exist_ok=True)
    zip_path = call([str(BIN / "anonymize"), "build-zip", "--out", str(work / "dist")])[1]
    env["ANONYMIZE_PY_FILES"] = zip_path.strip()
    call([str(BIN / "airflow"), "db", "migrate"])
    print(f"generating {args.rows} rows in {wh}", file=sys.stderr)
    call([sys.executable, "-c", GENERATE, str(wh), str(args.rows)])
    (work / "run_dag.py").write_text(RUN_DAG.format(dags=str(ROOT / "dags"), day=DAY))
    (work / "noop.py").write_text(NOOP)
    spec = str(ROOT / "conf" / "pipelines" / "demo.yaml")
    in_process = [str(BIN / "anonymize"), "run", spec, "--partition", DAY, "--master",
                  "local[2]", "--warehouse", str(wh)]  # fmt: skip
    noop = [str(BIN / "spark-submit"), "--master", "local[2]", "--py-files", zip_path.strip(),
            str(work / "noop.py")]  # fmt: skip
    call(in_process)  # warm-up: first publish, OS caches

    times: dict[str, list[float]] = {"in_process": [], "dag": [], "spark_submit_noop": []}
    tasks: dict[str, list[float]] = {}
    for i in range(args.repeats):
        times["in_process"].append(call(in_process)[0])
        took, out = call([sys.executable, str(work / "run_dag.py")])
        dag = json.loads(out.strip().splitlines()[-1])
        if dag["state"] != "success":
            sys.exit(f"DAG run {i} ended {dag['state']}")
        times["dag"].append(dag["seconds"])
        for task, seconds in dag["tasks"].items():
            tasks.setdefault(task, []).append(seconds)
        times["spark_submit_noop"].append(call(noop)[0])
        print(f"repeat {i}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()),
              file=sys.stderr)  # fmt: skip
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "rows": args.rows,
        "repeats": args.repeats,
        "median_s": {k: round(v, 1) for k, v in med.items()},
        "median_task_s": {k: round(statistics.median(v), 1) for k, v in tasks.items()},
        "dag_over_in_process": round(med["dag"] / med["in_process"], 2),
        "noop_task_over_in_process": round(med["spark_submit_noop"] / med["in_process"], 2),
        "fixed_cost_share_of_dag": round(3 * med["spark_submit_noop"] / med["dag"], 2),
    }
    print(json.dumps(result, indent=2))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
