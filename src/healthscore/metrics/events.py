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
active in the last 30 days. ``days_between_events_{N}d`` is missing with fewer than 2
active days in its window, and ``value_per_active_day_{N}d`` without an active day.
Events with a null ``user_id`` or ``feature`` count as
events but add no user or feature.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dtypes
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
from healthscore.metrics.rollup import day_number, use_rollups

if TYPE_CHECKING:
    from healthscore.store import Store

__all__ = ["DAU_MAU_WINDOW_DAYS", "event_metrics"]

DAU_MAU_WINDOW_DAYS = 30

_NULL_FLOAT = ibis.null("float64")

# The maximum window whose day numbers come from comparisons with the window's
# midnights. The search adds two expression nodes per day. On 2 cores Ibis 12
# compiled a 365-day search in about 0.15 s and a 3650-day one in about 2 s.
_MAX_SEARCHED_DAYS = 400


@ibis.udf.scalar.builtin(
    name="epoch_us", signature=((dtypes.Timestamp(timezone="UTC"),), dtypes.int64)
)
def _epoch_us(value: ir.TimestampValue) -> ir.IntegerValue:
    """Return DuckDB's microseconds since 1970-01-01 UTC."""


@ibis.udf.scalar.builtin(
    name="make_timestamp", signature=((dtypes.int64,), dtypes.Timestamp())
)
def _time_from_us(micros: ir.IntegerValue) -> ir.TimestampValue:
    """Return DuckDB's UTC time, without a time zone, ``micros`` after 1970."""


def _time_extreme(
    column: ir.TimestampValue, on_duckdb: bool, latest: bool
) -> ir.TimestampValue:
    """Return the latest (or earliest) time of ``column`` per group.

    On 2 cores, DuckDB 1.5.6 took 0.40 s for the latest ``TIMESTAMPTZ`` per account
    over 9.7 million rollup rows, and 0.08 s for the largest microseconds. So on
    DuckDB the microseconds are aggregated, and the result is a UTC time without a
    time zone, which :func:`~healthscore.metrics.asof.epoch_seconds` reads alike.
    """
    if not on_duckdb:
        return column.max() if latest else column.min()
    micros = _epoch_us(column)
    return _time_from_us(micros.max() if latest else micros.min())


# Each builder adds the aggregates its metric needs (names starting with "_") and
# returns the final value as a function of the aggregated table.
_Finish = Callable[[ir.Table], ir.Value]
_Builder = Callable[["_EventSource", MetricRequest, "_Aggregates"], _Finish]


@dataclass
class _Aggregates:
    """Aggregates per account over the source's main table and its feature table."""

    main: dict[str, ir.Value] = field(default_factory=dict)
    features: dict[str, ir.Value] = field(default_factory=dict)


class _EventsAsOf:
    """The raw events up to the period end, with the window filters and day buckets.

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
        self.on_duckdb = store.backend.name == "duckdb"

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

    def count(self, where: ir.BooleanValue) -> ir.IntegerValue:
        """Count the events that ``where`` selects."""
        return self.table.count(where=where)

    def features_within(self, days: int) -> ir.IntegerValue:
        """Count the distinct features of the last ``days`` days."""
        return self.table.feature.nunique(where=self.within(days))

    def value_sum(self, days: int) -> ir.FloatingValue:
        """Add up the event values of the last ``days`` days."""
        return self.table.value.sum(where=self.within(days))

    def value_rows(self) -> ir.IntegerValue:
        """Count the events with a value up to the period end."""
        return self.table.value.count()

    def first_at(self) -> ir.TimestampValue:
        """Return the time of the first event up to the period end."""
        return _time_extreme(self.table.occurred_at, self.on_duckdb, latest=False)

    def last_at(self) -> ir.TimestampValue:
        """Return the time of the last event up to the period end."""
        return _time_extreme(self.table.occurred_at, self.on_duckdb, latest=True)


class _RollupAsOf:
    """The daily rollups up to the period end, which must be a UTC midnight.

    Rows are partial aggregates, so counts and sums add up the rows. A (user, day)
    pair can have a row per load, so the distinct counts stay distinct counts.
    """

    def __init__(self, store: Store, end: dt.datetime) -> None:
        self.end_day = day_number(end)
        user_days = store.table("event_user_days")
        self.table = user_days.filter(user_days.day < self.end_day)
        feature_days = store.table("event_feature_days")
        self.feature_table = feature_days.filter(feature_days.day < self.end_day)
        self.feature_window_days = 0
        self.end = end
        self.on_duckdb = store.backend.name == "duckdb"

    def within(self, days: int, table: ir.Table | None = None) -> ir.BooleanValue:
        """Select the last ``days`` days, the as-of date included."""
        table = self.table if table is None else table
        return table.day >= self.end_day - days

    def before(self, days: int) -> ir.BooleanValue:
        """Select the ``days`` days that precede the last ``days`` days."""
        day = self.table.day
        return (day >= self.end_day - 2 * days) & (day < self.end_day - days)

    def day_of(self, days: int) -> ir.IntegerValue:
        """Return the UTC day number of each row in the last ``days`` days."""
        return ibis.ifelse(self.within(days), self.table.day, ibis.null("int64"))

    def count(self, where: ir.BooleanValue) -> ir.IntegerValue:
        """Count the events of the rows that ``where`` selects."""
        return self.table.events.sum(where=where).coalesce(0)

    def features_within(self, days: int) -> ir.IntegerValue:
        """Count the distinct features of the last ``days`` days."""
        self.feature_window_days = max(self.feature_window_days, days)
        within = self.within(days, self.feature_table)
        return self.feature_table.feature.nunique(where=within)

    def feature_rows(self) -> ir.Table:
        """Return the feature rows of the longest window that a metric requested."""
        table = self.feature_table
        return table.filter(self.within(self.feature_window_days, table))

    def value_sum(self, days: int) -> ir.FloatingValue:
        """Add up the event values of the last ``days`` days."""
        return self.table.value_sum.sum(where=self.within(days))

    def value_rows(self) -> ir.IntegerValue:
        """Count the events with a value up to the period end."""
        return self.table.value_count.sum()

    def first_at(self) -> ir.TimestampValue:
        """Return the time of the first event up to the period end."""
        return _time_extreme(self.table.first_at, self.on_duckdb, latest=False)

    def last_at(self) -> ir.TimestampValue:
        """Return the time of the last event up to the period end."""
        return _time_extreme(self.table.last_at, self.on_duckdb, latest=True)


_EventSource = _EventsAsOf | _RollupAsOf


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

    The metrics read the daily rollups of :mod:`healthscore.metrics.rollup` when
    they are current and the events table otherwise. Deciding runs three small
    queries. Both give the same numbers, except that ``event_value`` adds the same
    values in another order, so its last bits can differ.

    All metrics but ``dau_mau`` and ``features_used`` come from one aggregate per
    account. The daily active users of ``dau_mau`` need a second aggregate over the
    last 30 days, and on the rollups ``features_used`` reads a table of its own.

    Parameters
    ----------
    store
        The store to read ``events`` or the rollups from.
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
    source: _EventSource
    if use_rollups(store, end):
        source = _RollupAsOf(store, end)
    else:
        source = _EventsAsOf(store, end)
    aggregates = _Aggregates()
    finishers: dict[str, _Finish] = {}
    for request in requests:
        builder = _BUILDERS[request.base]
        finishers[request.key] = builder(source, request, aggregates)

    per_account = _per_account(source, aggregates)
    if any(request.base == "dau_mau" for request in requests):
        per_account = join_on_account(per_account, _user_days(source))

    finished = per_account.select(
        "account_id", **{key: finish(per_account) for key, finish in finishers.items()}
    )
    return join_on_account(scope_ids, finished)


def _per_account(source: _EventSource, aggregates: _Aggregates) -> ir.Table:
    """Aggregate per account with an event.

    On the rollups the feature counts come from their own table, and an account
    with events but no row there gets 0 features.
    """
    if isinstance(source, _EventsAsOf):
        main = {**aggregates.main, **aggregates.features}
        return source.table.group_by("account_id").aggregate(**main)

    per_account = source.table.group_by("account_id").aggregate(**aggregates.main)
    if not aggregates.features:
        return per_account
    rows = source.feature_rows()
    features = rows.group_by("account_id").aggregate(**aggregates.features)
    joined = join_on_account(per_account, features)
    zeroed = {name: joined[name].coalesce(0) for name in aggregates.features}
    return joined.mutate(**zeroed)


def _user_days(source: _EventSource) -> ir.Table:
    """Count distinct (user, UTC day) pairs per account in the dau_mau window.

    The sum over days of daily distinct users equals this count.
    """
    rows = source.table
    recent = rows.filter(source.within(DAU_MAU_WINDOW_DAYS), rows.user_id.notnull())
    if isinstance(source, _RollupAsOf):
        return _rollup_user_days(recent)

    pairs = recent.select(
        "account_id", "user_id", _day=source.day_of(DAU_MAU_WINDOW_DAYS)
    ).distinct()
    return pairs.group_by("account_id").aggregate(_user_days=pairs.count())


def _rollup_user_days(recent: ir.Table) -> ir.Table:
    """Count distinct (user, day) pairs per account from rollup rows.

    A rollup row is one (load, account, user, day), so on a day that only one load
    covers each row is a distinct pair and counting rows is enough. Only the days
    that several loads cover need the distinct pairs, which cost several times as
    much to find.
    """
    loads_per_day = recent.group_by("day").aggregate(loads=recent.load_id.nunique())
    shared = loads_per_day.filter(loads_per_day.loads > 1).select("day")

    single = recent.anti_join(shared, "day")
    single_counts = single.group_by("account_id").aggregate(pairs=single.count())

    several = recent.semi_join(shared, "day")
    distinct = several.select("account_id", "user_id", "day").distinct()
    several_counts = distinct.group_by("account_id").aggregate(pairs=distinct.count())

    counts = single_counts.union(several_counts, distinct=False)
    return counts.group_by("account_id").aggregate(_user_days=counts.pairs.sum())


def _count(
    source: _EventSource, request: MetricRequest, aggregates: _Aggregates
) -> _Finish:
    days = request.window_days or 0
    match request.base:
        case "event_count":
            aggregates.main[request.key] = source.count(source.within(days))
        case "active_users":
            return _users_within(source, days, aggregates)
        case "active_days":
            aggregates.main[request.key] = source.day_of(days).nunique()
        case _:
            aggregates.features[request.key] = source.features_within(days)
    return lambda table: table[request.key].cast("float64")


def _users_within(source: _EventSource, days: int, aggregates: _Aggregates) -> _Finish:
    """Count the distinct users of the last ``days`` days, once per window.

    ``active_users`` and ``dau_mau`` share the count of the same window.
    """
    name = f"_users_{days}"
    aggregates.main[name] = source.table.user_id.nunique(where=source.within(days))
    return lambda table: table[name].cast("float64")


def _event_value(
    source: _EventSource, request: MetricRequest, aggregates: _Aggregates
) -> _Finish:
    days = request.window_days or 0
    total = f"_value_{days}"
    aggregates.main[total] = source.value_sum(days)
    aggregates.main["_value_rows"] = source.value_rows()

    def finish(table: ir.Table) -> ir.Value:
        has_values = table._value_rows > 0
        return ibis.ifelse(has_values, table[total].coalesce(0.0), _NULL_FLOAT)

    return finish


def _event_trend(
    source: _EventSource, request: MetricRequest, aggregates: _Aggregates
) -> _Finish:
    days = request.window_days or 0
    recent, earlier = f"_recent_{days}", f"_earlier_{days}"
    aggregates.main[recent] = source.count(source.within(days))
    aggregates.main[earlier] = source.count(source.before(days))

    def finish(table: ir.Table) -> ir.Value:
        ratio = table[recent].cast("float64") / table[earlier].cast("float64")
        return ibis.ifelse(table[earlier] > 0, ratio, _NULL_FLOAT)

    return finish


def _days_between(
    source: _EventSource, request: MetricRequest, aggregates: _Aggregates
) -> _Finish:
    """Mean days between consecutive active days of the window.

    Equals (last active day - first active day) / (active days - 1), because the
    gaps between consecutive active days add up to the span.
    """
    days = request.window_days or 0
    day = source.day_of(days)
    first, last, count = f"_first_day_{days}", f"_last_day_{days}", f"_days_{days}"
    aggregates.main[first] = day.min()
    aggregates.main[last] = day.max()
    aggregates.main[count] = day.nunique()

    def finish(table: ir.Table) -> ir.Value:
        span = (table[last] - table[first]).cast("float64")
        mean_gap = span / (table[count] - 1).cast("float64")
        return ibis.ifelse(table[count] >= 2, mean_gap, _NULL_FLOAT)

    return finish


def _value_per_active_day(
    source: _EventSource, request: MetricRequest, aggregates: _Aggregates
) -> _Finish:
    days = request.window_days or 0
    total, count = f"_value_{days}", f"_days_{days}"
    aggregates.main[total] = source.value_sum(days)
    aggregates.main["_value_rows"] = source.value_rows()
    aggregates.main[count] = source.day_of(days).nunique()

    def finish(table: ir.Table) -> ir.Value:
        ratio = table[total].coalesce(0.0) / table[count].cast("float64")
        has_days = (table[count] > 0) & (table._value_rows > 0)
        return ibis.ifelse(has_days, ratio, _NULL_FLOAT)

    return finish


def _dau_mau(
    source: _EventSource, request: MetricRequest, aggregates: _Aggregates
) -> _Finish:
    monthly_users = _users_within(source, DAU_MAU_WINDOW_DAYS, aggregates)

    def finish(table: ir.Table) -> ir.Value:
        daily_mean = table._user_days.cast("float64") / DAU_MAU_WINDOW_DAYS
        users = monthly_users(table)
        return ibis.ifelse(users > 0, daily_mean / users, _NULL_FLOAT)

    return finish


def _days_since(
    source: _EventSource, request: MetricRequest, aggregates: _Aggregates
) -> _Finish:
    # Whole seconds are monotonic in time, so converting the latest (or earliest)
    # time of each account gives the same number as taking the maximum (or minimum)
    # of converted times, with one conversion per account instead of one per event.
    if request.base == "days_since_last_event":
        name, value = "_last_at", source.last_at()
    else:
        name, value = "_first_at", source.first_at()
    aggregates.main[name] = value
    end_seconds = int(source.end.timestamp())
    return lambda table: seconds_to_days(end_seconds - epoch_seconds(table[name]))


_BUILDERS: dict[str, _Builder] = {
    "event_count": _count,
    "active_users": _count,
    "active_days": _count,
    "features_used": _count,
    "event_value": _event_value,
    "event_trend": _event_trend,
    "days_between_events": _days_between,
    "value_per_active_day": _value_per_active_day,
    "dau_mau": _dau_mau,
    "days_since_last_event": _days_since,
    "days_since_first_event": _days_since,
}
