"""Run healthscore and the open-source churn tools side by side on the same splits.

Usage::

    .venv/bin/python bench/peers.py [--json OUT] [--resamples N] [--work-dir DIR]

The table has one row per method and dataset. Its columns are:

- the ROC AUC with a bootstrap 95% interval;
- the difference from the hand-set profile's ROC AUC on the same resamples;
- the PR AUC (average precision, churn as the positive class);
- the seconds taken to fit and score.

Every method scores the same accounts against the same outcome:

- Telco: seeded stratified 5-fold cross-validation. Each account is scored by the
  model fitted on the other four folds, and the AUC is over all 7,043 accounts.
- CDNOW (23,570 customers) and its 2,357-customer sample: the models see purchases
  up to 1997-09-30 only, and the outcome is no purchase from 1997-10-01 to
  1998-06-30. See ``peers_methods.py`` for how the supervised models learn there.

The peers are scikit-learn's logistic regression, fightchurn (the listings of the
book "Fighting Churn with Data"), css-mini (a peer-normalised scorecard) and, on
CDNOW, lifetimes' BG/NBD model. Install them with ``pip install -e '.[peers]'`` and
fightchurn apart, because it pins old releases of its dependencies:
``pip install --no-deps fightchurn==1.2.0``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

sys.path.insert(0, str(Path(__file__).parent))

import peers_methods as methods  # noqa: E402

logger = logging.getLogger("bench.peers")

DATA_DIR = methods.DATA_DIR
TELCO_FILE = DATA_DIR / "telco" / "Telco-Customer-Churn.csv"
CDNOW_FILE = DATA_DIR / "cdnow" / "CDNOW_master.txt"
CDNOW_SAMPLE_FILE = DATA_DIR / "cdnow" / "CDNOW_sample.txt"
RESAMPLES = 1000
REFERENCE_METHOD = "healthscore hand-set profile"
PACKAGES = (
    "healthscore",
    "scikit-learn",
    "fightchurn",
    "css-mini",
    "lifetimes",
    "pandas",
    "numpy",
    "duckdb",
)


@dataclass(frozen=True)
class Row:
    """One method on one dataset: how well its risk ranks the churned accounts."""

    dataset: str
    method: str
    accounts: int
    churned: int
    roc_auc: float | None
    roc_auc_low: float | None
    roc_auc_high: float | None
    pr_auc: float | None
    seconds: float | None
    vs_profile: float | None = None
    vs_profile_low: float | None = None
    vs_profile_high: float | None = None
    error: str | None = None


Outcome = tuple[np.ndarray, float] | str
"""One risk per account of the dataset and the seconds taken, or the error text."""


def main() -> int:
    """Parse the command line, run every method on every dataset, print the table."""
    options = _parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # css logs each metric's fit at INFO with its R^2, and warns about weights.
    logging.getLogger("css").setLevel(logging.ERROR)
    try:
        methods.require_fightchurn()
    except ImportError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2

    work = Path(options.work_dir or tempfile.mkdtemp(prefix="healthscore-peers-"))
    rows = run_all(work, options.resamples)
    print(format_table(rows))
    if options.json:
        report = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine_info(),
            "resamples": options.resamples,
            "seed": methods.SEED,
            "rows": [asdict(row) for row in rows],
        }
        Path(options.json).write_text(json.dumps(report, indent=2) + "\n")
    return 1 if any(row.error for row in rows) else 0


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="also write the rows and machine as JSON here")
    parser.add_argument(
        "--resamples",
        type=int,
        default=RESAMPLES,
        help="bootstrap resamples for the ROC AUC interval (default %(default)s)",
    )
    parser.add_argument(
        "--work-dir",
        help="folder for the stores and fightchurn's files (default: a new temp dir)",
    )
    return parser.parse_args()


def run_all(work: Path, resamples: int) -> list[Row]:
    """Run every dataset and return its rows in table order."""
    rows = []

    logger.info("running the methods on Telco")
    telco = methods.read_telco(TELCO_FILE)
    outcomes = run_telco(telco, work / "telco")
    rows += evaluate_all("Telco", outcomes, telco.churned.to_numpy(), resamples)

    sample_ids = methods.read_cdnow_sample_ids(CDNOW_SAMPLE_FILE)
    for name, customers in (("CDNOW", None), ("CDNOW sample", sample_ids)):
        logger.info("running the methods on %s", name)
        cdnow = methods.read_cdnow(CDNOW_FILE, customers)
        outcomes = run_cdnow(cdnow, work / name.replace(" ", "-"))
        churned = cdnow.churned.to_numpy()
        rows += evaluate_all(name, outcomes, churned, resamples)
    return rows


def evaluate_all(
    dataset: str,
    outcomes: dict[str, Outcome],
    churned: np.ndarray,
    resamples: int,
) -> list[Row]:
    """Evaluate each method's outcome on one dataset, in the order given.

    Each row also gets its AUC minus the hand-set profile's, with a 95% interval
    from the same resamples, which pairs the two methods account by account.
    """
    evaluated = {
        method: evaluate(dataset, method, outcome, churned, resamples)
        for method, outcome in outcomes.items()
    }
    reference = evaluated.get(REFERENCE_METHOD, (None, None))
    return [
        _compare(row, aucs, *reference) if method != REFERENCE_METHOD else row
        for method, (row, aucs) in evaluated.items()
    ]


def _compare(
    row: Row,
    aucs: np.ndarray | None,
    reference: Row | None,
    reference_aucs: np.ndarray | None,
) -> Row:
    """Return ``row`` with its AUC difference from the reference method."""
    if aucs is None or reference_aucs is None:
        return row
    low, high = np.nanpercentile(aucs - reference_aucs, [2.5, 97.5])
    return replace(
        row,
        vs_profile=row.roc_auc - reference.roc_auc,
        vs_profile_low=float(low),
        vs_profile_high=float(high),
    )


def run_telco(data: methods.TelcoData, folder: Path) -> dict[str, Outcome]:
    """Score every Telco account with every method, in the order of ``data.features``.

    Each fitted method is fitted once per fold and scores that fold's accounts.
    """
    tasks = methods.telco_tasks(data)
    positions = data.features.index
    results: dict[str, Outcome] = {}
    results[REFERENCE_METHOD] = _timed(
        REFERENCE_METHOD,
        lambda: methods.score_telco_profile(data, folder / "healthscore"),
    )
    store = folder / "healthscore" / "telco.duckdb"
    learned = _grouped(LEARNED_NAMES, lambda: methods.fit_telco_learned(data, store))
    results.update(learned)
    fitted = {
        "scikit-learn logistic regression": methods.fit_sklearn_logistic,
        "fightchurn groups + L1 logistic": lambda task: methods.fit_fightchurn(
            task, folder / "fightchurn" / task.name.replace(" ", "-")
        ),
        "css-mini peer scorecard": methods.fit_css_scorecard,
    }
    for name, fit in fitted.items():
        results[name] = _timed(
            name, lambda fit=fit: _out_of_fold(fit, tasks, positions)
        )
    return results


def _out_of_fold(
    fit: Callable[[methods.Task], np.ndarray],
    tasks: list[methods.Task],
    accounts: pd.Index,
) -> np.ndarray:
    """Return each account's risk from the model of the fold that held it out."""
    risk = np.full(len(accounts), np.nan)
    for task in tasks:
        rows = accounts.get_indexer(task.test.index)
        risk[rows] = fit(task)
    return risk


def run_cdnow(data: methods.CdnowData, folder: Path) -> dict[str, Outcome]:
    """Score every CDNOW customer with every method, in the order of ``churned``."""
    task = methods.cdnow_task(data)
    results: dict[str, Outcome] = {}
    results[REFERENCE_METHOD] = _timed(
        REFERENCE_METHOD,
        lambda: methods.score_cdnow_profile(data, folder / "healthscore"),
    )
    learned_folder = folder / "healthscore-learned"
    learned = _grouped(
        LEARNED_NAMES, lambda: methods.fit_cdnow_learned(data, learned_folder)
    )
    results.update(learned)
    fitted = {
        "scikit-learn logistic regression": methods.fit_sklearn_logistic,
        "fightchurn groups + L1 logistic": lambda task: methods.fit_fightchurn(
            task, folder / "fightchurn"
        ),
        "css-mini peer scorecard": methods.fit_css_scorecard,
    }
    for name, fit in fitted.items():
        results[name] = _timed(name, lambda fit=fit: fit(task))

    results.update(_grouped(BGNBD_NAMES, lambda: _fit_bgnbd(data)))
    return results


def _fit_bgnbd(data: methods.CdnowData) -> dict[str, tuple[np.ndarray, float]]:
    """Fit BG/NBD once; both of its risks get the seconds of that one fit."""
    started = time.perf_counter()
    risks = methods.fit_bgnbd(data.log, data.churned.index)
    seconds = time.perf_counter() - started
    return {score: (risk, seconds) for score, risk in risks.items()}


LEARNED_NAMES = {
    "logistic": "healthscore learned logistic",
    "boosted": "healthscore learned boosted trees",
    "profile": "healthscore learned profile",
}


BGNBD_NAMES = {
    "expected purchases": "lifetimes BG/NBD, expected purchases",
    "P(alive)": "lifetimes BG/NBD, P(alive)",
}


def _grouped(
    names: dict[str, str],
    run: Callable[[], dict[str, tuple[np.ndarray, float]]],
) -> dict[str, Outcome]:
    """Run methods fitted together, or give each of their rows the error.

    ``names`` maps each key that ``run`` returns to the method's name in the table.
    """
    try:
        outcomes = run()
    except Exception as exc:
        logger.exception("methods %s failed", list(names.values()))
        error = f"{type(exc).__name__}: {exc}"
        return dict.fromkeys(names.values(), error)
    return {names[key]: outcome for key, outcome in outcomes.items()}


def _timed(method: str, run: Callable[[], np.ndarray]) -> Outcome:
    """Run one method and return its risks and seconds, or the error text.

    A failed method becomes a row that shows its error, so the other rows still
    print, and the script exits with status 1.
    """
    started = time.perf_counter()
    try:
        risk = run()
    except Exception as exc:
        logger.exception("method %r failed", method)
        return f"{type(exc).__name__}: {exc}"
    return risk, time.perf_counter() - started


def evaluate(
    dataset: str,
    method: str,
    outcome: Outcome,
    churned: np.ndarray,
    resamples: int,
) -> tuple[Row, np.ndarray | None]:
    """Compute the row of one method: AUCs of its risk against the outcome.

    Returns the row and the bootstrap AUCs, or None for them when the method failed.
    """
    churned = np.asarray(churned, dtype=bool)
    base = {
        "dataset": dataset,
        "method": method,
        "accounts": len(churned),
        "churned": int(churned.sum()),
    }
    if isinstance(outcome, str):
        return _failed_row(base, outcome, None), None

    risk, seconds = outcome
    unscored = int(np.isnan(risk).sum())
    if unscored:
        error = f"{unscored} accounts have no risk, but every method must score all"
        return _failed_row(base, error, seconds), None

    aucs = roc_auc_bootstrap(risk, churned, resamples)
    low, high = np.nanpercentile(aucs, [2.5, 97.5])
    row = Row(
        **base,
        roc_auc=roc_auc(risk, churned),
        roc_auc_low=float(low),
        roc_auc_high=float(high),
        pr_auc=float(average_precision_score(churned, risk)),
        seconds=seconds,
    )
    return row, aucs


def _failed_row(base: dict, error: str, seconds: float | None) -> Row:
    return Row(
        **base,
        roc_auc=None,
        roc_auc_low=None,
        roc_auc_high=None,
        pr_auc=None,
        seconds=seconds,
        error=error,
    )


def roc_auc(risk: np.ndarray, churned: np.ndarray) -> float:
    """Compute the ROC AUC of ``risk`` against ``churned``, ties counting one half."""
    weights = np.ones(len(risk))
    return _weighted_auc(*_tie_groups(risk, churned), weights)


def roc_auc_bootstrap(
    risk: np.ndarray, churned: np.ndarray, resamples: int
) -> np.ndarray:
    """Return the ROC AUC on each of ``resamples`` bootstrap resamples of the accounts.

    Each resample draws the accounts with replacement. Drawing an account k times
    weights it by k, so the ranks are computed once and each resample costs O(n).
    The generator starts from the same seed on every call, so resample i draws the
    same accounts for every method of a dataset. A resample without churned or
    without retained accounts gives NaN.
    """
    rng = np.random.default_rng(methods.SEED)
    groups, churned_sorted = _tie_groups(risk, churned)
    aucs = np.empty(resamples)
    for index in range(resamples):
        draws = rng.integers(0, len(risk), len(risk))
        weights = np.bincount(draws, minlength=len(risk)).astype(np.float64)
        aucs[index] = _weighted_auc(groups, churned_sorted, weights)
    return aucs


def _tie_groups(risk: np.ndarray, churned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each account's tie group (ascending risk) and its outcome as bool."""
    _, groups = np.unique(np.asarray(risk, dtype=np.float64), return_inverse=True)
    return groups, np.asarray(churned, dtype=bool)


def _weighted_auc(
    groups: np.ndarray, churned: np.ndarray, weights: np.ndarray
) -> float:
    """Compute the Mann-Whitney AUC with a weight per account.

    Each tie group adds the weight of its churned accounts times the weight of
    retained accounts with a lower risk plus half the retained weight in the group.
    """
    size = groups.max() + 1
    positive = np.bincount(groups, weights * churned, minlength=size)
    negative = np.bincount(groups, weights * ~churned, minlength=size)
    below = np.cumsum(negative) - negative
    pairs = positive.sum() * negative.sum()
    if pairs == 0:
        return float("nan")
    return float((positive * (below + 0.5 * negative)).sum() / pairs)


def format_table(rows: list[Row]) -> str:
    """Return the rows as a Markdown table, ready to paste into the docs."""
    lines = [
        "| dataset | method | ROC AUC | 95% interval | minus hand-set (95%) "
        "| PR AUC | seconds |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if row.roc_auc is None:
            lines.append(f"| {row.dataset} | {row.method} | failed: {row.error} |")
            continue
        lines.append(
            f"| {row.dataset} | {row.method} | {row.roc_auc:.3f} "
            f"| {row.roc_auc_low:.3f}-{row.roc_auc_high:.3f} | {_difference(row)} "
            f"| {row.pr_auc:.3f} | {row.seconds:.2f} |"
        )
    return "\n".join(lines)


def _difference(row: Row) -> str:
    if row.vs_profile is None:
        return ""
    return (
        f"{row.vs_profile:+.3f} ({row.vs_profile_low:+.3f} to "
        f"{row.vs_profile_high:+.3f})"
    )


def machine_info() -> dict[str, object]:
    """Return the CPU, core count, Python and package versions of this run."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "packages": versions,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
