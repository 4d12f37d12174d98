import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from healthscore.exceptions import ConfigError, InputDataError
from healthscore.ingest import ingest_file
from healthscore.predict import build_training_set, churn_labels, features_as_of
from healthscore.store import Store

UTC = dt.UTC
D1 = dt.date(2025, 3, 31)
D2 = dt.date(2025, 6, 30)

TIME_METRICS = [
    "event_count_30d",
    "active_days_30d",
    "days_since_last_event",
    "event_value_90d",
    "tickets_opened_30d",
    "open_tickets",
    "nps",
    "csat",
    "tenure_days",
]


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def insert_accounts(store: Store, rows: list[dict]) -> None:
    columns = ["account_id", "segment", "created_at", "churned", "churned_at"]
    data = {c: [row.get(c) for row in rows] for c in columns}
    data["load_id"] = ["test"] * len(rows)
    store.insert("accounts", pa.table(data))


def insert_events(store: Store, rows: list[tuple[str, dt.datetime, float]]) -> None:
    start = store.table("events").count().execute()
    store.insert(
        "events",
        pa.table(
            {
                "event_key": [f"e{start + i}" for i in range(len(rows))],
                "account_id": [r[0] for r in rows],
                "user_id": [f"{r[0]}-u{i % 3}" for i, r in enumerate(rows)],
                "event_name": ["login"] * len(rows),
                "occurred_at": [r[1] for r in rows],
                "value": [r[2] for r in rows],
                "load_id": ["test"] * len(rows),
            }
        ),
    )


def insert_tickets(store: Store, rows: list[tuple[str, dt.datetime, object]]) -> None:
    start = store.table("tickets").count().execute()
    store.insert(
        "tickets",
        pa.table(
            {
                "ticket_key": [f"t{start + i}" for i in range(len(rows))],
                "account_id": [r[0] for r in rows],
                "priority": ["high"] * len(rows),
                "opened_at": [r[1] for r in rows],
                "resolved_at": pa.array(
                    [r[2] for r in rows], pa.timestamp("us", "UTC")
                ),
                "load_id": ["test"] * len(rows),
            }
        ),
    )


def insert_surveys(store: Store, rows: list[tuple[str, str, float, dt.datetime]]):
    start = store.table("survey_responses").count().execute()
    store.insert(
        "survey_responses",
        pa.table(
            {
                "response_key": [f"s{start + i}" for i in range(len(rows))],
                "account_id": [r[0] for r in rows],
                "survey": [r[1] for r in rows],
                "score": [r[2] for r in rows],
                "responded_at": [r[3] for r in rows],
                "load_id": ["test"] * len(rows),
            }
        ),
    )


def activity_store(path) -> Store:
    """Build a store of 40 accounts with events, tickets and surveys before D2."""
    store = Store.open(path)
    rng = np.random.default_rng(7)
    accounts, events, tickets, surveys = [], [], [], []
    for i in range(40):
        account = f"A{i:02d}"
        churned_at = utc(2025, 5, 1 + i % 20) if i % 4 == 0 else None
        accounts.append(
            {
                "account_id": account,
                "segment": "SMB" if i % 2 else "ENT",
                "created_at": utc(2024, 1 + i % 12, 1),
                "churned": churned_at is not None,
                "churned_at": churned_at,
            }
        )
        for day in rng.choice(170, size=5 + i % 7, replace=False):
            when = utc(2025, 1, 1) + dt.timedelta(days=int(day), hours=9)
            events.append((account, when, float(day % 5)))
        tickets.append((account, utc(2025, 3, 1 + i % 28), utc(2025, 4, 2)))
        surveys.append((account, "nps", float(i % 11), utc(2025, 2, 1 + i % 28)))
    insert_accounts(store, accounts)
    insert_events(store, events)
    insert_tickets(store, tickets)
    insert_surveys(store, surveys)
    return store


def rows_bytes(frame: pd.DataFrame) -> bytes:
    return pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()


def test_churn_labels_by_hand(tmp_path):
    store = Store.open(tmp_path / "s.duckdb")
    insert_accounts(
        store,
        [
            {
                "account_id": "in_horizon",
                "churned": True,
                "churned_at": utc(2025, 4, 15),
            },
            {
                "account_id": "on_date",
                "churned": True,
                "churned_at": utc(2025, 3, 31, 12),
            },
            {"account_id": "next_day", "churned": True, "churned_at": utc(2025, 4, 1)},
            {
                "account_id": "last_day",
                "churned": True,
                "churned_at": utc(2025, 4, 30, 23),
            },
            {"account_id": "after", "churned": True, "churned_at": utc(2025, 5, 1)},
            {"account_id": "stayed", "churned": False},
            {"account_id": "unknown", "churned": None},
            {
                "account_id": "new",
                "churned": False,
                "created_at": utc(2025, 4, 5),
            },
            {"account_id": "undated", "churned": True},
        ],
    )

    labels = churn_labels(store, D1, 30)

    # D1 + 30 days is 2025-04-30, so churn from 2025-04-01 00:00 to the end of
    # 2025-04-30 counts.
    expected = {
        "after": False,
        "in_horizon": True,
        "last_day": True,
        "next_day": True,
        "stayed": False,
        "undated": True,
    }
    assert labels.to_dict() == expected
    assert labels.dtype == bool


def test_churn_labels_segments(tmp_path):
    store = Store.open(tmp_path / "s.duckdb")
    insert_accounts(
        store,
        [
            {"account_id": "a", "segment": "SMB", "churned": False},
            {"account_id": "b", "segment": "ENT", "churned": True},
        ],
    )

    labels = churn_labels(store, D1, 30, segments=["ENT"])

    assert labels.to_dict() == {"b": True}


@pytest.mark.parametrize("horizon", [0, -3, 1.5, True])
def test_churn_labels_invalid_horizon(tmp_path, horizon):
    store = Store.open(tmp_path / "s.duckdb")

    with pytest.raises(ConfigError, match="horizon_days must be a positive int"):
        churn_labels(store, D1, horizon)


def test_build_training_set_rows_and_labels(tmp_path):
    store = activity_store(tmp_path / "s.duckdb")

    training = build_training_set(store, TIME_METRICS, [D2, D1], 30)

    rows = training.rows
    assert training.feature_names == tuple(TIME_METRICS)
    assert list(rows.columns[:3]) == ["account_id", "observed_at", "label"]
    assert training.observation_dates() == (D1, D2)
    # Accounts A00, A04, ... churn in May 2025: all 10 are rows on D1, churned
    # within 30 days when churned_at is by 2025-04-30 (none), and gone by D2.
    assert (rows["observed_at"] == D1).sum() == 40
    assert (rows["observed_at"] == D2).sum() == 30
    assert not rows["label"].any()
    for name in TIME_METRICS:
        assert rows[name].dtype == np.float64
    assert training.features().columns.tolist() == TIME_METRICS


def test_build_training_set_horizon_counts_churn(tmp_path):
    store = activity_store(tmp_path / "s.duckdb")

    training = build_training_set(store, ["event_count_30d"], [D1], 45)

    # Churn on 2025-05-01 .. 2025-05-15 falls within D1 + 45 = 2025-05-15.
    rows = training.rows.set_index("account_id")
    expected = {f"A{i:02d}" for i in range(0, 40, 4) if 1 + i % 20 <= 15}
    assert set(rows.index[rows["label"]]) == expected


def test_build_training_set_no_leakage(tmp_path):
    store = activity_store(tmp_path / "s.duckdb")
    training = build_training_set(store, TIME_METRICS, [D1, D2], 30)
    d1_rows = training.rows[training.rows["observed_at"] == D1]

    # Data dated the day after D1 may change D2's features but never D1's.
    after_d1 = utc(2025, 4, 1, 0, 0, 1)
    insert_events(store, [(f"A{i:02d}", after_d1, 100.0) for i in range(40)])
    insert_tickets(store, [(f"A{i:02d}", after_d1, None) for i in range(40)])
    insert_surveys(store, [(f"A{i:02d}", "nps", 0.0, after_d1) for i in range(40)])
    insert_surveys(store, [(f"A{i:02d}", "csat", 1.0, after_d1) for i in range(40)])
    again = build_training_set(store, TIME_METRICS, [D1, D2], 30)

    again_d1 = again.rows[again.rows["observed_at"] == D1]
    assert rows_bytes(again_d1) == rows_bytes(d1_rows)
    again_d2 = again.rows[again.rows["observed_at"] == D2]
    before_d2 = training.rows[training.rows["observed_at"] == D2]
    assert rows_bytes(again_d2) != rows_bytes(before_d2)

    # Data dated after D2 changes nothing.
    after_d2 = utc(2025, 7, 1)
    insert_events(store, [(f"A{i:02d}", after_d2, 5.0) for i in range(40)])
    insert_tickets(store, [(f"A{i:02d}", after_d2, None) for i in range(40)])
    insert_surveys(store, [(f"A{i:02d}", "nps", 10.0, after_d2) for i in range(40)])
    last = build_training_set(store, TIME_METRICS, [D1, D2], 30)
    assert rows_bytes(last.rows) == rows_bytes(again.rows)


def test_build_training_set_text_indicators(tmp_path):
    store = Store.open(tmp_path / "s.duckdb")
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(
        "account_id,churned,contract,seats\n"
        "a,true,Month-to-month,3\n"
        "b,false,Two year,10\n"
        "c,false,,5\n"
    )
    ingest_file(store, "accounts", accounts)

    training = build_training_set(store, ["contract", "seats"], [D1], 30)

    assert training.feature_names == (
        "contract=Month-to-month",
        "contract=Two year",
        "seats",
    )
    rows = training.rows.set_index("account_id")
    assert rows.loc["a", "contract=Month-to-month"] == 1.0
    assert rows.loc["a", "contract=Two year"] == 0.0
    assert rows.loc["b", "contract=Two year"] == 1.0
    assert np.isnan(rows.loc["c", "contract=Two year"])
    assert rows.loc["b", "seats"] == 10.0


def test_features_as_of_expanded_names(tmp_path):
    store = Store.open(tmp_path / "s.duckdb")
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("account_id,churned,contract\na,true,One year\nb,false,\n")
    ingest_file(store, "accounts", accounts)

    features = features_as_of(store, ["contract=Two year", "contract=One year"], D1)

    assert features.columns.tolist() == [
        "account_id",
        "contract=Two year",
        "contract=One year",
    ]
    assert features["contract=Two year"].tolist()[0] == 0.0
    assert features["contract=One year"].tolist()[0] == 1.0
    assert np.isnan(features["contract=One year"].tolist()[1])


def test_features_as_of_number_indicator_rejected(tmp_path):
    store = activity_store(tmp_path / "s.duckdb")

    with pytest.raises(ConfigError, match="indicators are for text metrics"):
        features_as_of(store, ["tenure_days=3"], D1)


def test_features_as_of_unknown_metric(tmp_path):
    store = activity_store(tmp_path / "s.duckdb")

    with pytest.raises(ConfigError, match="logins_30d"):
        features_as_of(store, ["logins_30d"], D1)


def test_build_training_set_undated_churn_several_dates(tmp_path):
    store = Store.open(tmp_path / "s.duckdb")
    insert_accounts(store, [{"account_id": "a", "churned": True}])

    with pytest.raises(InputDataError, match="single observation date"):
        build_training_set(store, ["tenure_days"], [D1, D2], 30)


def test_build_training_set_no_features(tmp_path):
    store = Store.open(tmp_path / "s.duckdb")

    with pytest.raises(ConfigError, match="no features named"):
        build_training_set(store, [], [D1], 30)
    with pytest.raises(ConfigError, match="single metric"):
        build_training_set(store, "tenure_days", [D1], 30)
    with pytest.raises(ConfigError, match="no observation dates"):
        build_training_set(store, ["tenure_days"], [], 30)
