"""Turn a fitted logistic churn model into a health profile YAML.

Each metric becomes one measure whose points fall as the model's churn risk rises:

- a number metric becomes a ``linear`` measure from ``worst`` to ``best``, the 5th
  and 95th percentiles of its training values, ordered by the sign of its
  coefficient;
- a text metric, whose indicators the model weighed one by one, becomes a
  ``category`` measure: the value with the lowest risk earns 100 points, the highest
  0, and the others lie in between in proportion to their coefficients. A value
  without an indicator of its own gets ``other`` points at risk 0, the baseline.

A measure's weight is its swing: the log-odds change the model assigns between the
measure's 0-point and 100-point ends. With these weights the score is
``c - k * (model log-odds)``, with constants c and k > 0, for every account whose
values lie within the ranges and are present. So the profile ranks such accounts
exactly as the model does. Values beyond the range are clamped, and a missing value
drops out of the score with the other weights renormalised, while the model adds its
missing-indicator term instead. For such accounts the two rankings can differ.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from healthscore.exceptions import ConfigError
from healthscore.metrics import compute_metrics
from healthscore.predict.models import ChurnModel, fit_logistic, fold_splits
from healthscore.predict.training import TrainingSet, split_feature_name
from healthscore.scoring import (
    DEFAULT_BANDS,
    HealthProfile,
    load_profile,
    parse_profile,
    score_accounts,
)
from healthscore.scoring.profile import TrainingLabels

if TYPE_CHECKING:
    from healthscore.store import Store

__all__ = ["cross_validated_profile_risk", "learned_profile", "profile_risk"]

logger = logging.getLogger(__name__)

#: Percentiles of the training values that become a linear measure's ends.
RANGE_PERCENTILES = (5.0, 95.0)

#: Significant digits kept for weights, ends and points in the YAML.
DIGITS = 6

#: Coverage floor of a learned profile without a base profile.
DEFAULT_MIN_COVERAGE = 0.5

#: Component that contains measures whose metric the base profile does not use.
LEARNED_COMPONENT = "learned"


def learned_profile(
    model: ChurnModel,
    training: TrainingSet,
    *,
    base: HealthProfile | str | Path | None = None,
    name: str = "learned",
) -> str:
    """Write a health profile whose weights come from a logistic churn model.

    Parameters
    ----------
    model
        A model from :func:`healthscore.predict.fit_logistic`.
    training
        The training set the model was fitted on; its values set the ranges.
    base
        A profile (or its YAML path) to take the description, ``applies_to``,
        ``min_coverage``, bands and component grouping from. A metric the base
        uses goes into the same component; other metrics go into a component
        named ``learned``. None gives one ``learned`` component, default bands
        and a coverage floor of 0.5.
    name
        The profile name.

    Returns
    -------
    str
        Profile YAML that :func:`healthscore.scoring.load_profile` accepts. Its
        ``learned`` mapping records the observation dates, the horizon and
        ``labels_end``, the last day whose churn counts in the labels, so that
        `healthscore validate` can detect a hold-out that overlaps them.

    Raises
    ------
    ConfigError
        If the model is not logistic, its features differ from the training
        set's, or every coefficient is 0.
    """
    if model.feature_names != training.feature_names:
        raise ConfigError(
            "the model's features differ from the training set's; pass the training "
            "set the model was fitted on.",
            field="training",
        )
    base_profile = load_profile(base) if isinstance(base, str | Path) else base
    coefficients = model.coefficients()
    measures = _measures(coefficients, training.features())
    if not measures:
        raise ConfigError(
            "every coefficient of the model is 0, so no measure has a weight. Fit "
            "with more data, weaker regularisation (larger C) or fewer sign "
            "constraints.",
            field="model",
        )

    document = _document(name, measures, base_profile, model)
    labels = TrainingLabels.from_observations(
        training.observation_dates(), training.horizon_days
    )
    document["learned"] = labels.to_dict()
    text = _header(model, training) + yaml.safe_dump(
        document, sort_keys=False, allow_unicode=True, width=88
    )
    parse_profile(text)
    logger.info("learned profile %r with %d measures", name, len(measures))
    return text


def _measures(coefficients: pd.DataFrame, features: pd.DataFrame) -> list[dict]:
    """Build one measure mapping per metric, each with its swing as weight."""
    by_metric: dict[str, list[str]] = {}
    for feature in coefficients.index:
        by_metric.setdefault(split_feature_name(feature)[0], []).append(feature)

    measures = []
    for metric, names in by_metric.items():
        if split_feature_name(names[0])[1] is None:
            measure = _linear_measure(
                metric, coefficients.loc[metric], features[metric]
            )
        else:
            measure = _category_measure(metric, coefficients.loc[names])
        if measure is not None:
            measures.append(measure)
    return measures


def _linear_measure(
    metric: str, coefficient: pd.Series, values: pd.Series
) -> dict[str, Any] | None:
    per_unit = float(coefficient["coef_per_unit"])
    present = values.dropna().to_numpy(dtype=np.float64)
    if per_unit == 0.0 or len(present) == 0:
        return None
    low, high = np.percentile(present, RANGE_PERCENTILES)
    if low == high:
        low, high = present.min(), present.max()
    if low == high:
        return None

    worst, best = (high, low) if per_unit > 0 else (low, high)
    return {
        "metric": metric,
        "weight": _round(abs(per_unit) * (high - low)),
        "linear": {"worst": _round(worst), "best": _round(best)},
    }


def _category_measure(metric: str, coefficients: pd.DataFrame) -> dict[str, Any] | None:
    risks = {
        split_feature_name(feature)[1]: float(row["coef_per_unit"])
        for feature, row in coefficients.iterrows()
    }
    # A value without an indicator of its own has the indicators' baseline risk 0.
    lowest = min(0.0, *risks.values())
    highest = max(0.0, *risks.values())
    swing = highest - lowest
    if swing == 0.0:
        return None
    points = {
        value: _round(100.0 * (highest - risk) / swing) for value, risk in risks.items()
    }
    other = _round(100.0 * highest / swing)
    return {
        "metric": metric,
        "weight": _round(swing),
        "category": {"points": points, "other": other},
    }


def _document(
    name: str,
    measures: list[dict],
    base: HealthProfile | None,
    model: ChurnModel,
) -> dict[str, Any]:
    """Assemble the profile mapping, grouping measures as the base profile does."""
    components = _components(measures, base)
    document: dict[str, Any] = {
        "name": name,
        "description": (
            base.description
            if base is not None
            else f"Weights learned by {model.kind} regression from churn outcomes."
        ),
    }
    if base is not None and base.applies_to_segments is not None:
        document["applies_to"] = {"segments": list(base.applies_to_segments)}
    document["min_coverage"] = (
        base.min_coverage if base is not None else DEFAULT_MIN_COVERAGE
    )
    bands = base.bands if base is not None else DEFAULT_BANDS
    document["bands"] = [{"name": band.name, "min": band.min} for band in bands]
    document["components"] = components
    return document


def _components(measures: list[dict], base: HealthProfile | None) -> list[dict]:
    """Place each measure in its base component; component weight = sum of swings."""
    home: dict[str, str] = {}
    if base is not None:
        for component, measure in base.measures:
            home.setdefault(measure.metric, component.name)

    grouped: dict[str, list[dict]] = {}
    for measure in measures:
        grouped.setdefault(home.get(measure["metric"], LEARNED_COMPONENT), [])
        grouped[home.get(measure["metric"], LEARNED_COMPONENT)].append(measure)
    return [
        {
            "name": component,
            "weight": _round(math.fsum(m["weight"] for m in items)),
            "measures": items,
        }
        for component, items in grouped.items()
    ]


def _header(model: ChurnModel, training: TrainingSet) -> str:
    labels = training.labels()
    dates = ", ".join(d.isoformat() for d in training.observation_dates()[:5])
    more = " ..." if len(training.observation_dates()) > 5 else ""
    return (
        f"# Learned by {model.kind} regression on {len(labels)} rows "
        f"({int(labels.sum())} churned within {training.horizon_days} days),\n"
        f"# observed on {dates}{more}.\n"
        "# A measure's weight is the log-odds swing of churn risk between its 0 and\n"
        "# 100 point ends; review the ranges before use. `learned` records the\n"
        "# training labels, so a hold-out check needs churn after labels_end.\n"
    )


def _round(value: float) -> float:
    """Round to DIGITS significant digits as a plain float."""
    value = float(value)
    if value == 0.0 or not math.isfinite(value):
        return value
    return float(f"{value:.{DIGITS}g}")


def profile_risk(
    store: Store, profile: HealthProfile, training: TrainingSet
) -> np.ndarray:
    """Score the training rows with a profile and return ``100 - score`` per row.

    Each row is scored on the metrics as of its observation date, so the risk can be
    compared with a model's held-out probabilities on the same rows.

    Parameters
    ----------
    store
        The store the training set was built from.
    profile
        The profile to score with.
    training
        The rows to score.

    Returns
    -------
    numpy.ndarray
        float64 risk per row of ``training.rows``; NaN where the score is Unknown.
    """
    risk = np.full(len(training.rows), np.nan)
    observed = training.rows["observed_at"]
    for date in training.observation_dates():
        positions = np.flatnonzero((observed == date).to_numpy())
        metrics = compute_metrics(store, date, (*profile.metrics, "segment"))
        scores = score_accounts(metrics, profile).scores.set_index("account_id")
        accounts = training.rows["account_id"].iloc[positions]
        risk[positions] = 100.0 - scores["score"].reindex(accounts).to_numpy()
    return risk


def cross_validated_profile_risk(
    store: Store,
    training: TrainingSet,
    *,
    folds: int = 5,
    seed: int = 0,
    time_based: bool | None = None,
    fit: Callable[[TrainingSet], ChurnModel] | None = None,
    base: HealthProfile | None = None,
) -> pd.DataFrame:
    """Score each row with a profile learned without it.

    The folds are those of :func:`healthscore.predict.cross_validated_predictions`
    with the same arguments. On each fold ``fit`` fits a logistic model on the
    training rows (by default :func:`fit_logistic` without calibration, which a
    profile does not use), :func:`learned_profile` turns it into a profile with
    ``base``, and the profile scores the test rows.

    Returns
    -------
    pandas.DataFrame
        ``row``, ``fold``, ``risk`` (``100 - score``, NaN when Unknown) and
        ``label``, sorted by ``row``.
    """
    if fit is None:
        fit = functools.partial(fit_logistic, calibration=None)
    parts = []
    splits = fold_splits(training, folds=folds, seed=seed, time_based=time_based)
    for fold, (train, test) in enumerate(splits):
        subset = training.take(train)
        text = learned_profile(fit(subset), subset, base=base, name=LEARNED_COMPONENT)
        risk = profile_risk(store, parse_profile(text), training.take(test))
        parts.append(pd.DataFrame({"row": test, "fold": fold, "risk": risk}))
    result = pd.concat(parts, ignore_index=True).sort_values("row", ignore_index=True)
    result["label"] = training.labels()[result["row"].to_numpy()]
    return result
