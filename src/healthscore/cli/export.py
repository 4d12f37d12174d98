"""`healthscore export scores`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
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
from healthscore.exceptions import ConfigError, NotFoundError
from healthscore.history import latest_components, latest_scores

export_app = typer.Typer(
    help="Write stored results to CSV or Parquet files.", no_args_is_help=True
)

#: Decimal places of scores, coverage and component scores in exported files.
EXPORT_DECIMALS = 10

EXPORT_COLUMNS = ["account_id", "as_of", "score", "band", "coverage", "profile_hash"]
# Empty unless a CSM override set the score or band. computed_score and computed_band
# are what the profile gave. A store from before overrides exports without them.
OVERRIDE_EXPORT_COLUMNS = [
    "computed_score",
    "computed_band",
    "override_author",
    "override_reason",
    "override_expires_at",
]
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

# Columns of the newest stored prediction, added when the store contains any.
PREDICTION_EXPORT_COLUMNS = {
    "as_of": "churn_as_of",
    "probability": "churn_probability",
    "low": "churn_low",
    "high": "churn_high",
    "interval_level": "churn_interval_level",
    "horizon_days": "churn_horizon_days",
    "model": "churn_model",
}


@export_app.command("scores")
@handle_errors
def export_scores(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="File to write; .csv or .parquet decides the format.",
            dir_okay=False,
            show_default=False,
        ),
    ],
    as_of: SnapshotOption = None,
    segment: SegmentOption = None,
    store: ReadStoreOption = None,
) -> None:
    """Export one row per account: score, band, coverage, profile hash and components.

    Each account's newest snapshot is written unless --as-of picks a date. Where a
    CSM override set the score or band, `computed_score` and `computed_band` keep
    what the profile gave, with the override's author, reason and expiry. Component
    columns are named after the profile's components and are empty without data.

    When `healthscore predict` has stored predictions, each account's newest one
    is added: `churn_probability` with its interval `churn_low` to `churn_high`,
    its as-of date, horizon and model, and `churn_drivers`, a JSON list of
    `{"feature", "contribution"}` objects, strongest first.
    """
    file_format = FORMATS.get(out.suffix.lower())
    if file_format is None:
        raise ConfigError(
            f"--out {str(out)!r} has an unknown extension; expected one of "
            f"{sorted(FORMATS)}. Name the file scores.csv or scores.parquet.",
            field="--out",
        )
    date = parse_date(as_of)
    # Imported here because the predict package loads scikit-learn, which
    # would slow down every other command.
    from healthscore.predict.predictions import latest_predictions

    with open_read_store(store, tables=SCORE_TABLES) as opened:
        scores = latest_scores(opened, as_of=date, segments=segment)
        components = latest_components(opened, as_of=date, segments=segment)
        predictions, drivers = latest_predictions(opened)
    if scores.empty:
        raise NotFoundError(no_scores_message(date, segment))

    columns = EXPORT_COLUMNS + [
        name for name in OVERRIDE_EXPORT_COLUMNS if name in scores.columns
    ]
    frame = scores[columns].merge(components, on="account_id", how="left")
    if not predictions.empty:
        frame = frame.merge(
            _prediction_columns(predictions, drivers), on="account_id", how="left"
        )
        frame["churn_horizon_days"] = frame["churn_horizon_days"].astype("Int64")
    # Sums of weights such as 0.9999999999999999 are written as 1.0.
    numbers = frame.select_dtypes("float").columns
    frame[numbers] = frame[numbers].round(EXPORT_DECIMALS)
    frame = frame.sort_values("account_id", kind="mergesort").reset_index(drop=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "csv":
        frame.to_csv(out, index=False)
    else:
        frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
        frame.to_parquet(out, index=False)
    console.print(f"Wrote {len(frame):,} accounts to {out}.", highlight=False)


def _prediction_columns(
    predictions: pd.DataFrame, drivers: pd.DataFrame
) -> pd.DataFrame:
    """Return ``account_id``, the ``churn_*`` columns and ``churn_drivers`` JSON."""
    frame = predictions[["account_id", *PREDICTION_EXPORT_COLUMNS]].rename(
        columns=PREDICTION_EXPORT_COLUMNS
    )
    texts = {
        account_id: json.dumps(
            [
                {"feature": feature, "contribution": round(contribution, 6)}
                for feature, contribution in zip(
                    group["feature"], group["contribution"], strict=True
                )
            ]
        )
        for account_id, group in drivers.groupby("account_id", sort=False)
    }
    frame["churn_drivers"] = frame["account_id"].map(texts)
    return frame
