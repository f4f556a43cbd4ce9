"""Consistent surrogates: a plausible fake value picked by keyed hash from a dictionary.

index = int(first 60 bits of HMAC(subkey(domain), UTF-8(normalized value))) mod N

The subkey depends only on the key and the domain, so the same input and key give
the same surrogate in every column, partition and table. The modulo bias is at most
N / 2^60 (negligible). Emails use the reserved ``example.*`` domains (RFC 2606) and
phones the unassigned North American area code 555, so a surrogate never reaches a
real person.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from pipelines.desensitize.base import TEXT_LIKE, Context, normalized, require
from pipelines.desensitize.keyed import hex_to_long, utf8
from pipelines.spec.models import Surrogate

EMAIL_DOMAINS = ("example.com", "example.org", "example.net")


@cache
def dictionary(name: str, lower: bool = False) -> tuple[str, ...]:
    """A shipped word list (one entry per line), optionally lower-cased."""
    text = resources.files("pipelines.desensitize").joinpath(f"dictionaries/{name}.txt")
    words = (line.strip() for line in text.read_text("utf-8").splitlines() if line.strip())
    return tuple(w.lower() if lower else w for w in words)


def _pick(words: tuple[str, ...], hex_digest: Column, start: int) -> Column:
    index = hex_to_long(hex_digest, start) % len(words)
    return F.element_at(F.lit(list(words)), (index + 1).cast("int"))


def surrogate(name: str, action: Surrogate, dtype: DataType, ctx: Context) -> Column:
    """Fake value for the domain; null stays null."""
    require(name, "surrogate", dtype, TEXT_LIKE, "a string, integer or date column")
    fake = _fake(name, action, ctx)
    return F.when(F.col(name).isNull(), F.lit(None).cast("string")).otherwise(fake)


def _fake(name: str, action: Surrogate, ctx: Context) -> Column:
    message = utf8(normalized(F.col(name), action.normalize))
    h = ctx.ring.hmac_hex(action.key, message, purpose=f"surrogate/{action.domain}")
    domain = action.domain
    if domain == "city":
        return _pick(dictionary("cities"), h, 1)
    if domain == "phone":  # +1 555 XXX XXXX
        digits = F.lpad((hex_to_long(h, 1) % 10_000_000).cast("string"), 7, "0")
        return F.concat(
            F.lit("+1 555 "), F.substring(digits, 1, 3), F.lit(" "), F.substring(digits, 4, 4)
        )
    lower = domain == "email"  # email local parts use lower-cased names
    first = _pick(dictionary("first_names", lower), h, 1)
    last = _pick(dictionary("last_names", lower), h, 16)
    if domain == "first_name":
        return first
    if domain == "last_name":
        return last
    if domain == "person_name":
        return F.concat_ws(" ", first, last)
    number = F.lpad((hex_to_long(h, 31, 8) % 1000).cast("string"), 3, "0")
    return F.concat(first, F.lit("."), last, number, F.lit("@"), _pick(EMAIL_DOMAINS, h, 40))
