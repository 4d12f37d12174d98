"""Survey metrics: NPS, CSAT and response counts from the survey_responses table.

Survey names are compared after trimming and lower-casing, so "NPS" and " nps " are
both NPS responses. NPS uses the standard bands on a 0-10 scale: promoters score 9 or
more, detractors 6 or less. CSAT is the plain mean of the stored scores, on whatever
scale the survey used.

Missing versus zero: ``nps_{N}d`` and ``csat_{N}d`` are missing for an account with no
response to that survey in the window. ``survey_responses_{N}d`` is 0 for an account
without responses when the store contains at least one response from any account up to
the as-of date. When it contains none, survey data was never loaded and the count is
missing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir

from healthscore.metrics.asof import timestamp_literal, window_start
from healthscore.metrics.catalog import MetricRequest
from healthscore.metrics.joins import zero_fill_when_loaded

if TYPE_CHECKING:
    from healthscore.store import Store

__all__ = ["DETRACTOR_MAX", "PROMOTER_MIN", "survey_metrics"]

PROMOTER_MIN = 9
DETRACTOR_MAX = 6

_NULL_FLOAT = ibis.null("float64")


def survey_metrics(
    store: Store,
    end: dt.datetime,
    scope_ids: ir.Table,
    requests: Sequence[MetricRequest],
) -> ir.Table:
    """Compute the requested survey metrics for every account in scope.

    Parameters
    ----------
    store
        The store to read ``survey_responses`` from.
    end
        The exclusive period end.
    scope_ids
        One row per account in scope, with column ``account_id``.
    requests
        The survey metrics to compute.

    Returns
    -------
    ibis.Table
        ``account_id`` and one column per request key, one row per account in scope.
    """
    responses = store.table("survey_responses")
    responses = responses.filter(responses.responded_at < timestamp_literal(end))
    survey = responses.survey.strip().lower()

    aggregates: dict[str, ir.Value] = {}
    for request in requests:
        days = request.window_days or 0
        recent = responses.responded_at >= window_start(end, days)
        if request.base == "nps":
            aggregates.update(_nps_counts(responses, recent & (survey == "nps"), days))
        elif request.base == "csat":
            csat = recent & (survey == "csat")
            aggregates[request.key] = responses.score.mean(where=csat)
        else:
            aggregates[request.key] = responses.count(where=recent)
    per_account = responses.group_by("account_id").aggregate(**aggregates)

    finished = per_account.select(
        "account_id", **{r.key: _finish(per_account, r) for r in requests}
    )
    count_keys = [r.key for r in requests if r.base == "survey_responses"]
    keys = [r.key for r in requests]
    return zero_fill_when_loaded(scope_ids, finished, responses, keys, count_keys)


def _nps_counts(
    responses: ir.Table, in_window: ir.BooleanValue, days: int
) -> dict[str, ir.Value]:
    score = responses.score
    return {
        f"_nps_responses_{days}": responses.count(where=in_window),
        f"_promoters_{days}": responses.count(
            where=in_window & (score >= PROMOTER_MIN)
        ),
        f"_detractors_{days}": responses.count(
            where=in_window & (score <= DETRACTOR_MAX)
        ),
    }


def _finish(per_account: ir.Table, request: MetricRequest) -> ir.Value:
    if request.base != "nps":
        return per_account[request.key].cast("float64")

    days = request.window_days
    nps_responses = per_account[f"_nps_responses_{days}"]
    promoters = per_account[f"_promoters_{days}"]
    detractors = per_account[f"_detractors_{days}"]
    nps = (
        100.0 * (promoters - detractors).cast("float64") / nps_responses.cast("float64")
    )
    return ibis.ifelse(nps_responses > 0, nps, _NULL_FLOAT)
