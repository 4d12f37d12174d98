"""Preview a profile change: score the same accounts with an old and a new profile.

:func:`diff_profiles` scores one metrics table twice and reports which accounts change
band, the band transition matrix, how the score distribution shifts and, where churn
outcomes are known, the ROC AUC of each side. Either side may be a single profile or a
profile set.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

# A module import, because healthscore.evaluation imports the scoring package
# and may be the module being imported when this one loads.
import healthscore.evaluation as evaluation
from healthscore.exceptions import ConfigError, InputDataError
from healthscore.scoring.profile import UNKNOWN_BAND, HealthProfile
from healthscore.scoring.profile_set import (
    ProfileSet,
    ProfileSetScores,
    as_profile_set,
    assign_profiles,
    score_profile_set,
)

__all__ = [
    "DEFAULT_QUANTILES",
    "NOT_SCORED",
    "AucComparison",
    "ProfileDiff",
    "diff_profiles",
]

logger = logging.getLogger(__name__)

#: Band label of an account that a side did not score, because no entry of its
#: profile set took the account.
NOT_SCORED = "Not scored"

DEFAULT_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


@dataclass(frozen=True)
class AucComparison:
    """ROC AUC of each side against churn, where lower scores mean higher risk.

    Attributes
    ----------
    old, new
        Each side's AUC over the accounts it scored (score not NaN) that have an
        outcome, or None if those accounts are all churned or all retained.
    old_accounts, new_accounts
        The number of accounts behind ``old`` and ``new``.
    paired_old, paired_new
        Each side's AUC over the accounts both sides scored and that have an
        outcome, so the two values compare the same accounts. None as above.
    paired_accounts
        The number of accounts behind the paired values.
    old_churn_by_band, new_churn_by_band
        Accounts, churned and churn rate per band of each side, from
        :func:`healthscore.evaluation.churn_rate_by_band`, over accounts with an
        outcome.
    """

    old: float | None
    new: float | None
    old_accounts: int
    new_accounts: int
    paired_old: float | None
    paired_new: float | None
    paired_accounts: int
    old_churn_by_band: pd.DataFrame
    new_churn_by_band: pd.DataFrame


@dataclass(frozen=True)
class ProfileDiff:
    """Changes in scores and bands when the accounts are scored with the new profile.

    Attributes
    ----------
    accounts
        One row per metrics row, in its order: ``account_id``, ``old_profile``,
        ``old_score``, ``old_band``, ``new_profile``, ``new_score``, ``new_band``,
        ``score_change`` (new minus old, NaN unless both are scores) and
        ``band_changed``. An account a side did not score has profile None, score
        NaN and band ``"Not scored"``.
    moved
        The rows of ``accounts`` whose band changed, in the same order.
    transitions
        Account counts with the old band as rows (index named ``old_band``) and
        the new band as columns (named ``new_band``). Each side lists the bands of
        its profiles in set order, then ``"Unknown"``, then ``"Not scored"`` if
        some account has it. Bands without accounts are kept, as 0.
    distribution
        Statistics of the scores of each side, one per row: ``accounts``,
        ``scored`` (accounts with a score), ``mean``, ``std`` (sample standard
        deviation), ``min``, one row per quantile and ``max``. The default quantile
        rows are ``p10``, ``p25``, ``median``, ``p75`` and ``p90``, interpolated
        linearly. Columns ``old``, ``new`` and ``change`` (new minus old). Only
        scored accounts count.
    band_shares
        One row per band of either side: ``band``, ``old_accounts``,
        ``old_share``, ``new_accounts``, ``new_share`` and ``share_change``. A
        share is of all accounts in the metrics table.
    auc
        The comparison against churn outcomes, or None without outcomes.
    old, new
        The full scores of each side.
    """

    accounts: pd.DataFrame
    moved: pd.DataFrame
    transitions: pd.DataFrame
    distribution: pd.DataFrame
    band_shares: pd.DataFrame
    auc: AucComparison | None
    old: ProfileSetScores
    new: ProfileSetScores


def diff_profiles(
    metrics: pd.DataFrame,
    old: HealthProfile | ProfileSet,
    new: HealthProfile | ProfileSet,
    outcomes: pd.Series | Mapping[str, object] | None = None,
    *,
    accounts: pd.DataFrame | None = None,
    as_of: dt.date | None = None,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> ProfileDiff:
    """Score ``metrics`` with ``old`` and with ``new`` and compare the results.

    Parameters
    ----------
    metrics
        One row per account: ``account_id``, optional ``segment`` and a column per
        metric of both sides.
    old, new
        A profile or a profile set on each side.
    outcomes
        Churn per ``account_id``: true, false, 1, 0, or None/NaN when unknown. An
        account that is not listed has no outcome.
    accounts
        The account columns the rules of a profile set read, see
        :func:`~healthscore.scoring.profile_set.assign_profiles`. Default:
        ``metrics``.
    as_of
        The date that account ages are measured at, needed only by age rules.
    quantiles
        The quantiles of the distribution table, each from 0 to 1.

    Returns
    -------
    ProfileDiff

    Raises
    ------
    InputDataError
        If an ``account_id`` column is absent, missing or repeated, or an outcome
        is neither true, false, 1, 0 nor missing.
    ConfigError
        If a quantile is outside 0..1, or an age rule runs without ``as_of``.
    """
    quantiles = _check_quantiles(quantiles)
    frame = metrics.reset_index(drop=True)
    old_set, new_set = as_profile_set(old), as_profile_set(new)
    old_scores = _score_side(frame, old_set, accounts, as_of)
    new_scores = _score_side(frame, new_set, accounts, as_of)

    old_side = _side_columns(frame, old_scores, "old")
    new_side = _side_columns(frame, new_scores, "new")
    table = _accounts_table(frame, old_side, new_side)
    old_labels = _band_labels(old_set, table["old_band"])
    new_labels = _band_labels(new_set, table["new_band"])

    diff = ProfileDiff(
        accounts=table,
        moved=table[table["band_changed"]].reset_index(drop=True),
        transitions=_transitions(table, old_labels, new_labels),
        distribution=_distribution(table, quantiles),
        band_shares=_band_shares(table, old_labels, new_labels),
        auc=None
        if outcomes is None
        else _compare_auc(table, outcomes, old_labels, new_labels),
        old=old_scores,
        new=new_scores,
    )
    logger.info(
        "compared profiles %r and %r on %d accounts: %d change band",
        old_set.name,
        new_set.name,
        len(table),
        len(diff.moved),
    )
    return diff


def _check_quantiles(quantiles: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(q) for q in quantiles)
    for q in values:
        if not 0.0 <= q <= 1.0:
            raise ConfigError(
                f"quantiles must be from 0 to 1; got {q!r}. Write 0.9 for the 90th "
                "percentile.",
                field="quantiles",
            )
    return values


def _score_side(
    frame: pd.DataFrame,
    profile_set: ProfileSet,
    accounts: pd.DataFrame | None,
    as_of: dt.date | None,
) -> ProfileSetScores:
    source = frame if accounts is None else accounts
    assignments = assign_profiles(source, profile_set, as_of)
    return score_profile_set(frame, profile_set, assignments)


def _side_columns(
    frame: pd.DataFrame, scores: ProfileSetScores, side: str
) -> pd.DataFrame:
    """Return profile, score and band per metrics row, for one side."""
    scored = scores.scores.set_index("account_id")
    ids = frame["account_id"]
    profile = ids.map(scored["profile"]).astype(object)
    score = ids.map(scored["score"]).to_numpy(dtype=np.float64, na_value=np.nan)
    band = ids.map(scored["band"]).astype(object)
    is_scored = ids.isin(scored.index).to_numpy()
    return pd.DataFrame(
        {
            f"{side}_profile": profile.where(is_scored, None),
            f"{side}_score": score,
            f"{side}_band": band.where(is_scored, NOT_SCORED),
        }
    )


def _accounts_table(
    frame: pd.DataFrame, old_side: pd.DataFrame, new_side: pd.DataFrame
) -> pd.DataFrame:
    table = pd.concat(
        [frame[["account_id"]], old_side, new_side], axis=1, ignore_index=False
    )
    table["score_change"] = table["new_score"] - table["old_score"]
    table["band_changed"] = (table["old_band"] != table["new_band"]).to_numpy()
    return table


def _band_labels(profile_set: ProfileSet, present: pd.Series) -> list[str]:
    """Return the set's band names in profile order, Unknown, then others present."""
    declared = [band.name for p in profile_set.profiles for band in p.bands]
    labels = list(dict.fromkeys([*declared, UNKNOWN_BAND]))
    extra = [label for label in dict.fromkeys(present) if label not in labels]
    if NOT_SCORED in extra:
        extra = [label for label in extra if label != NOT_SCORED] + [NOT_SCORED]
    return labels + extra


def _transitions(
    table: pd.DataFrame, old_labels: list[str], new_labels: list[str]
) -> pd.DataFrame:
    counts = pd.crosstab(table["old_band"], table["new_band"])
    matrix = counts.reindex(index=old_labels, columns=new_labels, fill_value=0)
    matrix = matrix.astype(np.int64)
    matrix.index.name = "old_band"
    matrix.columns.name = "new_band"
    return matrix


def _distribution(table: pd.DataFrame, quantiles: tuple[float, ...]) -> pd.DataFrame:
    old = _summary(table["old_score"], quantiles)
    new = _summary(table["new_score"], quantiles)
    frame = pd.DataFrame({"old": old, "new": new})
    frame["change"] = frame["new"] - frame["old"]
    frame.index.name = "statistic"
    return frame


def _summary(scores: pd.Series, quantiles: tuple[float, ...]) -> pd.Series:
    known = scores.dropna()
    values = {
        "accounts": float(len(scores)),
        "scored": float(len(known)),
        "mean": known.mean(),
        "std": known.std(),
        "min": known.min(),
    }
    for q in quantiles:
        values[_quantile_label(q)] = known.quantile(q) if len(known) else np.nan
    values["max"] = known.max()
    return pd.Series(values, dtype=np.float64)


def _quantile_label(q: float) -> str:
    if q == 0.5:
        return "median"
    return f"p{q * 100:g}"


def _band_shares(
    table: pd.DataFrame, old_labels: list[str], new_labels: list[str]
) -> pd.DataFrame:
    labels = list(dict.fromkeys([*old_labels, *new_labels]))
    total = len(table)
    old_counts = table["old_band"].value_counts().reindex(labels, fill_value=0)
    new_counts = table["new_band"].value_counts().reindex(labels, fill_value=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        old_share = old_counts.to_numpy(dtype=np.float64) / total
        new_share = new_counts.to_numpy(dtype=np.float64) / total
    return pd.DataFrame(
        {
            "band": pd.Series(labels, dtype=object),
            "old_accounts": old_counts.to_numpy(dtype=np.int64),
            "old_share": old_share,
            "new_accounts": new_counts.to_numpy(dtype=np.int64),
            "new_share": new_share,
            "share_change": new_share - old_share,
        }
    )


def _compare_auc(
    table: pd.DataFrame,
    outcomes: pd.Series | Mapping[str, object],
    old_labels: list[str],
    new_labels: list[str],
) -> AucComparison:
    churned = _outcome_values(table["account_id"], outcomes)
    known = ~np.isnan(churned)
    old_score = table["old_score"].to_numpy(dtype=np.float64)
    new_score = table["new_score"].to_numpy(dtype=np.float64)
    both = known & ~np.isnan(old_score) & ~np.isnan(new_score)

    return AucComparison(
        old=_auc_or_none(old_score, churned, known),
        new=_auc_or_none(new_score, churned, known),
        old_accounts=int((known & ~np.isnan(old_score)).sum()),
        new_accounts=int((known & ~np.isnan(new_score)).sum()),
        paired_old=_auc_or_none(old_score, churned, both),
        paired_new=_auc_or_none(new_score, churned, both),
        paired_accounts=int(both.sum()),
        old_churn_by_band=evaluation.churn_rate_by_band(
            table["old_band"].to_numpy()[known], churned[known] != 0, old_labels
        ),
        new_churn_by_band=evaluation.churn_rate_by_band(
            table["new_band"].to_numpy()[known], churned[known] != 0, new_labels
        ),
    )


def _auc_or_none(
    score: np.ndarray, churned: np.ndarray, rows: np.ndarray
) -> float | None:
    """Return the AUC of ``100 - score`` on ``rows``, or None with one outcome only."""
    rows = rows & ~np.isnan(score)
    outcomes = churned[rows]
    if len(outcomes) == 0 or outcomes.min() == outcomes.max():
        return None
    return evaluation.roc_auc(100.0 - score[rows], outcomes)


def _outcome_values(
    ids: pd.Series, outcomes: pd.Series | Mapping[str, object]
) -> np.ndarray:
    """Return 1.0 for churned, 0.0 for retained and NaN for unknown, per account."""
    series = outcomes if isinstance(outcomes, pd.Series) else pd.Series(outcomes)
    if series.index.has_duplicates:
        repeated = series.index[series.index.duplicated()].unique()
        raise InputDataError(
            f"outcomes list accounts more than once: {list(repeated[:5])!r}. Pass one "
            "outcome per account_id."
        )
    mapped = ids.map(series).astype(object).to_numpy()
    values = np.full(len(mapped), np.nan)
    for i, value in enumerate(mapped):
        values[i] = _outcome_number(value)
    return values


def _outcome_number(value: object) -> float:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    if value is pd.NA:
        return np.nan
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
        return float(value)
    raise InputDataError(
        f"invalid churn outcome {value!r}: expected true, false, 1, 0 or a missing "
        "value. Convert the outcomes to booleans."
    )
