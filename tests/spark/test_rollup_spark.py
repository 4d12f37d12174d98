"""Event metrics on Spark read the copied rollups, or the events when they are stale."""

from __future__ import annotations

import numpy as np
import pytest

from healthscore.metrics import compute_metrics, raw_event_metrics, refresh_rollups
from healthscore.metrics.rollup import rollups_current
from healthscore.store import Store
from healthscore.store.spark import copy_tables, open_spark_store
from tests.metrics.conftest import write_rows
from tests.spark.test_parity import SYNTHETIC_AS_OF, synthetic_rows

pytestmark = [
    pytest.mark.spark,
    # py4j 0.10.9.9 leaves its gateway sockets to the garbage collector.
    pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning"),
    # PySpark 4.0's toPandas passes copy= to astype, which pandas 3 deprecates.
    pytest.mark.filterwarnings(
        "ignore:The copy keyword is deprecated:pandas.errors.Pandas4Warning"
    ),
]

EVENT_METRICS = [
    "event_count_30d",
    "event_count_7d",
    "active_users_30d",
    "active_days_30d",
    "features_used_30d",
    "event_value_30d",
    "event_trend_30d",
    "dau_mau",
    "days_since_last_event",
    "days_since_first_event",
]


@pytest.fixture(scope="module")
def duck_store(tmp_path_factory) -> Store:
    store = Store.open(tmp_path_factory.mktemp("rollup") / "rollup.duckdb")
    for table, rows in synthetic_rows().items():
        write_rows(store, table, rows)
    refresh_rollups(store)
    yield store
    store.close()


def assert_same(left, right) -> None:
    assert left["account_id"].tolist() == right["account_id"].tolist()
    for name in EVENT_METRICS:
        np.testing.assert_allclose(
            left[name].to_numpy(),
            right[name].to_numpy(),
            rtol=0,
            atol=1e-9,
            equal_nan=True,
            err_msg=name,
        )


def test_spark_reads_copied_rollups(spark, duck_store):
    target = open_spark_store(spark.newSession())
    copy_tables(duck_store, target)
    with raw_event_metrics():
        expected = compute_metrics(duck_store, SYNTHETIC_AS_OF, EVENT_METRICS)

    assert rollups_current(target)
    assert_same(compute_metrics(target, SYNTHETIC_AS_OF, EVENT_METRICS), expected)


def test_spark_without_rollups_reads_events(spark, duck_store):
    target = open_spark_store(spark.newSession())
    copy_tables(duck_store, target, ["accounts", "account_attributes", "events"])
    expected = compute_metrics(duck_store, SYNTHETIC_AS_OF, EVENT_METRICS)

    assert not rollups_current(target)
    assert_same(compute_metrics(target, SYNTHETIC_AS_OF, EVENT_METRICS), expected)
