"""Every float in a spec is finite and in its range; the error names the YAML path.

The table below lists one spec path for every float field of every spec model; a
meta-test checks that the table covers them all, so a new float field cannot be
added without a test that it refuses inf and NaN.
"""

from __future__ import annotations

import copy
import math
import typing

import pytest
from pydantic import BaseModel

from pipelines.desensitize.operator import OPERATORS
from pipelines.errors import SpecError
from pipelines.spec import dp, kanon, quality, schedule, spec_from_dict, tables
from pipelines.spec.models import PipelineSpec
from tests.specs import spec_data

BASE_COLUMNS = {"uid": {"kind": "hash"}, "v": {"kind": "keep"}, "g": {"kind": "keep"}}
RELEASE = {
    "sink": {"path": "r"}, "group_by": ["g"],
    "bounds": {"max_groups_per_unit": 1},
    "metrics": {"s": {"kind": "sum", "column": "v", "lower": 0, "upper": 1},
                "q": {"kind": "quantile", "column": "v", "lower": 0, "upper": 1, "q": 0.5}},
    "budget": {"epsilon": 1.0, "split": {"s": 1.0}},
}  # fmt: skip
KANON = {
    "k": 2, "quasi_identifiers": {"v": {"type": "numeric"}}, "sensitive": "g",
    "l_diversity": {"l": 2, "kind": "recursive", "c": 2.0}, "t_closeness": {"t": 0.5},
    "max_suppression": 0.1,
}  # fmt: skip


def document(**over) -> dict:
    """A valid spec using every block that has float fields."""
    data = spec_data(BASE_COLUMNS, releases={"r": RELEASE}, dp_budget={"epsilon": 2.0},
                     k_anonymity=KANON)  # fmt: skip
    data.update(over)
    return copy.deepcopy(data)  # the cases below write into it


def with_value(path: str, value: object) -> dict:
    data = document()
    node = data
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return data


# (spec path of a float field, its model and field) for every float field.
FLOAT_PATHS = {
    "columns.v.expect.min": ("ColumnExpect", "min"),
    "columns.v.expect.max": ("ColumnExpect", "max"),
    "quality.volume.tolerance": ("VolumeBand", "tolerance"),
    "k_anonymity.max_suppression": ("KAnonymity", "max_suppression"),
    "k_anonymity.l_diversity.c": ("LDiversity", "c"),
    "k_anonymity.t_closeness.t": ("TCloseness", "t"),
    "releases.r.metrics.s.lower": ("SumMetric", "lower"),
    "releases.r.metrics.s.upper": ("SumMetric", "upper"),
    "releases.r.metrics.s.resolution": ("SumMetric", "resolution"),
    "releases.r.metrics.q.q": ("QuantileMetric", "q"),
    "releases.r.budget.epsilon": ("ReleaseBudget", "epsilon"),
    "releases.r.budget.selection_delta": ("ReleaseBudget", "selection_delta"),
    "releases.r.budget.split.s": ("ReleaseBudget", "split"),
    "dp_budget.epsilon": ("BudgetPolicy", "epsilon"),
    "dp_budget.delta": ("BudgetPolicy", "delta"),
    "schedule.retry_delay_minutes": ("Schedule", "retry_delay_minutes"),
    "schedule.source_timeout_minutes": ("Schedule", "source_timeout_minutes"),
    "columns.v.max_abs": ("NoiseSpec", "max_abs"),
    "columns.v.width": ("GeneralizeBucketSpec", "width"),
    "columns.v.bottom": ("GeneralizeBucketSpec", "bottom"),
    "columns.v.top": ("GeneralizeBucketSpec", "top"),
}
# Fields covered by a sibling above, through the same model class or shared base:
# rho/delta of the release budget and the policy's rho go through the same float type.
ALSO_COVERED = {
    ("ReleaseBudget", "rho"), ("ReleaseBudget", "delta"), ("BudgetPolicy", "rho"),
    ("NoiseSpec", "max_relative"), ("MeanMetric", "lower"), ("MeanMetric", "upper"),
    ("MeanMetric", "resolution"), ("QuantileMetric", "lower"), ("QuantileMetric", "upper"),
    ("QuantileMetric", "resolution"), ("ColumnExpect", "in_set"),
    ("_Bounded", "lower"), ("_Bounded", "upper"), ("_Bounded", "resolution"),  # their base
}  # fmt: skip
ACTION_FOR = {"columns.v.max_abs": {"kind": "noise", "max_abs": 1.0},
              "columns.v.width": {"kind": "generalize", "method": "bucket", "width": 1.0},
              "columns.v.bottom": {"kind": "generalize", "method": "bucket", "width": 1.0},
              "columns.v.top": {"kind": "generalize", "method": "bucket", "width": 1.0}}  # fmt: skip


def _mentions_float(annotation: object) -> bool:
    if annotation is float:
        return True
    return any(_mentions_float(a) for a in typing.get_args(annotation))


def float_fields() -> set[tuple[str, str]]:
    models: list[type] = [PipelineSpec, *OPERATORS]
    for module in (dp, kanon, quality, schedule, tables):
        models += [o for o in vars(module).values() if isinstance(o, type)]
    out = set()
    for m in models:
        if isinstance(m, type) and issubclass(m, BaseModel) and m is not BaseModel:
            for name, f in m.model_fields.items():
                if _mentions_float(f.annotation):
                    out.add((m.__name__, name))
    return out


def test_the_table_covers_every_float_field_of_the_spec():
    covered = set(FLOAT_PATHS.values()) | ALSO_COVERED
    assert float_fields() - covered == set()


def case(path: str, value: object) -> dict:
    """The document with ``value`` at ``path`` (column actions get their own kind)."""
    if path not in ACTION_FOR:
        return with_value(path, value)
    data = document()
    field = path.rsplit(".", 1)[1]
    data["columns"] = {**data["columns"], "v": {**ACTION_FOR[path], field: value}}
    return data


@pytest.mark.parametrize("path", sorted(FLOAT_PATHS))
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan], ids=["inf", "-inf", "nan"])
def test_a_non_finite_float_is_refused_naming_its_path(path, value):
    spec_from_dict(case(path, 0.5))  # the same document with a finite value is valid
    with pytest.raises(SpecError) as err:
        spec_from_dict(case(path, value))
    message = str(err.value)
    assert f"{path}:" in message and "finite" in message, message


def test_yaml_inf_in_budgets_is_refused_by_spec_validate(tmp_path):
    """The reported case: .inf budgets passed `anonymize spec validate`."""
    from typer.testing import CliRunner

    from pipelines.cli import app

    text = (
        "version: 1\nname: t\nsource: {path: a}\nsink: {path: b}\npartition_column: dt\n"
        "privacy_unit: uid\nkeys: {main: {env: K}}\n"
        "columns: {uid: {kind: hash}, g: {kind: keep}}\n"
        "dp_budget: {epsilon: .inf}\n"
        "releases:\n  r:\n    sink: {path: r}\n    group_by: [g]\n"
        "    bounds: {max_groups_per_unit: 1}\n    metrics: {n: {kind: count}}\n"
        "    budget: {epsilon: .inf}\n"
    )
    f = tmp_path / "inf.yaml"
    f.write_text(text)
    res = CliRunner().invoke(app, ["spec", "validate", str(f)])
    assert res.exit_code == 3
    assert "dp_budget.epsilon: Input should be a finite number" in res.output
    assert "releases.r.budget.epsilon: Input should be a finite number" in res.output
    assert "invalid invalid" not in res.output
