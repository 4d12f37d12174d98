"""The metric table: output shape, types, errors, portability and leakage."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pytest

from healthscore.exceptions import ConfigError
from healthscore.metrics import available_metrics, compute_metrics, metrics_expr

AS_OF = dt.date(2024, 3, 31)


def write_history(write, day: str) -> None:
    """Write accounts and one row per source table, all dated ``day``."""
    write(
        "accounts",
        [
            {"account_id": f"{day}-acct", "segment": "smb", "created_at": f"{day}Z"},
            {
                "account_id": f"{day}-gone",
                "created_at": f"{day}Z",
                "churned_at": f"{day}Z",
            },
        ],
    )
    for account_id in ["early-acct", f"{day}-acct"]:
        write(
            "events",
            [
                {
                    "account_id": account_id,
                    "user_id": "u1",
                    "feature": "f",
                    "value": 1.0,
                    "occurred_at": f"{day}Z",
                }
            ],
        )
        write(
            "survey_responses",
            [{"account_id": account_id, "score": 3, "responded_at": f"{day}Z"}],
        )
        write(
            "survey_responses",
            [
                {
                    "account_id": account_id,
                    "survey": "csat",
                    "score": 1,
                    "responded_at": f"{day}Z",
                }
            ],
        )
        write(
            "tickets",
            [
                {
                    "account_id": account_id,
                    "priority": "urgent",
                    "opened_at": f"{day}Z",
                    "resolved_at": f"{day}Z",
                },
                {"account_id": account_id, "priority": "p1", "opened_at": f"{day}Z"},
            ],
        )


def test_compute_metrics_ignores_future_rows(store, write):
    write("accounts", [{"account_id": "early-acct", "created_at": "2024-01-01T00:00Z"}])
    write_history(write, "2024-02-10T08:00:00")
    write_history(write, "2024-03-31T23:59:59")
    names = list(available_metrics(store)) + ["event_trend_1d", "tickets_opened_1d"]
    before = compute_metrics(store, AS_OF, names)

    write_history(write, "2024-04-01T00:00:00")
    write_history(write, "2024-06-30T12:00:00")
    after = compute_metrics(store, AS_OF, names)

    pd.testing.assert_frame_equal(before, after)
    early = before.set_index("account_id").loc["early-acct"]
    assert early["event_count_30d"] == 1.0
    assert early["event_trend_30d"] == 1.0
    assert early["survey_responses_365d"] == 4.0
    assert early["open_tickets"] == 2.0


def test_compute_metrics_columns_in_request_order(store, write):
    write("accounts", [{"account_id": "b"}, {"account_id": "a"}])

    result = compute_metrics(store, AS_OF, ["nps", "arr", "nps", "segment", "plan"])

    assert list(result.columns) == ["account_id", "segment", "nps", "arr", "plan"]
    assert list(result["account_id"]) == ["a", "b"]
    assert result["account_id"].dtype == object
    assert isinstance(result.index, pd.RangeIndex)


def test_compute_metrics_unknown_name(store):
    with pytest.raises(ConfigError, match="unknown metric 'active_user_30d'"):
        compute_metrics(store, AS_OF, ["arr", "active_user_30d"])


def test_compute_metrics_rejects_single_string(store):
    with pytest.raises(ConfigError, match=r"Pass \['arr'\]"):
        compute_metrics(store, AS_OF, "arr")


def test_compute_metrics_rejects_datetime(store):
    moment = dt.datetime(2024, 3, 31, 12, tzinfo=dt.UTC)

    with pytest.raises(ConfigError, match="as_of must be a datetime.date"):
        compute_metrics(store, moment, ["arr"])


def test_metrics_expr_is_portable_sql(store):
    names = list(available_metrics(store)) + ["event_trend_7d"]

    expr = metrics_expr(store, AS_OF, names, segments=["smb"])

    assert isinstance(expr, ibis.Table)
    assert expr.columns[:2] == ("account_id", "segment")
    # Compiling for another SQL engine fails on any DuckDB-only operation.
    assert "SELECT" in ibis.to_sql(expr, dialect="postgres")
