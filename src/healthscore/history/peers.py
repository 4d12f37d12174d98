"""Peer views: how the segments compare, and how an account ranks in its segment.

Both views read each account's newest stored score, or its score of one as-of date,
as :func:`healthscore.history.latest_scores` returns it.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from healthscore.history.snapshots import latest_scores, stored_band_names
from healthscore.scoring import UNKNOWN_BAND
from healthscore.store import Store

__all__ = ["SEGMENT_COLUMNS", "peer_percentiles", "segment_table", "summarise_segments"]

logger = logging.getLogger(__name__)

#: Columns of :func:`segment_table`, in order.
SEGMENT_COLUMNS = (
    "segment",
    "accounts",
    "scored",
    "arr",
    "average_score",
    "poor",
    "share_poor",
    "churn_known",
    "churned",
    "churn_rate",
)


def segment_table(store: Store, *, as_of: dt.date | None = None) -> pd.DataFrame:
    """Summarise the stored scores per segment, with the churn that followed.

    Parameters
    ----------
    store
        The store to read.
    as_of
        Only snapshots of this date; by default each account's newest snapshot.

    Returns
    -------
    pandas.DataFrame
        One row per segment, as :func:`summarise_segments` describes, counting the
        lowest band of the stored profiles as poor. Empty when nothing is stored.
    """
    scores = latest_scores(store, as_of=as_of)
    accounts = store.table("accounts").select("account_id", "churned_at").to_pandas()
    frame = scores.merge(accounts, on="account_id", how="left")
    bands = stored_band_names(store)
    poor_band = bands[-1] if bands else "Poor"
    return summarise_segments(frame, poor_band=poor_band)


def summarise_segments(scores: pd.DataFrame, *, poor_band: str) -> pd.DataFrame:
    """Summarise account scores per segment.

    Parameters
    ----------
    scores
        One row per account: ``segment`` (None for accounts without one), ``score``
        (NaN when Unknown), ``band``, ``arr``, ``as_of`` (the date of the score),
        ``churned`` and ``churned_at`` (UTC).
    poor_band
        The band counted as poor.

    Returns
    -------
    pandas.DataFrame
        One row per segment, sorted by segment with None last. ``accounts`` counts
        the accounts, ``scored`` those with a score (not Unknown), ``arr`` their
        ARR summed and ``average_score`` the mean score of the scored accounts.
        ``poor`` counts the accounts in ``poor_band`` and ``share_poor`` is
        ``poor / scored``. ``churn_known`` counts the accounts whose churn status
        is stored, ``churned`` those that churned after the end of their as-of
        date, and ``churn_rate`` is ``churned / churn_known``. An account marked
        churned without a churn time counts as churned. Rates without accounts to
        divide by are NaN.
    """
    if scores.empty:
        return pd.DataFrame({name: [] for name in SEGMENT_COLUMNS})
    frame = pd.DataFrame(
        {
            "segment": scores["segment"].astype(object),
            "scored": scores["score"].notna(),
            "score": scores["score"].astype(np.float64),
            "arr": pd.to_numeric(scores["arr"], errors="coerce"),
            "poor": (scores["band"] == poor_band) & (scores["band"] != UNKNOWN_BAND),
            "churn_known": scores["churned"].notna() | scores["churned_at"].notna(),
            "churned": _churned_after(scores),
        }
    )
    summary = frame.groupby("segment", dropna=False, sort=False).agg(
        accounts=("scored", "size"),
        scored=("scored", "sum"),
        arr=("arr", "sum"),
        average_score=("score", "mean"),
        poor=("poor", "sum"),
        churn_known=("churn_known", "sum"),
        churned=("churned", "sum"),
    )
    summary = summary.reset_index()
    with np.errstate(divide="ignore", invalid="ignore"):
        summary["share_poor"] = _ratio(summary["poor"], summary["scored"])
        summary["churn_rate"] = _ratio(summary["churned"], summary["churn_known"])
    summary = summary.sort_values("segment", na_position="last", kind="mergesort")
    return summary[list(SEGMENT_COLUMNS)].reset_index(drop=True)


def _churned_after(scores: pd.DataFrame) -> pd.Series:
    """Return whether each account churned after the end of its as-of date (UTC)."""
    end = pd.to_datetime(scores["as_of"]).dt.tz_localize("UTC") + pd.Timedelta(days=1)
    churned_at = pd.to_datetime(scores["churned_at"], utc=True)
    after = (churned_at >= end).fillna(False).astype(bool)
    flagged = scores["churned"].fillna(False).astype(bool)
    return after | (flagged & churned_at.isna())


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    values = numerator.to_numpy(np.float64) / denominator.to_numpy(np.float64)
    return pd.Series(values, index=numerator.index)


def peer_percentiles(scores: pd.DataFrame) -> pd.Series:
    """Return each account's percentile rank among the accounts of its segment.

    The rank of score ``x`` among ``n`` scored peers, the account itself
    included, is ``100 * (below + equal / 2) / n``, where ``below`` counts the
    peers with a lower score and ``equal`` those with the same score. This is
    ``scipy.stats.percentileofscore`` with ``kind="mean"``. Accounts without a
    segment are peers of each other.

    Parameters
    ----------
    scores
        One row per account with ``segment`` and ``score`` (NaN when Unknown).

    Returns
    -------
    pandas.Series
        Float percentiles from 0 to 100 on the index of ``scores``, NaN for an
        account without a score.
    """
    segments = scores["segment"].astype(object)
    values = scores["score"].astype(np.float64)
    groups = values.groupby(segments, dropna=False)
    # An average rank r among n values means r - 0.5 peers are below on average,
    # counting ties as half, which is the formula above.
    ranks = groups.rank(method="average")
    counts = groups.transform("count")
    return (ranks - 0.5) / counts * 100.0
