import dataclasses
import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from healthscore.exceptions import ConfigError, InputDataError
from healthscore.predict.predictions import (
    account_prediction,
    latest_predictions,
    observation_dates,
    predict_churn,
    store_predictions,
    stored_band_survival,
    stored_profile_metrics,
)
from healthscore.predict.training import features_as_of
from healthscore.store import Store

AS_OF = dt.date(2024, 12, 31)
FEATURES = ("active_days_30d", "days_since_last_event")
FAST = {"horizon_days": 30, "observations": 3, "bootstraps": 10}


def _utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC)


def build_history_store(path) -> Store:
    """Write 40 steady accounts and 40 that fade out 40 days before they churn.

    Fading account k churns on 2024-10-05 + 3k days, so the last ten (k >= 30)
    are still customers at the end of 2024-12-31. Every account starts on
    2024-01-01 and steady accounts log in daily from 2024-06-01.
    """
    store = Store.open(path)
    ids, churned_at, events = [], [], []
    for number in range(80):
        account_id = f"A{number:02d}"
        ids.append(account_id)
        fading = number >= 40
        end = dt.date(2024, 10, 5) + dt.timedelta(days=3 * (number - 40))
        churned_at.append(_utc(end) if fading else None)
        last = end - dt.timedelta(days=40) if fading else AS_OF
        day = dt.date(2024, 6, 1)
        # Fading accounts log in every third day, steady ones every day.
        step = 3 if fading else 1
        while day <= last:
            events.append((account_id, _utc(day)))
            day += dt.timedelta(days=step)

    store.insert(
        "accounts",
        pa.table(
            {
                "account_id": ids,
                "segment": ["SMB"] * 80,
                "created_at": [_utc(dt.date(2024, 1, 1))] * 80,
                "churned": [at is not None for at in churned_at],
                "churned_at": pa.array(churned_at, pa.timestamp("us", "UTC")),
                "load_id": ["test"] * 80,
            }
        ),
    )
    store.insert(
        "events",
        pa.table(
            {
                "event_key": [f"e{i}" for i in range(len(events))],
                "account_id": [account for account, _ in events],
                "event_name": ["login"] * len(events),
                "occurred_at": pa.array(
                    [at for _, at in events], pa.timestamp("us", "UTC")
                ),
                "load_id": ["test"] * len(events),
            }
        ),
    )
    return store


def _active_ids() -> set[str]:
    steady = {f"A{n:02d}" for n in range(40)}
    # Fading account k churns after 2024-12-31 when 2024-10-05 + 3k > 2024-12-31,
    # that is 3k > 87 days, k >= 30.
    return steady | {f"A{n:02d}" for n in range(40 + 30, 80)}


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    store = build_history_store(tmp_path_factory.mktemp("history") / "s.duckdb")
    yield store
    store.close()


@pytest.fixture(scope="module")
def run(history):
    return predict_churn(history, AS_OF, FEATURES, top=2, **FAST)


def test_observation_dates_spaced_before_horizon():
    dates = observation_dates(AS_OF, 30, count=3, spacing_days=30)

    assert dates == (dt.date(2024, 10, 2), dt.date(2024, 11, 1), dt.date(2024, 12, 1))


@pytest.mark.parametrize("field", ["count", "spacing_days", "horizon_days"])
def test_observation_dates_rejects_zero(field):
    options = {"count": 3, "spacing_days": 30, "horizon_days": 30, field: 0}
    horizon = options.pop("horizon_days")

    with pytest.raises(ConfigError, match=field):
        observation_dates(AS_OF, horizon, **options)


def test_predict_churn_covers_active_accounts(run):
    assert set(run.predictions["account_id"]) == _active_ids()
    assert run.observation_dates == observation_dates(AS_OF, 30, count=3)
    assert run.horizon_days == 30
    assert run.model == "logistic"


def test_predict_churn_training_labels_by_hand(run):
    # On 2024-10-02 (k >= 0 churn from 2024-10-05 + 3k): churned in (D, D + 30]
    # for k = 0..9, by 2024-11-01. On 2024-11-01, k = 10..19 (those before
    # 2024-11-01 are gone). On 2024-12-01, k = 20..29.
    assert run.training_churned == 30
    # Rows: 80 on 2024-10-02, 70 on 2024-11-01 (k = 0..9 gone), 60 on 2024-12-01.
    assert run.training_rows == 80 + 70 + 60


def test_predict_churn_ranks_fading_accounts_first(run):
    fading = run.predictions["account_id"] >= "A40"
    probabilities = run.predictions["probability"]

    assert probabilities[fading].min() > probabilities[~fading].max()
    assert list(run.predictions["probability"]) == sorted(probabilities, reverse=True)


def test_predict_churn_interval_bounds(run):
    low = run.predictions["low"]
    high = run.predictions["high"]

    assert (low <= high).all()
    assert (low >= 0).all()
    assert (high <= 1).all()
    assert run.interval_level == 0.9
    assert run.bootstraps == 10


def test_predict_churn_interval_repeats_with_seed(history, run):
    again = predict_churn(history, AS_OF, FEATURES, top=2, **FAST)

    pd.testing.assert_frame_equal(again.predictions, run.predictions)


def test_predict_churn_interval_changes_with_seed(history, run):
    other = predict_churn(history, AS_OF, FEATURES, top=2, seed=1, **FAST)

    assert not np.allclose(other.predictions["low"], run.predictions["low"])


def test_predict_churn_drivers_values(history, run):
    features = features_as_of(history, FEATURES, AS_OF).set_index("account_id")

    assert len(run.drivers) == 2 * len(run.predictions)
    for row in run.drivers.itertuples(index=False):
        assert row.rank in (1, 2)
        assert row.value == features.loc[row.account_id, row.feature]
    ranks = run.drivers.groupby("account_id")["contribution"].apply(list)
    assert all(first >= second for first, second in ranks)


def test_predict_churn_without_bootstraps(history):
    options = {**FAST, "bootstraps": 0}

    result = predict_churn(history, AS_OF, FEATURES, **options)

    assert result.predictions["low"].isna().all()
    assert result.predictions["high"].isna().all()


@pytest.mark.slow
def test_predict_churn_boosted_model(history):
    options = {**FAST, "bootstraps": 0}

    result = predict_churn(history, AS_OF, FEATURES, model="boosted", **options)

    assert result.model == "boosted"
    assert set(result.predictions["account_id"]) == _active_ids()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"model": "forest"}, "model"),
        ({"bootstraps": -1}, "bootstraps"),
        ({"bootstraps": 1}, "bootstraps"),
        ({"bootstraps": 9}, "bootstraps"),
        ({"interval_level": 1.0}, "interval_level"),
    ],
)
def test_predict_churn_rejects_options(history, options, field):
    with pytest.raises(ConfigError, match=field):
        predict_churn(history, AS_OF, FEATURES, **options)


def test_predict_churn_rejects_one_label(history):
    # No account churned in the 30 days after 2024-06-30 or the dates before it.
    with pytest.raises(InputDataError, match="both churned and retained"):
        predict_churn(history, dt.date(2024, 7, 30), FEATURES, **FAST)


def test_store_predictions_round_trip(tmp_path, run):
    with Store.open(tmp_path / "s.duckdb") as store:
        store_predictions(store, run)
        predictions, drivers = latest_predictions(store)

    expected = run.predictions.sort_values("account_id").reset_index(drop=True)
    np.testing.assert_array_equal(predictions["account_id"], expected["account_id"])
    np.testing.assert_allclose(predictions["probability"], expected["probability"])
    np.testing.assert_allclose(predictions["low"], expected["low"])
    assert set(predictions["run_id"]) == {run.run_id}
    assert set(predictions["horizon_days"]) == {30}
    assert set(predictions["as_of"]) == {AS_OF}
    assert len(drivers) == len(run.drivers)


def test_latest_predictions_newest_as_of_wins(tmp_path, run):
    older = dataclasses.replace(run, run_id="older", as_of=dt.date(2024, 12, 1))
    with Store.open(tmp_path / "s.duckdb") as store:
        store_predictions(store, run)
        store_predictions(store, older)
        row, drivers = account_prediction(store, "A79")

    assert row["run_id"] == run.run_id
    assert list(drivers["rank"]) == [1, 2]
    assert set(drivers["run_id"]) == {run.run_id}


def test_account_prediction_missing_account(tmp_path, run):
    with Store.open(tmp_path / "s.duckdb") as store:
        store_predictions(store, run)
        row, drivers = account_prediction(store, "A00-missing")

    assert row is None
    assert drivers.empty


def test_store_predictions_all_or_nothing(tmp_path, run):
    broken = run.drivers.copy()
    broken.loc[0, "feature"] = None
    with Store.open(tmp_path / "s.duckdb") as store:
        with pytest.raises(duckdb.Error):
            store_predictions(store, dataclasses.replace(run, drivers=broken))
        count = store.table("predictions").count().execute()

    assert count == 0


def _insert_scores(store: Store, bands: dict[str, str], as_of: dt.date) -> None:
    count = len(bands)
    store.insert(
        "scores",
        pa.table(
            {
                "run_id": ["r1"] * count,
                "as_of": [as_of] * count,
                "account_id": list(bands),
                "profile_name": ["p"] * count,
                "profile_hash": ["h"] * count,
                "band": list(bands.values()),
                "coverage": [1.0] * count,
                "computed_at": pa.array(
                    [_utc(as_of)] * count, pa.timestamp("us", "UTC")
                ),
            }
        ),
    )


def test_stored_band_survival_uses_newest_band(tmp_path):
    with build_history_store(tmp_path / "s.duckdb") as store:
        everyone = {f"A{n:02d}": "Good" if n < 40 else "Poor" for n in range(80)}
        _insert_scores(store, everyone, dt.date(2024, 9, 1))
        # A later snapshot after the as-of date is not used.
        _insert_scores(store, dict.fromkeys(everyone, "Average"), dt.date(2025, 1, 5))
        result = stored_band_survival(store, AS_OF)

    summary = result.summary.set_index("band")
    assert list(summary.index) == ["Good", "Poor"]
    assert summary.loc["Good", "churned"] == 0
    # Fading accounts k = 0..29 churn by 2024-12-31.
    assert summary.loc["Poor", "churned"] == 30
    assert summary.loc["Poor", "accounts"] == 40


def test_stored_band_survival_tenure_metric(tmp_path):
    with Store.open(tmp_path / "s.duckdb") as store:
        store.insert(
            "accounts",
            pa.table(
                {
                    "account_id": ["a", "b", "c", "d"],
                    "churned": [True, False, True, False],
                    "load_id": ["t"] * 4,
                }
            ),
        )
        store.insert(
            "account_attributes",
            pa.table(
                {
                    "account_id": ["a", "b", "c", "d"],
                    "name": ["tenure"] * 4,
                    "kind": ["number"] * 4,
                    "number_value": [2.0, 5.0, 4.0, 6.0],
                    "load_id": ["t"] * 4,
                }
            ),
        )
        _insert_scores(store, dict.fromkeys("abcd", "Poor"), AS_OF)
        result = stored_band_survival(store, AS_OF, tenure_metric="tenure")

    curve = result.curves.set_index("months")
    # Churns at 2 (4 at risk) and 4 (3 at risk, b censored at 5 later).
    assert curve.loc[2.0, "survival"] == pytest.approx(3 / 4)
    assert curve.loc[4.0, "survival"] == pytest.approx(3 / 4 * 2 / 3)


def test_stored_band_survival_unknown_tenure_metric(tmp_path):
    with build_history_store(tmp_path / "s.duckdb") as store:
        with pytest.raises(InputDataError, match="'tenure'"):
            stored_band_survival(store, AS_OF, tenure_metric="tenure")


def test_stored_profile_metrics_without_scores(history):
    assert stored_profile_metrics(history) is None


def _undated_store(path) -> Store:
    """Write 60 accounts with a contract and a churn flag but no dates, as Telco.

    Every monthly account churned except the first of each ten, and no yearly
    account churned.
    """
    store = Store.open(path)
    ids = [f"T{number:02d}" for number in range(60)]
    monthly = [number % 2 == 0 for number in range(60)]
    churned = [m and number % 10 != 0 for number, m in enumerate(monthly)]
    store.insert(
        "accounts",
        pa.table({"account_id": ids, "churned": churned, "load_id": ["t"] * 60}),
    )
    store.insert(
        "account_attributes",
        pa.table(
            {
                "account_id": ids,
                "name": ["contract"] * 60,
                "kind": ["text"] * 60,
                "text_value": ["Monthly" if m else "Yearly" for m in monthly],
                "load_id": ["t"] * 60,
            }
        ),
    )
    return store


def test_predict_churn_undated_churn_text_metric(tmp_path):
    with _undated_store(tmp_path / "s.duckdb") as store:
        result = predict_churn(store, AS_OF, ["contract"], horizon_days=30, top=1)

    assert result.observation_dates == (AS_OF,)
    assert result.training_rows == 60
    assert result.training_churned == 24
    # Active accounts are those not churned: the 30 yearly and 6 monthly ones.
    assert len(result.predictions) == 36
    drivers = result.drivers.set_index("account_id")
    assert set(drivers["feature"]) == {"contract"}
    assert drivers.loc["T00", "text_value"] == "Monthly"
    assert drivers.loc["T01", "text_value"] == "Yearly"
    assert drivers["value"].isna().all()
    monthly = result.predictions.set_index("account_id").loc["T00", "probability"]
    yearly = result.predictions.set_index("account_id").loc["T01", "probability"]
    assert monthly > yearly


def _insert_other_segment(store: Store, count: int = 20) -> None:
    """Write ``count`` accounts of segment Other that log in daily and never churn."""
    ids = [f"O{number:02d}" for number in range(count)]
    store.insert(
        "accounts",
        pa.table(
            {
                "account_id": ids,
                "segment": ["Other"] * count,
                "created_at": [_utc(dt.date(2024, 1, 1))] * count,
                "churned": [False] * count,
                "load_id": ["other"] * count,
            }
        ),
    )
    days = [dt.date(2024, 6, 1) + dt.timedelta(days=n) for n in range(214)]
    pairs = [(account, _utc(day)) for account in ids for day in days]
    store.insert(
        "events",
        pa.table(
            {
                "event_key": [f"o{i}" for i in range(len(pairs))],
                "account_id": [account for account, _ in pairs],
                "event_name": ["login"] * len(pairs),
                "occurred_at": pa.array(
                    [at for _, at in pairs], pa.timestamp("us", "UTC")
                ),
                "load_id": ["other"] * len(pairs),
            }
        ),
    )


def test_predict_churn_keeps_to_segments(tmp_path, run):
    with build_history_store(tmp_path / "s.duckdb") as store:
        _insert_other_segment(store)
        mixed = predict_churn(store, AS_OF, FEATURES, top=2, **FAST)
        segment_run = predict_churn(
            store, AS_OF, FEATURES, top=2, segments=["SMB"], **FAST
        )

    # Each of the 3 observation dates adds a row per Other account.
    assert mixed.training_rows == run.training_rows + 3 * 20
    assert segment_run.training_rows == run.training_rows
    assert segment_run.training_churned == run.training_churned
    assert set(segment_run.predictions["account_id"]) == _active_ids()
    assert set(segment_run.drivers["account_id"]) <= _active_ids()
    assert segment_run.segments == ("SMB",)


def _insert_undated_churn(store: Store, count: int = 5) -> None:
    """Write ``count`` SMB accounts that churned but have no churned_at."""
    store.insert(
        "accounts",
        pa.table(
            {
                "account_id": [f"U{number:02d}" for number in range(count)],
                "segment": ["SMB"] * count,
                "created_at": [_utc(dt.date(2024, 1, 1))] * count,
                "churned": [True] * count,
                "load_id": ["undated"] * count,
            }
        ),
    )


def test_stored_band_survival_counts_undated_churn(tmp_path):
    with build_history_store(tmp_path / "s.duckdb") as store:
        _insert_undated_churn(store)
        bands = {f"A{n:02d}": "Good" if n < 40 else "Poor" for n in range(80)}
        bands |= {f"U{n:02d}": "Poor" for n in range(5)}
        _insert_scores(store, bands, dt.date(2024, 9, 1))
        result = stored_band_survival(store, AS_OF)

    assert result.undated_churned == 5
    assert result.summary.set_index("band").loc["Poor", "accounts"] == 40


def test_stored_band_survival_undated_only_names_option(tmp_path):
    with _undated_store(tmp_path / "s.duckdb") as store:
        _insert_scores(store, {"T00": "Poor"}, AS_OF)
        with pytest.raises(InputDataError, match="24 churned accounts have no"):
            stored_band_survival(store, AS_OF)
