import datetime as dt
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthscore.exceptions import ConfigError, InputDataError
from healthscore.history.human import apply_stored_overrides, set_override
from healthscore.metrics import compute_metrics
from healthscore.scoring import (
    parse_profile,
    parse_profile_set,
    score_accounts,
    score_profile_set,
)
from healthscore.scoring.engine import ScoreResult
from healthscore.scoring.overrides import (
    OVERRIDE_COLUMNS,
    apply_overrides,
    band_for_score,
    no_overrides,
)
from healthscore.store import Store

PROFILE = parse_profile(
    """
name: seats
bands:
  - {name: Healthy, min: 75}
  - {name: Watch, min: 50}
  - {name: Risk, min: 0}
components:
  - name: size
    weight: 1
    measures:
      - metric: seats
        linear: {worst: 0, best: 100}
"""
)

METRICS = pd.DataFrame({"account_id": ["a", "b", "c"], "seats": [90.0, 60.0, np.nan]})

EXPIRES = pd.Timestamp("2030-01-01", tz="UTC")


def _overrides(*rows):
    frame = pd.DataFrame(
        rows,
        columns=["account_id", "input_id", "override_score", "override_band"],
    )
    frame["override_score"] = frame["override_score"].astype("float64")
    frame["author"] = "ann"
    frame["reason"] = "call"
    frame["expires_at"] = EXPIRES
    return frame


def test_apply_overrides_fixed_score_takes_profile_band():
    result = score_accounts(METRICS, PROFILE)

    applied = apply_overrides(result, _overrides(("a", "i1", 40.0, None)), PROFILE)

    scores = applied.scores.set_index("account_id")
    assert scores.loc["a", "score"] == 40.0
    assert scores.loc["a", "band"] == "Risk"
    assert scores.loc["a", "computed_score"] == 90.0
    assert scores.loc["a", "computed_band"] == "Healthy"
    assert scores.loc["a", "override_id"] == "i1"
    assert scores.loc["a", "override_author"] == "ann"
    assert scores.loc["a", "override_expires_at"] == EXPIRES
    assert scores.loc["b", "score"] == 60.0
    assert pd.isna(scores.loc["b", "override_id"])
    assert math.isnan(scores.loc["b", "computed_score"])


def test_apply_overrides_band_keeps_computed_score():
    result = score_accounts(METRICS, PROFILE)

    applied = apply_overrides(result, _overrides(("b", "i2", None, "risk")), PROFILE)

    scores = applied.scores.set_index("account_id")
    assert scores.loc["b", "score"] == 60.0
    assert scores.loc["b", "band"] == "Risk"
    assert scores.loc["b", "override_band"] == "Risk"
    assert scores.loc["b", "computed_band"] == "Watch"


def test_apply_overrides_scores_unknown_account():
    result = score_accounts(METRICS, PROFILE)

    applied = apply_overrides(result, _overrides(("c", "i3", 80.0, None)), PROFILE)

    scores = applied.scores.set_index("account_id")
    assert scores.loc["c", "score"] == 80.0
    assert scores.loc["c", "band"] == "Healthy"
    assert scores.loc["c", "computed_band"] == "Unknown"
    assert scores.loc["c", "coverage"] == 0


def test_apply_overrides_none_adds_empty_columns():
    result = score_accounts(METRICS, PROFILE)

    applied = apply_overrides(result, no_overrides(), PROFILE)

    assert list(applied.scores.columns) == [*result.scores.columns, *OVERRIDE_COLUMNS]
    pd.testing.assert_frame_equal(applied.scores[result.scores.columns], result.scores)
    assert applied.scores["override_id"].isna().all()
    assert applied.measures is result.measures


def test_apply_overrides_ignores_unscored_accounts():
    result = score_accounts(METRICS, PROFILE)

    applied = apply_overrides(result, _overrides(("zz", "i4", 5.0, None)), PROFILE)

    assert applied.scores["override_id"].isna().all()


def test_apply_overrides_band_not_in_profile_raises():
    result = score_accounts(METRICS, PROFILE)

    with pytest.raises(ConfigError, match=r"sets band 'Poor', which profile 'seats'"):
        apply_overrides(result, _overrides(("a", "i5", None, "Poor")), PROFILE)


def test_apply_overrides_repeated_account_raises():
    result = score_accounts(METRICS, PROFILE)
    twice = _overrides(("a", "i6", 10.0, None), ("a", "i7", 20.0, None))

    with pytest.raises(InputDataError, match=r"accounts \['a'\] have more than one"):
        apply_overrides(result, twice, PROFILE)


def test_apply_overrides_missing_column_raises():
    result = score_accounts(METRICS, PROFILE)

    with pytest.raises(InputDataError, match="lacks the columns"):
        apply_overrides(result, pd.DataFrame({"account_id": ["a"]}), PROFILE)


def test_apply_overrides_profile_set_uses_member_bands():
    profiles = parse_profile_set(
        """
name: tiers
profiles:
  - profile:
      name: big
      bands: [{name: Fine, min: 50}, {name: Bad, min: 0}]
      components:
        - name: size
          weight: 1
          measures:
            - metric: seats
              linear: {worst: 0, best: 100}
    when: {segment: [Enterprise]}
  - profile:
      name: small
      components:
        - name: size
          weight: 1
          measures:
            - metric: seats
              linear: {worst: 0, best: 100}
"""
    )
    metrics = METRICS.assign(segment=["Enterprise", "SMB", "SMB"])
    scored = score_profile_set(metrics, profiles)
    result = ScoreResult(scored.scores, scored.components, scored.measures)
    overrides = _overrides(("a", "i8", 45.0, None), ("b", "i9", 45.0, None))

    scores = apply_overrides(result, overrides, profiles).scores.set_index("account_id")

    assert scores.loc["a", "band"] == "Bad"
    assert scores.loc["b", "band"] == "Average"


def test_band_for_score_edges():
    assert band_for_score(75.0, PROFILE) == "Healthy"
    assert band_for_score(74.9, PROFILE) == "Watch"
    assert band_for_score(0.0, PROFILE) == "Risk"
    assert band_for_score(math.nan, PROFILE) == "Unknown"


@pytest.fixture(scope="module")
def shared_store():
    """One store for every Hypothesis example; each example empties its inputs."""
    with Store.open(":memory:") as store:
        store.insert(
            "accounts",
            pa.table(
                {
                    "account_id": ["a", "b", "c"],
                    "seats": [90, 60, None],
                    "load_id": ["l"] * 3,
                }
            ),
        )
        yield store


def _empty_inputs(store):
    for table in ("human_inputs", "human_input_audit"):
        store.backend.raw_sql(f"DELETE FROM {table}")


START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    entered_hours=st.integers(min_value=0, max_value=24 * 60),
    length_hours=st.integers(min_value=1, max_value=24 * 60),
    days_after=st.integers(min_value=0, max_value=400),
    account=st.sampled_from(["a", "b", "c"]),
    score=st.floats(min_value=0, max_value=100),
)
def test_expired_override_changes_nothing(
    shared_store, entered_hours, length_hours, days_after, account, score
):
    entered_at = START + dt.timedelta(hours=entered_hours)
    expires_at = entered_at + dt.timedelta(hours=length_hours)
    # An input counts as of D while the end of D is before its expiry, so the
    # expiry's own date is the first date it no longer counts.
    as_of = expires_at.date() + dt.timedelta(days=days_after)
    store = shared_store
    _empty_inputs(store)
    # Seats do not change over time, so one scoring serves every date.
    result = score_accounts(compute_metrics(store, START.date(), ["seats"]), PROFILE)
    without = apply_stored_overrides(store, result, PROFILE, as_of)
    set_override(
        store,
        account,
        score=score,
        author="ann",
        reason="r",
        expires=expires_at,
        at=entered_at,
    )

    expired = apply_stored_overrides(store, result, PROFILE, as_of)

    pd.testing.assert_frame_equal(expired.scores, without.scores)
    assert expired.scores["override_id"].isna().all()
    day_before = expires_at.date() - dt.timedelta(days=1)
    if entered_at.date() <= day_before:
        counting = apply_stored_overrides(store, result, PROFILE, day_before)
        overridden = counting.scores.set_index("account_id")["override_id"]
        assert overridden.notna().tolist() == [a == account for a in "abc"]
