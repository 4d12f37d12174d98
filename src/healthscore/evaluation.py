"""Checks of scores against real outcomes: ROC AUC and churn rate per band.

Pure numpy and pandas, so the scoring core and the prediction layer can share them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from healthscore.exceptions import InputDataError
from healthscore.scoring.profile import DEFAULT_BANDS, UNKNOWN_BAND

__all__ = ["churn_rate_by_band", "roc_auc"]

logger = logging.getLogger(__name__)


def roc_auc(risk: npt.ArrayLike, churned: npt.ArrayLike) -> float:
    """Compute the ROC AUC of a risk value against churn outcomes.

    The AUC is the Mann-Whitney statistic: the chance that a randomly chosen churned
    account has a higher risk than a randomly chosen retained one, with ties counting
    one half. A health score is a negative risk, so pass ``-score`` or
    ``100 - score``.

    Parameters
    ----------
    risk
        One value per account, higher meaning more likely to churn. NaN rows are
        dropped.
    churned
        One outcome per account: true, false, 1, 0, or NaN/None when unknown,
        whose rows are dropped.

    Returns
    -------
    float
        The AUC, from 0 to 1; 0.5 means no better than chance.

    Raises
    ------
    InputDataError
        If the arrays differ in length, or after dropping NaN rows only one
        outcome (all churned or none) is left.

    Examples
    --------
    >>> roc_auc([0.9, 0.8, 0.3, 0.1], [True, False, True, False])
    0.75
    """
    values, outcomes = _paired(risk, churned)
    positives = int(outcomes.sum())
    negatives = len(outcomes) - positives
    if positives == 0 or negatives == 0:
        raise InputDataError(
            f"ROC AUC needs both churned and retained accounts; got {positives} "
            f"churned and {negatives} retained after dropping rows with NaN. "
            "Evaluate over a period in which some accounts churned and some stayed."
        )

    ranks = _average_ranks(values)
    rank_sum = float(ranks[outcomes].sum())
    u_statistic = rank_sum - positives * (positives + 1) / 2.0
    return u_statistic / (positives * negatives)


def _paired(risk: npt.ArrayLike, churned: npt.ArrayLike) -> tuple[np.ndarray, ...]:
    """Return float risks and bool outcomes with every row holding a NaN dropped."""
    values = np.asarray(risk, dtype=np.float64)
    parsed = pd.to_numeric(pd.Series(np.asarray(churned, dtype=object)))
    outcomes = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    if values.shape != outcomes.shape or values.ndim != 1:
        raise InputDataError(
            f"risk and churned must be 1-D arrays of the same length; got shapes "
            f"{values.shape} and {outcomes.shape}. Pass one value of each per account."
        )
    keep = ~np.isnan(values) & ~np.isnan(outcomes)
    return values[keep], outcomes[keep] != 0


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Return 1-based ranks, giving tied values the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def churn_rate_by_band(
    bands: npt.ArrayLike,
    churned: npt.ArrayLike,
    order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Count accounts and churn per band.

    Parameters
    ----------
    bands
        The band of each account, such as ``ScoreResult.scores["band"]``.
    churned
        One outcome per account: true, false, 1, 0, or NaN/None when unknown,
        whose rows are left out of every count.
    order
        Band names in the order of the output rows, normally the profile's bands
        followed by ``"Unknown"``. Every listed band gets a row, with 0 accounts if
        none is in it. Bands not listed follow in order of first appearance. The
        default is Good, Average, Poor and Unknown, listing only bands present.

    Returns
    -------
    pandas.DataFrame
        Columns ``band``, ``accounts``, ``churned`` and ``churn_rate`` (churned /
        accounts, NaN for a band without accounts).

    Raises
    ------
    InputDataError
        If ``bands`` and ``churned`` differ in length.

    Examples
    --------
    >>> churn_rate_by_band(["Good", "Poor", "Poor"], [0, 1, 0]).to_dict("list")
    {'band': ['Good', 'Poor'], 'accounts': [1, 2], 'churned': [0, 1], 'churn_rate': [0.0, 0.5]}
    """  # noqa: E501
    labels = pd.Series(np.asarray(bands, dtype=object)).fillna(UNKNOWN_BAND)
    outcomes = pd.to_numeric(pd.Series(np.asarray(churned, dtype=object)))
    if len(labels) != len(outcomes):
        raise InputDataError(
            f"bands and churned must have the same length; got {len(labels)} and "
            f"{len(outcomes)}. Pass one band and one outcome per account."
        )
    known = outcomes.notna().to_numpy()
    labels = labels[known].astype(str).reset_index(drop=True)
    hits = (outcomes[known] != 0).astype(np.int64).reset_index(drop=True)

    rows = _band_order(labels, order)
    accounts = labels.value_counts().reindex(rows, fill_value=0)
    churn_counts = hits.groupby(labels).sum().reindex(rows, fill_value=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = churn_counts.to_numpy() / accounts.to_numpy()
    return pd.DataFrame(
        {
            "band": pd.Series(rows, dtype=object),
            "accounts": accounts.to_numpy(dtype=np.int64),
            "churned": churn_counts.to_numpy(dtype=np.int64),
            "churn_rate": np.where(accounts.to_numpy() > 0, rate, np.nan),
        }
    )


def _band_order(labels: pd.Series, order: Sequence[str] | None) -> list[str]:
    present = list(dict.fromkeys(labels))
    if order is None:
        default = [band.name for band in DEFAULT_BANDS] + [UNKNOWN_BAND]
        listed = [band for band in default if band in present]
    else:
        listed = list(dict.fromkeys(order))
    return listed + [band for band in present if band not in listed]
