"""Metrics and scores on Spark equal those on DuckDB, for the demo data and all metrics.

Each data set is loaded into a DuckDB store, copied to Spark with ``copy_tables``, and
computed and scored on both backends. Numbers must agree to 1e-9 and text exactly.
Every data set gets its own Spark session (``newSession``), because the copied tables
are session-scoped temporary views with the same names.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest

from healthscore.demo.run import (
    CDNOW_AS_OF,
    CDNOW_EVENTS_FILE,
    DEMO_DIR,
    TELCO_FILE,
    _write_cdnow_accounts,
)
from healthscore.ingest import ingest_file, load_mapping
from healthscore.metrics import compute_metrics
from healthscore.profiles import DEFAULT_PROFILE
from healthscore.scoring import load_profile, score_accounts
from healthscore.scoring.profile import HealthProfile
from healthscore.store import TABLES, Store
from healthscore.store.spark import copy_tables, open_spark_store
from tests.metrics.conftest import write_rows

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
TELCO_AS_OF = dt.date(2025, 1, 31)
SYNTHETIC_AS_OF = dt.date(2025, 3, 31)

# Every built-in metric, some at a second window, plus the synthetic attributes.
SYNTHETIC_METRICS = [
    "event_count_30d",
    "event_count_7d",
    "active_users_30d",
    "active_days_30d",
    "features_used_30d",
    "event_value_30d",
    "event_trend_30d",
    "event_trend_7d",
    "dau_mau",
    "days_since_last_event",
    "days_since_first_event",
    "nps",
    "nps_90d",
    "csat",
    "csat_30d",
    "survey_responses_365d",
    "survey_responses_30d",
    "open_tickets",
    "high_priority_open_tickets",
    "tickets_opened_30d",
    "median_hours_to_resolve_90d",
    "tenure_days",
    "days_to_renewal",
    "arr",
    "seats",
    "plan",
    "owner",
    "segment",
    "employees",
    "region",
    "is_partner",
]


def assert_frames_match(duck: pd.DataFrame, spark: pd.DataFrame) -> None:
    """Check two frames: same columns and rows, numbers to 1e-9, other values equal."""
    assert list(spark.columns) == list(duck.columns)
    assert spark["account_id"].tolist() == duck["account_id"].tolist()
    for name in duck.columns:
        expected, actual = duck[name], spark[name]
        assert actual.dtype == expected.dtype, name
        if pd.api.types.is_float_dtype(expected):
            np.testing.assert_allclose(
                actual.to_numpy(),
                expected.to_numpy(),
                rtol=0,
                atol=TOLERANCE,
                equal_nan=True,
                err_msg=name,
            )
        else:
            assert actual.tolist() == expected.tolist(), name


def assert_scores_match(
    duck: pd.DataFrame, spark: pd.DataFrame, profile: HealthProfile
) -> None:
    """Score both metric frames and check scores, bands and explanations agree."""
    duck_result = score_accounts(duck, profile)
    spark_result = score_accounts(spark, profile)

    assert_frames_match(duck_result.scores, spark_result.scores)
    assert_frames_match(duck_result.components, spark_result.components)
    assert_frames_match(duck_result.measures, spark_result.measures)
    assert spark_result.scores["band"].tolist() == duck_result.scores["band"].tolist()


def spark_copy(spark_session: Any, source: Store) -> Store:
    """Copy every store table of ``source`` into a new Spark session's views."""
    target = open_spark_store(spark_session.newSession())
    copied = copy_tables(source, target)
    assert set(copied) == set(TABLES)
    return target


@pytest.fixture(scope="module")
def telco(tmp_path_factory, spark) -> tuple[Store, Store]:
    path = tmp_path_factory.mktemp("telco") / "telco.duckdb"
    store = Store.open(path)
    mapping = load_mapping(DEMO_DIR / "mappings" / "telco.yaml")
    result = ingest_file(store, "accounts", TELCO_FILE, mapping)
    assert result.accepted == 7043
    yield store, spark_copy(spark, store)
    store.close()


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory, spark) -> tuple[Store, Store]:
    folder = tmp_path_factory.mktemp("cdnow")
    store = Store.open(folder / "cdnow.duckdb")
    accounts = _write_cdnow_accounts(folder / "cdnow_accounts.csv")
    ingest_file(store, "accounts", accounts)
    mapping = load_mapping(DEMO_DIR / "mappings" / "cdnow_events.yaml")
    ingest_file(store, "events", CDNOW_EVENTS_FILE, mapping)
    yield store, spark_copy(spark, store)
    store.close()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory, spark) -> tuple[Store, Store]:
    store = Store.open(tmp_path_factory.mktemp("synthetic") / "synthetic.duckdb")
    for table, rows in synthetic_rows().items():
        write_rows(store, table, rows)
    yield store, spark_copy(spark, store)
    store.close()


def test_parity_telco_metrics_and_scores(telco):
    duck_store, spark_store = telco
    profile = load_profile(DEMO_DIR / "profiles" / "telco.yaml")

    duck = compute_metrics(duck_store, TELCO_AS_OF, profile.metrics, ["Telco"])
    spark = compute_metrics(spark_store, TELCO_AS_OF, profile.metrics, ["Telco"])

    assert len(duck) == 7043
    assert_frames_match(duck, spark)
    assert_scores_match(duck, spark, profile)


def test_parity_cdnow_metrics_and_scores(cdnow):
    duck_store, spark_store = cdnow
    profile = load_profile(DEMO_DIR / "profiles" / "cdnow.yaml")
    names = [
        *profile.metrics,
        "event_count_90d",
        "event_value_273d",
        "active_users_30d",
        "dau_mau",
        "days_since_first_event",
        "tenure_days",
    ]

    duck = compute_metrics(duck_store, CDNOW_AS_OF, names, ["CDNOW"])
    spark = compute_metrics(spark_store, CDNOW_AS_OF, names, ["CDNOW"])

    assert len(duck) == 23570
    assert_frames_match(duck, spark)
    assert_scores_match(duck, spark, profile)


def test_parity_synthetic_every_metric(synthetic):
    duck_store, spark_store = synthetic

    duck = compute_metrics(duck_store, SYNTHETIC_AS_OF, SYNTHETIC_METRICS)
    spark = compute_metrics(spark_store, SYNTHETIC_AS_OF, SYNTHETIC_METRICS)

    assert_frames_match(duck, spark)
    # The data must reach every metric, or the comparison proves little.
    for name in SYNTHETIC_METRICS:
        assert duck[name].notna().sum() >= 2, name


def test_parity_synthetic_scores(synthetic):
    duck_store, spark_store = synthetic
    profile = load_profile(DEFAULT_PROFILE)

    duck = compute_metrics(duck_store, SYNTHETIC_AS_OF, profile.metrics)
    spark = compute_metrics(spark_store, SYNTHETIC_AS_OF, profile.metrics)

    assert_scores_match(duck, spark, profile)


# --- The synthetic store -------------------------------------------------------------

_SEGMENTS = ("Enterprise", "SMB")
_FEATURES = ("reports", "alerts", "export", "api", None)
_PRIORITIES = ("low", "High", " urgent ", "P1\t", "critical", None, "normal")
_SURVEYS = ("nps", "NPS ", "\tnps\n", "csat", " CSAT", "other")


def synthetic_rows() -> dict[str, list[dict[str, Any]]]:
    """Build a seeded store that reaches every metric and its edge cases.

    There are 30 accounts in two segments. Account 1 churned before the as-of date
    and account 2 is created after it, so neither is in scope. Account 3 has no
    events, surveys or tickets. Times carry microseconds and fall on both sides of
    the period end and of window starts.
    """
    rng = random.Random(20250331)
    end = dt.datetime(2025, 4, 1, tzinfo=dt.UTC)
    rows: dict[str, list[dict[str, Any]]] = {
        "accounts": [],
        "account_attributes": [],
        "events": [],
        "survey_responses": [],
        "tickets": [],
    }
    for number in range(1, 31):
        account = f"acct-{number:02d}"
        rows["accounts"].append(_account(rng, number, account, end))
        rows["account_attributes"].extend(_attributes(rng, number, account))
        if number == 3:
            continue
        rows["events"].extend(_events(rng, account, end))
        rows["survey_responses"].extend(_surveys(rng, account, end))
        rows["tickets"].extend(_tickets(rng, account, end))
    rows["events"].extend(_boundary_events(end))
    rows["tickets"].extend(_boundary_tickets(end))
    return rows


def _moment(rng: random.Random, end: dt.datetime, max_days: float) -> dt.datetime:
    offset = rng.uniform(-2.0, max_days)
    return end - dt.timedelta(days=offset, microseconds=rng.randrange(1_000_000))


def _account(
    rng: random.Random, number: int, account: str, end: dt.datetime
) -> dict[str, Any]:
    created = end - dt.timedelta(days=rng.uniform(30, 900), microseconds=123_457)
    if number == 2:
        created = end + dt.timedelta(days=3)
    return {
        "account_id": account,
        "name": f"Account {number}",
        "segment": _SEGMENTS[number % 2],
        "plan": rng.choice(["starter", "growth", "scale", None]),
        "owner": rng.choice(["ana", "bo", None]),
        "arr": round(rng.uniform(1_000, 90_000), 2) if number != 5 else None,
        "seats": rng.randrange(1, 200),
        "created_at": created,
        "renewal_at": end + dt.timedelta(days=rng.uniform(-40, 400), seconds=0.5),
        "churned": number == 1,
        "churned_at": end - dt.timedelta(days=10) if number == 1 else None,
    }


def _attributes(rng: random.Random, number: int, account: str) -> list[dict[str, Any]]:
    employees = float(rng.randrange(5, 5000))
    partner = rng.choice([True, False])
    rows = [
        {
            "account_id": account,
            "name": "employees",
            "kind": "number",
            "number_value": employees,
            "text_value": str(int(employees)),
        },
        {
            "account_id": account,
            "name": "is_partner",
            "kind": "boolean",
            "number_value": float(partner),
            "text_value": "true" if partner else "false",
        },
    ]
    if number % 4 != 0:
        region = rng.choice(["emea", "amer", "apac"])
        rows.append({"account_id": account, "name": "region", "text_value": region})
    return rows


def _events(rng: random.Random, account: str, end: dt.datetime) -> list[dict[str, Any]]:
    users = [f"{account}-u{index}" for index in range(rng.randrange(1, 12))]
    # Some accounts stop using the product long before the as-of date.
    max_days = rng.choice([60.0, 75.0, 200.0])
    min_days = 45.0 if rng.random() < 0.15 else -2.0
    rows = []
    for _ in range(rng.randrange(20, 250)):
        offset = rng.uniform(min_days, max_days)
        moment = end - dt.timedelta(days=offset, microseconds=rng.randrange(1_000_000))
        rows.append(
            {
                "account_id": account,
                "user_id": rng.choice([*users, None]),
                "event_name": rng.choice(["login", "report_viewed", "export"]),
                "feature": rng.choice(_FEATURES),
                "occurred_at": moment,
                "value": rng.choice([None, round(rng.uniform(0, 50), 3)]),
            }
        )
    return rows


def _boundary_events(end: dt.datetime) -> list[dict[str, Any]]:
    """Events at the period end and at window starts, where rounding would show."""
    tick = dt.timedelta(microseconds=1)
    moments = [
        end - tick,
        end,
        end - dt.timedelta(days=30),
        end - dt.timedelta(days=30) - tick,
        end - dt.timedelta(days=7),
        end - dt.timedelta(days=14) + tick,
        end - dt.timedelta(days=60, microseconds=999_999),
    ]
    return [
        {
            "account_id": "acct-04",
            "user_id": "acct-04-edge",
            "feature": "edge",
            "occurred_at": moment,
            "value": 1.5,
        }
        for moment in moments
    ]


def _boundary_tickets(end: dt.datetime) -> list[dict[str, Any]]:
    """Tickets resolved before they opened, at the period end, and at a window start."""
    tick = dt.timedelta(microseconds=1)
    opened = end - dt.timedelta(days=5, seconds=0.25)
    window_start = end - dt.timedelta(days=90)
    times = [
        (opened, opened - dt.timedelta(hours=3)),
        (opened, end),
        (opened, end - tick),
        (window_start - dt.timedelta(hours=30.5), window_start),
        (window_start - dt.timedelta(hours=2), window_start - tick),
    ]
    return [
        {
            "account_id": "acct-06",
            "priority": "urgent",
            "opened_at": opened_at,
            "resolved_at": resolved_at,
        }
        for opened_at, resolved_at in times
    ]


def _surveys(
    rng: random.Random, account: str, end: dt.datetime
) -> list[dict[str, Any]]:
    rows = []
    for _ in range(rng.randrange(0, 14)):
        survey = rng.choice(_SURVEYS)
        top = 10 if "nps" in survey.lower() else 5
        rows.append(
            {
                "account_id": account,
                "survey": survey,
                "score": float(rng.randrange(0, top + 1)),
                "responded_at": _moment(rng, end, 400.0),
            }
        )
    return rows


def _tickets(
    rng: random.Random, account: str, end: dt.datetime
) -> list[dict[str, Any]]:
    rows = []
    for _ in range(rng.randrange(0, 9)):
        opened = _moment(rng, end, 150.0)
        hours = rng.choice([None, rng.uniform(-5, 300), rng.uniform(0.1, 48)])
        resolved = None if hours is None else opened + dt.timedelta(hours=hours)
        rows.append(
            {
                "account_id": account,
                "priority": rng.choice(_PRIORITIES),
                "status": "open" if resolved is None else "closed",
                "opened_at": opened,
                "resolved_at": resolved,
            }
        )
    return rows


def test_synthetic_rows_reach_edge_cases():
    rows = synthetic_rows()

    assert len(rows["accounts"]) == 30
    assert {row["survey"] for row in rows["survey_responses"]} == set(_SURVEYS)
    resolved_early = [
        row
        for row in rows["tickets"]
        if row["resolved_at"] is not None and row["resolved_at"] < row["opened_at"]
    ]
    assert resolved_early


def test_copy_tables_keeps_schema_and_rows(synthetic):
    duck_store, spark_store = synthetic

    for name in ("accounts", "events", "tickets"):
        duck_schema = duck_store.table(name).schema()
        spark_schema = spark_store.table(name).schema()
        assert list(spark_schema.names) == list(duck_schema.names)
        for column, duck_type in duck_schema.items():
            spark_type = spark_schema[column]
            # Ibis reads Spark columns as nullable and Spark times without a zone.
            if duck_type.is_timestamp():
                assert spark_type.is_timestamp(), column
            else:
                assert spark_type == duck_type.copy(nullable=True), column
        duck_count = duck_store.table(name).count().to_pyarrow().as_py()
        spark_count = spark_store.table(name).count().to_pyarrow().as_py()
        assert spark_count == duck_count


def test_copy_tables_keeps_utc_instants(synthetic):
    duck_store, spark_store = synthetic
    events = duck_store.table("events")

    duck = events.order_by("event_key").occurred_at.to_pyarrow().to_pylist()
    spark_events = spark_store.table("events").order_by("event_key")
    spark = spark_events.occurred_at.to_pyarrow().to_pylist()

    assert [moment.replace(tzinfo=dt.UTC) for moment in spark] == duck
