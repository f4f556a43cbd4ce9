"""Spec models and loader: no Spark."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pipelines.errors import SpecError
from pipelines.spec import json_schema, load_spec, spec_from_dict, spec_hash
from tests.specs import spec_data

ROOT = Path(__file__).resolve().parents[2]


def base(**over):
    tables = {"source": {"table": "raw.t"}, "sink": {"table": "anon.t"}}
    fields = {**tables, "privacy_unit": "cid", "keys": {"main": {"env": "K"}}, **over}
    return spec_data({"cid": {"kind": "hash"}, "email": {"kind": "drop"}}, **fields)


def write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_when_kind_is_misspelled_then_error_names_path_line_and_suggests(tmp_path):
    data = base(columns={"cid": {"kind": "hash"}, "email": {"kind": "hsah"}})
    with pytest.raises(SpecError) as exc:
        load_spec(write(tmp_path, data))
    msg = str(exc.value)
    assert "columns.email.kind: unknown 'hsah'; did you mean 'hash'?" in msg
    assert "s.yaml:" in msg  # a line number follows the file name


def test_when_field_is_unknown_then_rejected_with_suggestion():
    data = base(columns={"cid": {"kind": "hash", "lenght": 16}})
    with pytest.raises(SpecError, match=r"columns\.cid\.lenght: unknown field; did you mean 'length'"):
        spec_from_dict(data)


def test_when_top_level_field_is_unknown_then_rejected():
    with pytest.raises(SpecError, match="sourse: unknown field; did you mean 'source'"):
        spec_from_dict(base(sourse={"table": "x"}))


def test_an_unknown_field_is_matched_against_its_own_block_s_fields_only():
    """``sink.catalog.extra`` once got "did you mean 'delta'?" (a field elsewhere)."""
    sink = {"table": "db.t", "format": "iceberg", "catalog": {"name": "c", "extra": 1}}
    with pytest.raises(SpecError, match=r"sink\.catalog\.extra: unknown field") as caught:
        spec_from_dict(base(sink=sink))
    assert "did you mean" not in str(caught.value)
    sink["catalog"] = {"name": "c", "type": "rest", "uir": "https://x"}
    with pytest.raises(SpecError, match=r"sink\.catalog\.uir: unknown field; did you mean 'uri'"):
        spec_from_dict(base(sink=sink))


def test_when_nested_generalize_method_is_wrong_then_path_names_method():
    data = base(columns={"cid": {"kind": "hash"}, "age": {"kind": "generalize", "method": "bukket"}})
    with pytest.raises(SpecError, match=r"columns\.age\.method: unknown 'bukket'; did you mean 'bucket'"):
        spec_from_dict(data)


def test_when_every_problem_exists_then_all_are_listed():
    data = base(columns={"cid": {"kind": "hash", "encoding": "hexx"}, "x": {"kind": "mask", "keep_frist": 1}})
    msg = str(pytest.raises(SpecError, spec_from_dict, data).value)
    assert "columns.cid.encoding" in msg and "columns.x.keep_frist" in msg


def test_when_key_reference_is_undeclared_then_error_names_column():
    data = base(columns={"cid": {"kind": "hash", "key": "mian"}})
    with pytest.raises(SpecError, match=r"columns\.cid\.key: unknown key 'mian'; declared keys: main"):
        spec_from_dict(data)


def test_when_key_is_inlined_then_rejected():
    data = base(keys={"main": {"value": "s3cr3t"}})
    with pytest.raises(SpecError, match=r"keys\.main\.value: unknown field"):
        spec_from_dict(data)


def test_when_privacy_unit_undeclared_or_partition_declared_then_rejected():
    with pytest.raises(SpecError, match="privacy_unit"):
        spec_from_dict(base(privacy_unit="user"))
    data = base(columns={"cid": {"kind": "hash"}, "dt": {"kind": "keep"}})
    with pytest.raises(SpecError, match=r"columns\.dt: the partition column"):
        spec_from_dict(data)


def test_when_rename_clashes_then_rejected():
    data = base(columns={"cid": {"kind": "hash"}, "a": {"kind": "keep", "rename": "cid"}})
    with pytest.raises(SpecError, match=r"columns\.a\.rename: output column 'cid' clashes"):
        spec_from_dict(data)


def test_models_are_frozen():
    spec = spec_from_dict(base())
    with pytest.raises(ValidationError, match="frozen"):
        spec.name = "other"


def test_version_is_required_and_checked():
    data = base()
    del data["version"]
    with pytest.raises(SpecError, match="version: required field is missing"):
        spec_from_dict(data)
    with pytest.raises(SpecError, match="version"):
        spec_from_dict(base(version=2))


def test_hash_length_limit_depends_on_encoding():
    spec_from_dict(base(columns={"cid": {"kind": "hash", "encoding": "base32", "length": 48}}))
    with pytest.raises(SpecError, match="exceeds 48"):
        spec_from_dict(base(columns={"cid": {"kind": "hash", "encoding": "base32", "length": 49}}))


@pytest.mark.parametrize(
    ("columns", "quality", "path"),
    [
        ({"cid": {"kind": "hash", "canonical": "phone", "countries": ["US", "UK"]}}, {},
         "columns.cid.countries"),
        ({"cid": {"kind": "hash"}, "note": {"kind": "scrub", "countries": ["XX"]}}, {},
         "columns.note.countries"),
        ({"cid": {"kind": "hash"}}, {"pii_countries": ["DE", "EU"]}, "quality.pii_countries"),
    ],
)  # fmt: skip
def test_unknown_phone_region_is_rejected_with_its_path(columns, quality, path):
    """Every field naming phone regions checks them against libphonenumber (UK is GB)."""
    with pytest.raises(SpecError, match=rf"{re.escape(path)}.*unknown phone region"):
        spec_from_dict(base(columns=columns, quality=quality))
    ok = spec_from_dict(base(columns={"cid": {"kind": "hash", "canonical": "phone",
                                              "countries": ["us", "gb"]}}))  # fmt: skip
    assert ok.columns["cid"].countries == ("US", "GB")


@pytest.mark.parametrize(
    ("scrub", "path", "message"),
    [
        ({"known_values": ["nosuchcol"]}, "columns.note.known_values.0", "'nosuchcol' is not another column"),
        ({"known_values": ["cid", "note"]}, "columns.note.known_values.1", "'note' is not another column"),
        ({"entities": []}, "columns.note.entities", "at least 1"),
    ],
)  # fmt: skip
def test_scrub_known_values_and_entities_are_checked_with_their_path(scrub, path, message):
    """A known-values column must be another declared column (it used to fail at run time
    with a Spark stack trace); an empty entity list would scrub nothing."""
    columns = {"cid": {"kind": "hash"}, "note": {"kind": "scrub", **scrub}}
    with pytest.raises(SpecError, match=rf"{re.escape(path)}.*{re.escape(message)}"):
        spec_from_dict(base(columns=columns))
    fine = {"cid": {"kind": "hash"}, "note": {"kind": "scrub", "known_values": ["cid"]}}
    assert spec_from_dict(base(columns=fine)).columns["note"].known_values == ("cid",)


def test_shipped_specs_validate():
    for path in sorted((ROOT / "conf" / "pipelines").glob("*.yaml")):
        load_spec(path)


def test_json_schema_describes_actions():
    schema = json_schema()
    text = json.dumps(schema)
    for kind in ("hash", "mask", "surrogate", "date_shift", "noise", "generalize"):
        assert f'"{kind}"' in text
    assert schema["additionalProperties"] is False


def test_spec_hash_changes_with_content():
    a, b = spec_from_dict(base()), spec_from_dict(base(description="x"))
    assert spec_hash(a) == spec_hash(spec_from_dict(base())) != spec_hash(b)


@given(
    kind=st.sampled_from(["keep", "drop", "redact"]),
    name=st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
)
def test_spec_round_trips_through_json(kind, name):
    spec = spec_from_dict(base(columns={"cid": {"kind": "hash"}, f"c_{name}": {"kind": kind}}))
    again = spec_from_dict(json.loads(spec.model_dump_json()))
    assert again == spec


def test_spec_package_imports_no_spark():
    code = "import sys, pipelines.spec; print('pyspark' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


def test_quality_block_defaults_and_validation():
    spec = spec_from_dict(spec_data({"uid": {"kind": "hash"}}))
    assert spec.quality.allow_empty is False and spec.quality.volume.severity == "warning"
    assert spec.quality.volume.tolerance == 0.5 and spec.quality.docs is True
    bad = spec_data({"uid": {"kind": "hash"}}, quality={"allow_pii": {"nope": ["email"]}})
    with pytest.raises(SpecError, match="quality.allow_pii.nope: 'nope' is not a published output"):
        spec_from_dict(bad)
    bad = spec_data({"uid": {"kind": "hash"}}, quality={"allow_pii": {"uid": ["emial"]}})
    with pytest.raises(SpecError, match=r"quality\.allow_pii\.uid\.0"):
        spec_from_dict(bad)


def test_column_type_and_expectations_are_validated():
    ok = spec_from_dict(
        spec_data({"uid": {"kind": "hash", "type": "string", "expect": {"regex": "u[0-9]+"}}})
    )
    assert ok.columns["uid"].type == "string" and ok.columns["uid"].expect.severity == "error"
    with pytest.raises(SpecError, match=r"columns\.uid\.type"):
        spec_from_dict(spec_data({"uid": {"kind": "hash", "type": "varchar"}}))
    with pytest.raises(SpecError, match=r"columns\.uid\.expect.*regex does not compile"):
        spec_from_dict(spec_data({"uid": {"kind": "hash", "expect": {"regex": "(["}}}))
    with pytest.raises(SpecError, match=r"columns\.uid\.expect\.severity"):
        spec_from_dict(spec_data({"uid": {"kind": "hash", "expect": {"severity": "info"}}}))


def test_k_anonymity_block_is_validated_against_published_columns():
    cols = {"uid": {"kind": "hash"}, "age": {"kind": "keep"}, "job": {"kind": "keep"},
            "dx": {"kind": "keep"}, "ssn": {"kind": "drop"}}  # fmt: skip
    ok = {"k": 5, "quasi_identifiers": {"age": {"type": "numeric"},
          "job": {"type": "categorical", "hierarchy": "conf/hierarchies/job.csv"}},
          "sensitive": "dx", "l_diversity": {"l": 2}}  # fmt: skip
    spec = spec_from_dict(spec_data(cols, k_anonymity=ok))
    assert spec.k_anonymity.k == 5 and spec.k_anonymity.l_diversity.kind == "distinct"
    bad = {**ok, "quasi_identifiers": {"ssn": {"type": "numeric"}}}
    with pytest.raises(SpecError, match=r"k_anonymity\.quasi_identifiers\.ssn: 'ssn' is not a pub"):
        spec_from_dict(spec_data(cols, k_anonymity=bad))
    with pytest.raises(SpecError, match=r"k_anonymity\.l_diversity: needs k_anonymity\.sensitive"):
        spec_from_dict(spec_data(cols, k_anonymity={**ok, "sensitive": None}))
    with pytest.raises(SpecError, match=r"k_anonymity\.sensitive: the sensitive column cannot"):
        spec_from_dict(spec_data(cols, k_anonymity={**ok, "sensitive": "age"}))
    with pytest.raises(SpecError, match=r"k_anonymity\.quasi_identifiers\.job\.categorical\.hierarchy"):
        spec_from_dict(spec_data(cols, k_anonymity={**ok, "quasi_identifiers": {
            "job": {"type": "categorical"}}}))  # fmt: skip
    with pytest.raises(SpecError, match=r"k_anonymity\.k"):
        spec_from_dict(spec_data(cols, k_anonymity={**ok, "k": 1}))
    full = {**ok, "quasi_identifiers": {"age": {"type": "date"}}, "window": 7,
            "l_diversity": {"l": 3, "kind": "recursive", "c": 4},
            "t_closeness": {"t": 0.2, "distance": "ordered"}}  # fmt: skip
    spec = spec_from_dict(spec_data(cols, k_anonymity=full))
    assert spec.k_anonymity.t_closeness.distance == "ordered" and spec.k_anonymity.window == 7
    with pytest.raises(SpecError, match=r"k_anonymity\.l_diversity\.c: recursive \(c,l\)-div"):
        spec_from_dict(spec_data(cols, k_anonymity={**full, "l_diversity": {"l": 3, "kind": "recursive"}}))
    with pytest.raises(SpecError, match=r"k_anonymity\.t_closeness: needs k_anonymity\.sensitive"):
        spec_from_dict(spec_data(cols, k_anonymity={**full, "sensitive": None, "l_diversity": None}))
    with pytest.raises(SpecError, match=r"k_anonymity\.t_closeness\.distance"):
        spec_from_dict(spec_data(cols, k_anonymity={**full, "t_closeness": {"t": 0.2, "distance": "emd"}}))
    with pytest.raises(SpecError, match=r"k_anonymity\.window"):
        spec_from_dict(spec_data(cols, k_anonymity={**full, "window": 0}))


def test_releases_block_is_validated_with_paths():
    cols = {"uid": {"kind": "hash"}, "region": {"kind": "keep"}, "amount": {"kind": "keep"}}
    rel = {"sink": {"path": "rel/x"}, "group_by": ["region"], "keys": "private",
           "bounds": {"max_groups_per_unit": 2},
           "metrics": {"n": {"kind": "count"},
                       "s": {"kind": "sum", "column": "amount", "lower": 0, "upper": 10}},
           "budget": {"epsilon": 1.0}}  # fmt: skip
    spec = spec_from_dict(spec_data(cols, releases={"x": rel}, dp_budget={"epsilon": 5}))
    assert spec.releases["x"].bounds.max_rows_per_group == 1 and spec.dp_budget.window == 30
    with pytest.raises(SpecError, match=r"dp_budget: releases need a dp_budget"):
        spec_from_dict(spec_data(cols, releases={"x": rel}))
    bad_col = {**rel, "metrics": {"s": {"kind": "sum", "column": "price", "lower": 0, "upper": 1}}}
    with pytest.raises(SpecError, match=r"releases\.x\.metrics\.s\.column: 'price' is not a decl"):
        spec_from_dict(spec_data(cols, releases={"x": bad_col}, dp_budget={"epsilon": 5}))
    with pytest.raises(SpecError, match=r"releases\.x\.metrics\.s.*lower must be below upper"):
        spec_from_dict(spec_data(cols, releases={"x": {**rel, "metrics": {"s": {
            "kind": "sum", "column": "amount", "lower": 5, "upper": 1}}}}, dp_budget={"epsilon": 5}))  # fmt: skip
    with pytest.raises(SpecError, match=r"releases\.x\.budget.*exactly one of 'epsilon' or 'rho'"):
        spec_from_dict(spec_data(cols, releases={"x": {**rel, "budget": {"epsilon": 1, "rho": 1}}},
                                 dp_budget={"epsilon": 5}))  # fmt: skip
    with pytest.raises(SpecError, match=r"releases\.x\.budget: Gaussian noise is accounted in rho"):
        spec_from_dict(spec_data(cols, releases={"x": {**rel, "budget": {"rho": 0.5}}},
                                 dp_budget={"epsilon": 5}))  # fmt: skip
    with pytest.raises(SpecError, match=r"releases\.x\.budget\.split\.nope: not a metric"):
        spec_from_dict(spec_data(cols, releases={"x": {**rel, "budget": {
            "epsilon": 1, "split": {"nope": 1}}}}, dp_budget={"epsilon": 5}))  # fmt: skip
    public = {**rel, "keys": {"values": {"amount": [1]}}}
    with pytest.raises(SpecError, match=r"releases\.x\.keys: public keys must give values"):
        spec_from_dict(spec_data(cols, releases={"x": public}, dp_budget={"epsilon": 5}))


def test_the_hint_for_a_non_identifier_column_key_is_itself_a_valid_ascii_key():
    """The hint once kept non-ASCII letters (Unicode \\W), proposing a key the spec refuses."""
    with pytest.raises(SpecError, match=r"Stra_e: \{source_name: 'Straße'") as err:
        spec_from_dict(base(columns={"cid": {"kind": "hash"}, "Straße": {"kind": "drop"}}))
    hint = re.search(r"e\.g\. (\w+):", str(err.value), re.ASCII).group(1)
    spec_from_dict(base(columns={"cid": {"kind": "hash"}, hint: {"kind": "drop", "source_name": "Straße"}}))


@pytest.mark.parametrize(("mapping", "message"), [
    ({"10": "000"}, r"columns\.zip: .*map: prefix '10' is not 3 characters long"),
    ({"101": "1000"}, r"columns\.zip: .*map: '101' maps to more than 3 characters"),
])
def test_a_prefix_map_must_fit_the_prefix_length(mapping, message):
    cols = {"uid": {"kind": "hash"},
            "zip": {"kind": "generalize", "method": "prefix", "length": 3, "map": mapping}}
    with pytest.raises(SpecError, match=message):
        spec_from_dict(spec_data(cols))


def test_the_hipaa_zip3_map_needs_three_character_prefixes():
    cols = {"uid": {"kind": "hash"},
            "zip": {"kind": "generalize", "method": "prefix", "length": 5, "map": "hipaa-zip3"}}
    with pytest.raises(SpecError, match="prefix '036' is not 5 characters long"):
        spec_from_dict(spec_data(cols))
    ok = {"uid": {"kind": "hash"},
          "zip": {"kind": "generalize", "method": "prefix", "length": 3, "map": "hipaa-zip3"}}
    assert spec_from_dict(spec_data(ok)).columns["zip"].mapping()["893"] == "000"


def test_a_release_metric_must_be_named_like_a_column():
    """Metric names become release-table columns and appear in the report page."""
    from pydantic import ValidationError

    from pipelines.spec.dp import Release

    base = {"sink": {"path": "r"}, "group_by": ["g"], "bounds": {"max_groups_per_unit": 1},
            "budget": {"epsilon": 1.0}}  # fmt: skip
    assert Release.model_validate({**base, "metrics": {"n_events": {"kind": "count"}}})
    for bad in ('x"><img src=x onerror=alert(1)>', "events-per-day", "1st", ""):
        with pytest.raises(ValidationError, match="is not a column name"):
            Release.model_validate({**base, "metrics": {bad: {"kind": "count"}}})
