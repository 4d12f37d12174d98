"""Spark for the CLI: start it with a spinner, read a spark:// store, score on it.

Spark runs the metric computation only. Scoring runs on the metric frame pulled to
pandas, and the snapshot is written to the DuckDB store.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.markup import escape

from healthscore.cli._common import error_console, open_store
from healthscore.exceptions import ConfigError, StoreError
from healthscore.history import ScoringRun, score_snapshot
from healthscore.scoring import HealthProfile, ProfileSet
from healthscore.store import Store, is_spark_url
from healthscore.store.spark import (
    METRIC_INPUT_TABLES,
    check_master,
    check_spark_installed,
    copy_tables,
    open_spark_store,
    parse_spark_url,
    spark_session,
    stored_tables,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Settings of the Spark sessions that the CLI starts. Spark's console progress
#: bars would overwrite the spinner, and Arrow speeds up pulling results to pandas.
CLI_SPARK_CONF = {
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}

#: The tables that `accounts`, `explain`, `export scores` and `report` read.
SCORE_TABLES = ("accounts", "profiles", "scores", "score_components", "score_measures")

#: The input tables that a Spark database is expected to contain for scoring.
#: Rollup, load and schema tables are optional and read as empty when missing.
SCORING_INPUT_TABLES = (
    "accounts",
    "account_attributes",
    "users",
    "events",
    "survey_responses",
    "tickets",
)


@dataclass(frozen=True)
class SparkOptions:
    """The Spark master and database of `healthscore score --backend spark`.

    Attributes
    ----------
    master
        The Spark master URL, such as ``"local[2]"`` or ``"yarn"``.
    database
        The Spark database that contains the input tables, or ``None`` to copy
        them from the DuckDB store into the Spark session.
    """

    master: str
    database: str | None = None

    def describe(self) -> str:
        """Describe where the metrics were computed, for the run summary."""
        if self.database is None:
            source = "tables copied from the DuckDB store"
        else:
            source = f"the tables of Spark database {self.database!r}"
        return f"Metrics computed on Spark ({self.master}) from {source}."


def check_score_store(path: str | None) -> None:
    """Raise StoreError if ``--store`` of `healthscore score` is a ``spark://`` URL.

    The message names the options that compute the metrics on that Spark location
    and keep the snapshot in a DuckDB file.
    """
    if path is None or not is_spark_url(path):
        return
    location = parse_spark_url(path)
    fix = f"--backend spark --spark-master {location.master}"
    if location.database is not None:
        fix += f" --spark-database {location.database}"
    raise StoreError(
        f"--store {path!r} is a Spark store, which healthscore can read but not "
        "write, and `healthscore score` writes the snapshot to the store. Pass "
        f"--store with a DuckDB file and `{fix}` to compute the metrics on Spark."
    )


def spark_options(
    backend: str, master: str | None, database: str | None
) -> SparkOptions | None:
    """Return the Spark options of `healthscore score`, or ``None`` for DuckDB.

    Raises
    ------
    ConfigError
        If a Spark option is given without ``--backend spark``, the master is not
        a Spark master URL, or PySpark or Java is missing.
    """
    if backend != "spark":
        passed = [
            option
            for option, value in (
                ("--spark-master", master),
                ("--spark-database", database),
            )
            if value is not None
        ]
        if passed:
            raise ConfigError(
                f"{passed[0]} applies only to --backend spark, but the backend is "
                f"{backend!r}. Add --backend spark, or leave {passed[0]} out.",
                field=passed[0],
            )
        return None
    options = SparkOptions(master=check_master(master or "local[*]"), database=database)
    check_spark_installed()
    return options


def score_on_spark(
    store_path: str | None,
    profile: HealthProfile | ProfileSet,
    as_of: dt.date,
    options: SparkOptions,
) -> ScoringRun:
    """Compute the metrics on Spark, score them and store the snapshot in DuckDB.

    Without a database the DuckDB store must exist, and its metric input tables are
    copied into the Spark session. With a database the DuckDB store is opened, and
    created if needed, only once Spark has found the database. A spinner shows
    each step on stderr.
    """
    copy_inputs = options.database is None
    with ExitStack() as stack:
        if copy_inputs:
            store = stack.enter_context(open_store(store_path, create=False))
        status = stack.enter_context(
            error_console.status(f"Starting Spark on {options.master} ...")
        )
        session = stack.enter_context(spark_session(options.master, **CLI_SPARK_CONF))
        _set_spark_log_level(session)
        spark_store = open_spark_store(session, database=options.database)
        if copy_inputs:
            status.update("Copying the input tables to Spark ...")
            copy_tables(store, spark_store, METRIC_INPUT_TABLES)
        else:
            _warn_missing_tables(spark_store, SCORING_INPUT_TABLES)
            store = stack.enter_context(open_store(store_path, create=True))

        status.update(f"Scoring accounts as of {as_of} on Spark ...")
        return score_snapshot(store, profile, as_of, metrics_store=spark_store)


@contextmanager
def open_read_store(path: str | None, *, tables: Sequence[str]) -> Iterator[Store]:
    """Open a DuckDB store that must exist, or a ``spark://`` store, for reading.

    A Spark store starts Spark and stops it on exit, with a spinner on stderr
    until then. Each of ``tables`` that the Spark database lacks is named in a
    warning, because the store reads it as empty.
    """
    if path is None or not is_spark_url(path):
        with open_store(path, create=False) as store:
            yield store
        return

    location = parse_spark_url(path)
    with ExitStack() as stack:
        status = stack.enter_context(
            error_console.status(f"Starting Spark on {location.master} ...")
        )
        session = stack.enter_context(spark_session(location.master, **CLI_SPARK_CONF))
        _set_spark_log_level(session)
        store = open_spark_store(session, database=location.database)
        _warn_missing_tables(store, tables)

        status.update("Reading the store on Spark ...")
        yield store


def _set_spark_log_level(session: SparkSession) -> None:
    """Show Spark's warnings with -v or -vv, and only its errors otherwise."""
    verbose = logging.getLogger().isEnabledFor(logging.INFO)
    session.sparkContext.setLogLevel("WARN" if verbose else "ERROR")


def _warn_missing_tables(store: Store, tables: Sequence[str]) -> None:
    present = set(stored_tables(store))
    missing = [name for name in tables if name not in present]
    if not missing:
        return
    database = store.backend.current_database
    error_console.print(
        f"[yellow]warning:[/] Spark database {escape(repr(database))} has no "
        f"tables {escape(repr(missing))}, "
        "so they are read as empty. Copy them from a DuckDB store with "
        "healthscore.store.spark.copy_tables, or name the database that contains "
        "them.",
        highlight=False,
    )
