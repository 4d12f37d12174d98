from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from healthscore.exceptions import ConfigError
from healthscore.ingest import ingest_file
from healthscore.simulate import (
    ENTITY_ORDER,
    SimulationConfig,
    SimulationSummary,
    simulate,
)
from healthscore.simulate.vocabulary import feature_names
from healthscore.store import Store

SMALL = SimulationConfig(accounts=60, days=40, seed=3, chunk_accounts=25)
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")


def all_files(summary: SimulationSummary) -> list[Path]:
    return [path for entity in ENTITY_ORDER for path in summary.files[entity]]


def read_events(summary: SimulationSummary) -> pd.DataFrame:
    tables = [pq.read_table(path) for path in summary.files["events"]]
    return pa.concat_tables(tables).to_pandas()


def read(summary: SimulationSummary, entity: str) -> pd.DataFrame:
    if entity == "events":
        return read_events(summary)
    return pq.read_table(summary.files[entity][0]).to_pandas()


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> SimulationSummary:
    return simulate(SMALL, tmp_path_factory.mktemp("small"))


@pytest.fixture(scope="module")
def year(tmp_path_factory) -> SimulationSummary:
    """A simulation long enough for churners with 90 days of history."""
    config = SimulationConfig(accounts=800, days=240, seed=11)
    return simulate(config, tmp_path_factory.mktemp("year"))


@pytest.fixture(scope="module")
def year_data(year) -> dict[str, pd.DataFrame]:
    return {entity: read(year, entity) for entity in ENTITY_ORDER}


def test_simulate_same_seed_same_bytes(tmp_path, small):
    again = simulate(SMALL, tmp_path / "again")

    first = all_files(small)
    second = all_files(again)
    assert [path.name for path in first] == [path.name for path in second]
    for one, other in zip(first, second, strict=True):
        assert one.read_bytes() == other.read_bytes(), one.name


def test_simulate_other_seed_other_bytes(tmp_path, small):
    config = SimulationConfig(accounts=60, days=40, seed=4, chunk_accounts=25)
    other = simulate(config, tmp_path / "other")

    for entity in ENTITY_ORDER:
        one = small.files[entity][0].read_bytes()
        assert one != other.files[entity][0].read_bytes(), entity


def test_simulate_chunk_size_keeps_data(tmp_path):
    config = SimulationConfig(accounts=60, days=40, seed=3, chunk_accounts=7)
    narrow = simulate(config, tmp_path / "narrow")
    wide = simulate(
        SimulationConfig(accounts=60, days=40, seed=3, chunk_accounts=50),
        tmp_path / "wide",
    )

    assert len(narrow.files["events"]) == 9
    assert len(wide.files["events"]) == 2
    pd.testing.assert_frame_equal(read_events(narrow), read_events(wide))
    for entity in ("accounts", "users", "surveys", "tickets"):
        one = narrow.files[entity][0].read_bytes()
        assert one == wide.files[entity][0].read_bytes(), entity
    assert narrow.rows == wide.rows


def test_simulate_summary_counts_rows(small):
    for entity in ENTITY_ORDER:
        assert small.rows[entity] == len(read(small, entity)), entity
    accounts = read(small, "accounts")
    assert small.rows["accounts"] == SMALL.accounts
    assert small.churned == int(accounts["churned"].sum())


def test_simulate_files_ingest_cleanly(tmp_path, small):
    with Store.open(tmp_path / "store.duckdb") as store:
        for entity in ENTITY_ORDER:
            for path in small.files[entity]:
                result = ingest_file(store, entity, path)

                assert result.rejected == 0, (path.name, result.reasons)
                assert result.unknown_accounts == 0, path.name
                assert result.accepted == result.rows_read, path.name
        events = store.table("events").count().execute()
        attributes = store.table("account_attributes").to_pandas()

    assert events == small.rows["events"]
    assert set(attributes["name"]) == {"contract", "industry", "region"}


def test_simulate_columns_and_types(small):
    accounts = pq.read_schema(small.files["accounts"][0])
    events = pq.read_schema(small.files["events"][0])
    surveys = pq.read_schema(small.files["surveys"][0])

    assert accounts.field("account_id").type == pa.string()
    assert accounts.field("churned").type == pa.bool_()
    assert accounts.field("churned_at").type == UTC_TIMESTAMP
    assert events.names == [
        "event_id",
        "account_id",
        "user_id",
        "event_name",
        "feature",
        "occurred_at",
        "value",
    ]
    assert events.field("user_id").type == pa.string()
    assert events.field("occurred_at").type == UTC_TIMESTAMP
    assert surveys.field("score").type == pa.int64()


def test_simulate_ids_unique_and_linked(small):
    accounts = read(small, "accounts")
    users = read(small, "users")
    events = read(small, "events")

    assert accounts["account_id"].is_unique
    assert users["user_id"].is_unique
    assert events["event_id"].is_unique
    assert set(users["account_id"]) <= set(accounts["account_id"])
    assert set(events["user_id"]) <= set(users["user_id"])
    children = accounts.dropna(subset=["parent_id"])
    assert set(children["parent_id"]) <= set(accounts["account_id"])


def test_simulate_nothing_after_churn(year_data):
    accounts = year_data["accounts"]
    end = START + dt.timedelta(days=240)
    assert (accounts["churned_at"].notna() == accounts["churned"]).all()
    limits = dict(
        zip(accounts["account_id"], accounts["churned_at"].fillna(end), strict=True)
    )

    for entity, column in (
        ("events", "occurred_at"),
        ("surveys", "responded_at"),
        ("tickets", "opened_at"),
    ):
        frame = year_data[entity]
        last = frame.groupby("account_id")[column].max()
        limit = pd.Series(limits).reindex(last.index)
        assert (last < limit).all(), entity
        assert (frame[column] >= START).all(), entity


def test_simulate_event_values(small):
    events = read(small, "events")
    sessions = events["event_name"] == "session_start"
    features = events["event_name"] == "feature_used"

    assert set(events["event_name"]) <= {
        "login",
        "session_start",
        "feature_used",
        "export",
        "invite_sent",
    }
    assert events.loc[sessions, "value"].gt(0).all()
    assert events.loc[~sessions, "value"].isna().all()
    assert events.loc[features, "feature"].notna().all()
    assert events.loc[~features, "feature"].isna().all()
    assert set(events["feature"].dropna()) <= set(feature_names(SMALL.features))


def test_simulate_weekdays_busier(year_data):
    events = year_data["events"]
    weekday = events["occurred_at"].dt.day_of_week
    per_day = weekday.value_counts()

    assert per_day[[5, 6]].max() < 0.5 * per_day[[0, 1, 2, 3, 4]].min()


def test_simulate_feature_popularity_falls(year_data):
    counts = year_data["events"]["feature"].value_counts()
    names = feature_names(36)

    assert counts[names[0]] > counts[names[1]] > counts[names[5]] > counts[names[20]]


def test_simulate_scores_in_range(year_data):
    surveys = year_data["surveys"]
    nps = surveys.loc[surveys["survey"] == "nps", "score"]
    csat = surveys.loc[surveys["survey"] == "csat", "score"]

    assert nps.between(0, 10).all()
    assert csat.between(1, 5).all()
    assert nps.nunique() == 11
    assert csat.nunique() == 5


def test_simulate_segments_differ(year_data):
    accounts = year_data["accounts"].copy()
    means = accounts.groupby("segment")[["seats", "arr"]].mean()

    assert means.loc["SMB", "seats"] < means.loc["Mid-market", "seats"]
    assert means.loc["Mid-market", "seats"] < means.loc["Enterprise", "seats"]
    assert means.loc["SMB", "arr"] < means.loc["Mid-market", "arr"]
    assert means.loc["Mid-market", "arr"] < means.loc["Enterprise", "arr"]


def day_index(times: pd.Series) -> np.ndarray:
    return ((times - START) // pd.Timedelta(days=1)).to_numpy()


def events_per_active_day(daily: pd.DataFrame, first: int, last: int) -> float:
    """Events per account-day with events, over days first to last - 1."""
    window = daily[(daily["day"] >= first) & (daily["day"] < last)]
    if window.empty:
        return float("nan")
    return window["events"].sum() / len(window)


def usage_before_churn(accounts: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Per churner with 90 days of history: events per active day in three windows."""
    days = day_index(events["occurred_at"])
    daily = events.groupby([events["account_id"], days]).size().rename("events")
    daily = daily.reset_index().set_axis(["account_id", "day", "events"], axis=1)
    stayers = set(accounts.loc[~accounts["churned"], "account_id"])
    stayer_daily = daily[daily["account_id"].isin(stayers)]
    by_account = dict(tuple(daily.groupby("account_id")))

    churners = accounts[accounts["churned"]].copy()
    churners["churn_day"] = day_index(churners["churned_at"])
    rows = []
    pairs = zip(churners["account_id"], churners["churn_day"], strict=True)
    for account, churn_day in pairs:
        if churn_day < 90 or account not in by_account:
            continue
        own = by_account[account]
        rows.append(
            {
                "last_30": events_per_active_day(own, churn_day - 30, churn_day),
                "days_90_60": events_per_active_day(
                    own, churn_day - 90, churn_day - 60
                ),
                "stayers_last_30": events_per_active_day(
                    stayer_daily, churn_day - 30, churn_day
                ),
            }
        )
    return pd.DataFrame(rows)


def test_simulate_churners_usage_falls(year_data):
    usage = usage_before_churn(year_data["accounts"], year_data["events"])
    means = usage.mean()

    assert len(usage) >= 40
    assert means["last_30"] < 0.85 * means["days_90_60"]
    assert means["last_30"] < 0.5 * means["stayers_last_30"]


def test_simulate_churners_worse_feedback(year_data):
    accounts = year_data["accounts"].copy()
    surveys = year_data["surveys"]
    tickets = year_data["tickets"]
    end = START + dt.timedelta(days=240)
    months = (accounts["churned_at"].fillna(end) - START) / pd.Timedelta(days=30)
    accounts["months"] = months
    accounts["tickets"] = (
        tickets.groupby("account_id").size().reindex(accounts["account_id"]).fillna(0)
    ).to_numpy()

    churned = accounts.set_index("account_id")["churned"]
    nps = surveys[surveys["survey"] == "nps"]
    nps_by_group = nps.groupby(churned.reindex(nps["account_id"]).to_numpy())["score"]
    tickets_per_month = accounts.groupby("churned").apply(
        lambda group: group["tickets"].sum() / group["months"].sum()
    )

    assert nps_by_group.mean()[True] < nps_by_group.mean()[False] - 1.0
    assert tickets_per_month[True] > 1.3 * tickets_per_month[False]


def test_simulate_churn_share_plausible(year_data):
    accounts = year_data["accounts"].copy()
    share = accounts["churned"].mean()
    monthly = accounts.groupby("contract")["churned"].mean()

    assert 0.05 < share < 0.3
    assert monthly["monthly"] > monthly["annual"]


def test_simulate_events_in_parts(tmp_path):
    config = SimulationConfig(accounts=30, days=20, seed=1, chunk_accounts=10)
    summary = simulate(config, tmp_path)

    assert [path.name for path in summary.files["events"]] == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    for part, path in enumerate(summary.files["events"]):
        accounts = set(pq.read_table(path).column("account_id").to_pylist())
        expected = {f"A{number:07d}" for number in range(part * 10 + 1, part * 10 + 11)}
        assert accounts <= expected, path.name


def test_simulate_deletes_stale_parts(tmp_path):
    simulate(SimulationConfig(accounts=30, days=5, chunk_accounts=10), tmp_path)
    summary = simulate(
        SimulationConfig(accounts=30, days=5, chunk_accounts=20), tmp_path
    )

    parts = sorted((tmp_path / "events").glob("part-*.parquet"))
    assert parts == list(summary.files["events"])
    assert len(parts) == 2


def test_simulate_reports_progress(tmp_path):
    calls = []
    simulate(
        SimulationConfig(accounts=600, days=3),
        tmp_path,
        progress=lambda done, total: calls.append((done, total)),
    )

    assert calls == [(256, 600), (512, 600), (600, 600)]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("accounts", 0, id="no-accounts"),
        pytest.param("days", -1, id="negative-days"),
        pytest.param("seed", -5, id="negative-seed"),
        pytest.param("features", 0, id="no-features"),
        pytest.param("chunk_accounts", 2.5, id="fractional-chunk"),
        pytest.param("accounts", True, id="boolean-accounts"),
    ],
)
def test_config_rejects_invalid_numbers(field, value):
    with pytest.raises(ConfigError, match=f"'{field}' must be an integer") as caught:
        SimulationConfig(**{field: value})

    assert caught.value.field == field


def test_config_rejects_datetime_start():
    with pytest.raises(ConfigError, match="'start' must be a date"):
        SimulationConfig(start=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))


def test_simulate_rejects_file_as_folder(tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a folder")

    with pytest.raises(ConfigError, match="is not a folder"):
        simulate(SMALL, target)


def test_simulate_more_features_than_named(tmp_path):
    config = SimulationConfig(accounts=20, days=30, features=40)
    summary = simulate(config, tmp_path)
    features = set(read(summary, "events")["feature"].dropna())

    assert features <= set(feature_names(40))
    assert "feature_37" in feature_names(40)
