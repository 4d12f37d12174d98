"""`healthscore score`, `healthscore accounts` and `healthscore explain`."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from healthscore.cli._common import (
    AsOfOption,
    ReadStoreOption,
    SnapshotOption,
    StoreOption,
    check_scoring_date,
    console,
    error_console,
    format_money,
    format_score,
    handle_errors,
    open_store,
    parse_date,
    styled_band,
    today_utc,
)
from healthscore.cli._spark import (
    SCORE_TABLES,
    check_score_store,
    open_read_store,
    score_on_spark,
    spark_options,
)
from healthscore.cli.human import computed_score, override_line
from healthscore.cli.parents import print_parent_explanation
from healthscore.cli.predict import prediction_line
from healthscore.exceptions import ConfigError
from healthscore.history import (
    DEFAULT_TREND_DAYS,
    ScoringRun,
    explain_account,
    latest_scores,
    score_snapshot,
    score_trends,
    stored_band_names,
)
from healthscore.history.peers import peer_percentiles
from healthscore.history.snapshots import member_profiles
from healthscore.metrics import available_metrics, resolve_metric
from healthscore.profiles import DEFAULT_PROFILE
from healthscore.scoring import (
    UNKNOWN_BAND,
    HealthProfile,
    ProfileSet,
    load_profile,
    load_profile_set,
    round_contributions,
)
from healthscore.store import Store

# A scoring date this many days after the newest event gets a warning.
STALE_DATA_DAYS = 30

ProfileOption = Annotated[
    Path | None,
    typer.Option(
        "--profile",
        "-p",
        help="Health profile YAML (components, weights, measures and bands), or a "
        "profile set YAML that chooses a profile per account by rules. "
        "[default: the built-in SaaS profile]",
        exists=True,
        dir_okay=False,
        show_default=False,
    ),
]

SegmentOption = Annotated[
    list[str] | None,
    typer.Option(
        "--segment",
        help="Only accounts in this segment (repeat for several).",
        show_default=False,
    ),
]


class Backend(StrEnum):
    """Engines that compute the metrics of a scoring run."""

    duckdb = "duckdb"
    spark = "spark"


BackendOption = Annotated[
    Backend,
    typer.Option(
        "--backend",
        help="Engine that computes the metrics. `spark` runs them on Apache Spark "
        "(install with `pip install 'healthscore[spark]'`, needs Java 17 or 21). "
        "The snapshot goes to the DuckDB --store with either engine.",
        case_sensitive=False,
    ),
]

SparkMasterOption = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help="Spark master URL for --backend spark: `local[N]` runs Spark in this "
        "process on N cores, or `yarn`, `spark://HOST:PORT`, `k8s://URL` for a "
        "cluster. [default: local[*]]",
        show_default=False,
        metavar="MASTER",
    ),
]

SparkDatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--spark-database",
        help="Read the input tables (accounts, account_attributes, users, events, "
        "survey_responses, tickets) from this Spark database instead of copying "
        "them from --store. For --backend spark on a cluster.",
        show_default=False,
        metavar="DATABASE",
    ),
]


@handle_errors
def score(
    as_of: AsOfOption = None,
    profile: ProfileOption = None,
    store: StoreOption = None,
    backend: BackendOption = Backend.duckdb,
    spark_master: SparkMasterOption = None,
    spark_database: SparkDatabaseOption = None,
) -> None:
    """Compute metrics as of a date, score every account and store the snapshot.

    Accounts with too little data (coverage under the profile's min_coverage) get the
    band Unknown and no score, rather than a score dragged to the middle.

    With `--backend spark` the metrics are computed on Apache Spark. By default the
    input tables of the DuckDB store are copied into a Spark session. With
    `--spark-database` they are read from that database of the Spark catalog, and
    the DuckDB store is created if needed. Either way the snapshot is stored in the
    DuckDB store, so `accounts`, `explain`, `export` and `report` read it as usual.
    """
    check_score_store(store)
    options = spark_options(backend.value, spark_master, spark_database)
    chosen = load_scoring_profile(profile)
    date = check_scoring_date(parse_date(as_of) or today_utc())
    if options is None:
        with open_store(store, create=False) as opened:
            with error_console.status(f"Scoring accounts as of {date} ..."):
                run = score_snapshot(opened, chosen, date)
    else:
        run = score_on_spark(store, chosen, date, options)

    print_run_summary(run)
    if options is not None:
        console.print(options.describe(), highlight=False)
    if run.result.scores.empty:
        _explain_empty_run(chosen)
    elif options is None:
        _warn_if_data_is_old(store, date, chosen)


def load_scoring_profile(path: Path | None) -> HealthProfile | ProfileSet:
    """Load a profile or profile set file, or the built-in profile for None.

    A profile file, or a set of one entry without a rule, gives that profile, so
    its runs store the profile's own hash.
    """
    if path is None:
        return load_profile(DEFAULT_PROFILE)
    profile_set = load_profile_set(path)
    if len(profile_set.entries) == 1 and profile_set.entries[0].when is None:
        return profile_set.entries[0].profile
    return profile_set


def _explain_empty_run(profile: HealthProfile | ProfileSet) -> None:
    scope = ""
    segments = [member.applies_to_segments for member in member_profiles(profile)]
    if all(segments):
        names = [name for group in segments if group for name in group]
        scope = f" in segments {list(dict.fromkeys(names))}"
    error_console.print(
        f"[yellow]warning:[/] no accounts{scope} existed as of that date, so nothing "
        "was scored. Ingest accounts first, or check the profile's applies_to and "
        "--as-of.",
        highlight=False,
    )


def _warn_if_data_is_old(
    store: str | None, as_of: dt.date, profile: HealthProfile | ProfileSet
) -> None:
    """Warn when the profile uses events and the newest is long before ``as_of``.

    Usage metrics then measure the gap since the data ended rather than the
    customers, which a default --as-of of today makes easy to miss. A profile
    without event metrics gets no warning, because the age of the events does not
    change its scores.
    """
    with open_store(store, create=False) as opened:
        if not _reads_events(opened, profile):
            return
        events = opened.table("events")
        newest = events.occurred_at.max().to_pyarrow().as_py()
    if newest is None:
        return
    gap = (as_of - newest.date()).days
    if gap > STALE_DATA_DAYS:
        error_console.print(
            f"[yellow]warning:[/] the newest event is from {newest.date()}, {gap} days "
            f"before the scoring date {as_of}. Usage metrics measure that gap. Pass "
            "--as-of with a date the data covers.",
            highlight=False,
        )


def _reads_events(store: Store, profile: HealthProfile | ProfileSet) -> bool:
    """Return whether any metric of the profile is computed from the events table."""
    available = available_metrics(store)
    return any(
        resolve_metric(name, available).source == "events" for name in profile.metrics
    )


def print_run_summary(run: ScoringRun) -> None:
    """Print how many accounts a run scored and how they fall into bands.

    A profile set run also prints how many accounts each member profile scored.
    """
    scores = run.result.scores
    kind = "profile set" if isinstance(run.profile, ProfileSet) else "profile"
    console.print(
        f"Scored {len(scores):,} accounts as of {run.as_of} with {kind} "
        f"[bold]{run.profile.name}[/] ({run.profile.hash[:12]}), run {run.run_id}.",
        highlight=False,
    )
    members = member_profiles(run.profile)
    if isinstance(run.profile, ProfileSet):
        per_profile = scores["profile"].value_counts()
        scored = [f"{m.name} {per_profile.get(m.name, 0):,}" for m in members]
        console.print("Profiles: " + escape(", ".join(scored)), highlight=False)
    counts = scores["band"].value_counts()
    bands = [band.name for member in members for band in member.bands]
    names = list(dict.fromkeys(bands)) + [UNKNOWN_BAND]
    parts = [f"{styled_band(name)} {counts.get(name, 0):,}" for name in names]
    console.print("Bands: " + ", ".join(parts), highlight=False)


@handle_errors
def accounts(
    band: Annotated[
        str | None,
        typer.Option(
            "--band", help="Only accounts in this band (e.g. Poor).", show_default=False
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Maximum number of rows.")
    ] = 20,
    segment: SegmentOption = None,
    as_of: SnapshotOption = None,
    store: ReadStoreOption = None,
    peers: Annotated[
        bool,
        typer.Option(
            "--peers",
            help="Add each account's percentile rank (0-100) among the scored "
            "accounts of its segment.",
        ),
    ] = False,
    trend_days: Annotated[
        str,
        typer.Option(
            "--trend-days",
            help="Show the score change over these numbers of days, comma-separated. "
            "A column appears when some listed account has a score that many days "
            "before its snapshot. An empty value shows none.",
            metavar="DAYS",
        ),
    ] = ",".join(map(str, DEFAULT_TREND_DAYS)),
) -> None:
    """List scored accounts from the lowest score up, with their weakest component.

    Each account shows its newest stored snapshot unless --as-of picks a date,
    and its score change since the snapshot of 7, 30 and 90 days before where one
    is stored (see --trend-days).
    """
    date = parse_date(as_of)
    windows = parse_trend_days(trend_days)
    with open_read_store(store, tables=SCORE_TABLES) as opened:
        frame = latest_scores(opened, as_of=date, segments=segment)
        bands = stored_band_names(opened)
        if windows and not frame.empty:
            frame = _with_trends(frame, score_trends(opened, date, windows), windows)
    if peers:
        frame["percentile"] = peer_percentiles(frame)
    if band is not None:
        frame = _filter_band(frame, band, bands)
    if frame.empty:
        error_console.print(
            "No stored scores match. Run `healthscore score` first, or check "
            "--segment and --as-of.",
            highlight=False,
        )
        return
    print_accounts_table(frame, limit)


def _filter_band(frame: pd.DataFrame, band: str, bands: Sequence[str]) -> pd.DataFrame:
    """Keep the rows of one band, matched without regard to case.

    A band of a stored profile that no account is in gives an empty frame; a name
    that no stored profile defines is an error.
    """
    known = [*bands, UNKNOWN_BAND]
    if band.lower() not in {name.lower() for name in known}:
        raise ConfigError(
            f"--band {band!r} is not a band of the stored profiles; expected one of "
            f"{known}.",
            field="--band",
        )
    return frame[frame["band"].str.lower() == band.lower()]


def parse_trend_days(text: str) -> list[int]:
    """Parse the --trend-days value, such as ``7,30,90``, into whole days."""
    days = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            value = int(part)
        except ValueError:
            value = 0
        if value < 1:
            raise ConfigError(
                f"--trend-days {text!r} contains {part.strip()!r}, which is not a "
                "whole number of days of at least 1. Pass days such as 7,30,90.",
                field="--trend-days",
            )
        days.append(value)
    return list(dict.fromkeys(days))


def _with_trends(
    frame: pd.DataFrame, trends: pd.DataFrame, windows: Sequence[int]
) -> pd.DataFrame:
    """Add a ``change_Nd`` column per window in which some account has history."""
    changes = [f"change_{n}d" for n in windows]
    known = [f"change_{n}d" for n in windows if trends[f"score_{n}d"].notna().any()]
    merged = frame.merge(trends[["account_id", *changes]], on="account_id", how="left")
    return merged.drop(columns=[c for c in changes if c not in known])


def _trend_columns(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """Return ``(column, heading)`` of each change column in ``frame``."""
    columns = []
    for column in frame.columns:
        name = str(column)
        if name.startswith("change_") and name.endswith("d"):
            columns.append((name, f"{name[len('change_') : -1]}d change"))
    return columns


def _format_change(value: float | None) -> str:
    if value is None or pd.isna(value):
        return "-"
    return f"{value:+.1f}"


def print_accounts_table(frame: pd.DataFrame, limit: int) -> None:
    """Print the ranked accounts table, at most ``limit`` rows.

    The as-of date goes in the title when every row shares it, else in a column.
    Each ``change_Nd`` column of ``frame`` is shown as the signed score change
    over N days.
    """
    dates = sorted({str(date) for date in frame["as_of"]})
    one_date = len(dates) == 1
    table = Table(title_justify="left")
    table.title = (
        f"{min(limit, len(frame)):,} of {len(frame):,} accounts"
        + (f" as of {dates[0]}" if one_date else "")
        + ", lowest score first"
    )
    table.add_column("account", no_wrap=True)
    table.add_column("segment", overflow="fold", min_width=7)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("band", no_wrap=True)
    table.add_column("coverage", justify="right", no_wrap=True)
    table.add_column("weakest", overflow="fold", min_width=10)
    table.add_column("ARR", justify="right", no_wrap=True)
    peers = "percentile" in frame.columns
    if peers:
        table.add_column("peer pct", justify="right", no_wrap=True)
    trends = _trend_columns(frame)
    for _, heading in trends:
        table.add_column(heading, justify="right", no_wrap=True)
    if not one_date:
        table.add_column("as of", no_wrap=True)
    rows: list[dict[Any, Any]] = frame.head(limit).to_dict("records")
    for row in rows:
        cells = [
            escape(str(row["account_id"])),
            _text(row["segment"]),
            format_score(row["score"]),
            styled_band(row["band"]),
            f"{row['coverage']:.0%}",
            _text(row["weakest_component"]),
            format_money(row["arr"]),
        ]
        if peers:
            cells.append(format_score(row["percentile"]))
        cells.extend(_format_change(row[column]) for column, _ in trends)
        table.add_row(*cells, *([] if one_date else [str(row["as_of"])]))
    console.print(table)


def _text(value: object) -> str:
    """Return a text cell, or "-" for a missing value."""
    return escape(value) if isinstance(value, str) and value else "-"


@handle_errors
def explain(
    account_id: Annotated[
        str, typer.Argument(help="The account to explain.", show_default=False)
    ],
    as_of: SnapshotOption = None,
    store: ReadStoreOption = None,
    children: Annotated[
        bool,
        typer.Option(
            "--children",
            help="Explain a parent account's roll-up instead: each child's "
            "contribution to each component. Run `healthscore parents` first.",
        ),
    ] = False,
) -> None:
    """Show how each measure adds up to an account's stored score.

    Each row is one measure: the metric value, the points it earned (0-100), its
    share of the weight among the measures that had data, and its contribution.
    The contributions add up to the score exactly. The account's newest stored
    churn prediction (`healthscore predict`) follows, with its interval and
    drivers.
    """
    date = parse_date(as_of)
    if children:
        with open_store(store, create=False) as opened:
            print_parent_explanation(opened, account_id, date)
        return
    # Imported here because the predict package loads scikit-learn, which
    # would slow down every other command.
    from healthscore.predict.predictions import account_prediction

    with open_read_store(store, tables=SCORE_TABLES) as opened:
        explanation = explain_account(opened, account_id, as_of=date)
        prediction, drivers = account_prediction(opened, account_id)
    row: dict[Any, Any] = explanation.score.to_dict()
    console.print(
        f"Account [bold]{escape(account_id)}[/] as of {row['as_of']}: score "
        f"[bold]{format_score(row['score'])}[/], band {styled_band(row['band'])}, "
        f"coverage {row['coverage']:.0%}, profile {row['profile_name']} "
        f"({row['profile_hash'][:12]}).",
        highlight=False,
    )
    line = override_line(row)
    if line is not None:
        console.print(line, highlight=False)
    console.print(_measure_table(explanation.measures, computed_score(row)))
    if prediction is not None:
        console.print(prediction_line(prediction, drivers), highlight=False)


def _format_value(number: Any, text: Any) -> str:
    if isinstance(text, str):
        return escape(text)
    if number is None or pd.isna(number):
        return "-"
    return f"{number:,.4g}"


def _measure_table(measures: pd.DataFrame, score: float) -> Table:
    """Build the explanation table: one section per component, one row per measure.

    The contributions are rounded with largest-remainder rounding, so the printed
    parts add up to the printed total.
    """
    known = not math.isnan(score)
    contributions = measures["contribution"].tolist()
    rounded = round_contributions(contributions, score, 2) if known else contributions
    notes = [note if isinstance(note, str) else "" for note in measures["note"]]

    table = Table(show_footer=True)
    table.add_column("measure", footer="score", no_wrap=True)
    table.add_column("value", overflow="fold", min_width=8)
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column("weight", justify="right", no_wrap=True)
    total = f"{score:.2f}" if known else "-"
    table.add_column("contribution", footer=total, justify="right", no_wrap=True)
    if any(notes):
        table.add_column("note", overflow="fold", min_width=8)

    previous = None
    records: list[dict[Any, Any]] = measures.to_dict("records")
    for measure, contribution, note in zip(records, rounded, notes, strict=True):
        if measure["component"] != previous:
            if previous is not None:
                table.add_section()
            table.add_row(f"[bold]{escape(measure['component'])}[/]")
            previous = measure["component"]
        table.add_row(
            f"  {escape(measure['measure'])}",
            _format_value(measure["number_value"], measure["text_value"]),
            format_score(measure["points"]),
            f"{measure['effective_weight']:.1%}",
            f"{contribution + 0.0:.2f}",
            *([escape(note)] if any(notes) else []),
        )
    return table
