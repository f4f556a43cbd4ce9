"""``mask``: characters replaced, keeping the first/last few and the separators."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from pipelines.desensitize.operator import ActionSpec, Context, Operator

if TYPE_CHECKING:
    from pyspark.sql import Column

# Private-use code points stand in for the three replacement classes while the
# regexes run, so a replacement character (say '#') is never re-matched by a later
# class; one final `translate` swaps them for the requested characters.
_DIGIT, _LETTER, _OTHER = "\ue000", "\ue001", "\ue002"


class MaskSpec(ActionSpec):
    """Mask characters, keeping the first/last few and the separator characters.

    Every character that is not kept is replaced: letters by ``letter`` (default
    ``char``), digits by ``digit`` (default ``char``), anything else by ``char``.
    A value no longer than ``keep_first + keep_last`` is masked entirely, so a
    short value is never published in clear. Positions count Unicode code points.
    """

    kind: Literal["mask"]
    keep_first: int = Field(0, ge=0)
    keep_last: int = Field(0, ge=0)
    separators: str = Field(" -@.", description="Characters kept as is wherever they occur.")
    char: str = Field("*", min_length=1, max_length=1)
    letter: str | None = Field(None, min_length=1, max_length=1)
    digit: str | None = Field(None, min_length=1, max_length=1)


class MaskOperator(Operator, spec=MaskSpec):
    """Every character outside the kept prefix/suffix that is not a separator, replaced.

    A value of length ≤ keep_first + keep_last is masked entirely.
    """

    label = "Masked"
    accepts = "string"
    action: MaskSpec

    def _hide(self, text: Column) -> Column:
        from pyspark.sql import functions as F

        a = self.action
        seps = re.escape(a.separators) if a.separators else ""
        if a.letter in (None, a.char) and a.digit in (None, a.char):
            # One replacement character for every class: a single regex pass.
            keep_class = f"[^{seps}]" if seps else "(?s)."
            return F.regexp_replace(
                text, keep_class, a.char.replace("\\", "\\\\").replace("$", "\\$")
            )
        text = F.regexp_replace(text, r"\p{N}", _DIGIT)
        text = F.regexp_replace(text, r"\p{L}", _LETTER)
        keep_class = f"[^{seps}{_DIGIT}{_LETTER}]" if seps else f"[^{_DIGIT}{_LETTER}]"
        text = F.regexp_replace(text, keep_class, _OTHER)
        return F.translate(
            text,
            _DIGIT + _LETTER + _OTHER,
            (a.digit or a.char) + (a.letter or a.char) + a.char,
        )

    def compile(self, ctx: Context) -> Column:
        """The masked string; null stays null.

        Args:
            ctx: The run's compile context.

        Returns:
            A string column.
        """
        from pyspark.sql import functions as F

        s = F.col(self.column)
        n = F.char_length(s)
        first, last = self.action.keep_first, self.action.keep_last
        middle = s.substr(F.lit(first + 1), F.greatest(n - first - last, F.lit(0)))
        prefix = F.substring(s, 1, first) if first else F.lit("")
        suffix = F.expr(f"substring(`{self.column}`, -{last}, {last})") if last else F.lit("")
        kept = F.concat(prefix, self._hide(middle), suffix)
        short = n <= first + last
        return (
            F.when(s.isNull(), F.lit(None).cast("string"))
            .when(short, self._hide(s))
            .otherwise(kept)
        )
