"""Run a spec's DP releases for one partition: charge, compute, publish, record.

For each release: if the ledger already holds a spent charge for this partition
and the release is published (or stored), nothing is computed or charged — the
stored release is republished when the published copy is missing. Otherwise (or
with ``re_release=True``) the charge is reserved in the ledger *before* any data
is read (a run over budget is refused with the remaining budget in the message),
the release is computed (bounding and aggregation in Spark, OpenDP noise per
Arrow batch), staged, stored under ``<warehouse>/_dp/store/``, published
atomically with a manifest holding the error report, and the charge is marked
spent. A failure before the staging write refunds the reservation (no noise was
drawn); a failure after it keeps the charge (noise may have been drawn), and once
the release is in the store a failed publish is finished by the next run, which
republishes the stored copy free of charge.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path
from typing import Any

from pipelines.dp import release as rl
from pipelines.dp.ledger import Ledger, ledger_url
from pipelines.errors import PipelinesError, QualityGateFailed, SpecError
from pipelines.spec import load_spec, spec_hash
from pipelines.spec.models import MeanMetric, PipelineSpec, QuantileMetric, Release

log = logging.getLogger(__name__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def error_report(rel: Release, plan: rl.Plan) -> dict[str, Any]:
    """Per metric: noise distribution, scale and 95 % half-width in output units."""
    metrics: dict[str, Any] = {}
    for name, m in rel.metrics.items():
        r = getattr(m, "resolution", 1.0)
        entry: dict[str, Any] = {"kind": m.kind, "budget_share": plan.shares[name]}
        if hasattr(m, "lower"):
            entry["clamp"] = [m.lower, m.upper]
            entry["resolution"] = r
        if isinstance(m, MeanMetric):
            entry["mechanism"] = "mid + noisy centered sum / max(noisy count, 1), clamped"
            entry["count_noise"] = plan.noises[f"{name}.count"].describe()
            entry["centered_sum_noise"] = plan.noises[f"{name}.sum"].describe(r)
            entry["ci95_half_width"] = None
            entry["ci95_note"] = (
                "a ratio of two noisy values has no closed-form interval; for a group of n "
                "rows it is about centered_sum half-width / n"
            )
        elif isinstance(m, QuantileMetric):
            q = plan.quantiles[name]
            entry["mechanism"] = "exponential mechanism over candidates (OpenDP private quantile)"
            entry["candidates"] = len(q.candidates)
            entry["candidate_step"] = q.candidates[1] - q.candidates[0]
            entry["scale"] = q.scale
            entry["ci95_rank_half_width"] = q.rank_half_width()
            entry["ci95_note"] = "in ranks (rows) around the true quantile, not in value units"
        else:
            entry["mechanism"] = "noisy aggregate"
            entry.update(plan.noises[name].describe(r if m.kind == "sum" else 1.0))
        metrics[name] = entry
    report: dict[str, Any] = {
        "accounting": "rho-zCDP" if plan.zcdp else "pure epsilon-DP",
        "total": plan.total,
        "metrics": metrics,
        "bounding": {
            "max_groups_per_unit": rel.bounds.max_groups_per_unit,
            "max_rows_per_group": rel.bounds.max_rows_per_group,
            "rows_and_units_dropped": "withheld",
            "why": "the exact numbers are a function of the private data and no budget is "
            "assigned to noising them; raise the bounds if too much is dropped "
            "(measure on a public or synthetic sample)",
        },
        "post_processing": "counts clamped at 0; sums clamped at 0 when lower >= 0; "
        "means clamped to [lower, upper]; fixed-point sums scaled back by the resolution",
    }
    if plan.selection is not None:
        s = plan.selection
        report["selection"] = {
            "mechanism": "optimal partition selection on distinct units per group "
            "(Desfontaines et al. 2022), keep probability pi(n)",
            "epsilon": s.epsilon,
            "delta": s.delta,
            "threshold": s.threshold,
            "threshold_meaning": "smallest number of units kept with probability >= 1/2",
            "always_kept_from": s.always,
        }
    return report


def release_partition(
    spec: PipelineSpec | str | Path,
    partition: str,
    *,
    names: list[str] | None = None,
    re_release: bool = False,
    master: str | None = None,
    conf: dict[str, str] | None = None,
    warehouse: str | None = None,
    noise: bool = True,
) -> list[dict[str, Any]]:
    """Run the spec's releases (or ``names``) for one partition; one summary each."""
    from pipelines.keys import resolve_keys
    from pipelines.quality.gate import run_gate
    from pipelines.quality.suites import release_suite
    from pipelines.runner import code_version
    from pipelines.session import get_session, session_warehouse
    from pipelines.storage import Table, new_run_id, parse_partition, write_json

    spec_obj = spec if isinstance(spec, PipelineSpec) else load_spec(spec)
    if not spec_obj.releases:
        raise SpecError("releases: the spec declares no DP releases")
    chosen = names or list(spec_obj.releases)
    for n in chosen:
        if n not in spec_obj.releases:
            raise SpecError(f"releases.{n}: no such release ({', '.join(spec_obj.releases)})")
    parse_partition(partition)
    keys = resolve_keys(spec_obj)
    key = keys.get(_unit_key(spec_obj)) if keys else None
    spark = get_session(master=master, conf=conf, warehouse=warehouse)
    wh = session_warehouse(spark)
    policy = spec_obj.dp_budget
    ledger = Ledger(ledger_url(policy, wh))
    source = Table(spec_obj.source, spec_obj.partition_column, wh)
    out = []
    for name in chosen:
        rel = spec_obj.releases[name]
        sink = Table(rel.sink, spec_obj.partition_column, wh)
        store = wh / "_dp" / "store" / spec_obj.name / name / partition
        prior = ledger.released(spec_obj.name, partition, name)
        if prior is not None and not re_release:
            out.append(_already(spark, sink, store, prior, partition, name))
            continue
        plan = rl.plan(rel)
        run_id = new_run_id()
        charge = plan.charge()
        charge_id = ledger.reserve(spec_obj.name, partition, name, run_id, charge, policy)
        staged = sink.staging_dir(spark, run_id, partition)
        try:
            raw = source.read_partition(spark, partition)
            missing = [c for c in {spec_obj.privacy_unit, *rel.group_by} if c not in raw.columns]
            if missing:
                raise SpecError(f"releases.{name}: source has no column {', '.join(missing)}")
            table = rl.compute(
                raw,
                rel,
                spec_obj.privacy_unit,
                rl.seed_for(key.material if key else None, name),
                plan,
                warehouse=wh,
                noise=noise,
            )
        except BaseException:
            ledger.settle(charge_id, "refunded", None)
            raise
        stored = False
        try:  # noise may have been drawn from here on: a failure keeps the charge spent
            sink.write_staged(table, staged)
            staged_df = sink.read_staged(spark, staged, table.schema)
            released = staged_df.count()
            n_keys = None if rel.keys == "private" else rl.public_keys(
                rel.keys, rel.group_by, raw, wh).count()  # fmt: skip
            suite = release_suite(spec_obj, name, table.schema, n_keys)
            gate, _ = run_gate(suite, staged_df, spec_obj.name)
            if not gate.passed:
                ledger.settle(charge_id, "spent", "noise drawn; release failed its gate")
                note = {"run_id": run_id, "release": name, "gates": {gate.stage: gate.to_dict()}}
                where = sink.quarantine(spark, staged, partition, run_id, note)
                raise QualityGateFailed(
                    f"release {name} of partition {partition}: gate failed: "
                    f"{gate.describe_failures()}; nothing published; in {where}"
                )
            manifest = {
                "run_id": run_id,
                "pipeline": spec_obj.name,
                "release": name,
                "partition": {"column": spec_obj.partition_column, "value": partition},
                "spec_hash": spec_hash(spec_obj),
                "code_version": code_version(),
                "sink": sink.display,
                "group_by": list(rel.group_by),
                "keys": "private" if rel.keys == "private" else "public",
                "released_groups": released,
                "quality": {"release": gate.to_dict()},
                "noise": noise,
                "charge": {**charge, "ledger_id": charge_id},
                "error_report": error_report(rel, plan),
                "output_schema": {f.name: f.dataType.simpleString() for f in table.schema.fields},
                "published_at": _now(),
                "status": "published",
            }
            store.mkdir(parents=True, exist_ok=True)
            shutil.copytree(staged, store / run_id)
            write_json(store / run_id / "_release_manifest.json", manifest)
            stored = True  # from here on the release exists: later runs republish it
            location = sink.publish(spark, staged, partition, manifest)
        except QualityGateFailed:
            raise
        except BaseException:
            # A stored release is republished by the next run, free of charge; without
            # one the next run draws (and is charged) anew.
            note = None if stored else "failed after noise may have been drawn"
            ledger.settle(charge_id, "spent", note)
            sink.discard(staged)
            raise
        ledger.settle(charge_id, "spent", None)
        manifest["budget_after"] = ledger.remaining(spec_obj.name, policy, partition)
        log.info("release %s of %s published (%s groups)", name, partition, released)
        out.append({"release": name, "status": "published", "published": location,
                    "charged": charge, "manifest": manifest})  # fmt: skip
    return out


def _unit_key(spec: PipelineSpec) -> str | None:
    action = spec.columns.get(spec.privacy_unit)
    return getattr(action, "key", None)


def _already(spark, sink, store: Path, prior: dict, partition: str, name: str) -> dict[str, Any]:  # noqa: ANN001
    """An already released partition: republish the stored copy if needed, charge nothing."""
    from pipelines.storage import new_run_id

    manifest = sink.read_manifest(spark, partition)
    if manifest is not None and prior["run_id"] in (
        manifest.get("run_id"),
        manifest.get("republished_from"),
    ):
        return {"release": name, "status": "already released", "published":
                str(sink.published_location(spark, partition)), "charged": None,
                "manifest": manifest}  # fmt: skip
    kept = store / prior["run_id"]
    if not kept.is_dir():
        raise PipelinesError(
            f"release {name} of partition {partition} was released (run {prior['run_id']}) but "
            f"neither the published copy nor the stored one ({kept}) is there; "
            "--re-release draws fresh noise and is charged"
        )
    import json

    stored = json.loads((kept / "_release_manifest.json").read_text())
    run_id = new_run_id()
    staged = sink.staging_dir(spark, run_id, partition)
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(kept, staged, ignore=shutil.ignore_patterns("_release_manifest.json"))
    manifest = {
        **stored,
        "run_id": run_id,
        "republished_from": prior["run_id"],
        "published_at": _now(),
    }
    location = sink.publish(spark, staged, partition, manifest)
    return {"release": name, "status": "republished", "published": location, "charged": None,
            "manifest": manifest}  # fmt: skip
