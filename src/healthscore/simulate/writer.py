"""Parquet output of the simulator: one file per table, events in part files.

Every file is written with the same settings (:data:`PARQUET_OPTIONS`) and a row group
per block of accounts, so the same data gives the same bytes. The bytes also depend
on the pyarrow version, which records itself in the file footer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["PARQUET_OPTIONS", "EventPartWriter", "TableWriter"]

logger = logging.getLogger(__name__)

# Without the stored Arrow schema, dictionary-typed columns read back as plain strings.
PARQUET_OPTIONS = {
    "version": "2.6",
    "compression": "zstd",
    "compression_level": 3,
    "write_statistics": True,
    "data_page_version": "1.0",
    "store_schema": False,
}
# Columns with a distinct value per row, where dictionary encoding only costs time.
UNIQUE_COLUMNS = frozenset({"event_id", "response_id", "ticket_id"})


class TableWriter:
    """Write the blocks of one table to one Parquet file, counting rows."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.rows = 0
        dictionary = [name for name in schema.names if name not in UNIQUE_COLUMNS]
        self._writer = pq.ParquetWriter(
            path, schema, use_dictionary=dictionary, **PARQUET_OPTIONS
        )

    def write(self, table: pa.Table) -> None:
        """Append a table as one row group; an empty table writes nothing."""
        if table.num_rows:
            self._writer.write_table(table, row_group_size=table.num_rows)
        self.rows += table.num_rows

    def close(self) -> None:
        """Finish the file."""
        self._writer.close()

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class EventPartWriter:
    """Write events to ``part-00000.parquet``, ``part-00001.parquet``... in a folder.

    Part ``k`` contains the events of accounts ``k * chunk_accounts`` up to
    ``(k + 1) * chunk_accounts - 1`` (0-based positions), so the split depends only on
    ``chunk_accounts``. Blocks must arrive in account order.
    """

    def __init__(self, folder: Path, schema: pa.Schema, chunk_accounts: int) -> None:
        self.folder = folder
        self.schema = schema
        self.chunk_accounts = chunk_accounts
        self.paths: list[Path] = []
        self.rows = 0
        self._part: TableWriter | None = None

    def write(
        self, table: pa.Table, account: np.ndarray, first: int, count: int
    ) -> None:
        """Write a block's events, split at part boundaries.

        ``account`` is each row's account position within the block, whose accounts
        are ``first`` to ``first + count - 1``. Rows must be sorted by account.
        """
        position = first
        while position < first + count:
            part = position // self.chunk_accounts
            end = min((part + 1) * self.chunk_accounts, first + count)
            rows = np.searchsorted(account, [position - first, end - first])
            self._part_writer(part).write(table.slice(rows[0], rows[1] - rows[0]))
            position = end

    def _part_writer(self, part: int) -> TableWriter:
        if part == len(self.paths) - 1 and self._part is not None:
            return self._part
        self._close_part()
        path = self.folder / f"part-{part:05d}.parquet"
        logger.debug("Writing events to %s", path)
        self._part = TableWriter(path, self.schema)
        self.paths.append(path)
        return self._part

    def _close_part(self) -> None:
        if self._part is not None:
            self.rows += self._part.rows
            self._part.close()
            self._part = None

    def close(self) -> None:
        """Finish the open part file."""
        self._close_part()

    def __enter__(self) -> EventPartWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
