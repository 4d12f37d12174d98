"""Gather the stored scores, components and outcomes that the report shows."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from healthscore.evaluation import churn_rate_by_band, roc_auc
from healthscore.exceptions import NotFoundError
from healthscore.history import latest_components, latest_scores, stored_band_names
from healthscore.report.html import ReportData
from healthscore.store import Store

__all__ = ["collect_report_data", "score_auc"]

logger = logging.getLogger(__name__)


def collect_report_data(
    store: Store,
    *,
    as_of: dt.date | None = None,
    segments: Sequence[str] | None = None,
    title: str = "Portfolio health",
    notes: Sequence[str] = (),
) -> ReportData:
    """Read the newest stored snapshot of each account into a :class:`ReportData`.

    Parameters
    ----------
    store
        The store to read.
    as_of
        Only snapshots of this date; by default each account's newest.
    segments
        Only accounts in these segments.
    title
        Heading of the page.
    notes
        Lines shown at the bottom of the page.

    Raises
    ------
    NotFoundError
        If no account has a stored score.
    """
    accounts = latest_scores(store, as_of=as_of, segments=segments)
    if accounts.empty:
        raise NotFoundError(
            "no stored scores to report on. Run `healthscore score` first"
            + ("" if not segments else f", or check --segment {list(segments)}")
            + ".",
        )
    components = latest_components(store, as_of=as_of, segments=segments)
    bands = stored_band_names(store, accounts["profile_hash"].unique().tolist())
    churned = accounts["churned"]
    has_outcomes = bool(churned.notna().any())

    dates = accounts["as_of"].unique()
    return ReportData(
        title=title,
        as_of=dates[0] if len(dates) == 1 else None,
        profile_names=tuple(sorted(accounts["profile_name"].unique())),
        profile_hashes=tuple(sorted(accounts["profile_hash"].unique())),
        bands=bands,
        accounts=accounts,
        components=_component_averages(components),
        churn_by_band=_churn_by_band(accounts, bands) if has_outcomes else None,
        roc_auc=score_auc(accounts["score"], churned) if has_outcomes else None,
        notes=tuple(notes),
    )


def _component_averages(components: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in components.columns if c != "account_id"]
    rows = [
        {
            "component": name,
            "average_score": float(components[name].mean()),
            "accounts_with_data": int(components[name].notna().sum()),
        }
        for name in columns
    ]
    return pd.DataFrame(
        rows, columns=["component", "average_score", "accounts_with_data"]
    )


def _churn_by_band(accounts: pd.DataFrame, bands: Sequence[str]) -> pd.DataFrame:
    known = accounts[accounts["churned"].notna()]
    table = churn_rate_by_band(
        known["band"].to_numpy(), known["churned"].astype(bool).to_numpy()
    )
    order = {name: position for position, name in enumerate([*bands, "Unknown"])}
    ranks = table["band"].map(lambda band: order.get(band, len(order)))
    return table.iloc[np.argsort(ranks.to_numpy(), kind="stable")].reset_index(
        drop=True
    )


def score_auc(scores: pd.Series, churned: pd.Series) -> float | None:
    """Return the ROC AUC of the score as a churn warning, or ``None`` if undefined.

    A lower score means more risk, so the AUC is computed for ``100 - score``. Accounts
    without a score or without a known outcome are left out.
    """
    known = scores.notna() & churned.notna()
    outcomes = churned[known].astype(bool)
    if outcomes.nunique() < 2:
        logger.info("ROC AUC undefined: outcomes have a single class")
        return None
    return roc_auc(100.0 - scores[known].to_numpy(float), outcomes.to_numpy())
