"""Profiles and metric tables shared by the scoring tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Nominal weights: contract 0.6 * 3/4 = 0.45, tenure 0.6 * 1/4 = 0.15,
# days_idle 0.4 * 1/2 = 0.2, active_users 0.4 * 1/2 = 0.2.
HAND_PROFILE = """
name: hand
min_coverage: 0.3
components:
  - name: commitment
    weight: 60
    measures:
      - metric: contract
        weight: 3
        category:
          points: {Month-to-month: 0, One year: 70, Two year: 100}
      - metric: tenure
        weight: 1
        linear: {worst: 0, best: 48}
  - name: engagement
    weight: 40
    measures:
      - metric: days_idle
        thresholds: {direction: lower_is_better, good: 30, average: 90}
      - metric: active_users
        percentile: {min_peers: 3}
"""


def hand_metrics() -> pd.DataFrame:
    """Return three accounts of one segment with a value for every metric but one."""
    return pd.DataFrame(
        {
            "account_id": ["a1", "a2", "a3"],
            "segment": ["A", "A", "A"],
            "contract": pd.Series(
                ["Two year", "One year", "Month-to-month"], dtype=object
            ),
            "tenure": [24.0, 60.0, np.nan],
            "days_idle": [10.0, 60.0, 200.0],
            "active_users": [50.0, 20.0, 20.0],
        }
    )
