"""Support tickets and NPS/CSAT survey responses of a block of simulated accounts.

Tickets. An account with ``n`` users and health ``h`` opens ``Poisson(r)`` tickets a
day, with ``r = w[t] * 0.01 * n**0.6 * (0.2 + 4 (1 - h)**2)`` and the weekday factor
``w`` of the events. The priority is urgent with probability ``0.02 + 0.12 (1 - h)``,
high with ``0.08 + 0.22 (1 - h)``, low with ``0.35 h`` and normal otherwise. Resolution
takes ``LogNormal(ln(b * (2 - h)), 0.8)`` hours, with ``b`` = 3, 10, 30 and 60 hours for
urgent, high, normal and low. A ticket still unresolved when its account churns is
closed at the churn time; one unresolved at the end of the period stays open.

NPS. Each user sends ``Poisson(w[t] * NPS_RATE)`` NPS responses a day, scoring
``round(2.5 + 8.5 h + N(0, 1.6))`` clipped to 0-10. CSAT. A solved ticket gets a CSAT
response with probability 0.35, 0.5 to 24 hours after it was solved, scoring
``round(1.8 + 3.6 h + N(0, 0.7))`` clipped to 1-5, one point lower when resolution took
more than 48 hours. Half of the responses carry a comment whose sentiment matches the
score: NPS 0-6 and CSAT 1-2 negative, NPS 7-8 and CSAT 3 neutral, the rest positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from healthscore.simulate.activity import (
    HOUR_US,
    UTC_TIMESTAMP,
    BlockIds,
    Calendar,
    clamp_to_alive,
    expand_counts,
    local_times_us,
    rank_in_groups,
)
from healthscore.simulate.model import (
    STREAM_SURVEYS,
    STREAM_TICKETS,
    AccountBlock,
    SimulationConfig,
    block_rng,
)
from healthscore.simulate.vocabulary import COMMENTS

__all__ = [
    "PRIORITIES",
    "SURVEY_SCHEMA",
    "TICKET_SCHEMA",
    "SolvedTickets",
    "simulate_surveys",
    "simulate_tickets",
]

PRIORITIES = ("low", "normal", "high", "urgent")
LOW, NORMAL, HIGH, URGENT = range(len(PRIORITIES))
RESOLUTION_HOURS = (60.0, 30.0, 10.0, 3.0)
STATUSES = ("open", "solved", "closed")
OPEN, SOLVED, CLOSED = range(len(STATUSES))

NPS_RATE = 0.004
CSAT_SHARE = 0.35
COMMENT_SHARE = 0.5
SLOW_RESOLUTION_US = 48 * HOUR_US
SENTIMENTS = ("negative", "neutral", "positive")

TICKET_SCHEMA = pa.schema(
    [
        ("ticket_id", pa.string()),
        ("account_id", pa.string()),
        ("priority", pa.string()),
        ("status", pa.string()),
        ("opened_at", UTC_TIMESTAMP),
        ("resolved_at", UTC_TIMESTAMP),
    ]
)

SURVEY_SCHEMA = pa.schema(
    [
        ("response_id", pa.string()),
        ("account_id", pa.string()),
        ("user_id", pa.string()),
        ("survey", pa.string()),
        ("score", pa.int64()),
        ("comment", pa.string()),
        ("responded_at", UTC_TIMESTAMP),
    ]
)


@dataclass(frozen=True)
class SolvedTickets:
    """Solved tickets that may get a CSAT response: account, health, times in us."""

    account: np.ndarray
    health: np.ndarray
    resolved_us: np.ndarray
    slow: np.ndarray


def simulate_tickets(
    config: SimulationConfig, calendar: Calendar, block: AccountBlock, ids: BlockIds
) -> tuple[pa.Table, SolvedTickets]:
    """Simulate the support tickets of a block, sorted by account and opening time."""
    rng = block_rng(config.seed, block.index, STREAM_TICKETS)

    risk = 1.0 - block.health
    size = 0.01 * block.users[:, None] ** 0.6
    rate = calendar.weekday_factor[None, :] * size * (0.2 + 4.0 * risk**2)
    counts = rng.poisson(rate * block.alive).ravel()
    cell, _ = expand_counts(counts)
    account, day = np.divmod(cell, config.days)
    health = block.health.ravel()[cell]
    priority = _draw_priorities(rng, health)

    opened = local_times_us(rng, calendar, block, account, day, 11.0)
    opened = clamp_to_alive(opened, account, calendar, block)
    hours = rng.lognormal(
        np.log(np.take(RESOLUTION_HOURS, priority) * (2 - health)), 0.8
    )
    resolved = opened + np.rint(hours * HOUR_US).astype(np.int64)
    resolved, status = _resolve(resolved, account, calendar, block)

    order = np.lexsort((opened, account))
    account, opened, resolved = account[order], opened[order], resolved[order]
    priority, status = priority[order], status[order]
    table = _tickets_table(ids, account, priority, status, opened, resolved)
    solved = status == SOLVED
    slow = resolved - opened > SLOW_RESOLUTION_US
    tickets = SolvedTickets(
        account[solved], health[order][solved], resolved[solved], slow[solved]
    )
    return table, tickets


def _draw_priorities(rng: np.random.Generator, health: np.ndarray) -> np.ndarray:
    risk = 1.0 - health
    urgent = 0.02 + 0.12 * risk
    high = urgent + 0.08 + 0.22 * risk
    low = 1.0 - 0.35 * health
    draws = rng.random(len(health))
    priority = np.full(len(health), NORMAL, dtype=np.int64)
    priority[draws >= low] = LOW
    priority[draws < high] = HIGH
    priority[draws < urgent] = URGENT
    return priority


def _resolve(
    resolved: np.ndarray, account: np.ndarray, calendar: Calendar, block: AccountBlock
) -> tuple[np.ndarray, np.ndarray]:
    """Return resolution times (-1 while open) and statuses as of the end of data."""
    end_us = calendar.alive_end_us(block)[account]
    churned = block.churn_day[account] < calendar.days
    status = np.where(
        resolved < end_us, SOLVED, np.where(churned, CLOSED, OPEN)
    ).astype(np.int64)
    resolved = np.where(status == SOLVED, resolved, np.where(churned, end_us, -1))
    return resolved, status


def _tickets_table(
    ids: BlockIds,
    account: np.ndarray,
    priority: np.ndarray,
    status: np.ndarray,
    opened: np.ndarray,
    resolved: np.ndarray,
) -> pa.Table:
    account_ids = ids.account_ids.take(pa.array(account))
    sequence = pc.cast(pa.array(rank_in_groups(account) + 1), pa.string())
    columns = [
        pc.binary_join_element_wise(account_ids, sequence, "-T"),
        account_ids,
        pa.array(PRIORITIES).take(pa.array(priority)),
        pa.array(STATUSES).take(pa.array(status)),
        pa.array(opened, UTC_TIMESTAMP),
        pa.array(resolved, UTC_TIMESTAMP, mask=resolved < 0),
    ]
    return pa.Table.from_arrays(columns, schema=TICKET_SCHEMA)


def simulate_surveys(
    config: SimulationConfig,
    calendar: Calendar,
    block: AccountBlock,
    ids: BlockIds,
    tickets: SolvedTickets,
) -> pa.Table:
    """Simulate NPS responses and CSAT responses to solved tickets of a block."""
    rng = block_rng(config.seed, block.index, STREAM_SURVEYS)

    # NPS: responses per account-day, then a time, a user and a score per response.
    rate = calendar.weekday_factor[None, :] * NPS_RATE * block.users[:, None]
    counts = rng.poisson(rate * block.alive).ravel()
    cell, _ = expand_counts(counts)
    nps_account, day = np.divmod(cell, config.days)
    nps_time = local_times_us(rng, calendar, block, nps_account, day, 11.0)
    nps_time = clamp_to_alive(nps_time, nps_account, calendar, block)
    nps_health = block.health.ravel()[cell]
    nps_noise = rng.normal(0, 1.6, len(cell))
    nps_score = np.clip(np.rint(2.5 + 8.5 * nps_health + nps_noise), 0, 10)

    # CSAT: a share of solved tickets get a response within a day, if still alive.
    answered = rng.random(len(tickets.account)) < CSAT_SHARE
    delay = rng.uniform(0.5, 24.0, len(tickets.account)) * HOUR_US
    csat_time = tickets.resolved_us + np.rint(delay).astype(np.int64)
    end_us = calendar.alive_end_us(block)[tickets.account]
    recorded = answered & (csat_time < end_us)
    noise = rng.normal(0, 0.7, len(tickets.account))
    csat_score = np.rint(1.8 + 3.6 * tickets.health + noise) - tickets.slow
    csat_score = np.clip(csat_score, 1, 5)

    account = np.concatenate([nps_account, tickets.account[recorded]])
    time = np.concatenate([nps_time, csat_time[recorded]])
    is_nps = np.arange(len(account)) < len(nps_account)
    score = np.concatenate([nps_score, csat_score[recorded]]).astype(np.int64)
    user = block.users[account]
    user = ids.user_offset[account] + rng.integers(0, user)
    comment = _draw_comments(rng, score, is_nps)

    order = np.lexsort((~is_nps, time, account))
    return _surveys_table(
        ids,
        account[order],
        user[order],
        is_nps[order],
        score[order],
        comment[order],
        time[order],
    )


def _draw_comments(
    rng: np.random.Generator, score: np.ndarray, is_nps: np.ndarray
) -> np.ndarray:
    """Return an index into the flat comment list per response, or -1 for none."""
    sentiment = np.where(
        is_nps,
        np.digitize(score, [7, 9]),
        np.digitize(score, [3, 4]),
    )
    lengths = np.array([len(COMMENTS[name]) for name in SENTIMENTS])
    firsts = np.cumsum(lengths) - lengths
    pick = np.floor(rng.random(len(score)) * lengths[sentiment]).astype(np.int64)
    has_comment = rng.random(len(score)) < COMMENT_SHARE
    return np.where(has_comment, firsts[sentiment] + pick, -1)


def _surveys_table(
    ids: BlockIds,
    account: np.ndarray,
    user: np.ndarray,
    is_nps: np.ndarray,
    score: np.ndarray,
    comment: np.ndarray,
    time: np.ndarray,
) -> pa.Table:
    comments = pa.array([text for name in SENTIMENTS for text in COMMENTS[name]])
    account_ids = ids.account_ids.take(pa.array(account))
    sequence = pc.cast(pa.array(rank_in_groups(account) + 1), pa.string())
    columns = [
        pc.binary_join_element_wise(account_ids, sequence, "-S"),
        account_ids,
        ids.user_ids.take(pa.array(user)),
        pa.array(["csat", "nps"]).take(pa.array(is_nps.astype(np.int64))),
        pa.array(score),
        comments.take(pa.array(comment, mask=comment < 0)),
        pa.array(time, UTC_TIMESTAMP),
    ]
    return pa.Table.from_arrays(columns, schema=SURVEY_SCHEMA)
