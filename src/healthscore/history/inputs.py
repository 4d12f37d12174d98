"""Rebuild the inputs of a stored scoring run: its profile and its metric table.

A run stores its metrics in long form in ``metric_snapshots`` and its profile text in
``profiles``. :func:`load_score_inputs` turns them back into the
:class:`~healthscore.scoring.ScoreInputs` that
:func:`~healthscore.scoring.attribute_change` takes, so a change between two stored
dates can be split into its causes.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass

import ibis
import numpy as np
import pandas as pd

from healthscore.exceptions import NotFoundError, StoreError
from healthscore.scoring import HealthProfile, ScoreInputs, parse_profile
from healthscore.store import Store

__all__ = [
    "StoredRun",
    "find_run",
    "load_run_inputs",
    "load_score_inputs",
    "stored_dates",
]

logger = logging.getLogger(__name__)

#: The number of stored dates that a not-found message lists, newest first.
_DATES_LISTED = 10


@dataclass(frozen=True)
class StoredRun:
    """One stored scoring run, and one account's stored result in it.

    Attributes
    ----------
    run_id
        Identifier of the run in the score tables.
    as_of
        The date the run's metrics were computed as of.
    computed_at
        When the run was stored (UTC).
    profile_name, profile_hash
        The profile of the account's row, or of the run's first row when no account
        was requested.
    account_id
        The requested account, else None.
    score
        The account's stored score, NaN when Unknown or when no account was
        requested.
    band
        The account's stored band, else None.
    """

    run_id: str
    as_of: dt.date
    computed_at: dt.datetime
    profile_name: str
    profile_hash: str
    account_id: str | None = None
    score: float = math.nan
    band: str | None = None


def stored_dates(store: Store, account_id: str | None = None) -> tuple[dt.date, ...]:
    """Return the as-of dates with stored scores, oldest first.

    Parameters
    ----------
    store
        The store to read.
    account_id
        Only dates with a stored score for this account. By default every date.
    """
    scores = store.table("scores")
    if account_id is not None:
        scores = scores.filter(scores.account_id == account_id)
    dates = scores.select("as_of").distinct().order_by("as_of").to_pandas()["as_of"]
    return tuple(pd.Timestamp(value).date() for value in dates)


def find_run(
    store: Store, *, as_of: dt.date, account_id: str | None = None
) -> StoredRun:
    """Find the newest run stored for a date, or the newest that scored an account.

    Parameters
    ----------
    store
        The store to read.
    as_of
        The as-of date of the run.
    account_id
        Only runs that scored this account. Several runs of one date may score
        different accounts, for example one per segment.

    Returns
    -------
    StoredRun
        The run with the latest ``computed_at``, with the account's score and band.

    Raises
    ------
    NotFoundError
        If the account is not in the store, or no run of that date scored it. The
        message lists the stored dates.
    """
    scores = store.table("scores").filter(ibis._.as_of == as_of)
    if account_id is not None:
        scores = scores.filter(scores.account_id == account_id)
    newest = scores.order_by([ibis.desc("computed_at"), "run_id"]).limit(1)
    rows = newest.to_pandas()
    if rows.empty:
        raise _run_not_found(store, as_of, account_id)

    row = rows.iloc[0]
    return StoredRun(
        run_id=str(row["run_id"]),
        as_of=as_of,
        computed_at=pd.Timestamp(row["computed_at"]).to_pydatetime(),
        profile_name=str(row["profile_name"]),
        profile_hash=str(row["profile_hash"]),
        account_id=account_id,
        score=math.nan if account_id is None else _float(row["score"]),
        band=None if account_id is None else str(row["band"]),
    )


def _float(value: object) -> float:
    return math.nan if pd.isna(value) else float(value)  # type: ignore[arg-type]


def _run_not_found(
    store: Store, as_of: dt.date, account_id: str | None
) -> NotFoundError:
    if account_id is not None and not _account_exists(store, account_id):
        return NotFoundError(
            f"account {account_id!r} not found in the store. List scored accounts "
            "with `healthscore accounts`; ids are case-sensitive.",
            key=account_id,
        )
    dates = stored_dates(store, account_id)
    subject = "" if account_id is None else f" for account {account_id!r}"
    if not dates:
        return NotFoundError(
            f"no stored scores{subject}. Run `healthscore score --as-of DATE` first.",
            key=account_id or as_of.isoformat(),
        )
    return NotFoundError(
        f"no stored score{subject} as of {as_of.isoformat()}. The stored dates are "
        f"{_describe_dates(dates)}. Pick one of them, or score that date with "
        f"`healthscore score --as-of {as_of.isoformat()}`.",
        key=account_id or as_of.isoformat(),
    )


def _account_exists(store: Store, account_id: str) -> bool:
    accounts = store.table("accounts")
    return bool(accounts.filter(accounts.account_id == account_id).count().execute())


def _describe_dates(dates: tuple[dt.date, ...]) -> str:
    """List the newest dates, and how many older ones were left out."""
    newest = [date.isoformat() for date in reversed(dates[-_DATES_LISTED:])]
    text = ", ".join(newest)
    if len(dates) > _DATES_LISTED:
        text += f" and {len(dates) - _DATES_LISTED} older dates"
    return text


def load_run_inputs(store: Store, run: StoredRun) -> ScoreInputs:
    """Rebuild the profile and metric table that a stored run scored.

    The metric table contains the accounts of the run that have the run's profile
    hash, because a profile's percentile measures compare an account only with
    the accounts that the same profile scored.

    Parameters
    ----------
    store
        The store to read.
    run
        The run, from :func:`find_run`.

    Returns
    -------
    ScoreInputs
        The profile parsed from its stored text, and one row per account:
        ``account_id``, ``segment``, then one column per metric of the profile.
        A metric with a text value in the run is an object column with None for
        missing values, and any other metric is float64 with NaN.

    Raises
    ------
    StoreError
        If the store has no profile text for the run's profile hash.
    """
    profile = _stored_profile(store, run.profile_hash)
    rows = _metric_rows(store, run)
    metrics = _wide_metrics(rows, profile)
    metrics = _with_segments(store, metrics)
    logger.debug(
        "rebuilt the inputs of run %s: %d accounts, %d metrics, profile %s (%s)",
        run.run_id,
        len(metrics),
        len(metrics.columns) - 2,
        profile.name,
        run.profile_hash[:12],
    )
    return ScoreInputs(profile, metrics)


def load_score_inputs(
    store: Store, *, as_of: dt.date, account_id: str | None = None
) -> ScoreInputs:
    """Rebuild the inputs of the newest run of a date, or of one account's run.

    This is :func:`find_run` followed by :func:`load_run_inputs`.

    Parameters
    ----------
    store
        The store to read.
    as_of
        The as-of date of the run.
    account_id
        Take the newest run of that date that scored this account.

    Returns
    -------
    ScoreInputs

    Raises
    ------
    NotFoundError
        If no run of that date (that scored the account) is stored.
    StoreError
        If the store has no profile text for the run's profile hash.
    """
    return load_run_inputs(store, find_run(store, as_of=as_of, account_id=account_id))


def _stored_profile(store: Store, profile_hash: str) -> HealthProfile:
    profiles = store.table("profiles")
    texts = profiles.filter(profiles.profile_hash == profile_hash).select("text")
    rows = texts.limit(1).to_pandas()
    if rows.empty:
        raise StoreError(
            f"the store has no text for profile {profile_hash[:12]!r}, which a "
            "stored run used, so the run cannot be rebuilt. The profiles table is "
            "written with every run; restore it from a backup, or score again."
        )
    profile = parse_profile(str(rows["text"].iloc[0]))
    if profile.hash != profile_hash:
        # The text parses to other content only if parsing changed since the run.
        logger.warning(
            "the stored text of profile %s parses to hash %s; using the parsed text",
            profile_hash[:12],
            profile.hash[:12],
        )
    return profile


def _metric_rows(store: Store, run: StoredRun) -> pd.DataFrame:
    """Read the run's metric rows of the accounts scored with the run's profile."""
    scores = store.table("scores")
    same_profile = scores.filter(
        (scores.run_id == run.run_id) & (scores.profile_hash == run.profile_hash)
    ).select("account_id")
    snapshots = store.table("metric_snapshots")
    rows = snapshots.filter(snapshots.run_id == run.run_id).semi_join(
        same_profile, "account_id"
    )
    return rows.select("account_id", "metric", "number_value", "text_value").to_pandas()


def _wide_metrics(rows: pd.DataFrame, profile: HealthProfile) -> pd.DataFrame:
    """Pivot the long metric rows to one column per metric, sorted by account."""
    ids = np.sort(pd.unique(rows["account_id"]).astype(object))
    index = pd.Index(ids, name="account_id")
    columns: dict[str, pd.Series] = {}
    for metric, group in rows.groupby("metric", sort=False):
        columns[str(metric)] = _metric_column(group.set_index("account_id"), index)

    names = list(dict.fromkeys([*profile.metrics, *columns]))
    frame = pd.DataFrame({"account_id": pd.Series(ids, dtype=object)})
    for name in names:
        column = columns.get(name)
        if column is None:
            column = pd.Series(np.nan, index=index, dtype=np.float64)
        frame[name] = pd.Series(column.to_numpy(), dtype=column.dtype)
    return frame


def _metric_column(group: pd.DataFrame, index: pd.Index) -> pd.Series:
    """Return one metric's values per account: text if the run stored any text."""
    group = group.reindex(index)
    texts = group["text_value"]
    numbers = group["number_value"].astype(np.float64)
    if texts.isna().all():
        return numbers
    values = texts.astype(object).where(texts.notna(), numbers.astype(object))
    return values.where(values.notna(), None).astype(object)


def _with_segments(store: Store, metrics: pd.DataFrame) -> pd.DataFrame:
    # NOTE: the accounts table keeps only each account's current segment, so an
    # account that changed segment since the run gets percentile peers that differ
    # from the run's.
    accounts = store.table("accounts").select("account_id", "segment").to_pandas()
    segments = metrics["account_id"].map(accounts.set_index("account_id")["segment"])
    segments = segments.astype(object).where(segments.notna(), None)
    metrics.insert(1, "segment", segments)
    return metrics
