"""Metrics from the inputs of customer-success managers (the human_inputs table).

An input counts as of a date when it was entered up to the end of that date, and
neither expired nor ended (cleared or replaced) by then. So with the period end E
(midnight UTC after the date), it counts when ``entered_at < E <= expires_at`` and
no audit row ended it before E.

``csm_sentiment`` is the value of the newest counting sentiment, 1 (worst) to 5
(best), and is missing when the account has none. ``csm_sentiment_rag`` gives the
same input as ``"red"`` (1 or 2), ``"amber"`` (3) or ``"green"`` (4 or 5).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from healthscore.metrics.asof import timestamp_literal
from healthscore.metrics.catalog import MetricRequest
from healthscore.metrics.joins import join_on_account

if TYPE_CHECKING:
    from healthscore.store import Store

__all__ = ["counting_inputs", "human_metrics", "input_ends", "newest_per_account"]


def input_ends(store: Store) -> ir.Table:
    """Return ``input_id`` and ``ended_at`` of every input that a change ended.

    A clear ends the cleared input, and a new input of the same kind ends the one
    it replaced. Clearing an ended input is rejected, so an input has at most one
    end. The earliest one is taken in any case.
    """
    audit = store.table("human_input_audit")
    ended = audit.filter(audit.ended_input_id.notnull())
    return ended.group_by(input_id=ended.ended_input_id).aggregate(
        ended_at=ended.changed_at.min()
    )


def counting_inputs(store: Store, end: dt.datetime, kind: str) -> ir.Table:
    """Return the inputs of one kind that count at the period end ``end``.

    Parameters
    ----------
    store
        The store to read.
    end
        The exclusive period end, from :func:`healthscore.metrics.asof.period_end`.
    kind
        ``"sentiment"`` or ``"override"``.

    Returns
    -------
    ibis.Table
        The ``human_inputs`` columns of the inputs entered before ``end`` that had
        not expired or ended by then.
    """
    inputs = store.table("human_inputs")
    moment = timestamp_literal(end)
    inputs = inputs.filter(
        (inputs.kind == kind)
        & (inputs.entered_at < moment)
        & (inputs.expires_at >= moment)
    )
    ends = input_ends(store)
    ended = ends.filter(ends.ended_at < moment).select("input_id")
    return inputs.anti_join(ended, "input_id")


def newest_per_account(inputs: ir.Table) -> ir.Table:
    """Keep each account's newest input, by ``entered_at`` then ``input_id``."""
    order = ibis.row_number().over(
        group_by=inputs.account_id,
        order_by=[inputs.entered_at.desc(), inputs.input_id.desc()],
    )
    ranked = inputs.mutate(_rank=order)
    return ranked.filter(ranked._rank == 0).drop("_rank")


def human_metrics(
    store: Store,
    end: dt.datetime,
    scope_ids: ir.Table,
    requests: Sequence[MetricRequest],
) -> ir.Table:
    """Compute the requested sentiment metrics for every account in scope.

    Parameters
    ----------
    store
        The store to read ``human_inputs`` and ``human_input_audit`` from.
    end
        The exclusive period end.
    scope_ids
        One row per account in scope, with column ``account_id``.
    requests
        The human-input metrics to compute.

    Returns
    -------
    ibis.Table
        ``account_id`` and one column per request key, missing for an account with
        no counting sentiment.
    """
    newest = newest_per_account(counting_inputs(store, end, "sentiment"))
    sentiment = newest.sentiment
    rag = ibis.cases((sentiment >= 4, "green"), (sentiment >= 3, "amber"), else_="red")
    values = {"csm_sentiment": sentiment, "csm_sentiment_rag": rag}
    per_account = newest.select(
        "account_id", **{r.key: values[r.base] for r in requests}
    )
    return join_on_account(scope_ids, per_account)
