"""Apply a column mapping to a source table and validate every row.

:func:`resolve_mapping` decides, before any row is parsed, which source column fills
each target and which columns become account attributes. A file that lacks a required
column fails there as a whole. With ``attributes: all``, columns of nested values (see
``RawTable.nested_columns``) are skipped, because an attribute stores one value. A
nested column that fills a target, or that the mapping names as a source or in an
``attributes`` list, is kept, so every row with a value in it is rejected as
``invalid_value``.

:func:`validate_rows` then parses every value and checks the entity's rules, and splits
the rows into typed accepted rows and rejected rows with their reasons.

Rejection categories (the keys of ``IngestResult.reasons``): ``malformed_row`` and
``encoding`` from the readers, ``missing_value`` (a required value is blank),
``invalid_value`` (a value does not parse, is not finite, is a JSON array or object
where a single value belongs, or breaks a rule such as ``resolved_at`` before
``opened_at``), ``out_of_range`` (a value outside its column's range) and
``duplicate_conflict`` (a key seen earlier in the file with other values).

Ranges: integers must fit in int64, ``arr`` and ``seats`` must not be negative (see
:data:`MINIMUMS`), and a survey score must be a whole number from 0 to 10 for NPS and
from 1 to 5 for CSAT. A survey score with a fraction is ``invalid_value`` when it lies
inside the scale and ``out_of_range`` when it lies outside.
"""

from __future__ import annotations

import difflib
import itertools
import logging
import operator
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from healthscore.exceptions import InputDataError, MappingError
from healthscore.ingest.mapping import (
    ENTITY_TARGETS,
    ColumnMapping,
    ColumnSpec,
    Target,
    snake_case,
)
from healthscore.ingest.parsing import (
    Parsed,
    clean_text,
    infer_kind,
    parse_booleans,
    parse_integers,
    parse_numbers,
    parse_timestamps,
)
from healthscore.ingest.readers import RawTable, RejectedRow

__all__ = [
    "ResolvedColumn",
    "ResolvedMapping",
    "ValidatedRows",
    "resolve_mapping",
    "validate_rows",
]

logger = logging.getLogger(__name__)

SURVEY_SCALES = {"nps": (0.0, 10.0), "csat": (1.0, 5.0)}
# The smallest valid value of target columns with a lower bound, per entity.
MINIMUMS = {"accounts": {"arr": 0, "seats": 0}}

_DTYPES: dict[str, Any] = {
    "text": "str",
    "number": "float64",
    "integer": "Int64",
    "boolean": "boolean",
    "timestamp": "datetime64[us, UTC]",
}


@dataclass(frozen=True)
class ResolvedColumn:
    """One target column or attribute and the spec that fills it.

    ``kind`` is ``None`` for an attribute whose type is inferred from its values.
    """

    target: str
    kind: str | None
    spec: ColumnSpec
    required: bool = False

    @property
    def label(self) -> str:
        """How rejection reasons name the column."""
        if self.spec.source is None:
            return f"the constant for {self.target}"
        if self.spec.source == self.target:
            return f"column {self.spec.source!r}"
        return f"column {self.spec.source!r} (mapped to {self.target})"


@dataclass(frozen=True)
class ResolvedMapping:
    """The mapping of one entity applied to the columns of one file.

    ``skipped_columns`` are the source columns of nested values that
    ``attributes: all`` left out.
    """

    entity: str
    columns: tuple[ResolvedColumn, ...]
    attributes: tuple[ResolvedColumn, ...]
    timezone: str
    skipped_columns: tuple[str, ...] = ()


@dataclass
class ValidatedRows:
    """The outcome of validating a source table.

    ``values`` has one typed column per target of the entity and one row per accepted
    row, indexed by the row's position in the source table. ``attributes`` is long
    form (position, name, kind, number_value, text_value) for the accepted rows.
    """

    values: pd.DataFrame
    attributes: pd.DataFrame
    rejected: list[RejectedRow]


def resolve_mapping(
    entity: str,
    columns: list[str],
    mapping: ColumnMapping,
    path: str | Path | None = None,
    nested_columns: Collection[str] = (),
) -> ResolvedMapping:
    """Match the mapping's targets to the columns of a file.

    Parameters
    ----------
    entity
        One of :data:`~healthscore.ingest.mapping.ENTITIES`.
    columns
        The source columns, as read.
    mapping
        The column mapping.
    path
        The source file, named in errors.
    nested_columns
        The source columns with nested values. ``attributes: all`` skips those that
        no mapping entry and no target uses.

    Raises
    ------
    MappingError
        If the mapping names a target the entity does not have, or sets a type the
        target cannot take.
    InputDataError
        If a required target has no source column, or the mapping names a source
        column the file does not have.
    """
    targets = {target.name: target for target in ENTITY_TARGETS[entity]}
    _check_mapping_targets(entity, targets, mapping)
    _check_sources_exist(mapping, columns, path)

    resolved = []
    used_sources = {spec.source for spec in mapping.columns.values() if spec.source}
    for target in targets.values():
        spec = mapping.columns.get(target.name) or _auto_spec(
            target.name, columns, used_sources
        )
        if spec is None:
            if target.required:
                raise _missing_column_error(target.name, columns, path)
            continue
        if spec.source:
            used_sources.add(spec.source)
        resolved.append(ResolvedColumn(target.name, target.kind, spec, target.required))

    attributes: tuple[ResolvedColumn, ...] = ()
    skipped: tuple[str, ...] = ()
    if entity == "accounts":
        attributes, skipped = _resolve_attributes(
            targets, mapping, columns, used_sources, nested_columns, path
        )
    return ResolvedMapping(
        entity, tuple(resolved), attributes, mapping.timezone, skipped
    )


def _check_mapping_targets(entity: str, targets: dict, mapping: ColumnMapping) -> None:
    for name, spec in mapping.columns.items():
        target = targets.get(name)
        if target is None and entity != "accounts":
            raise MappingError(
                f"unknown target column {name!r} for {entity}; expected one of "
                f"{list(targets)}. Only accounts keep extra columns, as attributes.",
                path=mapping.path,
                field=f"columns.{name}",
            )
        if target is not None and spec.kind not in (None, target.kind):
            raise MappingError(
                f"{name} is a {target.kind} column, but the mapping sets type "
                f"{spec.kind!r}. Remove the type or set type: {target.kind}.",
                path=mapping.path,
                field=f"columns.{name}.type",
            )


def _check_sources_exist(
    mapping: ColumnMapping, columns: list[str], path: str | Path | None
) -> None:
    for name, spec in mapping.columns.items():
        if spec.source is not None and spec.source not in columns:
            raise InputDataError(
                f"the mapping takes {name} from column {spec.source!r}, which the file "
                f"does not have{_did_you_mean(spec.source, columns)}; the file has "
                f"columns {columns}. Fix 'columns.{name}' in the mapping.",
                path=path,
            )


def _did_you_mean(name: str, columns: list[str]) -> str:
    matches = difflib.get_close_matches(name, columns, n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def _auto_spec(
    target: str, columns: list[str], used_sources: set[str]
) -> ColumnSpec | None:
    """Find the source column named like the target: exactly, else in snake_case."""
    if target in columns and target not in used_sources:
        return ColumnSpec(source=target)
    for column in columns:
        if column not in used_sources and snake_case(column) == target:
            return ColumnSpec(source=column)
    return None


def _missing_column_error(
    target: str, columns: list[str], path: str | Path | None
) -> InputDataError:
    by_snake = {snake_case(column): column for column in columns}
    close = difflib.get_close_matches(target, list(by_snake), n=1)
    example = by_snake[close[0]] if close else "<your column>"
    return InputDataError(
        f"required column {target!r} is missing; the file has columns {columns}. "
        f"Add a mapping line '{target}: {example}' under 'columns:'.",
        path=path,
    )


def _warn_near_targets(
    names: list[str], targets: dict[str, Target], path: str | Path | None
) -> None:
    """Log a warning for each attribute name that looks like a misspelt target."""
    for name in names:
        close = difflib.get_close_matches(name, list(targets), n=1, cutoff=0.8)
        if close:
            logger.warning(
                "%s: mapping target %r is not an accounts column, so it is stored as "
                "an attribute without the checks of %r. Did you mean %r?",
                path, name, close[0], close[0],
            )  # fmt: skip


def _resolve_attributes(
    targets: dict[str, Target],
    mapping: ColumnMapping,
    columns: list[str],
    used_sources: set[str],
    nested_columns: Collection[str],
    path: str | Path | None,
) -> tuple[tuple[ResolvedColumn, ...], tuple[str, ...]]:
    """Return the attribute columns, and the nested columns that ``all`` skips."""
    attributes = [
        ResolvedColumn(name, spec.kind, spec)
        for name, spec in mapping.columns.items()
        if name not in targets
    ]
    _warn_near_targets([column.target for column in attributes], targets, path)
    unmapped: list[str] = []
    skipped: list[str] = []
    if mapping.attributes == "all":
        for column in columns:
            if column in used_sources:
                continue
            if column in nested_columns:
                skipped.append(column)
            else:
                unmapped.append(column)
    elif mapping.attributes != "none":
        missing = [name for name in mapping.attributes if name not in columns]
        if missing:
            raise InputDataError(
                f"the mapping lists attributes {missing} that the file does not have; "
                f"the file has columns {columns}. Fix 'attributes' in the mapping.",
                path=path,
            )
        unmapped = [name for name in mapping.attributes if name not in used_sources]
    attributes += [
        ResolvedColumn(snake_case(column) or column, None, ColumnSpec(source=column))
        for column in unmapped
    ]
    _check_unique_attributes(attributes, path)
    return tuple(attributes), tuple(skipped)


def _check_unique_attributes(
    attributes: list[ResolvedColumn], path: str | Path | None
) -> None:
    seen: dict[str, ResolvedColumn] = {}
    for attribute in attributes:
        earlier = seen.get(attribute.target)
        if earlier is not None:
            raise InputDataError(
                f"columns {earlier.spec.source!r} and {attribute.spec.source!r} both "
                f"become the attribute {attribute.target!r}. Map one of them to "
                f"another name, e.g. 'other_name: {attribute.spec.source}' under "
                "'columns:'.",
                path=path,
            )
        seen[attribute.target] = attribute


def validate_rows(raw: RawTable, resolved: ResolvedMapping) -> ValidatedRows:
    """Parse and check every row of ``raw``.

    Parameters
    ----------
    raw
        The source table.
    resolved
        The mapping applied to its columns, from :func:`resolve_mapping`.

    Returns
    -------
    ValidatedRows
        Typed accepted rows, their attributes, and the rejected rows with reasons
        (including the rows the reader rejected).

    Raises
    ------
    MappingError
        If a constant in the mapping does not parse as its column's type.
    """
    problems: list[pd.DataFrame] = []
    values: dict[str, pd.Series] = {}
    for order, column in enumerate(resolved.columns):
        text = _column_text(raw, column.spec)
        cell_problems = _cell_problems(raw, column, order)
        problems.append(cell_problems)
        parsed = _parse_column(text, column, raw.decimal, resolved.timezone)
        values[column.target] = parsed.values
        problems.extend(_invalid_problems(parsed, text, column, order))
        minimum = MINIMUMS.get(resolved.entity, {}).get(column.target)
        if minimum is not None:
            problems.append(_below_problems(parsed, text, column, minimum, order))
        if column.required:
            blank = text.isna() & ~text.index.isin(cell_problems["position"])
            problems.append(_missing_problems(blank, column, order))

    frame = _complete_frame(resolved.entity, values, len(raw.frame))
    problems.extend(_entity_problems(resolved.entity, frame))
    attribute_values, attribute_problems = _parse_attributes(raw, resolved)
    problems.extend(attribute_problems)

    reasons = _combine_problems(problems)
    accepted = frame.index.difference(reasons.index)
    attributes = attribute_values[attribute_values["position"].isin(accepted)]
    rejected = _rejected_rows(raw, reasons) + raw.rejected
    return ValidatedRows(
        frame.loc[accepted],
        attributes.reset_index(drop=True),
        sorted(rejected, key=lambda row: row.row_number),
    )


def _column_text(raw: RawTable, spec: ColumnSpec) -> pd.Series:
    """Return the cleaned values, missing where the reader found an invalid cell."""
    if spec.source is not None:
        text = clean_text(raw.frame[spec.source])
        invalid = raw.cell_errors.get(spec.source)
        if invalid is not None:
            text = text.mask(text.index.isin(invalid.index))
        return text
    constant = pd.Series(spec.value, index=raw.frame.index, dtype="str")
    return clean_text(constant)


def _parse_column(
    text: pd.Series, column: ResolvedColumn, decimal: str, timezone: str
) -> Parsed:
    spec = column.spec
    kind = column.kind or "text"
    if kind == "number":
        parsed = parse_numbers(text, decimal, spec.multiply)
    elif kind == "integer":
        parsed = parse_integers(text, decimal, spec.multiply)
    elif kind == "boolean":
        parsed = parse_booleans(text)
    elif kind == "timestamp":
        parsed = parse_timestamps(text, spec.formats, spec.timezone or timezone)
    else:
        parsed = Parsed(text, pd.Series([], dtype="object"))

    if spec.source is None:
        _check_constant(parsed, column, kind)
    return parsed


def _check_constant(parsed: Parsed, column: ResolvedColumn, kind: str) -> None:
    for problems, verdict in (
        (parsed.errors, f"is not a valid {kind}"),
        (parsed.out_of_range, f"is out of range for {kind}"),
    ):
        if not problems.empty:
            raise MappingError(
                f"the constant {column.spec.value!r} {verdict}; expected "
                f"{problems.iloc[0]}.",
                field=f"columns.{column.target}.value",
            )


def _problem_frame(
    positions: pd.Index, order: int, category: str, messages: list[str]
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "position": positions.to_numpy(dtype="int64"),
            "order": order,
            "category": category,
            "message": pd.Series(messages, dtype="object"),
        }
    )


def _invalid_problems(
    parsed: Parsed, text: pd.Series, column: ResolvedColumn, order: int
) -> list[pd.DataFrame]:
    """Return the invalid and the out-of-range values of one column."""
    frames = []
    for problems, category, verdict in (
        (parsed.errors, "invalid_value", "is not valid"),
        (parsed.out_of_range, "out_of_range", "is out of range"),
    ):
        positions = problems.index
        messages = [
            f"{column.label}: {value!r} {verdict}; expected {expected}"
            for value, expected in zip(
                text.loc[positions].tolist(), problems.tolist(), strict=True
            )
        ]
        frames.append(_problem_frame(positions, order, category, messages))
    return frames


def _below_problems(
    parsed: Parsed, text: pd.Series, column: ResolvedColumn, minimum: int, order: int
) -> pd.DataFrame:
    below = (parsed.values < minimum).fillna(False).to_numpy(dtype=bool)
    positions = text.index[below]
    messages = [
        f"{column.label}: {value!r} is out of range; expected {minimum} or more"
        for value in text.loc[positions].tolist()
    ]
    return _problem_frame(positions, order, "out_of_range", messages)


def _cell_problems(raw: RawTable, column: ResolvedColumn, order: int) -> pd.DataFrame:
    """Return the values the reader found invalid in the column's source."""
    source = column.spec.source
    invalid = raw.cell_errors.get(source) if source is not None else None
    if invalid is None or invalid.empty:
        return _problem_frame(pd.Index([], dtype="int64"), order, "invalid_value", [])
    values = raw.frame[source].loc[invalid.index].tolist()
    messages = [
        f"{column.label}: {value!r} is not valid; expected {expected}"
        for value, expected in zip(values, invalid.tolist(), strict=True)
    ]
    return _problem_frame(invalid.index, order, "invalid_value", messages)


def _missing_problems(
    blank: pd.Series, column: ResolvedColumn, order: int
) -> pd.DataFrame:
    positions = blank.index[blank.to_numpy()]
    message = f"{column.label} is blank; {column.target} is required on every row"
    return _problem_frame(positions, order, "missing_value", [message] * len(positions))


def _complete_frame(
    entity: str, values: dict[str, pd.Series], length: int
) -> pd.DataFrame:
    """Return one typed column per target of the entity, NA where none is mapped."""
    index = pd.RangeIndex(length)
    columns = {}
    for target in ENTITY_TARGETS[entity]:
        series = values.get(target.name)
        if series is None:
            series = pd.Series(index=index, dtype=_DTYPES[target.kind])
        columns[target.name] = series.astype(_DTYPES[target.kind])
    frame = pd.DataFrame(columns, index=index)
    if entity == "surveys":
        frame["survey"] = frame["survey"].str.lower()
    return frame


def _entity_problems(entity: str, frame: pd.DataFrame) -> list[pd.DataFrame]:
    order = len(frame.columns)
    if entity == "surveys":
        return _survey_problems(frame, order)
    if entity == "tickets":
        return [_ticket_problems(frame, order)]
    return []


def _survey_problems(frame: pd.DataFrame, order: int) -> list[pd.DataFrame]:
    survey = frame["survey"]
    unknown = survey.notna() & ~survey.isin(list(SURVEY_SCALES))
    positions = frame.index[unknown.to_numpy()]
    problems = [
        _problem_frame(
            positions,
            order,
            "invalid_value",
            [
                f"survey {value!r} is not a known survey; expected 'nps' or 'csat'"
                for value in survey.loc[positions]
            ],
        )
    ]
    for name, (low, high) in SURVEY_SCALES.items():
        problems.extend(_score_problems(frame, name, low, high, order))
    return problems


def _score_problems(
    frame: pd.DataFrame, survey: str, low: float, high: float, order: int
) -> list[pd.DataFrame]:
    """Return the scores of one survey outside its scale, then those with a fraction."""
    score = frame["score"]
    scored = (frame["survey"] == survey).fillna(False) & score.notna()
    outside = scored & ((score < low) | (score > high))
    fraction = scored & ~outside & (score % 1 != 0)
    expected = f"a whole number from {low:g} to {high:g}"

    problems = []
    for mask, category, verdict in (
        (outside, "out_of_range", "is out of range"),
        (fraction, "invalid_value", "is not valid"),
    ):
        positions = frame.index[mask.to_numpy()]
        messages = [
            f"{survey} score {value:g} {verdict}; expected {expected}"
            for value in score.loc[positions]
        ]
        problems.append(_problem_frame(positions, order, category, messages))
    return problems


def _ticket_problems(frame: pd.DataFrame, order: int) -> pd.DataFrame:
    opened, resolved = frame["opened_at"], frame["resolved_at"]
    before = (resolved < opened).fillna(False)
    positions = frame.index[before.to_numpy()]
    messages = [
        f"resolved_at {r.isoformat()} is before opened_at {o.isoformat()}; expected "
        "a resolution time on or after the opening time"
        for r, o in zip(resolved.loc[positions], opened.loc[positions], strict=True)
    ]
    return _problem_frame(positions, order, "invalid_value", messages)


def _parse_attributes(
    raw: RawTable, resolved: ResolvedMapping
) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """Parse every attribute column into long form, with the problems found."""
    parts, problems = [], []
    order = len(resolved.columns) + 1
    for offset, column in enumerate(resolved.attributes):
        text = _column_text(raw, column.spec)
        kind = column.kind or infer_kind(text, raw.decimal)
        typed = ResolvedColumn(column.target, kind, column.spec)
        parsed = _parse_column(text, typed, raw.decimal, resolved.timezone)
        problems.append(_cell_problems(raw, typed, order + offset))
        problems.extend(_invalid_problems(parsed, text, typed, order + offset))
        parts.append(_attribute_rows(column.target, kind, text, parsed))

    if not parts:
        empty = pd.Series([], dtype="str")
        parts.append(_attribute_rows("", "text", empty, Parsed(empty, empty)))
    return pd.concat(parts, ignore_index=True), problems


def _attribute_rows(
    name: str, kind: str, text: pd.Series, parsed: Parsed
) -> pd.DataFrame:
    """Return long-form rows of one attribute, for rows with a valid value.

    A boolean is stored as number 1 or 0 and text "true" or "false". A number keeps
    its text as written. A timestamp gets its ISO 8601 UTC text and Unix seconds.
    """
    present = parsed.values.notna().to_numpy() & text.notna().to_numpy()
    positions = text.index[present]
    values = parsed.values.loc[positions]
    text_values = text.loc[positions].astype("object")
    numbers = pd.Series(float("nan"), index=positions, dtype="float64")

    if kind in ("number", "integer", "boolean"):
        numbers = values.astype("float64")
    if kind == "boolean":
        text_values = values.map({True: "true", False: "false"}).astype("object")
    elif kind == "timestamp":
        numbers = (values - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
        text_values = values.map(lambda t: t.isoformat()).astype("object")

    return pd.DataFrame(
        {
            "position": positions.to_numpy(dtype="int64"),
            "name": name,
            "kind": "number" if kind == "integer" else kind,
            "number_value": numbers.to_numpy(dtype="float64"),
            "text_value": text_values.to_numpy(dtype="object"),
        }
    )


def _combine_problems(problems: list[pd.DataFrame]) -> pd.DataFrame:
    """Return one reason per rejected position: the first category, all messages."""
    found = [frame for frame in problems if not frame.empty]
    if not found:
        return pd.DataFrame(
            {"category": pd.Series([], dtype="object"), "message": []},
            index=pd.Index([], dtype="int64"),
        )
    combined = pd.concat(found, ignore_index=True).sort_values(
        ["position", "order"], kind="stable"
    )
    positions, categories, messages = [], [], []
    rows = zip(
        combined["position"].tolist(),
        combined["category"].tolist(),
        combined["message"].tolist(),
        strict=True,
    )
    for position, group in itertools.groupby(rows, key=operator.itemgetter(0)):
        items = list(group)
        positions.append(position)
        categories.append(items[0][1])
        messages.append("; ".join(item[2] for item in items))
    return pd.DataFrame(
        {"category": categories, "message": messages},
        index=pd.Index(positions, dtype="int64"),
    )


def _rejected_rows(raw: RawTable, reasons: pd.DataFrame) -> list[RejectedRow]:
    if reasons.empty:
        return []
    positions = reasons.index.to_numpy()
    raw_rows = raw.raw_json_rows(positions)
    numbers = raw.row_numbers[positions].tolist()
    return [
        RejectedRow(number, raw_text, message, category)
        for number, raw_text, message, category in zip(
            numbers,
            raw_rows,
            reasons["message"].tolist(),
            reasons["category"].tolist(),
            strict=True,
        )
    ]
