"""The demo on bundled real data: Telco accounts and the CDNOW purchase log."""

from healthscore.demo.run import (
    CDNOW_AS_OF,
    CDNOW_HOLDOUT_END,
    DATA_DIR,
    DatasetResult,
    DemoResult,
    run_demo,
)

__all__ = [
    "CDNOW_AS_OF",
    "CDNOW_HOLDOUT_END",
    "DATA_DIR",
    "DatasetResult",
    "DemoResult",
    "run_demo",
]
