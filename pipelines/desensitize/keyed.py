"""HMAC-SHA256 as a native Spark SQL expression, with key material kept out of plans.

HMAC (RFC 2104) with SHA-256 (block size 64 bytes):

    K'   = SHA256(K) if len(K) > 64 else K, right-padded with zeros to 64 bytes
    HMAC = SHA256((K' xor opad) || SHA256((K' xor ipad) || m))

Spark has ``sha2`` (hex output), ``unhex`` and binary ``concat``, so the whole
construction runs in the JVM with no Python UDF. The two padded keys are secrets:
as SQL literals they would appear in query plans, the Spark UI and event logs.
Instead they live in a one-row DataFrame that is cross-joined (broadcast) onto the
data; plans then show only the column names ``__anon_k<n>_i`` / ``__anon_k<n>_o``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, StructField, StructType

if TYPE_CHECKING:
    from pipelines.keys import Key

_BLOCK = 64
KEY_COLUMN_PREFIX = "__anon_k"
DIGEST_COLUMN_PREFIX = "__anon_h"


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The inner and outer padded keys of HMAC-SHA256 (RFC 2104).

    Args:
        key: The key bytes.

    Returns:
        ``(K' xor ipad, K' xor opad)``, 64 bytes each.
    """
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\x00")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def utf8(col: Column) -> Column:
    """A string column's UTF-8 bytes.

    Args:
        col: A string column.

    Returns:
        A binary column.
    """
    return F.encode(col, "UTF-8")


@dataclass
class KeyRing:
    """Collects the keyed HMAC instances a plan needs and builds their key row."""

    keys: dict[str, Key]
    _pads: dict[tuple[str, str], int] = field(default_factory=dict)
    _material: list[tuple[bytes, bytes]] = field(default_factory=list)
    _digest_names: dict[tuple[int, str], str] = field(default_factory=dict)
    _digests: dict[str, Column] = field(default_factory=dict)
    _helpers: dict[str, Column] = field(default_factory=dict)

    def _slot(self, key_name: str, purpose: str) -> int:
        ident = (key_name, purpose)
        if ident not in self._pads:
            key = self.keys[key_name]
            material = key.material if purpose == "" else key.derive(purpose)
            self._pads[ident] = len(self._material)
            self._material.append(hmac_pads(material))
        return self._pads[ident]

    def hmac_hex(self, key_name: str, message: Column, purpose: str = "") -> Column:
        """Lower-case hex HMAC-SHA256 of ``message`` (binary); ``purpose`` selects a subkey.

        With ``purpose == ""`` the key itself is used, so the result equals
        ``hmac.new(key, message, hashlib.sha256).hexdigest()``. Null in, null out.

        Returns a reference to a helper column that :meth:`attach` computes once per
        row: callers often use a digest several times (a surrogate's first and last
        name, a date offset's branches), and Spark does not eliminate common
        subexpressions inside conditional branches.

        Args:
            key_name: The name of a key in :attr:`keys`.
            message: A binary column (see :func:`utf8`).
            purpose: The subkey's purpose label; empty for the key itself.

        Returns:
            A reference to the digest column (64 lower-case hex characters), valid only on a
            DataFrame passed through :meth:`attach`.
        """
        n = self._slot(key_name, purpose)
        ident = (n, message._jc.toString())
        name = self._digest_names.get(ident)
        if name is None:
            name = f"{DIGEST_COLUMN_PREFIX}{len(self._digest_names)}"
            inner = F.unhex(F.sha2(F.concat(F.col(f"{KEY_COLUMN_PREFIX}{n}_i"), message), 256))
            self._digests[name] = F.sha2(F.concat(F.col(f"{KEY_COLUMN_PREFIX}{n}_o"), inner), 256)
            self._digest_names[ident] = name
        return F.col(name)

    def hmac_hex_each(self, key_name: str, messages: Column, purpose: str = "") -> Column:
        """Lower-case hex HMAC-SHA256 of every element of a binary array, as :meth:`hmac_hex`.

        Args:
            key_name: The name of a key in :attr:`keys`.
            messages: An array of binary values.
            purpose: The subkey's purpose label; empty for the key itself.

        Returns:
            A reference to a helper column: an array of digests, element by element (null
            array: null).
        """
        n = self._slot(key_name, purpose)
        inner, outer = F.col(f"{KEY_COLUMN_PREFIX}{n}_i"), F.col(f"{KEY_COLUMN_PREFIX}{n}_o")
        name = f"{DIGEST_COLUMN_PREFIX}{len(self._digest_names)}"
        self._digest_names[(n, f"each:{name}")] = name
        self._digests[name] = F.transform(
            messages,
            lambda m: F.sha2(F.concat(outer, F.unhex(F.sha2(F.concat(inner, m), 256))), 256),
        )
        return F.col(name)

    def helper(self, expr: Column) -> Column:
        """A column computed once per row before the key join, for expressions to share.

        Spark may evaluate an expression used in several output columns (a Python UDF
        above all) once per use; a helper column is evaluated once.

        Args:
            expr: Any expression over the source row.

        Returns:
            A reference to the helper column, valid on a DataFrame passed through
            :meth:`attach`.
        """
        name = f"__anon_x{len(self._helpers)}"
        self._helpers[name] = expr
        return F.col(name)

    def attach(self, df: DataFrame) -> DataFrame:
        """Cross-join the one-row key DataFrame (broadcast) onto ``df`` and add the digests.

        Call it after every expression has been built (building registers the keys).

        Args:
            df: The data the expressions will be evaluated on.

        Returns:
            ``df`` with the helper columns, the padded-key columns and one column per
            registered digest (no key columns when no expression asked for key material).
        """
        for name, expr in self._helpers.items():
            # One by one: a helper may read an earlier one (scrub's spans read its screen
            # mask), which one withColumns would resolve only as a lateral column alias.
            df = df.withColumn(name, expr)
        if not self._material:
            return df
        fields, row = [], []
        for n, (ipad, opad) in enumerate(self._material):
            fields += [
                StructField(f"{KEY_COLUMN_PREFIX}{n}_i", BinaryType(), False),
                StructField(f"{KEY_COLUMN_PREFIX}{n}_o", BinaryType(), False),
            ]
            row += [bytearray(ipad), bytearray(opad)]
        keyrow = df.sparkSession.createDataFrame([tuple(row)], StructType(fields))
        return df.crossJoin(F.broadcast(keyrow)).withColumns(self._digests)


def hex_to_long(hex_col: Column, start: int, digits: int = 15) -> Column:
    """A non-negative integer read from a hex string.

    Args:
        hex_col: A column of hex digits.
        start: 1-based position of the first digit.
        digits: How many digits (at most 15, i.e. 60 bits, so the result fits a long).

    Returns:
        A bigint column.
    """
    return F.conv(F.substring(hex_col, start, digits), 16, 10).cast("bigint")


#: Unicode's White_Space property (PropList.txt): what ``trim_unicode`` strips. Python's
#: ``str.strip()`` strips a different set (it adds U+001C..U+001F, which are not
#: White_Space), so the set is spelled out.
WHITE_SPACE = (
    "\u0009\u000a\u000b\u000c\u000d\u0020\u0085\u00a0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_WS_CLASS = "[" + "".join(f"\\x{{{ord(c):04x}}}" for c in WHITE_SPACE) + "]"


def _icu(col: Column, cls: str, method: str, flag: bool) -> Column:
    """A static ICU4J method (shipped in pyspark's jars) on a string; null stays null.

    ``java_method`` is not whole-stage code generated, and the ICU methods throw on
    null, hence the guard.
    """
    call = F.call_function("java_method", F.lit(cls), F.lit(method), col, F.lit(flag))
    return F.when(col.isNull(), F.lit(None).cast("string")).otherwise(call)


def normalized(col: Column, steps: tuple[str, ...]) -> Column:
    r"""A value's string form with the declared normalizations applied in order.

    * ``trim``: leading/trailing ASCII white space (space, \t, \n, \x0b, \f, \r),
      Python's ``s.strip(" \t\n\x0b\f\r")``;
    * ``lower``: Java's ``toLowerCase``;
    * ``nfc`` / ``nfkc``: Unicode normalization form C / KC (ICU4J ``Normalizer``),
      Python's ``unicodedata.normalize("NFC" | "NFKC", s)``;
    * ``trim_unicode``: leading/trailing characters with the Unicode White_Space
      property (:data:`WHITE_SPACE`, which includes U+00A0 and U+3000);
    * ``casefold``: Unicode full case folding (ICU4J ``UCharacter.foldCase``),
      Python's ``str.casefold`` (``ß`` -> ``ss``, final ``ς`` -> ``σ``).

    The Unicode steps are opt-in: adding one to a spec changes the pseudonyms of
    values it alters (see README).

    Args:
        col: The source column (cast to string first).
        steps: Normalization names, applied left to right.

    Returns:
        A string column.
    """
    out = col.cast("string")
    for step in steps:
        if step == "trim":
            out = F.btrim(out, F.lit(" \t\n\x0b\f\r"))  # cheaper than a regex
        elif step == "lower":
            out = F.lower(out)
        elif step in ("nfc", "nfkc"):
            out = _icu(out, "com.ibm.icu.text.Normalizer", "compose", step == "nfkc")
        elif step == "trim_unicode":
            out = F.regexp_replace(out, f"^{_WS_CLASS}+|{_WS_CLASS}+$", "")
        elif step == "casefold":
            out = _icu(out, "com.ibm.icu.lang.UCharacter", "foldCase", True)
    return out
