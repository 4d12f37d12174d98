"""Exact attribution of a score change between two dates to its causes.

A change from ``score_before`` to ``score_after`` is split into parts in this order:

1. the profile part: what re-scoring the before metrics with the after profile changes,
   present only when the two profiles differ (another name, or the same name with
   another content hash);
2. one part per measure of the after profile: the points it moved while present on
   both dates, or the effect of its data going missing or coming back, which
   renormalises the other weights;
3. the rounding part: the float rounding of the engine's two scores.

The parts are :class:`fractions.Fraction` values, and their sum equals
``Fraction(score_after) - Fraction(score_before)`` exactly. The formula, its properties
and the statuses without parts are described in ``docs/attribution.md``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

import numpy as np
import pandas as pd

from healthscore.exceptions import ConfigError, InputDataError, NotFoundError
from healthscore.scoring.engine import score_accounts
from healthscore.scoring.profile import HealthProfile

__all__ = [
    "Attribution",
    "AttributionPart",
    "AttributionStatus",
    "PartKind",
    "ScoreInputs",
    "attribute_change",
    "attribute_changes",
]

logger = logging.getLogger(__name__)


class AttributionStatus(StrEnum):
    """Whether a score change could be split into parts, and if not, why."""

    ATTRIBUTED = "attributed"
    UNKNOWN_BEFORE = "unknown_before"
    UNKNOWN_AFTER = "unknown_after"
    UNKNOWN_BOTH = "unknown_both"
    NOT_SEPARABLE = "not_separable"


class PartKind(StrEnum):
    """The cause a part of a score change is attributed to."""

    PROFILE_SWITCH = "profile_switch"
    PROFILE_VERSION = "profile_version"
    DATA = "data"
    WENT_MISSING = "went_missing"
    CAME_BACK = "came_back"
    ROUNDING = "rounding"


_REASONS = {
    AttributionStatus.ATTRIBUTED: "",
    AttributionStatus.UNKNOWN_BEFORE: (
        "the score before is Unknown because its coverage is below the profile's "
        "min_coverage, so there is no change to split"
    ),
    AttributionStatus.UNKNOWN_AFTER: (
        "the score after is Unknown because its coverage is below the profile's "
        "min_coverage, so there is no change to split"
    ),
    AttributionStatus.UNKNOWN_BOTH: (
        "both scores are Unknown because their coverage is below the profiles' "
        "min_coverage, so there is no change to split"
    ),
    AttributionStatus.NOT_SEPARABLE: (
        "the before metrics have no value for any weighted measure of the after "
        "profile, so the profile change cannot be told apart from the data change"
    ),
}


@dataclass(frozen=True)
class ScoreInputs:
    """The inputs of one scoring run: a profile version and the metric table it scored.

    Attributes
    ----------
    profile
        The profile version the run used, for example parsed from the text that the
        ``profiles`` table stores.
    metrics
        One row per account, in the form :func:`score_accounts` takes. A profile with
        percentile measures needs the account's segment peers in the table, because
        an account alone in its segment gets the points of a segment of one.
    """

    profile: HealthProfile
    metrics: pd.DataFrame


@dataclass(frozen=True)
class AttributionPart:
    """One cause's share of a score change.

    Attributes
    ----------
    kind
        The cause.
    amount
        The exact share of the change, in score points.
    component, measure
        The measure of the after profile that a data, went-missing or came-back part
        belongs to, else None.
    points_before, points_after
        The measure's points under the after profile for the before and after
        metrics, NaN where its value was missing. NaN for the profile and rounding
        parts.
    """

    kind: PartKind
    amount: Fraction
    component: str | None = None
    measure: str | None = None
    points_before: float = math.nan
    points_after: float = math.nan

    @property
    def value(self) -> float:
        """The amount as the nearest float."""
        return float(self.amount)


@dataclass(frozen=True)
class Attribution:
    """A score change of one account between two dates, split into its causes.

    Attributes
    ----------
    account_id
        The account.
    status
        ``attributed`` when ``parts`` splits the change. Otherwise ``parts`` is
        empty and ``reason`` explains why.
    reason
        Why there are no parts, else the empty string.
    score_before, score_after
        The engine's scores, NaN when Unknown.
    coverage_before, coverage_after
        The share of nominal weight backed by data on each date.
    profile_before, profile_after
        The profile names.
    profile_hash_before, profile_hash_after
        The profile content hashes.
    parts
        The profile part (only when the hashes differ), one part per measure of the
        after profile in profile order, and the rounding part last.
    """

    account_id: Hashable
    status: AttributionStatus
    reason: str
    score_before: float
    score_after: float
    coverage_before: float
    coverage_after: float
    profile_before: str
    profile_after: str
    profile_hash_before: str
    profile_hash_after: str
    parts: tuple[AttributionPart, ...] = ()

    @property
    def change(self) -> Fraction | None:
        """The exact ``score_after - score_before``, None if either is Unknown."""
        if math.isnan(self.score_before) or math.isnan(self.score_after):
            return None
        return Fraction(self.score_after) - Fraction(self.score_before)

    def to_frame(self) -> pd.DataFrame:
        """Return the parts as a table.

        Returns
        -------
        pandas.DataFrame
            One row per part: ``kind``, ``component``, ``measure``,
            ``points_before``, ``points_after`` and ``amount`` (the nearest float).
            No rows when the status is not ``attributed``.
        """
        columns = ["kind", "component", "measure", "points_before", "points_after"]
        rows = [
            [str(part.kind), part.component, part.measure]
            + [part.points_before, part.points_after, part.value]
            for part in self.parts
        ]
        frame = pd.DataFrame(rows, columns=[*columns, "amount"], dtype=object)
        for name in ("points_before", "points_after", "amount"):
            frame[name] = frame[name].astype(np.float64)
        return frame

    def rounded(self, digits: int = 1) -> tuple[Decimal, ...]:
        """Round the parts so that they add up to the change of the rounded scores.

        Each part is first rounded down to ``digits`` decimals. The units still
        needed to reach ``round(score_after, digits) - round(score_before, digits)``
        then go one each to the parts that lost the most in rounding down, or are
        taken back from those that lost the least. This is the largest remainder
        method. The rounding part stays 0 and takes no unit.

        Parameters
        ----------
        digits
            Decimal places to keep, 0 or more.

        Returns
        -------
        tuple[decimal.Decimal, ...]
            One value per part, in the order of ``parts``. Empty when the status is
            not ``attributed``.

        Raises
        ------
        ConfigError
            If ``digits`` is negative.
        """
        if digits < 0:
            raise ConfigError(
                f"digits must be 0 or more; got {digits!r}. Pass the number of "
                "decimal places to keep.",
                field="digits",
            )
        if self.status is not AttributionStatus.ATTRIBUTED:
            return ()
        scale = 10**digits
        target = _round_half_even(self.score_after, scale) - _round_half_even(
            self.score_before, scale
        )
        units = _largest_remainder(self.parts, scale, target)
        return tuple(Decimal(count).scaleb(-digits) for count in units)


@dataclass(frozen=True)
class _AccountScore:
    """One account's engine output under one profile."""

    score: float
    coverage: float
    points: tuple[float, ...]


def attribute_change(
    before: ScoreInputs, after: ScoreInputs, account_id: Hashable
) -> Attribution:
    """Split one account's score change between two scoring runs into its causes.

    The scores are computed by :func:`score_accounts` from the inputs, so they match
    what the engine stores for the same inputs. The profiles' ``applies_to`` is not
    checked, because the caller has chosen the profile of each date. Only the rows
    of the account's segment are scored, which is all a percentile measure compares.

    Parameters
    ----------
    before, after
        The profile and metric table of the earlier and the later run.
    account_id
        The account, which must have a row in both metric tables.

    Returns
    -------
    Attribution
        With status ``attributed``, the parts sum exactly to
        ``Fraction(score_after) - Fraction(score_before)``.

    Raises
    ------
    InputDataError
        If a metric table has no ``account_id`` column or repeats an account.
    NotFoundError
        If the account has no row in one of the metric tables.

    Examples
    --------
    >>> from healthscore.scoring import parse_profile
    >>> profile = parse_profile('''
    ... name: usage
    ... components:
    ...   - name: usage
    ...     weight: 1
    ...     measures:
    ...       - metric: active_users
    ...         linear: {worst: 0, best: 50}
    ...       - metric: logins
    ...         linear: {worst: 0, best: 100}
    ... ''')
    >>> day1 = pd.DataFrame({"account_id": ["a"], "active_users": [40.0],
    ...                      "logins": [60.0]})
    >>> day2 = pd.DataFrame({"account_id": ["a"], "active_users": [20.0],
    ...                      "logins": [60.0]})
    >>> result = attribute_change(
    ...     ScoreInputs(profile, day1), ScoreInputs(profile, day2), "a")
    >>> result.score_before, result.score_after
    (70.0, 50.0)
    >>> [(part.kind.value, part.measure, part.value) for part in result.parts]
    [('data', 'active_users', -20.0), ('data', 'logins', 0.0), ('rounding', None, 0.0)]
    """
    before_rows = _peer_rows(before.metrics, account_id, "before")
    after_rows = _peer_rows(after.metrics, account_id, "after")
    scores = _score_runs(
        ScoreInputs(before.profile, before_rows), ScoreInputs(after.profile, after_rows)
    )
    account_scores = [scored[account_id] for scored in scores]
    attribution = _attribute(account_id, before.profile, after.profile, *account_scores)
    logger.debug(
        "attributed the score change of account %r: %s", account_id, attribution.status
    )
    return attribution


def attribute_changes(before: ScoreInputs, after: ScoreInputs) -> list[Attribution]:
    """Split the score change of every account that both runs scored.

    This scores each metric table once, so it is the way to attribute many
    accounts. The parts are built with fractions for each account, which costs far
    more than the scoring for large tables.

    Parameters
    ----------
    before, after
        The profile and metric table of the earlier and the later run.

    Returns
    -------
    list[Attribution]
        One per account with a row in both tables, in the order of ``after.metrics``.
        Accounts with a row in only one table are left out.

    Raises
    ------
    InputDataError
        If a metric table has no ``account_id`` column or repeats an account.
    """
    before_scores, rescored, after_scores = _score_runs(before, after)
    attributions = [
        _attribute(
            account_id,
            before.profile,
            after.profile,
            before_scores[account_id],
            rescored[account_id],
            after_scores[account_id],
        )
        for account_id in after_scores
        if account_id in before_scores
    ]
    logger.info(
        "attributed the score changes of %d accounts from profile %s (%s) to %s (%s); "
        "%d accounts were scored on only one date",
        len(attributions),
        before.profile.name,
        before.profile.hash[:12],
        after.profile.name,
        after.profile.hash[:12],
        len(before_scores) + len(after_scores) - 2 * len(attributions),
    )
    return attributions


def _peer_rows(metrics: pd.DataFrame, account_id: Hashable, side: str) -> pd.DataFrame:
    """Return the rows of the account's segment, the only peers a percentile uses."""
    if "account_id" not in metrics.columns:
        raise InputDataError(
            f"the {side} metrics table has no 'account_id' column; got columns "
            f"{list(metrics.columns)!r}. Add one row per account with its account_id."
        )
    rows = metrics["account_id"] == account_id
    if not rows.any():
        raise NotFoundError(
            f"account {account_id!r} has no row in the {side} metrics table. "
            "Attribute only accounts that both runs scored.",
            key=str(account_id),
        )
    if "segment" not in metrics.columns:
        return metrics
    segments = metrics["segment"]
    segment = segments[rows].iloc[0]
    same = segments.isna() if pd.isna(segment) else segments == segment
    return metrics[same.to_numpy(dtype=bool, na_value=False)]


def _score_runs(
    before: ScoreInputs, after: ScoreInputs
) -> tuple[
    dict[Hashable, _AccountScore],
    dict[Hashable, _AccountScore],
    dict[Hashable, _AccountScore],
]:
    """Score the before metrics with both profiles and the after metrics."""
    before_scores = _score_table(before.metrics, before.profile)
    after_scores = _score_table(after.metrics, after.profile)
    if before.profile.hash == after.profile.hash:
        return before_scores, before_scores, after_scores
    rescored = _score_table(before.metrics, after.profile)
    return before_scores, rescored, after_scores


def _score_table(
    metrics: pd.DataFrame, profile: HealthProfile
) -> dict[Hashable, _AccountScore]:
    # Percentile peers are grouped by segment, so scoring every segment leaves the
    # points of the segments the profile applies to unchanged.
    if profile.applies_to_segments is not None:
        profile = dataclasses.replace(profile, applies_to_segments=None)
    result = score_accounts(metrics, profile)

    shape = (len(result.scores), len(profile.measures))
    points = result.measures["points"].to_numpy(dtype=np.float64).reshape(shape)
    scores = result.scores["score"].to_numpy(dtype=np.float64)
    coverage = result.scores["coverage"].to_numpy(dtype=np.float64)
    return {
        account_id: _AccountScore(
            float(scores[i]), float(coverage[i]), tuple(points[i].tolist())
        )
        for i, account_id in enumerate(result.scores["account_id"])
    }


def _attribute(
    account_id: Hashable,
    before_profile: HealthProfile,
    after_profile: HealthProfile,
    before: _AccountScore,
    rescored: _AccountScore,
    after: _AccountScore,
) -> Attribution:
    status = _status(before, after, rescored, after_profile)
    parts: tuple[AttributionPart, ...] = ()
    if status is AttributionStatus.ATTRIBUTED:
        parts = _parts(before_profile, after_profile, before, rescored, after)
    return Attribution(
        account_id=account_id,
        status=status,
        reason=_REASONS[status],
        score_before=before.score,
        score_after=after.score,
        coverage_before=before.coverage,
        coverage_after=after.coverage,
        profile_before=before_profile.name,
        profile_after=after_profile.name,
        profile_hash_before=before_profile.hash,
        profile_hash_after=after_profile.hash,
        parts=parts,
    )


def _status(
    before: _AccountScore,
    after: _AccountScore,
    rescored: _AccountScore,
    after_profile: HealthProfile,
) -> AttributionStatus:
    unknown_before, unknown_after = math.isnan(before.score), math.isnan(after.score)
    if unknown_before and unknown_after:
        return AttributionStatus.UNKNOWN_BOTH
    if unknown_before:
        return AttributionStatus.UNKNOWN_BEFORE
    if unknown_after:
        return AttributionStatus.UNKNOWN_AFTER

    weights = after_profile.nominal_weights()
    _, backed_weight = _exact_totals(rescored.points, weights)
    if backed_weight == 0:
        return AttributionStatus.NOT_SEPARABLE
    return AttributionStatus.ATTRIBUTED


def _exact_totals(
    points: Sequence[float], weights: Sequence[float]
) -> tuple[Fraction, Fraction]:
    """Return the exact weighted points and weight of the present measures."""
    weighted_points, backed_weight = Fraction(0), Fraction(0)
    for value, weight in zip(points, weights, strict=True):
        if math.isnan(value):
            continue
        weighted_points += Fraction(weight) * Fraction(value)
        backed_weight += Fraction(weight)
    return weighted_points, backed_weight


def _parts(
    before_profile: HealthProfile,
    after_profile: HealthProfile,
    before: _AccountScore,
    rescored: _AccountScore,
    after: _AccountScore,
) -> tuple[AttributionPart, ...]:
    """Build the parts, which sum to the engine's score change exactly."""
    weighted, backed = _exact_totals(before.points, before_profile.nominal_weights())
    exact_before = weighted / backed
    weighted, backed = _exact_totals(rescored.points, after_profile.nominal_weights())
    exact_rescored = weighted / backed

    parts = []
    if before_profile.hash != after_profile.hash:
        kind = PartKind.PROFILE_VERSION
        if before_profile.name != after_profile.name:
            kind = PartKind.PROFILE_SWITCH
        parts.append(AttributionPart(kind, exact_rescored - exact_before))
    measure_parts = _measure_parts(after_profile, rescored, after, exact_rescored)
    parts.extend(measure_parts)

    # The exact parts sum to the exact score change. The engine's float scores each
    # differ from their exact ratio by float rounding, and this part carries that.
    exact_change = exact_rescored - exact_before
    exact_change += sum((part.amount for part in measure_parts), Fraction(0))
    engine_change = Fraction(after.score) - Fraction(before.score)
    parts.append(AttributionPart(PartKind.ROUNDING, engine_change - exact_change))
    return tuple(parts)


def _measure_parts(
    profile: HealthProfile,
    rescored: _AccountScore,
    after: _AccountScore,
    exact_rescored: Fraction,
) -> list[AttributionPart]:
    """Split ``S1 - S0`` per measure, with both sides scored by ``profile``.

    Here ``w`` is the measure's nominal weight, ``p0`` and ``p1`` its points, and
    ``D1`` the nominal weight backed by data after. The measure's part is:

    - ``w (p1 - p0) / D1`` when it is present on both dates,
    - ``w (S0 - p0) / D1`` when it went missing,
    - ``w (p1 - S0) / D1`` when it came back,
    - 0 when it is missing on both dates.
    """
    _, backed_after = _exact_totals(after.points, profile.nominal_weights())
    parts = []
    for (component, measure), weight, points_before, points_after in zip(
        profile.measures,
        profile.nominal_weights(),
        rescored.points,
        after.points,
        strict=True,
    ):
        kind, moved = _measure_change(points_before, points_after, exact_rescored)
        amount = Fraction(0)
        if moved != 0:
            amount = Fraction(weight) * moved / backed_after
        parts.append(
            AttributionPart(
                kind,
                amount,
                component=component.name,
                measure=measure.name,
                points_before=points_before,
                points_after=points_after,
            )
        )
    return parts


def _measure_change(
    points_before: float, points_after: float, exact_before: Fraction
) -> tuple[PartKind, Fraction]:
    """Return the part kind and the points it moves relative to the before score."""
    missing_before, missing_after = math.isnan(points_before), math.isnan(points_after)
    if missing_before and missing_after:
        return PartKind.DATA, Fraction(0)
    if missing_after:
        return PartKind.WENT_MISSING, exact_before - Fraction(points_before)
    if missing_before:
        return PartKind.CAME_BACK, Fraction(points_after) - exact_before
    return PartKind.DATA, Fraction(points_after) - Fraction(points_before)


def _round_half_even(value: float, scale: int) -> int:
    """Return ``value * scale`` rounded to the nearest integer, ties to even."""
    return round(Fraction(value) * scale)


def _largest_remainder(
    parts: Sequence[AttributionPart], scale: int, target: int
) -> list[int]:
    """Return whole units per part that add up to ``target`` units."""
    scaled = [part.amount * scale for part in parts]
    units = [math.floor(value) for value in scaled]
    remainders = [value - unit for value, unit in zip(scaled, units, strict=True)]
    for i, part in enumerate(parts):
        if part.kind is PartKind.ROUNDING:
            units[i], remainders[i] = 0, Fraction(0)

    order = [i for i in range(len(parts)) if parts[i].kind is not PartKind.ROUNDING]
    order.sort(key=lambda i: (-remainders[i], i))
    shortfall = target - sum(units)
    step = 1
    if shortfall < 0:
        order.reverse()
        step = -1
    for n in range(abs(shortfall)):
        units[order[n % len(order)]] += step
    return units
