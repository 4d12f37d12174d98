"""Event metrics checked against hand calculations and an independent pandas version."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from healthscore.metrics import compute_metrics
from healthscore.metrics.rollup import refresh_rollups, use_rollups

AS_OF = dt.date(2024, 3, 31)
PERIOD_END = pd.Timestamp("2024-04-01", tz="UTC")


def metrics_by_account(store, names, as_of=AS_OF):
    frame = compute_metrics(store, as_of, names)
    return frame.set_index("account_id")


def add_accounts(write, *account_ids):
    write("accounts", [{"account_id": a, "segment": "smb"} for a in account_ids])


def test_event_count_as_of_end_boundary(store, write):
    add_accounts(write, "a")
    write(
        "events",
        [
            {"account_id": "a", "occurred_at": "2024-03-31T23:59:59Z"},
            {"account_id": "a", "occurred_at": "2024-03-31T23:59:59.999999Z"},
            {"account_id": "a", "occurred_at": "2024-04-01T00:00:00Z"},
            # 23:30 UTC on the as-of date, written with a +02:00 offset.
            {"account_id": "a", "occurred_at": "2024-04-01T01:30:00+02:00"},
            # 00:30 UTC the next day, although the local date is the as-of date.
            {"account_id": "a", "occurred_at": "2024-03-31T23:30:00-01:00"},
        ],
    )

    result = metrics_by_account(store, ["event_count_1d", "event_count_30d"])

    assert result.loc["a", "event_count_1d"] == 3.0
    assert result.loc["a", "event_count_30d"] == 3.0


def test_event_count_window_start_boundary(store, write):
    add_accounts(write, "a")
    write(
        "events",
        [
            # A 7-day window as of 2024-03-31 covers 2024-03-25 to 2024-03-31.
            {"account_id": "a", "occurred_at": "2024-03-25T00:00:00Z"},
            {"account_id": "a", "occurred_at": "2024-03-24T23:59:59Z"},
        ],
    )

    result = metrics_by_account(store, ["event_count_7d", "event_count_8d"])

    assert result.loc["a", "event_count_7d"] == 1.0
    assert result.loc["a", "event_count_8d"] == 2.0


def test_event_counts_zero_or_missing(store, write):
    add_accounts(write, "old_usage", "no_usage", "future_usage")
    write(
        "events",
        [
            {"account_id": "old_usage", "occurred_at": "2023-01-01T00:00:00Z"},
            {"account_id": "future_usage", "occurred_at": "2024-04-01T00:00:00Z"},
        ],
    )
    names = [
        "event_count_30d",
        "active_users_30d",
        "active_days_30d",
        "features_used_30d",
    ]

    result = metrics_by_account(store, names)

    for name in names:
        assert result.loc["old_usage", name] == 0.0, name
        assert math.isnan(result.loc["no_usage", name]), name
        assert math.isnan(result.loc["future_usage", name]), name


def test_event_distinct_users_days_features(store, write):
    add_accounts(write, "a")
    write(
        "events",
        [
            {
                "account_id": "a",
                "user_id": "u1",
                "feature": "reports",
                "occurred_at": "2024-03-30T23:30:00Z",
            },
            # Local date 2024-03-31, UTC date 2024-03-30.
            {
                "account_id": "a",
                "user_id": "u1",
                "feature": "reports",
                "occurred_at": "2024-03-31T00:30:00+02:00",
            },
            {
                "account_id": "a",
                "user_id": None,
                "feature": None,
                "occurred_at": "2024-03-31T01:00:00Z",
            },
            {
                "account_id": "a",
                "user_id": "u2",
                "feature": "export",
                "occurred_at": "2024-03-31T02:00:00Z",
            },
        ],
    )
    names = ["event_count_7d", "active_users_7d", "active_days_7d", "features_used_7d"]

    result = metrics_by_account(store, names)

    assert result.loc["a", "event_count_7d"] == 4.0
    assert result.loc["a", "active_users_7d"] == 2.0
    assert result.loc["a", "active_days_7d"] == 2.0
    assert result.loc["a", "features_used_7d"] == 2.0


def test_event_value_sum_and_missing(store, write):
    add_accounts(write, "a", "null_values", "old_values")
    write(
        "events",
        [
            {"account_id": "a", "value": 2.5, "occurred_at": "2024-03-30T00:00:00Z"},
            {"account_id": "a", "value": None, "occurred_at": "2024-03-30T00:00:00Z"},
            {"account_id": "a", "value": 4.0, "occurred_at": "2024-03-31T10:00:00Z"},
            {"account_id": "a", "value": 1.0, "occurred_at": "2024-03-01T00:00:00Z"},
            {"account_id": "a", "value": 9.0, "occurred_at": "2024-04-01T00:00:00Z"},
            {
                "account_id": "null_values",
                "value": None,
                "occurred_at": "2024-03-30T00:00:00Z",
            },
            {
                "account_id": "old_values",
                "value": 3.0,
                "occurred_at": "2023-03-30T00:00:00Z",
            },
        ],
    )

    result = metrics_by_account(store, ["event_value_7d"])

    assert result.loc["a", "event_value_7d"] == 6.5
    assert math.isnan(result.loc["null_values", "event_value_7d"])
    assert result.loc["old_values", "event_value_7d"] == 0.0


def test_event_trend_ratio_cases(store, write):
    add_accounts(write, "growing", "stopped", "new", "dormant")
    recent = "2024-03-30T12:00:00Z"
    earlier = "2024-03-20T12:00:00Z"
    old = "2024-01-01T00:00:00Z"
    rows = (
        [("growing", recent)] * 3
        + [("growing", earlier)] * 2
        + [("stopped", earlier)] * 2
        + [("new", recent)] * 2
        + [("dormant", old)]
    )
    write("events", [{"account_id": a, "occurred_at": t} for a, t in rows])

    result = metrics_by_account(store, ["event_trend_7d"])

    assert result.loc["growing", "event_trend_7d"] == 1.5
    assert result.loc["stopped", "event_trend_7d"] == 0.0
    assert math.isnan(result.loc["new", "event_trend_7d"])
    assert math.isnan(result.loc["dormant", "event_trend_7d"])


def test_event_trend_windows_do_not_overlap(store, write):
    add_accounts(write, "a")
    write(
        "events",
        [
            # Last 7 days start 2024-03-25; the 7 days before start 2024-03-18.
            {"account_id": "a", "occurred_at": "2024-03-25T00:00:00Z"},
            {"account_id": "a", "occurred_at": "2024-03-24T23:59:59Z"},
            {"account_id": "a", "occurred_at": "2024-03-18T00:00:00Z"},
            {"account_id": "a", "occurred_at": "2024-03-17T23:59:59Z"},
        ],
    )

    result = metrics_by_account(store, ["event_trend_7d"])

    assert result.loc["a", "event_trend_7d"] == 0.5


def test_dau_mau_hand_calculation(store, write):
    add_accounts(write, "a", "anonymous", "lapsed")
    users_by_time = [
        ("u1", "2024-03-29T09:00:00Z"),
        ("u2", "2024-03-29T10:00:00Z"),
        ("u1", "2024-03-29T11:00:00Z"),
        ("u1", "2024-03-30T09:00:00Z"),
        ("u3", "2024-03-02T00:00:00Z"),
        # Outside the 30 days, which start 2024-03-02.
        ("u4", "2024-03-01T23:59:59Z"),
    ]
    rows = [
        {"account_id": "a", "user_id": u, "occurred_at": t} for u, t in users_by_time
    ]
    rows.append({"account_id": "anonymous", "occurred_at": "2024-03-29T09:00:00Z"})
    rows.append(
        {"account_id": "lapsed", "user_id": "u9", "occurred_at": "2024-02-01T00:00:00Z"}
    )
    write("events", rows)

    result = metrics_by_account(store, ["dau_mau"])

    # Daily distinct users: 2 on 03-29, 1 on 03-30, 1 on 03-02; 3 distinct in all.
    assert result.loc["a", "dau_mau"] == pytest.approx((4 / 30) / 3)
    assert math.isnan(result.loc["anonymous", "dau_mau"])
    assert math.isnan(result.loc["lapsed", "dau_mau"])


def test_days_since_first_and_last_event(store, write):
    add_accounts(write, "a", "none")
    write(
        "events",
        [
            {"account_id": "a", "occurred_at": "2024-03-01T12:00:00Z"},
            {"account_id": "a", "occurred_at": "2024-03-31T18:00:00Z"},
            {"account_id": "a", "occurred_at": "2024-04-02T00:00:00Z"},
        ],
    )
    names = ["days_since_last_event", "days_since_first_event"]

    result = metrics_by_account(store, names)

    assert result.loc["a", "days_since_last_event"] == 0.25
    assert result.loc["a", "days_since_first_event"] == 30.5
    assert math.isnan(result.loc["none", "days_since_last_event"])
    assert math.isnan(result.loc["none", "days_since_first_event"])


def pandas_event_metrics(events: pd.DataFrame, account_ids, days: int) -> pd.DataFrame:
    """Compute the event metrics with pandas, as an independent reference."""
    events = events[events["occurred_at"] < PERIOD_END].copy()
    events["day"] = events["occurred_at"].dt.tz_convert("UTC").dt.floor("D")
    start = PERIOD_END - pd.Timedelta(days=days)
    before = PERIOD_END - pd.Timedelta(days=2 * days)
    month_start = PERIOD_END - pd.Timedelta(days=30)

    rows = {}
    for account_id in account_ids:
        own = events[events["account_id"] == account_id]
        if own.empty:
            rows[account_id] = {}
            continue
        recent = own[own["occurred_at"] >= start]
        earlier = own[(own["occurred_at"] >= before) & (own["occurred_at"] < start)]
        month = own[own["occurred_at"] >= month_start].dropna(subset=["user_id"])
        monthly_users = month["user_id"].nunique()
        daily_users = month.groupby("day")["user_id"].nunique().sum()
        has_values = own["value"].notna().any()
        rows[account_id] = {
            f"event_count_{days}d": len(recent),
            f"active_users_{days}d": recent["user_id"].nunique(),
            f"active_days_{days}d": recent["day"].nunique(),
            f"features_used_{days}d": recent["feature"].nunique(),
            f"event_value_{days}d": recent["value"].sum() if has_values else np.nan,
            f"event_trend_{days}d": len(recent) / len(earlier)
            if len(earlier)
            else np.nan,
            "dau_mau": daily_users / 30 / monthly_users if monthly_users else np.nan,
            "days_since_last_event": (PERIOD_END - own["occurred_at"].max())
            / pd.Timedelta(days=1),
            "days_since_first_event": (PERIOD_END - own["occurred_at"].min())
            / pd.Timedelta(days=1),
        }
    return pd.DataFrame.from_dict(rows, orient="index").astype("float64")


def test_event_metrics_match_pandas(store, write):
    rng = np.random.default_rng(20240331)
    account_ids = [f"acct-{i:02d}" for i in range(40)]
    add_accounts(write, *account_ids)
    n = 3_000
    # Whole seconds, because the store metrics truncate durations to seconds.
    offsets = rng.integers(0, 120 * 86_400, size=n)
    occurred = pd.Timestamp("2024-01-05", tz="UTC") + pd.to_timedelta(offsets, "s")
    events = pd.DataFrame(
        {
            # Accounts 35 to 39 have no events.
            "account_id": rng.choice(account_ids[:35], size=n),
            "user_id": rng.choice(["u1", "u2", "u3", "u4", "u5", None], size=n),
            "feature": rng.choice(["a", "b", "c", None], size=n),
            "value": np.where(rng.random(n) < 0.2, np.nan, rng.random(n).round(3)),
            "occurred_at": occurred,
        }
    )
    rows = events.astype(object).where(events.notna(), None).to_dict("records")
    for row in rows:
        row["occurred_at"] = row["occurred_at"].to_pydatetime()
    write("events", rows)
    expected = pandas_event_metrics(events, account_ids, days=14)

    result = metrics_by_account(store, list(expected.columns))

    pd.testing.assert_frame_equal(
        result[list(expected.columns)],
        expected.loc[result.index],
        check_names=False,
        check_index_type=False,
        rtol=1e-12,
    )


@pytest.mark.parametrize("days", [1, 31, 400, 401, 1000])
def test_event_metrics_match_pandas_any_window(store, write, days):
    # Windows up to 400 days find each event's day by comparison with the window's
    # midnights and longer ones convert each event, so both paths are checked.
    rng = np.random.default_rng(days)
    account_ids = [f"acct-{i:02d}" for i in range(12)]
    add_accounts(write, *account_ids)
    n = 2_000
    offsets = rng.integers(0, 1_200 * 86_400, size=n)
    occurred = PERIOD_END - pd.Timedelta(days=1_200) + pd.to_timedelta(offsets, "s")
    events = pd.DataFrame(
        {
            "account_id": rng.choice(account_ids[:10], size=n),
            "user_id": rng.choice(["u1", "u2", "u3", None], size=n),
            "feature": rng.choice(["a", "b", None], size=n),
            "value": np.where(rng.random(n) < 0.2, np.nan, rng.random(n).round(3)),
            "occurred_at": occurred,
        }
    )
    rows = events.astype(object).where(events.notna(), None).to_dict("records")
    for row in rows:
        row["occurred_at"] = row["occurred_at"].to_pydatetime()
    write("events", rows)
    expected = pandas_event_metrics(events, account_ids, days=days)

    result = metrics_by_account(store, list(expected.columns))

    pd.testing.assert_frame_equal(
        result[list(expected.columns)],
        expected.loc[result.index],
        check_names=False,
        check_index_type=False,
        rtol=1e-12,
    )


def test_days_since_events_sub_second_times(store, write):
    add_accounts(write, "a")
    write(
        "events",
        [
            {"account_id": "a", "occurred_at": "1969-12-31T23:59:59.5Z"},
            {"account_id": "a", "occurred_at": "2024-03-31T23:59:59.999999Z"},
        ],
    )
    names = ["days_since_last_event", "days_since_first_event"]
    # Whole seconds are taken toward the past: 23:59:59 and 1969-12-31 23:59:59.
    end_seconds = int(PERIOD_END.timestamp())
    expected_last = 1 / 86_400
    expected_first = (end_seconds + 1) / 86_400

    from_events = metrics_by_account(store, names)
    refresh_rollups(store)
    assert use_rollups(store, PERIOD_END.to_pydatetime())
    from_rollups = metrics_by_account(store, names)

    for result in (from_events, from_rollups):
        assert result.loc["a", "days_since_last_event"] == expected_last
        assert result.loc["a", "days_since_first_event"] == expected_first
