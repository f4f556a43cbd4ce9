"""Wall time of ``make demo``'s run: ``anonymize demo`` at its default size.

    python benchmarks/demo_bench.py [--rows 20000] [--days 3] [--repeats 3]

Each repeat is a fresh process (``.venv/bin/anonymize demo --json``, what ``make
demo`` runs after set-up) into a fresh temporary warehouse: Spark's start, the raw
warehouse's generation, every partition through desensitization, k-anonymity, both
gates, the publish and the DP release, and the report pages. Prints each repeat's
seconds, the median, and the summary's k achieved and budget (a sanity check that
the whole pipeline ran).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    anonymize = Path(sys.executable).parent / "anonymize"
    seconds = []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="demo-bench-") as out:
            start = time.perf_counter()
            proc = subprocess.run(
                [str(anonymize), "demo", "--rows", str(args.rows), "--days", str(args.days),
                 "--out", out, "--json"],
                capture_output=True, text=True, cwd=ROOT,
            )  # fmt: skip
            took = time.perf_counter() - start
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return proc.returncode
            summary = json.loads(proc.stdout.strip().splitlines()[-1])
        seconds.append(took)
        budget = summary["budget"]
        print(f"repeat {i + 1}: {took:.1f} s (k achieved {summary['k_achieved']}, "
              f"budget spent {budget['spent']:g} of {budget['limit']:g})")  # fmt: skip
    median = statistics.median(seconds)
    print(f"demo, {args.rows} rows over {args.days} days: median {median:.1f} s of {len(seconds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
