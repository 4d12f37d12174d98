"""Churn models: sign-constrained logistic regression and monotone boosted trees.

Both models output a calibrated probability of churn within the training set's
horizon and explain each prediction by per-feature contributions in log-odds.

Calibration is cross-fitted. The raw model is fitted on 4 of 5 stratified folds and
scores the fifth. A calibrator (Platt's sigmoid or isotonic regression) is fitted on
those out-of-fold scores, and the final raw model is refitted on all rows. So the
calibrator is never fitted on a score from a model that trained on the same row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, logit
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from healthscore.exceptions import ConfigError, InputDataError
from healthscore.predict.training import TrainingSet, split_feature_name
from healthscore.predict.validation import expected_calibration_error

__all__ = [
    "ChurnModel",
    "cross_validated_predictions",
    "expected_calibration_error",
    "fit_boosted",
    "fit_ensemble",
    "fit_logistic",
    "fold_splits",
]

logger = logging.getLogger(__name__)

Calibration = Literal["isotonic", "sigmoid"] | None
_CALIBRATIONS = ("isotonic", "sigmoid", None)

#: Folds of the cross-fit that trains the calibrator.
CALIBRATION_FOLDS = 5

#: The training churn rate is clipped to [EPSILON, 1 - EPSILON] before its log-odds
#: start the intercept.
EPSILON = 1e-6

#: Settings of the boosted model, chosen before any measurement: small trees, a slow
#: learning rate and early stopping on an internal 10 % validation split.
BOOSTED_SETTINGS: dict[str, object] = {
    "learning_rate": 0.05,
    "max_iter": 300,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 20,
    "random_state": 0,
}


#: Features with at most this many distinct training values get no log term.
LOG_TERM_MIN_VALUES = 3


class _RawModel(Protocol):
    def log_odds(self, x: np.ndarray) -> np.ndarray: ...

    def contributions(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class _LogTerms:
    """Standardised ``log1p(x - offset)`` terms of some features.

    ``offset`` is the feature's training minimum, and a value below it is raised to
    it, so the term is 0 there. Each term is standardised by its training mean and
    standard deviation like a plain feature.
    """

    columns: np.ndarray
    offsets: np.ndarray
    means: np.ndarray
    scales: np.ndarray

    def values(self, imputed: np.ndarray) -> np.ndarray:
        shifted = np.maximum(imputed[:, self.columns] - self.offsets, 0.0)
        return (np.log1p(shifted) - self.means) / self.scales


_NO_LOG_TERMS = _LogTerms(
    np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), np.ones(0)
)


@dataclass(frozen=True)
class _LinearModel:
    """Logistic regression on median-imputed, standardised features.

    A feature that had missing values in training also gets a 0/1 missing indicator
    with its own coefficient. Log-odds = intercept + sum(coef * z + missing_coef * m)
    with z = (imputed value - mean) / scale, plus ``log_coef * log term`` for the
    features in ``log_terms``. A feature's contribution includes its log term.
    """

    medians: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    coef: np.ndarray
    missing_coef: np.ndarray
    intercept: float
    log_terms: _LogTerms = _NO_LOG_TERMS
    log_coef: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def contributions(self, x: np.ndarray) -> np.ndarray:
        missing = np.isnan(x)
        imputed = np.where(missing, self.medians, x)
        z = (imputed - self.means) / self.scales
        result = z * self.coef + missing * self.missing_coef
        if len(self.log_coef):
            logs = self.log_terms.values(imputed)
            result[:, self.log_terms.columns] += logs * self.log_coef
        return result

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        return self.intercept + self.contributions(x).sum(axis=1)


@dataclass(frozen=True)
class _BoostedModel:
    """Boosted trees, explained by setting one feature at a time to its median.

    Contribution of feature j for row i = f(x_i) - f(x_i with feature j replaced by
    its training median), in log-odds. The contributions need not add up to the
    prediction, because trees model interactions.
    """

    estimator: HistGradientBoostingClassifier
    medians: np.ndarray

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        return self.estimator.decision_function(x)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        full = self.log_odds(x)
        result = np.empty_like(x)
        for j in range(x.shape[1]):
            baseline = x.copy()
            baseline[:, j] = self.medians[j]
            result[:, j] = full - self.log_odds(baseline)
        return result


@dataclass(frozen=True)
class _Calibrator:
    method: str
    isotonic: IsotonicRegression | None = None
    slope: float = 1.0
    intercept: float = 0.0

    def apply(self, log_odds: np.ndarray) -> np.ndarray:
        if self.isotonic is not None:
            return self.isotonic.predict(log_odds)
        return expit(self.slope * log_odds + self.intercept)


@dataclass
class ChurnModel:
    """A fitted churn model with calibrated probabilities and per-feature drivers.

    Attributes
    ----------
    kind
        ``"logistic"``, ``"boosted"`` or ``"ensemble"``.
    feature_names
        The feature columns the model reads, in order.
    calibration
        ``"isotonic"``, ``"sigmoid"``, None (raw model probabilities) or, for an
        ensemble, ``"members"`` (the mean of its members' calibrated
        probabilities).
    horizon_days
        The horizon of the training set's labels.
    """

    kind: str
    feature_names: tuple[str, ...]
    calibration: str | None
    horizon_days: int
    _raw: _RawModel = field(repr=False)
    _calibrator: _Calibrator | None = field(repr=False, default=None)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Predict the probability of churn within the horizon for each row.

        Parameters
        ----------
        features
            A frame with every column of :attr:`feature_names`; other columns are
            ignored and NaN means missing.

        Returns
        -------
        numpy.ndarray
            float64 probabilities, one per row.

        Raises
        ------
        ConfigError
            If a feature column is missing.
        """
        return self._probability(self._matrix(features))

    def drivers(self, features: pd.DataFrame, top: int = 3) -> pd.DataFrame:
        """List the features that push each row's churn risk up the most.

        A contribution is in log-odds points towards churn. For the logistic model
        it is ``coef * z`` plus the missing-indicator term, relative to an account
        with every feature at its training mean, plus the log term when the
        model has one. For the boosted model it is the change in log-odds when the
        feature is set to its training median. For an ensemble it is the mean of
        its members' contributions. Contributions are before calibration. The
        indicators of one text metric are summed and listed under the metric's
        name.

        Parameters
        ----------
        features
            As for :meth:`predict_proba`. When it has an ``account_id`` column, the
            result has one too.
        top
            Drivers per row, at least 1.

        Returns
        -------
        pandas.DataFrame
            Long format, ``top`` rows per input row (fewer when there are fewer
            features): ``account_id`` (when given), ``row`` (position in
            ``features``), ``rank`` (1 pushes the most), ``feature`` (the
            metric name) and ``contribution``, sorted by row then rank.
        """
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ConfigError(
                f"top must be a positive int; got {top!r}. Pass how many drivers "
                "to list per account.",
                field="top",
            )
        contributions = self._raw.contributions(self._matrix(features))
        return _long_drivers(contributions, self.feature_names, features, top)

    def coefficients(self) -> pd.DataFrame:
        """Return the logistic model's coefficients and standardisation per feature.

        Returns
        -------
        pandas.DataFrame
            Indexed by feature: ``coef`` (log-odds per standard deviation),
            ``coef_per_unit`` (log-odds per unit of the feature), ``median``,
            ``mean``, ``scale`` and ``missing_coef`` (log-odds added when the value
            is missing).

        Raises
        ------
        ConfigError
            If the model is not logistic or has log terms.
        """
        if not isinstance(self._raw, _LinearModel):
            raise ConfigError(
                f"coefficients exist only for logistic models; this model is "
                f"{self.kind!r}. Fit it with fit_logistic.",
                field="model",
            )
        raw = self._raw
        if len(raw.log_coef):
            raise ConfigError(
                "coefficients describe one linear term per feature, but this "
                f"logistic model also has log terms for {len(raw.log_coef)} "
                "features. Fit it with fit_logistic(..., log_terms=False).",
                field="model",
            )
        return pd.DataFrame(
            {
                "coef": raw.coef,
                "coef_per_unit": raw.coef / raw.scales,
                "median": raw.medians,
                "mean": raw.means,
                "scale": raw.scales,
                "missing_coef": raw.missing_coef,
            },
            index=pd.Index(self.feature_names, name="feature"),
        )

    def _probability(self, x: np.ndarray) -> np.ndarray:
        log_odds = self._raw.log_odds(x)
        if self._calibrator is None:
            return expit(log_odds)
        return np.clip(self._calibrator.apply(log_odds), 0.0, 1.0)

    def _matrix(self, features: pd.DataFrame) -> np.ndarray:
        missing = [name for name in self.feature_names if name not in features]
        if missing:
            raise ConfigError(
                f"features lack the model's columns {missing[:5]!r}; expected every "
                "name in model.feature_names. Build them with features_as_of(store, "
                "model.feature_names, as_of).",
                field="features",
            )
        frame = features[list(self.feature_names)]
        return frame.to_numpy(dtype=np.float64, na_value=np.nan)


@dataclass(frozen=True)
class _EnsembleModel:
    """The mean of its members' calibrated probabilities, as log-odds.

    The mean is clipped to [EPSILON, 1 - EPSILON] so that its log-odds are finite.
    """

    members: tuple[ChurnModel, ...]

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        probability = np.mean([member._probability(x) for member in self.members], 0)
        return logit(np.clip(probability, EPSILON, 1 - EPSILON))

    def contributions(self, x: np.ndarray) -> np.ndarray:
        parts = [member._raw.contributions(x) for member in self.members]
        return np.mean(parts, axis=0)


def fit_logistic(
    training: TrainingSet,
    *,
    signs: Mapping[str, int] | None = None,
    C: float = 1.0,
    calibration: Calibration = "sigmoid",
    log_terms: bool = False,
) -> ChurnModel:
    """Fit an L2-regularised logistic regression with optional sign constraints.

    Each feature is imputed with its training median and standardised by its
    training mean and standard deviation. A feature with missing values in training
    also gets a missing indicator. The loss is ``C * sum(log loss) + ||w||^2 / 2``
    over the feature coefficients, the same scaling as scikit-learn's
    ``LogisticRegression``, minimised by L-BFGS-B. A sign constraint is a bound on
    that feature's coefficient, so the optimum is found among the allowed
    coefficients and a coefficient the data would flip lands on 0.

    With ``log_terms``, every number feature with at least
    :data:`LOG_TERM_MIN_VALUES` distinct training values also gets the term
    ``log1p(x - training minimum)``, standardised, with the same sign constraint.
    The effect of such a feature is then ``a * x + b * log1p(x - min)``, which can
    bend: the first months of tenure can weigh more than later ones.

    Parameters
    ----------
    training
        The labelled rows.
    signs
        The allowed sign of each feature's effect on churn risk, by feature name
        or by metric name (which covers all its indicators). ``-1`` means more of
        it can only lower risk (logins), ``1`` means it can only raise risk (open
        tickets), and 0 means no constraint. Missing indicators are never constrained.
    C
        Inverse regularisation strength; larger fits the data more closely.
    calibration
        ``"sigmoid"`` (default, keeps the ranking), ``"isotonic"`` or None.
    log_terms
        Add a log term per number feature. :meth:`ChurnModel.coefficients` and
        so :func:`learned_profile` need a model without them.

    Returns
    -------
    ChurnModel
        ``kind="logistic"``.

    Raises
    ------
    InputDataError
        If the labels hold one class only.
    ConfigError
        If ``C``, ``signs``, ``calibration`` or ``log_terms`` is invalid.
    """
    _check_calibration(calibration)
    if not isinstance(log_terms, bool):
        raise ConfigError(
            f"log_terms must be True or False; got {log_terms!r}. Pass True to "
            "add a log term per number feature.",
            field="log_terms",
        )
    if isinstance(C, bool) or not isinstance(C, int | float) or not C > 0:
        raise ConfigError(
            f"C must be a positive number; got {C!r}. Pass 1.0 for the default "
            "regularisation.",
            field="C",
        )
    bounds = _sign_bounds(training.feature_names, signs, "signs")
    _check_two_classes(training)

    def fit_raw(subset: TrainingSet) -> _RawModel:
        return _fit_linear(subset, bounds, float(C), log_terms)

    return _fit_calibrated(training, "logistic", fit_raw, calibration)


def fit_boosted(
    training: TrainingSet,
    *,
    monotone: Mapping[str, int] | None = None,
    calibration: Calibration = "isotonic",
    settings: Mapping[str, object] | None = None,
) -> ChurnModel:
    """Fit gradient-boosted trees with optional monotone constraints.

    Uses scikit-learn's ``HistGradientBoostingClassifier`` with
    :data:`BOOSTED_SETTINGS`, updated by ``settings``. Missing values go to
    whichever side of each split fits best, so no imputation is needed.

    Parameters
    ----------
    training
        The labelled rows.
    monotone
        Per feature name (or metric name), the allowed direction of its effect on
        churn risk: ``-1`` decreasing, ``1`` increasing, 0 free.
    calibration
        ``"isotonic"`` (default), ``"sigmoid"`` or None.
    settings
        ``HistGradientBoostingClassifier`` parameters that replace those of
        :data:`BOOSTED_SETTINGS`, such as ``{"max_leaf_nodes": 7}``.
        ``monotonic_cst`` is set from ``monotone`` instead.

    Returns
    -------
    ChurnModel
        ``kind="boosted"``.

    Raises
    ------
    InputDataError
        If the labels hold one class only.
    ConfigError
        If ``monotone``, ``calibration`` or ``settings`` is invalid.
    """
    _check_calibration(calibration)
    parameters = _boosted_parameters(settings)
    constraints = _sign_bounds(training.feature_names, monotone, "monotone")
    cst = [_direction(bound) for bound in constraints]
    _check_two_classes(training)

    def fit_raw(subset: TrainingSet) -> _RawModel:
        x = subset.features().to_numpy(dtype=np.float64, na_value=np.nan)
        estimator = HistGradientBoostingClassifier(monotonic_cst=cst, **parameters)
        estimator.fit(x, subset.labels())
        return _BoostedModel(estimator, _nan_medians(x))

    return _fit_calibrated(training, "boosted", fit_raw, calibration)


def fit_ensemble(
    training: TrainingSet,
    *,
    signs: Mapping[str, int] | None = None,
    monotone: Mapping[str, int] | None = None,
    log_terms: bool = True,
    settings: Mapping[str, object] | None = None,
) -> ChurnModel:
    """Fit a logistic and a boosted model and average their probabilities.

    The members are ``fit_logistic(training, signs=signs, log_terms=log_terms)``
    with sigmoid calibration and ``fit_boosted(training, monotone=monotone,
    settings=settings)`` with isotonic calibration. The ensemble's probability is
    the unweighted mean of their calibrated probabilities. The equal weights and
    the members' settings are fixed, not fitted to the data. A mean of calibrated
    probabilities is not itself guaranteed to be calibrated, so check its ECE on
    held-out rows.

    Parameters
    ----------
    training
        The labelled rows.
    signs
        As for :func:`fit_logistic`, for the logistic member.
    monotone
        As for :func:`fit_boosted`, for the boosted member.
    log_terms
        As for :func:`fit_logistic`. On by default, so that the logistic member
        can bend like the trees do, but smoothly.
    settings
        As for :func:`fit_boosted`, for the boosted member.

    Returns
    -------
    ChurnModel
        ``kind="ensemble"`` and ``calibration="members"``. Its drivers are the
        mean of the members' contributions, and it has no coefficients.

    Raises
    ------
    InputDataError
        If the labels hold one class only.
    ConfigError
        If ``signs``, ``monotone``, ``log_terms`` or ``settings`` is invalid.
    """
    logistic = fit_logistic(training, signs=signs, log_terms=log_terms)
    boosted = fit_boosted(training, monotone=monotone, settings=settings)
    return ChurnModel(
        kind="ensemble",
        feature_names=training.feature_names,
        calibration="members",
        horizon_days=training.horizon_days,
        _raw=_EnsembleModel((logistic, boosted)),
    )


def cross_validated_predictions(
    training: TrainingSet,
    fit: Callable[[TrainingSet], ChurnModel],
    *,
    folds: int = 5,
    seed: int = 0,
    time_based: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Predict every row with a model fitted without it.

    With one observation date (or ``time_based=False``) the rows are split into
    ``folds`` stratified folds, shuffled with ``seed``. With several dates (or
    ``time_based=True``) each of the last ``folds`` dates is a test fold in turn.
    Its model is fitted on the rows whose label window ends by that date
    (``observed_at + horizon_days <= test date``), so no training label depends on
    what happened after the test date. Dates with no such earlier rows are not
    predicted.

    Parameters
    ----------
    training
        The labelled rows.
    fit
        Fits a model on a training set, such as ``fit_logistic`` or
        ``functools.partial(fit_boosted, monotone=...)``.
    folds
        Number of stratified folds, or of test dates for a time-based split.
    seed
        Shuffle seed of the stratified split.
    time_based
        Force the split; None chooses from the number of dates.
    progress
        Called with (folds done, folds) after each fold.

    Returns
    -------
    pandas.DataFrame
        One row per predicted training row: ``row`` (position in
        ``training.rows``), ``fold`` (0-based), ``probability`` and ``label``,
        sorted by ``row``. ``attrs["split"]`` is ``"stratified"`` or ``"time"``.

    Raises
    ------
    InputDataError
        If a split leaves no rows to predict or a fold's training rows hold one
        class.
    """
    if time_based is None:
        time_based = len(training.observation_dates()) > 1
    splits = fold_splits(training, folds=folds, seed=seed, time_based=time_based)

    parts = []
    for fold, (train, test) in enumerate(splits):
        model = fit(training.take(train))
        probability = model.predict_proba(training.take(test).features())
        parts.append(
            pd.DataFrame({"row": test, "fold": fold, "probability": probability})
        )
        if progress is not None:
            progress(fold + 1, len(splits))
    result = pd.concat(parts, ignore_index=True).sort_values("row", ignore_index=True)
    result["label"] = training.labels()[result["row"].to_numpy()]
    result.attrs["split"] = "time" if time_based else "stratified"
    logger.info(
        "predicted %d rows in %d %s folds",
        len(result),
        len(parts),
        result.attrs["split"],
    )
    return result


def fold_splits(
    training: TrainingSet,
    *,
    folds: int = 5,
    seed: int = 0,
    time_based: bool | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return the (train, test) row positions of each fold.

    The split is the one :func:`cross_validated_predictions` describes.
    """
    if time_based is None:
        time_based = len(training.observation_dates()) > 1
    if time_based:
        return _time_splits(training, folds)
    _check_folds(folds)
    _check_two_classes(training, folds)
    return _stratified_splits(training.labels(), folds, seed)


def _fit_calibrated(
    training: TrainingSet,
    kind: str,
    fit_raw: Callable[[TrainingSet], _RawModel],
    calibration: str | None,
) -> ChurnModel:
    calibrator = None
    if calibration is not None:
        calibrator = _cross_fit_calibrator(training, fit_raw, calibration)
    raw = fit_raw(training)
    return ChurnModel(
        kind=kind,
        feature_names=training.feature_names,
        calibration=calibration,
        horizon_days=training.horizon_days,
        _raw=raw,
        _calibrator=calibrator,
    )


def _cross_fit_calibrator(
    training: TrainingSet,
    fit_raw: Callable[[TrainingSet], _RawModel],
    method: str,
) -> _Calibrator:
    labels = training.labels()
    scores = np.empty(len(labels))
    for train, test in _stratified_splits(labels, CALIBRATION_FOLDS, 0):
        raw = fit_raw(training.take(train))
        x = training.take(test).features().to_numpy(dtype=np.float64, na_value=np.nan)
        scores[test] = raw.log_odds(x)

    if method == "isotonic":
        isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        isotonic.fit(scores, labels.astype(np.float64))
        return _Calibrator(method, isotonic=isotonic)
    slope, intercept = _platt(scores, labels)
    return _Calibrator(method, slope=slope, intercept=intercept)


def _platt(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Fit p = expit(a * score + b) by maximum likelihood."""
    y = labels.astype(np.float64)

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        eta = params[0] * scores + params[1]
        value = np.sum(np.logaddexp(0.0, eta) - y * eta)
        residual = expit(eta) - y
        return value, np.array([residual @ scores, residual.sum()])

    result = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(result.x[0]), float(result.x[1])


def _fit_linear(
    training: TrainingSet,
    bounds: list[tuple[float | None, float | None]],
    C: float,
    log_terms: bool = False,
) -> _LinearModel:
    x = training.features().to_numpy(dtype=np.float64, na_value=np.nan)
    y = training.labels().astype(np.float64)
    missing = np.isnan(x)
    medians = _nan_medians(x)
    imputed = np.where(missing, medians, x)
    means = imputed.mean(axis=0)
    scales = imputed.std(axis=0)
    scales[scales == 0] = 1.0
    z = (imputed - means) / scales

    logs = _NO_LOG_TERMS
    if log_terms:
        logs = _fit_log_terms(imputed, training.feature_names)
    log_bounds = [bounds[j] for j in logs.columns]

    has_missing = missing.any(axis=0)
    indicators = missing[:, has_missing].astype(np.float64)
    design = np.hstack([z, logs.values(imputed), indicators])
    free = [(None, None)] * int(has_missing.sum())
    prior = float(np.clip(y.mean(), EPSILON, 1 - EPSILON))
    all_bounds = bounds + log_bounds + free
    weights, intercept = _minimise_log_loss(design, y, all_bounds, C, logit(prior))

    n, k = x.shape[1], len(logs.columns)
    missing_coef = np.zeros(n)
    missing_coef[has_missing] = weights[n + k :]
    return _LinearModel(
        medians,
        means,
        scales,
        weights[:n],
        missing_coef,
        intercept,
        log_terms=logs,
        log_coef=weights[n : n + k],
    )


def _fit_log_terms(imputed: np.ndarray, feature_names: tuple[str, ...]) -> _LogTerms:
    """Choose the number features that get a log term and standardise the terms."""
    columns = [
        j
        for j, name in enumerate(feature_names)
        if split_feature_name(name)[1] is None
        and len(np.unique(imputed[:, j])) >= LOG_TERM_MIN_VALUES
    ]
    selected = np.asarray(columns, dtype=np.int64)
    offsets = imputed[:, selected].min(axis=0)
    raw = np.log1p(imputed[:, selected] - offsets)
    scales = raw.std(axis=0)
    scales[scales == 0] = 1.0
    return _LogTerms(selected, offsets, raw.mean(axis=0), scales)


def _boosted_parameters(settings: Mapping[str, object] | None) -> dict[str, object]:
    """Merge ``settings`` over :data:`BOOSTED_SETTINGS`, rejecting unknown names."""
    settings = dict(settings or {})
    known = set(HistGradientBoostingClassifier().get_params()) - {"monotonic_cst"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(
            f"settings names {unknown!r}, which are not HistGradientBoostingClassifier "
            f"parameters; expected names such as {sorted(BOOSTED_SETTINGS)!r}. Set "
            "monotone constraints with monotone=.",
            field="settings",
        )
    return {**BOOSTED_SETTINGS, **settings}


def _minimise_log_loss(
    design: np.ndarray,
    y: np.ndarray,
    bounds: list[tuple[float | None, float | None]],
    C: float,
    start_intercept: float,
) -> tuple[np.ndarray, float]:
    """Minimise C * log loss + L2 penalty on the weights, intercept unpenalised."""

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        weights, intercept = params[:-1], params[-1]
        eta = design @ weights + intercept
        value = C * np.sum(np.logaddexp(0.0, eta) - y * eta) + 0.5 * weights @ weights
        residual = C * (expit(eta) - y)
        gradient = np.append(design.T @ residual + weights, residual.sum())
        return value, gradient

    start = np.append(np.zeros(design.shape[1]), start_intercept)
    result = minimize(
        loss,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[*bounds, (None, None)],
        options={"maxiter": 1000},
    )
    if not result.success:
        logger.warning("logistic fit stopped before converging: %s", result.message)
    return result.x[:-1], float(result.x[-1])


def _sign_bounds(
    feature_names: tuple[str, ...], signs: Mapping[str, int] | None, option: str
) -> list[tuple[float | None, float | None]]:
    """Turn per-feature or per-metric signs into coefficient bounds."""
    signs = dict(signs or {})
    known = set(feature_names) | {name.partition("=")[0] for name in feature_names}
    for name, sign in signs.items():
        if name not in known:
            raise ConfigError(
                f"{option} names {name!r}, which is not a feature of the training "
                f"set; expected one of {sorted(known)[:10]!r}. Remove it or add the "
                "metric to the features.",
                field=option,
            )
        if sign not in (-1, 0, 1) or isinstance(sign, bool):
            raise ConfigError(
                f"{option}[{name!r}] must be -1, 0 or 1; got {sign!r}. Use -1 when "
                "more of the feature can only lower churn risk, 1 when it can only "
                "raise it.",
                field=option,
            )
    bounds: list[tuple[float | None, float | None]] = []
    for name in feature_names:
        sign = signs.get(name, signs.get(name.partition("=")[0], 0))
        bounds.append({-1: (None, 0.0), 1: (0.0, None)}.get(sign, (None, None)))
    return bounds


def _direction(bound: tuple[float | None, float | None]) -> int:
    if bound == (None, 0.0):
        return -1
    if bound == (0.0, None):
        return 1
    return 0


def _nan_medians(x: np.ndarray) -> np.ndarray:
    """Return the median of each column ignoring NaN, or 0.0 if it has no values."""
    medians = np.zeros(x.shape[1])
    for j in range(x.shape[1]):
        values = x[~np.isnan(x[:, j]), j]
        if len(values):
            medians[j] = np.median(values)
    return medians


def _check_calibration(calibration: str | None) -> None:
    if calibration not in _CALIBRATIONS:
        raise ConfigError(
            f"calibration must be 'isotonic', 'sigmoid' or None; got "
            f"{calibration!r}. Pass 'sigmoid' to keep the model's ranking.",
            field="calibration",
        )


def _check_two_classes(training: TrainingSet, minimum: int = CALIBRATION_FOLDS) -> None:
    """Raise InputDataError unless there are ``minimum`` churned and retained rows."""
    labels = training.labels()
    churned = int(labels.sum())
    retained = len(labels) - churned
    if len(labels) == 0:
        raise InputDataError(
            "the training set has no rows: no account in scope on the observation "
            "dates has a known outcome. Load accounts with a churned value (and "
            "churned_at for dated churn), or choose dates when they were customers."
        )
    if churned < minimum or retained < minimum:
        raise InputDataError(
            f"the training set has {churned} churned and {retained} retained rows; "
            f"at least {minimum} of each are needed to fit and check a model. Choose "
            "observation dates and a horizon in which more accounts churned and "
            "more stayed."
        )


def _check_folds(folds: int) -> None:
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(
            f"folds must be an int of at least 2; got {folds!r}. Pass 5 for "
            "five-fold cross-validation.",
            field="folds",
        )


def _stratified_splits(
    labels: np.ndarray, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def _time_splits(
    training: TrainingSet, folds: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    _check_folds(folds)
    observed = pd.to_datetime(pd.Series(training.rows["observed_at"]))
    horizon = pd.Timedelta(days=training.horizon_days)
    splits = []
    for date in training.observation_dates()[-folds:]:
        test_date = pd.Timestamp(date)
        train = np.flatnonzero((observed + horizon <= test_date).to_numpy())
        test = np.flatnonzero((observed == test_date).to_numpy())
        if len(train):
            splits.append((train, test))
    if not splits:
        raise InputDataError(
            f"no observation date has earlier rows whose {training.horizon_days}-day "
            "label window ends by it, so a time-based split has nothing to train on. "
            "Add earlier observation dates, spaced at least the horizon apart, or "
            "pass time_based=False."
        )
    return splits


def _long_drivers(
    contributions: np.ndarray,
    feature_names: tuple[str, ...],
    features: pd.DataFrame,
    top: int,
) -> pd.DataFrame:
    """Sum contributions per metric and keep the ``top`` largest of each row."""
    metrics = list(dict.fromkeys(split_feature_name(n)[0] for n in feature_names))
    groups = np.array([metrics.index(split_feature_name(n)[0]) for n in feature_names])
    by_metric = np.zeros((len(contributions), len(metrics)))
    for j, group in enumerate(groups):
        by_metric[:, group] += contributions[:, j]

    top = min(top, len(metrics))
    order = np.argsort(-by_metric, axis=1, kind="stable")[:, :top]
    rows = np.repeat(np.arange(len(by_metric)), top)
    picked = order.ravel()
    result = pd.DataFrame(
        {
            "row": rows,
            "rank": np.tile(np.arange(1, top + 1), len(by_metric)),
            "feature": np.asarray(metrics, dtype=object)[picked],
            "contribution": by_metric[rows, picked],
        }
    )
    if "account_id" in features:
        accounts = features["account_id"].to_numpy(dtype=object)[rows]
        result.insert(0, "account_id", accounts)
    return result
