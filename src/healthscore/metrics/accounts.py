"""Accounts in scope as of a date, their columns and their stored attributes as metrics.

NOTE: the accounts and account_attributes tables keep only current values, so ARR,
plan, seats, renewal date and attributes read today's value for any as-of date. Only
``created_at`` and ``churned_at`` decide which accounts are in scope at that date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import ibis.expr.types as ir

from healthscore.metrics.asof import (
    epoch_seconds,
    seconds_to_days,
    timestamp_literal,
)
from healthscore.metrics.catalog import MetricRequest

if TYPE_CHECKING:
    from healthscore.store import Store

__all__ = ["account_columns", "accounts_in_scope", "attribute_metrics"]


def accounts_in_scope(
    store: Store, end: dt.datetime, segments: Sequence[str] | None = None
) -> ir.Table:
    """Select the accounts that are customers at the period end.

    An account is in scope when it was created before ``end`` (or has no creation
    time) and has not churned before ``end`` (``churned_at`` is null or at or after
    ``end``). An account with ``churned`` true but no ``churned_at`` stays in scope,
    because the date it left is unknown.

    Parameters
    ----------
    store
        The store to read ``accounts`` from.
    end
        The exclusive period end from :func:`healthscore.metrics.asof.period_end`.
    segments
        Keep only these segments. ``None`` or an empty sequence keeps all.
    """
    accounts = store.table("accounts")
    end_literal = timestamp_literal(end)

    created = accounts.created_at.isnull() | (accounts.created_at < end_literal)
    not_churned = accounts.churned_at.isnull() | (accounts.churned_at >= end_literal)
    scope = accounts.filter(created, not_churned)

    if segments:
        scope = scope.filter(scope.segment.isin(list(segments)))
    return scope


def account_columns(
    scope: ir.Table, end: dt.datetime, requests: Sequence[MetricRequest]
) -> dict[str, ir.Value]:
    """Build the expressions over ``scope`` for account-column metrics by request key.

    ``tenure_days`` is the period end minus ``created_at`` and ``days_to_renewal`` is
    ``renewal_at`` minus the period end, both in fractional days and missing when the
    time is null.
    """
    end_seconds = int(end.timestamp())
    columns: dict[str, ir.Value] = {}
    for request in requests:
        if request.base == "tenure_days":
            age = end_seconds - epoch_seconds(scope.created_at)
            columns[request.key] = seconds_to_days(age)
        elif request.base == "days_to_renewal":
            remaining = epoch_seconds(scope.renewal_at) - end_seconds
            columns[request.key] = seconds_to_days(remaining)
        else:
            columns[request.key] = scope[request.base]
    return columns


def attribute_metrics(
    store: Store, scope_ids: ir.Table, requests: Sequence[MetricRequest]
) -> ir.Table:
    """Pivot the requested attributes to one column each, one row per account in scope.

    A number metric reads ``number_value`` and a text metric reads ``text_value``.
    An account without the attribute gets a missing value.
    """
    attributes = store.table("account_attributes")
    names = sorted({request.base for request in requests})
    attributes = attributes.filter(attributes.name.isin(names))

    # NOTE: if an account has several rows for one attribute, which the schema does
    # not forbid, the largest value wins: numerically for numbers and in string
    # order for text.
    values = {}
    for request in requests:
        column = (
            attributes.number_value
            if request.spec.kind == "number"
            else attributes.text_value
        )
        values[request.key] = column.max(where=attributes.name == request.base)
    pivot = attributes.group_by("account_id").aggregate(**values)

    joined = scope_ids.left_join(pivot, "account_id")
    return joined.select("account_id", *values)
