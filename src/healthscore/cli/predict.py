"""`healthscore predict`: churn probabilities with intervals and drivers."""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from healthscore.cli._common import (
    AsOfOption,
    StoreOption,
    check_scoring_date,
    console,
    error_console,
    handle_errors,
    open_store,
    parse_date,
    styled_band,
    today_utc,
)
from healthscore.exceptions import ConfigError
from healthscore.history.snapshots import (
    check_profile_metrics,
    member_profiles,
    scope_segments,
)
from healthscore.profiles import DEFAULT_PROFILE
from healthscore.scoring import (
    HealthProfile,
    ProfileSet,
    load_profile,
    load_profile_set,
)

if TYPE_CHECKING:
    from healthscore.predict.predictions import PredictionRun
    from healthscore.predict.survival import BandSurvival
    from healthscore.store import Store

__all__ = ["format_drivers", "predict", "prediction_line"]

# The same as healthscore.predict.predictions.DEFAULT_HORIZON_DAYS and
# DEFAULT_BOOTSTRAPS. That module is imported only when the command runs, because
# it loads scikit-learn and lifelines, which would slow down every command.
DEFAULT_HORIZON_DAYS = 90
DEFAULT_BOOTSTRAPS = 20


class ModelName(StrEnum):
    """Churn models that `healthscore predict` can fit."""

    logistic = "logistic"
    boosted = "boosted"


@handle_errors
def predict(
    store: StoreOption = None,
    as_of: AsOfOption = None,
    horizon_days: Annotated[
        int,
        typer.Option(
            "--horizon-days",
            min=1,
            help="Predict churn within this many days after --as-of.",
        ),
    ] = DEFAULT_HORIZON_DAYS,
    model: Annotated[
        ModelName,
        typer.Option("--model", help="Churn model to fit.", case_sensitive=False),
    ] = ModelName.logistic,
    survival: Annotated[
        bool,
        typer.Option(
            "--survival",
            help="Also print time-to-churn per band: accounts, churned, and the "
            "median and restricted mean months to churn (Kaplan-Meier).",
        ),
    ] = False,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            "-p",
            help="Use the metrics of this profile or profile set YAML as features. "
            "[default: the profile of the newest stored score, else the built-in "
            "SaaS profile]",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    bootstraps: Annotated[
        int,
        typer.Option(
            "--bootstraps",
            "--bootstrap",
            min=0,
            help="Refits of the model on resampled training rows behind each "
            "90% interval: 0 gives no interval, otherwise at least 10.",
        ),
    ] = DEFAULT_BOOTSTRAPS,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, help="Accounts to print, riskiest first."),
    ] = 20,
    tenure_metric: Annotated[
        str | None,
        typer.Option(
            "--tenure-metric",
            help="For --survival, take each account's months of tenure from this "
            "number column of the accounts (such as Telco's tenure) instead of "
            "created_at and churned_at.",
            show_default=False,
            metavar="NAME",
        ),
    ] = None,
    segment: Annotated[
        list[str] | None,
        typer.Option(
            "--segment",
            help="Train on and predict for only the accounts of this segment. "
            "Repeat for several. [default: the segments the profile applies to]",
            show_default=False,
        ),
    ] = None,
    observed_from: Annotated[
        str | None,
        typer.Option(
            "--observed-from",
            help="For --survival, the first day (YYYY-MM-DD) from which churns are "
            "recorded. Accounts created earlier enter the curves at their tenure "
            "on that day. [default: churns are recorded since each account's "
            "created_at]",
            show_default=False,
            metavar="DATE",
        ),
    ] = None,
) -> None:
    """Predict each active account's churn probability and store it.

    The model is trained on the store's history: the accounts as of observation
    dates 30 days apart, the newest --horizon-days before --as-of, each labelled
    by whether it churned within --horizon-days after. Each probability comes
    with a 90% interval over refits of the model on resampled training rows, and
    the features that pushed it most. `explain` and `export scores` show the
    newest stored prediction.
    """
    from healthscore.predict.predictions import (
        predict_churn,
        store_predictions,
        stored_band_survival,
    )

    date = check_scoring_date(parse_date(as_of) or today_utc())
    first_day = parse_date(observed_from, option="--observed-from")
    _check_survival_options(survival, tenure_metric, observed_from)
    with open_store(store, create=False) as opened:
        chosen = _chosen_profile(opened, profile)
        check_profile_metrics(opened, chosen)
        features = _feature_names(chosen)
        segments = _segments(chosen, segment)
        # The curves come first, so an invalid survival option fails before the
        # model is trained and nothing is stored.
        curves = None
        if survival:
            curves = stored_band_survival(
                opened,
                date,
                tenure_metric=tenure_metric,
                observed_from=first_day,
                segments=segments,
            )
        with error_console.status(f"Training and predicting as of {date} ..."):
            run = predict_churn(
                opened,
                date,
                features,
                horizon_days=horizon_days,
                model=model.value,
                bootstraps=bootstraps,
                segments=segments,
            )
            store_predictions(opened, run)
        print_run(run, limit)
        if curves is not None:
            _warn_undated_churn(curves)
            console.print(survival_table(curves))


def _check_survival_options(
    survival: bool, tenure_metric: str | None, observed_from: str | None
) -> None:
    set_options = [
        name
        for name, value in [
            ("--tenure-metric", tenure_metric),
            ("--observed-from", observed_from),
        ]
        if value is not None
    ]
    if set_options and not survival:
        raise ConfigError(
            f"{set_options[0]} is set without --survival; it applies only to the "
            "time-to-churn table. Add --survival or leave it out.",
            field=set_options[0].removeprefix("--").replace("-", "_"),
        )


def _warn_undated_churn(curves: BandSurvival) -> None:
    count = curves.undated_churned
    if count:
        error_console.print(
            f"[yellow]warning:[/] {count:,} churned accounts have no churned_at, "
            "so the time-to-churn table leaves them out. Pass --tenure-metric with "
            "an account column that holds months of tenure, such as tenure for "
            "Telco.",
            highlight=False,
        )


def _chosen_profile(store: Store, profile: Path | None) -> HealthProfile | ProfileSet:
    from healthscore.predict.predictions import stored_profile

    if profile is not None:
        return load_profile_set(profile)
    stored = stored_profile(store)
    if stored is not None:
        return stored
    return load_profile(DEFAULT_PROFILE)


def _feature_names(profile: HealthProfile | ProfileSet) -> tuple[str, ...]:
    metrics = [name for member in member_profiles(profile) for name in member.metrics]
    return tuple(dict.fromkeys(metrics))


def _segments(
    profile: HealthProfile | ProfileSet, requested: list[str] | None
) -> tuple[str, ...] | None:
    """Return the --segment names if the profile applies to them, else its own.

    ``None`` means every account, for a profile without ``applies_to``.
    """
    covered = scope_segments(profile)
    scope = None if covered is None else tuple(covered)
    if not requested:
        return scope
    outside = [name for name in requested if scope is not None and name not in scope]
    if outside:
        raise ConfigError(
            f"--segment {outside[0]!r} is outside the segments {list(scope or [])} "
            "that the profile applies to; pass one of those, or a --profile that "
            "applies to it.",
            field="segment",
        )
    return tuple(dict.fromkeys(requested))


def print_run(run: PredictionRun, limit: int) -> None:
    """Print the run summary and the riskiest accounts with intervals and drivers."""
    _print_headline(run)

    table = Table(
        title=f"{min(limit, len(run.predictions)):,} accounts most at risk",
        title_justify="left",
    )
    table.add_column("account", no_wrap=True)
    table.add_column("churn", justify="right", no_wrap=True)
    table.add_column(f"{run.interval_level:.0%} interval", no_wrap=True)
    table.add_column("top drivers", overflow="fold")
    drivers = run.drivers.groupby("account_id", sort=False)
    for row in run.predictions.head(limit).itertuples(index=False):
        own = (
            drivers.get_group(row.account_id)
            if row.account_id in drivers.groups
            else None
        )
        table.add_row(
            escape(str(row.account_id)),
            f"{row.probability:.1%}",
            _interval(row.low, row.high),
            escape(format_drivers(own)),
        )
    console.print(table)


def _print_headline(run: PredictionRun) -> None:
    outcome = (
        f"churn within {run.horizon_days} days after {run.as_of}"
        if run.dated_churn
        else f"the recorded churn flag as of {run.as_of}"
    )
    console.print(
        f"Predicted {outcome} for {len(run.predictions):,} active accounts with "
        f"model {run.model}, run {run.run_id}. Trained on {run.training_rows:,} "
        f"rows ({run.training_churned:,} churned) observed on "
        f"{', '.join(d.isoformat() for d in run.observation_dates)}.",
        highlight=False,
    )
    if not run.dated_churn:
        console.print(
            "[yellow]note:[/] churned accounts have no churned_at, so the model "
            "learned each account's recorded churn flag and the probability is of "
            "that outcome, not of a churn within the horizon.",
            highlight=False,
        )


def _interval(low: Any, high: Any) -> str:
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return "-"
    return f"{low:.1%} - {high:.1%}"


def format_drivers(drivers: pd.DataFrame | None) -> str:
    """Format drivers as ``metric = value +0.42, ...`` in rank order.

    The number is the driver's contribution in log-odds points towards churn.
    """
    if drivers is None or drivers.empty:
        return "-"
    ordered = drivers.sort_values("rank", kind="mergesort")
    parts = []
    for row in ordered.to_dict("records"):
        value = _driver_value(row.get("value"), row.get("text_value"))
        parts.append(f"{row['feature']}{value} {row['contribution']:+.2f}")
    return ", ".join(parts)


def _driver_value(number: Any, text: Any) -> str:
    if isinstance(text, str):
        return f" = {text}"
    if number is None or pd.isna(number):
        return ""
    return f" = {number:,.4g}"


def prediction_line(row: dict[str, Any], drivers: pd.DataFrame) -> str:
    """Describe a stored prediction in one line of markup, for `explain`."""
    level = row.get("interval_level")
    interval = _interval(row["low"], row["high"])
    suffix = "" if interval == "-" else f" ({level:.0%} interval {interval})"
    return (
        f"Churn probability [bold]{row['probability']:.1%}[/]{suffix} within "
        f"{row['horizon_days']} days after {row['as_of']}, model "
        f"{escape(str(row['model']))}. Drivers: {escape(format_drivers(drivers))}."
    )


def survival_table(result: BandSurvival) -> Table:
    """Build the per-band time-to-churn table."""
    horizon = result.horizon_months
    table = Table(
        title=f"Time to churn per band (Kaplan-Meier), restricted mean up to "
        f"{horizon:.1f} months",
        title_justify="left",
    )
    table.add_column("band", no_wrap=True)
    table.add_column("accounts", justify="right", no_wrap=True)
    table.add_column("churned", justify="right", no_wrap=True)
    table.add_column("median months", justify="right", no_wrap=True)
    table.add_column("restricted mean months", justify="right", no_wrap=True)
    if result.summary["median_months"].isna().any():
        table.caption = (
            "-: too few accounts at risk at short tenures to estimate the curve."
        )
    for row in result.summary.itertuples(index=False):
        table.add_row(
            styled_band(str(row.band)),
            f"{row.accounts:,}",
            f"{row.churned:,}",
            _months(row.median_months),
            _months(row.restricted_mean_months),
        )
    return table


def _months(value: Any) -> str:
    if pd.isna(value):
        return "-"
    if math.isinf(value):
        return "not reached"
    return f"{value:.1f}"
