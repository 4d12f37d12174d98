"""The ``learned`` key: where a learned profile's training labels end."""

import datetime as dt
import textwrap

import pytest

from healthscore.exceptions import ProfileError
from healthscore.predict import fit_logistic, learned_profile
from healthscore.predict.validation import (
    ALL_ACCOUNTS,
    TIME_HOLDOUT,
    Split,
    training_overlap_warnings,
)
from healthscore.scoring import parse_profile
from healthscore.scoring.profile import TrainingLabels
from tests.predict.test_models import synthetic_training

DATES = (dt.date(2025, 1, 31), dt.date(2024, 11, 30))

PROFILE = textwrap.dedent(
    """\
    name: older
    components:
      - name: usage
        weight: 1
        measures:
          - metric: active_days_30d
            linear: {worst: 0, best: 20}
    """
)

# Observed on 2024-06-30 with a 90-day horizon, so churn up to 2024-09-28 counts.
LEARNED_PROFILE = PROFILE + textwrap.dedent(
    """\
    learned:
      observation_dates: [2024-06-30]
      horizon_days: 90
      labels_end: 2024-09-28
    """
)


def test_learned_profile_records_labels():
    training = synthetic_training(n=400, dates=DATES)

    text = learned_profile(fit_logistic(training, calibration=None), training)
    labels = parse_profile(text).learned

    # The latest observation date 2025-01-31 plus the 30-day horizon.
    assert labels == TrainingLabels(
        observation_dates=(dt.date(2024, 11, 30), dt.date(2025, 1, 31)),
        horizon_days=30,
        labels_end=dt.date(2025, 3, 2),
    )
    assert "labels_end: 2025-03-02" in text


def test_profile_without_learned_key():
    profile = parse_profile(PROFILE)

    assert profile.learned is None


def test_learned_key_keeps_hash():
    profile = parse_profile(LEARNED_PROFILE)

    assert profile.learned.labels_end == dt.date(2024, 9, 28)
    assert profile.hash == parse_profile(PROFILE).hash


@pytest.mark.parametrize(
    ("block", "field", "message"),
    [
        (
            "learned:\n  observation_dates: [2024-06-30]\n  horizon_days: 90\n"
            "  labels_end: 2024-09-30\n",
            "learned.labels_end",
            "expected 2024-09-28, the latest observation date plus horizon_days",
        ),
        (
            "learned:\n  observation_dates: [June]\n  horizon_days: 90\n"
            "  labels_end: 2024-09-28\n",
            "learned.observation_dates[0]",
            "expected a date; got 'June'",
        ),
        (
            "learned:\n  observation_dates: [2024-06-30]\n  horizon_days: 0\n"
            "  labels_end: 2024-06-30\n",
            "learned.horizon_days",
            "at least 1; got 0",
        ),
        (
            "learned:\n  observation_dates: [2024-06-30]\n  horizon_days: 90\n",
            "learned.labels_end",
            "missing required key 'labels_end'",
        ),
    ],
)
def test_learned_key_invalid(block, field, message):
    with pytest.raises(ProfileError) as caught:
        parse_profile(PROFILE + block, path="p.yaml")

    assert caught.value.field == field
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"p.yaml: {field}: ")


def test_overlap_warning_names_dates():
    profile = parse_profile(LEARNED_PROFILE)
    holdout = Split(TIME_HOLDOUT, "", as_of="2024-09-01")

    warnings = training_overlap_warnings(profile, holdout)

    assert len(warnings) == 1
    assert "'older' was fitted on churn labels up to 2024-09-28" in warnings[0]
    assert "--as-of 2024-09-01" in warnings[0]
    # 2024-09-01 minus the 90-day horizon.
    assert "every --as-of on or before 2024-06-03" in warnings[0]


def test_overlap_warning_boundaries():
    profile = parse_profile(LEARNED_PROFILE)

    # Churn on 2024-09-28 counts in the labels, so only a hold-out that starts
    # after that day is free of them.
    on_end = Split(TIME_HOLDOUT, "", as_of="2024-09-28")
    day_before = Split(TIME_HOLDOUT, "", as_of="2024-09-27")
    every_account = Split(ALL_ACCOUNTS, "", as_of="2024-09-01")
    assert training_overlap_warnings(profile, on_end) == []
    assert len(training_overlap_warnings(profile, day_before)) == 1
    assert training_overlap_warnings(profile, every_account) == []
    assert training_overlap_warnings(parse_profile(PROFILE), day_before) == []
