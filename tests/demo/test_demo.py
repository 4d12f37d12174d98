"""The demo on the bundled real datasets: quality floors and what it leaves behind."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.demo import run_demo
from healthscore.store import Store

TODAY = dt.date(2026, 12, 4)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    with Store.open(folder / "demo.duckdb") as store:
        result = run_demo(store, folder, today=TODAY)
    return folder, result


def test_demo_telco_auc_at_least_080(demo):
    _, result = demo

    assert result.telco.roc_auc >= 0.80


def test_demo_telco_auc_matches_sklearn(demo):
    scores = demo[1].telco.scores

    expected = roc_auc_score(scores["churned"].astype(bool), 100 - scores["score"])

    assert demo[1].telco.roc_auc == pytest.approx(expected, abs=1e-12)


def test_demo_telco_churn_falls_from_poor_to_good(demo):
    rates = demo[1].telco.churn_by_band.set_index("band")["churn_rate"]

    assert rates["Poor"] > rates["Average"]
    assert rates["Average"] > rates["Good"]


def test_demo_telco_scores_every_account(demo):
    scores = demo[1].telco.scores

    assert len(scores) == 7043
    assert scores["score"].notna().all()


def test_demo_cdnow_auc_at_least_075(demo):
    assert demo[1].cdnow.roc_auc >= 0.75


def test_demo_cdnow_sample_auc_at_least_075(demo):
    _, result = demo

    assert result.cdnow_sample_size == 2357
    assert result.cdnow_sample_auc >= 0.75


def test_demo_cdnow_outcome_matches_purchase_log(demo):
    # Independent check of the label: buyers after 1997-09-30 up to 1998-06-30.
    from healthscore.demo import DATA_DIR

    log = pd.read_csv(
        DATA_DIR / "cdnow" / "CDNOW_master.txt",
        sep=r"\s+",
        dtype={"customer_id": str, "date": str},
    )
    later = log[(log["date"] > "19970930") & (log["date"] <= "19980630")]
    scores = demo[1].cdnow.scores

    expected = ~scores["account_id"].isin(set(later["customer_id"]))

    assert np.array_equal(scores["churned"].astype(bool), expected)
    assert len(scores) == 23570


def test_demo_writes_both_reports(demo):
    folder, result = demo

    assert result.telco.report == folder / "report.html"
    assert result.cdnow.report == folder / "report-cdnow.html"
    assert "ROC AUC" in result.telco.report.read_text(encoding="utf-8")


def test_demo_twice_adds_no_rows(demo, tmp_path):
    with Store.open(tmp_path / "again.duckdb") as store:
        run_demo(store, tmp_path, today=TODAY)
        second = run_demo(store, tmp_path, today=TODAY)
        events = store.table("events").count().execute()

    assert all(load.accepted == 0 for load in second.telco.loads + second.cdnow.loads)
    assert events == 69659


def test_demo_command_prints_both_aucs(tmp_path):
    runner = CliRunner()

    result = runner.invoke(
        app,
        ["demo", "--out-dir", str(tmp_path), "--store", str(tmp_path / "s.duckdb")],
        env={"COLUMNS": "200"},
    )

    assert result.exit_code == 0, result.output
    assert result.output.count("ROC AUC of the score against churn") == 2
    assert "CDNOW sample" in result.output
