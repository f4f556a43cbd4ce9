"""Operations for the data-platform team: partition status and quarantine handling.

* :func:`status`: per partition (of the source and of the sink), ``published``
  (run id, time), ``quarantined`` (its latest run failed a gate and nothing is
  published), ``staged`` (a run staged and not published: in flight, or abandoned
  by an orchestrated run that never went on) or ``missing`` (in the source, never
  published). ``staged`` also lists unpublished staged runs beside a published or
  quarantined state.
* :func:`quarantine_list`, :func:`quarantine_drop`, :func:`quarantine_release`:
  the entries under ``<control root>/_quarantine/<col>=<value>/<run_id>/``.
  Releasing publishes the quarantined data *despite* its failed gate: a person's
  decision, so it needs a reason, and the manifest records who, when, why and
  which checks had failed (status ``released_from_quarantine``).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import MissingInputError, SpecError
from pipelines.manifest import Manifest, Quality
from pipelines.partition import Partition
from pipelines.records import QuarantineNote, RunIdentity
from pipelines.run_context import now
from pipelines.spec.loader import load_spec, spec_hash
from pipelines.spec.models import PipelineSpec
from pipelines.storage import check_run_id, layout, new_run_id
from pipelines.storage.files import remove_if_empty, write_json
from pipelines.storage.lease import lease_held

if TYPE_CHECKING:
    from pipelines.storage.base import Table


def _sink(spec: PipelineSpec | str | Path, master: str | None, warehouse: str | None,
          with_source: bool = False) -> tuple[PipelineSpec, Table, Table | None]:  # fmt: skip
    from pipelines.session import get_session, session_warehouse
    from pipelines.storage.base import open_table

    spec_obj = spec if isinstance(spec, PipelineSpec) else load_spec(spec)
    spark = get_session(master=master, warehouse=warehouse)
    wh = session_warehouse(spark)
    sink = open_table(spec_obj.sink, spec_obj.partition_column, wh, spark,
                      spec_obj.quarantine_root(wh))  # fmt: skip
    source = (
        open_table(spec_obj.source, spec_obj.partition_column, wh, spark) if with_source else None
    )
    return spec_obj, sink, source


def _entries(sink: Table) -> list[dict[str, Any]]:
    out = []
    for partition, run_id, where in sink.quarantined():
        note_file = where / layout.GATE_NOTE
        note = (
            QuarantineNote.from_json(json.loads(note_file.read_text()))
            if note_file.is_file()
            else None
        )
        out.append({
            "partition": partition.value,
            "run_id": run_id,
            "quarantined_at": note.quarantined_at if note else None,
            "failed_stage": note.failed_stage if note else None,
            "failed_checks": note.failed_checks if note else [],
            "has_data": (where / layout.QUARANTINED_DATA).is_dir(),
            "released": (where / layout.RELEASED_NOTE).exists(),
            "location": str(where),
        })  # fmt: skip
    return out


def quarantine_list(spec: PipelineSpec | str | Path, *, master: str | None = None,
                    warehouse: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Every quarantined run of the spec's sink.

    Args:
        spec: A validated spec or its YAML path.
        master: Spark master URL.
        warehouse: The warehouse root.

    Returns:
        Per run: partition, run id, time, failed stage and checks, whether data
        was kept and whether it was released, and its location.
    """
    return _entries(_sink(spec, master, warehouse)[1])


def status(spec: PipelineSpec | str | Path, *, master: str | None = None,
           warehouse: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """One row per partition of the source or the sink, newest first.

    Args:
        spec: A validated spec or its YAML path.
        master: Spark master URL.
        warehouse: The warehouse root.

    Returns:
        Rows with ``partition``, ``state`` (published, quarantined, staged or
        missing), ``run_id``, ``at`` and, where they apply, ``status``,
        ``table_version`` and ``source_version`` (table formats), ``failed``,
        ``later_quarantine``, ``staged`` (every staging directory of a run that has
        not published: in flight, waiting for its next step, or abandoned) and
        ``running`` (the run holding the partition's lease now).
    """
    spec_obj, sink, source = _sink(spec, master, warehouse, with_source=True)
    assert source is not None
    values = source.partition_values() | sink.partition_values()
    quarantined: dict[str, dict[str, Any]] = {}
    for e in _entries(sink):
        quarantined[e["partition"]] = e  # sorted by run id: the latest wins
    staged: dict[str, list[str]] = {}
    for st in sink.staging_dirs():
        staged.setdefault(st.partition.value, []).append(st.run_id)
    rows = []
    for value in sorted(values | set(quarantined) | set(staged), reverse=True):
        partition = Partition.parse(spec_obj.partition_column, value, f"partition {value}")
        manifest = sink.read_manifest(partition)
        q = quarantined.get(value)
        row: dict[str, Any] = {"partition": value}
        if manifest is not None:
            row.update(state="published", run_id=manifest.run_id, at=manifest.published_at,
                       status=manifest.status)  # fmt: skip
            for name in ("table_version", "source_version"):  # table formats
                if getattr(manifest, name, None) is not None:
                    row[name] = getattr(manifest, name)
            if q is not None and q["run_id"] > manifest.run_id:
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
        holder = lease_held(layout.lease_file(_lease_root(spec_obj, sink), partition.dirname))
        if holder is not None:
            row["running"] = holder.get("run_id")
        rows.append(row)
    return rows


def _lease_root(spec: PipelineSpec, sink: Table) -> Path:
    """Where the sink's leases are (as :func:`~pipelines.storage.lease.sink_lease` finds them)."""
    return layout.control_dir(sink.warehouse, spec.sink)


def _find(sink: Table, partition: Partition, run_id: str) -> Path:
    check_run_id(run_id, "--run-id")
    where = sink.quarantine_dir(partition, run_id)
    if not where.is_dir():
        raise MissingInputError(f"no quarantined run {run_id} for partition {partition}")
    return where


def quarantine_drop(spec: PipelineSpec | str | Path, partition: str, run_id: str, *,
                    master: str | None = None, warehouse: str | None = None) -> str:  # fmt: skip
    """Delete one quarantined run (its data and gate result).

    No such quarantined run raises MissingInputError, before anything is deleted.

    Args:
        spec: A validated spec or its YAML path.
        partition: The partition value.
        run_id: The quarantined run.
        master: Spark master URL.
        warehouse: The warehouse root.

    Returns:
        The deleted directory.
    """
    spec_obj = spec if isinstance(spec, PipelineSpec) else load_spec(spec)
    part = Partition.parse(spec_obj.partition_column, partition)  # before Spark starts
    check_run_id(run_id, "--run-id")
    _, sink, _ = _sink(spec_obj, master, warehouse)
    where = _find(sink, part, run_id)
    shutil.rmtree(where)
    remove_if_empty(where.parent)
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
    """Publish a quarantined run's data despite its failed gate.

    Args:
        spec: A validated spec or its YAML path.
        partition: The partition value.
        run_id: The quarantined run.
        reason: Why the failed gate is overridden (recorded in the manifest).
        master: Spark master URL.
        warehouse: The warehouse root.

    Returns:
        The published location.

    Raises:
        SpecError: No reason was given.
        MissingInputError: No such quarantined run, or it kept no data.
    """
    if not reason.strip():
        raise SpecError("--reason: say why the failed gate is overridden")
    spec_obj = spec if isinstance(spec, PipelineSpec) else load_spec(spec)
    part = Partition.parse(spec_obj.partition_column, partition)  # before Spark starts
    check_run_id(run_id, "--run-id")
    _, sink, _ = _sink(spec_obj, master, warehouse)
    where = _find(sink, part, run_id)
    if not (where / layout.QUARANTINED_DATA).is_dir():
        raise MissingInputError(
            f"quarantined run {run_id} has no data (its input gate failed before staging); "
            "fix the source and run again"
        )
    note = QuarantineNote.from_json(json.loads((where / layout.GATE_NOTE).read_text()))
    data = sink.spark.read.format(sink.stage_format).load(str(where / layout.QUARANTINED_DATA))
    rows = data.count()
    new_id = new_run_id()
    staged = sink.staged(new_id, part)
    staged.path.parent.mkdir(parents=True, exist_ok=True)
    os.rename(where / layout.QUARANTINED_DATA, staged.path)
    code_version = note.identity.code_version if note.identity else ""
    override = {"quarantined_run": run_id, "by": getpass.getuser(), "at": now(),
                "reason": reason, "failed_stage": note.failed_stage}  # fmt: skip
    manifest = Manifest(
        identity=RunIdentity(new_id, spec_obj.name, part, spec_hash(spec_obj), code_version),
        status="released_from_quarantine",
        published_at=now(),
        input_rows=rows,
        output_rows=rows,
        suppressed_rows=0,
        output_schema={f.name: f.dataType.simpleString() for f in data.schema.fields},
        quality=Quality(note.gates.get("input"), note.gates.get("output"), overridden=True),
        override=override,
    )
    location = sink.publish(staged, manifest)
    write_json(where / layout.RELEASED_NOTE, {"published_run": new_id, **override})
    return location


def restore(spec: PipelineSpec | str | Path, partition: str, run_id: str, *,
            master: str | None = None, warehouse: str | None = None) -> str:  # fmt: skip
    """Publish a retained earlier version of a partition again.

    Path and catalog tables keep the sink's ``keep_versions`` versions published
    before the current one (default 1); Iceberg and Delta tables every publish
    commit of the partition ``gc`` has not expired (read back by time travel). The
    restore is itself a publish: a
    new run id, a manifest with ``status: restored`` and ``restored_from``. No
    retained version of that run raises MissingInputError (from the table).

    Args:
        spec: A validated spec or its YAML path.
        partition: The partition value.
        run_id: The run whose version to restore.
        master: Spark master URL.
        warehouse: The warehouse root.

    Returns:
        The published location.
    """
    spec_obj = spec if isinstance(spec, PipelineSpec) else load_spec(spec)
    part = Partition.parse(spec_obj.partition_column, partition)  # before Spark starts
    check_run_id(run_id, "--to")
    _, sink, _ = _sink(spec_obj, master, warehouse)
    return sink.restore(part, run_id, new_run_id(), now())


def parse_duration(text: str) -> dt.timedelta:
    """``30m``, ``12h``, ``7d``, ``0s`` as a duration.

    Args:
        text: A number followed by s, m, h or d.

    Returns:
        The duration.

    Raises:
        SpecError: Anything else (names ``--older-than``).
    """
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not match:
        raise SpecError(f"--older-than: '{text}' is not a duration like 30m, 12h or 7d")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return dt.timedelta(**{unit: int(match.group(1))})


def gc(spec: PipelineSpec | str | Path, older_than: str = "7d", *, dry_run: bool = False,
       master: str | None = None, warehouse: str | None = None) -> list[str]:  # fmt: skip
    """Remove what killed or finished runs left behind, never a live run's files.

    Removed when older than ``older_than`` (by modification time): staging
    directories of runs that never published (abandoned by a killed run, or by an
    orchestrated run that never went on), retained previous versions in ``_trash``
    (path tables), and run key records under ``_runs``. On Iceberg and Delta tables
    it also expires snapshots (Iceberg) or vacuums data files (Delta) older than
    that, and removes files no snapshot references (a killed writer's orphans):
    earlier versions older than ``older_than`` can then no longer be read or
    restored. A partition whose lease a
    live run holds is skipped; gc holds the lease while it removes a partition's
    files, so no run can start on them meanwhile. Published data, manifests and
    quarantined runs are never touched.

    Args:
        spec: A validated spec or its YAML path.
        older_than: The age threshold (``7d``; ``0s`` removes every abandoned file).
        dry_run: List what would be removed, remove nothing.
        master: Spark master URL.
        warehouse: The warehouse root.

    Returns:
        The paths removed (or that would be).
    """
    from pipelines.errors import PartitionBusyError
    from pipelines.storage.lease import partition_lease

    age = parse_duration(older_than)
    spec_obj = spec if isinstance(spec, PipelineSpec) else load_spec(spec)
    _, sink, _ = _sink(spec_obj, master, warehouse)
    cutoff = dt.datetime.now(dt.UTC).timestamp() - age.total_seconds()
    root = sink.control_root
    found: dict[str, list[Path]] = {}
    staged = {st.path: st for st in sink.staging_dirs()}
    for st in staged.values():
        found.setdefault(st.partition.dirname, []).append(st.path)
    for kind in (layout.TRASH, layout.RUNS):
        for d in sorted((root / kind).glob(f"{spec_obj.partition_column}=*")):
            found.setdefault(d.name, []).extend(sorted(d.iterdir()))
    removed = []
    for dirname, paths in sorted(found.items()):
        old = [p for p in paths if p.exists() and p.stat().st_mtime < cutoff]
        if not old:
            continue
        lease = layout.lease_file(_lease_root(spec_obj, sink), dirname)
        try:
            with partition_lease(lease, "gc", f"partition {dirname} of {sink.display}"):
                for p in old:
                    removed.append(str(p))
                    if dry_run:
                        continue
                    if p in staged:  # the table's discard: an Iceberg run's branch goes too
                        sink.discard(staged[p])
                    else:
                        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
                        remove_if_empty(p.parent)
        except PartitionBusyError:
            continue  # a live run owns it
    from pipelines.storage.formats import FormatTable

    if isinstance(sink, FormatTable):  # old snapshots still hold old data: see the README
        removed += sink.expire(age.total_seconds() / 3600, dry_run)
    return removed
