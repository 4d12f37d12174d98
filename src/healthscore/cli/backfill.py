"""`healthscore backfill`: rebuild a daily score snapshot for every date of a range."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from healthscore.cli._common import (
    EARLIEST_AS_OF,
    StoreOption,
    console,
    error_console,
    handle_errors,
    open_store,
    parse_date,
    today_utc,
)
from healthscore.cli.scores import ProfileOption, load_scoring_profile
from healthscore.exceptions import ConfigError
from healthscore.history import BackfillResult, backfill

__all__ = ["backfill_command"]


def _required_date(text: str, option: str) -> dt.date:
    """Parse a --from or --to date that metrics can be computed as of."""
    date = parse_date(text, option=option)
    if date is None:
        raise ConfigError(f"{option} is missing. Pass a date such as 2024-03-31.")
    today = today_utc()
    if date > today:
        raise ConfigError(
            f"{option} {date.isoformat()!r} is in the future. Pass a date up to "
            f"today ({today.isoformat()}), because data after today is not known yet.",
            field=option,
        )
    if date < EARLIEST_AS_OF:
        raise ConfigError(
            f"{option} {date.isoformat()!r} is before {EARLIEST_AS_OF.isoformat()}. "
            "Pass the date your data starts from or later.",
            field=option,
        )
    return date


@handle_errors
def backfill_command(
    start: Annotated[
        str,
        typer.Option(
            "--from",
            help="First as-of date to score (YYYY-MM-DD, UTC).",
            show_default=False,
            metavar="DATE",
        ),
    ],
    end: Annotated[
        str,
        typer.Option(
            "--to",
            help="Last as-of date to score (YYYY-MM-DD, UTC), included.",
            show_default=False,
            metavar="DATE",
        ),
    ],
    profile: ProfileOption = None,
    store: StoreOption = None,
) -> None:
    """Score every account as of each date from --from to --to and store the runs.

    Each date gets one snapshot per account, rebuilt from the stored inputs. The
    runs are deterministic: a date's run id comes from the date and the profile
    hash, and its computed_at is the end of that day (midnight UTC). Running the
    same backfill again replaces its earlier rows of those dates instead of adding
    rows, so the score tables end up identical. Runs of other profiles and of
    `healthscore score` stay. Readers take the newest computed_at of a date, so a
    `healthscore score` run made after that day ended is read before the
    backfilled one.
    """
    first = _required_date(start, "--from")
    last = _required_date(end, "--to")
    chosen = load_scoring_profile(profile)
    days = (last - first).days + 1
    with open_store(store, create=False) as opened, _progress() as bar:
        task = bar.add_task("Backfilling", total=max(days, 0), accounts=0.0)
        started = bar.get_time()
        scored = 0

        def advance(as_of: dt.date, accounts: int) -> None:
            nonlocal scored
            scored += accounts
            rate = scored / max(bar.get_time() - started, 1e-9)
            bar.update(task, advance=1, description=str(as_of), accounts=rate)

        result = backfill(opened, chosen, first, last, progress=advance)
    _print_result(result)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("dates"),
        TextColumn("{task.fields[accounts]:,.0f} accounts/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=error_console,
        transient=True,
    )


def _print_result(result: BackfillResult) -> None:
    rate = result.scored / result.seconds if result.seconds > 0 else 0.0
    console.print(
        f"Backfilled {result.days:,} dates from {result.start} to {result.end}: "
        f"{result.scored:,} account scores in {result.seconds:.1f} s "
        f"({rate:,.0f} accounts/s), profile hash {result.profile_hash[:12]}.",
        highlight=False,
    )
    if result.replaced:
        console.print(
            f"Replaced the earlier backfill rows of {result.replaced:,} dates.",
            highlight=False,
        )
