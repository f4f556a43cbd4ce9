"""``hash``: keyed pseudonyms, HMAC-SHA256 of the (normalized) UTF-8 value.

The YAML kind is ``hash``; everywhere else the product calls the result what it
is, a keyed pseudonym.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from pipelines.desensitize.operator import ActionSpec, Context, Domain, Normalization, Operator
from pipelines.spec.quality import DEFAULT_COUNTRIES, PiiEntity, phone_regions, resolve_entity

if TYPE_CHECKING:
    from pyspark.sql import Column

#: Per encoding: the token alphabet (a regex class), the full length of a 256-bit
#: digest in characters, and the bits one character carries. base64url's ``-`` is
#: written ``_`` (see :func:`token_shape`), so its alphabet has 63 characters.
TOKEN_FORMATS = {
    "hex": ("0-9a-f", 64, 4.0),
    "base32": ("a-z2-7", 48, 5.0),
    "base64url": ("A-Za-z0-9_", 43, 5.977),  # log2(63)
}

# Spark's conv(x, 16, 32) writes base-32 digits with the "base32hex" alphabet; a
# character-wise translate maps them onto RFC 4648's alphabet (lower case).
_B32HEX = "0123456789ABCDEFGHIJKLMNOPQRSTUV"
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def check_token_length(encoding: str, length: int | None) -> None:
    """Refuse a token ``length`` longer than the encoding's full digest.

    Args:
        encoding: ``hex``, ``base32`` or ``base64url``.
        length: The requested length (None: the whole digest).

    Raises:
        ValueError: The length exceeds the digest's length in that encoding.
    """
    limit = TOKEN_FORMATS[encoding][1]
    if length is not None and length > limit:
        raise ValueError(f"length {length} exceeds {limit} for encoding {encoding}")


class PseudonymSpec(ActionSpec):
    """Keyed pseudonym: HMAC-SHA256(key, UTF-8(normalized value)).

    ``encoding`` renders the 32-byte digest as ``hex`` (64 chars), ``base32``
    (RFC 4648 alphabet, lower case, no padding) or ``base64url`` (no padding, with
    ``-`` written as ``_``), truncated to ``length`` characters when given. Tokens of
    34 characters or fewer have ``_`` as their second character, so that no PII
    detector can mistake one for an identifier (:func:`token_shape`). A token of L
    characters keeps 4L (hex), 5L (base32) or ~5.98L (base64url) bits, one
    character fewer when L ≤ 34; keep at least 64 bits where pseudonyms must stay
    distinct. Non-string columns are cast to their Spark string form first. Null
    stays null.
    """

    kind: Literal["hash"]
    key: str = "main"
    encoding: Literal["hex", "base32", "base64url"] = "hex"
    length: int | None = Field(None, ge=8)
    normalize: tuple[Normalization, ...] = ()
    canonical: PiiEntity | None = Field(
        None,
        description="Hash the value's canonical form as this PII entity (email: lower case; "
        "phone: E.164; iban: compact upper case), as scrub tokens do, so the two join.",
    )
    countries: tuple[str, ...] = Field(DEFAULT_COUNTRIES, min_length=1)

    @field_validator("canonical")
    @classmethod
    def _canonical_name(cls, value: str | None) -> str | None:
        return None if value is None else resolve_entity(value)

    @field_validator("countries")
    @classmethod
    def _regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return phone_regions(value)

    @model_validator(mode="after")
    def _length_fits(self) -> PseudonymSpec:
        check_token_length(self.encoding, self.length)
        return self


def _base32(hex_digest: Column, length: int) -> Column:
    """RFC 4648 base32 (lower case, no padding) of the first ``length`` characters.

    Every 60 bits (15 hex digits, the most ``conv`` reads into its 64-bit number that
    is a multiple of both 4 and 5 bits) encode to exactly 12 base32 characters, so
    the digest is converted chunk by chunk; 4 chunks cover 48 characters.
    """
    from pyspark.sql import functions as F

    chunks = []
    for i in range((length + 11) // 12):
        piece = F.conv(F.substring(hex_digest, 15 * i + 1, 15), 16, 32)
        chunks.append(F.lpad(piece, 12, "0"))
    return F.substring(F.translate(F.concat(*chunks), _B32HEX, _B32), 1, length)


#: Tokens up to this long carry ``_`` as their second character (see :func:`token_shape`).
SHAPED_UP_TO = 34


def token_shape(encoding: str, length: int) -> tuple[str, int]:
    """The regex of a token format, and the bits of the digest it keeps.

    Tokens are one word: only letters, digits and ``_`` (base64url writes ``-`` as
    ``_``), so no PII detector, which matches only between non-word characters, can
    find an identifier *inside* one. A detector could still match a *whole* token
    that happens to look like an identifier (a hex token of digits only is a card
    number with probability (10/16)^L/10; a base32 token a lower-case Qatari IBAN
    with probability ~1.5e-7 at L = 29). Every fixed-length identifier the
    detectors know is at most 34 characters (the longest IBAN), so tokens of 34
    characters or fewer carry ``_``, which no such identifier contains, as their
    second character. The bound is therefore 0 for every allowed format, by
    construction rather than by probability.

    Args:
        encoding: ``hex``, ``base32`` or ``base64url``.
        length: The token's length in characters.

    Returns:
        ``(regex of the whole value, bits of the digest kept)``.
    """
    alphabet, _, per_char = TOKEN_FORMATS[encoding]
    if length <= SHAPED_UP_TO:
        return f"^[{alphabet}]_[{alphabet}]{{{length - 2}}}$", per_char * (length - 1)
    return f"^[{alphabet}]{{{length}}}$", per_char * length


def encode_digest(hex_digest: Column, encoding: str, length: int | None) -> Column:
    """Render a hex SHA-256 digest in a token format (see :func:`token_shape`).

    Args:
        hex_digest: A column of 64 lower-case hex digits.
        encoding: ``hex``, ``base32`` or ``base64url``.
        length: Characters to keep (None: the whole digest).

    Returns:
        A string column of tokens.
    """
    from pyspark.sql import functions as F

    if encoding == "hex":
        token = F.substring(hex_digest, 1, length) if length else hex_digest
    elif encoding == "base32":
        token = _base32(hex_digest, length or TOKEN_FORMATS["base32"][1])
    else:  # base64url, '-' written as '_' so a token is one word
        b64 = F.translate(F.base64(F.unhex(hex_digest)), "+/-", "__")
        token = F.substring(b64, 1, length or TOKEN_FORMATS["base64url"][1])  # no '=' padding
    if length is not None and length <= SHAPED_UP_TO:
        token = F.overlay(token, F.lit("_"), 2, 1)
    return token


class PseudonymOperator(Operator, spec=PseudonymSpec):
    """HMAC-SHA256(key, UTF-8(normalize(value))), encoded; null stays null."""

    label = "Pseudonymized (keyed HMAC-SHA256)"
    accepts = "text"
    keyed = True
    action: PseudonymSpec

    def compile(self, ctx: Context) -> Column:
        """The token of the row's value.

        Args:
            ctx: The run's compile context (its key ring computes the digest).

        Returns:
            A string column of tokens.
        """
        from pyspark.sql import functions as F

        from pipelines.desensitize.keyed import normalized, utf8

        value = normalized(F.col(self.column), self.action.normalize)
        if self.action.canonical is not None:
            from pipelines.pii.spark import canonical_udf

            value = canonical_udf(self.action.canonical, self.action.countries)(value)
        message = utf8(value)
        digest = ctx.ring.hmac_hex(self.action.key, message)
        return encode_digest(digest, self.action.encoding, self.action.length)

    def domain(self) -> Domain:
        """Tokens of the format's shape (:func:`token_shape`) and exactly its length.

        Returns:
            A ``regex`` token domain.
        """
        n = self.action.length or TOKEN_FORMATS[self.action.encoding][1]
        regex, _ = token_shape(self.action.encoding, n)
        return Domain("regex", f"a {n}-character {self.action.encoding} token", regex=regex,
                      token=True)  # fmt: skip
