"""Time-to-churn curves per band: Kaplan-Meier estimates from account tenure.

An account's duration runs from its start (``created_at``) to ``churned_at`` when it
churned by the as-of date, and is censored at the as-of date otherwise. Durations are
in months of 365.25 / 12 days. When the data starts after accounts were created, an
account enters the curve at its tenure on the first observed day (left truncation,
lifelines' ``entry``). Otherwise the unobserved early months of old accounts would
count as months without churn. The functions are pure: frames in, frames out.

Two summaries of a band's curve are given, because a healthy band's curve often never
falls to 0.5 and so has no median:

- the median months to churn, lifelines' ``median_survival_time_`` of the fitted
  ``KaplanMeierFitter``: the first time at which the curve is at or below 0.5, or
  infinite when it never is;
- the restricted mean months to churn up to a horizon ``t``, lifelines'
  ``restricted_mean_survival_time``: the area under the curve from 0 to ``t``, which
  is the expected number of the first ``t`` months an account stays.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.exceptions import StatError
from lifelines.utils import restricted_mean_survival_time

from healthscore.exceptions import ConfigError, InputDataError
from healthscore.scoring import UNKNOWN_BAND

__all__ = [
    "DAYS_PER_MONTH",
    "BandSurvival",
    "SurvivalDurations",
    "band_survival",
    "check_observed_from",
    "tenure_durations",
]

logger = logging.getLogger(__name__)

#: Days in a month of a year of 365.25 days.
DAYS_PER_MONTH = 365.25 / 12

#: Columns of :attr:`BandSurvival.curves`.
CURVE_COLUMNS = ["band", "months", "at_risk", "churned", "survival", "low", "high"]

#: Columns of :attr:`BandSurvival.summary`.
SUMMARY_COLUMNS = [
    "band",
    "accounts",
    "churned",
    "median_months",
    "restricted_mean_months",
    "horizon_months",
]


@dataclass(frozen=True)
class SurvivalDurations:
    """Durations of accounts, and how many accounts had none.

    Attributes
    ----------
    durations
        One row per account: ``account_id``, ``months`` (float, at least 0),
        ``entry_months`` (tenure when the account came under observation, 0
        unless :func:`tenure_durations` had ``observed_from``) and ``churned``
        (bool, true when the account churned by the as-of date).
    skipped
        Accounts left out, by reason: no start date, created after the as-of date,
        churned without a churn date, or churned before their start.
    """

    durations: pd.DataFrame
    skipped: dict[str, int]


@dataclass(frozen=True)
class BandSurvival:
    """Kaplan-Meier curves and their summaries, one per band.

    Attributes
    ----------
    curves
        Long frame, one row per band and event time: ``band``, ``months``,
        ``at_risk`` (accounts still observed just before that time), ``churned``
        (churns at that time) and ``survival`` (share not churned after that
        time). ``low`` and ``high`` bound the 95 % confidence interval of
        ``survival``, lifelines' exponential Greenwood interval.
    summary
        One row per band: ``band``, ``accounts``, ``churned``, ``median_months``
        (``inf`` when the curve never reaches 0.5), ``restricted_mean_months`` and
        the ``horizon_months`` it is restricted to. A band whose curve cannot be
        estimated, because with late entries its risk set empties before later
        accounts enter, has NaN for both and no rows in ``curves``.
    horizon_months
        The horizon of every restricted mean in ``summary``.
    undated_churned
        Churned accounts left out because they have no ``churned_at``. Set by
        ``stored_band_survival`` when durations come from the churn dates.
    """

    curves: pd.DataFrame
    summary: pd.DataFrame
    horizon_months: float
    undated_churned: int = 0


def tenure_durations(
    accounts: pd.DataFrame,
    as_of: dt.date,
    *,
    observed_from: dt.date | None = None,
) -> SurvivalDurations:
    """Compute each account's months from its start to churn, or to the as-of date.

    Parameters
    ----------
    accounts
        Rows of the ``accounts`` table: ``account_id``, ``created_at``, ``churned``
        and ``churned_at``, with UTC timestamps.
    as_of
        Churns after the end of this day are not known yet, so those accounts are
        censored at it.
    observed_from
        First day from which churns are recorded, for data that starts after
        many accounts were created. An account created before it enters the
        curves at its tenure on that day (left truncation), one without
        ``created_at`` starts on that day, and one that churned before it is
        skipped. Without it, churns are taken as recorded since each account's
        ``created_at`` and accounts without one are skipped.

    Returns
    -------
    SurvivalDurations
        The durations and the number of skipped accounts per reason.

    Raises
    ------
    ConfigError
        If ``observed_from`` is after ``as_of``.
    """
    check_observed_from(observed_from, as_of)
    end = pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)
    created = pd.to_datetime(accounts["created_at"], utc=True)
    first = None if observed_from is None else pd.Timestamp(observed_from, tz="UTC")
    if first is not None:
        created = created.fillna(first)
    churned_at = pd.to_datetime(accounts["churned_at"], utc=True)
    flagged = accounts["churned"].fillna(False).astype(bool)

    churned_by_end = flagged & churned_at.notna() & (churned_at < end)
    stop = churned_at.where(churned_by_end, end)
    reasons = {
        "no start date": created.isna(),
        "created after the as-of date": created >= end,
        "churned without a churn date": flagged & churned_at.isna(),
        "churned before its start": churned_by_end & (stop < created),
    }
    if first is not None:
        reasons["churned before observed_from"] = churned_by_end & (stop < first)
    keep = ~pd.concat(reasons, axis=1).any(axis=1)
    skipped = _count_skipped(reasons)

    entered = created if first is None else created.where(created > first, first)
    durations = pd.DataFrame(
        {
            "account_id": accounts.loc[keep, "account_id"].to_numpy(),
            "months": _months(stop[keep] - created[keep]),
            "entry_months": _months(entered[keep] - created[keep]),
            "churned": churned_by_end[keep].to_numpy(dtype=bool),
        }
    )
    return SurvivalDurations(durations=durations, skipped=skipped)


def check_observed_from(observed_from: dt.date | None, as_of: dt.date) -> None:
    """Raise ConfigError if ``observed_from`` is after ``as_of``.

    Accounts enter the curves on ``observed_from`` and are censored at
    ``as_of``, so a later first observed day leaves no time to observe.
    """
    if observed_from is not None and observed_from > as_of:
        raise ConfigError(
            f"observed_from {observed_from.isoformat()!r} is after as_of "
            f"{as_of.isoformat()!r}; expected the first observed day on or before "
            "the as-of date. Pass an earlier --observed-from or a later --as-of.",
            field="observed_from",
        )


def _months(spans: pd.Series) -> np.ndarray:
    return (spans.dt.total_seconds() / 86400 / DAYS_PER_MONTH).to_numpy(dtype="float64")


def _count_skipped(reasons: dict[str, pd.Series]) -> dict[str, int]:
    """Count each skipped account once, under the first reason that applies."""
    counts = {}
    counted = pd.Series(False, index=next(iter(reasons.values())).index)
    for reason, mask in reasons.items():
        new = mask & ~counted
        counts[reason] = int(new.sum())
        counted |= mask
        if counts[reason]:
            logger.info("skipped %d accounts: %s", counts[reason], reason)
    return counts


def band_survival(
    durations: pd.DataFrame,
    bands: pd.DataFrame,
    *,
    horizon_months: float | None = None,
    band_order: list[str] | None = None,
) -> BandSurvival:
    """Fit a Kaplan-Meier curve per band and summarise each in months to churn.

    Parameters
    ----------
    durations
        ``account_id``, ``months`` and ``churned``, and optionally
        ``entry_months``, as from :func:`tenure_durations`.
    bands
        ``account_id`` and ``band``. Accounts without a band are left out.
    horizon_months
        Upper limit of the restricted mean. By default the shortest of the bands'
        longest durations, so every band's curve is observed up to it. The
        Unknown band is left out of that minimum unless it is the only band.
    band_order
        Order of the bands in the output; bands not listed follow by name.

    Returns
    -------
    BandSurvival
        Curves and per-band summaries.

    Raises
    ------
    InputDataError
        If no account has both a duration and a band, or a duration is negative
        or not finite.
    ConfigError
        If ``horizon_months`` is not a positive number.
    """
    frame = durations.merge(bands[["account_id", "band"]], on="account_id")
    frame = frame[frame["band"].notna()]
    _check_durations(frame)
    names = _ordered_bands(frame["band"].unique().tolist(), band_order)
    groups = {name: frame[frame["band"] == name] for name in names}
    horizon = _horizon(groups, horizon_months)

    fitted = {name: _fit(name, group) for name, group in groups.items()}
    parts = [_curve(name, fitter) for name, fitter in fitted.items() if fitter]
    curves = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=CURVE_COLUMNS)
    )
    summary = pd.DataFrame(
        [_summary(name, groups[name], fitted[name], horizon) for name in names],
        columns=SUMMARY_COLUMNS,
    )
    return BandSurvival(curves=curves, summary=summary, horizon_months=horizon)


def _check_durations(frame: pd.DataFrame) -> None:
    if frame.empty:
        raise InputDataError(
            "no account has both a duration and a band, so there is nothing to fit. "
            "Score the accounts first with `healthscore score`, and check that the "
            "accounts have created_at dates."
        )
    months = frame["months"].to_numpy(dtype="float64")
    bad = ~np.isfinite(months) | (months < 0)
    if bad.any():
        first = frame.loc[bad, "account_id"].iloc[0]
        raise InputDataError(
            f"{int(bad.sum())} accounts have a negative or missing duration, such as "
            f"{first!r}; expected months of at least 0. Check created_at and "
            "churned_at of those accounts."
        )


def _ordered_bands(found: list[str], order: list[str] | None) -> list[str]:
    listed = [name for name in (order or []) if name in found]
    return listed + sorted(name for name in found if name not in listed)


def _horizon(groups: dict[str, pd.DataFrame], requested: float | None) -> float:
    if requested is None:
        known = [g for name, g in groups.items() if name != UNKNOWN_BAND] or list(
            groups.values()
        )
        return float(min(group["months"].max() for group in known))
    if not np.isfinite(requested) or requested <= 0:
        raise ConfigError(
            f"horizon_months {requested!r} is not a positive number of months; pass "
            "a horizon such as 12.",
            field="horizon_months",
        )
    return float(requested)


def _fit(name: str, group: pd.DataFrame) -> KaplanMeierFitter | None:
    """Fit a band's curve, or return None when its risk set empties early.

    With late entries, lifelines 0.30 raises ``StatError`` when the curve reaches
    0 while accounts still enter later, which happens in small bands.
    """
    entry = None
    if "entry_months" in group:
        entry = group["entry_months"].to_numpy(dtype="float64")
    try:
        return KaplanMeierFitter(label=str(name)).fit(
            group["months"].to_numpy(dtype="float64"),
            event_observed=group["churned"].to_numpy(dtype=bool),
            entry=entry,
        )
    except StatError as exc:
        logger.warning("no time-to-churn curve for band %r: %s", name, exc)
        return None


def _curve(name: str, fitter: KaplanMeierFitter) -> pd.DataFrame:
    table = fitter.event_table
    interval = fitter.confidence_interval_survival_function_
    return pd.DataFrame(
        {
            "band": name,
            "months": table.index.to_numpy(dtype="float64"),
            "at_risk": table["at_risk"].to_numpy(dtype="int64"),
            "churned": table["observed"].to_numpy(dtype="int64"),
            "survival": fitter.survival_function_.iloc[:, 0].to_numpy(),
            "low": interval.iloc[:, 0].to_numpy(),
            "high": interval.iloc[:, 1].to_numpy(),
        },
        columns=CURVE_COLUMNS,
    )


def _summary(
    name: str, group: pd.DataFrame, fitter: KaplanMeierFitter | None, horizon: float
) -> dict[str, object]:
    median = restricted = float("nan")
    if fitter is not None:
        median = float(fitter.median_survival_time_)
        restricted = float(restricted_mean_survival_time(fitter, t=horizon))
    return {
        "band": name,
        "accounts": len(group),
        "churned": int(group["churned"].sum()),
        "median_months": median,
        "restricted_mean_months": restricted,
        "horizon_months": horizon,
    }
