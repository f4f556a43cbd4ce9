"""Character masking that keeps the first/last N characters and separators."""

from __future__ import annotations

import re

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from pipelines.desensitize.base import STRINGY, Context, require
from pipelines.spec.models import Mask

# Private-use code points stand in for the three replacement classes while the
# regexes run, so a replacement character (say '#') is never re-matched by a later
# class; one final `translate` swaps them for the requested characters.
_DIGIT, _LETTER, _OTHER = "\ue000", "\ue001", "\ue002"


def mask(name: str, action: Mask, dtype: DataType, ctx: Context) -> Column:
    """Replace every character outside the kept prefix/suffix that is not a separator.

    A value of length ≤ keep_first + keep_last is masked entirely.
    """
    require(name, "mask", dtype, STRINGY, "a string column")
    s = F.col(name)
    n = F.char_length(s)
    first, last = action.keep_first, action.keep_last
    seps = re.escape(action.separators) if action.separators else ""
    short = n <= first + last

    def hide(text: Column) -> Column:
        if action.letter in (None, action.char) and action.digit in (None, action.char):
            # One replacement character for every class: a single regex pass.
            keep_class = f"[^{seps}]" if seps else "(?s)."
            return F.regexp_replace(
                text, keep_class, action.char.replace("\\", "\\\\").replace("$", "\\$")
            )
        text = F.regexp_replace(text, r"\p{N}", _DIGIT)
        text = F.regexp_replace(text, r"\p{L}", _LETTER)
        keep_class = f"[^{seps}{_DIGIT}{_LETTER}]" if seps else f"[^{_DIGIT}{_LETTER}]"
        text = F.regexp_replace(text, keep_class, _OTHER)
        return F.translate(
            text,
            _DIGIT + _LETTER + _OTHER,
            (action.digit or action.char) + (action.letter or action.char) + action.char,
        )

    middle = s.substr(F.lit(first + 1), F.greatest(n - first - last, F.lit(0)))
    prefix = F.substring(s, 1, first) if first else F.lit("")
    suffix = F.expr(f"substring(`{name}`, -{last}, {last})") if last else F.lit("")
    kept = F.concat(prefix, hide(middle), suffix)
    return F.when(s.isNull(), F.lit(None).cast("string")).when(short, hide(s)).otherwise(kept)
