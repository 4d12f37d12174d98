"""Churn prediction: training sets, learned models and learned profiles.

The names below are loaded on first use, so that commands which only read stored
predictions, such as ``explain`` and ``export``, do not import scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from healthscore.predict.learned import (
        cross_validated_profile_risk,
        learned_profile,
        profile_risk,
    )
    from healthscore.predict.models import (
        ChurnModel,
        cross_validated_predictions,
        fit_boosted,
        fit_ensemble,
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
    from healthscore.predict.validation import expected_calibration_error

_HOMES = {
    "cross_validated_profile_risk": "learned",
    "learned_profile": "learned",
    "profile_risk": "learned",
    "ChurnModel": "models",
    "cross_validated_predictions": "models",
    "expected_calibration_error": "validation",
    "fit_boosted": "models",
    "fit_ensemble": "models",
    "fit_logistic": "models",
    "fold_splits": "models",
    "TrainingSet": "training",
    "build_training_set": "training",
    "churn_labels": "training",
    "features_as_of": "training",
    "split_feature_name": "training",
}

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
    "fit_ensemble",
    "fit_logistic",
    "fold_splits",
    "learned_profile",
    "profile_risk",
    "split_feature_name",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
