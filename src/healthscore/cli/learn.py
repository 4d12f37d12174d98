"""`healthscore learn`: fit a churn model on outcomes and write a learned profile."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import numpy.typing as npt
import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from healthscore import predict as prediction
from healthscore.cli._common import (
    ReadStoreOption,
    check_scoring_date,
    console,
    error_console,
    handle_errors,
    make_progress,
    parse_date,
    today_utc,
)
from healthscore.cli._spark import open_read_store
from healthscore.evaluation import roc_auc
from healthscore.exceptions import ConfigError, InputDataError
from healthscore.history.snapshots import check_profile_metrics
from healthscore.profiles import DEFAULT_PROFILE
from healthscore.scoring import HealthProfile, load_profile

if TYPE_CHECKING:
    from healthscore.predict import ChurnModel, TrainingSet
    from healthscore.store import Store

#: Store tables that metrics read.
SOURCE_TABLES = (
    "accounts",
    "account_attributes",
    "events",
    "survey_responses",
    "tickets",
    "human_inputs",
)

#: Horizon used when --horizon-days is not given.
DEFAULT_HORIZON_DAYS = 90


class ModelKind(StrEnum):
    """Churn models that `healthscore learn` can fit."""

    logistic = "logistic"
    boosted = "boosted"
    ensemble = "ensemble"


@handle_errors
def learn(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="File to write the learned profile YAML to; its folder is created "
            "if missing.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    store: ReadStoreOption = None,
    as_of: Annotated[
        list[str] | None,
        typer.Option(
            "--as-of",
            help="Observation date (YYYY-MM-DD, UTC); features use data up to the "
            "end of this day. Repeat for several dates. [default: today]",
            show_default=False,
            metavar="DATE",
        ),
    ] = None,
    horizon_days: Annotated[
        int,
        typer.Option(
            "--horizon-days",
            help="Days after each observation date in which a churn counts.",
            min=1,
        ),
    ] = DEFAULT_HORIZON_DAYS,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            help="Comma-separated metric names to learn from, such as "
            "tenure_days,active_days_30d. [default: the metrics of the built-in "
            "SaaS profile]",
            show_default=False,
        ),
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            "-p",
            help="Take the metrics, bands and grouping from this profile, and "
            "compare its held-out ROC AUC with the learned one.",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        ModelKind,
        typer.Option("--model", help="Model whose held-out figures are printed."),
    ] = ModelKind.logistic,
    segment: Annotated[
        list[str] | None,
        typer.Option("--segment", help="Learn only from accounts of this segment."),
    ] = None,
    name: Annotated[
        str, typer.Option("--name", help="Name of the learned profile.")
    ] = "learned",
    folds: Annotated[
        int, typer.Option("--folds", help="Cross-validation folds.", min=2)
    ] = 5,
) -> None:
    """Learn churn weights from outcomes and write them as a health profile.

    Builds a training set of metrics as of each observation date, labelled by churn
    within the horizon after it, prints held-out ROC AUC and calibration error, and
    writes a profile whose weights come from a logistic regression.
    """
    dates = _observation_dates(as_of)
    base = load_profile(profile) if profile is not None else None
    names = _metric_names(metrics, base)
    _prepare_output(out)

    with (
        open_read_store(store, tables=SOURCE_TABLES) as opened,
        make_progress() as progress,
    ):
        if base is not None:
            check_profile_metrics(opened, base)
        task = progress.add_task("Building the training set", total=None)
        training = prediction.build_training_set(
            opened, names, dates, horizon_days, segments=segment
        )
        _check_outcomes(training)
        _check_time_folds(training, folds)

        progress.update(task, description=f"Cross-validating the {model} model")
        fit = _model_fit(model)
        predictions = prediction.cross_validated_predictions(
            training,
            fit,
            folds=folds,
            progress=lambda done, total: progress.update(
                task, completed=done, total=total
            ),
        )

        progress.update(task, description="Scoring the learned profile", total=None)
        with _reword_empty_profile(len(training.rows)):
            learned_risk = prediction.cross_validated_profile_risk(
                opened, training, folds=folds, base=base
            )
        base_risk = prediction.profile_risk(opened, base, training) if base else None

        progress.update(task, description="Fitting on all rows")
        final = prediction.fit_logistic(training, calibration=None)
        with _reword_empty_profile(len(training.rows)):
            text = prediction.learned_profile(final, training, base=base, name=name)
        undated = _undated_churners(opened, training)

    out.write_text(text, encoding="utf-8")
    _print_summary(training, model, predictions.attrs["split"], folds, undated)
    _print_figures(predictions, learned_risk, base_risk, base)
    console.print(f"Wrote the learned profile to {escape(str(out))}.")


def _prepare_output(out: Path) -> None:
    """Create the folder of ``out`` before the fit, so a bad path fails early."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"--out {str(out)!r}: cannot create the folder {str(out.parent)!r} "
            f"({exc.strerror}); pass --out with a file in a writable folder.",
            field="--out",
        ) from exc
    if out.parent.is_dir():
        return
    raise ConfigError(
        f"--out {str(out)!r}: {str(out.parent)!r} is not a folder; pass --out with "
        "a file in a folder.",
        field="--out",
    )


def _observation_dates(texts: list[str] | None) -> list[dt.date]:
    if not texts:
        return [today_utc()]
    dates = []
    for text in texts:
        date = parse_date(text)
        if date is not None:
            dates.append(check_scoring_date(date))
    return dates


def _metric_names(metrics: str | None, base: HealthProfile | None) -> list[str]:
    if metrics is not None and base is not None:
        raise ConfigError(
            "--metrics and --profile both name the metrics; pass one of them.",
            field="--metrics",
        )
    if base is not None:
        return list(base.metrics)
    if metrics is None:
        return list(load_profile(DEFAULT_PROFILE).metrics)
    names = [name.strip() for name in metrics.split(",") if name.strip()]
    if not names:
        raise ConfigError(
            f"--metrics {metrics!r} names no metric; pass comma-separated names "
            "such as tenure_days,active_days_30d.",
            field="--metrics",
        )
    return names


def _check_outcomes(training: TrainingSet) -> None:
    labels = training.labels()
    if len(labels) and not labels.any():
        raise InputDataError(
            f"none of the {len(labels)} labelled accounts churned within "
            f"{training.horizon_days} days of the observation dates, so there is "
            "nothing to learn from. Load churn outcomes (churned, churned_at), pick "
            "earlier --as-of dates or a longer --horizon-days."
        )


def _check_time_folds(training: TrainingSet, folds: int) -> None:
    """Raise InputDataError when time-based folds would have no training rows.

    With several observation dates each of the last ``folds`` dates is a test fold,
    trained on the dates whose label window ends by it. This is the condition that
    the library checks, worded with the options of this command.
    """
    dates = training.observation_dates()
    if len(dates) < 2:
        return

    horizon = dt.timedelta(days=training.horizon_days)
    if any(dates[0] + horizon <= test_date for test_date in dates[-folds:]):
        return
    listed = ", ".join(date.isoformat() for date in dates)
    raise InputDataError(
        f"the --as-of dates {listed} are less than --horizon-days "
        f"{training.horizon_days} apart, so no date has earlier rows whose churn "
        "window has ended and time-based folds have nothing to train on. Add an "
        f"--as-of date at least {training.horizon_days} days before the last one, "
        "pass a shorter --horizon-days, or pass a single --as-of date to use "
        "stratified folds."
    )


@contextlib.contextmanager
def _reword_empty_profile(rows: int) -> Iterator[None]:
    """Raise the library's all-zero-coefficients error as an InputDataError.

    The library message suggests a larger ``C``, which this command has no option
    for. Other errors with ``field="model"`` come from models that are not
    logistic, which this command never passes.
    """
    try:
        yield
    except ConfigError as exc:
        if exc.field != "model":
            raise
        raise InputDataError(
            f"every coefficient of the logistic model fitted on {rows:,} rows is 0, "
            "so the learned profile would have no measure. Learn from more rows "
            "(more --as-of dates, or data that spans a longer period) or from other "
            "--metrics."
        ) from exc


def _model_fit(kind: ModelKind) -> Callable[[TrainingSet], ChurnModel]:
    if kind is ModelKind.boosted:
        return functools.partial(prediction.fit_boosted)
    if kind is ModelKind.ensemble:
        return functools.partial(prediction.fit_ensemble)
    return functools.partial(prediction.fit_logistic)


def _undated_churners(store: Store, training: TrainingSet) -> int:
    """Count churned training rows whose account has no ``churned_at``.

    Such rows are labelled churned on any observation date, whatever the horizon.
    """
    accounts = store.table("accounts")
    undated = accounts.filter(accounts.churned & accounts.churned_at.isnull())
    ids = set(undated.select("account_id").execute()["account_id"])
    churned = training.rows.loc[training.labels(), "account_id"]
    return int(churned.isin(ids).sum())


def _churn_text(training: TrainingSet, undated: int) -> str:
    churned = int(training.labels().sum())
    within = f"within {training.horizon_days} days"
    if undated == 0:
        return f"{churned:,} churned {within}"
    if undated == churned:
        return f"{churned:,} churned, with no churn dates, so the horizon is not used"
    return (
        f"{churned:,} churned: {churned - undated:,} {within} and {undated:,} "
        "with no churn date, whatever the horizon"
    )


def _print_summary(
    training: TrainingSet, kind: ModelKind, split: str, folds: int, undated: int
) -> None:
    labels = training.labels()
    dates = training.observation_dates()
    article = "an" if str(kind)[0] in "aeiou" else "a"
    split_text = (
        f"{folds} stratified folds"
        if split == "stratified"
        else f"time-based folds over {len(dates)} dates"
    )
    console.print(
        f"Trained {article} {kind} model on {len(labels):,} rows "
        f"({_churn_text(training, undated)}) with "
        f"{len(training.feature_names)} features; held out by {split_text}."
    )
    if undated:
        error_console.print(
            f"warning: {undated:,} churned accounts have no churned_at, so nothing "
            "checks that their churn came after --as-of. If the metrics read data "
            "from after the churn, the held-out figures are better than the model. "
            "Pick an --as-of before the outcome period, or load churned_at."
        )


def _print_figures(
    predictions: pd.DataFrame,
    learned_risk: pd.DataFrame,
    base_risk: np.ndarray | None,
    base: HealthProfile | None,
) -> None:
    table = Table(title="Held-out figures")
    table.add_column("Ranking")
    table.add_column("ROC AUC", justify="right")
    table.add_column("ECE", justify="right")
    probability, labels = predictions["probability"], predictions["label"]
    ece = prediction.expected_calibration_error(probability, labels)
    table.add_row("model probability", _auc(probability, labels), f"{ece:.3f}")
    table.add_row(
        "learned profile score",
        _auc(learned_risk["risk"], learned_risk["label"]),
        "-",
    )
    if base is not None and base_risk is not None:
        rows = predictions["row"].to_numpy()
        table.add_row(f"profile {base.name}", _auc(base_risk[rows], labels), "-")
    console.print(table)
    console.print(
        "ECE: expected calibration error over 10 equal-width probability bins. "
        "Profile rows rank accounts by 100 - score."
    )


def _auc(risk: npt.ArrayLike, labels: npt.ArrayLike) -> str:
    risk = np.asarray(risk, dtype=np.float64)
    known = ~np.isnan(risk)
    if known.sum() == 0:
        return "-"
    try:
        return f"{roc_auc(risk, labels):.3f}"
    except InputDataError:
        return "-"
