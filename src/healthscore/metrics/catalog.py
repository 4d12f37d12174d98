"""Metric names: the built-in catalog, parametric windows and name resolution.

A windowed metric takes its window in days from its name, as in ``event_count_45d``,
with N from 1 to 3650. The catalog lists each windowed metric once with its default
window. Every attribute name stored in ``account_attributes`` is a metric too.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from healthscore.exceptions import ConfigError

if TYPE_CHECKING:
    from healthscore.store import Store

__all__ = [
    "MAX_WINDOW_DAYS",
    "MIN_WINDOW_DAYS",
    "MetricSpec",
    "MetricRequest",
    "available_metrics",
    "parse_metric_requests",
    "resolve_metric",
]

logger = logging.getLogger(__name__)

MIN_WINDOW_DAYS = 1
MAX_WINDOW_DAYS = 3650

MetricKind = Literal["number", "text"]

# Attribute kinds stored as numbers. A boolean attribute is a text metric with the
# values "true" and "false", because a profile's category map looks up text values.
_NUMBER_ATTRIBUTE_KINDS = frozenset({"number"})

# Names that are output columns of every metric table, so no attribute may take them.
_RESERVED_NAMES = frozenset({"account_id"})


@dataclass(frozen=True)
class MetricSpec:
    """Description of one metric that can be computed as of a date.

    Parameters
    ----------
    name
        The metric name as requested, such as ``"event_count_45d"``.
    kind
        ``"number"`` for float values, ``"text"`` for string values.
    source
        The store table the values come from.
    description
        One sentence on what the value measures, with its unit.
    """

    name: str
    kind: MetricKind
    source: str
    description: str


@dataclass(frozen=True)
class _Definition:
    base: str
    kind: MetricKind
    source: str
    description: str
    default_window: int | None = None


_WINDOWED: dict[str, _Definition] = {
    definition.base: definition
    for definition in [
        _Definition(
            "event_count", "number", "events", "Events in the last {n} days.", 30
        ),
        _Definition(
            "active_users",
            "number",
            "events",
            "Distinct users with an event in the last {n} days.",
            30,
        ),
        _Definition(
            "active_days",
            "number",
            "events",
            "Distinct UTC dates with an event in the last {n} days.",
            30,
        ),
        _Definition(
            "features_used",
            "number",
            "events",
            "Distinct non-null features used in the last {n} days.",
            30,
        ),
        _Definition(
            "event_value",
            "number",
            "events",
            "Sum of event values in the last {n} days.",
            30,
        ),
        _Definition(
            "event_trend",
            "number",
            "events",
            "Events in the last {n} days divided by events in the {n} days before; "
            "missing when the earlier window has no events.",
            30,
        ),
        _Definition(
            "days_between_events",
            "number",
            "events",
            "Mean days between consecutive UTC dates with an event in the last {n} "
            "days; missing with fewer than 2 such dates.",
            365,
        ),
        _Definition(
            "value_per_active_day",
            "number",
            "events",
            "Sum of event values in the last {n} days divided by the UTC dates with "
            "an event in them; missing without such a date.",
            365,
        ),
        _Definition(
            "nps",
            "number",
            "survey_responses",
            "Net Promoter Score (-100 to 100) of NPS responses in the last {n} days.",
            365,
        ),
        _Definition(
            "csat",
            "number",
            "survey_responses",
            "Mean CSAT score of responses in the last {n} days.",
            365,
        ),
        _Definition(
            "survey_responses",
            "number",
            "survey_responses",
            "Survey responses of any survey in the last {n} days.",
            365,
        ),
        _Definition(
            "tickets_opened",
            "number",
            "tickets",
            "Support tickets opened in the last {n} days.",
            30,
        ),
        _Definition(
            "median_hours_to_resolve",
            "number",
            "tickets",
            "Median hours from opening to resolution of tickets resolved in the last "
            "{n} days.",
            90,
        ),
    ]
}

_PLAIN: dict[str, _Definition] = {
    definition.base: definition
    for definition in [
        _Definition("arr", "number", "accounts", "Annual recurring revenue."),
        _Definition("seats", "number", "accounts", "Licensed seats."),
        _Definition("plan", "text", "accounts", "Plan name."),
        _Definition("segment", "text", "accounts", "Customer segment."),
        _Definition("owner", "text", "accounts", "Account owner."),
        _Definition(
            "tenure_days", "number", "accounts", "Days since the account was created."
        ),
        _Definition(
            "days_to_renewal",
            "number",
            "accounts",
            "Days until the renewal date; negative once it has passed.",
        ),
        _Definition(
            "dau_mau",
            "number",
            "events",
            "Mean daily active users over the last 30 days divided by the distinct "
            "users of those 30 days.",
        ),
        _Definition(
            "days_since_last_event",
            "number",
            "events",
            "Days since the latest event.",
        ),
        _Definition(
            "days_since_first_event",
            "number",
            "events",
            "Days since the earliest event.",
        ),
        _Definition(
            "open_tickets",
            "number",
            "tickets",
            "Support tickets opened and not yet resolved.",
        ),
        _Definition(
            "high_priority_open_tickets",
            "number",
            "tickets",
            "Open support tickets with priority high, urgent, critical or p1.",
        ),
        _Definition(
            "csm_sentiment",
            "number",
            "human_inputs",
            "Sentiment of the account's CSM from 1 (worst) to 5 (best), as last "
            "entered and not expired or cleared; missing when none.",
        ),
        _Definition(
            "csm_sentiment_rag",
            "text",
            "human_inputs",
            "The CSM sentiment as red (1-2), amber (3) or green (4-5); missing when "
            "none.",
        ),
    ]
}

# Plain names that are windowed metrics at a fixed window.
_ALIASES: dict[str, tuple[str, int]] = {"nps": ("nps", 365), "csat": ("csat", 365)}

_WINDOWED_NAME = re.compile(r"^(?P<base>[a-z_]+?)_(?P<days>\d+)d$")


@dataclass(frozen=True)
class MetricRequest:
    """One requested metric, resolved to what the compute step needs.

    Parameters
    ----------
    spec
        The metric's description. Its ``name`` is the output column.
    base
        The metric without its window, such as ``"event_count"``, or the account
        column or attribute name.
    window_days
        The window in days for a windowed metric, else ``None``.
    """

    spec: MetricSpec
    base: str
    window_days: int | None = None

    @property
    def key(self) -> str:
        """Canonical column name, the same for ``nps`` and ``nps_365d``."""
        if self.window_days is None:
            return self.base
        return f"{self.base}_{self.window_days}d"


def available_metrics(store: Store) -> dict[str, MetricSpec]:
    """List the metrics this store can compute, keyed by name.

    The list contains the built-in metrics, windowed ones at their default window, and
    every attribute name in ``account_attributes``. An attribute whose rows are all
    of kind ``"number"`` is a number metric. Any other attribute, booleans included,
    is a text metric, so a boolean reads ``"true"`` or ``"false"``. A built-in name
    takes precedence over an attribute of the same name.

    Parameters
    ----------
    store
        The store whose attributes to list.

    Returns
    -------
    dict[str, MetricSpec]
        Built-in metrics first, then attributes sorted by name.
    """
    metrics = {
        name: _windowed_spec(definition, definition.default_window or 0, name)
        for definition in _WINDOWED.values()
        for name in [f"{definition.base}_{definition.default_window}d"]
    }
    for name, definition in _PLAIN.items():
        metrics[name] = _plain_spec(definition, name)
    for name, (base, days) in _ALIASES.items():
        metrics[name] = _windowed_spec(_WINDOWED[base], days, name)

    for name, kind in _attribute_kinds(store).items():
        if name in metrics or name in _RESERVED_NAMES:
            logger.warning(
                "account attribute %r is hidden by the built-in metric of that name",
                name,
            )
            continue
        metrics[name] = MetricSpec(
            name, kind, "account_attributes", f"Account attribute {name!r}."
        )
    return metrics


def resolve_metric(name: str, store_metrics: dict[str, MetricSpec]) -> MetricSpec:
    """Return the spec of a metric name, including windowed names with any window.

    Parameters
    ----------
    name
        A metric name, such as ``"arr"``, ``"event_count_45d"`` or an attribute name.
    store_metrics
        The result of :func:`available_metrics` for the store in use.

    Returns
    -------
    MetricSpec
        The metric's spec, with ``spec.name == name``.

    Raises
    ------
    ConfigError
        If the name is unknown or its window is outside 1 to 3650 days. The message
        lists close matches.
    """
    return _resolve_request(name, store_metrics).spec


def parse_metric_requests(
    names: list[str], store_metrics: dict[str, MetricSpec]
) -> list[MetricRequest]:
    """Resolve metric names to requests, dropping repeated names.

    Raises
    ------
    ConfigError
        For the first unknown name, as :func:`resolve_metric` does.
    """
    requests: list[MetricRequest] = []
    seen: set[str] = set()
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        requests.append(_resolve_request(name, store_metrics))
    return requests


def _resolve_request(name: str, store_metrics: dict[str, MetricSpec]) -> MetricRequest:
    if not isinstance(name, str):
        raise ConfigError(
            f"metric name must be a string; got {name!r}. "
            "Pass names such as 'arr' or 'event_count_30d'.",
            field="metrics",
        )
    if name in _ALIASES:
        base, days = _ALIASES[name]
        return MetricRequest(_windowed_spec(_WINDOWED[base], days, name), base, days)
    if name in _PLAIN:
        return MetricRequest(_plain_spec(_PLAIN[name], name), name)

    match = _WINDOWED_NAME.match(name)
    if match and match["base"] in _WINDOWED:
        days = _parse_window(name, match["days"])
        definition = _WINDOWED[match["base"]]
        return MetricRequest(
            _windowed_spec(definition, days, name), definition.base, days
        )

    if name in store_metrics and name not in _RESERVED_NAMES:
        spec = store_metrics[name]
        return MetricRequest(spec, name)
    raise _unknown_metric_error(name, store_metrics)


def _parse_window(name: str, digits: str) -> int:
    days = int(digits)
    if digits.startswith("0") or not MIN_WINDOW_DAYS <= days <= MAX_WINDOW_DAYS:
        raise ConfigError(
            f"metric {name!r} has an invalid window of {digits!r} days; expected a "
            f"whole number from {MIN_WINDOW_DAYS} to {MAX_WINDOW_DAYS} without leading "
            f"zeros. Change the number before 'd', as in 'event_count_30d'.",
            field="metrics",
        )
    return days


def _unknown_metric_error(
    name: str, store_metrics: dict[str, MetricSpec]
) -> ConfigError:
    window = re.search(r"_(\d+)d$", name)
    suffix = window.group(1) if window else "{N}"
    candidates = sorted(
        set(store_metrics) | {f"{base}_{suffix}d" for base in _WINDOWED}
    )
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(
        f"unknown metric {name!r}.{hint} Known metrics are the built-in names, "
        f"windowed ones such as 'event_count_{{N}}d' with N from {MIN_WINDOW_DAYS} "
        f"to {MAX_WINDOW_DAYS} days, and the columns of the accounts loaded so far. "
        "Fix the spelling, or ingest accounts that have this column first.",
        field="metrics",
    )


def _windowed_spec(definition: _Definition, days: int, name: str) -> MetricSpec:
    description = definition.description.format(n=days)
    return MetricSpec(name, definition.kind, definition.source, description)


def _plain_spec(definition: _Definition, name: str) -> MetricSpec:
    return MetricSpec(name, definition.kind, definition.source, definition.description)


def _attribute_kinds(store: Store) -> dict[str, MetricKind]:
    attributes = store.table("account_attributes")
    is_number = attributes.kind.lower().isin(list(_NUMBER_ATTRIBUTE_KINDS))
    summary = (
        attributes.group_by("name")
        .aggregate(
            rows=attributes.count(), number_rows=attributes.count(where=is_number)
        )
        .order_by("name")
        .to_pyarrow()
        .to_pylist()
    )
    return {
        row["name"]: "number" if row["rows"] == row["number_rows"] else "text"
        for row in summary
    }
