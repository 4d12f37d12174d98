"""Parse text values, as spreadsheets and CRM exports write them, into typed columns.

Every parser takes a pandas string Series (missing values as NA) and returns a
:class:`Parsed`: the typed values, and for each value that did not parse, the
expectation to quote in the rejection reason. The work is vectorised with pandas string
methods, which run on Arrow compute kernels.

Rules:

- Missing: after trimming, a value is missing in every column when it is blank or,
  in any case, one of ``NA``, ``N/A``, ``#N/A``, ``null``, ``None``, ``NaN`` and ``-``
  (:data:`NULL_MARKERS`).
- Numbers: spaces and apostrophes between digits are dropped. With ``decimal="."`` a
  comma may only group thousands (``1,234.5``). With ``decimal=","`` a dot may only
  group thousands (``1.234,5``). A leading currency sign ($ € £ ¥) is dropped, and so
  is a trailing ``%``: ``12%`` reads as 12, not 0.12 (use ``multiply: 0.01`` for a
  fraction). ``(1,234)`` is -1234, as accounting exports write negatives. ``1,5`` with
  ``decimal="."`` is rejected, not read as 15. Non-finite numbers are rejected:
  ``inf``, ``-Infinity`` and values beyond the float64 range such as ``1e400``.
- Integers: whole numbers from -2**63 to 2**63 - 1 (the int64 range). A value outside
  it is out of range, not invalid. Integer literals are read exactly, also beyond 2**53.
- Booleans: yes/no, y/n, true/false, t/f, 1/0 and on/off, any case.
- Timestamps: ISO 8601 with or without an offset or ``Z``, ``YYYY-MM-DD`` and
  ``YYYYMMDD``. Other layouts need ``formats`` in the mapping; day/month dates such as
  ``03/04/2024`` are rejected without them because they are ambiguous. Values without an
  offset are in the column's timezone. Results are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from healthscore.ingest.mapping import EPOCH_FORMATS

__all__ = [
    "NULL_MARKERS",
    "Parsed",
    "clean_text",
    "infer_kind",
    "parse_booleans",
    "parse_integers",
    "parse_numbers",
    "parse_timestamps",
]

NULL_MARKERS = frozenset({"", "na", "n/a", "#n/a", "null", "none", "nan", "-"})

TRUE_WORDS = ("true", "t", "yes", "y", "1", "on")
FALSE_WORDS = ("false", "f", "no", "n", "0", "off")

_CURRENCY = "$€£¥"
_DOT_NUMBER = r"[+-]?(?:(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_COMMA_NUMBER = r"[+-]?(?:(?:\d+|\d{1,3}(?:\.\d{3})+)(?:,\d*)?|,\d+)(?:[eE][+-]?\d+)?"
# A time of day followed by an offset or Z, at the end of an ISO 8601 value.
_OFFSET_AT_END = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|z|[+-]\d{2}(?::?\d{2})?)$"
_DAY_MONTH_DATE = r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}(?:\D.*)?"

NUMBER_EXPECTED = "a number such as 1234.5, 1,234.5 or (12)"
FINITE_EXPECTED = (
    "a finite number; infinity and values beyond the float64 range "
    "(about 1.8e308) are not allowed"
)
INTEGER_EXPECTED = "a whole number such as 12"
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
INT64_EXPECTED = f"a whole number from {INT64_MIN} to {INT64_MAX} (the int64 range)"
# Words that name infinity; they are rejected as non-finite, not as malformed.
_INFINITY_WORDS = frozenset(
    sign + word for sign in ("", "+", "-") for word in ("inf", "infinity")
)
# Above this magnitude a float64 cannot hold every integer, so integer literals are
# converted from their text.
_EXACT_FLOAT_LIMIT = 2.0**53
BOOLEAN_EXPECTED = "yes/no, true/false, y/n, t/f, 1/0 or on/off"
TIMESTAMP_EXPECTED = (
    "an ISO 8601 time such as 2024-01-31, 20240131 or 2024-01-31T09:30Z"
)
UTC_DTYPE = pd.DatetimeTZDtype("us", "UTC")


@dataclass(frozen=True)
class Parsed:
    """Typed values and the problems found while parsing them.

    ``errors`` is indexed by the rows whose value did not parse and contains what was
    expected instead. ``out_of_range`` is the same for values that parsed but lie
    outside the type's range. Both kinds of rows are missing in ``values``.
    """

    values: pd.Series
    errors: pd.Series
    out_of_range: pd.Series = field(
        default_factory=lambda: pd.Series([], dtype="object")
    )


def clean_text(raw: pd.Series) -> pd.Series:
    """Trim values and make blanks and null markers missing.

    Parameters
    ----------
    raw
        Values as read.

    Returns
    -------
    pandas.Series
        A ``str`` Series with NA for missing values.

    Examples
    --------
    >>> clean_text(pd.Series([" a ", "N/A", "  ", None])).tolist()
    ['a', nan, nan, nan]
    """
    text = raw.astype("str").str.strip()
    return text.mask(text.str.lower().isin(NULL_MARKERS))


def _normalise_number_text(
    text: pd.Series, decimal: str
) -> tuple[pd.Series, pd.Series]:
    """Drop grouping, currency and percent; return the text and a negate mask."""
    # Characters listed one by one: with \s, pandas 3.0 ran this step about 6x slower.
    text = text.str.replace("[ \t\u00a0\u202f']", "", regex=True)
    negative = text.str.fullmatch(r"\(.+\)")
    text = text.where(~negative, text.str.slice(1, -1))
    text = text.str.replace(rf"^[{_CURRENCY}]", "", regex=True)
    text = text.str.replace(rf"^-[{_CURRENCY}]", "-", regex=True)
    text = text.str.replace(rf"^\+[{_CURRENCY}]", "+", regex=True)
    text = text.str.replace(r"%$", "", regex=True)

    if decimal == ",":
        valid = text.str.fullmatch(_COMMA_NUMBER)
        text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    else:
        valid = text.str.fullmatch(_DOT_NUMBER)
        text = text.str.replace(",", "", regex=False)
    return text.where(valid), negative & valid


def parse_numbers(
    text: pd.Series, decimal: str = ".", multiply: float | None = None
) -> Parsed:
    """Parse numbers written with grouping, currency signs or accounting negatives.

    Parameters
    ----------
    text
        Cleaned values (see :func:`clean_text`).
    decimal
        The decimal mark, ``"."`` or ``","``.
    multiply
        A factor applied to every parsed value.

    Returns
    -------
    Parsed
        ``float64`` values. A value that is not a number, or that is not finite
        (also after ``multiply``), is an error.

    Examples
    --------
    >>> parse_numbers(pd.Series(["1 234,5", "(12)"]), decimal=",").values.tolist()
    [1234.5, -12.0]
    """
    present = text.dropna()
    normal, negative = _normalise_number_text(present, decimal)
    parsed = pd.to_numeric(normal, errors="coerce").astype("float64")
    parsed = parsed.where(~negative.fillna(False), -parsed)
    if multiply is not None:
        parsed = parsed * multiply

    infinite = np.isinf(parsed.to_numpy()) | present.str.lower().isin(_INFINITY_WORDS)
    parsed = parsed.mask(infinite)
    values = pd.Series(np.nan, index=text.index, dtype="float64")
    values.loc[present.index] = parsed
    expected = NUMBER_EXPECTED
    if decimal == ",":
        expected = "a number with decimal comma such as 1234,5 or 1.234,5"
    errors = pd.Series(expected, index=present.index[parsed.isna().to_numpy()])
    errors[present.index[infinite]] = FINITE_EXPECTED
    return Parsed(values, errors.astype("object"))


def parse_integers(
    text: pd.Series, decimal: str = ".", multiply: float | None = None
) -> Parsed:
    """Parse whole numbers, in the layouts :func:`parse_numbers` accepts.

    Returns
    -------
    Parsed
        ``Int64`` values. A number with a fraction is an error, and a whole number
        outside the int64 range is out of range.
    """
    numbers = parse_numbers(text, decimal, multiply)
    floats = numbers.values
    fraction = floats.notna() & (floats % 1 != 0)
    errors = pd.concat(
        [
            numbers.errors.replace(NUMBER_EXPECTED, INTEGER_EXPECTED),
            pd.Series(INTEGER_EXPECTED, index=text.index[fraction]),
        ]
    )

    exact = pd.Series(dtype="object")
    if multiply is None:
        exact = _exact_integers(text[floats.abs() >= _EXACT_FLOAT_LIMIT], decimal)
    outside = (floats < INT64_MIN) | (floats >= 2.0**63)
    outside[exact.index] = (exact < INT64_MIN) | (exact > INT64_MAX)
    out_of_range = pd.Series(INT64_EXPECTED, index=text.index[outside.to_numpy()])

    from_text = floats.index.isin(exact.index)
    values = floats.mask(fraction | outside | from_text).round().astype("Int64")
    in_range = exact.index.difference(out_of_range.index)
    values[in_range] = exact[in_range]
    return Parsed(values, errors.astype("object"), out_of_range.astype("object"))


def _exact_integers(text: pd.Series, decimal: str) -> pd.Series:
    """Return the Python ``int`` of each value written as an integer literal.

    Values with a fraction or an exponent are left out; their float is exact enough.
    """
    normal, negative = _normalise_number_text(text, decimal)
    literal = normal.str.fullmatch(r"[+-]?\d+").fillna(False)
    signs = np.where(negative[literal].to_numpy(dtype=bool), -1, 1)
    numbers = [
        sign * int(value)
        for sign, value in zip(signs.tolist(), normal[literal].tolist(), strict=True)
    ]
    return pd.Series(numbers, index=normal.index[literal.to_numpy()], dtype="object")


def parse_booleans(text: pd.Series) -> Parsed:
    """Parse yes/no, y/n, true/false, t/f, 1/0 and on/off, in any case.

    Returns
    -------
    Parsed
        ``boolean`` values.

    Examples
    --------
    >>> parse_booleans(pd.Series(["Yes", "off", None])).values.tolist()
    [True, False, <NA>]
    """
    words = text.str.lower()
    is_true = words.isin(TRUE_WORDS)
    is_false = words.isin(FALSE_WORDS)
    values = pd.Series(pd.NA, index=text.index, dtype="boolean")
    values[is_true] = True
    values[is_false] = False

    failed = text.notna() & ~is_true & ~is_false
    errors = pd.Series(BOOLEAN_EXPECTED, index=text.index[failed], dtype="object")
    return Parsed(values, errors)


def parse_timestamps(
    text: pd.Series, formats: tuple[str, ...] = (), timezone: str = "UTC"
) -> Parsed:
    """Parse timestamps into UTC.

    Parameters
    ----------
    text
        Cleaned values (see :func:`clean_text`).
    formats
        ``strptime`` formats to try first, in order, or ``epoch`` (Unix seconds, or
        milliseconds when the absolute value is 1e11 or more), ``epoch_s`` and
        ``epoch_ms``. ISO 8601 is tried after them.
    timezone
        The IANA zone of values without an offset.

    Returns
    -------
    Parsed
        ``datetime64[us, UTC]`` values.

    Examples
    --------
    >>> parse_timestamps(pd.Series(["2024-01-31T10:00+02:00"])).values.tolist()
    [Timestamp('2024-01-31 08:00:00+0000', tz='UTC')]
    """
    values = pd.Series(pd.NaT, index=text.index, dtype=UTC_DTYPE)
    remaining = text.dropna()
    local_time_failed = pd.Series(False, index=remaining.index)

    for fmt in formats:
        if remaining.empty:
            break
        if fmt in EPOCH_FORMATS:
            parsed = _parse_epoch(remaining, fmt)
        else:
            parsed, bad_local = _parse_with_format(remaining, fmt, timezone)
            local_time_failed |= bad_local.reindex(
                local_time_failed.index, fill_value=False
            )
        values.loc[parsed.index[parsed.notna()]] = parsed.dropna()
        remaining = remaining[parsed.isna()]

    if not remaining.empty:
        parsed, bad_local = _parse_iso(remaining, timezone)
        local_time_failed |= bad_local.reindex(
            local_time_failed.index, fill_value=False
        )
        values.loc[parsed.index[parsed.notna()]] = parsed.dropna()
        remaining = remaining[parsed.isna()]

    errors = _timestamp_errors(remaining, formats, timezone, local_time_failed)
    return Parsed(values, errors)


def _timestamp_errors(
    failed: pd.Series,
    formats: tuple[str, ...],
    timezone: str,
    local_time_failed: pd.Series,
) -> pd.Series:
    if formats:
        expected = f"a time in the formats {list(formats)} or ISO 8601"
    else:
        expected = TIMESTAMP_EXPECTED
    errors = pd.Series(expected, index=failed.index, dtype="object")

    if not formats:
        ambiguous = failed.str.fullmatch(_DAY_MONTH_DATE).fillna(False)
        errors[ambiguous] = (
            "an unambiguous date; day and month order is unknown, so set formats "
            "in the mapping, e.g. formats: ['%d/%m/%Y'] or ['%m/%d/%Y']"
        )
    bad_local = local_time_failed.reindex(failed.index, fill_value=False)
    errors[bad_local] = (
        f"a local time that exists in {timezone}; it falls in a daylight-saving "
        "change, so write it with an offset such as +01:00"
    )
    return errors


def _localise(naive: pd.Series, timezone: str) -> tuple[pd.Series, pd.Series]:
    """Convert naive times in ``timezone`` to UTC; flag skipped or repeated times."""
    local = naive.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    bad_local = naive.notna() & local.isna()
    return local.dt.tz_convert("UTC").astype(UTC_DTYPE), bad_local


def _parse_iso(text: pd.Series, timezone: str) -> tuple[pd.Series, pd.Series]:
    with_offset = text.str.contains(_OFFSET_AT_END, regex=True)
    aware = pd.to_datetime(
        text[with_offset], format="ISO8601", utc=True, errors="coerce"
    ).astype(UTC_DTYPE)
    naive = pd.to_datetime(text[~with_offset], format="ISO8601", errors="coerce")
    local, bad_local = _localise(naive.astype("datetime64[us]"), timezone)
    return pd.concat([aware, local]).reindex(text.index), bad_local


def _parse_with_format(
    text: pd.Series, fmt: str, timezone: str
) -> tuple[pd.Series, pd.Series]:
    no_errors = pd.Series(False, index=text.index)
    if "%z" in fmt or "%Z" in fmt:
        parsed = pd.to_datetime(text, format=fmt, utc=True, errors="coerce")
        return parsed.astype(UTC_DTYPE), no_errors
    naive = pd.to_datetime(text, format=fmt, errors="coerce")
    return _localise(naive.astype("datetime64[us]"), timezone)


def _parse_epoch(text: pd.Series, fmt: str) -> pd.Series:
    numbers = parse_numbers(text).values
    if fmt == "epoch_ms":
        millis = numbers
    elif fmt == "epoch_s":
        millis = numbers * 1000
    else:
        millis = numbers.where(numbers.abs() >= 1e11, numbers * 1000)
    in_range = millis.abs() < 2.5e14  # about the year 9900
    micros = (millis.where(in_range) * 1000).round()
    parsed = pd.to_datetime(micros, unit="us", utc=True, errors="coerce")
    return parsed.astype(UTC_DTYPE)


def infer_kind(text: pd.Series, decimal: str = ".") -> str:
    """Infer an attribute's kind from its values.

    Returns
    -------
    str
        ``"number"`` when every present value is written as a number, else
        ``"boolean"`` when every one is a yes/no word, else ``"text"``. A column with
        no values is text. Non-finite numbers such as ``1e400`` or ``inf`` count as
        numbers here, so that parsing the column as numbers rejects them.

    Examples
    --------
    >>> infer_kind(pd.Series(["0", "1"])), infer_kind(pd.Series(["Yes", "no"]))
    ('number', 'boolean')
    """
    present = text.dropna()
    if present.empty:
        return "text"
    errors = parse_numbers(present, decimal).errors
    if (errors == FINITE_EXPECTED).all():
        return "number"
    if parse_booleans(present).errors.empty:
        return "boolean"
    return "text"
