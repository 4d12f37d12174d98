"""The data and splits that every method of ``peers.py`` shares.

A :class:`Task` is one fit-and-predict problem: feature rows of training accounts with
their outcome, and feature rows of test accounts without it. Telco gives one task per
fold of a seeded stratified 5-fold cross-validation. CDNOW gives one task. The model
learns from features as of :data:`CDNOW_TRAIN_AS_OF` and purchases in the quarter
after it. It then ranks the customers by their features as of the calibration end
(1997-09-30) for the 39-week hold-out, so no method reads a hold-out purchase.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from healthscore.demo.run import CDNOW_AS_OF, CDNOW_HOLDOUT_END, DATA_DIR
from healthscore.history import score_snapshot
from healthscore.ingest import IngestResult, ingest_file, load_mapping
from healthscore.metrics import compute_metrics
from healthscore.predict import (
    ChurnModel,
    TrainingSet,
    build_training_set,
    features_as_of,
    fit_boosted,
    fit_logistic,
    learned_profile,
    profile_risk,
)
from healthscore.scoring import (
    HealthProfile,
    load_profile,
    parse_profile,
    score_accounts,
)
from healthscore.store import Store

__all__ = [
    "CDNOW_TRAIN_AS_OF",
    "SEED",
    "TELCO_CATEGORICAL",
    "TELCO_NUMERIC",
    "CdnowData",
    "Task",
    "TelcoData",
    "cdnow_features",
    "cdnow_task",
    "read_cdnow",
    "read_telco",
    "telco_tasks",
]

logger = logging.getLogger(__name__)

DEMO_DIR = DATA_DIR.parent

SEED = 20261204
TELCO_FOLDS = 5

# The supervised methods learn on CDNOW from the same calibration period: features as
# of this date, and whether the customer bought between it and the calibration end.
CDNOW_TRAIN_AS_OF = dt.date(1997, 6, 30)

TELCO_NUMERIC = ("tenure", "MonthlyCharges", "TotalCharges", "SeniorCitizen")
TELCO_CATEGORICAL = (
    "gender",
    "Partner",
    "Dependents",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
)
TELCO_ADD_ONS = ("OnlineSecurity", "OnlineBackup", "DeviceProtection", "TechSupport")
CONTRACT_MONTHS = {"Month-to-month": 0, "One year": 12, "Two year": 24}

CDNOW_NUMERIC = (
    "tenure_days",
    "days_since_last",
    "purchase_days",
    "purchase_days_90d",
    "purchase_days_prior_90d",
    "dollars_total",
    "dollars_per_purchase_day",
    "cds_total",
)


@dataclass(frozen=True)
class Task:
    """One fit-and-predict problem shared by every feature-based method.

    Attributes
    ----------
    name
        Dataset and split, for logs.
    train
        Feature rows of the training accounts, indexed by account id.
    train_churned
        Outcome of each training row.
    test
        Feature rows of the test accounts, indexed by account id, same columns.
    numeric
        Numeric feature columns.
    categorical
        Text feature columns, one-hot encoded by the methods that need numbers.
    peer_dims
        Columns that define an account's peers for a peer-normalised scorecard.
    scorecard
        Numeric columns that a scorecard scores against peers.
    """

    name: str
    train: pd.DataFrame
    train_churned: np.ndarray
    test: pd.DataFrame
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    peer_dims: tuple[str, ...]
    scorecard: tuple[str, ...]


@dataclass(frozen=True)
class TelcoData:
    """The Telco table: features indexed by ``customerID`` and the churn outcome."""

    path: Path
    features: pd.DataFrame
    churned: pd.Series


@dataclass(frozen=True)
class CdnowData:
    """The CDNOW log: whole log, customers and their hold-out outcome.

    ``churned`` is true for a customer who bought nothing from the day after
    1997-09-30 up to 1998-06-30, the definition of ``healthscore.demo``.
    """

    path: Path
    log: pd.DataFrame
    churned: pd.Series


def read_telco(path: Path) -> TelcoData:
    """Read the IBM Telco CSV into features and the ``Churn`` outcome.

    ``TotalCharges`` is blank for customers in their first month, and the blank is
    read as 0, the amount billed so far.
    """
    frame = pd.read_csv(path, dtype={"customerID": str})
    frame = frame.set_index("customerID")
    frame["TotalCharges"] = pd.to_numeric(frame["TotalCharges"], errors="coerce")
    frame["TotalCharges"] = frame["TotalCharges"].fillna(0.0)
    churned = frame["Churn"].eq("Yes")
    features = frame[list(TELCO_NUMERIC + TELCO_CATEGORICAL)].copy()
    features = _add_telco_scorecard_columns(features)
    return TelcoData(path=path, features=features, churned=churned)


def _add_telco_scorecard_columns(features: pd.DataFrame) -> pd.DataFrame:
    """Add numeric versions of text columns for methods that take only numbers."""
    features["add_ons"] = (features[list(TELCO_ADD_ONS)] == "Yes").sum(axis=1)
    features["contract_months"] = features["Contract"].map(CONTRACT_MONTHS)
    automatic = features["PaymentMethod"].str.contains("automatic", regex=False)
    features["automatic_payment"] = automatic.astype(np.int64)
    return features


def telco_tasks(data: TelcoData, folds: int = TELCO_FOLDS) -> list[Task]:
    """Split Telco into seeded stratified folds, one task per held-out fold."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    churned = data.churned.to_numpy()
    tasks = []
    for number, (train, test) in enumerate(splitter.split(data.features, churned)):
        tasks.append(
            Task(
                name=f"Telco fold {number + 1}",
                train=data.features.iloc[train],
                train_churned=churned[train],
                test=data.features.iloc[test],
                numeric=TELCO_NUMERIC,
                categorical=TELCO_CATEGORICAL,
                peer_dims=("tenure",),
                scorecard=(
                    "MonthlyCharges",
                    "add_ons",
                    "contract_months",
                    "automatic_payment",
                ),
            )
        )
    return tasks


def read_cdnow(path: Path, customers: set[str] | None = None) -> CdnowData:
    """Read the CDNOW master log and label each customer with the hold-out outcome.

    ``customers`` keeps only those customer ids, such as the 2,357-customer sample.
    """
    log = pd.read_csv(
        path,
        sep=r"\s+",
        header=0,
        names=["customer_id", "date", "cds", "dollars"],
        dtype={"customer_id": str, "date": str},
    )
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    if customers is not None:
        log = log[log["customer_id"].isin(customers)].reset_index(drop=True)
    ids = np.sort(log["customer_id"].unique())
    buyers = _buyers_between(log, CDNOW_AS_OF, CDNOW_HOLDOUT_END)
    churned = pd.Series(~np.isin(ids, buyers), index=ids, name="churned")
    return CdnowData(path=path, log=log, churned=churned)


def read_cdnow_sample_ids(path: Path) -> set[str]:
    """Read the master ids of the 2,357 customers in ``CDNOW_sample.txt``."""
    sample = pd.read_csv(
        path,
        sep=r"\s+",
        header=None,
        names=["master_id", "sample_id", "date", "cds", "dollars"],
        dtype={"master_id": str},
    )
    return set(sample["master_id"])


def _buyers_between(log: pd.DataFrame, after: dt.date, until: dt.date) -> np.ndarray:
    """Return customers with a purchase on a day after ``after`` up to ``until``."""
    start = pd.Timestamp(after) + pd.Timedelta(days=1)
    end = pd.Timestamp(until) + pd.Timedelta(days=1)
    inside = (log["date"] >= start) & (log["date"] < end)
    return log.loc[inside, "customer_id"].unique()


def cdnow_features(log: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Compute purchase features per customer from purchases up to the end of ``as_of``.

    A purchase day is a day with at least one purchase, as in lifetimes' summary
    data. Customers without a purchase by then have no row.
    """
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    known = log[log["date"] < end]
    days = known.groupby(["customer_id", "date"], sort=True)[["cds", "dollars"]].sum()
    days = days.reset_index()
    age = (end - days["date"]).dt.days

    grouped = days.groupby("customer_id", sort=True)
    features = pd.DataFrame(
        {
            "tenure_days": (end - grouped["date"].min()).dt.days,
            "days_since_last": (end - grouped["date"].max()).dt.days,
            "purchase_days": grouped.size(),
            "purchase_days_90d": (age <= 90).groupby(days["customer_id"]).sum(),
            "purchase_days_prior_90d": ((age > 90) & (age <= 180))
            .groupby(days["customer_id"])
            .sum(),
            "dollars_total": grouped["dollars"].sum(),
            "cds_total": grouped["cds"].sum(),
        }
    )
    features["dollars_per_purchase_day"] = (
        features["dollars_total"] / features["purchase_days"]
    )
    return features[list(CDNOW_NUMERIC)].astype(np.float64)


def cdnow_task(data: CdnowData) -> Task:
    """Build the CDNOW task: learn on the calibration period, rank for the hold-out."""
    train = cdnow_features(data.log, CDNOW_TRAIN_AS_OF)
    bought = _buyers_between(data.log, CDNOW_TRAIN_AS_OF, CDNOW_AS_OF)
    test = cdnow_features(data.log, CDNOW_AS_OF).reindex(data.churned.index)
    return Task(
        name="CDNOW",
        train=train,
        train_churned=~train.index.isin(bought),
        test=test,
        numeric=CDNOW_NUMERIC,
        categorical=(),
        peer_dims=("tenure_days",),
        scorecard=(
            "days_since_last",
            "purchase_days",
            "purchase_days_90d",
            "dollars_per_purchase_day",
        ),
    )


# Methods. Each feature-based method takes a Task and returns one churn risk per test
# row, in the order of ``task.test``, higher meaning more likely to churn.


def fit_sklearn_logistic(task: Task) -> np.ndarray:
    """Fit scikit-learn's logistic regression on standardised and one-hot features."""
    columns = list(task.numeric + task.categorical)
    categorical = list(task.categorical)
    encode = ColumnTransformer(
        [
            ("numeric", StandardScaler(), list(task.numeric)),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    model = make_pipeline(encode, LogisticRegression(max_iter=1000))
    model.fit(task.train[columns], task.train_churned)
    return model.predict_proba(task.test[columns])[:, 1]


FIGHTCHURN_INSTALL = "pip install --no-deps fightchurn==1.2.0"


def require_fightchurn() -> None:
    """Raise ImportError with the install command when fightchurn is missing.

    fightchurn pins old releases of pandas, scipy and scikit-learn, so it is
    installed without its dependencies, beside the current ones.
    """
    try:
        import fightchurn.listings  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "The fightchurn package is not installed, and bench/peers.py runs it as "
            f"a peer. Install it apart from its old pins with: {FIGHTCHURN_INSTALL}"
        ) from exc


def fit_fightchurn(task: Task, folder: Path) -> np.ndarray:
    """Run the book's pipeline from fightchurn's listings on the task's features.

    The listings pass data between steps as CSV files next to the dataset file, in
    ``folder``. The steps are summary statistics, fat-tail scores and metric groups
    by correlation (listings 5.2, 7.5, 6.4 and 6.3), and dummy variables for text
    columns (10.4, 10.5). Then come the L1 logistic regression (8.2), the re-scoring
    of the test accounts with the training parameters (8.4 or 10.7) and the churn
    forecast (8.5).
    """
    require_fightchurn()
    from fightchurn.listings.chap8.listing_8_1_prepare_data import prepare_data
    from fightchurn.listings.chap8.listing_8_2_logistic_regression import (
        logistic_regression,
    )
    from fightchurn.listings.chap8.listing_8_4_rescore_metrics import rescore_metrics
    from fightchurn.listings.chap8.listing_8_5_churn_forecast import churn_forecast
    from fightchurn.listings.chap10.listing_10_4_dummy_variables import (
        dummy_variables,
    )
    from fightchurn.listings.chap10.listing_10_5_merge_groups_dummies import (
        merge_groups_dummies,
    )
    from fightchurn.listings.chap10.listing_10_7_rescore_wcats import rescore_wcats

    folder.mkdir(parents=True, exist_ok=True)
    dataset = str(folder / "dataset.csv")
    columns = list(task.numeric + task.categorical)
    _write_book_dataset(task.train[columns], task.train_churned, dataset)
    _write_book_dataset(
        task.test[columns], None, dataset.replace(".csv", "_current.csv")
    )

    # The listings print each file they save. Listing 8.2 passes penalty="l1", which
    # scikit-learn 1.8 deprecates and warns about twice, but still fits with L1.
    # Listings 6.4 and 10.5 call DataFrame.drop(inplace=True), which pandas 3.1
    # deprecates.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'penalty' was deprecated")
        warnings.filterwarnings("ignore", "Inconsistent values: penalty=l1")
        warnings.filterwarnings("ignore", "The inplace keyword in DataFrame.drop")
        if task.categorical:
            dummy_variables(dataset)
            prepare_data(dataset.replace(".csv", "_nocat.csv"))
            merge_groups_dummies(dataset)
            logistic_regression(dataset)
            rescore_wcats(dataset, categories=list(task.categorical), groups={})
        else:
            prepare_data(dataset)
            logistic_regression(dataset)
            rescore_metrics(dataset)
        churn_forecast(dataset)

    forecast = pd.read_csv(dataset.replace(".csv", "_current_predictions.csv"))
    churn = forecast.set_index("account_id")["churn_prob"]
    return churn.reindex(_book_ids(len(task.test))).to_numpy()


def _write_book_dataset(
    features: pd.DataFrame, churned: np.ndarray | None, path: str
) -> None:
    """Write rows in the book's layout: account id, observation date, metrics, churn.

    The listings read the file without dtypes, so ids such as CDNOW's ``00001``
    would come back as numbers. Each row gets the text id of its position instead.
    """
    frame = features.copy()
    frame.index = pd.Index(_book_ids(len(frame)), name="account_id")
    frame.insert(0, "observation_date", "2000-01-01")
    if churned is not None:
        frame["is_churn"] = churned
    frame.to_csv(path)


def _book_ids(count: int) -> list[str]:
    return [f"row-{position}" for position in range(count)]


def fit_css_scorecard(task: Task) -> np.ndarray:
    """Fit a css-mini scorecard and return ``-score`` of the test rows as the risk.

    Each scorecard column is a normal-distribution metric scored by its percentile
    among the account's peers (its nearest neighbours on ``task.peer_dims``), and
    one component combines them with css's default weights, the share of non-zero
    values of each metric. css learns no outcome, so a metric counts as better when
    higher unless it correlates with churn in the training rows.
    """
    from css.score import Component, GlobalScore, NormalMetric

    neighbours = max(20, min(500, len(task.train) // 10))
    metrics = [
        NormalMetric(
            name,
            peer_dims=list(task.peer_dims),
            n_neighbors=neighbours,
            semantic_flip=_raises_churn(task.train[name], task.train_churned),
        )
        for name in task.scorecard
    ]
    component = Component(name="health", children=metrics)
    scorecard = GlobalScore(children=[component])

    columns = list(task.peer_dims + task.scorecard)
    scorecard.fit(task.train[columns].astype(np.float64))
    # css-mini 0.1.0a2 adds the total score to a frame with MultiIndex columns by a
    # short key, which pandas 3.1 deprecates.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Setting a new column on a DataFrame with")
        scored = scorecard.score(task.test[columns].astype(np.float64))
    return -scored["global_score"].to_numpy(np.float64)


def _raises_churn(values: pd.Series, churned: np.ndarray) -> bool:
    return bool(np.corrcoef(values.to_numpy(np.float64), churned)[0, 1] > 0)


def fit_bgnbd(
    log: pd.DataFrame, customers: pd.Index, fit_on: pd.Index | None = None
) -> dict[str, np.ndarray]:
    """Fit lifetimes' BG/NBD model on the calibration period of the CDNOW log.

    The model reads only purchases up to 1997-09-30 and no outcome. Time is in weeks,
    as in Fader, Hardie and Lee (2005). Two risks come back, each in the order of
    ``customers``: minus the expected number of purchases in the 39-week hold-out,
    and minus the probability that the customer is still alive. With ``fit_on``, a
    subset of ``customers``, only those customers' purchases fit the model's four
    parameters.

    NOTE: lifetimes 0.11.3 returns NaN expected purchases for customers without a
    repeat purchase when the fitted ``a + b`` is below 1, which happens on small
    slices of CDNOW but not on the full log or the 2,357-customer sample.
    """
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data

    end = pd.Timestamp(CDNOW_AS_OF)
    summary = summary_data_from_transaction_data(
        log[log["date"] <= end],
        "customer_id",
        "date",
        observation_period_end=end,
        freq="D",
    ).reindex(customers)
    frequency = summary["frequency"]
    recency = summary["recency"] / 7.0
    age = summary["T"] / 7.0

    fitter = BetaGeoFitter(penalizer_coef=0.0)
    fit_customers = customers if fit_on is None else fit_on
    fitter.fit(frequency[fit_customers], recency[fit_customers], age[fit_customers])
    weeks = (pd.Timestamp(CDNOW_HOLDOUT_END) - end).days / 7.0
    # lifetimes 0.11.3 computes two forms of the hypergeometric term for every
    # customer and uses the second where the first is infinite, so the unused form
    # may divide by zero, overflow or be invalid.
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        expected = fitter.conditional_expected_number_of_purchases_up_to_time(
            weeks, frequency, recency, age
        )
    alive = fitter.conditional_probability_alive(frequency, recency, age)
    return {
        "expected purchases": -np.asarray(expected, dtype=np.float64),
        "P(alive)": -np.asarray(alive, dtype=np.float64),
    }


# The hand-set healthscore profiles of the demo, scored through the product: ingest
# into a DuckDB store, compute metrics as of a date, score with the profile.
TELCO_AS_OF = dt.date(2026, 12, 4)


def score_telco_profile(data: TelcoData, folder: Path) -> np.ndarray:
    """Score the Telco accounts with the demo's hand-set profile; risk = 100 - score.

    The profile is fixed, so it is scored once for all accounts, each fold's test
    rows included. The risks come in the order of ``data.features``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with Store.open(folder / "telco.duckdb") as store:
        mapping = load_mapping(DEMO_DIR / "mappings" / "telco.yaml")
        _check_loaded(ingest_file(store, "accounts", data.path, mapping))
        profile = load_profile(DEMO_DIR / "profiles" / "telco.yaml")
        run = score_snapshot(store, profile, TELCO_AS_OF)
    return _risk_in_order(run.result.scores, data.features.index)


def score_cdnow_profile(data: CdnowData, folder: Path) -> np.ndarray:
    """Score the CDNOW customers as of 1997-09-30 with the demo's event profile.

    Only purchases up to that date are loaded. The risks come in the order of
    ``data.churned``, and risk is ``100 - score``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    events = _write_calibration_log(data.log, folder / "cdnow_calibration.txt")
    accounts = _write_cdnow_accounts(data.log, folder / "cdnow_accounts.csv")
    with Store.open(folder / "cdnow.duckdb") as store:
        _check_loaded(ingest_file(store, "accounts", accounts))
        mapping = load_mapping(DEMO_DIR / "mappings" / "cdnow_events.yaml")
        _check_loaded(ingest_file(store, "events", events, mapping))
        profile = load_profile(DEMO_DIR / "profiles" / "cdnow.yaml")
        run = score_snapshot(store, profile, CDNOW_AS_OF)
    return _risk_in_order(run.result.scores, data.churned.index)


def _check_loaded(result: IngestResult) -> None:
    """Raise when the load rejected rows, because the scores would then miss them."""
    if result.rejected:
        raise RuntimeError(
            f"healthscore rejected {result.rejected} of {result.rows_read} rows of "
            f"{result.source} (reasons: {result.reasons}), so its scores would "
            "leave those rows out. Read the store's quarantine table for each row."
        )


def _write_calibration_log(log: pd.DataFrame, path: Path) -> Path:
    """Write the purchases up to 1997-09-30 in the layout of ``CDNOW_master.txt``."""
    known = log[log["date"] <= pd.Timestamp(CDNOW_AS_OF)]
    out = pd.DataFrame(
        {
            "customer_id": known["customer_id"],
            "date": known["date"].dt.strftime("%Y%m%d"),
            "number_of_cds": known["cds"],
            "dollar_value": known["dollars"],
        }
    )
    out.to_csv(path, sep=" ", index=False)
    return path


def _write_cdnow_accounts(
    log: pd.DataFrame, path: Path, bought: np.ndarray | None = None
) -> Path:
    """Write one account per customer, created on its first purchase.

    With ``bought``, the customers who bought in the training window, each account
    gets ``churned`` true when the customer is not among them. Without it the file
    has no outcome.
    """
    first = log.groupby("customer_id", sort=True)["date"].min()
    accounts = pd.DataFrame(
        {
            "account_id": first.index,
            "created_at": first.dt.strftime("%Y-%m-%d").to_numpy(),
            "segment": "CDNOW",
        }
    )
    if bought is not None:
        accounts["churned"] = ~accounts["account_id"].isin(bought)
    accounts.to_csv(path, index=False)
    return path


def _risk_in_order(scores: pd.DataFrame, accounts: pd.Index) -> np.ndarray:
    """Return ``100 - score`` per account in the order of ``accounts``.

    An account without a score (coverage under the profile's floor) gets NaN, and
    the caller decides what to do with it.
    """
    score = scores.set_index("account_id")["score"].astype(np.float64)
    return 100.0 - score.reindex(accounts.astype(str)).to_numpy()


# healthscore's learned models (healthscore.predict): trained on metrics from the
# store and the same training accounts as the peers.
TELCO_LEARNED_FEATURES = (
    "gender",
    "senior_citizen",
    "partner",
    "dependents",
    "tenure",
    "phone_service",
    "multiple_lines",
    "internet_service",
    "online_security",
    "online_backup",
    "device_protection",
    "tech_support",
    "streaming_tv",
    "streaming_movies",
    "contract",
    "paperless_billing",
    "payment_method",
    "monthly_charges",
    "total_charges",
)
CDNOW_LEARNED_FEATURES = (
    "days_since_last_event",
    "days_since_first_event",
    "active_days_90d",
    "active_days_273d",
    "event_value_273d",
    "event_trend_90d",
)
LEARNED_KINDS = ("logistic", "boosted", "profile")


def fit_telco_learned(
    data: TelcoData, store_path: Path, kinds: tuple[str, ...] = LEARNED_KINDS
) -> dict[str, tuple[np.ndarray, float]]:
    """Fit healthscore's learned models per Telco fold.

    ``store_path`` is the store that :func:`score_telco_profile` loaded. The
    training set has one row per account as of :data:`TELCO_AS_OF`, labelled by
    the ``Churn`` column, and each fold's models see only that fold's training
    rows. Returns, per kind in ``kinds`` (of :data:`LEARNED_KINDS`), the risk per
    account in the order of ``data.features`` and the seconds taken, the training
    set included.
    """
    base = load_profile(DEMO_DIR / "profiles" / "telco.yaml")
    risks = {kind: np.full(len(data.features), np.nan) for kind in kinds}
    with Store.open(store_path) as store:
        started = time.perf_counter()
        training = build_training_set(
            store, TELCO_LEARNED_FEATURES, [TELCO_AS_OF], 30, segments=["Telco"]
        )
        seconds = dict.fromkeys(kinds, time.perf_counter() - started)
        accounts = pd.Index(training.rows["account_id"])

        for task in telco_tasks(data):
            subset = training.take(_positions(accounts, task.train.index))
            test = training.take(_positions(accounts, task.test.index))
            rows = data.features.index.get_indexer(task.test.index)
            for kind in kinds:
                started = time.perf_counter()
                fitted = _fit_learned(kind, subset, base)
                if isinstance(fitted, ChurnModel):
                    risks[kind][rows] = fitted.predict_proba(test.features())
                else:
                    risks[kind][rows] = profile_risk(store, fitted, test)
                seconds[kind] += time.perf_counter() - started
    return {kind: (risks[kind], seconds[kind]) for kind in kinds}


def _fit_learned(
    kind: str, training: TrainingSet, base: HealthProfile
) -> ChurnModel | HealthProfile:
    """Fit one learned kind: a model, or a profile whose weights a model learned.

    The learned profile takes its components, bands and coverage floor from
    ``base``. Its logistic model is fitted without calibration, which a profile
    does not use.
    """
    if kind == "logistic":
        return fit_logistic(training)
    if kind == "boosted":
        return fit_boosted(training)
    model = fit_logistic(training, calibration=None)
    return parse_profile(learned_profile(model, training, base=base, name="learned"))


def _positions(accounts: pd.Index, requested: pd.Index) -> np.ndarray:
    """Return the positions of ``requested`` in ``accounts``, where all must exist."""
    positions = accounts.get_indexer(requested.astype(str))
    if (positions < 0).any():
        missing = requested[positions < 0][0]
        raise RuntimeError(
            f"account {missing!r} has no row in healthscore's training set, so the "
            "learned models cannot score the same accounts as the peers. Check that "
            "its metrics and outcome were loaded."
        )
    return positions


def fit_cdnow_learned(
    data: CdnowData, folder: Path, kinds: tuple[str, ...] = LEARNED_KINDS
) -> dict[str, tuple[np.ndarray, float]]:
    """Fit healthscore's learned models on CDNOW's calibration period.

    The store gets the purchases up to 1997-09-30 and, as each account's
    ``churned`` flag, whether the customer bought nothing from 1997-07-01 to
    1997-09-30. The models learn from metrics as of :data:`CDNOW_TRAIN_AS_OF` with
    that label, then score the metrics as of 1997-09-30. Returns, per kind in
    ``kinds`` (of :data:`LEARNED_KINDS`), the risk per customer in the order of
    ``data.churned`` and the seconds taken, the training set included.
    """
    folder.mkdir(parents=True, exist_ok=True)
    events = _write_calibration_log(data.log, folder / "cdnow_calibration.txt")
    bought = _buyers_between(data.log, CDNOW_TRAIN_AS_OF, CDNOW_AS_OF)
    accounts = _write_cdnow_accounts(data.log, folder / "accounts.csv", bought)
    base = load_profile(DEMO_DIR / "profiles" / "cdnow.yaml")
    customers = data.churned.index
    results = {}
    with Store.open(folder / "cdnow-learned.duckdb") as store:
        _check_loaded(ingest_file(store, "accounts", accounts))
        mapping = load_mapping(DEMO_DIR / "mappings" / "cdnow_events.yaml")
        _check_loaded(ingest_file(store, "events", events, mapping))

        started = time.perf_counter()
        training = build_training_set(
            store, CDNOW_LEARNED_FEATURES, [CDNOW_TRAIN_AS_OF], 92, segments=["CDNOW"]
        )
        prepared = time.perf_counter() - started
        for kind in kinds:
            started = time.perf_counter()
            fitted = _fit_learned(kind, training, base)
            risk = _score_cdnow_learned(store, fitted, customers)
            results[kind] = (risk, prepared + time.perf_counter() - started)
    return results


def _score_cdnow_learned(
    store: Store, fitted: ChurnModel | HealthProfile, customers: pd.Index
) -> np.ndarray:
    """Return the risk per customer from the metrics as of 1997-09-30."""
    if isinstance(fitted, ChurnModel):
        features = features_as_of(
            store, fitted.feature_names, CDNOW_AS_OF, segments=["CDNOW"]
        )
        features = features.set_index("account_id").reindex(customers.astype(str))
        return fitted.predict_proba(features)

    metrics = compute_metrics(store, CDNOW_AS_OF, (*fitted.metrics, "segment"))
    return _risk_in_order(score_accounts(metrics, fitted).scores, customers)
