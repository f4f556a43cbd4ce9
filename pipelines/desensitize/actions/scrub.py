"""``scrub``: PII spans inside free text replaced, the rest of the text kept byte for byte.

The detection engine is :mod:`pipelines.pii`: native screens pick candidate rows, the
Python engine (validators from python-stdnum and phonenumbers) confirms spans on those
rows only, in Arrow batches. Keys stay in the JVM: for ``token`` and ``surrogate`` the
spans' canonical values are HMAC'd natively (like ``hash``) and only the digests reach
Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from pipelines.desensitize.actions.pseudonym import check_token_length
from pipelines.desensitize.operator import ActionSpec, Context, Operator
from pipelines.spec.quality import (
    DEFAULT_COUNTRIES,
    PII_ENTITIES,
    PiiEntity,
    phone_regions,
    resolve_entity,
)

if TYPE_CHECKING:
    from pyspark.sql import Column

#: Actions whose columns hold the row's own PII: their values are the known values a
#: ``scrub`` column looks for by default (the customer's name in their own note).
KNOWN_VALUE_KINDS = ("drop", "redact", "hash", "surrogate", "mask")


class ScrubSpec(ActionSpec):
    """Replace PII spans found in free text; keep everything else as it was.

    ``entities`` (default: every entity of the catalogue) names what to look for;
    ``replace_with`` says what a span becomes:

    * ``placeholder``: ``<EMAIL>``, ``<PHONE>``, … (the entity's label);
    * ``token``: ``<EMAIL:token>``: the keyed pseudonym of the span's canonical form
      (lower-case email, E.164 phone, compact upper-case IBAN, digits of a card…), in
      the ``hash`` action's token format (``encoding``, ``length``), so it equals the
      ``hash`` of a column holding the same value with ``canonical`` set;
    * ``surrogate``: a consistent never-real value of the same kind
      (:mod:`pipelines.pii.surrogates`);
    * ``mask``: every character of the span but ``-``, ``.``, ``@`` and spaces
      replaced by ``char``.

    ``known_values`` lists columns whose row values are looked for as PERSON, case-
    and accent-insensitively (default: the columns whose action is drop, redact,
    hash, surrogate or mask). ``countries`` are the phone regions whose national
    formats count. Null stays null; an empty string stays empty.
    """

    kind: Literal["scrub"]
    entities: tuple[PiiEntity, ...] | None = Field(
        None, min_length=1, description="Entities to replace (default: all); former names accepted."
    )
    replace_with: Literal["placeholder", "token", "surrogate", "mask"] = "placeholder"
    key: str = "main"
    encoding: Literal["hex", "base32", "base64url"] = "hex"
    length: int | None = Field(16, ge=8)
    char: str = Field("*", min_length=1, max_length=1)
    countries: tuple[str, ...] = Field(DEFAULT_COUNTRIES, min_length=1)
    known_values: tuple[str, ...] | None = None

    @field_validator("entities")
    @classmethod
    def _canonical_names(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        return tuple(dict.fromkeys(resolve_entity(v) for v in value))

    @field_validator("countries")
    @classmethod
    def _regions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return phone_regions(value)

    @model_validator(mode="after")
    def _length_fits(self) -> ScrubSpec:
        check_token_length(self.encoding, self.length)
        return self

    def uses_key(self) -> bool:
        """Only tokens and surrogates are keyed.

        Returns:
            Whether ``key`` must name a declared key.
        """
        return self.replace_with in ("token", "surrogate")

    @property
    def wanted(self) -> tuple[str, ...]:
        """The entities to find, catalogue names in catalogue order."""
        chosen = set(self.entities) if self.entities is not None else set(PII_ENTITIES)
        return tuple(e for e in PII_ENTITIES if e in chosen)


class ScrubOperator(Operator, spec=ScrubSpec):
    """PII spans of free text replaced; the rest kept."""

    label = "PII in text scrubbed"
    accepts = "string"
    keyed = True
    action: ScrubSpec
    #: Columns whose values are this row's known PII (set by :meth:`link`).
    known: tuple[str, ...] = ()

    def link(self, columns: dict[str, ActionSpec]) -> None:
        """Resolve ``known_values`` against the spec's other columns.

        Args:
            columns: The spec's columns (key -> action).
        """
        explicit = self.action.known_values
        if explicit is not None:
            self.known = tuple(explicit)
        else:
            self.known = tuple(
                c for c, a in columns.items() if c != self.column and a.kind in KNOWN_VALUE_KINDS
            )

    def compile(self, ctx: Context) -> Column:
        """The scrubbed text (see :class:`ScrubSpec`).

        Args:
            ctx: The run's compile context (key ring for tokens and surrogates).

        Returns:
            A string column.
        """
        from pyspark.sql import functions as F

        from pipelines.desensitize.actions.pseudonym import encode_digest
        from pipelines.desensitize.keyed import utf8
        from pipelines.pii import spark as pii
        from pipelines.pii.catalogue import label

        a = self.action
        text = F.col(self.column)
        wanted = a.wanted
        known = [k for k in self.known if "person" in wanted]
        mask = ctx.ring.helper(pii.screen_mask(wanted, self.column, known))
        known_array = F.array(*[F.col(k).cast("string") for k in known]).cast("array<string>")
        udf = pii.spans_udf(wanted, a.countries, a.replace_with, a.char)
        found = ctx.ring.helper(udf(F.when(mask != 0, text), known_array, mask))
        self._found = found
        if a.replace_with in ("placeholder", "mask"):
            rendered = found["text"]
        else:
            canon = F.transform(found["spans"], lambda s: utf8(s["canonical"]))
            purpose = "" if a.replace_with == "token" else "scrub/surrogate"
            digests = ctx.ring.hmac_hex_each(a.key, canon, purpose)
            if a.replace_with == "token":
                labels = F.create_map(*[F.lit(x) for e in wanted for x in (e, label(e))])
                entities = F.transform(found["spans"], lambda s: s["entity"])
                values = F.zip_with(
                    entities, digests, lambda e, d: F.concat(
                        F.lit("<"), F.element_at(labels, e), F.lit(":"),
                        encode_digest(d, a.encoding, a.length), F.lit(">"),
                    ),
                )  # fmt: skip
            else:
                values = digests
            rendered = pii.render_udf(a.replace_with, a.countries)(text, found["spans"], values)
        return F.when(found["spans"].isNull(), text).otherwise(rendered)  # not a candidate

    def flags(self, ctx: Context) -> dict[str, Column]:
        """Spans replaced per entity (counts, never values), for the manifest.

        Args:
            ctx: The run's compile context.

        Returns:
            ``scrubbed.<entity>`` -> the number of spans of that entity in the row.
        """
        from pyspark.sql import functions as F

        spans = self._found["spans"]

        def count(entity: str) -> Column:
            # (F.filter passes (element, index) to a two-argument lambda: no default args)
            return F.coalesce(F.size(F.filter(spans, lambda s: s["entity"] == entity)), F.lit(0))

        return {f"scrubbed.{e}": count(e) for e in self.action.wanted}
