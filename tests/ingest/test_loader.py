from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from healthscore.exceptions import ConfigError, InputDataError, MappingError
from healthscore.ingest import ingest_file, load_mapping, parse_mapping
from healthscore.store import TABLES, Store

UTC = dt.UTC


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "store.duckdb") as opened:
        yield opened


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def quarantine(store: Store) -> list[tuple[int, str]]:
    frame = store.table("quarantine").to_pandas()
    return sorted(zip(frame["row_number"], frame["reason"], strict=True))


def quarantine_raw(store: Store) -> dict[int, dict]:
    frame = store.table("quarantine").to_pandas()
    return {
        number: json.loads(raw)
        for number, raw in zip(frame["row_number"], frame["raw"], strict=True)
    }


def rows(store: Store, table: str, columns: list[str]) -> list[tuple]:
    frame = store.table(table).select(columns).to_pandas()
    values = frame.astype(object).where(frame.notna(), None)
    return sorted(map(tuple, values.itertuples(index=False)), key=repr)


def snapshot(store: Store) -> dict[str, list[tuple]]:
    """Return every row of every table, for comparing the store before and after."""
    return {
        name: rows(store, name, list(schema.names)) for name, schema in TABLES.items()
    }


def counts_add_up(result) -> bool:
    return result.rows_read == result.accepted + result.rejected + result.duplicates


# Accounts and attributes


def test_ingest_accounts_typed_columns(store, tmp_path):
    path = write(
        tmp_path,
        "accounts.csv",
        "AccountId,Plan,MonthlyFee,Seats,Signup,Churn,Region,Tenure,Active\n"
        'A1,Pro,"1,000.50",12,2024-01-31 10:00,Yes,EU,3,yes\n'
        "A2,Basic,$20,,2024-07-01T10:00:00Z,no,US,,No\n",
    )
    mapping = parse_mapping(
        {
            "timezone": "Europe/Berlin",
            "columns": {
                "account_id": "AccountId",
                "arr": {"source": "MonthlyFee", "multiply": 12},
                "created_at": "Signup",
                "churned": "Churn",
            },
        }
    )
    result = ingest_file(store, "accounts", path, mapping)

    assert (result.rows_read, result.accepted, result.rejected) == (2, 2, 0)
    assert rows(store, "accounts", ["account_id", "plan", "arr", "seats"]) == [
        ("A1", "Pro", 12006.0, 12),
        ("A2", "Basic", 240.0, None),
    ]
    created = rows(store, "accounts", ["account_id", "created_at", "churned"])
    # Signup has no offset, so A1's 10:00 is Berlin time (UTC+1 in January).
    assert created == [
        ("A1", pd.Timestamp("2024-01-31T09:00", tz="UTC"), True),
        ("A2", pd.Timestamp("2024-07-01T10:00", tz="UTC"), False),
    ]
    attributes = rows(
        store,
        "account_attributes",
        ["account_id", "name", "kind", "number_value", "text_value"],
    )
    assert attributes == [
        ("A1", "active", "boolean", 1.0, "true"),
        ("A1", "region", "text", None, "EU"),
        ("A1", "tenure", "number", 3.0, "3"),
        ("A2", "active", "boolean", 0.0, "false"),
        ("A2", "region", "text", None, "US"),
    ]


def test_ingest_accounts_attribute_selection(store, tmp_path):
    path = write(tmp_path, "a.csv", "account_id,Region,Tier,Notes\nA1,EU,2,x\n")
    mapping = parse_mapping(
        {
            "columns": {"tier_label": {"source": "Tier", "type": "text"}},
            "attributes": ["Region"],
        }
    )
    ingest_file(store, "accounts", path, mapping)
    assert rows(store, "account_attributes", ["name", "kind", "text_value"]) == [
        ("region", "text", "EU"),
        ("tier_label", "text", "2"),
    ]


def test_ingest_accounts_attributes_none(store, tmp_path):
    path = write(tmp_path, "a.csv", "account_id,Region\nA1,EU\n")
    ingest_file(store, "accounts", path, parse_mapping({"attributes": "none"}))
    assert store.table("account_attributes").count().execute() == 0


def test_ingest_attribute_explicit_type_rejects(store, tmp_path):
    path = write(tmp_path, "a.csv", "account_id,Score\nA1,7\nA2,high\n")
    mapping = parse_mapping(
        {"columns": {"score": {"source": "Score", "type": "number"}}}
    )
    result = ingest_file(store, "accounts", path, mapping)
    assert result.reasons == {"invalid_value": 1}
    assert quarantine(store) == [
        (
            2,
            "column 'Score' (mapped to score): 'high' is not valid; expected a number "
            "such as 1234.5, 1,234.5 or (12)",
        )
    ]


# Malformed files


def test_ingest_malformed_csv_rows(store, tmp_path):
    path = write(
        tmp_path,
        "accounts.csv",
        "account_id,name,arr\n"
        "A1,Acme,100\n"
        'A2,"Beta, Inc",200,extra\n'
        "A3,Gamma\n"
        'A4,"Delta,300\n'
        "A5,Epsilon,500\n"
        'A6,"Multi\nline",600\n',
    )
    result = ingest_file(store, "accounts", path)

    assert (result.rows_read, result.accepted, result.rejected) == (6, 3, 3)
    assert result.reasons == {"malformed_row": 3}
    assert rows(store, "accounts", ["account_id", "name", "arr"]) == [
        ("A1", "Acme", 100.0),
        ("A5", "Epsilon", 500.0),
        ("A6", "Multi\nline", 600.0),
    ]
    assert quarantine(store) == [
        (
            2,
            "the row has 4 fields; expected 3 as in the header. Check for an unquoted "
            "delimiter in a value or a missing field",
        ),
        (
            3,
            "the row has 2 fields; expected 3 as in the header. Check for an unquoted "
            "delimiter in a value or a missing field",
        ),
        (
            4,
            'the row has an unbalanced quote ("), so its last value runs past the end '
            "of the line; close the quote or double a quote inside a quoted value",
        ),
    ]
    assert quarantine_raw(store) == {
        2: {
            "account_id": "A2",
            "name": "Beta, Inc",
            "arr": "200",
            "_extra_fields": ["extra"],
        },
        3: {"account_id": "A3", "name": "Gamma"},
        4: {"_line": 'A4,"Delta,300'},
    }


def test_ingest_unbalanced_quote_at_end(store, tmp_path):
    path = write(tmp_path, "a.csv", 'account_id;name\nA1;x\nA2;"unterminated\n')
    result = ingest_file(store, "accounts", path)
    assert (result.accepted, result.rejected) == (1, 1)
    assert quarantine_raw(store) == {2: {"_line": 'A2;"unterminated'}}


def test_ingest_row_numbers_skip_blank_lines(store, tmp_path):
    path = write(tmp_path, "a.csv", "account_id,seats\nA1,1\n\nA2,x\n")
    ingest_file(store, "accounts", path)
    # The blank line is line 3, so A2 on line 4 is row 3.
    assert quarantine(store) == [
        (
            3,
            "column 'seats': 'x' is not valid; expected a whole number such as 12",
        )
    ]


def test_ingest_missing_required_column(store, tmp_path):
    path = write(tmp_path, "a.csv", "customerID,name\nC1,Acme\n")
    before = snapshot(store)
    message = (
        "required column 'account_id' is missing; the file has columns "
        r"\['customerID', 'name'\]. Add a mapping line 'account_id: <your column>' "
        "under 'columns:'."
    )
    with pytest.raises(InputDataError, match=message) as info:
        ingest_file(store, "accounts", path)
    assert info.value.path == path
    assert snapshot(store) == before


def test_ingest_missing_required_column_suggests_close_name(store, tmp_path):
    path = write(
        tmp_path, "e.csv", "account_id,event,occured_at\nA1,login,2024-01-01\n"
    )
    mapping = parse_mapping({"columns": {"event_name": "event"}})
    with pytest.raises(InputDataError, match="'occurred_at: occured_at'"):
        ingest_file(store, "events", path, mapping)


def test_ingest_mapping_source_not_in_file(store, tmp_path):
    path = write(tmp_path, "a.csv", "customerID,name\nC1,Acme\n")
    mapping = parse_mapping({"columns": {"account_id": "customerId"}})
    with pytest.raises(InputDataError, match=r"did you mean 'customerID'\?"):
        ingest_file(store, "accounts", path, mapping)


def test_ingest_unknown_target_for_events(store, tmp_path):
    path = write(
        tmp_path, "e.csv", "account_id,event_name,occurred_at\nA1,x,2024-01-01\n"
    )
    mapping = parse_mapping({"columns": {"colour": "event_name"}})
    with pytest.raises(MappingError, match="unknown target column 'colour' for events"):
        ingest_file(store, "events", path, mapping)


def test_ingest_invalid_constant(store, tmp_path):
    path = write(tmp_path, "e.csv", "account_id,event_name\nA1,x\n")
    mapping = parse_mapping({"columns": {"occurred_at": {"value": "soon"}}})
    with pytest.raises(
        MappingError, match="the constant 'soon' is not a valid timestamp"
    ):
        ingest_file(store, "events", path, mapping)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="zero-bytes"),
        pytest.param(b"account_id,name\n", id="header-only"),
        pytest.param(b"account_id,name\n\n  \n", id="blank-lines"),
    ],
)
def test_ingest_empty_file(store, tmp_path, content):
    path = write(tmp_path, "a.csv", content)
    before = snapshot(store)
    with pytest.raises(InputDataError, match="the file has no rows"):
        ingest_file(store, "accounts", path)
    assert snapshot(store) == before


def test_ingest_file_not_found(store, tmp_path):
    with pytest.raises(InputDataError, match="file not found"):
        ingest_file(store, "accounts", tmp_path / "missing.csv")


def test_ingest_unknown_extension(store, tmp_path):
    path = write(tmp_path, "a.xlsx", b"PK")
    with pytest.raises(InputDataError, match="cannot tell the format"):
        ingest_file(store, "accounts", path)


def test_ingest_unknown_entity(store, tmp_path):
    path = write(tmp_path, "a.csv", "account_id\nA1\n")
    with pytest.raises(ConfigError, match="unknown entity 'customers'"):
        ingest_file(store, "customers", path)


# Encodings


LATIN1_FILE = "account_id,name\nA1,Jos\xe9\nA2,Ana\n".encode("latin-1")


def test_ingest_non_utf8_row_quarantined(store, tmp_path):
    path = write(tmp_path, "a.csv", LATIN1_FILE)
    result = ingest_file(store, "accounts", path)

    assert (result.accepted, result.rejected) == (1, 1)
    assert result.reasons == {"encoding": 1}
    assert rows(store, "accounts", ["account_id", "name"]) == [("A2", "Ana")]
    assert quarantine(store) == [
        (
            1,
            "the row contains bytes that are not valid utf-8; if the file is a "
            "Windows or older export, set 'csv: {encoding: latin-1}' (or cp1252) in "
            "the mapping",
        )
    ]
    assert quarantine_raw(store) == {1: {"account_id": "A1", "name": "Jos\\xe9"}}


def test_ingest_latin1_with_encoding_option(store, tmp_path):
    path = write(tmp_path, "a.csv", LATIN1_FILE)
    mapping = parse_mapping({"csv": {"encoding": "latin-1"}})
    result = ingest_file(store, "accounts", path, mapping)
    assert result.rejected == 0
    assert rows(store, "accounts", ["account_id", "name"]) == [
        ("A1", "José"),
        ("A2", "Ana"),
    ]


def test_ingest_non_utf8_header(store, tmp_path):
    path = write(tmp_path, "a.csv", "account_id,r\xe9gion\nA1,EU\n".encode("latin-1"))
    with pytest.raises(InputDataError, match="the header line is not valid utf-8"):
        ingest_file(store, "accounts", path)


def test_ingest_utf8_byte_order_mark(store, tmp_path):
    path = write(tmp_path, "a.csv", b"\xef\xbb\xbfaccount_id,name\nA1,Acme\n")
    ingest_file(store, "accounts", path)
    assert rows(store, "accounts", ["account_id", "name"]) == [("A1", "Acme")]


# Delimiters and numbers


def test_ingest_semicolon_decimal_comma(store, tmp_path):
    path = write(
        tmp_path,
        "accounts.csv",
        "account_id;arr;balance\nA1;1.234,50;3\nA2;12,5;(12,5)\nA3;1.5;\n",
    )
    mapping = parse_mapping({"csv": {"decimal": ","}})
    result = ingest_file(store, "accounts", path, mapping)
    assert rows(store, "accounts", ["account_id", "arr"]) == [
        ("A1", 1234.5),
        ("A2", 12.5),
    ]
    # An attribute may be negative; (12,5) is an accounting negative.
    assert rows(store, "account_attributes", ["account_id", "number_value"]) == [
        ("A1", 3.0),
        ("A2", -12.5),
    ]
    assert result.rejected == 1
    assert quarantine(store) == [
        (
            3,
            "column 'arr': '1.5' is not valid; expected a number with decimal comma "
            "such as 1234,5 or 1.234,5",
        )
    ]


def test_ingest_whitespace_delimited(store, tmp_path):
    path = write(
        tmp_path,
        "purchases.txt",
        " customer_id  date number_of_cds  dollar_value\n"
        " 00001 19970101  1   11.77\n"
        " 00002 19970112  1   12.00\n"
        " 00002 19970112  1   12.00\n"
        " 00003 19970102  2\n",
    )
    mapping = parse_mapping(
        {
            "csv": {"delimiter": "whitespace"},
            "columns": {
                "account_id": "customer_id",
                "event_name": {"value": "purchase"},
                "occurred_at": {"source": "date", "formats": ["%Y%m%d"]},
                "value": "dollar_value",
            },
        }
    )
    result = ingest_file(store, "events", path, mapping)
    # The two identical purchases of 00002 are both kept.
    assert (result.accepted, result.rejected, result.duplicates) == (3, 1, 0)
    assert rows(
        store, "events", ["account_id", "event_name", "occurred_at", "value"]
    ) == [
        ("00001", "purchase", pd.Timestamp("1997-01-01", tz="UTC"), 11.77),
        ("00002", "purchase", pd.Timestamp("1997-01-12", tz="UTC"), 12.0),
        ("00002", "purchase", pd.Timestamp("1997-01-12", tz="UTC"), 12.0),
    ]
    assert quarantine(store)[0][0] == 4


def test_ingest_tsv_gzipped(store, tmp_path):
    content = "account_id\tname\nA1\tAcme, Inc\n"
    path = write(tmp_path, "a.tsv.gz", gzip.compress(content.encode()))
    ingest_file(store, "accounts", path)
    assert rows(store, "accounts", ["account_id", "name"]) == [("A1", "Acme, Inc")]


# Surveys, tickets and users


def test_ingest_surveys_validation(store, tmp_path):
    path = write(
        tmp_path,
        "surveys.csv",
        "account_id,survey,score,responded_at,comment\n"
        "A1,NPS,9,2024-01-31T10:00:00Z,great\n"
        "A2,nps,11,2024-02-01,\n"
        "A3,csat,0,2024-02-01,\n"
        "A4,promoter,5,2024-02-01,\n"
        ",csat,4,2024-02-01,\n"
        "A6,csat,four,2024-02-01,\n"
        "A7,csat,4,31/01/2024,\n"
        "A8,CSAT,5,20240201,ok\n",
    )
    result = ingest_file(store, "surveys", path)

    assert (result.rows_read, result.accepted, result.rejected) == (8, 2, 6)
    assert result.reasons == {"out_of_range": 2, "invalid_value": 3, "missing_value": 1}
    assert rows(
        store, "survey_responses", ["account_id", "survey", "score", "comment"]
    ) == [
        ("A1", "nps", 9.0, "great"),
        ("A8", "csat", 5.0, "ok"),
    ]
    assert quarantine(store) == [
        (2, "nps score 11 is out of range; expected a whole number from 0 to 10"),
        (3, "csat score 0 is out of range; expected a whole number from 1 to 5"),
        (4, "survey 'promoter' is not a known survey; expected 'nps' or 'csat'"),
        (5, "column 'account_id' is blank; account_id is required on every row"),
        (
            6,
            "column 'score': 'four' is not valid; expected a number such as 1234.5, "
            "1,234.5 or (12)",
        ),
        (
            7,
            "column 'responded_at': '31/01/2024' is not valid; expected an unambiguous "
            "date; day and month order is unknown, so set formats in the mapping, e.g. "
            "formats: ['%d/%m/%Y'] or ['%m/%d/%Y']",
        ),
    ]


def test_ingest_row_with_several_problems(store, tmp_path):
    path = write(
        tmp_path,
        "surveys.csv",
        "account_id,survey,score,responded_at\n,nps,ten,yesterday\n",
    )
    result = ingest_file(store, "surveys", path)
    # The category is the first problem's; the reason lists all of them.
    assert result.reasons == {"missing_value": 1}
    assert quarantine(store) == [
        (
            1,
            "column 'account_id' is blank; account_id is required on every row; "
            "column 'score': 'ten' is not valid; expected a number such as 1234.5, "
            "1,234.5 or (12); column 'responded_at': 'yesterday' is not valid; "
            "expected an ISO 8601 time such as 2024-01-31, 20240131 or "
            "2024-01-31T09:30Z",
        )
    ]


def test_ingest_tickets_resolved_before_opened(store, tmp_path):
    path = write(
        tmp_path,
        "tickets.csv",
        "ticket_id,account_id,priority,opened_at,resolved_at\n"
        "T1,A1,high,2024-01-02T10:00Z,2024-01-02T12:00Z\n"
        "T2,A1,low,2024-01-03T10:00Z,2024-01-03T09:00Z\n"
        "T3,A2,low,2024-01-04T10:00Z,\n",
    )
    result = ingest_file(store, "tickets", path)
    assert rows(store, "tickets", ["ticket_key", "ticket_id", "resolved_at"]) == [
        ("T1", "T1", pd.Timestamp("2024-01-02T12:00", tz="UTC")),
        ("T3", "T3", None),
    ]
    assert result.reasons == {"invalid_value": 1}
    assert quarantine(store) == [
        (
            2,
            "resolved_at 2024-01-03T09:00:00+00:00 is before opened_at "
            "2024-01-03T10:00:00+00:00; expected a resolution time on or after the "
            "opening time",
        )
    ]


def test_ingest_users_update_changed(store, tmp_path):
    first = write(
        tmp_path, "u1.csv", "user_id,account_id,email\nU1,A1,a@x.io\nU2,A1,b@x.io\n"
    )
    second = write(
        tmp_path, "u2.csv", "user_id,account_id,email\nU1,A1,a@x.io\nU2,A2,b@x.io\n"
    )
    ingest_file(store, "users", first)
    result = ingest_file(store, "users", second)
    assert (result.accepted, result.updated, result.duplicates) == (1, 1, 1)
    assert rows(store, "users", ["user_id", "account_id"]) == [
        ("U1", "A1"),
        ("U2", "A2"),
    ]


# Duplicates and idempotence


def test_ingest_duplicate_ids_in_file(store, tmp_path):
    path = write(
        tmp_path,
        "accounts.csv",
        "account_id,name,region\nA1,Acme,EU\nA2,Beta,US\nA1,Acme,EU\nA2,Beta,EU\n",
    )
    result = ingest_file(store, "accounts", path)

    assert (result.accepted, result.duplicates, result.rejected) == (2, 1, 1)
    assert result.reasons == {"duplicate_conflict": 1}
    assert quarantine(store) == [
        (
            4,
            "duplicate account_id 'A2' conflicts with row 2, which has other values; "
            "keep one of the rows",
        )
    ]
    assert rows(store, "account_attributes", ["account_id", "text_value"]) == [
        ("A1", "EU"),
        ("A2", "US"),
    ]


def test_ingest_accounts_across_loads(store, tmp_path):
    first = write(
        tmp_path, "a1.csv", "account_id,name,region\nA1,Acme,EU\nA2,Beta,US\n"
    )
    second = write(
        tmp_path,
        "a2.csv",
        "account_id,name,region\nA1,Acme,EU\nA2,Beta,APAC\nA3,Gamma,EU\n",
    )
    earlier = ingest_file(store, "accounts", first)
    result = ingest_file(store, "accounts", second)

    assert (result.rows_read, result.accepted, result.updated) == (3, 2, 1)
    assert result.duplicates == 1
    assert rows(store, "accounts", ["account_id", "name", "load_id"]) == [
        ("A1", "Acme", earlier.load_id),
        ("A2", "Beta", result.load_id),
        ("A3", "Gamma", result.load_id),
    ]
    # A2 changed only in an attribute; its attributes are replaced, not added.
    assert rows(
        store, "account_attributes", ["account_id", "text_value", "load_id"]
    ) == [
        ("A1", "EU", earlier.load_id),
        ("A2", "APAC", result.load_id),
        ("A3", "EU", result.load_id),
    ]


def test_ingest_events_reload_adds_nothing(store, tmp_path):
    path = write(
        tmp_path,
        "events.csv",
        "account_id,event_name,occurred_at,value\n"
        "A1,login,2024-01-01T10:00Z,\n"
        "A1,login,2024-01-01T10:00Z,\n"
        "A2,export,2024-01-01T11:00Z,3\n"
        "A2,export,yesterday,3\n",
    )
    first = ingest_file(store, "events", path)
    after_first = snapshot(store)
    second = ingest_file(store, "events", path)

    # The two identical logins are genuine repeats: both are stored, once.
    assert (first.accepted, first.duplicates, first.rejected) == (3, 0, 1)
    assert (second.accepted, second.duplicates, second.rejected) == (0, 3, 1)
    assert len({row[0] for row in after_first["events"]}) == 3
    # The second load writes nothing: no rows, no quarantine rows, no loads row.
    assert snapshot(store) == after_first
    assert len(after_first["loads"]) == 1
    assert len(after_first["quarantine"]) == 1
    assert second.load_id == first.load_id
    assert second.reasons == first.reasons


def test_ingest_events_source_id_duplicates(store, tmp_path):
    path = write(
        tmp_path,
        "events.csv",
        "event_id,account_id,event_name,occurred_at\n"
        "E1,A1,login,2024-01-01T10:00Z\n"
        "E1,A1,login,2024-01-01T10:00:00+00:00\n"
        "E2,A1,login,2024-01-02T10:00Z\n"
        "E2,A1,logout,2024-01-02T10:00Z\n"
        ",A1,login,2024-01-03T10:00Z\n",
    )
    result = ingest_file(store, "events", path)

    # Row 2 writes row 1's time differently, but the parsed values are the same.
    assert (result.accepted, result.duplicates, result.rejected) == (3, 1, 1)
    assert quarantine(store) == [
        (
            4,
            "duplicate event_id 'E2' conflicts with row 3, which has other values; "
            "keep one of the rows",
        )
    ]
    keys = sorted((key for (key,) in rows(store, "events", ["event_key"])), key=len)
    assert keys[:2] == ["E1", "E2"]
    # The row without an event_id is keyed by a SHA-256 hex digest of its values.
    assert len(keys[2]) == 64
    assert set(keys[2]) <= set("0123456789abcdef")


def test_ingest_all_rows_rejected(store, tmp_path):
    path = write(tmp_path, "a.csv", "account_id,seats\nA1,many\nA2,few\n")
    result = ingest_file(store, "accounts", path)
    assert (result.accepted, result.rejected) == (0, 2)
    assert [number for number, _ in quarantine(store)] == [1, 2]
    loads = rows(store, "loads", ["load_id", "rows_read", "accepted", "rejected"])
    assert loads == [(result.load_id, 2, 0, 2)]


# JSON and Parquet


def test_ingest_json_lines(store, tmp_path):
    lines = [
        json.dumps({"account_id": "A1", "event_name": "login", "ts": 1706695200}),
        "",
        '{"account_id": "A2", "event_name": "click", "ts": "2024-01-31T10:00:00Z"',
        json.dumps(["A3", "login"]),
        json.dumps(
            {
                "account_id": "A4",
                "event_name": "export",
                "ts": 1706695200000,
                "value": 2.5,
                "props": {"k": 1},
            }
        ),
    ]
    path = write(tmp_path, "events.jsonl", "\n".join(lines) + "\n")
    mapping = parse_mapping(
        {"columns": {"occurred_at": {"source": "ts", "formats": ["epoch"]}}}
    )
    result = ingest_file(store, "events", path, mapping)

    assert (result.rows_read, result.accepted, result.rejected) == (4, 2, 2)
    assert rows(store, "events", ["account_id", "occurred_at", "value"]) == [
        ("A1", pd.Timestamp("2024-01-31T10:00", tz="UTC"), None),
        ("A4", pd.Timestamp("2024-01-31T10:00", tz="UTC"), 2.5),
    ]
    assert quarantine(store) == [
        (3, "the line is not valid JSON (Expecting ',' delimiter at column 73)"),
        (4, 'expected a JSON object with one key per column; got list ["A3", "login"]'),
    ]


def test_ingest_json_array(store, tmp_path):
    path = write(
        tmp_path,
        "users.json",
        json.dumps([{"user_id": "U1", "account_id": "A1"}, {"user_id": "U2"}]),
    )
    result = ingest_file(store, "users", path)
    assert (result.accepted, result.rejected) == (1, 1)
    assert quarantine(store) == [
        (2, "column 'account_id' is blank; account_id is required on every row")
    ]
    assert quarantine_raw(store) == {2: {"user_id": "U2", "account_id": None}}


def test_ingest_parquet_typed_columns(store, tmp_path):
    table = pa.table(
        {
            "account_id": ["A1", "A2", None],
            "event_name": ["login", "export", "login"],
            "occurred_at": pa.array(
                [
                    dt.datetime(2024, 1, 31, 10, tzinfo=UTC),
                    dt.datetime(2024, 2, 1, 9, 30, tzinfo=UTC),
                    dt.datetime(2024, 2, 2, tzinfo=UTC),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "local_time": pa.array(
                [dt.datetime(2024, 1, 31, 11), None, None], pa.timestamp("ms")
            ),
            "value": pa.array([1.5, None, 2.0]),
            "count": pa.array([3, 4, 5], pa.int32()),
        }
    )
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    result = ingest_file(store, "events", path)

    assert (result.rows_read, result.accepted, result.rejected) == (3, 2, 1)
    assert rows(store, "events", ["account_id", "occurred_at", "value"]) == [
        ("A1", pd.Timestamp("2024-01-31T10:00", tz="UTC"), 1.5),
        ("A2", pd.Timestamp("2024-02-01T09:30", tz="UTC"), None),
    ]
    assert quarantine(store) == [
        (3, "column 'account_id' is blank; account_id is required on every row")
    ]


def test_ingest_parquet_naive_time_uses_timezone(store, tmp_path):
    table = pa.table(
        {
            "account_id": ["A1"],
            "event_name": ["login"],
            "occurred_at": pa.array([dt.datetime(2024, 1, 31, 11)], pa.timestamp("ms")),
        }
    )
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    ingest_file(store, "events", path, parse_mapping({"timezone": "Europe/Berlin"}))
    assert rows(store, "events", ["occurred_at"]) == [
        (pd.Timestamp("2024-01-31T10:00", tz="UTC"),)
    ]


def test_ingest_invalid_parquet(store, tmp_path):
    path = write(tmp_path, "events.parquet", b"not parquet at all")
    with pytest.raises(InputDataError, match="not a readable Parquet file"):
        ingest_file(store, "events", path)


# Transactions, progress and logging


def test_ingest_failure_rolls_back_everything(store, tmp_path):
    first = write(
        tmp_path, "a1.csv", "account_id,name,region\nA1,Acme,EU\nA2,Beta,US\n"
    )
    ingest_file(store, "accounts", first)
    before = snapshot(store)

    second = write(
        tmp_path,
        "a2.csv",
        "account_id,name,region\nA1,Acme,APAC\nA3,Gamma,EU\nA4,Delta\n",
    )
    calls = []

    def fail_on_second_call(done: int, total: int) -> None:
        calls.append((done, total))
        if len(calls) == 2:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        ingest_file(store, "accounts", second, progress=fail_on_second_call)
    # The failure came after the changed A1 was deleted and the new rows inserted.
    assert calls == [(1, 3), (3, 3)]
    assert snapshot(store) == before


def test_ingest_progress_calls(store, tmp_path):
    path = write(tmp_path, "a.csv", "account_id\nA1\nA2\nA1\n")
    calls = []
    ingest_file(store, "accounts", path, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (3, 3), (3, 3)]


def test_ingest_logs_one_info_line(store, tmp_path, caplog):
    path = write(tmp_path, "a.csv", "account_id\nA1\n")
    with caplog.at_level(logging.INFO, logger="healthscore.ingest"):
        result = ingest_file(store, "accounts", path)
    info = [record for record in caplog.records if record.levelno == logging.INFO]
    assert len(info) == 1
    assert info[0].getMessage() == (
        f"loaded accounts from {path.resolve()}: 1 rows read, 1 accepted (0 updated), "
        f"0 rejected, 0 duplicates, load {result.load_id}"
    )


def test_ingest_loads_row(store, tmp_path):
    path = write(tmp_path, "a.csv", "account_id\nA1\n")
    result = ingest_file(store, "accounts", path)
    loads = store.table("loads").to_pandas()
    assert loads["load_id"].tolist() == [result.load_id]
    assert loads["source"].tolist() == [str(path.resolve())]
    assert loads["source_sha256"].tolist() == [
        hashlib.sha256(b"account_id\nA1\n").hexdigest()
    ]
    assert counts_add_up(result)


# Ranges and non-finite numbers


INT64_RANGE = "-9223372036854775808 to 9223372036854775807 (the int64 range)"


def test_ingest_seats_beyond_int64(store, tmp_path):
    path = write(
        tmp_path,
        "accounts.csv",
        "account_id,seats\n"
        "A1,99999999999999999999\n"
        "A2,9223372036854775808\n"
        "A3,9223372036854775807\n"
        "A4,1e19\n"
        "A5,9007199254740993\n",
    )
    result = ingest_file(store, "accounts", path)

    assert result.reasons == {"out_of_range": 3}
    # Integer literals are read exactly, also beyond 2**53.
    assert rows(store, "accounts", ["account_id", "seats"]) == [
        ("A3", 9223372036854775807),
        ("A5", 9007199254740993),
    ]
    assert quarantine(store) == [
        (
            1,
            "column 'seats': '99999999999999999999' is out of range; expected a "
            f"whole number from {INT64_RANGE}",
        ),
        (
            2,
            "column 'seats': '9223372036854775808' is out of range; expected a "
            f"whole number from {INT64_RANGE}",
        ),
        (
            4,
            f"column 'seats': '1e19' is out of range; expected a whole number from "
            f"{INT64_RANGE}",
        ),
    ]


def test_ingest_negative_arr_and_seats(store, tmp_path):
    path = write(
        tmp_path,
        "accounts.csv",
        "account_id,Fee,seats\nA1,(10),3\nA2,0,-1\nA3,5,0\nA4,-0.5,-2\n",
    )
    mapping = parse_mapping({"columns": {"arr": {"source": "Fee", "multiply": 12}}})
    result = ingest_file(store, "accounts", path, mapping)

    assert result.reasons == {"out_of_range": 3}
    assert rows(store, "accounts", ["account_id", "arr", "seats"]) == [("A3", 60.0, 0)]
    assert quarantine(store) == [
        (1, "column 'Fee' (mapped to arr): '(10)' is out of range; expected 0 or more"),
        (2, "column 'seats': '-1' is out of range; expected 0 or more"),
        (
            4,
            "column 'Fee' (mapped to arr): '-0.5' is out of range; expected 0 or "
            "more; column 'seats': '-2' is out of range; expected 0 or more",
        ),
    ]


def test_ingest_survey_scores_whole_numbers(store, tmp_path):
    path = write(
        tmp_path,
        "surveys.csv",
        "account_id,survey,score,responded_at\n"
        "A1,nps,7.5,2024-02-01\n"
        "A2,nps,10.5,2024-02-01\n"
        "A3,csat,4.5,2024-02-01\n"
        "A4,csat,5.0,2024-02-01\n"
        "A5,nps,0,2024-02-01\n"
        "A6,nps,-0.5,2024-02-01\n",
    )
    result = ingest_file(store, "surveys", path)

    assert result.reasons == {"invalid_value": 2, "out_of_range": 2}
    assert rows(store, "survey_responses", ["account_id", "score"]) == [
        ("A4", 5.0),
        ("A5", 0.0),
    ]
    assert quarantine(store) == [
        (1, "nps score 7.5 is not valid; expected a whole number from 0 to 10"),
        (2, "nps score 10.5 is out of range; expected a whole number from 0 to 10"),
        (3, "csat score 4.5 is not valid; expected a whole number from 1 to 5"),
        (6, "nps score -0.5 is out of range; expected a whole number from 0 to 10"),
    ]


FINITE = (
    "a finite number; infinity and values beyond the float64 range (about 1.8e308) "
    "are not allowed"
)


def test_ingest_non_finite_numbers_csv(store, tmp_path):
    path = write(
        tmp_path,
        "accounts.csv",
        "account_id,arr,usage\nA1,1e400,1\nA2,5,-1e400\nA3,inf,2\nA4,1e308,nan\n",
    )
    mapping = parse_mapping({"columns": {"arr": {"source": "arr", "multiply": 12}}})
    result = ingest_file(store, "accounts", path, mapping)

    assert result.reasons == {"invalid_value": 4}
    assert result.accepted == 0
    # usage is an inferred attribute: its non-finite value makes it no text column.
    assert quarantine(store) == [
        (1, f"column 'arr': '1e400' is not valid; expected {FINITE}"),
        (2, f"column 'usage': '-1e400' is not valid; expected {FINITE}"),
        (3, f"column 'arr': 'inf' is not valid; expected {FINITE}"),
        # 1e308 is finite, but twelve times it is not.
        (4, f"column 'arr': '1e308' is not valid; expected {FINITE}"),
    ]


def test_ingest_json_lines_non_scalar_values(store, tmp_path):
    lines = [
        '{"account_id": 12, "event_name": "login", "occurred_at": "2024-01-01"}',
        '{"account_id": "A2", "event_name": ["a"], "occurred_at": "2024-01-01"}',
        '{"account_id": "A3", "event_name": {"k": 1}, "occurred_at": "2024-01-01"}',
        '{"account_id": "A4", "event_name": "x", "occurred_at": "2024-01-01", '
        '"value": 1e400}',
        '{"account_id": "A5", "event_name": "x", "occurred_at": "2024-01-01", '
        '"value": NaN}',
        '{"account_id": "A6", "event_name": "x", "occurred_at": "2024-01-01", '
        '"value": -Infinity}',
        '{"account_id": "A7", "event_name": "x", "occurred_at": "2024-01-01", '
        '"value": 2.5, "props": {"k": [NaN]}}',
        '{"account_id": NaN, "event_name": "x", "occurred_at": "2024-01-01"}',
    ]
    path = write(tmp_path, "events.jsonl", "\n".join(lines) + "\n")
    result = ingest_file(store, "events", path)

    assert result.reasons == {"invalid_value": 6}
    # A JSON number as account_id is its text; an unused nested key is ignored.
    assert rows(store, "events", ["account_id", "event_name", "value"]) == [
        ("12", "login", None),
        ("A7", "x", 2.5),
    ]
    not_json_number = (
        "a finite number, or null for a missing value; NaN and Infinity are not "
        "JSON numbers"
    )
    assert quarantine(store) == [
        (
            2,
            "column 'event_name': '[\"a\"]' is not valid; expected a single value, "
            "not a JSON array",
        ),
        (
            3,
            "column 'event_name': '{\"k\": 1}' is not valid; expected a single "
            "value, not a JSON object",
        ),
        (4, f"column 'value': '1e400' is not valid; expected {FINITE}"),
        (5, f"column 'value': 'NaN' is not valid; expected {not_json_number}"),
        (6, f"column 'value': '-Infinity' is not valid; expected {not_json_number}"),
        (8, f"column 'account_id': 'NaN' is not valid; expected {not_json_number}"),
    ]


def test_ingest_parquet_nested_value_rejected(store, tmp_path):
    table = pa.table(
        {
            "account_id": ["A1", "A2"],
            "event_name": ["login", "export"],
            "occurred_at": ["2024-01-01", "2024-01-02"],
            "feature": pa.array([None, ["a", "b"]], pa.list_(pa.string())),
        }
    )
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    result = ingest_file(store, "events", path)

    assert result.reasons == {"invalid_value": 1}
    assert rows(store, "events", ["account_id"]) == [("A1",)]
    assert quarantine(store) == [
        (
            2,
            "column 'feature': '[\"a\", \"b\"]' is not valid; expected a single "
            "value, not a nested Parquet value of type list<element: string>",
        )
    ]


# Nested account columns


def skipped_warning(path: Path, columns: list[str]) -> str:
    return (
        f"accounts from {path.resolve()}: skipped columns {columns} because they "
        "contain nested values (JSON arrays or objects, or Parquet lists, structs or "
        "maps), which cannot be attributes. Flatten them into single values in the "
        "export, or list the attributes to keep under 'attributes:' in the mapping"
    )


def warning_messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_ingest_jsonl_nested_attributes_skipped(store, tmp_path, caplog):
    lines = [
        '{"account_id": "A1", "tags": ["a", "b"], "region": "EU", "note": "[1, 2]"}',
        '{"account_id": "A2", "tags": null, "region": "US", "address": {"c": "x"}}',
        '{"account_id": "A3", "tags": "solo", "region": "EU"}',
        '{"account_id": "A4", "region": "APAC"}',
    ]
    path = write(tmp_path, "accounts.jsonl", "\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="healthscore.ingest"):
        result = ingest_file(store, "accounts", path)

    assert (result.accepted, result.rejected) == (4, 0)
    assert result.skipped_columns == ("tags", "address")
    assert rows(store, "accounts", ["account_id"]) == [
        ("A1",),
        ("A2",),
        ("A3",),
        ("A4",),
    ]
    # One nested value skips the whole column, so A3's plain "solo" is skipped too.
    # A string that looks like a JSON array stays a text attribute.
    assert rows(store, "account_attributes", ["account_id", "name", "text_value"]) == [
        ("A1", "note", "[1, 2]"),
        ("A1", "region", "EU"),
        ("A2", "region", "US"),
        ("A3", "region", "EU"),
        ("A4", "region", "APAC"),
    ]
    assert warning_messages(caplog) == [skipped_warning(path, ["tags", "address"])]


def test_ingest_parquet_nested_attributes_skipped(store, tmp_path, caplog):
    billing_type = pa.struct([("name", pa.string())])
    table = pa.table(
        {
            "account_id": ["A1", "A2", "A3"],
            "tags": pa.array([["a", "b"], None, []], pa.list_(pa.string())),
            "seats": [3, 4, 5],
            "region": ["EU", None, "US"],
            # A nested type is skipped even when every value is null.
            "billing": pa.array([None, None, None], billing_type),
        }
    )
    path = tmp_path / "accounts.parquet"
    pq.write_table(table, path)
    with caplog.at_level(logging.WARNING, logger="healthscore.ingest"):
        result = ingest_file(store, "accounts", path)

    assert (result.accepted, result.rejected) == (3, 0)
    assert result.skipped_columns == ("tags", "billing")
    assert rows(store, "accounts", ["account_id", "seats"]) == [
        ("A1", 3),
        ("A2", 4),
        ("A3", 5),
    ]
    assert rows(store, "account_attributes", ["account_id", "name", "text_value"]) == [
        ("A1", "region", "EU"),
        ("A3", "region", "US"),
    ]
    assert warning_messages(caplog) == [skipped_warning(path, ["tags", "billing"])]


def test_ingest_nested_attribute_listed_rejects(store, tmp_path, caplog):
    lines = [
        '{"account_id": "A1", "tags": ["a", "b"], "region": "EU"}',
        '{"account_id": "A2", "tags": null, "region": "US"}',
        '{"account_id": "A3", "tags": {"k": 1}, "region": "EU"}',
    ]
    path = write(tmp_path, "accounts.jsonl", "\n".join(lines) + "\n")
    mapping = parse_mapping({"attributes": ["tags", "region"]})
    with caplog.at_level(logging.WARNING, logger="healthscore.ingest"):
        result = ingest_file(store, "accounts", path, mapping)

    assert (result.accepted, result.rejected) == (1, 2)
    assert result.reasons == {"invalid_value": 2}
    assert result.skipped_columns == ()
    assert rows(store, "accounts", ["account_id"]) == [("A2",)]
    assert quarantine(store) == [
        (
            1,
            "column 'tags': '[\"a\", \"b\"]' is not valid; expected a single value, "
            "not a JSON array",
        ),
        (
            3,
            "column 'tags': '{\"k\": 1}' is not valid; expected a single value, not a "
            "JSON object",
        ),
    ]
    assert warning_messages(caplog) == []


def test_ingest_nested_column_mapped_rejects(store, tmp_path):
    table = pa.table(
        {
            "account_id": ["A1", "A2"],
            "tags": pa.array([["a"], None], pa.list_(pa.string())),
        }
    )
    path = tmp_path / "accounts.parquet"
    pq.write_table(table, path)
    mapping = parse_mapping({"columns": {"labels": "tags"}})
    result = ingest_file(store, "accounts", path, mapping)

    assert (result.accepted, result.rejected) == (1, 1)
    assert result.skipped_columns == ()
    assert rows(store, "accounts", ["account_id"]) == [("A2",)]
    assert quarantine(store) == [
        (
            1,
            "column 'tags' (mapped to labels): '[\"a\"]' is not valid; expected a "
            "single value, not a nested Parquet value of type list<element: string>",
        )
    ]


def test_ingest_nested_target_column_rejects(store, tmp_path):
    # "plan" is an accounts target, matched by name, so it is not an attribute.
    lines = [
        '{"account_id": "A1", "plan": ["pro"]}',
        '{"account_id": "A2", "plan": "basic"}',
    ]
    path = write(tmp_path, "accounts.jsonl", "\n".join(lines) + "\n")
    result = ingest_file(store, "accounts", path)

    assert (result.accepted, result.rejected) == (1, 1)
    assert result.skipped_columns == ()
    assert rows(store, "accounts", ["account_id", "plan"]) == [("A2", "basic")]
    assert quarantine(store) == [
        (
            1,
            "column 'plan': '[\"pro\"]' is not valid; expected a single value, not a "
            "JSON array",
        )
    ]


def test_ingest_nested_event_column_ignored(store, tmp_path):
    # Only accounts have attributes, so other entities never skip a column.
    lines = [
        '{"account_id": "A1", "event_name": "x", "occurred_at": "2024-01-01", '
        '"props": [1]}'
    ]
    path = write(tmp_path, "events.jsonl", "\n".join(lines) + "\n")
    result = ingest_file(store, "events", path)
    assert (result.accepted, result.skipped_columns) == (1, ())


# Repeated loads and unknown accounts


def test_ingest_same_accounts_file_twice(store, tmp_path):
    path = write(tmp_path, "a.csv", "account_id,seats\nA1,3\nA2,many\nA1,3\n")
    first = ingest_file(store, "accounts", path)
    after_first = snapshot(store)
    calls = []
    second = ingest_file(store, "accounts", path, progress=lambda d, t: calls.append(d))

    assert snapshot(store) == after_first
    assert second.load_id == first.load_id
    assert (first.accepted, first.rejected, first.duplicates) == (1, 1, 1)
    assert (second.accepted, second.rejected, second.duplicates) == (0, 1, 2)
    assert second.rows_read == first.rows_read
    assert calls == [3, 3]


def test_ingest_reload_with_new_outcome_is_new_load(store, tmp_path):
    path = write(tmp_path, "a.csv", "account_id,signup\nA1,2024-01-31\nA2,31/01/2024\n")
    first_mapping = parse_mapping({"columns": {"created_at": "signup"}})
    first = ingest_file(store, "accounts", path, first_mapping)
    # The fixed mapping accepts the day/month date that the first load rejected.
    mapping = parse_mapping(
        {"columns": {"created_at": {"source": "signup", "formats": ["%d/%m/%Y"]}}}
    )
    second = ingest_file(store, "accounts", path, mapping)

    assert (first.accepted, first.rejected) == (1, 1)
    assert (second.accepted, second.rejected) == (1, 0)
    assert second.load_id != first.load_id
    loads = rows(store, "loads", ["load_id", "accepted", "rejected"])
    assert sorted(loads) == sorted([(first.load_id, 1, 1), (second.load_id, 1, 0)])
    assert len(quarantine(store)) == 1


def test_ingest_reload_restores_changed_account(store, tmp_path):
    first_path = write(tmp_path, "a1.csv", "account_id,name\nA1,Acme\n")
    second_path = write(tmp_path, "a2.csv", "account_id,name\nA1,Acme Ltd\n")
    first = ingest_file(store, "accounts", first_path)
    ingest_file(store, "accounts", second_path)
    again = ingest_file(store, "accounts", first_path)

    # The store changed since the first load, so loading it again writes A1 again.
    assert (again.accepted, again.updated) == (1, 1)
    assert again.load_id != first.load_id
    assert rows(store, "accounts", ["account_id", "name"]) == [("A1", "Acme")]
    assert store.table("loads").count().execute() == 3


def test_ingest_unknown_accounts_counted(store, tmp_path, caplog):
    accounts = write(tmp_path, "a.csv", "account_id\nA1\n")
    events = write(
        tmp_path,
        "events.csv",
        "account_id,event_name,occurred_at\n"
        "A1,login,2024-01-01\n"
        "A2,login,2024-01-01\n"
        "A2,export,2024-01-01\n"
        "A3,login,2024-01-01\n"
        "A3,login,bad\n",
    )
    account_result = ingest_file(store, "accounts", accounts)
    with caplog.at_level(logging.WARNING, logger="healthscore.ingest"):
        result = ingest_file(store, "events", events)

    assert account_result.unknown_accounts == 0
    assert (result.accepted, result.unknown_accounts) == (4, 3)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"load {result.load_id}: 3 of 4 accepted events rows name an account_id "
        "that is not in the accounts table; load the accounts file too, or check "
        "the ids"
    ]


def test_ingest_unknown_accounts_zero_when_known(store, tmp_path, caplog):
    ingest_file(store, "accounts", write(tmp_path, "a.csv", "account_id\nA1\nA2\n"))
    users = write(tmp_path, "u.csv", "user_id,account_id\nU1,A1\nU2,A2\n")
    with caplog.at_level(logging.WARNING, logger="healthscore.ingest"):
        result = ingest_file(store, "users", users)
    assert result.unknown_accounts == 0
    assert [r for r in caplog.records if r.levelno == logging.WARNING] == []


def test_ingest_mapping_bad_format_directive(tmp_path):
    mapping_path = write(
        tmp_path,
        "mapping.yaml",
        "columns:\n  created_at: {source: signup, formats: ['%Q%d']}\n",
    )
    with pytest.raises(MappingError, match="'Q' is a bad directive") as info:
        load_mapping(mapping_path)
    assert info.value.field == "columns.created_at.formats"
    assert "invalid format '%Q%d'" in str(info.value)


def test_ingest_misspelt_target_warns(store, tmp_path, caplog):
    path = write(tmp_path, "a.csv", "account_id,seats\nA1,3\n")
    mapping = parse_mapping({"columns": {"seatz": "seats"}})

    with caplog.at_level(logging.WARNING, logger="healthscore.ingest"):
        result = ingest_file(store, "accounts", path, mapping)

    assert result.accepted == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("'seatz' is not an accounts column" in m for m in messages)
    assert any("Did you mean 'seats'?" in m for m in messages)
