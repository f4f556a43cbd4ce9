"""The privacy/utility report: static HTML pages beside the Data Docs.

``anonymize report SPEC [--partition P]`` writes, under
``<docs root>/_quality/report/`` (the directory holding the Data Docs site):

* ``<spec name>/index.html``: the table as a whole — one row per published
  partition, trends across partitions (rows, suppression, GCP, budget), what each
  column becomes;
* ``<spec name>/<column>=<value>.html``: one published partition — each column's
  action, parameters and key fingerprint, input/output rows, suppression, the gate
  results with a link to the Data Docs, the k-anonymity measures (class-size
  histogram, NCP per quasi-identifier and GCP, prosecutor risk, l and t) and each
  DP release (error report, released values with their 95 % intervals, budget);
* ``plotly.min.js``: the one script every page loads (Plotly's own bundle, copied
  from the installed package: the pages work offline and embed no library).

Sources, and only these: the publish history of manifests (the sink's and each
release's control root, ``_manifests/``), the DP ledger, and the DP store's copy
of each *released* (noisy) table. Raw data is never read, and no Spark session is
started. The DP part shows only released values and public facts (mechanism,
scale, interval, budget): no exact count of a release's input rows, dropped units
or candidate groups, as its error report already withholds them. The desensitized
table's part shows its manifest's exact input, output and suppressed row counts:
they are not differentially private (output rows are what any reader of the
published table counts; input rows add the suppressed ones).

Plots: Plotly (:mod:`pipelines.report.figures`); pages: Jinja2 templates in
``pipelines/report/templates/`` with autoescaping.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.manifest import Manifest, ReleaseManifest, publish_order, read_manifest
from pipelines.partition import Partition, dirname_value
from pipelines.spec.models import PipelineSpec
from pipelines.storage import layout

#: The report's directory under ``<docs root>/_quality/``.
REPORT = "report"
SCRIPT = "plotly.min.js"


@dataclass(frozen=True)
class ReleaseView:
    """One DP release of a partition, as published.

    Attributes:
        name: The release's name in the spec.
        manifest: Its latest release manifest.
        rows: The released (noisy) rows from the DP store, or None if the stored
            copy is not there (removed by hand, or the runs used another warehouse).
        store: Where the stored copies of this release's partition are kept.
    """

    name: str
    manifest: ReleaseManifest
    rows: list[dict[str, Any]] | None
    store: Path | None = None


@dataclass(frozen=True)
class PartitionView:
    """One published partition and what was released from it.

    Attributes:
        value: The partition value.
        dirname: ``<column>=<value>``.
        manifest: The latest manifest in its publish history.
        publishes: How many publishes the history holds.
        releases: Its DP releases, in spec order.
        spent: Budget charged to it (spent and reserved), in the policy's unit; None
            without a DP policy or when its ledger is not found.
        window_used: Budget used in the fullest policy window containing it.
    """

    value: str
    dirname: str
    manifest: Manifest
    publishes: int
    releases: list[ReleaseView] = field(default_factory=list)
    spent: float | None = None
    window_used: float | None = None


def _history(root: Path, dirname: str) -> list[Manifest | ReleaseManifest]:
    """A partition's publish history, in publish order (the last is the published one).

    Ordered by :func:`pipelines.manifest.publish_order`.
    """
    files = sorted((root / layout.MANIFESTS / dirname).glob("*.json"), key=publish_order)
    return [m for m in map(read_manifest, files) if m is not None]


def _released_rows(store: Path, manifest: ReleaseManifest) -> list[dict[str, Any]] | None:
    import pyarrow.parquet as pq

    kept = store / (manifest.republished_from or manifest.run_id)
    if any(kept.glob("*.parquet")):
        return pq.read_table(kept).to_pylist()  # files named _*/.* (the manifest) are skipped
    if any(kept.glob("*.csv")):  # a csv release sink's stored copy (written with a header)
        import pyarrow as pa
        import pyarrow.csv as pc

        return pa.concat_tables([pc.read_csv(f) for f in sorted(kept.glob("*.csv"))]).to_pylist()
    return None


def collect(spec: PipelineSpec, warehouse: Path) -> list[PartitionView]:
    """Every published partition of the spec's sink, oldest first, with its releases.

    Args:
        spec: The validated spec.
        warehouse: The warehouse root the runs used.

    Returns:
        The partitions (empty when nothing is published).
    """
    from pipelines.errors import SpecError

    control = layout.control_dir(warehouse, spec.sink)
    history = control / layout.MANIFESTS
    budget = _Budget.open(spec, warehouse)
    views = []
    for part in sorted(history.iterdir()) if history.is_dir() else []:
        value = dirname_value(spec.partition_column, part.name)
        try:
            Partition.parse(spec.partition_column, value or "")
        except SpecError:  # not a partition's history (a stray or backup directory)
            continue
        published = _history(control, part.name)
        if not published or not isinstance(published[-1], Manifest):
            continue
        releases = []
        for name, rel in spec.releases.items():
            rel_history = _history(layout.control_dir(warehouse, rel.sink), part.name)
            rm = rel_history[-1] if rel_history else None
            if isinstance(rm, ReleaseManifest):
                store = warehouse / layout.DP / layout.DP_STORE / spec.name / name / value
                releases.append(ReleaseView(name, rm, _released_rows(store, rm), store))
        spent, used = budget.at(value)
        views.append(PartitionView(value, part.name, published[-1], len(published), releases,
                                   spent, used))  # fmt: skip
    return views


@dataclass
class _Budget:
    """Charges per partition and window use, from the ledger (read only)."""

    spec: PipelineSpec
    ledger: Any
    spent: dict[str, float]

    @classmethod
    def open(cls, spec: PipelineSpec, warehouse: Path) -> _Budget:
        from pipelines.dp.ledger import Ledger, ledger_url

        policy = spec.dp_budget
        if policy is None:
            return cls(spec, None, {})
        if policy.ledger is None:
            path = warehouse / layout.DP / layout.LEDGER
            if not path.is_file():  # never create a ledger to read it: unknown instead
                return cls(spec, None, {})
        ledger = Ledger(ledger_url(policy, warehouse))
        return cls(spec, ledger, ledger.spent(spec.name, policy))

    def at(self, value: str) -> tuple[float | None, float | None]:
        if self.spec.dp_budget is None or self.ledger is None:  # no policy, or no ledger
            return None, None
        state = self.ledger.remaining(self.spec.name, self.spec.dp_budget, value)
        return self.spent.get(value, 0.0), state.used


def report_dir(docs_root: Path) -> Path:
    """Where the report pages go: beside the Data Docs site.

    Args:
        docs_root: The directory holding ``_quality/`` (see
            :func:`pipelines.run_context.docs_root`).

    Returns:
        ``<docs_root>/_quality/report``.
    """
    return Path(docs_root) / layout.QUALITY / REPORT


def build(
    spec: PipelineSpec, warehouse: Path, docs_root: Path, partition: str | None = None
) -> Path:
    """Write the table page and every partition page (or one partition's).

    A ``partition`` that is not a valid value of the partition column raises SpecError
    (from ``Partition.parse``) before anything is read.

    Args:
        spec: The validated spec.
        warehouse: The warehouse root the runs used.
        docs_root: The directory holding ``_quality/`` (the Data Docs').
        partition: Only this partition's page (and the table page), or all.

    Returns:
        The partition's page when ``partition`` is given, else the table page.

    Raises:
        MissingInputError: Nothing is published, or ``partition`` is not (exit 4).
    """
    from pipelines.errors import MissingInputError
    from pipelines.report.render import write_pages

    wanted = Partition.parse(spec.partition_column, partition, "--partition") if partition else None
    views = collect(spec, warehouse)
    shown = views
    if wanted is not None:
        shown = [v for v in views if v.value == wanted.value]
        if not shown:
            raise MissingInputError(
                f"partition {wanted.dirname} of {spec.sink.display} is not published; "
                "nothing to report"
            )
    if not views:
        raise MissingInputError(
            f"{spec.sink.display} has no published partition; nothing to report"
        )
    out = report_dir(docs_root)
    index, pages = write_pages(spec, views, shown, out, warehouse)
    return pages[shown[0].value] if partition is not None else index


def relative_link(target: str | Path | None, page_dir: Path) -> str | None:
    """A link from a page to a local file, relative so the report can be moved with it.

    Args:
        target: The file (absolute), or None.
        page_dir: The directory of the page that links to it.

    Returns:
        A relative URL, or None.
    """
    if not target:
        return None
    return Path(os.path.relpath(target, page_dir)).as_posix()


def compact(params: dict[str, Any]) -> str:
    """An action's parameters as one line of JSON, ``kind`` left out.

    Args:
        params: The validated action (the manifest's ``columns`` entry).

    Returns:
        ``{"length": 3}``-style text, or ``""``.
    """
    rest = {k: v for k, v in params.items() if k != "kind" and v not in (None, [], {})}
    return json.dumps(rest, sort_keys=True, ensure_ascii=False) if rest else ""
