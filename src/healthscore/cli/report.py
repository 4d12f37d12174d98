"""`healthscore report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healthscore.cli._common import (
    ReadStoreOption,
    SnapshotOption,
    console,
    handle_errors,
    no_scores_message,
    parse_date,
)
from healthscore.cli._spark import SCORE_TABLES, open_read_store
from healthscore.cli.scores import SegmentOption
from healthscore.exceptions import NotFoundError
from healthscore.report import collect_report_data, write_report


@handle_errors
def report(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="HTML file to write.", dir_okay=False),
    ] = Path("report.html"),
    title: Annotated[
        str, typer.Option("--title", help="Heading of the page.")
    ] = "Portfolio health",
    segment: SegmentOption = None,
    as_of: SnapshotOption = None,
    store: ReadStoreOption = None,
) -> None:
    """Write a self-contained HTML report of the stored scores.

    The page needs no network: band distribution, score histogram, at-risk accounts
    by score and by ARR, component averages and, where churn outcomes are stored,
    churn rate per band and the ROC AUC of the score.
    """
    date = parse_date(as_of)
    with open_read_store(store, tables=SCORE_TABLES) as opened:
        try:
            data = collect_report_data(
                opened, as_of=date, segments=segment, title=title
            )
        except NotFoundError as exc:
            raise NotFoundError(no_scores_message(date, segment)) from exc
    written = write_report(data, out)
    console.print(f"Wrote the report to {written.resolve()}", highlight=False)
