"""Event metrics on the real CDNOW purchase log, checked against pandas.

CDNOW_sample.txt contains 6,919 purchases by 2,357 customers of an online music store,
1997-01-01 to 1998-06-30. The first 39 weeks (273 days, to 1997-09-30) are the usual
calibration period in the customer-base analysis literature.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa

from healthscore.demo import DATA_DIR
from healthscore.metrics import compute_metrics
from healthscore.store import TABLES

CDNOW_SAMPLE = DATA_DIR / "cdnow" / "CDNOW_sample.txt"
AS_OF = dt.date(1997, 9, 30)


def read_cdnow() -> pd.DataFrame:
    purchases = pd.read_csv(
        CDNOW_SAMPLE,
        sep=r"\s+",
        header=None,
        names=["master_id", "sample_id", "date", "cds", "dollars"],
        dtype={"master_id": str, "sample_id": str, "date": str},
    )
    purchases["occurred_at"] = pd.to_datetime(purchases["date"], format="%Y%m%d")
    purchases["occurred_at"] = purchases["occurred_at"].dt.tz_localize("UTC")
    return purchases


def load_cdnow(store, purchases: pd.DataFrame) -> None:
    account_ids = sorted(purchases["master_id"].unique())
    accounts = pa.table(
        {
            "account_id": account_ids,
            "segment": ["cdnow"] * len(account_ids),
            "load_id": ["cdnow"] * len(account_ids),
        }
    )
    events = pa.table(
        {
            "event_key": [f"cdnow-{i}" for i in range(len(purchases))],
            "account_id": purchases["master_id"].tolist(),
            "user_id": purchases["master_id"].tolist(),
            "event_name": ["purchase"] * len(purchases),
            "occurred_at": pa.array(
                purchases["occurred_at"].dt.to_pydatetime().tolist(),
                pa.timestamp("us", tz="UTC"),
            ),
            "value": purchases["dollars"].astype(float).tolist(),
            "load_id": ["cdnow"] * len(purchases),
        }
    )
    store.insert("accounts", _with_schema(accounts, "accounts"))
    store.insert("events", _with_schema(events, "events"))


def _with_schema(data: pa.Table, name: str) -> pa.Table:
    schema = TABLES[name].to_pyarrow()
    columns = [
        data.column(field.name)
        if field.name in data.column_names
        else pa.nulls(data.num_rows, field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def pandas_reference(purchases: pd.DataFrame) -> pd.DataFrame:
    period_end = pd.Timestamp(AS_OF + dt.timedelta(days=1), tz="UTC")
    known = purchases[purchases["occurred_at"] < period_end]
    in_window = known[known["occurred_at"] >= period_end - pd.Timedelta(days=273)]
    counts = in_window.groupby("master_id").size().astype("float64")
    last = known.groupby("master_id")["occurred_at"].max()
    return pd.DataFrame(
        {
            "event_count_273d": counts,
            "days_since_last_event": (period_end - last) / pd.Timedelta(days=1),
        }
    )


def test_cdnow_event_metrics_match_pandas(store):
    purchases = read_cdnow()
    load_cdnow(store, purchases)
    expected = pandas_reference(purchases)

    result = compute_metrics(
        store, AS_OF, ["event_count_273d", "days_since_last_event"]
    ).set_index("account_id")

    assert len(result) == 2_357
    assert (
        result["event_count_273d"].sum()
        == (purchases["occurred_at"] < pd.Timestamp("1997-10-01", tz="UTC")).sum()
    )
    assert result["days_since_last_event"].notna().all()
    pd.testing.assert_frame_equal(
        result[["event_count_273d", "days_since_last_event"]],
        expected.loc[result.index],
        check_names=False,
        check_index_type=False,
    )
