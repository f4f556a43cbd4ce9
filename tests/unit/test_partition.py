"""Partition values: one parser, canonical YYYY-MM-DD only, refused before Spark starts."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.errors import SpecError
from pipelines.partition import Partition, parse_day

ROOT = Path(__file__).resolve().parents[2]
DP_SPEC = """
version: 1
name: dp
source: {path: raw}
sink: {path: anon}
partition_column: dt
privacy_unit: uid
keys: {main: {env: ANONYMIZE_DEMO_KEY}}
columns: {uid: {kind: hash}, g: {kind: keep}}
dp_budget: {epsilon: 1.0}
releases:
  r: {sink: {path: r}, group_by: [g], bounds: {max_groups_per_unit: 1},
      metrics: {n: {kind: count}}, budget: {epsilon: 0.5}}
"""

# Forms Python's date.fromisoformat accepts (3.11+) or that look like dates, none canonical.
REFUSED = ["20261125", "2026-W48-3", "2026W483", "2026-11-5", "2026-1-25", "26-11-25",
           "2026/11/25", "25.11.2026", " 2026-11-25", "2026-11-25 ", "2026-11-25T00:00",
           "2026-02-30", "2026-13-01", "2026-00-10", "", "yesterday", "２０２６-１１-２５"]  # fmt: skip


@pytest.mark.parametrize("value", REFUSED)
def test_only_the_canonical_form_is_a_partition(value):
    with pytest.raises(SpecError, match="not an ISO date"):
        parse_day(value)


def test_canonical_values_parse_and_print_back():
    p = Partition.parse("dt", "2024-02-29")
    assert p.day == dt.date(2024, 2, 29) and p.value == "2024-02-29" and str(p) == "2024-02-29"
    assert p.dirname == "dt=2024-02-29" and p.shifted(1).value == "2024-03-01"


@pytest.mark.parametrize("command", [
    ["run", "conf/pipelines/demo.yaml"],
    ["validate", "conf/pipelines/demo.yaml"],
    ["kanon", "conf/pipelines/demo.yaml"],
    ["report", "conf/pipelines/demo.yaml"],
    ["release", "DP_SPEC"],
    ["restore", "conf/pipelines/demo.yaml", "--to", "20261125T000000Z-00000000"],
    ["quarantine", "drop", "conf/pipelines/demo.yaml", "--run-id", "20261125T000000Z-00000000"],
    ["budget", "show", "DP_SPEC"],
], ids=lambda c: " ".join(c[:2]))  # fmt: skip
def test_every_command_refuses_a_basic_iso_partition_with_exit_3_before_spark(command, tmp_path):
    """20261125 used to publish dt=20261125 beside dt=2026-11-25."""
    dp_spec = tmp_path / "dp.yaml"
    dp_spec.write_text(DP_SPEC)
    command = [str(dp_spec) if c == "DP_SPEC" else c for c in command]
    code = (
        "import sys\n"
        "from pipelines.cli import main\n"
        f"rc = main({[*command, '--partition', '20261125']!r})\n"
        "import pyspark.sql, pyspark\n"
        "started = pyspark.SparkContext._active_spark_context is not None\n"
        "sys.exit(rc if not started else 99)\n"
    )
    env = {"ANONYMIZE_DEMO_KEY": "x" * 32, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-2000:] + proc.stdout[-2000:]
    assert "'20261125' is not an ISO date" in proc.stderr + proc.stdout
