import datetime as dt
import math

import pyarrow as pa
import pytest

from healthscore.exceptions import ConfigError
from healthscore.history import score_trends
from healthscore.store import TABLES, Store

UTC = dt.UTC
TODAY = dt.date(2024, 6, 30)


def _row(run_id, day, account, score, hour=1):
    as_of = TODAY - dt.timedelta(days=day)
    return {
        "run_id": run_id,
        "as_of": as_of,
        "account_id": account,
        "profile_name": "p",
        "profile_hash": "h",
        "score": score,
        "band": "Unknown" if score is None else "Good",
        "coverage": 1.0,
        "computed_at": dt.datetime.combine(
            as_of + dt.timedelta(days=1), dt.time(hour), tzinfo=UTC
        ),
    }


@pytest.fixture
def store(tmp_path):
    rows = [
        _row("r0", 0, "a", 70.0),
        _row("r0", 0, "b", 40.0),
        _row("r0", 0, "c", None),
        # Two runs of 7 days ago: the later computed_at (r7b) counts for a.
        _row("r7a", 7, "a", 10.0, hour=1),
        _row("r7b", 7, "a", 60.0, hour=5),
        _row("r7b", 7, "b", 50.0, hour=5),
        _row("r7b", 7, "c", 30.0, hour=5),
        _row("r30", 30, "a", 80.0),
        # 6 days ago only: matches no window.
        _row("r6", 6, "b", 1.0),
        # d has only an older score, so it has no row as of TODAY.
        _row("r90", 90, "d", 20.0),
        _row("r90", 90, "a", 90.5),
    ]
    schema = TABLES["scores"].to_pyarrow()
    table = pa.Table.from_pylist(rows, schema=schema)
    with Store.open(tmp_path / "s.duckdb") as opened:
        opened.insert("scores", table)
        yield opened


def test_score_trends_hand_checked(store):
    trends = score_trends(store, TODAY).set_index("account_id")

    assert list(trends.index) == ["a", "b", "c"]
    assert trends.loc["a", "score_7d"] == 60.0
    assert trends.loc["a", "change_7d"] == 10.0
    assert trends.loc["a", "change_30d"] == -10.0
    assert trends.loc["a", "change_90d"] == -20.5
    assert trends.loc["b", "change_7d"] == -10.0
    assert math.isnan(trends.loc["b", "score_30d"])
    assert math.isnan(trends.loc["b", "change_30d"])
    assert trends.loc["c", "score_7d"] == 30.0
    assert math.isnan(trends.loc["c", "change_7d"])


def test_score_trends_columns_follow_windows(store):
    trends = score_trends(store, TODAY, windows=(30,))

    assert list(trends.columns) == [
        "account_id",
        "as_of",
        "score",
        "score_30d",
        "change_30d",
    ]
    assert set(trends["as_of"]) == {TODAY}


def test_score_trends_newest_date_per_account(store):
    trends = score_trends(store, None, windows=(7,)).set_index("account_id")

    assert list(trends.index) == ["a", "b", "c", "d"]
    assert trends.loc["d", "as_of"] == TODAY - dt.timedelta(days=90)
    assert math.isnan(trends.loc["d", "change_7d"])
    assert trends.loc["a", "change_7d"] == 10.0


def test_score_trends_empty_store(tmp_path):
    with Store.open(tmp_path / "empty.duckdb") as opened:
        trends = score_trends(opened, TODAY)

    assert trends.empty
    assert "change_90d" in trends.columns


@pytest.mark.parametrize("windows", [(0,), (7, -1), (7.5,), (True,)])
def test_score_trends_rejects_bad_window(store, windows):
    with pytest.raises(ConfigError, match="whole numbers of days"):
        score_trends(store, TODAY, windows=windows)
