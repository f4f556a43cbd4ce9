"""Quality-gate cost within a run, and the output gate's full PII scan alone.

    python benchmarks/gate_bench.py [--rows 2000000] [--repeats 5]

Runs `run_partition` of the demo spec on one generated partition (the data of
`desensitize_bench.py`) and reads each run's stage timings from its manifest:
input gate, desensitize + stage, output gate, total. Then times, on the staged
(published) output, the PII part of the output suite alone: every detector on
every string column, every row, as GX runs it in the gate. Prints medians and the
ratios against the desensitize stage measured in the same runs (target: PII scan
at most 0.5x the desensitize stage).
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from desensitize_bench import arguments, prepare  # noqa: E402

from pipelines.plan import compile_plan  # noqa: E402
from pipelines.quality.gate import run_gate  # noqa: E402
from pipelines.quality.suites import Suite, output_suite  # noqa: E402
from pipelines.runner import run_partition  # noqa: E402


def main() -> None:
    args = arguments(__doc__).parse_args()
    spark, spec, raw_root, day, work = prepare(args)
    run_partition(spec, day)  # warm-up
    raw_schema = spark.read.parquet(str(raw_root / f"dt={day}")).schema
    plan = compile_plan(spec, day, resolve=False).bind(raw_schema, "benchmark partition")
    stages: dict[str, list[float]] = {}
    pii: list[float] = []
    for _ in range(args.repeats):
        res = run_partition(spec, day)
        for k in ("input_gate", "desensitize_and_stage", "output_gate", "total"):
            stages.setdefault(k, []).append(res.record.timings[k])
        out = spark.read.parquet(res.published)
        full = output_suite(plan, res.output_rows)
        scan = Suite("output", [c for c in full.checks if c.id.startswith("output.pii.")])
        t = time.perf_counter()
        gate, _ = run_gate(scan, out, spec.name)
        pii.append(time.perf_counter() - t)
        assert gate.passed, gate.describe_failures()
    med = {k: statistics.median(v) for k, v in stages.items()}
    med["pii_scan"] = statistics.median(pii)
    d = med["desensitize_and_stage"]
    result = {
        "rows": args.rows,
        "repeats": args.repeats,
        "pii_checks": len(scan.checks),
        "median_s": {k: round(v, 2) for k, v in med.items()},
        "pii_scan_over_desensitize": round(med["pii_scan"] / d, 3),
        "output_gate_over_desensitize": round(med["output_gate"] / d, 3),
        "gates_over_total": round((med["input_gate"] + med["output_gate"]) / med["total"], 3),
        "target_pii_scan_over_desensitize": 0.5,
        "samples_s": {k: [round(x, 2) for x in v] for k, v in {**stages, "pii_scan": pii}.items()},
    }
    print(
        f"desensitize+stage {d:.2f}s, input gate {med['input_gate']:.2f}s, "
        f"output gate {med['output_gate']:.2f}s (PII scan alone {med['pii_scan']:.2f}s), "
        f"run total {med['total']:.2f}s; PII scan / desensitize = "
        f"{result['pii_scan_over_desensitize']:.2f} (target <= 0.5)"
    )
    print(json.dumps(result))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
