"""Open the healthscore store: an embedded DuckDB file reached through Ibis."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis.backends import BaseBackend
from ibis.backends.duckdb import Backend as DuckDBBackend
from ibis.backends.sql.datatypes import DuckDBType

from healthscore.exceptions import ConfigError, StoreError
from healthscore.store.schema import ADDED_COLUMNS, SCHEMA_VERSION, TABLES

__all__ = ["DEFAULT_STORE", "STORE_ENV_VAR", "Store", "resolve_store_path"]

logger = logging.getLogger(__name__)

STORE_ENV_VAR = "HEALTHSCORE_STORE"
DEFAULT_STORE = Path("healthscore.duckdb")


def resolve_store_path(path: str | Path | None = None) -> Path:
    """Return the store location: ``path``, else ``$HEALTHSCORE_STORE``, else default.

    Parameters
    ----------
    path
        An explicit location, as given by ``--store``.

    Returns
    -------
    Path
        The DuckDB file to open. The default is ``./healthscore.duckdb``.

    Raises
    ------
    ConfigError
        If the location is an existing directory.
    """
    if path is None:
        path = os.environ.get(STORE_ENV_VAR) or DEFAULT_STORE
    if str(path).strip() == "":
        raise ConfigError(
            "store path is empty; expected a DuckDB file name. Pass --store "
            "healthscore.duckdb or leave the option out.",
            field="store",
        )
    resolved = Path(path).expanduser()
    if resolved.is_dir():
        raise ConfigError(
            f"store path {str(resolved)!r} is a directory; expected a DuckDB file. "
            f"Pass a file name such as {str(resolved / 'healthscore.duckdb')!r}.",
            field="store",
        )
    return resolved


#: Size of the write-ahead log at which a commit also writes the log into the file.
#: DuckDB's default is 16 MB, so one daily job, whose ingest, rollup and snapshot
#: commits log more than that each, wrote to the file three times. With a larger
#: threshold the log is written once, when the store closes.
CHECKPOINT_THRESHOLD = "1GiB"

#: Bytes 8 to 11 of every DuckDB database file.
_DUCKDB_MAGIC = b"DUCK"

#: Extensions of data files that Ibis would read into a temporary in-memory database
#: instead of opening as a store.
_DATA_FILE_SUFFIXES = frozenset(
    {".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson", ".parquet", ".pq", ".gz"}
)


def _check_location(location: Path, create: bool) -> None:
    if location.suffix.lower() in _DATA_FILE_SUFFIXES:
        raise StoreError(
            f"store {str(location)!r} has the extension of a data file; expected a "
            "DuckDB store such as healthscore.duckdb. Pass data files to "
            "`healthscore ingest` and the store to --store."
        )
    if location.exists():
        _check_duckdb_file(location)
        return
    if not create:
        raise StoreError(
            f"store {str(location)!r} not found. Load data first with "
            "`healthscore ingest` or `healthscore demo`, or pass --store with the "
            "path of an existing store."
        )
    if not location.parent.is_dir():
        raise StoreError(
            f"cannot create the store {str(location)!r}: folder "
            f"{str(location.parent)!r} does not exist. Create it first or pass another "
            "--store."
        )


def _check_duckdb_file(location: Path) -> None:
    with location.open("rb") as file:
        header = file.read(12)
    if header[8:12] != _DUCKDB_MAGIC:
        raise StoreError(
            f"cannot open the store {str(location)!r}: it is not a DuckDB database "
            "file. Pass the path of a store written by healthscore, or a new file "
            "name to create one."
        )


class Store:
    """A connection to the store, with its tables created on first use.

    Parameters
    ----------
    backend
        A connected Ibis backend. Only a DuckDB backend can be written to.
    path
        The file behind it, or ``None`` for an in-memory store or another backend.

    Examples
    --------
    >>> store = Store.open(":memory:")
    >>> store.table("accounts").count().execute()
    0
    >>> store.close()
    """

    def __init__(self, backend: BaseBackend, path: Path | None) -> None:
        self.backend = backend
        self.path = path
        self._in_transaction = False

    @classmethod
    def from_backend(cls, backend: BaseBackend, path: Path | None = None) -> Store:
        """Wrap a connected Ibis backend whose store tables already exist.

        Unlike :meth:`open`, this creates no tables. Reading works on any backend
        that has the tables of :data:`~healthscore.store.TABLES`, such as the
        PySpark one of :func:`healthscore.store.spark.open_spark_store`. Writing
        needs DuckDB: on other backends ``insert`` and ``transaction`` raise
        :class:`StoreError`.
        """
        return cls(backend, path)

    @classmethod
    def open(cls, path: str | Path | None = None, *, create: bool = True) -> Store:
        """Open the store at ``path``, creating the file and its tables if needed.

        Parameters
        ----------
        path
            A DuckDB file, ``":memory:"``, or ``None`` for :func:`resolve_store_path`.
        create
            Create the file when it does not exist. With ``False`` a missing file
            raises :class:`StoreError`, which suits commands that only read.

        Raises
        ------
        StoreError
            If the file is missing and ``create`` is false, cannot be opened as a
            DuckDB database, or was written by a newer healthscore.
        """
        location: Path | None
        if str(path) == ":memory:":
            location = None
        else:
            location = resolve_store_path(path)
            _check_location(location, create)
        try:
            backend = ibis.duckdb.connect(
                ":memory:" if location is None else str(location)
            )
        except duckdb.Error as exc:
            reason = str(exc).rstrip(".!")
            raise StoreError(
                f"cannot open the store {str(location)!r}: {reason}. Check that it "
                "is a DuckDB file that no other process holds open, or pass another "
                "--store."
            ) from exc
        if location is not None:
            backend.raw_sql(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        store = cls(backend, location)
        try:
            store._create_missing_tables()
        except StoreError:
            backend.disconnect()
            raise
        logger.debug("opened store %s", location or ":memory:")
        return store

    def _create_missing_tables(self) -> None:
        existing = set(self.backend.list_tables())
        if existing and "schema_info" not in existing:
            raise StoreError(
                f"{str(self.path)!r} is a DuckDB database but not a healthscore "
                f"store: it has tables such as {sorted(existing)[:3]!r} and no "
                "schema_info table. Pass the path of a healthscore store, or a new "
                "file name to create one; healthscore does not add its tables to "
                "another database."
            )
        for name, schema in TABLES.items():
            if name not in existing:
                self.backend.create_table(name, schema=schema)
        self._add_missing_columns()
        info = self.backend.table("schema_info").to_pyarrow()
        if info.num_rows == 0:
            self.backend.insert(
                "schema_info", pa.table({"schema_version": [SCHEMA_VERSION]})
            )
            return
        found = max(info.column("schema_version").to_pylist())
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"store {str(self.path)!r} has schema version {found}, newer than "
                f"{SCHEMA_VERSION} of this healthscore. Upgrade healthscore."
            )

    def _add_missing_columns(self) -> None:
        """Add the nullable columns of ``ADDED_COLUMNS`` that an older store lacks.

        Existing rows read the new columns as null.
        """
        for name, columns in ADDED_COLUMNS.items():
            present = set(self.backend.table(name).columns)
            for column in columns:
                if column in present:
                    continue
                sql_type = DuckDBType.to_string(TABLES[name][column])
                self.backend.raw_sql(
                    f'ALTER TABLE "{name}" ADD COLUMN "{column}" {sql_type}'
                )
                logger.info("added column %s.%s to the store", name, column)

    def table(self, name: str) -> ir.Table:
        """Return the Ibis table expression for a store table."""
        if name not in TABLES:
            raise ConfigError(
                f"unknown store table {name!r}; expected one of {sorted(TABLES)}."
            )
        return self.backend.table(name)

    def insert(self, name: str, data: pa.Table) -> None:
        """Append Arrow rows to a store table, cast to the table's schema.

        Columns of the table that ``data`` lacks are filled with nulls.
        """
        self._check_writable("insert rows")
        if data.num_rows == 0:
            return
        target = TABLES[name].to_pyarrow()
        columns = [
            data.column(field.name).cast(field.type)
            if field.name in data.column_names
            else pa.nulls(data.num_rows, field.type)
            for field in target
        ]
        rows = pa.Table.from_arrays(columns, schema=target)
        # DuckDB 1.5 keeps an Arrow table registered through an Ibis memtable in
        # memory after the insert, so the rows go through a relation instead.
        self.backend.con.from_arrow(rows).insert_into(name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Run the block in one transaction: all of its writes land, or none do.

        Nested use joins the outer transaction.
        """
        self._check_writable("start a transaction")
        if self._in_transaction:
            yield self
            return
        self.backend.raw_sql("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            self.backend.raw_sql("ROLLBACK")
            raise
        else:
            self.backend.raw_sql("COMMIT")
        finally:
            self._in_transaction = False

    def _check_writable(self, action: str) -> None:
        if not isinstance(self.backend, DuckDBBackend):
            raise StoreError(
                f"cannot {action} on a {self.backend.name!r} store; only a DuckDB "
                "store can be written to. Load and score in a DuckDB store, then "
                "copy its tables with healthscore.store.spark.copy_tables."
            )

    def close(self) -> None:
        """Close the connection. The store object cannot be used afterwards."""
        self.backend.disconnect()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
