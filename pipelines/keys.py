"""Resolve secrets referenced by a spec, and fingerprint them.

Keys are read from an environment variable or a key file named in the spec; the
spec never holds key material. Resolution happens before any data is read, so a
missing key stops a run early. Only the fingerprint (a one-way id) is ever logged
or written to a manifest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import KeyMaterialError
from pipelines.spec.models import KeyRef, PipelineSpec

#: Shorter keys make keyed pseudonyms cheap to brute-force together with the input space.
MIN_KEY_BYTES = 16


@dataclass(frozen=True)
class Key:
    """Key bytes plus a public fingerprint. ``repr`` never shows the bytes."""

    name: str
    material: bytes = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """First 16 hex digits of SHA-256 over a domain-separated key: an id, not the key."""
        return hashlib.sha256(b"pipelines/key-fingerprint/v1\x00" + self.material).hexdigest()[:16]

    def derive(self, purpose: str) -> bytes:
        """A purpose-bound subkey: HMAC-SHA256(key, "pipelines/" + purpose).

        Surrogates, date shifts and noise use derived subkeys, so none of them can be
        turned into a pseudonym of the same value (which uses the key itself).
        """
        return hmac.new(self.material, f"pipelines/{purpose}".encode(), hashlib.sha256).digest()


def _decode(text: str, ref: KeyRef, where: str) -> bytes:
    text = text.strip()
    try:
        if ref.encoding == "hex":
            return bytes.fromhex(text)
        if ref.encoding == "base64":
            return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise KeyMaterialError(f"{where}: key is not valid {ref.encoding}") from None
    return text.encode("utf-8")


def resolve_key(name: str, ref: KeyRef) -> Key:
    """Read one key; raise :class:`KeyMaterialError` naming the spec path if unusable."""
    where = f"keys.{name}"
    if ref.env is not None:
        text = os.environ.get(ref.env)
        if text is None or not text.strip():
            raise KeyMaterialError(
                f"{where}: environment variable {ref.env} is not set; export it (the spec only "
                "names the variable) before running"
            )
    else:
        path = Path(ref.file or "")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise KeyMaterialError(
                f"{where}: cannot read key file {path} ({exc.strerror})"
            ) from None
    material = _decode(text, ref, where)
    if len(material) < MIN_KEY_BYTES:
        raise KeyMaterialError(
            f"{where}: key is {len(material)} bytes; at least {MIN_KEY_BYTES} are required "
            "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return Key(name, material)


def resolve_keys(spec: PipelineSpec) -> dict[str, Key]:
    """Every key the spec's actions use (unused declared keys are not read)."""
    used = sorted(set(spec.keyed_columns().values()))
    return {name: resolve_key(name, spec.keys[name]) for name in used}
