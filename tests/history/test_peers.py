from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.stats import percentileofscore

from healthscore.history.peers import (
    SEGMENT_COLUMNS,
    peer_percentiles,
    segment_table,
)
from healthscore.store import Store

AS_OF = dt.date(2024, 3, 31)
UTC = dt.UTC


def _accounts() -> pa.Table:
    rows = [
        # account_id, segment, arr, churned, churned_at
        ("A1", "SMB", 100.0, False, None),
        ("A2", "SMB", 200.0, True, dt.datetime(2024, 4, 10, tzinfo=UTC)),
        # Churned during the as-of day itself, so not after it.
        ("A3", "SMB", 300.0, True, dt.datetime(2024, 3, 31, 12, tzinfo=UTC)),
        ("A4", "Enterprise", 1000.0, None, None),
        ("A5", "Enterprise", 2000.0, False, None),
        # Churned at an unknown time, which counts as churned.
        ("A6", None, None, True, None),
    ]
    columns = list(zip(*rows, strict=True))
    return pa.table(
        {
            "account_id": list(columns[0]),
            "segment": list(columns[1]),
            "arr": list(columns[2]),
            "churned": list(columns[3]),
            "churned_at": pa.array(columns[4], pa.timestamp("us", tz="UTC")),
            "load_id": ["load"] * len(rows),
        }
    )


def _scores(run_id: str, as_of: dt.date, rows: list[tuple]) -> pa.Table:
    ids, scores, bands = (list(c) for c in zip(*rows, strict=True))
    count = len(rows)
    return pa.table(
        {
            "run_id": [run_id] * count,
            "as_of": [as_of] * count,
            "account_id": ids,
            "profile_name": ["hand"] * count,
            "profile_hash": ["h"] * count,
            "score": scores,
            "band": bands,
            "coverage": [1.0] * count,
            "computed_at": [dt.datetime(2024, 4, 1, tzinfo=UTC)] * count,
        }
    )


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "peers.duckdb") as opened:
        opened.insert("accounts", _accounts())
        opened.insert(
            "scores", _scores("old", dt.date(2024, 2, 29), [("A1", 90.0, "Good")])
        )
        latest = [
            ("A1", 30.0, "Poor"),
            ("A2", 50.0, "Average"),
            ("A3", None, "Unknown"),
            ("A4", 80.0, "Good"),
            ("A5", 20.0, "Poor"),
            ("A6", 60.0, "Average"),
        ]
        opened.insert("scores", _scores("new", AS_OF, latest))
        yield opened


def test_segment_table_hand_calculation(store):
    table = segment_table(store).set_index("segment", drop=False)

    assert list(table.columns) == list(SEGMENT_COLUMNS)
    assert table["segment"].tolist()[:2] == ["Enterprise", "SMB"]
    assert pd.isna(table["segment"].iloc[2])

    smb = table.loc["SMB"]
    assert smb["accounts"] == 3
    assert smb["scored"] == 2
    assert smb["arr"] == 600.0
    assert smb["average_score"] == 40.0
    assert smb["poor"] == 1
    assert smb["share_poor"] == 0.5
    assert smb["churn_known"] == 3
    assert smb["churned"] == 1
    assert smb["churn_rate"] == pytest.approx(1 / 3)

    enterprise = table.loc["Enterprise"]
    assert enterprise["average_score"] == 50.0
    assert enterprise["churn_known"] == 1
    assert enterprise["churn_rate"] == 0.0

    unsegmented = table.iloc[2]
    assert unsegmented["accounts"] == 1
    assert unsegmented["churned"] == 1
    assert unsegmented["churn_rate"] == 1.0


def test_segment_table_matches_pandas(store):
    table = segment_table(store).set_index("segment")
    scores = store.table("scores").to_pandas()
    newest = scores[scores["run_id"] == "new"]
    accounts = store.table("accounts").to_pandas()
    joined = newest.merge(accounts, on="account_id")

    expected = joined.groupby("segment").agg(
        accounts=("account_id", "size"),
        arr=("arr", "sum"),
        average_score=("score", "mean"),
    )
    for segment, row in expected.iterrows():
        assert table.loc[segment, "accounts"] == row["accounts"]
        assert table.loc[segment, "arr"] == row["arr"]
        assert table.loc[segment, "average_score"] == pytest.approx(
            row["average_score"]
        )


def test_segment_table_as_of_date(store):
    table = segment_table(store, as_of=dt.date(2024, 2, 29))

    assert table["segment"].tolist() == ["SMB"]
    assert table["average_score"].tolist() == [90.0]
    # A2 churned later too, but only A1 was scored on that date.
    assert table["churned"].tolist() == [0]


def test_segment_table_empty_store(tmp_path):
    with Store.open(tmp_path / "empty.duckdb") as opened:
        table = segment_table(opened)

    assert table.empty
    assert list(table.columns) == list(SEGMENT_COLUMNS)


def test_peer_percentiles_match_scipy():
    rng = np.random.default_rng(3)
    count = 300
    frame = pd.DataFrame(
        {
            "segment": rng.choice(np.array(["SMB", "Enterprise", None]), count),
            "score": np.round(rng.uniform(0, 100, count) / 5) * 5,
        }
    )
    frame.loc[rng.random(count) < 0.1, "score"] = np.nan

    result = peer_percentiles(frame)

    for i, row in frame.iterrows():
        if math.isnan(row["score"]):
            assert math.isnan(result[i])
            continue
        if pd.isna(row["segment"]):
            same = frame["segment"].isna()
        else:
            same = frame["segment"] == row["segment"]
        peers = frame.loc[same, "score"].dropna()
        expected = percentileofscore(peers, row["score"], kind="mean")
        assert result[i] == pytest.approx(expected)


def test_peer_percentiles_by_hand():
    frame = pd.DataFrame(
        {"segment": ["a", "a", "a", "a", "b"], "score": [10.0, 20.0, 20.0, 40.0, 5.0]}
    )

    result = peer_percentiles(frame)

    # 10: 0 below of 4 plus half of itself, 12.5. 20: 1 below and 2 equal, 50.
    assert result.tolist() == [12.5, 50.0, 50.0, 87.5, 50.0]
