from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from healthscore.demo.run import DEMO_DIR, TELCO_FILE
from healthscore.exceptions import ConfigError, InputDataError
from healthscore.ingest import ingest_file, load_mapping
from healthscore.metrics import compute_metrics
from healthscore.scoring import load_profile, parse_profile, score_accounts
from healthscore.scoring.profile_diff import NOT_SCORED, diff_profiles
from healthscore.scoring.profile_set import parse_profile_set
from healthscore.store import Store

OLD = """
name: by-value
components:
  - name: usage
    weight: 1
    measures:
      - metric: value
        linear: {worst: 0, best: 100}
"""

NEW = OLD.replace("by-value", "by-other").replace("metric: value", "metric: other")

BANDS = ["Good", "Average", "Poor", "Unknown"]


def _metrics() -> pd.DataFrame:
    # Old score = value, new score = other.
    return pd.DataFrame(
        {
            "account_id": ["a1", "a2", "a3", "a4", "a5", "a6"],
            "segment": ["x", "x", "y", "y", "y", "x"],
            "value": [20.0, 35.0, 60.0, 65.0, 90.0, np.nan],
            "other": [50.0, 45.0, 30.0, 75.0, 95.0, 10.0],
        }
    )


CHURNED = {"a1": True, "a2": False, "a3": True, "a4": False, "a5": False, "a6": True}


def test_diff_profiles_hand_bands():
    diff = diff_profiles(_metrics(), parse_profile(OLD), parse_profile(NEW))
    table = diff.accounts

    assert list(table["old_band"]) == ["Poor", "Poor", "Average", "Average", "Good"] + [
        "Unknown"
    ]
    assert list(table["new_band"]) == ["Average", "Average", "Poor", "Good", "Good"] + [
        "Poor"
    ]
    assert list(table["old_profile"]) == ["by-value"] * 6
    assert list(table["new_profile"]) == ["by-other"] * 6
    assert list(diff.moved["account_id"]) == ["a1", "a2", "a3", "a4", "a6"]
    assert list(diff.moved["score_change"][:4]) == [30.0, 10.0, -30.0, 10.0]
    assert np.isnan(diff.moved["score_change"].iloc[4])


def test_diff_profiles_hand_transitions():
    diff = diff_profiles(_metrics(), parse_profile(OLD), parse_profile(NEW))

    expected = pd.DataFrame(
        [[1, 0, 0, 0], [1, 0, 1, 0], [0, 2, 0, 0], [0, 0, 1, 0]],
        index=pd.Index(BANDS, name="old_band"),
        columns=pd.Index(BANDS, name="new_band"),
    )
    pd.testing.assert_frame_equal(diff.transitions, expected)


def test_diff_profiles_hand_distribution():
    diff = diff_profiles(_metrics(), parse_profile(OLD), parse_profile(NEW))
    stats = diff.distribution

    assert stats.loc["accounts", "old"] == 6
    assert stats.loc["scored", "old"] == 5
    assert stats.loc["scored", "new"] == 6
    assert stats.loc["mean", "old"] == pytest.approx(54.0)
    assert stats.loc["mean", "new"] == pytest.approx(305 / 6)
    assert stats.loc["median", "old"] == pytest.approx(60.0)
    assert stats.loc["median", "new"] == pytest.approx(47.5)
    assert stats.loc["median", "change"] == pytest.approx(-12.5)
    # Linear interpolation: position 0.25 * 4 = 1 of 20, 35, 60, 65, 90.
    assert stats.loc["p25", "old"] == pytest.approx(35.0)
    assert stats.loc["p90", "new"] == pytest.approx(
        np.quantile([10, 30, 45, 50, 75, 95], 0.9)
    )
    assert stats.loc["min", "new"] == 10.0
    assert stats.loc["max", "old"] == 90.0
    assert stats.loc["std", "old"] == pytest.approx(
        np.std([20, 35, 60, 65, 90], ddof=1)
    )


def test_diff_profiles_hand_band_shares():
    diff = diff_profiles(_metrics(), parse_profile(OLD), parse_profile(NEW))
    shares = diff.band_shares.set_index("band")

    assert list(shares.index) == BANDS
    assert list(shares["old_accounts"]) == [1, 2, 2, 1]
    assert list(shares["new_accounts"]) == [2, 2, 2, 0]
    assert list(shares["old_share"]) == pytest.approx([1 / 6, 2 / 6, 2 / 6, 1 / 6])
    assert list(shares["share_change"]) == pytest.approx([1 / 6, 0, 0, -1 / 6])


def test_diff_profiles_hand_auc():
    diff = diff_profiles(_metrics(), parse_profile(OLD), parse_profile(NEW), CHURNED)
    auc = diff.auc

    # Old: churned risks 80 and 40 beat 5 of the 6 retained risks 65, 35 and 10.
    assert auc.old == pytest.approx(5 / 6)
    # New: churned risks 50, 70 and 90 beat 8 of the 9 retained risks 55, 25 and 5.
    assert auc.new == pytest.approx(8 / 9)
    assert auc.paired_old == pytest.approx(5 / 6)
    assert auc.paired_new == pytest.approx(5 / 6)
    assert (auc.old_accounts, auc.new_accounts, auc.paired_accounts) == (5, 6, 5)


def test_diff_profiles_auc_matches_sklearn():
    metrics = _metrics()
    diff = diff_profiles(metrics, parse_profile(OLD), parse_profile(NEW), CHURNED)
    churned = metrics["account_id"].map(CHURNED).astype(bool)
    scored = metrics["value"].notna()

    old_expected = roc_auc_score(churned[scored], 100 - metrics["value"][scored])
    new_expected = roc_auc_score(churned, 100 - metrics["other"])

    assert diff.auc.old == pytest.approx(old_expected, abs=1e-12)
    assert diff.auc.new == pytest.approx(new_expected, abs=1e-12)


def test_diff_profiles_auc_churn_by_band():
    diff = diff_profiles(_metrics(), parse_profile(OLD), parse_profile(NEW), CHURNED)
    old = diff.auc.old_churn_by_band.set_index("band")

    assert list(old.index) == BANDS
    assert list(old["accounts"]) == [1, 2, 2, 1]
    assert list(old["churned"]) == [0, 1, 1, 1]


def test_diff_profiles_outcomes_partly_known():
    outcomes = pd.Series({"a1": 1, "a2": 0, "a3": None, "a5": 0.0})

    diff = diff_profiles(_metrics(), parse_profile(OLD), parse_profile(NEW), outcomes)

    # Old risks: churned a1 has 80, and retained a2 and a5 have 65 and 10.
    assert diff.auc.old == pytest.approx(1.0)
    assert diff.auc.old_accounts == 3


def test_diff_profiles_one_outcome_class():
    outcomes = dict.fromkeys(CHURNED, False)

    diff = diff_profiles(_metrics(), parse_profile(OLD), parse_profile(NEW), outcomes)

    assert diff.auc.old is None
    assert diff.auc.new is None
    assert diff.auc.new_accounts == 6


def test_diff_profiles_rejects_bad_outcome():
    outcomes = {"a1": "yes"}

    with pytest.raises(InputDataError, match="invalid churn outcome 'yes'"):
        diff_profiles(_metrics(), parse_profile(OLD), parse_profile(NEW), outcomes)


def test_diff_profiles_rejects_bad_quantile():
    with pytest.raises(ConfigError, match="from 0 to 1"):
        diff_profiles(
            _metrics(), parse_profile(OLD), parse_profile(NEW), quantiles=[90]
        )


def test_diff_profiles_no_outcomes_no_auc():
    diff = diff_profiles(_metrics(), parse_profile(OLD), parse_profile(NEW))

    assert diff.auc is None


def test_diff_profiles_set_against_profile():
    profile_set = parse_profile_set(
        "profiles:\n"
        f"  - profile: {{{_inline(NEW)}}}\n"
        "    when: {segment: [y]}\n"
        f"  - profile: {{{_inline(OLD)}}}\n"
    )

    diff = diff_profiles(_metrics(), parse_profile(OLD), profile_set)
    table = diff.accounts

    assert list(table["new_profile"]) == ["by-value", "by-value"] + ["by-other"] * 3 + [
        "by-value"
    ]
    assert list(table["new_score"][:5]) == [20.0, 35.0, 30.0, 75.0, 95.0]
    assert list(diff.moved["account_id"]) == ["a3", "a4"]


def test_diff_profiles_not_scored_side():
    only_x = parse_profile(
        OLD.replace("components:", "applies_to: {segments: [x]}\ncomponents:")
    )

    diff = diff_profiles(_metrics(), parse_profile(NEW), only_x)
    table = diff.accounts.set_index("account_id")

    assert table.loc["a3", "new_band"] == NOT_SCORED
    assert table.loc["a3", "new_profile"] is None
    assert np.isnan(table.loc["a3", "new_score"])
    assert list(diff.transitions.columns) == [*BANDS, NOT_SCORED]
    assert diff.transitions[NOT_SCORED].sum() == 3
    assert diff.band_shares.set_index("band").loc[NOT_SCORED, "new_accounts"] == 3


def test_diff_profiles_age_rule_uses_accounts():
    profile_set = parse_profile_set(
        "profiles:\n"
        f"  - profile: {{{_inline(NEW)}}}\n"
        "    when: {age_days_below: 30}\n"
        f"  - profile: {{{_inline(OLD)}}}\n"
    )
    young = pd.Timestamp("2025-03-20T00:00:00Z")
    old = pd.Timestamp("2020-01-01T00:00:00Z")
    accounts = pd.DataFrame(
        {"account_id": list(CHURNED), "created_at": [young, old, old, old, old, young]}
    )

    diff = diff_profiles(
        _metrics(),
        parse_profile(OLD),
        profile_set,
        accounts=accounts,
        as_of=dt.date(2025, 3, 31),
    )

    assert list(diff.moved["account_id"]) == ["a1", "a6"]


def _inline(profile: str) -> str:
    """Return a profile as one YAML flow-mapping body."""
    name = profile.split("name: ")[1].split("\n")[0]
    metric = profile.split("metric: ")[1].split("\n")[0]
    return (
        f"name: {name}, components: [{{name: usage, weight: 1, measures: "
        f"[{{metric: {metric}, linear: {{worst: 0, best: 100}}}}]}}]"
    )


@pytest.fixture(scope="module")
def telco(tmp_path_factory):
    path = tmp_path_factory.mktemp("telco") / "telco.duckdb"
    profile = load_profile(DEMO_DIR / "profiles" / "telco.yaml")
    with Store.open(path) as store:
        mapping = load_mapping(DEMO_DIR / "mappings" / "telco.yaml")
        ingest_file(store, "accounts", TELCO_FILE, mapping)
        names = [*profile.metrics, "arr"]
        metrics = compute_metrics(store, dt.date(2026, 12, 4), names)
        accounts = store.table("accounts").select("account_id", "churned").to_pandas()
    outcomes = accounts.set_index("account_id")["churned"]
    return metrics, profile, outcomes


def _modified_telco(profile_text: str) -> str:
    """Weigh price twice as much and lower the Good band from 70 to 60."""
    changed = profile_text.replace("name: telco-retention", "name: telco-price")
    changed = changed.replace("{name: Good, min: 70}", "{name: Good, min: 60}")
    return changed.replace(
        "  - name: price\n    weight: 15", "  - name: price\n    weight: 30"
    )


def test_diff_profiles_telco(telco):
    metrics, profile, outcomes = telco
    new = parse_profile(_modified_telco(profile.text))
    assert new.bands[0].min == 60
    assert new.components[3].weight == 30

    diff = diff_profiles(metrics, profile, new, outcomes)
    old_scores = score_accounts(metrics, profile).scores
    new_scores = score_accounts(metrics, new).scores
    churned = metrics["account_id"].map(outcomes).astype(bool)

    expected = pd.crosstab(old_scores["band"], new_scores["band"])
    moved = (old_scores["band"] != new_scores["band"]).sum()
    assert len(diff.accounts) == 7043
    assert len(diff.moved) == moved > 0
    assert diff.transitions.to_numpy().sum() == 7043
    for old_band in expected.index:
        for new_band in expected.columns:
            count = diff.transitions.loc[old_band, new_band]
            assert count == expected.loc[old_band, new_band]
    assert diff.distribution.loc["mean", "old"] == pytest.approx(
        old_scores["score"].mean()
    )
    assert diff.auc.old == pytest.approx(
        roc_auc_score(churned, 100 - old_scores["score"]), abs=1e-12
    )
    assert diff.auc.new == pytest.approx(
        roc_auc_score(churned, 100 - new_scores["score"]), abs=1e-12
    )
    assert diff.auc.old >= 0.80


def test_diff_profiles_telco_set_by_arr(telco):
    metrics, profile, outcomes = telco
    new = parse_profile(_modified_telco(profile.text))
    profile_set = parse_profile_set(
        "profiles:\n"
        f"  - profile:\n{_block(new.text)}\n"
        "    when: {arr_at_least: 1000}\n"
        f"  - profile:\n{_block(profile.text)}\n"
    )

    diff = diff_profiles(metrics, profile, profile_set, outcomes)
    high = (metrics["arr"] >= 1000).to_numpy()
    new_scores = score_accounts(metrics[high], new).scores

    assert list(diff.accounts["new_profile"][high].unique()) == ["telco-price"]
    assert list(diff.accounts["new_profile"][~high].unique()) == ["telco-retention"]
    assert list(diff.accounts["new_score"][high]) == list(new_scores["score"])
    assert not diff.accounts["band_changed"][~high].any()


def _block(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())
