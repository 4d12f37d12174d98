from __future__ import annotations

import re

import pandas as pd
import pytest

from healthscore.ingest import parsing
from healthscore.ingest.parsing import (
    BOOLEAN_EXPECTED,
    FINITE_EXPECTED,
    INT64_EXPECTED,
    NULL_MARKERS,
    NUMBER_EXPECTED,
    TIMESTAMP_EXPECTED,
    clean_text,
    infer_kind,
    parse_booleans,
    parse_integers,
    parse_numbers,
    parse_timestamps,
)


def text(*values: str | None) -> pd.Series:
    return clean_text(pd.Series(list(values), dtype="object"))


def utc(value: str) -> pd.Timestamp:
    return pd.Timestamp(value, tz="UTC")


def test_clean_text_null_markers():
    cleaned = text(
        " a ", "", "   ", "NA", "n/a", "NULL", "None", "-", "#N/A", "nan", None
    )
    assert cleaned.iloc[0] == "a"
    assert cleaned.iloc[1:].isna().all()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("1234.5", 1234.5, id="plain"),
        pytest.param("1,234.5", 1234.5, id="thousands-comma"),
        pytest.param("1 234 567", 1234567.0, id="thousands-space"),
        pytest.param("$1,234", 1234.0, id="currency"),
        pytest.param("-$3.5", -3.5, id="negative-currency"),
        pytest.param("(1,234.5)", -1234.5, id="accounting-negative"),
        pytest.param("12%", 12.0, id="percent-as-written"),
        pytest.param("1e3", 1000.0, id="exponent"),
        pytest.param(".5", 0.5, id="leading-dot"),
        pytest.param("+7", 7.0, id="plus-sign"),
    ],
)
def test_parse_numbers_decimal_point(raw, expected):
    parsed = parse_numbers(text(raw))
    assert parsed.values.iloc[0] == expected
    assert parsed.errors.empty


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("1 234,5", 1234.5, id="space-grouping"),
        pytest.param("1.234,5", 1234.5, id="dot-grouping"),
        pytest.param("12,0", 12.0, id="decimal-comma"),
        pytest.param("(3,25)", -3.25, id="accounting-negative"),
    ],
)
def test_parse_numbers_decimal_comma(raw, expected):
    parsed = parse_numbers(text(raw), decimal=",")
    assert parsed.values.iloc[0] == expected
    assert parsed.errors.empty


def test_parse_numbers_rejects_ambiguous_grouping():
    parsed = parse_numbers(text("1,5", "1,23", "abc", "1.5.2", None, "7"))
    assert parsed.errors.to_dict() == {
        0: NUMBER_EXPECTED,
        1: NUMBER_EXPECTED,
        2: NUMBER_EXPECTED,
        3: NUMBER_EXPECTED,
    }
    assert parsed.values.iloc[:5].isna().all()
    assert parsed.values.iloc[5] == 7.0


def test_parse_numbers_decimal_comma_rejects_dot_decimal():
    parsed = parse_numbers(text("1.5"), decimal=",")
    assert parsed.errors.to_dict() == {
        0: "a number with decimal comma such as 1234,5 or 1.234,5"
    }


def test_parse_numbers_multiply():
    parsed = parse_numbers(text("29.85", None), multiply=12)
    assert parsed.values.iloc[0] == pytest.approx(358.2)
    assert pd.isna(parsed.values.iloc[1])


def test_parse_integers_rejects_fraction():
    parsed = parse_integers(text("12", "1,000", "2.5", "x"))
    assert parsed.values.iloc[0] == 12
    assert parsed.values.iloc[1] == 1000
    assert parsed.errors.sort_index().to_dict() == {
        2: "a whole number such as 12",
        3: "a whole number such as 12",
    }


def test_parse_booleans_words():
    words = ["yes", "No", " Y ", "n", "TRUE", "false", "t", "F", "1", "0", "on", "OFF"]
    parsed = parse_booleans(text(*words))
    assert parsed.values.tolist() == [True, False] * 6
    assert parsed.errors.empty


def test_parse_booleans_rejects_other_words():
    parsed = parse_booleans(text("maybe", None, "2"))
    assert parsed.errors.to_dict() == {0: BOOLEAN_EXPECTED, 2: BOOLEAN_EXPECTED}
    assert pd.isna(parsed.values.iloc[1])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("2024-01-31", "2024-01-31T00:00:00", id="date"),
        pytest.param("20240131", "2024-01-31T00:00:00", id="basic-date"),
        pytest.param("2024-01-31T10:00:00Z", "2024-01-31T10:00:00", id="zulu"),
        pytest.param("2024-01-31 10:00:00+02:00", "2024-01-31T08:00:00", id="offset"),
        pytest.param("2024-01-31T10:00-0500", "2024-01-31T15:00:00", id="offset-basic"),
        pytest.param(
            "2024-01-31T10:00:00.250", "2024-01-31T10:00:00.250", id="fraction"
        ),
    ],
)
def test_parse_timestamps_iso(raw, expected):
    parsed = parse_timestamps(text(raw))
    assert parsed.values.iloc[0] == utc(expected)
    assert parsed.errors.empty


def test_parse_timestamps_naive_uses_timezone():
    parsed = parse_timestamps(
        text("2024-01-31 10:00", "2024-07-01 10:00", "2024-07-01T10:00Z"),
        timezone="Europe/Berlin",
    )
    # Berlin is UTC+1 in January and UTC+2 in July; an explicit Z stays UTC.
    assert parsed.values.tolist() == [
        utc("2024-01-31T09:00"),
        utc("2024-07-01T08:00"),
        utc("2024-07-01T10:00"),
    ]


def test_parse_timestamps_day_month_needs_formats():
    parsed = parse_timestamps(text("03/04/2024", "garbage"))
    assert parsed.errors.to_dict() == {
        0: "an unambiguous date; day and month order is unknown, so set formats in "
        "the mapping, e.g. formats: ['%d/%m/%Y'] or ['%m/%d/%Y']",
        1: TIMESTAMP_EXPECTED,
    }


def test_parse_timestamps_with_formats():
    parsed = parse_timestamps(
        text("03/04/2024 10:00", "2024-05-06", "31/02/2024 00:00"),
        formats=("%d/%m/%Y %H:%M",),
        timezone="Europe/Berlin",
    )
    assert parsed.values.iloc[0] == utc("2024-04-03T08:00")
    assert parsed.values.iloc[1] == utc("2024-05-05T22:00")
    assert parsed.errors.to_dict() == {
        2: "a time in the formats ['%d/%m/%Y %H:%M'] or ISO 8601"
    }


def test_parse_timestamps_epoch():
    parsed = parse_timestamps(
        text("1706695200", "1706695200000", "1706695200.5"), formats=("epoch",)
    )
    assert parsed.values.tolist() == [
        utc("2024-01-31T10:00:00"),
        utc("2024-01-31T10:00:00"),
        utc("2024-01-31T10:00:00.5"),
    ]


def test_parse_timestamps_epoch_ms():
    parsed = parse_timestamps(text("86400000"), formats=("epoch_ms",))
    assert parsed.values.iloc[0] == utc("1970-01-02")


def test_parse_timestamps_daylight_saving_gap():
    # 02:30 on 2024-03-31 does not exist in Berlin: clocks jump from 02:00 to 03:00.
    parsed = parse_timestamps(text("2024-03-31T02:30"), timezone="Europe/Berlin")
    assert parsed.errors.to_dict() == {
        0: "a local time that exists in Europe/Berlin; it falls in a daylight-saving "
        "change, so write it with an offset such as +01:00"
    }


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        pytest.param(["0", "1", None], "number", id="zero-one-is-number"),
        pytest.param(["1,234.5", "7"], "number", id="grouped-number"),
        pytest.param(["Yes", "no", ""], "boolean", id="yes-no"),
        pytest.param(["True", "FALSE"], "boolean", id="true-false"),
        pytest.param(["Yes", "No internet service"], "text", id="mixed"),
        pytest.param([None, ""], "text", id="empty"),
    ],
)
def test_infer_kind_cases(values, kind):
    assert infer_kind(text(*values)) == kind


def test_null_markers_documented_exactly():
    doc = parsing.__doc__ or ""
    bullet = doc[doc.index("- Missing:") : doc.index("- Numbers:")]
    documented = {marker.lower() for marker in re.findall(r"``([^`]+)``", bullet)}
    assert documented == NULL_MARKERS - {""}


@pytest.mark.parametrize("marker", ["NaN", "NAN", "nan", " None ", "#n/a", "Null"])
def test_clean_text_null_markers_any_case(marker):
    assert text(marker).isna().all()


@pytest.mark.parametrize(
    "raw", ["1e400", "-1e400", "inf", "-inf", "+Infinity", "INF", "(1e400)"]
)
def test_parse_numbers_rejects_non_finite(raw):
    parsed = parse_numbers(text(raw))
    assert parsed.values.isna().all()
    assert parsed.errors.tolist() == [FINITE_EXPECTED]


def test_parse_numbers_multiply_overflow():
    parsed = parse_numbers(text("1e308", "2"), multiply=12)
    assert parsed.values.isna().tolist() == [True, False]
    assert parsed.errors.to_dict() == {0: FINITE_EXPECTED}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("9223372036854775807", 2**63 - 1, id="int64-max"),
        pytest.param("-9223372036854775808", -(2**63), id="int64-min"),
        pytest.param("(9,223,372,036,854,775,808)", -(2**63), id="accounting-min"),
        pytest.param("9007199254740993", 2**53 + 1, id="beyond-float-precision"),
        pytest.param("9.2e18", 9_200_000_000_000_000_000, id="exponent"),
    ],
)
def test_parse_integers_int64_limits(raw, expected):
    parsed = parse_integers(text(raw))
    assert parsed.values.tolist() == [expected]
    assert parsed.errors.empty
    assert parsed.out_of_range.empty


@pytest.mark.parametrize(
    "raw",
    ["9223372036854775808", "-9223372036854775809", "99999999999999999999", "1e19"],
)
def test_parse_integers_out_of_range(raw):
    parsed = parse_integers(text(raw))
    assert parsed.values.isna().all()
    assert parsed.errors.empty
    assert parsed.out_of_range.tolist() == [INT64_EXPECTED]


def test_parse_integers_multiply_out_of_range():
    parsed = parse_integers(text("4611686018427387904", "3"), multiply=2)
    assert parsed.values.tolist() == [pd.NA, 6]
    assert parsed.out_of_range.to_dict() == {0: INT64_EXPECTED}


def test_infer_kind_non_finite_is_number():
    assert infer_kind(text("1", "1e400")) == "number"
    assert infer_kind(text("2", "-inf")) == "number"
