"""Errors of the Spark options and spark:// stores that appear before Spark starts."""

import sys

import pytest
from typer.testing import CliRunner

from healthscore.cli import app


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, list(args), env={"COLUMNS": "200"})

    return invoke


@pytest.fixture
def store_path(tmp_path, run, portfolio):
    path = tmp_path / "store.duckdb"
    result = run("ingest", "accounts", str(portfolio["accounts"]), "--store", str(path))
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def without_pyspark(monkeypatch):
    """Make ``import pyspark`` fail, as it does where PySpark is not installed."""
    for name in list(sys.modules):
        if name == "pyspark" or name.startswith("pyspark."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyspark", None)


def test_score_rejects_spark_store_with_fix(run):
    result = run("score", "--store", "spark://yarn/hs")

    assert result.exit_code == 6
    assert "--store 'spark://yarn/hs' is a Spark store" in result.output
    assert "--backend spark --spark-master yarn --spark-database hs" in result.output


def test_score_rejects_standalone_spark_store(run):
    result = run("score", "--store", "spark://host:7077")

    assert result.exit_code == 6
    assert "--backend spark --spark-master spark://host:7077`" in result.output
    assert "--spark-database" not in result.output


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["ingest", "accounts"], id="ingest"),
        pytest.param(["demo"], id="demo"),
    ],
)
def test_write_command_rejects_spark_store(run, portfolio, command):
    args = [*command, str(portfolio["accounts"])] if command[0] == "ingest" else command

    result = run(*args, "--store", "spark://local[2]")

    assert result.exit_code == 6
    assert "--store 'spark://local[2]' is a Spark store" in result.output
    assert "Pass --store with a DuckDB file" in result.output


@pytest.mark.parametrize("option", ["--spark-master", "--spark-database"])
def test_score_spark_option_needs_backend(run, store_path, option):
    result = run("score", option, "x", "--store", str(store_path))

    assert result.exit_code == 3
    assert f"{option} applies only to --backend spark" in result.output


def test_score_rejects_bad_master(run):
    result = run(
        "score", "--backend", "spark", "--spark-master", "lokal[2]", "--store", "x"
    )

    assert result.exit_code == 3
    assert "Spark master 'lokal[2]' is not a master URL" in result.output


def test_score_rejects_unknown_backend(run):
    result = run("score", "--backend", "polars")

    assert result.exit_code == 2
    assert "'polars' is not one of" in result.output


def test_score_spark_without_pyspark_exits_3(run, store_path, without_pyspark):
    result = run("score", "--backend", "spark", "--store", str(store_path))

    assert result.exit_code == 3
    assert "needs PySpark, which is not installed" in result.output
    assert "pip install 'healthscore[spark]'" in result.output


def test_read_spark_store_without_pyspark_exits_3(run, without_pyspark, tmp_path):
    out = tmp_path / "scores.csv"

    result = run("export", "scores", "--out", str(out), "--store", "spark://yarn/hs")

    assert result.exit_code == 3
    assert "pip install 'healthscore[spark]'" in result.output
    assert not out.exists()


def test_score_spark_bad_java_home_exits_3(run, store_path, tmp_path, monkeypatch):
    pytest.importorskip("pyspark")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))

    result = run("score", "--backend", "spark", "--store", str(store_path))

    assert result.exit_code == 3
    assert "no-java' contains no bin/java" in result.output


def test_score_spark_without_java_exits_3(run, store_path, tmp_path, monkeypatch):
    pytest.importorskip("pyspark")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))

    result = run("score", "--backend", "spark", "--store", str(store_path))

    assert result.exit_code == 3
    assert "Java was not found on PATH" in result.output
