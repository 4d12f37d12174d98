import datetime as dt
import math

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from healthscore.exceptions import ConfigError, NotFoundError
from healthscore.history import explain_account, latest_scores, score_snapshot
from healthscore.history.human import (
    active_inputs,
    active_overrides,
    clear_input,
    input_history,
    list_inputs,
    set_override,
    set_sentiment,
    upgrade_store,
)
from healthscore.metrics import compute_metrics
from healthscore.scoring import parse_profile
from healthscore.store import Store

UTC = dt.UTC

# Two equal components: seats on 0-100, and the CSM sentiment on 1-5.
PROFILE = """
name: csm
components:
  - name: size
    weight: 1
    measures:
      - metric: seats
        linear: {worst: 0, best: 100}
  - name: relationship
    weight: 1
    measures:
      - metric: csm_sentiment
        linear: {worst: 1, best: 5}
"""

JAN_10_NOON = dt.datetime(2024, 1, 10, 12, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "s.duckdb") as opened:
        opened.insert(
            "accounts",
            pa.table(
                {
                    "account_id": ["a", "b"],
                    "seats": [50, 80],
                    "load_id": ["l", "l"],
                }
            ),
        )
        yield opened


def _sentiment(store, value, at=JAN_10_NOON, expires=dt.date(2024, 1, 20), **kw):
    return set_sentiment(
        store, "a", value, author="ann", reason="QBR", expires=expires, at=at, **kw
    )


def test_set_sentiment_stores_input_and_audit_row(store):
    stored = _sentiment(store, " Amber ")

    inputs = store.table("human_inputs").to_pandas()
    audit = store.table("human_input_audit").to_pandas()
    assert inputs["input_id"].tolist() == [stored.input_id]
    assert inputs["value"].tolist() == ["amber"]
    assert inputs["sentiment"].tolist() == [3.0]
    assert inputs["expires_at"].tolist() == [dt.datetime(2024, 1, 20, tzinfo=UTC)]
    assert audit["action"].tolist() == ["set"]
    assert audit["author"].tolist() == ["ann"]
    assert audit["changed_at"].tolist() == [JAN_10_NOON]
    assert audit["old_value"].isna().all()
    assert audit["new_value"].tolist() == ["amber"]


@pytest.mark.parametrize(
    ("value", "number"),
    [(1, 1.0), ("5", 5.0), (4.0, 4.0), ("RED", 1.0), ("green", 5.0)],
)
def test_set_sentiment_accepts_numbers_and_words(store, value, number):
    _sentiment(store, value)

    assert store.table("human_inputs").to_pandas()["sentiment"].tolist() == [number]


@pytest.mark.parametrize("value", [0, 6, 2.5, "purple", "", True, None])
def test_set_sentiment_invalid_value_raises(store, value):
    with pytest.raises(ConfigError, match=r"expected a whole number from 1 \(worst\)"):
        _sentiment(store, value)


def test_set_sentiment_unknown_account_raises(store):
    with pytest.raises(NotFoundError, match="account 'zz' not found"):
        set_sentiment(
            store, "zz", 3, author="ann", reason="r", expires=dt.date(2030, 1, 1)
        )


@pytest.mark.parametrize(("field", "value"), [("author", " "), ("reason", "")])
def test_set_sentiment_blank_text_raises(store, field, value):
    arguments = {"author": "ann", "reason": "QBR", field: value}

    with pytest.raises(ConfigError, match=f"{field} .* is empty"):
        set_sentiment(store, "a", 3, expires=dt.date(2030, 1, 1), **arguments)


def test_set_sentiment_expiry_in_past_raises(store):
    with pytest.raises(ConfigError, match="expiry '2020-01-01' is not after now"):
        set_sentiment(
            store, "a", 3, author="ann", reason="r", expires=dt.date(2020, 1, 1)
        )


def test_set_sentiment_expiry_before_entry_raises(store):
    with pytest.raises(ConfigError, match="is not after the entry time"):
        _sentiment(store, 3, expires=dt.date(2024, 1, 10))


def test_set_sentiment_naive_or_future_time_raises(store):
    with pytest.raises(ConfigError, match="not a timezone-aware datetime"):
        _sentiment(store, 3, at=dt.datetime(2024, 1, 10))
    future = dt.datetime.now(UTC) + dt.timedelta(days=1)
    with pytest.raises(ConfigError, match="is in the future"):
        _sentiment(store, 3, at=future, expires=dt.date(2100, 1, 1))


def test_set_override_score_out_of_range_raises(store):
    for score in (-1, 100.5, math.nan, True):
        with pytest.raises(ConfigError, match="expected a number from 0 to 100"):
            set_override(
                store, "a", score=score, author="a", reason="r", expires=dt.date.max
            )


def test_set_override_needs_one_of_score_and_band(store):
    with pytest.raises(ConfigError, match="give exactly one of score and band"):
        set_override(store, "a", author="a", reason="r", expires=dt.date.max)
    with pytest.raises(ConfigError, match="give exactly one of score and band"):
        set_override(
            store,
            "a",
            score=5,
            band="Poor",
            author="a",
            reason="r",
            expires=dt.date.max,
        )


def test_set_override_band_checked_against_stored_profiles(store):
    score_snapshot(store, parse_profile(PROFILE), dt.date(2024, 1, 31))

    with pytest.raises(ConfigError, match=r"expected one of \['Good', 'Average'"):
        set_override(
            store, "a", band="Terrible", author="a", reason="r", expires=dt.date.max
        )
    stored = set_override(
        store, "a", band="average", author="a", reason="r", expires=dt.date.max
    )
    assert stored.value == "band Average"


def test_set_override_unknown_band_name_raises(store):
    with pytest.raises(ConfigError, match="band of accounts without a score"):
        set_override(
            store, "a", band="unknown", author="a", reason="r", expires=dt.date.max
        )


def test_active_inputs_expiry_boundaries(store):
    # Entered at noon on Jan 10, expires at the start of Jan 20.
    stored = _sentiment(store, 4)

    def counted(day):
        return active_inputs(store, dt.date(2024, 1, day))["input_id"].tolist()

    assert counted(9) == []
    assert counted(10) == [stored.input_id]
    assert counted(19) == [stored.input_id]
    assert counted(20) == []


def test_set_sentiment_replaces_counting_one(store):
    first = _sentiment(store, "green", expires=dt.date(2024, 3, 1))
    second = _sentiment(store, 2, at=dt.datetime(2024, 1, 15, tzinfo=UTC))

    assert second.replaced_input_id == first.input_id
    assert active_inputs(store, dt.date(2024, 1, 14))["value"].tolist() == ["green"]
    assert active_inputs(store, dt.date(2024, 1, 15))["value"].tolist() == ["2"]
    # The replaced sentiment does not come back when its replacement expires.
    assert active_inputs(store, dt.date(2024, 1, 25)).empty
    audit = store.table("human_input_audit").order_by("changed_at").to_pandas()
    assert audit["old_value"].tolist()[1] == "green"
    assert audit["new_value"].tolist()[1] == "2"
    assert audit["ended_input_id"].tolist()[1] == first.input_id


def test_clear_input_writes_audit_and_keeps_history(store):
    stored = _sentiment(store, 4)
    cleared_at = dt.datetime(2024, 1, 15, 9, tzinfo=UTC)

    clear_input(store, stored.input_id, author="bob", reason="wrong", at=cleared_at)

    audit = store.table("human_input_audit").order_by("changed_at").to_pandas()
    assert audit["action"].tolist() == ["set", "clear"]
    assert audit["author"].tolist() == ["ann", "bob"]
    assert audit["reason"].tolist() == ["QBR", "wrong"]
    assert audit["changed_at"].tolist()[1] == cleared_at
    assert audit["old_value"].tolist()[1] == "4"
    assert audit["new_value"].isna().tolist() == [False, True]
    assert store.table("human_inputs").count().execute() == 1
    assert len(active_inputs(store, dt.date(2024, 1, 14))) == 1
    assert active_inputs(store, dt.date(2024, 1, 15)).empty


def test_clear_input_twice_raises(store):
    stored = _sentiment(store, 4)
    at = dt.datetime(2024, 1, 15, tzinfo=UTC)
    clear_input(store, stored.input_id, author="bob", reason="r", at=at)

    with pytest.raises(ConfigError, match="already ended at 2024-01-15"):
        clear_input(store, stored.input_id, author="bob", reason="r")


def test_clear_input_expired_raises(store):
    stored = _sentiment(store, 4)

    with pytest.raises(ConfigError, match="expired at 2024-01-20"):
        clear_input(store, stored.input_id, author="bob", reason="r")


def test_clear_input_unknown_or_other_kind_raises(store):
    stored = _sentiment(store, 4, expires=dt.date(2100, 1, 1))

    with pytest.raises(NotFoundError, match="input 'nope' not found"):
        clear_input(store, "nope", author="bob", reason="r")
    with pytest.raises(ConfigError, match="is of kind 'sentiment', not 'override'"):
        clear_input(store, stored.input_id, author="bob", reason="r", kind="override")


def test_input_history_lists_set_clear_and_expiry(store):
    expired = _sentiment(store, "red")
    override = set_override(
        store, "a", score=30, author="cy", reason="risk", expires=dt.date(2100, 1, 1)
    )
    clear_input(store, override.input_id, author="dee", reason="resolved")

    history = input_history(store, "a")

    assert history["action"].tolist() == ["set", "expire", "set", "clear"]
    assert history["input_id"].tolist() == [
        expired.input_id,
        expired.input_id,
        override.input_id,
        override.input_id,
    ]
    assert history["changed_at"].tolist()[1] == dt.datetime(2024, 1, 20, tzinfo=UTC)
    assert history["author"].tolist() == ["ann", None, "cy", "dee"]
    assert history["new_value"].tolist()[2] == "score 30"


def test_input_history_unknown_account_raises(store):
    with pytest.raises(NotFoundError, match="account 'zz' not found"):
        input_history(store, "zz")


def test_list_inputs_status(store):
    expired = _sentiment(store, 4)
    cleared = set_override(
        store, "b", score=10, author="a", reason="r", expires=dt.date(2100, 1, 1)
    )
    clear_input(store, cleared.input_id, author="a", reason="r")
    active = set_override(
        store, "b", band="Poor", author="a", reason="r", expires=dt.date(2100, 1, 1)
    )

    every = list_inputs(store, include_ended=True).set_index("input_id")

    assert every.loc[expired.input_id, "status"] == "expired"
    assert every.loc[cleared.input_id, "status"] == "cleared"
    assert every.loc[active.input_id, "status"] == "active"
    assert list_inputs(store)["input_id"].tolist() == [active.input_id]
    assert list_inputs(store, account_id="a").empty


def test_csm_sentiment_metric_as_of(store):
    _sentiment(store, "amber")

    inside = compute_metrics(
        store, dt.date(2024, 1, 12), ["csm_sentiment", "csm_sentiment_rag"]
    )
    after = compute_metrics(store, dt.date(2024, 1, 20), ["csm_sentiment"])

    assert inside["csm_sentiment"].tolist()[0] == 3.0
    assert math.isnan(inside["csm_sentiment"].tolist()[1])
    assert inside["csm_sentiment_rag"].tolist() == ["amber", None]
    assert after["csm_sentiment"].isna().all()


def test_sentiment_measure_changes_score(store):
    profile = parse_profile(PROFILE)
    _sentiment(store, 4)

    run = score_snapshot(store, profile, dt.date(2024, 1, 15))

    scores = run.result.scores.set_index("account_id")
    # a: size 50 points and sentiment 4 of 1-5 is 75 points, half weight each.
    assert scores.loc["a", "score"] == pytest.approx(0.5 * 50 + 0.5 * 75)
    # b has no sentiment, so seats alone make its score.
    assert scores.loc["b", "score"] == pytest.approx(80)
    assert scores.loc["b", "coverage"] == pytest.approx(0.5)


def test_score_snapshot_stores_override(store):
    profile = parse_profile(PROFILE)
    set_override(
        store,
        "b",
        score=35,
        author="cy",
        reason="exec sponsor left",
        expires=dt.date(2024, 2, 1),
        at=JAN_10_NOON,
    )

    score_snapshot(store, profile, dt.date(2024, 1, 31))
    score_snapshot(store, profile, dt.date(2024, 2, 1))

    during = latest_scores(store, as_of=dt.date(2024, 1, 31)).set_index("account_id")
    assert during.loc["b", "score"] == 35
    assert during.loc["b", "band"] == "Poor"
    assert during.loc["b", "computed_score"] == pytest.approx(80)
    assert during.loc["b", "computed_band"] == "Good"
    assert during.loc["b", "override_author"] == "cy"
    assert during.loc["b", "override_reason"] == "exec sponsor left"
    assert pd.isna(during.loc["a", "override_id"])
    after = explain_account(store, "b", as_of=dt.date(2024, 2, 1)).score
    assert after["score"] == pytest.approx(80)
    assert pd.isna(after["override_id"])


def test_active_overrides_newest_per_account(store):
    set_override(
        store,
        "b",
        score=10,
        author="a",
        reason="r",
        expires=dt.date(2100, 1, 1),
        at=JAN_10_NOON,
    )
    newer = set_override(
        store, "b", band="Poor", author="a", reason="r", expires=dt.date(2100, 1, 1)
    )

    overrides = active_overrides(store, dt.datetime.now(UTC).date())

    assert overrides["input_id"].tolist() == [newer.input_id]
    assert overrides["override_band"].tolist() == ["Poor"]


def test_old_store_gets_scores_columns_on_open(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE scores (run_id VARCHAR NOT NULL, as_of DATE NOT NULL, "
            "account_id VARCHAR NOT NULL, profile_name VARCHAR NOT NULL, "
            "profile_hash VARCHAR NOT NULL, score DOUBLE, band VARCHAR NOT NULL, "
            "coverage DOUBLE NOT NULL, weakest_component VARCHAR, "
            "computed_at TIMESTAMPTZ NOT NULL)"
        )
        con.execute(
            "INSERT INTO scores VALUES ('old', DATE '2023-12-31', 'a', 'p', 'h', "
            "40, 'Average', 1, NULL, TIMESTAMPTZ '2024-01-01 00:00:00+00')"
        )
        # Every store healthscore wrote has its schema version.
        con.execute("CREATE TABLE schema_info (schema_version BIGINT NOT NULL)")
        con.execute("INSERT INTO schema_info VALUES (1)")

    with Store.open(path) as store:
        store.insert("accounts", pa.table({"account_id": ["a"], "load_id": ["l"]}))
        assert "override_id" in store.table("scores").columns

        score_snapshot(store, parse_profile(PROFILE), dt.date(2024, 1, 31))

        rows = store.table("scores").order_by("as_of").to_pandas()
        assert "override_id" in rows.columns
        assert rows["run_id"].tolist()[0] == "old"
        assert rows["override_id"].isna().all()
        assert upgrade_store(store) == []
