"""Backfill: rebuild one score snapshot per account per day from the stored inputs.

:func:`backfill` scores every date of a range as :func:`score_snapshot` would, with
the metrics computed through the daily event rollups, and writes the rows in large
Arrow batches.

Backfill runs are deterministic, so running a backfill twice gives identical rows:

- The ``run_id`` of a date is the first 32 hex digits of the SHA-256 of
  ``"backfill"``, the ISO as-of date and the profile hash, separated by NUL bytes
  (see :func:`backfill_run_id`). The profile hash is the profile's, or for a
  profile set the set's. A set of one entry without a rule counts as its profile.
- ``computed_at`` is the end of the as-of day: midnight UTC after it.
- Writing a date first deletes the rows of its ``run_id`` from ``scores``,
  ``score_components``, ``score_measures`` and ``metric_snapshots``, in the same
  transaction as the insert. A rerun with the same profile therefore replaces its
  earlier rows of that date, while runs of other profiles and of
  :func:`score_snapshot` stay.
- A member profile's text is added to ``profiles`` only when its hash is missing.

Readers take the run with the newest ``computed_at`` per account and date, so a
:func:`score_snapshot` run stored after the end of its as-of day is read in
preference to the backfilled run of that date.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import sqlglot as sg

from healthscore.exceptions import ConfigError
from healthscore.history.snapshots import (
    ScoringRun,
    check_profile_metrics,
    compute_run,
    rule_accounts,
    run_tables,
    single_profile,
    store_profiles,
)
from healthscore.metrics.asof import period_end
from healthscore.metrics.rollup import refresh_rollups, rollups_enabled
from healthscore.scoring import HealthProfile, ProfileSet
from healthscore.store import TABLES, Store

__all__ = [
    "BackfillProgress",
    "BackfillResult",
    "backfill",
    "backfill_computed_at",
    "backfill_run_id",
]

logger = logging.getLogger(__name__)

#: A callback that :func:`backfill` calls after each date with the date and the
#: number of accounts scored on it.
BackfillProgress = Callable[[dt.date, int], None]

#: The score tables that a backfill writes, in insert order.
_RUN_TABLES = ("scores", "score_components", "score_measures", "metric_snapshots")

# Rows of all four tables that are kept in memory before one transaction writes
# them. bench/backfill.py (about 9,200 accounts a day, 11 measures) writes about
# 250,000 rows a day, so it writes every 9 days.
_FLUSH_ROWS = 2_000_000

# DuckDB 1.5.6 inserts the record batches of an Arrow table on several threads, one
# batch per thread, so a flush splits each table into batches of this many rows.
_INSERT_BATCH_ROWS = 131_072


@dataclass(frozen=True)
class BackfillResult:
    """The outcome of a backfill.

    Attributes
    ----------
    start, end
        The first and last as-of date, both included.
    profile_hash
        The hash in the run ids: the profile's, or the profile set's.
    run_ids
        The run id of each date, oldest date first.
    scored
        The number of ``scores`` rows written, one per account and date.
    replaced
        The number of dates whose earlier backfill rows were replaced.
    seconds
        Wall-clock time of the backfill.
    """

    start: dt.date
    end: dt.date
    profile_hash: str
    run_ids: tuple[str, ...]
    scored: int
    replaced: int
    seconds: float

    @property
    def days(self) -> int:
        """The number of dates in the range."""
        return len(self.run_ids)


def backfill_run_id(as_of: dt.date, profile: HealthProfile | ProfileSet) -> str:
    """Return the run id of the backfill of ``as_of`` with ``profile``.

    Examples
    --------
    >>> from healthscore.scoring import parse_profile
    >>> profile = parse_profile('''
    ... name: tiny
    ... components: [{name: c, weight: 1, measures:
    ...   [{metric: seats, linear: {worst: 0, best: 10}}]}]
    ... ''')
    >>> a = backfill_run_id(dt.date(2024, 3, 1), profile)
    >>> a == backfill_run_id(dt.date(2024, 3, 1), profile), len(a)
    (True, 32)
    """
    profile = single_profile(profile)
    key = "\0".join(("backfill", as_of.isoformat(), profile.hash))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def backfill_computed_at(as_of: dt.date) -> dt.datetime:
    """Return the ``computed_at`` of a backfilled run: midnight UTC after ``as_of``."""
    return period_end(as_of)


def backfill(
    store: Store,
    profile: HealthProfile | ProfileSet,
    start: dt.date,
    end: dt.date,
    progress: BackfillProgress | None = None,
) -> BackfillResult:
    """Score every account as of each date from ``start`` to ``end`` and store it.

    The rollups are refreshed once, then each date's metrics are computed through
    them and scored as :func:`~healthscore.history.score_snapshot` scores them. The
    module docstring gives the rule that makes reruns replace their rows.

    Parameters
    ----------
    store
        A writable DuckDB store with the inputs.
    profile
        The health profile, or a profile set.
    start, end
        The first and last as-of date, both included.
    progress
        Called after each date with the date and the number of accounts scored.

    Returns
    -------
    BackfillResult

    Raises
    ------
    ConfigError
        If ``start`` or ``end`` is not a date, or ``start`` is after ``end``.
    ProfileError
        If a profile names a metric the store cannot compute.
    """
    dates = _date_range(start, end)
    started = time.perf_counter()
    profile = single_profile(profile)
    check_profile_metrics(store, profile)
    if rollups_enabled():
        refresh_rollups(store)
    accounts = rule_accounts(store, profile)
    with store.transaction():
        store_profiles(store, profile, backfill_computed_at(start))

    writer = _BatchWriter(store)
    for as_of in dates:
        run = compute_run(
            store,
            profile,
            as_of,
            accounts=accounts,
            run_id=backfill_run_id(as_of, profile),
            computed_at=backfill_computed_at(as_of),
        )
        writer.add(run)
        if progress is not None:
            progress(as_of, len(run.result.scores))
    writer.flush()

    result = BackfillResult(
        start=start,
        end=end,
        profile_hash=profile.hash,
        run_ids=tuple(backfill_run_id(as_of, profile) for as_of in dates),
        scored=writer.scored,
        replaced=writer.replaced,
        seconds=time.perf_counter() - started,
    )
    logger.info(
        "backfilled %d dates from %s to %s with profile %s (%s): %d scores, "
        "%d dates replaced, %.1f s",
        result.days,
        start,
        end,
        profile.name,
        profile.hash[:12],
        result.scored,
        result.replaced,
        result.seconds,
    )
    return result


def _date_range(start: dt.date, end: dt.date) -> list[dt.date]:
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise ConfigError(
                f"{name!r} must be a datetime.date; got {value!r}. Pass a date such "
                "as datetime.date(2024, 3, 31).",
                field=name,
            )
    if start > end:
        raise ConfigError(
            f"the backfill range starts on {start.isoformat()}, after its end "
            f"{end.isoformat()}. Pass the earlier date as the start.",
            field="start",
        )
    return list(_days(start, end))


def _days(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    day = start
    while day <= end:
        yield day
        day += dt.timedelta(days=1)


class _BatchWriter:
    """Collect the rows of several runs and write them in one transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pending: dict[str, list[pa.Table]] = {name: [] for name in _RUN_TABLES}
        self.run_ids: list[str] = []
        self.rows = 0
        self.scored = 0
        self.replaced = 0

    def add(self, run: ScoringRun) -> None:
        for name, rows in run_tables(run).items():
            self.pending[name].append(rows)
            self.rows += rows.num_rows
        self.run_ids.append(run.run_id)
        self.scored += len(run.result.scores)
        if self.rows >= _FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Replace the rows of the pending run ids with the pending rows."""
        if not self.run_ids:
            return
        with self.store.transaction():
            self.replaced += _delete_runs(self.store, self.run_ids)
            for name in _RUN_TABLES:
                self.store.insert(name, _in_batches(name, self.pending[name]))
        logger.debug("wrote %d rows of %d runs", self.rows, len(self.run_ids))
        self.pending = {name: [] for name in _RUN_TABLES}
        self.run_ids = []
        self.rows = 0


def _in_batches(name: str, parts: list[pa.Table]) -> pa.Table:
    schema = TABLES[name].to_pyarrow()
    combined = pa.concat_tables(parts).combine_chunks()
    batches = combined.to_batches(max_chunksize=_INSERT_BATCH_ROWS)
    return pa.Table.from_batches(batches, schema=schema)


def _delete_runs(store: Store, run_ids: list[str]) -> int:
    """Delete every row of ``run_ids`` and return how many of them had scores."""
    scores = store.table("scores")
    stored = scores.filter(scores.run_id.isin(run_ids)).run_id.nunique().execute()
    for name in _RUN_TABLES:
        statement = sg.delete(name, where=sg.column("run_id").isin(*run_ids))
        store.backend.raw_sql(statement.sql(dialect="duckdb"))
    return int(stored)
