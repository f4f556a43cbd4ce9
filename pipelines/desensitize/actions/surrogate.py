"""``surrogate``: a consistent fake value picked by keyed hash from a dictionary.

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
from typing import TYPE_CHECKING, Literal

from pipelines.desensitize.operator import ActionSpec, Context, Normalization, Operator

if TYPE_CHECKING:
    from pyspark.sql import Column

EMAIL_DOMAINS = ("example.com", "example.org", "example.net")

#: PII detectors a surrogate of a domain matches by construction.
ALLOWED_PII = {
    "email": ("email",),
    "phone": ("phone",),
    "person_name": ("person",),
    "first_name": ("person",),
    "last_name": ("person",),
}


class SurrogateSpec(ActionSpec):
    """Consistent fake value chosen by keyed hash from a dictionary shipped in the package.

    The same input and key give the same surrogate in every partition and table
    (the choice depends only on the key, the domain and the normalized value).
    Distinct inputs may share a surrogate (dictionaries are finite): use ``hash``
    where uniqueness matters.
    """

    kind: Literal["surrogate"]
    domain: Literal["person_name", "first_name", "last_name", "email", "city", "phone"]
    key: str = "main"
    normalize: tuple[Normalization, ...] = ()


@cache
def dictionary(name: str, lower: bool = False) -> tuple[str, ...]:
    """A shipped word list.

    Args:
        name: The list's file name without ``.txt`` (``first_names``, ``last_names``,
            ``cities``).
        lower: Lower-case every entry.

    Returns:
        The entries, one per non-empty line, in file order.
    """
    text = resources.files("pipelines.desensitize").joinpath(f"dictionaries/{name}.txt")
    words = (line.strip() for line in text.read_text("utf-8").splitlines() if line.strip())
    return tuple(w.lower() if lower else w for w in words)


def _pick(words: tuple[str, ...], hex_digest: Column, start: int) -> Column:
    from pyspark.sql import functions as F

    from pipelines.desensitize.keyed import hex_to_long

    index = hex_to_long(hex_digest, start) % len(words)
    return F.element_at(F.lit(list(words)), (index + 1).cast("int"))


class SurrogateOperator(Operator, spec=SurrogateSpec):
    """A fake value of the domain; null stays null."""

    label = "Consistent surrogates"
    accepts = "text"
    keyed = True
    action: SurrogateSpec

    def compile(self, ctx: Context) -> Column:
        """The surrogate chosen by the value's keyed digest.

        Args:
            ctx: The run's compile context (its key ring computes the digest).

        Returns:
            A string column.
        """
        from pyspark.sql import functions as F

        return F.when(F.col(self.column).isNull(), F.lit(None).cast("string")).otherwise(
            self._fake(ctx)
        )

    def _fake(self, ctx: Context) -> Column:
        from pyspark.sql import functions as F

        from pipelines.desensitize.keyed import hex_to_long, normalized, utf8

        domain = self.action.domain
        message = utf8(normalized(F.col(self.column), self.action.normalize))
        h = ctx.ring.hmac_hex(self.action.key, message, purpose=f"surrogate/{domain}")
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

    def allowed_pii(self) -> tuple[str, ...]:
        """An email (phone) surrogate column holds emails (phones) by construction.

        Returns:
            The detector names its domain matches.
        """
        return ALLOWED_PII.get(self.action.domain, ())
