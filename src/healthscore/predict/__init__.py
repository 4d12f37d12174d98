"""Churn prediction: training sets, learned models and learned profiles."""

from __future__ import annotations

from healthscore.predict.learned_profile import (
    cross_validated_profile_risk,
    learned_profile,
    profile_risk,
)
from healthscore.predict.models import (
    ChurnModel,
    cross_validated_predictions,
    expected_calibration_error,
    fit_boosted,
    fit_logistic,
    fold_splits,
)
from healthscore.predict.training import (
    TrainingSet,
    build_training_set,
    churn_labels,
    features_as_of,
    split_feature_name,
)

__all__ = [
    "ChurnModel",
    "TrainingSet",
    "build_training_set",
    "churn_labels",
    "cross_validated_predictions",
    "cross_validated_profile_risk",
    "expected_calibration_error",
    "features_as_of",
    "fit_boosted",
    "fit_logistic",
    "fold_splits",
    "learned_profile",
    "profile_risk",
    "split_feature_name",
]
