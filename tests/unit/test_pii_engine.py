"""The detection engine in pure Python: every entity's formats, near misses, overlaps."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.pii import engine
from pipelines.pii.catalogue import CATALOGUE, NAMES
from pipelines.pii.surrogates import surrogate
from pipelines.spec.quality import PII_ENTITIES

# Each entity: texts that hold exactly one span of it, every supported format.
POSITIVE = {
    "credential": ["key AKIAIOSFODNN7EXAMPLE here", "password: hunter2xx",
                   "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                   "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----",
                   "token ghp_" + "a" * 36, "PASSWORD=hunter22x", "Api-Key: abcdef123456"],
    "url_userinfo": ["see https://bob:s3cret@example.com/x now"],
    "email": ["reach me at jane.roe+x@mail.example.co.uk today", "A@B.IO", "さくら.たなか@EXAMPLE.ORG",
              "ana@bücher.example", "ana@xn--bcher-kva.example", "ZOË.ÜNAL@MAIL.DE"],
    "iban": ["pay to DE89 3704 0044 0532 0130 00 please", "GB82WEST12345698765432",
             "iban de89370400440532013000 ok", "fr1420041010050500013m02606"],
    "credit_card": ["card 4111 1111 1111 1111 exp 12/29", "5500-0000-0000-0004", "4012888888881881",
                    "378282246310005"],
    "cn_resident_id": ["id 11010519491231002X", "11010519491231002x"],
    "fr_nir": ["NIR 1 84 12 76 451 089 46", "184127645108946", "sécurité sociale 127082A00475484",
               "1 81 08 2B 033 926 12"],
    "in_aadhaar": ["UID 2345 6789 0124", "aadhaar 234567890124"],
    "br_cpf": ["CPF 390.533.447-05", "cpf 39053344705"],
    "de_tax_id": ["Steuer-ID 86095742719", "IdNr 86 095 742 719"],
    "us_ssn": ["ssn 123-45-6789 on file", "078-05-1121", "id 123 45 6789", "SSN 123456789"],
    "ca_sin": ["SIN 123-456-782", "social insurance 123456782"],
    "nl_bsn": ["BSN 111222333", "burgerservicenummer 1112.22.333"],
    "uk_nino": ["NINO AB 12 34 56 C", "ab123456c"],
    "es_nif": ["DNI 12345678Z", "NIE X1234567L", "12345678-z"],
    "it_fiscal_code": ["CF RSSMRA85T10A562S", "rssmra85t10a562s"],
    "ipv4": ["from 192.168.0.1:8080", "8.8.8.8"],
    "phone": ["call +1 212-736-0134 now", "(646) 786 0199", "+12127360134", "+44 20 7946 0958",
              "tel 212.736.0134", "+33 6 12 34 56 78", "0033 6 12 34 56 78", "06 12 34 56 78",
              "030 1234567", "(11) 91234-5678", "090-1234-5678", "138 0013 8000", "98765 43210",
              "phone 4155552671", "call 415 555 2671 2 times", "(341)224-0313x564",
              "354.630.3408x2470"],
    "ipv6": ["peer 2001:0:85a3::8a2e:370:7334 ok", "fe80::1", "2001:0db9:0000:0000:0000:ff00:0042:8329"],
    "mac_address": ["mac 00:1A:2B:3C:4D:5E", "00-1a-2b-3c-4d-5e", "001a.2b3c.4d5e"],
    "date_of_birth": ["born on 3 March 1984", "DOB: 1984-03-03", "date of birth 03/12/1984",
                      "geboren am 3.12.1984", "born March 3, 1984", "DOB:12/03/1984",
                      "born:1984-03-12", "DOB-12.03.1984", "NÉE LE 12/03/1984", "né le 12/03/1984",
                      "d.o.b. 12/03/1984", "D.O.B.: 1984-03-12"],
    "street_address": ["lives at 221B Baker Street, London", "12 Main St. apt 4", "Hauptstraße 5",
                       "12 rue de la Paix", "Calle Mayor 3", "12 allée des Roses"],
    "person": ["Dear John Smith, thanks", "Mr. Okonkwo called", "signed Maria Garcia", "José García",
               "Nathan Rivera", "hey it's Ann-Kathrin Bonbach", "Ruben van de Ven",
               "ticket 4; Customer name: Slawomir Zorbach", "customer_name=Gianpietro Prati",
               "full name: Lukasz Luk", "Dott. Salvi Boiardo", "spoke to dr. Smith today",
               "mrs Jones called", "MRS Jones called", "herr Müller", "mme Dupont est là",
               "Dott.ssa Rossi", "Sig.ra Bianchi",
               # U+A7D0, a capital of Unicode 14, which Java 17 (Unicode 13) does not know.
               "Mr \ua7d0abc", "Maria \ua7d0. Garcia", "Customer name: Anna \ua7d0erg"],
}  # fmt: skip

# Values that hold no PII at all: near misses of every entity.
NEGATIVE = [
    "2026-11-25", "10:07:54", "2026-11-01 10:07:54", "[REDACTED]", "**** **** **** 1234",
    "+# ###-###-##47", "E00000003072", "33.88", "order 12345", "4111 1111 1111 1112",
    "DE89 3704 0044 0532 0130 02", "000-12-3456", "999.1.1.1", "std::vector", "version 1.2.3.4.5",
    "mb3ma6kmbeaadpe6d4to", "53ymlwz2xeyk2nwlfthi", "a" * 64, "", "12:30", "v1.2.3",
    "[10003-10399]", "[2125550100-2125550199]", "[2026-01-01-2026-03-31]", "[2024-02-29-2026-12-31]",
    "2026-01-01 - 2026-03-31", "1920x1080", "0x7fff5fbff8c8", "127082A00475485", "order 123456789", "order 0612345678", "ISBN 978-3-16-148410-0",
    "amount $1,234.56 at 10:30", "tracking 1Z999AA10123456784", "86095742719", "111222333",
    "x@anon.invalid", "+1 202-555-0142", "+44 7700 900123", "192.0.2.7", "2001:db8::1",
    "00:00:5E:00:53:01", "Jane Doe", "born to run", "12 angry men", "the Main Street bank",
    "passed the test", "Called from <PHONE> about a late delivery.", "CREDIT_CARD", "1 2 3 4 5 6 7 8",
    "see you at 5pm", "12345678A", "AB123456E", "BSN 111222334", "Steuer-ID 86095742718",
    "isbn: 978-84-7881-556-2", "Ticket #984807564: customer called", "Grace Period",
    "file name: Report Final", "name: support team", "segment name: Gold Tier",
    "city, name: New York", "product,name=Blue Widget Pro", "status; name: Gold Tier", "1920x1080 58",
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("call +1 (212) 736-4007 234-56-7890", [("phone", "+1 (212) 736-4007"), ("us_ssn", "234-56-7890")]),
        ("082-26-0953 6011 2366 5126 2317", [("us_ssn", "082-26-0953"), ("credit_card", "6011 2366 5126 2317")]),
        ("client 58.213.116.39 1920x1080", [("ipv4", "58.213.116.39")]),
        ("(341)224-0313x564 or 01512 3429523 ext. 3389", [("phone", "(341)224-0313"), ("phone", "01512 3429523")]),
        ("full name: Lukasz Luk", [("person", "Lukasz Luk")]),
    ],
)  # fmt: skip
def test_neighbouring_values_are_each_found_whole(text, found):
    """A number inside a longer candidate that loses its overlap is still found."""
    assert [(s.entity, text[s.start : s.end]) for s in engine.find(text)] == found


def test_a_recognizer_proposes_spans_that_are_confirmed_like_pattern_matches(monkeypatch):
    """The hook for detectors no regex expresses (a user's NER model, say)."""
    from pipelines.pii import catalogue
    from pipelines.pii.catalogue import Entity

    def recognizer(text):
        return [(m.start(), m.end()) for m in re.finditer(r"\bEMP-[0-9]{4}\b", text)]

    staff = Entity(
        name="employee_id", label="EMPLOYEE_ID", matches="badge ids", validator="not EMP-0000",
        sources="-", validate=lambda span, countries: span != "EMP-0000",
        canonical=lambda span, countries: span.lower(), screen="EMP-", recognizer=recognizer,
    )  # fmt: skip
    monkeypatch.setattr(engine, "CATALOGUE", (*catalogue.CATALOGUE, staff))
    monkeypatch.setattr(engine, "BY_NAME", {**catalogue.BY_NAME, staff.name: staff})
    monkeypatch.setattr(engine, "PRIORITY", {**catalogue.PRIORITY, staff.name: 99})
    monkeypatch.setitem(engine._CONTEXT, staff.name, None)
    text = "badge EMP-1234 (not EMP-0000), mail a@b.io"
    spans = engine.find(text)
    assert [(s.entity, text[s.start : s.end], s.canonical) for s in spans] == [
        ("employee_id", "EMP-1234", "emp-1234"), ("email", "a@b.io", "a@b.io"),
    ]  # fmt: skip


def test_catalogue_names_match_the_spec_literal():
    assert NAMES == PII_ENTITIES


@pytest.mark.parametrize("entity", NAMES)
def test_entity_found_in_every_supported_format(entity):
    for text in POSITIVE[entity]:
        found = engine.find(text)
        assert [s.entity for s in found] == [entity], (text, found)


def test_no_entity_found_in_near_misses():
    for text in NEGATIVE:
        assert engine.find(text) == [], text


# Keywords and titles fold ASCII case only, and digits are ASCII 0-9: what Java's
# regexes in the native screens do (``(?i)`` without ``u``, ``[0-9]``). A Unicode
# fold or Unicode digits in the engine alone would find these where the screens pass
# nothing (a leak the gate would never see); found by a reviewer, kept as the decision.
ASCII_ONLY = [
    "ſecret: hunter22", "paſsword: hunter22", "to\u212aen=abcdef123", "apı_key=abcdef123",
    "apİ_key=abcdef123", "DOB: １２/０３/１９８４", "DOB: ١٢/٠٣/١٩٨٤", "bırthday 12/03/1984",
    "Hauptstraße ５", "１２ Main Street", "ſir Smith", "Michael ½. Smith", "Michael Ⅿxyz",
    "Customer name: Anna-Ⅷ Berg",
]  # fmt: skip


@pytest.mark.parametrize("text", ASCII_ONLY)
def test_unicode_case_folds_and_digits_do_not_count(text):
    assert engine.find(text) == []


def test_separator_less_ssn_needs_a_keyword():
    assert engine.find("123456789") == []
    assert [s.entity for s in engine.find("SSN 123456789")] == ["us_ssn"]
    assert [s.entity for s in engine.find("social security: 123456789")] == ["us_ssn"]


def test_a_keyword_covers_only_the_number_right_after_it():
    text = "SSN 883-32-4968. Order 587030714, BSN: 843109270; order: #374805878"
    assert [(s.entity, text[s.start : s.end]) for s in engine.find(text)] == [
        ("us_ssn", "883-32-4968"), ("nl_bsn", "843109270")
    ]


def test_bare_national_phone_needs_a_keyword_or_its_grouping():
    assert engine.find("ref 0612345678") == []
    assert engine.find("mobile 0612345678")[0].canonical.startswith("+")
    assert engine.find("06 12 34 56 78")[0].canonical == "+33612345678"


def test_phone_countries_are_configurable():
    assert engine.find("06 12 34 56 78", countries=("US",)) == []
    assert [s.canonical for s in engine.find("06 12 34 56 78", countries=("FR",))] == ["+33612345678"]


def test_phone_shape_test_never_rejects_a_number_libphonenumber_calls_valid():
    """The cheap shape test before parsing loses nothing: valid implies the shape.

    Every region libphonenumber knows: its example number of every type, with and
    without a national prefix or country code, and random digit strings.
    """
    import random

    import phonenumbers

    from pipelines.pii import validators

    rnd = random.Random(20261130)
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        prefixes = ["", str(meta.country_code), meta.national_prefix or "", "0", "1", "00"]
        examples = [
            phonenumbers.national_significant_number(n)
            for t in phonenumbers.PhoneNumberType.values()
            if (n := phonenumbers.example_number_for_type(region, t)) is not None
        ]
        samples = [p + e for e in examples for p in prefixes] + [
            rnd.choice(prefixes) + "".join(rnd.choices("0123456789", k=rnd.randint(5, 13)))
            for _ in range(60)
        ]
        for number in samples:
            try:
                valid = phonenumbers.is_valid_number(phonenumbers.parse(number, region))
            except phonenumbers.NumberParseException:
                valid = False
            if valid:
                checked += 1
                assert validators._shape_ok(region, number), (region, number)
    assert checked > 3000  # enough valid numbers were drawn to mean something


def test_iban_and_cn_resident_id_validators_equal_stdnums_own():
    """The validators that look stdnum's registries up once per key answer as stdnum does.

    IBANs of every registry country built valid (random BBAN of the country's
    structure, stdnum's check digits), then each with one character changed, cut
    short or lower-cased; resident ids with stdnum's check digit over random areas and
    years (most areas unknown, some not assigned that year), then mutated. Only ASCII:
    stdnum takes ``CH٣8…`` (an Arabic-Indic check digit) as valid, ours does not.
    """
    import random
    import string

    from stdnum import iban as stdnum_iban
    from stdnum import numdb
    from stdnum.cn import ric

    from pipelines.pii import validators

    rnd = random.Random(20261201)
    kinds = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}
    ibans = []
    for line in numdb.get("iban").prefixes:
        country, structure = line[1], line[3].get("bban", "")
        for _ in range(40):
            bban = "".join(rnd.choice(kinds[k]) for n, k in re.findall(r"(\d+)!([nac])", structure)
                           for _ in range(int(n)))  # fmt: skip
            ibans.append(country + stdnum_iban.calc_check_digits(country + "00" + bban) + bban)
    mutated = [v[:i] + rnd.choice(string.ascii_uppercase + string.digits + " -") + v[i + 1 :]
               for v in ibans for i in [rnd.randrange(len(v))]]  # fmt: skip
    cases = ibans + mutated + [v[:-1] for v in ibans] + [v.lower() for v in ibans] + ["", "DE", "DE89"]
    assert sum(map(validators.iban, ibans)) > 0.9 * len(ibans)  # the built ones are valid
    assert [validators.iban(v) for v in cases] == [stdnum_iban.is_valid(validators.compact(v)) for v in cases]

    def stdnum_ric(v: str) -> bool:
        try:
            return ric.is_valid(validators.compact(v))
        except Exception:  # noqa: BLE001 (stdnum raises KeyError for some areas)
            return False

    def codes(prefixes, head=""):  # noqa: ANN001, ANN202 (the registry's 6-digit areas)
        for _, low, _, _, children in prefixes:
            yield from codes(children, head + low) if children else [head + low]

    areas = [a for a in codes(numdb.get("cn/loc").prefixes) if len(a) == 6]
    ids = []
    for _ in range(3000):
        area = rnd.choice(areas) if rnd.random() < 0.8 else "".join(rnd.choices(string.digits, k=6))
        body = area + str(rnd.randint(1930, 2025)) + f"{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}"
        body += "".join(rnd.choices(string.digits, k=3))
        ids.append(body + ric.calc_check_digit(body + "0"))
    ids += [v[:i] + rnd.choice(string.digits + "X") + v[i + 1 :] for v in ids for i in [rnd.randrange(18)]]
    ids += ["".join(rnd.choices(string.digits, k=17)) + "X", "1101011990010100X"]
    assert sum(map(validators.cn_resident_id, ids)) > 500  # some are valid
    assert [validators.cn_resident_id(v) for v in ids] == [stdnum_ric(v) for v in ids]


def test_phone_grouping_check_agrees_with_libphonenumbers_matcher():
    """The grouping test on the parsed number equals the public STRICT_GROUPING matcher.

    Every region's example numbers of every type, written national and international,
    in libphonenumber's own format, its digits regrouped in twos, threes and fours,
    with brackets, slashes and dots: the answers of both definitions are compared.
    """
    import random

    import phonenumbers

    from pipelines.pii import validators

    fmt = phonenumbers.PhoneNumberFormat
    rnd = random.Random(20261130)
    compared = agreed_true = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for t in phonenumbers.PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, t)
            if example is None:
                continue
            national = phonenumbers.format_number(example, fmt.NATIONAL)
            nsn = phonenumbers.national_significant_number(example)
            prefix = national[: national.find(nsn[0])] if nsn[0] in national else ""
            body = "".join(ch for ch in national if ch.isdigit())
            writings = {national, body, prefix + nsn, phonenumbers.format_number(example, fmt.INTERNATIONAL)}
            for size in (2, 3, 4):
                writings.add(" ".join(body[i : i + size] for i in range(0, len(body), size)))
            cut = rnd.randint(1, max(1, len(body) - 1))
            writings |= {f"({body[:cut]}) {body[cut:]}", f"{body[:cut]}/{body[cut:]}", f"{body[:cut]}.{body[cut:]}"}
            for text in writings:
                try:
                    number = phonenumbers.parse(text, region, keep_raw_input=True)
                except phonenumbers.NumberParseException:
                    continue
                ours = phonenumbers.is_valid_number(number) and validators._grouped_as(number, text, region)
                assert ours == validators._grouped_as_by_matcher(text, region), (region, text)
                compared += 1
                agreed_true += ours
    assert compared > 10_000 and 0.2 < agreed_true / compared < 0.9, (compared, agreed_true)


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("Jane.Roe@Example.COM", "jane.roe@example.com"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("0033 6 12 34 56 78", "+33612345678"),
        ("de89 3704 0044 0532 0130 00", "DE89370400440532013000"),
        ("4111-1111-1111-1111", "4111111111111111"),
        ("1 81 08 2B 033 926 12", "181082B03392612"),
        ("(341)224-0313x564", "+13412240313"),
    ],
)
def test_canonical_forms(text, canonical):
    assert [s.canonical for s in engine.find(text)] == [canonical]


def test_overlaps_resolve_longest_then_priority():
    # A phone-looking run inside an email is part of the email.
    assert [s.entity for s in engine.find("4155552671@mail.example.com")] == ["email"]
    spans = [engine.Span(0, 5, "phone", "x"), engine.Span(0, 5, "us_ssn", "x"), engine.Span(2, 9, "person", "y")]
    assert engine.resolve_overlaps(spans) == [engine.Span(2, 9, "person", "y")]
    assert engine.resolve_overlaps(spans[:2]) == [engine.Span(0, 5, "us_ssn", "x")]


@given(st.lists(st.tuples(st.integers(0, 60), st.integers(1, 12), st.sampled_from(NAMES)), max_size=40))
def test_overlap_resolution_equals_its_definition(raw):
    """Longest first, then catalogue priority, then earliest; a span overlapping a kept
    one is dropped; the rest by start. The bisecting implementation against the plain
    quadratic statement of it."""
    from pipelines.pii.catalogue import PRIORITY

    spans = [engine.Span(a, a + n, e, "") for a, n, e in raw]
    kept: list[engine.Span] = []
    for s in sorted(spans, key=lambda s: (s.start - s.end, PRIORITY[s.entity], s.start)):
        if all(s.end <= k.start or s.start >= k.end for k in kept):
            kept.append(s)
    assert engine.resolve_overlaps(spans) == sorted(kept, key=lambda s: s.start)


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        ("Ab-" * 30000, 0),  # every capital began a street-word scan to the end: 37 s
        ("://a:" * 15000, 14999),  # url user-info spans: overlap resolution was quadratic
        ("Mr " * 30000, 10000),
        ("1 " * 30000, 0),
        ("a@" * 30000, 0),
    ],
)
def test_adversarial_long_values_give_the_right_spans(text, spans):
    """Adversarial 60-90 KB values: the answer (the run takes well under a second each;
    before the fixes the first took 37 s and the second 6 s)."""
    assert len(engine.find(text)) == spans


def test_known_values_match_case_and_accent_insensitively():
    text = "Spoke with JOSE garcia, then García again; Josephine is someone else"
    found = engine.find(text, known=["José García"])
    assert [text[s.start : s.end] for s in found] == ["JOSE garcia", "García"]


def test_known_name_parts_match_only_capitalised():
    found = engine.find("will call back, Will said", entities=["person"], known=["Will Grant"])
    assert [(s.start, s.end) for s in found] == [(16, 20)]


def test_render_keeps_everything_outside_spans():
    text = "a\u00a0b ✓ call +44 20 7946 0958 — ok\n"
    found = engine.find(text)
    out = engine.render(text, found, ["<PHONE>"])
    assert out == "a\u00a0b ✓ call <PHONE> — ok\n"


@pytest.mark.parametrize("entity", [e.name for e in CATALOGUE])
def test_surrogates_are_never_found_as_their_entity(entity):
    """A scrubbed text's surrogates never fail the gate: the engine rejects each of them."""
    for text in POSITIVE[entity]:
        for span in engine.find(text):
            for digest in ("0" * 64, "f" * 64, "0123456789abcdef" * 4):
                fake = surrogate(span.entity, text[span.start : span.end], digest)
                assert not [s for s in engine.find(fake) if s.entity == entity], (entity, fake)


def test_surrogates_keep_the_shape():
    assert re.fullmatch(r"000-\d\d-\d{4}", surrogate("us_ssn", "123-45-6789", "ab" * 32))
    assert re.fullmatch(r"DE00 \w{4} \w{4} \w{4} \w{4} \w\w", surrogate("iban", "DE89 3704 0044 0532 0130 00", "ab" * 32))
    assert surrogate("email", "a@b.com", "cd" * 32).endswith("@anon.invalid")


def test_readme_detector_table_is_generated_from_the_catalogue():
    from pathlib import Path

    from pipelines.pii.catalogue import markdown_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    start, end = "<!-- pii-catalogue:start -->\n", "<!-- pii-catalogue:end -->"
    assert readme[readme.index(start) + len(start) : readme.index(end)] == markdown_table()
