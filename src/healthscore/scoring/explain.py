"""Rounded score explanations whose parts add up to the rounded score."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

__all__ = ["round_contributions"]


def round_contributions(
    contributions: Sequence[float], score: float, digits: int = 1
) -> list[float]:
    """Round contributions so that the rounded parts add up to the rounded score.

    Rounding each contribution on its own can make the parts miss the score by a few
    units in the last digit. This function uses the largest remainder method
    instead. Each contribution is first rounded down to ``digits`` decimals. The
    units still needed to reach ``round(score, digits)`` then go one each to the
    contributions that lost the most in rounding down, the earlier one on a tie. If
    the rounded-down parts already exceed the target, units are taken back from
    those that lost the least.

    Parameters
    ----------
    contributions
        The measure contributions of one account, as in ``ScoreResult.measures``.
    score
        The account's score, normally the sum of ``contributions``.
    digits
        Decimal places to keep, 0 or more.

    Returns
    -------
    list[float]
        One value per contribution with at most ``digits`` decimals. Their decimal
        forms (``Decimal(str(x))``) sum exactly to ``round(score, digits)``. A NaN
        score, which an account in the Unknown band has, gives NaN for every part.

    Examples
    --------
    >>> round_contributions([33.34, 33.33, 33.33], 100.0, digits=0)
    [34.0, 33.0, 33.0]
    >>> round_contributions([10.06, 20.03, 30.03], 60.12, digits=1)
    [10.1, 20.0, 30.0]
    """
    if math.isnan(score):
        return [math.nan] * len(contributions)
    unit = Decimal(1).scaleb(-digits)
    target = Decimal(score).quantize(unit, rounding=ROUND_HALF_EVEN)

    exact = [Decimal(value) for value in contributions]
    floors = [value.quantize(unit, rounding=ROUND_FLOOR) for value in exact]
    remainders = [value - floor for value, floor in zip(exact, floors, strict=True)]
    shortfall = int((target - sum(floors, Decimal(0))) / unit)

    order = sorted(range(len(floors)), key=lambda i: (-remainders[i], i))
    step = unit
    if shortfall < 0:
        order.reverse()
        step = -unit
    for n in range(abs(shortfall)):
        if not order:
            break
        floors[order[n % len(order)]] += step
    return [float(value) for value in floors]
