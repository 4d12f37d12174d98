"""`healthscore sentiment`, `healthscore override` and `healthscore inputs`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from healthscore.cli._common import (
    StoreOption,
    console,
    error_console,
    format_score,
    handle_errors,
    open_store,
    parse_date,
    styled_band,
)
from healthscore.exceptions import ConfigError
from healthscore.history.human import (
    HumanInput,
    InputKind,
    clear_input,
    input_history,
    list_inputs,
    set_override,
    set_sentiment,
)

__all__ = [
    "computed_score",
    "inputs_app",
    "override_app",
    "override_line",
    "sentiment_app",
]

sentiment_app = typer.Typer(
    help="Record a CSM's sentiment about an account (1-5 or red/amber/green). "
    "Profiles use it through the metrics csm_sentiment and csm_sentiment_rag.",
    no_args_is_help=True,
)
override_app = typer.Typer(
    help="Fix an account's overall score or band until an expiry date. Scores keep "
    "the computed value beside the override.",
    no_args_is_help=True,
)
inputs_app = typer.Typer(
    help="List sentiments and overrides, and show their audit trail.",
    no_args_is_help=True,
)

AccountArgument = Annotated[
    str, typer.Argument(help="The account id.", show_default=False)
]
InputIdArgument = Annotated[
    str,
    typer.Argument(
        help="The input id, as shown by `healthscore inputs list`.",
        show_default=False,
    ),
]
AuthorOption = Annotated[
    str,
    typer.Option(
        "--author", help="Who makes the change (name or email).", show_default=False
    ),
]
ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why, in a sentence.", show_default=False)
]
ExpiresOption = Annotated[
    str,
    typer.Option(
        "--expires",
        help="Date (YYYY-MM-DD) from which the input no longer counts: it counts "
        "for scores as of the day before, not as of this date.",
        show_default=False,
        metavar="DATE",
    ),
]


@sentiment_app.command("set")
@handle_errors
def sentiment_set(
    account_id: AccountArgument,
    value: Annotated[
        str,
        typer.Argument(
            help="1 (worst) to 5 (best), or red (1), amber (3) or green (5).",
            show_default=False,
        ),
    ],
    author: AuthorOption,
    reason: ReasonOption,
    expires: ExpiresOption,
    store: StoreOption = None,
) -> None:
    """Record a sentiment, which replaces the account's current one."""
    date = _expiry_date(expires)
    with open_store(store, create=False) as opened:
        stored = set_sentiment(
            opened, account_id, value, author=author, reason=reason, expires=date
        )
    _print_set(stored)


@sentiment_app.command("clear")
@handle_errors
def sentiment_clear(
    input_id: InputIdArgument,
    author: AuthorOption,
    reason: ReasonOption,
    store: StoreOption = None,
) -> None:
    """End a sentiment now. It still counts in scores as of earlier dates."""
    _clear(store, input_id, "sentiment", author, reason)


@override_app.command("set")
@handle_errors
def override_set(
    account_id: AccountArgument,
    author: AuthorOption,
    reason: ReasonOption,
    expires: ExpiresOption,
    score: Annotated[
        float | None,
        typer.Option("--score", help="Fixed score from 0 to 100.", show_default=False),
    ] = None,
    band: Annotated[
        str | None,
        typer.Option(
            "--band",
            help="Fixed band, such as Poor. The computed score stays.",
            show_default=False,
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Fix the score (--score) or the band (--band) of an account."""
    date = _expiry_date(expires)
    with open_store(store, create=False) as opened:
        stored = set_override(
            opened,
            account_id,
            score=score,
            band=band,
            author=author,
            reason=reason,
            expires=date,
        )
    _print_set(stored)
    console.print(
        f"It applies to scores as of {stored.entered_at.date().isoformat()} up to the "
        f"day before {stored.expires_at.date().isoformat()}, from the next "
        "`healthscore score` run on.",
        highlight=False,
    )


@override_app.command("clear")
@handle_errors
def override_clear(
    input_id: InputIdArgument,
    author: AuthorOption,
    reason: ReasonOption,
    store: StoreOption = None,
) -> None:
    """End an override now. Scores stored before keep it."""
    _clear(store, input_id, "override", author, reason)


@inputs_app.command("list")
@handle_errors
def inputs_list(
    account_id: Annotated[
        str | None,
        typer.Option("--account", help="Only this account.", show_default=False),
    ] = None,
    include_ended: Annotated[
        bool,
        typer.Option("--all", help="Also list expired, cleared and replaced inputs."),
    ] = False,
    store: StoreOption = None,
) -> None:
    """List the inputs that count now, oldest first per account."""
    with open_store(store, create=False) as opened:
        frame = list_inputs(opened, account_id=account_id, include_ended=include_ended)
    if frame.empty:
        which = "inputs" if include_ended else "active inputs"
        error_console.print(
            f"No {which}. Add one with `healthscore sentiment set` or "
            "`healthscore override set`"
            + ("." if include_ended else ", or pass --all to list ended ones."),
            highlight=False,
        )
        return
    console.print(_inputs_table(frame, include_ended))


@inputs_app.command("history")
@handle_errors
def inputs_history(account_id: AccountArgument, store: StoreOption = None) -> None:
    """Show every set, clear and expiry of an account's inputs, oldest first."""
    with open_store(store, create=False) as opened:
        frame = input_history(opened, account_id)
    if frame.empty:
        error_console.print(
            f"Account {escape(account_id)} has no inputs yet.", highlight=False
        )
        return
    console.print(_history_table(frame, account_id))


def _expiry_date(text: str) -> dt.date:
    date = parse_date(text, option="--expires")
    if date is None:
        raise ConfigError(
            "--expires is missing. Pass a date such as --expires 2027-03-31.",
            field="--expires",
        )
    return date


def _clear(
    store: str | None, input_id: str, kind: InputKind, author: str, reason: str
) -> None:
    with open_store(store, create=False) as opened:
        cleared = clear_input(opened, input_id, author=author, reason=reason, kind=kind)
    console.print(
        f"Cleared {cleared.kind} {escape(cleared.value)} of account "
        f"[bold]{escape(cleared.account_id)}[/] (input {cleared.input_id}).",
        highlight=False,
    )


def _print_set(stored: HumanInput) -> None:
    console.print(
        f"Set {stored.kind} {escape(stored.value)} for account "
        f"[bold]{escape(stored.account_id)}[/] as input {stored.input_id}; it counts "
        f"until {_time(stored.expires_at)} UTC.",
        highlight=False,
    )
    if stored.replaced_input_id is not None:
        console.print(f"It replaces input {stored.replaced_input_id}.", highlight=False)


def _time(value: Any) -> str:
    """Format a UTC time to the minute, as a date at midnight, or "-" when missing."""
    if value is None or pd.isna(value):
        return "-"
    moment = pd.Timestamp(value)
    if moment == moment.normalize():
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M")


def _cell(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "-"
    return escape(str(value))


def _inputs_table(frame: pd.DataFrame, with_status: bool) -> Table:
    table = Table(title=f"{len(frame):,} inputs", title_justify="left")
    table.add_column("input", no_wrap=True)
    table.add_column("account", no_wrap=True)
    table.add_column("kind")
    table.add_column("value")
    table.add_column("author", overflow="fold", min_width=6)
    table.add_column("reason", overflow="fold", min_width=10)
    table.add_column("entered (UTC)")
    table.add_column("expires (UTC)")
    if with_status:
        table.add_column("status", no_wrap=True)
    records: list[dict[Any, Any]] = frame.to_dict("records")
    for row in records:
        cells = [
            row["input_id"],
            _cell(row["account_id"]),
            row["kind"],
            _cell(row["value"]),
            _cell(row["author"]),
            _cell(row["reason"]),
            _time(row["entered_at"]),
            _time(row["expires_at"]),
        ]
        table.add_row(*cells, *([row["status"]] if with_status else []))
    return table


def _history_table(frame: pd.DataFrame, account_id: str) -> Table:
    table = Table(
        title=f"Input history of account {escape(account_id)}", title_justify="left"
    )
    table.add_column("when (UTC)")
    table.add_column("action", no_wrap=True)
    table.add_column("kind")
    table.add_column("input", no_wrap=True)
    table.add_column("author", overflow="fold", min_width=6)
    table.add_column("reason", overflow="fold", min_width=10)
    table.add_column("old")
    table.add_column("new")
    records: list[dict[Any, Any]] = frame.to_dict("records")
    for row in records:
        table.add_row(
            _time(row["changed_at"]),
            row["action"],
            row["kind"],
            row["input_id"],
            _cell(row["author"]),
            _cell(row["reason"]),
            _cell(row["old_value"]),
            _cell(row["new_value"]),
        )
    return table


def override_line(row: dict[Any, Any]) -> str | None:
    """Describe the override of a stored score row, or return None without one.

    Rows of stores written before overrides existed lack the override columns and
    have no override.
    """
    override_id = row.get("override_id")
    if not isinstance(override_id, str):
        return None
    fixed = row.get("override_band")
    what = f"band {fixed}" if isinstance(fixed, str) else "score"
    score = row.get("override_score")
    if score is not None and not pd.isna(score):
        what = f"score {score:g}"
    computed = format_score(row.get("computed_score"))
    return (
        f"[bold]Override[/] {override_id}: {escape(what)} set by "
        f"{escape(str(row.get('override_author')))} "
        f"({escape(str(row.get('override_reason')))}), until "
        f"{_time(row.get('override_expires_at'))} UTC. Computed: score {computed}, "
        f"band {styled_band(str(row.get('computed_band')))}."
    )


def computed_score(row: dict[Any, Any]) -> float:
    """Return the score the measures add up to: the computed one under an override."""
    if isinstance(row.get("override_id"), str):
        return float(row["computed_score"])
    return float(row["score"])
