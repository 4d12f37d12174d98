"""The demo on simulated data: it loads every file, scores and checks against churn."""

import datetime as dt

import pandas as pd
import pytest
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.demo.simulated import OUTCOME_DAYS, run_simulated_demo
from healthscore.exceptions import ConfigError
from healthscore.simulate import SimulationConfig
from healthscore.store import Store

CONFIG = SimulationConfig(accounts=300, days=150, seed=3)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("simulated")
    with Store.open(folder / "s.duckdb") as store:
        result = run_simulated_demo(store, folder, CONFIG, step=lambda text: None)
    return folder, result


def test_simulated_demo_loads_without_rejects(simulated):
    _, result = simulated

    assert all(load.rejected == 0 for load in result.loads)
    assert {load.entity for load in result.loads} == {
        "accounts",
        "users",
        "events",
        "surveys",
        "tickets",
    }


def test_simulated_demo_outcome_is_churn_after_as_of(simulated):
    folder, result = simulated
    accounts = pd.read_parquet(folder / "simulated" / "accounts.parquet")
    as_of_end = pd.Timestamp(result.run.as_of, tz="UTC") + pd.Timedelta(days=1)
    in_scope = accounts[
        accounts["churned_at"].isna() | (accounts["churned_at"] >= as_of_end)
    ]

    scored = result.scores.set_index("account_id")["churned"].astype(bool)
    expected = in_scope.set_index("account_id")["churned"].astype(bool)

    assert sorted(scored.index) == sorted(expected.index)
    assert (scored.sort_index() == expected.sort_index()).all()


def test_simulated_demo_as_of_before_end(simulated):
    _, result = simulated
    end = CONFIG.start + dt.timedelta(days=CONFIG.days - 1)

    assert (end - result.run.as_of).days == OUTCOME_DAYS


def test_simulated_demo_writes_report(simulated):
    folder, result = simulated

    assert result.report == folder / "report-simulated.html"
    assert "Simulated SaaS portfolio health" in result.report.read_text(
        encoding="utf-8"
    )


def test_simulated_demo_rejects_short_run(tmp_path):
    with (
        Store.open(tmp_path / "s.duckdb") as store,
        pytest.raises(ConfigError, match="--days 60 is too short") as caught,
    ):
        run_simulated_demo(
            store,
            tmp_path,
            SimulationConfig(accounts=10, days=60),
            step=lambda text: None,
        )
    assert f"Pass --days {OUTCOME_DAYS + 31} or more" in str(caught.value)


def test_demo_command_simulated(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--simulated",
            "--accounts",
            "200",
            "--days",
            "120",
            "--out-dir",
            str(tmp_path),
            "--store",
            str(tmp_path / "s.duckdb"),
        ],
        env={"COLUMNS": "200"},
    )

    assert result.exit_code == 0, result.output
    assert "Simulated SaaS business: 200 accounts" in result.output
    assert "ROC AUC of the score against churn" in result.output
