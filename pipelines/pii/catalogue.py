"""The entity catalogue: every PII kind the engine finds, as data.

Each :class:`Entity` says what it matches (its ``matches`` line is what the README
prints), how candidates are found, how they are confirmed and from which sources, its
canonical form (what ``token`` replacements and ``hash: {canonical: …}`` pseudonymize)
and its never-real surrogate. The order of :data:`CATALOGUE` is the priority that
breaks ties between overlapping detections of equal length.

Candidates come in two ways. *Numeric* entities (phone, card, SSN and the digit-only
national identifiers, IPv4) share one tokenizer: a run of digit groups separated by
single spaces, dashes, dots or slashes (parentheses around an area code allowed); every
contiguous sub-run is a candidate, longest first, and must match the entity's
``shape`` and digit count. So ``call 415 555 2671 2 times`` still yields the phone
(a greedy regex would have taken the trailing ``2`` and failed). The other entities
have their own ``pattern``. Numeric patterns are ASCII (``re.ASCII``): the native
screens are Java regexes with ASCII classes, and the two must agree.

Context: a detector with ``context`` keywords needs one of them within
:data:`CONTEXT_BEFORE` characters before the candidate (or :data:`CONTEXT_AFTER`
after it), when its ``needs_context`` says so for that candidate (bare nine digits are
an SSN only after "SSN"; ``123-45-6789`` is one anyway). Keywords match whole words,
case-insensitively.

Adding a detector is adding one entry: its name to the spec's ``PiiEntity`` literal
(``pipelines/spec/quality.py``), a ``screen`` and either a ``pattern``, a numeric
``shape`` or a ``recognizer`` (a function proposing spans: the hook for a detector no
regex expresses, such as a named-entity model a user brings), then ``validate`` and
``canonical``. The screen must pass every value the candidates can come from (for a
model, a cheap necessary condition such as two capitalised words); the Spark property
test checks it. The README's detector table is regenerated from the entries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pipelines.pii import validators as V

CONTEXT_BEFORE = 48
CONTEXT_AFTER = 12


def _always(span: str) -> bool:
    return True


def _never(span: str) -> bool:
    return False


def _bare(span: str) -> bool:
    """No separator at all: the digits alone are too common to trust without context."""
    return span.isdigit()


@dataclass(frozen=True)
class Guards:
    r"""Regex-free conditions every value holding an entity meets, tested before its regex.

    Each is a fact of the value computed natively in one pass over its characters
    (``pipelines/pii/java/anonymize/pii/ScreenMask.java``, whose ``facts`` documents
    them exactly), compared with a minimum here. A guard must be implied by every match
    of the engine (by what the entity's pattern or the digit-run tokenizer needs), not
    only by the screen's regex: a value failing one cannot hold the entity. The Spark
    property tests check the screens stay supersets of the engine.

    Attributes:
        length: Fewest characters.
        digits: Fewest ASCII digits.
        run: Fewest digits in one digit run (digits with at most two of ``[ -./()]``
            between neighbours).
        started_run: The same, from a digit where a numeric candidate may start
            (:data:`pipelines.pii.engine.RUN`): with no regex, this is the screen of a
            numeric entity.
        space_capital: Needs white space (Python's ``\s``) directly followed by an ASCII
            capital or a non-ASCII character.
        letters_digits: Needs two ASCII letters at a word's start directly followed by
            two ASCII digits.
        word_run: Fewest characters in its longest run of ASCII letters and digits
            that does not follow an ``_``.
        hex_separator: Needs two hex digits then ``:`` or ``-``, or four then ``.``.
        digit_x: Needs a digit directly followed by ``x`` or ``e``.
        contains: Substrings it needs, all of them.
        contains_any: Substrings it needs one of (empty: no such test).
    """

    length: int = 0
    digits: int = 0
    run: int = 0
    started_run: int = 0
    space_capital: bool = False
    letters_digits: bool = False
    word_run: int = 0
    hex_separator: bool = False
    digit_x: bool = False
    contains: tuple[str, ...] = ()
    contains_any: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse a negative minimum, or a substring that is empty or spans lines.

        Raises:
            ValueError: Naming the bad field.
        """
        for name, value in vars(self).items():
            if isinstance(value, int) and value < 0:
                raise ValueError(f"Guards.{name}: {value} is negative")
            if isinstance(value, tuple) and any(not p or "\n" in p for p in value):
                raise ValueError(f"Guards.{name}: substrings must be non-empty single lines")


@dataclass(frozen=True)
class Entity:
    """One PII kind.

    Attributes:
        name: The spec's name (``email``; ``quality.allow_pii`` and ``scrub.entities``).
        label: Placeholder text without brackets (``EMAIL`` -> ``<EMAIL>``).
        matches: What it matches, for humans (the README's detector table).
        validator: How a candidate is confirmed, and the library that does it.
        sources: Standards or references defining the format.
        validate: ``(candidate text, phone regions) -> bool``.
        canonical: ``(candidate text, phone regions) -> str``: the form pseudonymized.
        pattern: Candidate regex; the span is the group named ``v`` when there is one.
        shape: Full-match regex a numeric sub-run must satisfy (numeric entities).
        min_digits: Digit count range of a numeric candidate (also the screen's guard).
        max_digits: Upper end of that range.
        context: Keywords (lower case) one of which must be near when ``needs_context``.
        needs_context: Whether a given candidate text needs context.
        near_keyword: A looser validator that applies when a context keyword is near
            (phones: any valid national number, not only one grouped the region's way).
        screen: Java regex (``find`` semantics) every value holding this entity
            matches, run by the native screen behind the guards: a superset of the
            confirmation. Numeric entities with none are screened by their digit
            counts alone (``started_run``, see :func:`pipelines.pii.spark.screens`).
        pattern_screen: For a numeric entity that also has a ``pattern`` (a form the
            digit-run tokenizer cannot see), the Java regex screening that form.
        guards: What every value holding the entity meets, tested before ``screen``
            (:func:`pipelines.pii.spark.screens` adds numeric entities' digit counts).
        pattern_guards: The same for ``pattern_screen``.
        recognizer: A function proposing candidate spans itself, ``text -> [(start,
            end), …]``, for detectors no regex expresses (a user-supplied NER model's
            names, say); each span is then confirmed like a pattern's match. Its
            ``screen`` must pass every value the recognizer could find anything in.
        gate: Whether the output gate checks for it (all but known values do).
    """

    name: str
    label: str
    matches: str
    validator: str
    sources: str
    validate: Callable[[str, tuple[str, ...]], bool]
    canonical: Callable[[str, tuple[str, ...]], str]
    screen: str
    guards: Guards = Guards()
    pattern: re.Pattern[str] | None = None
    pattern_screen: str = ""
    pattern_guards: Guards = Guards()
    shape: re.Pattern[str] | None = None
    min_digits: int = 0
    max_digits: int = 0
    context: tuple[str, ...] = ()
    needs_context: Callable[[str], bool] = _never
    near_keyword: Callable[[str, tuple[str, ...]], bool] | None = None
    recognizer: Callable[[str], Iterable[tuple[int, int]]] | None = None
    gate: bool = True

    @property
    def numeric(self) -> bool:
        """Whether candidates come from the shared digit-run tokenizer."""
        return self.shape is not None

    def context_regex(self) -> re.Pattern[str] | None:
        """The keywords as one whole-word, case-insensitive regex (None without keywords).

        Returns:
            The compiled regex, or None.
        """
        if not self.context:
            return None
        words = "|".join(re.escape(w) for w in sorted(self.context, key=len, reverse=True))
        # A lookahead on the first letters first: re skips other positions at once.
        firsts = "".join(sorted({re.escape(w[0]) for w in self.context}))
        return re.compile(rf"(?=[{firsts}])(?<![^\W_])(?:{words})(?![^\W_])", re.IGNORECASE)


def _one(check: Callable[[str], bool]) -> Callable[[str, tuple[str, ...]], bool]:
    return lambda span, countries: check(span)


def _digits(span: str, countries: tuple[str, ...]) -> str:
    return V.digits(span)


def _compact(span: str, countries: tuple[str, ...]) -> str:
    return V.compact(span)


def _lower(span: str, countries: tuple[str, ...]) -> str:
    return span.strip().lower()


#: The credential surrogate of ``scrub`` (:mod:`pipelines.pii.surrogates`): never a secret.
CREDENTIAL_SURROGATE = "REDACTED-SECRET"


def _credential_valid(span: str, countries: tuple[str, ...]) -> bool:
    """Six characters or more, and neither the surrogate nor a mask.

    A value of one character repeated (``*******``: what ``scrub``'s and the ``mask``
    action's masks leave after ``password:``) hides a secret, it is not one.
    """
    return len(span) >= 6 and span != CREDENTIAL_SURROGATE and len(set(span)) > 1


def _as_is(span: str, countries: tuple[str, ...]) -> str:
    return span


def _phone_valid(span: str, countries: tuple[str, ...]) -> bool:
    return not _date_like(span) and V.phone_e164(span, countries) is not None


def _phone_near_keyword(span: str, countries: tuple[str, ...]) -> bool:
    return not _date_like(span) and V.phone_e164(span, countries, grouped=False) is not None


def _phone_canonical(span: str, countries: tuple[str, ...]) -> str:
    """E.164, from the first region grouping it that way, else the first where it is valid."""
    e164 = V.phone_e164(span, countries) or V.phone_e164(span, countries, grouped=False)
    return e164 or V.digits(span)


_DATE_LIKE = re.compile(
    r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})$", re.ASCII
)
_ISO_DATE = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", re.ASCII)


def _date_like(span: str) -> bool:
    """A written date (or one inside the span): never a phone or a card number."""
    return bool(_DATE_LIKE.match(span) or _ISO_DATE.search(span))


def _card_valid(span: str, countries: tuple[str, ...]) -> bool:
    return not _date_like(span) and V.credit_card(span)


def _dob_valid(span: str, countries: tuple[str, ...]) -> bool:
    return V.calendar_date(span)


def _keywords(*parts: str, words: Sequence[str] = (), scoped: bool = False) -> str:
    r"""Java regex, ASCII case-insensitive: any of ``parts``, or of ``words`` as whole words.

    Java's ``(?i)`` folds ASCII letters only, and so do the engine's keyword patterns
    (Python's ``(?ai:…)``): a Unicode fold would let ``ſecret`` (long s) or ``toKen``
    (Kelvin sign) through the engine and not through the screen. Whole words are
    bounded by "no ASCII word character" on either side rather than ``\b``: a Python
    word boundary implies it, whatever Java's ``\b`` means (it changed in JDK 19).

    Each alternative is a regex starting with a literal character. A lookahead on the
    alternatives' first characters goes first: Java tries every alternative at every
    position, the lookahead's class once, which made the date-of-birth screen about
    twice as fast on the benchmark's notes.

    With ``scoped``, the case fold is a group (``(?i:…)``) that leaves the rest of a
    longer regex case-sensitive.
    """
    firsts = sorted({a[0].lower() for a in (*parts, *words)})
    assert all(f.isalnum() or f == "_" for f in firsts), firsts
    bounded = rf"(?<![A-Za-z0-9_])(?:{'|'.join(words)})(?![A-Za-z0-9_])"
    alternatives = ([bounded] if words else []) + list(parts)
    body = f"(?=[{''.join(firsts)}])(?:{'|'.join(alternatives)})"
    return f"(?i:{body})" if scoped else f"(?i){body}"


#: Titles before a person's name (matched with an ASCII case fold, a dot after allowed).
TITLES = (
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "herr", "frau", "m", "mme",
    "mlle", "sr", "sra", "srta", "don", "doña", "sig", "sig.ra", "dhr", "mevr", "dott",
    "dott.ssa", "dipl.-ing",
)  # fmt: skip
#: Java: white space as Python's ``\s`` sees it.
_WS = r"[\s\p{Z}\x1c-\x1f\x85]"
#: Java: a capital letter (or a letter newer than the JVM's Unicode tables).
_CAP = r"[\p{Lu}\p{Lt}\p{Cn}]"
#: Name particles (``van``, ``de``, …), as a regex alternation (engine and screen).
PARTICLES = "van|von|de|der|den|da|di|du|del|della|dos|das|la|le|ten|ter|bin|al|y"
#: Most particles between a person's first and last name.
PERSON_INFIX = 4
_TITLE_SCREEN = _keywords(*(re.escape(t) for t in TITLES), scoped=True)
# Not "number", "no" or "nr": an order, invoice or ticket number is no phone number
# ("order no. 4567891234" matched 99% of random 8-10 digit order numbers).
_PHONE_WORDS = (
    "phone", "tel", "telephone", "mobile", "cell", "call", "called", "calling", "fax",
    "sms", "text", "whatsapp", "reach", "contact", "ph", "mob",
    "telefon", "telefono", "teléfono", "téléphone", "portable", "handy", "móvil",
    "cellulare", "telefoonnummer", "電話", "手机", "電話番号", "celular", "ligue",
)  # fmt: skip

# Name, label, what it matches, validator, sources: one entry per entity, in priority order.
CATALOGUE: tuple[Entity, ...] = (
    Entity(
        name="credential",
        label="CREDENTIAL",
        matches="PEM private-key blocks; AWS access key ids; GitHub, Slack, Stripe and Google "
        "API keys; JSON Web Tokens; the value after `password`/`passwd`/`pwd`/`secret`/"
        "`secret_key`/`secret_access_key`/`api_key`/`token` and `:`, `=` or `is`",
        validator="the key formats' fixed prefixes and lengths; a JWT's first two parts are "
        "base64url JSON objects (`eyJ`)",
        sources="AWS IAM identifiers; GitHub token formats (2021); RFC 7519 (JWT); RFC 7468 (PEM)",
        validate=_credential_valid,
        canonical=_as_is,
        pattern=re.compile(
            r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )*PRIVATE KEY-----"
            r"|(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![A-Za-z0-9])"
            r"|(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255}"
            r"|xox[abposr]-[A-Za-z0-9-]{10,200}|AIza[0-9A-Za-z_\-]{35}"
            r"|(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,200})"
            r"|(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"
            # Keywords fold ASCII case only, as the screen's Java ``(?i)`` does (a
            # Unicode fold would also take ``ſecret`` or the Kelvin sign's ``toKen``).
            r"|(?ai:(?<![a-z])(?:password|passwd|pwd|passcode"
            r"|secret(?:[_\- ]?access)?(?:[_\- ]?key)?|api[_\- ]?key|token))"
            r"(?:\s*[:=]\s*|\s+(?ai:is)\s+)(?P<v>[^\s\"'<>,;]{6,})"
        ),
        screen=_keywords(
            "PRIVATE KEY", "AKIA", "ASIA", "ABIA", "ACCA", "gh[pousr]_", "github_pat_",
            "xox[abposr]-", "AIza", "_live_", "_test_", "eyJ", "password", "passwd", "pwd",
            "passcode", "secret", r"api[_\- ]?key", "token",
        ),  # fmt: skip
        # The pattern's literal prefixes (case-sensitive there), then what its keyword
        # form needs after the keyword: ":", "=" or "is" (ASCII case fold).
        guards=Guards(contains_any=(
            "-----", "AKIA", "ASIA", "ABIA", "ACCA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
            "github_pat_", "xox", "AIza", "_live_", "_test_", "eyJ", ":", "=", "is", "iS", "Is",
            "IS",
        )),  # fmt: skip
    ),
    Entity(
        name="url_userinfo",
        label="URL",
        matches="URLs with credentials in their user-info part (`https://user:pass@host/...`)",
        validator="scheme, user and password present",
        sources="RFC 3986 §3.2.1",
        validate=lambda span, countries: True,
        canonical=_as_is,
        pattern=re.compile(
            r"(?<![\w+.-])[A-Za-z][A-Za-z0-9+.\-]*://[^\s/@:]+:[^\s/@]+@[^\s/?#]+\S*"
        ),
        screen=r"://[^\s/@:]+:[^\s/@]+@",
        guards=Guards(contains=("://", "@")),
    ),
    Entity(
        name="email",
        label="EMAIL",
        matches="email addresses in any case, with Unicode local parts and internationalized "
        "(IDN) or punycode domains; not at the `.invalid` TLD",
        validator="the domain converts to ASCII under IDNA 2008 + UTS #46 (`idna`)",
        sources="RFC 5322 §3.4.1, RFC 6531 (SMTPUTF8), RFC 5891 (IDNA), RFC 2606",
        validate=_one(V.email),
        canonical=_lower,
        pattern=re.compile(
            r"(?<![\w.%+'\-\u0300-\u036f])[\w.%+'\-\u0300-\u036f]+"
            r"@(?:[^\W_][\w\-\u0300-\u036f]*\.)+(?:xn--[A-Za-z0-9\-]+|[^\W\d_]{2,63})(?![\w\-])"
        ),
        screen=r"[^\s@]@[^\s@.]+\.[^\s@]",
        guards=Guards(contains=("@",)),
    ),
    Entity(
        name="iban",
        label="IBAN",
        matches="IBANs in any case, compact or in groups of four",
        validator="country length and ISO 7064 mod-97 (`stdnum.iban`)",
        sources="ISO 13616-1:2020, SWIFT IBAN registry",
        validate=_one(V.iban),
        canonical=_compact,
        # Compact, or printed in groups of four (the last one shorter): a free-form
        # "groups of anything" pattern would run on into the next word.
        pattern=re.compile(
            r"(?<![A-Za-z0-9_])[A-Za-z]{2}[0-9]{2}(?:[A-Za-z0-9]{11,30}"
            r"|(?: [A-Za-z0-9]{4}){2,7}(?: [A-Za-z0-9]{1,4})?)(?![A-Za-z0-9_])"
        ),
        screen=r"(?<![A-Za-z0-9_])[A-Za-z]{2}[0-9]{2} ?[A-Za-z0-9]{4}",
        guards=Guards(length=15, letters_digits=True),
    ),
    Entity(
        name="cn_resident_id",
        label="CN_RESIDENT_ID",
        matches="Chinese resident identity card numbers (18 characters, last may be X)",
        validator="birth date and ISO 7064 mod 11-2 check (`stdnum.cn.ric`)",
        sources="GB 11643-1999",
        validate=_one(V.cn_resident_id),
        canonical=_compact,
        pattern=re.compile(r"(?<![A-Za-z0-9_])[1-9][0-9]{16}[0-9Xx](?![A-Za-z0-9_])"),
        screen=r"(?<![A-Za-z0-9_])[1-9][0-9]{16}[0-9Xx](?![A-Za-z0-9_])",
        guards=Guards(digits=17, run=17),
    ),
    Entity(
        name="fr_nir",
        label="FR_NIR",
        matches="French social security numbers (NIR, 13 characters and a 2-digit key), "
        "compact or spaced, Corsican departments `2A`/`2B` included",
        validator="the mod-97 key (`stdnum.fr.nir`)",
        sources="INSEE, décret n° 82-103",
        validate=_one(V.fr_nir),
        canonical=lambda span, countries: re.sub(r"[^0-9AB]", "", span.upper()),
        shape=re.compile(r"[1-478][0-9]*(?: [0-9]+)*", re.ASCII),
        min_digits=15,
        max_digits=15,
        screen="",
        # Born in Corsica: the department is 2A or 2B, so the digit-run tokenizer, which
        # sees two shorter runs, needs this pattern (and this screen) besides.
        pattern=re.compile(
            r"(?<![0-9A-Za-z])[1-478] ?[0-9]{2} ?[0-9]{2} ?2[ABab] ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}"
            r"(?![0-9A-Za-z])"
        ),
        pattern_screen=r"[0-9] ?2[ABab] ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}",
        pattern_guards=Guards(digits=10, contains_any=("2A", "2B", "2a", "2b")),
    ),
    Entity(
        name="in_aadhaar",
        label="IN_AADHAAR",
        matches="Indian Aadhaar numbers written `1234 5678 9012` (12 digits, first 2-9); bare "
        "12 digits only near a keyword (`aadhaar`, `uid`)",
        validator="the Verhoeff check digit (`stdnum.in_.aadhaar`)",
        sources="UIDAI",
        validate=_one(V.in_aadhaar),
        canonical=_digits,
        shape=re.compile(r"[2-9][0-9]{3}([ \-]?)[0-9]{4}\1[0-9]{4}", re.ASCII),
        min_digits=12,
        max_digits=12,
        context=("aadhaar", "aadhar", "uid", "uidai", "आधार"),
        needs_context=_bare,
        screen="",
    ),
    Entity(
        name="br_cpf",
        label="BR_CPF",
        matches="Brazilian CPF numbers written `123.456.789-09`; 11 bare digits only near `cpf`",
        validator="the two mod-11 check digits (`stdnum.br.cpf`)",
        sources="Receita Federal",
        validate=_one(V.br_cpf),
        canonical=_digits,
        shape=re.compile(r"[0-9]{3}\.[0-9]{3}\.[0-9]{3}-[0-9]{2}|[0-9]{11}", re.ASCII),
        min_digits=11,
        max_digits=11,
        context=("cpf",),
        needs_context=_bare,
        screen="",
    ),
    Entity(
        name="de_tax_id",
        label="DE_TAX_ID",
        matches="German tax identification numbers (11 digits) near a keyword (`Steuer-ID`, "
        "`IdNr`, `tax id`, `TIN`)",
        validator="digit-repetition rule and ISO 7064 mod 11,10 check (`stdnum.de.idnr`)",
        sources="§ 139b AO; BZSt",
        validate=_one(V.de_tax_id),
        canonical=_digits,
        shape=re.compile(r"[1-9][0-9](?: ?[0-9]{3}){3}", re.ASCII),
        min_digits=11,
        max_digits=11,
        context=(
            "steuer-id",
            "steuerid",
            "steuer",
            "steuernummer",
            "steuer-identifikationsnummer",
            "identifikationsnummer",
            "idnr",
            "tax",
            "tin",
            "st-id",
        ),  # fmt: skip
        needs_context=_always,
        screen="",
    ),
    Entity(
        name="credit_card",
        label="CREDIT_CARD",
        matches="payment card numbers: 13-19 digits (Maestro 12-19), compact or grouped by "
        "spaces or dashes",
        validator="a card network's IIN prefix and the Luhn checksum (`stdnum.luhn`)",
        sources="ISO/IEC 7812-1 (IIN ranges, Luhn)",
        validate=_card_valid,
        canonical=_digits,
        shape=re.compile(r"[0-9]+(?:[ \-][0-9]+)*", re.ASCII),
        min_digits=12,
        max_digits=19,
        screen="",
    ),
    Entity(
        name="us_ssn",
        label="US_SSN",
        matches="US Social Security numbers `123-45-6789` or `123 45 6789`; nine bare digits "
        "only near `SSN`/`social security`",
        validator="issuable area and group numbers (`stdnum.us.ssn`)",
        sources="SSA, Program Operations Manual RM 10201.030",
        validate=_one(V.us_ssn),
        canonical=_digits,
        shape=re.compile(r"[0-9]{3}([ \-]?)[0-9]{2}\1[0-9]{4}", re.ASCII),
        min_digits=9,
        max_digits=9,
        context=("ssn", "ss#", "ssn#", "social security", "soc sec", "ss no"),
        needs_context=_bare,
        screen="",
    ),
    Entity(
        name="ca_sin",
        label="CA_SIN",
        matches="Canadian Social Insurance numbers (`123-456-782`, `123 456 782`, nine "
        "digits), always near `SIN`/`social insurance`/`NAS` (alone they are too often other "
        "numbers)",
        validator="the Luhn checksum, first digit not 0 or 8 (`stdnum.ca.sin`)",
        sources="Employment and Social Development Canada",
        validate=_one(V.ca_sin),
        canonical=_digits,
        shape=re.compile(r"[0-9]{3}([ \-]?)[0-9]{3}\1[0-9]{3}", re.ASCII),
        min_digits=9,
        max_digits=9,
        context=("sin", "social insurance", "nas", "assurance sociale"),
        needs_context=lambda span: True,
        screen="",
    ),
    Entity(
        name="nl_bsn",
        label="NL_BSN",
        matches="Dutch citizen service numbers (BSN, 9 digits, dots allowed) near `BSN`/"
        "`burgerservicenummer`/`sofinummer`",
        validator="the eleven-test (`stdnum.nl.bsn`)",
        sources="Wet algemene bepalingen burgerservicenummer",
        validate=_one(V.nl_bsn),
        canonical=_digits,
        shape=re.compile(r"[0-9]{4}\.?[0-9]{2}\.?[0-9]{3}|[0-9]{9}", re.ASCII),
        min_digits=9,
        max_digits=9,
        context=("bsn", "burgerservicenummer", "sofinummer", "sofi"),
        needs_context=_always,
        screen="",
    ),
    Entity(
        name="uk_nino",
        label="UK_NINO",
        matches="UK National Insurance numbers `AB 12 34 56 C`, any case",
        validator="HMRC allocation rules for prefix and suffix (ours: no checksum exists and "
        "stdnum has no module)",
        sources="HMRC National Insurance Manual NIM39110",
        validate=_one(V.uk_nino),
        canonical=_compact,
        pattern=re.compile(
            r"(?<![A-Za-z0-9_])[A-Za-z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-Da-d](?![A-Za-z0-9_])"
        ),
        screen=r"(?<![A-Za-z0-9_])[A-Za-z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-Da-d]",
        guards=Guards(digits=6, run=6),
    ),
    Entity(
        name="es_nif",
        label="ES_NIF",
        matches="Spanish DNI `12345678Z` and NIE `X1234567L` numbers, any case, dash before "
        "the letter allowed",
        validator="the mod-23 check letter (`stdnum.es.dni`, `stdnum.es.nie`)",
        sources="Real Decreto 1553/2005; Orden INT/2058/2008",
        validate=_one(V.es_nif),
        canonical=_compact,
        pattern=re.compile(
            r"(?<![A-Za-z0-9_])(?:[XYZxyz]-?[0-9]{7}|[0-9]{8})-?[A-Za-z](?![A-Za-z0-9_])"
        ),
        screen=r"(?<![A-Za-z0-9_])[XYZxyz0-9]-?[0-9]{7}-?[A-Za-z](?![A-Za-z0-9_])",
        guards=Guards(digits=7, run=7),
    ),
    Entity(
        name="it_fiscal_code",
        label="IT_FISCAL_CODE",
        matches="Italian codici fiscali (16 characters, omocodia variants), any case",
        validator="the check character (`stdnum.it.codicefiscale`)",
        sources="D.M. 23 dicembre 1976",
        validate=_one(V.it_fiscal_code),
        canonical=_compact,
        pattern=re.compile(
            r"(?<![A-Za-z0-9_])[A-Za-z]{6}[0-9LMNP-Vlmnp-v]{2}[A-EHLMPR-Ta-ehlmpr-t]"
            r"[0-9LMNP-Vlmnp-v]{2}[A-Za-z][0-9LMNP-Vlmnp-v]{3}[A-Za-z](?![A-Za-z0-9_])"
        ),
        screen=r"(?<![A-Za-z0-9_])[A-Za-z]{6}[0-9LMNP-Vlmnp-v]{2}[A-Za-z]",
        guards=Guards(length=16, word_run=16),  # the pattern: 16 in a row
    ),
    Entity(
        name="ipv4",
        label="IP_ADDRESS",
        matches="IPv4 addresses (four dotted octets 0-255), not the documentation ranges",
        validator="`ipaddress.ip_address`",
        sources="RFC 791; RFC 5737 (documentation ranges)",
        validate=_one(V.ip_address),
        canonical=_as_is,
        shape=re.compile(
            r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4]"
            r"[0-9]|1[0-9]{2}|[1-9]?[0-9])){3}",
            re.ASCII,
        ),  # fmt: skip
        min_digits=4,
        max_digits=12,
        screen=r"(?<![A-Za-z0-9_+])[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}",
        guards=Guards(contains=(".",)),
    ),
    Entity(
        name="phone",
        label="PHONE",
        matches="phone numbers (an `x`/`ext.` extension left out): international "
        "(`+33 6 12 34 56 78`, `0033 …`) anywhere; "
        "national formats of the configured countries (default US, CA, GB, DE, FR, ES, IT, NL, "
        "IN, CN, JP, BR) when grouped by separators or near a keyword (`phone`, `call`, `tel`, "
        "…); not dates, not the ranges reserved for fiction",
        validator="libphonenumber's `is_valid_number` for the region (`phonenumbers`)",
        sources="ITU-T E.164; libphonenumber metadata; Ofcom and NANPA fiction ranges",
        validate=_phone_valid,
        near_keyword=_phone_near_keyword,
        canonical=_phone_canonical,
        # The last group has two digits or more ("call 415 555 2671 2 times").
        shape=re.compile(r"(?:\+|00)?[0-9(][0-9 ()\-./]*[0-9]{2}", re.ASCII),
        min_digits=7,
        max_digits=17,
        context=_PHONE_WORDS,
        needs_context=lambda span: span.isdigit() and not span.startswith("00"),
        screen="",
        # With an extension ("(341)224-0313x564"), the digit-run tokenizer, which stops
        # at word characters, sees no number: the part before the ``x`` is a candidate.
        pattern=re.compile(
            r"(?<![A-Za-z0-9_+])(?P<v>(?:\+|00)?[0-9(][0-9 ()\-./]{4,22}[0-9])"
            r"(?:x|ext\.? ?)[0-9]{1,6}(?![A-Za-z0-9_])",
            re.ASCII,
        ),
        pattern_screen=r"[0-9](?:x|ext\.? ?)[0-9]",
        pattern_guards=Guards(digits=2, digit_x=True),
    ),
    Entity(
        name="ipv6",
        label="IP_ADDRESS",
        matches="IPv6 addresses, full or `::`-compressed, not `2001:db8::/32`",
        validator="`ipaddress.ip_address`; not the bare `::` (C++ scopes, `a :: b`)",
        sources="RFC 4291 §2.2; RFC 3849",
        validate=lambda span, countries: len(span) > 2 and V.ip_address(span),
        canonical=lambda span, countries: span.lower(),
        pattern=re.compile(
            r"(?<![0-9A-Za-z:_])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
            r"|(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?::"
            r"(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?)(?![0-9A-Za-z:_])"
        ),
        screen=r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:",
        guards=Guards(contains=(":",)),
    ),
    Entity(
        name="mac_address",
        label="MAC_ADDRESS",
        matches="MAC addresses `00:1A:2B:3C:4D:5E`, `00-1a-…`, `001a.2b3c.4d5e`, not the "
        "documentation block 00-00-5E-00-53-xx",
        validator="format only (six octets)",
        sources="IEEE 802; RFC 7042 §2.1.2 (documentation block)",
        validate=lambda span, countries: (
            not V.compact(span).replace(":", "").startswith("00005E0053")
        ),
        canonical=lambda span, countries: re.sub(r"[^0-9a-f]", "", span.lower()),
        pattern=re.compile(
            r"(?<![0-9A-Za-z:_\-.])(?:[0-9A-Fa-f]{2}([:\-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}"
            r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})(?![0-9A-Za-z:_\-])"
        ),
        screen=r"(?<![0-9A-Za-z:_\-.])[0-9A-Fa-f]{2}(?:[:\-][0-9A-Fa-f]{2}|[0-9A-Fa-f]{2}\.)",
        guards=Guards(length=14, hex_separator=True),
    ),
    Entity(
        name="date_of_birth",
        label="DATE_OF_BIRTH",
        matches="dates (ISO, `D/M/Y`, `M/D/Y`, `D.M.Y`, `3 March 1984`, `March 3, 1984`) "
        "within a few words after `born`, `DOB`, `date of birth`, `birthday`, `geboren`, "
        "`né(e) le`, …",
        validator="a real calendar date between 1900 and today",
        sources="HIPAA Safe Harbor 45 CFR 164.514(b)(2)(i)(C)",
        validate=_dob_valid,
        canonical=_as_is,
        pattern=re.compile(
            r"(?ai:\b(?:born(?: on)?|dob|d\.o\.b\.?|date of birth|birth ?date|birthday"
            r"|geboren(?: am)?|n[éÉe]e? le|fecha de nacimiento|data di nascita|nacid[oa] el"
            r"|nato il|nata il)(?![a-z0-9_]))"
            r"[\s:,-]{0,4}(?:(?ai:on|am|le)\s+)?"
            r"(?P<v>[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}|[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{2,4}"
            r"|[0-9]{1,2}\.? (?:[A-Za-z]{3,9}) [0-9]{4}|(?:[A-Za-z]{3,9}) [0-9]{1,2},? [0-9]{4})"
        ),
        screen=_keywords(
            "born", "dob", r"d\.o\.b", "birth", "geboren", "n[éÉe]e? le", "nacimiento", "nascita",
            "nacid", "nat[oa] il",
        ),  # fmt: skip
        guards=Guards(digits=4),
    ),
    Entity(
        name="street_address",
        label="STREET_ADDRESS",
        matches="street addresses with a house number and a street-type word: `221B Baker "
        "Street`, `12 Main St.`, `Hauptstraße 5`, `12 rue de la Paix`, `Calle Mayor 3`",
        validator="a house number 1-99999 and a known street-type word",
        sources="USPS Publication 28 (street suffixes); common European street words",
        validate=lambda span, countries: _house_number(span) > 0,
        canonical=lambda span, countries: " ".join(span.lower().split()),
        pattern=re.compile(
            r"(?<![\w])(?:[0-9]{1,5}[A-Za-z]?,? (?:[A-Z][\w'’\-]*\.? ){1,4}"
            r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way"
            r"|Place|Pl|Terrace|Square|Sq|Parkway|Pkwy|Highway|Hwy|Close|Crescent|Gardens)\b\.?"
            # (a street word of at most 61 characters: unbounded, a long hyphenated run of
            # capitalised words was scanned to its end from each capital, quadratically)
            r"|[A-ZÄÖÜ][\w\-]{0,60}(?:straße|strasse|str\.|weg|gasse|platz|allee|damm)"
            r" [0-9]{1,4}[a-z]?\b"
            r"|[0-9]{1,4},? (?:rue|avenue|boulevard|bd|place|allée|chemin|impasse|quai) "
            r"(?:(?:de|du|des|la|le|l')\s?)*[\w'’\-]+(?: [\w'’\-]+){0,3}"
            r"|(?:Calle|Avenida|Plaza|Paseo|Via|Viale|Piazza|Corso|Rua)"
            r" (?:[\w'’\-]+ ){1,4}[0-9]{1,4}\b)"
        ),
        # Every street-type word of the pattern, case-insensitive (the pattern is not).
        screen=_keywords(
            "straße", "strasse", r"str\.", "weg", "gasse", "platz", "allee", "damm",
            words=(
                "street", "st", "avenue", "ave", "road", "rd", "boulevard", "blvd", "lane", "ln",
                "drive", "dr", "court", "ct", "way", "place", "pl", "terrace", "square", "sq",
                "parkway", "pkwy", "highway", "hwy", "close", "crescent", "gardens", "rue", "bd",
                "allée", "chemin", "impasse", "quai", "calle", "avenida", "plaza", "paseo", "via",
                "viale", "piazza", "corso", "rua",
            ),
        ),  # fmt: skip
        # Every form has an ASCII space between number and street word.
        guards=Guards(digits=1, contains=(" ",)),
    ),
    Entity(
        name="person",
        label="PERSON",
        matches="a capitalised first name followed by a capitalised surname (optionally a "
        "middle initial) from the name lists; a capitalised word after a title in any case "
        "(`Mr`, `mrs`, `Dr.`, `Dott.ssa`, `Herr`, `Mme`, …); two to four capitalised words "
        "after a person's name label (`Customer name:`, `full_name=`); in `scrub`, the row's "
        "own values of its PII columns",
        validator="US Census 1990 name lists; accent- and case-insensitive known values",
        sources="US Census Bureau 1990 name frequency files",
        validate=lambda span, countries: True,  # the engine confirms names itself
        canonical=lambda span, countries: " ".join(span.split()),
        # Two capitalised words (an initial or particles between), or a title, any case,
        # then a capitalised word. Python's \s is Unicode white space; Java's is ASCII:
        # the class adds the rest.
        # ``\p{Cn}`` (unassigned) with every letter class: Python's Unicode is newer than
        # the JVM's (14.0 vs 13.0 on Java 17), and a letter Java does not know yet is
        # still one to the engine. The initial-and-particle loop is bounded as the
        # engine's is (a long one overflowed Java's recursive matcher). A name starts
        # where no letter, apostrophe or hyphen precedes it (the engine's lookbehind
        # excludes these and more): without that, every capital of a long ``Ab-Ab-…``
        # started a scan to its end (48 KB: 35 s).
        screen=rf"(?<![\p{{L}}\x27’\-]){_CAP}[\p{{L}}\p{{M}}\p{{Cn}}\x27’\-]*\.?(?:{_WS}+(?:[\p{{L}}\p{{Cn}}]\."
        rf"|{PARTICLES})){{0,"
        rf"{PERSON_INFIX + 1}}}{_WS}+{_CAP}|{_TITLE_SCREEN}\.?{_WS}+{_CAP}",
        guards=Guards(space_capital=True),
    ),
)

BY_NAME: dict[str, Entity] = {e.name: e for e in CATALOGUE}
NAMES: tuple[str, ...] = tuple(BY_NAME)
PRIORITY = {e.name: i for i, e in enumerate(CATALOGUE)}
NUMERIC = tuple(e for e in CATALOGUE if e.numeric)


def _house_number(span: str) -> int:
    m = re.search(r"[0-9]+", span)
    return int(m.group()) if m else 0


def label(name: str) -> str:
    """An entity's placeholder label (``ipv4`` -> ``IP_ADDRESS``).

    Args:
        name: A catalogue name.

    Returns:
        The label, without brackets.
    """
    return BY_NAME[name].label


def markdown_table() -> str:
    """The README's detector table, generated from the catalogue so the two cannot drift.

    Returns:
        A Markdown table: entity, placeholder, what it matches, validator, sources.
    """
    rows = ["| entity | placeholder | matches | confirmed by | sources |", "|---|---|---|---|---|"]
    for e in CATALOGUE:
        cells = (f"`{e.name}`", f"`<{e.label}>`", e.matches, e.validator, e.sources)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"
