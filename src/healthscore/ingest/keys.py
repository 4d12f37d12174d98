"""Store tables, key columns and the row text behind content-hash keys.

A row of events, survey responses or tickets without a source id is keyed by the
SHA-256 of its row text (see :func:`row_text`), a unit separator, and the number of
identical rows before it in the file. Both load paths use these definitions, so a file
gets the same keys whichever path loads it.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "FIELD_SEPARATOR",
    "KEY_COLUMNS",
    "NULL_TEXT",
    "SOURCE_IDS",
    "STORE_TABLES",
    "row_text",
]

STORE_TABLES = {
    "accounts": "accounts",
    "users": "users",
    "events": "events",
    "surveys": "survey_responses",
    "tickets": "tickets",
}
SOURCE_IDS = {"events": "event_id", "surveys": "response_id", "tickets": "ticket_id"}
KEY_COLUMNS = {
    "accounts": "account_id",
    "users": "user_id",
    "events": "event_key",
    "surveys": "response_key",
    "tickets": "ticket_key",
}

FIELD_SEPARATOR = "\x1f"
NULL_TEXT = "\x00"


def row_text(table: pa.Table, names: list[str]) -> pd.Series:
    """Return each row's values joined as text, the same for stored and new rows.

    Values are cast to text by pyarrow, so a float64 reads as ``16`` or ``1e+20``
    and a UTC timestamp as ``2024-01-02 19:04:59.880679Z``. Missing values become
    :data:`NULL_TEXT` and values are joined with :data:`FIELD_SEPARATOR`.
    """
    if table.num_rows == 0:
        return pd.Series([], dtype="object")
    parts = [pc.cast(table.column(name), pa.string()) for name in names]
    joined = pc.binary_join_element_wise(
        *parts, FIELD_SEPARATOR, null_handling="replace", null_replacement=NULL_TEXT
    )
    return pd.Series(joined.to_pylist(), dtype="object")
