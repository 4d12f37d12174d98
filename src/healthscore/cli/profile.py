"""`healthscore profile check` and `healthscore profile diff`."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from healthscore.cli._common import (
    EXIT_CONFIG,
    AsOfOption,
    ReadStoreOption,
    check_scoring_date,
    console,
    error_console,
    format_score,
    handle_errors,
    parse_date,
    styled_band,
    today_utc,
)
from healthscore.cli._spark import SCORING_INPUT_TABLES, open_read_store
from healthscore.exceptions import ConfigError, ProfileError
from healthscore.metrics import (
    MetricSpec,
    available_metrics,
    compute_metrics,
    resolve_metric,
)
from healthscore.metrics.asof import period_end
from healthscore.scoring import ProfileDiff, ProfileSet, diff_profiles, load_profile_set
from healthscore.store import STORE_ENV_VAR, Store

__all__ = ["ChurnOutcomes", "check", "churn_outcomes", "diff", "profile_app"]

profile_app = typer.Typer(
    help="Check a health profile or profile set, or preview a change to one.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

ProfileFileArgument = Annotated[
    Path,
    typer.Argument(
        help="A health profile or profile set YAML file.",
        show_default=False,
        metavar="FILE",
    ),
]

CheckStoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV_VAR,
        help="Also check that the store can compute every metric the profiles name: "
        "a DuckDB file or `spark://MASTER/DATABASE`. [default: $"
        f"{STORE_ENV_VAR}, else no store check]",
        show_default=False,
        metavar="STORE",
    ),
]

_HASH_CHARACTERS = 12


@handle_errors
def check(file: ProfileFileArgument, store: CheckStoreOption = None) -> None:
    """Validate a profile or a profile set and list its entries.

    Each entry shows its rule (or `default`), its profile's name and short hash, and
    the measures of each component. With `--store`, every metric must be one the
    store can compute, and a text metric must use a category scheme. Exits with 3
    and lists every problem with its file and field when the file is invalid.
    """
    profile_set = _load_checked(file)
    console.print(_entries_table(profile_set))
    if store is None:
        console.print(
            f"{escape(str(file))} is valid. Metric names were not checked against a "
            "store; pass --store to check them.",
            highlight=False,
        )
        return

    with open_read_store(store, tables=("account_attributes",)) as opened:
        known = available_metrics(opened)
    _raise_problems(_metric_problems(profile_set, known), profile_set)
    console.print(
        f"{escape(str(file))} is valid, and the store can compute all "
        f"{len(profile_set.metrics)} metrics it uses.",
        highlight=False,
    )


def _load_checked(file: Path) -> ProfileSet:
    """Load the set, or print every problem with its file and field and exit 3."""
    try:
        return load_profile_set(file)
    except ProfileError as exc:
        _print_problems(exc)
        raise typer.Exit(EXIT_CONFIG) from exc


def _print_problems(error: ProfileError) -> None:
    where = str(error.path) if error.path is not None else "profile"
    count = len(error.problems)
    noun = "problem" if count == 1 else "problems"
    error_console.print(
        f"[bold red]error:[/] {escape(where)} is invalid ({count} {noun}):",
        highlight=False,
    )
    for field, reason in error.problems:
        location = f"{where}: {field}" if field else where
        error_console.print(
            f"  {escape(location)}: {escape(reason)}", highlight=False, soft_wrap=True
        )


def _entries_table(profile_set: ProfileSet) -> Table:
    entries = len(profile_set.entries)
    title = (
        f"Profile set {escape(profile_set.name)}: {entries} "
        f"{'entry' if entries == 1 else 'entries'}, tried in order"
    )
    if _is_single_profile(profile_set):
        title = f"Profile {escape(profile_set.name)}"
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("when", overflow="fold", min_width=10)
    table.add_column("profile", no_wrap=True)
    table.add_column("hash", no_wrap=True)
    table.add_column("measures", overflow="fold", min_width=20)
    for number, entry in enumerate(profile_set.entries, start=1):
        profile = entry.profile
        when = "default" if entry.when is None else entry.when.describe()
        if profile.applies_to_segments is not None:
            segments = list(profile.applies_to_segments)
            when += f" (applies_to segments {segments!r})"
        measures = "; ".join(
            f"{component.name}: "
            + ", ".join(measure.name for measure in component.measures)
            for component in profile.components
        )
        table.add_row(
            str(number),
            escape(when),
            escape(profile.name),
            profile.hash[:_HASH_CHARACTERS],
            escape(f"{len(profile.measures)} ({measures})"),
        )
    return table


def _metric_problems(
    profile_set: ProfileSet, known: Mapping[str, MetricSpec]
) -> list[tuple[str, str]]:
    """List ``(field, message)`` for each metric the store cannot compute or score.

    Linear, threshold and percentile schemes need a number metric, and a category
    scheme takes either kind, as ``healthscore score`` requires.
    """
    single = _is_single_profile(profile_set)
    problems = []
    checked: set[str] = set()
    for i, entry in enumerate(profile_set.entries):
        if entry.profile.name in checked:
            continue
        checked.add(entry.profile.name)
        prefix = "" if single else f"profiles[{i}].profile."
        source = "" if single or entry.reference is None else entry.reference
        for j, component in enumerate(entry.profile.components):
            for k, measure in enumerate(component.measures):
                field = f"{prefix}components[{j}].measures[{k}]"
                problem = _measure_problem(measure.metric, measure.scheme.kind, known)
                if problem is not None:
                    part, message = problem
                    if source:
                        message = f"in profile file {source!r}: {message}"
                    problems.append((f"{field}.{part}", message))
    return problems


def _is_single_profile(profile_set: ProfileSet) -> bool:
    """Return whether the set wraps a single profile file, not a set file."""
    if len(profile_set.entries) != 1:
        return False
    profile = profile_set.entries[0].profile
    return profile.source == profile_set.source and profile.text == profile_set.text


def _measure_problem(
    metric: str, scheme: str, known: Mapping[str, MetricSpec]
) -> tuple[str, str] | None:
    try:
        spec = resolve_metric(metric, dict(known))
    except ConfigError as exc:
        return "metric", str(exc)
    if spec.kind == "text" and scheme != "category":
        return (
            scheme,
            f"metric {metric!r} holds text, but the {scheme} scheme needs numbers. "
            "Map its values to points with a category scheme, or pick a number "
            "metric.",
        )
    return None


def _raise_problems(problems: list[tuple[str, str]], profile_set: ProfileSet) -> None:
    if not problems:
        return
    error = ProfileError(
        f"found {len(problems)} problems with metrics.",
        path=profile_set.source,
        problems=problems,
    )
    _print_problems(error)
    raise typer.Exit(EXIT_CONFIG)


@dataclass(frozen=True)
class ChurnOutcomes:
    """Churn outcomes per account for a check of scores as of a date.

    Attributes
    ----------
    values
        True (churned after the as-of date, or churned on an unknown date), False
        (not churned) or None (unknown), indexed by ``account_id``.
    churned_after
        Accounts whose ``churned_at`` is after the as-of date.
    churned_undated
        Accounts marked churned without a ``churned_at``. They count as churned,
        although some may have left before the as-of date.
    retained
        Accounts marked not churned.
    unknown
        Accounts without an outcome.
    """

    values: pd.Series
    churned_after: int
    churned_undated: int
    retained: int
    unknown: int

    def describe(self, as_of: dt.date) -> str:
        """Return the outcome counts in words."""
        text = (
            f"Outcomes: {self.churned_after:,} accounts churned after {as_of}, "
            f"{self.retained:,} did not churn, {self.unknown:,} unknown."
        )
        if self.churned_undated:
            text += (
                f" {self.churned_undated:,} accounts are marked churned with no "
                "churned_at date. They count as churned, though some may have left "
                f"before {as_of}."
            )
        return text


def churn_outcomes(accounts: pd.DataFrame, as_of: dt.date) -> ChurnOutcomes:
    """Derive each account's churn outcome after ``as_of`` from its account row.

    Parameters
    ----------
    accounts
        ``account_id``, ``churned`` (boolean or missing) and ``churned_at``
        (timezone-aware UTC times or missing), one row per account.
    as_of
        The date the scores are computed as of.

    Returns
    -------
    ChurnOutcomes
        A ``churned_at`` after the end of ``as_of`` counts as churned, whatever
        ``churned`` is. A ``churned_at`` up to that end counts as unknown, because
        the account had already left. Without ``churned_at``, ``churned`` decides.
    """
    end = pd.Timestamp(period_end(as_of))
    churned_at = pd.to_datetime(accounts["churned_at"], utc=True)
    flag = accounts["churned"].astype("boolean")
    dated = churned_at.notna().to_numpy()
    after = dated & (churned_at >= end).to_numpy(dtype=bool, na_value=False)
    undated_churn = ~dated & flag.eq(True).to_numpy(dtype=bool, na_value=False)
    retained = ~dated & flag.eq(False).to_numpy(dtype=bool, na_value=False)

    values = np.full(len(accounts), None, dtype=object)
    values[after | undated_churn] = True
    values[retained] = False
    index = pd.Index(accounts["account_id"].to_numpy(dtype=object), name="account_id")
    return ChurnOutcomes(
        values=pd.Series(values, index=index, dtype=object, name="churned"),
        churned_after=int(after.sum()),
        churned_undated=int(undated_churn.sum()),
        retained=int(retained.sum()),
        unknown=int(len(accounts) - after.sum() - undated_churn.sum() - retained.sum()),
    )


LimitOption = Annotated[
    int,
    typer.Option(
        "--limit",
        "-n",
        min=0,
        help="The number of accounts that change band to list, largest score change "
        "first; 0 lists them all.",
    ),
]

JsonOption = Annotated[
    Path | None,
    typer.Option(
        "--json",
        help="Also write the comparison to this JSON file.",
        dir_okay=False,
        show_default=False,
        metavar="FILE",
    ),
]


@handle_errors
def diff(
    old: Annotated[
        Path,
        typer.Argument(help="The current profile or profile set.", show_default=False),
    ],
    new: Annotated[
        Path,
        typer.Argument(help="The changed profile or profile set.", show_default=False),
    ],
    as_of: AsOfOption = None,
    store: ReadStoreOption = None,
    limit: LimitOption = 20,
    json_file: JsonOption = None,
) -> None:
    """Score the same accounts with OLD and NEW and show what would change.

    The metrics are computed once, as of `--as-of`, for the metrics of both sides.
    The output shows the band transition matrix, the score distribution and band
    shares of each side, the ROC AUC of each side against churn, and the accounts
    whose band moves. An account counts as churned when its `churned_at` is after
    the as-of date, or when it is marked churned without a date, and the output
    gives the number of such undated accounts. Nothing is stored.
    """
    old_set, new_set = _load_checked(old), _load_checked(new)
    date = check_scoring_date(parse_date(as_of) or today_utc())
    with open_read_store(store, tables=SCORING_INPUT_TABLES) as opened:
        known = available_metrics(opened)
        _raise_problems(_metric_problems(old_set, known), old_set)
        _raise_problems(_metric_problems(new_set, known), new_set)
        with error_console.status(f"Computing the metrics as of {date} ..."):
            metrics, accounts = _diff_inputs(opened, date, old_set, new_set)

    outcomes = churn_outcomes(accounts, date)
    with error_console.status(f"Scoring {len(metrics):,} accounts twice ..."):
        result = diff_profiles(
            metrics, old_set, new_set, outcomes.values, accounts=accounts, as_of=date
        )
    moved = _top_moves(result.moved, limit)
    _print_diff(result, old_set, new_set, date, outcomes, moved)
    if json_file is not None:
        sides = ((old, old_set), (new, new_set))
        _write_json(json_file, result, sides, date, outcomes, moved)
        console.print(f"Wrote {escape(str(json_file))}.", highlight=False)


def _diff_inputs(
    store: Store, as_of: dt.date, old_set: ProfileSet, new_set: ProfileSet
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compute the metrics of both sides once, and read the matching account rows."""
    names = list(dict.fromkeys([*old_set.metrics, *new_set.metrics]))
    metrics = compute_metrics(store, as_of, names, segments=_segments(old_set, new_set))
    columns = ["account_id", "segment", "plan", "created_at", "arr"]
    rows = store.table("accounts").select(*columns, "churned", "churned_at")
    accounts = metrics[["account_id"]].merge(
        rows.to_pandas(), on="account_id", how="left"
    )
    return metrics, accounts


def _segments(*sets: ProfileSet) -> list[str] | None:
    """Return the segments any profile applies to, or None if one applies to all."""
    segments: list[str] = []
    for profile_set in sets:
        for profile in profile_set.profiles:
            if profile.applies_to_segments is None:
                return None
            segments.extend(profile.applies_to_segments)
    return list(dict.fromkeys(segments))


def _top_moves(moved: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Order the accounts that change band by score change, largest first.

    Accounts that become Unknown or not scored on one side have no score change,
    so they come last.
    """
    size = moved["score_change"].abs()
    order = np.lexsort((np.arange(len(moved)), -size.fillna(-1.0).to_numpy()))
    ranked = moved.iloc[order].reset_index(drop=True)
    return ranked if limit == 0 else ranked.head(limit)


def _print_diff(
    result: ProfileDiff,
    old_set: ProfileSet,
    new_set: ProfileSet,
    as_of: dt.date,
    outcomes: ChurnOutcomes,
    moved: pd.DataFrame,
) -> None:
    total = len(result.accounts)
    console.print(
        f"Compared [bold]{_describe_set(old_set)}[/] (old) with "
        f"[bold]{_describe_set(new_set)}[/] (new) on {total:,} accounts as of "
        f"{as_of}.",
        highlight=False,
    )
    console.print(escape(outcomes.describe(as_of)), highlight=False)
    console.print(_transition_table(result.transitions))
    console.print(_distribution_table(result.distribution))
    console.print(_shares_table(result.band_shares))
    console.print(_describe_auc(result), highlight=False)
    console.print(
        f"{len(result.moved):,} of {total:,} accounts change band.", highlight=False
    )
    if not moved.empty:
        console.print(_moved_table(moved, len(result.moved)))


def _describe_set(profile_set: ProfileSet) -> str:
    """Name the set, with the profile's hash for a single profile file."""
    digest = profile_set.hash
    if _is_single_profile(profile_set):
        digest = profile_set.entries[0].profile.hash
    return f"{escape(profile_set.name)} ({digest[:_HASH_CHARACTERS]})"


def _transition_table(transitions: pd.DataFrame) -> Table:
    table = Table(
        title="Bands: old in rows, new in columns",
        title_justify="left",
    )
    table.add_column("old \\ new", no_wrap=True)
    for band in transitions.columns:
        table.add_column(styled_band(str(band)), justify="right", no_wrap=True)
    for band, row in transitions.iterrows():
        table.add_row(styled_band(str(band)), *(f"{int(n):,}" for n in row))
    return table


def _distribution_table(distribution: pd.DataFrame) -> Table:
    table = Table(title="Score distribution", title_justify="left")
    table.add_column("statistic", no_wrap=True)
    for column in ("old", "new", "change"):
        table.add_column(column, justify="right", no_wrap=True)
    for statistic, row in distribution.iterrows():
        digits = 0 if statistic in ("accounts", "scored") else 1
        cells = [
            _format_statistic(row["old"], digits, signed=False),
            _format_statistic(row["new"], digits, signed=False),
            _format_statistic(row["change"], digits, signed=True),
        ]
        table.add_row(str(statistic), *cells)
    return table


def _format_statistic(value: float, digits: int, *, signed: bool) -> str:
    if math.isnan(value):
        return "-"
    value = round(value, digits) + 0.0  # Adding 0.0 turns -0.0 into 0.0.
    if signed and value != 0:
        return f"{value:+,.{digits}f}"
    return f"{value:,.{digits}f}"


def _shares_table(shares: pd.DataFrame) -> Table:
    table = Table(title="Band shares", title_justify="left")
    table.add_column("band", no_wrap=True)
    for column in ("old accounts", "old share", "new accounts", "new share"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("change", justify="right", no_wrap=True)
    for row in shares.to_dict("records"):
        table.add_row(
            styled_band(str(row["band"])),
            f"{row['old_accounts']:,}",
            _percent(row["old_share"]),
            f"{row['new_accounts']:,}",
            _percent(row["new_share"]),
            _points(row["share_change"]),
        )
    return table


def _percent(share: float) -> str:
    return "-" if math.isnan(share) else f"{share:.1%}"


def _points(change: float) -> str:
    """Format a change of shares in percentage points."""
    return "-" if math.isnan(change) else f"{change * 100 + 0.0:+.1f} pp"


def _describe_auc(result: ProfileDiff) -> str:
    auc = result.auc
    if auc is None:
        return "ROC AUC against churn: no outcomes."
    if auc.paired_old is None or auc.paired_new is None:
        return (
            "ROC AUC against churn: not defined, because the accounts both sides "
            "scored are all churned or all retained, or have no outcome."
        )
    text = (
        f"ROC AUC against churn on the {auc.paired_accounts:,} accounts both sides "
        f"scored: old {auc.paired_old:.3f}, new {auc.paired_new:.3f} "
        f"({auc.paired_new - auc.paired_old:+.3f})."
    )
    if (
        auc.old_accounts != auc.paired_accounts
        or auc.new_accounts != auc.paired_accounts
    ):
        text += (
            f" Each side on all it scored: old {_auc(auc.old)} on "
            f"{auc.old_accounts:,}, new {_auc(auc.new)} on {auc.new_accounts:,}."
        )
    return text


def _auc(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _moved_table(moved: pd.DataFrame, total: int) -> Table:
    sets = moved["old_profile"].nunique() > 1 or moved["new_profile"].nunique() > 1
    table = Table(
        title=f"{len(moved):,} of {total:,} accounts that change band, largest "
        "score change first",
        title_justify="left",
    )
    table.add_column("account", no_wrap=True)
    if sets:
        table.add_column("old profile", overflow="fold")
    table.add_column("old score", justify="right", no_wrap=True)
    table.add_column("old band", no_wrap=True)
    if sets:
        table.add_column("new profile", overflow="fold")
    table.add_column("new score", justify="right", no_wrap=True)
    table.add_column("new band", no_wrap=True)
    table.add_column("change", justify="right", no_wrap=True)
    for row in moved.to_dict("records"):
        old_cells = [format_score(row["old_score"]), styled_band(row["old_band"])]
        new_cells = [format_score(row["new_score"]), styled_band(row["new_band"])]
        if sets:
            old_cells.insert(0, escape(str(row["old_profile"] or "-")))
            new_cells.insert(0, escape(str(row["new_profile"] or "-")))
        change = row["score_change"]
        table.add_row(
            escape(str(row["account_id"])),
            *old_cells,
            *new_cells,
            "-" if math.isnan(change) else f"{change + 0.0:+.1f}",
        )
    return table


def _write_json(
    path: Path,
    result: ProfileDiff,
    sides: tuple[tuple[Path, ProfileSet], tuple[Path, ProfileSet]],
    as_of: dt.date,
    outcomes: ChurnOutcomes,
    moved: pd.DataFrame,
) -> None:
    document = {
        "as_of": as_of.isoformat(),
        "old": _set_json(*sides[0]),
        "new": _set_json(*sides[1]),
        "accounts": len(result.accounts),
        "outcomes": {
            "churned_after_as_of": outcomes.churned_after,
            "churned_without_date": outcomes.churned_undated,
            "retained": outcomes.retained,
            "unknown": outcomes.unknown,
        },
        "transitions": {
            str(band): {str(k): int(v) for k, v in row.items()}
            for band, row in result.transitions.iterrows()
        },
        "distribution": {
            str(statistic): {k: _number(v) for k, v in row.items()}
            for statistic, row in result.distribution.iterrows()
        },
        "band_shares": _records(result.band_shares),
        "auc": _auc_json(result),
        "moved_total": len(result.moved),
        "moved": _records(moved.drop(columns=["band_changed"])),
    }
    try:
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot write --json {str(path)!r}: {exc}. Pass a path in a folder "
            "that exists and is writable.",
            field="--json",
        ) from exc


def _set_json(file: Path, profile_set: ProfileSet) -> dict[str, Any]:
    return {
        "file": str(file),
        "name": profile_set.name,
        "hash": profile_set.hash,
        "profiles": [
            {"name": profile.name, "hash": profile.hash}
            for profile in profile_set.profiles
        ],
    }


def _auc_json(result: ProfileDiff) -> dict[str, Any] | None:
    auc = result.auc
    if auc is None:
        return None
    return {
        "old": auc.old,
        "new": auc.new,
        "old_accounts": auc.old_accounts,
        "new_accounts": auc.new_accounts,
        "paired_old": auc.paired_old,
        "paired_new": auc.paired_new,
        "paired_accounts": auc.paired_accounts,
    }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(key): _number(value) for key, value in row.items()}
        for row in frame.to_dict("records")
    ]


def _number(value: Any) -> Any:
    """Return a JSON-ready value: numpy scalars as Python ones, NaN as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


profile_app.command()(check)
profile_app.command()(diff)
