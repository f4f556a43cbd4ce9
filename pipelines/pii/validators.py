"""Validators and canonical forms of the entities, over one candidate span's text.

Checksums and number plans come from maintained libraries, not from code of ours:
python-stdnum (IBAN, national identifiers, Luhn) and phonenumbers (Google's
libphonenumber metadata). Two validators are ours, each saying why: the UK NINO
(no checksum; stdnum has no module, the HMRC allocation rules are a few lines) and
the reserved, never-real ranges a ``scrub`` surrogate is drawn from.

Every validator takes the candidate's text and returns whether it is the entity;
none raises on malformed input.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
from types import ModuleType

import phonenumbers
import phonenumbers.phonenumbermatcher as _PNM
from stdnum import luhn, numdb
from stdnum.br import cpf
from stdnum.ca import sin
from stdnum.cn import ric
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.exceptions import ValidationError
from stdnum.fr import nir
from stdnum.in_ import aadhaar
from stdnum.iso7064 import mod_97_10
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.us import ssn
from stdnum.util import get_cc_module

from pipelines.spec.quality import DEFAULT_COUNTRIES  # noqa: F401 (re-exported)

# libphonenumber's metadata holds thousands of patterns, more than the re module's cache
# of 512 entries: without phonenumbers' own cache, numbers of many regions recompile them.
phonenumbers.enable_pattern_cache()

_NON_DIGIT = re.compile(r"[^0-9]")
_SPACE = re.compile(r"[\s.\-/]")


def digits(text: str) -> str:
    """The ASCII digits of ``text``, in order.

    Args:
        text: Any string.

    Returns:
        Only its characters 0-9.
    """
    return _NON_DIGIT.sub("", text)


def compact(text: str) -> str:
    """``text`` upper-cased without spaces, dots, dashes or slashes.

    Args:
        text: A candidate identifier.

    Returns:
        Its compact form (``de89 3704 …`` -> ``DE893704…``).
    """
    return _SPACE.sub("", text).upper()


# ----------------------------------------------------------------- email and web

#: Top-level domains reserved by RFC 2606 §2 as never valid; ``scrub`` surrogates use
#: ``.invalid``. (``example.*`` addresses are *not* exempt: test data is full of them,
#: and a note holding one is indistinguishable from a note holding a real address.)
RESERVED_TLDS = frozenset({"invalid"})


def email(text: str) -> bool:
    """An email address whose domain is a valid (internationalized) host name.

    The domain must convert to ASCII under IDNA 2008 with UTS #46 mapping (the
    ``idna`` package), so ``bücher.example`` and ``xn--bcher-kva.example`` pass and a
    label of 64+ characters or a leading hyphen does not. The ``.invalid`` TLD
    (RFC 2606) never holds a real address.

    Args:
        text: ``local@domain``.

    Returns:
        Whether it is a deliverable-looking address.
    """
    local, _, domain = text.rpartition("@")
    if not local or len(local) > 64 or local.startswith(".") or ".." in local:
        return False
    ascii_domain = _ascii_domain(domain)
    return ascii_domain is not None and ascii_domain.rsplit(".", 1)[-1].lower() not in RESERVED_TLDS


@functools.lru_cache(maxsize=65536)
def _ascii_domain(domain: str) -> str | None:
    """The domain in ASCII (IDNA 2008, UTS #46), or None; cached: domains repeat a lot."""
    import idna

    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


# ----------------------------------------------------------------- phones

#: Numbers reserved for fiction, which ``scrub`` surrogates are drawn from: NANP
#: 555-0100..555-0199 in every area code (North American Numbering Plan
#: Administrator) and UK 07700 900000..900999 (Ofcom's drama ranges).
FICTIONAL_PHONES = (re.compile(r"^\+1[2-9]\d{2}55501\d{2}$"), re.compile(r"^\+447700900\d{3}$"))


def phone_e164(text: str, countries: tuple[str, ...], grouped: bool = True) -> str | None:
    """The E.164 form of a phone number, or None when it is not a valid one.

    International forms (``+33 …``, ``0033 …``) are parsed as such. National forms are
    tried against ``countries`` in order; the first region where the number is valid
    (libphonenumber's ``is_valid_number``) and, with ``grouped``, written with its
    digits grouped as that region groups them (libphonenumber's ``STRICT_GROUPING``
    leniency: ``650 253 0000`` and ``6502530000`` pass for the US, ``65 02 53 00 00``
    does not) wins. Grouping is what tells a national number from an order number
    without a keyword nearby. Numbers in the fictional ranges
    (:data:`FICTIONAL_PHONES`) are not valid.

    Args:
        text: The candidate as written.
        countries: ISO 3166 alpha-2 regions for national formats.
        grouped: Require the region's digit grouping for national forms.

    Returns:
        ``+<country code><national number>`` or None.
    """
    valid, valid_grouped = _phone(text, countries)
    e164 = valid_grouped if grouped else valid
    return None if e164 is None or any(p.match(e164) for p in FICTIONAL_PHONES) else e164


@functools.lru_cache(maxsize=65536)
def _phone(text: str, countries: tuple[str, ...]) -> tuple[str | None, str | None]:
    """E.164 where ``text`` is valid, and where it is also grouped (or None, None).

    The first is the E.164 form in the first region where the number is valid, the
    second in the first where it is also grouped as that region groups numbers (both
    the same for international forms). One parse per region serves both answers
    (parsing is ~0.1 ms, the bulk of the engine's time on digit-heavy text).
    """
    stripped = text.strip()
    if stripped.startswith("00"):
        stripped = "+" + stripped[2:]
    international = stripped.startswith("+")
    number_digits = digits(stripped)
    valid = None
    for region in (None,) if international else countries:
        if region is not None and not _plausible(region, number_digits, stripped):
            continue  # most digit runs fail these cheap tests before parsing
        try:
            number = phonenumbers.parse(stripped, region, keep_raw_input=True)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(number):
            continue
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if international:
            return e164, e164
        valid = valid or e164
        if _grouped_as(number, stripped, region):
            return valid, e164
    return valid, None


@functools.cache
def _lengths(region: str) -> tuple[frozenset[int], str]:
    """National significant number lengths and national prefix of a region (libphonenumber)."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None:
        return frozenset(range(4, 18)), ""
    return frozenset(meta.general_desc.possible_length or range(4, 18)), meta.national_prefix or ""


def _possible_length(region: str, number: str) -> bool:
    """Whether the digits, less a leading national prefix, have a length the region uses."""
    lengths, prefix = _lengths(region)
    if len(number) in lengths:
        return True
    return bool(prefix) and number.startswith(prefix) and len(number) - len(prefix) in lengths


@functools.cache
def _national_shape(region: str) -> re.Pattern[str] | None:
    """A regex on the digits of a number parsed for ``region`` that a valid one matches.

    Any digits after the region's international dialling prefix; else an optional
    country code and national prefix, then a national number matching some number
    type's pattern (fixed line, mobile, toll free, ...: :func:`_type_patterns`) of some
    region sharing the country code (a number parsed for PR may be valid for US).
    ``parse`` strips no more than these before ``is_valid_number`` matches a type
    pattern, so a number failing the shape cannot be valid; it costs ~3 us where
    parsing and validating cost ~60 us. (The general description, a looser union,
    let through half of the parses of a national candidate only to fail.) Regions
    whose national prefix may be rewritten by a transform rule (JP, BR) are also
    checked on the rewritten digits (:func:`_shape_ok`). A unit test checks the
    implication on every region's example numbers and random digits.
    """
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta is None:
        return None
    idd = meta.international_prefix or "$^"
    prefix = meta.national_prefix_for_parsing
    npp = f"(?:{prefix}){{0,2}}" if prefix else ""
    return re.compile(f"(?:{idd}).*|(?:{meta.country_code})?{npp}(?:{_type_patterns(region)})")


#: The number types ``is_valid_number`` tries (phonenumbers' ``_number_type_helper``).
_NUMBER_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number",
                 "pager", "uan", "voicemail", "fixed_line", "mobile")  # fmt: skip


@functools.cache
def _type_patterns(region: str) -> str:
    """The union of the number types' national patterns of the regions sharing ``region``'s code."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    shared = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(meta.country_code, (region,))
    metas = [m for r in shared if (m := phonenumbers.PhoneMetadata.metadata_for_region(r))]
    patterns = {
        desc.national_number_pattern
        for m in metas
        for t in _NUMBER_TYPES
        if (desc := getattr(m, t)) is not None and desc.national_number_pattern
    }
    return "|".join(f"(?:{p})" for p in sorted(patterns)) or "$^"


def _shape_ok(region: str, number: str) -> bool:
    """Whether the digits ``number`` pass :func:`_national_shape` for ``region``."""
    shape = _national_shape(region)
    if shape is None or shape.fullmatch(number):
        return True
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    rule = meta.national_prefix_transform_rule
    if not rule:
        return False
    # What parse does for these regions: the national prefix (after an optional country
    # code) is rewritten with the rule, then the national number must be viable.
    prefix = re.compile(meta.national_prefix_for_parsing)
    code = str(meta.country_code)
    general = re.compile(f"(?:{_type_patterns(region)})")
    for rest in (number, number[len(code) :] if number.startswith(code) else None):
        found = prefix.match(rest) if rest else None
        if found and found.groups() and found.groups()[-1] is not None:
            if general.fullmatch(prefix.sub(rule, rest, count=1)):
                return True
    return False


#: A phone candidate written with digits and separators only: the shape test applies
#: (letters spell digits, and extensions are parsed apart, in whole column values).
_PLAIN_NUMBER = re.compile(r"[0-9 ()\-./+]+")


def _plausible(region: str, number: str, text: str) -> bool:
    """A cheap necessary condition for ``text`` (its digits: ``number``) in ``region``."""
    if not _possible_length(region, number):
        return False
    return not _PLAIN_NUMBER.fullmatch(text) or _shape_ok(region, number)


def _grouped_as(number: phonenumbers.PhoneNumber, text: str, region: str) -> bool:
    """Whether libphonenumber's matcher, at ``STRICT_GROUPING``, finds the whole ``text``.

    ``number`` is ``text`` parsed for ``region`` with ``keep_raw_input``, and valid. This applies
    the matcher's own tests for one candidate (``PhoneNumberMatcher._parse_and_verify``
    on the whole text) to the number already parsed, instead of running the matcher,
    which would search, parse again and try inner matches we cannot use: a third of
    the engine's time. The tests are phonenumbers' private helpers, so
    ``_grouped_as_by_matcher`` keeps the public definition and a unit test compares
    the two on every region's example numbers in several groupings.
    """
    candidate = _matcher_candidate(text)
    if candidate != text:
        return False
    if _PNM._SLASH_SEPARATED_DATES.search(text) or _PNM._PUB_PAGES.search(text):
        return False
    if not _PNM.fullmatch(_PNM._MATCHING_BRACKETS, text):
        return False
    # _PNM._verify_strict_grouping less its is_valid_number, which the caller has done.
    return (
        _PNM._contains_only_valid_x_chars(number, text)
        and not _PNM._contains_more_than_one_slash_in_national_number(number, text)
        and _PNM._is_national_prefix_present_if_required(number)
        and _strict_matcher(region)._check_number_grouping_is_valid(
            number, text, _PNM._all_number_groups_remain_grouped
        )
    )


def _matcher_candidate(text: str) -> str | None:
    """The candidate the matcher would cut from the start of ``text`` (None if none)."""
    match = _PNM._PATTERN.match(text)
    if match is None:
        return None
    found = _PNM._SECOND_NUMBER_START_PATTERN.search(match.group())
    return match.group()[: found.start()] if found else match.group()


@functools.cache
def _strict_matcher(region: str) -> phonenumbers.PhoneNumberMatcher:
    strict = phonenumbers.Leniency.STRICT_GROUPING
    return phonenumbers.PhoneNumberMatcher("", region, leniency=strict)


def _grouped_as_by_matcher(text: str, region: str) -> bool:
    """The public definition :func:`_grouped_as` must agree with (used by its test)."""
    matcher = phonenumbers.PhoneNumberMatcher(
        text, region, leniency=phonenumbers.Leniency.STRICT_GROUPING
    )
    return any(m.start == 0 and m.end == len(text) for m in matcher)


# ----------------------------------------------------------------- numbers with checksums


def us_ssn(text: str) -> bool:
    """A US Social Security number (stdnum: no area 000, 666 or 900-999, no zero groups).

    Args:
        text: Nine digits, optionally separated.

    Returns:
        Whether the number can have been issued.
    """
    return len(digits(text)) == 9 and ssn.is_valid(digits(text))


#: Issuer identification number prefixes (ISO/IEC 7812) of the card networks, by major
#: industry identifier: Visa 4; Mastercard 51-55 and 2221-2720; Maestro 50, 56-58, 6;
#: Discover, UnionPay 6, 81; American Express 34, 37, Diners Club 30, 36, 38, 39 and
#: JCB 35 (3 is travel and entertainment: every 3x prefix), and JCB's 15-digit 2131,
#: 1800. Maestro numbers may have 12 digits.
#: Mastercard's 2-series, 2221-2720.
_MASTERCARD_2 = r"2(2[2-9][1-9]|2[3-9]|[3-6]|7[01]|720)"
_IIN = re.compile(rf"^(4|5[0-8]|{_MASTERCARD_2}|3|6|81|2131|1800)")
_MAESTRO = re.compile(r"^(5[06-9]|6)")
#: Networks whose numbers have fixed lengths (the card brands' published rules): Amex
#: 15 digits, Visa 13, 16 or 19, Mastercard 16. Without them an 18-digit run starting
#: 37 (the digits of a mistyped IBAN) passed as a card one time in ten (Luhn).
_LENGTHS = ((re.compile(r"^3[47]"), {15}), (re.compile(r"^4"), {13, 16, 19}),
            (re.compile(rf"^(5[1-5]|{_MASTERCARD_2})"), {16}))  # fmt: skip


def credit_card(text: str) -> bool:
    """A payment card number: its length, an IIN prefix, the Luhn checksum.

    13-19 digits (Maestro 12-19; Amex, Visa and Mastercard their own, :data:`_LENGTHS`).

    Args:
        text: The digits, optionally grouped by spaces or dashes.

    Returns:
        Whether it is a well-formed card number.
    """
    d = digits(text)
    if len(d) == 12:
        return bool(_MAESTRO.match(d)) and luhn.is_valid(d)
    if any(prefix.match(d) and len(d) not in lengths for prefix, lengths in _LENGTHS):
        return False
    return 13 <= len(d) <= 19 and bool(_IIN.match(d)) and luhn.is_valid(d)


def iban(text: str) -> bool:
    """An IBAN of its country's BBAN structure, mod-97 valid (ISO 13616; stdnum).

    What ``stdnum.iban.is_valid`` checks, in its order and with its data and modules,
    but the registry looked up once per country (:func:`_bban`): stdnum scans its
    registry on every call, two thirds of its time. A unit test compares the two.

    Args:
        text: The IBAN in any case, with or without spaces.

    Returns:
        Whether it is valid.
    """
    number = compact(text)
    if not number.isascii() or not number.isalnum() or len(number) < 5:
        return False
    try:
        mod_97_10.validate(number[4:] + number[:4])
    except ValidationError:
        return False
    bban = _bban(number[:2])
    if bban is None or not bban.match(number[4:]):
        return False
    module = _iban_country_module(number[:2])
    return module is None or module.is_valid(number)


@functools.cache
def _bban(country: str) -> re.Pattern[str] | None:
    """The BBAN structure stdnum's IBAN registry holds for ``country`` (keyed by country only)."""
    structure = numdb.get("iban").info(country)[0][1].get("bban")
    if not structure:
        return None
    classes = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Za-z0-9]"}
    parts = re.findall(r"([1-9][0-9]*)!([nac])", structure)
    return re.compile("^" + "".join(f"{classes[kind]}{{{count}}}" for count, kind in parts) + "$")


@functools.cache
def _iban_country_module(country: str) -> ModuleType | None:
    """The country's IBAN module of stdnum (``stdnum.es.iban``, ...), or None."""
    return get_cc_module(country.lower(), "iban")


def _safe(check):  # noqa: ANN001, ANN202 (decorator)
    """A stdnum ``is_valid`` on the compact candidate, False on any error."""

    @functools.wraps(check)
    def valid(text: str) -> bool:
        try:
            return bool(check(compact(text)))
        except Exception:  # stdnum raises its own ValidationError subclasses; never fail a scan
            return False

    return valid


fr_nir = _safe(nir.is_valid)
de_tax_id = _safe(idnr.is_valid)
nl_bsn = _safe(bsn.is_valid)
in_aadhaar = _safe(aadhaar.is_valid)
br_cpf = _safe(cpf.is_valid)
ca_sin = _safe(sin.is_valid)
it_fiscal_code = _safe(codicefiscale.is_valid)


def cn_resident_id(text: str) -> bool:
    """A PRC resident identity card number (GB 11643-1999: area, birth date, ISO 7064 check).

    What ``stdnum.cn.ric.is_valid`` checks, in its order and with its functions, but
    the birth place looked up once per (area, year) (:func:`_ric_place`): stdnum scans
    its area registry on every call, most of its time. A unit test compares the two.

    Args:
        text: The 18-character number.

    Returns:
        Whether it is valid.
    """
    number = compact(text)
    if len(number) != 18 or not number[:-1].isascii() or not number[:-1].isdigit():
        return False
    if number[-1] != ric.calc_check_digit(number):
        return False
    try:
        ric.get_birth_date(number)
    except ValidationError:
        return False
    return _ric_place(number[:6], number[6:10])


@functools.lru_cache(maxsize=65536)
def _ric_place(area: str, year: str) -> bool:
    """Whether stdnum knows ``area`` as assigned in ``year`` (its lookup reads nothing else)."""
    try:
        ric.get_birth_place(f"{area}{year}0101000X")  # any valid date of that year
    except Exception:  # noqa: BLE001 (stdnum raises KeyError for some areas: never fail a scan)
        return False
    return True


def es_nif(text: str) -> bool:
    """A Spanish DNI (8 digits and a check letter) or NIE (X/Y/Z, 7 digits, letter).

    Args:
        text: The number, optionally with a dash before the letter.

    Returns:
        Whether the check letter matches (stdnum ``es.dni`` / ``es.nie``).
    """
    c = compact(text)
    return dni.is_valid(c) or nie.is_valid(c)


# HMRC's National Insurance number allocation rules (NIM39110): no checksum exists, and
# python-stdnum has no module for it, so the rules are written out here.
_NINO = re.compile(r"^(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$")


def uk_nino(text: str) -> bool:
    """A UK National Insurance number as HMRC allocates them.

    Two prefix letters (neither D, F, I, Q, U nor V; the second not O; not BG, GB,
    KN, NK, NT, TN or ZZ), six digits, a suffix A-D (HMRC NIM39110).

    Args:
        text: The number, spaces allowed.

    Returns:
        Whether it follows the allocation rules.
    """
    return bool(_NINO.match(compact(text)))


# ----------------------------------------------------------------- network


#: Documentation ranges (RFC 5737, RFC 3849): never assigned, ``scrub`` surrogates' space.
DOCUMENTATION_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


def ip_address(text: str) -> bool:
    """An IPv4 or IPv6 address outside the documentation ranges.

    Args:
        text: The address as written.

    Returns:
        Whether the standard library parses it and it is not a documentation address.
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return not any(address in net for net in DOCUMENTATION_NETS if net.version == address.version)


# ----------------------------------------------------------------- dates


_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ]
    )  # fmt: skip
    for m in names
}


def calendar_date(text: str) -> bool:
    """A real calendar date in a common written form, between 1900 and today.

    ``YYYY-MM-DD``, ``YYYY/MM/DD``, ``D/M/YYYY`` or ``M/D/YYYY`` (either reading valid),
    ``D.M.YYYY``, ``D Month YYYY``, ``Month D, YYYY``.

    Args:
        text: The candidate date.

    Returns:
        Whether some reading of it is a valid date in that range.
    """
    t = text.strip().lower().replace(",", " ")
    nums = [int(x) for x in re.findall(r"\d+", t)]
    words = re.findall(r"[a-z]+", t)
    month_word = next((_MONTHS[w] for w in words if w in _MONTHS), None)
    readings: list[tuple[int, int, int]] = []
    if month_word is not None and len(nums) == 2:
        day, year = (nums[0], nums[1]) if nums[1] > 31 else (nums[1], nums[0])
        readings.append((year, month_word, day))
    elif len(nums) == 3:
        a, b, c = nums
        if a > 31:
            readings.append((a, b, c))
        else:
            year = c + (1900 if c >= 30 else 2000) if c < 100 else c
            readings += [(year, b, a), (year, a, b)]
    today = dt.date.today()
    for y, m, d in readings:
        try:
            if dt.date(1900, 1, 1) <= dt.date(y, m, d) <= today:
                return True
        except ValueError:
            continue
    return False
