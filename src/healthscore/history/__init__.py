"""Score snapshots kept as history, and reading them back."""

from healthscore.history.backfill import (
    BackfillProgress,
    BackfillResult,
    backfill,
    backfill_computed_at,
    backfill_run_id,
)
from healthscore.history.human import (
    HumanInput,
    active_inputs,
    active_overrides,
    clear_input,
    input_history,
    list_inputs,
    set_override,
    set_sentiment,
)
from healthscore.history.inputs import (
    StoredRun,
    find_run,
    load_run_inputs,
    load_score_inputs,
    stored_dates,
)
from healthscore.history.parents import (
    ParentExplanation,
    ParentRollup,
    explain_parent,
    latest_parent_scores,
    roll_up_run,
)
from healthscore.history.peers import peer_percentiles, segment_table
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
    "HumanInput",
    "ParentExplanation",
    "ParentRollup",
    "ScoringRun",
    "StoredRun",
    "active_inputs",
    "active_overrides",
    "backfill",
    "backfill_computed_at",
    "backfill_run_id",
    "clear_input",
    "explain_account",
    "explain_parent",
    "find_run",
    "input_history",
    "latest_components",
    "latest_parent_scores",
    "latest_scores",
    "list_inputs",
    "load_run_inputs",
    "load_score_inputs",
    "peer_percentiles",
    "roll_up_run",
    "score_snapshot",
    "score_trends",
    "segment_table",
    "set_override",
    "set_sentiment",
    "stored_band_names",
    "stored_dates",
]
