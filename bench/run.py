"""Run the healthscore benchmarks side by side with their baselines.

Usage::

    .venv/bin/python bench/run.py [--scale small|medium|large] [--data-dir DIR]
        [--json OUT] [--repeat N]

Every measured step runs alone in a child process (see ``steps.py``), so each peak
memory figure belongs to one step. Before timing, the three scorers are checked to
give the same scores to 1e-9 on the small data set. The script prints a table of
times, rates, peak memory and ratios, and writes the same figures as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from datasets import SCALES, Dataset, prepare_dataset  # noqa: E402

import scoring  # noqa: E402

logger = logging.getLogger("bench")

BENCH_DIR = Path(__file__).parent
TOLERANCE = 1e-9
PACKAGES = ("healthscore", "ibis-framework", "duckdb", "pandas", "pyarrow", "numpy")


def main() -> int:
    """Parse the command line, run every figure and report it."""
    options = _parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data_dir = Path(options.data_dir).resolve()

    check = check_equivalence(prepare_dataset(SCALES["small"], data_dir))
    if not check["passed"]:
        sys.stderr.write(f"scorers disagree on the small data set: {check}\n")
        return 1

    dataset = prepare_dataset(SCALES[options.scale], data_dir)
    results = run_figures(dataset, options.repeat)
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "scale": _scale_info(dataset),
        "equivalence_small": check,
        "steps": results,
        "ratios": ratios(results),
    }
    sys.stdout.write(format_table(report))
    if options.json:
        Path(options.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument(
        "--data-dir",
        default=str(BENCH_DIR / ".data"),
        help="folder that caches generated data between runs (default bench/.data)",
    )
    parser.add_argument("--json", help="write the results as JSON to this file")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per step; the table shows the fastest (default 1)",
    )
    return parser.parse_args()


def check_equivalence(dataset: Dataset) -> dict[str, Any]:
    """Score the data set with all three scorers and compare them with healthscore."""
    expected = scoring.score_with_healthscore(dataset.store, dataset.as_of)
    sql = scoring.score_with_sql(dataset.store, dataset.as_of)
    pandas = scoring.score_with_pandas(dataset.accounts, dataset.events, dataset.as_of)
    comparisons = {
        "sql": scoring.compare_scores(expected, sql, TOLERANCE),
        "pandas": scoring.compare_scores(expected, pandas, TOLERANCE),
    }
    passed = all(
        c["max_abs_diff"] <= TOLERANCE
        and c["missing_mismatch"] == 0
        and c["id_mismatch"] == 0
        for c in comparisons.values()
    )
    return {"passed": passed, "scored_accounts": len(expected), **comparisons}


def step_arguments(dataset: Dataset, work: Path) -> dict[str, dict[str, Any]]:
    """Return the arguments of every measured step, keyed by a row label."""
    as_of = dataset.as_of.isoformat()
    score_inputs = [str(dataset.store)]
    accounts = str(dataset.accounts)
    ingest = {"accounts": accounts, "store": str(work / "ingest.duckdb")}
    increment = {
        "base_store": str(dataset.base_store),
        "store": str(work / "increment.duckdb"),
        "day_file": str(dataset.day_events),
        "as_of": as_of,
    }
    full_recompute = {
        "accounts": accounts,
        "events": str(dataset.events),
        "store": str(work / "full.duckdb"),
        "as_of": as_of,
    }
    return {
        "score_healthscore": {"inputs": score_inputs, "as_of": as_of},
        "score_healthscore_raw_events": {
            "inputs": score_inputs,
            "as_of": as_of,
            "metrics_from": "raw_events",
        },
        "score_sql": {"inputs": score_inputs, "as_of": as_of},
        "score_pandas": {"inputs": [accounts, str(dataset.events)], "as_of": as_of},
        "ingest_parquet_healthscore": {**ingest, "file": str(dataset.ingest_parquet)},
        "ingest_parquet_duckdb": {**ingest, "file": str(dataset.ingest_parquet)},
        "ingest_csv_healthscore": {**ingest, "file": str(dataset.ingest_csv)},
        "ingest_csv_duckdb": {**ingest, "file": str(dataset.ingest_csv)},
        "increment": increment,
        "full_recompute": full_recompute,
        # The same two steps with the event metrics read from the raw events.
        "increment_raw_events": {**increment, "metrics_from": "raw_events"},
        "full_recompute_raw_events": {**full_recompute, "metrics_from": "raw_events"},
    }


def run_figures(dataset: Dataset, repeat: int) -> dict[str, dict[str, Any]]:
    """Run every step ``repeat`` times in child processes and keep the fastest run."""
    work = dataset.folder / "work"
    work.mkdir(exist_ok=True)
    results = {}
    for label, args in step_arguments(dataset, work).items():
        runs = [_run_child(_step_name(label), args) for _ in range(repeat)]
        best = min(runs, key=lambda run: run["seconds"])
        best["peak_rss_mb"] = max(run["peak_rss_mb"] for run in runs)
        best["all_seconds"] = [run["seconds"] for run in runs]
        results[label] = best
        logger.info("%s: %.2f s, %.0f MB", label, best["seconds"], best["peak_rss_mb"])
    for path in work.glob("*.duckdb*"):
        path.unlink()
    return results


def _step_name(label: str) -> str:
    for tool in ("healthscore", "duckdb"):
        if label.startswith("ingest_") and label.endswith(tool):
            return f"ingest_{tool}"
    return label.removesuffix("_raw_events")


def _run_child(step: str, args: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, str(BENCH_DIR / "steps.py"), step, json.dumps(args)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"step {step} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Compute the ratios the targets are stated in."""

    def seconds(label: str) -> float:
        return results[label]["seconds"]

    def rate(label: str) -> float:
        return results[label]["rows"] / results[label]["seconds"]

    return {
        "score_healthscore_over_sql": seconds("score_healthscore")
        / seconds("score_sql"),
        "score_pandas_over_healthscore": seconds("score_pandas")
        / seconds("score_healthscore"),
        "score_healthscore_raw_events_over_sql": seconds("score_healthscore_raw_events")
        / seconds("score_sql"),
        "score_pandas_over_healthscore_raw_events": seconds("score_pandas")
        / seconds("score_healthscore_raw_events"),
        "ingest_parquet_rate_healthscore_over_duckdb": rate(
            "ingest_parquet_healthscore"
        )
        / rate("ingest_parquet_duckdb"),
        "ingest_csv_rate_healthscore_over_duckdb": rate("ingest_csv_healthscore")
        / rate("ingest_csv_duckdb"),
        "increment_over_full_recompute": seconds("increment")
        / seconds("full_recompute"),
        "increment_over_full_recompute_raw_events": seconds("increment_raw_events")
        / seconds("full_recompute_raw_events"),
    }


def machine_info() -> dict[str, Any]:
    """Describe the machine and the package versions the figures were taken on."""
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_kib = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        memory_kib = int(meminfo.read_text().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(memory_kib / 1024**2, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _scale_info(dataset: Dataset) -> dict[str, Any]:
    return {
        "name": dataset.scale.name,
        "accounts": dataset.scale.accounts,
        "days": dataset.scale.days,
        "events": dataset.event_rows,
        "ingest_events": dataset.ingest_rows,
        "day_events": dataset.day_rows,
        "as_of": dataset.as_of.isoformat(),
    }


def format_table(report: dict[str, Any]) -> str:
    """Render the steps and ratios as a plain-text table."""
    scale = report["scale"]
    lines = [
        f"scale {scale['name']}: {scale['accounts']:,} accounts, {scale['days']} days, "
        f"{scale['events']:,} events; ingest file {scale['ingest_events']:,} events; "
        f"one day {scale['day_events']:,} events",
        f"{'step':<28} {'seconds':>9} {'rows':>12} {'rows/s':>12} {'peak MB':>9} "
        f"{'setup MB':>9}",
    ]
    for label, step in report["steps"].items():
        rate = step["rows"] / step["seconds"]
        lines.append(
            f"{label:<28} {step['seconds']:>9.2f} {step['rows']:>12,} "
            f"{rate:>12,.0f} {step['peak_rss_mb']:>9.0f} "
            f"{step.get('setup_rss_mb', float('nan')):>9.0f}"
        )
    lines.append("")
    for name, value in report["ratios"].items():
        lines.append(f"{name:<46} {value:>8.3f}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
