"""``anonymize spec suggest`` on a raw partition: a draft that validates, runs, and holds no value."""

from __future__ import annotations

import datetime as dt

import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.spec import spec_from_dict

runner = CliRunner()

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia"]


def _rows(n: int = 60) -> list[tuple]:
    rows = []
    for i in range(n):
        name = f"{FIRST[i % 6]} {LAST[i // 6 % 6]}"
        rows.append((
            1000 + i,
            f"user{i}.{LAST[i % 6].lower()}@mail.example.com",
            name,
            dt.date(1950 + i % 50, 1 + i % 12, 1 + i % 28),
            f"{75001 + i % 20}",
            f"Customer {name} called from +33 6 12 34 56 {i % 100:02d} about a late parcel.",
            float(i),
            "2026-11-01",
        ))  # fmt: skip
    return rows


def test_suggest_drafts_a_spec_that_validates_runs_and_holds_no_value(spark, tmp_path, monkeypatch):
    schema = ("customer_id bigint, c17 string, `First Name` string, birthdate date, zip string, "
              "remarks string, amount double, dt string")  # fmt: skip
    rows = _rows()
    raw = tmp_path / "raw_customers"
    spark.createDataFrame(rows, schema).write.partitionBy("dt").parquet(str(raw))

    res = runner.invoke(app, ["spec", "suggest", "--source", str(raw), "--format", "parquet",
                              "--partition", "2026-11-01"])  # fmt: skip
    assert res.exit_code == 0, res.output
    text = res.stdout
    spec = spec_from_dict(yaml.safe_load(text))
    kinds = {k: c.kind for k, c in spec.columns.items()}
    assert kinds == {"customer_id": "hash", "c17": "hash", "First_Name": "surrogate",
                     "birthdate": "generalize", "zip": "generalize", "remarks": "scrub",
                     "amount": "keep"}  # fmt: skip
    assert spec.privacy_unit == "customer_id" and spec.undeclared == "fail"
    assert "100% EMAIL" in text and "free text" in text
    for row in rows:  # counts and shares only: no value of the partition in the draft
        for value in row[1:6]:
            assert str(value) not in text

    draft = tmp_path / "customers.yaml"
    draft.write_text(text)
    monkeypatch.setenv("ANONYMIZE_KEY", "k" * 32)
    res = runner.invoke(app, ["run", str(draft), "--partition", "2026-11-01"])
    assert res.exit_code == 0, res.output
    published = spark.read.parquet(str(raw) + "_anonymized/dt=2026-11-01").collect()
    assert len(published) == len(rows)
    cells = {str(v) for r in published for v in r}
    assert not cells & {str(v) for row in rows for v in row[1:3]}  # emails and names replaced
    assert all("+33 6" not in r["remarks"] for r in published)


def test_suggest_on_a_csv_partition_declares_types_and_hides_internal_columns(spark, tmp_path):
    """CSV columns are all strings: a birth date is declared ``type: date`` (then an age),
    and the reader's malformed-row flag is not a column of the draft."""
    rows = _rows(30)
    schema = ("customer_id bigint, c17 string, `First Name` string, birthdate date, zip string, "
              "remarks string, amount double, dt string")  # fmt: skip
    raw = tmp_path / "raw_csv"
    spark.createDataFrame(rows, schema).write.partitionBy("dt").option("header", "true").csv(str(raw))
    res = runner.invoke(app, ["spec", "suggest", "--source", str(raw), "--format", "csv",
                              "--partition", "2026-11-01", "--name", "csv_customers"])  # fmt: skip
    assert res.exit_code == 0, res.output
    spec = spec_from_dict(yaml.safe_load(res.stdout))
    assert "__anon_malformed" not in res.stdout and spec.source.format == "csv"
    birth = spec.columns["birthdate"]
    assert (birth.kind, birth.type, birth.rename) == ("generalize", "date", "birthdate_age")


def test_suggest_errors_are_one_line_naming_the_option(spark, tmp_path):
    for args, option in [
        (["--source", "raw-customers"], "--source"),
        (["--source", "raw.t", "--partition-column", "bad-col"], "--partition-column"),
        (["--source", "raw.t", "--format", "json"], "--format"),
    ]:
        res = runner.invoke(app, ["spec", "suggest", *args, "--partition", "2026-11-01"])
        assert res.exit_code == 3 and option in res.output and res.output.count("\n") == 1, res.output
