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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from pipelines.errors import KeyMaterialError
from pipelines.spec.tables import KeyRef

if TYPE_CHECKING:
    from pipelines.spec.models import PipelineSpec

#: Shorter keys make keyed pseudonyms cheap to brute-force together with the input space.
MIN_KEY_BYTES = 16


@dataclass(frozen=True)
class Key:
    """Key bytes plus a public fingerprint.

    ``repr`` never shows the bytes, and a key refuses to be pickled: pickles are how
    Python objects reach Spark executors (closures of UDFs) and caches, and key
    material must stay on the driver, inside the one-row key frame of
    :class:`~pipelines.desensitize.keyed.KeyRing`.

    Attributes:
        name: The key's name in the spec's ``keys``.
        material: The key bytes (at least :data:`MIN_KEY_BYTES`).
    """

    name: str
    material: bytes = field(repr=False)

    def __reduce__(self) -> NoReturn:
        """Refuse pickling (see the class docstring).

        Raises:
            TypeError: Always.
        """
        raise TypeError(f"key '{self.name}' must not be pickled (key material stays on the driver)")

    @property
    def fingerprint(self) -> str:
        """First 16 hex digits of SHA-256 over a domain-separated key: an id, not the key."""
        return hashlib.sha256(b"pipelines/key-fingerprint/v1\x00" + self.material).hexdigest()[:16]

    def derive(self, purpose: str) -> bytes:
        """A purpose-bound subkey: HMAC-SHA256(key, "pipelines/" + purpose).

        Surrogates, date shifts and noise use derived subkeys, so none of them can be
        turned into a pseudonym of the same value (which uses the key itself).

        Args:
            purpose: The purpose, e.g. ``date_shift`` or ``surrogate/email``.

        Returns:
            The 32-byte subkey.
        """
        return hmac.new(self.material, f"pipelines/{purpose}".encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class KeySet(Mapping[str, Key]):
    """The resolved keys of a run, by name; printable as fingerprints only.

    Attributes:
        keys: Key name -> key.
    """

    keys: Mapping[str, Key] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Key:
        """The key called ``name``.

        Args:
            name: The key's name as declared under the spec's ``keys``.

        Returns:
            The resolved key (a ``KeyError`` if it was not resolved).
        """
        return self.keys[name]

    def __iter__(self) -> Iterator[str]:
        """Key names.

        Returns:
            An iterator over the resolved keys' names.
        """
        return iter(self.keys)

    def __len__(self) -> int:
        """How many keys.

        Returns:
            The number of resolved keys.
        """
        return len(self.keys)

    def __repr__(self) -> str:
        """``KeySet(main=<fingerprint>)``: fingerprints, never key material.

        Returns:
            The key names with their fingerprints.
        """
        inner = ", ".join(f"{n}={k.fingerprint}" for n, k in self.keys.items())
        return f"KeySet({inner})"

    def fingerprints(self) -> dict[str, str]:
        """What manifests record of the keys.

        Returns:
            Key name -> fingerprint.
        """
        return {name: key.fingerprint for name, key in self.keys.items()}


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
    """Read one key.

    Args:
        name: The key's name in the spec's ``keys``.
        ref: Where the key is.

    Returns:
        The key.

    Raises:
        KeyMaterialError: The variable or file is missing, unreadable, badly encoded
            or shorter than :data:`MIN_KEY_BYTES`; the message names the spec path.
    """
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
            mode = path.stat().st_mode & 0o777
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise KeyMaterialError(
                f"{where}: cannot read key file {path} ({exc.strerror})"
            ) from None
        if mode & 0o077 and not ref.unsafe_permissions:
            raise KeyMaterialError(
                f"{where}: key file {path} is accessible by group or others (mode "
                f"{mode:04o}); run `chmod 600 {path}`, or set {where}.unsafe_permissions: "
                "true to accept it"
            )
    material = _decode(text, ref, where)
    if len(material) < MIN_KEY_BYTES:
        raise KeyMaterialError(
            f"{where}: key is {len(material)} bytes; at least {MIN_KEY_BYTES} are required "
            "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return Key(name, material)


def resolve_keys(spec: PipelineSpec) -> KeySet:
    """Every key the spec's actions use (unused declared keys are not read).

    A used key that cannot be resolved raises KeyMaterialError (see :func:`resolve_key`).

    Args:
        spec: A validated spec.

    Returns:
        The keys by name.
    """
    used = sorted(set(spec.keyed_columns().values()))
    return KeySet({name: resolve_key(name, spec.keys[name]) for name in used})
