"""Spec discovery (``anonymize spec suggest``) scored on generated corpora.

    python benchmarks/discovery_bench.py [--rows 2000] [--seed 20261201] [--master local[2]]

1. Corpora. Three schemas (a CRM table, EU patient records, international
   payments), 2,000 rows each, 84 columns in all:
   - 36 **PII** columns: direct identifiers drawn from Faker (an independent
     generator: not the product's dictionaries or formats) in 11 locales — names,
     e-mails, phones in national formats, national identifiers (US SSN, FR NIR, ES
     NIF, IT codice fiscale, NL BSN, BR CPF, CA SIN, CN resident id, IN Aadhaar, each
     redrawn until python-stdnum accepts it, as Faker's are not always valid; not the
     UK NINO, whose Faker values all use an invalid prefix), IBANs, card numbers, IPv4/IPv6 and MAC
     addresses, street addresses, and free-text notes that embed some of them;
   - 11 **quasi-identifiers**: birth dates, ages, sex or gender, postal codes — the
     columns a draft should propose for ``k_anonymity:``;
   - 37 **non-PII** columns: the real columns of ``../shared/data`` that identify
     no one (Adult's education, occupation, ...; FARS's recoded codes; KDD Cup's
     giving amounts) and Faker business fields (amounts, SKUs, statuses, event
     times, product text).
   Half of the columns of each schema (every other one, after a seeded shuffle)
   get uninformative names (``c17``, ``field_k``), so only the values speak for them.
2. Discovery: the product's own path — :func:`pipelines.discover.profile` on a Spark
   DataFrame of the corpus (one aggregation, one 2,000-row sample through the PII
   engine), :func:`~pipelines.discover.propose` per column, and
   :func:`~pipelines.discover.suggest`, whose draft must validate as a spec.
3. Scores, per schema and overall: the share of PII columns given a protecting
   action (anything but ``keep``; target >= 0.98), of non-PII columns left ``keep``
   (target >= 0.9), and of quasi-identifiers proposed as ``k_anonymity`` candidates
   (reported; no target: a quasi-identifier with an uninformative name holds values
   like any other number or date). Misses are listed by column kind, name and the
   proposed action — never a value.

Needs ``../shared/data`` (the non-PII columns); without it the script says so and
exits 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import string
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

PII, QI, OTHER = "pii", "qi", "non-pii"


def _faker(locale: str, seed: int):  # noqa: ANN202 (faker.Faker)
    from faker import Faker

    f = Faker(locale)
    f.seed_instance(seed)
    return f


def _valid(draw, check) -> str:  # noqa: ANN001
    """A Faker value that passes the identifier's official check (python-stdnum); Faker's
    own are not always valid (its Aadhaar numbers mostly fail Verhoeff), and an invalid
    number is not that identifier. Redrawn up to 200 times."""
    for _ in range(200):
        value = draw()
        try:
            ok = check(value)
        except KeyError:  # stdnum's cn.ric raises on some regions its table lacks
            ok = False
        if ok:
            return value
    raise RuntimeError(f"no valid value drawn by {draw}")


def _shared(name: str, columns: list[str], rows: int, seed: int) -> pd.DataFrame:
    df = pd.read_csv(SHARED / name, sep=";", usecols=columns)
    return df.sample(rows, random_state=seed, replace=len(df) < rows).reset_index(drop=True)


def _note(f, values: dict[str, str], rng: np.random.Generator) -> str:  # noqa: ANN001
    """A free-text note; about half embed one of the row's identifiers."""
    text = f.sentence(nb_words=int(rng.integers(6, 14)))
    if rng.random() < 0.5:
        label, value = list(values.items())[int(rng.integers(0, len(values)))]
        text += f" {label}: {value}."
    return text


def crm(rows: int, seed: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """CRM customers (en_US, en_GB, de_DE): 12 PII, 4 QI, 12 non-PII columns."""
    rng = np.random.default_rng(seed)
    us, gb, de = _faker("en_US", seed), _faker("en_GB", seed + 1), _faker("de_DE", seed + 2)
    loc = [us, gb, de]
    pick = rng.integers(0, 3, rows)
    cols: dict[str, list] = {k: [] for k in (
        "full_name", "first_name", "last_name", "email", "phone", "ssn", "street_address",
        "iban", "card_number", "ip_address", "mac_address", "notes",
        "birth_date", "gender", "zip", "age")}  # fmt: skip
    for i in range(rows):
        f = loc[pick[i]]
        first, last = f.first_name(), f.last_name()
        cols["full_name"].append(f"{first} {last}")
        cols["first_name"].append(f.first_name())
        cols["last_name"].append(f.last_name())
        email = f.email()
        cols["email"].append(email)
        phone = f.phone_number()
        cols["phone"].append(phone)
        cols["ssn"].append(us.ssn())
        cols["street_address"].append(f.street_address())
        cols["iban"].append(f.iban())
        cols["card_number"].append(us.credit_card_number())
        cols["ip_address"].append(us.ipv4_public())
        cols["mac_address"].append(us.mac_address())
        cols["notes"].append(_note(us, {"email": email, "call": phone}, rng))
        birth = us.date_of_birth(minimum_age=18, maximum_age=90)
        cols["birth_date"].append(birth)
        cols["gender"].append(["F", "M", "X"][int(rng.integers(0, 3))])
        cols["zip"].append(us.zipcode())
        cols["age"].append(int((dt.date(2026, 11, 1) - birth).days // 365))
    df = pd.DataFrame(cols)
    kinds = dict.fromkeys(list(cols)[:12], PII) | dict.fromkeys(list(cols)[12:], QI)
    adult = _shared("adult/adult.csv", ["race", "marital-status", "education",
                                        "native-country", "workclass", "occupation",
                                        "salary-class"], rows, seed)  # fmt: skip
    df = pd.concat([df, adult], axis=1)
    kinds |= dict.fromkeys(adult.columns, OTHER)
    df["order_total"] = np.round(rng.gamma(2.0, 40.0, rows), 2)
    df["sku"] = [f"SKU-{n:06d}" for n in rng.integers(0, 999_999, rows)]
    df["status"] = rng.choice(["open", "paid", "shipped", "returned"], rows)
    df["created_at"] = pd.Timestamp("2026-11-01") + pd.to_timedelta(
        rng.integers(0, 86_400, rows), unit="s"
    )
    df["loyalty_points"] = rng.integers(0, 5000, rows)
    kinds |= dict.fromkeys(["order_total", "sku", "status", "created_at", "loyalty_points"],
                           OTHER)  # fmt: skip
    return df, kinds


def patients(rows: int, seed: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """EU patients (fr_FR, es_ES, it_IT, nl_NL): 12 PII, 3 QI, 12 non-PII columns."""
    from stdnum.es import nif
    from stdnum.fr import nir
    from stdnum.it import codicefiscale
    from stdnum.nl import bsn

    rng = np.random.default_rng(seed)
    fr, es, it, nl = (_faker(x, seed + i) for i, x in
                      enumerate(["fr_FR", "es_ES", "it_IT", "nl_NL"]))  # fmt: skip
    loc = [fr, es, it, nl]
    pick = rng.integers(0, 4, rows)
    cols: dict[str, list] = {k: [] for k in (
        "patient_name", "nir", "nif", "codice_fiscale", "bsn", "mobile", "email",
        "iban", "address", "ipv6", "contact_person", "clinical_note",
        "date_of_birth", "sex", "postal_code")}  # fmt: skip
    for i in range(rows):
        f = loc[pick[i]]
        name = f.name()
        cols["patient_name"].append(name)
        cols["nir"].append(_valid(fr.ssn, nir.is_valid))
        cols["nif"].append(_valid(es.nif, nif.is_valid))
        cols["codice_fiscale"].append(_valid(it.ssn, codicefiscale.is_valid))
        cols["bsn"].append(_valid(nl.ssn, bsn.is_valid))
        phone = f.phone_number()
        cols["mobile"].append(phone)
        cols["email"].append(f.free_email())
        cols["iban"].append(f.iban())
        cols["address"].append(f.street_address())
        cols["ipv6"].append(fr.ipv6())
        cols["contact_person"].append(f.name())
        cols["clinical_note"].append(_note(fr, {"tel": phone, "patient": name}, rng))
        cols["date_of_birth"].append(f.date_of_birth(minimum_age=0, maximum_age=100))
        cols["sex"].append(["female", "male"][int(rng.integers(0, 2))])
        cols["postal_code"].append(f.postcode())
    df = pd.DataFrame(cols)
    kinds = dict.fromkeys(list(cols)[:12], PII) | dict.fromkeys(list(cols)[12:], QI)
    fars = _shared("fars/fars_int.csv", ["irace", "ideathmon", "ideathday", "ihispanic",
                                         "istatenum", "iinjury"], rows, seed)  # fmt: skip
    df = pd.concat([df, fars], axis=1)
    kinds |= dict.fromkeys(fars.columns, OTHER)
    df["ward"] = rng.choice(list(string.ascii_uppercase[:8]), rows)
    df["visits"] = rng.integers(1, 40, rows)
    df["admitted_at"] = [dt.date(2026, 1, 1) + dt.timedelta(days=int(d))
                         for d in rng.integers(0, 300, rows)]  # fmt: skip
    df["triage_score"] = np.round(rng.normal(3.0, 1.0, rows), 1)
    df["procedure"] = rng.choice(["X-ray", "MRI", "blood test", "ECG", "CT"], rows)
    df["insured"] = rng.random(rows) < 0.8
    kinds |= dict.fromkeys(["ward", "visits", "admitted_at", "triage_score", "procedure",
                            "insured"], OTHER)  # fmt: skip
    return df, kinds


def payments(rows: int, seed: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """International payments (pt_BR, en_CA, zh_CN, en_IN, en_GB): 12 PII, 4 QI, 13 non-PII."""
    from stdnum.br import cpf
    from stdnum.ca import sin
    from stdnum.cn import ric
    from stdnum.in_ import aadhaar

    rng = np.random.default_rng(seed)
    br, ca, cn, ind, gb = (_faker(x, seed + i) for i, x in
                           enumerate(["pt_BR", "en_CA", "zh_CN", "en_IN", "en_GB"]))  # fmt: skip
    loc = [br, ca, cn, ind, gb]
    pick = rng.integers(0, 5, rows)
    cols: dict[str, list] = {k: [] for k in (
        "holder_name", "cpf", "sin", "resident_id", "aadhaar", "uk_phone", "pan", "iban",
        "payer_email", "payer_phone", "client_ip", "memo",
        "customer_age", "gender", "postcode", "birthday")}  # fmt: skip
    for i in range(rows):
        f = loc[pick[i]]
        cols["holder_name"].append(ca.name() if pick[i] in (2, 3) else f.name())
        cols["cpf"].append(_valid(br.cpf, cpf.is_valid))
        cols["sin"].append(_valid(ca.ssn, sin.is_valid))
        cols["resident_id"].append(_valid(cn.ssn, ric.is_valid))
        cols["aadhaar"].append(_valid(ind.aadhaar_id, aadhaar.is_valid))
        cols["uk_phone"].append(gb.phone_number())
        cols["pan"].append(ca.credit_card_number())
        cols["iban"].append(gb.iban())
        email = ca.email()
        cols["payer_email"].append(email)
        cols["payer_phone"].append(f.phone_number())
        cols["client_ip"].append(ca.ipv4_public())
        cols["memo"].append(_note(ca, {"reply to": email}, rng))
        birth = ca.date_of_birth(minimum_age=18, maximum_age=95)
        cols["customer_age"].append(int((dt.date(2026, 11, 1) - birth).days // 365))
        cols["gender"].append(["woman", "man", "other"][int(rng.integers(0, 3))])
        cols["postcode"].append(ca.postcode())
        cols["birthday"].append(birth)
    df = pd.DataFrame(cols)
    kinds = dict.fromkeys(list(cols)[:12], PII) | dict.fromkeys(list(cols)[12:], QI)
    cup = _shared("cup/cup_int.csv", ["INCOME", "STATE", "RAMNTALL", "NGIFTALL", "MINRAMNT"],
                  rows, seed)  # fmt: skip
    df = pd.concat([df, cup], axis=1)
    kinds |= dict.fromkeys(cup.columns, OTHER)
    df["amount"] = np.round(rng.lognormal(3.0, 1.0, rows), 2)
    df["currency"] = rng.choice(["BRL", "CAD", "CNY", "INR", "GBP"], rows)
    df["mcc"] = rng.choice([5411, 5812, 5999, 4111, 7011], rows)
    df["settled_at"] = pd.Timestamp("2026-11-01") + pd.to_timedelta(
        rng.integers(0, 86_400, rows), unit="s"
    )
    df["channel"] = rng.choice(["pos", "web", "app"], rows)
    df["fee"] = np.round(rng.random(rows) * 3, 2)
    desc = _faker("en_US", seed + 9)
    df["product_text"] = [desc.catch_phrase() for _ in range(rows)]
    df["retries"] = rng.integers(0, 4, rows)
    kinds |= dict.fromkeys(["amount", "currency", "mcc", "settled_at", "channel", "fee",
                            "product_text", "retries"], OTHER)  # fmt: skip
    return df, kinds


def obscure(df: pd.DataFrame, kinds: dict[str, str], seed: int) -> tuple[pd.DataFrame, dict]:
    """Give every other column (after a seeded shuffle) an uninformative name."""
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(df.columns))
    names, truth = {}, {}
    for i, c in enumerate(order):
        if i % 2:
            new = c
        else:
            new = f"c{i:02d}" if i % 4 == 0 else f"field_{string.ascii_lowercase[i % 26]}"
        names[c] = new
        truth[new] = (kinds[c], c)
    return df[order].rename(columns=names), truth


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} (the real non-PII columns) is absent")
        return 0
    sys.path.insert(0, str(ROOT))
    from pipelines.discover import profile, propose, suggest
    from pipelines.session import get_session
    from pipelines.spec.loader import spec_from_dict

    spark = get_session(master=args.master, conf={"spark.ui.enabled": "false"})
    totals = {PII: [0, 0], QI: [0, 0], OTHER: [0, 0]}
    misses = []
    print(f"{'schema':<10} {'cols':>5} {'PII protected':>15} {'non-PII keep':>14} "
          f"{'QI proposed':>13}")  # fmt: skip
    for n, build in enumerate((crm, patients, payments)):
        raw, kinds = build(args.rows, args.seed + 100 * n)
        df, truth = obscure(raw, kinds, args.seed + n)
        sdf = spark.createDataFrame(df)
        profiles = profile(sdf)
        import yaml

        draft = suggest(profiles, {"path": f"/tmp/{build.__name__}", "format": "parquet"},
                        "dt", build.__name__)  # fmt: skip
        spec_from_dict(yaml.safe_load(draft), f"{build.__name__} draft", draft)  # validates
        score = {PII: [0, 0], QI: [0, 0], OTHER: [0, 0]}
        for p in profiles:
            kind, original = truth[p.name]
            pr = propose(p)
            ok = {PII: pr.action != "{kind: keep}", OTHER: pr.action == "{kind: keep}",
                  QI: pr.quasi_identifier is not None}[kind]  # fmt: skip
            score[kind][0] += ok
            score[kind][1] += 1
            if not ok:
                misses.append(f"{build.__name__}.{p.name} ({kind}: {original}, {p.type}) -> "
                              f"{pr.action}")  # fmt: skip
        for k in totals:
            totals[k][0] += score[k][0]
            totals[k][1] += score[k][1]

        def share(k: str, s: dict = score) -> str:
            return f"{s[k][0]}/{s[k][1]} = {s[k][0] / s[k][1]:.3f}"

        print(f"{build.__name__:<10} {len(df.columns):>5} {share(PII):>15} {share(OTHER):>14} "
              f"{share(QI):>13}")  # fmt: skip
    all_cols = sum(v[1] for v in totals.values())
    print(f"{'all':<10} {all_cols:>5} "
          + " ".join(f"{totals[k][0]}/{totals[k][1]} = {totals[k][0] / totals[k][1]:.3f}"
                     for k in (PII, OTHER, QI)))  # fmt: skip
    pii_share = totals[PII][0] / totals[PII][1]
    keep_share = totals[OTHER][0] / totals[OTHER][1]
    print(f"targets: PII protected >= 0.98 ({'met' if pii_share >= 0.98 else 'MISSED'}), "
          f"non-PII keep >= 0.9 ({'met' if keep_share >= 0.9 else 'MISSED'}); "
          f"QI proposed {totals[QI][0] / totals[QI][1]:.3f} (no target)")
    print("misses (column, kind: original name, type -> proposed action):")
    for m in misses:
        print("  " + m)
    return 0


if __name__ == "__main__":
    sys.exit(main())
