"""Per-account metrics computed as of a date from the store tables.

Metric definitions are portable Ibis expressions: :func:`metrics_expr` builds them
without running anything, and :func:`compute_metrics` runs them into a DataFrame.
Only rows with a time up to the end of the as-of date in UTC are read. The event
metrics read daily rollups when :func:`refresh_rollups` has brought them up to date.
"""

from healthscore.metrics.catalog import (
    MAX_WINDOW_DAYS,
    MIN_WINDOW_DAYS,
    MetricSpec,
    available_metrics,
    resolve_metric,
)
from healthscore.metrics.compute import compute_metrics, metrics_expr
from healthscore.metrics.rollup import (
    raw_event_metrics,
    refresh_rollups,
    rollups_current,
)

__all__ = [
    "MAX_WINDOW_DAYS",
    "MIN_WINDOW_DAYS",
    "MetricSpec",
    "available_metrics",
    "compute_metrics",
    "metrics_expr",
    "raw_event_metrics",
    "refresh_rollups",
    "resolve_metric",
    "rollups_current",
]
