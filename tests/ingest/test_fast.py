"""The DuckDB path must store exactly what the batch path stores.

A gzipped copy of a file always takes the batch path, so each test loads a file and
its gzipped copy into two stores and compares everything but the load ids, the
source path and the file hash.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import logging
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthscore.ingest import ingest_file, parse_mapping
from healthscore.ingest.fast import WHITESPACE_CLASS, _scan_csv
from healthscore.ingest.readers import HASH_CHUNK_BYTES
from healthscore.store import TABLES, Store

VOLATILE = {"load_id", "loaded_at", "quarantined_at", "source", "source_sha256"}
FAST_MESSAGE = "with DuckDB SQL"

EVENT_IDS = ["e1", "e2", " e3", "", "NA", "e4\u00a0", "null"]
ACCOUNTS = ["A1", "A2", "  ", "null", "A\u00a0", "#N/A", "\tA3"]
NAMES = ["login", "Login ", "-", "click", "n/a"]
TIMES = [
    "2024-01-01T00:00:00Z",
    "2024-01-01 00:00:00+05:30",
    "2024-01-01 19:04:59.880679+00",
    "2024-01-01",
    "2024-01-01T10:00",
    "20240101",
    "01/02/2024",
    "2024-02-30T00:00:00Z",
    "2024-03-31T02:30:00",
    "2024-01-01T00:00:00.1234567Z",
    "2024-01-01T24:00:00Z",
    "1899-12-31T00:00:00Z",
    "2024-01-01T00:00:00+0100",
    "2024-01-01T00:00:00-03",
    "2024-01-01T00:00:00z",
    " 2024-01-01T00:00:00Z",
    "2024-01-01T00:00:00Z\u3000",
    "",
]
VALUES = [
    "1",
    "1.5",
    "-0",
    "1,234.5",
    "(12)",
    "$5",
    "12%",
    "1e400",
    "inf",
    "nan",
    "1.",
    ".5",
    "1e5",
    "0.1",
    "123456789012345678",
    " 7 ",
    "7\u00a0",
    "\t-7",
    "",
    "abc",
]


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def stored(store: Store) -> dict[str, list[tuple]]:
    """Return every table's rows without the columns that differ between paths."""
    tables = {}
    for name, schema in TABLES.items():
        columns = [column for column in schema.names if column not in VOLATILE]
        frame = store.table(name).select(columns).to_pandas()
        tables[name] = sorted(
            frame.astype("object").where(frame.notna(), None).itertuples(index=False),
            key=repr,
        )
    return tables


def summary(result: object) -> dict:
    fields = dataclasses.asdict(result)
    del fields["load_id"], fields["source"]
    return fields


def load_sequence(
    store_path: Path, entity: str, paths: list[Path], mapping: object = None
) -> tuple[list[dict], dict[str, list[tuple]]]:
    with Store.open(store_path) as store:
        results = [
            summary(ingest_file(store, entity, path, mapping, batch_rows=3))
            for path in paths
        ]
        return results, stored(store)


def gzipped(path: Path) -> Path:
    copy = path.with_name(path.name + ".gz")
    copy.write_bytes(gzip.compress(path.read_bytes()))
    return copy


def compare_paths(
    tmp_path: Path,
    entity: str,
    paths: list[Path],
    caplog: pytest.LogCaptureFixture,
    mapping: object = None,
    fast: bool = True,
) -> tuple[list[dict], dict[str, list[tuple]]]:
    """Load ``paths`` by both paths; assert the stores and results are equal."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="healthscore.ingest.loader"):
        fast_outcome = load_sequence(tmp_path / "fast.duckdb", entity, paths, mapping)
    took_fast = FAST_MESSAGE in caplog.text
    batch_paths = [gzipped(path) for path in paths]
    batch_outcome = load_sequence(
        tmp_path / "batch.duckdb", entity, batch_paths, mapping
    )
    assert took_fast == fast
    assert fast_outcome[0] == batch_outcome[0]
    assert fast_outcome[1] == batch_outcome[1]
    return fast_outcome


def write_events(tmp_path: Path, rows: list[list[str]], name: str) -> Path:
    header = ["event_id", "account_id", "event_name", "occurred_at", "value"]
    path = tmp_path / name
    path.write_text(csv_text(header, rows), encoding="utf-8")
    return path


def test_fast_events_csv_tricky_values(tmp_path, caplog):
    rows = [
        [EVENT_IDS[i % len(EVENT_IDS)], ACCOUNTS[i % len(ACCOUNTS)], "login", t, v]
        for i, (t, v) in enumerate(
            (t, v) for t in TIMES for v in VALUES[: 1 + len(t) % len(VALUES)]
        )
    ]
    rows = [[f"id{i}", *row[1:]] for i, row in enumerate(rows)]
    rows += [["", "A1", "click", "2024-01-01T00:00:00Z", "1"]] * 3
    rows += [["e9", "A1", "click", "2024-01-01T00:00:00Z", "1"]] * 2
    path = write_events(tmp_path, rows, "events.csv")
    results, tables = compare_paths(tmp_path, "events", [path], caplog)

    assert results[0]["rejected"] > 0
    assert results[0]["duplicates"] == 1
    assert len(tables["quarantine"]) == results[0]["rejected"]


def test_fast_events_csv_reload_adds_nothing(tmp_path, caplog):
    rows = [
        ["e1", "A1", "login", "2024-01-01T00:00:00Z", "1"],
        ["", "A1", "click", "2024-01-01T00:00:00Z", "2"],
        ["", "A1", "click", "2024-01-01T00:00:00Z", "2"],
        ["e2", "A2", "login", "not a time", "1"],
    ]
    path = write_events(tmp_path, rows, "events.csv")
    results, tables = compare_paths(tmp_path, "events", [path, path], caplog)

    assert (results[0]["accepted"], results[0]["rejected"]) == (3, 1)
    assert (results[1]["accepted"], results[1]["duplicates"]) == (0, 3)
    assert len(tables["loads"]) == 1


def test_fast_keys_match_batch_path_keys(tmp_path, caplog):
    rows = [
        ["", "A1", "click", "2024-01-01T00:00:00Z", "2"],
        ["", "A1", "click", "2024-01-01T00:00:00Z", "2"],
        ["", "A2", "click", "2024-01-02 10:00:00+02:00", "0.1"],
        ["e1", "A2", "login", "2024-01-02", ""],
    ]
    path = write_events(tmp_path, rows, "events.csv")
    with Store.open(tmp_path / "store.duckdb") as store:
        first = ingest_file(store, "events", gzipped(path))
        with caplog.at_level(logging.DEBUG, logger="healthscore.ingest.loader"):
            second = ingest_file(store, "events", path)
        assert FAST_MESSAGE in caplog.text
        assert first.accepted == 4
        assert (second.accepted, second.duplicates) == (0, 4)


def test_fast_events_conflict_takes_batch_path(tmp_path, caplog):
    rows = [
        ["e1", "A1", "login", "2024-01-01T00:00:00Z", "1"],
        ["e1", "A1", "logout", "2024-01-01T00:00:00Z", "1"],
        ["e2", "A1", "login", "2024-01-01T00:00:00Z", "1"],
    ]
    path = write_events(tmp_path, rows, "events.csv")
    results, _ = compare_paths(tmp_path, "events", [path], caplog, fast=False)
    assert results[0]["reasons"] == {"duplicate_conflict": 1}


def test_fast_events_malformed_takes_batch_path(tmp_path, caplog):
    path = tmp_path / "events.csv"
    path.write_text(
        "event_id,account_id,event_name,occurred_at\n"
        "e1,A1,login,2024-01-01T00:00:00Z\n"
        "e2,A1,login\n"
        "\n"
        'e3,A1,"two\nlines",2024-01-01T00:00:00Z\n',
        encoding="utf-8",
    )
    results, _ = compare_paths(tmp_path, "events", [path], caplog, fast=False)
    assert results[0]["reasons"] == {"malformed_row": 1}


def test_fast_events_parquet_typed_columns(tmp_path, caplog):
    utc = pa.timestamp("us", tz="UTC")
    table = pa.table(
        {
            "event_id": pa.array([1, 2, 3, 4, 5, None, 7], pa.int64()),
            "account_id": ["A1", " A2", None, "A1", "A3", "A1", "A1"],
            "event_name": ["login", "click", "click", "NA", "x", "y", "y"],
            "occurred_at": pa.array([0, 1, 2, 3, None, 5, 6], pa.int64()).cast(utc),
            "local_time": pa.array(range(7), pa.timestamp("ms")),
            "value": [1.5, float("nan"), float("inf"), -0.0, 1e300, None, 2.0],
            "flag": [True, False, None, True, True, False, True],
        }
    )
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    results, _ = compare_paths(tmp_path, "events", [path], caplog)
    # Rows 3 (no account_id, infinite value), 4 (event_name NA) and 5 (no time).
    assert results[0]["rejected"] == 3

    mapping = parse_mapping(
        {
            "columns": {
                "occurred_at": "local_time",
                "feature": "flag",
                "user_id": "event_id",
                "event_id": {"value": None},
            }
        }
    )
    (tmp_path / "mapped").mkdir()
    compare_paths(tmp_path / "mapped", "events", [path], caplog, mapping)


def test_fast_surveys_csv_scales(tmp_path, caplog):
    header = ["response_id", "account_id", "survey", "score", "responded_at"]
    rows = [
        ["r1", "A1", "NPS", "10", "2024-01-01T00:00:00Z"],
        ["r2", "A1", "nps", "11", "2024-01-01T00:00:00Z"],
        ["r3", "A1", "csat", "0", "2024-01-01T00:00:00Z"],
        ["r4", "A1", "CSAT", "4.5", "2024-01-01T00:00:00Z"],
        ["r5", "A1", "ces", "3", "2024-01-01T00:00:00Z"],
        ["", "A1", "csat", "5", "2024-01-01T00:00:00Z"],
        ["r7", "A1", "nps", "", "2024-01-01T00:00:00Z"],
    ]
    path = tmp_path / "surveys.csv"
    path.write_text(csv_text(header, rows), encoding="utf-8")
    results, _ = compare_paths(tmp_path, "surveys", [path], caplog)
    assert results[0]["accepted"] == 2


def test_fast_tickets_tsv_resolution_order(tmp_path, caplog):
    header = ["ticket_id", "account_id", "priority", "opened_at", "resolved_at"]
    rows = [
        ["t1", "A1", "high", "2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z"],
        ["t2", "A1", "low", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"],
        ["t3", "A1", "", "2024-01-01T00:00:00Z", ""],
    ]
    path = tmp_path / "tickets.tsv"
    text = "\n".join("\t".join(row) for row in [header, *rows]) + "\n"
    path.write_text(text, encoding="utf-8")
    results, _ = compare_paths(tmp_path, "tickets", [path], caplog)
    assert (results[0]["accepted"], results[0]["rejected"]) == (2, 1)


def test_fast_users_changed_user_replaced(tmp_path, caplog):
    header = ["user_id", "account_id", "email", "created_at"]
    first = tmp_path / "users-1.csv"
    first.write_text(
        csv_text(
            header,
            [
                ["u1", "A1", "a@example.com", "2024-01-01T00:00:00Z"],
                ["u2", "A1", "b@example.com", "2024-01-01T00:00:00Z"],
                ["u2", "A1", "b@example.com", "2024-01-01T00:00:00Z"],
            ],
        ),
        encoding="utf-8",
    )
    second = tmp_path / "users-2.csv"
    second.write_text(
        csv_text(
            header,
            [
                ["u1", "A1", "a@example.com", "2024-01-01T00:00:00Z"],
                ["u2", "A2", "b@example.com", "2024-01-01T00:00:00Z"],
                ["u3", "A2", "", ""],
            ],
        ),
        encoding="utf-8",
    )
    results, tables = compare_paths(tmp_path, "users", [first, second], caplog)
    assert results[1]["updated"] == 1
    assert results[1]["duplicates"] == 1
    assert len(tables["users"]) == 3


def test_fast_local_timezone_mapping(tmp_path, caplog):
    rows = [
        ["e1", "A1", "login", "2024-03-31T02:30:00", "1"],
        ["e2", "A1", "login", "2024-10-27T02:30:00", "1"],
        ["e3", "A1", "login", "2024-06-01T12:00:00", "1"],
        ["e4", "A1", "login", "2024-06-01T12:00:00+00:00", "1"],
    ]
    path = write_events(tmp_path, rows, "events.csv")
    mapping = parse_mapping({"timezone": "Europe/Berlin"})
    results, _ = compare_paths(tmp_path, "events", [path], caplog, mapping)
    assert (results[0]["accepted"], results[0]["rejected"]) == (2, 2)


def test_fast_whitespace_class_matches_python():
    spaces = [chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()]
    candidates = [chr(code) for code in range(0x3100)] + spaces
    connection = duckdb.connect()
    values = pa.table(
        {"v": [f"{c}a" for c in candidates] + [f"a{c}" for c in candidates]}
    )
    found = (
        connection.from_arrow(values)
        .project(f"v, regexp_matches(v, '^[{WHITESPACE_CLASS}]|[{WHITESPACE_CLASS}]$')")
        .fetchall()
    )
    wrong = [value for value, edge in found if edge != (value != value.strip())]
    assert wrong == []


row_strategy = st.tuples(
    st.booleans(),
    st.sampled_from(ACCOUNTS),
    st.sampled_from(NAMES),
    st.sampled_from(TIMES),
    st.sampled_from(VALUES),
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=st.lists(row_strategy, min_size=1, max_size=12))
def test_fast_random_events_match_batch_path(tmp_path_factory, caplog, rows):
    # Rows without an id repeat often, so content-hash keys and their occurrence
    # counts get exercised. Ids are unique, so no conflict sends the file to the
    # batch path.
    folder = tmp_path_factory.mktemp("random")
    records = [
        [f"e{i}" if has_id else "", *values] for i, (has_id, *values) in enumerate(rows)
    ]
    path = write_events(folder, records, "events.csv")
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="healthscore.ingest.loader"):
        fast = load_sequence(folder / "fast.duckdb", "events", [path])
    assert FAST_MESSAGE in caplog.text
    batch = load_sequence(folder / "batch.duckdb", "events", [gzipped(path)])
    assert fast[0] == batch[0]
    assert fast[1] == batch[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b\n1,2\n3,4\n", ("a,b", 3, False)),
        # The first line ends at a line feed only. open_fast_source sends a file
        # whose header contains a carriage return to the batch path.
        ("a,b\r1,2\r3,4", ("a,b\r1,2\r3,4", 3, False)),
        ("a,b\r\n1,2\r\n", ("a,b", 2, False)),
        ('a,b\n1,"x\ny"\n', ("a,b", 3, True)),
        ('a,b\n1,"x,""y"""\n2,3\n', ("a,b", 3, False)),
    ],
)
def test_scan_csv_line_counts(tmp_path, text, expected):
    path = tmp_path / "file.csv"
    path.write_bytes(text.encode())
    assert _scan_csv(path, '"') == expected


def test_scan_csv_across_chunks(tmp_path):
    # The header is longer than one chunk, and the quoted value that spans lines
    # covers a whole chunk that contains no quote character.
    header = ",".join(f"column_{i}" for i in range(HASH_CHUNK_BYTES // 8))
    padding = "x" * HASH_CHUNK_BYTES
    text = f'{header}\n"{padding}\n{padding}",1\n'
    path = tmp_path / "file.csv"
    path.write_bytes(text.encode())
    assert _scan_csv(path, '"') == (header, 3, True)


def test_fast_first_load_keeps_order_setting(tmp_path, caplog):
    rows = [[f"e{i}", "A1", "login", "2024-01-01T00:00:00Z", "1"] for i in range(5)]
    first = write_events(tmp_path, rows, "first.csv")
    second = write_events(tmp_path, rows[:2] + [rows[0]], "second.csv")

    with (
        Store.open(tmp_path / "store.duckdb") as store,
        caplog.at_level(logging.DEBUG, logger="healthscore.ingest.loader"),
    ):
        loaded = [ingest_file(store, "events", path) for path in (first, second)]
        setting = store.backend.con.execute(
            "SELECT current_setting('preserve_insertion_order')"
        ).fetchone()[0]

    assert FAST_MESSAGE in caplog.text
    assert setting is True
    assert (loaded[0].accepted, loaded[0].duplicates) == (5, 0)
    assert (loaded[1].accepted, loaded[1].duplicates) == (0, 3)
