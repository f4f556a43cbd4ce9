"""The error report published with every DP release: how far each value may be off."""

from __future__ import annotations

from typing import Any

from pipelines.dp.plan import ReleasePlan
from pipelines.spec.dp import MeanMetric, QuantileMetric, Release


def error_report(rel: Release, plan: ReleasePlan) -> dict[str, Any]:
    """What a release's users need to read its values: the error of each metric.

    Per metric: mechanism, noise distribution, scale and 95 % half-width in output
    units; bounding and selection settings; post-processing. Only public facts:
    the exact numbers of dropped rows and units are functions of the private data
    and are withheld.

    Args:
        rel: The release.
        plan: Its calibrated mechanisms.

    Returns:
        The manifest's ``error_report`` block (JSON-ready).
    """
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
