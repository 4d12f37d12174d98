"""Opening a store on Spark, copying tables to it, and the spark:// store URL."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pyarrow as pa
import pytest

from healthscore.exceptions import ConfigError, StoreError
from healthscore.metrics import compute_metrics
from healthscore.store import TABLES, Store
from healthscore.store.spark import (
    SparkLocation,
    copy_tables,
    is_spark_url,
    open_spark_store,
    open_spark_url,
    parse_spark_url,
    session_settings,
)
from tests.metrics.conftest import write_rows
from tests.spark.test_parity import assert_frames_match

_SPARK_MARKS = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:The copy keyword is deprecated:pandas.errors.Pandas4Warning"
    ),
]

AS_OF = dt.date(2025, 3, 31)
METRICS = ["arr", "event_count_30d", "dau_mau", "open_tickets", "tier"]
# The tables METRICS read. A Spark store shows the others as empty views.
_METRIC_SOURCES = ["accounts", "account_attributes", "events", "tickets"]


def spark_test(function):
    """Mark a test that needs the Spark session."""
    for mark in _SPARK_MARKS:
        function = mark(function)
    return function


@pytest.fixture
def small_store(tmp_path):
    store = Store.open(tmp_path / "small.duckdb")
    write_rows(
        store,
        "accounts",
        [
            {"account_id": "a1", "arr": 1200.0, "created_at": "2024-01-05T10:00:00Z"},
            {"account_id": "a2", "arr": 99.5},
        ],
    )
    write_rows(
        store,
        "account_attributes",
        [{"account_id": "a1", "name": "tier", "text_value": "gold"}],
    )
    write_rows(
        store,
        "events",
        [
            {
                "account_id": "a1",
                "user_id": "u1",
                "occurred_at": "2025-03-31T23:59:59Z",
            },
            {
                "account_id": "a1",
                "user_id": "u2",
                "occurred_at": "2025-03-02T00:00:00Z",
            },
            {
                "account_id": "a2",
                "user_id": "u3",
                "occurred_at": "2025-04-01T00:00:00Z",
            },
        ],
    )
    write_rows(
        store,
        "tickets",
        [{"account_id": "a2", "opened_at": "2025-03-30T08:00:00+02:00"}],
    )
    yield store
    store.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("spark://local[2]", SparkLocation("local[2]")),
        ("spark://local[*]", SparkLocation("local[*]")),
        ("spark://local", SparkLocation("local")),
        ("spark://yarn/healthscore", SparkLocation("yarn", "healthscore")),
        ("spark://host:7077/hs_1", SparkLocation("spark://host:7077", "hs_1")),
        ("spark://yarn/", SparkLocation("yarn")),
    ],
)
def test_parse_spark_url_forms(url, expected):
    assert parse_spark_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("store.duckdb", "is not a Spark URL"),
        ("spark://", "names no Spark master"),
        ("spark:///healthscore", "names no Spark master"),
        ("spark://yarn/1db", "names the Spark database '1db'"),
        ("spark://yarn/hs;drop", "names the Spark database 'hs;drop'"),
    ],
)
def test_parse_spark_url_rejects(url, message):
    with pytest.raises(ConfigError, match=message):
        parse_spark_url(url)


def test_is_spark_url_cases():
    assert is_spark_url("spark://local[2]")
    assert not is_spark_url("healthscore.duckdb")
    assert not is_spark_url(None)


@spark_test
def test_open_spark_store_registers_empty_tables(spark):
    store = open_spark_store(spark.newSession())

    assert set(TABLES) <= set(store.backend.list_tables())
    for name in TABLES:
        assert store.table(name).schema().names == TABLES[name].names, name
    assert store.table("events").count().to_pyarrow().as_py() == 0
    frame = compute_metrics(store, AS_OF, ["arr", "event_count_30d"])
    assert list(frame.columns) == ["account_id", "segment", "arr", "event_count_30d"]
    assert frame.empty


@spark_test
def test_spark_store_rejects_writes(spark):
    store = open_spark_store(spark.newSession())
    rows = pa.table({"account_id": ["a1"], "load_id": ["l1"]})

    with pytest.raises(StoreError, match="cannot insert rows on a 'pyspark' store"):
        store.insert("accounts", rows)
    with pytest.raises(StoreError, match="cannot start a transaction on a 'pyspark'"):
        with store.transaction():
            pass


@spark_test
def test_copy_tables_rejects_unknown_name(spark, small_store):
    target = open_spark_store(spark.newSession())

    with pytest.raises(ConfigError, match=r"unknown store tables \['event'\]"):
        copy_tables(small_store, target, ["accounts", "event"])


def test_copy_tables_rejects_duckdb_target(small_store, tmp_path):
    with Store.open(tmp_path / "other.duckdb") as other:
        with pytest.raises(StoreError, match="cannot copy tables to a 'duckdb' store"):
            copy_tables(small_store, other)


@spark_test
def test_copy_tables_some_names(spark, small_store):
    target = open_spark_store(spark.newSession())

    copied = copy_tables(small_store, target, ["accounts", "events"])

    assert copied == {"accounts": 2, "events": 3}
    assert target.table("events").count().to_pyarrow().as_py() == 3
    assert target.table("tickets").count().to_pyarrow().as_py() == 0


@spark_test
def test_copy_tables_into_database(spark, small_store):
    session = spark.newSession()
    session.sql("CREATE DATABASE IF NOT EXISTS hs_copy")
    writer = open_spark_store(session)
    copy_tables(small_store, writer, _METRIC_SOURCES, database="hs_copy")

    reader = open_spark_store(spark.newSession(), database="hs_copy")
    expected = compute_metrics(small_store, AS_OF, METRICS)
    actual = compute_metrics(reader, AS_OF, METRICS)

    stored = {
        table.name
        for table in session.catalog.listTables("hs_copy")
        if not table.isTemporary
    }
    assert stored == set(_METRIC_SOURCES)
    assert_frames_match(expected, actual)
    # a2's only event is at the period end, so it has no event up to the as-of date.
    assert actual["event_count_30d"].iloc[0] == 2.0
    assert np.isnan(actual["event_count_30d"].iloc[1])


@spark_test
def test_open_spark_store_rejects_missing_database(spark):
    with pytest.raises(StoreError, match="Spark database 'hs_missing' not found"):
        open_spark_store(spark.newSession(), database="hs_missing")


@spark_test
def test_open_spark_store_rejects_newer_schema(spark, small_store):
    small_store.insert("schema_info", pa.table({"schema_version": [99]}))
    session = spark.newSession()
    copy_tables(small_store, open_spark_store(session), ["schema_info"])

    with pytest.raises(StoreError, match="schema version 99, newer than 1"):
        open_spark_store(session)


@spark_test
def test_open_spark_url_reads_database(spark, small_store):
    spark.sql("CREATE DATABASE IF NOT EXISTS hs_url")
    copy_tables(small_store, open_spark_store(spark.newSession()), database="hs_url")

    try:
        store = open_spark_url("spark://local[2]/hs_url")
        frame = compute_metrics(store, AS_OF, ["arr"])
    finally:
        spark.catalog.setCurrentDatabase("default")

    assert frame["account_id"].tolist() == ["a1", "a2"]
    assert frame["arr"].tolist() == [1200.0, 99.5]


def test_session_settings_local_on_loopback(monkeypatch):
    monkeypatch.delenv("SPARK_LOCAL_IP", raising=False)

    settings = session_settings("local[2]", {"spark.ui.enabled": "false"})

    assert settings["spark.driver.host"] == "127.0.0.1"
    assert settings["spark.driver.bindAddress"] == "127.0.0.1"
    assert settings["spark.ui.enabled"] == "false"
    assert os.environ["SPARK_LOCAL_IP"] == "127.0.0.1"


def test_session_settings_keep_given_and_remote(monkeypatch):
    monkeypatch.setenv("SPARK_LOCAL_IP", "10.0.0.5")

    local = session_settings("local[*]", {"spark.driver.host": "10.0.0.5"})
    remote = session_settings("spark://head:7077", {"spark.ui.enabled": "false"})

    assert local["spark.driver.host"] == "10.0.0.5"
    assert os.environ["SPARK_LOCAL_IP"] == "10.0.0.5"
    assert remote == {"spark.ui.enabled": "false"}
