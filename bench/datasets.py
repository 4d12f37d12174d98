"""Benchmark data: simulated Parquet, CSV copies and prepared DuckDB stores per scale.

Everything is cached under the data folder, so a rerun skips generation. A file is
written under a temporary name and renamed when complete, so an interrupted run never
leaves a half-written file that a later run would trust.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from healthscore.history import score_snapshot
from healthscore.ingest import ingest_file
from healthscore.metrics import refresh_rollups, rollups_current
from healthscore.simulate import SimulationConfig, simulate
from healthscore.store import Store
from scoring import event_profile

__all__ = ["SCALES", "Dataset", "Scale", "prepare_dataset"]

logger = logging.getLogger(__name__)

SEED = 7

# ingest_file reads a CSV file whole before it validates it (about 1.2 GB of peak
# RSS per million events on the machine in docs/benchmarks.md), so the ingest
# figure loads at most this many events, the first rows of the scale.
INGEST_ROW_CAP = 2_000_000


@dataclass(frozen=True)
class Scale:
    """Size of one benchmark run.

    ``user_share`` keeps events of roughly that share of users (chosen by a hash of
    the user id), which thins the events of a simulation without changing its
    accounts or its days.
    """

    name: str
    accounts: int
    days: int
    user_share: int = 1


SCALES = {
    "small": Scale("small", accounts=1_000, days=180),
    "medium": Scale("medium", accounts=100_000, days=90, user_share=5),
    "large": Scale("large", accounts=100_000, days=90),
}


@dataclass(frozen=True)
class Dataset:
    """Paths and sizes of the prepared files of one scale."""

    scale: Scale
    folder: Path
    accounts: Path
    events: Path
    ingest_parquet: Path
    ingest_csv: Path
    day_events: Path
    store: Path
    base_store: Path
    as_of: dt.date
    event_rows: int
    ingest_rows: int
    day_rows: int


def prepare_dataset(scale: Scale, data_dir: Path) -> Dataset:
    """Build, or reuse from ``data_dir``, every file the benchmarks of ``scale`` read.

    Parameters
    ----------
    scale
        The scale to prepare.
    data_dir
        The cache folder; simulations are shared between scales of the same size.

    Returns
    -------
    Dataset
        The prepared paths, the as-of date (the last simulated day) and row counts.
    """
    simulation = _simulation(scale, data_dir)
    folder = data_dir / scale.name
    folder.mkdir(parents=True, exist_ok=True)
    start = SimulationConfig().start
    as_of = start + dt.timedelta(days=scale.days - 1)

    accounts = simulation / "accounts.parquet"
    events = folder / "events.parquet"
    _write_once(events, lambda tmp: _thin_events(simulation, scale.user_share, tmp))
    day_events = folder / "day-events.parquet"
    _write_once(day_events, lambda tmp: _day_events(events, as_of, tmp))
    day_before = as_of - dt.timedelta(days=1)
    day_before_events = folder / "day-before-events.parquet"
    _write_once(
        day_before_events, lambda tmp: _day_events(events, day_before, tmp, as_of)
    )
    ingest_parquet = folder / "ingest-events.parquet"
    _write_once(ingest_parquet, lambda tmp: _first_rows(events, tmp))
    ingest_csv = folder / "ingest-events.csv"
    _write_once(ingest_csv, lambda tmp: _to_csv(ingest_parquet, tmp))

    store = folder / "store.duckdb"
    _write_once(store, lambda tmp: _build_store(accounts, events, None, tmp))
    _add_rollups(store)
    base_store = folder / "day-before-store.duckdb"
    _write_once(
        base_store,
        lambda tmp: _build_day_before_store(
            accounts, events, day_before_events, day_before, tmp
        ),
    )

    return Dataset(
        scale=scale,
        folder=folder,
        accounts=accounts,
        events=events,
        ingest_parquet=ingest_parquet,
        ingest_csv=ingest_csv,
        day_events=day_events,
        store=store,
        base_store=base_store,
        as_of=as_of,
        event_rows=_count_rows(events),
        ingest_rows=_count_rows(ingest_parquet),
        day_rows=_count_rows(day_events),
    )


def _simulation(scale: Scale, data_dir: Path) -> Path:
    folder = data_dir / f"sim-{scale.accounts}x{scale.days}-seed{SEED}"
    done = folder / "COMPLETE"
    if not done.exists():
        logger.info("simulating %d accounts x %d days", scale.accounts, scale.days)
        config = SimulationConfig(accounts=scale.accounts, days=scale.days, seed=SEED)
        simulate(config, folder)
        done.touch()
    return folder


def _write_once(path: Path, build: Callable[[Path], None]) -> None:
    if path.exists():
        return
    logger.info("writing %s", path)
    tmp = path.with_name("tmp-" + path.name)
    tmp.unlink(missing_ok=True)
    build(tmp)
    tmp.rename(path)


def _thin_events(simulation: Path, user_share: int, out: Path) -> None:
    source = f"read_parquet('{simulation / 'events' / '*.parquet'}')"
    keep = "true"
    if user_share > 1:
        keep = f"hash(coalesce(user_id, event_id)) % {user_share} = 0"
    _copy(f"SELECT * FROM {source} WHERE {keep}", out, "PARQUET")


def _day_events(
    events: Path, day: dt.date, out: Path, until: dt.date | None = None
) -> None:
    """Write the events from the start of ``day`` to the start of ``until``."""
    query = f"SELECT * FROM read_parquet('{events}') WHERE occurred_at >= {_utc(day)}"
    if until is not None:
        query += f" AND occurred_at < {_utc(until)}"
    _copy(query, out, "PARQUET")


def _utc(day: dt.date) -> str:
    return f"TIMESTAMPTZ '{day.isoformat()} 00:00:00+00'"


def _first_rows(events: Path, out: Path) -> None:
    query = f"SELECT * FROM read_parquet('{events}') LIMIT {INGEST_ROW_CAP}"
    _copy(query, out, "PARQUET")


def _to_csv(parquet: Path, out: Path) -> None:
    _copy(f"SELECT * FROM read_parquet('{parquet}')", out, "CSV, HEADER")


def _copy(query: str, out: Path, options: str) -> None:
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"COPY ({query}) TO '{out}' (FORMAT {options})")


def _build_store(
    accounts: Path, events: Path, before: dt.date | None, out: Path
) -> None:
    """Create a store with the accounts loaded through ingest_file and bulk events.

    Events go in with one INSERT ... SELECT, because ingest_file cannot load tens of
    millions of rows on one machine (see ``INGEST_ROW_CAP``). ``event_key`` is the
    event id, which is also the key ingest_file stores for events that have one.
    """
    out.with_name(out.name + ".wal").unlink(missing_ok=True)
    store = Store.open(out)
    ingest_file(store, "accounts", accounts)
    cutoff = "true"
    if before is not None:
        cutoff = f"occurred_at < {_utc(before)}"
    store.backend.raw_sql(
        "INSERT INTO events (event_key, event_id, account_id, user_id, event_name, "
        "feature, occurred_at, value, load_id) "
        "SELECT event_id, event_id, account_id, user_id, event_name, feature, "
        f"occurred_at, value, 'bench-bulk' FROM read_parquet('{events}') "
        f"WHERE {cutoff}"
    )
    store.backend.raw_sql("CHECKPOINT")
    store.close()


def _build_day_before_store(
    accounts: Path, events: Path, day_events: Path, day: dt.date, out: Path
) -> None:
    """Create the store a daily job leaves behind at the end of ``day``.

    The history before ``day`` is bulk-loaded. Then ``day`` goes through the daily
    job itself: ingest of the day's file, rollup refresh and a score snapshot. The
    daily increment step starts from this store, so it finds the file as its
    previous run left it. Right after a bulk load, DuckDB reorganises the row
    groups on the next append, which took several seconds at the large scale.
    """
    _build_store(accounts, events, day, out)
    with Store.open(out, create=False) as store:
        refresh_rollups(store)
        ingest_file(store, "events", day_events)
        refresh_rollups(store)
        score_snapshot(store, event_profile(), day)


def _add_rollups(path: Path) -> None:
    """Build the daily event rollups of a prepared store, as a daily load leaves them.

    Stores cached by an older version of the benchmark have none, so this also
    brings them up to date. A store whose rollups are current is left as it is.
    """
    with Store.open(path, create=False) as store:
        if rollups_current(store):
            return
        logger.info("building the daily rollups of %s", path)
        refresh_rollups(store)
        store.backend.raw_sql("CHECKPOINT")


def _count_rows(path: Path) -> int:
    with duckdb.connect() as con:
        query = f"SELECT count(*) FROM read_parquet('{path}')"
        return int(con.execute(query).fetchone()[0])


def copy_store(source: Path, target: Path) -> None:
    """Copy a prepared store file, so a benchmark step can write to its own copy.

    The copy is flushed to disk before returning. Otherwise the first checkpoint of
    the timed step would wait for the whole file to be written back, a cost a store
    that has sat on disk since the day before does not have.
    """
    target.with_name(target.name + ".wal").unlink(missing_ok=True)
    shutil.copyfile(source, target)
    with target.open("rb+") as copied:
        os.fsync(copied.fileno())
