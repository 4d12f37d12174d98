from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    roc_auc_score,
)

from healthscore.exceptions import ConfigError, InputDataError
from healthscore.predict.validation import (
    Split,
    bootstrap_interval,
    brier_score,
    calibrated_probability,
    calibration_table,
    choose_split,
    expected_calibration_error,
    lead_times,
    pr_auc,
    top_decile_lift,
    validate_profiles,
    validate_scores,
)
from healthscore.scoring import parse_profile
from healthscore.store import Store

UTC = dt.UTC


def _sample(size: int = 2_000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    risk = rng.integers(0, 25, size).astype(float)
    churned = rng.random(size) < 0.05 + risk / 40
    return risk, churned


def test_brier_score_matches_hand_and_sklearn() -> None:
    probability, churned = [0.9, 0.2, 0.5], [1, 0, 0]
    hand = (0.1**2 + 0.2**2 + 0.5**2) / 3

    assert brier_score(probability, churned) == pytest.approx(hand)
    assert brier_score(probability, churned) == pytest.approx(
        brier_score_loss(churned, probability)
    )


def test_brier_score_rejects_scores() -> None:
    with pytest.raises(InputDataError, match="must lie in"):
        brier_score([42.0, 0.5], [1, 0])


def test_ece_hand_calculation() -> None:
    # Bin [0, 0.1): mean 0.05, churn 1/2, gap 0.45 on half the accounts.
    # Bin [0.9, 1]: mean 0.95 (1.0 joins it), churn 1, gap 0.05 on half.
    value = expected_calibration_error([0.05, 0.05, 0.9, 1.0], [0, 1, 1, 1])

    assert value == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)


def test_ece_perfect_calibration_is_zero() -> None:
    probability = [0.25] * 4 + [0.75] * 4
    churned = [1, 0, 0, 0, 1, 1, 1, 0]

    assert expected_calibration_error(probability, churned) == pytest.approx(0.0)


def test_ece_drops_nan_and_checks_bins() -> None:
    assert expected_calibration_error([0.05, np.nan], [1, 0]) == pytest.approx(0.95)
    with pytest.raises(ConfigError, match="bins"):
        expected_calibration_error([0.5], [1], bins=0)


def test_calibration_table_counts_bins() -> None:
    table = calibration_table([0.05, 0.05, 0.95], [0, 1, 1], bins=2)

    assert table["accounts"].tolist() == [2, 1]
    assert table["mean_probability"].tolist() == pytest.approx([0.05, 0.95])
    assert table["churn_rate"].tolist() == pytest.approx([0.5, 1.0])


def test_pr_auc_hand_calculation() -> None:
    # Thresholds 0.9 (P 1, R 1/2) then 0.3 (P 2/3, R 1): 0.5 * 1 + 0.5 * 2/3.
    assert pr_auc([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0]) == pytest.approx(5 / 6)


def test_pr_auc_matches_sklearn_with_ties() -> None:
    risk, churned = _sample()

    assert pr_auc(risk, churned) == pytest.approx(
        average_precision_score(churned, risk)
    )


def test_pr_auc_without_churn_raises() -> None:
    with pytest.raises(InputDataError, match="no churned account"):
        pr_auc([0.2, 0.4], [0, 0])


def test_top_decile_lift_without_ties() -> None:
    risk = np.arange(20.0)
    churned = np.zeros(20, dtype=bool)
    churned[[19, 5, 3, 1]] = True
    # Top 2 by risk are 19 and 18: 1 churner, rate 0.5 against 4 / 20 overall.

    assert top_decile_lift(risk, churned) == pytest.approx(0.5 / 0.2)


def test_top_decile_lift_shares_ties() -> None:
    # The top decile of 10 accounts is 1 account. The top risk is shared by 4
    # accounts with 1 churner, so the expected top rate is 1/4 against 2/10 overall.
    risk = [5, 5, 5, 5, 1, 1, 1, 1, 1, 1]
    churned = [1, 0, 0, 0, 1, 0, 0, 0, 0, 0]

    assert top_decile_lift(risk, churned) == pytest.approx(0.25 / 0.2)


def test_top_decile_lift_matches_sorted_count() -> None:
    rng = np.random.default_rng(5)
    risk = rng.random(1_000)
    churned = rng.random(1_000) < risk / 2
    top = np.argsort(-risk)[:100]

    expected = churned[top].mean() / churned.mean()
    assert top_decile_lift(risk, churned) == pytest.approx(expected)


def test_lead_times_first_poor_before_churn() -> None:
    scores = pd.DataFrame(
        {
            "account_id": ["a", "a", "a", "b", "b", "c", "c"],
            "as_of": [
                dt.date(2024, 1, 1),
                dt.date(2024, 1, 5),
                dt.date(2024, 1, 9),
                dt.date(2024, 1, 1),
                dt.date(2024, 1, 10),
                dt.date(2024, 1, 2),
                dt.date(2024, 1, 3),
            ],
            "band": ["Good", "Poor", "Poor", "Good", "Poor", "Poor", "Poor"],
        }
    )
    churn_dates = pd.Series(
        [
            pd.Timestamp("2024-01-12 15:00", tz="UTC"),
            pd.Timestamp("2024-01-10 08:00", tz="UTC"),
        ],
        index=["a", "b"],
    )

    lead = lead_times(scores, churn_dates, "Poor")

    # a: first Poor on 01-05, churned 01-12: 7 days. b: its Poor snapshot is on the
    # churn day, so it does not count. c did not churn.
    assert lead.to_dict() == {"a": 7}
    assert lead.name == "lead_time_days"


def test_lead_times_missing_column_raises() -> None:
    with pytest.raises(InputDataError, match="band"):
        lead_times(pd.DataFrame({"account_id": [], "as_of": []}), pd.Series(), "Poor")


def test_bootstrap_interval_mean_matches_numpy_loop() -> None:
    values = np.array([1.0, 4.0, 2.0, 8.0, 5.0, 7.0])
    rng = np.random.default_rng(11)
    means = [values[rng.integers(0, 6, 6)].mean() for _ in range(200)]

    estimate, low, high = bootstrap_interval(np.mean, values, resamples=200, seed=11)

    assert estimate == pytest.approx(values.mean())
    assert low == pytest.approx(np.percentile(means, 2.5))
    assert high == pytest.approx(np.percentile(means, 97.5))


def test_bootstrap_interval_is_seeded() -> None:
    risk, churned = _sample(500)

    first = bootstrap_interval(pr_auc, risk, churned, resamples=100, seed=4)
    second = bootstrap_interval(pr_auc, risk, churned, resamples=100, seed=4)

    assert first == second
    assert first[1] < first[0] < first[2]


def test_bootstrap_interval_covers_sklearn_auc() -> None:
    risk, churned = _sample()
    from healthscore.evaluation import roc_auc

    estimate, low, high = bootstrap_interval(roc_auc, risk, churned, resamples=200)

    assert estimate == pytest.approx(roc_auc_score(churned, risk))
    assert low < estimate < high
    assert high - low < 0.1


def test_bootstrap_interval_skips_undefined_resamples() -> None:
    from healthscore.evaluation import roc_auc

    # One churner in 5 accounts: about a third of resamples have none.
    estimate, low, high = bootstrap_interval(
        roc_auc, [1.0, 2.0, 3.0, 4.0, 5.0], [0, 0, 0, 0, 1], resamples=50
    )

    assert estimate == 1.0
    assert (low, high) == (1.0, 1.0)


def test_bootstrap_interval_rejects_bad_input() -> None:
    with pytest.raises(InputDataError, match="same length"):
        bootstrap_interval(np.mean, [1.0, 2.0], [1.0])
    with pytest.raises(ConfigError, match="level"):
        bootstrap_interval(np.mean, [1.0], level=1.5)
    with pytest.raises(ConfigError, match="resamples"):
        bootstrap_interval(np.mean, [1.0], resamples=0)
    with pytest.raises(ConfigError, match="at least 10"):
        bootstrap_interval(np.mean, [1.0, 2.0], resamples=9)


def test_calibrated_probability_is_out_of_fold() -> None:
    # Risk is pure noise, so a fit on the account's own outcome would separate
    # the classes; out of fold the probabilities carry no signal.
    rng = np.random.default_rng(8)
    risk = rng.random(400)
    churned = rng.random(400) < 0.3

    probability = calibrated_probability(risk, churned, seed=1)

    assert probability.min() >= 0.0
    assert probability.max() <= 1.0
    assert roc_auc_score(churned, probability) < 0.6


def test_calibrated_probability_needs_both_outcomes() -> None:
    with pytest.raises(InputDataError, match="at least 2 churned"):
        calibrated_probability([0.1, 0.2, 0.3], [1, 0, 0])


def _frame(risk: np.ndarray, churned: np.ndarray) -> pd.DataFrame:
    score = 100.0 - risk * 4
    band = np.where(score >= 70, "Good", np.where(score >= 40, "Average", "Poor"))
    return pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(len(risk))],
            "score": score,
            "band": band,
            "churned": churned,
        }
    )


SPLIT = Split(kind="all-accounts", description="every account", as_of="2024-03-31")


def test_validate_scores_matches_sklearn() -> None:
    risk, churned = _sample()
    frame = _frame(risk, churned)
    frame.loc[0, ["score", "band"]] = [np.nan, None]

    result = validate_scores(
        frame,
        profile={"name": "p"},
        bands=("Good", "Average", "Poor"),
        split=SPLIT,
        resamples=50,
    )

    scored_risk, scored = 100.0 - frame["score"][1:], churned[1:]
    metrics = result["metrics"]
    assert metrics["roc_auc"]["estimate"] == pytest.approx(
        roc_auc_score(scored, scored_risk)
    )
    assert metrics["pr_auc"]["estimate"] == pytest.approx(
        average_precision_score(scored, scored_risk)
    )
    assert metrics["roc_auc"]["resamples"] == 50
    assert result["accounts"]["unknown"] == 1
    assert result["accounts"]["scored"] == len(frame) - 1
    assert result["probability"]["folds"] == 5
    assert result["split"]["kind"] == "all-accounts"
    assert [row["band"] for row in result["churn_by_band"]] == [
        "Good",
        "Average",
        "Poor",
        "Unknown",
    ]
    assert result["churn_by_band"][3]["accounts"] == 1
    assert result["lead_time"]["available"] is False
    assert "no dates" in result["lead_time"]["reason"]


def test_validate_scores_without_churn_gives_reasons() -> None:
    risk, _ = _sample(100)
    frame = _frame(risk, np.zeros(100, dtype=bool))

    result = validate_scores(
        frame, profile={"name": "p"}, bands=("Good", "Poor"), split=SPLIT, resamples=10
    )

    for entry in result["metrics"].values():
        assert entry["estimate"] is None
        assert entry["reason"]


def test_validate_scores_lead_time_from_history() -> None:
    frame = pd.DataFrame(
        {
            "account_id": ["a", "b", "c", "d"],
            "score": [10.0, 20.0, 80.0, 90.0],
            "band": ["Poor", "Poor", "Good", "Good"],
            "churned": [True, True, True, False],
        }
    )
    history = pd.DataFrame(
        {
            "account_id": ["a", "b", "b", "c"],
            "as_of": [dt.date(2024, 1, 1), dt.date(2024, 1, 1), dt.date(2024, 1, 3)]
            + [dt.date(2024, 1, 1)],
            "band": ["Poor", "Good", "Poor", "Good"],
        }
    )
    churn_dates = pd.Series(
        pd.to_datetime(["2024-01-11", "2024-01-07", "2024-01-20"], utc=True),
        index=["a", "b", "c"],
    )

    lead = validate_scores(
        frame,
        profile={"name": "p"},
        bands=("Good", "Poor"),
        split=SPLIT,
        history=history,
        churn_dates=churn_dates,
        resamples=20,
    )["lead_time"]

    # a: 10 days, b: 4 days, c never Poor.
    assert lead["available"] is True
    assert lead["churned_with_history"] == 3
    assert lead["warned"] == 2
    assert lead["median_days"]["estimate"] == pytest.approx(7.0)
    assert lead["share_warned"]["estimate"] == pytest.approx(2 / 3)


def _accounts_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["old", "gone", "late", "stay", "undated", "new"],
            "created_at": pd.to_datetime(
                ["2023-01-01", "2023-01-01", "2023-01-01", "2023-01-01"]
                + ["2023-01-01", "2024-05-01"],
                utc=True,
            ),
            "churned": [False, True, True, True, True, False],
            "churned_at": pd.to_datetime(
                [
                    None,
                    "2024-03-31 23:00",
                    "2024-04-10 00:00",
                    "2024-09-01 00:00",
                    None,
                    None,
                ],
                utc=True,
            ),
        }
    )


def test_choose_split_time_holdout() -> None:
    split, outcomes, churn_dates = choose_split(
        _accounts_frame(), dt.date(2024, 3, 31), horizon_days=90
    )

    churned = dict(zip(outcomes["account_id"], outcomes["churned"], strict=True))
    assert split.kind == "time-holdout"
    assert split.outcome_end == "2024-06-29"
    # "gone" churned on the as-of day and "new" did not exist yet.
    assert set(churned) == {"old", "late", "stay", "undated"}
    assert churned["late"]
    assert not churned["stay"]
    assert pd.isna(churned["undated"])
    assert list(churn_dates.index) == ["late"]


def test_choose_split_all_accounts_without_dates() -> None:
    accounts = _accounts_frame().assign(churned_at=pd.NaT)

    split, outcomes, churn_dates = choose_split(accounts, dt.date(2024, 3, 31))

    assert split.kind == "all-accounts"
    assert len(outcomes) == 6
    assert churn_dates is None
    with pytest.raises(ConfigError, match="horizon"):
        choose_split(accounts, dt.date(2024, 3, 31), horizon_days=0)


PROFILE = """
name: seats
bands:
  - {name: Good, min: 70}
  - {name: Average, min: 40}
  - {name: Poor, min: 0}
components:
  - name: size
    weight: 1
    measures:
      - metric: seats
        linear: {worst: 0, best: 10}
"""


def _store_with_accounts(path, churned_at: list[object]) -> Store:
    store = Store.open(path)
    count = len(churned_at)
    store.insert(
        "accounts",
        pa.table(
            {
                "account_id": [f"a{i}" for i in range(count)],
                "seats": pa.array([i % 11 for i in range(count)], pa.int64()),
                "created_at": pa.array(
                    [dt.datetime(2023, 1, 1, tzinfo=UTC)] * count,
                    pa.timestamp("us", tz="UTC"),
                ),
                "churned": [value is not None for value in churned_at],
                "churned_at": pa.array(churned_at, pa.timestamp("us", tz="UTC")),
                "load_id": ["test"] * count,
            }
        ),
    )
    return store


def test_validate_profiles_on_store(tmp_path) -> None:
    # Accounts with few seats churn in April 2024; the seats profile ranks them.
    churned_at = [
        dt.datetime(2024, 4, 2, tzinfo=UTC) if i % 11 < 3 else None for i in range(60)
    ]
    store = _store_with_accounts(tmp_path / "s.duckdb", churned_at)
    profile = parse_profile(PROFILE)

    document = validate_profiles(store, [profile], dt.date(2024, 3, 31), resamples=20)
    store.close()

    result = document["profiles"][0]
    assert result["split"]["kind"] == "time-holdout"
    assert result["accounts"]["scored"] == 60
    assert result["metrics"]["roc_auc"]["estimate"] == pytest.approx(1.0)
    assert result["lead_time"]["available"] is False
    assert "backfill" in result["lead_time"]["reason"]
    assert document["bootstrap"]["resamples"] == 20


def test_validate_profiles_without_later_churn_raises(tmp_path) -> None:
    churned_at = [dt.datetime(2024, 1, 2, tzinfo=UTC), None, None]
    store = _store_with_accounts(tmp_path / "s.duckdb", churned_at)

    with pytest.raises(InputDataError, match="earlier --as-of"):
        validate_profiles(store, [parse_profile(PROFILE)], dt.date(2024, 3, 31))
    store.close()


def test_validate_scores_all_unknown_reason() -> None:
    frame = _frame(np.full(30, np.nan), np.arange(30) % 3 == 0)

    result = validate_scores(
        frame, profile={"name": "p"}, bands=("Good", "Poor"), split=SPLIT, resamples=10
    )

    assert result["accounts"]["scored"] == 0
    assert "all 30 accounts with a known outcome are Unknown" in result["reason"]
    for entry in result["metrics"].values():
        assert entry["estimate"] is None
        assert entry["reason"] == result["reason"]


def test_validate_scores_reason_none_when_scored() -> None:
    risk, churned = _sample(100)
    frame = _frame(risk, churned)

    result = validate_scores(
        frame, profile={"name": "p"}, bands=("Good", "Poor"), split=SPLIT, resamples=10
    )

    assert result["reason"] is None
