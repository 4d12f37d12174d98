"""Rebuilding the inputs of stored runs from metric_snapshots and profiles."""

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from healthscore.exceptions import NotFoundError
from healthscore.history import (
    find_run,
    load_score_inputs,
    score_snapshot,
    stored_dates,
)
from healthscore.scoring import parse_profile, score_accounts
from healthscore.store import Store

PROFILE = parse_profile(
    "name: mixed\ncomponents:\n"
    "  - name: size\n    weight: 3\n    measures:\n"
    "      - metric: seats\n        percentile: {min_peers: 1}\n"
    "  - name: plan\n    weight: 1\n    measures:\n"
    "      - metric: plan\n        category: {points: {pro: 100, free: 0}}\n"
)
DAY_1, DAY_2 = dt.date(2024, 1, 31), dt.date(2024, 2, 29)


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "runs.duckdb") as opened:
        accounts = {
            "account_id": ["a", "b", "c", "d"],
            "segment": ["smb", "smb", "smb", "ent"],
            "plan": ["pro", "free", None, "pro"],
            "seats": [50, 70, None, 5],
            "load_id": ["l"] * 4,
        }
        opened.insert("accounts", pa.table(accounts))
        yield opened


def test_load_score_inputs_equals_run_metrics(store):
    run = score_snapshot(store, PROFILE, DAY_1)

    inputs = load_score_inputs(store, as_of=DAY_1, account_id="a")

    assert inputs.profile.hash == PROFILE.hash
    pd.testing.assert_frame_equal(inputs.metrics, run.metrics)


def test_load_score_inputs_rescores_to_stored_scores(store):
    run = score_snapshot(store, PROFILE, DAY_1)

    inputs = load_score_inputs(store, as_of=DAY_1)
    rescored = score_accounts(inputs.metrics, inputs.profile).scores

    stored = run.result.scores.set_index("account_id")["score"]
    assert rescored.set_index("account_id")["score"].equals(stored)


def test_find_run_takes_newest_run_of_date(store):
    score_snapshot(store, PROFILE, DAY_1)
    other = parse_profile(PROFILE.text.replace("weight: 3", "weight: 1"))
    newest = score_snapshot(store, other, DAY_1)

    run = find_run(store, as_of=DAY_1, account_id="b")

    assert run.run_id == newest.run_id
    assert run.profile_hash == other.hash
    expected = newest.result.scores.set_index("account_id").loc["b", "score"]
    assert run.score == expected
    assert run.band == newest.result.scores.set_index("account_id").loc["b", "band"]


def test_find_run_missing_date_lists_dates(store):
    score_snapshot(store, PROFILE, DAY_1)
    score_snapshot(store, PROFILE, DAY_2)

    with pytest.raises(NotFoundError, match="stored dates are 2024-02-29, 2024-01-31"):
        find_run(store, as_of=dt.date(2024, 2, 1), account_id="a")


def test_find_run_unknown_account(store):
    score_snapshot(store, PROFILE, DAY_1)

    with pytest.raises(NotFoundError, match="account 'zzz' not found"):
        find_run(store, as_of=DAY_1, account_id="zzz")


def test_stored_dates_oldest_first(store):
    score_snapshot(store, PROFILE, DAY_2)
    score_snapshot(store, PROFILE, DAY_1)

    assert stored_dates(store) == (DAY_1, DAY_2)
    assert stored_dates(store, "nobody") == ()
