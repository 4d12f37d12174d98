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

SQL path: plain CSV, TSV and Parquet files of users, events, surveys and tickets
are loaded by :class:`~healthscore.ingest.fast.DuckDBLoad`, which writes what the
batch path below writes. DuckDB reads the file and inserts the rows whose values SQL
can type with certainty. Only the other rows go through the pandas validation.

Batches: on the batch path a file is read, validated and written ``batch_rows`` rows
at a time (a Parquet file is also read that way; other formats are read whole
first). Keys of
earlier batches stay in a table of the store until the load ends (see
:mod:`healthscore.ingest.seen`), so duplicates, conflicts and content-hash keys are
the same as for one batch. An accounts file is always one batch, because the type of
an inferred attribute depends on all of its values. Rejected rows are kept in memory
until the load ends, because the repeated-load check compares all of them.

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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot as sg

from healthscore.exceptions import ConfigError
from healthscore.ingest.fast import DuckDBLoad, FastSource, open_fast_source
from healthscore.ingest.keys import (
    FIELD_SEPARATOR,
    KEY_COLUMNS,
    SOURCE_IDS,
    STORE_TABLES,
    row_text,
)
from healthscore.ingest.mapping import ENTITIES, ENTITY_TARGETS, ColumnMapping
from healthscore.ingest.readers import RawTable, RejectedRow, SourceFile, open_source
from healthscore.ingest.seen import SeenKeys, arrow_relation
from healthscore.ingest.validation import (
    ResolvedMapping,
    ValidatedRows,
    resolve_mapping,
    validate_rows,
)
from healthscore.store import TABLES, Store

__all__ = ["IngestResult", "ingest_file"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]

# Rows read, validated and written at a time, unless the caller passes batch_rows.
BATCH_ROWS = 500_000
# Rows per insert statement; the progress callback runs after each.
CHUNK_ROWS = 100_000
# Keys per DELETE statement when replacing changed accounts or users.
DELETE_BATCH = 1_000


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
    # The position in the batch's RawTable of each row of ``table``.
    positions: np.ndarray
    attributes: pa.Table | None
    # The row of ``table`` that each attribute row belongs to.
    attribute_rows: np.ndarray | None


@dataclass
class _Totals:
    """Counts of a load summed over its batches."""

    rejected: list[RejectedRow] = dataclasses.field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    updated: int = 0
    unknown_accounts: int = 0


class _Progress:
    """Call the progress callback before the first write and after each chunk."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self._callback = callback
        self.total = total
        self._done = 0
        self._started = False

    def skip(self, rows: int) -> None:
        """Count rows that are not written; the first call reports the start."""
        self._done += rows
        if not self._started:
            self._started = True
            self._report()

    def write(self, rows: int) -> None:
        self._done += rows
        self._report()

    def write_first(self, rows: int) -> None:
        """Report the start if nothing was reported yet, then count written rows."""
        self.skip(0)
        self.write(rows)

    def finish(self) -> None:
        self._done = self.total
        self._report()

    def _report(self) -> None:
        if self._callback is not None:
            self._callback(self._done, self.total)


def ingest_file(
    store: Store,
    entity: str,
    path: str | Path,
    mapping: ColumnMapping | None = None,
    progress: ProgressCallback | None = None,
    batch_rows: int = BATCH_ROWS,
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
        once before the first write, after about every 100,000 rows processed, and
        once at the end. On the SQL path the counts in between are estimated from
        DuckDB's query progress.
    batch_rows
        The maximum number of rows read, validated and written at a time. Peak
        memory grows with it. An accounts file is always one batch, because the
        type of an inferred attribute depends on all of its values.

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
        If ``entity`` is unknown or ``batch_rows`` is less than 1.

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
    if batch_rows < 1:
        raise ConfigError(
            f"batch_rows {batch_rows!r} is too small; expected 1 or more rows.",
            field="batch_rows",
        )
    mapping = mapping or ColumnMapping()
    path = Path(path)
    fast = open_fast_source(entity, path, mapping)
    if fast is not None:
        outcome = _load_in_duckdb(store, entity, fast, mapping, progress, batch_rows)
        if outcome is not None:
            _log_result(*outcome)
            return outcome[0]

    source = open_source(path, mapping)
    try:
        resolved = resolve_mapping(
            entity, source.columns, mapping, path, nested_columns=source.nested_columns
        )
        with store.transaction():
            result, repeated = _load(
                store, entity, source, resolved, progress, batch_rows
            )
    finally:
        source.close()

    _log_result(result, repeated=repeated)
    return result


def _load(
    store: Store,
    entity: str,
    source: SourceFile,
    resolved: ResolvedMapping,
    progress: ProgressCallback | None,
    batch_rows: int,
) -> tuple[IngestResult, bool]:
    """Load every batch of ``source``; return the result and whether it repeats.

    Runs inside the load's transaction.
    """
    load_id = uuid.uuid4().hex
    totals = _Totals()
    report = _Progress(progress, source.rows_read)
    seen = SeenKeys(store, load_id)
    rows = None if entity == "accounts" else batch_rows
    for raw, last in _mark_last(source.batches(rows)):
        _load_batch(store, entity, raw, resolved, load_id, seen, totals, report, last)
    seen.drop()

    return _finish(
        store, entity, source.path, source.sha256, source.rows_read, resolved,
        load_id, totals, report,
    )  # fmt: skip


def _load_in_duckdb(
    store: Store,
    entity: str,
    source: FastSource,
    mapping: ColumnMapping,
    progress: ProgressCallback | None,
    batch_rows: int,
) -> tuple[IngestResult, bool] | None:
    """Load ``source`` with SQL; return ``None`` if it needs the batch path.

    Returns the result and whether the load repeats an earlier one, as
    :func:`_load` does. Nothing is written when it returns ``None``.
    """
    resolved = resolve_mapping(entity, source.columns, mapping, source.path)
    load_id = uuid.uuid4().hex
    load = DuckDBLoad(store.backend.con, source, resolved, load_id)
    with store.transaction():
        report = _Progress(progress, source.rows)
        if not load.run(min(batch_rows, CHUNK_ROWS), CHUNK_ROWS, report.write_first):
            logger.debug("%s needs the batch path", source.path)
            return None
        logger.debug("loaded %s with DuckDB SQL", source.path)
        report.total = load.rows_read
        report.skip(len(load.rejected) + load.duplicates)
        totals = _Totals(
            rejected=load.rejected,
            accepted=load.accepted,
            duplicates=load.duplicates,
            updated=load.updated,
            unknown_accounts=load.unknown_accounts,
        )
        return _finish(
            store, entity, source.path, source.sha256, load.rows_read, resolved,
            load_id, totals, report,
        )  # fmt: skip


def _finish(
    store: Store,
    entity: str,
    path: Path,
    sha256: str,
    rows_read: int,
    resolved: ResolvedMapping,
    load_id: str,
    totals: _Totals,
    report: _Progress,
) -> tuple[IngestResult, bool]:
    """Write the quarantine rows and the ``loads`` row, unless the load is a repeat."""
    rejected = sorted(totals.rejected, key=lambda row: row.row_number)
    result = IngestResult(
        load_id=load_id,
        entity=entity,
        source=str(path.resolve()),
        rows_read=rows_read,
        accepted=totals.accepted,
        rejected=len(rejected),
        duplicates=totals.duplicates,
        updated=totals.updated,
        reasons=dict(Counter(row.category for row in rejected)),
        skipped_columns=resolved.skipped_columns,
    )
    earlier = None
    if result.accepted == 0:
        earlier = _earlier_same_load(store, entity, sha256, rejected)
    if earlier is not None:
        report.finish()
        return dataclasses.replace(result, load_id=earlier), True

    store.insert("quarantine", _quarantine_table(rejected, result))
    store.insert("loads", _loads_table(result, sha256))
    report.finish()
    return dataclasses.replace(result, unknown_accounts=totals.unknown_accounts), False


def _mark_last(batches: Iterable[RawTable]) -> Iterator[tuple[RawTable, bool]]:
    """Yield each batch with whether it is the last one."""
    iterator = iter(batches)
    current = next(iterator, None)
    while current is not None:
        following = next(iterator, None)
        yield current, following is None
        current = following


def _load_batch(
    store: Store,
    entity: str,
    raw: RawTable,
    resolved: ResolvedMapping,
    load_id: str,
    seen: SeenKeys,
    totals: _Totals,
    report: _Progress,
    last: bool,
) -> None:
    """Validate one batch, drop its duplicates, and write its new and changed rows."""
    validated = validate_rows(raw, resolved)
    batch = _build_batch(entity, validated, raw, load_id, seen)
    batch, in_file_duplicates, conflicts = _dedupe_in_file(entity, batch, raw, seen)
    if not last:
        numbers = raw.row_numbers[batch.positions]
        seen.add(batch.keys, batch.fingerprints, numbers, _hashed(entity, batch))

    new, changed, stored_duplicates = _compare_with_store(store, entity, batch)
    totals.rejected.extend(validated.rejected)
    totals.rejected.extend(conflicts)
    totals.accepted += len(new) + len(changed)
    totals.duplicates += in_file_duplicates + stored_duplicates
    totals.updated += len(changed)
    skipped = len(validated.rejected) + len(conflicts)
    report.skip(skipped + in_file_duplicates + stored_duplicates)

    written = _write_rows(store, entity, batch, new, changed, report)
    totals.unknown_accounts += _count_unknown_accounts(store, entity, written)


def _hashed(entity: str, batch: _Batch) -> np.ndarray:
    """Return whether each row's key is a content hash (it has no source id)."""
    if entity not in SOURCE_IDS:
        return np.zeros(batch.table.num_rows, dtype=bool)
    ids = batch.table.column(SOURCE_IDS[entity])
    return ids.is_null().to_numpy(zero_copy_only=False)


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


def _count_unknown_accounts(store: Store, entity: str, written: pa.Table) -> int:
    """Count the written rows whose account_id is not in the accounts table."""
    if entity == "accounts" or written.num_rows == 0:
        return 0
    requested = pa.table({"account_id": written.column("account_id")})
    accounts = store.backend.con.table("accounts").set_alias("a")
    counted = (
        arrow_relation(store.backend.con, requested, "r")
        .join(accounts, "r.account_id = a.account_id", how="anti")
        .aggregate("count(*) AS n")
        .to_arrow_table()
    )
    return int(counted.column("n")[0].as_py())


def _attribute_text(attributes: pa.Table, groups: list[object]) -> dict[object, str]:
    """Return the attributes joined as text per group (a row or an account)."""
    frame = pd.DataFrame(
        {
            "group": pd.Series(groups, dtype="object"),
            "name": attributes.column("name").to_pylist(),
            "text": row_text(
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
    text = row_text(table, names)
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
    entity: str, validated: ValidatedRows, raw: RawTable, load_id: str, seen: SeenKeys
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
    keys = _keys(entity, pa.table(columns), text, seen)
    key_column = KEY_COLUMNS[entity]
    if key_column not in columns:
        columns[key_column] = pa.array(keys.tolist(), pa.string())
    table = pa.table({name: columns[name] for name in schema.names})
    positions = validated.values.index.to_numpy()
    return _Batch(table, keys, text, positions, attributes, attribute_rows)


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


def _keys(entity: str, table: pa.Table, text: pd.Series, seen: SeenKeys) -> pd.Series:
    """Return the store key of each row (see the module documentation).

    Occurrences of a row without a source id are counted from the start of the
    file, so rows in ``seen`` count too.
    """
    if entity in ("accounts", "users"):
        return pd.Series(table.column(KEY_COLUMNS[entity]).to_pylist(), dtype="object")

    keys = pd.Series(table.column(SOURCE_IDS[entity]).to_pylist(), dtype="object")
    without_id = text[keys.isna()]
    earlier = without_id.map(seen.hashed_counts(without_id)).fillna(0)
    occurrence = without_id.groupby(without_id).cumcount() + earlier.astype("int64")
    keys[without_id.index] = [
        hashlib.sha256(f"{row}{FIELD_SEPARATOR}{n}".encode()).hexdigest()
        for row, n in zip(without_id.tolist(), occurrence.tolist(), strict=True)
    ]
    return keys


def _dedupe_in_file(
    entity: str, batch: _Batch, raw: RawTable, seen: SeenKeys
) -> tuple[_Batch, int, list[RejectedRow]]:
    """Drop repeated keys: same values count as duplicates, other values conflict.

    A key repeats when it occurs earlier in the batch or is in ``seen``, the keys of
    earlier batches.
    """
    keys, text = batch.keys, batch.fingerprints
    first = ~keys.duplicated()
    earlier = seen.find(keys, text)
    if first.all() and earlier.empty:
        return batch, 0, []

    numbers = pd.Series(raw.row_numbers[batch.positions])
    same = text == text.groupby(keys).transform("first")
    first_number = numbers.groupby(keys).transform("first")
    positions = earlier.index.to_numpy()
    first.iloc[positions] = False
    same.iloc[positions] = earlier["same"].to_numpy(dtype=bool)
    first_number.iloc[positions] = earlier["row_number"].to_numpy()
    conflict = (~first & ~same).to_numpy()
    duplicates = int((~first & same).sum())

    conflicts = _conflict_rows(
        entity, raw, batch, conflict, first_number[conflict].tolist()
    )
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
        batch.positions[keep],
        attributes,
        attribute_rows,
    )
    return deduplicated, duplicates, conflicts


def _conflict_rows(
    entity: str,
    raw: RawTable,
    batch: _Batch,
    conflict: np.ndarray,
    earlier_numbers: list[int],
) -> list[RejectedRow]:
    """Return quarantine rows for the rows whose key has other values earlier."""
    if not conflict.any():
        return []
    positions = batch.positions[conflict]
    numbers = raw.row_numbers[positions]
    key_name = entity_key_name(entity)
    return [
        RejectedRow(
            number,
            raw_text,
            f"duplicate {key_name} {key!r} conflicts with row {earlier}, which has "
            "other values; keep one of the rows",
            "duplicate_conflict",
        )
        for number, raw_text, key, earlier in zip(
            numbers.tolist(),
            raw.raw_json_rows(positions),
            batch.keys[conflict].tolist(),
            earlier_numbers,
            strict=True,
        )
    ]


def entity_key_name(entity: str) -> str:
    """Return the column that identifies a row of ``entity`` in messages."""
    return SOURCE_IDS.get(entity, KEY_COLUMNS[entity])


def _stored_rows(store: Store, name: str, key: str, keys: pd.Series) -> pa.Table:
    """Fetch the stored rows of ``name`` whose ``key`` is among ``keys``."""
    requested = pa.table({"requested_key": pa.array(keys.tolist(), pa.string())})
    found = (
        store.backend.con.table(name)
        .set_alias("t")
        .join(
            arrow_relation(store.backend.con, requested, "r"),
            f"t.{key} = r.requested_key",
            how="semi",
        )
        .to_arrow_table()
    )
    return found.cast(TABLES[name].to_pyarrow())


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
        # NOTE: a stored event, survey answer or ticket is never replaced, so a
        # ticket sent again with a new status or resolved_at keeps its old values.
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


def _write_rows(
    store: Store,
    entity: str,
    batch: _Batch,
    new: pd.Series,
    changed: pd.Series,
    report: _Progress,
) -> pa.Table:
    """Replace the changed rows and insert the new ones; return the rows written."""
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
        report.write(chunk.num_rows)

    if batch.attributes is not None:
        mask = pc.is_in(
            batch.attributes.column("account_id"), pa.array(list(written), pa.string())
        )
        store.insert("account_attributes", batch.attributes.filter(mask))
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


def _loads_table(result: IngestResult, sha256: str) -> pa.Table:
    return pa.table(
        {
            "load_id": [result.load_id],
            "entity": [result.entity],
            "source": [result.source],
            "source_sha256": [sha256],
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
