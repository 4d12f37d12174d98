"""`healthscore demo`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from healthscore.cli._common import (
    StoreOption,
    console,
    error_console,
    format_money,
    handle_errors,
    open_store,
    styled_band,
    today_utc,
)
from healthscore.cli.scores import print_accounts_table
from healthscore.demo import DatasetResult, DemoResult, run_demo
from healthscore.demo.simulated import run_simulated_demo
from healthscore.simulate import SimulationConfig

#: ROC AUC of the BG/NBD model's expected hold-out purchases on the 2,357-customer
#: CDNOW sample, reproduced with the lifetimes package (see demo/data/cdnow/SOURCE.txt).
BGNBD_SAMPLE_AUC = 0.778


@handle_errors
def demo(
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out-dir",
            help="Folder for the reports, the derived CDNOW accounts file and, with "
            "--simulated, the simulated files.",
            file_okay=False,
        ),
    ] = Path("."),
    simulated: Annotated[
        bool,
        typer.Option(
            "--simulated",
            help="Run on a simulated SaaS business instead of the real datasets.",
        ),
    ] = False,
    accounts: Annotated[
        int,
        typer.Option("--accounts", min=1, help="Number of simulated accounts."),
    ] = 2000,
    days: Annotated[
        int, typer.Option("--days", min=1, help="Number of simulated days.")
    ] = 180,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Seed of the simulation.")
    ] = 0,
    store: StoreOption = None,
) -> None:
    """Run the main job on two real datasets that ship with healthscore.

    IBM's Telco churn table is loaded as accounts and scored with a hand-set profile.
    The CDNOW purchase log is loaded as events and scored as of 1997-09-30. Both
    scores are checked against what happened next (ROC AUC and churn rate per band),
    and an HTML report is written for each. The results stay in the store, so
    `accounts`, `explain`, `export` and `report` work on them afterwards.

    With --simulated, a seeded SaaS business (accounts, users, events, surveys,
    tickets) is simulated, loaded and scored with the built-in SaaS profile 60 days
    before its end, and checked against churn in those 60 days. Synthetic data shows
    scale and plumbing, not quality.
    """
    started = time.perf_counter()
    with open_store(store) as opened:
        with error_console.status("Starting the demo ...") as status:

            def step(text: str) -> None:
                status.update(f"{text} ...")

            if simulated:
                config = SimulationConfig(accounts=accounts, days=days, seed=seed)
                dataset = run_simulated_demo(opened, out_dir, config, step=step)
            else:
                result = run_demo(opened, out_dir, step=step, today=today_utc())
        store_path = opened.path.resolve() if opened.path else ":memory:"

    if simulated:
        _print_dataset(dataset, f"Simulated SaaS business: {accounts:,} accounts")
        first = dataset.scores.iloc[0]["account_id"]
        segment = "SMB"
    else:
        _print_demo(result)
        first = result.telco.scores.iloc[0]["account_id"]
        segment = "Telco"
    console.print(
        f"\nDone in {time.perf_counter() - started:.1f} s. Store: {store_path}",
        highlight=False,
    )
    console.print(
        "Try next:\n"
        f"  healthscore accounts --segment {segment} --band Poor\n"
        f"  healthscore explain {first}\n"
        f"  healthscore export scores --out scores.csv --segment {segment}",
        highlight=False,
    )


def _print_demo(result: DemoResult) -> None:
    _print_dataset(result.telco, "Telco Customer Churn: 7,043 accounts")
    _print_dataset(result.cdnow, "CDNOW purchase log, scored as of 1997-09-30")
    if result.cdnow_sample_auc is not None:
        console.print(
            f"On the {result.cdnow_sample_size:,}-customer CDNOW sample of Fader, "
            f"Hardie and Lee: ROC AUC [bold]{result.cdnow_sample_auc:.3f}[/] "
            f"(BG/NBD model: {BGNBD_SAMPLE_AUC}).",
            highlight=False,
        )


def _print_dataset(data: DatasetResult, heading: str) -> None:
    console.rule(f"[bold]{heading}")
    for load in data.loads:
        console.print(
            f"Loaded {load.entity}: {load.accepted:,} accepted, {load.rejected:,} "
            f"rejected, {load.duplicates:,} duplicates.",
            highlight=False,
        )
    bands = [band.name for band in data.run.profile.bands] + ["Unknown"]
    console.print(_portfolio_table(data.scores, bands))
    print_accounts_table(data.scores, 10)
    console.print(_churn_table(data.churn_by_band))
    if data.roc_auc is not None:
        console.print(
            f"ROC AUC of the score against churn: [bold]{data.roc_auc:.3f}[/] "
            "(0.5 is a coin toss, 1.0 ranks every churner below every stayer).",
            highlight=False,
        )
    console.print(f"Report: {data.report.resolve()}", highlight=False)


def _portfolio_table(scores: pd.DataFrame, bands: list[str]) -> Table:
    table = Table(title="Portfolio by band", title_justify="left")
    for column in ("band", "accounts", "share", "ARR", "average score"):
        table.add_column(column, justify="left" if column == "band" else "right")
    total = len(scores)
    for band in bands:
        group = scores[scores["band"] == band]
        if group.empty:
            continue
        table.add_row(
            styled_band(band),
            f"{len(group):,}",
            f"{len(group) / total:.1%}",
            format_money(group["arr"].sum(min_count=1)),
            f"{group['score'].mean():.1f}" if group["score"].notna().any() else "-",
        )
    return table


def _churn_table(churn_by_band: pd.DataFrame) -> Table:
    table = Table(title="Churn rate per band", title_justify="left")
    for column in ("band", "accounts", "churned", "churn rate"):
        table.add_column(column, justify="left" if column == "band" else "right")
    for row in churn_by_band.itertuples():
        table.add_row(
            styled_band(str(row.band)),
            f"{row.accounts:,}",
            f"{row.churned:,}",
            f"{row.churn_rate:.1%}",
        )
    return table
