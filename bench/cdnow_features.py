"""Measure how well purchase-log features rank the CDNOW customers who buy again.

Usage::

    .venv/bin/python bench/cdnow_features.py [--data PATH]

Every customer of ``CDNOW_master.txt`` is described by purchases up to 1997-09-30,
and the outcome is whether the customer buys at least once from 1997-10-01 to
1998-06-30. The ROC AUC is that of "buys again", so 0.5 is a random ranking.

Set A is days since the last and since the first purchase, purchase days and
dollars, as in ``docs/prediction.md``. The winner adds seven features to set A:
CDs, the dollars and CDs of the first purchase day, the max gap between purchase
days, purchase days in the last 90 days, the number of log lines and BG/NBD's
expected purchases. It is a logistic regression with log terms, and it had the
highest mean AUC in 5-fold cross-validation on the development half (three fold
seeds) among the feature sets and models that were tried.

The protocol keeps one half of the customers unseen until the end. A seeded
stratified 50/50 split (scikit-learn ``train_test_split``, seed 0) makes a
development half and a test half. Each ranking is fitted on the development half
and scores the test half once. BG/NBD learns no outcome, and its parameters come
from the development customers' purchases. The winner's 5-fold cross-validation on
all customers gives the figure to compare with ``docs/prediction.md``. The AUC
within one-day buyers and within repeat buyers shows where the ranking is weak.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))

import peers_methods as methods  # noqa: E402

logger = logging.getLogger("bench.cdnow_features")

CDNOW_FILE = methods.DATA_DIR / "cdnow" / "CDNOW_master.txt"
SEED = 0
FOLDS = 5

SET_A = ("days_since_last", "tenure_days", "purchase_days", "dollars_total")
EXTRA = (
    "cds_total",
    "first_day_dollars",
    "first_day_cds",
    "max_gap_days",
    "purchase_days_90d",
    "lines",
    "bgnbd_expected",
)
WINNER = SET_A + EXTRA
WINNER_NAME = "set A + 7 features, logistic + log terms"

# A feature with at most this many distinct values in the training rows gets no log
# term, so counts with few values (purchase days in the last 90 days) stay linear.
LINEAR_ONLY_MAX_DISTINCT = 10


@dataclass(frozen=True)
class Result:
    """ROC AUC of one ranking on one group of customers."""

    ranking: str
    scored_on: str
    customers: int
    buyers: int
    roc_auc: float


def main() -> int:
    """Parse the command line, run every measurement and print the table."""
    options = _parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    if not options.data.is_file():
        logger.error(
            "CDNOW file %s not found. Pass --data with the path of CDNOW_master.txt.",
            options.data,
        )
        return 2
    logger.info("reading %s", options.data)
    data = methods.read_cdnow(options.data)
    bought = ~data.churned
    features = build_features(data.log)
    development, test = split_customers(bought)

    scores = score_test_half(data.log, features, bought, development, test)
    outcome = bought[test].to_numpy()
    results = [
        _measure_auc(name, "test half", outcome, score)
        for name, score in scores.items()
    ]
    results.append(cross_validate_winner(data.log, features, bought))
    purchase_days = features.loc[test, "purchase_days"]
    results += score_groups(purchase_days, outcome, scores[WINNER_NAME])
    print(format_table(results))
    return 0


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=CDNOW_FILE,
        help="CDNOW_master.txt to read (default: the copy bundled with the demo)",
    )
    return parser.parse_args()


def build_features(log: pd.DataFrame) -> pd.DataFrame:
    """Compute each customer's purchase features as of 1997-09-30.

    Parameters
    ----------
    log
        CDNOW log with ``customer_id``, ``date``, ``cds`` and ``dollars``, one row
        per log line, as :func:`peers_methods.read_cdnow` returns it.

    Returns
    -------
    pandas.DataFrame
        One row per customer with a purchase by then, indexed by customer id. The
        columns are those of :func:`peers_methods.cdnow_features` plus
        ``first_day_dollars``, ``first_day_cds``, ``max_gap_days`` (NaN for a
        customer with one purchase day) and ``lines``. ``bgnbd_expected`` is added
        later, because it is fitted on the training customers.
    """
    features = methods.cdnow_features(log, methods.CDNOW_AS_OF)
    known = log[log["date"] <= pd.Timestamp(methods.CDNOW_AS_OF)]
    days = known.groupby(["customer_id", "date"], sort=True)[["cds", "dollars"]].sum()
    days = days.reset_index()

    by_customer = days.groupby("customer_id", sort=True)
    first_day = by_customer.first()
    features["first_day_dollars"] = first_day["dollars"]
    features["first_day_cds"] = first_day["cds"].astype(np.float64)

    gaps = by_customer["date"].diff().dt.days
    features["max_gap_days"] = gaps.groupby(days["customer_id"]).max()
    features["lines"] = known.groupby("customer_id").size().astype(np.float64)
    return features


def split_customers(bought: pd.Series, seed: int = SEED) -> tuple[pd.Index, pd.Index]:
    """Split the customers 50/50, stratified on the outcome.

    Parameters
    ----------
    bought
        Outcome per customer (true for a purchase in the hold-out period), indexed
        by customer id.
    seed
        ``random_state`` of scikit-learn's ``train_test_split``.

    Returns
    -------
    tuple of pandas.Index
        The development and the test customer ids, each sorted.
    """
    development, test = train_test_split(
        bought.index.to_numpy(),
        test_size=0.5,
        stratify=bought.to_numpy(),
        random_state=seed,
    )
    return pd.Index(np.sort(development)), pd.Index(np.sort(test))


def predict_bgnbd_purchases(
    log: pd.DataFrame, fit_on: pd.Index, customers: pd.Index
) -> pd.Series:
    """Fit BG/NBD on ``fit_on`` and predict the hold-out purchases of ``customers``.

    :func:`peers_methods.fit_bgnbd` fits lifetimes' ``BetaGeoFitter``, without a
    penalty, on purchase days up to 1997-09-30 counted in weeks.

    Parameters
    ----------
    log
        The CDNOW log.
    fit_on
        Customers whose purchases fit the model's four parameters. Each must also
        be in ``customers``.
    customers
        Customers to predict for.

    Returns
    -------
    pandas.Series
        Expected purchase days from 1997-10-01 to 1998-06-30, indexed by
        ``customers``.
    """
    risks = methods.fit_bgnbd(log, customers, fit_on=fit_on)
    expected = -risks["expected purchases"]
    return pd.Series(np.asarray(expected, dtype=np.float64), index=customers)


class LogTerms(TransformerMixin, BaseEstimator):
    """Append ``log1p(x - min)`` for each column with many distinct values.

    The minimum and the choice of columns come from the training rows. A value
    below the training minimum gets the log term of the minimum, 0.
    """

    def fit(self, X: pd.DataFrame, y: object = None) -> LogTerms:
        distinct = X.nunique()
        self.columns_ = list(distinct.index[distinct > LINEAR_ONLY_MAX_DISTINCT])
        self.minimum_ = X[self.columns_].min()
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        shifted = (X[self.columns_] - self.minimum_).clip(lower=0.0)
        return pd.concat([X, np.log1p(shifted).add_prefix("log_")], axis=1)


def build_logistic_model(log_terms: bool) -> Pipeline:
    """Build the logistic regression that every fitted ranking uses.

    With ``log_terms``, :class:`LogTerms` first appends the log terms. Missing
    values (``max_gap_days`` of one-day buyers) take the training median plus a
    missing-value indicator column. Then the columns are standardised and a
    logistic regression with scikit-learn's default L2 penalty (C = 1) is fitted.
    """
    steps = [
        SimpleImputer(strategy="median", add_indicator=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000),
    ]
    if log_terms:
        steps.insert(0, LogTerms())
    return make_pipeline(*steps)


def fit_and_score(
    features: pd.DataFrame,
    bought: pd.Series,
    columns: tuple[str, ...],
    log_terms: bool,
    train: pd.Index,
    score: pd.Index,
) -> np.ndarray:
    """Fit the logistic model on ``train`` and return P(buys again) for ``score``."""
    model = build_logistic_model(log_terms)
    model.fit(features.loc[train, list(columns)], bought[train].to_numpy())
    return model.predict_proba(features.loc[score, list(columns)])[:, 1]


def score_test_half(
    log: pd.DataFrame,
    features: pd.DataFrame,
    bought: pd.Series,
    development: pd.Index,
    test: pd.Index,
) -> dict[str, np.ndarray]:
    """Fit each ranking on the development half and score the test half once.

    Returns
    -------
    dict of str to numpy.ndarray
        P(buys again) per test customer for each fitted ranking, and BG/NBD's
        expected purchases, in the order of ``test``.
    """
    logger.info("fitting on %d development customers", len(development))
    expected = predict_bgnbd_purchases(log, development, bought.index)
    features = features.assign(bgnbd_expected=expected)

    rankings = {
        "set A, logistic": (SET_A, False),
        "set A, logistic + log terms": (SET_A, True),
        WINNER_NAME: (WINNER, True),
    }
    scores = {
        name: fit_and_score(features, bought, columns, log_terms, development, test)
        for name, (columns, log_terms) in rankings.items()
    }
    scores["BG/NBD expected purchases"] = expected[test].to_numpy()
    return scores


def score_groups(
    purchase_days: pd.Series, outcome: np.ndarray, score: np.ndarray
) -> list[Result]:
    """Compute the ROC AUC within one-day buyers and within repeat buyers.

    Parameters
    ----------
    purchase_days
        Purchase days up to 1997-09-30 of the scored customers.
    outcome
        Whether each of them bought again, in the same order.
    score
        The winner's P(buys again), in the same order.
    """
    one_day = purchase_days.to_numpy() == 1
    results = []
    for group, inside in (("one-day buyers", one_day), ("repeat buyers", ~one_day)):
        scored_on = f"test half, {group} only"
        results.append(
            _measure_auc(WINNER_NAME, scored_on, outcome[inside], score[inside])
        )
    return results


def cross_validate_winner(
    log: pd.DataFrame, features: pd.DataFrame, bought: pd.Series
) -> Result:
    """Score every customer with the winner fitted on the other four folds.

    The folds are scikit-learn's ``StratifiedKFold`` (shuffled, seed 0). BG/NBD is
    refitted on each fold's training customers.
    """
    outcome = bought.to_numpy()
    held_out = np.empty(len(bought))
    splitter = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    folds = splitter.split(features, outcome)
    for number, (train_positions, score_positions) in enumerate(folds, start=1):
        logger.info("cross-validation fold %d of %d", number, FOLDS)
        train_ids = bought.index[train_positions]
        score_ids = bought.index[score_positions]
        expected = predict_bgnbd_purchases(log, train_ids, bought.index)
        fold = features.assign(bgnbd_expected=expected)
        held_out[score_positions] = fit_and_score(
            fold, bought, WINNER, True, train_ids, score_ids
        )
    scored_on = f"all, {FOLDS}-fold cross-validation"
    return _measure_auc(WINNER_NAME, scored_on, outcome, held_out)


def _measure_auc(
    ranking: str, scored_on: str, outcome: np.ndarray, score: np.ndarray
) -> Result:
    """Compute the ROC AUC of ``score`` against ``outcome``."""
    outcome = np.asarray(outcome, dtype=bool)
    return Result(
        ranking=ranking,
        scored_on=scored_on,
        customers=len(outcome),
        buyers=int(outcome.sum()),
        roc_auc=float(roc_auc_score(outcome, np.asarray(score))),
    )


def format_table(results: list[Result]) -> str:
    """Format the results as a Markdown table, ready to paste into the docs."""
    lines = [
        "| ranking | scored on | customers | buyers | ROC AUC |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for result in results:
        lines.append(
            f"| {result.ranking} | {result.scored_on} | {result.customers:,} "
            f"| {result.buyers:,} | {result.roc_auc:.4f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
