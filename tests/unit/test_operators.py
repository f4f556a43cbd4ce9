"""One operator per action kind: every kind registered, and a new action is one module."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from pipelines.desensitize.operator import OPERATORS, ActionSpec, Operator
from pipelines.desensitize.registry import KEYED_KINDS, KINDS, label, operator_for
from pipelines.spec import spec_from_dict
from tests.specs import spec_data

ROOT = Path(__file__).resolve().parents[2]

EXAMPLES = {
    "keep": {"kind": "keep"},
    "drop": {"kind": "drop"},
    "redact": {"kind": "redact"},
    "mask": {"kind": "mask", "keep_last": 2},
    "hash": {"kind": "hash"},
    "surrogate": {"kind": "surrogate", "domain": "email"},
    "generalize": {"kind": "generalize", "method": "prefix", "length": 3},
    "date_shift": {"kind": "date_shift", "max_days": 5},
    "noise": {"kind": "noise", "max_abs": 1},
    "scrub": {"kind": "scrub", "replace_with": "token"},
}


def test_every_yaml_kind_has_one_operator_with_a_label_and_a_description():
    assert set(KINDS) == set(EXAMPLES)
    assert set(KEYED_KINDS) == {"hash", "surrogate", "date_shift", "noise", "scrub"}
    spec = spec_from_dict(spec_data({"uid": {"kind": "keep"}, **{f"c_{k}": a for k, a in EXAMPLES.items()}}))
    for column, action in spec.columns.items():
        op = operator_for(column, action)
        assert isinstance(op, OPERATORS[type(action)]) and op.column == column
        assert label(action) and op.describe()["kind"] == action.kind
        assert (op.output_name is None) == (action.kind == "drop")
        assert (op.key == "main") == (action.kind in KEYED_KINDS)
    assert label(spec.columns["c_hash"]).startswith("Pseudonymized")
    assert operator_for("x", spec.columns["c_surrogate"]).allowed_pii() == ("email",)


NEW_ACTION = '''
"""``shout``: the value in capitals (an action added by one module)."""

from typing import Literal

from pipelines.desensitize.operator import ActionSpec, Context, Domain, Operator


class ShoutSpec(ActionSpec):
    """Upper-case the value."""

    kind: Literal["shout"]


class ShoutOperator(Operator, spec=ShoutSpec):
    """The value in capitals."""

    label = "Shouted"
    accepts = "string"

    def compile(self, ctx: Context):
        """``upper(value)``."""
        from pyspark.sql import functions as F

        return F.upper(F.col(self.column))

    def domain(self) -> Domain:
        """No lower-case letters."""
        return Domain("regex", "in capitals", regex="^[^a-z]*$")
'''


def test_a_new_action_is_one_module(tmp_path):
    """Copy the package, drop one module into desensitize/actions: the spec accepts the
    new kind, the registry builds its operator, the contract carries its domain."""
    shutil.copytree(ROOT / "pipelines", tmp_path / "pipelines",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (tmp_path / "pipelines" / "desensitize" / "actions" / "shout.py").write_text(NEW_ACTION)
    script = textwrap.dedent("""
        import json, sys
        from pipelines.desensitize.registry import KINDS, label, operator_for
        from pipelines.spec import spec_from_dict
        spec = spec_from_dict({"version": 1, "name": "t", "source": {"path": "a"},
            "sink": {"path": "b"}, "partition_column": "dt", "privacy_unit": "uid",
            "columns": {"uid": {"kind": "keep"}, "name": {"kind": "shout", "rename": "NAME"}}})
        op = operator_for("name", spec.columns["name"])
        print(json.dumps([sorted(KINDS), label(spec.columns["name"]), op.output_name,
                          op.domain().regex, "pyspark" in sys.modules]))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, check=True, env={"PYTHONPATH": str(tmp_path)}).stdout  # fmt: skip
    kinds, shown, name, regex, spark_imported = __import__("json").loads(out)
    assert "shout" in kinds and shown == "Shouted" and name == "NAME" and regex == "^[^a-z]*$"
    assert spark_imported is False  # specs still parse without Spark


def test_operator_base_refuses_an_unimplemented_compile():
    class Half(ActionSpec):
        kind: str = "half"

    op = Operator("c", Half())
    try:
        op.compile(None)  # type: ignore[arg-type]
    except NotImplementedError as exc:
        assert "Operator.compile" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("compile did not refuse")
