"""The demo: the main job on two real datasets that ship with healthscore.

1. IBM's Telco Customer Churn table is loaded as accounts and scored with a hand-set
   profile. Its ``Churn`` column is the outcome the score is checked against.
2. The CDNOW purchase log is loaded as events and scored as of 1997-09-30 with an event
   profile. The outcome is whether a customer buys again by 1998-06-30, the hold-out
   period of Fader, Hardie and Lee (2005), "Counting your customers the easy way".
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from healthscore.evaluation import churn_rate_by_band
from healthscore.history import ScoringRun, latest_scores, score_snapshot
from healthscore.ingest import IngestResult, ingest_file, load_mapping
from healthscore.report import collect_report_data, score_auc, write_report
from healthscore.scoring import load_profile
from healthscore.store import Store

__all__ = [
    "CDNOW_AS_OF",
    "CDNOW_HOLDOUT_END",
    "DATA_DIR",
    "DatasetResult",
    "DemoResult",
    "run_demo",
]

logger = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).parent
DATA_DIR = DEMO_DIR / "data"
TELCO_FILE = DATA_DIR / "telco" / "Telco-Customer-Churn.csv"
CDNOW_EVENTS_FILE = DATA_DIR / "cdnow" / "CDNOW_master.txt"
CDNOW_SAMPLE_FILE = DATA_DIR / "cdnow" / "CDNOW_sample.txt"

CDNOW_AS_OF = dt.date(1997, 9, 30)
CDNOW_HOLDOUT_END = dt.date(1998, 6, 30)


@dataclass(frozen=True)
class DatasetResult:
    """Results of the demo on one dataset: loads, scores and how they rank churners.

    Attributes
    ----------
    name
        Dataset name for display.
    loads
        The ingest results, one per file loaded.
    run
        The scoring run.
    scores
        The stored scores joined with the account rows.
    roc_auc
        ROC AUC of ``100 - score`` against the outcome.
    churn_by_band
        Accounts, churned and churn rate per band.
    report
        The HTML report written for this dataset.
    """

    name: str
    loads: tuple[IngestResult, ...]
    run: ScoringRun
    scores: pd.DataFrame
    roc_auc: float | None
    churn_by_band: pd.DataFrame
    report: Path


@dataclass(frozen=True)
class DemoResult:
    """Both datasets' results, and the AUC on the published CDNOW sample."""

    telco: DatasetResult
    cdnow: DatasetResult
    cdnow_sample_auc: float | None
    cdnow_sample_size: int


StepCallback = Callable[[str], None]


def _no_step(message: str) -> None:
    logger.info("%s", message)


def run_demo(
    store: Store, out_dir: Path, *, step: StepCallback = _no_step, today: dt.date
) -> DemoResult:
    """Load, score and report on the bundled Telco and CDNOW datasets.

    Parameters
    ----------
    store
        The store to load into and score in.
    out_dir
        Folder for the HTML reports and the derived CDNOW accounts file.
    step
        Called with a short description before each step.
    today
        The as-of date for the Telco accounts, whose records carry no dates.

    Returns
    -------
    DemoResult
        Scores, AUCs, churn rates per band and report paths.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    telco = _run_telco(store, out_dir, step, today)
    cdnow = _run_cdnow(store, out_dir, step)
    sample_ids = _cdnow_sample_ids()
    sample = cdnow.scores[cdnow.scores["account_id"].isin(sample_ids)]
    return DemoResult(
        telco=telco,
        cdnow=cdnow,
        cdnow_sample_auc=score_auc(sample["score"], sample["churned"]),
        cdnow_sample_size=len(sample),
    )


def _run_telco(
    store: Store, out_dir: Path, step: StepCallback, today: dt.date
) -> DatasetResult:
    step("Loading the Telco accounts")
    mapping = load_mapping(DEMO_DIR / "mappings" / "telco.yaml")
    load = ingest_file(store, "accounts", TELCO_FILE, mapping)

    step(f"Scoring the Telco accounts as of {today}")
    profile = load_profile(DEMO_DIR / "profiles" / "telco.yaml")
    run = score_snapshot(store, profile, today)
    notes = (
        "Data: IBM Telco Customer Churn sample data (Apache-2.0), 7,043 accounts of a "
        "fictional telco. Outcome: its Churn column.",
        f"Profile {profile.name}: hand-set from domain sense, not fitted to the data.",
    )
    return finish_dataset(store, out_dir / "report.html", "Telco", (load,), run, notes)


def _run_cdnow(store: Store, out_dir: Path, step: StepCallback) -> DatasetResult:
    step("Deriving CDNOW accounts from the purchase log")
    accounts_file = _write_cdnow_accounts(out_dir / "cdnow_accounts.csv")

    step("Loading the CDNOW accounts")
    account_load = ingest_file(store, "accounts", accounts_file)
    step("Loading the CDNOW purchase events")
    mapping = load_mapping(DEMO_DIR / "mappings" / "cdnow_events.yaml")
    event_load = ingest_file(store, "events", CDNOW_EVENTS_FILE, mapping)

    step(f"Scoring the CDNOW customers as of {CDNOW_AS_OF}")
    profile = load_profile(DEMO_DIR / "profiles" / "cdnow.yaml")
    run = score_snapshot(store, profile, CDNOW_AS_OF)
    notes = (
        "Data: the CDNOW purchase log (23,570 customers who first bought in Q1 1997), "
        "as shipped by the lifetimes package (MIT).",
        f"Scored as of {CDNOW_AS_OF}; a customer counts as churned when they made no "
        f"purchase between {CDNOW_AS_OF} and {CDNOW_HOLDOUT_END}.",
    )
    loads = (account_load, event_load)
    return finish_dataset(
        store, out_dir / "report-cdnow.html", "CDNOW", loads, run, notes
    )


def finish_dataset(
    store: Store,
    report_path: Path,
    segment: str | tuple[str, ...],
    loads: tuple[IngestResult, ...],
    run: ScoringRun,
    notes: tuple[str, ...],
    *,
    name: str | None = None,
) -> DatasetResult:
    segments = [segment] if isinstance(segment, str) else list(segment)
    name = name or segments[0]
    scores = latest_scores(store, as_of=run.as_of, segments=segments)
    scores = scores[scores["run_id"] == run.run_id]
    known = scores[scores["churned"].notna()]
    data = collect_report_data(
        store,
        as_of=run.as_of,
        segments=segments,
        title=f"{name} portfolio health",
        notes=notes,
    )
    return DatasetResult(
        name=name,
        loads=loads,
        run=run,
        scores=scores,
        roc_auc=score_auc(scores["score"], scores["churned"]),
        churn_by_band=churn_rate_by_band(
            known["band"].to_numpy(), known["churned"].astype(bool).to_numpy()
        ),
        report=write_report(data, report_path),
    )


def _read_cdnow_log() -> pd.DataFrame:
    log = pd.read_csv(
        CDNOW_EVENTS_FILE, sep=r"\s+", dtype={"customer_id": str, "date": str}
    )
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    return log


def _write_cdnow_accounts(path: Path) -> Path:
    """Write one account row per CDNOW customer: first purchase and hold-out outcome.

    CDNOW has no account table. The account's start is its first purchase, and
    ``churned`` is true when the customer bought nothing after the as-of date up to
    the end of the hold-out. The outcome is used only to evaluate the score.
    """
    log = _read_cdnow_log()
    as_of = pd.Timestamp(CDNOW_AS_OF) + pd.Timedelta(days=1)
    holdout_end = pd.Timestamp(CDNOW_HOLDOUT_END) + pd.Timedelta(days=1)
    in_holdout = (log["date"] >= as_of) & (log["date"] < holdout_end)
    buyers = set(log.loc[in_holdout, "customer_id"])

    accounts = log.groupby("customer_id", sort=True)["date"].min().reset_index()
    accounts.columns = ["account_id", "created_at"]
    accounts["created_at"] = accounts["created_at"].dt.strftime("%Y-%m-%d")
    accounts["segment"] = "CDNOW"
    accounts["churned"] = ~accounts["account_id"].isin(buyers)
    accounts.to_csv(path, index=False)
    return path


def _cdnow_sample_ids() -> set[str]:
    sample = pd.read_csv(
        CDNOW_SAMPLE_FILE,
        sep=r"\s+",
        header=None,
        names=["master_id", "sample_id", "date", "cds", "dollars"],
        dtype={"master_id": str},
    )
    return set(sample["master_id"])
