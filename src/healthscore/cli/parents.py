"""`healthscore parents` and the child breakdown of `healthscore explain --children`."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
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
    styled_band,
)
from healthscore.exceptions import ProfileError
from healthscore.history.parents import (
    ParentRollup,
    explain_parent,
    latest_parent_scores,
    roll_up_run,
)
from healthscore.scoring import HealthProfile, round_contributions
from healthscore.scoring.hierarchy import HierarchyRules, parse_profile_with_hierarchy
from healthscore.store import Store

__all__ = ["parents", "print_parent_explanation"]

HierarchyProfileOption = Annotated[
    Path | None,
    typer.Option(
        "--profile",
        "-p",
        help="Health profile YAML whose component weights, bands and `hierarchy:` "
        "rules score the parents. [default: the profile the run was scored with]",
        exists=True,
        dir_okay=False,
        show_default=False,
    ),
]


@handle_errors
def parents(
    as_of: SnapshotOption = None,
    store: StoreOption = None,
    profile: HierarchyProfileOption = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Maximum number of rows.")
    ] = 20,
) -> None:
    """Score parent accounts from their children's scores and store the roll-up.

    Rolls up the newest stored run, or the newest run of --as-of. Each component
    of a parent comes from its children's component scores. The profile's
    `hierarchy:` key picks the operator per component: `arr_weighted_mean` (the
    default), `mean`, `worst` or `share_poor`. Then `healthscore explain PARENT
    --children` shows each child's contribution.
    """
    date = parse_date(as_of)
    chosen, rules = _read_profile(profile)
    with open_store(store, create=False) as opened:
        with error_console.status("Rolling up parent accounts ..."):
            rollup = roll_up_run(opened, as_of=date, profile=chosen, rules=rules)
            frame = latest_parent_scores(opened, as_of=rollup.run.as_of)
    _print_rules(rollup)
    if frame.empty:
        error_console.print(
            f"No scored account of run {rollup.run.run_id} has a parent_id, so there "
            "is nothing to roll up. Load accounts with a parent_id column first.",
            highlight=False,
        )
        return
    console.print(_parents_table(frame, rollup, limit))


def _read_profile(
    path: Path | None,
) -> tuple[HealthProfile | None, HierarchyRules | None]:
    if path is None:
        return None, None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(
            f"cannot read the profile file: {exc}. Check the path and that it is "
            "UTF-8 text.",
            path=path,
        ) from exc
    return parse_profile_with_hierarchy(text, path=path)


def _print_rules(rollup: ParentRollup) -> None:
    operators = ", ".join(
        f"{escape(name)} {operator}"
        for name, operator in rollup.rules.operators.items()
    )
    console.print(
        f"Rolled up run {rollup.run.run_id} as of {rollup.run.as_of} with profile "
        f"[bold]{escape(rollup.profile.name)}[/]: {operators}.",
        highlight=False,
    )


def _parents_table(frame: pd.DataFrame, rollup: ParentRollup, limit: int) -> Table:
    table = Table(title_justify="left")
    table.title = (
        f"{min(limit, len(frame)):,} of {len(frame):,} parent accounts as of "
        f"{rollup.run.as_of}, lowest score first"
    )
    table.add_column("parent", no_wrap=True)
    table.add_column("name", overflow="fold", min_width=8)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("band", no_wrap=True)
    table.add_column("coverage", justify="right", no_wrap=True)
    table.add_column("children", justify="right", no_wrap=True)
    table.add_column("worst child", overflow="fold", min_width=10)
    table.add_column("level", justify="right", no_wrap=True)
    table.add_column("ARR", justify="right", no_wrap=True)
    rows: list[dict[Any, Any]] = frame.head(limit).to_dict("records")
    for row in rows:
        table.add_row(
            escape(str(row["parent_id"])),
            _text(row["name"]),
            format_score(row["score"]),
            styled_band(row["band"]),
            f"{row['coverage']:.0%}",
            f"{row['children']:,}",
            _worst_child(row),
            str(row["level"]),
            format_money(row["arr"]),
        )
    return table


def _worst_child(row: dict[Any, Any]) -> str:
    if not isinstance(row["worst_child"], str):
        return "-"
    return f"{escape(row['worst_child'])} ({format_score(row['worst_child_score'])})"


def _text(value: object) -> str:
    return escape(value) if isinstance(value, str) and value else "-"


def print_parent_explanation(
    store: Store, parent_id: str, as_of: dt.date | None
) -> None:
    """Print a parent's stored roll-up: each component, then each child's part."""
    explanation = explain_parent(store, parent_id, as_of=as_of)
    row: dict[Any, Any] = explanation.score.to_dict()
    console.print(
        f"Parent account [bold]{escape(parent_id)}[/] as of {row['as_of']}: score "
        f"[bold]{format_score(row['score'])}[/], band {styled_band(row['band'])}, "
        f"coverage {row['coverage']:.0%}, {_children_count(row['children'])}, rolled "
        f"up "
        f"from run {row['run_id']}.",
        highlight=False,
    )
    console.print(_components_table(explanation.components, row["score"]))
    console.print(_children_table(explanation.contributions, explanation.components))


def _children_count(count: int) -> str:
    return f"{count} child" if count == 1 else f"{count} children"


def _components_table(components: pd.DataFrame, score: float) -> Table:
    known = not math.isnan(score)
    parts = components["contribution"].tolist()
    rounded = round_contributions(parts, score, 2) if known else parts
    table = Table(show_footer=True, title="Components", title_justify="left")
    table.add_column("component", footer="score", no_wrap=True)
    table.add_column("operator", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("weight", justify="right", no_wrap=True)
    total = f"{score:.2f}" if known else "-"
    table.add_column("contribution", footer=total, justify="right", no_wrap=True)
    records: list[dict[Any, Any]] = components.to_dict("records")
    for component, contribution in zip(records, rounded, strict=True):
        table.add_row(
            escape(component["component"]),
            component["operator"],
            format_score(component["score"]),
            f"{component['effective_weight']:.1%}",
            f"{contribution + 0.0:.2f}",
        )
    return table


def _children_table(contributions: pd.DataFrame, components: pd.DataFrame) -> Table:
    """Build one section per component with each child's share and contribution.

    Each section's contributions are rounded so they add up to the rounded
    component score printed in its header.
    """
    table = Table(title="Children", title_justify="left")
    table.add_column("child", no_wrap=True)
    table.add_column("child score", justify="right", no_wrap=True)
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column("share", justify="right", no_wrap=True)
    table.add_column("contribution", justify="right", no_wrap=True)
    table.add_column("note", overflow="fold", min_width=8)
    scores = dict(zip(components["component"], components["score"], strict=True))
    for number, (component, rows) in enumerate(
        contributions.groupby("component", sort=False)
    ):
        if number:
            table.add_section()
        score = float(scores[component])
        table.add_row(
            f"[bold]{escape(str(component))}[/] ({rows['operator'].iloc[0]})",
            "",
            "",
            "",
            f"[bold]{score:.2f}[/]" if not math.isnan(score) else "-",
        )
        _add_child_rows(table, rows, score)
    return table


def _add_child_rows(table: Table, rows: pd.DataFrame, score: float) -> None:
    parts = rows["contribution"].tolist()
    rounded = parts if math.isnan(score) else round_contributions(parts, score, 2)
    records: list[dict[Any, Any]] = rows.to_dict("records")
    for child, contribution in zip(records, rounded, strict=True):
        note = child["note"] if isinstance(child["note"], str) else ""
        table.add_row(
            f"  {escape(child['child_id'])}",
            format_score(child["child_score"]),
            format_score(child["points"]),
            f"{child['weight']:.1%}",
            f"{contribution + 0.0:.2f}",
            escape(note),
        )
