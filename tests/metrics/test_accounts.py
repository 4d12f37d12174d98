"""Accounts in scope, account columns and attributes as metrics."""

from __future__ import annotations

import datetime as dt
import math

from healthscore.metrics import compute_metrics

AS_OF = dt.date(2024, 3, 31)


def test_scope_created_and_churned_boundaries(store, write):
    write(
        "accounts",
        [
            {"account_id": "created_on_date", "created_at": "2024-03-31T23:59:59Z"},
            {"account_id": "created_after", "created_at": "2024-04-01T00:00:00Z"},
            {"account_id": "no_created_at"},
            {"account_id": "churned_on_date", "churned_at": "2024-03-31T23:59:59Z"},
            {"account_id": "churned_after", "churned_at": "2024-04-01T00:00:00Z"},
            {"account_id": "churned_without_date", "churned": True},
        ],
    )

    result = compute_metrics(store, AS_OF, [])

    assert list(result["account_id"]) == [
        "churned_after",
        "churned_without_date",
        "created_on_date",
        "no_created_at",
    ]
    assert list(result.columns) == ["account_id", "segment"]


def test_scope_segments_filter(store, write):
    write(
        "accounts",
        [
            {"account_id": "c", "segment": "smb"},
            {"account_id": "b", "segment": "enterprise"},
            {"account_id": "a", "segment": "smb"},
            {"account_id": "d", "segment": None},
        ],
    )

    only_smb = compute_metrics(store, AS_OF, ["arr"], segments=["smb"])
    everyone = compute_metrics(store, AS_OF, ["arr"], segments=[])

    assert list(only_smb["account_id"]) == ["a", "c"]
    assert list(everyone["account_id"]) == ["a", "b", "c", "d"]
    assert everyone["segment"].tolist() == ["smb", "enterprise", "smb", None]


def test_account_columns_values_and_dtypes(store, write):
    write(
        "accounts",
        [
            {
                "account_id": "a",
                "segment": "smb",
                "plan": "pro",
                "owner": "kim",
                "arr": 1200.0,
                "seats": 12,
                "created_at": "2024-03-01T12:00:00Z",
                "renewal_at": "2024-04-11T06:00:00+02:00",
            },
            {"account_id": "b", "segment": "smb"},
        ],
    )
    names = ["arr", "seats", "plan", "owner", "tenure_days", "days_to_renewal"]

    result = compute_metrics(store, AS_OF, names).set_index("account_id")

    assert result.loc["a", "arr"] == 1200.0
    assert result.loc["a", "seats"] == 12.0
    assert result.loc["a", "plan"] == "pro"
    assert result.loc["a", "owner"] == "kim"
    assert result.loc["a", "tenure_days"] == 30.5
    # 2024-04-11T04:00Z is 10 days and 4 hours after the period end.
    assert result.loc["a", "days_to_renewal"] == 10 + 4 / 24
    assert math.isnan(result.loc["b", "tenure_days"])
    assert math.isnan(result.loc["b", "days_to_renewal"])
    assert result.loc["b", "plan"] is None
    for name in ["arr", "seats", "tenure_days", "days_to_renewal"]:
        assert result[name].dtype == "float64", name
    for name in ["plan", "owner", "segment"]:
        assert result[name].dtype == object, name


def test_attributes_as_metrics(store, write):
    write("accounts", [{"account_id": a} for a in ["a", "b", "c"]])
    write(
        "account_attributes",
        [
            {
                "account_id": "a",
                "name": "tenure",
                "kind": "number",
                "number_value": 34.0,
                "text_value": "34",
            },
            {
                "account_id": "a",
                "name": "paperless",
                "kind": "boolean",
                "number_value": 1.0,
                "text_value": "true",
            },
            {
                "account_id": "b",
                "name": "paperless",
                "kind": "boolean",
                "number_value": 0.0,
                "text_value": "false",
            },
            {"account_id": "b", "name": "contract", "text_value": "Month-to-month"},
            # An account outside the accounts table is not in scope.
            {"account_id": "z", "name": "contract", "text_value": "Two year"},
        ],
    )

    result = compute_metrics(store, AS_OF, ["tenure", "paperless", "contract"])
    indexed = result.set_index("account_id")

    assert list(result["account_id"]) == ["a", "b", "c"]
    assert indexed.loc["a", "tenure"] == 34.0
    assert math.isnan(indexed.loc["b", "tenure"])
    assert indexed.loc["a", "paperless"] == "true"
    assert indexed.loc["b", "paperless"] == "false"
    assert indexed.loc["c", "paperless"] is None
    assert indexed.loc["b", "contract"] == "Month-to-month"
    assert indexed.loc["a", "contract"] is None
    assert result["tenure"].dtype == "float64"
    assert result["paperless"].dtype == object


def test_attributes_repeated_rows_take_max(store, write):
    write("accounts", [{"account_id": "a"}])
    write(
        "account_attributes",
        [
            {"account_id": "a", "name": "score", "kind": "number", "number_value": 2},
            {"account_id": "a", "name": "score", "kind": "number", "number_value": 7},
            {"account_id": "a", "name": "tier", "text_value": "gold"},
            {"account_id": "a", "name": "tier", "text_value": "bronze"},
        ],
    )

    result = compute_metrics(store, AS_OF, ["score", "tier"])

    assert len(result) == 1
    assert result.loc[0, "score"] == 7.0
    assert result.loc[0, "tier"] == "gold"
