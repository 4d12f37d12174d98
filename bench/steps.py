"""Measured benchmark steps, each run alone in a child process.

``python bench/steps.py STEP ARGS_JSON`` runs one step and prints one JSON line with
its wall time in seconds, the rows it handled and the child's peak resident memory
(``VmHWM`` of the process itself, so it includes the Python interpreter and the
imports). Setup that a step needs but that is not part of what it measures, such as
copying a store file, runs before the clock starts. Its memory still counts towards
the peak, and ``setup_rss_mb`` records the peak reached before the clock started.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from healthscore.history import score_snapshot
from healthscore.ingest import ingest_file
from healthscore.metrics.rollup import (
    raw_event_metrics,
    refresh_rollups,
    rollups_enabled,
)
from healthscore.store import Store

sys.path.insert(0, str(Path(__file__).parent))

from datasets import copy_store  # noqa: E402

import scoring  # noqa: E402

logger = logging.getLogger(__name__)

_Timed = Callable[[], int]


def _score(args: dict[str, Any], run: Callable[..., Any]) -> _Timed:
    def timed() -> int:
        with _metrics_from(args):
            return len(run(*args["inputs"], dt.date.fromisoformat(args["as_of"])))

    return timed


def _healthscore(args: dict[str, Any]) -> _Timed:
    return _score(args, scoring.score_with_healthscore)


def _sql(args: dict[str, Any]) -> _Timed:
    return _score(args, scoring.score_with_sql)


def _pandas(args: dict[str, Any]) -> _Timed:
    return _score(args, scoring.score_with_pandas)


def _fresh_store(args: dict[str, Any]) -> Store:
    path = Path(args["store"])
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)
    return Store.open(path)


def _ingest_file(args: dict[str, Any]) -> _Timed:
    store = _fresh_store(args)
    ingest_file(store, "accounts", args["accounts"])

    def timed() -> int:
        # Closing writes the rows to the file, as the DuckDB load's CHECKPOINT does.
        result = ingest_file(store, "events", args["file"])
        store.close()
        return result.accepted

    return timed


def _duckdb_load(args: dict[str, Any]) -> _Timed:
    path = Path(args["store"])
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    reader = "read_csv_auto" if args["file"].endswith(".csv") else "read_parquet"

    def timed() -> int:
        con.execute(f"CREATE TABLE events AS SELECT * FROM {reader}('{args['file']}')")
        con.execute("CHECKPOINT")
        return int(con.execute("SELECT count(*) FROM events").fetchone()[0])

    return timed


def _metrics_from(args: dict[str, Any]) -> contextlib.AbstractContextManager[None]:
    """Return the context that makes the event metrics read what ``args`` names.

    ``"rollups"`` (the default) keeps the daily rollups, ``"raw_events"`` reads the
    events table and skips refreshing the rollups.
    """
    source = args.get("metrics_from", "rollups")
    if source == "raw_events":
        return raw_event_metrics()
    if source != "rollups":
        raise ValueError(
            f"metrics_from must be 'rollups' or 'raw_events'; got {source!r}"
        )
    return contextlib.nullcontext()


def _increment(args: dict[str, Any]) -> _Timed:
    target = Path(args["store"])
    copy_store(Path(args["base_store"]), target)
    store = Store.open(target, create=False)
    as_of = dt.date.fromisoformat(args["as_of"])

    def timed() -> int:
        # The store is the day before as its daily job left it, rollups included.
        # Closing is timed too: it writes what is left in the write-ahead log to the
        # file, as every healthscore command does when it ends.
        with _metrics_from(args):
            loaded = ingest_file(store, "events", args["day_file"])
            if rollups_enabled():
                refresh_rollups(store)
            score_snapshot(store, scoring.event_profile(), as_of)
        store.close()
        return loaded.accepted

    return timed


def _bulk_insert_events(store: Store, path: str) -> None:
    store.backend.raw_sql(
        "INSERT INTO events (event_key, event_id, account_id, user_id, "
        "event_name, feature, occurred_at, value, load_id) "
        "SELECT event_id, event_id, account_id, user_id, event_name, feature, "
        f"occurred_at, value, 'bench-bulk' FROM read_parquet('{path}')"
    )


def _full_recompute(args: dict[str, Any]) -> _Timed:
    store = _fresh_store(args)
    as_of = dt.date.fromisoformat(args["as_of"])

    def timed() -> int:
        with _metrics_from(args):
            ingest_file(store, "accounts", args["accounts"])
            _bulk_insert_events(store, args["events"])
            # The bulk insert writes no loads row. refresh_rollups reads the load
            # ids from the events, so it builds the rollups of every event here.
            if rollups_enabled():
                refresh_rollups(store)
            score_snapshot(store, scoring.event_profile(), as_of)
        events = int(store.table("events").count().to_pyarrow().as_py())
        store.close()
        return events

    return timed


STEPS: dict[str, Callable[[dict[str, Any]], _Timed]] = {
    "score_healthscore": _healthscore,
    "score_sql": _sql,
    "score_pandas": _pandas,
    "ingest_healthscore": _ingest_file,
    "ingest_duckdb": _duckdb_load,
    "increment": _increment,
    "full_recompute": _full_recompute,
}


def _peak_rss_kib() -> int:
    """Return this process's peak resident memory in KiB.

    Linux keeps ``ru_maxrss`` across ``execve``, so a child started by a large parent
    would report the parent's peak. ``VmHWM`` belongs to the new address space and
    starts from zero at ``execve``.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str]) -> None:
    """Run the step named in ``argv[1]`` with the JSON arguments in ``argv[2]``."""
    step, args = argv[1], json.loads(argv[2])
    timed = STEPS[step](args)
    setup_kib = _peak_rss_kib()

    started = time.perf_counter()
    rows = timed()
    seconds = time.perf_counter() - started

    peak_kib = _peak_rss_kib()
    record = {
        "step": step,
        "seconds": seconds,
        "rows": rows,
        "peak_rss_mb": peak_kib / 1024,
        "setup_rss_mb": setup_kib / 1024,
    }
    sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main(sys.argv)
