"""Load one source file into the store: read, validate, deduplicate, write.

Keys: accounts are keyed by ``account_id`` and users by ``user_id``. Events, survey
responses and tickets are keyed by their source id (``event_id``, ``response_id``,
``ticket_id``) when a row has one, else by the SHA-256 of the row's parsed values and
the number of identical rows before it in the file. So genuine repeats within one file
are all kept, and loading the same file again adds nothing.

Duplicates: a key seen earlier in the same file is a duplicate when the values are the
same and a ``duplicate_conflict`` rejection when they differ. A key already in the store
is a duplicate for events, survey responses and tickets. An account or user already
stored is a duplicate when unchanged and is replaced when changed (an account's
attributes are replaced with it).

All writes of a load (rows, attributes, quarantine rows and the ``loads`` row) happen in
one transaction, so an error leaves the store as it was.

Repeated loads: loading the same file twice adds nothing. A load is a repeat when it
writes no rows (``accepted`` is 0) and an earlier load of the same entity, from a file
with the same SHA-256, quarantined exactly the same rows with the same reasons. A
repeat writes nothing at all, neither quarantine rows nor a ``loads`` row. Its result
has the counts of this attempt and the ``load_id`` of the earliest such load, whose
quarantine rows are the rejects. A load that writes rows, or rejects other rows (say
after a mapping change), is a new load and quarantines all of its rejects.

Unknown accounts: for users, events, surveys and tickets, ``unknown_accounts`` counts
the rows written by the load whose ``account_id`` is not in the accounts table after
the load. Such rows are kept, and a warning names the load.

Nested columns: with ``attributes: all`` (the default), an accounts column whose values
are nested (a JSON array or object, or a Parquet list, struct or map) does not become
an attribute, because an attribute stores one value. ``skipped_columns`` lists
such columns and one warning names them. A nested column that fills a target, or that
the mapping names as a source or in an ``attributes`` list, rejects every row with a
value in it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import logging
import operator
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot as sg

from healthscore.exceptions import ConfigError
from healthscore.ingest.mapping import ENTITIES, ENTITY_TARGETS, ColumnMapping
from healthscore.ingest.readers import RawTable, RejectedRow, read_source
from healthscore.ingest.validation import ValidatedRows, resolve_mapping, validate_rows
from healthscore.store import TABLES, Store

__all__ = ["IngestResult", "ingest_file"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]

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
# Rows per insert statement; the progress callback runs after each.
CHUNK_ROWS = 100_000
# Keys per DELETE statement when replacing changed accounts or users.
DELETE_BATCH = 1_000

_FIELD_SEPARATOR = "\x1f"
_NULL_TEXT = "\x00"


@dataclass(frozen=True)
class IngestResult:
    """Counts of one load.

    ``rows_read`` equals ``accepted + rejected + duplicates``. ``accepted`` counts
    the rows written, of which ``updated`` replaced a stored account or user.
    ``reasons`` maps each rejection category to its number of rows.
    ``unknown_accounts`` counts the accepted rows of users, events, surveys or
    tickets whose account is not in the accounts table. ``skipped_columns`` are the
    accounts columns of nested values that ``attributes: all`` left out. For a
    repeated load (see the module documentation) ``load_id`` is the earlier load's.
    """

    load_id: str
    entity: str
    source: str
    rows_read: int
    accepted: int
    rejected: int
    duplicates: int
    updated: int
    reasons: dict[str, int]
    unknown_accounts: int = 0
    skipped_columns: tuple[str, ...] = ()


@dataclass
class _Batch:
    """Accepted rows of a file as an Arrow table in store layout, with their keys."""

    table: pa.Table
    keys: pd.Series
    fingerprints: pd.Series
    attributes: pa.Table | None
    # The row of ``table`` that each attribute row belongs to.
    attribute_rows: np.ndarray | None


def ingest_file(
    store: Store,
    entity: str,
    path: str | Path,
    mapping: ColumnMapping | None = None,
    progress: ProgressCallback | None = None,
) -> IngestResult:
    """Load a CSV, JSON Lines, JSON or Parquet file into the store.

    Parameters
    ----------
    store
        The open store.
    entity
        What the file contains: one of :data:`ENTITIES`. Surveys go to the
        ``survey_responses`` table.
    path
        The file; its format comes from the mapping or the extension.
    mapping
        The column mapping, or ``None`` to match columns by name.
    progress
        Called as ``progress(done_rows, total_rows)`` a few times while writing:
        once before, after every 100,000 rows, and once at the end.

    Returns
    -------
    IngestResult
        The counts of the load and the rejection reasons. Loading a file again with
        the same outcome writes nothing and returns the earlier load's id.

    Raises
    ------
    InputDataError
        If the file cannot be loaded at all: missing, empty, unreadable, or without a
        required column. Nothing is stored then.
    MappingError
        If the mapping does not fit the entity.
    ConfigError
        If ``entity`` is unknown.

    Examples
    --------
    >>> result = ingest_file(store, "accounts", "accounts.csv")  # doctest: +SKIP
    >>> result.accepted, result.rejected  # doctest: +SKIP
    (120, 2)
    """
    if entity not in ENTITIES:
        raise ConfigError(
            f"unknown entity {entity!r}; expected one of {list(ENTITIES)}.",
            field="entity",
        )
    mapping = mapping or ColumnMapping()
    path = Path(path)
    source = str(path.resolve())

    raw = read_source(path, mapping)
    resolved = resolve_mapping(
        entity, raw.columns, mapping, path, nested_columns=raw.nested_columns
    )
    validated = validate_rows(raw, resolved)
    load_id = uuid.uuid4().hex

    batch = _build_batch(entity, validated, raw, load_id)
    batch, in_file_duplicates, conflicts = _dedupe_in_file(
        entity, batch, validated, raw
    )
    rejected = sorted(validated.rejected + conflicts, key=lambda row: row.row_number)

    with store.transaction():
        new, changed, stored_duplicates = _compare_with_store(store, entity, batch)
        result = IngestResult(
            load_id=load_id,
            entity=entity,
            source=source,
            rows_read=raw.rows_read,
            accepted=len(new) + len(changed),
            rejected=len(rejected),
            duplicates=in_file_duplicates + stored_duplicates,
            updated=len(changed),
            reasons=dict(Counter(row.category for row in rejected)),
            skipped_columns=resolved.skipped_columns,
        )
        earlier = None
        if result.accepted == 0:
            earlier = _earlier_same_load(store, entity, raw.sha256, rejected)
        if earlier is not None:
            _report_no_writes(progress, result.rows_read)
            result = dataclasses.replace(result, load_id=earlier)
        else:
            written = _write_load(
                store, entity, batch, new, changed, rejected, result, raw, progress
            )
            unknown = _count_unknown_accounts(store, entity, written)
            result = dataclasses.replace(result, unknown_accounts=unknown)

    _log_result(result, repeated=earlier is not None)
    return result


def _log_result(result: IngestResult, repeated: bool) -> None:
    if result.skipped_columns:
        logger.warning(
            "%s from %s: skipped columns %s because they contain nested values (JSON "
            "arrays or objects, or Parquet lists, structs or maps), which cannot be "
            "attributes. Flatten them into single values in the export, or list the "
            "attributes to keep under 'attributes:' in the mapping",
            result.entity, result.source, list(result.skipped_columns),
        )  # fmt: skip
    if repeated:
        logger.info(
            "nothing new in %s from %s: load %s already stored this file with the "
            "same outcome (%d rows read, %d rejected, %d duplicates)",
            result.entity, result.source, result.load_id, result.rows_read,
            result.rejected, result.duplicates,
        )  # fmt: skip
        return
    logger.info(
        "loaded %s from %s: %d rows read, %d accepted (%d updated), %d rejected, "
        "%d duplicates, load %s",
        result.entity, result.source, result.rows_read, result.accepted,
        result.updated, result.rejected, result.duplicates, result.load_id,
    )  # fmt: skip
    if result.unknown_accounts:
        logger.warning(
            "load %s: %d of %d accepted %s rows name an account_id that is not in "
            "the accounts table; load the accounts file too, or check the ids",
            result.load_id, result.unknown_accounts, result.accepted, result.entity,
        )  # fmt: skip


def _earlier_same_load(
    store: Store, entity: str, sha256: str, rejected: list[RejectedRow]
) -> str | None:
    """Return the earliest load of the same file that quarantined the same rows."""
    loads = store.table("loads")
    candidates = (
        loads.filter(
            (loads.entity == entity)
            & (loads.source_sha256 == sha256)
            & (loads.rejected == len(rejected))
        )
        .order_by(["loaded_at", "load_id"])
        .select("load_id")
        .to_pyarrow()
        .column("load_id")
        .to_pylist()
    )
    if not candidates:
        return None

    quarantine = store.table("quarantine")
    stored = (
        quarantine.filter(quarantine.load_id.isin(candidates))
        .select("load_id", "row_number", "reason", "raw")
        .to_pyarrow()
        .to_pylist()
    )
    by_load: dict[str, Counter[tuple[int, str, str]]] = {
        load_id: Counter() for load_id in candidates
    }
    for row in stored:
        by_load[row["load_id"]][(row["row_number"], row["reason"], row["raw"])] += 1
    current = Counter((row.row_number, row.reason, row.raw) for row in rejected)
    return next(
        (load_id for load_id in candidates if by_load[load_id] == current), None
    )


def _report_no_writes(progress: ProgressCallback | None, total: int) -> None:
    """Call ``progress`` as a load without rows would: before and at the end."""
    if progress is not None:
        progress(total, total)
        progress(total, total)


def _count_unknown_accounts(store: Store, entity: str, written: pa.Table) -> int:
    """Count the written rows whose account_id is not in the accounts table."""
    if entity == "accounts" or written.num_rows == 0:
        return 0
    ids = pc.unique(written.column("account_id"))
    requested = ibis.memtable(pa.table({"requested_id": ids}))
    accounts = store.table("accounts")
    unknown = requested.anti_join(
        accounts, requested.requested_id == accounts.account_id
    ).to_pyarrow()
    if unknown.num_rows == 0:
        return 0
    is_unknown = pc.is_in(written.column("account_id"), unknown.column("requested_id"))
    return int(pc.sum(is_unknown).as_py() or 0)


def _row_text(table: pa.Table, names: list[str]) -> pd.Series:
    """Return each row's values joined as text, the same for stored and new rows."""
    if table.num_rows == 0:
        return pd.Series([], dtype="object")
    parts = [pc.cast(table.column(name), pa.string()) for name in names]
    joined = pc.binary_join_element_wise(
        *parts, _FIELD_SEPARATOR, null_handling="replace", null_replacement=_NULL_TEXT
    )
    return pd.Series(joined.to_pylist(), dtype="object")


def _attribute_text(attributes: pa.Table, groups: list[object]) -> dict[object, str]:
    """Return the attributes joined as text per group (a row or an account)."""
    frame = pd.DataFrame(
        {
            "group": pd.Series(groups, dtype="object"),
            "name": attributes.column("name").to_pylist(),
            "text": _row_text(
                attributes, ["name", "kind", "number_value", "text_value"]
            ),
        }
    ).sort_values(["group", "name"], kind="stable")
    pairs = zip(frame["group"].tolist(), frame["text"].tolist(), strict=True)
    return {
        group: "\x1e".join(text for _, text in items)
        for group, items in itertools.groupby(pairs, key=operator.itemgetter(0))
    }


def _fingerprints(
    entity: str,
    table: pa.Table,
    attributes: pa.Table | None,
    attribute_rows: np.ndarray | None = None,
) -> pd.Series:
    """Return each row's values, and for accounts its attributes, as one text.

    ``attribute_rows`` gives the row of ``table`` that each attribute belongs to;
    without it, attributes belong to the row with their ``account_id``.
    """
    names = [target.name for target in ENTITY_TARGETS[entity]]
    text = _row_text(table, names)
    if attributes is None or attributes.num_rows == 0:
        return text
    if attribute_rows is None:
        groups = pd.Series(table.column("account_id").to_pylist(), dtype="object")
        by_group = _attribute_text(
            attributes, attributes.column("account_id").to_pylist()
        )
    else:
        groups = pd.Series(range(table.num_rows), dtype="object")
        by_group = _attribute_text(attributes, attribute_rows.tolist())
    return text + "\x1d" + groups.map(by_group).fillna("")


def _build_batch(
    entity: str, validated: ValidatedRows, raw: RawTable, load_id: str
) -> _Batch:
    schema = TABLES[STORE_TABLES[entity]].to_pyarrow()
    values = validated.values.reset_index(drop=True)
    table = pa.Table.from_pandas(values, preserve_index=False)
    count = table.num_rows
    columns = {
        field.name: table.column(field.name).cast(field.type)
        for field in schema
        if field.name in table.column_names
    }
    columns["load_id"] = pa.array([load_id] * count, pa.string())

    attributes, attribute_rows = None, None
    if entity == "accounts":
        attributes, attribute_rows = _attribute_table(validated, values, load_id)
    text = _fingerprints(entity, pa.table(columns), attributes, attribute_rows)
    keys = _keys(entity, pa.table(columns), text)
    key_column = KEY_COLUMNS[entity]
    if key_column not in columns:
        columns[key_column] = pa.array(keys.tolist(), pa.string())
    table = pa.table({name: columns[name] for name in schema.names})
    return _Batch(table, keys, text, attributes, attribute_rows)


def _attribute_table(
    validated: ValidatedRows, values: pd.DataFrame, load_id: str
) -> tuple[pa.Table, np.ndarray]:
    attributes = validated.attributes
    row_of_position = pd.Series(range(len(values)), index=validated.values.index)
    account_ids = values["account_id"].to_numpy()
    rows = row_of_position.loc[attributes["position"]].to_numpy(dtype="int64")
    schema = TABLES["account_attributes"].to_pyarrow()
    table = pa.table(
        {
            "account_id": pa.array(account_ids[rows].tolist(), pa.string()),
            "name": pa.array(attributes["name"].tolist(), pa.string()),
            "kind": pa.array(attributes["kind"].tolist(), pa.string()),
            "number_value": pa.array(attributes["number_value"], pa.float64()),
            "text_value": pa.array(attributes["text_value"].tolist(), pa.string()),
            "load_id": pa.array([load_id] * len(attributes), pa.string()),
        },
        schema=schema,
    )
    return table, rows


def _keys(entity: str, table: pa.Table, text: pd.Series) -> pd.Series:
    """Return the store key of each row (see the module documentation)."""
    if entity in ("accounts", "users"):
        return pd.Series(table.column(KEY_COLUMNS[entity]).to_pylist(), dtype="object")

    keys = pd.Series(table.column(SOURCE_IDS[entity]).to_pylist(), dtype="object")
    without_id = text[keys.isna()]
    occurrence = without_id.groupby(without_id).cumcount()
    keys[without_id.index] = [
        hashlib.sha256(f"{row}{_FIELD_SEPARATOR}{n}".encode()).hexdigest()
        for row, n in zip(without_id.tolist(), occurrence.tolist(), strict=True)
    ]
    return keys


def _dedupe_in_file(
    entity: str, batch: _Batch, validated: ValidatedRows, raw: RawTable
) -> tuple[_Batch, int, list[RejectedRow]]:
    """Drop repeated keys: same values count as duplicates, other values conflict."""
    keys, text = batch.keys, batch.fingerprints
    first = ~keys.duplicated()
    if first.all():
        return batch, 0, []

    positions = pd.Series(validated.values.index.to_numpy())
    numbers = pd.Series(raw.row_numbers[positions.to_numpy()])
    same = text == text.groupby(keys).transform("first")
    first_number = numbers.groupby(keys).transform("first")
    conflict = (~first & ~same).to_numpy()
    duplicates = int((~first & same).sum())

    key_name = entity_key_name(entity)
    raw_rows = raw.raw_json_rows(positions[conflict].to_numpy())
    conflicts = [
        RejectedRow(
            number,
            raw_text,
            f"duplicate {key_name} {key!r} conflicts with row {earlier}, which has "
            "other values; keep one of the rows",
            "duplicate_conflict",
        )
        for number, raw_text, key, earlier in zip(
            numbers[conflict].tolist(),
            raw_rows,
            keys[conflict].tolist(),
            first_number[conflict].tolist(),
            strict=True,
        )
    ]
    keep = first.to_numpy()
    attributes, attribute_rows = batch.attributes, batch.attribute_rows
    if attributes is not None and attribute_rows is not None:
        new_row = np.cumsum(keep) - 1
        keep_attribute = keep[attribute_rows]
        attributes = attributes.filter(pa.array(keep_attribute))
        attribute_rows = new_row[attribute_rows[keep_attribute]]
    deduplicated = _Batch(
        batch.table.filter(pa.array(keep)),
        keys[keep].reset_index(drop=True),
        text[keep].reset_index(drop=True),
        attributes,
        attribute_rows,
    )
    return deduplicated, duplicates, conflicts


def entity_key_name(entity: str) -> str:
    """Return the column that identifies a row of ``entity`` in messages."""
    return SOURCE_IDS.get(entity, KEY_COLUMNS[entity])


def _stored_rows(store: Store, name: str, key: str, keys: pd.Series) -> pa.Table:
    """Fetch the stored rows of ``name`` whose ``key`` is among ``keys``."""
    key_table = ibis.memtable(
        pa.table({"requested_key": pa.array(keys.tolist(), pa.string())})
    )
    table = store.table(name)
    matches = table.semi_join(key_table, table[key] == key_table.requested_key)
    return matches.to_pyarrow()


def _compare_with_store(
    store: Store, entity: str, batch: _Batch
) -> tuple[pd.Series, pd.Series, int]:
    """Split the batch keys into new, changed and stored-unchanged ones.

    Returns the new keys, the changed keys and the number of unchanged rows.
    """
    keys = batch.keys
    if keys.empty:
        return keys, keys, 0
    key = KEY_COLUMNS[entity]
    stored = _stored_rows(store, STORE_TABLES[entity], key, keys)
    stored_keys = pd.Series(stored.column(key).to_pylist(), dtype="object")
    exists = keys.isin(set(stored_keys))
    if entity not in ("accounts", "users"):
        return keys[~exists], keys.iloc[0:0], int(exists.sum())

    attributes = None
    if entity == "accounts":
        attributes = _stored_rows(store, "account_attributes", "account_id", keys)
    stored_text = _fingerprints(entity, stored, attributes)
    stored_by_key = pd.Series(stored_text.to_numpy(), index=stored_keys.to_numpy())
    unchanged = exists & (keys.map(stored_by_key) == batch.fingerprints)
    changed = exists & ~unchanged
    return keys[~exists], keys[changed], int(unchanged.sum())


def _delete_keys(store: Store, name: str, key: str, keys: list[str]) -> None:
    for start in range(0, len(keys), DELETE_BATCH):
        chunk = keys[start : start + DELETE_BATCH]
        statement = sg.delete(name, where=sg.column(key).isin(*chunk))
        store.backend.raw_sql(statement.sql(dialect=store.backend.name))


def _write_load(
    store: Store,
    entity: str,
    batch: _Batch,
    new: pd.Series,
    changed: pd.Series,
    rejected: list[RejectedRow],
    result: IngestResult,
    raw: RawTable,
    progress: ProgressCallback | None,
) -> pa.Table:
    """Write the rows, attributes, quarantine rows and loads row; return the rows."""
    total = result.rows_read
    done = result.rejected + result.duplicates
    report = progress or (lambda done, total: None)
    report(done, total)

    name = STORE_TABLES[entity]
    key = KEY_COLUMNS[entity]
    if not changed.empty:
        _delete_keys(store, name, key, changed.tolist())
        if entity == "accounts":
            _delete_keys(store, "account_attributes", "account_id", changed.tolist())

    written = set(new) | set(changed)
    keep = batch.keys.isin(written).to_numpy()
    rows = batch.table.filter(pa.array(keep))
    for start in range(0, rows.num_rows, CHUNK_ROWS):
        chunk = rows.slice(start, CHUNK_ROWS)
        store.insert(name, chunk)
        done += chunk.num_rows
        report(done, total)

    if batch.attributes is not None:
        mask = pc.is_in(
            batch.attributes.column("account_id"), pa.array(list(written), pa.string())
        )
        store.insert("account_attributes", batch.attributes.filter(mask))
    store.insert("quarantine", _quarantine_table(rejected, result))
    store.insert("loads", _loads_table(result, raw))
    report(total, total)
    return rows


def _quarantine_table(rejected: list[RejectedRow], result: IngestResult) -> pa.Table:
    count = len(rejected)
    now = dt.datetime.now(dt.UTC)
    return pa.table(
        {
            "load_id": [result.load_id] * count,
            "entity": [result.entity] * count,
            "source": [result.source] * count,
            "row_number": pa.array([row.row_number for row in rejected], pa.int64()),
            "raw": [row.raw for row in rejected],
            "reason": [row.reason for row in rejected],
            "quarantined_at": pa.array([now] * count, pa.timestamp("us", tz="UTC")),
        }
    )


def _loads_table(result: IngestResult, raw: RawTable) -> pa.Table:
    return pa.table(
        {
            "load_id": [result.load_id],
            "entity": [result.entity],
            "source": [result.source],
            "source_sha256": [raw.sha256],
            "rows_read": pa.array([result.rows_read], pa.int64()),
            "accepted": pa.array([result.accepted], pa.int64()),
            "rejected": pa.array([result.rejected], pa.int64()),
            "duplicates": pa.array([result.duplicates], pa.int64()),
            "updated": pa.array([result.updated], pa.int64()),
            "loaded_at": pa.array(
                [dt.datetime.now(dt.UTC)], pa.timestamp("us", tz="UTC")
            ),
        }
    )
