"""`healthscore segments`: the stored scores and later churn, segment by segment."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.markup import escape
from rich.table import Table

from healthscore.cli._common import (
    SnapshotOption,
    StoreOption,
    console,
    error_console,
    format_money,
    format_score,
    handle_errors,
    open_store,
    parse_date,
)
from healthscore.history.peers import segment_table

__all__ = ["segments"]


@handle_errors
def segments(as_of: SnapshotOption = None, store: StoreOption = None) -> None:
    """Compare segments: accounts, ARR, average score, share Poor and churn rate.

    Each account counts with its newest stored score unless --as-of picks a date.
    The churn rate is the share of accounts with a stored churn status that
    churned after the date of their score.
    """
    date = parse_date(as_of)
    with open_store(store, create=False) as opened:
        frame = segment_table(opened, as_of=date)
    if frame.empty:
        error_console.print(
            "No stored scores match. Run `healthscore score` first, or check --as-of.",
            highlight=False,
        )
        return
    console.print(_segment_table(frame, date))


def _segment_table(frame: pd.DataFrame, date: object) -> Table:
    when = f" as of {date}" if date is not None else ", newest score of each account"
    table = Table(title=f"Segments{when}", title_justify="left")
    table.add_column("segment", no_wrap=True)
    table.add_column("accounts", justify="right", no_wrap=True)
    table.add_column("scored", justify="right", no_wrap=True)
    table.add_column("ARR", justify="right", no_wrap=True)
    table.add_column("avg score", justify="right", no_wrap=True)
    table.add_column("share Poor", justify="right", no_wrap=True)
    table.add_column("churn rate", justify="right", no_wrap=True)
    table.add_column("churned / known", justify="right", no_wrap=True)
    rows: list[dict[Any, Any]] = frame.to_dict("records")
    for row in rows:
        segment = row["segment"]
        table.add_row(
            escape(segment) if isinstance(segment, str) else "(none)",
            f"{row['accounts']:,}",
            f"{row['scored']:,}",
            format_money(row["arr"]),
            format_score(row["average_score"]),
            _percent(row["share_poor"]),
            _percent(row["churn_rate"]),
            f"{row['churned']:,} / {row['churn_known']:,}",
        )
    return table


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1%}"
