from __future__ import annotations

import shlex

import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from healthscore.cli import app as healthscore_app
from healthscore.cli.simulate import ingest_commands, simulate
from healthscore.simulate import SimulationConfig
from healthscore.simulate import simulate as run_simulation


@pytest.fixture
def invoke():
    app = typer.Typer()
    app.command()(simulate)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, list(args), env={"COLUMNS": "200"})

    return run


def test_cli_simulate_writes_files(invoke, tmp_path):
    out = tmp_path / "sim"
    result = invoke(
        "--out", str(out), "--accounts", "30", "--days", "20", "--seed", "2",
        "--start", "2023-06-01", "--chunk-accounts", "10",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "Simulated 30 accounts from 2023-06-01 to 2023-06-20 (seed 2)" in (
        result.output
    )
    assert "healthscore ingest accounts" in result.output
    assert "part-*.parquet" in result.output
    parts = sorted((out / "events").glob("part-*.parquet"))
    assert len(parts) == 3
    first = pq.read_table(parts[0]).column("occurred_at").to_pylist()[0]
    assert first.date().isoformat() >= "2023-06-01"
    accounts = pq.read_table(out / "accounts.parquet")
    assert accounts.num_rows == 30


def test_cli_simulate_rejects_bad_start(invoke, tmp_path):
    result = invoke("--out", str(tmp_path), "--start", "01/06/2023")

    assert result.exit_code == 3
    assert "--start '01/06/2023' is not a date" in result.output


def test_cli_simulate_rejects_zero_accounts(invoke, tmp_path):
    result = invoke("--out", str(tmp_path), "--accounts", "0")

    assert result.exit_code == 2


def test_cli_ingest_commands_load(tmp_path):
    config = SimulationConfig(accounts=12, days=10, chunk_accounts=5)
    summary = run_simulation(config, tmp_path / "sim dir")
    commands = ingest_commands(summary)
    store = tmp_path / "store.duckdb"
    runner = CliRunner()

    assert commands[0].startswith("healthscore ingest accounts ")
    assert commands[2].startswith("for f in ")
    assert "'" in commands[0]
    loaded = []
    for command in commands:
        if command.startswith("for f in "):
            paths = [str(path) for path in summary.files["events"]]
            arguments = [["ingest", "events", path] for path in paths]
        else:
            arguments = [shlex.split(command)[1:]]
        for args in arguments:
            result = runner.invoke(healthscore_app, [*args, "--store", str(store)])
            assert result.exit_code == 0, result.output
            assert " 0 rejected" in result.output
            loaded.append(args[1])

    assert loaded == ["accounts", "users", "events", "events", "events"] + [
        "surveys",
        "tickets",
    ]
