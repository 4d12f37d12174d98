"""Fixtures for the metric tests: a DuckDB store file and a row writer."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pytest

from healthscore.store import TABLES, Store

RowWriter = Callable[[str, list[dict[str, Any]]], None]

# Values for the required columns, so that a test names only the columns it checks.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "account_attributes": {"kind": "text"},
    "events": {"event_name": "login"},
    "survey_responses": {"survey": "nps"},
}
_KEY_COLUMNS = {
    "events": "event_key",
    "survey_responses": "response_key",
    "tickets": "ticket_key",
}
_row_numbers = itertools.count()


def write_rows(store: Store, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert rows into a store table, filling the columns a row leaves out.

    A timestamp may be given as an ISO 8601 string with an offset, such as
    ``"2024-03-31T23:59:59+02:00"``.
    """
    schema = TABLES[table].to_pyarrow()
    filled = []
    for row in rows:
        values = {"load_id": "test-load", **_DEFAULTS.get(table, {}), **row}
        key_column = _KEY_COLUMNS.get(table)
        if key_column and key_column not in values:
            values[key_column] = f"{table}-{next(_row_numbers)}"
        filled.append(_parse_timestamps(values, schema))
    data = {name: [row.get(name) for row in filled] for name in schema.names}
    store.insert(table, pa.table(data, schema=schema))


def _parse_timestamps(values: dict[str, Any], schema: pa.Schema) -> dict[str, Any]:
    parsed = dict(values)
    for name, value in values.items():
        if isinstance(value, str) and pa.types.is_timestamp(schema.field(name).type):
            moment = dt.datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise ValueError(f"test timestamp {value!r} needs a UTC offset")
            parsed[name] = moment
    return parsed


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    """Open an empty store in a DuckDB file under tmp_path."""
    opened = Store.open(tmp_path / "s.duckdb")
    yield opened
    opened.close()


@pytest.fixture
def write(store: Store) -> RowWriter:
    """Return a function that inserts rows into the ``store`` fixture."""

    def writer(table: str, rows: list[dict[str, Any]]) -> None:
        write_rows(store, table, rows)

    return writer
