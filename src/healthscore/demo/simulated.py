"""The demo on simulated data: the main job at a scale the real datasets do not reach.

The simulator writes a SaaS business, ingest loads every file, and the accounts are
scored with the built-in SaaS profile a fixed number of days before the simulation
ends. An account counts as churned when it churned in those last days, so the churn
rate per band and the ROC AUC show that the plumbing works end to end. They are no
measure of quality on real customers, because the simulator's rules decide them.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from healthscore.demo.run import DEMO_DIR, DatasetResult, StepCallback, finish_dataset
from healthscore.exceptions import ConfigError
from healthscore.history import score_snapshot
from healthscore.ingest import IngestResult, ingest_file
from healthscore.scoring import load_profile
from healthscore.simulate import ENTITY_ORDER, SimulationConfig, simulate
from healthscore.simulate.model import SEGMENTS
from healthscore.store import Store

__all__ = ["OUTCOME_DAYS", "run_simulated_demo"]

logger = logging.getLogger(__name__)

#: Days between the as-of date and the end of the simulation, over which churn is
#: the outcome the score is checked against.
OUTCOME_DAYS = 60


def run_simulated_demo(
    store: Store,
    out_dir: Path,
    config: SimulationConfig,
    *,
    step: StepCallback,
) -> DatasetResult:
    """Simulate a SaaS business, load it, score it and check the score against churn.

    Parameters
    ----------
    store
        The store to load into and score in.
    out_dir
        Folder for the simulated files (in ``simulated/``) and the report.
    config
        Size, length and seed of the simulation. It must cover more than
        :data:`OUTCOME_DAYS` days plus a 30-day usage window.
    step
        Called with a short description before each step.

    Returns
    -------
    DatasetResult
        Loads, scores, AUC, churn per band and the report path.
    """
    if config.days <= OUTCOME_DAYS + 30:
        raise ConfigError(
            f"--days {config.days} is too short for the simulated demo; expected more "
            f"than {OUTCOME_DAYS + 30}, because scores are checked against churn in "
            f"the last {OUTCOME_DAYS} days. Pass --days {OUTCOME_DAYS + 31} or more; "
            "180 gives the scores more history.",
            field="days",
        )
    step(
        f"Simulating {config.accounts:,} accounts over {config.days} days "
        f"(seed {config.seed})"
    )
    summary = simulate(config, out_dir / "simulated")
    loads = _ingest_all(store, summary.files, step)

    end = config.start + dt.timedelta(days=config.days - 1)
    as_of = end - dt.timedelta(days=OUTCOME_DAYS)
    step(f"Scoring the simulated accounts as of {as_of}")
    profile = load_profile(DEMO_DIR / "profiles" / "simulated.yaml")
    run = score_snapshot(store, profile, as_of)
    notes = (
        f"Data: simulated by healthscore simulate --accounts {config.accounts} "
        f"--days {config.days} --seed {config.seed}. Synthetic data shows scale and "
        "plumbing, not the quality of the score on real customers.",
        f"Scored as of {as_of}; an account counts as churned when it churned between "
        f"{as_of} and {end}.",
    )
    report = out_dir / "report-simulated.html"
    return finish_dataset(
        store, report, tuple(SEGMENTS), loads, run, notes, name="Simulated SaaS"
    )


def _ingest_all(
    store: Store, files: dict[str, tuple[Path, ...]], step: StepCallback
) -> tuple[IngestResult, ...]:
    loads = []
    for entity in ENTITY_ORDER:
        for number, path in enumerate(files.get(entity, ()), start=1):
            count = len(files[entity])
            part = f" (part {number} of {count})" if count > 1 else ""
            step(f"Loading the simulated {entity}{part}")
            loads.append(ingest_file(store, entity, path))
    return tuple(loads)
