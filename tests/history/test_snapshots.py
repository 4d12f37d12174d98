import datetime as dt
import math

import pyarrow as pa
import pytest

from healthscore.exceptions import NotFoundError, ProfileError
from healthscore.history import (
    explain_account,
    latest_components,
    latest_scores,
    score_snapshot,
)
from healthscore.scoring import parse_profile
from healthscore.store import Store

PROFILE = """
name: seats
components:
  - name: size
    weight: 3
    measures:
      - metric: seats
        linear: {worst: 0, best: 100}
  - name: plan
    weight: 1
    measures:
      - metric: plan
        category: {points: {pro: 100, free: 0}}
"""


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "s.duckdb") as opened:
        opened.insert(
            "accounts",
            pa.table(
                {
                    "account_id": ["a", "b", "c"],
                    "plan": ["pro", "free", None],
                    "seats": [50, 100, None],
                    "load_id": ["l"] * 3,
                }
            ),
        )
        yield opened


def test_score_snapshot_stores_profile_text(store):
    profile = parse_profile(PROFILE)

    score_snapshot(store, profile, dt.date(2024, 1, 31))

    stored = store.table("profiles").to_pandas()
    assert stored["profile_hash"].tolist() == [profile.hash]
    assert stored["text"].tolist() == [profile.text]


def test_score_snapshot_hand_calculation(store):
    score_snapshot(store, parse_profile(PROFILE), dt.date(2024, 1, 31))

    scores = latest_scores(store).set_index("account_id")

    # a: 0.75 * 50 + 0.25 * 100; b: 0.75 * 100 + 0.25 * 0; c has no data.
    assert scores.loc["a", "score"] == pytest.approx(0.75 * 50 + 0.25 * 100)
    assert scores.loc["b", "score"] == pytest.approx(0.75 * 100 + 0.25 * 0)
    assert math.isnan(scores.loc["c", "score"])
    assert scores.loc["c", "band"] == "Unknown"
    assert scores.loc["c", "coverage"] == 0


def test_latest_scores_takes_newest_date_and_run(store):
    profile = parse_profile(PROFILE)
    score_snapshot(store, profile, dt.date(2024, 1, 31))
    newest = score_snapshot(store, profile, dt.date(2024, 2, 29))
    score_snapshot(store, profile, dt.date(2024, 1, 31))

    scores = latest_scores(store)

    assert set(scores["run_id"]) == {newest.run_id}
    assert set(scores["as_of"]) == {dt.date(2024, 2, 29)}


def test_latest_scores_filters_date(store):
    profile = parse_profile(PROFILE)
    first = score_snapshot(store, profile, dt.date(2024, 1, 31))
    score_snapshot(store, profile, dt.date(2024, 2, 29))

    scores = latest_scores(store, as_of=dt.date(2024, 1, 31))

    assert set(scores["run_id"]) == {first.run_id}


def test_latest_components_one_column_per_component(store):
    score_snapshot(store, parse_profile(PROFILE), dt.date(2024, 1, 31))

    components = latest_components(store).set_index("account_id")

    assert sorted(components.columns) == ["plan", "size"]
    assert components.loc["b", "size"] == pytest.approx(100)
    assert components.loc["b", "plan"] == pytest.approx(0)


def test_explain_account_contributions_sum_to_score(store):
    score_snapshot(store, parse_profile(PROFILE), dt.date(2024, 1, 31))

    explanation = explain_account(store, "a")

    assert math.fsum(explanation.measures["contribution"]) == pytest.approx(
        explanation.score["score"], abs=1e-12
    )
    assert explanation.measures["measure"].tolist() == ["plan", "seats"]


def test_explain_account_unknown_raises(store):
    with pytest.raises(NotFoundError, match="account 'zz' not found in the store"):
        explain_account(store, "zz")


def test_explain_account_without_score_raises(store):
    with pytest.raises(NotFoundError, match="no stored score for account 'a'"):
        explain_account(store, "a")


def test_failed_snapshot_leaves_store_unchanged(store):
    bad = parse_profile(PROFILE.replace("metric: plan", "metric: plann"))

    with pytest.raises(ProfileError, match="unknown metric 'plann'"):
        score_snapshot(store, bad, dt.date(2024, 1, 31))

    for table in ("scores", "score_measures", "profiles", "metric_snapshots"):
        assert store.table(table).count().execute() == 0


def test_numeric_scheme_on_text_metric_rejected(store):
    bad = parse_profile(PROFILE.replace("metric: seats", "metric: plan", 1))

    with pytest.raises(ProfileError, match="metric 'plan' holds text") as error:
        score_snapshot(store, bad, dt.date(2024, 1, 31))

    assert error.value.field == "components[0].measures[0].linear"


def test_every_unknown_metric_listed(store):
    bad = parse_profile(
        PROFILE.replace("metric: plan", "metric: plann").replace(
            "metric: seats", "metric: seets"
        )
    )

    with pytest.raises(ProfileError, match="found 2 problems with metrics") as error:
        score_snapshot(store, bad, dt.date(2024, 1, 31))

    fields = [field for field, _ in error.value.problems]
    assert fields == [
        "components[0].measures[0].metric",
        "components[1].measures[0].metric",
    ]


EVENT_PROFILE = """
name: usage
components:
  - name: engagement
    weight: 1
    measures:
      - metric: event_count_30d
        linear: {worst: 0, best: 4}
"""


def test_score_snapshot_refreshes_event_rollups(store):
    times = [dt.datetime(2024, 1, day, 12, tzinfo=dt.UTC) for day in (2, 20, 31)]
    events = {
        "event_key": ["e1", "e2", "e3"],
        "account_id": ["a", "a", "b"],
        "event_name": ["login"] * 3,
        "occurred_at": times,
        "load_id": ["events-1"] * 3,
    }
    store.insert("events", pa.table(events))

    run = score_snapshot(store, parse_profile(EVENT_PROFILE), dt.date(2024, 1, 31))

    loads = store.table("rolled_up_loads").to_pandas()
    assert loads["load_id"].tolist() == ["events-1"]
    assert loads["events"].tolist() == [3]
    metrics = run.metrics.set_index("account_id")["event_count_30d"]
    # The window of 30 days ending on 2024-01-31 starts on 2024-01-02.
    assert metrics["a"] == 2
    assert metrics["b"] == 1
    assert math.isnan(metrics["c"])


def test_score_snapshot_stores_numbers_and_text_apart(store):
    score_snapshot(store, parse_profile(PROFILE), dt.date(2024, 1, 31))

    stored = store.table("metric_snapshots").to_pyarrow().to_pylist()
    rows = {(row["metric"], row["account_id"]): row for row in stored}

    assert rows[("seats", "a")]["number_value"] == 50
    assert rows[("seats", "a")]["text_value"] is None
    assert rows[("seats", "c")]["number_value"] is None
    assert rows[("seats", "c")]["text_value"] is None
    assert rows[("plan", "a")]["text_value"] == "pro"
    assert rows[("plan", "a")]["number_value"] is None
    assert rows[("plan", "c")]["text_value"] is None
