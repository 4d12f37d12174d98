"""`healthscore ingest` and `healthscore quarantine`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import ibis
import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from healthscore.cli._common import (
    EXIT_INPUT,
    ReadStoreOption,
    StoreOption,
    console,
    error_console,
    handle_errors,
    make_progress,
    open_store,
)
from healthscore.cli._spark import open_read_store
from healthscore.ingest import IngestResult, ingest_file, load_mapping

#: Default number of characters of each row's raw values that `healthscore quarantine`
#: shows.
RAW_PREVIEW_CHARS = 200


class Entity(StrEnum):
    """Kinds of source data that can be ingested."""

    accounts = "accounts"
    users = "users"
    events = "events"
    surveys = "surveys"
    tickets = "tickets"


@handle_errors
def ingest(
    entity: Annotated[
        Entity,
        typer.Argument(help="What the file contains.", show_default=False),
    ],
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV, JSON Lines or Parquet file to load.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping",
            "-m",
            help="YAML column mapping: renames, types, date formats, constants. "
            "Without it, columns named like the targets (account_id, occurred_at...) "
            "are used.",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Load a data file into the store, validating every row.

    Rows that fail validation go to the quarantine table with their row number, raw
    values and reason. Loading the same file twice adds nothing, and a load that fails
    part-way leaves the store as it was.

    Required columns, after mapping:

    - accounts: account_id
    - users: user_id, account_id
    - events: account_id, event_name, occurred_at
    - surveys: account_id, survey (nps or csat), score, responded_at
    - tickets: account_id, opened_at
    """
    column_mapping = None if mapping is None else load_mapping(mapping)
    with open_store(store) as opened, make_progress() as progress:
        task = progress.add_task(f"Loading {entity.value}", total=None)

        def report_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = ingest_file(
            opened,
            entity.value,
            file,
            column_mapping,
            progress=report_progress,
        )
    print_ingest_result(result)
    if result.rows_read and result.rejected == result.rows_read:
        error_console.print(
            "[bold red]error:[/] every row was rejected, so nothing was loaded. "
            "Fix the file or the mapping with the reasons above, then load it again.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_INPUT)


def _rows(count: int) -> str:
    return f"{count:,} row" if count == 1 else f"{count:,} rows"


def print_ingest_result(result: IngestResult) -> None:
    """Print the counts of one load and the reasons rows were rejected."""
    console.print(
        f"Loaded {result.entity} from {escape(result.source)}: "
        f"{_rows(result.rows_read)} read, [green]{result.accepted:,} accepted[/], "
        f"[red]{result.rejected:,} rejected[/], {result.duplicates:,} duplicates, "
        f"{result.updated:,} updated.",
        highlight=False,
    )
    if result.duplicates and not result.accepted:
        console.print(
            "Nothing new: every row was already stored or is in quarantine.",
            highlight=False,
        )
    if not result.reasons:
        return
    table = Table(title="Rejected rows by reason", title_justify="left")
    table.add_column("reason")
    table.add_column("rows", justify="right")
    for reason, count in sorted(result.reasons.items(), key=lambda item: -item[1]):
        table.add_row(escape(reason), f"{count:,}")
    console.print(table)
    console.print(
        f"See them with: healthscore quarantine --load {result.load_id}",
        highlight=False,
    )


@handle_errors
def quarantine(
    load: Annotated[
        str | None,
        typer.Option("--load", help="Only rows of this load id.", show_default=False),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Maximum number of rows to show.")
    ] = 20,
    raw_chars: Annotated[
        int,
        typer.Option(
            "--raw-chars",
            min=1,
            help="Maximum number of characters of each row's raw values to show. "
            "Longer values end with the count of characters not shown, and the "
            "store keeps them whole.",
        ),
    ] = RAW_PREVIEW_CHARS,
    store: ReadStoreOption = None,
) -> None:
    """Show rejected input rows with their row number, reason and raw values.

    The raw values are the JSON text stored in the quarantine table, cut after
    --raw-chars characters.
    """
    with open_read_store(store, tables=("quarantine",)) as opened:
        rows = opened.table("quarantine")
        if load is not None:
            rows = rows.filter(rows.load_id == load)
        total = rows.count().execute()
        first_rows = _first_rows(rows, limit, raw_chars)

    table = Table(title=f"Quarantined rows ({total:,} in all)", title_justify="left")
    for column in ("entity", "source", "row", "reason", "raw values"):
        table.add_column(column, overflow="fold")
    for row in first_rows.itertuples():
        table.add_row(
            row.entity,
            escape(Path(row.source).name),
            str(row.row_number),
            escape(row.reason),
            escape(shorten_raw(row.raw_head, row.raw_length)),
        )
    console.print(table)


def _first_rows(rows: ibis.Table, limit: int, raw_chars: int) -> pd.DataFrame:
    """Fetch the first rows with only the start and the length of ``raw``.

    A raw value can be many megabytes, so the database cuts it and the full text
    never leaves the store.
    """
    cut = rows.select(
        "entity",
        "source",
        "row_number",
        "reason",
        "quarantined_at",
        raw_head=rows.raw.left(raw_chars),
        raw_length=rows.raw.length(),
    )
    return cut.order_by(["quarantined_at", "row_number"]).limit(limit).to_pandas()


def shorten_raw(head: str, length: int) -> str:
    """Format the start of a raw value for display, with the count of characters cut.

    Parameters
    ----------
    head
        The first characters of the raw value.
    length
        The length of the whole raw value, in characters.

    Returns
    -------
    str
        ``head`` itself when it is the whole value, else ``head`` followed by
        ``"… (N more characters)"``.
    """
    hidden = length - len(head)
    if hidden <= 0:
        return head
    unit = "character" if hidden == 1 else "characters"
    return f"{head}… ({hidden:,} more {unit})"
