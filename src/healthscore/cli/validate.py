"""`healthscore validate`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from healthscore.cli._common import (
    StoreOption,
    check_scoring_date,
    console,
    error_console,
    handle_errors,
    open_store,
    parse_date,
    today_utc,
)
from healthscore.cli.scores import load_scoring_profile
from healthscore.predict.validation import MIN_RESAMPLES, validate_profiles
from healthscore.predict.validation_report import write_validation_report

__all__ = ["validate"]

ValidateProfileOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--profile",
        "-p",
        help="Health profile or profile set YAML to check; repeat to compare several "
        "side by side, such as a hand-set profile and one from `healthscore learn`. "
        "[default: the built-in SaaS profile]",
        exists=True,
        dir_okay=False,
        show_default=False,
    ),
]


@handle_errors
def validate(
    profile: ValidateProfileOption = None,
    store: StoreOption = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Date to score as of (YYYY-MM-DD, UTC). With dated churn "
            "(churned_at) the outcome is churn after this date. [default: today]",
            show_default=False,
            metavar="DATE",
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder for validation.html and validation.json; created if missing.",
            file_okay=False,
        ),
    ] = Path("validation"),
    bootstrap: Annotated[
        int,
        typer.Option(
            "--bootstraps",
            "--bootstrap",
            min=MIN_RESAMPLES,
            help="Bootstrap resamples behind each confidence interval; at least "
            f"{MIN_RESAMPLES}.",
        ),
    ] = 1000,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Seed of the bootstrap and folds.")
    ] = 0,
    horizon: Annotated[
        int | None,
        typer.Option(
            "--horizon-days",
            "--horizon",
            min=1,
            help="Days after --as-of in which churn counts, for dated churn. "
            "[default: up to the last churn date]",
            show_default=False,
            metavar="DAYS",
        ),
    ] = None,
) -> None:
    """Check profiles against real churn and write an HTML page and a JSON file.

    Each profile scores the accounts as of --as-of (nothing is stored). The page
    gives ROC AUC, PR AUC, Brier score, expected calibration error, top-decile lift,
    churn rate per band and lead time (days from the first Poor score to churn),
    each with a 95% percentile bootstrap interval. With dated churn the check is a
    time-based hold-out; otherwise it uses every account with a known outcome.
    Lead time needs stored score history of the same profile, from
    `healthscore backfill`.
    """
    date = check_scoring_date(parse_date(as_of) or today_utc())
    paths = profile or [None]
    chosen = [load_scoring_profile(path) for path in paths]
    with open_store(store, create=False) as opened:
        document = validate_profiles(
            opened, chosen, date, horizon_days=horizon, resamples=bootstrap, seed=seed
        )
        document["store"] = str(opened.path)
    html_path, json_path = write_validation_report(document, out)

    console.print(_summary_table(document, date))
    for result in document["profiles"]:
        for warning in result["warnings"]:
            error_console.print(
                f"[yellow]warning:[/] {escape(warning)}",
                highlight=False,
                soft_wrap=True,
            )
    for result in document["profiles"]:
        if result.get("reason"):
            console.print(
                f"{escape(result['profile']['name'])}: no figures, because "
                f"{escape(result['reason'])}",
                highlight=False,
            )
    console.print(f"Wrote {html_path.resolve()}", highlight=False)
    console.print(f"Wrote {json_path.resolve()}", highlight=False)


def _summary_table(document: dict[str, Any], date: dt.date) -> Table:
    table = Table(title=f"Validation as of {date.isoformat()}")
    table.add_column("Profile")
    for label in ("ROC AUC", "PR AUC", "Lift top 10%", "Brier", "ECE", "Lead days"):
        table.add_column(label, justify="right")
    for result in document["profiles"]:
        metrics = result["metrics"]
        lead = result["lead_time"]
        lead_text = _entry(lead["median_days"], 0) if lead["available"] else "n/a"
        table.add_row(
            result["profile"]["name"],
            _entry(metrics["roc_auc"], 3),
            _entry(metrics["pr_auc"], 3),
            _entry(metrics["top_decile_lift"], 2),
            _entry(metrics["brier_score"], 3),
            _entry(metrics["expected_calibration_error"], 3),
            lead_text,
        )
    return table


def _entry(entry: dict[str, Any], digits: int) -> str:
    if entry.get("estimate") is None:
        return "n/a"
    text = f"{entry['estimate']:.{digits}f}"
    if entry.get("low") is None:
        return text
    return f"{text} [{entry['low']:.{digits}f}, {entry['high']:.{digits}f}]"
