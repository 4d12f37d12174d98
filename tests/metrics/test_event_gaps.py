"""days_between_events and value_per_active_day, by hand and on both event paths."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from healthscore.metrics.rollup import refresh_rollups
from tests.metrics.test_events import AS_OF, PERIOD_END, add_accounts
from tests.metrics.test_rollup import both_paths, random_events, write_events

NAMES = ["days_between_events_30d", "value_per_active_day_30d"]


def write_hand_events(write):
    add_accounts(write, "gaps", "one_day", "old", "no_values", "none")
    rows = [
        # Active dates in the 30 days up to 2024-03-31: 03-02, 03-10, 03-31.
        ("gaps", "2024-03-02T00:00:00Z", 4.0),
        ("gaps", "2024-03-10T08:00:00Z", 1.0),
        ("gaps", "2024-03-10T23:59:59Z", None),
        ("gaps", "2024-03-31T23:59:59Z", 7.0),
        # Outside the window: the day before it starts and the day after it ends.
        ("gaps", "2024-03-01T23:59:59Z", 100.0),
        ("gaps", "2024-04-01T00:00:00Z", 100.0),
        ("one_day", "2024-03-20T01:00:00Z", 3.0),
        ("one_day", "2024-03-20T22:00:00Z", 5.0),
        ("old", "2023-12-01T00:00:00Z", 2.0),
        ("no_values", "2024-03-15T00:00:00Z", None),
        ("no_values", "2024-03-25T00:00:00Z", None),
    ]
    write(
        "events",
        [
            {"account_id": account, "occurred_at": at, "value": value}
            for account, at, value in rows
        ],
    )


def test_days_between_events_by_hand(store, write):
    write_hand_events(write)

    result = store_metrics(store)

    # (03-31 - 03-02) / (3 - 1) = 29 / 2.
    assert result.loc["gaps", "days_between_events_30d"] == 14.5
    assert math.isnan(result.loc["one_day", "days_between_events_30d"])
    assert math.isnan(result.loc["old", "days_between_events_30d"])
    assert result.loc["no_values", "days_between_events_30d"] == 10.0
    assert math.isnan(result.loc["none", "days_between_events_30d"])


def test_value_per_active_day_by_hand(store, write):
    write_hand_events(write)

    result = store_metrics(store)

    # (4 + 1 + 7) dollars over 3 active dates.
    assert result.loc["gaps", "value_per_active_day_30d"] == 4.0
    assert result.loc["one_day", "value_per_active_day_30d"] == 8.0
    assert math.isnan(result.loc["old", "value_per_active_day_30d"])
    assert math.isnan(result.loc["no_values", "value_per_active_day_30d"])
    assert math.isnan(result.loc["none", "value_per_active_day_30d"])


def store_metrics(store) -> pd.DataFrame:
    from healthscore.metrics import compute_metrics

    return compute_metrics(store, AS_OF, NAMES).set_index("account_id")


@pytest.mark.parametrize("days", [14, 401])
def test_event_gaps_match_pandas_on_both_paths(store, write, days):
    account_ids = [f"acct-{i:02d}" for i in range(10)]
    add_accounts(write, *account_ids)
    events = random_events(days, account_ids[:8], n=600, days=2 * days + 20)
    write_events(store, events, "load-1")
    refresh_rollups(store)
    names = [f"days_between_events_{days}d", f"value_per_active_day_{days}d"]

    from_rollups, from_events = both_paths(store, names)

    expected = pandas_gaps(events, account_ids, days)
    for frame in (from_rollups, from_events):
        actual = frame.set_index("account_id").loc[account_ids]
        np.testing.assert_allclose(actual[names[0]], expected["gap"], rtol=1e-12)
        np.testing.assert_allclose(actual[names[1]], expected["per_day"], rtol=1e-12)


def pandas_gaps(events: pd.DataFrame, account_ids, days: int) -> pd.DataFrame:
    """Compute both metrics with pandas from the raw events."""
    start = PERIOD_END - pd.Timedelta(days=days)
    window = events[(events.occurred_at >= start) & (events.occurred_at < PERIOD_END)]
    window = window.assign(date=window.occurred_at.dt.floor("D"))
    has_value = events[events.occurred_at < PERIOD_END].groupby("account_id").value
    value_rows = has_value.count().reindex(account_ids, fill_value=0)
    rows = []
    for account in account_ids:
        mine = window[window.account_id == account]
        dates = mine.date.unique()
        span = (dates.max() - dates.min()).days if len(dates) else 0
        gap = span / (len(dates) - 1) if len(dates) >= 2 else np.nan
        valued = len(dates) > 0 and value_rows[account] > 0
        per_day = mine.value.sum() / len(dates) if valued else np.nan
        rows.append({"gap": gap, "per_day": per_day})
    return pd.DataFrame(rows, index=account_ids)
