"""Compute a table of metrics per account as of a date."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import ibis.expr.schema as sch
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from healthscore.exceptions import ConfigError
from healthscore.metrics.accounts import (
    account_columns,
    accounts_in_scope,
    attribute_metrics,
)
from healthscore.metrics.asof import period_end
from healthscore.metrics.catalog import (
    MetricRequest,
    available_metrics,
    parse_metric_requests,
)
from healthscore.metrics.events import event_metrics
from healthscore.metrics.feedback import survey_metrics
from healthscore.metrics.human import human_metrics
from healthscore.metrics.joins import join_on_account
from healthscore.metrics.support import ticket_metrics

if TYPE_CHECKING:
    from healthscore.store import Store

__all__ = ["compute_metrics", "metrics_expr"]

logger = logging.getLogger(__name__)

_SourceBuilder = Callable[
    ["Store", dt.datetime, ir.Table, Sequence[MetricRequest]], ir.Table
]

_SOURCE_BUILDERS: dict[str, _SourceBuilder] = {
    "account_attributes": lambda store, end, ids, requests: attribute_metrics(
        store, ids, requests
    ),
    "events": event_metrics,
    "survey_responses": survey_metrics,
    "tickets": ticket_metrics,
    "human_inputs": human_metrics,
}


def metrics_expr(
    store: Store,
    as_of: dt.date,
    names: Iterable[str],
    *,
    segments: Sequence[str] | None = None,
) -> ir.Table:
    """Build the Ibis expression of the metric table as of a date, without running it.

    Each source table feeds one grouped aggregate that computes all of its requested
    metrics, so the cost grows with the number of sources, not of metrics. Surveys
    and tickets also count their rows for the zero-or-missing rule, and ``dau_mau``
    adds a second aggregate over the last 30 days of events.

    Parameters
    ----------
    store
        The store to read.
    as_of
        The date. Rows with a time up to 23:59:59.999999 UTC on this date count.
    names
        Metric names, see :func:`healthscore.metrics.available_metrics`. A repeated
        name gives one column.
    segments
        Keep only accounts in these segments. ``None`` or empty keeps all.

    Returns
    -------
    ibis.Table
        ``account_id``, ``segment``, then one column per distinct name (requesting
        ``segment`` adds no second column), ordered by ``account_id``.

    Raises
    ------
    ConfigError
        If a name is unknown, ``names`` is a single string, or ``as_of`` is not a
        date.
    """
    if isinstance(names, str):
        raise ConfigError(
            f"names must be a list of metric names; got the string {names!r}. "
            f"Pass [{names!r}] for a single metric.",
            field="metrics",
        )
    end = period_end(as_of)
    requests = parse_metric_requests(list(names), available_metrics(store))
    scope = accounts_in_scope(store, end, segments)

    account_requests = [r for r in requests if r.spec.source == "accounts"]
    columns = {"account_id": scope.account_id, "segment": scope.segment}
    columns.update(account_columns(scope, end, account_requests))
    table = scope.select(**columns)

    scope_ids = scope.select("account_id")
    for source, build in _SOURCE_BUILDERS.items():
        source_requests = [r for r in requests if r.spec.source == source]
        if source_requests:
            source_table = build(store, end, scope_ids, source_requests)
            table = join_on_account(table, source_table)

    outputs = {"account_id": table.account_id, "segment": table.segment}
    for request in requests:
        if request.spec.name not in outputs:
            outputs[request.spec.name] = _typed(table[request.key], request)
    return table.select(**outputs).order_by("account_id")


def compute_metrics(
    store: Store,
    as_of: dt.date,
    names: Iterable[str],
    segments: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Compute metrics per account as of a date.

    Parameters
    ----------
    store
        The store to read.
    as_of
        The date. Rows with a time up to 23:59:59.999999 UTC on this date count.
    names
        Metric names, see :func:`healthscore.metrics.available_metrics`.
    segments
        Keep only accounts in these segments. ``None`` or empty keeps all.

    Returns
    -------
    pandas.DataFrame
        One row per account in scope, sorted by ``account_id``, with columns
        ``account_id``, ``segment``, then one per distinct name. Number metrics are
        float64 with NaN for missing values. Text metrics, ``account_id`` and
        ``segment`` are object columns with None for missing values.

    Raises
    ------
    ConfigError
        If a name is unknown, ``names`` is a single string, or ``as_of`` is not a
        date.

    Examples
    --------
    >>> import datetime as dt
    >>> from healthscore.store import Store
    >>> store = Store.open(":memory:")
    >>> compute_metrics(store, dt.date(2025, 3, 31), ["arr", "event_count_30d"])
    Empty DataFrame
    Columns: [account_id, segment, arr, event_count_30d]
    Index: []
    """
    started = time.perf_counter()
    expr = metrics_expr(store, as_of, names, segments=segments)
    frame = expr.to_pyarrow().to_pandas()
    frame = _normalise_dtypes(frame, expr.schema())

    logger.info(
        "computed %d metrics for %d accounts as of %s in %.2f s",
        len(frame.columns) - 2,
        len(frame),
        as_of.isoformat(),
        time.perf_counter() - started,
    )
    return frame


def _typed(value: ir.Value, request: MetricRequest) -> ir.Value:
    if request.spec.kind == "number":
        return value.cast("float64")
    return value.cast("string")


def _normalise_dtypes(frame: pd.DataFrame, schema: sch.Schema) -> pd.DataFrame:
    """Give number columns float64 with NaN and the others object with None."""
    columns = {}
    for name in frame.columns:
        column = frame[name]
        if schema[name].is_numeric():
            columns[name] = column.astype(np.float64)
        else:
            values = column.astype(object)
            columns[name] = values.where(column.notna(), None)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))
