"""Benchmark ``backfill``: daily snapshots of simulated accounts over a year.

Usage::

    .venv/bin/python bench/backfill.py [--accounts 10000] [--days 365]
        [--data-dir bench/.data] [--json OUT]

The simulation (seed 7) and a prepared store are cached under the data folder. The
store contains the accounts, survey responses and tickets loaded with ``ingest_file``,
the events loaded with one bulk INSERT (as ``bench/datasets.py`` does) and their
daily rollups. Each measurement copies the store and runs ``backfill`` over every
simulated day with the simulated demo profile, in a child process, so the reported
peak resident memory (``VmHWM``) is that of the backfill alone plus the
interpreter and imports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from datasets import SEED, Scale, _build_store, _simulation, copy_store  # noqa: E402

from healthscore.demo.run import DEMO_DIR  # noqa: E402
from healthscore.history import backfill  # noqa: E402
from healthscore.ingest import ingest_file  # noqa: E402
from healthscore.metrics import refresh_rollups  # noqa: E402
from healthscore.scoring import load_profile  # noqa: E402
from healthscore.simulate import SimulationConfig  # noqa: E402
from healthscore.store import Store  # noqa: E402

logger = logging.getLogger("bench.backfill")

PROFILE = DEMO_DIR / "profiles" / "simulated.yaml"

# Simulator file name and store entity of the inputs loaded with ingest_file.
_INGESTED = (("surveys.parquet", "surveys"), ("tickets.parquet", "tickets"))


def main() -> None:
    """Prepare the data, run the measurement in a child process and report it."""
    args = _parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.measure is not None:
        print(json.dumps(_measure(args.measure, args.days)))
        return

    store = _prepared_store(args.data_dir, args.accounts, args.days)
    work = store.with_name("work.duckdb")
    copy_store(store, work)
    child = subprocess.run(
        [sys.executable, __file__, "--measure", str(work), "--days", str(args.days)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    figures.update(accounts=args.accounts, days=args.days, seed=SEED)
    _report(figures)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(__file__).parent / ".data"
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def _prepared_store(data_dir: Path, accounts: int, days: int) -> Path:
    """Build the store of the simulation, or reuse the file a previous run built."""
    simulation = _simulation(Scale("backfill", accounts, days), data_dir)
    folder = data_dir / f"backfill-{accounts}x{days}"
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / "store.duckdb"
    if store.exists():
        return store

    tmp = folder / "tmp-store.duckdb"
    tmp.unlink(missing_ok=True)
    events = simulation / "events" / "*.parquet"
    _build_store(simulation / "accounts.parquet", events, None, tmp)
    with Store.open(tmp, create=False) as opened:
        for file_name, entity in _INGESTED:
            ingest_file(opened, entity, simulation / file_name)
        refresh_rollups(opened)
        opened.backend.raw_sql("CHECKPOINT")
    tmp.rename(store)
    return store


def _measure(store_path: Path, days: int) -> dict[str, Any]:
    """Run the backfill over every simulated day and return its figures."""
    start = SimulationConfig().start
    end = start + dt.timedelta(days=days - 1)
    profile = load_profile(PROFILE)

    def log_progress(as_of: dt.date, accounts: int) -> None:
        if (as_of - start).days % 30 == 0:
            logger.info("backfilled %s: %d accounts", as_of, accounts)

    with Store.open(store_path, create=False) as store:
        started = time.perf_counter()
        result = backfill(store, profile, start, end, progress=log_progress)
        seconds = time.perf_counter() - started
        rows = {
            name: int(store.table(name).count().execute())
            for name in ("scores", "score_measures", "metric_snapshots")
        }
    return {
        "seconds": seconds,
        "account_days": result.scored,
        "account_days_per_second": result.scored / seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "rows": rows,
        "start": start.isoformat(),
        "end": end.isoformat(),
    }


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _report(figures: dict[str, Any]) -> None:
    print(
        f"backfill of {figures['accounts']:,} accounts x {figures['days']} days "
        f"({figures['start']} to {figures['end']}): {figures['seconds']:.1f} s, "
        f"{figures['account_days_per_second']:,.0f} account-days/s, "
        f"peak RSS {figures['peak_rss_mb']:,.0f} MB; rows {figures['rows']}"
    )


if __name__ == "__main__":
    main()
