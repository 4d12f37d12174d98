"""Loads split into batches must store exactly what a one-batch load stores."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from healthscore.exceptions import ConfigError
from healthscore.ingest import ingest_file
from healthscore.store import TABLES, Store

# Columns that differ between two loads of the same file.
VOLATILE = {"load_id", "loaded_at", "quarantined_at"}
ONE_BATCH = 1_000_000

EVENTS_CSV = (
    "event_id,account_id,event_name,occurred_at,value\n"
    "e1,A1,login,2024-01-01T00:00:00Z,1\n"
    ",A1,click,2024-01-01T01:00:00Z,2\n"
    "e2,A2,login,2024-01-01T02:00:00Z,oops\n"
    "e1,A1,login,2024-01-01T00:00:00Z,1\n"
    ",A1,click,2024-01-01T01:00:00Z,2\n"
    "e3,A2,login,2024-01-02T00:00:00Z,3\n"
    "e1,A1,logout,2024-01-01T00:00:00Z,1\n"
    "e4,A2,login\n"
    ",A1,click,2024-01-01T01:00:00Z,2\n"
    "e3,A2,login,2024-01-02T00:00:00Z,4\n"
)


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def stored(store: Store) -> dict[str, list[tuple]]:
    """Return every table's rows without the columns that differ between loads."""
    tables = {}
    for name, schema in TABLES.items():
        columns = [column for column in schema.names if column not in VOLATILE]
        frame = store.table(name).select(columns).to_pandas()
        tables[name] = sorted(
            frame.astype("object").where(frame.notna(), None).itertuples(index=False),
            key=repr,
        )
    return tables


def load(
    tmp_path: Path, entity: str, paths: list[Path], batch_rows: int
) -> tuple[list[dict], dict[str, list[tuple]]]:
    """Load ``paths`` in order into a new store; return the results and the rows."""
    with Store.open(tmp_path / f"{entity}-{batch_rows}.duckdb") as store:
        results = [
            dataclasses.asdict(ingest_file(store, entity, path, batch_rows=batch_rows))
            for path in paths
        ]
        for result in results:
            result.pop("load_id")
        return results, stored(store)


def test_batches_events_csv_match_one_batch(tmp_path):
    path = write(tmp_path, "events.csv", EVENTS_CSV)
    expected = load(tmp_path, "events", [path], ONE_BATCH)
    for batch_rows in (1, 2, 3, 4):
        assert load(tmp_path, "events", [path], batch_rows) == expected


def test_batches_events_csv_counts(tmp_path):
    path = write(tmp_path, "events.csv", EVENTS_CSV)
    with Store.open(tmp_path / "store.duckdb") as store:
        result = ingest_file(store, "events", path, batch_rows=2)
        quarantine = store.table("quarantine").to_pandas()

    # Rows 1, 2, 5, 6 and 9 are new; 4 repeats row 1; 3 has an invalid value, 8 is
    # malformed, and 7 and 10 repeat the ids of rows 1 and 6 with other values.
    assert (result.rows_read, result.accepted) == (10, 5)
    assert (result.rejected, result.duplicates) == (4, 1)
    assert result.reasons == {
        "invalid_value": 1,
        "malformed_row": 1,
        "duplicate_conflict": 2,
    }
    reasons = dict(zip(quarantine["row_number"], quarantine["reason"], strict=True))
    assert sorted(reasons) == [3, 7, 8, 10]
    assert "conflicts with row 1," in reasons[7]
    assert "conflicts with row 6," in reasons[10]


def test_batches_content_keys_count_whole_file(tmp_path):
    path = write(tmp_path, "events.csv", EVENTS_CSV)
    with Store.open(tmp_path / "store.duckdb") as store:
        ingest_file(store, "events", path, batch_rows=1)
        events = store.table("events").to_pandas()

    # The three identical rows without an id are occurrences 0, 1 and 2 of one
    # text: event_id, account_id, user_id, event_name, feature, occurred_at, value.
    without_id = events[events["event_id"].isna()]
    fields = ["\x00", "A1", "\x00", "click", "\x00", "2024-01-01 01:00:00.000000Z"]
    text = "\x1f".join([*fields, "2"])
    expected = {hashlib.sha256(f"{text}\x1f{n}".encode()).hexdigest() for n in range(3)}
    assert set(without_id["event_key"]) == expected


def test_batches_reload_is_repeat(tmp_path):
    path = write(tmp_path, "events.csv", EVENTS_CSV)
    with Store.open(tmp_path / "store.duckdb") as store:
        first = ingest_file(store, "events", path, batch_rows=2)
        before = stored(store)
        second = ingest_file(store, "events", path, batch_rows=3)
        after = stored(store)

    assert second.load_id == first.load_id
    assert (second.accepted, second.rejected, second.duplicates) == (0, 4, 6)
    assert after == before


def test_batches_users_changed_match_one_batch(tmp_path):
    first = write(
        tmp_path,
        "users1.csv",
        "user_id,account_id,email\nU1,A1,a@x.io\nU2,A1,b@x.io\nU3,A2,c@x.io\n",
    )
    second = write(
        tmp_path,
        "users2.csv",
        "user_id,account_id,email\nU1,A1,a@x.io\nU4,A2,d@x.io\nU3,A2,new@x.io\n"
        "U4,A2,d@x.io\nU3,A2,other@x.io\n",
    )
    expected = load(tmp_path, "users", [first, second], ONE_BATCH)
    results, _ = expected
    assert (results[1]["accepted"], results[1]["updated"]) == (2, 1)
    assert (results[1]["duplicates"], results[1]["rejected"]) == (2, 1)
    for batch_rows in (1, 2):
        assert load(tmp_path, "users", [first, second], batch_rows) == expected


def test_batches_parquet_streamed_rows(tmp_path):
    path = tmp_path / "events.parquet"
    table = pa.table(
        {
            "event_id": ["e1", "e2", "e3", "e2", None, None, "e5"],
            "account_id": ["A1", "A1", "A2", "A1", "A3", "A3", None],
            "event_name": ["a", "b", "c", "b", "d", "d", "e"],
            "occurred_at": pa.array(
                [1_700_000_000 + i for i in (0, 1, 2, 1, 4, 4, 6)],
                pa.timestamp("s", tz="UTC"),
            ),
            "value": [1.0, 2.0, -3.0, 2.0, None, None, 5.0],
            "tags": [["x"], None, [], ["y"], None, None, ["z"]],
        }
    )
    pq.write_table(table, path, row_group_size=3)
    expected = load(tmp_path, "events", [path], ONE_BATCH)
    results, _ = expected
    # Row 4 repeats row 2, row 6 repeats row 5 (a second occurrence, so a new key)
    # and row 7 has no account_id.
    assert (results[0]["accepted"], results[0]["duplicates"]) == (5, 1)
    assert results[0]["reasons"] == {"missing_value": 1}
    for batch_rows in (1, 2, 4):
        assert load(tmp_path, "events", [path], batch_rows) == expected


def test_batches_progress_per_chunk(tmp_path):
    path = write(tmp_path, "events.csv", EVENTS_CSV)
    calls = []
    with Store.open(tmp_path / "store.duckdb") as store:
        ingest_file(
            store,
            "events",
            path,
            progress=lambda done, total: calls.append((done, total)),
            batch_rows=4,
        )
    # Batch 1 (rows 1-4) carries the malformed row 8 as well: rows 3 and 8 are
    # rejected and row 4 is a duplicate, then rows 1 and 2 are written. Batch 2
    # (rows 5, 6, 7 and 9) rejects row 7 and writes the other three. Batch 3 (row
    # 10) writes nothing, so only the final call follows.
    assert calls == [(3, 10), (5, 10), (9, 10), (10, 10)]


def test_batches_failure_in_later_batch_rolls_back(tmp_path):
    path = write(tmp_path, "events.csv", EVENTS_CSV)
    calls = []

    def fail_late(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 4:
            raise RuntimeError("disk full")

    with Store.open(tmp_path / "store.duckdb") as store:
        before = stored(store)
        with pytest.raises(RuntimeError, match="disk full"):
            ingest_file(store, "events", path, progress=fail_late, batch_rows=4)
        assert stored(store) == before
        result = ingest_file(store, "events", path, batch_rows=4)
    assert result.accepted == 5


def test_batches_rows_below_one_rejected(tmp_path):
    path = write(tmp_path, "events.csv", EVENTS_CSV)
    with Store.open(tmp_path / "store.duckdb") as store:
        with pytest.raises(ConfigError, match="batch_rows 0"):
            ingest_file(store, "events", path, batch_rows=0)
