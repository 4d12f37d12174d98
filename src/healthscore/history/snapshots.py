"""Score snapshots: compute metrics as of a date, score them, store and read them.

Score tables are append-only. Each run gets a ``run_id``. A reader takes, per account,
the newest run of the newest as-of date, or of the date requested.

A run scores with one health profile or with a profile set. With a set, each account
gets its profile from :func:`~healthscore.scoring.assign_profiles` at the as-of date,
and its ``scores`` row records that profile's name and hash. The text of every member
profile goes to the ``profiles`` table.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from healthscore.exceptions import ConfigError, NotFoundError, ProfileError
from healthscore.history.human import apply_stored_overrides
from healthscore.metrics import (
    MetricSpec,
    available_metrics,
    compute_metrics,
    resolve_metric,
)
from healthscore.metrics.rollup import refresh_rollups, rollups_enabled
from healthscore.scoring import (
    HealthProfile,
    Measure,
    ProfileSet,
    ScoreResult,
    assign_profiles,
    parse_profile,
    score_accounts,
    score_profile_set,
)
from healthscore.store import TABLES, Store

__all__ = [
    "AccountExplanation",
    "stored_band_names",
    "ScoringRun",
    "explain_account",
    "latest_components",
    "latest_scores",
    "member_profiles",
    "scope_segments",
    "score_snapshot",
]

logger = logging.getLogger(__name__)

# DuckDB 1.5.6 inserts the record batches of an Arrow table on several threads, but
# one batch on one thread. On 2 cores, 579,198 score_measures rows took about 0.6 s
# in batches of this size and 1.1 s as one batch.
_INSERT_BATCH_ROWS = 131_072


@dataclass(frozen=True)
class ScoringRun:
    """The outcome of one scoring run.

    Attributes
    ----------
    run_id
        Identifier of the run in the score tables.
    as_of
        The date the metrics were computed as of.
    profile
        The profile used, or the profile set whose members scored the accounts.
        A set of one entry without a rule is stored as its profile.
    metrics
        The metric table that was scored.
    result
        Scores, component and measure details. With a profile set each table has a
        ``profile`` column after ``account_id`` with the account's profile name.
    computed_at
        When the run was stored (UTC).
    """

    run_id: str
    as_of: dt.date
    profile: HealthProfile | ProfileSet
    metrics: pd.DataFrame
    result: ScoreResult
    computed_at: dt.datetime


@dataclass(frozen=True)
class AccountExplanation:
    """One account's stored score with its components and measures."""

    score: pd.Series
    components: pd.DataFrame
    measures: pd.DataFrame


def _check_profile_metrics(store: Store, profile: HealthProfile) -> None:
    """Raise ProfileError listing every metric the store cannot compute or score.

    Linear, threshold and percentile schemes need a number metric. A category map
    accepts both kinds.
    """
    known = available_metrics(store)
    problems = []
    for i, component in enumerate(profile.components):
        for j, measure in enumerate(component.measures):
            field = f"components[{i}].measures[{j}]"
            problem = _metric_problem(measure, known)
            if problem is not None:
                suffix = "metric" if problem[0] == "metric" else measure.scheme.kind
                problems.append((f"{field}.{suffix}", problem[1]))

    if len(problems) == 1:
        field, message = problems[0]
        raise ProfileError(message, path=profile.source, field=field)
    if problems:
        raise ProfileError(
            f"found {len(problems)} problems with metrics. Fix each of them and "
            "score again:",
            path=profile.source,
            problems=problems,
        )


def _metric_problem(
    measure: Measure, known: dict[str, MetricSpec]
) -> tuple[str, str] | None:
    """Return ``(part, message)`` for a measure whose metric cannot be used."""
    try:
        spec = resolve_metric(measure.metric, known)
    except ConfigError as exc:
        return "metric", str(exc)
    scheme = measure.scheme.kind
    if spec.kind == "text" and scheme != "category":
        return (
            "scheme",
            f"metric {measure.metric!r} holds text, but the {scheme} scheme needs "
            "numbers. Map its values to points with a category scheme, or pick a "
            "number metric.",
        )
    return None


def score_snapshot(
    store: Store,
    profile: HealthProfile | ProfileSet,
    as_of: dt.date,
    *,
    metrics_store: Store | None = None,
) -> ScoringRun:
    """Score every account the profile applies to, as of ``as_of``, and store the run.

    Parameters
    ----------
    store
        The store to write the snapshot to, and to read inputs from unless
        ``metrics_store`` is given.
    profile
        The health profile to score with, or a profile set. A set assigns each
        account its profile by the set's rules at ``as_of``, see
        :func:`~healthscore.scoring.assign_profiles`, and an account that no entry
        takes is not scored.
    as_of
        Only data with a time up to the end of this UTC date is used. On a DuckDB
        store the daily event rollups are brought up to date first, see
        :func:`healthscore.metrics.rollup.refresh_rollups`.
    metrics_store
        The store to compute the metrics on, such as a Spark store from
        :mod:`healthscore.store.spark`. By default ``store``.

    Returns
    -------
    ScoringRun
        The run, with the scores that were stored.

    Raises
    ------
    ProfileError
        If a profile names a metric the store cannot compute.
    InputDataError
        If a profile set's rules read an account column of the wrong type.
    """
    source = store if metrics_store is None else metrics_store
    profile = single_profile(profile)
    check_profile_metrics(source, profile)
    if rollups_enabled() and source.backend.name == "duckdb":
        refresh_rollups(source)
    accounts = rule_accounts(source, profile)
    run = compute_run(
        source,
        profile,
        as_of,
        accounts=accounts,
        run_id=uuid.uuid4().hex,
        computed_at=dt.datetime.now(dt.UTC),
    )

    with store.transaction():
        store_profiles(store, profile, run.computed_at)
        _store_run(store, run)

    logger.info(
        "scored %d accounts as of %s with profile %s (%s), run %s",
        len(run.result.scores),
        as_of,
        profile.name,
        profile.hash[:12],
        run.run_id,
    )
    return run


def single_profile(profile: HealthProfile | ProfileSet) -> HealthProfile | ProfileSet:
    """Return the profile of a set of one entry without a rule, else ``profile``.

    Such a set scores exactly as its profile does, so its runs store the profile's
    hash, and a profile file gives the same runs as a set file wrapping it.
    """
    if isinstance(profile, ProfileSet) and len(profile.entries) == 1:
        entry = profile.entries[0]
        if entry.when is None:
            return entry.profile
    return profile


def member_profiles(profile: HealthProfile | ProfileSet) -> tuple[HealthProfile, ...]:
    """Return the distinct profiles of a set, or a single profile as a tuple of one."""
    if isinstance(profile, ProfileSet):
        return profile.profiles
    return (profile,)


def check_profile_metrics(store: Store, profile: HealthProfile | ProfileSet) -> None:
    """Raise ProfileError for the first member profile with an unusable metric."""
    for member in member_profiles(profile):
        _check_profile_metrics(store, member)


def rule_accounts(
    store: Store, profile: HealthProfile | ProfileSet
) -> pd.DataFrame | None:
    """Read the account columns that a profile set's rules read, None for a profile.

    ``accounts`` keeps only current values, so rules on segment, plan and ARR see
    today's values for any as-of date. Only the age rules depend on the date.
    """
    if not isinstance(profile, ProfileSet):
        return None
    columns = list(profile.account_columns)
    return store.table("accounts").select(*columns).to_pandas()


def scope_segments(profile: HealthProfile | ProfileSet) -> list[str] | None:
    """Return the segments some member applies to, or None if one applies to all."""
    segments: list[str] = []
    for member in member_profiles(profile):
        if member.applies_to_segments is None:
            return None
        segments.extend(member.applies_to_segments)
    return list(dict.fromkeys(segments))


def compute_run(
    source: Store,
    profile: HealthProfile | ProfileSet,
    as_of: dt.date,
    *,
    accounts: pd.DataFrame | None,
    run_id: str,
    computed_at: dt.datetime,
) -> ScoringRun:
    """Compute the metrics as of ``as_of`` on ``source`` and score them, unstored.

    ``accounts`` contains the rule columns of a profile set, from
    :func:`rule_accounts`.
    """
    metrics = compute_metrics(
        source, as_of, list(profile.metrics), segments=scope_segments(profile)
    )
    if isinstance(profile, ProfileSet):
        result = _score_with_set(metrics, profile, accounts, as_of)
    else:
        result = score_accounts(metrics, profile)
    result = apply_stored_overrides(source, result, profile, as_of)
    return ScoringRun(
        run_id=run_id,
        as_of=as_of,
        profile=profile,
        metrics=metrics,
        result=result,
        computed_at=computed_at,
    )


def _score_with_set(
    metrics: pd.DataFrame,
    profile_set: ProfileSet,
    accounts: pd.DataFrame | None,
    as_of: dt.date,
) -> ScoreResult:
    """Assign each metrics row its profile at ``as_of`` and score it with that one."""
    if accounts is None:
        accounts = metrics
    in_scope = metrics[["account_id"]].merge(
        accounts.drop(columns="segment", errors="ignore"), on="account_id", how="left"
    )
    in_scope.insert(1, "segment", metrics["segment"].to_numpy(object))
    assignments = assign_profiles(in_scope, profile_set, as_of)
    scored = score_profile_set(metrics, profile_set, assignments)
    return ScoreResult(
        scores=scored.scores, components=scored.components, measures=scored.measures
    )


def store_profiles(
    store: Store, profile: HealthProfile | ProfileSet, stored_at: dt.datetime
) -> None:
    """Store the text of each member profile that the ``profiles`` table lacks."""
    members = member_profiles(profile)
    profiles = store.table("profiles")
    hashes = [member.hash for member in members]
    known = profiles.filter(profiles.profile_hash.isin(hashes)).profile_hash
    stored = set(known.to_pyarrow().to_pylist())
    new = [member for member in members if member.hash not in stored]
    if not new:
        return
    rows = {
        "profile_hash": [member.hash for member in new],
        "profile_name": [member.name for member in new],
        "source": [None if m.source is None else str(m.source) for m in new],
        "text": [member.text for member in new],
        "stored_at": [stored_at] * len(new),
    }
    store.insert("profiles", pa.table(rows))


def _run_table(
    frame: pd.DataFrame, table: str, run: ScoringRun, **constants: object
) -> pa.Table:
    """Build the Arrow rows of a score table from ``frame`` and the run's columns.

    ``run_id``, ``as_of`` and ``constants`` fill their columns with one value.
    Other columns come from ``frame``, with NaN and None stored as null. A nullable
    column that ``frame`` lacks is all null.
    """
    schema = TABLES[table].to_pyarrow()
    constants = {"run_id": run.run_id, "as_of": run.as_of, **constants}
    columns = []
    for field in schema:
        if field.name in constants:
            value = pa.scalar(constants[field.name], type=field.type)
            columns.append(pa.repeat(value, len(frame)))
        elif field.nullable and field.name not in frame.columns:
            columns.append(pa.nulls(len(frame), type=field.type))
        else:
            columns.append(_arrow_column(frame[field.name], field.type))
    rows = pa.Table.from_arrays(columns, schema=schema)
    batches = rows.to_batches(max_chunksize=_INSERT_BATCH_ROWS)
    return pa.Table.from_batches(batches, schema=schema)


def _arrow_column(values: pd.Series, arrow_type: pa.DataType) -> pa.Array:
    if pa.types.is_floating(arrow_type):
        return pa.array(values.to_numpy(np.float64), type=arrow_type, from_pandas=True)
    return pa.array(values, type=arrow_type, from_pandas=True)


def _store_run(store: Store, run: ScoringRun) -> None:
    for table, rows in run_tables(run).items():
        store.insert(table, rows)


def run_tables(run: ScoringRun) -> dict[str, pa.Table]:
    """Build the Arrow rows of a run for each score table, keyed by table name."""
    result = run.result
    if isinstance(run.profile, ProfileSet):
        scores = _run_table(
            _with_profile_hashes(result.scores, run.profile),
            "scores",
            run,
            computed_at=run.computed_at,
        )
    else:
        scores = _run_table(
            result.scores,
            "scores",
            run,
            profile_name=run.profile.name,
            profile_hash=run.profile.hash,
            computed_at=run.computed_at,
        )
    return {
        "scores": scores,
        "score_components": _run_table(result.components, "score_components", run),
        "score_measures": _run_table(result.measures, "score_measures", run),
        "metric_snapshots": _metric_rows(run),
    }


def _with_profile_hashes(scores: pd.DataFrame, profile_set: ProfileSet) -> pd.DataFrame:
    """Add ``profile_name`` and ``profile_hash`` from each row's ``profile`` column."""
    hashes = {member.name: member.hash for member in profile_set.profiles}
    names = scores["profile"].astype(object)
    return scores.assign(profile_name=names, profile_hash=names.map(hashes))


def _metric_rows(run: ScoringRun) -> pa.Table:
    """Build the long-form metric rows: each metric's accounts in account order."""
    metrics = run.metrics
    names = [c for c in metrics.columns if c not in ("account_id", "segment")]
    numbers, texts = [], []
    for name in names:
        number, text = _metric_values(metrics[name])
        numbers.append(number)
        texts.append(text)

    long = pd.DataFrame(
        {
            "account_id": np.tile(metrics["account_id"].to_numpy(object), len(names)),
            "metric": np.repeat(np.array(names, dtype=object), len(metrics)),
            "number_value": _concat(numbers, np.float64),
            "text_value": _concat(texts, object),
        }
    )
    return _run_table(long, "metric_snapshots", run)


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def _metric_values(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Split one metric column into number values and text values.

    A float column contains numbers only. Elsewhere a value counts as a number when it
    is an int or a float but not a bool, and any other value is stored as text.
    """
    if pd.api.types.is_float_dtype(column.dtype):
        return column.to_numpy(np.float64), np.full(len(column), None, dtype=object)
    values = column.to_numpy(object)
    is_number = np.array(
        [
            isinstance(v, int | float | np.number) and not isinstance(v, bool)
            for v in values
        ],
        dtype=bool,
    )
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(np.float64)
    numbers = np.where(is_number, numbers, np.nan)
    texts = np.array(
        [
            None if n or _is_missing(v) else str(v)
            for v, n in zip(values, is_number, strict=True)
        ],
        dtype=object,
    )
    return numbers, texts


def _is_missing(value: object) -> bool:
    return bool(pd.isna(value))


def _newest_runs(
    store: Store, as_of: dt.date | None, segments: Sequence[str] | None
) -> ir.Table:
    scores = store.table("scores")
    if as_of is not None:
        scores = scores.filter(scores.as_of == as_of)
    if segments:
        accounts = store.table("accounts").select("account_id", "segment")
        accounts = accounts.filter(accounts.segment.isin(list(segments)))
        scores = scores.semi_join(accounts, "account_id")
    order = ibis.row_number().over(
        group_by=scores.account_id,
        order_by=[scores.as_of.desc(), scores.computed_at.desc()],
    )
    return scores.mutate(_rank=order).filter(ibis._["_rank"] == 0).drop("_rank")


def latest_scores(
    store: Store,
    *,
    as_of: dt.date | None = None,
    segments: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Return the newest stored score of each account, joined with its account row.

    Parameters
    ----------
    store
        The store to read.
    as_of
        Only snapshots of this date; by default each account's newest date.
    segments
        Only accounts in these segments.

    Returns
    -------
    pandas.DataFrame
        One row per account: the ``scores`` columns plus ``name``, ``segment``,
        ``arr`` and ``churned`` from ``accounts``, sorted by score (Unknown last).
    """
    runs = _newest_runs(store, as_of, segments)
    accounts = store.table("accounts").select(
        "account_id", "name", "segment", "arr", "churned"
    )
    joined = runs.left_join(accounts, "account_id").drop("account_id_right")
    frame = joined.to_pandas()
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    return frame.sort_values(
        ["score", "account_id"], na_position="last", kind="mergesort"
    ).reset_index(drop=True)


def latest_components(
    store: Store,
    *,
    as_of: dt.date | None = None,
    segments: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Return the component scores of each account's newest run, one row per account.

    The columns are ``account_id`` and one column per component, NaN where the
    component had no data.
    """
    runs = _newest_runs(store, as_of, segments).select("run_id", "account_id")
    components = store.table("score_components")
    joined = components.inner_join(runs, ["run_id", "account_id"])
    frame = joined.select("account_id", "component", "score").to_pandas()
    if frame.empty:
        return pd.DataFrame({"account_id": pd.Series(dtype=object)})
    wide = frame.pivot(index="account_id", columns="component", values="score")
    return wide.reset_index().rename_axis(columns=None)


def explain_account(
    store: Store, account_id: str, *, as_of: dt.date | None = None
) -> AccountExplanation:
    """Return the stored score of one account with its components and measures.

    Raises
    ------
    NotFoundError
        If the account has no stored score (for that date).
    """
    scores = store.table("scores")
    chosen = scores.filter(scores.account_id == account_id)
    if as_of is not None:
        chosen = chosen.filter(chosen.as_of == as_of)
    chosen = chosen.order_by([chosen.as_of.desc(), chosen.computed_at.desc()]).limit(1)
    rows = chosen.to_pandas()
    if rows.empty:
        accounts = store.table("accounts")
        exists = accounts.filter(accounts.account_id == account_id).count().execute()
        if not exists:
            raise NotFoundError(
                f"account {account_id!r} not found in the store. List scored accounts "
                "with `healthscore accounts`; ids are case-sensitive.",
                key=account_id,
            )
        when = "" if as_of is None else f" as of {as_of}"
        raise NotFoundError(
            f"no stored score for account {account_id!r}{when}. Run "
            "`healthscore score` first, or list scored accounts with "
            "`healthscore accounts`.",
            key=account_id,
        )
    rows["as_of"] = pd.to_datetime(rows["as_of"]).dt.date
    row = rows.iloc[0]

    components = store.table("score_components")
    components = components.filter(
        (components.run_id == row.run_id) & (components.account_id == account_id)
    )
    measures = store.table("score_measures")
    measures = measures.filter(
        (measures.run_id == row.run_id) & (measures.account_id == account_id)
    )
    return AccountExplanation(
        score=row,
        components=components.order_by("component").to_pandas(),
        measures=measures.order_by(["component", "measure"]).to_pandas(),
    )


def stored_band_names(
    store: Store, profile_hashes: Sequence[str] | None = None
) -> tuple[str, ...]:
    """Return the band names of the stored profiles, best band first.

    Parameters
    ----------
    store
        The store to read.
    profile_hashes
        Only these profiles; by default every stored profile. Profiles are read in
        hash order, and a band name shared by several profiles is listed once.
    """
    profiles = store.table("profiles")
    if profile_hashes is not None:
        profiles = profiles.filter(profiles.profile_hash.isin(list(profile_hashes)))
    stored = profiles.select("profile_hash", "text").to_pandas()
    names: list[str] = []
    for text in stored.sort_values("profile_hash")["text"]:
        for band in parse_profile(text).bands:
            if band.name not in names:
                names.append(band.name)
    return tuple(names)
