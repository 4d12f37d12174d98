"""Churn training sets: metrics as of observation dates, labelled by later churn.

A training row is one account on one observation date. Its features are the metrics
as of that date, from :func:`healthscore.metrics.compute_metrics`, so they use only
data up to the end of that day. Its label is True when the account churned within
the horizon after that date, else False.

A feature name is either a metric name or ``"metric=value"``. A number metric gives
one column. A text metric named alone expands to one indicator column per value seen
on any observation date, named ``"metric=value"`` in sorted order. An indicator is
1.0 when the metric equals the value, 0.0 when it has another value and NaN when it
is missing. A fitted model keeps the expanded names, so passing them back to
:func:`features_as_of` rebuilds the same columns on a new date.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from healthscore.exceptions import ConfigError, InputDataError
from healthscore.metrics import compute_metrics
from healthscore.metrics.asof import period_end

if TYPE_CHECKING:
    from healthscore.store import Store

__all__ = [
    "TrainingSet",
    "build_training_set",
    "churn_labels",
    "features_as_of",
    "split_feature_name",
]

logger = logging.getLogger(__name__)

_KEY_COLUMNS = ("account_id", "observed_at", "label")


@dataclass(frozen=True)
class TrainingSet:
    """Labelled feature rows, one per account and observation date.

    Attributes
    ----------
    rows
        Columns ``account_id``, ``observed_at`` (``datetime.date``), ``label`` (bool,
        True when the account churned within ``horizon_days`` after
        ``observed_at``), then one float64 column per feature with NaN when missing.
        Sorted by ``observed_at`` then ``account_id``, with a 0..n-1 index.
    feature_names
        The feature columns, in order, with text metrics expanded to indicators.
    horizon_days
        Days after the observation date in which a churn counts.
    """

    rows: pd.DataFrame
    feature_names: tuple[str, ...]
    horizon_days: int

    def features(self) -> pd.DataFrame:
        """Return the feature columns of :attr:`rows`."""
        return self.rows[list(self.feature_names)]

    def labels(self) -> np.ndarray:
        """Return the labels as a bool array."""
        return self.rows["label"].to_numpy(dtype=bool)

    def observation_dates(self) -> tuple[dt.date, ...]:
        """Return the distinct observation dates, earliest first."""
        return tuple(sorted(set(self.rows["observed_at"])))

    def take(self, positions: npt.ArrayLike) -> TrainingSet:
        """Return a training set of the rows at these integer positions."""
        rows = self.rows.iloc[np.asarray(positions, dtype=np.int64)]
        return TrainingSet(
            rows=rows.reset_index(drop=True),
            feature_names=self.feature_names,
            horizon_days=self.horizon_days,
        )


def split_feature_name(name: str) -> tuple[str, str | None]:
    """Split a feature name into its metric and, for an indicator, its value.

    Examples
    --------
    >>> split_feature_name("contract=Two year")
    ('contract', 'Two year')
    >>> split_feature_name("tenure")
    ('tenure', None)
    """
    metric, separator, value = name.partition("=")
    return metric, (value if separator else None)


def features_as_of(
    store: Store,
    feature_names: Iterable[str],
    as_of: dt.date,
    *,
    segments: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Compute feature columns per account from the metrics as of a date.

    Parameters
    ----------
    store
        The store to read.
    feature_names
        Metric names and ``"metric=value"`` indicators, see the module docstring.
    as_of
        The date. Only data up to the end of this day is used.
    segments
        Keep only accounts in these segments. ``None`` or empty keeps all.

    Returns
    -------
    pandas.DataFrame
        ``account_id`` then one float64 column per feature, sorted by
        ``account_id``. A text metric named alone expands to the values seen on
        this date.

    Raises
    ------
    ConfigError
        If a metric is unknown, a number metric is used as an indicator, or no
        feature is named.
    """
    names = _check_feature_names(feature_names)
    metrics = _metric_table(store, names, as_of, segments)
    columns = _expand_names(names, [metrics])
    return _encode(metrics, columns)


def churn_labels(
    store: Store,
    observed_at: dt.date,
    horizon_days: int,
    *,
    segments: Sequence[str] | None = None,
) -> pd.Series:
    """Label each account by whether it churned within a horizon after a date.

    The rule:

    - an account is labelled when it was created by the end of ``observed_at`` (or
      has no ``created_at``), had not churned by then, and its ``churned`` flag is
      known;
    - with a ``churned_at`` time, the label is True when that time falls after the
      end of ``observed_at`` and by the end of ``observed_at + horizon_days``
      (``churned_at`` in (D, D + H] by UTC day), and False when it falls later;
    - an account with ``churned_at`` on or before ``observed_at`` is left out;
    - an account with ``churned`` True and no ``churned_at`` (a dataset without
      dates, such as IBM's Telco table) is labelled True: its recorded churn is
      taken to be the outcome of the one observation period. Use such data with a
      single observation date, which :func:`build_training_set` enforces;
    - an account with ``churned`` False and no ``churned_at`` is labelled False;
    - an account with ``churned`` null is left out, because its outcome is unknown.

    Parameters
    ----------
    store
        The store whose ``accounts`` table contains the outcomes.
    observed_at
        The observation date.
    horizon_days
        Days after ``observed_at`` in which a churn counts; at least 1.
    segments
        Keep only accounts in these segments. ``None`` or empty keeps all.

    Returns
    -------
    pandas.Series
        bool labels indexed by ``account_id`` (sorted), named ``label``.

    Raises
    ------
    ConfigError
        If ``horizon_days`` is not a positive int or ``observed_at`` not a date.
    """
    _check_horizon(horizon_days)
    outcomes = _outcomes(store, segments)
    start = pd.Timestamp(period_end(observed_at))
    stop = pd.Timestamp(period_end(observed_at + dt.timedelta(days=horizon_days)))

    created = outcomes["created_at"].isna() | (outcomes["created_at"] < start)
    churned_at = outcomes["churned_at"]
    still_customer = churned_at.isna() | (churned_at >= start)
    known = outcomes["churned"].notna()
    eligible = outcomes[created & still_customer & known]

    dated = eligible["churned_at"].notna()
    in_horizon = eligible["churned_at"] < stop
    undated_churn = ~dated & eligible["churned"].astype(bool)
    label = (dated & in_horizon) | undated_churn
    return pd.Series(
        label.to_numpy(dtype=bool),
        index=pd.Index(eligible["account_id"], name="account_id"),
        name="label",
    )


def build_training_set(
    store: Store,
    feature_names: Iterable[str],
    observation_dates: Iterable[dt.date],
    horizon_days: int,
    *,
    segments: Sequence[str] | None = None,
) -> TrainingSet:
    """Build labelled feature rows for every account on every observation date.

    Features come from :func:`features_as_of` on each date and labels from
    :func:`churn_labels`; an account is a row on a date when it has both. Text
    metrics expand to the values seen on any of the dates, so every date has the
    same columns.

    Parameters
    ----------
    store
        The store to read.
    feature_names
        Metric names and ``"metric=value"`` indicators.
    observation_dates
        Dates to observe the accounts on. Repeated dates count once.
    horizon_days
        Days after each date in which a churn counts.
    segments
        Keep only accounts in these segments. ``None`` or empty keeps all.

    Returns
    -------
    TrainingSet
        The rows, sorted by observation date then account.

    Raises
    ------
    ConfigError
        If a name or date is invalid, or no date is given.
    InputDataError
        If an account has ``churned`` True without ``churned_at`` and more than one
        date is given, because its churn date cannot be placed in a horizon.
    """
    names = _check_feature_names(feature_names)
    dates = _check_dates(observation_dates)
    _check_horizon(horizon_days)

    labels = [
        churn_labels(store, date, horizon_days, segments=segments) for date in dates
    ]
    if len(dates) > 1:
        _check_dated_churn(store, segments)
    metrics = [_metric_table(store, names, date, segments) for date in dates]
    columns = _expand_names(names, metrics)

    parts = []
    for date, table, label in zip(dates, metrics, labels, strict=True):
        parts.append(_labelled_rows(_encode(table, columns), date, label))
    rows = pd.concat(parts, ignore_index=True)
    logger.info(
        "built a training set of %d rows (%d churned) on %d dates with %d features",
        len(rows),
        int(rows["label"].sum()),
        len(dates),
        len(columns),
    )
    return TrainingSet(rows=rows, feature_names=columns, horizon_days=horizon_days)


def _check_feature_names(feature_names: Iterable[str]) -> list[str]:
    if isinstance(feature_names, str):
        raise ConfigError(
            f"feature_names must be a list of metric names; got the string "
            f"{feature_names!r}. Pass [{feature_names!r}] for a single metric.",
            field="metrics",
        )
    names = list(dict.fromkeys(feature_names))
    if not names:
        raise ConfigError(
            "no features named; expected at least one metric name. Pass metric names "
            "such as ['tenure_days', 'active_days_30d'].",
            field="metrics",
        )
    return names


def _check_dates(observation_dates: Iterable[dt.date]) -> list[dt.date]:
    dates = sorted(set(observation_dates))
    if not dates:
        raise ConfigError(
            "no observation dates given; expected at least one date. Pass the dates "
            "to observe the accounts on.",
            field="observation_dates",
        )
    for date in dates:
        if not isinstance(date, dt.date) or isinstance(date, dt.datetime):
            raise ConfigError(
                f"observation date {date!r} is not a datetime.date; pass dates such "
                "as datetime.date(2025, 3, 31).",
                field="observation_dates",
            )
    return dates


def _check_horizon(horizon_days: int) -> None:
    if (
        isinstance(horizon_days, bool)
        or not isinstance(horizon_days, int | np.integer)
        or horizon_days < 1
    ):
        raise ConfigError(
            f"horizon_days must be a positive int; got {horizon_days!r}. Pass the "
            "number of days after each observation date in which a churn counts.",
            field="horizon_days",
        )


def _metric_table(
    store: Store,
    names: Sequence[str],
    as_of: dt.date,
    segments: Sequence[str] | None,
) -> pd.DataFrame:
    """Compute the metrics behind the feature names, one row per account."""
    metric_names = list(dict.fromkeys(split_feature_name(n)[0] for n in names))
    table = compute_metrics(store, as_of, metric_names, segments=segments)
    if "segment" not in metric_names:
        table = table.drop(columns="segment")
    return table


def _expand_names(names: Sequence[str], tables: Sequence[pd.DataFrame]) -> tuple:
    """Resolve metric names to feature columns, expanding text metrics."""
    columns: list[str] = []
    for name in names:
        metric, value = split_feature_name(name)
        is_number = pd.api.types.is_float_dtype(tables[0][metric].dtype)
        if value is not None and is_number:
            raise ConfigError(
                f"feature {name!r} is an indicator of {metric!r}, which is a number "
                f"metric; indicators are for text metrics. Use {metric!r} alone.",
                field="metrics",
            )
        if value is not None or is_number:
            columns.append(name)
            continue
        seen = set()
        for table in tables:
            seen.update(v for v in table[metric] if v is not None)
        columns.extend(f"{metric}={v}" for v in sorted(seen))
    return tuple(dict.fromkeys(columns))


def _encode(metrics: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Turn a metric table into float64 feature columns."""
    encoded = {"account_id": metrics["account_id"].to_numpy(dtype=object)}
    for name in columns:
        metric, value = split_feature_name(name)
        column = metrics[metric]
        if value is None:
            encoded[name] = column.to_numpy(dtype=np.float64, na_value=np.nan)
            continue
        present = column.notna().to_numpy()
        equal = (column == value).to_numpy(dtype=bool)
        encoded[name] = np.where(present, equal.astype(np.float64), np.nan)
    return pd.DataFrame(encoded)


def _labelled_rows(
    features: pd.DataFrame, observed_at: dt.date, labels: pd.Series
) -> pd.DataFrame:
    """Join features with labels, keeping accounts that have both."""
    labelled = features[features["account_id"].isin(labels.index)]
    rows = labelled.drop(columns="account_id")
    keys = pd.DataFrame(
        {
            "account_id": labelled["account_id"].to_numpy(dtype=object),
            "observed_at": [observed_at] * len(labelled),
            "label": labels.loc[labelled["account_id"]].to_numpy(dtype=bool),
        },
        columns=list(_KEY_COLUMNS),
    )
    return pd.concat([keys, rows.reset_index(drop=True)], axis=1)


def _outcomes(store: Store, segments: Sequence[str] | None) -> pd.DataFrame:
    """Read the account outcome columns, times as UTC timestamps."""
    accounts = store.table("accounts")
    if segments:
        accounts = accounts.filter(accounts.segment.isin(list(segments)))
    accounts = accounts.select("account_id", "created_at", "churned", "churned_at")
    frame = accounts.order_by("account_id").to_pyarrow().to_pandas()
    for column in ("created_at", "churned_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.reset_index(drop=True)


def _check_dated_churn(store: Store, segments: Sequence[str] | None) -> None:
    outcomes = _outcomes(store, segments)
    undated = outcomes[
        outcomes["churned"].fillna(False).astype(bool) & outcomes["churned_at"].isna()
    ]
    if len(undated):
        raise InputDataError(
            f"{len(undated)} churned accounts have no churned_at, for example "
            f"{undated['account_id'].iloc[0]!r}, so their churn cannot be placed "
            "after one of several observation dates. Pass a single observation "
            "date, or load churned_at for every churned account."
        )
