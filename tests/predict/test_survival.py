import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from healthscore.exceptions import ConfigError, InputDataError
from healthscore.predict.survival import (
    DAYS_PER_MONTH,
    band_survival,
    tenure_durations,
)


def _frames(months, churned, bands):
    ids = [f"a{i}" for i in range(len(months))]
    durations = pd.DataFrame({"account_id": ids, "months": months, "churned": churned})
    return durations, pd.DataFrame({"account_id": ids, "band": bands})


def _tiny():
    # Poor: churn at 1, 2 and 3 months, censored at 2 and 4. Good: censored at 5, 6.
    return _frames(
        [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        [True, True, False, True, False, False, False],
        ["Poor"] * 5 + ["Good"] * 2,
    )


def _numpy_kaplan_meier(months, churned, entry=None):
    """Return event times and S(t) after each, from the product-limit formula."""
    entry = np.zeros_like(months) if entry is None else entry
    times = np.unique(months[churned])
    at_risk = np.array([((entry < t) & (months >= t)).sum() for t in times])
    events = np.array([((months == t) & churned).sum() for t in times])
    return times, np.cumprod(1.0 - events / at_risk)


def _numpy_step(times, survival, t):
    index = np.searchsorted(times, t, side="right") - 1
    return 1.0 if index < 0 else float(survival[index])


def _numpy_restricted_mean(times, survival, horizon):
    edges = np.concatenate([[0.0], times[times < horizon], [horizon]])
    levels = np.concatenate([[1.0], survival[times < horizon]])
    return float(np.sum(np.diff(edges) * levels))


def test_band_survival_curve_by_hand():
    durations, bands = _tiny()

    result = band_survival(durations, bands, band_order=["Good", "Average", "Poor"])

    poor = result.curves[result.curves["band"] == "Poor"].set_index("months")
    assert poor.loc[1.0, "survival"] == pytest.approx(0.8)
    assert poor.loc[2.0, "survival"] == pytest.approx(0.8 * 3 / 4)
    assert poor.loc[3.0, "survival"] == pytest.approx(0.6 * 1 / 2)
    assert poor.loc[4.0, "survival"] == pytest.approx(0.3)
    assert poor.loc[2.0, "at_risk"] == 4
    assert poor.loc[3.0, "churned"] == 1


def test_band_survival_summary_by_hand():
    durations, bands = _tiny()

    result = band_survival(durations, bands, band_order=["Good", "Average", "Poor"])

    summary = result.summary.set_index("band")
    assert list(summary.index) == ["Good", "Poor"]
    assert result.horizon_months == 4.0
    assert summary.loc["Poor", "accounts"] == 5
    assert summary.loc["Poor", "churned"] == 3
    assert summary.loc["Poor", "median_months"] == 3.0
    # Area under 1, 0.8, 0.6, 0.3 over the months 0-1, 1-2, 2-3, 3-4.
    assert summary.loc["Poor", "restricted_mean_months"] == pytest.approx(2.7)
    assert math.isinf(summary.loc["Good", "median_months"])
    assert summary.loc["Good", "restricted_mean_months"] == pytest.approx(4.0)


def test_band_survival_explicit_horizon():
    durations, bands = _tiny()

    result = band_survival(durations, bands, horizon_months=2.5)

    summary = result.summary.set_index("band")
    assert summary.loc["Poor", "restricted_mean_months"] == pytest.approx(2.1)
    assert summary.loc["Poor", "horizon_months"] == 2.5


def test_band_survival_matches_numpy_kaplan_meier():
    rng = np.random.default_rng(7)
    months = np.round(rng.exponential(12.0, size=400), 1)
    churned = rng.random(400) < 0.6
    names = rng.choice(["Good", "Poor"], size=400)
    durations, bands = _frames(months, churned, names)

    result = band_survival(durations, bands, horizon_months=18.0)

    for name in ["Good", "Poor"]:
        mask = names == name
        times, survival = _numpy_kaplan_meier(months[mask], churned[mask])
        curve = result.curves[result.curves["band"] == name]
        expected = [_numpy_step(times, survival, t) for t in curve["months"]]
        np.testing.assert_allclose(curve["survival"], expected, rtol=1e-12)
        row = result.summary.set_index("band").loc[name]
        assert row["restricted_mean_months"] == pytest.approx(
            _numpy_restricted_mean(times, survival, 18.0), rel=1e-12
        )
        assert row["median_months"] == times[np.argmax(survival <= 0.5)]


def test_band_survival_truncated_matches_numpy():
    rng = np.random.default_rng(11)
    entry = np.round(rng.uniform(0, 24, size=300), 2) + 0.005
    months = entry + np.round(rng.exponential(10.0, size=300), 1) + 0.1
    churned = rng.random(300) < 0.5
    durations, bands = _frames(months, churned, ["Poor"] * 300)
    durations["entry_months"] = entry

    curve = band_survival(durations, bands).curves

    times, survival = _numpy_kaplan_meier(months, churned, entry)
    expected = [_numpy_step(times, survival, t) for t in curve["months"]]
    np.testing.assert_allclose(curve["survival"], expected, rtol=1e-12)


def test_band_survival_band_that_empties_early():
    # Both "Unknown" accounts churn, the first before the second enters, so the
    # curve is 0 while accounts still enter and lifelines cannot fit it.
    durations, bands = _frames(
        [1.0, 2.0, 3.0, 34.7, 44.5],
        [True, False, False, True, True],
        ["Poor", "Poor", "Poor", "Unknown", "Unknown"],
    )
    durations["entry_months"] = [0.0, 0.0, 0.0, 33.0, 41.3]

    result = band_survival(durations, bands)

    summary = result.summary.set_index("band")
    assert summary.loc["Unknown", "accounts"] == 2
    assert math.isnan(summary.loc["Unknown", "median_months"])
    assert math.isnan(summary.loc["Unknown", "restricted_mean_months"])
    assert set(result.curves["band"]) == {"Poor"}
    assert summary.loc["Poor", "restricted_mean_months"] == pytest.approx(1 + 2 / 3 * 2)


def test_band_survival_interval_brackets_curve():
    durations, bands = _tiny()

    curves = band_survival(durations, bands).curves

    assert (curves["low"] <= curves["survival"] + 1e-12).all()
    assert (curves["high"] >= curves["survival"] - 1e-12).all()


def test_band_survival_skips_accounts_without_band():
    durations, bands = _tiny()
    bands.loc[0, "band"] = None

    summary = band_survival(durations, bands).summary.set_index("band")

    assert summary.loc["Poor", "accounts"] == 4


def test_band_survival_rejects_negative_months():
    durations, bands = _tiny()
    durations.loc[2, "months"] = -1.0

    with pytest.raises(InputDataError, match="'a2'"):
        band_survival(durations, bands)


def test_band_survival_rejects_empty_join():
    durations, _ = _tiny()
    bands = pd.DataFrame({"account_id": ["other"], "band": ["Good"]})

    with pytest.raises(InputDataError, match="no account"):
        band_survival(durations, bands)


@pytest.mark.parametrize("horizon", [0.0, -3.0, float("nan")])
def test_band_survival_rejects_bad_horizon(horizon):
    durations, bands = _tiny()

    with pytest.raises(ConfigError, match="horizon_months"):
        band_survival(durations, bands, horizon_months=horizon)


def _utc(text):
    return pd.Timestamp(text, tz="UTC") if text else pd.NaT


def _accounts(rows):
    return pd.DataFrame(
        {
            "account_id": [row[0] for row in rows],
            "created_at": pd.Series([_utc(row[1]) for row in rows], dtype=object),
            "churned": [row[2] for row in rows],
            "churned_at": pd.Series([_utc(row[3]) for row in rows], dtype=object),
        }
    )


def test_tenure_durations_churned_and_censored():
    accounts = _accounts(
        [
            ("churn", "2024-01-01", True, "2024-03-01"),
            ("open", "2024-01-01", False, None),
            ("late", "2024-01-01", True, "2024-09-01"),
        ]
    )

    result = tenure_durations(accounts, dt.date(2024, 6, 30))

    frame = result.durations.set_index("account_id")
    # 2024-01-01 to 2024-03-01 is 60 days; to the end of 2024-06-30 is 182 days.
    assert frame.loc["churn", "months"] == pytest.approx(60 / DAYS_PER_MONTH)
    assert bool(frame.loc["churn", "churned"])
    assert frame.loc["open", "months"] == pytest.approx(182 / DAYS_PER_MONTH)
    assert not frame.loc["open", "churned"]
    assert frame.loc["late", "months"] == pytest.approx(182 / DAYS_PER_MONTH)
    assert not frame.loc["late", "churned"]


def test_tenure_durations_counts_skipped():
    accounts = _accounts(
        [
            ("nostart", None, False, None),
            ("future", "2024-08-01", False, None),
            ("nodate", "2024-01-01", True, None),
            ("backwards", "2024-05-01", True, "2024-04-01"),
            ("ok", "2024-01-01", False, None),
        ]
    )

    result = tenure_durations(accounts, dt.date(2024, 6, 30))

    assert list(result.durations["account_id"]) == ["ok"]
    assert result.skipped == {
        "no start date": 1,
        "created after the as-of date": 1,
        "churned without a churn date": 1,
        "churned before its start": 1,
    }


def test_tenure_durations_observed_from_fills_missing_created():
    accounts = _accounts([("nostart", None, True, "2024-02-01")])

    result = tenure_durations(
        accounts, dt.date(2024, 6, 30), observed_from=dt.date(2024, 1, 1)
    )

    assert result.durations["months"].iloc[0] == pytest.approx(31 / DAYS_PER_MONTH)
    assert result.durations["entry_months"].iloc[0] == 0.0
    assert bool(result.durations["churned"].iloc[0])


def test_tenure_durations_observed_from_after_as_of():
    accounts = _accounts([("churn", "2024-01-01", True, "2024-03-01")])

    with pytest.raises(ConfigError, match="'2024-07-01' is after as_of '2024-06-30'"):
        tenure_durations(
            accounts, dt.date(2024, 6, 30), observed_from=dt.date(2024, 7, 1)
        )


def test_tenure_durations_observed_from_on_as_of():
    accounts = _accounts([("open", "2024-01-01", False, None)])

    result = tenure_durations(
        accounts, dt.date(2024, 6, 30), observed_from=dt.date(2024, 6, 30)
    )

    # Censored at the end of 2024-06-30, 182 days after 2024-01-01.
    assert result.durations["months"].iloc[0] == pytest.approx(182 / DAYS_PER_MONTH)


def test_tenure_durations_observed_from_truncates():
    accounts = _accounts(
        [
            ("old", "2023-01-01", True, "2024-03-01"),
            ("gone", "2023-01-01", True, "2023-06-01"),
            ("new", "2024-02-01", False, None),
        ]
    )

    result = tenure_durations(
        accounts, dt.date(2024, 6, 30), observed_from=dt.date(2024, 1, 1)
    )

    frame = result.durations.set_index("account_id")
    assert list(frame.index) == ["old", "new"]
    assert result.skipped["churned before observed_from"] == 1
    # 2023-01-01 to 2024-01-01 is 365 days, to 2024-03-01 is 425 days.
    assert frame.loc["old", "entry_months"] == pytest.approx(365 / DAYS_PER_MONTH)
    assert frame.loc["old", "months"] == pytest.approx(425 / DAYS_PER_MONTH)
    assert frame.loc["new", "entry_months"] == 0.0


def test_band_survival_left_truncation_by_hand():
    # Entering at 2.5 months, "late" is not at risk at 1 or 2 months.
    durations, bands = _frames(
        [1.0, 2.0, 3.0, 4.0, 3.5],
        [True, True, True, False, False],
        ["Poor"] * 5,
    )
    durations["entry_months"] = [0.0, 0.0, 0.0, 0.0, 2.5]

    curve = band_survival(durations, bands).curves.set_index("months")

    assert curve.loc[1.0, "survival"] == pytest.approx(3 / 4)
    assert curve.loc[2.0, "survival"] == pytest.approx(3 / 4 * 2 / 3)
    # At 3 months "late" is at risk too: 3 accounts, 1 churn.
    assert curve.loc[3.0, "at_risk"] == 3
    assert curve.loc[3.0, "survival"] == pytest.approx(0.5 * 2 / 3)
