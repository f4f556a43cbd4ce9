"""Every pseudonym token format against the output gate's PII detectors, at scale.

    python benchmarks/token_formats.py [--rows 1000000]

Builds one frame with a column per allowed (encoding, length), 134 of them, holding
the tokens of ``--rows`` distinct values, and runs the output gate's PII scan
(every detector, every column, every row) over it. Prints the matches found (the
shape of :func:`pipelines.desensitize.actions.pseudonym.token_shape` makes them 0 by
construction) and the time. It is the full matrix the test suite samples
(``tests/spark/test_token_shapes.py``): at a million rows it takes about 26 minutes
on a 2-core machine, too long for the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import functions as F  # noqa: E402

from pipelines.desensitize.actions.pseudonym import TOKEN_FORMATS  # noqa: E402
from pipelines.desensitize.transform import with_desensitized  # noqa: E402
from pipelines.plan import compile_plan  # noqa: E402
from pipelines.quality.pii import scan  # noqa: E402
from pipelines.session import get_session  # noqa: E402
from pipelines.spec import spec_from_dict  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--master", default="local[*]")
    args = ap.parse_args()
    os.environ.setdefault("TOKEN_BENCH_KEY", "token-bench-key-0123456789abcdef")
    formats = [(e, n) for e, (_, full, _) in TOKEN_FORMATS.items() for n in range(8, full + 1)]
    columns = {f"{e}_{n}": {"kind": "hash", "encoding": e, "length": n} for e, n in formats}
    spec = spec_from_dict({
        "version": 1, "name": "tokens", "source": {"path": "x"}, "sink": {"path": "y"},
        "partition_column": "dt", "privacy_unit": "uid",
        "keys": {"main": {"env": "TOKEN_BENCH_KEY"}},
        "columns": {"uid": {"kind": "keep"}, **columns},
    })  # fmt: skip
    spark = get_session(master=args.master, conf={"spark.ui.enabled": "false"})
    ids = spark.range(args.rows).select(F.col("id").cast("string").alias("uid"))
    source = ids.select("uid", *[F.col("uid").alias(c) for c in columns])
    plan = compile_plan(spec, "2026-11-25").bind(source.schema, "generated")
    tokens = source.transform(with_desensitized(plan)).drop("uid")
    t = time.perf_counter()
    counts = scan(tokens)
    seconds = time.perf_counter() - t
    found = {f"{c}.{d}": n for c, per in counts.items() for d, n in per.items() if n}
    print(json.dumps({"rows": args.rows, "formats": len(formats), "matches": found,
                      "seconds": round(seconds, 1)}))  # fmt: skip


if __name__ == "__main__":
    main()
