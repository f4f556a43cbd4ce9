"""Turn the collected partitions into pages: Jinja2 templates plus Plotly figures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jinja2

from pipelines.report import SCRIPT, PartitionView, ReleaseView, compact, relative_link
from pipelines.report import figures as fg
from pipelines.spec.models import PipelineSpec
from pipelines.storage.files import write_text_atomic

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("pipelines.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _script(out: Path) -> None:
    """Copy Plotly's bundle beside the pages once (again only if plotly changed)."""
    import plotly
    from plotly.offline import get_plotlyjs

    target = out / SCRIPT
    stamp = out / f".{SCRIPT}.version"
    if target.is_file() and stamp.is_file() and stamp.read_text() == plotly.__version__:
        return
    write_text_atomic(target, get_plotlyjs())
    write_text_atomic(stamp, plotly.__version__)


def _columns(manifest: Any) -> list[dict[str, Any]]:
    rows = []
    for column, action in manifest.columns.items():
        key = action.get("key")
        rows.append({
            "column": column,
            "output": action.get("rename") or (None if action.get("kind") == "drop" else column),
            "kind": action.get("kind"),
            "method": action.get("method"),
            "params": compact({k: v for k, v in action.items() if k not in ("method", "rename")}),
            "key": key,
            "fingerprint": manifest.key_fingerprints.get(key) if key else None,
            "counts": manifest.action_counts.get(action.get("rename") or column, {}),
        })  # fmt: skip
    return rows


def _gates(manifest: Any, page_dir: Path) -> dict[str, Any]:
    q = manifest.quality
    if q is None:
        return {"stages": [], "docs": None, "warnings": [], "overridden": False}
    stages = []
    for gate in (q.input, q.output):
        if gate is None:
            continue
        stages.append({
            "stage": gate.stage,
            "passed": gate.passed,
            "checks": len(gate.checks),
            "failed": [(c.id, c.severity, c.observed_text()) for c in gate.checks if not c.success],
        })  # fmt: skip
    # The Data Docs beside the report (so the folder can be moved with them), else
    # where the run recorded them.
    beside = page_dir.parent.parent / "data_docs" / "index.html"
    docs = beside if beside.is_file() else q.data_docs
    return {"stages": stages, "docs": relative_link(docs, page_dir),
            "warnings": q.warnings, "overridden": q.overridden}  # fmt: skip


#: The k-anonymity block's keys the page reads; older manifests lack some of them.
_KANON_KEYS = ("k", "l", "t", "quasi_identifiers", "classes", "smallest_class",
               "fewest_sensitive_values", "entropy_l", "recursive_ratio", "largest_t",
               "suppressed", "mean_class_size", "class_size_histogram", "ncp", "gcp",
               "prosecutor_risk", "verified_by")  # fmt: skip


def _kanon(block: dict[str, Any] | None, prefix: str) -> dict[str, Any] | None:
    if not block:
        return None
    ka = {key: block.get(key) for key in _KANON_KEYS}
    if isinstance(ka["l"], int):  # manifests before l-diversity kinds: a bare l
        ka["l"] = {"kind": "distinct", "l": ka["l"]}
    rows: list[tuple[str, float | None, float | None]] = [
        ("k (smallest class)", ka["k"], ka["smallest_class"])
    ]
    lspec, tspec = ka["l"], ka["t"]
    if lspec:
        kind = lspec.get("kind", "distinct")
        if kind == "recursive":  # holds when the measured ratio is below c
            rows.append((f"c of recursive (c,{lspec.get('l')})-diversity", lspec.get("c"),
                         ka["recursive_ratio"]))  # fmt: skip
        elif kind == "entropy":
            rows.append(("entropy l", lspec.get("l"), ka["entropy_l"]))
        else:
            rows.append(("distinct l", lspec.get("l"), ka["fewest_sensitive_values"]))
    if tspec:
        rows.append((f"t ({tspec.get('distance', 'equal')} distance)", tspec.get("t"),
                     ka["largest_t"]))  # fmt: skip
    figs = []
    if ka["class_size_histogram"]:
        fig = fg.class_sizes(ka["class_size_histogram"], ka["k"])
        figs.append(fg.to_div(fig, f"{prefix}-class-sizes"))
    if ka["ncp"]:
        figs.append(fg.to_div(fg.information_loss(ka["ncp"], ka["gcp"]), f"{prefix}-ncp"))
    if ka["prosecutor_risk"]:
        figs.append(fg.to_div(fg.prosecutor_risk(ka["prosecutor_risk"]), f"{prefix}-risk"))
    figs.append(fg.to_div(fg.guarantees(rows), f"{prefix}-guarantees"))
    return {"summary": ka, "figures": figs}


def _release(rv: ReleaseView, prefix: str, index: int) -> dict[str, Any]:
    m = rv.manifest
    report = m.error_report
    metrics = []
    for i, (name, entry) in enumerate(report.get("metrics", {}).items()):
        fig = None
        if rv.rows:
            rows = sorted(rv.rows, key=lambda r: tuple(str(r.get(g)) for g in m.group_by))
            groups = [" / ".join(str(r.get(g)) for g in m.group_by) for r in rows]
            fig = fg.to_div(
                fg.released_values(groups, [r.get(name) for r in rows],
                                   entry.get("ci95_half_width"), name),  # fmt: skip
                f"{prefix}-{index}-{i}",  # ids from positions: names are not HTML-safe
            )
        metrics.append({"name": name, "entry": entry, "figure": fig})
    return {"name": rv.name, "manifest": m, "report": report, "metrics": metrics,
            "truncated": bool(rv.rows) and len(rv.rows) > fg.MAX_GROUPS,
            "stored": rv.rows is not None, "store": str(rv.store or "")}  # fmt: skip


def _partition_context(spec: PipelineSpec, v: PartitionView, page_dir: Path) -> dict[str, Any]:
    m = v.manifest
    return {
        "spec": spec,
        "view": v,
        "m": m,
        "columns": _columns(m),
        "gates": _gates(m, page_dir),
        "kanon": _kanon(m.k_anonymity, "ka"),
        "releases": [_release(r, "dp", i) for i, r in enumerate(v.releases)],
        "policy": spec.dp_budget,
        "script": SCRIPT,
    }


def _table_context(spec: PipelineSpec, views: list[PartitionView]) -> dict[str, Any]:
    parts = [v.value for v in views]
    figs = [
        fg.to_div(fg.trend(parts, {
            "input rows": [v.manifest.input_rows for v in views],
            "output rows": [v.manifest.output_rows for v in views],
        }, "Rows per partition", "rows"), "trend-rows"),
    ]  # fmt: skip
    if any(v.manifest.k_anonymity for v in views):
        share = [v.manifest.suppressed_rows / v.manifest.input_rows if v.manifest.input_rows
                 else 0.0 for v in views]  # fmt: skip
        gcp = [(v.manifest.k_anonymity or {}).get("gcp") for v in views]
        figs.append(fg.to_div(fg.trend(parts, {"suppressed share": share, "GCP": gcp},
                                       "Suppression and information loss", "share"),
                              "trend-loss"))  # fmt: skip
    policy = spec.dp_budget
    if policy is not None and spec.releases:
        window = policy.window if policy.unit == "person" else None
        spent, used = [v.spent for v in views], [v.window_used for v in views]
        fig = fg.budget(parts, spent, used, policy.total, policy.symbol, window)
        figs.append(fg.to_div(fig, "trend-budget"))
    latest = views[-1].manifest
    return {"spec": spec, "views": views, "figures": figs, "columns": _columns(latest),
            "latest": latest, "script": SCRIPT}  # fmt: skip


def write_pages(
    spec: PipelineSpec, views: list[PartitionView], shown: list[PartitionView], out: Path,
    warehouse: Path,
) -> tuple[Path, dict[str, str]]:  # fmt: skip
    """Write the table page, the pages of ``shown`` and the shared script.

    Args:
        spec: The validated spec.
        views: Every published partition, oldest first (the table page's rows).
        shown: The partitions to write pages for.
        out: The report directory.
        warehouse: The warehouse root (shown on the pages).

    Returns:
        The table page and partition value -> its page.
    """
    page_dir = out / spec.name
    page_dir.mkdir(parents=True, exist_ok=True)
    _script(out)
    generated = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    common = {"generated": generated, "warehouse": str(warehouse), "script_src": f"../{SCRIPT}"}
    pages = {}
    for v in shown:
        page = page_dir / f"{v.dirname}.html"
        html = _ENV.get_template("partition.html.j2").render(
            **_partition_context(spec, v, page_dir), **common
        )
        write_text_atomic(page, html)
        pages[v.value] = page
    index = page_dir / "index.html"
    html = _ENV.get_template("table.html.j2").render(**_table_context(spec, views), **common)
    write_text_atomic(index, html)
    return index, pages
