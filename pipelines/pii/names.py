"""First names and surnames for the PERSON detector, and the never-real names of surrogates.

Source: the US Census Bureau's 1990 name frequency lists (``dist.male.first``,
``dist.female.first``: 5,163 distinct first names; ``dist.all.last``: 88,799 surnames,
covering 90% of the 1990 population), as shipped in the ``names`` package on PyPI
(public-domain data). They are US lists: common Hispanic, Western European and many
other surnames appear because the US population carries them, but names rare in the
US (most East Asian, Indian and African given names) do not. The product's own
surrogate dictionaries are added, so a ``surrogate`` person column's values are
recognized too (they are allowed on that column, not in free text).

Lookups are on accent-stripped upper case (``José`` -> ``JOSE``).
"""

from __future__ import annotations

import functools
import unicodedata
from importlib import resources

#: Well-known placeholder names ``scrub`` uses as PERSON surrogates, so the gate can
#: tell them from real names (they are exempt from the PERSON detector).
PLACEHOLDER_NAMES = (
    "Jane Doe", "John Doe", "Jane Roe", "Richard Roe", "Joe Bloggs", "Max Mustermann",
    "Erika Mustermann", "Jean Dupont", "Mario Rossi", "Juan Perez", "Jan Jansen", "Taro Yamada",
)  # fmt: skip


def fold(word: str) -> str:
    """A word's lookup key: accents stripped (NFKD, combining marks dropped), upper case.

    Args:
        word: One word.

    Returns:
        The key (``Müller`` -> ``MULLER``).
    """
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


def _census(name: str) -> set[str]:
    text = resources.files("names").joinpath(name).read_text("ascii")
    return {line.split()[0] for line in text.splitlines() if line.strip()}


def _shipped(name: str) -> set[str]:
    text = resources.files("pipelines.desensitize").joinpath(f"dictionaries/{name}.txt")
    return {fold(w) for w in text.read_text("utf-8").split()}


@functools.cache
def first_names() -> frozenset[str]:
    """Folded first names (Census 1990 male and female lists, plus the shipped dictionary).

    Returns:
        Upper-case, accent-free first names.
    """
    return frozenset(
        _census("dist.male.first") | _census("dist.female.first") | _shipped("first_names")
    )


@functools.cache
def surnames() -> frozenset[str]:
    """Folded surnames (Census 1990 list, plus the shipped dictionary).

    Returns:
        Upper-case, accent-free surnames.
    """
    return frozenset(_census("dist.all.last") | _shipped("last_names"))


@functools.cache
def placeholders() -> frozenset[str]:
    """Folded :data:`PLACEHOLDER_NAMES` (first and last word joined by one space).

    Returns:
        Keys such as ``JANE DOE``.
    """
    return frozenset(fold(n) for n in PLACEHOLDER_NAMES)
