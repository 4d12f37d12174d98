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
from healthscore.scoring.schemes import (
    CategoryScheme,
    LinearScheme,
    PercentileScheme,
    Scheme,
    ThresholdScheme,
)

__all__ = [
    "DEFAULT_BANDS",
    "UNKNOWN_BAND",
    "Attribution",
    "AttributionPart",
    "AttributionStatus",
    "Band",
    "CategoryScheme",
    "Component",
    "HealthProfile",
    "LinearScheme",
    "Measure",
    "PartKind",
    "PercentileScheme",
    "Scheme",
    "ScoreInputs",
    "ScoreResult",
    "ThresholdScheme",
    "attribute_change",
    "attribute_changes",
    "load_profile",
    "parse_profile",
    "round_contributions",
    "score_accounts",
]
