"""A local Spark session shared by the Spark tests, skipped when Spark cannot run.

Set ``HEALTHSCORE_REQUIRE_SPARK=1`` to make a missing PySpark or Java fail the tests
instead of skipping them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

REQUIRE_ENV_VAR = "HEALTHSCORE_REQUIRE_SPARK"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "spark: runs on a local Apache Spark session (PySpark and Java)"
    )


def _missing_requirement() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return (
            "PySpark is not installed; install it with pip install 'pyspark>=4.0,<4.1'"
        )
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not java_home:
        return "Java is not installed; Spark 4.0 needs Java 17 or 21 on PATH"
    return None


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """Start a local Spark session on 2 cores in UTC, or skip when Spark cannot run."""
    missing = _missing_requirement()
    if missing is not None:
        if os.environ.get(REQUIRE_ENV_VAR) == "1":
            pytest.fail(f"{missing} ({REQUIRE_ENV_VAR}=1 requires Spark)")
        pytest.skip(missing)

    from healthscore.store.spark import local_session

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = local_session(
        "local[2]",
        **{
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.warehouse.dir": str(warehouse),
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.driver.host": "127.0.0.1",
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
