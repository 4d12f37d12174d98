"""`healthscore simulate`."""

from __future__ import annotations

import datetime as dt
import shlex
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from healthscore.cli._common import console, handle_errors, make_progress, parse_date
from healthscore.simulate import ENTITY_ORDER, SimulationConfig, SimulationSummary
from healthscore.simulate import simulate as run_simulation

DEFAULTS = SimulationConfig()


@handle_errors
def simulate(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder for the Parquet files; created if missing. Files of the same "
            "names are replaced.",
            file_okay=False,
            show_default=False,
        ),
    ],
    accounts: Annotated[
        int, typer.Option("--accounts", min=1, help="Number of accounts.")
    ] = DEFAULTS.accounts,
    days: Annotated[
        int, typer.Option("--days", min=1, help="Number of simulated days.")
    ] = DEFAULTS.days,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", min=0, help="Random seed; the same options give the same files."
        ),
    ] = DEFAULTS.seed,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="First simulated day (YYYY-MM-DD, UTC). "
            f"[default: {DEFAULTS.start.isoformat()}]",
            show_default=False,
            metavar="DATE",
        ),
    ] = None,
    features: Annotated[
        int, typer.Option("--features", min=1, help="Number of product features.")
    ] = DEFAULTS.features,
    chunk_accounts: Annotated[
        int,
        typer.Option("--chunk-accounts", min=1, help="Accounts per events part file."),
    ] = DEFAULTS.chunk_accounts,
) -> None:
    """Write a simulated SaaS business as Parquet files that `ingest` loads as they are.

    Each account has a hidden health that drifts and drives its usage, survey scores,
    support tickets and churn, so churners fade before they leave. Output: accounts,
    users, surveys and tickets files, and events in `events/part-NNNNN.parquet`.
    """
    config = SimulationConfig(
        accounts=accounts,
        days=days,
        seed=seed,
        start=parse_date(start, option="--start") or DEFAULTS.start,
        features=features,
        chunk_accounts=chunk_accounts,
    )
    started = time.perf_counter()
    with make_progress() as progress:
        task = progress.add_task("Simulating accounts", total=accounts)

        def report_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        summary = run_simulation(config, out, progress=report_progress)
    print_summary(config, summary, time.perf_counter() - started)


def print_summary(
    config: SimulationConfig, summary: SimulationSummary, seconds: float
) -> None:
    """Print the files written, their row counts and the commands to load them."""
    end = config.start + dt.timedelta(days=config.days - 1)
    console.print(
        f"Simulated {config.accounts:,} accounts from {config.start.isoformat()} to "
        f"{end.isoformat()} (seed {config.seed}) in {seconds:.1f} s: "
        f"{summary.churned:,} churned.",
        highlight=False,
    )
    table = Table(title="Files written", title_justify="left")
    table.add_column("entity")
    table.add_column("files", justify="right")
    table.add_column("rows", justify="right")
    table.add_column("path", overflow="fold")
    for entity in ENTITY_ORDER:
        paths = summary.files[entity]
        location = paths[0] if len(paths) == 1 else paths[0].parent / "part-*.parquet"
        table.add_row(
            entity,
            f"{len(paths):,}",
            f"{summary.rows[entity]:,}",
            escape(str(location)),
        )
    console.print(table)
    console.print("Load them, accounts first:", highlight=False)
    for command in ingest_commands(summary):
        console.print(f"  {escape(command)}", highlight=False, soft_wrap=True)


def ingest_commands(summary: SimulationSummary) -> list[str]:
    """Return shell commands that ingest the files, accounts first."""
    commands = []
    for entity in ENTITY_ORDER:
        paths = summary.files[entity]
        if entity == "events":
            pattern = shlex.quote(str(summary.out_dir / "events")) + "/part-*.parquet"
            commands.append(
                f'for f in {pattern}; do healthscore ingest events "$f"; done'
            )
            continue
        for path in paths:
            commands.append(f"healthscore ingest {entity} {shlex.quote(str(path))}")
    return commands
