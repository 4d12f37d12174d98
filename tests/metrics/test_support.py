"""Ticket metrics checked against hand calculations."""

from __future__ import annotations

import datetime as dt
import math

from healthscore.metrics import compute_metrics

AS_OF = dt.date(2024, 3, 31)


def metrics_by_account(store, names):
    return compute_metrics(store, AS_OF, names).set_index("account_id")


def add_accounts(write, *account_ids):
    write("accounts", [{"account_id": a} for a in account_ids])


def ticket(account_id, opened_at, resolved_at=None, priority=None):
    return {
        "account_id": account_id,
        "opened_at": opened_at,
        "resolved_at": resolved_at,
        "priority": priority,
    }


def test_open_tickets_as_of_boundary(store, write):
    add_accounts(write, "a")
    write(
        "tickets",
        [
            ticket("a", "2024-03-01T00:00:00Z"),
            # Resolved after the as-of date, so still open on it.
            ticket("a", "2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z"),
            ticket("a", "2024-03-01T00:00:00Z", "2024-03-31T23:59:59Z"),
            # Opened after the as-of date.
            ticket("a", "2024-04-01T00:00:00Z"),
            # 23:00 UTC on the as-of date, written with a +02:00 offset.
            ticket("a", "2024-04-01T01:00:00+02:00"),
        ],
    )

    result = metrics_by_account(store, ["open_tickets"])

    assert result.loc["a", "open_tickets"] == 3.0


def test_high_priority_open_tickets(store, write):
    add_accounts(write, "a")
    opened = "2024-03-01T00:00:00Z"
    priorities = ["High", " URGENT ", "critical", "P1", "p2", "low", None]
    rows = [ticket("a", opened, priority=p) for p in priorities]
    rows.append(ticket("a", opened, "2024-03-02T00:00:00Z", priority="urgent"))
    write("tickets", rows)

    result = metrics_by_account(store, ["high_priority_open_tickets", "open_tickets"])

    assert result.loc["a", "high_priority_open_tickets"] == 4.0
    assert result.loc["a", "open_tickets"] == 7.0


def test_tickets_opened_window(store, write):
    add_accounts(write, "a")
    write(
        "tickets",
        [
            ticket("a", "2024-03-02T00:00:00Z", "2024-03-03T00:00:00Z"),
            ticket("a", "2024-03-01T23:59:59Z"),
            ticket("a", "2024-03-31T23:59:59Z"),
            ticket("a", "2024-04-01T00:00:00Z"),
        ],
    )

    result = metrics_by_account(store, ["tickets_opened_30d", "tickets_opened_31d"])

    assert result.loc["a", "tickets_opened_30d"] == 2.0
    assert result.loc["a", "tickets_opened_31d"] == 3.0


def test_median_hours_to_resolve(store, write):
    add_accounts(write, "a", "unresolved")
    write(
        "tickets",
        [
            ticket("a", "2024-03-10T00:00:00Z", "2024-03-10T02:00:00Z"),
            ticket("a", "2024-03-10T00:00:00Z", "2024-03-10T10:00:00Z"),
            ticket("a", "2024-03-10T00:00:00+01:00", "2024-03-11T00:00:00Z"),
            ticket("a", "2024-02-01T00:00:00Z", "2024-03-12T00:00:00Z"),
            # Resolved before the window, after the as-of date, and before opening.
            ticket("a", "2023-10-01T00:00:00Z", "2023-10-02T00:00:00Z"),
            ticket("a", "2024-03-30T00:00:00Z", "2024-04-01T00:00:00Z"),
            ticket("a", "2024-03-20T00:00:00Z", "2024-03-19T00:00:00Z"),
            ticket("unresolved", "2024-03-20T00:00:00Z"),
        ],
    )

    result = metrics_by_account(store, ["median_hours_to_resolve_90d"])

    # Durations 2, 10, 25 and 960 hours: the median is (10 + 25) / 2.
    assert result.loc["a", "median_hours_to_resolve_90d"] == 17.5
    assert math.isnan(result.loc["unresolved", "median_hours_to_resolve_90d"])


def test_ticket_counts_zero_when_tickets_loaded(store, write):
    add_accounts(write, "a", "no_tickets")
    write("tickets", [ticket("a", "2023-01-01T00:00:00Z", "2023-01-02T00:00:00Z")])
    names = ["open_tickets", "high_priority_open_tickets", "tickets_opened_30d"]

    result = metrics_by_account(store, names)

    for name in names:
        assert result.loc["a", name] == 0.0, name
        assert result.loc["no_tickets", name] == 0.0, name


def test_ticket_counts_missing_without_ticket_data(store, write):
    add_accounts(write, "a")
    write("tickets", [ticket("a", "2024-04-01T00:00:00Z")])

    result = metrics_by_account(store, ["open_tickets", "tickets_opened_30d"])

    assert math.isnan(result.loc["a", "open_tickets"])
    assert math.isnan(result.loc["a", "tickets_opened_30d"])
