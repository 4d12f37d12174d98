from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from healthscore.evaluation import churn_rate_by_band, roc_auc
from healthscore.exceptions import InputDataError


def test_roc_auc_perfect_and_reversed():
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == 1.0
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0


def test_roc_auc_ties_count_half():
    assert roc_auc([0.5, 0.5], [True, False]) == 0.5
    assert roc_auc([1.0, 0.5, 0.5], [1, 1, 0]) == (1 + 0.5) / 2


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    size = 400
    churned = rng.random(size) < 0.3
    risk = np.round(rng.normal(size=size) + churned, 1)

    assert roc_auc(risk, churned) == pytest.approx(
        roc_auc_score(churned, risk), abs=1e-12
    )


def test_roc_auc_drops_nan_rows():
    risk = np.array([0.9, np.nan, 0.3, 0.1, 0.7])
    churned = np.array([1, 1, np.nan, 0, 0], dtype=float)

    assert roc_auc(risk, churned) == roc_auc_score([1, 0, 0], [0.9, 0.1, 0.7])


def test_roc_auc_accepts_none_outcomes():
    churned = [True, None, False, True]

    assert roc_auc([0.8, 0.5, 0.2, 0.1], churned) == 0.5


def test_roc_auc_one_class_raises():
    with pytest.raises(InputDataError, match="got 3 churned and 0 retained"):
        roc_auc([0.1, 0.2, 0.3], [1, 1, 1])


def test_roc_auc_length_mismatch_raises():
    with pytest.raises(InputDataError, match=r"same length; got shapes \(3,\)"):
        roc_auc([0.1, 0.2, 0.3], [1, 0])


def test_churn_rate_by_band_default_order():
    bands = ["Poor", "Good", "Unknown", "Poor", "Average", "Good", None]
    churned = [1, 0, 1, 0, 1, 0, 0]
    table = churn_rate_by_band(bands, churned)

    assert list(table["band"]) == ["Good", "Average", "Poor", "Unknown"]
    assert list(table["accounts"]) == [2, 1, 2, 2]
    assert list(table["churned"]) == [0, 1, 1, 1]
    assert list(table["churn_rate"]) == [0 / 2, 1 / 1, 1 / 2, 1 / 2]


def test_churn_rate_by_band_given_order():
    table = churn_rate_by_band(
        ["Red", "Green", "Red", "Blue"],
        [True, False, False, True],
        order=["Green", "Amber", "Red"],
    )

    assert list(table["band"]) == ["Green", "Amber", "Red", "Blue"]
    assert list(table["accounts"]) == [1, 0, 2, 1]
    assert list(table["churned"]) == [0, 0, 1, 1]
    assert math.isnan(table["churn_rate"].iloc[1])
    assert table["churn_rate"].iloc[2] == 1 / 2


def test_churn_rate_by_band_skips_unknown_outcomes():
    table = churn_rate_by_band(["Good", "Good", "Poor"], [1, None, np.nan])

    assert list(table["band"]) == ["Good"]
    assert list(table["accounts"]) == [1]


def test_churn_rate_by_band_length_mismatch():
    with pytest.raises(InputDataError, match="same length; got 2 and 1"):
        churn_rate_by_band(["Good", "Poor"], [1])
