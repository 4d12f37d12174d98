"""Support metrics from the tickets table.

A ticket is open at the period end when it was opened before it and is not resolved
before it (``resolved_at`` is null or later). The ``status`` column is not read, so a
ticket marked closed without a ``resolved_at`` counts as open. High priority means a
priority of high, urgent, critical or p1, compared after trimming and lower-casing.

Missing versus zero: the ticket counts of an account without tickets are 0 when the
store contains a ticket of any account opened up to the as-of date. They are missing
when it contains none, because then support data was never loaded.
``median_hours_to_resolve_{N}d`` is missing for an account with no ticket resolved in
the window. A ticket whose ``resolved_at`` is before its ``opened_at`` is left out of
that median.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from healthscore.metrics.asof import epoch_seconds, timestamp_literal, window_start
from healthscore.metrics.catalog import MetricRequest
from healthscore.metrics.joins import zero_fill_when_loaded

if TYPE_CHECKING:
    from healthscore.store import Store

__all__ = ["HIGH_PRIORITIES", "ticket_metrics"]

HIGH_PRIORITIES = ("high", "urgent", "critical", "p1")

_SECONDS_PER_HOUR = 3_600


def ticket_metrics(
    store: Store,
    end: dt.datetime,
    scope_ids: ir.Table,
    requests: Sequence[MetricRequest],
) -> ir.Table:
    """Compute the requested ticket metrics for every account in scope.

    Parameters
    ----------
    store
        The store to read ``tickets`` from.
    end
        The exclusive period end.
    scope_ids
        One row per account in scope, with column ``account_id``.
    requests
        The ticket metrics to compute.

    Returns
    -------
    ibis.Table
        ``account_id`` and one column per request key, one row per account in scope.
    """
    end_literal = timestamp_literal(end)
    tickets = store.table("tickets")
    tickets = tickets.filter(tickets.opened_at < end_literal)
    is_open = tickets.resolved_at.isnull() | (tickets.resolved_at >= end_literal)
    is_high = tickets.priority.strip().lower().isin(list(HIGH_PRIORITIES))

    aggregates: dict[str, ir.Value] = {}
    for request in requests:
        if request.base == "open_tickets":
            value = tickets.count(where=is_open)
        elif request.base == "high_priority_open_tickets":
            value = tickets.count(where=is_open & is_high)
        elif request.base == "tickets_opened":
            days = request.window_days or 0
            value = tickets.count(where=tickets.opened_at >= window_start(end, days))
        else:
            value = _median_hours(tickets, end, request.window_days or 0)
        aggregates[request.key] = value.cast("float64")
    per_account = tickets.group_by("account_id").aggregate(**aggregates)

    keys = [r.key for r in requests]
    count_keys = [r.key for r in requests if r.base != "median_hours_to_resolve"]
    return zero_fill_when_loaded(scope_ids, per_account, tickets, keys, count_keys)


def _median_hours(tickets: ir.Table, end: dt.datetime, days: int) -> ir.Value:
    resolved_at = tickets.resolved_at
    resolved = (
        (resolved_at >= window_start(end, days))
        & (resolved_at < timestamp_literal(end))
        & (resolved_at >= tickets.opened_at)
    )
    seconds = epoch_seconds(resolved_at) - epoch_seconds(tickets.opened_at)
    hours = seconds.cast("float64") / _SECONDS_PER_HOUR
    # The median skips nulls. Ibis 12 compiles median(where=...) on PySpark into a
    # percentile whose fraction is null outside the filter, which Spark rejects.
    return ibis.ifelse(resolved, hours, ibis.null("float64")).median()
