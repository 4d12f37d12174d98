"""Three implementations of the same scores: healthscore, bare DuckDB SQL and pandas.

All three score the event measures of the shipped saas-default profile (its
engagement and adoption components). The feedback and support components are left
out, so the SQL floor is one query over one source table. Each function takes the
prepared store or Parquet files and an as-of date, and returns a data frame of
``account_id`` and ``score`` sorted by ``account_id``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml

from healthscore.metrics import compute_metrics
from healthscore.profiles import DEFAULT_PROFILE
from healthscore.scoring import HealthProfile, parse_profile, score_accounts
from healthscore.store import Store

__all__ = [
    "EVENT_COMPONENTS",
    "compare_scores",
    "event_profile",
    "score_with_healthscore",
    "score_with_pandas",
    "score_with_sql",
]

EVENT_COMPONENTS = ("engagement", "adoption")

_SECONDS_PER_DAY = 86_400
_DAU_MAU_DAYS = 30
_WINDOW_DAYS = 30


def event_profile() -> HealthProfile:
    """Return saas-default restricted to its event components, weights unchanged."""
    raw = yaml.safe_load(DEFAULT_PROFILE.read_text(encoding="utf-8"))
    raw["name"] = "saas-default-events"
    raw["components"] = [c for c in raw["components"] if c["name"] in EVENT_COMPONENTS]
    return parse_profile(yaml.safe_dump(raw, sort_keys=False))


def score_with_healthscore(store_path: Path, as_of: dt.date) -> pd.DataFrame:
    """Score through compute_metrics and score_accounts, the library's two calls."""
    profile = event_profile()
    with Store.open(store_path, create=False) as store:
        metrics = compute_metrics(store, as_of, profile.metrics)
    scores = score_accounts(metrics, profile).scores
    return scores[["account_id", "score"]]


def score_with_sql(store_path: Path, as_of: dt.date) -> pd.DataFrame:
    """Score with one hand-written DuckDB query over the store's accounts and events."""
    with duckdb.connect(str(store_path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(_scores_sql(event_profile(), as_of)).df()


def _scores_sql(profile: HealthProfile, as_of: dt.date) -> str:
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    end_ts = f"TIMESTAMPTZ '{end.isoformat()}'"
    w30 = f"TIMESTAMPTZ '{(end - dt.timedelta(days=_WINDOW_DAYS)).isoformat()}'"
    w60 = f"TIMESTAMPTZ '{(end - dt.timedelta(days=2 * _WINDOW_DAYS)).isoformat()}'"
    weights = profile.nominal_weights()
    points = [
        "CASE WHEN active_days IS NULL THEN NULL WHEN active_days >= 15 THEN 100.0 "
        "WHEN active_days >= 6 THEN 60.0 ELSE 0.0 END",
        "CASE WHEN days_since IS NULL THEN NULL WHEN days_since <= 3 THEN 100.0 "
        "WHEN days_since <= 14 THEN 60.0 ELSE 0.0 END",
        _linear_sql("dau_mau", 0.05, 0.5),
        _linear_sql("trend", 0.5, 1.1),
        _percentile_sql("features"),
        _percentile_sql("users"),
    ]
    coverage = " + ".join(
        f"CASE WHEN p{j} IS NULL THEN 0.0 ELSE {w!r} END" for j, w in enumerate(weights)
    )
    total = " + ".join(
        f"coalesce(p{j} * ({w!r} / coverage), 0.0)" for j, w in enumerate(weights)
    )
    floor = profile.min_coverage - 1e-9
    return f"""
WITH scope AS (
    SELECT account_id, segment FROM accounts
    WHERE (created_at IS NULL OR created_at < {end_ts})
      AND (churned_at IS NULL OR churned_at >= {end_ts})
), ev AS (
    SELECT account_id, user_id, feature, occurred_at,
           CAST(floor(epoch(occurred_at)) AS BIGINT) AS sec
    FROM events WHERE occurred_at < {end_ts}
), agg AS (
    SELECT account_id,
        count(DISTINCT sec // {_SECONDS_PER_DAY}) FILTER (occurred_at >= {w30})
            AS active_days,
        max(sec) AS last_sec,
        count(DISTINCT user_id) FILTER (occurred_at >= {w30}) AS users,
        count(DISTINCT feature) FILTER (occurred_at >= {w30}) AS features,
        count(DISTINCT struct_pack(u := user_id, d := sec // {_SECONDS_PER_DAY}))
            FILTER (occurred_at >= {w30} AND user_id IS NOT NULL) AS user_days,
        count(*) FILTER (occurred_at >= {w30}) AS recent,
        count(*) FILTER (occurred_at >= {w60} AND occurred_at < {w30}) AS earlier
    FROM ev GROUP BY account_id
), metrics AS (
    SELECT s.account_id, s.segment,
        CAST(a.active_days AS DOUBLE) AS active_days,
        ({int(end.timestamp())} - a.last_sec) / {_SECONDS_PER_DAY}.0 AS days_since,
        CASE WHEN a.users > 0
             THEN a.user_days / {_DAU_MAU_DAYS}.0 / a.users END AS dau_mau,
        CASE WHEN a.earlier > 0 THEN a.recent / a.earlier::DOUBLE END AS trend,
        CAST(a.features AS DOUBLE) AS features,
        CAST(a.users AS DOUBLE) AS users
    FROM scope s LEFT JOIN agg a USING (account_id)
), ranked AS (
    SELECT *,
        {_rank_sql("features")}, {_rank_sql("users")}
    FROM metrics
), pointed AS (
    SELECT account_id, {", ".join(f"{p} AS p{j}" for j, p in enumerate(points))}
    FROM ranked
), covered AS (
    SELECT *, {coverage} AS coverage FROM pointed
)
SELECT account_id,
    CASE WHEN coverage > 0 AND coverage >= {floor!r}
         THEN greatest(0.0, least(100.0, {total})) END AS score
FROM covered ORDER BY account_id
"""


def _linear_sql(column: str, worst: float, best: float) -> str:
    scaled = f"100.0 * ({column} - {worst!r}::DOUBLE) / {best - worst!r}::DOUBLE"
    # greatest and least skip NULL arguments in DuckDB, so a missing value needs
    # its own branch.
    clamped = f"greatest(0.0, least(100.0, {scaled}))"
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE {clamped} END"


def _rank_sql(column: str) -> str:
    """Average rank within the segment (ties share it) and the segment's count."""
    peers = f"PARTITION BY segment ORDER BY {column} NULLS LAST"
    ties = f"PARTITION BY segment, {column}"
    return (
        f"rank() OVER ({peers}) + (count(*) OVER ({ties}) - 1) / 2.0 AS {column}_rank, "
        f"count({column}) OVER (PARTITION BY segment) AS {column}_peers"
    )


def _percentile_sql(column: str) -> str:
    rank, peers = f"{column}_rank", f"{column}_peers"
    return (
        f"CASE WHEN {column} IS NULL OR {peers} < 10 THEN NULL "
        f"WHEN {peers} > 1 THEN 100.0 * ({rank} - 1) / ({peers} - 1) ELSE 50.0 END"
    )


def score_with_pandas(
    accounts_path: Path, events_path: Path, as_of: dt.date
) -> pd.DataFrame:
    """Score with vectorised pandas over the Parquet files the store was built from."""
    end = pd.Timestamp(as_of + dt.timedelta(days=1), tz="UTC")
    accounts = pd.read_parquet(
        accounts_path, columns=["account_id", "segment", "created_at", "churned_at"]
    )
    events = pd.read_parquet(
        events_path,
        columns=["account_id", "user_id", "feature", "occurred_at"],
        filters=[("occurred_at", "<", end)],
    )
    metrics = _pandas_metrics(_in_scope(accounts, end), events, end)
    return _pandas_scores(metrics, event_profile())


def _in_scope(accounts: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    created = accounts["created_at"].isna() | (accounts["created_at"] < end)
    not_churned = accounts["churned_at"].isna() | (accounts["churned_at"] >= end)
    return accounts.loc[created & not_churned, ["account_id", "segment"]]


def _pandas_metrics(
    scope: pd.DataFrame, events: pd.DataFrame, end: pd.Timestamp
) -> pd.DataFrame:
    epoch = pd.Timestamp(0, tz="UTC")
    seconds = (events["occurred_at"] - epoch) // pd.Timedelta(seconds=1)
    events = events.assign(sec=seconds, day=seconds // _SECONDS_PER_DAY)
    w30 = end - pd.Timedelta(days=_WINDOW_DAYS)
    w60 = end - pd.Timedelta(days=2 * _WINDOW_DAYS)

    recent = events[events["occurred_at"] >= w30]
    earlier = events[(events["occurred_at"] >= w60) & (events["occurred_at"] < w30)]
    by_account = recent.groupby("account_id")
    user_days = (
        recent.dropna(subset=["user_id"])
        .drop_duplicates(["account_id", "user_id", "day"])
        .groupby("account_id")
        .size()
    )
    per_account = pd.DataFrame({"last_sec": events.groupby("account_id")["sec"].max()})
    counts = {
        "active_days": by_account["day"].nunique(),
        "users": by_account["user_id"].nunique(),
        "features": by_account["feature"].nunique(),
        "recent": by_account.size(),
        "earlier": earlier.groupby("account_id").size(),
        "user_days": user_days,
    }
    for name, values in counts.items():
        per_account[name] = values.reindex(per_account.index, fill_value=0)
    table = scope.merge(per_account, left_on="account_id", right_index=True, how="left")
    return _finish_metrics(table, int(end.timestamp()))


def _finish_metrics(table: pd.DataFrame, end_seconds: int) -> pd.DataFrame:
    users = table["users"].astype("float64")
    earlier = table["earlier"].astype("float64")
    return pd.DataFrame(
        {
            "account_id": table["account_id"],
            "segment": table["segment"],
            "active_days": table["active_days"].astype("float64"),
            "days_since": (end_seconds - table["last_sec"]) / _SECONDS_PER_DAY,
            "dau_mau": (table["user_days"] / _DAU_MAU_DAYS / users).where(users > 0),
            "trend": (table["recent"] / earlier).where(earlier > 0),
            "features": table["features"].astype("float64"),
            "users": users,
        }
    )


def _pandas_scores(metrics: pd.DataFrame, profile: HealthProfile) -> pd.DataFrame:
    points = pd.DataFrame(
        {
            "active_days": _thresholds(metrics["active_days"], 15, 6, higher=True),
            "days_since": _thresholds(metrics["days_since"], 3, 14, higher=False),
            "dau_mau": _linear(metrics["dau_mau"], 0.05, 0.5),
            "trend": _linear(metrics["trend"], 0.5, 1.1),
            "features": _percentile(metrics["features"], metrics["segment"]),
            "users": _percentile(metrics["users"], metrics["segment"]),
        }
    )
    weights = np.array(profile.nominal_weights())
    present = points.notna().to_numpy()
    coverage = (present * weights).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        contributions = points.to_numpy() * (weights / coverage[:, None])
    score = np.clip(np.nansum(contributions, axis=1), 0.0, 100.0)
    known = (coverage > 0) & (coverage >= profile.min_coverage - 1e-9)
    result = pd.DataFrame(
        {"account_id": metrics["account_id"], "score": np.where(known, score, np.nan)}
    )
    return result.sort_values("account_id").reset_index(drop=True)


def _thresholds(
    values: pd.Series, good: float, average: float, *, higher: bool
) -> pd.Series:
    is_good = values >= good if higher else values <= good
    is_average = values >= average if higher else values <= average
    points = np.select([is_good, is_average], [100.0, 60.0], 0.0)
    return pd.Series(points, index=values.index).where(values.notna())


def _linear(values: pd.Series, worst: float, best: float) -> pd.Series:
    return (100.0 * (values - worst) / (best - worst)).clip(0.0, 100.0)


def _percentile(
    values: pd.Series, segments: pd.Series, min_peers: int = 10
) -> pd.Series:
    groups = values.groupby(segments.fillna("\0none"))
    ranks = groups.rank(method="average")
    peers = groups.transform("count")
    percentile = (100.0 * (ranks - 1) / (peers - 1)).where(peers > 1, 50.0)
    return percentile.where(values.notna() & (peers >= min_peers))


def compare_scores(
    expected: pd.DataFrame, actual: pd.DataFrame, tolerance: float = 1e-9
) -> dict[str, float | int]:
    """Compare two score frames by account and return the worst difference.

    Returns
    -------
    dict
        ``accounts`` compared, ``max_abs_diff`` between scores both give,
        ``missing_mismatch`` (accounts where one is NaN and the other is not) and
        ``id_mismatch`` (accounts only one frame has).
    """
    left = expected.set_index("account_id")["score"].astype("float64")
    right = actual.set_index("account_id")["score"].astype("float64")
    ids = left.index.symmetric_difference(right.index)
    common = left.index.intersection(right.index)
    a, b = left[common].to_numpy(), right[common].to_numpy()
    both = ~np.isnan(a) & ~np.isnan(b)
    diff = float(np.max(np.abs(a[both] - b[both]), initial=0.0))
    return {
        "accounts": len(common),
        "max_abs_diff": diff,
        "missing_mismatch": int((np.isnan(a) != np.isnan(b)).sum()),
        "id_mismatch": len(ids),
        "tolerance": tolerance,
    }
