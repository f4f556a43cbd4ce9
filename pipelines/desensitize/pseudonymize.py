"""Keyed pseudonyms: HMAC-SHA256 of the (normalized) UTF-8 value, as hex/base32/base64url."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from pipelines.desensitize.base import TEXT_LIKE, Context, normalized, require
from pipelines.desensitize.keyed import utf8
from pipelines.spec.models import Hash

# Spark's conv(x, 16, 32) writes base-32 digits with the "base32hex" alphabet; a
# character-wise translate maps them onto RFC 4648's alphabet (lower case).
_B32HEX = "0123456789ABCDEFGHIJKLMNOPQRSTUV"
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def _base32(hex_digest: Column, length: int) -> Column:
    """RFC 4648 base32 (lower case, no padding) of the first ``length`` characters.

    Every 60 bits (15 hex digits, the most ``conv`` reads into its 64-bit number that
    is a multiple of both 4 and 5 bits) encode to exactly 12 base32 characters, so
    the digest is converted chunk by chunk; 4 chunks cover 48 characters.
    """
    chunks = []
    for i in range((length + 11) // 12):
        piece = F.conv(F.substring(hex_digest, 15 * i + 1, 15), 16, 32)
        chunks.append(F.lpad(piece, 12, "0"))
    return F.substring(F.translate(F.concat(*chunks), _B32HEX, _B32), 1, length)


def encode_digest(hex_digest: Column, encoding: str, length: int | None) -> Column:
    """Render a hex SHA-256 digest in the requested token format."""
    if encoding == "hex":
        return F.substring(hex_digest, 1, length) if length else hex_digest
    if encoding == "base32":
        return _base32(hex_digest, length or 48)
    b64 = F.translate(F.base64(F.unhex(hex_digest)), "+/", "-_")
    return F.substring(b64, 1, length or 43)  # 43 = 256 bits without the '=' padding


def pseudonym(name: str, action: Hash, dtype: DataType, ctx: Context) -> Column:
    """HMAC-SHA256(key, UTF-8(normalize(value))), encoded; null stays null."""
    require(name, "hash", dtype, TEXT_LIKE, "a string, integer or date column")
    message = utf8(normalized(F.col(name), action.normalize))
    digest = ctx.ring.hmac_hex(action.key, message)
    return encode_digest(digest, action.encoding, action.length)
