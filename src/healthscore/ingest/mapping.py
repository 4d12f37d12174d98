"""Column mappings: how the columns of a source file become store columns.

A mapping is a YAML file. Every key is optional::

    format: csv            # csv | tsv | jsonl | json | parquet; else from the extension
    timezone: UTC          # zone for timestamps without an offset; default UTC
    csv:                   # reader options for csv, tsv and txt files
      delimiter: ","       # one character, "tab", or "whitespace" (runs of spaces,
                           # no quoting); default: guessed from the header line
      encoding: utf-8      # any Python codec name, e.g. latin-1 or cp1252
      decimal: "."         # "," for European numbers such as 1.234,5
      quote: '"'           # quote character
    columns:               # target column: source column, or a dict
      account_id: customerID
      arr: {source: MonthlyCharges, type: number, multiply: 12}
      churned: {source: Churn, type: boolean}
      created_at: {source: signup, type: timestamp, formats: ["%d/%m/%Y %H:%M"],
                   timezone: Europe/Berlin}
      event_name: {value: purchase}      # the same constant on every row
    attributes: all        # accounts only: all | none | [source columns to keep]

A column entry takes ``source`` (a column of the file) or ``value`` (a constant). It may
also set ``type`` (text, number, integer, boolean or timestamp), ``multiply`` (a factor
for numbers), ``formats`` (``strptime`` formats, or ``epoch``, ``epoch_s`` and
``epoch_ms`` for Unix times) and ``timezone`` (for times without an offset).

The targets of each entity are fixed (see :data:`ENTITY_TARGETS`). For accounts, any
other target name makes an attribute of that name, and ``attributes`` sets which source
columns that no entry uses are kept as attributes too, named in snake_case. A target
that the mapping does not name is taken from the source column whose snake_case name
equals it, if there is one.

An attribute stores one value, so ``attributes: all`` skips columns of nested
values (JSON arrays or objects, Parquet lists, structs or maps) and logs a warning. A
nested column that fills a target, or is named in ``columns`` or in an ``attributes``
list, rejects every row with a value in it.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import yaml

from healthscore.exceptions import MappingError

__all__ = [
    "ENTITIES",
    "ENTITY_TARGETS",
    "FORMATS",
    "KINDS",
    "ColumnMapping",
    "ColumnSpec",
    "CsvOptions",
    "Target",
    "load_mapping",
    "parse_mapping",
    "snake_case",
]

ENTITIES = ("accounts", "users", "events", "surveys", "tickets")

KINDS = ("text", "number", "integer", "boolean", "timestamp")

FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")

EPOCH_FORMATS = ("epoch", "epoch_s", "epoch_ms")
# A time with every field set, for checking that pandas parses a format it wrote.
_FORMAT_SAMPLE = dt.datetime(2024, 1, 31, 9, 30, 15, 123456, tzinfo=dt.UTC)

_TOP_KEYS = ("format", "timezone", "csv", "columns", "attributes")
_CSV_KEYS = ("delimiter", "encoding", "decimal", "quote")
_SPEC_KEYS = ("source", "value", "type", "multiply", "formats", "timezone")


@dataclass(frozen=True)
class Target:
    """A store column that a source column can fill."""

    name: str
    kind: str
    required: bool = False


def _targets(*specs: tuple[str, str, bool]) -> tuple[Target, ...]:
    return tuple(Target(name, kind, required) for name, kind, required in specs)


# Target columns per entity, in store order.
ENTITY_TARGETS: dict[str, tuple[Target, ...]] = {
    "accounts": _targets(
        ("account_id", "text", True),
        ("name", "text", False),
        ("segment", "text", False),
        ("plan", "text", False),
        ("owner", "text", False),
        ("parent_id", "text", False),
        ("arr", "number", False),
        ("seats", "integer", False),
        ("created_at", "timestamp", False),
        ("renewal_at", "timestamp", False),
        ("churned", "boolean", False),
        ("churned_at", "timestamp", False),
    ),
    "users": _targets(
        ("user_id", "text", True),
        ("account_id", "text", True),
        ("email", "text", False),
        ("created_at", "timestamp", False),
    ),
    "events": _targets(
        ("event_id", "text", False),
        ("account_id", "text", True),
        ("user_id", "text", False),
        ("event_name", "text", True),
        ("feature", "text", False),
        ("occurred_at", "timestamp", True),
        ("value", "number", False),
    ),
    "surveys": _targets(
        ("response_id", "text", False),
        ("account_id", "text", True),
        ("user_id", "text", False),
        ("survey", "text", True),
        ("score", "number", True),
        ("comment", "text", False),
        ("responded_at", "timestamp", True),
    ),
    "tickets": _targets(
        ("ticket_id", "text", False),
        ("account_id", "text", True),
        ("priority", "text", False),
        ("status", "text", False),
        ("opened_at", "timestamp", True),
        ("resolved_at", "timestamp", False),
    ),
}


@dataclass(frozen=True)
class CsvOptions:
    """Reader options for delimited text files.

    ``delimiter`` is ``None`` to guess it from the header line.
    """

    delimiter: str | None = None
    encoding: str = "utf-8"
    decimal: str = "."
    quote: str = '"'


@dataclass(frozen=True)
class ColumnSpec:
    """The source of one target column and the options for parsing its values.

    Exactly one of ``source`` (a column of the file) and ``value`` (a constant) is set.
    ``kind`` is ``None`` when the target's own type applies, or, for an attribute,
    when the type is inferred from the values.
    """

    source: str | None = None
    value: str | None = None
    kind: str | None = None
    multiply: float | None = None
    formats: tuple[str, ...] = ()
    timezone: str | None = None


@dataclass(frozen=True)
class ColumnMapping:
    """A parsed column mapping.

    ``attributes`` is ``"all"``, ``"none"`` or a tuple of source column names.
    """

    columns: dict[str, ColumnSpec] = field(default_factory=dict)
    format: str | None = None
    timezone: str = "UTC"
    csv: CsvOptions = field(default_factory=CsvOptions)
    attributes: str | tuple[str, ...] = "all"
    path: Path | None = None


def snake_case(name: str) -> str:
    """Convert a column name to snake_case.

    Examples
    --------
    >>> snake_case("PaymentMethod"), snake_case("customerID"), snake_case("Total $")
    ('payment_method', 'customer_id', 'total')
    """
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return re.sub(r"[^0-9a-z]+", "_", spaced.lower()).strip("_")


def load_mapping(path: str | Path) -> ColumnMapping:
    """Read a column mapping from a YAML file.

    Parameters
    ----------
    path
        The YAML file; see the module documentation for its keys.

    Returns
    -------
    ColumnMapping
        The validated mapping.

    Raises
    ------
    MappingError
        If the file cannot be read, is not valid YAML, or has an invalid entry. The
        error names the file, the entry and the fix.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(
            f"cannot read the mapping file: {exc.strerror}. Check the path.", path=path
        ) from exc
    except UnicodeDecodeError as exc:
        raise MappingError(
            "the mapping file is not valid UTF-8. Save it as UTF-8.", path=path
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(
            f"invalid YAML: {exc}. Fix the syntax at the position shown.", path=path
        ) from exc
    return parse_mapping({} if data is None else data, path=path)


def parse_mapping(
    data: Mapping[str, Any], path: str | Path | None = None
) -> ColumnMapping:
    """Validate a column mapping given as a dict, such as parsed YAML.

    Parameters
    ----------
    data
        The mapping; see the module documentation for its keys.
    path
        The file it came from, named in errors.

    Returns
    -------
    ColumnMapping
        The validated mapping.

    Raises
    ------
    MappingError
        If a key is unknown or a value is invalid.
    """
    path = None if path is None else Path(path)
    if not isinstance(data, Mapping):
        raise MappingError(
            f"expected a YAML mapping with keys such as 'columns'; got {data!r}.",
            path=path,
        )
    _check_keys(data, _TOP_KEYS, "", path)

    timezone = _parse_timezone(data.get("timezone", "UTC"), "timezone", path)
    columns = _parse_columns(data.get("columns") or {}, path)
    return ColumnMapping(
        columns=columns,
        format=_parse_format(data.get("format"), path),
        timezone=timezone,
        csv=_parse_csv(data.get("csv") or {}, path),
        attributes=_parse_attributes(data.get("attributes", "all"), path),
        path=path,
    )


def _check_keys(
    data: Mapping[str, Any], allowed: tuple[str, ...], where: str, path: Path | None
) -> None:
    for key in data:
        if key not in allowed:
            raise MappingError(
                f"unknown key {key!r}; expected one of {list(allowed)}. "
                "Remove it or fix its spelling.",
                path=path,
                field=f"{where}{key}",
            )


def _parse_format(value: Any, path: Path | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.lower() not in FORMATS:
        raise MappingError(
            f"invalid format {value!r}; expected one of {list(FORMATS)}, or leave it "
            "out to use the file extension.",
            path=path,
            field="format",
        )
    return value.lower()


def _parse_timezone(value: Any, where: str, path: Path | None) -> str:
    if not isinstance(value, str) or not value:
        raise MappingError(
            f"invalid timezone {value!r}; expected an IANA name such as "
            "'UTC' or 'Europe/Berlin'.",
            path=path,
            field=where,
        )
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise MappingError(
            f"unknown timezone {value!r}; expected an IANA name such as "
            "'UTC' or 'Europe/Berlin'.",
            path=path,
            field=where,
        ) from exc
    return value


def _parse_csv(data: Any, path: Path | None) -> CsvOptions:
    if not isinstance(data, Mapping):
        raise MappingError(
            f"expected a mapping of reader options; got {data!r}. Write for example "
            "'csv: {delimiter: \";\"}'.",
            path=path,
            field="csv",
        )
    _check_keys(data, _CSV_KEYS, "csv.", path)
    return CsvOptions(
        delimiter=_parse_delimiter(data.get("delimiter"), path),
        encoding=_parse_encoding(data.get("encoding", "utf-8"), path),
        decimal=_parse_choice(
            data.get("decimal", "."), (".", ","), "csv.decimal", path
        ),
        quote=_parse_quote(data.get("quote", '"'), path),
    )


def _parse_delimiter(value: Any, path: Path | None) -> str | None:
    if value is None:
        return None
    if value in ("whitespace", "tab"):
        return "\t" if value == "tab" else "whitespace"
    if not isinstance(value, str) or len(value) != 1 or value in "\r\n":
        raise MappingError(
            f"invalid delimiter {value!r}; expected one character such as ',' or ';', "
            "'tab', or 'whitespace' for columns separated by runs of spaces.",
            path=path,
            field="csv.delimiter",
        )
    return value


def _parse_encoding(value: Any, path: Path | None) -> str:
    try:
        codecs.lookup(str(value))
    except LookupError as exc:
        raise MappingError(
            f"unknown encoding {value!r}; expected a codec name such as 'utf-8', "
            "'latin-1' or 'cp1252'.",
            path=path,
            field="csv.encoding",
        ) from exc
    return str(value)


def _parse_quote(value: Any, path: Path | None) -> str:
    if not isinstance(value, str) or len(value) != 1:
        raise MappingError(
            f"invalid quote {value!r}; expected one character such as '\"'.",
            path=path,
            field="csv.quote",
        )
    return value


def _parse_choice(
    value: Any, choices: tuple[str, ...], where: str, path: Path | None
) -> str:
    if value not in choices:
        raise MappingError(
            f"invalid value {value!r}; expected one of {list(choices)}.",
            path=path,
            field=where,
        )
    return str(value)


def _parse_attributes(value: Any, path: Path | None) -> str | tuple[str, ...]:
    if value in ("all", "none"):
        return str(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise MappingError(
        f"invalid attributes {value!r}; expected 'all', 'none' or a list of source "
        "column names.",
        path=path,
        field="attributes",
    )


def _parse_columns(data: Any, path: Path | None) -> dict[str, ColumnSpec]:
    if not isinstance(data, Mapping):
        raise MappingError(
            f"expected a mapping of target column to source column; got {data!r}. "
            "Write for example 'columns: {account_id: customerID}'.",
            path=path,
            field="columns",
        )
    columns = {}
    for target, entry in data.items():
        if not isinstance(target, str) or not target:
            raise MappingError(
                f"invalid target column name {target!r}; expected a non-empty string.",
                path=path,
                field="columns",
            )
        columns[target] = _parse_spec(entry, f"columns.{target}", path)
    return columns


def _parse_spec(entry: Any, where: str, path: Path | None) -> ColumnSpec:
    if isinstance(entry, str) and entry:
        return ColumnSpec(source=entry)
    if not isinstance(entry, Mapping):
        raise MappingError(
            f"invalid entry {entry!r}; expected a source column name or a mapping "
            "such as {source: Churn, type: boolean}.",
            path=path,
            field=where,
        )
    _check_keys(entry, _SPEC_KEYS, f"{where}.", path)
    has_source, has_value = "source" in entry, "value" in entry
    if has_source == has_value:
        raise MappingError(
            "expected exactly one of 'source' (a column of the file) and 'value' "
            f"(a constant); got {dict(entry)!r}.",
            path=path,
            field=where,
        )
    if has_source and (not isinstance(entry["source"], str) or not entry["source"]):
        raise MappingError(
            f"invalid source {entry['source']!r}; expected a column name.",
            path=path,
            field=f"{where}.source",
        )

    kind = entry.get("type")
    if kind is not None and kind not in KINDS:
        raise MappingError(
            f"invalid type {kind!r}; expected one of {list(KINDS)}.",
            path=path,
            field=f"{where}.type",
        )
    return ColumnSpec(
        source=entry.get("source"),
        value=_constant_text(entry["value"]) if has_value else None,
        kind=kind,
        multiply=_parse_multiply(entry.get("multiply"), kind, where, path),
        formats=_parse_formats(entry.get("formats"), kind, where, path),
        timezone=(
            _parse_timezone(entry["timezone"], f"{where}.timezone", path)
            if "timezone" in entry
            else None
        ),
    )


def _constant_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_multiply(
    value: Any, kind: str | None, where: str, path: Path | None
) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MappingError(
            f"invalid multiply {value!r}; expected a number such as 12 or 0.01.",
            path=path,
            field=f"{where}.multiply",
        )
    if kind not in (None, "number", "integer"):
        raise MappingError(
            f"multiply applies to numbers, but the type is {kind!r}. Remove multiply "
            "or set type: number.",
            path=path,
            field=f"{where}.multiply",
        )
    return float(value)


def _parse_formats(
    value: Any, kind: str | None, where: str, path: Path | None
) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(item, str) and item for item in value
    ):
        raise MappingError(
            f"invalid formats {value!r}; expected a list of strptime formats such as "
            "['%d/%m/%Y'], or ['epoch'].",
            path=path,
            field=f"{where}.formats",
        )
    if kind not in (None, "timestamp"):
        raise MappingError(
            f"formats apply to timestamps, but the type is {kind!r}. Remove formats "
            "or set type: timestamp.",
            path=path,
            field=f"{where}.formats",
        )
    for item in value:
        if item not in EPOCH_FORMATS and "%" not in item:
            raise MappingError(
                f"invalid format {item!r}; expected a strptime format such as "
                f"'%d/%m/%Y %H:%M' or one of {list(EPOCH_FORMATS)}.",
                path=path,
                field=f"{where}.formats",
            )
        if item not in EPOCH_FORMATS:
            _check_strptime_format(item, f"{where}.formats", path)
    return tuple(value)


def _check_strptime_format(fmt: str, where: str, path: Path | None) -> None:
    """Raise if ``fmt`` has a directive that strptime or pandas cannot parse.

    ``strptime("", fmt)`` fails with "time data ... does not match" for a usable
    format and with another message (a bad directive, a stray %) for a broken one.
    The round trip through pandas catches combinations such as ``%G`` without
    ``%V`` and a weekday, which only fail on a value.
    """
    try:
        dt.datetime.strptime("", fmt)
    except ValueError as exc:
        if not str(exc).startswith("time data"):
            raise _format_error(fmt, str(exc), where, path) from exc

    sample = _FORMAT_SAMPLE.strftime(fmt)
    try:
        pd.to_datetime(pd.Series([sample]), format=fmt, errors="coerce")
    except ValueError as exc:
        raise _format_error(fmt, str(exc), where, path) from exc


def _format_error(
    fmt: str, problem: str, where: str, path: Path | None
) -> MappingError:
    return MappingError(
        f"invalid format {fmt!r} ({problem}); expected a strptime format built from "
        "directives such as %Y, %m, %d, %H, %M, %S, %f and %z, or one of "
        f"{list(EPOCH_FORMATS)}. Fix or remove the directive, and write a literal "
        "percent sign as %%.",
        path=path,
        field=where,
    )
