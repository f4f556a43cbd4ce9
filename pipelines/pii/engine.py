"""The span finder and renderer: pure Python, run on candidate values only.

:func:`find` returns the PII spans of one text: candidates from each entity's pattern
(or the shared digit-run tokenizer), confirmed by the entity's validator and, where
the entity asks, a context keyword; PERSON from the name lists, titles and the row's
known values. Overlaps resolve deterministically: the longest span wins, then the
entity earlier in :data:`~pipelines.pii.catalogue.CATALOGUE`, then the earlier start.
:func:`render` rewrites a text, replacing the spans and keeping every other character
as it was.

Positions are Python string indices (code points), as Spark's ``substring`` counts.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipelines.pii import names
from pipelines.pii.catalogue import (
    BY_NAME,
    CATALOGUE,
    CONTEXT_AFTER,
    CONTEXT_BEFORE,
    NUMERIC,
    PARTICLES,
    PERSON_INFIX,
    PRIORITY,
    TITLES,
    Entity,
)
from pipelines.pii.validators import DEFAULT_COUNTRIES

#: A run of digit groups: single spaces, dashes, dots or slashes between groups, an
#: area code in parentheses, a leading ``+``. Not preceded or followed by a word
#: character (phones with an ``x`` extension have their own pattern).
RUN = re.compile(
    r"(?<![A-Za-z0-9_+])(?:\+|\()?[0-9]+(?:(?:[ \-./]|\)[ \-]?| ?\()[0-9]+)*\)?"
    r"(?![A-Za-z0-9_])",
    re.ASCII,
)
_GROUP = re.compile(r"\+?\(?(?P<d>[0-9]+)\)?", re.ASCII)
#: Longest run (in groups) whose sub-runs are all tried; longer runs are tried in windows.
MAX_GROUPS = 8

# A word of letters, with apostrophes and hyphens between letters (O'Brien, Ann-Kathrin).
_WORD = r"[^\W\d_](?:[^\W\d_]|['’\-](?=[^\W\d_]))*"
# A capitalised word, then (looked ahead, so pairs overlap) an optional middle initial
# and a second word: every adjacent word pair is a candidate.
_PAIR = re.compile(
    rf"(?<![\w'’\-])(?P<first>{_WORD})"
    rf"(?=(?P<rest>(?:\s+[^\W\d_]\.)?(?:\s+(?:{PARTICLES})){{0,{PERSON_INFIX}}}\s+{_WORD}))"
)
# First names that are also everyday English words ("Will", "May", "Grant"): with one of
# these, the second word must be a listed surname; with any other listed first name, any
# capitalised word that is not a known non-name word is taken as the surname.
_WORDLIKE_FIRST = frozenset(
    "WILL MAY JUNE APRIL AUGUST MARK BILL GRANT ROSE GRACE HOPE JOY FAITH DEAN GUY PAT SUE "
    "RAY ART DON RICH FRANK CHANCE CASE LONG YOUNG HUNTER CHASE HOLLY IVY DAISY LILY DAWN "
    "SUMMER AUTUMN WINTER SKY STAR PARIS CHINA LANE BROOK ROBIN JACK JOHN".split()
)
_NOT_SURNAME = frozenset(
    "STREET ROAD AVENUE LANE DRIVE COURT PLACE SQUARE INC LTD LLC GMBH CORP COMPANY BANK "
    "MONDAY TUESDAY WEDNESDAY THURSDAY FRIDAY SATURDAY SUNDAY JANUARY FEBRUARY MARCH APRIL "
    "MAY JUNE JULY AUGUST SEPTEMBER OCTOBER NOVEMBER DECEMBER THE AND FOR WITH FROM THANKS "
    "TEAM ORDER TICKET CUSTOMER SUPPORT".split()
)
# A person's name field ("Customer name: Friedrich Rosemann", "full_name=…"): two to four
# capitalised words after the label are a name even when not on the lists. A bare
# "name" label is not enough ("product,name=Blue Widget", "city, name: New York").
# This regex and _TITLE start with a lookahead on their first letters: Python's re then
# skips other positions at once instead of trying the lookbehind and every alternative
# there (2-3x faster on the benchmark's notes).
_LABELLED = re.compile(
    r"(?=[acefgnpv])(?<![\w])(?:(?:full|customer|client|patient|contact|employee|guest|passenger|"
    r"account[ _\-]?holder|card[ _\-]?holder)[ _\-]?name|cardholder|account holder|"
    r"nombre completo|nom complet|nome completo|volledige naam)\s*[:=]\s*"
    rf"(?P<v>{_WORD}(?:[ \t]+(?:(?:{PARTICLES})[ \t]+){{0,{PERSON_INFIX}}}{_WORD}){{1,3}})",
    re.IGNORECASE,
)
_WORD_RE = re.compile(_WORD)
# The title in any case, folded ASCII only as the screen's Java ``(?i)`` is.
_TITLE = re.compile(
    rf"(?ai:(?=[{''.join(sorted({t[0] for t in TITLES}))}]))"
    rf"(?<![\w])(?ai:{'|'.join(re.escape(t) for t in TITLES)})\.?\s+(?P<v>{_WORD}"
    rf"(?:[ \-]{_WORD})?)"
)

#: Latin letters with diacritics (Latin-1 Supplement, Latin Extended-A) -> base letters:
#: known values match accent-insensitively through this table, identically here and in
#: the native screen (:func:`pipelines.pii.spark.fold_sql`), so the screen stays exact.
ACCENTED = (
    "ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿĀāĂăĄąĆćĈĉĊċČčĎďĐđĒēĔĕĖėĘęĚě"
    "ĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŁłŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽž"
)
PLAIN = (
    "AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyyAaAaAaCcCcCcCcDdDdEeEeEeEeEe"
    "GgGgGgGgHhIiIiIiIiIJjKkLlLlLlLlNnNnNnOoOoOoRrRrRrSsSsSsSsTtTtUuUuUuUuUuUuWwYyYZzZzZz"
)
assert len(ACCENTED) == len(PLAIN)
_FOLD = str.maketrans(ACCENTED, PLAIN)
#: Where known values are split into words (ASCII white space, as Java's ``\s``).
KNOWN_SPLIT = re.compile(r"[ \t\n\x0b\f\r]+")


@dataclass(frozen=True)
class Span:
    """One detection.

    Attributes:
        start: First character (0-based code point index).
        end: One past the last character.
        entity: The catalogue name.
        canonical: The entity's canonical form of the text (what tokens pseudonymize).
    """

    start: int
    end: int
    entity: str
    canonical: str


def _context_ok(entity: Entity, text: str, start: int, end: int) -> bool:
    """A keyword close before the candidate (or after it), with no digits in between.

    "SSN 123-45-6789. Order 587030714": the keyword belongs to the first number, so the
    gap to the second, which holds digits, disqualifies it.
    """
    regex = _CONTEXT[entity.name]
    if regex is None:
        return False
    before = text[max(0, start - CONTEXT_BEFORE) : start]
    last = None
    for last in regex.finditer(before):  # noqa: B007 (the last match is wanted)
        pass
    if last is not None and not _HAS_DIGIT.search(before[last.end() :]):
        return True
    after = text[end : end + CONTEXT_AFTER]
    first = regex.search(after)
    return first is not None and not _HAS_DIGIT.search(after[: first.start()])


_HAS_DIGIT = re.compile(r"[0-9]")


_CONTEXT = {e.name: e.context_regex() for e in CATALOGUE}


def _accept(e: Entity, text: str, start: int, end: int, countries: tuple[str, ...]) -> Span | None:
    piece = text[start:end]
    near = None  # whether a context keyword is near: computed once, when first needed
    if e.needs_context(piece):
        near = _context_ok(e, text, start, end)
        if not near:
            return None  # before validating: validators (phone parsing above all) cost more
    if e.validate(piece, countries):
        return Span(start, end, e.name, e.canonical(piece, countries))
    if e.near_keyword is not None:
        near = _context_ok(e, text, start, end) if near is None else near
        if near and e.near_keyword(piece, countries):
            return Span(start, end, e.name, e.canonical(piece, countries))
    return None


def _patterned(text: str, wanted: Iterable[Entity], countries: tuple[str, ...]) -> list[Span]:
    found = []
    for e in wanted:
        if e.recognizer is not None:
            found += [span for start, end in e.recognizer(text)
                      if (span := _accept(e, text, start, end, countries)) is not None]  # fmt: skip
        if e.pattern is None:
            continue
        group = "v" if "v" in e.pattern.groupindex else 0
        for m in e.pattern.finditer(text):
            start, end = m.span(group)
            if start < 0:
                start, end = m.span()
            span = _accept(e, text, start, end, countries)
            if span is not None:
                found.append(span)
    return found


def _numeric(
    text: str, wanted: Sequence[Entity], countries: tuple[str, ...], others: Sequence[Span]
) -> list[Span]:
    """Valid (sub-run, entity) pairs of every digit run (overlaps resolved later).

    Phones must start where their run starts: some region's numbering plan accepts
    almost any tail of digit groups (``0532 0130 02`` of a mistyped IBAN is an Italian
    landline), while the checksummed entities may start anywhere. An IPv4 address is a
    whole run (``1.2.3.4`` of ``version 1.2.3.4.5`` is not one). For one sub-run only
    the first entity in catalogue priority that accepts it is kept (a later one, of the
    same extent, would lose the overlap). When a whole run is accepted and none of
    ``others`` (the non-numeric spans) as long as it overlaps it, the run's span is
    certain to be kept, so its sub-runs, all inside it, are not tried.
    """
    if not wanted:
        return []
    lo = min(e.min_digits for e in wanted)
    hi = max(e.max_digits for e in wanted)
    found = []
    for run in RUN.finditer(text):
        if run.end() - run.start() < lo:
            continue  # too short to hold lo digits
        base = run.start()
        groups = [(m.start() + base, m.end() + base, len(m.group("d")))
                  for m in _GROUP.finditer(run.group())]  # fmt: skip
        n = len(groups)
        total = sum(g[2] for g in groups)
        if n <= MAX_GROUPS and lo <= total <= hi:
            whole = _numeric_piece(text, wanted, countries, groups, 0, n - 1, total)
            if whole is not None:
                found.append(whole)
                length = whole.end - whole.start
                if not any(o.start < whole.end and whole.start < o.end and o.end - o.start >= length
                           for o in others):  # fmt: skip
                    continue
        for i in range(n):
            count = 0
            for j in range(i, min(n, i + MAX_GROUPS)):
                count += groups[j][2]
                if count > hi:
                    break
                if count < lo or (i, j) == (0, n - 1):
                    continue  # too short, or the whole run (tried above)
                span = _numeric_piece(text, wanted, countries, groups, i, j, count)
                if span is not None:
                    found.append(span)
    return found


def _numeric_piece(
    text: str,
    wanted: Sequence[Entity],
    countries: tuple[str, ...],
    groups: list[tuple[int, int, int]],
    i: int,
    j: int,
    count: int,
) -> Span | None:
    """The first entity (catalogue priority) that accepts groups ``i..j`` of a run."""
    n = len(groups)
    start, end = groups[i][0], groups[j][1]
    piece = text[start:end]
    # A phone may leave trailing groups out only at a space ("call 415 555 2671 2
    # times"), not inside a dash-grouped number (ISBN 978-84-7881-556-2).
    phone_ok = i == 0 and (j == n - 1 or text[end : groups[j + 1][0]] == " ")
    for e in wanted:
        if (e.name == "phone" and not phone_ok) or (e.name == "ipv4" and (i, j) != (0, n - 1)):
            continue  # see _numeric's docstring
        if e.min_digits <= count <= e.max_digits and e.shape.fullmatch(piece):
            span = _accept(e, text, start, end, countries)
            if span is not None:
                return span  # a later entity's span would lose on priority
    return None


def _capitalised(word: str) -> bool:
    r"""Upper-case first letter, not all capitals, and letters only (but ``'’-``).

    ``_WORD``'s ``[^\W\d_]`` also admits numeric characters that are not decimal
    digits (``½``, the Roman numeral ``Ⅷ``, even upper-case ``Ⅿ``): they make no name,
    and the screen's ``\p{L}`` would not pass them.
    """
    if len(word) < 2 or not word.translate(_NAME_PUNCTUATION).isalpha():
        return False
    return word[0].isupper() and not word.isupper()


_NAME_PUNCTUATION = str.maketrans("", "", "'’-")


def _initials_are_letters(rest: str) -> bool:
    """A pair's middle initial (``X.``), if any, is a letter."""
    return all(w[0].isalpha() for w in rest.split() if w.endswith("."))


def _people(text: str) -> list[Span]:
    firsts, lasts, fake = names.first_names(), names.surnames(), names.placeholders()
    found = []
    for m in _PAIR.finditer(text):
        first, rest = m.group("first"), m.group("rest")
        last = rest.split()[-1]
        if not (_capitalised(first) and _capitalised(last) and _initials_are_letters(rest)):
            continue
        key_first = names.fold(first.split("-")[0])
        key_last = names.fold(last.split("-")[0])
        if key_first not in firsts or f"{key_first} {key_last}" in fake:
            continue
        listed = key_last in lasts
        if listed or (key_first not in _WORDLIKE_FIRST and key_last not in _NOT_SURNAME
                      and len(key_last) >= 3):  # fmt: skip
            start = m.start("first")
            end = m.end("first") + len(rest)
            found.append(Span(start, end, "person", " ".join(text[start:end].split())))
    for m in _LABELLED.finditer(text):
        kept = 0
        end = start = m.start("v")
        for w in _WORD_RE.finditer(text, start, m.end("v")):
            word = w.group()
            if word.lower() in _PARTICLE_SET:
                continue
            if not _capitalised(word) or names.fold(word.split("-")[0]) in _NOT_SURNAME:
                break
            kept, end = kept + 1, w.end()
        if kept >= 2 and not _placeholder(text[start:end], fake):
            found.append(Span(start, end, "person", " ".join(text[start:end].split())))
    for m in _TITLE.finditer(text):
        value = m.group("v")
        first, _, second = value.partition(" ") if " " in value else (value, "", "")
        if not _capitalised(first.split("-")[0]) or names.fold(first) in _TITLE_STOP:
            continue
        end = m.end("v") if second and _capitalised(second) else m.start("v") + len(first)
        if not _placeholder(text[m.start("v") : end], fake):
            found.append(Span(m.start("v"), end, "person", text[m.start("v") : end]))
    return found


def _placeholder(name: str, fake: frozenset[str]) -> bool:
    """Whether ``name``'s first and last words are a placeholder name (``Jane Roe``).

    ``scrub``'s person surrogates are such names; after a title or a name label they
    are no more a person than on their own.
    """
    words = name.split()
    return len(words) >= 2 and f"{names.fold(words[0])} {names.fold(words[-1])}" in fake


_PARTICLE_SET = frozenset(PARTICLES.split("|"))
# Words that follow a title without being a name ("Dr. Who", "Mr. Smith" stays).
_TITLE_STOP = frozenset({"AND", "OR", "THE", "OF", "TO", "IN"})


def fold(text: str) -> str:
    """Known-value matching form: Latin diacritics removed (:data:`ACCENTED`), lower case.

    One character in, one (or, for a few letters, two) out, per character, so a match
    in the folded text maps back to the original; ``ς`` folds to ``σ``.

    Args:
        text: Any string.

    Returns:
        The folded string.
    """
    return text.translate(_FOLD).lower().replace("ς", "σ")


def _known(text: str, known: Sequence[str | None]) -> list[Span]:
    """Occurrences of the row's own PII values, whole or word by word, at word bounds."""
    if not known:
        return []
    folded_chars = [fold(ch) for ch in text]
    origin = [i for i, f in enumerate(folded_chars) for _ in f]
    folded = "".join(folded_chars)
    found = []
    for value in known:
        if not value or not value.strip():
            continue
        words = [w for w in KNOWN_SPLIT.split(value.strip()) if w]
        needles = [(value.strip(), False)]
        if len(words) > 1 and all(w.replace("-", "").replace("'", "").isalpha() for w in words):
            needles += [(w, True) for w in words]  # a name's parts, capitalised in the text
        for needle, part in needles:
            key = fold(needle)
            if len(key) < 3:
                continue
            at = folded.find(key)
            while at >= 0:
                end = at + len(key)
                bounded = (at == 0 or not folded[at - 1].isalnum()) and (
                    end == len(folded) or not folded[end].isalnum()
                )
                if bounded:
                    start, stop = origin[at], origin[end - 1] + 1
                    if not part or text[start].isupper():
                        found.append(Span(start, stop, "person", text[start:stop]))
                at = folded.find(key, at + 1)
    return found


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """Non-overlapping spans: longest first, then catalogue priority, then earliest start.

    Args:
        spans: Detections, possibly overlapping.

    Returns:
        The kept spans, by start.
    """
    # The kept spans never overlap, so sorted by start their ends are sorted too: a new
    # span overlaps one only if it overlaps its neighbour by start (bisect), which keeps
    # a text with thousands of candidates from costing their square.
    starts: list[int] = []
    kept: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.start - s.end, PRIORITY[s.entity], s.start)):
        i = bisect.bisect_left(starts, s.start)
        if (i > 0 and kept[i - 1].end > s.start) or (i < len(kept) and kept[i].start < s.end):
            continue
        starts.insert(i, s.start)
        kept.insert(i, s)
    return kept


def find(
    text: str | None,
    entities: Sequence[str] | None = None,
    countries: Sequence[str] = DEFAULT_COUNTRIES,
    known: Sequence[str | None] = (),
) -> list[Span]:
    """The PII spans of one text.

    Args:
        text: The text (None or empty: no spans).
        entities: Catalogue names to look for (None: all).
        countries: Regions whose national phone formats count.
        known: The row's own PII values (``scrub``): found as PERSON, case- and
            accent-insensitively, whole or, for multi-word names, word by word.

    Returns:
        Non-overlapping spans in text order.
    """
    if not text:
        return []
    names = frozenset(BY_NAME) if entities is None else frozenset(entities)
    wanted = [e for e in CATALOGUE if e.name in names]
    regions = tuple(countries)
    spans = _patterned(text, wanted, regions)
    if "person" in names:
        spans += _people(text)
        spans += _known(text, known)
    spans += _numeric(text, [e for e in NUMERIC if e.name in names], regions, spans)
    return resolve_overlaps(spans)


def render(text: str, spans: Sequence[Span], replacements: Sequence[str]) -> str:
    """``text`` with each span replaced, every other character kept as it was.

    Args:
        text: The original text.
        spans: Non-overlapping spans in text order (from :func:`find`).
        replacements: One replacement per span.

    Returns:
        The rewritten text.
    """
    out, pos = [], 0
    for span, replacement in zip(spans, replacements, strict=True):
        out.append(text[pos : span.start])
        out.append(replacement)
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


def placeholder(entity: str) -> str:
    """``<EMAIL>``-style placeholder of an entity.

    Args:
        entity: A catalogue name.

    Returns:
        The label in angle brackets.
    """
    return f"<{BY_NAME[entity].label}>"


def mask(piece: str, char: str = "*", keep: str = " -@.") -> str:
    """Every character of ``piece`` but those in ``keep`` replaced by ``char``.

    Args:
        piece: A span's text.
        char: The masking character.
        keep: Characters kept as they are (separators).

    Returns:
        The masked text, same length.
    """
    return "".join(ch if ch in keep else char for ch in piece)
