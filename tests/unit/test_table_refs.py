"""Table references of the table formats: validation and control roots (no Spark)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import SpecError
from pipelines.spec import spec_from_dict
from pipelines.spec.tables import TableRef
from pipelines.storage import layout
from tests.specs import spec_data

COLUMNS = {"uid": {"kind": "hash"}}


def spec_with(sink: dict):
    return spec_from_dict(spec_data(COLUMNS, source={"path": "raw/t"}, sink=sink))


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        ({"path": "anon/t", "format": "iceberg"}, r"sink: .*iceberg table is named by 'table: namespace\.name'"),
        ({"table": "a.t", "format": "delta", "catalog": {}}, r"sink: .*'catalog' is for format: iceberg, not delta"),
        ({"table": "a.t", "format": "iceberg", "options": {"x": "1"}}, r"sink: .*'options' are for parquet and csv"),
        ({"table": "a.t", "format": "iceberg", "catalog": {"type": "jdbc"}}, r"sink\.catalog: .*a jdbc catalog needs 'uri'"),
        ({"table": "a.t", "format": "iceberg", "catalog": {"type": "rest"}}, r"sink\.catalog: .*a rest catalog needs 'uri'"),
        ({"table": "a.t", "format": "iceberg", "catalog": {"uri": "x"}}, r"sink\.catalog: .*hadoop catalog has no 'uri'"),
        ({"table": "a.t", "format": "iceberg", "catalog": {"name": "spark_catalog"}}, r"sink\.catalog: .*session catalog"),
        ({"table": "a.t", "format": "iceberg", "catalog": {"name": "my-cat"}}, r"sink\.catalog\.name"),
        ({"table": "a.t", "format": "hudi"}, r"sink\.format"),
        ({"table": "a.t", "format": "iceberg", "catalog": {"type": "jdbc", "uri": "jdbc:x",
          "properties": {"jdbc.password": "hunter2"}}}, r"sink\.catalog: .*properties\.jdbc\.password: give a secret by reference"),
        ({"table": "a.t", "format": "iceberg", "catalog": {"type": "rest", "uri": "https://u:hunter2@cat/api"}},
         r"sink\.catalog: .*uri: holds a password"),
        ({"table": "a.t", "format": "iceberg", "catalog": {"type": "jdbc", "uri": "jdbc:postgresql://h/db?user=a&password=hunter2"}},
         r"sink\.catalog: .*uri: holds a password"),
        ({"path": "s3a://bucket/t", "format": "delta"}, r"sink: path: Delta on an object store"),
        ({"table": "a.t", "format": "iceberg", "catalog": {"warehouse": "s3://bucket/wh"}},
         r"sink\.catalog: .*hadoop catalog needs a filesystem with atomic rename"),
    ],
)
def test_a_bad_table_format_reference_is_a_spec_error_at_its_path(sink, message):
    with pytest.raises(SpecError, match=message):
        spec_with(sink)


def test_table_format_references_validate_and_display_their_format():
    assert spec_with({"table": "ns.t", "format": "iceberg"}).sink.display == "iceberg:anonymize_iceberg.ns.t"
    jdbc = {"type": "jdbc", "name": "prod", "uri": "jdbc:sqlite:/tmp/c.db"}
    assert spec_with({"table": "ns.t", "format": "iceberg", "catalog": jdbc}).sink.display == "iceberg:prod.ns.t"
    assert spec_with({"path": "anon/t", "format": "delta"}).sink.display == "delta:anon/t"
    assert spec_with({"table": "db.t", "format": "delta"}).sink.display == "delta:db.t"


def test_control_roots_of_table_formats_are_local_and_distinct(tmp_path):
    wh = Path("/wh")
    ice = TableRef(table="ns.t", format="iceberg")
    assert layout.control_dir(wh, ice) == wh / "_anonymize/iceberg/anonymize_iceberg/ns/t"
    other = TableRef(table="ns.t", format="iceberg", catalog={"name": "prod", "type": "rest", "uri": "http://x"})
    assert layout.control_dir(wh, other) == wh / "_anonymize/iceberg/prod/ns/t"
    assert layout.control_dir(wh, TableRef(table="db.t", format="delta")) == wh / "_anonymize/delta/db/t"
    # Two paths that read alike as names stay apart.
    a = layout.control_dir(wh, TableRef(path="/mnt/b/x y", format="delta"))
    b = layout.control_dir(wh, TableRef(path="/mnt/b/x_y", format="delta"))
    assert a != b and a.parent == b.parent == wh / "_anonymize/delta/path"
    # parquet and csv tables keep their records beside the data, as before.
    assert layout.control_dir(wh, TableRef(path="anon/t")) == wh / "anon/t"
    assert layout.control_dir(wh, TableRef(table="db.t")) == wh / "db.db/t"


def test_a_secret_catalog_property_by_reference_validates_and_never_shows_its_value():
    catalog = {"type": "jdbc", "uri": "jdbc:postgresql://h/db", "properties": {"jdbc.password": {"env": "CAT_PW"}}}
    spec = spec_with({"table": "a.t", "format": "iceberg", "catalog": catalog})
    assert spec.sink.catalog.properties["jdbc.password"].env == "CAT_PW"
    with pytest.raises(SpecError) as err:
        spec_with({"table": "a.t", "format": "iceberg", "catalog": {**catalog, "properties": {"s3.secret-access-key": "hunter2"}}})
    assert "hunter2" not in str(err.value)


def test_keep_versions_is_for_directory_tables_and_refused_on_table_formats():
    from pydantic import ValidationError

    from pipelines.spec.tables import TableRef

    assert TableRef(table="anon.t").keep_versions == 1
    assert TableRef(path="anon/t", keep_versions=7).keep_versions == 7
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        TableRef(table="anon.t", keep_versions=0)
    for fmt in ("iceberg", "delta"):
        with pytest.raises(ValidationError, match="'keep_versions' is for parquet and csv"):
            TableRef(table="anon.t", format=fmt, keep_versions=3)
