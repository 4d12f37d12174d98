"""Score snapshots kept as history, and reading them back."""

from healthscore.history.backfill import (
    BackfillProgress,
    BackfillResult,
    backfill,
    backfill_computed_at,
    backfill_run_id,
)
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
from healthscore.history.trends import DEFAULT_TREND_DAYS, score_trends

__all__ = [
    "DEFAULT_TREND_DAYS",
    "AccountExplanation",
    "BackfillProgress",
    "BackfillResult",
    "ScoringRun",
    "StoredRun",
    "backfill",
    "backfill_computed_at",
    "backfill_run_id",
    "explain_account",
    "find_run",
    "latest_components",
    "latest_scores",
    "load_run_inputs",
    "load_score_inputs",
    "score_snapshot",
    "score_trends",
    "stored_band_names",
    "stored_dates",
]
