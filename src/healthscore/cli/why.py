"""`healthscore why`: split an account's score change between two dates into parts."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from healthscore.cli._common import (
    ReadStoreOption,
    console,
    error_console,
    handle_errors,
    parse_date,
    styled_band,
)
from healthscore.cli._spark import open_read_store
from healthscore.history import StoredRun, find_run, load_run_inputs
from healthscore.scoring import (
    Attribution,
    AttributionPart,
    AttributionStatus,
    PartKind,
    ScoreInputs,
    attribute_change,
)

__all__ = ["why"]

#: The tables that `why` reads.
WHY_TABLES = ("accounts", "profiles", "scores", "metric_snapshots")

_DIGITS = 1
_HASH_CHARACTERS = 12


def _date_option(name: str, side: str) -> Any:
    return typer.Option(
        name,
        help=f"The as-of date (YYYY-MM-DD) of the stored score {side} the change. "
        "The newest run of that date that scored the account is used.",
        show_default=False,
        metavar="DATE",
    )


@handle_errors
def why(
    account_id: Annotated[
        str, typer.Argument(help="The account whose score moved.", show_default=False)
    ],
    from_date: Annotated[str, _date_option("--from", "before")],
    to_date: Annotated[str, _date_option("--to", "after")],
    store: ReadStoreOption = None,
) -> None:
    """Explain why an account's stored score changed between two dates.

    The change is split into exact parts. A change of profile gives
    `profile_version` (a new version of the same profile) or `profile_switch`
    (another profile). Each measure gives `data` when its points moved, or
    `went_missing` or `came_back` when its data disappeared or returned, which
    reweights the other measures. Float `rounding` is the last part. The parts are
    rounded to one decimal so that they add up to the printed change. Both dates
    must have a stored score, else the command exits with 5 and lists the stored
    dates.
    """
    dates = parse_date(from_date, option="--from"), parse_date(to_date, option="--to")
    with open_read_store(store, tables=WHY_TABLES) as opened:
        with error_console.status("Reading the stored runs ..."):
            runs = [find_run(opened, as_of=d, account_id=account_id) for d in dates]
            inputs = [load_run_inputs(opened, run) for run in runs]

    attribution = attribute_change(inputs[0], inputs[1], account_id)
    _warn_if_rebuilt_differs(attribution, runs[0], runs[1])
    _print_header(account_id, runs[0], runs[1], attribution)
    if attribution.status is not AttributionStatus.ATTRIBUTED:
        console.print(
            f"No parts: {escape(attribution.reason)}.",
            highlight=False,
        )
        return
    console.print(_parts_table(attribution, runs[0], runs[1], inputs[0], inputs[1]))
    console.print(_sum_line(attribution), highlight=False)


def _round(value: float) -> Decimal:
    """Round like :meth:`Attribution.rounded`: exactly, ties to even."""
    units = round(Fraction(value) * 10**_DIGITS)
    return Decimal(units).scaleb(-_DIGITS)


def _score_text(value: float) -> str:
    return "Unknown" if math.isnan(value) else f"{_round(value)}"


def _signed(value: Decimal) -> str:
    return f"{value:+}" if value != 0 else f"{abs(value)}"


def _print_header(
    account_id: str, before: StoredRun, after: StoredRun, attribution: Attribution
) -> None:
    console.print(
        f"Account [bold]{escape(account_id)}[/]: "
        f"{_score_text(attribution.score_before)} ({styled_band(before.band or '-')}) "
        f"as of {before.as_of} -> {_score_text(attribution.score_after)} "
        f"({styled_band(after.band or '-')}) as of {after.as_of}.",
        highlight=False,
    )
    console.print(
        f"Profile {_describe_profile(attribution.profile_before, before)} -> "
        f"{_describe_profile(attribution.profile_after, after)}, coverage "
        f"{attribution.coverage_before:.0%} -> {attribution.coverage_after:.0%}.",
        highlight=False,
    )


def _describe_profile(name: str, run: StoredRun) -> str:
    return f"{escape(name)} ({run.profile_hash[:_HASH_CHARACTERS]})"


def _warn_if_rebuilt_differs(
    attribution: Attribution, before: StoredRun, after: StoredRun
) -> None:
    """Warn when re-scoring the stored inputs does not give the stored score.

    That happens when an account changed segment since the run, because the
    accounts table keeps only the current segment, which percentile measures read.
    """
    for label, rebuilt, run in (
        ("before", attribution.score_before, before),
        ("after", attribution.score_after, after),
    ):
        if _same_score(rebuilt, run.score):
            continue
        error_console.print(
            f"[yellow]warning:[/] the {label} score re-computed from the stored "
            f"metrics ({_score_text(rebuilt)}) differs from the stored score "
            f"({_score_text(run.score)}) of run {run.run_id}. Percentile measures "
            "compare accounts by their current segment, which may have changed "
            "since that run. The parts explain the re-computed scores.",
            highlight=False,
        )


def _same_score(first: float, second: float) -> bool:
    if math.isnan(first) or math.isnan(second):
        return math.isnan(first) and math.isnan(second)
    return abs(first - second) <= 1e-9


def _parts_table(
    attribution: Attribution,
    before: StoredRun,
    after: StoredRun,
    inputs_before: ScoreInputs,
    inputs_after: ScoreInputs,
) -> Table:
    """Build the table: the score before, one row per part, the score after."""
    values = _metric_values(attribution, inputs_before, inputs_after)
    table = Table(show_footer=True)
    table.add_column("part", footer="score after", no_wrap=True)
    table.add_column("component", no_wrap=True)
    table.add_column("measure", overflow="fold", min_width=12)
    table.add_column("value before -> after", overflow="fold", min_width=10)
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column(
        "amount",
        footer=_score_text(attribution.score_after),
        justify="right",
        no_wrap=True,
    )

    before_score = _score_text(attribution.score_before)
    table.add_row("score before", "", "", "", "", before_score)
    table.add_section()
    amounts = attribution.rounded(_DIGITS)
    for part, amount in zip(attribution.parts, amounts, strict=True):
        if part.kind is PartKind.ROUNDING and part.amount == 0:
            continue
        table.add_row(*_part_cells(part, amount, values, before, after))
    return table


def _part_cells(
    part: AttributionPart,
    amount: Decimal,
    values: dict[tuple[str, str], str],
    before: StoredRun,
    after: StoredRun,
) -> list[str]:
    if part.kind in (PartKind.PROFILE_VERSION, PartKind.PROFILE_SWITCH):
        change = (
            f"{_describe_profile(before.profile_name, before)} -> "
            f"{_describe_profile(after.profile_name, after)}"
        )
        if part.kind is PartKind.PROFILE_VERSION:
            change = (
                f"{before.profile_hash[:_HASH_CHARACTERS]} -> "
                f"{after.profile_hash[:_HASH_CHARACTERS]}"
            )
        return [str(part.kind), "", "", change, "", _signed(amount)]
    if part.kind is PartKind.ROUNDING:
        return [str(part.kind), "", "", "", "", _signed(amount)]
    key = (part.component or "", part.measure or "")
    points = f"{_points(part.points_before)} -> {_points(part.points_after)}"
    return [
        str(part.kind),
        escape(key[0]),
        escape(key[1]),
        values.get(key, ""),
        points,
        _signed(amount),
    ]


def _points(value: float) -> str:
    return "-" if math.isnan(value) else f"{value + 0.0:.1f}"


def _metric_values(
    attribution: Attribution, before: ScoreInputs, after: ScoreInputs
) -> dict[tuple[str, str], str]:
    """Return "value before -> value after" per measure of the after profile."""
    account = attribution.account_id
    rows = [_account_row(inputs.metrics, account) for inputs in (before, after)]
    values = {}
    for component, measure in after.profile.measures:
        texts = [_value_text(row.get(measure.metric)) for row in rows]
        values[(component.name, measure.name)] = escape(f"{texts[0]} -> {texts[1]}")
    return values


def _account_row(metrics: pd.DataFrame, account: object) -> dict[str, Any]:
    rows = metrics[metrics["account_id"] == account]
    return {} if rows.empty else rows.iloc[0].to_dict()


def _value_text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value)


def _sum_line(attribution: Attribution) -> str:
    before = _round(attribution.score_before)
    after = _round(attribution.score_after)
    total = sum(attribution.rounded(_DIGITS), Decimal(0))
    return (
        f"The parts add up to the change: {before} {'+' if total >= 0 else '-'} "
        f"{abs(total)} = {after}. Each part is rounded to {_DIGITS} decimal so "
        "that the rounded parts keep that sum."
    )
