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
def dictionary(name: str) -> tuple[str, ...]:
    """A shipped word list (one entry per line)."""
    text = resources.files("pipelines.desensitize").joinpath(f"dictionaries/{name}.txt")
    return tuple(line.strip() for line in text.read_text("utf-8").splitlines() if line.strip())


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
    first = _pick(dictionary("first_names"), h, 1)
    last = _pick(dictionary("last_names"), h, 16)
    if action.domain == "first_name":
        return first
    if action.domain == "last_name":
        return last
    if action.domain == "person_name":
        return F.concat_ws(" ", first, last)
    if action.domain == "city":
        return _pick(dictionary("cities"), h, 1)
    if action.domain == "email":
        number = F.lpad((hex_to_long(h, 31, 8) % 1000).cast("string"), 3, "0")
        domain = _pick(EMAIL_DOMAINS, h, 40)
        lower_first = _pick(tuple(w.lower() for w in dictionary("first_names")), h, 1)
        lower_last = _pick(tuple(w.lower() for w in dictionary("last_names")), h, 16)
        return F.concat(lower_first, F.lit("."), lower_last, number, F.lit("@"), domain)
    # phone: +1 555 XXX XXXX
    digits = F.lpad((hex_to_long(h, 1) % 10_000_000).cast("string"), 7, "0")
    return F.concat(
        F.lit("+1 555 "), F.substring(digits, 1, 3), F.lit(" "), F.substring(digits, 4, 4)
    )
