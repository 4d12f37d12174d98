"""Run a simulation and write its Parquet files."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from healthscore.exceptions import ConfigError
from healthscore.simulate.activity import (
    EVENT_SCHEMA,
    Calendar,
    simulate_events,
)
from healthscore.simulate.feedback import (
    SURVEY_SCHEMA,
    TICKET_SCHEMA,
    simulate_surveys,
    simulate_tickets,
)
from healthscore.simulate.model import (
    BLOCK_ACCOUNTS,
    SimulationConfig,
    simulate_accounts,
)
from healthscore.simulate.records import (
    ACCOUNT_SCHEMA,
    USER_SCHEMA,
    accounts_table,
    block_ids,
    users_table,
)
from healthscore.simulate.vocabulary import feature_names
from healthscore.simulate.writer import EventPartWriter, TableWriter

__all__ = ["ENTITY_ORDER", "SimulationSummary", "simulate"]

logger = logging.getLogger(__name__)

#: The entities in the order to ingest them: accounts first, so that the other rows
#: find their accounts.
ENTITY_ORDER = ("accounts", "users", "events", "surveys", "tickets")

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class SimulationSummary:
    """Files and row counts written by a simulation.

    Attributes
    ----------
    out_dir
        The output folder.
    files
        The files per entity (``accounts``, ``users``, ``events``, ``surveys``,
        ``tickets``), in :data:`ENTITY_ORDER`. Events have one file per part.
    rows
        Rows written per entity.
    churned
        Number of accounts that churned within the simulated days.
    """

    out_dir: Path
    files: dict[str, tuple[Path, ...]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    churned: int = 0


def simulate(
    config: SimulationConfig,
    out_dir: Path,
    progress: ProgressCallback | None = None,
) -> SimulationSummary:
    """Simulate a SaaS business and write its data as Parquet files.

    Writes ``accounts.parquet``, ``users.parquet``, ``surveys.parquet``,
    ``tickets.parquet`` and ``events/part-NNNNN.parquet`` into ``out_dir``, with the
    column names that ``healthscore ingest`` loads without a mapping. Accounts are
    simulated in blocks, so memory use depends on the block size and the number of
    days, not on the number of accounts. Existing files of these names are replaced,
    and stale ``events/part-*.parquet`` files are deleted first.

    Parameters
    ----------
    config
        Size, seed and calendar. The same config gives byte-identical files with the
        same pyarrow version.
    out_dir
        Output folder; created if missing.
    progress
        Called as ``progress(done_accounts, total_accounts)`` after each block.

    Returns
    -------
    SimulationSummary
        The files, row counts and number of churned accounts.

    Raises
    ------
    ConfigError
        If ``out_dir`` exists and is not a folder.

    Examples
    --------
    >>> config = SimulationConfig(accounts=100, days=30, seed=1)
    >>> summary = simulate(config, Path("sim"))  # doctest: +SKIP
    >>> summary.rows["accounts"]  # doctest: +SKIP
    100
    """
    events_dir = _prepare_folder(Path(out_dir))
    calendar = Calendar.from_config(config)
    features = pa.array(feature_names(config.features), pa.string())
    blocks = math.ceil(config.accounts / BLOCK_ACCOUNTS)
    logger.info(
        "Simulating %d accounts over %d days (seed %d) into %s",
        config.accounts,
        config.days,
        config.seed,
        out_dir,
    )

    churned = 0
    with (
        TableWriter(Path(out_dir) / "accounts.parquet", ACCOUNT_SCHEMA) as accounts,
        TableWriter(Path(out_dir) / "users.parquet", USER_SCHEMA) as users,
        TableWriter(Path(out_dir) / "surveys.parquet", SURVEY_SCHEMA) as surveys,
        TableWriter(Path(out_dir) / "tickets.parquet", TICKET_SCHEMA) as tickets,
        EventPartWriter(events_dir, EVENT_SCHEMA, config.chunk_accounts) as events,
    ):
        for index in range(blocks):
            block = simulate_accounts(config, index)
            ids = block_ids(block)
            accounts.write(accounts_table(calendar, block, ids))
            users.write(users_table(config, calendar, block, ids))
            ticket_table, solved = simulate_tickets(config, calendar, block, ids)
            tickets.write(ticket_table)
            surveys.write(simulate_surveys(config, calendar, block, ids, solved))
            event_table, event_account = simulate_events(
                config, calendar, block, ids, features
            )
            events.write(event_table, event_account, block.first, block.count)
            churned += int((block.churn_day < config.days).sum())
            if progress is not None:
                progress(block.first + block.count, config.accounts)

    summary = SimulationSummary(
        out_dir=Path(out_dir),
        files={
            "accounts": (accounts.path,),
            "users": (users.path,),
            "events": tuple(events.paths),
            "surveys": (surveys.path,),
            "tickets": (tickets.path,),
        },
        rows={
            "accounts": accounts.rows,
            "users": users.rows,
            "events": events.rows,
            "surveys": surveys.rows,
            "tickets": tickets.rows,
        },
        churned=churned,
    )
    logger.info("Simulation wrote %s; %d accounts churned", summary.rows, churned)
    return summary


def _prepare_folder(out_dir: Path) -> Path:
    """Create the output and events folders and delete stale event part files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(
            f"the output folder {str(out_dir)!r} exists and is not a folder; pass a "
            "folder path, for example --out sim-data.",
            field="out_dir",
        )
    events_dir = out_dir / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    for stale in sorted(events_dir.glob("part-*.parquet")):
        logger.info("Deleting stale events file %s", stale)
        stale.unlink()
    return events_dir
