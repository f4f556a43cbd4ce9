"""Quality-gate cost within a run, and the output gate's full PII scan alone.

    python benchmarks/gate_bench.py [--rows 2000000] [--repeats 5]

Runs `run_partition` of the demo spec on one generated partition (the data of
`desensitize_bench.py`) and reads each run's stage timings from its manifest:
input gate, desensitize + stage, output gate, total. Then times, on the staged
(published) output, the PII part of the output suite alone: every entity of
the PII engine on every string column, every row, as GX runs it in the gate. Prints
medians and the ratios against the desensitize stage measured in the same runs
(target: PII scan at most 0.5x the desensitize stage). The demo spec's ``note`` is
``redact`` here, as the target is stated against the desensitize stage without the
``scrub`` action; one run with ``scrub`` (the demo spec as shipped) reports what
scrubbing the notes costs, and the PII scan of that output.
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
from pipelines.spec.models import PipelineSpec  # noqa: E402


def with_note(spec: PipelineSpec, action: dict) -> PipelineSpec:
    """The spec with another action on the ``note`` column."""
    data = spec.model_dump(mode="json", exclude_none=True)
    data["columns"]["note"] = action
    return PipelineSpec.model_validate(data)


def pii_scan(spark, plan, spec, res) -> tuple[float, int]:  # noqa: ANN001
    """Seconds of the output suite's PII checks alone on a run's published output."""
    out = spark.read.parquet(res.published)
    full = output_suite(plan, res.output_rows)
    scan = Suite("output", [c for c in full.checks if c.id.startswith("output.pii.")],
                 allowed_pii=full.allowed_pii, pii_countries=full.pii_countries)  # fmt: skip
    t = time.perf_counter()
    gate, _ = run_gate(scan, out, spec.name)
    seconds = time.perf_counter() - t
    assert gate.passed, gate.describe_failures()
    return seconds, len(scan.checks)


def main() -> None:
    args = arguments(__doc__).parse_args()
    spark, shipped, raw_root, day, work = prepare(args)
    spec = with_note(shipped, {"kind": "redact", "keep_nulls": False})
    run_partition(spec, day)  # warm-up
    raw_schema = spark.read.parquet(str(raw_root / f"dt={day}")).schema
    plan = compile_plan(spec, day, resolve=False).bind(raw_schema, "benchmark partition")
    stages: dict[str, list[float]] = {}
    pii: list[float] = []
    for _ in range(args.repeats):
        res = run_partition(spec, day)
        for k in ("input_gate", "desensitize_and_stage", "output_gate", "total"):
            stages.setdefault(k, []).append(res.record.timings[k])
        seconds, checks = pii_scan(spark, plan, spec, res)
        pii.append(seconds)
    med = {k: statistics.median(v) for k, v in stages.items()}
    med["pii_scan"] = statistics.median(pii)
    d = med["desensitize_and_stage"]
    scrubbed = run_partition(shipped, day)
    scrub_plan = compile_plan(shipped, day, resolve=False).bind(raw_schema, "benchmark partition")
    scrub_scan, _ = pii_scan(spark, scrub_plan, shipped, scrubbed)
    result = {
        "rows": args.rows,
        "repeats": args.repeats,
        "pii_checks": checks,
        "with_scrub_s": {
            "desensitize_and_stage": round(scrubbed.record.timings["desensitize_and_stage"], 2),
            "pii_scan": round(scrub_scan, 2),
        },  # fmt: skip
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
        f"{result['pii_scan_over_desensitize']:.2f} (target <= 0.5); with scrub on the "
        f"notes (one run): desensitize+stage {result['with_scrub_s']['desensitize_and_stage']}s, "
        f"PII scan {result['with_scrub_s']['pii_scan']}s"
    )
    print(json.dumps(result))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
