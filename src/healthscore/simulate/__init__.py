"""A seeded simulator of a SaaS business, for the demo at scale, benchmarks and tests.

:func:`simulate` writes accounts, users, product-usage events, NPS/CSAT survey
responses and support tickets as Parquet files that ``healthscore ingest`` loads
without a mapping.
Each account has a hidden health that drifts and drives its usage, feedback, tickets
and churn; :mod:`healthscore.simulate.model` states the equations.
"""

from healthscore.simulate.model import SimulationConfig
from healthscore.simulate.run import ENTITY_ORDER, SimulationSummary, simulate

__all__ = ["ENTITY_ORDER", "SimulationConfig", "SimulationSummary", "simulate"]
