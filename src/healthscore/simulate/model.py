"""The hidden-health process behind the simulated SaaS business.

Accounts are simulated in blocks of :data:`BLOCK_ACCOUNTS`. Each block draws from its
own random streams, seeded from ``SeedSequence(seed, spawn_key=(block, stream))``, so
an account's data depends only on the seed and the account's position, never on how
many accounts go into one part file.

Accounts. The segment is SMB, Mid-market or Enterprise with probabilities 0.6, 0.3
and 0.1. Seats are log-normal around 6, 25 and 90 by segment, and the named users are
40-90 % of the seats. ARR is seats times the plan's list price per seat and year times
a discount drawn from U(0.8, 1.0). Annual contracts renew every 365 days from
``created_at``. SMB accounts are on monthly contracts with probability 0.6, Mid-market
accounts with 0.25, Enterprise accounts never.

Health. Account ``a`` has a latent log-odds ``x`` and a hidden health ``h = 1 / (1 +
exp(-x))`` in (0, 1). Before any churn decision ``x`` is a mean-reverting random walk
with occasional shocks::

    x[0] ~ N(mu_a, 0.5)
    x[t] = x[t-1] + KAPPA * (mu_a - x[t-1]) + SIGMA * eps[t] + J[t]
    mu_a ~ N(m_segment, 0.9),  m_segment = 0.5, 0.8, 1.1 (SMB, Mid-market, Enterprise)
    eps[t] ~ N(0, 1),  J[t] ~ Bernoulli(SHOCK_RATE) * N(SHOCK_MEAN, SHOCK_SD)

so a shock (a champion leaves, an outage) pulls health down, and it recovers with a
half-life of ln 2 / KAPPA, about 23 days.

Churn. On day ``t`` the account decides to leave with probability ``q[t]``::

    monthly plan:                    q = MONTHLY_HAZARD * (1 - h[t])**3
    annual plan, 60 days to renewal: q = RENEWAL_CHURN * (1 - h[t])**2.5
    annual plan, other days:         q = ANNUAL_HAZARD * (1 - h[t])**3

A renewal decision takes effect at the renewal date, which makes renewals the main
churn point of annual plans. A renewal in the first 60 days is decided on day 0. Any
other decision takes effect 30 days later. From the decision on, the account
disengages: ``x`` falls by ``WIND_DOWN`` per day on top of the walk, so usage and
feedback fall and tickets rise in the weeks before churn. An account whose churn
date lies past the simulated period keeps declining and is not churned. A churned
account emits nothing from its churn day on.

Health also drives activity, feedback and support: see
:mod:`healthscore.simulate.activity` and :mod:`healthscore.simulate.feedback`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np

from healthscore.exceptions import ConfigError
from healthscore.simulate.vocabulary import (
    COMPANY_NOUNS,
    COMPANY_PREFIXES,
    COMPANY_SUFFIXES,
    CSM_NAMES,
    INDUSTRIES,
)

__all__ = [
    "BLOCK_ACCOUNTS",
    "PLANS",
    "REGIONS",
    "SEGMENTS",
    "AccountBlock",
    "SimulationConfig",
    "block_rng",
    "simulate_accounts",
]

logger = logging.getLogger(__name__)

#: Accounts per block of random draws; part of the output's definition, so changing it
#: changes the data of every seed.
BLOCK_ACCOUNTS = 256

SEGMENTS = ("SMB", "Mid-market", "Enterprise")
SEGMENT_SHARES = (0.6, 0.3, 0.1)
SEGMENT_SEATS = (6.0, 25.0, 90.0)
SEGMENT_HEALTH = (0.5, 0.8, 1.1)
# Share of accounts per segment on a monthly contract.
SEGMENT_MONTHLY = (0.6, 0.25, 0.0)

#: Plan name and list price per seat and year.
PLANS = (("Starter", 240.0), ("Pro", 480.0), ("Business", 720.0), ("Enterprise", 960.0))
# Plan probabilities per segment, in the order of PLANS.
SEGMENT_PLANS = (
    (0.55, 0.45, 0.0, 0.0),
    (0.0, 0.5, 0.5, 0.0),
    (0.0, 0.0, 0.3, 0.7),
)

#: Region name and the UTC offset in hours of its office day.
REGIONS = (("Americas", -5), ("EMEA", 1), ("APAC", 8))
REGION_SHARES = (0.5, 0.35, 0.15)

KAPPA = 0.03
SIGMA = 0.12
SHOCK_RATE = 1 / 150
SHOCK_MEAN = -1.3
SHOCK_SD = 0.5

MONTHLY_HAZARD = 0.006
RENEWAL_CHURN = 0.7
ANNUAL_HAZARD = 0.0004
RENEWAL_NOTICE_DAYS = 60
NOTICE_DAYS = 30
WIND_DOWN = 0.045
CONTRACT_DAYS = 365
BILLING_DAYS = 30

# Share of accounts that belong to a parent account of the same block.
CHILD_SHARE = 0.03

# Stream numbers of the per-block random generators.
(
    STREAM_ACCOUNTS,
    STREAM_HEALTH,
    STREAM_EVENTS,
    STREAM_SURVEYS,
    STREAM_TICKETS,
    STREAM_USERS,
) = range(6)


@dataclass(frozen=True)
class SimulationConfig:
    """Size, seed and calendar of a simulation.

    Attributes
    ----------
    accounts
        Number of accounts.
    days
        Number of simulated days, starting at ``start``.
    seed
        Seed of all random draws; the same config gives the same files.
    start
        First simulated day (UTC).
    features
        Number of product features; popularity falls off like a Zipf law.
    chunk_accounts
        Accounts per events part file.
    """

    accounts: int = 1000
    days: int = 365
    seed: int = 0
    start: dt.date = dt.date(2024, 1, 1)
    features: int = 36
    chunk_accounts: int = 2000

    def __post_init__(self) -> None:
        _check_count("accounts", self.accounts, 1)
        _check_count("days", self.days, 1)
        _check_count("seed", self.seed, 0)
        _check_count("features", self.features, 1)
        _check_count("chunk_accounts", self.chunk_accounts, 1)
        if not isinstance(self.start, dt.date) or isinstance(self.start, dt.datetime):
            raise ConfigError(
                f"'start' must be a date; got {self.start!r}. Pass a datetime.date "
                "such as date(2024, 1, 1).",
                field="start",
            )


def _check_count(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"{name!r} must be an integer of at least {minimum}; got {value!r}.",
            field=name,
        )


@dataclass(frozen=True)
class AccountBlock:
    """The static draws, hidden health and churn day of a block of accounts.

    ``index`` is the block number and ``first`` the position of its first account.
    Arrays have one entry per account, and ``health`` has one row per account and one
    column per simulated day. ``churn_day`` is the day index from which the account
    emits nothing, or ``days`` for an account that did not churn.
    """

    index: int
    first: int
    segment: np.ndarray
    plan: np.ndarray
    annual: np.ndarray
    seats: np.ndarray
    users: np.ndarray
    arr: np.ndarray
    region: np.ndarray
    industry: np.ndarray
    owner: np.ndarray
    tenure_days: np.ndarray
    parent: np.ndarray
    names: list[str]
    health: np.ndarray
    churn_day: np.ndarray

    @property
    def count(self) -> int:
        """Number of accounts in the block."""
        return len(self.segment)

    @property
    def alive(self) -> np.ndarray:
        """Boolean (accounts, days) array: True on days before the churn day."""
        days = np.arange(self.health.shape[1])
        return days[None, :] < self.churn_day[:, None]


def block_rng(seed: int, block: int, stream: int) -> np.random.Generator:
    """Return the random generator of one stream of one block of accounts."""
    sequence = np.random.SeedSequence(seed, spawn_key=(block, stream))
    return np.random.Generator(np.random.PCG64(sequence))


def simulate_accounts(config: SimulationConfig, block: int) -> AccountBlock:
    """Draw the accounts of one block, their hidden health and their churn days."""
    first = block * BLOCK_ACCOUNTS
    count = min(BLOCK_ACCOUNTS, config.accounts - first)
    rng = block_rng(config.seed, block, STREAM_ACCOUNTS)

    segment = rng.choice(len(SEGMENTS), size=count, p=SEGMENT_SHARES)
    plan = _draw_plans(rng, segment)
    annual = rng.random(count) >= np.take(SEGMENT_MONTHLY, segment)
    seats = np.maximum(
        1, np.rint(np.take(SEGMENT_SEATS, segment) * rng.lognormal(0, 0.5, count))
    ).astype(np.int64)
    users = np.maximum(1, np.rint(seats * rng.uniform(0.4, 0.9, count)))
    list_price = np.take([price for _, price in PLANS], plan)
    arr = np.round(seats * list_price * rng.uniform(0.8, 1.0, count), 2)
    region = rng.choice(len(REGIONS), size=count, p=REGION_SHARES)
    industry = rng.integers(0, len(INDUSTRIES), count)
    owner = rng.integers(0, len(CSM_NAMES), count)
    tenure_days = rng.integers(30, 4 * CONTRACT_DAYS, count)
    parent = _draw_parents(rng, first, segment)
    names = _draw_names(rng, count)

    health_rng = block_rng(config.seed, block, STREAM_HEALTH)
    mean = np.take(SEGMENT_HEALTH, segment) + rng.normal(0, 0.9, count)
    log_odds = simulate_log_odds(health_rng, mean, config.days)
    decision_day, churn_day = draw_decisions(
        health_rng, _logistic(log_odds), annual, tenure_days
    )
    health = _logistic(wind_down(log_odds, decision_day))
    churned = (churn_day >= 0) & (churn_day < config.days)
    churn_day = np.where(churned, churn_day, config.days)
    return AccountBlock(
        index=block,
        first=first,
        segment=segment,
        plan=plan,
        annual=annual,
        seats=seats,
        users=users.astype(np.int64),
        arr=arr,
        region=region,
        industry=industry,
        owner=owner,
        tenure_days=tenure_days,
        parent=parent,
        names=names,
        health=health,
        churn_day=churn_day,
    )


def _logistic(log_odds: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-log_odds))


def _draw_plans(rng: np.random.Generator, segment: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(np.asarray(SEGMENT_PLANS), axis=1)[segment]
    draws = rng.random(len(segment))[:, None]
    return np.minimum((draws >= cumulative).sum(axis=1), len(PLANS) - 1)


def _draw_parents(
    rng: np.random.Generator, first: int, segment: np.ndarray
) -> np.ndarray:
    """Make a few accounts children of the nearest earlier Enterprise account."""
    count = len(segment)
    is_child = (rng.random(count) < CHILD_SHARE) & (segment != SEGMENTS.index("SMB"))
    enterprise = np.where(segment == SEGMENTS.index("Enterprise"), np.arange(count), -1)
    nearest = np.maximum.accumulate(np.concatenate([[-1], enterprise[:-1]]))
    parent = np.where(is_child & (nearest >= 0), first + nearest, -1)
    return parent.astype(np.int64)


def _draw_names(rng: np.random.Generator, count: int) -> list[str]:
    prefix = rng.integers(0, len(COMPANY_PREFIXES), count)
    noun = rng.integers(0, len(COMPANY_NOUNS), count)
    suffix = rng.integers(0, len(COMPANY_SUFFIXES), count)
    return [
        f"{COMPANY_PREFIXES[p]} {COMPANY_NOUNS[n]} {COMPANY_SUFFIXES[s]}"
        for p, n, s in zip(prefix, noun, suffix, strict=True)
    ]


def simulate_log_odds(
    rng: np.random.Generator, mean: np.ndarray, days: int
) -> np.ndarray:
    """Run the mean-reverting log-odds walk with shocks, one row per account."""
    count = len(mean)
    noise = rng.normal(0.0, SIGMA, (days, count))
    shocks = np.where(
        rng.random((days, count)) < SHOCK_RATE,
        rng.normal(SHOCK_MEAN, SHOCK_SD, (days, count)),
        0.0,
    )
    log_odds = np.empty((days, count))
    log_odds[0] = mean + rng.normal(0.0, 0.5, count)
    for day in range(1, days):
        previous = log_odds[day - 1]
        step = KAPPA * (mean - previous) + noise[day] + shocks[day]
        log_odds[day] = previous + step
    return log_odds.T


def draw_decisions(
    rng: np.random.Generator,
    health: np.ndarray,
    annual: np.ndarray,
    tenure_days: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Return each account's decision day and churn day; -1 and -1 if it stays."""
    count, days = health.shape
    risk = 1.0 - health
    day = np.arange(days)
    to_renewal = -(tenure_days[:, None] + day[None, :]) % CONTRACT_DAYS
    # A renewal within the notice period of the first day is decided on day 0.
    renewal = (to_renewal == RENEWAL_NOTICE_DAYS) | (
        (day[None, :] == 0) & (to_renewal > 0) & (to_renewal < RENEWAL_NOTICE_DAYS)
    )

    annual_hazard = np.where(
        renewal, RENEWAL_CHURN * risk**2.5, ANNUAL_HAZARD * risk**3
    )
    hazard = np.where(annual[:, None], annual_hazard, MONTHLY_HAZARD * risk**3)
    lead = np.where(annual[:, None] & renewal, to_renewal, NOTICE_DAYS)
    decides = rng.random((count, days)) < hazard

    decided = decides.any(axis=1)
    decision_day = np.where(decided, decides.argmax(axis=1), -1)
    churn_day = np.where(
        decided, decision_day + lead[np.arange(count), decision_day], -1
    )
    return decision_day.astype(np.int64), churn_day.astype(np.int64)


def wind_down(log_odds: np.ndarray, decision_day: np.ndarray) -> np.ndarray:
    """Lower the log-odds by WIND_DOWN per day from each decision day on."""
    days = np.arange(log_odds.shape[1])
    elapsed = days[None, :] - decision_day[:, None]
    decided = (decision_day >= 0)[:, None] & (elapsed > 0)
    return log_odds - np.where(decided, WIND_DOWN * elapsed, 0.0)


def renewal_days(block: AccountBlock, days: int) -> np.ndarray:
    """Return each account's next renewal day at or after its last day of data.

    The last day of data is the churn day of a churned account and ``days`` otherwise,
    so the value is what a CRM export at that time shows. Monthly contracts renew every
    30 days and annual contracts every 365 days from ``created_at``.
    """
    last_day = np.minimum(block.churn_day, days)
    period = np.where(block.annual, CONTRACT_DAYS, BILLING_DAYS)
    age = block.tenure_days + last_day
    return last_day + (-age) % period
