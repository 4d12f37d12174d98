from __future__ import annotations

import csv
from pathlib import Path

import pytest

import healthscore
from healthscore.ingest import ingest_file, parse_mapping
from healthscore.store import Store

TELCO_FILE = (
    Path(healthscore.__file__).parent / "demo/data/telco/Telco-Customer-Churn.csv"
)


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "store.duckdb") as opened:
        yield opened


def telco_counts() -> tuple[int, int, int]:
    """Count rows, blank TotalCharges and churners with the csv module alone."""
    with TELCO_FILE.open(newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    blank_total = sum(1 for r in records if not r["TotalCharges"].strip())
    churned = sum(1 for r in records if r["Churn"] == "Yes")
    return len(records), blank_total, churned


def test_ingest_telco_accounts(store):
    mapping = parse_mapping(
        {
            "columns": {
                "account_id": "customerID",
                "churned": {"source": "Churn", "type": "boolean"},
                "total_charges": {"source": "TotalCharges", "type": "number"},
            }
        }
    )
    result = ingest_file(store, "accounts", TELCO_FILE, mapping)

    # The file's SOURCE.txt and an independent count agree: 7,043 customers,
    # 11 blank TotalCharges (all with tenure 0) and 1,869 churned.
    assert telco_counts() == (7043, 11, 1869)
    assert (result.rows_read, result.accepted, result.rejected) == (7043, 7043, 0)
    accounts = store.table("accounts")
    assert accounts.count().execute() == 7043
    assert accounts.filter(accounts.churned).count().execute() == 1869

    attributes = store.table("account_attributes")
    totals = attributes.filter(attributes.name == "total_charges")
    assert totals.count().execute() == 7043 - 11
    assert set(totals.kind.to_pandas()) == {"number"}
    with_total = set(totals.account_id.to_pandas())
    assert 7043 - len(with_total) == 11
    pairs = attributes.select("name", "kind").distinct().to_pandas()
    kinds = dict(zip(pairs["name"], pairs["kind"], strict=True))
    assert kinds["senior_citizen"] == "number"
    assert kinds["partner"] == "boolean"
    assert kinds["payment_method"] == "text"
    assert kinds["tenure"] == "number"
    assert "customer_id" not in kinds
    assert "churn" not in kinds


def test_ingest_telco_reload_is_duplicate(store):
    mapping = parse_mapping({"columns": {"account_id": "customerID"}})
    ingest_file(store, "accounts", TELCO_FILE, mapping)
    attribute_count = store.table("account_attributes").count().execute()
    result = ingest_file(store, "accounts", TELCO_FILE, mapping)
    assert (result.accepted, result.duplicates, result.updated) == (0, 7043, 0)
    assert store.table("account_attributes").count().execute() == attribute_count


@pytest.mark.slow
def test_ingest_million_events_csv(store, tmp_path):
    rows = 1_000_000
    path = tmp_path / "events.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("event_id,account_id,user_id,event_name,occurred_at,value\n")
        for i in range(rows):
            month, day, hour = 1 + i % 12, 1 + i % 28, i % 24
            handle.write(
                f"e{i},acct{i % 5000},u{i % 40000},feature_{i % 7},"
                f"2024-{month:02d}-{day:02d}T{hour:02d}:00:00Z,{i % 100}\n"
            )
    calls = []
    result = ingest_file(store, "events", path, progress=lambda d, t: calls.append(d))

    assert (result.rows_read, result.accepted, result.rejected) == (rows, rows, 0)
    assert store.table("events").count().execute() == rows
    assert calls[-1] == rows
    assert len(calls) == 12
