"""Product-usage metrics from the events table.

Missing versus zero: an account with at least one event up to the as-of date gets 0
for a count (``event_count``, ``active_users``, ``active_days``, ``features_used``) in
a window without events. An account with no event at all up to that date gets a
missing value for every event metric, so an account that sends no usage data is never
scored as an account with zero usage. ``event_value`` follows the same rule, counted
over events whose value is not null.

Ratios are missing when their denominator is 0. ``event_trend_{N}d`` is missing when
the N days before the window have no events, because there is no baseline to compare
with and any cap would be an arbitrary number. ``dau_mau`` is missing when no user was
active in the last 30 days. Events with a null ``user_id`` or ``feature`` count as
events but add no user or feature.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from healthscore.metrics.asof import (
    SECONDS_PER_DAY,
    epoch_seconds,
    seconds_to_days,
    timestamp_literal,
    window_start,
)
from healthscore.metrics.catalog import MetricRequest
from healthscore.metrics.joins import join_on_account

if TYPE_CHECKING:
    from healthscore.store import Store

__all__ = ["DAU_MAU_WINDOW_DAYS", "event_metrics"]

DAU_MAU_WINDOW_DAYS = 30

_NULL_FLOAT = ibis.null("float64")

# The maximum window whose day numbers come from comparisons with the window's
# midnights. The search adds two expression nodes per day. On 2 cores Ibis 12
# compiled a 365-day search in about 0.15 s and a 3650-day one in about 2 s.
_MAX_SEARCHED_DAYS = 400

# Each builder adds the aggregates its metric needs to ``aggregates`` (names starting
# with "_") and returns the final value as a function of the aggregated table.
_Aggregates = dict[str, ir.Value]
_Finish = Callable[[ir.Table], ir.Value]
_Builder = Callable[["_EventsAsOf", MetricRequest, _Aggregates], _Finish]


class _EventsAsOf:
    """The events up to the period end, with the window filters and day buckets.

    No per-row expression converts ``occurred_at``, because DuckDB 1.5.6 runs every
    conversion of a ``TIMESTAMPTZ`` through its ICU time zone code. That includes
    the cast that Ibis 12 puts before ``epoch``, casts to a date and ``date_trunc``.
    Over 10 million events such a conversion cost more than the rest of the
    aggregate, while comparisons with timestamp literals cost little.
    """

    def __init__(self, store: Store, end: dt.datetime) -> None:
        events = store.table("events")
        self.table = events.filter(events.occurred_at < timestamp_literal(end))
        self.end = end

    def within(self, days: int) -> ir.BooleanValue:
        """Select the last ``days`` days, the as-of date included."""
        return self.table.occurred_at >= window_start(self.end, days)

    def before(self, days: int) -> ir.BooleanValue:
        """Select the ``days`` days that precede the last ``days`` days."""
        occurred_at = self.table.occurred_at
        earlier = occurred_at >= window_start(self.end, 2 * days)
        return earlier & (occurred_at < window_start(self.end, days))

    def day_of(self, days: int) -> ir.IntegerValue:
        """Number the UTC day of each event in the last ``days`` days.

        Equal numbers mean the same UTC date, and events before the window get a
        missing value, so ``nunique`` counts active days. Windows up to
        ``_MAX_SEARCHED_DAYS`` find the day among the window's midnights. The
        expression grows with the window, so longer windows convert each event in
        the window to whole days since 1970-01-01 instead.
        """
        occurred_at = self.table.occurred_at
        if days <= _MAX_SEARCHED_DAYS:
            day = _day_search(occurred_at, self.end, days, 0, days)
        else:
            day = epoch_seconds(occurred_at) // SECONDS_PER_DAY
        return ibis.ifelse(self.within(days), day, ibis.null("int64"))


def _day_search(
    occurred_at: ir.TimestampValue, end: dt.datetime, days: int, low: int, high: int
) -> ir.IntegerValue:
    """Find the day in ``[low, high)`` of a time in the window by binary search.

    Day ``k`` starts ``k`` days after the window start, which is a UTC midnight.

    Each row evaluates about log2(``days``) comparisons with literals, which is
    cheaper than converting the timestamp on DuckDB.
    """
    if high - low == 1:
        return ibis.literal(low, type="int64")
    middle = (low + high) // 2
    later = occurred_at >= window_start(end, days - middle)
    return ibis.ifelse(
        later,
        _day_search(occurred_at, end, days, middle, high),
        _day_search(occurred_at, end, days, low, middle),
    )


def event_metrics(
    store: Store,
    end: dt.datetime,
    scope_ids: ir.Table,
    requests: Sequence[MetricRequest],
) -> ir.Table:
    """Compute the requested event metrics for every account in scope.

    All metrics but ``dau_mau`` come from one aggregate over the events table. The
    daily active users of ``dau_mau`` need a second one over the last 30 days.

    Parameters
    ----------
    store
        The store to read ``events`` from.
    end
        The exclusive period end.
    scope_ids
        One row per account in scope, with column ``account_id``.
    requests
        The event metrics to compute.

    Returns
    -------
    ibis.Table
        ``account_id`` and one column per request key, one row per account in scope.
    """
    window = _EventsAsOf(store, end)
    aggregates: dict[str, ir.Value] = {}
    finishers: dict[str, _Finish] = {}
    for request in requests:
        builder = _BUILDERS[request.base]
        finishers[request.key] = builder(window, request, aggregates)

    events = window.table
    per_account = events.group_by("account_id").aggregate(**aggregates)
    if any(request.base == "dau_mau" for request in requests):
        per_account = join_on_account(per_account, _user_days(window))

    finished = per_account.select(
        "account_id", **{key: finish(per_account) for key, finish in finishers.items()}
    )
    return join_on_account(scope_ids, finished)


def _user_days(window: _EventsAsOf) -> ir.Table:
    """Count distinct (user, UTC day) pairs per account in the dau_mau window.

    The sum over days of daily distinct users equals this count.
    """
    events = window.table
    recent = events.filter(window.within(DAU_MAU_WINDOW_DAYS), events.user_id.notnull())
    pairs = recent.select(
        "account_id", "user_id", _day=window.day_of(DAU_MAU_WINDOW_DAYS)
    ).distinct()
    return pairs.group_by("account_id").aggregate(_user_days=pairs.count())


def _count(
    window: _EventsAsOf, request: MetricRequest, aggregates: _Aggregates
) -> _Finish:
    events = window.table
    days = request.window_days or 0
    match request.base:
        case "event_count":
            value = events.count(where=window.within(days))
        case "active_users":
            value = events.user_id.nunique(where=window.within(days))
        case "active_days":
            value = window.day_of(days).nunique()
        case _:
            value = events.feature.nunique(where=window.within(days))
    aggregates[request.key] = value
    return lambda table: table[request.key].cast("float64")


def _event_value(
    window: _EventsAsOf, request: MetricRequest, aggregates: _Aggregates
) -> _Finish:
    events = window.table
    days = request.window_days or 0
    total = f"_value_{days}"
    aggregates[total] = events.value.sum(where=window.within(days))
    aggregates["_value_rows"] = events.value.count()

    def finish(table: ir.Table) -> ir.Value:
        has_values = table._value_rows > 0
        return ibis.ifelse(has_values, table[total].coalesce(0.0), _NULL_FLOAT)

    return finish


def _event_trend(
    window: _EventsAsOf, request: MetricRequest, aggregates: _Aggregates
) -> _Finish:
    events = window.table
    days = request.window_days or 0
    recent, earlier = f"_recent_{days}", f"_earlier_{days}"
    aggregates[recent] = events.count(where=window.within(days))
    aggregates[earlier] = events.count(where=window.before(days))

    def finish(table: ir.Table) -> ir.Value:
        ratio = table[recent].cast("float64") / table[earlier].cast("float64")
        return ibis.ifelse(table[earlier] > 0, ratio, _NULL_FLOAT)

    return finish


def _dau_mau(
    window: _EventsAsOf, request: MetricRequest, aggregates: _Aggregates
) -> _Finish:
    events = window.table
    aggregates["_monthly_users"] = events.user_id.nunique(
        where=window.within(DAU_MAU_WINDOW_DAYS)
    )

    def finish(table: ir.Table) -> ir.Value:
        daily_mean = table._user_days.cast("float64") / DAU_MAU_WINDOW_DAYS
        ratio = daily_mean / table._monthly_users.cast("float64")
        return ibis.ifelse(table._monthly_users > 0, ratio, _NULL_FLOAT)

    return finish


def _days_since(
    window: _EventsAsOf, request: MetricRequest, aggregates: _Aggregates
) -> _Finish:
    # Whole seconds are monotonic in time, so converting the latest (or earliest)
    # time of each account gives the same number as taking the maximum (or minimum)
    # of converted times, with one conversion per account instead of one per event.
    occurred_at = window.table.occurred_at
    if request.base == "days_since_last_event":
        name, value = "_last_at", occurred_at.max()
    else:
        name, value = "_first_at", occurred_at.min()
    aggregates[name] = value
    end_seconds = int(window.end.timestamp())
    return lambda table: seconds_to_days(end_seconds - epoch_seconds(table[name]))


_BUILDERS: dict[str, _Builder] = {
    "event_count": _count,
    "active_users": _count,
    "active_days": _count,
    "features_used": _count,
    "event_value": _event_value,
    "event_trend": _event_trend,
    "dau_mau": _dau_mau,
    "days_since_last_event": _days_since,
    "days_since_first_event": _days_since,
}
