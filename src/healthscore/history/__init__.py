"""Score snapshots kept as history, and reading them back."""

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
    "explain_account",
    "latest_components",
    "latest_scores",
    "score_snapshot",
    "stored_band_names",
]
