"""The report page's plots, as Plotly figures built from public facts only.

Each function takes what a manifest, the ledger or a released (noisy) table holds
and returns a ``plotly.graph_objects.Figure``; :func:`to_div` turns one into the HTML
fragment the page embeds (the shared ``plotly.min.js`` is loaded once by the page).
Every figure draws one mark per data point it is given (a bar, or a marker on a
line), so a browser test can count marks against the manifests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

#: Released groups drawn per metric at most (the released table has them all).
MAX_GROUPS = 200
#: A fixed size: a figure laid out before its grid cell has its width would overflow it.
_LAYOUT = dict(
    template="plotly_white",
    width=530,
    height=360,
    legend=dict(orientation="h", yanchor="top", y=-0.25),
    margin=dict(l=60, r=20, t=50, b=90),
    font=dict(size=12),
)


def to_div(fig: go.Figure, div_id: str) -> str:
    """The figure as an HTML ``<div>`` and its script, without plotly.js itself.

    Args:
        fig: The figure.
        div_id: The div's id (unique in the page).

    Returns:
        An HTML fragment.
    """
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False},
    )


def _bin_label(b: dict[str, Any]) -> str:
    if b["to"] is None:
        return f"{b['from']}+"
    return str(b["from"]) if b["to"] == b["from"] else f"{b['from']}–{b['to']}"


def class_sizes(histogram: Sequence[dict[str, Any]], k: int) -> go.Figure:
    """Bars: equivalence classes per size bin (hover: the records in them).

    Args:
        histogram: The manifest's ``k_anonymity.class_size_histogram``.
        k: The k asked for.

    Returns:
        One bar per bin.
    """
    fig = go.Figure(
        go.Bar(
            x=[_bin_label(b) for b in histogram],
            y=[b["classes"] for b in histogram],
            customdata=[b["records"] for b in histogram],
            hovertemplate="size %{x}: %{y} classes, %{customdata} records<extra></extra>",
            marker_color="#4c78a8",
        )
    )
    fig.update_layout(title=f"Equivalence-class sizes (k = {k})", **_LAYOUT)
    fig.update_xaxes(title="records in the class", type="category")
    fig.update_yaxes(title="classes")
    return fig


def information_loss(ncp: dict[str, float | None], gcp: float | None) -> go.Figure:
    """Bars: normalized certainty penalty per quasi-identifier, GCP as a dashed line.

    Args:
        ncp: QI -> NCP in [0, 1] (None: not measured).
        gcp: The global certainty penalty (their mean), or None.

    Returns:
        One bar per quasi-identifier.
    """
    names = list(ncp)
    fig = go.Figure(
        go.Bar(x=names, y=[ncp[n] for n in names], marker_color="#f58518",  # None: a gap
               hovertemplate="%{x}: NCP %{y:.3f}<extra></extra>")  # fmt: skip
    )
    if gcp is not None:
        fig.add_hline(y=gcp, line_dash="dash", annotation_text=f"GCP {gcp:.3f}")
    fig.update_layout(title="Information loss (NCP per quasi-identifier)", **_LAYOUT)
    fig.update_yaxes(title="NCP (0 = exact, 1 = suppressed)", range=[0, 1])
    return fig


def prosecutor_risk(risk: dict[str, float]) -> go.Figure:
    """Bars: highest and average prosecutor risk, share of records above the threshold.

    Args:
        risk: The manifest's ``k_anonymity.prosecutor_risk``.

    Returns:
        Three bars.
    """
    labels = ["highest", "average", f"records above {risk.get('threshold', 0.2):g}"]
    values = [risk.get("highest", 0.0), risk.get("average", 0.0), risk.get("records_above", 0.0)]
    fig = go.Figure(go.Bar(x=labels, y=values, marker_color="#e45756",
                           hovertemplate="%{x}: %{y:.3f}<extra></extra>"))  # fmt: skip
    fig.update_layout(title="Re-identification risk (prosecutor model)", **_LAYOUT)
    fig.update_yaxes(title="probability / share", range=[0, 1])
    return fig


def guarantees(rows: Sequence[tuple[str, float | None, float | None]]) -> go.Figure:
    """Per guarantee, the value asked for beside the value measured on the output.

    Args:
        rows: ``(name, asked, measured)`` per guarantee (k, l, t, ...); None (not
            recorded) draws no bar.

    Returns:
        Two bars per guarantee, one subplot each.
    """
    fig = make_subplots(rows=1, cols=max(len(rows), 1), subplot_titles=[r[0] for r in rows])
    for i, (_, asked, measured) in enumerate(rows, start=1):
        fig.add_trace(
            go.Bar(x=["asked", "measured"], y=[asked, measured], showlegend=False,
                   marker_color=["#bab0ac", "#54a24b"],
                   hovertemplate="%{x}: %{y:.4g}<extra></extra>"),  # fmt: skip
            row=1,
            col=i,
        )
    fig.update_layout(title="Guarantees asked and measured on the output", **_LAYOUT)
    return fig


def released_values(
    groups: Sequence[str], values: Sequence[float], half_width: float | None, metric: str
) -> go.Figure:
    """Bars: a metric's released (noisy) value per group, with its 95 % interval.

    Args:
        groups: Group labels, in display order.
        values: The released values.
        half_width: The 95 % half-width in the metric's units, or None (no bars).
        metric: The metric's name.

    Returns:
        One bar per group (at most :data:`MAX_GROUPS`).
    """
    groups, values = list(groups)[:MAX_GROUPS], list(values)[:MAX_GROUPS]
    error = (
        dict(type="constant", value=half_width, visible=True) if half_width else dict(visible=False)
    )
    fig = go.Figure(go.Bar(x=groups, y=values, error_y=error, marker_color="#72b7b2",
                           hovertemplate="%{x}: %{y}<extra></extra>"))  # fmt: skip
    title = f"{metric}: released values" + (f" ± {half_width:,.4g} (95 %)" if half_width else "")
    fig.update_layout(title=title, **_LAYOUT)
    fig.update_xaxes(type="category")
    return fig


def trend(
    partitions: Sequence[str], series: dict[str, Sequence[float | None]], title: str, y_title: str
) -> go.Figure:
    """Lines with markers across partitions, one per series.

    Args:
        partitions: Partition values, oldest first.
        series: Name -> one value per partition (None: a gap).
        title: The plot's title.
        y_title: The y axis title.

    Returns:
        One marker per partition and series.
    """
    fig = go.Figure()
    for name, ys in series.items():
        fig.add_trace(go.Scatter(x=list(partitions), y=list(ys), mode="lines+markers", name=name))
    fig.update_layout(title=title, **_LAYOUT)
    fig.update_xaxes(type="category", title="partition")
    fig.update_yaxes(title=y_title)
    return fig


def budget(
    partitions: Sequence[str], spent: Sequence[float | None],
    window_used: Sequence[float | None], limit: float, symbol: str, window: int | None,
) -> go.Figure:  # fmt: skip
    """Bars: budget charged per partition; line: the fullest window containing it.

    Args:
        partitions: Partition values, oldest first.
        spent: Spent (and reserved) cost charged to each partition, in the policy's unit.
        window_used: Cost in the fullest ``window``-day window containing each partition.
        limit: The policy's total per window (per partition when ``window`` is None).
        symbol: The policy's unit as shown, ``ε`` or ``ρ`` (``BudgetPolicy.symbol``).
        window: The policy's window in days, or None for a per-partition policy
            (``unit: person_partition``: each partition has the whole budget).

    Returns:
        One bar and one marker per partition.
    """
    fig = go.Figure()
    bars = go.Bar(x=list(partitions), y=list(spent), name=f"{symbol} charged to the partition",
                  marker_color="#4c78a8")  # fmt: skip
    fig.add_trace(bars)
    used = f"in its fullest {window}-day window" if window else "by the partition"
    fig.add_trace(go.Scatter(x=list(partitions), y=list(window_used), mode="lines+markers",
                             name=f"{symbol} used {used}"))  # fmt: skip
    per = f"per {window} days" if window else "per partition"
    fig.add_hline(y=limit, line_dash="dash", line_color="#e45756",
                  annotation_text=f"limit {symbol} = {limit:g} {per}")  # fmt: skip
    fig.update_layout(title="Privacy budget per partition", **_LAYOUT)
    fig.update_xaxes(type="category", title="partition")
    fig.update_yaxes(title=symbol, rangemode="tozero")
    return fig
