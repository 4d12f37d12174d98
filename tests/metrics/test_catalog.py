"""Metric names: the catalog, windowed names, attributes and unknown names."""

from __future__ import annotations

import pytest

from healthscore.exceptions import ConfigError
from healthscore.metrics import MetricSpec, available_metrics, resolve_metric


def test_available_metrics_builtin_defaults(store):
    metrics = available_metrics(store)

    assert metrics["event_count_30d"].source == "events"
    assert metrics["nps_365d"].kind == "number"
    assert metrics["csat"].source == "survey_responses"
    assert metrics["tickets_opened_30d"].source == "tickets"
    assert metrics["median_hours_to_resolve_90d"].source == "tickets"
    assert metrics["plan"] == MetricSpec("plan", "text", "accounts", "Plan name.")
    assert metrics["seats"].kind == "number"
    assert "dau_mau" in metrics
    assert "high_priority_open_tickets" in metrics


def test_available_metrics_attribute_kinds(store, write):
    write(
        "account_attributes",
        [
            {"account_id": "a", "name": "tenure", "kind": "number", "number_value": 3},
            {"account_id": "b", "name": "tenure", "kind": "number", "number_value": 9},
            {"account_id": "a", "name": "contract", "kind": "text"},
            {
                "account_id": "a",
                "name": "paperless",
                "kind": "boolean",
                "number_value": 1,
                "text_value": "true",
            },
            # One text row makes the whole attribute text.
            {"account_id": "a", "name": "mixed", "kind": "number", "number_value": 1},
            {"account_id": "b", "name": "mixed", "kind": "text", "text_value": "n/a"},
        ],
    )

    metrics = available_metrics(store)

    assert metrics["tenure"].kind == "number"
    assert metrics["tenure"].source == "account_attributes"
    assert metrics["contract"].kind == "text"
    assert metrics["paperless"].kind == "text"
    assert metrics["mixed"].kind == "text"


def test_available_metrics_builtin_hides_attribute(store, write, caplog):
    write("account_attributes", [{"account_id": "a", "name": "plan", "kind": "text"}])

    metrics = available_metrics(store)

    assert metrics["plan"].source == "accounts"
    assert "hidden by the built-in metric" in caplog.text


def test_resolve_metric_any_window(store):
    spec = resolve_metric("event_count_45d", available_metrics(store))

    assert spec.name == "event_count_45d"
    assert spec.kind == "number"
    assert spec.source == "events"
    assert "45 days" in spec.description


def test_resolve_metric_window_limits(store):
    metrics = available_metrics(store)

    assert resolve_metric("tickets_opened_1d", metrics).name == "tickets_opened_1d"
    assert resolve_metric("nps_3650d", metrics).name == "nps_3650d"
    for name in ["nps_0d", "nps_3651d", "event_count_030d"]:
        with pytest.raises(ConfigError, match="invalid window") as error:
            resolve_metric(name, metrics)
        assert repr(name) in str(error.value)


def test_resolve_metric_plain_aliases(store):
    metrics = available_metrics(store)

    assert resolve_metric("nps", metrics).description == metrics["nps_365d"].description
    assert resolve_metric("csat", metrics).name == "csat"


def test_resolve_metric_unknown_suggests_match(store):
    metrics = available_metrics(store)

    with pytest.raises(ConfigError) as error:
        resolve_metric("evnt_count_30d", metrics)

    message = str(error.value)
    assert "unknown metric 'evnt_count_30d'" in message
    assert "Did you mean 'event_count_30d'" in message
    assert "ingest accounts that have this column" in message
    assert error.value.field == "metrics"


def test_resolve_metric_unknown_without_match(store):
    with pytest.raises(ConfigError, match="unknown metric 'zzz'") as error:
        resolve_metric("zzz", available_metrics(store))

    assert "Did you mean" not in str(error.value)


def test_resolve_metric_attribute(store, write):
    write("account_attributes", [{"account_id": "a", "name": "contract"}])
    metrics = available_metrics(store)

    assert resolve_metric("contract", metrics).source == "account_attributes"
    with pytest.raises(ConfigError, match="Did you mean 'contract'"):
        resolve_metric("contracts", metrics)
