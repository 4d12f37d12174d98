"""Remember the keys of a file loaded in batches, to find repeats across batches.

The keys live in a DuckDB table of the store, created inside the load's transaction
and dropped before it commits, so other connections cannot read it. For a store in a
file, DuckDB 1.5.6 writes large uncommitted appends to that file. Memory therefore
does not grow with the number of keys as it would for a Python set. An in-memory
store keeps the keys in memory. Each key keeps a 128-bit digest of its row's
fingerprint text (DuckDB's ``md5_number``), so two rows count as equal when their
texts have the same MD5.
"""

from __future__ import annotations

import logging

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from healthscore.store import Store

__all__ = ["SeenKeys", "arrow_relation"]

logger = logging.getLogger(__name__)


def arrow_relation(
    connection: duckdb.DuckDBPyConnection, rows: pa.Table, alias: str
) -> duckdb.DuckDBPyRelation:
    """Return Arrow rows as a DuckDB relation named ``alias`` in join conditions.

    Lookups use the relational API because, with DuckDB 1.5.6, an Arrow table
    passed to ``register`` (which Ibis memtables use) or queried through
    ``DuckDBPyRelation.query`` stays in memory until the connection closes.
    """
    return connection.from_arrow(rows).set_alias(alias)


class SeenKeys:
    """The keys of the rows accepted so far by one load.

    Each key keeps the digest of its row's fingerprint text, the file row number of
    its first occurrence, and whether the key is a content hash (a row without a
    source id).

    Parameters
    ----------
    store
        The store whose DuckDB connection holds the table.
    load_id
        The load, which names the table.
    """

    def __init__(self, store: Store, load_id: str) -> None:
        self._connection = store.backend.con
        self._table = f"ingest_seen_{load_id}"
        self._created = False

    def add(
        self,
        keys: pd.Series,
        texts: pd.Series,
        row_numbers: np.ndarray,
        hashed: np.ndarray,
    ) -> None:
        """Store the keys of newly accepted rows, which must not be stored yet."""
        if keys.empty:
            return
        if not self._created:
            self._connection.execute(
                f"CREATE TABLE {self._table} (key VARCHAR, "
                "digest UHUGEINT, row_number BIGINT, hashed BOOLEAN)"
            )
            self._created = True
        rows = pa.table(
            {
                "key": pa.array(keys.tolist(), pa.string()),
                "text": pa.array(texts.tolist(), pa.string()),
                "row_number": pa.array(row_numbers, pa.int64()),
                "hashed": pa.array(hashed, pa.bool_()),
            }
        )
        relation = arrow_relation(self._connection, rows, "r").project(
            "key, md5_number(text) AS digest, row_number, hashed"
        )
        relation.insert_into(self._table)

    def hashed_counts(self, texts: pd.Series) -> pd.Series:
        """Count the stored content-hash keys per fingerprint text.

        Returns a Series indexed by the distinct ``texts`` that have stored keys.
        """
        if not self._created or texts.empty:
            return pd.Series([], dtype="int64")
        requested = pa.table({"text": pa.array(texts.unique().tolist(), pa.string())})
        digests = arrow_relation(self._connection, requested, "r").project(
            "text, md5_number(text) AS digest"
        )
        stored = self._connection.table(self._table).filter("hashed").set_alias("s")
        found = (
            digests.set_alias("r")
            .join(stored, "r.digest = s.digest")
            .aggregate("r.text AS text, count(*) AS n", "r.text")
            .to_arrow_table()
        )
        return pd.Series(
            found.column("n").to_numpy(),
            index=found.column("text").to_pylist(),
            dtype="int64",
        )

    def find(self, keys: pd.Series, texts: pd.Series) -> pd.DataFrame:
        """Find the rows whose key is stored.

        Returns a frame indexed by position in ``keys`` with the stored
        ``row_number`` and ``same``, whether the row's text has the stored digest.
        """
        if not self._created or keys.empty:
            return pd.DataFrame(
                {"row_number": pd.Series([], dtype="int64"), "same": []},
                index=pd.Index([], dtype="int64"),
            )
        requested = pa.table(
            {
                "position": pa.array(np.arange(len(keys)), pa.int64()),
                "key": pa.array(keys.tolist(), pa.string()),
                "text": pa.array(texts.tolist(), pa.string()),
            }
        )
        stored = self._connection.table(self._table).set_alias("s")
        found = (
            arrow_relation(self._connection, requested, "r")
            .join(stored, "r.key = s.key")
            .project("r.position, s.row_number, s.digest = md5_number(r.text) AS same")
            .to_arrow_table()
        )
        return pd.DataFrame(
            {
                "row_number": found.column("row_number").to_numpy(),
                "same": found.column("same").to_numpy(zero_copy_only=False),
            },
            index=pd.Index(found.column("position").to_numpy(), dtype="int64"),
        )

    def drop(self) -> None:
        """Drop the table."""
        if self._created:
            self._connection.execute(f"DROP TABLE {self._table}")
            self._created = False
