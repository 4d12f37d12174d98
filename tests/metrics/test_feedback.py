"""Survey metrics checked against hand calculations."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from healthscore.metrics import compute_metrics

AS_OF = dt.date(2024, 3, 31)


def metrics_by_account(store, names):
    return compute_metrics(store, AS_OF, names).set_index("account_id")


def add_accounts(write, *account_ids):
    write("accounts", [{"account_id": a} for a in account_ids])


def response(account_id, score, when, survey="nps"):
    return {
        "account_id": account_id,
        "score": score,
        "responded_at": when,
        "survey": survey,
    }


def test_nps_hand_calculation(store, write):
    add_accounts(write, "a", "b")
    recent = "2024-03-01T00:00:00Z"
    scores = [10, 9, 8, 7, 6, 0, 9]
    rows = [response("a", s, recent) for s in scores]
    rows.append(response("b", 3, recent, survey=" NPS "))
    rows.append(response("b", 10, recent, survey="Nps"))
    rows.append(response("b", 10, recent, survey="csat"))
    write("survey_responses", rows)

    result = metrics_by_account(store, ["nps", "nps_365d"])

    # a: promoters 10, 9, 9 and detractors 6, 0 among 7 responses.
    assert result.loc["a", "nps"] == pytest.approx(100 * (3 - 2) / 7)
    assert result.loc["a", "nps_365d"] == pytest.approx(100 * (3 - 2) / 7)
    assert result.loc["b", "nps"] == 0.0


def test_nps_window_and_as_of_boundary(store, write):
    add_accounts(write, "a")
    write(
        "survey_responses",
        [
            response("a", 10, "2024-03-31T23:59:59Z"),
            response("a", 0, "2024-04-01T00:00:00Z"),
            # 2024-03-25 is the first day of a 7-day window.
            response("a", 0, "2024-03-25T00:00:00Z"),
            response("a", 0, "2024-03-24T23:59:59Z"),
        ],
    )

    result = metrics_by_account(store, ["nps_7d", "nps_1d", "survey_responses_7d"])

    assert result.loc["a", "nps_7d"] == 0.0
    assert result.loc["a", "nps_1d"] == 100.0
    assert result.loc["a", "survey_responses_7d"] == 2.0


def test_csat_mean_of_window(store, write):
    add_accounts(write, "a", "nps_only")
    write(
        "survey_responses",
        [
            response("a", 4, "2024-03-30T00:00:00Z", survey="csat"),
            response("a", 5, "2024-02-01T00:00:00Z", survey="CSAT"),
            response("a", 1, "2023-02-01T00:00:00Z", survey="csat"),
            response("a", 0, "2024-03-30T00:00:00Z", survey="nps"),
            response("nps_only", 9, "2024-03-30T00:00:00Z", survey="nps"),
        ],
    )

    result = metrics_by_account(store, ["csat", "csat_30d"])

    assert result.loc["a", "csat"] == 4.5
    assert result.loc["a", "csat_30d"] == 4.0
    assert math.isnan(result.loc["nps_only", "csat"])


def test_survey_counts_zero_when_surveys_loaded(store, write):
    add_accounts(write, "answered", "silent")
    write("survey_responses", [response("answered", 9, "2023-01-01T00:00:00Z")])

    result = metrics_by_account(store, ["survey_responses_30d", "nps"])

    assert result.loc["answered", "survey_responses_30d"] == 0.0
    assert result.loc["silent", "survey_responses_30d"] == 0.0
    assert math.isnan(result.loc["silent", "nps"])
    assert math.isnan(result.loc["answered", "nps"])


def test_survey_counts_missing_without_survey_data(store, write):
    add_accounts(write, "a")
    # Only a response after the as-of date: nothing was known by then.
    write("survey_responses", [response("a", 9, "2024-04-01T00:00:00Z")])

    result = metrics_by_account(store, ["survey_responses_30d"])

    assert math.isnan(result.loc["a", "survey_responses_30d"])
