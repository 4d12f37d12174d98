"""The CLI on Spark: `score --backend spark` and spark:// stores, on the Telco demo.

The Telco accounts are loaded into a DuckDB store and scored once on DuckDB and once
with `--backend spark --spark-master local[2]`. Both stored snapshots must agree:
scores and coverage to 1e-9, bands exactly. The commands run in this process through
CliRunner, so they reuse the session-wide Spark application and leave it running.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.demo.run import DEMO_DIR, TELCO_FILE
from healthscore.history import latest_components, latest_scores
from healthscore.store import Store
from healthscore.store.spark import copy_tables, open_spark_store

pytestmark = [
    pytest.mark.spark,
    # py4j 0.10.9.9 leaves its gateway sockets to the garbage collector.
    pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning"),
    # PySpark 4.0's toPandas passes copy= to astype, which pandas 3 deprecates.
    pytest.mark.filterwarnings(
        "ignore:The copy keyword is deprecated:pandas.errors.Pandas4Warning"
    ),
]

TOLERANCE = 1e-9
AS_OF = "2025-01-31"
PROFILE = DEMO_DIR / "profiles" / "telco.yaml"
DATABASE = "hs_cli"
COPIED_TABLES = [
    "accounts",
    "account_attributes",
    "profiles",
    "scores",
    "score_components",
    "score_measures",
    "schema_info",
]


@dataclass(frozen=True)
class TelcoRuns:
    """Two copies of the Telco store, scored on DuckDB and on Spark."""

    duckdb_store: Path
    spark_store: Path
    spark_output: str


def run(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def score_args(store: Path, *extra: str) -> list[str]:
    return [
        "score",
        "--as-of",
        AS_OF,
        "-p",
        str(PROFILE),
        "--store",
        str(store),
        *extra,
    ]


@pytest.fixture(scope="module")
def telco(tmp_path_factory, spark) -> TelcoRuns:
    folder = tmp_path_factory.mktemp("cli-telco")
    duckdb_store, spark_store = folder / "duckdb.duckdb", folder / "spark.duckdb"
    mapping = DEMO_DIR / "mappings" / "telco.yaml"
    loaded = run(
        "ingest",
        "accounts",
        str(TELCO_FILE),
        "--mapping",
        str(mapping),
        "--store",
        str(duckdb_store),
    )
    assert loaded.exit_code == 0, loaded.output
    shutil.copy(duckdb_store, spark_store)

    on_duckdb = run(*score_args(duckdb_store))
    spark_options = ["--backend", "spark", "--spark-master", "local[2]"]
    on_spark = run(*score_args(spark_store, *spark_options))
    assert on_duckdb.exit_code == 0, on_duckdb.output
    assert on_spark.exit_code == 0, on_spark.output
    return TelcoRuns(duckdb_store, spark_store, on_spark.output)


@pytest.fixture(scope="module")
def spark_database(telco, spark) -> str:
    """Copy the tables that the Telco scores use into the Spark database hs_cli.

    Telco has accounts only, so the event, survey and ticket tables stay out and
    the Spark store reads them as empty, as the DuckDB store has them empty.
    """
    session = spark.newSession()
    session.sql(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    with Store.open(telco.spark_store, create=False) as store:
        copy_tables(store, open_spark_store(session), COPIED_TABLES, database=DATABASE)
    return DATABASE


def stored_results(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    with Store.open(path, create=False) as store:
        scores = latest_scores(store).sort_values("account_id", ignore_index=True)
        components = latest_components(store).sort_values(
            "account_id", ignore_index=True
        )
    return scores, components


def assert_close(actual: pd.Series, expected: pd.Series) -> None:
    np.testing.assert_allclose(
        actual.to_numpy(dtype=float),
        expected.to_numpy(dtype=float),
        rtol=0,
        atol=TOLERANCE,
        equal_nan=True,
        err_msg=str(expected.name),
    )


def assert_same_scores(actual_store: Path, expected_store: Path) -> None:
    """Check two stores' newest snapshots: scores to 1e-9 and the same bands."""
    actual, actual_components = stored_results(actual_store)
    expected, expected_components = stored_results(expected_store)

    assert len(expected) == 7043
    assert actual["account_id"].tolist() == expected["account_id"].tolist()
    assert actual["band"].tolist() == expected["band"].tolist()
    assert actual["profile_hash"].tolist() == expected["profile_hash"].tolist()
    assert_close(actual["score"], expected["score"])
    assert_close(actual["coverage"], expected["coverage"])
    assert list(actual_components.columns) == list(expected_components.columns)
    for component in expected_components.columns.drop("account_id"):
        assert_close(actual_components[component], expected_components[component])


def test_score_spark_matches_duckdb(telco):
    assert_same_scores(telco.spark_store, telco.duckdb_store)


def test_score_spark_prints_summary(telco):
    assert "Scored 7,043 accounts as of 2025-01-31" in telco.spark_output
    assert (
        "Metrics computed on Spark (local[2]) from tables copied from the DuckDB store."
        in telco.spark_output
    )


def test_score_spark_keeps_bands_spread(telco):
    scores, _ = stored_results(telco.spark_store)

    counts = scores["band"].value_counts()
    assert set(counts.index) <= {"Good", "Average", "Poor", "Unknown"}
    assert counts.get("Good", 0) > 0
    assert counts.get("Poor", 0) > 0


def test_score_reads_spark_database(telco, spark_database, tmp_path):
    store = tmp_path / "snapshots.duckdb"
    options = ["--backend", "spark", "--spark-master", "local[2]"]

    result = run(*score_args(store, *options, "--spark-database", spark_database))

    assert result.exit_code == 0, result.output
    assert f"from the tables of Spark database '{spark_database}'" in result.output
    assert "has no tables ['users', 'events', 'survey_responses'," in result.output
    assert_same_scores(store, telco.duckdb_store)


def test_export_from_spark_database(telco, spark_database, tmp_path):
    from_spark, from_duckdb = tmp_path / "spark.csv", tmp_path / "duckdb.csv"
    url = f"spark://local[2]/{spark_database}"

    on_spark = run("export", "scores", "--out", str(from_spark), "--store", url)
    on_duckdb = run(
        "export", "scores", "--out", str(from_duckdb), "--store", str(telco.spark_store)
    )

    assert on_spark.exit_code == 0, on_spark.output
    assert on_duckdb.exit_code == 0, on_duckdb.output
    pd.testing.assert_frame_equal(pd.read_csv(from_spark), pd.read_csv(from_duckdb))


def test_explain_from_spark_database(telco, spark_database):
    url = f"spark://local[2]/{spark_database}"

    on_spark = run("explain", "7590-VHVEG", "--store", url)
    on_duckdb = run("explain", "7590-VHVEG", "--store", str(telco.spark_store))

    assert on_spark.exit_code == 0, on_spark.output
    assert "Account 7590-VHVEG as of 2025-01-31" in on_spark.output
    assert on_spark.output == on_duckdb.output


def test_read_empty_spark_database_warns(spark):
    spark.sql("CREATE DATABASE IF NOT EXISTS hs_cli_empty")

    result = run("accounts", "--store", "spark://local[2]/hs_cli_empty")

    assert result.exit_code == 0, result.output
    assert "Spark database 'hs_cli_empty' has no tables ['accounts'," in result.output
    assert "No stored scores match" in result.output


def test_score_missing_spark_database_exits_6(spark, tmp_path):
    store = tmp_path / "snapshots.duckdb"
    options = ["--backend", "spark", "--spark-master", "local[2]"]

    result = run(*score_args(store, *options, "--spark-database", "hs_cli_missing"))

    assert result.exit_code == 6
    assert "Spark database 'hs_cli_missing' not found" in result.output
    assert not store.exists()


def test_read_missing_spark_database_exits_6(spark):
    result = run("accounts", "--store", "spark://local[2]/hs_cli_missing")

    assert result.exit_code == 6
    assert "Spark database 'hs_cli_missing' not found" in result.output
