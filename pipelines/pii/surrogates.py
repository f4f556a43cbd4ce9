"""Never-real surrogate values for ``scrub: {replace_with: surrogate}``.

A surrogate is a deterministic function of the span's entity, its written shape and
its keyed digest (computed natively by Spark from the canonical value, so the key
never reaches Python): the same value gets the same surrogate in every row, partition
and table. Each is *provably not real*, and the gate's validators reject it, so a
scrubbed column never fails the gate on its own surrogates:

* email: ``<10 hex>@anon.invalid`` (RFC 2606 reserves ``.invalid``);
* phone: NANP ``+1 202-555-01xx`` for North American numbers, Ofcom's drama range
  ``+44 7700 900xxx`` otherwise;
* IPv4 / IPv6: the documentation ranges 192.0.2.0/24 and 2001:db8::/32 (RFC 5737, 3849);
  MAC: the documentation block 00-00-5E-00-53-xx (RFC 7042);
* card numbers, IBANs and national identifiers: the original's shape (separators and
  letter case kept) filled from the digest, with the check digit made wrong; US SSNs get
  area 000, which is never issued; IBANs get check digits 00, which ISO 13616 never uses;
* PERSON: a well-known placeholder name (``Jane Doe``…, exempt from the gate's PERSON
  detector); credentials, URLs with credentials, dates of birth and street addresses:
  fixed obviously fake values.
"""

from __future__ import annotations

import hashlib

from pipelines.pii.catalogue import BY_NAME, CREDENTIAL_SURROGATE
from pipelines.pii.names import PLACEHOLDER_NAMES
from pipelines.spec.quality import DEFAULT_COUNTRIES

_FIXED = {
    "credential": CREDENTIAL_SURROGATE,
    "url_userinfo": "https://host.invalid/",
    "date_of_birth": "0000-00-00",
    "street_address": "0 Nowhere Lane",
}


def _digits_from(digest: str) -> str:
    """An endless-enough decimal string drawn from a hex digest."""
    return "".join(str(int(digest[i : i + 2], 16) % 10) for i in range(0, len(digest), 2)) * 4


def _fill(original: str, digest: str) -> str:
    """The original's shape, digits and letters replaced from the digest."""
    digits = iter(_digits_from(digest))
    letters = iter([chr(65 + int(digest[i : i + 2], 16) % 26) for i in range(0, 64, 2)] * 4)
    out = []
    for ch in original:
        if ch.isdigit():
            out.append(next(digits))
        elif ch.isalpha() and ch.isascii():
            letter = next(letters)
            out.append(letter if ch.isupper() else letter.lower())
        else:
            out.append(ch)
    return "".join(out)


def _invalidated(entity: str, value: str) -> str:
    """``value`` with its last digit stepped until the entity's validator rejects it."""
    validate = BY_NAME[entity].validate
    positions = [i for i, ch in enumerate(value) if ch.isdigit()]
    if not positions:
        return value
    last = positions[-1]
    for step in range(10):
        candidate = value[:last] + str((int(value[last]) + step) % 10) + value[last + 1 :]
        if not validate(candidate, ()):
            return candidate
    return value[:last] + "X" + value[last + 1 :]  # no digit fails: a letter always does


def surrogate(
    entity: str, original: str, digest: str, countries: tuple[str, ...] = DEFAULT_COUNTRIES
) -> str:
    """The never-real surrogate of one span.

    A surrogate in the original's shape (cards, IBANs, national ids) is also one in
    which the engine finds nothing at all: a wrong checksum makes it no SIN, but nine
    digits in threes may still be an Italian mobile number, which the gate would
    report. Such a draw is redrawn from the digest (deterministically), up to 64 times,
    then the entity's placeholder stands in.

    Args:
        entity: The span's catalogue name.
        original: The span's text (only its shape is used, and for phones the country).
        digest: 64 hex characters: HMAC of the canonical value (computed by Spark).
        countries: The phone regions the gate checks (the ``scrub`` action's).

    Returns:
        The surrogate text.
    """
    pick = int(digest[:8], 16)
    if entity == "email":
        return f"{digest[:10]}@anon.invalid"
    if entity == "phone":
        if original.lstrip().startswith(("+1", "001")) or original.lstrip()[:1] == "(":
            return f"+1 202-555-01{pick % 100:02d}"
        return f"+44 7700 900{pick % 1000:03d}"
    if entity == "ipv4":
        return f"192.0.2.{pick % 254 + 1}"
    if entity == "ipv6":
        return f"2001:db8::{digest[:4]}"
    if entity == "mac_address":
        return f"00:00:5E:00:53:{digest[:2].upper()}"
    if entity == "person":
        return PLACEHOLDER_NAMES[pick % len(PLACEHOLDER_NAMES)]
    if entity in _FIXED:
        return _FIXED[entity]
    from pipelines.pii import engine

    for attempt in range(64):
        seed = hashlib.sha256(f"{digest}:{attempt}".encode()).hexdigest() if attempt else digest
        candidate = _shaped(entity, original, seed)
        if not engine.find(candidate, None, countries):
            return candidate
    return engine.placeholder(entity)


def _shaped(entity: str, original: str, digest: str) -> str:
    """The original's shape filled from ``digest``, made invalid as ``entity``."""
    filled = _fill(original, digest)
    if entity == "us_ssn":
        return "000" + filled[3:]
    if entity == "iban":
        return original[:2] + "00" + filled[4:]
    return _invalidated(entity, filled)
