"""The as-of cut-off and the time arithmetic shared by the metric sources.

"As of D" means every row with a time up to the end of D in UTC, inclusive. The code
uses the exclusive form: a time counts when it is before midnight UTC that starts
D + 1, called the period end here. A window of N days is the N UTC dates ending on D,
so it starts at the period end minus N days, inclusive.

Durations are measured from the period end, so an event at noon on D is 0.5 days old.
They have whole-second precision: PySpark's ``unix_timestamp`` drops fractions of a
second, and the same truncation is applied on every backend so results agree.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from healthscore.exceptions import ConfigError

__all__ = [
    "SECONDS_PER_DAY",
    "epoch_seconds",
    "period_end",
    "seconds_to_days",
    "timestamp_literal",
    "window_start",
]

SECONDS_PER_DAY = 86_400


def period_end(as_of: dt.date) -> dt.datetime:
    """Return midnight UTC after ``as_of``, the exclusive end of the as-of period.

    Raises
    ------
    ConfigError
        If ``as_of`` is a datetime rather than a date, or the last representable date.
    """
    if isinstance(as_of, dt.datetime) or not isinstance(as_of, dt.date):
        raise ConfigError(
            f"as_of must be a datetime.date; got {as_of!r}. Pass a date such as "
            "datetime.date(2025, 3, 31); metrics always cover the whole UTC day.",
            field="as_of",
        )
    if as_of >= dt.date.max:
        raise ConfigError(
            f"as_of {as_of.isoformat()!r} is the last representable date; "
            "pass an earlier date.",
            field="as_of",
        )
    start = dt.datetime.combine(as_of, dt.time(), tzinfo=dt.UTC)
    return start + dt.timedelta(days=1)


def window_start(end: dt.datetime, days: int) -> ir.TimestampScalar:
    """Return the inclusive start of the ``days``-day window that ends at ``end``."""
    return ibis.literal(end - dt.timedelta(days=days), type="timestamp('UTC')")


def timestamp_literal(moment: dt.datetime) -> ir.TimestampScalar:
    """Return a UTC timestamp literal for comparisons with store columns."""
    return ibis.literal(moment, type="timestamp('UTC')")


def epoch_seconds(timestamp: ir.TimestampValue) -> ir.IntegerValue:
    """Return whole seconds since 1970-01-01 UTC, truncated toward the past.

    DuckDB's ``epoch`` keeps fractions of a second while PySpark's ``unix_timestamp``
    drops them. Flooring a float gives the same whole number on both. Ibis 12 reads
    the time through a cast to a naive timestamp, which is UTC because its DuckDB and
    PySpark backends set the session time zone to UTC on connect.
    """
    return timestamp.epoch_seconds().cast("float64").floor().cast("int64")


def seconds_to_days(seconds: ir.NumericValue) -> ir.FloatingValue:
    """Convert a number of seconds to fractional days."""
    return seconds.cast("float64") / SECONDS_PER_DAY
