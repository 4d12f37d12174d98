"""Check health scores against real churn: ranking, calibration, lift and lead time.

Every figure comes with a percentile bootstrap confidence interval. The metric
functions are pure numpy and pandas, and :func:`validate_scores` assembles them into
the JSON-ready structure that :mod:`healthscore.predict.validation_report` renders.

Risk is ``100 - score``. A hand-set score is not a probability, so the Brier score
and the expected calibration error are computed on a probability that isotonic
regression of churn on risk gives each account. That regression is cross-fitted: an
account's probability comes from a fit on the other folds, never on its own outcome.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from healthscore.evaluation import churn_rate_by_band, roc_auc
from healthscore.exceptions import ConfigError, HealthscoreError, InputDataError
from healthscore.scoring.profile import UNKNOWN_BAND

if TYPE_CHECKING:
    from healthscore.scoring import HealthProfile, ProfileSet
    from healthscore.store import Store

__all__ = [
    "CALIBRATION_FOLDS",
    "ECE_BINS",
    "MIN_RESAMPLES",
    "Split",
    "bootstrap_interval",
    "brier_score",
    "calibrated_probability",
    "calibration_table",
    "expected_calibration_error",
    "lead_times",
    "pr_auc",
    "read_outcomes",
    "read_score_history",
    "choose_split",
    "top_decile_lift",
    "training_overlap_warnings",
    "validate_profiles",
    "validate_scores",
]

logger = logging.getLogger(__name__)

#: Equal-width probability bins on [0, 1] of the expected calibration error.
ECE_BINS = 10

#: Minimum number of bootstrap resamples. With fewer, the 2.5th and 97.5th
#: percentiles come from a handful of values and can exclude the estimate.
MIN_RESAMPLES = 10

#: Folds of the cross-fitted isotonic regression that turns risk into probability.
CALIBRATION_FOLDS = 5

#: Share of accounts with the highest risk that :func:`top_decile_lift` looks at.
TOP_SHARE = 0.1

Statistic = Callable[..., float]


@dataclass(frozen=True)
class Split:
    """The choice of the accounts that a profile is checked on.

    Attributes
    ----------
    kind
        ``"time-holdout"`` when scores use data up to ``as_of`` and the outcome is
        churn after it, or ``"all-accounts"`` when the outcome has no date.
    description
        One or two sentences for the page.
    as_of
        The date the accounts were scored as of (ISO text).
    outcome_end
        The last day of the outcome period (ISO text), or ``None`` when the outcome
        has no date or the period runs to the end of the data.
    """

    kind: str
    description: str
    as_of: str
    outcome_end: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the split as JSON-ready data."""
        return {
            "kind": self.kind,
            "description": self.description,
            "as_of": self.as_of,
            "outcome_end": self.outcome_end,
        }


def _paired(
    values: npt.ArrayLike, churned: npt.ArrayLike, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Return float values and bool outcomes, dropping every row with a NaN."""
    numbers = np.asarray(values, dtype=np.float64)
    parsed = pd.to_numeric(pd.Series(np.asarray(churned, dtype=object)))
    outcomes = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    if numbers.ndim != 1 or numbers.shape != outcomes.shape:
        raise InputDataError(
            f"{what} and churned must be 1-D arrays of the same length; got shapes "
            f"{numbers.shape} and {outcomes.shape}. Pass one value of each per "
            "account."
        )
    keep = ~np.isnan(numbers) & ~np.isnan(outcomes)
    return numbers[keep], outcomes[keep] != 0


def _probabilities(
    probability: npt.ArrayLike, churned: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    values, outcomes = _paired(probability, churned, "probability")
    if len(values) == 0:
        raise InputDataError(
            "no account has both a probability and a known outcome. Pass at least "
            "one pair without NaN."
        )
    outside = (values < 0) | (values > 1)
    if outside.any():
        raise InputDataError(
            f"probability must lie in [0, 1]; got {values[outside][0]!r} among "
            f"{int(outside.sum())} values outside. Pass probabilities, not scores: "
            "see calibrated_probability."
        )
    return values, outcomes


def brier_score(probability: npt.ArrayLike, churned: npt.ArrayLike) -> float:
    """Compute the Brier score: the mean squared gap between probability and outcome.

    Parameters
    ----------
    probability
        Churn probability per account, in [0, 1]. NaN rows are dropped.
    churned
        Outcome per account (true/false, 1/0, NaN when unknown).

    Returns
    -------
    float
        From 0 (perfect) to 1; always predicting the base rate ``r`` gives
        ``r * (1 - r)``.

    Examples
    --------
    >>> brier_score([0.9, 0.2], [1, 0])
    0.025
    """
    values, outcomes = _probabilities(probability, churned)
    return float(np.mean((values - outcomes) ** 2))


def _bin_index(values: np.ndarray, bins: int) -> np.ndarray:
    # Bins are [0, 1/b), [1/b, 2/b) ... [(b-1)/b, 1], so 1.0 joins the last bin.
    return np.minimum(np.floor(values * bins), bins - 1).astype(np.int64)


def _check_bins(bins: int) -> None:
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ConfigError(
            f"bins must be a positive whole number; got {bins!r}. Pass 10 for the "
            "usual ten equal-width bins.",
            field="bins",
        )


def expected_calibration_error(
    probability: npt.ArrayLike, churned: npt.ArrayLike, bins: int = ECE_BINS
) -> float:
    """Compute the expected calibration error over equal-width probability bins.

    ECE is the sum over non-empty bins of ``n_bin / n * |mean probability - churn
    rate|``, with bins ``[0, 1/bins)``, ``[1/bins, 2/bins)`` ... ``[1 - 1/bins, 1]``.

    Parameters
    ----------
    probability
        Churn probability per account, in [0, 1]. NaN rows are dropped.
    churned
        Outcome per account (true/false, 1/0, NaN when unknown).
    bins
        Number of equal-width bins on [0, 1].

    Returns
    -------
    float
        From 0 (the churn rate in every bin equals its mean probability) to 1.

    Examples
    --------
    >>> expected_calibration_error([0.05, 0.05, 0.95, 0.95], [0, 1, 1, 1])
    0.25
    """
    _check_bins(bins)
    values, outcomes = _probabilities(probability, churned)
    index = _bin_index(values, bins)
    counts = np.bincount(index, minlength=bins)
    predicted = np.bincount(index, weights=values, minlength=bins)
    observed = np.bincount(index, weights=outcomes.astype(np.float64), minlength=bins)
    filled = counts > 0
    gaps = np.abs(predicted[filled] - observed[filled])
    return float(gaps.sum() / len(values))


def calibration_table(
    probability: npt.ArrayLike, churned: npt.ArrayLike, bins: int = ECE_BINS
) -> pd.DataFrame:
    """Count accounts, mean probability and churn rate per equal-width bin.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``low``, ``high``, ``accounts``, ``mean_probability`` and
        ``churn_rate`` (NaN for an empty bin).
    """
    _check_bins(bins)
    values, outcomes = _probabilities(probability, churned)
    index = _bin_index(values, bins)
    counts = np.bincount(index, minlength=bins)
    predicted = np.bincount(index, weights=values, minlength=bins)
    observed = np.bincount(index, weights=outcomes.astype(np.float64), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_probability = np.where(counts > 0, predicted / counts, np.nan)
        churn_rate = np.where(counts > 0, observed / counts, np.nan)
    # Rounded so that edges such as 0.30000000000000004 read as 0.3 in JSON.
    edges = np.linspace(0.0, 1.0, bins + 1).round(10)
    return pd.DataFrame(
        {
            "low": edges[:-1],
            "high": edges[1:],
            "accounts": counts.astype(np.int64),
            "mean_probability": mean_probability,
            "churn_rate": churn_rate,
        }
    )


def _risks(risk: npt.ArrayLike, churned: npt.ArrayLike) -> tuple[np.ndarray, ...]:
    values, outcomes = _paired(risk, churned, "risk")
    positives = int(outcomes.sum())
    if positives == 0:
        raise InputDataError(
            f"no churned account among {len(outcomes)} with a risk and a known "
            "outcome, so precision and lift are undefined. Evaluate over a period "
            "in which some accounts churned."
        )
    return values, outcomes


def pr_auc(risk: npt.ArrayLike, churned: npt.ArrayLike) -> float:
    """Compute the area under the precision-recall curve as average precision.

    Average precision is ``sum((R_k - R_{k-1}) * P_k)`` over the distinct risk
    values from highest to lowest, where ``P_k`` and ``R_k`` are the precision and
    recall of flagging every account at or above the k-th value. Tied accounts are
    flagged together, as in scikit-learn's ``average_precision_score``.

    Parameters
    ----------
    risk
        Risk per account, higher meaning more likely to churn, such as
        ``100 - score``. NaN rows are dropped.
    churned
        Outcome per account (true/false, 1/0, NaN when unknown).

    Returns
    -------
    float
        From the churn rate (a random ranking, on average) to 1 (perfect).

    Raises
    ------
    InputDataError
        If no account with a known outcome churned.

    Examples
    --------
    >>> pr_auc([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0])
    0.8333333333333333
    """
    values, outcomes = _risks(risk, churned)
    order = np.argsort(-values, kind="mergesort")
    ordered, hits = values[order], outcomes[order]
    # The last position of each run of equal risk values is a threshold.
    ends = np.flatnonzero(np.r_[ordered[1:] != ordered[:-1], True])
    true_positives = np.cumsum(hits)[ends]
    flagged = ends + 1
    precision = true_positives / flagged
    recall = true_positives / true_positives[-1]
    steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(steps * precision))


def top_decile_lift(risk: npt.ArrayLike, churned: npt.ArrayLike) -> float:
    """Compute the churn rate among the 10% riskiest accounts over the overall rate.

    The top decile contains ``n / 10`` accounts, which need not be a whole number.
    Accounts tied at the cut take part in proportion, which gives the expected
    rate if the tie were broken at random: with ``a`` accounts above the cut and
    ``t`` tied at it, the tied group adds ``(n / 10 - a) / t`` of its churners.

    Parameters
    ----------
    risk
        Risk per account, higher meaning more likely to churn, such as
        ``100 - score``. NaN rows are dropped.
    churned
        Outcome per account (true/false, 1/0, NaN when unknown).

    Returns
    -------
    float
        1 means the top decile churns at the overall rate; the maximum is
        ``min(10, 1 / churn rate)``.

    Raises
    ------
    InputDataError
        If no account with a known outcome churned.

    Examples
    --------
    >>> top_decile_lift(list(range(10)), [0] * 8 + [1, 0])
    0.0
    """
    values, outcomes = _risks(risk, churned)
    size = TOP_SHARE * len(values)
    ordered = np.sort(values)[::-1]
    cut = ordered[max(math.ceil(size) - 1, 0)]
    above = values > cut
    tied = values == cut

    share_of_tied = (size - above.sum()) / tied.sum()
    expected = outcomes[above].sum() + share_of_tied * outcomes[tied].sum()
    return float((expected / size) / outcomes.mean())


def _day_values(values: pd.Series | pd.Index) -> pd.Series:
    """Convert dates, naive or aware timestamps or ISO text to naive UTC midnights."""
    moments = pd.to_datetime(pd.Series(np.asarray(values, dtype=object)), utc=True)
    return moments.dt.tz_localize(None).dt.floor("D")


def lead_times(
    scores: pd.DataFrame, churn_dates: pd.Series, poor_band: str
) -> pd.Series:
    """Count the days from each churned account's first Poor score to its churn.

    Only snapshots dated before the churn day count, because a snapshot as of the
    churn day already contains that day's data.

    Parameters
    ----------
    scores
        Score history with columns ``account_id``, ``as_of`` (date) and ``band``,
        one row per account and date.
    churn_dates
        Churn date (date or timestamp) indexed by ``account_id``, one per churned
        account. NaT rows are ignored.
    poor_band
        The band that counts as a warning, normally the profile's worst band.

    Returns
    -------
    pandas.Series
        Whole days, named ``lead_time_days`` and indexed by ``account_id`` in
        sorted order, for every churned account with a ``poor_band`` snapshot
        before its churn. Accounts never scored ``poor_band`` before churning are
        absent.

    Raises
    ------
    InputDataError
        If ``scores`` lacks one of the three columns.
    """
    missing = [c for c in ("account_id", "as_of", "band") if c not in scores.columns]
    if missing:
        raise InputDataError(
            f"scores is missing columns {missing!r}; expected account_id, as_of and "
            "band, one row per account and date."
        )
    churn = pd.Series(
        _day_values(churn_dates).to_numpy(),
        index=pd.Index(np.asarray(churn_dates.index, dtype=object)),
    ).dropna()
    history = pd.DataFrame(
        {
            "account_id": scores["account_id"].to_numpy(dtype=object),
            "as_of": _day_values(scores["as_of"]).to_numpy(),
            "band": scores["band"].to_numpy(dtype=object),
        }
    )
    history = history[history["account_id"].isin(churn.index)]
    history = history.assign(churned_on=history["account_id"].map(churn))
    warned = history[
        (history["band"] == poor_band) & (history["as_of"] < history["churned_on"])
    ]

    first = warned.groupby("account_id", sort=True).agg(
        first_poor=("as_of", "min"), churned_on=("churned_on", "first")
    )
    days = (first["churned_on"] - first["first_poor"]).dt.days.astype(np.int64)
    days.index.name = "account_id"
    return days.rename("lead_time_days")


def _check_bootstrap(resamples: int, level: float) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer):
        raise ConfigError(
            f"resamples must be a whole number; got {resamples!r}. Pass 1000.",
            field="resamples",
        )
    if resamples < MIN_RESAMPLES:
        raise ConfigError(
            f"resamples must be at least {MIN_RESAMPLES}, because percentiles of "
            f"fewer resamples are not a usable interval; got {resamples!r}. Pass "
            "1000 for intervals that are stable to about the second decimal.",
            field="resamples",
        )
    if not 0 < level < 1:
        raise ConfigError(
            f"level must lie strictly between 0 and 1; got {level!r}. Pass 0.95 "
            "for a 95% interval.",
            field="level",
        )


def _bootstrap(
    statistic: Statistic,
    arrays: Sequence[np.ndarray],
    resamples: int,
    level: float,
    seed: int,
) -> tuple[float, float, float, int]:
    """Return estimate, low, high and the number of resamples the statistic took.

    A resample on which the statistic raises a healthscore error or returns NaN,
    such as one without a churned account, is left out of the interval.
    """
    estimate = float(statistic(*arrays))
    size = len(arrays[0])
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    for i in range(resamples):
        rows = rng.integers(0, size, size)
        try:
            values[i] = statistic(*(array[rows] for array in arrays))
        except HealthscoreError:
            values[i] = np.nan
    valid = values[~np.isnan(values)]
    if len(valid) < resamples:
        logger.info(
            "bootstrap left out %d of %d resamples where the statistic is undefined",
            resamples - len(valid),
            resamples,
        )
    if len(valid) == 0:
        return estimate, math.nan, math.nan, 0
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(valid, [tail, 100.0 - tail])
    return estimate, float(low), float(high), len(valid)


def bootstrap_interval(
    statistic: Statistic,
    *arrays: npt.ArrayLike,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Estimate a statistic with a percentile bootstrap confidence interval.

    Each resample draws ``n`` rows with replacement, the same rows from every
    array, and evaluates ``statistic`` on them. The interval runs from the
    ``(1 - level) / 2`` to the ``(1 + level) / 2`` percentile of the resampled
    values. Resamples on which the statistic raises a healthscore error (such as
    :func:`roc_auc` on a resample without a churned account) or returns NaN are
    left out.

    Parameters
    ----------
    statistic
        Function of the arrays returning a float, such as :func:`pr_auc`.
    *arrays
        One or more 1-D arrays of the same length ``n``, one row per account.
    resamples
        Number of bootstrap resamples.
    level
        Coverage of the interval, between 0 and 1.
    seed
        Seed of the random generator; the same seed gives the same interval.

    Returns
    -------
    tuple of float
        ``(estimate, low, high)``: the statistic on the data, and the interval
        bounds, NaN when no resample gave a value.

    Raises
    ------
    ConfigError
        If ``resamples`` is not a whole number of at least :data:`MIN_RESAMPLES`
        or ``level`` is outside (0, 1).
    InputDataError
        If no array is given, the arrays differ in length or are empty.

    Examples
    --------
    >>> estimate, low, high = bootstrap_interval(np.mean, [1.0, 2.0, 3.0, 4.0])
    >>> estimate, low <= estimate <= high
    (2.5, True)
    """
    _check_bootstrap(resamples, level)
    columns = [np.asarray(array) for array in arrays]
    lengths = {len(column) for column in columns}
    if not columns or len(lengths) != 1 or 0 in lengths:
        raise InputDataError(
            "bootstrap_interval needs one or more non-empty arrays of the same "
            f"length; got lengths {[len(c) for c in columns]}. Pass one value per "
            "account in each array."
        )
    estimate, low, high, _ = _bootstrap(statistic, columns, resamples, level, seed)
    return estimate, low, high


def calibrated_probability(
    risk: npt.ArrayLike,
    churned: npt.ArrayLike,
    *,
    folds: int = CALIBRATION_FOLDS,
    seed: int = 0,
) -> np.ndarray:
    """Turn risk into churn probability with cross-fitted isotonic regression.

    The accounts are split into ``folds`` stratified folds (fewer when a class has
    fewer accounts than ``folds``). Each fold's probabilities come from an
    increasing isotonic regression of churn on risk fitted on the other folds, so
    no account's own outcome enters its probability.

    Parameters
    ----------
    risk
        Risk per account, such as ``100 - score``; no NaN.
    churned
        Outcome per account; no NaN.
    folds
        Number of folds, at least 2.
    seed
        Seed of the fold assignment.

    Returns
    -------
    numpy.ndarray
        One probability in [0, 1] per account, in input order.

    Raises
    ------
    InputDataError
        If the arrays differ in length, contain NaN, or fewer than two accounts
        of each outcome leave no two folds.
    """
    from sklearn.isotonic import IsotonicRegression
    from sklearn.model_selection import StratifiedKFold

    values = np.asarray(risk, dtype=np.float64)
    outcomes_in = np.asarray(churned, dtype=np.float64)
    paired, outcomes = _paired(values, outcomes_in, "risk")
    if len(paired) != len(values):
        raise InputDataError(
            f"risk and churned contain {len(values) - len(paired)} rows with NaN; "
            "drop accounts without a score or outcome before calibrating."
        )
    smaller = int(min(outcomes.sum(), len(outcomes) - outcomes.sum()))
    usable = min(folds, smaller)
    if usable < 2:
        raise InputDataError(
            f"calibration needs at least 2 churned and 2 retained accounts; got "
            f"{int(outcomes.sum())} churned of {len(outcomes)}. Evaluate over more "
            "accounts or a longer outcome period."
        )

    probability = np.empty(len(values))
    splitter = StratifiedKFold(n_splits=usable, shuffle=True, random_state=seed)
    for train, test in splitter.split(values.reshape(-1, 1), outcomes):
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        model.fit(values[train], outcomes[train].astype(np.float64))
        probability[test] = model.predict(values[test])
    return probability


def _number(value: float) -> float | None:
    """Return a float for JSON, or None for NaN."""
    return None if value is None or math.isnan(value) else float(value)


def _interval(
    statistic: Statistic,
    arrays: Sequence[np.ndarray],
    resamples: int,
    level: float,
    seed: int,
) -> dict[str, Any]:
    """Return a metric entry: estimate, bounds and resamples, or the reason for none."""
    try:
        estimate, low, high, used = _bootstrap(
            statistic, arrays, resamples, level, seed
        )
    except HealthscoreError as exc:
        return _unavailable(str(exc))
    return {
        "estimate": _number(estimate),
        "low": _number(low),
        "high": _number(high),
        "resamples": used,
    }


def _unavailable(reason: str) -> dict[str, Any]:
    return {"estimate": None, "low": None, "high": None, "reason": reason}


def _risk_metrics(
    risk: np.ndarray, churned: np.ndarray, resamples: int, level: float, seed: int
) -> dict[str, dict[str, Any]]:
    arrays = (risk, churned)
    return {
        "roc_auc": _interval(roc_auc, arrays, resamples, level, seed),
        "pr_auc": _interval(pr_auc, arrays, resamples, level, seed),
        "top_decile_lift": _interval(top_decile_lift, arrays, resamples, level, seed),
    }


def _probability_metrics(
    risk: np.ndarray, churned: np.ndarray, resamples: int, level: float, seed: int
) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """Return Brier and ECE entries, the calibration method and the bin table."""
    try:
        probability = calibrated_probability(risk, churned, seed=seed)
    except InputDataError as exc:
        entry = _unavailable(str(exc))
        method = {"method": "isotonic regression, cross-fitted", "folds": None}
        return {"brier_score": entry, "expected_calibration_error": entry}, method, []

    folds = min(CALIBRATION_FOLDS, int(churned.sum()), int((~churned).sum()))
    method = {"method": "isotonic regression, cross-fitted", "folds": folds}
    arrays = (probability, churned)
    metrics = {
        "brier_score": _interval(brier_score, arrays, resamples, level, seed),
        "expected_calibration_error": _interval(
            expected_calibration_error, arrays, resamples, level, seed
        ),
    }
    table = calibration_table(probability, churned)
    rows = [
        {
            "low": float(row.low),
            "high": float(row.high),
            "accounts": int(row.accounts),
            "mean_probability": _number(row.mean_probability),
            "churn_rate": _number(row.churn_rate),
        }
        for row in table.itertuples(index=False)
    ]
    return metrics, method, rows


def _band_rows(
    frame: pd.DataFrame,
    bands: Sequence[str],
    resamples: int,
    level: float,
    seed: int,
) -> list[dict[str, Any]]:
    """Return accounts, churned and churn rate with its interval per band."""
    order = [*bands, UNKNOWN_BAND]
    counts = churn_rate_by_band(frame["band"], frame["churned"], order=order)
    rows = []
    for row in counts.itertuples(index=False):
        in_band = frame.loc[frame["band"] == row.band, "churned"].to_numpy(bool)
        entry: dict[str, Any] = {
            "band": str(row.band),
            "accounts": int(row.accounts),
            "churned": int(row.churned),
        }
        if len(in_band):
            rate = _interval(np.mean, (in_band,), resamples, level, seed)
        else:
            rate = _unavailable(f"no account in {row.band}")
        entry["churn_rate"] = rate
        rows.append(entry)
    return rows


def _lead_time(
    churners: pd.Index,
    history: pd.DataFrame | None,
    churn_dates: pd.Series | None,
    poor_band: str,
    reason: str | None,
    resamples: int,
    level: float,
    seed: int,
) -> dict[str, Any]:
    """Summarise lead times, or give the reason they are not available."""
    if churn_dates is None:
        why = reason or (
            "the outcome has no dates (accounts.churned_at is empty), so the days "
            "from a Poor score to churn cannot be counted"
        )
        return {"available": False, "reason": why}
    if history is None or history.empty:
        why = reason or "no stored score history for this profile"
        return {"available": False, "reason": why}

    dates = churn_dates[churn_dates.index.isin(churners)].dropna()
    days = _day_values(dates)
    before = history.assign(as_of=_day_values(history["as_of"]).to_numpy())
    churn_day = before["account_id"].map(pd.Series(days.to_numpy(), index=dates.index))
    before = before[before["as_of"].to_numpy() < churn_day.to_numpy()]
    covered = pd.Index(sorted(before["account_id"].unique()))
    if covered.empty:
        return {
            "available": False,
            "reason": (
                f"none of the {len(dates)} churned accounts has a stored score "
                "before its churn date"
            ),
        }

    lead = lead_times(before, dates, poor_band)
    warned = covered.isin(lead.index)
    summary: dict[str, Any] = {
        "available": True,
        "reason": None,
        "poor_band": poor_band,
        "churned_with_history": len(covered),
        "warned": int(warned.sum()),
        "share_warned": _interval(np.mean, (warned,), resamples, level, seed),
    }
    lead_days = lead.to_numpy(np.float64)
    if len(lead_days):
        summary["median_days"] = _interval(
            np.median, (lead_days,), resamples, level, seed
        )
        quartiles = np.percentile(lead_days, [25, 75])
        summary["quartile_days"] = [float(quartiles[0]), float(quartiles[1])]
    else:
        summary["median_days"] = _unavailable(
            f"no churned account was scored {poor_band} before churning"
        )
        summary["quartile_days"] = None
    return summary


def validate_scores(
    scores: pd.DataFrame,
    *,
    profile: dict[str, Any],
    bands: Sequence[str],
    split: Split,
    history: pd.DataFrame | None = None,
    churn_dates: pd.Series | None = None,
    lead_time_reason: str | None = None,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Check one profile's scores against churn outcomes, with bootstrap intervals.

    Parameters
    ----------
    scores
        One row per account in the evaluation set, with ``account_id``, ``score``
        (NaN when Unknown), ``band`` and ``churned`` (bool; rows with an unknown
        outcome are dropped).
    profile
        JSON-ready profile identity such as ``{"name": ..., "hash": ...,
        "source": ...}``, copied into the result.
    bands
        Band names from best to worst; the last one is the warning band of the
        lead time.
    split
        How the accounts were chosen.
    history
        Score history of the profile (``account_id``, ``as_of``, ``band``) for the
        lead time, or None when none is stored.
    churn_dates
        Churn date per churned account, indexed by ``account_id``, or None when
        the outcome has no date.
    lead_time_reason
        Why the lead time is unavailable, shown instead of the default reason.
    resamples, level, seed
        Bootstrap settings, see :func:`bootstrap_interval`. Every metric uses the
        same seed, so all metrics and profiles see the same resamples.

    Returns
    -------
    dict
        JSON-ready, with the keys ``profile``, ``split``, ``accounts`` (counts),
        ``reason``, ``metrics``, ``probability`` (how scores became
        probabilities), ``calibration`` (bins), ``churn_by_band`` and
        ``lead_time``. ``reason`` is the cause when no account has a score, else
        None. ``metrics`` has ``roc_auc``, ``pr_auc``, ``top_decile_lift``,
        ``brier_score`` and ``expected_calibration_error``. Each has ``estimate``,
        ``low``, ``high`` and ``resamples``, or ``reason`` when undefined.

    Raises
    ------
    InputDataError
        If ``scores`` lacks a column.
    ConfigError
        If the bootstrap settings are invalid.
    """
    _check_bootstrap(resamples, level)
    frame = _known_outcomes(scores)
    scored = frame[frame["score"].notna()]
    risk = 100.0 - scored["score"].to_numpy(np.float64)
    churned = scored["churned"].to_numpy(bool)

    metrics = _risk_metrics(risk, churned, resamples, level, seed)
    calibrated, method, calibration = _probability_metrics(
        risk, churned, resamples, level, seed
    )
    metrics.update(calibrated)
    reason = _no_figures_reason(frame, scored, profile)
    if reason is not None:
        metrics = {key: _unavailable(reason) for key in metrics}
    churners = pd.Index(frame.loc[frame["churned"], "account_id"])
    poor_band = bands[-1] if bands else UNKNOWN_BAND
    lead = _lead_time(
        churners,
        history,
        churn_dates,
        poor_band,
        lead_time_reason,
        resamples,
        level,
        seed,
    )
    return {
        "profile": dict(profile),
        "split": split.to_dict(),
        "accounts": _account_counts(frame, scored),
        "reason": reason,
        "metrics": metrics,
        "probability": method,
        "calibration": calibration,
        "churn_by_band": _band_rows(frame, bands, resamples, level, seed),
        "lead_time": lead,
    }


def _known_outcomes(scores: pd.DataFrame) -> pd.DataFrame:
    required = ("account_id", "score", "band", "churned")
    missing = [c for c in required if c not in scores.columns]
    if missing:
        raise InputDataError(
            f"scores is missing columns {missing!r}; expected {list(required)!r}, "
            "one row per account."
        )
    outcome = pd.to_numeric(pd.Series(scores["churned"].to_numpy(object)))
    known = outcome.notna().to_numpy()
    frame = pd.DataFrame(
        {
            "account_id": scores["account_id"].to_numpy(object)[known],
            "score": pd.to_numeric(scores["score"]).to_numpy(np.float64)[known],
            "band": scores["band"].to_numpy(object)[known],
            "churned": outcome.to_numpy(np.float64)[known] != 0,
        }
    )
    frame["band"] = frame["band"].where(frame["score"].notna(), UNKNOWN_BAND)
    return frame


def _no_figures_reason(
    frame: pd.DataFrame, scored: pd.DataFrame, profile: dict[str, Any]
) -> str | None:
    """Return why no figure exists when no account has a score, else None."""
    if len(scored):
        return None
    name = profile.get("name", "the profile")
    if not len(frame):
        return (
            "no account has a known outcome, so there is nothing to check. Load "
            "accounts with a churned value, or pick an as-of date when some of "
            "them were customers."
        )
    return (
        f"all {len(frame):,} accounts with a known outcome are Unknown under "
        f"profile {name!r}: none has enough of its metric values to be scored, so "
        "there is no score to check. Load the data its metrics read, or lower the "
        "profile's min_coverage."
    )


def _account_counts(frame: pd.DataFrame, scored: pd.DataFrame) -> dict[str, Any]:
    churned = int(scored["churned"].sum())
    return {
        "evaluated": len(frame),
        "scored": len(scored),
        "unknown": len(frame) - len(scored),
        "churned": churned,
        "churn_rate": _number(churned / len(scored)) if len(scored) else None,
    }


# The store side: outcomes, the split, scores and score history per profile.

TIME_HOLDOUT = "time-holdout"
ALL_ACCOUNTS = "all-accounts"


def read_outcomes(store: Store) -> pd.DataFrame:
    """Read the outcome columns of every account, with its creation time."""
    accounts = store.table("accounts")
    frame = accounts.select("account_id", "created_at", "churned", "churned_at")
    return frame.to_pandas()


def choose_split(
    accounts: pd.DataFrame, as_of: dt.date, horizon_days: int | None = None
) -> tuple[Split, pd.DataFrame, pd.Series | None]:
    """Choose the accounts and outcomes to check scores as of ``as_of`` against.

    When any churned account has a ``churned_at``, the data has a time axis and the
    split is a time-based hold-out. It keeps the accounts that existed by the end of
    ``as_of`` and had not churned by then. Their outcome is churn after ``as_of``,
    up to ``horizon_days`` later when given. A churned account without a date has an
    unknown outcome there. Otherwise every account with a known ``churned`` value
    is used as it is.

    Parameters
    ----------
    accounts
        From :func:`read_outcomes`.
    as_of
        The date the scores are computed as of.
    horizon_days
        Length of the outcome period in days after ``as_of``; None runs it to the
        last churn date in the data.

    Returns
    -------
    tuple
        The :class:`Split`, a frame of ``account_id`` and ``churned`` (bool or
        NA), and the churn date per churned account (indexed by ``account_id``),
        or None without a time axis.

    Raises
    ------
    ConfigError
        If ``horizon_days`` is not positive.
    """
    if horizon_days is not None and horizon_days < 1:
        raise ConfigError(
            f"--horizon-days {horizon_days!r} must be at least 1 day; pass the "
            "number of days after --as-of in which churn counts, or leave it out "
            "to count all later churn.",
            field="--horizon-days",
        )
    churned_on = _day_values(accounts["churned_at"])
    if churned_on.notna().any():
        return _time_holdout(accounts, churned_on, as_of, horizon_days)
    return _all_accounts(accounts, as_of)


def _time_holdout(
    accounts: pd.DataFrame,
    churned_on: pd.Series,
    as_of: dt.date,
    horizon_days: int | None,
) -> tuple[Split, pd.DataFrame, pd.Series]:
    day = pd.Timestamp(as_of)
    created_on = _day_values(accounts["created_at"])
    flag = accounts["churned"].astype("boolean").fillna(False).to_numpy(bool)
    existed = (created_on.isna() | (created_on <= day)).to_numpy()
    churned_by_then = (churned_on <= day).fillna(False).to_numpy(bool)
    undated = flag & churned_on.isna().to_numpy()
    keep = existed & ~churned_by_then

    end = None if horizon_days is None else day + pd.Timedelta(days=horizon_days)
    within = churned_on > day
    if end is not None:
        within &= churned_on <= end
    outcome = pd.Series(within.fillna(False).to_numpy(bool), dtype="boolean")
    outcome[undated] = pd.NA
    frame = pd.DataFrame(
        {
            "account_id": accounts["account_id"].to_numpy(object)[keep],
            "churned": outcome[keep].reset_index(drop=True),
        }
    )
    ids = accounts["account_id"].to_numpy(object)
    churn_dates = pd.Series(churned_on.to_numpy(), index=pd.Index(ids))
    churn_dates = churn_dates[frame.loc[frame["churned"].fillna(False), "account_id"]]

    last = churned_on.max().date()
    period = (
        f"up to {end.date().isoformat()} ({horizon_days} days)"
        if end is not None
        else f"up to the last churn date in the store, {last.isoformat()}"
    )
    description = (
        f"Time-based hold-out: each profile scored the accounts as of "
        f"{as_of.isoformat()} from data up to the end of that day, and the outcome "
        f"is churn after it, {period}. Accounts that had churned by then or did not "
        "exist yet are left out. A profile learned from outcomes is held out only "
        f"if it was fitted on churn up to {as_of.isoformat()}."
    )
    split = Split(
        kind=TIME_HOLDOUT,
        description=description,
        as_of=as_of.isoformat(),
        outcome_end=(end.date() if end is not None else last).isoformat(),
    )
    return split, frame, churn_dates


def _all_accounts(
    accounts: pd.DataFrame, as_of: dt.date
) -> tuple[Split, pd.DataFrame, None]:
    frame = pd.DataFrame(
        {
            "account_id": accounts["account_id"].to_numpy(object),
            "churned": accounts["churned"].astype("boolean").reset_index(drop=True),
        }
    )
    description = (
        "All accounts, no fitting: the outcome (the accounts' churned column) has "
        "no dates, so there is no time to split on, and every account with a known "
        f"outcome is scored as of {as_of.isoformat()}. A hand-set profile is not "
        "fitted to outcomes, so checking it on every account is legitimate. A "
        "profile learned from these same accounts is checked on its own training "
        "data here, so its figures are optimistic."
    )
    split = Split(kind=ALL_ACCOUNTS, description=description, as_of=as_of.isoformat())
    return split, frame, None


def _profile_identity(profile: HealthProfile | ProfileSet) -> dict[str, Any]:
    from healthscore.scoring import ProfileSet

    source = profile.source
    return {
        "name": profile.name,
        "hash": profile.hash,
        "source": None if source is None else str(source),
        "kind": "profile set" if isinstance(profile, ProfileSet) else "profile",
    }


def _band_names(profile: HealthProfile | ProfileSet) -> list[str]:
    from healthscore.history.snapshots import member_profiles

    # NOTE: a profile set is checked with the bands of its first member, so when
    # members have different bands, accounts in the other bands count as extra rows.
    return [band.name for band in member_profiles(profile)[0].bands]


def _score_unstored(
    store: Store, profile: HealthProfile | ProfileSet, as_of: dt.date
) -> pd.DataFrame:
    """Score every account the profile applies to as of ``as_of``, storing nothing."""
    from healthscore.history.snapshots import (
        check_profile_metrics,
        compute_run,
        rule_accounts,
    )

    check_profile_metrics(store, profile)
    run = compute_run(
        store,
        profile,
        as_of,
        accounts=rule_accounts(store, profile),
        run_id="validation",
        computed_at=dt.datetime.now(dt.UTC),
    )
    return run.result.scores[["account_id", "score", "band"]]


def read_score_history(
    store: Store, profile: HealthProfile | ProfileSet, account_ids: Sequence[str]
) -> pd.DataFrame:
    """Read the stored bands of ``profile`` for some accounts, one row per date.

    Snapshots are matched by the hash of the profile (or of each member of a
    set), so runs of an edited profile do not count. The newest run of a date wins.

    Returns
    -------
    pandas.DataFrame
        Columns ``account_id``, ``as_of`` and ``band``.
    """
    import ibis

    from healthscore.history.snapshots import member_profiles

    hashes = [member.hash for member in member_profiles(profile)]
    scores = store.table("scores")
    chosen = scores.filter(
        scores.profile_hash.isin(hashes) & scores.account_id.isin(list(account_ids))
    )
    order = ibis.row_number().over(
        group_by=[chosen.account_id, chosen.as_of],
        order_by=chosen.computed_at.desc(),
    )
    newest = chosen.mutate(_rank=order).filter(ibis._["_rank"] == 0)
    return newest.select("account_id", "as_of", "band").to_pandas()


def validate_profiles(
    store: Store,
    profiles: Sequence[HealthProfile | ProfileSet],
    as_of: dt.date,
    *,
    horizon_days: int | None = None,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Score the store with each profile as of ``as_of`` and check it against churn.

    The scores are computed without being stored. The lead time reads the score
    history that ``healthscore score`` or ``healthscore backfill`` stored for the
    same profile.

    Parameters
    ----------
    store
        The store with accounts, inputs and any score history.
    profiles
        Profiles or profile sets to compare, in display order.
    as_of
        The date to score as of; see :func:`choose_split` for the outcome.
    horizon_days
        Length of the outcome period of a time-based hold-out.
    resamples, level, seed
        Bootstrap settings, see :func:`bootstrap_interval`.

    Returns
    -------
    dict
        JSON-ready: ``as_of``, ``generated_at``, ``bootstrap`` settings and
        ``profiles``, one :func:`validate_scores` result per profile with an
        added ``warnings`` list from :func:`training_overlap_warnings`.

    Raises
    ------
    InputDataError
        If no account has a known outcome, or a hold-out has no churn after
        ``as_of``.
    ProfileError
        If a profile names a metric the store cannot compute.
    """
    _check_bootstrap(resamples, level)
    split, outcomes, churn_dates = choose_split(
        read_outcomes(store), as_of, horizon_days
    )
    _check_outcomes(outcomes, split)
    _refresh_rollups(store)

    results = []
    for profile in profiles:
        results.append(
            _validate_profile(
                store, profile, split, outcomes, churn_dates, resamples, level, seed
            )
        )
    return {
        "as_of": as_of.isoformat(),
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "bootstrap": {
            "method": "percentile",
            "resamples": resamples,
            "level": level,
            "seed": seed,
        },
        "profiles": results,
    }


def _refresh_rollups(store: Store) -> None:
    from healthscore.metrics.rollup import refresh_rollups, rollups_enabled

    if rollups_enabled() and store.backend.name == "duckdb":
        refresh_rollups(store)


def _check_outcomes(outcomes: pd.DataFrame, split: Split) -> None:
    known = outcomes["churned"].dropna()
    if known.empty:
        raise InputDataError(
            "no account has a known churn outcome, so there is nothing to check "
            "scores against. Load accounts with a churned column (and churned_at "
            "for a time-based hold-out)."
        )
    if split.kind == TIME_HOLDOUT and not known.astype(bool).any():
        raise InputDataError(
            f"no account churned after --as-of {split.as_of}, so a time-based "
            f"hold-out has no outcome to check. Pass an earlier --as-of, before the "
            f"last churn date {split.outcome_end}."
        )


def _validate_profile(
    store: Store,
    profile: HealthProfile | ProfileSet,
    split: Split,
    outcomes: pd.DataFrame,
    churn_dates: pd.Series | None,
    resamples: int,
    level: float,
    seed: int,
) -> dict[str, Any]:
    as_of = dt.date.fromisoformat(split.as_of)
    scored = _score_unstored(store, profile, as_of)
    frame = scored.merge(outcomes, on="account_id", how="inner")
    logger.info(
        "validating profile %s on %d accounts as of %s", profile.name, len(frame), as_of
    )

    history = None
    if churn_dates is not None:
        churners = frame.loc[frame["churned"].fillna(False).astype(bool), "account_id"]
        history = read_score_history(store, profile, list(churners))
    reason = None
    if history is not None and history.empty:
        reason = (
            f"no stored score history for profile {profile.name} "
            f"({profile.hash[:12]}). Store one with `healthscore backfill --profile "
            "FILE --from DATE --to DATE` and validate again"
        )
    result = validate_scores(
        frame,
        profile=_profile_identity(profile),
        bands=_band_names(profile),
        split=split,
        history=history,
        churn_dates=churn_dates,
        lead_time_reason=reason,
        resamples=resamples,
        level=level,
        seed=seed,
    )
    result["warnings"] = training_overlap_warnings(profile, split)
    return result


def training_overlap_warnings(
    profile: HealthProfile | ProfileSet, split: Split
) -> list[str]:
    """Return a warning for each learned profile whose labels reach into the hold-out.

    `healthscore learn` records in a profile's ``learned`` key the last day whose
    churn counts in its labels. A time-based hold-out counts churn after
    ``split.as_of``, so a later ``labels_end`` means the profile was fitted on some
    of the outcomes it is checked on, and its figures are optimistic.

    Parameters
    ----------
    profile
        The profile or profile set being validated. Each member profile is checked.
    split
        The split that :func:`choose_split` chose.

    Returns
    -------
    list of str
        One sentence per such member profile, naming it and both dates. Empty for
        an all-accounts split and for profiles without ``learned``.
    """
    from healthscore.history.snapshots import member_profiles

    if split.kind != TIME_HOLDOUT:
        return []
    as_of = dt.date.fromisoformat(split.as_of)
    warnings = []
    for member in member_profiles(profile):
        labels = member.learned
        if labels is None or labels.labels_end <= as_of:
            continue
        latest = as_of - dt.timedelta(days=labels.horizon_days)
        warnings.append(
            f"profile {member.name!r} was fitted on churn labels up to "
            f"{labels.labels_end.isoformat()}, but the hold-out counts churn after "
            f"--as-of {as_of.isoformat()}, so its figures are optimistic. Run "
            "`healthscore learn` again with every --as-of on or before "
            f"{latest.isoformat()}, or validate with --as-of "
            f"{labels.labels_end.isoformat()} or later."
        )
    return warnings
