"""Product-usage events of a block of simulated accounts.

On day ``t`` an account with ``n`` users and health ``h`` has ``K ~ Binomial(n, p)``
active users, with::

    p = w[t] * (ACTIVE_BASE + ACTIVE_SLOPE * h**1.5)

where ``w`` is 1 on weekdays, 0.2 on Saturdays and 0.15 on Sundays. Each active user
logs in once, starts ``S = 1 + Poisson(0.2 + 0.6 h)`` sessions lasting
``LogNormal(ln(6 + 24 h), 0.7)`` minutes, uses features ``Poisson(S * (0.5 + 1.5 h))``
times, exports with probability ``0.03 + 0.1 h`` and invites a colleague with
probability ``0.005 + 0.02 h``. A feature is drawn from the ``3 + h * (F - 3)`` most
popular of the ``F`` features with Zipf-like weights ``1 / rank**1.1``, so healthy
accounts use a broader set.

A user's day starts with the login at a local office hour ``N(10, 2.2)`` clipped to
06:30-20:00 in the account's region. The first session starts within a minute and the
other events follow within ``S * 50`` minutes. Times are then
kept inside the simulated period and before the churn day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from healthscore.simulate.model import (
    REGIONS,
    STREAM_EVENTS,
    AccountBlock,
    SimulationConfig,
    block_rng,
)

__all__ = [
    "DAY_US",
    "EVENT_NAMES",
    "EVENT_SCHEMA",
    "BlockIds",
    "Calendar",
    "simulate_events",
]

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
MINUTE_US = 60_000_000

EVENT_NAMES = ("login", "session_start", "feature_used", "export", "invite_sent")
LOGIN, SESSION, FEATURE, EXPORT, INVITE = range(len(EVENT_NAMES))

ACTIVE_BASE = 0.01
ACTIVE_SLOPE = 0.16
WEEKDAY_FACTOR = (1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.15)
ZIPF_EXPONENT = 1.1
MIN_BREADTH = 3

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")
# Dictionary-encoded text, written as plain Parquet strings (see writer.py).
TEXT_CODES = pa.dictionary(pa.int32(), pa.string())

EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("account_id", TEXT_CODES),
        ("user_id", TEXT_CODES),
        ("event_name", TEXT_CODES),
        ("feature", TEXT_CODES),
        ("occurred_at", UTC_TIMESTAMP),
        ("value", pa.float64()),
    ]
)


@dataclass(frozen=True)
class Calendar:
    """The simulated days: start in microseconds since the epoch, weekday factors."""

    start_us: int
    days: int
    weekday_factor: np.ndarray

    @classmethod
    def from_config(cls, config: SimulationConfig) -> Calendar:
        """Build the calendar of a simulation."""
        start = dt.datetime.combine(config.start, dt.time(), tzinfo=dt.UTC)
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        start_us = (start - epoch) // dt.timedelta(microseconds=1)
        first_weekday = config.start.weekday()
        weekdays = (first_weekday + np.arange(config.days)) % 7
        return cls(start_us, config.days, np.take(WEEKDAY_FACTOR, weekdays))

    def alive_end_us(self, block: AccountBlock) -> np.ndarray:
        """Return per account the end of its data (churn or period end) in us."""
        return self.start_us + np.minimum(block.churn_day, self.days) * DAY_US


@dataclass(frozen=True)
class BlockIds:
    """Id strings of a block: accounts, and users with each account's first user."""

    account_ids: pa.Array
    user_ids: pa.Array
    user_offset: np.ndarray


def local_times_us(
    rng: np.random.Generator,
    calendar: Calendar,
    block: AccountBlock,
    account: np.ndarray,
    day: np.ndarray,
    mean_hour: float,
) -> np.ndarray:
    """Draw a local office-hour time on each given day and return it as UTC us."""
    hour = np.clip(rng.normal(mean_hour, 2.2, len(day)), 6.5, 20.0)
    offset = np.take([offset for _, offset in REGIONS], block.region[account])
    utc_hour = hour - offset
    return (
        calendar.start_us + day * DAY_US + np.rint(utc_hour * HOUR_US).astype(np.int64)
    )


def clamp_to_alive(
    times_us: np.ndarray, account: np.ndarray, calendar: Calendar, block: AccountBlock
) -> np.ndarray:
    """Keep times inside the simulated period and before the account's churn day."""
    end_us = calendar.alive_end_us(block)[account] - 1
    return np.clip(times_us, calendar.start_us, end_us)


def expand_counts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, for items counted per cell, the cell of each item and its rank in it."""
    cells = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return cells, np.arange(len(cells)) - starts[cells]


def rank_in_groups(groups: np.ndarray) -> np.ndarray:
    """Return 0, 1, 2... within each run of equal values of a sorted array."""
    if len(groups) == 0:
        return np.zeros(0, dtype=np.int64)
    new_group = np.concatenate([[True], groups[1:] != groups[:-1]])
    starts = np.flatnonzero(new_group)
    lengths = np.diff(np.append(starts, len(groups)))
    return np.arange(len(groups)) - np.repeat(starts, lengths)


def simulate_events(
    config: SimulationConfig,
    calendar: Calendar,
    block: AccountBlock,
    ids: BlockIds,
    features: pa.Array,
) -> tuple[pa.Table, np.ndarray]:
    """Simulate the events of a block, sorted by account and time.

    Returns the events table and the account position in the block of each row.
    """
    rng = block_rng(config.seed, block.index, STREAM_EVENTS)

    # Active users per account and day, then one row per active user-day.
    activity = ACTIVE_BASE + ACTIVE_SLOPE * block.health**1.5
    probability = calendar.weekday_factor[None, :] * activity * block.alive
    active = rng.binomial(block.users[:, None], probability)
    cells = np.flatnonzero(active)
    cell_of_user_day, rank = expand_counts(active.ravel()[cells])
    cell = cells[cell_of_user_day]
    account, day = np.divmod(cell, config.days)
    health = block.health.ravel()[cell]
    first_user = rng.integers(0, block.users[account[rank == 0]])
    user = (np.repeat(first_user, active.ravel()[cells]) + rank) % block.users[account]

    # Events per user-day.
    sessions = 1 + rng.poisson(0.2 + 0.6 * health)
    uses = rng.poisson(sessions * (0.5 + 1.5 * health))
    exports = (rng.random(len(health)) < 0.03 + 0.1 * health).astype(np.int64)
    invites = (rng.random(len(health)) < 0.005 + 0.02 * health).astype(np.int64)
    per_day = 1 + sessions + uses + exports + invites
    user_day, position = expand_counts(per_day)
    kind = _event_kinds(position, sessions[user_day], uses[user_day], exports[user_day])

    day_start = local_times_us(rng, calendar, block, account, day, 10.0)
    span = sessions[user_day] * 50 * MINUTE_US
    later = np.rint(rng.random(len(kind)) * span)
    first_session = rng.integers(1, 60, len(kind)) * 1_000_000
    offset = np.where(position == 1, first_session, later)
    offset[position == 0] = 0
    event_account = account[user_day]
    occurred = clamp_to_alive(
        day_start[user_day] + offset.astype(np.int64), event_account, calendar, block
    )
    event_health = health[user_day]
    value = _session_minutes(rng, event_health, kind)
    feature = _draw_features(rng, event_health, kind, len(features))

    order = np.lexsort((position, occurred, event_account))
    event_account = event_account[order]
    table = _events_table(
        ids,
        event_account,
        ids.user_offset[event_account] + user[user_day][order],
        kind[order],
        feature[order],
        occurred[order],
        value[order],
        features,
    )
    return table, event_account


def text_codes(codes: np.ndarray, values: pa.Array) -> pa.DictionaryArray:
    """Return ``values[codes]`` as a dictionary array; a negative code is null."""
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(indices, values)


def _event_kinds(
    position: np.ndarray, sessions: np.ndarray, uses: np.ndarray, exports: np.ndarray
) -> np.ndarray:
    """Number the events of a user-day: login, sessions, features, export, invite."""
    kind = np.full(len(position), INVITE, dtype=np.int64)
    kind[position <= sessions + uses + exports] = EXPORT
    kind[position <= sessions + uses] = FEATURE
    kind[position <= sessions] = SESSION
    kind[position == 0] = LOGIN
    return kind


def _session_minutes(
    rng: np.random.Generator, health: np.ndarray, kind: np.ndarray
) -> np.ndarray:
    minutes = rng.lognormal(np.log(6.0 + 24.0 * health), 0.7)
    return np.where(kind == SESSION, np.round(minutes, 1), np.nan)


def _draw_features(
    rng: np.random.Generator, health: np.ndarray, kind: np.ndarray, count: int
) -> np.ndarray:
    """Draw a feature index per event within the account's breadth, else -1."""
    weights = 1.0 / np.arange(1, count + 1) ** ZIPF_EXPONENT
    cumulative = np.cumsum(weights / weights.sum())
    minimum = min(MIN_BREADTH, count)
    breadth = np.rint(minimum + health * (count - minimum)).astype(np.int64)
    draws = rng.random(len(kind)) * cumulative[breadth - 1]
    index = np.minimum(np.searchsorted(cumulative, draws, side="right"), breadth - 1)
    return np.where(kind == FEATURE, index, -1)


def _events_table(
    ids: BlockIds,
    account: np.ndarray,
    user: np.ndarray,
    kind: np.ndarray,
    feature: np.ndarray,
    occurred: np.ndarray,
    value: np.ndarray,
    features: pa.Array,
) -> pa.Table:
    account_ids = text_codes(account, ids.account_ids)
    sequence = pc.cast(pa.array(rank_in_groups(account) + 1), pa.string())
    event_ids = pc.binary_join_element_wise(
        account_ids.cast(pa.string()), sequence, "-E"
    )
    columns = [
        event_ids,
        account_ids,
        text_codes(user, ids.user_ids),
        text_codes(kind, pa.array(EVENT_NAMES)),
        text_codes(feature, features),
        pa.array(occurred, UTC_TIMESTAMP),
        pa.array(value, mask=np.isnan(value)),
    ]
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA)
