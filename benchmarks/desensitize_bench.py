"""Desensitize + publish vs a plain Spark Parquet copy of the same partition.

    python benchmarks/desensitize_bench.py [--rows 2000000] [--repeats 5]

Generates one partition of the demo schema (realistic PII, fixed seed), then
alternates, in one Spark session:

(a) a plain Parquet copy of the partition;
(b) `run_partition` of the demo spec: every demo action (keyed HMAC pseudonyms,
    surrogates, masks, generalization, date shift), both quality gates, staging,
    manifest, atomic publish. "Without gates" subtracts the two gates' times read
    from the run's manifest (`benchmarks/gate_bench.py` studies the gates);
(c) the keyed floor: the plain copy plus only the four HMAC-SHA256 digests per row
    that the demo spec's keyed actions need (customer_id pseudonym, two surrogates,
    the date shift), with the expression `run_partition` uses (native `sha2`, key
    in a broadcast row), on the raw values (no normalization), each reduced to one
    character so that writing them costs nothing. A run of the demo spec does all
    of this and more, so it cannot be faster than (c).

Prints medians and the ratios to (a) (target for b without gates: at most 1.5),
then a breakdown: the extra time of each demo action alone over a pass-through
projection (noop sink, cached input), which shows where the time goes, and the
extra time of the Unicode normalization ``[nfkc, trim_unicode, casefold]`` on the
customer_id pseudonym.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import functions as F  # noqa: E402

from pipelines.demo import DEMO_SPEC, FIRST_DAY, raw_events, write_raw  # noqa: E402
from pipelines.desensitize.keyed import KeyRing, utf8  # noqa: E402
from pipelines.keys import resolve_keys  # noqa: E402
from pipelines.runner import run_partition  # noqa: E402
from pipelines.session import get_session  # noqa: E402
from pipelines.spec import load_spec  # noqa: E402


def breakdown(spark, spec, partition_dir: Path, repeats: int) -> dict[str, float]:
    """Median extra seconds of each action alone over keeping every column."""
    from pipelines.desensitize.actions.keep import KeepSpec
    from pipelines.desensitize.transform import with_desensitized
    from pipelines.plan import compile_plan

    df = spark.read.parquet(str(partition_dir)).cache()
    df.count()

    def timed(columns) -> float:
        s = spec.model_copy(update={"columns": columns})
        plan = compile_plan(s, "2026-11-01").bind(df.schema, "benchmark partition")
        out = df.transform(with_desensitized(plan))
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            out.write.format("noop").mode("overwrite").save()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    keep_all = {c: KeepSpec(kind="keep") for c in spec.columns}
    base = timed(keep_all)
    costs = {"pass_through": round(base, 2)}
    for column, action in spec.columns.items():
        if action.kind != "keep":
            costs[f"{column}:{action.kind}"] = round(timed({**keep_all, column: action}) - base, 2)
    costs["all_actions"] = round(timed(dict(spec.columns)) - base, 2)
    # The opt-in Unicode normalization (ICU4J via java_method, not code generated): the
    # customer_id pseudonym with and without it.
    plain = spec.columns["customer_id"]
    unicode_norm = plain.model_copy(update={"normalize": ("nfkc", "trim_unicode", "casefold")})
    without = timed({**keep_all, "customer_id": plain})
    costs["customer_id:hash+nfkc,trim_unicode,casefold"] = round(
        timed({**keep_all, "customer_id": unicode_norm}) - without, 2)
    df.unpersist()
    for k, v in costs.items():
        print(f"  {k:32s} {v:+.2f}s" if k != "pass_through" else f"  {k:32s} {v:.2f}s")
    return costs


def prepare(args: argparse.Namespace) -> tuple:
    """Session, the demo spec's desensitization on path tables, raw root, partition, workdir."""
    work = Path(args.workdir or tempfile.mkdtemp(prefix="anon-bench-"))
    os.environ.setdefault("ANONYMIZE_DEMO_KEY", "benchmark-key-0123456789abcdef0123")
    spark = get_session(
        master=args.master,
        warehouse=str(work / "wh"),
        conf={"spark.ui.enabled": "false", "spark.driver.memory": "4g"},
    )
    t = time.perf_counter()
    raw_root = work / f"raw-{args.rows}"
    day = FIRST_DAY.isoformat()
    if not raw_root.is_dir():  # reused when --workdir is given and kept
        events = raw_events(args.rows, 1)
        write_raw(spark, events, work / "generate", table="bench.raw_events")
        spark.table("bench.raw_events").write.partitionBy("dt").parquet(str(raw_root))
        print(f"generated {args.rows} rows in {time.perf_counter() - t:.1f}s", file=sys.stderr)

    spec = load_spec(DEMO_SPEC)
    # The demo spec's desensitization only: its k-anonymity and DP releases are other
    # stages, measured by kanon_scale.py and dp_peers.py.
    spec = spec.model_copy(
        update={
            "source": spec.source.model_copy(update={"table": None, "path": str(raw_root)}),
            "sink": spec.sink.model_copy(update={"table": None, "path": str(work / "anon")}),
            "k_anonymity": None,
            "releases": {},
            "dp_budget": None,
        }
    )
    return spark, spec, raw_root, day, work


def arguments(doc: str) -> argparse.ArgumentParser:
    """The options every benchmark here takes."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--master", default="local[*]")
    ap.add_argument("--workdir", default=None)
    return ap


def main() -> None:
    ap = arguments(__doc__)
    ap.add_argument("--no-breakdown", dest="breakdown", action="store_false")
    args = ap.parse_args()
    spark, spec, raw_root, day, work = prepare(args)

    def plain_copy() -> None:
        target = work / "copy"
        shutil.rmtree(target, ignore_errors=True)
        spark.read.parquet(str(raw_root / f"dt={day}")).write.parquet(str(target))

    gates: list[float] = []

    def desensitize_publish() -> None:
        timings = run_partition(spec, day).record.timings
        gates.append(timings["input_gate"] + timings["output_gate"])

    def keyed_floor() -> None:
        target = work / "floor"
        shutil.rmtree(target, ignore_errors=True)
        df = spark.read.parquet(str(raw_root / f"dt={day}"))
        ring = KeyRing(resolve_keys(spec))
        inputs = [
            ("customer_id", ""),
            ("full_name", "surrogate/person_name"),
            ("email", "surrogate/email"),
            ("customer_id", "date_shift"),
        ]
        digests = [ring.hmac_hex("main", utf8(F.col(c)), purpose) for c, purpose in inputs]
        out = ring.attach(df).select(
            *df.columns, *(F.substring(d, 1, 1).alias(f"h{i}") for i, d in enumerate(digests))
        )
        out.write.parquet(str(target))

    runs = {
        "plain_copy": plain_copy,
        "desensitize_publish": desensitize_publish,
        "keyed_floor": keyed_floor,
    }
    for fn in runs.values():  # warm-up: JIT, file cache, metastore
        fn()
    gates.clear()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    times["without_gates"] = [
        b - g for b, g in zip(times["desensitize_publish"], gates, strict=True)
    ]
    med = {name: statistics.median(v) for name, v in times.items()}
    ma = med["plain_copy"]
    result = {
        "rows": args.rows,
        "repeats": args.repeats,
        "median_s": {k: round(v, 2) for k, v in med.items()},
        "ratio": round(med["desensitize_publish"] / ma, 3),
        "ratio_without_gates": round(med["without_gates"] / ma, 3),
        "ratio_keyed_floor": round(med["keyed_floor"] / ma, 3),
        "target_ratio": 1.5,
        "samples_s": {k: [round(x, 2) for x in v] for k, v in times.items()},
    }
    print(
        f"plain copy {ma:.2f}s; desensitize+publish {med['desensitize_publish']:.2f}s "
        f"(ratio {result['ratio']:.2f}), without gates {med['without_gates']:.2f}s "
        f"(ratio {result['ratio_without_gates']:.2f}, target <= 1.5); "
        f"keyed floor {med['keyed_floor']:.2f}s (ratio {result['ratio_keyed_floor']:.2f})"
    )
    if args.breakdown:
        result["breakdown_s"] = breakdown(spark, spec, raw_root / f"dt={day}", args.repeats)
    print(json.dumps(result))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
