"""Operations for the data-platform team: partition status and quarantine handling.

* :func:`status`: per partition (of the source and of the sink), ``published``
  (run id, time), ``quarantined`` (its latest run failed a gate and nothing is
  published), ``staged`` (a run staged and not published: in flight, or abandoned
  by an orchestrated run that never went on) or ``missing`` (in the source, never
  published). ``staged`` also lists unpublished staged runs beside a published or
  quarantined state.
* :func:`quarantine_list`, :func:`quarantine_drop`, :func:`quarantine_release`:
  the entries under ``<sink root>/_quarantine/<col>=<value>/<run_id>/``.
  Releasing publishes the quarantined data *despite* its failed gate: a person's
  decision, so it needs a reason, and the manifest records who, when, why and
  which checks had failed (status ``released_from_quarantine``).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import shutil
from pathlib import Path
from typing import Any

from pipelines.errors import MissingInputError, SpecError
from pipelines.runner import STATE
from pipelines.spec import load_spec, spec_hash
from pipelines.spec.models import PipelineSpec


def _tables(spec: PipelineSpec | str | Path, master: str | None, warehouse: str | None):  # noqa: ANN202
    from pipelines.session import get_session, session_warehouse
    from pipelines.storage import Table

    spec_obj = spec if isinstance(spec, PipelineSpec) else load_spec(spec)
    spark = get_session(master=master, warehouse=warehouse)
    wh = session_warehouse(spark)
    source = Table(spec_obj.source, spec_obj.partition_column, wh)
    sink = Table(spec_obj.sink, spec_obj.partition_column, wh)
    return spec_obj, spark, source, sink


def _partition_values(spark: Any, table: Any) -> set[str]:
    prefix = f"{table.partition_column}="
    from pipelines.storage import _sql_ident

    if not table.exists(spark):
        return set()
    if table.is_catalog:
        rows = spark.sql(f"SHOW PARTITIONS {_sql_ident(table.ref.table)}").collect()
        out = set()
        for r in rows:
            for part in r[0].split("/"):
                if part.startswith(prefix):
                    out.add(part.removeprefix(prefix))
        return out
    return {p.name.removeprefix(prefix) for p in table.root_path.iterdir()
            if p.is_dir() and p.name.startswith(prefix)}  # fmt: skip


def _quarantine_root(spark: Any, sink: Any) -> Path:
    return sink.sink_root(spark) / "_quarantine"


def quarantine_list(spec: PipelineSpec | str | Path, *, master: str | None = None,
                    warehouse: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Every quarantined run: partition, run id, failed stage and checks, data kept."""
    spec_obj, spark, _, sink = _tables(spec, master, warehouse)
    return _entries(spark, sink)


def _entries(spark: Any, sink: Any) -> list[dict[str, Any]]:
    root = _quarantine_root(spark, sink)
    out = []
    if not root.is_dir():
        return out
    prefix = f"{sink.partition_column}="
    for part in sorted(root.iterdir()):
        for run in sorted(part.iterdir()):
            note = (
                json.loads((run / "gate.json").read_text()) if (run / "gate.json").exists() else {}
            )
            stage = note.get("failed_stage")
            gate = note.get("gates", {}).get(stage, {}) if stage else {}
            failed = [c["id"] for c in gate.get("checks", []) if not c.get("success")]
            out.append({
                "partition": part.name.removeprefix(prefix),
                "run_id": run.name,
                "quarantined_at": note.get("quarantined_at"),
                "failed_stage": stage,
                "failed_checks": failed,
                "has_data": (run / "data").is_dir(),
                "released": (run / "released.json").exists(),
                "location": str(run),
            })  # fmt: skip
    return out


def status(spec: PipelineSpec | str | Path, *, master: str | None = None,
           warehouse: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """One row per partition of the source or the sink, newest first."""
    spec_obj, spark, source, sink = _tables(spec, master, warehouse)
    values = _partition_values(spark, source) | _partition_values(spark, sink)
    quarantined: dict[str, dict[str, Any]] = {}
    for e in _entries(spark, sink):
        quarantined[e["partition"]] = e  # sorted by run id: the latest wins
    staged: dict[str, list[str]] = {}
    for value, run_id in sink.staged_runs(spark, STATE):
        staged.setdefault(value, []).append(run_id)
    rows = []
    for value in sorted(values | set(quarantined) | set(staged), reverse=True):
        manifest = sink.read_manifest(spark, value)
        q = quarantined.get(value)
        row: dict[str, Any] = {"partition": value}
        if manifest is not None:
            row.update(state="published", run_id=manifest.get("run_id"),
                       at=manifest.get("published_at"), status=manifest.get("status"))  # fmt: skip
            if q is not None and q["run_id"] > str(manifest.get("run_id")):
                row["later_quarantine"] = q["run_id"]
        elif q is not None:
            row.update(state="quarantined", run_id=q["run_id"], at=q["quarantined_at"],
                       failed=q["failed_checks"])  # fmt: skip
        elif value in staged:
            row.update(state="staged", run_id=staged[value][-1], at=None)
        else:
            row.update(state="missing", run_id=None, at=None)
        if value in staged:
            row["staged"] = staged[value]
        rows.append(row)
    return rows


def _find(spark: Any, sink: Any, partition: str, run_id: str) -> Path:
    where = _quarantine_root(spark, sink) / f"{sink.partition_column}={partition}" / run_id
    if not where.is_dir():
        raise MissingInputError(f"no quarantined run {run_id} for partition {partition}")
    return where


def quarantine_drop(spec: PipelineSpec | str | Path, partition: str, run_id: str, *,
                    master: str | None = None, warehouse: str | None = None) -> str:  # fmt: skip
    """Delete one quarantined run (its data and gate result)."""
    _, spark, _, sink = _tables(spec, master, warehouse)
    where = _find(spark, sink, partition, run_id)
    shutil.rmtree(where)
    parent = where.parent
    if parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
    return str(where)


def quarantine_release(
    spec: PipelineSpec | str | Path,
    partition: str,
    run_id: str,
    reason: str,
    *,
    master: str | None = None,
    warehouse: str | None = None,
) -> str:
    """Publish a quarantined run's data despite its failed gate; return the location."""
    from pipelines.storage import new_run_id

    if not reason.strip():
        raise SpecError("--reason: say why the failed gate is overridden")
    spec_obj, spark, _, sink = _tables(spec, master, warehouse)
    where = _find(spark, sink, partition, run_id)
    if not (where / "data").is_dir():
        raise MissingInputError(
            f"quarantined run {run_id} has no data (its input gate failed before staging); "
            "fix the source and run again"
        )
    note = json.loads((where / "gate.json").read_text())
    data = spark.read.format(sink.ref.format).load(str(where / "data"))
    rows = data.count()
    new_id = new_run_id()
    staged = sink.staging_dir(spark, new_id, partition)
    staged.parent.mkdir(parents=True, exist_ok=True)
    os.rename(where / "data", staged)
    manifest = {
        **{k: note.get(k) for k in ("pipeline", "partition", "code_version")},
        "run_id": new_id,
        "spec_hash": spec_hash(spec_obj),
        "input_rows": rows,
        "output_rows": rows,
        "suppressed_rows": 0,
        "output_schema": {f.name: f.dataType.simpleString() for f in data.schema.fields},
        "quality": {"overridden": note.get("gates"), "failed_stage": note.get("failed_stage")},
        "override": {
            "quarantined_run": run_id,
            "by": getpass.getuser(),
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "reason": reason,
        },
        "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "status": "released_from_quarantine",
    }
    location = sink.publish(spark, staged, partition, manifest)
    (where / "released.json").write_text(
        json.dumps({"published_run": new_id, **manifest["override"]})
    )
    return location
