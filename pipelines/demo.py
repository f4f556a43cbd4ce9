"""A synthetic raw warehouse with realistic PII, and the demo run over it.

The raw table ``raw.customer_events`` has one row per customer event: a customer
id (the privacy unit; customers recur across days), full name, email, phone (in
several national formats), national id (SSN format), payment card number (Luhn
valid, with or without spaces), street address, postal code, birthdate, signup
date, a free-text note that sometimes repeats the email or phone, an amount and
an event time. Everything is drawn from a fixed seed, so the same arguments give
the same table.

Raw names come from lists that share no entry with the surrogate dictionaries, so
a published surrogate can never coincide with a raw person's name.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table as RichTable

from pipelines.manifest import Quality

DEMO_SPEC = Path(__file__).resolve().parents[1] / "conf" / "pipelines" / "demo.yaml"
KEY_ENV = "ANONYMIZE_DEMO_KEY"
RAW_TABLE = "raw.customer_events"
FIRST_DAY = dt.date(2026, 11, 1)
SEED = 20261126

_FIRST = (
    "Abel Agnes Albert Alma Ambrose Anita Archie Astrid Barnaby Bertha Boris Brigitte Casimir "
    "Cecilia Clement Cornelia Cyril Dagmar Desmond Dorothea Edgar Edith Elmer Enid Ernest Estelle "
    "Eugene Florence Frederick Gertrude Gideon Gwendolyn Harold Hazel Herbert Hilda Horace Imelda "
    "Irving Isolde Jasper Josephine Lionel Lorna Lucius Mabel Marcel Matilda Mortimer Myrtle "
    "Nigel Octavia Oswald Pauline Percival Philippa Quentin Rosalind Rupert Sybil Thaddeus "
    "Theodora Ulric Ursula Vernon Wilhelmina Winifred Xavier Yvonne Zachariah"
).split()
_LAST = (
    "Ackerley Ashdown Balcombe Blackwood Brightwater Carrington Chamberlain Cresswell Dalrymple "
    "Drummond Easterbrook Fairweather Fenwick Galloway Greenhalgh Hargreaves Hawthorne "
    "Huxtable Inglewood Jarrold Kingsley Lancaster Linthwaite Marchbanks Montague Northcott "
    "Oakenfold Pemberton Pettigrew Quartermaine Ravenscroft Rutherford Saltonstall Southwell "
    "Thistlewood Throckmorton Underhill Vandermeer Wainwright Whitlock Winterbottom Yardley"
).split()
_STREETS = (
    "Maple Oak Pine Cedar Elm Willow Birch Chestnut Walnut Spruce Juniper Magnolia Hawthorn "
    "Aspen Poplar Sycamore Linden Laurel Holly Alder"
).split()
_STREET_TYPES = ["Street", "Avenue", "Road", "Lane", "Drive", "Court", "Place", "Boulevard"]
#: Assigned North American area codes (NANPA), so every demo phone number is a valid
#: number to libphonenumber and the PII engine finds it (random codes often were not).
_AREA_CODES = np.array([
    201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218, 219, 224,
    225, 228, 229, 231, 234, 239, 240, 248, 251, 252, 253, 254, 256, 260, 262, 267, 269, 270,
    272, 276, 281, 301, 302, 303, 304, 305, 307, 308, 309, 310, 312, 313, 314, 315, 316, 317,
    318, 319, 320, 321, 323, 325, 330, 331, 334, 336, 337, 339, 347, 351, 352, 360, 361, 386,
    401, 402, 404, 405, 406, 407, 408, 409, 410, 412, 413, 414, 415, 417, 419, 423, 424, 425,
    430, 432, 434, 435, 440, 443, 469, 478, 479, 480, 484, 501, 502, 503, 504, 505, 507, 508,
    509, 510, 512, 513, 515, 516, 517, 518, 520, 530, 540, 541, 551, 559, 561, 562, 563, 567,
    570, 571, 573, 574, 575, 580, 585, 586, 601, 602, 603, 605, 606, 607, 608, 609, 610, 612,
    614, 615, 616, 617, 618, 619, 620, 623, 626, 630, 631, 636, 641, 646, 650, 651, 660, 661,
    662, 678, 682, 701, 702, 703, 704, 706, 707, 708, 712, 713, 714, 715, 716, 717, 718, 719,
    720, 724, 727, 731, 732, 734, 740, 754, 757, 760, 763, 765, 770, 772, 773, 774, 775, 781,
    785, 786, 801, 802, 803, 804, 805, 806, 808, 810, 812, 813, 814, 815, 816, 817, 818, 828,
    830, 831, 832, 843, 845, 847, 848, 850, 856, 857, 858, 859, 860, 862, 863, 864, 865, 870,
    878, 901, 903, 904, 906, 907, 908, 909, 910, 912, 913, 914, 915, 916, 917, 918, 919, 920,
    925, 928, 931, 936, 937, 940, 941, 947, 949, 951, 952, 954, 956, 970, 971, 972, 973, 978,
    979, 980, 985, 989,
])

#: USPS national areas by a ZIP code's first digit: the demo's sales regions (the DP
#: release's public group keys).
REGIONS = (
    "new-england", "northeast", "mid-atlantic", "southeast", "great-lakes", "upper-midwest",
    "central", "south-central", "mountain", "pacific",
)  # fmt: skip

_MAIL_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "proton.me", "icloud.com", "gmx.de"]
_NOTES = [
    "Called from {phone} about a late delivery.",
    "Asked to send the receipt to {email} instead.",
    "Prefers contact by post.",
    "Card ending {last4} declined twice, retried OK.",
    "VIP customer, handle with care.",
    "Requested invoice copy; reach at {phone} after 5pm.",
    "Changed billing email to {email}.",
    "",
]


def _luhn_complete(body: np.ndarray) -> np.ndarray:
    """Append the Luhn check digit to each row of 15 digits (vectorized)."""
    digits = body.copy()
    # From the right of the final 16-digit number, every second digit (the check
    # digit's left neighbour first) is doubled: positions 14, 12, ... of the body.
    doubled = digits[:, ::-1][:, ::2] * 2
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    total = doubled.sum(axis=1) + digits[:, ::-1][:, 1::2].sum(axis=1)
    check = (10 - total % 10) % 10
    return np.concatenate([digits, check[:, None]], axis=1)


def customers(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """A pool of ``n`` customers with stable PII.

    Args:
        n: How many customers to draw (distinct ``customer_id`` values).
        rng: The generator every column is drawn from; the same state gives the same pool.

    Returns:
        One row per customer with columns ``customer_id``, ``full_name``, ``email``,
        ``phone``, ``national_id``, ``card_number``, ``street_address``, ``postal_code``,
        ``region`` (strings; the region is the postal code's national area, :data:`REGIONS`)
        and ``birthdate``, ``signup_date`` (``datetime.date``).
    """
    first = rng.choice(_FIRST, n)
    last = rng.choice(_LAST, n)
    ids = rng.choice(np.arange(10_000_000, 99_999_999), n, replace=False)
    suffix = rng.integers(1, 999, n)
    domain = rng.choice(_MAIL_DOMAINS, n)
    area = rng.choice(_AREA_CODES, n)
    exch = rng.integers(200, 999, n)
    exch = np.where(exch == 555, 556, exch)  # 555-01xx is reserved for fiction
    line = rng.integers(0, 9999, n)
    phone_style = rng.integers(0, 3, n)
    ssn = [rng.integers(1, 899, n), rng.integers(1, 99, n), rng.integers(1, 9999, n)]
    ssn[0] = np.where(ssn[0] == 666, 667, ssn[0])  # 666 is never issued
    cards = _luhn_complete(
        np.concatenate([np.full((n, 1), 4), rng.integers(0, 10, (n, 14))], axis=1)
    )
    card_spaced = rng.random(n) < 0.5
    house = rng.integers(1, 9999, n)
    street = rng.choice(_STREETS, n)
    stype = rng.choice(_STREET_TYPES, n)
    postal = rng.integers(1000, 99999, n)
    birth = pd.Timestamp(FIRST_DAY) - pd.to_timedelta(rng.integers(18 * 365, 90 * 365, n), unit="D")
    signup = pd.Timestamp(FIRST_DAY) - pd.to_timedelta(rng.integers(1, 5 * 365, n), unit="D")
    rows = []
    for i in range(n):
        a, e, ln = int(area[i]), int(exch[i]), int(line[i])
        phone = (
            f"+1 {a}-{e}-{ln:04d}",
            f"({a}) {e} {ln:04d}",
            f"+1{a}{e}{ln:04d}",
        )[int(phone_style[i])]
        card = "".join(map(str, cards[i]))
        if card_spaced[i]:
            card = " ".join(card[j : j + 4] for j in range(0, 16, 4))
        rows.append(
            (
                f"C{ids[i]}",
                f"{first[i]} {last[i]}",
                f"{first[i].lower()}.{last[i].lower()}{suffix[i]}@{domain[i]}",
                phone,
                f"{ssn[0][i]:03d}-{ssn[1][i]:02d}-{ssn[2][i]:04d}",
                card,
                f"{house[i]} {street[i]} {stype[i]}",
                f"{postal[i]:05d}",
                REGIONS[postal[i] // 10_000],
            )
        )
    df = pd.DataFrame(
        rows,
        columns=[
            "customer_id", "full_name", "email", "phone", "national_id",
            "card_number", "street_address", "postal_code", "region",
        ],
    )  # fmt: skip
    df["birthdate"] = pd.to_datetime(birth).date
    df["signup_date"] = pd.to_datetime(signup).date
    return df


def raw_events(rows: int, days: int, seed: int = SEED) -> dict[str, pd.DataFrame]:
    """Events per partition value; customers recur across days.

    Args:
        rows: The total number of events over all days, spread as evenly as possible
            (the first ``rows % days`` days get one more).
        days: How many daily partitions, starting at :data:`FIRST_DAY`.
        seed: The random seed; the same arguments give the same events.

    Returns:
        ISO date (``YYYY-MM-DD``) -> that day's events: the customer columns of
        :func:`customers` plus ``note``, ``amount``, ``event_time`` and ``event_id``.
    """
    rng = np.random.default_rng(seed)
    pool = customers(max(rows // 4, 1), rng)
    per_day = [rows // days + (1 if d < rows % days else 0) for d in range(days)]
    out = {}
    for d, n in enumerate(per_day):
        day = FIRST_DAY + dt.timedelta(days=d)
        pick = rng.integers(0, len(pool), n)
        ev = pool.iloc[pick].reset_index(drop=True)
        note_tpl = rng.choice(len(_NOTES), n)
        ev["note"] = [
            _NOTES[t].format(phone=p, email=e, last4=c[-4:])
            for t, p, e, c in zip(
                note_tpl, ev["phone"], ev["email"], ev["card_number"], strict=True
            )
        ]
        ev["amount"] = np.round(rng.gamma(2.0, 30.0, n), 2)
        seconds = rng.integers(0, 86_400, n)
        ev["event_time"] = pd.Timestamp(day) + pd.to_timedelta(seconds, unit="s")
        ev["event_id"] = [f"E{d:03d}{i:08d}" for i in range(n)]
        out[day.isoformat()] = ev
    return out


RAW_SCHEMA = (
    "event_id string, customer_id string, full_name string, email string, phone string, "
    "national_id string, card_number string, street_address string, postal_code string, "
    "region string, birthdate date, signup_date date, note string, amount double, "
    "event_time timestamp, dt string"
)


def write_raw(
    spark: Any, events: dict[str, pd.DataFrame], scratch: Path, table: str = RAW_TABLE
) -> None:
    """(Re)create the raw catalog table, one partition per day.

    The frames are written with pyarrow to ``scratch`` and read back by Spark:
    ``createDataFrame`` would push every row through the driver's heap.

    Args:
        spark: The Spark session whose catalog receives the table.
        events: ISO date -> that day's events, as returned by :func:`raw_events`.
        scratch: A scratch directory for the Parquet files; it is deleted before and after.
        table: The ``database.table`` name to (re)create, partitioned by ``dt``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    names = [c.split()[0] for c in RAW_SCHEMA.split(", ") if not c.startswith("dt ")]
    shutil.rmtree(scratch, ignore_errors=True)
    for day, pdf in events.items():
        target = scratch / f"dt={day}"
        target.mkdir(parents=True)
        pq.write_table(
            pa.Table.from_pandas(pdf[names], preserve_index=False),
            target / "part-0.parquet",
            coerce_timestamps="us",  # Spark cannot read nanosecond Parquet timestamps
        )
    db = table.split(".")[0]
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{db}`")
    spark.sql(f"DROP TABLE IF EXISTS {table}")
    df = spark.read.option("basePath", str(scratch)).parquet(str(scratch))
    typed = [
        F.col(c.split()[0]).cast(c.split()[1]).alias(c.split()[0]) for c in RAW_SCHEMA.split(", ")
    ]
    df.select(*typed).write.partitionBy("dt").format("parquet").saveAsTable(table)
    shutil.rmtree(scratch, ignore_errors=True)


def demo_key(out: Path) -> None:
    """Use $ANONYMIZE_DEMO_KEY, else a random key kept in ``<out>/demo.key`` (mode 0600).

    Args:
        out: The demo's output directory; the key file is created there when the variable
            is unset and no key file exists yet, and then exported as $ANONYMIZE_DEMO_KEY.
    """
    if os.environ.get(KEY_ENV):
        return
    key_file = out / "demo.key"
    if not key_file.exists():  # created owner-only: the key is never readable by others
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    os.environ[KEY_ENV] = key_file.read_text().strip()


def run_demo(rows: int, days: int, out: Path, console: Console) -> dict[str, Any]:
    """Generate the raw warehouse under ``out`` and run the whole pipeline on it.

    Per daily partition: desensitize (free-text PII scrubbed), k-anonymize (with the
    two days before in the window), both quality gates, the atomic publish, and the
    DP release charged to the ledger; then the report pages.

    Args:
        rows: The total number of raw events to generate.
        days: How many daily partitions to generate and anonymize.
        out: The warehouse directory (created if missing; also holds ``demo.key``).
        console: Where progress and the summary table are printed.

    Returns:
        A JSON-serialisable summary: warehouse, spec, raw and published table names and
        locations, the partitions, input/output rows and run id per partition, quality
        check and warning counts per partition, the data docs location (or None), the
        report page, the smallest class size (``k_achieved``, over all partitions), and
        the DP budget (``budget``: unit, limit, spent over the partitions, and the
        remaining budget of the fullest window: ``remaining``).
    """
    from pipelines.dp.ledger import Ledger, ledger_url, policy_unit
    from pipelines.dp.run import release_partition
    from pipelines.errors import BudgetExceededError
    from pipelines.report import build as build_report
    from pipelines.runner import run_partition
    from pipelines.session import get_session, session_warehouse
    from pipelines.spec import load_spec
    from pipelines.storage.base import open_table

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    demo_key(out)
    spec = load_spec(DEMO_SPEC)
    with console.status("starting Spark"):
        spark = get_session(warehouse=str(out), app_name="anonymize-demo")
        console.print(f"generating {rows} raw rows over {days} days (seed {SEED})")
        events = raw_events(rows, days)
        write_raw(spark, events, out / "_generate")
    results, releases = [], {}
    for day in events:
        with console.status(f"anonymizing {day}") as status:
            results.append(
                run_partition(spec, day, progress=lambda m, d=day: status.update(f"{d}: {m}"))
            )
            status.update(f"{day}: DP release")
            try:
                releases[day] = [f"{x.release}: {x.status}" for x in release_partition(spec, day)]
            except BudgetExceededError:  # more days than the policy allows: shown, not fatal
                releases[day] = ["refused: budget exceeded"]
    wh = session_warehouse(spark)  # `out`, unless a running session was reused (tests)
    raw_loc = open_table(spec.source, spec.partition_column, wh, spark).control_root
    pub_loc = open_table(spec.sink, spec.partition_column, wh, spark).control_root
    policy = spec.dp_budget
    assert policy is not None  # the demo spec has releases
    ledger = Ledger(ledger_url(policy, wh))
    unit, limit = policy_unit(policy), policy.total
    charged = ledger.spent(spec.name, policy)
    spent = sum(charged.get(day, 0.0) for day in events)  # this run's (a reused --out has more)
    remaining = min((ledger.remaining(spec.name, policy, day).remaining for day in events),
                    default=limit)  # fmt: skip
    report = build_report(spec, wh, wh)
    k_achieved = min((r.record.k_anonymity["smallest_class"] for r in results
                      if r.record.k_anonymity and r.output_rows), default=None)  # fmt: skip
    table = RichTable(title=f"demo pipeline '{spec.name}'")
    for col in ("partition", "rows in", "rows out", "smallest class", "gates", "DP release",
                "run id"):  # fmt: skip
        table.add_column(col)
    for r in results:
        ka = r.record.k_anonymity or {}
        rel = ", ".join(releases[r.partition])
        table.add_row(r.partition, str(r.input_rows), str(r.output_rows),
                      str(ka.get("smallest_class", "")), _gates_cell(r.record.quality), rel,
                      r.run_id)  # fmt: skip
    console.print(table)
    sym = policy.symbol
    console.print(f"raw table:       {spec.source.table}  ({raw_loc})")
    console.print(f"published table: {spec.sink.table}  ({pub_loc})")
    for name, rel in spec.releases.items():
        console.print(f"DP release:      {rel.sink.table or rel.sink.path}  ({name})")
    console.print(f"k-anonymity:     k = {spec.k_anonymity.k if spec.k_anonymity else '-'} "
                  f"asked, smallest class {k_achieved}")  # fmt: skip
    console.print(f"DP budget:       {sym} {spent:g} spent over {days} partitions; "
                  f"{sym} {remaining:g} of {limit:g} left in the fullest {policy.window}-day "
                  "window")  # fmt: skip
    console.print(f"warehouse:       {wh}  (key in {KEY_ENV} or {out / 'demo.key'})")
    docs = results[-1].record.quality.data_docs if results else None
    console.print(f"data docs:       {docs}")
    console.print(f"report:          {report}")
    return {
        "warehouse": str(wh),
        "spec": str(DEMO_SPEC),
        "raw_table": spec.source.table,
        "raw_location": str(raw_loc),
        "published_table": spec.sink.table,
        "published_location": str(pub_loc),
        "release_tables": {n: r.sink.table for n, r in spec.releases.items()},
        "partitions": [r.partition for r in results],
        "rows": {r.partition: {"input": r.input_rows, "output": r.output_rows} for r in results},
        "runs": {r.partition: r.run_id for r in results},
        "releases": releases,
        "quality": {
            r.partition: {
                "checks": len(r.record.quality.input.checks) + len(r.record.quality.output.checks),
                "warnings": r.record.quality.warnings,
            }
            for r in results
        },
        "data_docs": docs,
        "report": str(report),
        "k_asked": spec.k_anonymity.k if spec.k_anonymity else None,
        "k_achieved": k_achieved,
        "budget": {"unit": unit, "limit": limit, "window_days": policy.window, "spent": spent,
                   "remaining": remaining},  # fmt: skip
    }


def _gates_cell(quality: Quality) -> str:
    checks = [*quality.input.checks, *quality.output.checks]
    passed = sum(c.success for c in checks)
    warn = f", {len(quality.warnings)} warning(s)" if quality.warnings else ""
    return f"{passed}/{len(checks)} passed{warn}"
