"""Run a spec's DP releases for one partition, each as a straight sequence.

    plan -> reserve -> compute -> gate -> store -> publish -> settle

* **plan**: split the release's budget and calibrate every mechanism; each one's
  loss by OpenDP's map is checked against its share before anything else
  (:func:`~pipelines.dp.plan.plan_release`);
* **reserve**: the ledger reserves the whole charge *before* any data is read (a
  run over budget is refused with the remaining budget in the message);
* **compute**: bounding and aggregation in Spark, OpenDP noise per Arrow batch;
  the release is written to staging, which draws the noise;
* **gate**: the release gate on the staged table (failure: quarantine);
* **store**: a copy under ``<warehouse>/_dp/store/``: once stored, the release
  exists, and later runs republish it free of charge;
* **publish**: atomically, with a manifest holding the error report;
* **settle**: the charge is marked spent.

A failure before the staging write refunds the reservation (no noise was drawn); a
failure after it keeps the charge spent (noise may have been drawn). An already
released partition is not recomputed or charged: the stored release is
republished where the published copy is missing (``re_release=True`` draws anew,
and is charged).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.dp import release as rl
from pipelines.dp.accounting import Budget
from pipelines.dp.ledger import Charge, Ledger, ledger_url
from pipelines.dp.plan import ReleasePlan, plan_release
from pipelines.dp.report import error_report
from pipelines.errors import PipelinesError, QualityGateFailed, SpecError, driver_errors
from pipelines.keys import resolve_keys
from pipelines.manifest import ReleaseManifest
from pipelines.partition import Partition
from pipelines.plan import code_version
from pipelines.records import QuarantineNote, RunIdentity
from pipelines.run_context import now
from pipelines.spec.loader import load_spec, spec_hash
from pipelines.spec.models import PipelineSpec
from pipelines.storage import layout, new_run_id
from pipelines.storage.files import write_json
from pipelines.storage.lease import sink_lease

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from pipelines.storage.base import Staged, Table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReleaseResult:
    """What one release of one partition did.

    Attributes:
        release: The release's name.
        status: ``published``, ``already released`` or ``republished``.
        published: The published location.
        charged: The charge, or None when nothing was charged.
        manifest: The published partition's manifest.
    """

    release: str
    status: str
    published: str
    charged: Budget | None
    manifest: ReleaseManifest

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--json`` form (with the error report, without the manifest).

        Returns:
            A JSON-ready dict.
        """
        return {"release": self.release, "status": self.status, "published": self.published,
                "charged": self.charged.to_json() if self.charged else None,
                "error_report": self.manifest.error_report}  # fmt: skip


@dataclass
class ReleaseRun:
    """One release of one partition: what its steps share.

    Attributes:
        spec: The validated spec.
        name: The release's name.
        partition: The partition.
        spark: The session.
        warehouse: The warehouse root.
        source: The source table.
        sink: The release table.
        ledger: The budget ledger.
        seed: The contribution-bounding hash seed.
        noise: False only for tests of the non-noise logic.
        key_fingerprints: The fingerprint of the key ``seed`` derives from (the
            privacy unit's; empty when it has none).
    """

    spec: PipelineSpec
    name: str
    partition: Partition
    spark: SparkSession
    warehouse: Path
    source: Table
    sink: Table
    ledger: Ledger
    seed: str
    noise: bool = True
    key_fingerprints: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def release(self) -> Any:
        """The release's spec block."""
        return self.spec.releases[self.name]

    @property
    def store(self) -> Path:
        """Where stored releases of this partition are kept (one directory per run)."""
        store = self.warehouse / layout.DP / layout.DP_STORE
        return store / self.spec.name / self.name / self.partition.value

    def identity(self, run_id: str) -> RunIdentity:
        """The identity of a run of this release.

        Args:
            run_id: The run.

        Returns:
            Its identity.
        """
        return RunIdentity(
            run_id, self.spec.name, self.partition, spec_hash(self.spec), code_version()
        )


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
) -> list[ReleaseResult]:
    """Run the spec's releases (or ``names``) for one partition.

    Besides the errors below, the steps it runs raise: SpecError for a bad partition or
    key; BudgetExceededError when a release would exceed the budget (nothing computed);
    QualityGateFailed when a release fails its gate (quarantined; the charge stands).

    Args:
        spec: A validated spec or its YAML path.
        partition: The partition value.
        names: Only these releases (default: all).
        re_release: Draw fresh noise for an already released partition (charged).
        master: Spark master URL.
        conf: Extra Spark properties.
        warehouse: The warehouse root.
        noise: False only for tests of the non-noise logic (the CLI has no switch).

    Returns:
        One result per release.

    Raises:
        SpecError: The spec declares no releases, or ``names`` holds an unknown name.
    """
    from pipelines.session import get_session, import_gx_in_background, session_warehouse
    from pipelines.storage.base import open_table

    spec_obj = spec if isinstance(spec, PipelineSpec) else load_spec(spec)
    if not spec_obj.releases:
        raise SpecError("releases: the spec declares no DP releases")
    chosen = names or list(spec_obj.releases)
    for n in chosen:
        if n not in spec_obj.releases:
            raise SpecError(f"releases.{n}: no such release ({', '.join(spec_obj.releases)})")
    part = Partition.parse(spec_obj.partition_column, partition)
    keys = resolve_keys(spec_obj)
    unit_key = keys.get(getattr(spec_obj.columns.get(spec_obj.privacy_unit), "key", None) or "")
    import_gx_in_background()  # the release gate needs it
    spark = get_session(master=master, conf=conf, warehouse=warehouse)
    wh = session_warehouse(spark)
    assert spec_obj.dp_budget is not None  # the spec validates releases against it
    ledger = Ledger(ledger_url(spec_obj.dp_budget, wh))
    source = open_table(spec_obj.source, spec_obj.partition_column, wh, spark)
    out = []
    for name in chosen:
        sink = open_table(spec_obj.releases[name].sink, spec_obj.partition_column, wh, spark,
                          spec_obj.quarantine_root(wh, name))  # fmt: skip
        seed = rl.seed_for(unit_key.material if unit_key else None, name)
        fingerprints = {unit_key.name: unit_key.fingerprint} if unit_key else {}
        run = ReleaseRun(spec_obj, name, part, spark, wh, source, sink, ledger, seed, noise,
                         fingerprints)  # fmt: skip
        with sink_lease(spec_obj.releases[name].sink, part, warehouse, f"release {name}"):
            prior = ledger.released(spec_obj.name, part.value, name)
            with driver_errors():
                out.append(_already_released(run, prior) if prior and not re_release
                           else _release(run))  # fmt: skip
    return out


def _release(run: ReleaseRun) -> ReleaseResult:
    """Plan -> reserve -> compute -> gate -> store -> publish -> settle."""
    plan = plan_release(run.release)
    run_id, charge = new_run_id(), plan.charge()
    charge_id = run.ledger.reserve(run.spec.name, run.partition.value, run.name, run_id,
                                   charge, run.spec.dp_budget)  # fmt: skip
    try:
        raw, table = _compute(run, plan)
    except BaseException:
        run.ledger.settle(charge_id, "refunded", None)  # nothing was drawn
        raise
    staged, stored = run.sink.staged(run_id, run.partition), False
    try:  # noise may be drawn from here on: a failure keeps the charge spent
        run.sink.write_staged(table, staged)
        gate, released = _gate(run, raw, table, staged, charge_id)
        manifest = ReleaseManifest(
            identity=run.identity(run_id),
            release=run.name,
            status="published",
            published_at=now(),
            sink=run.sink.display,
            group_by=list(run.release.group_by),
            keys="private" if run.release.keys == "private" else "public",
            released_groups=released,
            noise=run.noise,
            charge={**charge.to_json(), "ledger_id": charge_id},
            error_report=error_report(run.release, plan),
            quality={"release": gate},
            output_schema={f.name: f.dataType.simpleString() for f in table.schema.fields},
            key_fingerprints=run.key_fingerprints,
        )
        _store(run, staged, manifest)
        stored = True  # from here on the release exists: later runs republish it
        location = run.sink.publish(staged, manifest)
    except QualityGateFailed:
        raise
    except BaseException:
        # A stored release is republished by the next run, free of charge; without
        # one the next run draws (and is charged) anew.
        run.ledger.settle(
            charge_id, "spent", None if stored else "failed after noise may have been drawn"
        )
        run.sink.discard(staged)
        raise
    run.ledger.settle(charge_id, "spent", None)
    log.info("release %s of %s published (%s groups)", run.name, run.partition, released)
    return ReleaseResult(run.name, "published", location, charge, manifest)


def _compute(run: ReleaseRun, plan: ReleasePlan) -> tuple[DataFrame, DataFrame]:
    """The source partition and the (lazy) release table."""
    from pyspark.sql import functions as F

    from pipelines.storage.text import MALFORMED

    raw = run.source.read_partition(
        run.partition, run.spec.declared_types(), run.spec.source_names()
    )
    if MALFORMED in raw.columns:
        bad = raw.agg(F.sum(F.col(MALFORMED).cast("long"))).first()[0] or 0
        if bad:
            raise QualityGateFailed(
                f"release {run.name} of partition {run.partition}: {bad} source rows do not "
                "parse with the columns' declared types; nothing computed (no noise drawn)"
            )
        raw = raw.drop(MALFORMED)
    needed = {run.spec.privacy_unit, *run.release.group_by}
    missing = sorted(c for c in needed if c not in raw.columns)
    if missing:
        raise SpecError(f"releases.{run.name}: source has no column {', '.join(missing)}")
    table = rl.compute(raw, run.release, run.spec.privacy_unit, run.seed, plan,
                       warehouse=run.warehouse, noise=run.noise)  # fmt: skip
    return raw, table


def _gate(run: ReleaseRun, raw: DataFrame, table: DataFrame,
          staged: Staged, charge_id: int) -> tuple[Any, int]:  # fmt: skip
    """The release gate on the staged table; quarantine (charge spent) on failure."""
    from pipelines.quality.gate import run_gate
    from pipelines.quality.suites import release_suite

    staged_df = run.sink.read_staged(staged, table.schema)
    released = staged_df.count()
    keys = run.release.keys
    n_keys = None if keys == "private" else rl.public_keys(
        keys, run.release.group_by, raw, run.warehouse).count()  # fmt: skip
    suite = release_suite(run.spec, run.name, table.schema, n_keys)
    gate, _ = run_gate(suite, staged_df, run.spec.name)
    if not gate.passed:
        run.ledger.settle(charge_id, "spent", "noise drawn; release failed its gate")
        note = QuarantineNote(run.identity(staged.run_id), now(), gate.stage, {gate.stage: gate},
                              release=run.name)  # fmt: skip
        where = run.sink.quarantine(staged, run.partition, staged.run_id, note)
        raise QualityGateFailed(
            f"release {run.name} of partition {run.partition}: gate failed: "
            f"{gate.describe_failures()}; nothing published; in {where}"
        )
    return gate, released


def _store(run: ReleaseRun, staged: Staged, manifest: ReleaseManifest) -> None:
    """Keep a copy of the staged release and its manifest under the DP store."""
    kept = run.store / manifest.run_id
    run.store.mkdir(parents=True, exist_ok=True)
    run.sink.copy_staged(staged, kept)
    write_json(kept / layout.RELEASE_MANIFEST, manifest.to_json())


def _already_released(run: ReleaseRun, prior: Charge) -> ReleaseResult:
    """An already released partition: republish the stored copy if needed, charge nothing."""
    manifest = run.sink.read_manifest(run.partition)
    if isinstance(manifest, ReleaseManifest) and prior.run_id in (
        manifest.run_id,
        manifest.republished_from,
    ):
        where = str(run.sink.published_location(run.partition))
        return ReleaseResult(run.name, "already released", where, None, manifest)
    kept = run.store / prior.run_id
    if not kept.is_dir():
        raise PipelinesError(
            f"release {run.name} of partition {run.partition} was released (run {prior.run_id}) "
            f"but neither the published copy nor the stored one ({kept}) is there; "
            "--re-release draws fresh noise and is charged"
        )
    stored = ReleaseManifest.from_json(json.loads((kept / layout.RELEASE_MANIFEST).read_text()))
    staged = run.sink.staged(new_run_id(), run.partition)
    staged.path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(kept, staged.path, ignore=shutil.ignore_patterns(layout.RELEASE_MANIFEST))
    manifest = dataclasses.replace(
        stored,
        identity=dataclasses.replace(stored.identity, run_id=staged.run_id),
        republished_from=prior.run_id,
        published_at=now(),
    )
    location = run.sink.publish(staged, manifest)
    return ReleaseResult(run.name, "republished", location, None, manifest)
