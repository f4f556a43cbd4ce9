"""Which Delta schemas ask the writer for a check the staged-file commit would skip."""

from __future__ import annotations

import pytest

from pipelines.storage.formats import _writer_enforced


def _field(name: str, type_: object, nullable: bool = True, metadata: dict | None = None) -> dict:
    return {"name": name, "type": type_, "nullable": nullable, "metadata": metadata or {}}


def _schema(*fields: dict) -> dict:
    return {"type": "struct", "fields": list(fields)}


PLAIN = _schema(_field("uid", "string"), _field("amount", "double", metadata={"comment": "x"}))


@pytest.mark.parametrize(
    "schema",
    [
        _schema(_field("uid", "string", nullable=False)),  # NOT NULL column
        _schema(_field("s", _schema(_field("inner", "long", nullable=False)))),  # nested
        _schema(_field("a", {"type": "array", "elementType": "long", "containsNull": False})),
        _schema(_field("m", {"type": "map", "keyType": "string", "valueType": "long",
                             "valueContainsNull": False})),  # fmt: skip
        _schema(_field("g", "long", metadata={"delta.generationExpression": "1"})),
        _schema(_field("i", "long", metadata={"delta.identity.start": 1})),
        _schema(_field("c", "string", metadata={"__CHAR_VARCHAR_TYPE_STRING": "varchar(3)"})),
        _schema(_field("s", _schema(_field("inner", "long", metadata={"delta.invariants": "x"})))),
    ],
    ids=["not-null", "nested-not-null", "array-not-null", "map-not-null", "generated",
         "identity", "varchar", "nested-invariant"],  # fmt: skip
)
def test_a_schema_with_a_writer_check_at_any_depth_goes_through_deltas_writer(schema):
    assert _writer_enforced(schema)


def test_nullable_columns_with_comments_only_can_be_committed_as_staged():
    assert not _writer_enforced(PLAIN)


def test_a_catalog_uri_in_an_error_has_its_credentials_masked():
    from pipelines.storage.formats import _without_credentials

    assert _without_credentials("jdbc:postgresql://h:5432/db?user=a&password=s3cr3t") == \
        "jdbc:postgresql://h:5432/db?user=a&password=***"  # fmt: skip
    assert _without_credentials("https://svc:t0ken@catalog.example/api") == "https://***@catalog.example/api"
    assert _without_credentials("https://h/api?token=abc;x=1") == "https://h/api?token=***;x=1"
    assert _without_credentials("jdbc:sqlite:/data/cat.db") == "jdbc:sqlite:/data/cat.db"
