"""Read CSV, JSON Lines, JSON and Parquet files into columns of text.

Every reader returns a :class:`RawTable`: one ``str`` column per source column holding
the values as read, the row number of each row, and the rows that could not be split
into fields at all, ready for the quarantine table. A reader also reports cells that
no column type can accept (see ``RawTable.cell_errors``); the validation rejects a row
for such a cell only when a target or attribute uses its column.

Row numbers count from 1. In a delimited file the header is row 0 and a row's number is
the line it starts on minus the header's line, so blank lines and values that span lines
keep the numbers equal to line numbers minus one. In JSON Lines a row's number is its
line number, in a JSON array its position, and in Parquet its position.

Delimited files are split by Python's :mod:`csv` module. A record that spans several
lines and then has the wrong number of fields is taken to start with an unbalanced
quote: its first line is rejected and reading restarts on the next line, so one stray
quote cannot swallow the rest of the file. Bytes that are invalid in the declared
encoding reject the rows that contain them.

JSON values become text: strings as they are, ``true``/``false``, and numbers as
Python writes them (``12``, ``2.5``). A number beyond the float64 range such as
``1e400`` keeps its literal text, so a number column rejects it as not finite. An
array or object, and the ``NaN``, ``Infinity`` and ``-Infinity`` literals that
Python's :mod:`json` accepts but JSON does not allow, are invalid cells. In Parquet,
list, struct and map values are invalid cells. ``RawTable.nested_columns`` names the
columns with such nested values, which ``attributes: all`` leaves out.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from healthscore.exceptions import InputDataError
from healthscore.ingest.mapping import ColumnMapping, CsvOptions

__all__ = [
    "RawTable",
    "RejectedRow",
    "SourceFile",
    "open_source",
    "read_source",
    "resolve_format",
]

logger = logging.getLogger(__name__)

EXTENSION_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}

# Bytes per read when hashing a file that is streamed.
HASH_CHUNK_BYTES = 1 << 20

_GUESSED_DELIMITERS = (",", ";", "\t", "|")
_SURROGATE = re.compile("[\udc80-\udcff]")
_LINE_KEY = "_line"
_EXTRA_KEY = "_extra_fields"


@dataclass(frozen=True)
class RejectedRow:
    """A row for the quarantine table.

    ``raw`` is a JSON object of the row's values as read. A row that could not be
    split into fields has its whole text under ``"_line"``.
    """

    row_number: int
    raw: str
    reason: str
    category: str


@dataclass
class RawTable:
    """The rows of a source file, as text.

    ``frame`` has one ``str`` column per source column, NA where a row has no value,
    and is aligned with ``row_numbers``. ``rows_read`` counts the rows in ``frame``
    plus the rows in ``rejected``. ``cell_errors`` maps a source column to a Series,
    indexed by position in ``frame``, of what was expected in place of each cell
    that is not a single value. ``nested_columns`` lists, in file order, the columns
    of a JSON file with a non-null array or object value, and the Parquet columns
    of a list, struct or map type.
    """

    columns: list[str]
    frame: pd.DataFrame
    row_numbers: np.ndarray
    rejected: list[RejectedRow] = field(default_factory=list)
    sha256: str = ""
    decimal: str = "."
    cell_errors: dict[str, pd.Series] = field(default_factory=dict)
    nested_columns: tuple[str, ...] = ()

    @property
    def rows_read(self) -> int:
        """All data rows of the file, rejected ones included."""
        return len(self.frame) + len(self.rejected)

    def raw_json_rows(self, positions: np.ndarray) -> list[str]:
        """Return the JSON objects of rows of ``frame``, with values as read."""
        subset = self.frame.iloc[positions].astype("object")
        subset = subset.where(subset.notna(), None)
        return [
            json.dumps(row, ensure_ascii=False) for row in subset.to_dict("records")
        ]


def resolve_format(path: Path, mapping: ColumnMapping) -> str:
    """Return the file format: the mapping's ``format``, else from the extension."""
    if mapping.format is not None:
        return mapping.format
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    if suffix not in EXTENSION_FORMATS:
        raise InputDataError(
            f"cannot tell the format from the extension {suffix!r}; expected one of "
            f"{sorted(EXTENSION_FORMATS)} (optionally gzipped as .gz). Rename the file "
            "or set 'format:' in the mapping.",
            path=path,
        )
    return EXTENSION_FORMATS[suffix]


def read_source(path: str | Path, mapping: ColumnMapping) -> RawTable:
    """Read a data file into a :class:`RawTable`.

    Parameters
    ----------
    path
        A CSV, TSV, TXT, JSON Lines, JSON or Parquet file, optionally gzipped.
    mapping
        Supplies the format and the CSV reader options.

    Raises
    ------
    InputDataError
        If the file is missing, unreadable, has no rows, or has no usable header.
    """
    path = Path(path)
    fmt = resolve_format(path, mapping)
    data = _read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    if path.suffix.lower() == ".gz":
        data = _gunzip(data, path)

    if fmt == "parquet":
        table = _read_parquet(data, path)
    elif fmt in ("json", "jsonl"):
        table = _read_json(data, path, array=fmt == "json")
    else:
        table = _read_delimited(data, path, mapping.csv, tsv=fmt == "tsv")
        table.decimal = mapping.csv.decimal
    table.sha256 = digest

    if table.rows_read == 0:
        raise _no_rows_error(path)
    logger.debug("read %d rows from %s as %s", table.rows_read, path, fmt)
    return table


@dataclass
class SourceFile:
    """A data file opened for reading in batches.

    ``columns``, ``nested_columns``, ``rows_read`` and ``sha256`` describe the whole
    file and are known before the first batch. A Parquet file that is not gzipped is
    read one batch at a time. Other formats are read whole, then split into batches.
    """

    path: Path
    columns: list[str]
    nested_columns: tuple[str, ...]
    rows_read: int
    sha256: str
    decimal: str
    _whole: RawTable | None = None
    _parquet: pq.ParquetFile | None = None

    def batches(self, rows: int | None) -> Iterator[RawTable]:
        """Yield the file's rows in batches of at most ``rows`` rows.

        ``None`` yields one batch with every row. Row numbers are those of the file,
        and the rows a reader rejected come with the first batch.

        Raises
        ------
        InputDataError
            If a Parquet row group cannot be read.
        """
        if self._parquet is not None:
            yield from self._parquet_batches(rows)
        elif self._whole is not None:
            yield from _split_raw(self._whole, rows)

    def close(self) -> None:
        """Close the Parquet file, if one is open."""
        if self._parquet is not None:
            self._parquet.close()

    def _parquet_batches(self, rows: int | None) -> Iterator[RawTable]:
        parquet = self._parquet
        assert parquet is not None
        size = rows or max(parquet.metadata.num_rows, 1)
        number = 1
        try:
            for record_batch in parquet.iter_batches(batch_size=size):
                table = pa.Table.from_batches([record_batch])
                yield _parquet_raw(table, first_number=number)
                number += table.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise _parquet_error(exc, self.path) from exc


def open_source(path: str | Path, mapping: ColumnMapping) -> SourceFile:
    """Open a data file for :meth:`SourceFile.batches`.

    A Parquet file is hashed and its footer read; the rows are read later, one batch
    at a time. Other files are read and parsed whole, as by :func:`read_source`.

    Raises
    ------
    InputDataError
        If the file is missing, unreadable, has no rows, or has no usable header.
    """
    path = Path(path)
    fmt = resolve_format(path, mapping)
    if fmt != "parquet" or path.suffix.lower() == ".gz":
        raw = read_source(path, mapping)
        return SourceFile(
            path, raw.columns, raw.nested_columns, raw.rows_read, raw.sha256,
            raw.decimal, _whole=raw,
        )  # fmt: skip

    digest = _hash_file(path)
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise _parquet_error(exc, path) from exc
    if parquet.metadata.num_rows == 0:
        raise _no_rows_error(path)
    schema = parquet.schema_arrow
    return SourceFile(
        path,
        [str(name) for name in schema.names],
        _parquet_nested_columns(schema),
        parquet.metadata.num_rows,
        digest,
        ".",
        _parquet=parquet,
    )


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    except FileNotFoundError as exc:
        raise InputDataError("file not found. Check the path.", path=path) from exc
    except OSError as exc:
        raise InputDataError(
            f"cannot read the file: {exc.strerror}. Check the path and permissions.",
            path=path,
        ) from exc
    return digest.hexdigest()


def _no_rows_error(path: Path) -> InputDataError:
    return InputDataError(
        "the file has no rows. Check that it is the right file and that the "
        "export finished.",
        path=path,
    )


def _split_raw(raw: RawTable, rows: int | None) -> Iterator[RawTable]:
    """Yield slices of ``raw``; the reader's rejected rows go with the first one."""
    total = len(raw.frame)
    if rows is None or total <= rows:
        yield raw
        return
    for start in range(0, total, rows):
        stop = min(start + rows, total)
        frame = raw.frame.iloc[start:stop].reset_index(drop=True)
        errors = {}
        for name, cells in raw.cell_errors.items():
            inside = cells[(cells.index >= start) & (cells.index < stop)]
            errors[name] = pd.Series(
                inside.to_numpy(), index=inside.index - start, dtype="object"
            )
        yield RawTable(
            raw.columns,
            frame,
            raw.row_numbers[start:stop],
            raw.rejected if start == 0 else [],
            raw.sha256,
            raw.decimal,
            errors,
            raw.nested_columns,
        )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise InputDataError("file not found. Check the path.", path=path) from exc
    except OSError as exc:
        raise InputDataError(
            f"cannot read the file: {exc.strerror}. Check the path and permissions.",
            path=path,
        ) from exc


def _gunzip(data: bytes, path: Path) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise InputDataError(
            f"the file ends in .gz but is not valid gzip data ({exc}). "
            "Decompress it or fix the name.",
            path=path,
        ) from exc


def _decode(data: bytes, encoding: str) -> tuple[str, bool]:
    """Decode bytes; return the text and whether some bytes were invalid.

    Invalid bytes become lone surrogates (``surrogateescape``), which
    :func:`_has_bad_bytes` finds later.
    """
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding), False
    except UnicodeDecodeError:
        return data.decode(encoding, errors="surrogateescape"), True


def _has_bad_bytes(values: Iterable[str]) -> bool:
    return any(_SURROGATE.search(value) for value in values)


def _show_bad_bytes(value: str) -> str:
    """Write invalid bytes as ``\\xNN`` so the text can be stored."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _encoding_reason(encoding: str) -> str:
    return (
        f"the row contains bytes that are not valid {encoding}; if the file is a "
        "Windows or older export, set 'csv: {encoding: latin-1}' (or cp1252) in the "
        "mapping"
    )


def _text_json(values: dict[str, Any]) -> str:
    printable = {
        key: _show_bad_bytes(value) if isinstance(value, str) else value
        for key, value in values.items()
    }
    return json.dumps(printable, ensure_ascii=False)


# Delimited text


def _guess_delimiter(header: str, tsv: bool) -> str:
    if tsv:
        return "\t"
    counts = {d: header.count(d) for d in _GUESSED_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    if counts[best] > 0:
        return best
    if re.search(r"\S\s+\S", header.strip()):
        return "whitespace"
    return ","


def _header_names(fields: list[str], path: Path) -> list[str]:
    names = [
        name.strip() or f"column_{position}"
        for position, name in enumerate(fields, start=1)
    ]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputDataError(
                f"the header names the column {name!r} twice; expected unique column "
                "names. Rename one of them in the file.",
                path=path,
            )
        seen.add(name)
    return names


def _split_lines(text: str) -> list[str]:
    return io.StringIO(text, newline="").readlines()


def _read_delimited(
    data: bytes, path: Path, options: CsvOptions, tsv: bool
) -> RawTable:
    text, bad_bytes = _decode(data, options.encoding)
    lines = _split_lines(text)
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        return _empty_table()

    header_line = lines[header_index]
    if _has_bad_bytes([header_line]):
        raise InputDataError(
            f"the header line is not valid {options.encoding}: "
            f"{_show_bad_bytes(header_line.strip())!r}. Set 'csv: {{encoding: "
            "latin-1}' (or cp1252) in the mapping, or save the file as UTF-8.",
            path=path,
        )
    delimiter = options.delimiter or _guess_delimiter(header_line, tsv)
    if delimiter == "whitespace":
        header = header_line.split()
    else:
        header = next(
            csv.reader([header_line], delimiter=delimiter, quotechar=options.quote)
        )
    columns = _header_names(header, path)

    splitter = _WhitespaceSplitter() if delimiter == "whitespace" else None
    records, numbers, rejected = _split_records(
        lines, header_index, columns, delimiter, options.quote, splitter
    )
    if bad_bytes:
        records, numbers, rejected = _reject_bad_bytes(
            records, numbers, rejected, columns, options.encoding
        )
    return _table_from_records(columns, records, numbers, rejected)


class _WhitespaceSplitter:
    """Split lines on runs of whitespace; there is no quoting."""

    def split(self, lines: list[str], start: int) -> Iterable[tuple[int, list[str]]]:
        for index in range(start, len(lines)):
            yield index, lines[index].split()


def _split_records(
    lines: list[str],
    header_index: int,
    columns: list[str],
    delimiter: str,
    quote: str,
    splitter: _WhitespaceSplitter | None,
) -> tuple[list[list[str]], list[int], list[RejectedRow]]:
    width = len(columns)
    records: list[list[str]] = []
    numbers: list[int] = []
    rejected: list[RejectedRow] = []

    if splitter is not None:
        for index, fields in splitter.split(lines, header_index + 1):
            if not fields:
                continue
            number = index - header_index
            if len(fields) == width:
                records.append(fields)
                numbers.append(number)
            else:
                rejected.append(_wrong_width_row(number, columns, fields))
        return records, numbers, rejected

    position = header_index + 1
    while position < len(lines):
        position = _read_until_restart(
            lines, position, header_index, columns, delimiter, quote,
            records, numbers, rejected,
        )  # fmt: skip
    return records, numbers, rejected


def _read_until_restart(
    lines: list[str],
    position: int,
    header_index: int,
    columns: list[str],
    delimiter: str,
    quote: str,
    records: list[list[str]],
    numbers: list[int],
    rejected: list[RejectedRow],
) -> int:
    """Read records from ``position``; return where to restart, or the end."""
    width = len(columns)
    reader = csv.reader(
        itertools.islice(lines, position, None), delimiter=delimiter, quotechar=quote
    )
    start = position
    last_first = None
    try:
        for fields in reader:
            first, start = start, position + reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            number = first - header_index
            if len(fields) == width:
                records.append(fields)
                numbers.append(number)
                last_first = first
            elif start - first > 1:
                rejected.append(_unbalanced_quote_row(number, lines[first], quote))
                return first + 1
            else:
                rejected.append(_wrong_width_row(number, columns, fields))
    except csv.Error as exc:
        record_lines = lines[start : position + reader.line_num]
        rejected.append(
            RejectedRow(
                start - header_index,
                _text_json({_LINE_KEY: lines[start]}),
                _csv_error_reason(exc, record_lines, quote),
                "malformed_row",
            )
        )
        return start + 1

    if last_first is not None and _ends_inside_quotes(
        lines[last_first:], delimiter, quote
    ):
        records.pop()
        numbers.pop()
        number = last_first - header_index
        rejected.append(_unbalanced_quote_row(number, lines[last_first], quote))
        return last_first + 1
    return len(lines)


def _csv_error_reason(exc: csv.Error, record_lines: list[str], quote: str) -> str:
    """Return the quarantine reason for a ``csv.Error`` raised on ``record_lines``.

    A record on one line with balanced quotes reaches the field size limit only
    through a long value. Otherwise an unclosed quote may have made the reader run
    on through later lines, so the reason names both causes.
    """
    if "field larger than field limit" not in str(exc):
        return f"the row is not valid CSV ({exc}); fix the quoting in the file"

    too_long = (
        f"a value is longer than {csv.field_size_limit():,} characters, the maximum "
        "of Python's CSV reader"
    )
    fix = "shorten the value, or convert the file to JSON Lines or Parquet"
    if len(record_lines) == 1 and record_lines[0].count(quote) % 2 == 0:
        return f"{too_long}; {fix}, which have no such limit"
    return (
        f"{too_long}, or a quote ({quote}) opens a value and never closes; "
        f"close the quote, or {fix}, which have no such limit"
    )


def _ends_inside_quotes(lines: list[str], delimiter: str, quote: str) -> bool:
    """Return whether the last record of a file opens a quote that never closes.

    The non-strict reader accepts such a record, so it is parsed again strictly.
    """
    reader = csv.reader(lines, delimiter=delimiter, quotechar=quote, strict=True)
    try:
        list(reader)
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _wrong_width_row(number: int, columns: list[str], fields: list[str]) -> RejectedRow:
    values: dict[str, Any] = dict(zip(columns, fields, strict=False))
    if len(fields) > len(columns):
        values[_EXTRA_KEY] = fields[len(columns) :]
    return RejectedRow(
        number,
        _text_json(values),
        f"the row has {len(fields)} fields; expected {len(columns)} as in the header. "
        "Check for an unquoted delimiter in a value or a missing field",
        "malformed_row",
    )


def _unbalanced_quote_row(number: int, line: str, quote: str) -> RejectedRow:
    return RejectedRow(
        number,
        _text_json({_LINE_KEY: line.rstrip("\r\n")}),
        f"the row has an unbalanced quote ({quote}), so its last value runs past the "
        "end of the line; close the quote or double a quote inside a quoted value",
        "malformed_row",
    )


def _reject_bad_bytes(
    records: list[list[str]],
    numbers: list[int],
    rejected: list[RejectedRow],
    columns: list[str],
    encoding: str,
) -> tuple[list[list[str]], list[int], list[RejectedRow]]:
    kept_records, kept_numbers = [], []
    for fields, number in zip(records, numbers, strict=True):
        if _has_bad_bytes(fields):
            raw = _text_json(dict(zip(columns, fields, strict=True)))
            rejected.append(
                RejectedRow(number, raw, _encoding_reason(encoding), "encoding")
            )
        else:
            kept_records.append(fields)
            kept_numbers.append(number)
    bad_rows = len(records) - len(kept_records)
    if bad_rows:
        logger.warning(
            "%d rows contain bytes that are not valid %s", bad_rows, encoding
        )
    return kept_records, kept_numbers, rejected


def _empty_table(columns: list[str] | None = None) -> RawTable:
    columns = columns or []
    frame = pd.DataFrame({name: pd.Series([], dtype="str") for name in columns})
    return RawTable(columns, frame, np.array([], dtype="int64"))


def _table_from_records(
    columns: list[str],
    records: list[list[str]],
    numbers: list[int],
    rejected: list[RejectedRow],
) -> RawTable:
    if not records:
        table = _empty_table(columns)
        table.rejected = sorted(rejected, key=lambda row: row.row_number)
        return table
    by_column = list(zip(*records, strict=True))
    frame = pd.DataFrame(
        {name: pd.Series(by_column[i], dtype="str") for i, name in enumerate(columns)}
    )
    return RawTable(
        columns,
        frame,
        np.asarray(numbers, dtype="int64"),
        sorted(rejected, key=lambda row: row.row_number),
    )


# JSON

_JSON_ARRAY_EXPECTED = "a single value, not a JSON array"
_JSON_OBJECT_EXPECTED = "a single value, not a JSON object"
_JSON_CONSTANT_EXPECTED = (
    "a finite number, or null for a missing value; NaN and Infinity are not JSON "
    "numbers"
)


class _JsonConstant(str):
    """The text of a ``NaN``, ``Infinity`` or ``-Infinity`` literal in JSON input."""


def _json_float(literal: str) -> float | str:
    """Return the float of a JSON number, or its literal when it overflows float64."""
    number = float(literal)
    return number if math.isfinite(number) else literal


def _json_loads(text: str) -> Any:
    return json.loads(text, parse_constant=_JsonConstant, parse_float=_json_float)


def _json_cell_error(value: Any) -> str | None:
    """Return what was expected in place of a value that is not a single value."""
    if isinstance(value, list):
        return _JSON_ARRAY_EXPECTED
    if isinstance(value, dict):
        return _JSON_OBJECT_EXPECTED
    if isinstance(value, _JsonConstant):
        return _JSON_CONSTANT_EXPECTED
    return None


def _json_cell_errors(
    objects: list[tuple[int, dict[str, Any]]],
) -> dict[str, pd.Series]:
    found: dict[str, dict[int, str]] = {}
    for position, (_, obj) in enumerate(objects):
        for name, value in obj.items():
            expected = _json_cell_error(value)
            if expected is not None:
                found.setdefault(name, {})[position] = expected
    return {
        name: pd.Series(list(errors.values()), index=list(errors), dtype="object")
        for name, errors in found.items()
    }


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _read_json(data: bytes, path: Path, array: bool) -> RawTable:
    text, bad_bytes = _decode(data, "utf-8")
    if array and text.lstrip().startswith("["):
        objects, rejected = _parse_json_array(text, path)
    else:
        objects, rejected = _parse_json_lines(text, bad_bytes)

    columns: dict[str, None] = {}
    for _, obj in objects:
        columns.update(dict.fromkeys(obj))
    names = list(columns)
    records = [[_json_text(obj.get(name)) for name in names] for _, obj in objects]
    numbers = [number for number, _ in objects]
    if not records:
        table = _empty_table(names)
        table.rejected = rejected
        return table
    by_column = list(zip(*records, strict=True))
    frame = pd.DataFrame(
        {name: pd.Series(by_column[i], dtype="str") for i, name in enumerate(names)}
    )
    table = RawTable(names, frame, np.asarray(numbers, dtype="int64"), rejected)
    table.cell_errors = _json_cell_errors(objects)
    table.nested_columns = _json_nested_columns(objects, names)
    return table


def _json_nested_columns(
    objects: list[tuple[int, dict[str, Any]]], names: list[str]
) -> tuple[str, ...]:
    """Return the columns with at least one JSON array or object value."""
    nested = {
        name
        for _, obj in objects
        for name, value in obj.items()
        if isinstance(value, list | dict)
    }
    return tuple(name for name in names if name in nested)


def _parse_json_array(
    text: str, path: Path
) -> tuple[list[tuple[int, dict[str, Any]]], list[RejectedRow]]:
    try:
        items = _json_loads(text)
    except json.JSONDecodeError as exc:
        raise InputDataError(
            f"the file is not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}); expected an array of objects. Fix the JSON, or write one "
            "object per line and name the file .jsonl.",
            path=path,
        ) from exc
    objects, rejected = [], []
    for number, item in enumerate(items, start=1):
        if isinstance(item, dict):
            objects.append((number, item))
        else:
            rejected.append(_not_an_object(number, item))
    return objects, rejected


def _parse_json_lines(
    text: str, bad_bytes: bool
) -> tuple[list[tuple[int, dict[str, Any]]], list[RejectedRow]]:
    objects, rejected = [], []
    for number, line in enumerate(_split_lines(text), start=1):
        if not line.strip():
            continue
        if bad_bytes and _has_bad_bytes([line]):
            raw = _text_json({_LINE_KEY: line.rstrip("\r\n")})
            rejected.append(
                RejectedRow(number, raw, _encoding_reason("utf-8"), "encoding")
            )
            continue
        line = line.rstrip("\r\n")
        try:
            item = _json_loads(line)
        except json.JSONDecodeError as exc:
            rejected.append(
                RejectedRow(
                    number,
                    _text_json({_LINE_KEY: line}),
                    f"the line is not valid JSON ({exc.msg} at column {exc.colno})",
                    "malformed_row",
                )
            )
            continue
        if isinstance(item, dict):
            objects.append((number, item))
        else:
            rejected.append(_not_an_object(number, item))
    return objects, rejected


def _not_an_object(number: int, item: Any) -> RejectedRow:
    return RejectedRow(
        number,
        json.dumps({_LINE_KEY: item}, ensure_ascii=False),
        f"expected a JSON object with one key per column; got {type(item).__name__} "
        f"{json.dumps(item, ensure_ascii=False)[:80]}",
        "malformed_row",
    )


# Parquet


def _read_parquet(data: bytes, path: Path) -> RawTable:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise _parquet_error(exc, path) from exc
    return _parquet_raw(table, first_number=1)


def _parquet_error(exc: Exception, path: Path) -> InputDataError:
    return InputDataError(
        f"the file is not a readable Parquet file ({exc}). Check the format, or "
        "set 'format:' in the mapping.",
        path=path,
    )


def _parquet_raw(table: pa.Table, first_number: int) -> RawTable:
    """Return Parquet rows as text; the first row gets number ``first_number``."""
    names = [str(name) for name in table.column_names]
    frame = pd.DataFrame(
        {
            name: pd.Series(_parquet_text(table.column(i)).to_pandas(), dtype="str")
            for i, name in enumerate(names)
        }
    )
    numbers = np.arange(first_number, first_number + table.num_rows, dtype="int64")
    raw = RawTable(names, frame, numbers)
    raw.cell_errors = _parquet_cell_errors(table, names)
    raw.nested_columns = _parquet_nested_columns(table.schema)
    return raw


def _parquet_nested_columns(schema: pa.Schema) -> tuple[str, ...]:
    return tuple(
        str(name)
        for name, kind in zip(schema.names, schema.types, strict=True)
        if pa.types.is_nested(kind)
    )


def _parquet_cell_errors(table: pa.Table, names: list[str]) -> dict[str, pd.Series]:
    """Return the non-null list, struct and map values of each nested column."""
    errors = {}
    for position, name in enumerate(names):
        column = table.column(position)
        if not pa.types.is_nested(column.type):
            continue
        present = np.flatnonzero(column.is_valid().to_numpy(zero_copy_only=False))
        expected = f"a single value, not a nested Parquet value of type {column.type}"
        errors[name] = pd.Series(expected, index=present, dtype="object")
    return errors


def _parquet_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.cast(pa.string())
    if pa.types.is_dictionary(kind):
        return _parquet_text(column.cast(kind.value_type))
    nested = pa.types.is_nested(kind) or pa.types.is_binary(kind)
    if nested or pa.types.is_large_binary(kind):
        values = [_json_text(v) for v in column.to_pylist()]
        return pa.chunked_array([pa.array(values, pa.string())])
    return pc.cast(column, pa.string())
