"""Run one benchmark script of two git revisions, alternating, and compare medians.

    python benchmarks/compare_revisions.py --old 02d7f03 --new HEAD --rounds 3 \
        desensitize_bench.py -- --rows 2000000 --repeats 3 --no-breakdown

Each revision is checked out once into a temporary git worktree; every round runs
the revision's *own* copy of ``benchmarks/<script>`` with its own code (the
worktree first on ``PYTHONPATH``, so Spark's Python workers import it too), old
and new in alternating order (old first in even rounds, new first in odd ones),
so machine drift hits both alike. ``{rev}`` in an argument becomes ``old`` or ``new``
(``--workdir /tmp/bench-{rev}``: each revision generates its data once and reuses it
in later rounds). Every numeric field of the JSON lines a run
prints (nested keys joined by dots; with several lines, their median) is a
sample; the report gives, per field, the median over rounds for each revision and
new/old. Written here because the benchmark scripts change with the code they
measure, so each revision must run its own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _numbers(payload: object, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a JSON value, keyed by their dotted path (lists skipped)."""
    if isinstance(payload, bool):
        return {}
    if isinstance(payload, int | float):
        return {prefix: float(payload)}
    if isinstance(payload, dict):
        out: dict[str, float] = {}
        for k, v in payload.items():
            out.update(_numbers(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {}


def _run(tree: Path, script: str, args: list[str]) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / script), *args],
        cwd=tree, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode:
        sys.exit(f"{tree.name}: {script} failed:\n{proc.stderr[-3000:]}")
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    samples: dict[str, list[float]] = {}
    for line in lines:
        for k, v in _numbers(line).items():
            samples.setdefault(k, []).append(v)
    return {k: statistics.median(v) for k, v in samples.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, help="git revision of the baseline")
    ap.add_argument("--new", default="HEAD", help="git revision to compare (default HEAD)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fields", default="", help="comma-separated fields to report (default all)")
    ap.add_argument("script", help="a script under benchmarks/, e.g. desensitize_bench.py")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="after --: the script's arguments")
    opts = ap.parse_args()
    args = opts.args[1:] if opts.args[:1] == ["--"] else opts.args
    work = Path(tempfile.mkdtemp(prefix="compare-revisions-"))
    trees = {}
    for label, rev in (("old", opts.old), ("new", opts.new)):
        trees[label] = work / label
        subprocess.run(["git", "worktree", "add", "--detach", str(trees[label]), rev],
                       cwd=ROOT, check=True, capture_output=True)  # fmt: skip
    results: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    try:
        for i in range(opts.rounds):
            order = ("old", "new") if i % 2 == 0 else ("new", "old")
            for label in order:
                mine = [a.replace("{rev}", label) for a in args]
                results[label].append(_run(trees[label], opts.script, mine))
                print(f"round {i + 1} {label}: done", file=sys.stderr, flush=True)
    finally:
        for tree in trees.values():
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                           capture_output=True)  # fmt: skip
    wanted = [f for f in opts.fields.split(",") if f]
    fields = wanted or sorted(set(results["old"][0]) & set(results["new"][0]))
    report = {}
    for f in fields:
        old = statistics.median(r[f] for r in results["old"] if f in r)
        new = statistics.median(r[f] for r in results["new"] if f in r)
        report[f] = {"old": round(old, 3), "new": round(new, 3),
                     "new_over_old": round(new / old, 3) if old else None}  # fmt: skip
        print(f"{f:40s} old {old:10.3f}  new {new:10.3f}  new/old {report[f]['new_over_old']}")
    print(json.dumps({"script": opts.script, "args": args, "rounds": opts.rounds,
                      "old": opts.old, "new": opts.new, "fields": report}))  # fmt: skip


if __name__ == "__main__":
    main()
