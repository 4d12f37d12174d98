"""Churn predictions per account: train on the store's history, predict, store.

:func:`predict_churn` trains a churn model on observation dates spaced before the
as-of date D and predicts, for every account active at the end of D, the probability
that it churns within ``horizon_days`` after D. The newest observation date is
``D - horizon_days``, so every training label is known by D. Earlier dates follow
``spacing_days`` apart.

The interval of each probability is a percentile interval over ``bootstraps`` refits
of the same model. Each refit learns from the training rows resampled with replacement
within each label, so it contains as many churned and retained rows as the training
set. The interval shows how much the fitted model varies with the training
sample. It is not a range for the outcome itself, which is churn or no churn.
Resampling uses ``numpy.random.default_rng(seed)``, so a run is repeatable.

:func:`store_predictions` writes a run to the ``predictions`` and
``prediction_drivers`` tables in one transaction. :func:`latest_predictions` and
:func:`account_prediction` read each account's newest run back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from healthscore.exceptions import ConfigError, InputDataError
from healthscore.history import stored_band_names
from healthscore.predict.models import ChurnModel, fit_boosted, fit_logistic
from healthscore.predict.survival import (
    BandSurvival,
    band_survival,
    check_observed_from,
    tenure_durations,
)
from healthscore.predict.training import (
    TrainingSet,
    build_training_set,
    features_as_of,
)
from healthscore.scoring import HealthProfile, parse_profile
from healthscore.store import TABLES, Store

__all__ = [
    "DEFAULT_BOOTSTRAPS",
    "DEFAULT_HORIZON_DAYS",
    "DEFAULT_INTERVAL_LEVEL",
    "DEFAULT_OBSERVATIONS",
    "DEFAULT_SPACING_DAYS",
    "DEFAULT_TOP_DRIVERS",
    "MIN_BOOTSTRAPS",
    "MODELS",
    "PredictionRun",
    "account_prediction",
    "latest_predictions",
    "observation_dates",
    "predict_churn",
    "store_predictions",
    "stored_band_survival",
    "stored_profile",
    "stored_profile_metrics",
]

logger = logging.getLogger(__name__)

DEFAULT_HORIZON_DAYS = 90
DEFAULT_OBSERVATIONS = 6
DEFAULT_SPACING_DAYS = 30
DEFAULT_BOOTSTRAPS = 20
#: Minimum number of refits behind an interval. The 5th and 95th percentiles of
#: fewer draws are little more than the extreme refits, and with one refit the
#: interval is a single point that can exclude the estimate.
MIN_BOOTSTRAPS = 10
DEFAULT_INTERVAL_LEVEL = 0.9
DEFAULT_TOP_DRIVERS = 3

#: Model names and the functions that fit them on a training set.
MODELS: dict[str, Callable[[TrainingSet], ChurnModel]] = {
    "logistic": fit_logistic,
    "boosted": fit_boosted,
}

DRIVER_COLUMNS = [
    "account_id",
    "rank",
    "feature",
    "contribution",
    "value",
    "text_value",
]


@dataclass(frozen=True)
class PredictionRun:
    """Churn probabilities of the active accounts as of a date, with drivers.

    Attributes
    ----------
    run_id
        Identifier of the run in the store.
    as_of
        The date the features are computed as of.
    horizon_days
        The probability is of a churn within this many days after ``as_of``.
    model
        Name of the model, a key of :data:`MODELS`.
    predictions
        One row per account: ``account_id``, ``probability``, ``low`` and
        ``high``, highest probability first. ``low`` and ``high`` are NaN without
        bootstrap refits.
    drivers
        ``account_id``, ``rank`` (1 is the strongest), ``feature`` (a metric
        name), ``contribution`` (log-odds points towards churn, from
        ``ChurnModel.drivers``) and the metric's ``value``, or its
        ``text_value`` for a text metric.
    interval_level
        Coverage of the percentile interval, such as 0.9.
    bootstraps
        Number of refits behind the interval.
    observation_dates
        The dates the model was trained on.
    training_rows
        Rows of the training set.
    training_churned
        Rows of the training set labelled as churned.
    computed_at
        When the run was computed, in UTC.
    segments
        The segments the model was trained on and predicted for, or ``None``
        for every account.
    dated_churn
        False when churned accounts have no ``churned_at``, so the model learned
        the recorded churn flag and the probability is not of a churn within
        ``horizon_days``.
    """

    run_id: str
    as_of: dt.date
    horizon_days: int
    model: str
    predictions: pd.DataFrame
    drivers: pd.DataFrame
    interval_level: float
    bootstraps: int
    observation_dates: tuple[dt.date, ...]
    training_rows: int
    training_churned: int
    computed_at: dt.datetime
    segments: tuple[str, ...] | None = None
    dated_churn: bool = True


def observation_dates(
    as_of: dt.date,
    horizon_days: int,
    *,
    count: int = DEFAULT_OBSERVATIONS,
    spacing_days: int = DEFAULT_SPACING_DAYS,
) -> tuple[dt.date, ...]:
    """Return the observation dates of a training set, earliest first.

    The newest date is ``horizon_days`` before ``as_of``, so every label is known
    by ``as_of``, and the ``count`` dates are ``spacing_days`` apart.

    Raises
    ------
    ConfigError
        If ``count``, ``spacing_days`` or ``horizon_days`` is below 1.
    """
    for name, value in [
        ("count", count),
        ("spacing_days", spacing_days),
        ("horizon_days", horizon_days),
    ]:
        if value < 1:
            raise ConfigError(
                f"{name} {value!r} is invalid; expected a whole number of at least 1.",
                field=name,
            )
    newest = as_of - dt.timedelta(days=horizon_days)
    steps = range(count - 1, -1, -1)
    return tuple(newest - dt.timedelta(days=spacing_days * step) for step in steps)


def predict_churn(
    store: Store,
    as_of: dt.date,
    feature_names: Sequence[str],
    *,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    model: str = "logistic",
    observations: int = DEFAULT_OBSERVATIONS,
    spacing_days: int = DEFAULT_SPACING_DAYS,
    bootstraps: int = DEFAULT_BOOTSTRAPS,
    interval_level: float = DEFAULT_INTERVAL_LEVEL,
    top: int = DEFAULT_TOP_DRIVERS,
    seed: int = 0,
    segments: Sequence[str] | None = None,
) -> PredictionRun:
    """Train a churn model on the store's history and predict for active accounts.

    Parameters
    ----------
    store
        The store to read. Nothing is written; see :func:`store_predictions`.
    as_of
        Predict for the accounts active at the end of this day, with features as
        of it.
    feature_names
        Metric names (and ``metric=value`` indicators) to use as features.
    horizon_days
        The probability is of a churn within this many days after ``as_of``.
    model
        ``"logistic"`` or ``"boosted"``.
    observations, spacing_days
        Number of observation dates and days between them, see
        :func:`observation_dates`. A store whose churned accounts have no
        ``churned_at`` (such as IBM's Telco table) is trained on ``as_of`` alone,
        because those churns cannot be placed in time.
    bootstraps
        Refits behind the interval: 0 gives no interval, otherwise at least
        :data:`MIN_BOOTSTRAPS`.
    interval_level
        Coverage of the interval, between 0 and 1.
    top
        Drivers kept per account.
    seed
        Seed of the bootstrap resampling.
    segments
        Train on and predict for only the accounts of these segments. ``None``
        or empty uses every account.

    Returns
    -------
    PredictionRun
        The predictions and drivers of every active account.

    Raises
    ------
    ConfigError
        If an option is invalid.
    InputDataError
        If the training set has no rows, or only one label, or no account is
        active as of ``as_of``.
    """
    fit = _model_function(model)
    _check_interval(bootstraps, interval_level)
    scope = tuple(dict.fromkeys(segments)) if segments else None
    dated = not _has_undated_churn(store, scope)
    dates = _training_dates(as_of, horizon_days, observations, spacing_days, dated)
    training = build_training_set(
        store, feature_names, dates, horizon_days, segments=scope
    )
    _check_training(training, dates)
    fitted = fit(training)

    features = _active_features(store, training.feature_names, as_of, scope)
    probability = np.asarray(fitted.predict_proba(_matrix(features, training)))
    low, high = _bootstrap_interval(
        training, fit, _matrix(features, training), bootstraps, interval_level, seed
    )
    predictions = pd.DataFrame(
        {
            "account_id": features["account_id"].to_numpy(dtype=object),
            "probability": probability,
            "low": low,
            "high": high,
        }
    )
    drivers = _drivers(fitted, features, training, top)
    return PredictionRun(
        run_id=uuid.uuid4().hex,
        as_of=as_of,
        horizon_days=horizon_days,
        model=model,
        predictions=_sorted(predictions),
        drivers=drivers,
        interval_level=interval_level,
        bootstraps=bootstraps,
        observation_dates=dates,
        training_rows=len(training.rows),
        training_churned=int(training.labels().sum()),
        computed_at=dt.datetime.now(dt.UTC),
        segments=scope,
        dated_churn=dated,
    )


def _model_function(model: str) -> Callable[[TrainingSet], ChurnModel]:
    if model not in MODELS:
        raise ConfigError(
            f"model {model!r} is unknown; expected one of {sorted(MODELS)}.",
            field="model",
        )
    return MODELS[model]


def _check_interval(bootstraps: int, level: float) -> None:
    if bootstraps != 0 and bootstraps < MIN_BOOTSTRAPS:
        raise ConfigError(
            f"bootstraps {bootstraps!r} is invalid; pass 0 for no interval or at "
            f"least {MIN_BOOTSTRAPS} refits, such as {DEFAULT_BOOTSTRAPS}.",
            field="bootstraps",
        )
    if not 0 < level < 1:
        raise ConfigError(
            f"interval_level {level!r} is invalid; expected a share between 0 and 1 "
            "such as 0.9.",
            field="interval_level",
        )


def _training_dates(
    as_of: dt.date, horizon_days: int, count: int, spacing_days: int, dated: bool
) -> tuple[dt.date, ...]:
    dates = observation_dates(
        as_of, horizon_days, count=count, spacing_days=spacing_days
    )
    if not dated:
        logger.warning(
            "churned accounts without churned_at: training on %s alone, with each "
            "account's recorded churn as its label",
            as_of,
        )
        return (as_of,)
    return dates


def _has_undated_churn(store: Store, segments: Sequence[str] | None) -> bool:
    return _undated_churn_count(store, segments) > 0


def _undated_churn_count(store: Store, segments: Sequence[str] | None) -> int:
    """Count the churned accounts without ``churned_at`` in the segments."""
    accounts = _accounts_in(store, segments)
    undated = accounts.filter(accounts.churned & accounts.churned_at.isnull())
    return int(undated.count().execute())


def _accounts_in(store: Store, segments: Sequence[str] | None) -> ir.Table:
    accounts = store.table("accounts")
    if segments:
        accounts = accounts.filter(accounts.segment.isin(list(segments)))
    return accounts


def _check_training(training: TrainingSet, dates: Sequence[dt.date]) -> None:
    labels = training.labels()
    if len(labels) == 0 or labels.all() or not labels.any():
        churned = int(labels.sum())
        raise InputDataError(
            f"the training set on {[d.isoformat() for d in dates]} has {len(labels)} "
            f"rows of which {churned} churned; expected both churned and retained "
            "accounts. Pass an --as-of date with more history before it, or a "
            "shorter --horizon-days."
        )


def _active_features(
    store: Store,
    feature_names: Sequence[str],
    as_of: dt.date,
    segments: Sequence[str] | None,
) -> pd.DataFrame:
    """Compute the features of the accounts active at the end of ``as_of``."""
    features = features_as_of(store, feature_names, as_of, segments=segments)
    active = features[features["account_id"].isin(_active_ids(store, as_of))]
    if active.empty:
        raise InputDataError(
            f"no account is active as of {as_of}, so there is nothing to predict. "
            "Pass an --as-of date on which accounts had started and not churned."
        )
    return active.reset_index(drop=True)


def _active_ids(store: Store, as_of: dt.date) -> set[str]:
    end = pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)
    accounts = store.table("accounts")
    started = accounts.created_at.isnull() | (accounts.created_at < end)
    churned = accounts.churned_at.notnull() & (accounts.churned_at < end)
    undated = accounts.churned.fill_null(False) & accounts.churned_at.isnull()
    active = accounts.filter(started & ~churned & ~undated).select("account_id")
    return set(active.to_pyarrow().column("account_id").to_pylist())


def _matrix(features: pd.DataFrame, training: TrainingSet) -> pd.DataFrame:
    return features[list(training.feature_names)]


def _bootstrap_interval(
    training: TrainingSet,
    fit: Callable[[TrainingSet], ChurnModel],
    matrix: pd.DataFrame,
    bootstraps: int,
    level: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the percentile interval of the probabilities over bootstrap refits."""
    if bootstraps == 0:
        empty = np.full(len(matrix), np.nan)
        return empty, empty.copy()

    rng = np.random.default_rng(seed)
    labels = training.labels()
    strata = [np.flatnonzero(labels), np.flatnonzero(~labels)]
    draws = np.empty((bootstraps, len(matrix)))
    for index in range(bootstraps):
        sample = np.concatenate([rng.choice(rows, size=len(rows)) for rows in strata])
        refit = fit(training.take(np.sort(sample)))
        draws[index] = refit.predict_proba(matrix)

    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail], axis=0)
    return low, high


def _drivers(
    fitted: ChurnModel, features: pd.DataFrame, training: TrainingSet, top: int
) -> pd.DataFrame:
    """List each account's top drivers with the metric's value as of the run.

    ``ChurnModel.drivers`` names a text metric once for all its indicator columns,
    so its value is the text of the indicator that is 1, in ``text_value``.
    """
    if top < 1:
        return pd.DataFrame(columns=DRIVER_COLUMNS)
    matrix = _matrix(features, training)
    long = fitted.drivers(matrix, top=top)
    rows = long["row"].to_numpy(dtype=np.int64)
    names = long["feature"].astype(str).to_numpy(dtype=object)
    numbers, texts = _metric_values(matrix, rows, names)
    return pd.DataFrame(
        {
            "account_id": features["account_id"].to_numpy(dtype=object)[rows],
            "rank": long["rank"].to_numpy(dtype=np.int64),
            "feature": names,
            "contribution": long["contribution"].to_numpy(dtype=np.float64),
            "value": numbers,
            "text_value": texts,
        },
        columns=DRIVER_COLUMNS,
    )


def _metric_values(
    matrix: pd.DataFrame, rows: np.ndarray, metrics: np.ndarray
) -> tuple[np.ndarray, list[str | None]]:
    """Return each (row, metric) pair's number, or its text from the indicators."""
    values = matrix.to_numpy(dtype=np.float64, na_value=np.nan)
    numbers = np.full(len(rows), np.nan)
    texts: list[str | None] = [None] * len(rows)
    positions = {str(name): index for index, name in enumerate(matrix.columns)}
    for metric in set(metrics):
        chosen = np.flatnonzero(metrics == metric)
        if metric in positions:
            numbers[chosen] = values[rows[chosen], positions[metric]]
            continue
        for name, index in positions.items():
            if not name.startswith(f"{metric}="):
                continue
            text = name[len(metric) + 1 :]
            for position in chosen[values[rows[chosen], index] == 1.0]:
                texts[position] = text
    return numbers, texts


def _sorted(predictions: pd.DataFrame) -> pd.DataFrame:
    ordered = predictions.sort_values(
        ["probability", "account_id"], ascending=[False, True], kind="mergesort"
    )
    return ordered.reset_index(drop=True)


def store_predictions(store: Store, run: PredictionRun) -> None:
    """Write a run to the ``predictions`` and ``prediction_drivers`` tables.

    Both tables are written in one transaction, so a failed write leaves
    neither.
    """
    count = len(run.predictions)
    predictions = pa.table(
        {
            "run_id": [run.run_id] * count,
            "as_of": [run.as_of] * count,
            "account_id": run.predictions["account_id"].tolist(),
            "probability": run.predictions["probability"].to_numpy(),
            "low": run.predictions["low"].to_numpy(),
            "high": run.predictions["high"].to_numpy(),
            "interval_level": [run.interval_level if run.bootstraps else None] * count,
            "horizon_days": [run.horizon_days] * count,
            "model": [run.model] * count,
            "computed_at": pa.array(
                [run.computed_at] * count, pa.timestamp("us", "UTC")
            ),
        }
    )
    drivers = pa.Table.from_pandas(
        run.drivers.assign(run_id=run.run_id), preserve_index=False
    )
    with store.transaction():
        store.insert("predictions", predictions)
        store.insert("prediction_drivers", drivers)
    logger.info("stored prediction run %s for %d accounts", run.run_id, count)


def latest_predictions(
    store: Store, account_ids: Sequence[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read each account's newest stored prediction and its drivers.

    Parameters
    ----------
    store
        The store to read. A store without the prediction tables, such as a Spark
        store copied before they existed, reads as having no predictions.
    account_ids
        Only these accounts; by default every account with a prediction.

    Returns
    -------
    tuple of pandas.DataFrame
        The ``predictions`` rows, one per account sorted by ``account_id``, and
        the ``prediction_drivers`` rows of those runs sorted by account and rank.
    """
    if not {"predictions", "prediction_drivers"} <= set(store.backend.list_tables()):
        empty_drivers = TABLES["prediction_drivers"].to_pyarrow().empty_table()
        return _empty_predictions(), empty_drivers.to_pandas()
    table = store.table("predictions")
    if account_ids is not None:
        table = table.filter(table.account_id.isin(list(account_ids)))
    newest = _newest_per_account(table)
    predictions = newest.order_by("account_id").to_pandas()
    predictions["as_of"] = pd.to_datetime(predictions["as_of"]).dt.date

    drivers = store.table("prediction_drivers")
    runs = newest.select("run_id", "account_id")
    chosen = drivers.semi_join(runs, ["run_id", "account_id"])
    driver_rows = chosen.order_by(["account_id", "rank"]).to_pandas()
    return predictions, driver_rows


def _newest_per_account(table: ir.Table) -> ir.Table:
    """Keep each account's row of the newest as-of date, computed last."""
    order = ibis.row_number().over(
        group_by=table.account_id,
        order_by=[table.as_of.desc(), table.computed_at.desc()],
    )
    return table.mutate(_rank=order).filter(ibis._["_rank"] == 0).drop("_rank")


def _empty_predictions() -> pd.DataFrame:
    return TABLES["predictions"].to_pyarrow().empty_table().to_pandas()


def account_prediction(
    store: Store, account_id: str
) -> tuple[dict[str, Any] | None, pd.DataFrame]:
    """Read one account's newest stored prediction and its drivers.

    Returns
    -------
    tuple
        The ``predictions`` row as a dict, or ``None`` when the account has no
        stored prediction, and its drivers sorted by rank.
    """
    predictions, drivers = latest_predictions(store, [account_id])
    if predictions.empty:
        return None, drivers
    row = {str(column): value for column, value in predictions.iloc[0].items()}
    return row, drivers


def stored_band_survival(
    store: Store,
    as_of: dt.date,
    *,
    tenure_metric: str | None = None,
    observed_from: dt.date | None = None,
    horizon_months: float | None = None,
    segments: Sequence[str] | None = None,
) -> BandSurvival:
    """Fit time-to-churn curves per band from the store.

    Each account's band is that of its newest stored score on or before
    ``as_of``. Durations come from :func:`tenure_durations`, with
    ``observed_from`` as its first observed day. With ``tenure_metric`` they come
    from that number attribute in months instead (such as Telco's ``tenure``),
    with the ``churned`` flag as the event. Without it, churned accounts that
    have no ``churned_at`` are left out and counted in
    ``BandSurvival.undated_churned``. With ``segments``, only accounts of
    those segments are counted.

    Raises
    ------
    ConfigError
        If ``observed_from`` is after ``as_of``.
    InputDataError
        If no account has both a duration and a band.
    """
    check_observed_from(observed_from, as_of)
    bands = _bands_as_of(store, as_of)
    if tenure_metric is None:
        accounts = _accounts_in(store, segments).select(
            "account_id", "created_at", "churned", "churned_at"
        )
        frame = accounts.to_pandas()
        found = tenure_durations(frame, as_of, observed_from=observed_from)
        durations = found.durations
        undated = int((frame["churned"].eq(True) & frame["churned_at"].isna()).sum())
    else:
        durations = _tenure_attribute(store, tenure_metric, segments)
        undated = 0
    try:
        result = band_survival(
            durations,
            bands,
            horizon_months=horizon_months,
            band_order=_band_order(store),
        )
    except InputDataError as error:
        if not undated:
            raise
        raise InputDataError(
            f"{error} {undated:,} churned accounts have no churned_at. Pass "
            "--tenure-metric with an account column that holds months of tenure, "
            "such as tenure."
        ) from error
    return dataclasses.replace(result, undated_churned=undated)


def _bands_as_of(store: Store, as_of: dt.date) -> pd.DataFrame:
    """Read the band of each account's newest score on or before ``as_of``."""
    scores = store.table("scores")
    scores = scores.filter(scores.as_of <= as_of)
    newest = _newest_per_account(scores).select("account_id", "band")
    return newest.to_pandas()


def _tenure_attribute(
    store: Store, name: str, segments: Sequence[str] | None
) -> pd.DataFrame:
    """Read durations in months from a number attribute, with the churned flag."""
    attributes = store.table("account_attributes")
    tenure = attributes.filter(
        (attributes.name == name) & attributes.number_value.notnull()
    ).select("account_id", months=attributes.number_value)
    accounts = _accounts_in(store, segments)
    flags = accounts.filter(accounts.churned.notnull()).select("account_id", "churned")
    frame = tenure.inner_join(flags, "account_id").to_pandas()
    if frame.empty:
        raise InputDataError(
            f"no account has a number attribute {name!r} and a churned flag. Pass "
            "--tenure-metric with the name of an ingested account column that holds "
            "months, such as tenure."
        )
    frame["churned"] = frame["churned"].astype(bool)
    return frame


def stored_profile_metrics(store: Store) -> tuple[str, ...] | None:
    """Return the metrics of the profile of the newest stored score, if any."""
    profile = stored_profile(store)
    return None if profile is None else profile.metrics


def stored_profile(store: Store) -> HealthProfile | None:
    """Read the profile of the newest stored score, or None without scores."""
    scores = store.table("scores")
    newest = scores.order_by(scores.computed_at.desc()).limit(1).select("profile_hash")
    profiles = store.table("profiles")
    text = profiles.semi_join(newest, "profile_hash").select("text").limit(1)
    rows = text.to_pyarrow().column("text").to_pylist()
    if not rows:
        return None
    return parse_profile(rows[0])


def _band_order(store: Store) -> list[str]:
    return list(stored_band_names(store))
