from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthscore.scoring import round_contributions


def _decimal_sum(values: list[float]) -> Decimal:
    return sum((Decimal(str(value)) for value in values), Decimal(0))


def test_round_contributions_thirds():
    assert round_contributions([100 / 3] * 3, 100.0, digits=1) == [33.4, 33.3, 33.3]


def test_round_contributions_largest_remainder_wins():
    assert round_contributions([10.06, 20.03, 30.03], 60.12, digits=1) == [
        10.1,
        20.0,
        30.0,
    ]


def test_round_contributions_takes_back_when_over():
    rounded = round_contributions([0.19, 0.19, 0.19], 0.2, digits=1)

    assert _decimal_sum(rounded) == Decimal("0.2")
    assert rounded == [0.1, 0.1, 0.0]


def test_round_contributions_whole_numbers():
    rounded = round_contributions([12.5, 12.5, 25.0], 50.0, digits=0)

    assert rounded == [13.0, 12.0, 25.0]


def test_round_contributions_nan_score():
    rounded = round_contributions([0.0, 0.0], math.nan)

    assert len(rounded) == 2
    assert all(math.isnan(value) for value in rounded)


def test_round_contributions_empty():
    assert round_contributions([], 0.0) == []


@given(
    st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=25),
    st.integers(min_value=0, max_value=3),
)
def test_round_contributions_sum_exactly(parts, digits):
    score = sum(parts)

    rounded = round_contributions(parts, score, digits)

    assert len(rounded) == len(parts)
    assert _decimal_sum(rounded) == Decimal(str(round(score, digits)))
    for value, part in zip(rounded, parts, strict=True):
        assert abs(value - part) < 10.0**-digits + 1e-9


@pytest.mark.parametrize("digits", [0, 1, 2])
def test_round_contributions_keeps_digits(digits):
    rounded = round_contributions([1.23456, 2.34567], 3.58023, digits)

    for value in rounded:
        assert round(value, digits) == value
