"""Score snapshots kept as history, and reading them back."""

from healthscore.history.inputs import (
    StoredRun,
    find_run,
    load_run_inputs,
    load_score_inputs,
    stored_dates,
)
from healthscore.history.snapshots import (
    AccountExplanation,
    ScoringRun,
    explain_account,
    latest_components,
    latest_scores,
    score_snapshot,
    stored_band_names,
)

__all__ = [
    "AccountExplanation",
    "ScoringRun",
    "StoredRun",
    "explain_account",
    "find_run",
    "latest_components",
    "latest_scores",
    "load_run_inputs",
    "load_score_inputs",
    "score_snapshot",
    "stored_band_names",
    "stored_dates",
]
