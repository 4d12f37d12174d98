"""Account (CRM) and user records of a block of simulated accounts.

``created_at`` of an account lies 30 days to 4 years before the simulated period, and
each user was created between the account's creation and the period's start.
``renewal_at`` is the next renewal at or after the account's last day of data, as a CRM
export taken then would show it (see :func:`healthscore.simulate.model.renewal_days`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from healthscore.simulate.activity import (
    DAY_US,
    UTC_TIMESTAMP,
    BlockIds,
    Calendar,
)
from healthscore.simulate.model import (
    PLANS,
    REGIONS,
    SEGMENTS,
    STREAM_USERS,
    AccountBlock,
    SimulationConfig,
    block_rng,
    renewal_days,
)
from healthscore.simulate.vocabulary import CSM_NAMES, FIRST_NAMES, INDUSTRIES

__all__ = [
    "ACCOUNT_SCHEMA",
    "USER_SCHEMA",
    "account_id",
    "accounts_table",
    "block_ids",
    "users_table",
]

ACCOUNT_SCHEMA = pa.schema(
    [
        ("account_id", pa.string()),
        ("name", pa.string()),
        ("segment", pa.string()),
        ("plan", pa.string()),
        ("contract", pa.string()),
        ("seats", pa.int64()),
        ("arr", pa.float64()),
        ("owner", pa.string()),
        ("parent_id", pa.string()),
        ("industry", pa.string()),
        ("region", pa.string()),
        ("created_at", UTC_TIMESTAMP),
        ("renewal_at", UTC_TIMESTAMP),
        ("churned", pa.bool_()),
        ("churned_at", UTC_TIMESTAMP),
    ]
)

USER_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("account_id", pa.string()),
        ("email", pa.string()),
        ("created_at", UTC_TIMESTAMP),
    ]
)


def account_id(position: int) -> str:
    """Return the id of the account at a position (0-based) of the simulation."""
    return f"A{position + 1:07d}"


def block_ids(block: AccountBlock) -> BlockIds:
    """Build the account and user id strings of a block."""
    accounts = [account_id(block.first + i) for i in range(block.count)]
    users = [
        f"{account}-U{number:04d}"
        for account, count in zip(accounts, block.users.tolist(), strict=True)
        for number in range(1, count + 1)
    ]
    offset = np.cumsum(block.users) - block.users
    return BlockIds(
        pa.array(accounts, pa.string()), pa.array(users, pa.string()), offset
    )


def accounts_table(calendar: Calendar, block: AccountBlock, ids: BlockIds) -> pa.Table:
    """Build the accounts table of a block."""
    created = calendar.start_us - block.tenure_days * DAY_US
    renewal = calendar.start_us + renewal_days(block, calendar.days) * DAY_US
    churned = block.churn_day < calendar.days
    churned_at = calendar.start_us + block.churn_day * DAY_US
    parent = [account_id(p) if p >= 0 else None for p in block.parent.tolist()]
    columns = [
        ids.account_ids,
        pa.array(block.names, pa.string()),
        pa.array(SEGMENTS).take(pa.array(block.segment)),
        pa.array([name for name, _ in PLANS]).take(pa.array(block.plan)),
        pa.array(["monthly", "annual"]).take(pa.array(block.annual.astype(np.int64))),
        pa.array(block.seats, pa.int64()),
        pa.array(block.arr, pa.float64()),
        pa.array(CSM_NAMES).take(pa.array(block.owner)),
        pa.array(parent, pa.string()),
        pa.array(INDUSTRIES).take(pa.array(block.industry)),
        pa.array([name for name, _ in REGIONS]).take(pa.array(block.region)),
        pa.array(created, UTC_TIMESTAMP),
        pa.array(renewal, UTC_TIMESTAMP),
        pa.array(churned, pa.bool_()),
        pa.array(churned_at, UTC_TIMESTAMP, mask=~churned),
    ]
    return pa.Table.from_arrays(columns, schema=ACCOUNT_SCHEMA)


def users_table(
    config: SimulationConfig, calendar: Calendar, block: AccountBlock, ids: BlockIds
) -> pa.Table:
    """Build the users table of a block, with e-mail addresses at the account domain."""
    rng = block_rng(config.seed, block.index, STREAM_USERS)
    account = np.repeat(np.arange(block.count), block.users)
    tenure_us = block.tenure_days[account] * DAY_US
    created = calendar.start_us - np.rint(rng.random(len(account)) * tenure_us)
    first_names = rng.integers(0, len(FIRST_NAMES), len(account))

    domains = [_domain(name) for name in block.names]
    user_ids = ids.user_ids.to_pylist()
    emails = [
        f"{FIRST_NAMES[first]}.{user_id[-4:]}@{domains[a]}"
        for first, user_id, a in zip(
            first_names.tolist(), user_ids, account.tolist(), strict=True
        )
    ]
    columns = [
        ids.user_ids,
        ids.account_ids.take(pa.array(account)),
        pa.array(emails, pa.string()),
        pa.array(created.astype(np.int64), UTC_TIMESTAMP),
    ]
    return pa.Table.from_arrays(columns, schema=USER_SCHEMA)


def _domain(name: str) -> str:
    """Return a domain under the reserved .example top-level domain."""
    words = name.lower().split()[:2]
    return "-".join(words) + ".example"
