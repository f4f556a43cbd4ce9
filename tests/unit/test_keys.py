"""Key resolution: references only, fail early, fingerprints only."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from pipelines.errors import KeyMaterialError
from pipelines.keys import resolve_key
from pipelines.spec.models import KeyRef


def test_when_env_var_missing_then_error_names_spec_path_and_variable(monkeypatch):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(KeyMaterialError, match=r"keys\.main: environment variable NOPE_KEY is not set"):
        resolve_key("main", KeyRef(env="NOPE_KEY"))


def test_when_key_file_missing_then_error(tmp_path):
    with pytest.raises(KeyMaterialError, match=r"keys\.k: cannot read key file"):
        resolve_key("k", KeyRef(file=str(tmp_path / "none.key")))


def test_when_key_too_short_then_rejected(monkeypatch):
    monkeypatch.setenv("SHORT", "abc")
    with pytest.raises(KeyMaterialError, match="at least 16"):
        resolve_key("main", KeyRef(env="SHORT"))


def test_key_encodings_and_file_trailing_newline(tmp_path, monkeypatch):
    raw = bytes(range(32))
    (tmp_path / "k.hex").write_text(raw.hex() + "\n")
    (tmp_path / "k.hex").chmod(0o600)
    assert resolve_key("a", KeyRef(file=str(tmp_path / "k.hex"), encoding="hex")).material == raw
    monkeypatch.setenv("B64", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    assert resolve_key("b", KeyRef(env="B64", encoding="base64")).material == raw
    monkeypatch.setenv("BADHEX", "zz" * 20)
    with pytest.raises(KeyMaterialError, match="not valid hex"):
        resolve_key("c", KeyRef(env="BADHEX", encoding="hex"))


def test_fingerprint_and_repr_do_not_reveal_key(monkeypatch):
    secret = "correct-horse-battery-staple-42"
    monkeypatch.setenv("K", secret)
    key = resolve_key("main", KeyRef(env="K"))
    assert secret not in repr(key) and secret.encode().hex() not in repr(key)
    assert len(key.fingerprint) == 16 and key.fingerprint not in secret.encode().hex()
    # derived subkeys are HMACs of the purpose, distinct per purpose
    assert key.derive("a") == hmac.new(secret.encode(), b"pipelines/a", hashlib.sha256).digest()
    assert key.derive("a") != key.derive("b")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o620, 0o606])
def test_a_key_file_others_can_read_or_write_is_refused_unless_accepted(tmp_path, mode):
    key = tmp_path / "main.key"
    key.write_text("k" * 32)
    key.chmod(mode)
    with pytest.raises(KeyMaterialError, match=rf"accessible by group or others \(mode {mode:04o}\); "
                       rf"run `chmod 600 {key}`"):  # fmt: skip
        resolve_key("main", KeyRef(file=str(key)))
    assert resolve_key("main", KeyRef(file=str(key), unsafe_permissions=True)).material == b"k" * 32
    key.chmod(0o600)
    assert resolve_key("main", KeyRef(file=str(key))).material == b"k" * 32
    key.chmod(0o400)
    assert resolve_key("main", KeyRef(file=str(key))).material == b"k" * 32
