"""This project's DP release in the side-by-side DP benchmark of ../shared/bench/peers.

    python ../shared/bench/peers/dp_peers.py --rows 1000000 --peer gen     # data, once
    python benchmarks/dp_peers.py --rows 1000000 --peer project --keys public --repeats 3
    python benchmarks/dp_peers.py --rows 1000000 --peer project_nonoise --repeats 3
    python benchmarks/dp_peers.py --rows 1000000 --peer spark_plain --repeats 3

Same arguments and JSON fields as the shared script (one JSON line per repeat on
stdout), reading the data and ground truth its ``--peer gen`` wrote under
``--data-dir``; data layout, ground truth and scoring are the shared script's own
functions, imported from it (``--peers-script``), so every peer is scored by the
same code. Peers here:

* ``spark_plain``: plain groupBy count/sum, no DP (the floor);
* ``project``: :func:`pipelines.dp.release.compute` with the same query — per
  (day, region) count and sum(amount clamped to [0, U]), each user at most L0
  groups and L∞ rows per group, pure ε (public keys: ε/2 each for count and sum;
  private keys: ε/3 each for selection with δ, count and sum, as the shared
  script gives Tumult);
* ``project_nonoise``: the same bounding and aggregation with no noise and no
  selection (what the DP part costs on top).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PEERS = ROOT.parent / "shared" / "bench" / "peers" / "dp_peers.py"


def load_shared(path: Path):  # noqa: ANN201
    """The shared benchmark module (data paths, ground truth, scoring)."""
    if not path.is_file():
        sys.exit(f"{path} not found: pass --peers-script (the shared dp_peers.py)")
    spec = importlib.util.spec_from_file_location("shared_dp_peers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def release_model(args):  # noqa: ANN001, ANN201
    from pipelines.spec.dp import Release

    keys = "private"
    if args.keys == "public":
        keys = {"ranges": {"day": {"start": 0, "stop": 7}},
                "values": {"region": [f"reg_{i:02d}" for i in range(50)]}}  # fmt: skip
    return Release.model_validate({
        "sink": {"path": "unused"}, "group_by": ["day", "region"], "keys": keys,
        "bounds": {"max_groups_per_unit": args.l0, "max_rows_per_group": args.linf},
        "metrics": {"c": {"kind": "count"},
                    "s": {"kind": "sum", "column": "amount", "lower": 0.0, "upper": args.upper,
                          "resolution": 0.01}},
        "budget": {"epsilon": args.epsilon, "selection_delta": args.delta},
    })  # fmt: skip


def run_project(args, ctx, noise: bool):  # noqa: ANN001, ANN201
    from pipelines.dp.plan import plan_release
    from pipelines.dp.release import compute

    spark = ctx["spark"]
    df = spark.read.parquet(ctx["table"])
    rel = release_model(args)
    p = plan_release(rel)
    rows = compute(df, rel, "user_id", "benchmark", p, noise=noise).collect()
    result = {f"{r['day']}|{r['region']}": (r["c"], r["s"]) for r in rows}
    info = {"budget": f"PureDP eps={args.epsilon}: " + ", ".join(
        f"{k} {v:.4g}" for k, v in p.shares.items())}  # fmt: skip
    if p.selection is not None:
        info["budget"] += f"; selection delta={args.delta}, threshold={p.selection.threshold}"
    info["mechanism"] = "OpenDP discrete Laplace (count, fixed-point sum)" if noise else "none"
    return result, info


def run_plain(args, ctx):  # noqa: ANN001, ANN201
    from pyspark.sql import functions as F

    rows = (ctx["spark"].read.parquet(ctx["table"]).groupBy("day", "region")
            .agg(F.count(F.lit(1)).alias("c"), F.sum("amount").alias("s")).collect())  # fmt: skip
    return {f"{r['day']}|{r['region']}": (r["c"], r["s"]) for r in rows}, {
        "budget": "none (no DP)", "mechanism": "none"}  # fmt: skip


PEERS = {
    "spark_plain": run_plain,
    "project": lambda a, c: run_project(a, c, True),
    "project_nonoise": lambda a, c: run_project(a, c, False),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--peer", required=True, choices=sorted(PEERS))
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--keys", choices=["public", "private"], default="public")
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--delta", type=float, default=1e-6, help="only used with --keys private")
    ap.add_argument("--l0", type=int, default=4, help="max groups per user")
    ap.add_argument("--linf", type=int, default=5, help="max rows per user per group")
    ap.add_argument("--upper", type=float, default=100.0, help="amount clamp upper bound U")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--data-dir", default="/tmp/dp_peers_data")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--driver-memory", default="8g")
    ap.add_argument("--shuffle-partitions", type=int, default=8)
    ap.add_argument("--peers-script", type=Path, default=DEFAULT_PEERS)
    args = ap.parse_args()
    shared = load_shared(args.peers_script)
    base, table, manifest_path = shared.data_paths(args)
    if not os.path.exists(manifest_path) or not os.path.exists(shared.truth_path(args)):
        sys.exit(f"no data under {base}: run the shared script with --peer gen (same --rows, "
                 "--seed, --l0, --linf, --upper, --data-dir) first")  # fmt: skip
    man = json.load(open(manifest_path))
    truth = json.load(open(shared.truth_path(args)))
    common = {
        "peer": args.peer, "peer_version": "pipelines " + _version(),
        "pyspark": shared.pkg_version("pyspark"), "python": platform.python_version(),
        "rows": args.rows, "users": man["n_users"], "data_fingerprint": man["fingerprint"],
        "keys": args.keys, "epsilon": None if args.peer == "spark_plain" else args.epsilon,
        "delta": args.delta if args.keys == "private" and args.peer == "project" else 0.0,
        "l0": args.l0, "linf": args.linf, "upper": args.upper,
        "rows_kept_by_bounding": truth["rows_kept_by_bounding"],
    }  # fmt: skip
    t0 = time.time()
    ctx = {"table": table, "spark": shared.make_spark(args, f"dp_peers_{args.peer}")}
    __import__("opendp.prelude")
    startup = time.time() - t0
    for rep in range(args.repeats):
        t1 = time.time()
        result, info = PEERS[args.peer](args, ctx)
        wall = time.time() - t1
        print(json.dumps({**common, "repeat": rep, "status": "ok", "startup_s": round(startup, 2),
                          "wall_s": round(wall, 2), **shared.score(result, truth), **info}),
              flush=True)  # fmt: skip
    ctx["spark"].stop()


def _version() -> str:
    from pipelines import __version__

    return __version__


if __name__ == "__main__":
    main()
