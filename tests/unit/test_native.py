"""The PII screen's jar: named after its source, compiled by javac, one-line errors."""

from __future__ import annotations

import hashlib
import zipfile
from importlib import resources

import pytest

from pipelines.errors import MissingInputError
from pipelines.pii import native


def test_jar_name_is_the_sha256_of_the_source():
    source = (resources.files("pipelines.pii") / "java" / "anonymize/pii/ScreenMask.java").read_bytes()
    assert native.jar_name() == f"anonymize-pii-{hashlib.sha256(source).hexdigest()[:12]}.jar"


def test_build_compiles_the_screen_class_and_removes_jars_of_older_sources(tmp_path):
    stale = tmp_path / "anonymize-pii-000000000000.jar"
    stale.write_bytes(b"old")
    jar = native.build(tmp_path)
    assert jar.name == native.jar_name() and not stale.exists()
    names = zipfile.ZipFile(jar).namelist()
    assert "anonymize/pii/ScreenMask.class" in names
    assert sorted(p.name for p in tmp_path.iterdir()) == [jar.name]  # no temporary left


def test_missing_javac_is_one_line_naming_make_jars(tmp_path, monkeypatch):
    monkeypatch.setattr(native.shutil, "which", lambda name: None)
    with pytest.raises(MissingInputError, match="make jars") as err:
        native.build(tmp_path)
    assert "\n" not in str(err.value) and not list(tmp_path.iterdir())
