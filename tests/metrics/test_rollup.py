"""Daily event rollups: incremental refresh and metrics equal to the raw events."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from healthscore.metrics import compute_metrics
from healthscore.metrics.rollup import (
    ROLLUP_TABLES,
    day_number,
    raw_event_metrics,
    refresh_rollups,
    rollups_current,
    use_rollups,
)
from healthscore.store import Store
from tests.metrics.conftest import write_rows
from tests.metrics.test_events import (
    AS_OF,
    PERIOD_END,
    add_accounts,
    pandas_event_metrics,
)

# event_value adds the same values in another order on the rollups, so its last
# bits can differ. Every other metric must be equal.
VALUE_RTOL = 1e-12


def random_events(seed: int, account_ids: list[str], n: int, days: int) -> pd.DataFrame:
    """Return ``n`` events over the ``days`` days before the period end and after it.

    The last rows sit on UTC midnights and one microsecond before them, the edges
    of the day buckets.
    """
    rng = np.random.default_rng(seed)
    offsets = rng.integers(-days * 86_400, 2 * 86_400, size=n)
    occurred = PERIOD_END + pd.to_timedelta(offsets, "s")
    edges = [PERIOD_END - pd.Timedelta(days=k) for k in (0, 1, 14, 30)]
    edges += [edge - pd.Timedelta(microseconds=1) for edge in edges]
    occurred = occurred[: n - len(edges)].append(pd.DatetimeIndex(edges))
    return pd.DataFrame(
        {
            "account_id": rng.choice(account_ids, size=n),
            "user_id": rng.choice(["u1", "u2", "u3", "u4", None], size=n),
            "feature": rng.choice(["a", "b", "c", None], size=n),
            "value": np.where(rng.random(n) < 0.3, np.nan, rng.random(n).round(3)),
            "occurred_at": occurred,
        }
    )


def write_events(store: Store, events: pd.DataFrame, load_id: str) -> None:
    rows = events.astype(object).where(events.notna(), None).to_dict("records")
    for row in rows:
        row["occurred_at"] = row["occurred_at"].to_pydatetime()
        row["load_id"] = load_id
    write_rows(store, "events", rows)


def metric_names(days: int) -> list[str]:
    return [
        f"event_count_{days}d",
        f"active_users_{days}d",
        f"active_days_{days}d",
        f"features_used_{days}d",
        f"event_value_{days}d",
        f"event_trend_{days}d",
        "dau_mau",
        "days_since_last_event",
        "days_since_first_event",
    ]


def assert_same_metrics(left: pd.DataFrame, right: pd.DataFrame) -> None:
    values = [name for name in left.columns if name.startswith("event_value_")]
    pd.testing.assert_frame_equal(
        left.drop(columns=values), right.drop(columns=values), check_exact=True
    )
    pd.testing.assert_frame_equal(left[values], right[values], rtol=VALUE_RTOL)


def both_paths(store: Store, names: list[str], as_of: dt.date = AS_OF):
    """Compute ``names`` from the rollups and from the raw events."""
    assert rollups_current(store)
    from_rollups = compute_metrics(store, as_of, names)
    with raw_event_metrics():
        from_events = compute_metrics(store, as_of, names)
    return from_rollups, from_events


@pytest.mark.parametrize("days", [1, 14, 31, 401])
def test_rollup_metrics_match_raw_and_pandas(store, write, days):
    account_ids = [f"acct-{i:02d}" for i in range(15)]
    add_accounts(write, *account_ids)
    events = random_events(days, account_ids[:12], n=2_500, days=2 * days + 20)
    write_events(store, events.iloc[:1_000], "load-1")
    write_events(store, events.iloc[1_000:], "load-2")
    refresh_rollups(store)
    names = metric_names(days)

    from_rollups, from_events = both_paths(store, names)

    assert_same_metrics(from_rollups, from_events)
    expected = pandas_event_metrics(events, account_ids, days=days)
    expected = expected.loc[from_rollups["account_id"]].reset_index(drop=True)
    # The store truncates durations to whole seconds and pandas does not.
    durations = ["days_since_last_event", "days_since_first_event"]
    pd.testing.assert_frame_equal(
        from_rollups[durations], expected[durations], rtol=0, atol=1 / 86_400
    )
    others = [name for name in expected.columns if name not in durations]
    pd.testing.assert_frame_equal(from_rollups[others], expected[others], rtol=1e-12)


def test_rollup_metrics_match_raw_on_earlier_dates(store, write):
    account_ids = [f"acct-{i:02d}" for i in range(6)]
    add_accounts(write, *account_ids)
    write_events(store, random_events(7, account_ids, n=1_500, days=90), "load-1")
    refresh_rollups(store)

    for as_of in (AS_OF - dt.timedelta(days=40), AS_OF - dt.timedelta(days=1)):
        from_rollups, from_events = both_paths(store, metric_names(30), as_of)
        assert_same_metrics(from_rollups, from_events)


def test_refresh_rollups_aggregates_only_new_loads(store, write):
    add_accounts(write, "a", "b")
    events = random_events(3, ["a", "b"], n=300, days=10)
    write_events(store, events.iloc[:200], "load-1")

    assert not rollups_current(store)
    assert refresh_rollups(store) == 200
    assert rollups_current(store)
    assert refresh_rollups(store) == 0

    write_events(store, events.iloc[200:], "load-2")
    assert not rollups_current(store)
    assert refresh_rollups(store) == 100

    loads = store.table("rolled_up_loads").to_pandas().set_index("load_id")
    assert loads["events"].to_dict() == {"load-1": 200, "load-2": 100}
    from_rollups, from_events = both_paths(store, metric_names(7))
    assert_same_metrics(from_rollups, from_events)


def test_refresh_rollups_rebuilds_load_with_new_rows(store, write):
    add_accounts(write, "a")
    events = random_events(5, ["a"], n=200, days=10)
    write_events(store, events.iloc[:150], "same-load")
    refresh_rollups(store)

    write_events(store, events.iloc[150:], "same-load")

    assert refresh_rollups(store) == 200
    user_days = store.table("event_user_days")
    assert user_days.events.sum().execute() == 200
    from_rollups, from_events = both_paths(store, metric_names(7))
    assert_same_metrics(from_rollups, from_events)


def test_refresh_rollups_drops_load_without_events(store, write):
    add_accounts(write, "a")
    write_events(store, random_events(9, ["a"], n=50, days=5), "gone")
    write_events(store, random_events(10, ["a"], n=40, days=5), "kept")
    refresh_rollups(store)

    store.backend.raw_sql("DELETE FROM events WHERE load_id = 'gone'")

    assert refresh_rollups(store) == 0
    loads = store.table("rolled_up_loads").load_id.to_pyarrow().to_pylist()
    assert loads == ["kept"]
    for name in ("event_user_days", "event_feature_days"):
        load_ids = store.table(name).load_id.to_pyarrow().to_pylist()
        assert set(load_ids) == {"kept"}, name


def test_event_metrics_read_rollups_only_when_current(store, write):
    add_accounts(write, "a")
    write("events", [{"account_id": "a", "occurred_at": "2024-03-31T08:00:00+00:00"}])
    refresh_rollups(store)
    # A rollup row that no event backs shows which source the metrics read.
    extra = {
        "load_id": ["marker"],
        "account_id": ["a"],
        "user_id": [None],
        "day": [day_number(dt.datetime(2024, 3, 31, tzinfo=dt.UTC))],
        "events": [5],
        "value_sum": [None],
        "value_count": [0],
        "first_at": [dt.datetime(2024, 3, 31, 9, tzinfo=dt.UTC)],
        "last_at": [dt.datetime(2024, 3, 31, 9, tzinfo=dt.UTC)],
    }
    store.insert("event_user_days", pa.table(extra))

    def event_count() -> float:
        return compute_metrics(store, AS_OF, ["event_count_1d"]).iloc[0, 2]

    assert event_count() == 6
    with raw_event_metrics():
        assert event_count() == 1
    write("events", [{"account_id": "a", "occurred_at": "2024-03-31T10:00:00+00:00"}])
    assert event_count() == 2


def test_use_rollups_needs_midnight_period_end(store):
    refresh_rollups(store)
    midnight = dt.datetime(2024, 4, 1, tzinfo=dt.UTC)

    assert use_rollups(store, midnight)
    assert not use_rollups(store, midnight + dt.timedelta(hours=12))
    with raw_event_metrics():
        assert not use_rollups(store, midnight)


def test_day_number_counts_utc_days():
    assert day_number(dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) == 0
    assert day_number(dt.datetime(1970, 1, 2, tzinfo=dt.UTC)) == 1
    assert day_number(dt.datetime(1969, 12, 31, 23, tzinfo=dt.UTC)) == -1
    moment = dt.datetime(2024, 4, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert day_number(moment) == day_number(dt.datetime(2024, 3, 31, tzinfo=dt.UTC))


def test_store_open_creates_missing_rollup_tables(tmp_path):
    path = tmp_path / "old.duckdb"
    with Store.open(path) as store:
        write_rows(store, "accounts", [{"account_id": "a", "segment": "smb"}])
        write_rows(
            store,
            "events",
            [{"account_id": "a", "occurred_at": "2024-03-30T12:00:00+00:00"}],
        )
        for name in ROLLUP_TABLES:
            store.backend.drop_table(name)
        assert not rollups_current(store)

    with Store.open(path, create=False) as store:
        assert set(ROLLUP_TABLES) <= set(store.backend.list_tables())
        assert refresh_rollups(store) == 1
        result = compute_metrics(store, AS_OF, ["event_count_7d"])
    assert result["event_count_7d"].tolist() == [1.0]


def test_rollup_dau_mau_overlapping_loads(store, write):
    account_ids = [f"acct-{i:02d}" for i in range(8)]
    add_accounts(write, *account_ids)
    events = random_events(11, account_ids, n=2_000, days=40)
    # Days before the split are only in load-1, days after it only in load-2, and
    # the three days around it are in both, with the same users on both sides.
    split = PERIOD_END - pd.Timedelta(days=12)
    overlap = (events["occurred_at"] >= split - pd.Timedelta(days=3)) & (
        events["occurred_at"] < split
    )
    first = events[(events["occurred_at"] < split) | overlap]
    second = events[(events["occurred_at"] >= split - pd.Timedelta(days=3))]
    write_events(store, first, "load-1")
    write_events(store, second, "load-2")
    refresh_rollups(store)

    from_rollups, from_events = both_paths(store, ["dau_mau"])

    assert_same_metrics(from_rollups, from_events)
    everything = pd.concat([first, second], ignore_index=True)
    expected = pandas_event_metrics(everything, account_ids, days=30)
    expected = expected.loc[from_rollups["account_id"]].reset_index(drop=True)
    pd.testing.assert_series_equal(
        from_rollups["dau_mau"], expected["dau_mau"], rtol=1e-12
    )
