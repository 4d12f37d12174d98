"""Manual overrides of an account's overall score or band, applied after scoring.

An override either fixes the score, and the band follows from the profile's bands, or
fixes the band and leaves the computed score in place. Either way the scores frame
keeps the computed score and band beside the result, with the override's id, author,
reason and expiry, so a reader always sees that a person set the value and why.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from healthscore.exceptions import ConfigError, InputDataError
from healthscore.scoring.engine import ScoreResult
from healthscore.scoring.profile import UNKNOWN_BAND, HealthProfile
from healthscore.scoring.profile_set import ProfileSet

__all__ = ["OVERRIDE_COLUMNS", "apply_overrides", "band_for_score", "no_overrides"]

logger = logging.getLogger(__name__)

#: Columns that :func:`apply_overrides` adds to the scores frame, with their dtypes.
#: They are missing (NaN, None or NaT) on rows without an override.
OVERRIDE_COLUMNS: dict[str, str] = {
    "override_id": "object",
    "override_score": "float64",
    "override_band": "object",
    "override_author": "object",
    "override_reason": "object",
    "override_expires_at": "datetime64[us, UTC]",
    "computed_score": "float64",
    "computed_band": "object",
}

# Columns of the overrides frame that apply_overrides reads.
_INPUT_COLUMNS = (
    "account_id",
    "input_id",
    "override_score",
    "override_band",
    "author",
    "reason",
    "expires_at",
)


def no_overrides() -> pd.DataFrame:
    """Return an empty overrides frame with the columns apply_overrides reads."""
    frame = pd.DataFrame({name: pd.Series(dtype=object) for name in _INPUT_COLUMNS})
    frame["override_score"] = frame["override_score"].astype("float64")
    frame["expires_at"] = pd.Series(dtype="datetime64[us, UTC]")
    return frame


def band_for_score(score: float, profile: HealthProfile) -> str:
    """Return the first band in profile order whose minimum ``score`` reaches.

    A NaN score, or one below every band's minimum, is in band ``"Unknown"``.
    """
    if not math.isnan(score):
        for band in profile.bands:
            if score >= band.min:
                return band.name
    return UNKNOWN_BAND


def apply_overrides(
    result: ScoreResult,
    overrides: pd.DataFrame,
    profile: HealthProfile | ProfileSet,
) -> ScoreResult:
    """Replace the score or band of every overridden account in ``result``.

    Parameters
    ----------
    result
        Scores from :func:`healthscore.scoring.score_accounts` with ``profile``.
    overrides
        At most one row per account: ``account_id``, ``input_id``,
        ``override_score`` (0-100, NaN for a band override), ``override_band``
        (None for a score override), ``author``, ``reason`` and ``expires_at``.
        Rows of accounts that ``result`` does not contain are ignored.
    profile
        The profile that scored ``result``, or the profile set, whose member named
        in the ``profile`` column of each score row scored that account. The
        account's profile gives the band of a fixed score and the valid names of a
        fixed band.

    Returns
    -------
    ScoreResult
        A copy whose scores frame has the columns of :data:`OVERRIDE_COLUMNS`
        appended. On an overridden row, ``computed_score`` and ``computed_band``
        keep the engine's values and ``score`` and ``band`` hold the override. A
        band override keeps the computed score. Components and measures are
        unchanged.

    Raises
    ------
    InputDataError
        If ``overrides`` lacks a column or names an account twice.
    ConfigError
        If an override of a scored account names a band the profile does not
        define.
    """
    _check_overrides(overrides)
    scores = _with_override_columns(result.scores)
    if overrides.empty:
        return ScoreResult(scores, result.components, result.measures)

    applied = overrides[overrides["account_id"].isin(scores["account_id"])]
    if applied.empty:
        return ScoreResult(scores, result.components, result.measures)

    rows = scores.index[scores["account_id"].isin(applied["account_id"])]
    matched = applied.set_index("account_id").loc[scores.loc[rows, "account_id"]]
    profiles = _row_profiles(scores.loc[rows], profile)
    bands = _override_bands(matched, profiles)

    scores.loc[rows, "computed_score"] = scores.loc[rows, "score"].to_numpy()
    scores.loc[rows, "computed_band"] = scores.loc[rows, "band"].to_numpy()
    fixed = matched["override_score"].to_numpy(np.float64)
    new_scores = np.where(np.isnan(fixed), scores.loc[rows, "score"], fixed)
    new_bands = [
        band if band is not None else band_for_score(score, member)
        for band, score, member in zip(bands, new_scores, profiles, strict=True)
    ]
    scores.loc[rows, "score"] = new_scores
    scores.loc[rows, "band"] = pd.Series(new_bands, index=rows, dtype=object)
    _copy_override_details(scores, rows, matched, bands)

    logger.info("applied %d score overrides", len(rows))
    return ScoreResult(scores, result.components, result.measures)


def _check_overrides(overrides: pd.DataFrame) -> None:
    missing = [name for name in _INPUT_COLUMNS if name not in overrides.columns]
    if missing:
        raise InputDataError(
            f"the overrides table lacks the columns {missing!r}; got "
            f"{list(overrides.columns)!r}. Build it with "
            "healthscore.history.human.active_overrides."
        )
    repeated = overrides["account_id"][overrides["account_id"].duplicated()]
    if len(repeated):
        raise InputDataError(
            f"accounts {sorted(repeated.unique())[:5]!r} have more than one "
            "override; pass at most one row per account."
        )


def _with_override_columns(scores: pd.DataFrame) -> pd.DataFrame:
    frame = scores.copy()
    for name, dtype in OVERRIDE_COLUMNS.items():
        if dtype == "float64":
            frame[name] = np.full(len(frame), np.nan)
        elif dtype == "object":
            frame[name] = pd.Series(
                [None] * len(frame), index=frame.index, dtype=object
            )
        else:
            frame[name] = pd.Series(pd.NaT, index=frame.index, dtype=dtype)
    return frame


def _row_profiles(
    rows: pd.DataFrame, profile: HealthProfile | ProfileSet
) -> list[HealthProfile]:
    """Return the profile that scored each row."""
    if isinstance(profile, HealthProfile):
        return [profile] * len(rows)
    by_name = {member.name: member for member in profile.profiles}
    return [by_name[name] for name in rows["profile"]]


def _override_bands(
    matched: pd.DataFrame, profiles: list[HealthProfile]
) -> list[str | None]:
    """Return each override's band in its profile's spelling, None for a score.

    Raises
    ------
    ConfigError
        For the first band that the profile does not define, compared without
        regard to case.
    """
    bands: list[str | None] = []
    for (account_id, row), profile in zip(matched.iterrows(), profiles, strict=True):
        band = row["override_band"]
        if band is None or pd.isna(band):
            bands.append(None)
            continue
        names = {known.name.lower(): known.name for known in profile.bands}
        if str(band).lower() not in names:
            raise ConfigError(
                f"override {row['input_id']!r} of account {account_id!r} sets band "
                f"{band!r}, which profile {profile.name!r} does not define; expected "
                f"one of {[b.name for b in profile.bands]}. Clear it with "
                f"`healthscore override clear {row['input_id']}` and set a band of "
                "this profile, or score with a profile that has this band.",
                field="override_band",
            )
        bands.append(names[str(band).lower()])
    return bands


def _copy_override_details(
    scores: pd.DataFrame,
    rows: pd.Index,
    matched: pd.DataFrame,
    bands: list[str | None],
) -> None:
    scores.loc[rows, "override_id"] = matched["input_id"].to_numpy(object)
    scores.loc[rows, "override_score"] = matched["override_score"].to_numpy(np.float64)
    scores.loc[rows, "override_band"] = pd.Series(bands, index=rows, dtype=object)
    scores.loc[rows, "override_author"] = matched["author"].to_numpy(object)
    scores.loc[rows, "override_reason"] = matched["reason"].to_numpy(object)
    expires = pd.to_datetime(matched["expires_at"], utc=True)
    scores.loc[rows, "override_expires_at"] = expires.to_numpy()
