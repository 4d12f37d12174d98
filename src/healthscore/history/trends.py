"""Score trends: each account's stored score now and a number of days before."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from healthscore.exceptions import ConfigError
from healthscore.store import Store

__all__ = ["DEFAULT_TREND_DAYS", "score_trends"]

logger = logging.getLogger(__name__)

#: The windows, in days, that :func:`score_trends` compares by default.
DEFAULT_TREND_DAYS = (7, 30, 90)


def score_trends(
    store: Store,
    as_of: dt.date | None,
    windows: Sequence[int] = DEFAULT_TREND_DAYS,
) -> pd.DataFrame:
    """Return each account's score, its score ``N`` days earlier and the change.

    Every score is that of the account's newest run of its date: the run with the
    latest ``computed_at``, and of those the greatest ``run_id``.

    Parameters
    ----------
    store
        The store to read.
    as_of
        The date of the current score. None takes each account's newest date.
    windows
        The numbers of days to look back, each at least 1.

    Returns
    -------
    pandas.DataFrame
        One row per account with a score on the current date, sorted by
        ``account_id``: ``account_id``, ``as_of``, ``score``, then for each window
        ``N`` the columns ``score_Nd`` (the score as of ``as_of`` minus N days) and
        ``change_Nd`` (``score`` minus ``score_Nd``). A score is NaN when its band
        is Unknown or no run of that date scored the account, and so is a change
        with a NaN side.

    Raises
    ------
    ConfigError
        If a window is not a whole number of at least 1.
    """
    days = _check_windows(windows)
    daily = _daily_scores(store)
    current = _current_scores(daily, as_of)
    for n in days:
        past = daily.select(
            _account=daily.account_id,
            _date=daily.as_of,
            **{f"score_{n}d": daily.score},
        )
        earlier = current.as_of - ibis.interval(days=n)
        current = current.left_join(
            past,
            [current.account_id == past._account, earlier.cast("date") == past._date],
        ).drop("_account", "_date")

    frame = current.order_by("account_id").to_pandas()
    return _with_changes(frame, days)


def _check_windows(windows: Sequence[int]) -> list[int]:
    days = []
    for value in windows:
        is_whole = isinstance(value, int | np.integer) and not isinstance(value, bool)
        if not is_whole or value < 1:
            raise ConfigError(
                f"trend windows must be whole numbers of days of at least 1; got "
                f"{value!r}. Pass windows such as (7, 30, 90).",
                field="windows",
            )
        days.append(int(value))
    return list(dict.fromkeys(days))


def _daily_scores(store: Store) -> ir.Table:
    """Select the newest run's score per account and as-of date."""
    scores = store.table("scores")
    order = ibis.row_number().over(
        group_by=[scores.account_id, scores.as_of],
        order_by=[scores.computed_at.desc(), scores.run_id.desc()],
    )
    newest = scores.mutate(_rank=order).filter(ibis._["_rank"] == 0)
    return newest.select("account_id", "as_of", "score")


def _current_scores(daily: ir.Table, as_of: dt.date | None) -> ir.Table:
    if as_of is not None:
        return daily.filter(daily.as_of == as_of)
    order = ibis.row_number().over(
        group_by=daily.account_id, order_by=daily.as_of.desc()
    )
    return daily.mutate(_rank=order).filter(ibis._["_rank"] == 0).drop("_rank")


def _with_changes(frame: pd.DataFrame, days: list[int]) -> pd.DataFrame:
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    frame["score"] = frame["score"].astype(np.float64)
    for n in days:
        past = frame[f"score_{n}d"].astype(np.float64)
        frame[f"score_{n}d"] = past
        frame[f"change_{n}d"] = frame["score"] - past
    columns = ["account_id", "as_of", "score"]
    columns += [c for n in days for c in (f"score_{n}d", f"change_{n}d")]
    return frame[columns].reset_index(drop=True)
