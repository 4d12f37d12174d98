"""bench/peers.py on small slices of the bundled data: every method scores every
account, and the AUC code agrees with hand calculation and scikit-learn."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

pytest.importorskip("fightchurn", reason="pip install --no-deps fightchurn==1.2.0")
pytest.importorskip("lifetimes", reason="pip install -e '.[peers]'")
pytest.importorskip("css", reason="pip install -e '.[peers]'")

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH_DIR))

import peers  # noqa: E402
import peers_methods as methods  # noqa: E402

TELCO_ROWS = 400
CDNOW_CUSTOMERS = 400


@pytest.fixture(scope="module")
def telco(tmp_path_factory):
    path = tmp_path_factory.mktemp("telco") / "telco.csv"
    frame = pd.read_csv(peers.TELCO_FILE, dtype=str, keep_default_na=False)
    frame.head(TELCO_ROWS).to_csv(path, index=False)
    return methods.read_telco(path)


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.txt"
    lines = peers.CDNOW_FILE.read_text().splitlines()
    # Customer ids follow the date of the first purchase, so a slice of every 58th
    # id spans the whole first quarter of 1997 like the full log.
    numbers = range(1, 58 * CDNOW_CUSTOMERS + 1, 58)
    customers = {f"{number:05d}" for number in numbers}
    kept_lines = [line for line in lines[1:] if line.split()[0] in customers]
    path.write_text("\n".join([lines[0], *kept_lines]) + "\n")
    return methods.read_cdnow(path)


def _log(rows):
    log = pd.DataFrame(rows, columns=["customer_id", "date", "cds", "dollars"])
    log["date"] = pd.to_datetime(log["date"])
    return log


def test_roc_auc_hand_case():
    risk = np.array([0.9, 0.8, 0.3, 0.1])
    churned = np.array([True, False, True, False])

    # Churned at 0.9 beats both retained, churned at 0.3 beats one: 3 of 4 pairs.
    assert peers.roc_auc(risk, churned) == 0.75


def test_roc_auc_ties_count_half():
    risk = np.array([1.0, 1.0, 0.0])
    churned = np.array([True, False, False])

    # One tied pair (0.5) and one pair won (1) out of two pairs.
    assert peers.roc_auc(risk, churned) == 0.75


def test_roc_auc_matches_sklearn():
    rng = np.random.default_rng(3)
    risk = rng.integers(0, 20, 500).astype(float)
    churned = rng.random(500) < 0.3

    assert peers.roc_auc(risk, churned) == pytest.approx(
        roc_auc_score(churned, risk), abs=1e-12
    )


def test_weighted_auc_equals_repeated_rows():
    rng = np.random.default_rng(4)
    risk = rng.normal(size=200)
    churned = rng.random(200) < 0.4
    weights = rng.integers(0, 4, 200).astype(float)
    groups, outcome = peers._tie_groups(risk, churned)

    repeated = np.repeat(np.arange(200), weights.astype(int))
    expected = roc_auc_score(churned[repeated], risk[repeated])

    assert peers._weighted_auc(groups, outcome, weights) == pytest.approx(expected)


def test_roc_auc_bootstrap_brackets_estimate():
    rng = np.random.default_rng(5)
    churned = rng.random(1000) < 0.3
    risk = churned + rng.normal(size=1000)

    aucs = peers.roc_auc_bootstrap(risk, churned, 200)
    low, high = np.percentile(aucs, [2.5, 97.5])
    estimate = peers.roc_auc(risk, churned)

    assert low < estimate < high
    assert high - low < 0.1


def test_evaluate_unscored_account_fails_row():
    risk = np.array([0.2, np.nan, 0.9])
    churned = np.array([False, True, True])
    row, aucs = peers.evaluate("d", "m", (risk, 1.0), churned, 10)

    assert row.roc_auc is None
    assert aucs is None
    assert "1 accounts have no risk" in row.error
    assert "failed: 1 accounts" in peers.format_table([row])


def test_evaluate_row_values():
    risk = np.array([0.9, 0.8, 0.3, 0.1])
    churned = np.array([True, False, True, False])
    row, aucs = peers.evaluate("d", "m", (risk, 2.5), churned, 50)

    assert row.roc_auc == 0.75
    assert row.accounts == 4
    assert row.churned == 2
    # Average precision: precision 1 at the first churned, 2/3 at the second.
    assert row.pr_auc == pytest.approx((1 + 2 / 3) / 2)
    assert row.seconds == 2.5
    assert aucs.shape == (50,)


def test_evaluate_all_pairs_with_profile():
    rng = np.random.default_rng(7)
    churned = rng.random(300) < 0.3
    profile = churned + rng.normal(size=300)
    outcomes = {
        peers.REFERENCE_METHOD: (profile, 1.0),
        "same": (profile.copy(), 1.0),
        "better": (churned + 0.5 * rng.normal(size=300), 1.0),
        "broken": "ValueError: no fit",
    }

    rows = {row.method: row for row in peers.evaluate_all("d", outcomes, churned, 100)}

    assert rows[peers.REFERENCE_METHOD].vs_profile is None
    # The same risks on the same resamples differ by exactly 0 on every resample.
    assert rows["same"].vs_profile == 0
    assert rows["same"].vs_profile_low == 0
    assert rows["same"].vs_profile_high == 0
    assert rows["better"].vs_profile_low > 0
    assert rows["broken"].error == "ValueError: no fit"
    assert rows["broken"].vs_profile is None
    assert "| d | broken | failed: ValueError: no fit |" in peers.format_table(
        list(rows.values())
    )


def test_cdnow_features_hand_case():
    log = _log(
        [
            ("a", "1997-01-01", 2, 10.0),
            ("a", "1997-01-01", 1, 5.0),
            ("a", "1997-06-01", 1, 20.0),
            ("a", "1997-08-01", 1, 99.0),
            ("b", "1997-03-31", 1, 7.0),
        ]
    )

    features = methods.cdnow_features(log, dt.date(1997, 6, 30))

    a = features.loc["a"]
    assert a["tenure_days"] == 181
    assert a["days_since_last"] == 30
    assert a["purchase_days"] == 2
    assert a["purchase_days_90d"] == 1
    assert a["purchase_days_prior_90d"] == 0
    assert a["dollars_total"] == 35.0
    assert a["dollars_per_purchase_day"] == 17.5
    assert a["cds_total"] == 4
    assert features.loc["b", "days_since_last"] == 92


def test_cdnow_task_ignores_holdout_purchases():
    rows = [
        ("a", "1997-01-05", 1, 10.0),
        ("a", "1997-08-01", 1, 10.0),
        ("b", "1997-02-01", 1, 12.0),
        ("c", "1997-03-01", 2, 30.0),
    ]
    data = methods.CdnowData(Path("x"), _log(rows), pd.Series(dtype=bool))
    later = methods.CdnowData(
        Path("x"), _log([*rows, ("b", "1997-12-01", 1, 9.0)]), pd.Series(dtype=bool)
    )

    task = methods.cdnow_task(data)
    task_later = methods.cdnow_task(later)

    pd.testing.assert_frame_equal(task.train, task_later.train)
    assert task.train_churned.tolist() == [False, True, True]
    assert task_later.train_churned.tolist() == [False, True, True]


def test_read_cdnow_labels_holdout_buyers(cdnow):
    log = cdnow.log
    after = log[(log["date"] > "1997-09-30") & (log["date"] <= "1998-06-30")]
    buyers = set(after["customer_id"])

    assert len(cdnow.churned) == CDNOW_CUSTOMERS
    for customer, churned in cdnow.churned.items():
        assert churned == (customer not in buyers)


@pytest.mark.parametrize(
    "fit",
    [
        methods.fit_sklearn_logistic,
        methods.fit_css_scorecard,
        "fightchurn",
    ],
    ids=["sklearn", "css", "fightchurn"],
)
def test_telco_methods_score_each_test_row(telco, fit, tmp_path):
    task = methods.telco_tasks(telco)[0]
    if fit == "fightchurn":
        risk = methods.fit_fightchurn(task, tmp_path)
    else:
        risk = fit(task)

    assert risk.shape == (len(task.test),)
    assert np.isfinite(risk).all()
    assert roc_auc_score(telco.churned.loc[task.test.index], risk) > 0.6


@pytest.mark.parametrize(
    "fit",
    [
        methods.fit_sklearn_logistic,
        methods.fit_css_scorecard,
        "fightchurn",
    ],
    ids=["sklearn", "css", "fightchurn"],
)
def test_cdnow_methods_score_each_customer(cdnow, fit, tmp_path):
    task = methods.cdnow_task(cdnow)
    if fit == "fightchurn":
        risk = methods.fit_fightchurn(task, tmp_path)
    else:
        risk = fit(task)

    assert risk.shape == (CDNOW_CUSTOMERS,)
    assert np.isfinite(risk).all()
    assert roc_auc_score(cdnow.churned, risk) > 0.6


def test_telco_folds_cover_each_account_once(telco):
    tasks = methods.telco_tasks(telco)
    held_out = np.concatenate([task.test.index.to_numpy() for task in tasks])

    assert sorted(held_out) == sorted(telco.features.index)
    for task in tasks:
        assert task.train.index.intersection(task.test.index).empty


def test_telco_profile_scores_each_account(telco, tmp_path):
    risk = methods.score_telco_profile(telco, tmp_path)

    assert risk.shape == (TELCO_ROWS,)
    assert np.isfinite(risk).all()
    assert ((risk >= 0) & (risk <= 100)).all()


def test_cdnow_profile_scores_each_customer(cdnow, tmp_path):
    risk = methods.score_cdnow_profile(cdnow, tmp_path)

    assert risk.shape == (CDNOW_CUSTOMERS,)
    assert np.isfinite(risk).all()


def test_bgnbd_risks_per_customer(cdnow):
    risks = methods.fit_bgnbd(cdnow.log, cdnow.churned.index)

    assert set(risks) == {"expected purchases", "P(alive)"}
    for risk in risks.values():
        assert risk.shape == (CDNOW_CUSTOMERS,)
        assert np.isfinite(risk).all()
    assert roc_auc_score(cdnow.churned, risks["expected purchases"]) > 0.6


# Five folds of healthscore.predict's fits take over 10 s even on this slice.
@pytest.mark.slow
@pytest.mark.parametrize(
    "kinds",
    [("logistic", "profile"), ("boosted",)],
    ids=["logistic-profile", "boosted"],
)
def test_telco_learned_scores_each_account(telco, kinds, tmp_path):
    methods.score_telco_profile(telco, tmp_path)

    results = methods.fit_telco_learned(telco, tmp_path / "telco.duckdb", kinds)

    assert set(results) == set(kinds)
    for kind, (risk, seconds) in results.items():
        assert risk.shape == (TELCO_ROWS,), kind
        assert np.isfinite(risk).all(), kind
        assert seconds > 0, kind
        assert roc_auc_score(telco.churned, risk) > 0.6, kind


@pytest.mark.parametrize(
    "kinds",
    [
        ("logistic", "profile"),
        pytest.param(("boosted",), marks=pytest.mark.slow),
    ],
    ids=["logistic-profile", "boosted"],
)
def test_cdnow_learned_scores_each_customer(cdnow, kinds, tmp_path):
    results = methods.fit_cdnow_learned(cdnow, tmp_path, kinds)

    assert set(results) == set(kinds)
    for kind, (risk, _) in results.items():
        assert risk.shape == (CDNOW_CUSTOMERS,), kind
        assert np.isfinite(risk).all(), kind
        assert roc_auc_score(cdnow.churned, risk) > 0.6, kind


def test_cdnow_learned_labels_training_window(cdnow, tmp_path):
    methods.fit_cdnow_learned(cdnow, tmp_path, ("profile",))
    accounts = pd.read_csv(tmp_path / "accounts.csv", dtype={"account_id": str})

    log = cdnow.log
    window = log[(log["date"] > "1997-06-30") & (log["date"] <= "1997-09-30")]
    bought = set(window["customer_id"])
    expected = ~accounts["account_id"].isin(bought)

    assert accounts["churned"].tolist() == expected.tolist()


def test_timed_failure_returns_error_text():
    def fail():
        raise ValueError("no rows")

    assert peers._timed("m", fail) == "ValueError: no rows"


def test_grouped_failure_fills_each_row():
    def fail():
        raise ZeroDivisionError("empty fold")

    outcomes = peers._grouped({"a": "method A", "b": "method B"}, fail)

    assert outcomes == {
        "method A": "ZeroDivisionError: empty fold",
        "method B": "ZeroDivisionError: empty fold",
    }
