import datetime as dt
import io
import math
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthscore.exceptions import ConfigError
from healthscore.history import (
    backfill,
    backfill_computed_at,
    backfill_run_id,
    score_snapshot,
)
from healthscore.scoring import parse_profile, parse_profile_set
from healthscore.store import Store

UTC = dt.UTC
START = dt.date(2024, 3, 1)

PROFILE = """
name: usage
components:
  - name: engagement
    weight: 3
    measures:
      - metric: active_days_7d
        linear: {worst: 0, best: 7}
      - metric: event_count_7d
        percentile: {min_peers: 2}
  - name: size
    weight: 1
    measures:
      - metric: seats
        linear: {worst: 0, best: 100}
"""

OTHER_PROFILE = """
name: seats-only
components:
  - name: size
    weight: 1
    measures:
      - metric: seats
        linear: {worst: 0, best: 50}
"""

ONBOARDING = """
name: onboarding
components:
  - name: activation
    weight: 1
    measures:
      - metric: event_count_7d
        linear: {worst: 0, best: 5}
"""

SCORE_TABLES = ("scores", "score_components", "score_measures", "metric_snapshots")


def _at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=UTC)


def _load(store: Store, events: list[tuple[str, str, int]]) -> None:
    """Insert three accounts and events given as (account, user, day offset)."""
    store.insert(
        "accounts",
        pa.table(
            {
                "account_id": ["a", "b", "c"],
                "segment": ["SMB", "SMB", "Enterprise"],
                "seats": [10, 80, None],
                "created_at": [
                    _at(dt.date(2024, 1, 1)),
                    _at(dt.date(2024, 2, 25)),
                    _at(dt.date(2024, 2, 1)),
                ],
                "load_id": ["l"] * 3,
            }
        ),
    )
    if not events:
        return
    store.insert(
        "events",
        pa.table(
            {
                "event_key": [f"e{i}" for i in range(len(events))],
                "account_id": [account for account, _, _ in events],
                "user_id": [user for _, user, _ in events],
                "event_name": ["login"] * len(events),
                "occurred_at": [
                    _at(START + dt.timedelta(days=offset)) for _, _, offset in events
                ],
                "load_id": ["l"] * len(events),
            }
        ),
    )


EVENTS = [
    ("a", "u1", -3),
    ("a", "u1", 0),
    ("a", "u2", 1),
    ("a", "u1", 3),
    ("b", "u3", 2),
    ("b", "u3", 2),
    ("c", "u4", -10),
]


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "s.duckdb") as opened:
        _load(opened, EVENTS)
        yield opened


def _sorted_table(store: Store, name: str) -> pa.Table:
    table = store.table(name)
    return table.order_by(list(table.columns)).to_pyarrow()


def _ipc_bytes(table: pa.Table) -> bytes:
    """Serialise ``table`` with the value under each null set to a fixed filler.

    DuckDB leaves arbitrary bytes under null slots, which carry no data. A separate
    validity column per column keeps null and filler apart.
    """
    columns = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        columns[name] = pc.fill_null(column, _filler(column.type))
        columns[f"{name}_valid"] = pc.is_valid(column)
    canonical = pa.table(columns)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, canonical.schema) as writer:
        writer.write_table(canonical)
    return sink.getvalue()


def _filler(arrow_type: pa.DataType) -> pa.Scalar:
    if pa.types.is_string(arrow_type):
        return pa.scalar("", type=arrow_type)
    if pa.types.is_boolean(arrow_type):
        return pa.scalar(False)
    if pa.types.is_date(arrow_type):
        return pa.scalar(dt.date(1970, 1, 1), type=arrow_type)
    if pa.types.is_timestamp(arrow_type):
        return pa.scalar(0, type=pa.int64()).cast(arrow_type)
    return pa.scalar(0, type=arrow_type)


event_lists = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["u1", "u2", "u3"]),
        st.integers(min_value=-10, max_value=6),
    ),
    max_size=25,
)


@pytest.mark.slow
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(events=event_lists)
def test_backfill_twice_gives_identical_rows(events):
    profile = parse_profile(PROFILE)
    end = START + dt.timedelta(days=2)
    with tempfile.TemporaryDirectory() as folder:
        with Store.open(Path(folder) / "s.duckdb") as store:
            _load(store, events)

            backfill(store, profile, START, end)
            first = {name: _sorted_table(store, name) for name in SCORE_TABLES}
            again = backfill(store, profile, START, end)
            second = {name: _sorted_table(store, name) for name in SCORE_TABLES}

    assert again.replaced == 3
    for name in SCORE_TABLES:
        assert _ipc_bytes(first[name]) == _ipc_bytes(second[name]), name


def test_backfill_writes_one_run_per_date(store):
    profile = parse_profile(PROFILE)
    end = START + dt.timedelta(days=2)

    result = backfill(store, profile, START, end)

    scores = store.table("scores").to_pandas()
    assert result.days == 3
    assert result.scored == 9
    assert len(scores) == 9
    assert sorted(scores["run_id"].unique()) == sorted(result.run_ids)
    day = START + dt.timedelta(days=1)
    rows = scores[scores["run_id"] == backfill_run_id(day, profile)]
    assert set(rows["account_id"]) == {"a", "b", "c"}
    assert set(rows["computed_at"]) == {
        dt.datetime(2024, 3, 3, tzinfo=UTC),
    }


def test_backfill_day_equals_score_snapshot(store):
    profile = parse_profile(PROFILE)
    day = START + dt.timedelta(days=3)

    backfill(store, profile, START, START + dt.timedelta(days=5))
    live = score_snapshot(store, profile, day)

    scores = store.table("scores").to_pandas()
    filled = scores[scores["run_id"] == backfill_run_id(day, profile)]
    filled = filled.set_index("account_id").sort_index()
    stored_live = scores[scores["run_id"] == live.run_id]
    stored_live = stored_live.set_index("account_id").sort_index()
    assert list(filled.index) == ["a", "b", "c"]
    assert list(stored_live.index) == ["a", "b", "c"]
    for account in filled.index:
        backfilled_score = filled.loc[account, "score"]
        live_score = stored_live.loc[account, "score"]
        if math.isnan(live_score):
            assert math.isnan(backfilled_score)
        else:
            assert backfilled_score == pytest.approx(live_score, rel=0, abs=1e-12)
    assert list(filled["band"]) == list(stored_live["band"])
    assert list(filled["coverage"]) == list(stored_live["coverage"])


def test_backfill_day_hand_calculation(store):
    profile = parse_profile(PROFILE)
    day = START + dt.timedelta(days=3)

    backfill(store, profile, day, day)

    scores = store.table("scores").to_pandas().set_index("account_id")
    # In the 7 days to 2024-03-04, account a was active on 02-27, 03-01, 03-02 and
    # 03-04, so 4 of 7 days give 57.14 points. Its 4 events are the most of the
    # three accounts (4, 2, 0), which gives 100 points, and 10 seats give 10.
    # Engagement weighs 3 of 4 and averages its two measures.
    engagement = (4 / 7 * 100 + 100) / 2
    assert scores.loc["a", "score"] == pytest.approx(engagement * 0.75 + 2.5)


def test_backfill_rerun_replaces_only_its_own_rows(store):
    profile = parse_profile(PROFILE)
    other = parse_profile(OTHER_PROFILE)
    end = START + dt.timedelta(days=1)
    live = score_snapshot(store, profile, START)
    backfill(store, other, START, end)

    backfill(store, profile, START, end)
    backfill(store, profile, START, end)

    scores = store.table("scores").to_pandas()
    counts = scores.groupby("profile_name")["run_id"].count().to_dict()
    assert counts == {"usage": 3 + 6, "seats-only": 6}
    assert (scores["run_id"] == live.run_id).sum() == 3
    measures = store.table("score_measures").to_pandas()
    assert (measures["run_id"] == backfill_run_id(START, profile)).sum() == 9


def test_backfill_calls_progress_per_date(store):
    calls = []

    backfill(
        store,
        parse_profile(PROFILE),
        START,
        START + dt.timedelta(days=2),
        progress=lambda day, accounts: calls.append((day, accounts)),
    )

    assert calls == [
        (START, 3),
        (START + dt.timedelta(days=1), 3),
        (START + dt.timedelta(days=2), 3),
    ]


def test_backfill_rejects_reversed_range(store):
    with pytest.raises(ConfigError, match="after its end"):
        backfill(store, parse_profile(PROFILE), START, START - dt.timedelta(days=1))


def test_backfill_rejects_datetime(store):
    with pytest.raises(ConfigError, match="must be a datetime.date"):
        backfill(store, parse_profile(PROFILE), _at(START), START)


def test_backfill_computed_at_is_period_end():
    assert backfill_computed_at(dt.date(2024, 2, 29)) == dt.datetime(
        2024, 3, 1, tzinfo=UTC
    )


def test_backfill_run_id_depends_on_date_and_profile():
    profile = parse_profile(PROFILE)
    other = parse_profile(OTHER_PROFILE)

    ids = {
        backfill_run_id(START, profile),
        backfill_run_id(START + dt.timedelta(days=1), profile),
        backfill_run_id(START, other),
    }

    assert len(ids) == 3


def _age_set(tmp_path: Path):
    (tmp_path / "usage.yaml").write_text(PROFILE)
    (tmp_path / "onboarding.yaml").write_text(ONBOARDING)
    text = """
name: lifecycle
profiles:
  - profile: onboarding.yaml
    when: {age_days_below: 7}
  - profile: usage.yaml
"""
    return parse_profile_set(text, base_dir=tmp_path)


def test_backfill_profile_set_switches_profile_with_age(store, tmp_path):
    profile_set = _age_set(tmp_path)

    backfill(store, profile_set, START, START + dt.timedelta(days=3))

    scores = store.table("scores").to_pandas()
    scores["as_of"] = pd.to_datetime(scores["as_of"]).dt.strftime("%Y-%m-%d")
    names = scores.set_index(["account_id", "as_of"])["profile_name"].to_dict()
    # b was created at 2024-02-25 09:00, so it is under 7 days old at the end of
    # 03-01 (5.6 days) and 03-02 (6.6 days) and at least 7 days old after that.
    assert names[("b", "2024-03-01")] == "onboarding"
    assert names[("b", "2024-03-02")] == "onboarding"
    assert names[("b", "2024-03-03")] == "usage"
    assert names[("b", "2024-03-04")] == "usage"
    assert {names[("a", day)] for day in ("2024-03-01", "2024-03-04")} == {"usage"}
    hashes = scores.set_index("profile_name")["profile_hash"].to_dict()
    assert hashes["onboarding"] == profile_set.profile("onboarding").hash
    assert hashes["usage"] == profile_set.profile("usage").hash


def test_score_snapshot_profile_set_stores_each_profile(store, tmp_path):
    profile_set = _age_set(tmp_path)

    run = score_snapshot(store, profile_set, START)

    scores = store.table("scores").to_pandas().set_index("account_id")
    assert scores.loc["b", "profile_name"] == "onboarding"
    assert scores.loc["a", "profile_name"] == "usage"
    assert scores.loc["c", "profile_name"] == "usage"
    profiles = store.table("profiles").to_pandas()
    assert sorted(profiles["profile_name"]) == ["onboarding", "usage"]
    texts = profiles.set_index("profile_name")["text"].to_dict()
    assert texts["onboarding"] == profile_set.profile("onboarding").text
    assert list(run.result.scores["profile"]) == ["usage", "onboarding", "usage"]


def test_score_snapshot_set_of_one_stores_profile_hash(store):
    profile = parse_profile(PROFILE)
    profile_set = parse_profile_set(PROFILE)

    run = score_snapshot(store, profile_set, START)

    assert run.profile == profile
    hashes = set(store.table("scores").to_pandas()["profile_hash"])
    assert hashes == {profile.hash}
