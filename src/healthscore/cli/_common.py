"""Options, error handling and output helpers shared by the CLI commands."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from healthscore.exceptions import (
    ConfigError,
    HealthscoreError,
    InputDataError,
    NotFoundError,
    StoreError,
)
from healthscore.store import STORE_ENV_VAR, Store, is_spark_url

# Rich lays tables out for 80 columns when the output is not a terminal, which cuts
# numbers in the wider tables. Piped output gets this width unless COLUMNS is set.
PIPED_WIDTH = 160


def _piped_width() -> int | None:
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return PIPED_WIDTH


console = Console(width=_piped_width())
error_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

#: Exit codes: 1 is an unexpected failure and 2 a usage error (from Click).
EXIT_CONFIG = 3
EXIT_INPUT = 4
EXIT_NOT_FOUND = 5
EXIT_STORE = 6

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV_VAR,
        help="DuckDB file that contains the data and scores "
        f"[default: ${STORE_ENV_VAR}, else ./healthscore.duckdb].",
        show_default=False,
        metavar="FILE",
    ),
]

ReadStoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV_VAR,
        help="DuckDB file that contains the data and scores, or "
        "`spark://MASTER/DATABASE` to read the store tables from a Spark database "
        f"[default: ${STORE_ENV_VAR}, else ./healthscore.duckdb].",
        show_default=False,
        metavar="STORE",
    ),
]

AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Date (YYYY-MM-DD, UTC). Only data up to the end of this day is used. "
        "[default: today]",
        show_default=False,
        metavar="DATE",
    ),
]

SnapshotOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Use the stored snapshots of this date (YYYY-MM-DD). "
        "[default: each account's newest snapshot]",
        show_default=False,
        metavar="DATE",
    ),
]

#: The earliest as-of date accepted for scoring.
EARLIEST_AS_OF = dt.date(1900, 1, 1)


def parse_date(text: str | None, *, option: str = "--as-of") -> dt.date | None:
    """Parse a YYYY-MM-DD option value, or return ``None`` when it was not given."""
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ConfigError(
            f"{option} {text!r} is not a date; expected YYYY-MM-DD, "
            f"for example {option} 2024-03-31.",
            field=option,
        ) from exc


def today_utc() -> dt.date:
    """Return today's date in UTC."""
    return dt.datetime.now(dt.UTC).date()


def check_scoring_date(date: dt.date) -> dt.date:
    """Return ``date`` if metrics can be computed as of it, else raise ConfigError.

    A future date would treat data that is not known yet as complete, so the latest
    date accepted is today (UTC).
    """
    today = today_utc()
    if date > today:
        raise ConfigError(
            f"--as-of {date.isoformat()!r} is in the future; expected a date up to "
            f"today ({today.isoformat()}), because data after today is not known yet.",
            field="--as-of",
        )
    if date < EARLIEST_AS_OF:
        raise ConfigError(
            f"--as-of {date.isoformat()!r} is before {EARLIEST_AS_OF.isoformat()}; "
            "pass the date your data starts from or later.",
            field="--as-of",
        )
    return date


def configure_logging(verbose: int) -> None:
    """Send library log records at WARNING, INFO (-v) or DEBUG (-vv) to stderr."""
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    handler = RichHandler(console=error_console, show_path=False, show_time=False)
    logging.basicConfig(
        level=level, handlers=[handler], format="%(message)s", force=True
    )


def _exit_code(error: HealthscoreError) -> int:
    if isinstance(error, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, InputDataError):
        return EXIT_INPUT
    if isinstance(error, StoreError):
        return EXIT_STORE
    return EXIT_CONFIG


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Print a healthscore error as one line on stderr and exit with its code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except HealthscoreError as exc:
            # Escaped, because messages contain brackets that are not markup.
            error_console.print(
                f"[bold red]error:[/] {escape(str(exc))}",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(_exit_code(exc)) from exc

    return wrapper


@contextmanager
def open_store(path: str | None, *, create: bool = True) -> Iterator[Store]:
    """Open the DuckDB store named by ``--store`` or the environment, and close it.

    Commands that only read pass ``create=False``, so a mistyped path is an error
    instead of a new empty store. A ``spark://`` URL raises StoreError, because
    healthscore cannot write to a Spark store.
    """
    if is_spark_url(path):
        raise StoreError(
            f"--store {path!r} is a Spark store, which healthscore can read but not "
            "write, and this command writes to the store. Pass --store with a DuckDB "
            "file such as healthscore.duckdb."
        )
    store = Store.open(path, create=create)
    try:
        yield store
    finally:
        store.close()


def make_progress() -> Progress:
    """Return a progress display for long steps, written to stderr."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=error_console,
        transient=True,
    )


def format_score(value: float | None) -> str:
    """Format a score with one decimal, or "-" for an Unknown score."""
    if value is None or value != value:
        return "-"
    return f"{value + 0.0:.1f}"  # Adding 0.0 turns -0.0 into 0.0.


def format_money(value: float | None) -> str:
    """Format an amount with thousands separators and no decimals, or "-"."""
    if value is None or value != value:
        return "-"
    return f"{value:,.0f}"


BAND_STYLES = {"Good": "green", "Average": "yellow", "Poor": "red", "Unknown": "dim"}


def styled_band(band: str) -> str:
    """Return the band name with its colour markup."""
    style = BAND_STYLES.get(band, "")
    return f"[{style}]{band}[/]" if style else band


def no_scores_message(as_of: dt.date | None, segments: list[str] | None) -> str:
    """Describe why a read found no stored score, naming the filters in use."""
    filters = []
    if as_of is not None:
        filters.append(f"--as-of {as_of.isoformat()}")
    if segments:
        filters.append(f"--segment {', '.join(segments)}")
    if not filters:
        return "no stored scores. Run `healthscore score` first."
    return (
        f"no stored scores match {' and '.join(filters)}. List what is stored with "
        "`healthscore accounts`, or run `healthscore score` for that date."
    )
