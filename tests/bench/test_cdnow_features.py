"""Test bench/cdnow_features.py on a tiny CDNOW log and small hand-made outcomes.

The features, the log terms and the within-group AUCs are checked against hand
calculations, and the development/test split for stratification and repeatability.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH_DIR))

import cdnow_features as script  # noqa: E402
import peers_methods as methods  # noqa: E402

# CDNOW_master.txt layout: a header line, then customer id, date, CDs, dollars.
TINY_LOG = """\
 customer_id  date number_of_cds  dollar_value
 00001 19970101  2   10.00
 00001 19970101  1    5.00
 00001 19970301  1   20.00
 00001 19970801  3   30.00
 00001 19971115  1    9.99
 00002 19970215  1   12.00
 00003 19970320  2   25.00
 00003 19970325  1    8.00
 00003 19980101  1   11.00
 00004 19970110  1   10.00
 00004 19980701  1   10.00
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "CDNOW_master.txt"
    path.write_text(TINY_LOG)
    return methods.read_cdnow(path)


def test_build_features_hand_case(tiny):
    features = script.build_features(tiny.log)

    first = features.loc["00001"]
    # Purchase days 1997-01-01, 03-01 and 08-01. The 1997-11-15 line is in the hold-out.
    assert first["purchase_days"] == 3
    assert first["lines"] == 4
    assert first["first_day_dollars"] == 15.0
    assert first["first_day_cds"] == 3
    # 1997-03-01 to 1997-08-01: 31 + 30 + 31 + 30 + 31 days.
    assert first["max_gap_days"] == 153
    # 1997-08-01 to the end of 1997-09-30: 31 + 30 days.
    assert first["days_since_last"] == 61
    assert first["dollars_total"] == 65.0
    assert first["cds_total"] == 7


def test_build_features_one_day_buyer(tiny):
    features = script.build_features(tiny.log)

    second = features.loc["00002"]
    assert np.isnan(second["max_gap_days"])
    assert second["lines"] == 1
    assert second["first_day_dollars"] == 12.0
    # 00003 bought on 1997-03-20 and 1997-03-25 before the hold-out.
    assert features.loc["00003", "max_gap_days"] == 5


def test_build_features_row_per_customer(tiny):
    features = script.build_features(tiny.log)

    assert features.index.tolist() == ["00001", "00002", "00003", "00004"]
    assert set(script.WINNER) - {"bgnbd_expected"} <= set(features.columns)


def test_read_cdnow_bought_in_holdout_only(tiny):
    bought = ~tiny.churned

    # 00004 buys again on 1998-07-01, one day after the hold-out ends.
    assert bought.to_dict() == {
        "00001": True,
        "00002": False,
        "00003": True,
        "00004": False,
    }


def _random_outcome(customers: int, buyers: int) -> pd.Series:
    ids = [f"{number:05d}" for number in range(customers)]
    values = np.zeros(customers, dtype=bool)
    values[np.random.default_rng(7).choice(customers, buyers, replace=False)] = True
    return pd.Series(values, index=ids)


def test_split_customers_stratified():
    bought = _random_outcome(200, 60)

    development, test = script.split_customers(bought)

    assert len(development) == 100
    assert len(test) == 100
    assert bought[development].sum() == 30
    assert bought[test].sum() == 30
    assert development.intersection(test).empty
    assert development.union(test).equals(bought.index)
    assert development.is_monotonic_increasing


def test_split_customers_deterministic():
    bought = _random_outcome(200, 60)

    development, test = script.split_customers(bought)
    again, _ = script.split_customers(bought)
    other, _ = script.split_customers(bought, seed=1)

    assert development.equals(again)
    assert not development.equals(other)


def test_log_terms_use_training_minimum():
    train = pd.DataFrame({"wide": np.arange(5.0, 25.0), "narrow": np.arange(20) % 3})
    scored = pd.DataFrame({"wide": [9.0, 2.0], "narrow": [1, 2]})

    transformed = script.LogTerms().fit(train).transform(scored)

    assert transformed.columns.tolist() == ["wide", "narrow", "log_wide"]
    assert transformed["log_wide"].iloc[0] == pytest.approx(np.log(5.0))
    # 2 is below the training minimum 5, so it gets the log term of the minimum.
    assert transformed["log_wide"].iloc[1] == 0.0


def test_score_groups_hand_case():
    purchase_days = pd.Series([1, 1, 1, 1, 3, 2, 2])
    outcome = np.array([True, False, False, True, True, False, True])
    score = np.array([0.9, 0.8, 0.1, 0.2, 0.5, 0.6, 0.7])

    one_day, repeat = script.score_groups(purchase_days, outcome, score)

    # One-day buyers: pairs (0.9, 0.8) (0.9, 0.1) (0.2, 0.1) won, (0.2, 0.8) lost.
    assert one_day.customers == 4
    assert one_day.buyers == 2
    assert one_day.roc_auc == 0.75
    # Repeat buyers: 0.7 beats 0.6, 0.5 does not.
    assert repeat.customers == 3
    assert repeat.roc_auc == 0.5
