"""The pure scoring core: health profiles, measure schemes, the engine, explanations.

Nothing here reads a store or the network. The only file this package reads is a
profile YAML, in :func:`load_profile`.
"""

from __future__ import annotations

from healthscore.scoring.attribution import (
    Attribution,
    AttributionPart,
    AttributionStatus,
    PartKind,
    ScoreInputs,
    attribute_change,
    attribute_changes,
)
from healthscore.scoring.engine import ScoreResult, score_accounts
from healthscore.scoring.explain import round_contributions
from healthscore.scoring.profile import (
    DEFAULT_BANDS,
    UNKNOWN_BAND,
    Band,
    Component,
    HealthProfile,
    Measure,
    load_profile,
    parse_profile,
)
from healthscore.scoring.profile_diff import (
    NOT_SCORED,
    AucComparison,
    ProfileDiff,
    diff_profiles,
)
from healthscore.scoring.profile_set import (
    AssignmentRule,
    ProfileSet,
    ProfileSetEntry,
    ProfileSetScores,
    as_profile_set,
    assign_profiles,
    load_profile_set,
    parse_profile_set,
    score_profile_set,
)
from healthscore.scoring.schemes import (
    CategoryScheme,
    LinearScheme,
    PercentileScheme,
    Scheme,
    ThresholdScheme,
)

__all__ = [
    "DEFAULT_BANDS",
    "NOT_SCORED",
    "UNKNOWN_BAND",
    "AssignmentRule",
    "Attribution",
    "AttributionPart",
    "AttributionStatus",
    "AucComparison",
    "Band",
    "CategoryScheme",
    "Component",
    "HealthProfile",
    "LinearScheme",
    "Measure",
    "PartKind",
    "PercentileScheme",
    "ProfileDiff",
    "ProfileSet",
    "ProfileSetEntry",
    "ProfileSetScores",
    "Scheme",
    "ScoreInputs",
    "ScoreResult",
    "ThresholdScheme",
    "as_profile_set",
    "assign_profiles",
    "attribute_change",
    "attribute_changes",
    "diff_profiles",
    "load_profile",
    "load_profile_set",
    "parse_profile",
    "parse_profile_set",
    "round_contributions",
    "score_accounts",
    "score_profile_set",
]
