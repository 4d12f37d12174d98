"""Parent accounts rolled up from a stored run, kept in the store and read back.

:func:`roll_up_run` takes the child scores of one stored scoring run, rolls them up
with :func:`healthscore.scoring.hierarchy.roll_up` and appends the result to the
``parent_scores``, ``parent_components`` and ``parent_contributions`` tables under a
new ``rollup_id``. Readers take the newest roll-up of the newest as-of date, or of
the date requested.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

import ibis
import pandas as pd
import pyarrow as pa

from healthscore.exceptions import ConfigError, NotFoundError
from healthscore.history.inputs import StoredRun, find_run, stored_dates
from healthscore.scoring import HealthProfile
from healthscore.scoring.hierarchy import (
    HierarchyRules,
    ParentScores,
    hierarchy_rules,
    parse_profile_with_hierarchy,
    roll_up,
)
from healthscore.store import TABLES, Store

__all__ = [
    "ParentExplanation",
    "ParentRollup",
    "explain_parent",
    "latest_parent_scores",
    "roll_up_run",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParentRollup:
    """One stored roll-up of parent accounts.

    Attributes
    ----------
    rollup_id
        Identifier of the roll-up in the parent tables.
    run
        The scoring run whose child scores were rolled up.
    profile
        The profile whose component weights and bands were used.
    rules
        The roll-up operators, weights and bands.
    parents
        The parent scores, components and child contributions.
    rolled_at
        When the roll-up was stored (UTC).
    """

    rollup_id: str
    run: StoredRun
    profile: HealthProfile
    rules: HierarchyRules
    parents: ParentScores
    rolled_at: dt.datetime


@dataclass(frozen=True)
class ParentExplanation:
    """A parent's stored roll-up: its score row, components and child contributions."""

    score: pd.Series
    components: pd.DataFrame
    contributions: pd.DataFrame


def roll_up_run(
    store: Store,
    *,
    as_of: dt.date | None = None,
    profile: HealthProfile | None = None,
    rules: HierarchyRules | None = None,
) -> ParentRollup:
    """Roll up the newest stored run, or the newest run of ``as_of``, and store it.

    Parameters
    ----------
    store
        The store to read the run from and write the roll-up to.
    as_of
        The as-of date of the run; by default the newest stored date.
    profile
        The profile whose component weights and bands are used. By default the
        profile the run was scored with, as stored in ``profiles``.
    rules
        The roll-up rules. By default the ``hierarchy:`` key of ``profile``.

    Returns
    -------
    ParentRollup
        The stored roll-up. Its ``parents`` is empty when no scored account has
        a parent.

    Raises
    ------
    NotFoundError
        If the store has no scores, or none for ``as_of``.
    ConfigError
        If the profile's components differ from the components of the run.
    """
    run = _pick_run(store, as_of)
    if profile is None:
        profile, stored_rules = _stored_profile(store, run.profile_hash)
        rules = rules or stored_rules
    rules = rules or hierarchy_rules(profile)
    children = _run_scores(store, run, rules)
    accounts = store.table("accounts").select("account_id", "parent_id", "arr")
    parents = roll_up(children, accounts.to_pandas(), rules)

    rollup = ParentRollup(
        rollup_id=uuid.uuid4().hex,
        run=run,
        profile=profile,
        rules=rules,
        parents=parents,
        rolled_at=dt.datetime.now(dt.UTC),
    )
    with store.transaction():
        _store_rollup(store, rollup)
    logger.info(
        "rolled up %d parent accounts of run %s as of %s, roll-up %s",
        len(parents.scores),
        run.run_id,
        run.as_of,
        rollup.rollup_id,
    )
    return rollup


def _pick_run(store: Store, as_of: dt.date | None) -> StoredRun:
    if as_of is None:
        dates = stored_dates(store)
        if not dates:
            raise NotFoundError(
                "no stored scores to roll up. Run `healthscore score` first."
            )
        as_of = dates[-1]
    return find_run(store, as_of=as_of)


def _stored_profile(
    store: Store, profile_hash: str
) -> tuple[HealthProfile, HierarchyRules]:
    profiles = store.table("profiles")
    rows = profiles.filter(profiles.profile_hash == profile_hash).to_pandas()
    if rows.empty:
        raise NotFoundError(
            f"profile {profile_hash[:12]!r} of the run is not in the store. Pass the "
            "profile the run was scored with as --profile.",
            key=profile_hash,
        )
    row = rows.iloc[0]
    source = row["source"] if isinstance(row["source"], str) else None
    return parse_profile_with_hierarchy(str(row["text"]), path=source)


def _run_scores(store: Store, run: StoredRun, rules: HierarchyRules) -> pd.DataFrame:
    """Return the run's scores with one column per component, as the engine does."""
    scores = store.table("scores")
    scores = scores.filter(scores.run_id == run.run_id)
    frame = scores.select("account_id", "score", "band").to_pandas()
    components = store.table("score_components")
    components = components.filter(components.run_id == run.run_id)
    long = components.select("account_id", "component", "score").to_pandas()

    stored = sorted(set(long["component"]))
    if stored and stored != sorted(rules.components):
        raise ConfigError(
            f"the profile has components {sorted(rules.components)!r}, but run "
            f"{run.run_id} as of {run.as_of} stored {stored!r}. Pass the profile the "
            "run was scored with, or score again with this profile first.",
            field="--profile",
        )
    wide = long.pivot(index="account_id", columns="component", values="score")
    wide = wide.reindex(columns=list(rules.components))
    return frame.join(wide, on="account_id")


def _store_rollup(store: Store, rollup: ParentRollup) -> None:
    parents = rollup.parents
    constants = {
        "rollup_id": rollup.rollup_id,
        "run_id": rollup.run.run_id,
        "as_of": rollup.run.as_of,
        "profile_hash": rollup.run.profile_hash,
        "rules": rollup.rules.to_json(),
        "rolled_at": rollup.rolled_at,
    }
    store.insert(
        "parent_scores", _arrow_rows(parents.scores, "parent_scores", constants)
    )
    for table, frame in (
        ("parent_components", parents.components),
        ("parent_contributions", parents.contributions),
    ):
        store.insert(table, _arrow_rows(frame, table, constants))


def _arrow_rows(
    frame: pd.DataFrame, table: str, constants: dict[str, object]
) -> pa.Table:
    """Build the rows of a parent table, with NaN and None stored as null."""
    schema = TABLES[table].to_pyarrow()
    columns = []
    for field in schema:
        if field.name in constants:
            value = pa.scalar(constants[field.name], type=field.type)
            columns.append(pa.repeat(value, len(frame)))
        else:
            values = frame[field.name].astype(object)
            columns.append(pa.array(values, type=field.type, from_pandas=True))
    return pa.Table.from_arrays(columns, schema=schema)


def _newest_rollups(store: Store, as_of: dt.date | None) -> ibis.Table:
    """Return the parent_scores rows of the newest roll-up of the chosen date."""
    rows = store.table("parent_scores")
    if as_of is not None:
        rows = rows.filter(rows.as_of == as_of)
    newest = rows.order_by([ibis.desc("as_of"), ibis.desc("rolled_at")]).limit(1)
    return rows.semi_join(newest.select("rollup_id"), "rollup_id")


def latest_parent_scores(store: Store, *, as_of: dt.date | None = None) -> pd.DataFrame:
    """Return the parents of the newest stored roll-up, with their account names.

    Parameters
    ----------
    store
        The store to read.
    as_of
        Only roll-ups of runs as of this date; by default the newest date.

    Returns
    -------
    pandas.DataFrame
        The ``parent_scores`` columns plus the parent's ``name`` and
        ``segment``, sorted by score (Unknown
        last), then ``parent_id``. Empty when nothing was rolled up.
    """
    rows = _newest_rollups(store, as_of)
    accounts = store.table("accounts").select(
        parent_id="account_id", name="name", segment="segment"
    )
    frame = rows.left_join(accounts, "parent_id").drop("parent_id_right").to_pandas()
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
    return frame.sort_values(
        ["score", "parent_id"], na_position="last", kind="mergesort"
    ).reset_index(drop=True)


def explain_parent(
    store: Store, parent_id: str, *, as_of: dt.date | None = None
) -> ParentExplanation:
    """Return a parent's newest stored roll-up with each child's contribution.

    Raises
    ------
    NotFoundError
        If no stored roll-up contains the parent (for that date).
    """
    rows = store.table("parent_scores")
    rows = rows.filter(rows.parent_id == parent_id)
    if as_of is not None:
        rows = rows.filter(rows.as_of == as_of)
    rows = rows.order_by([ibis.desc("as_of"), ibis.desc("rolled_at")]).limit(1)
    found = rows.to_pandas()
    if found.empty:
        when = "" if as_of is None else f" as of {as_of}"
        raise NotFoundError(
            f"no stored roll-up for parent account {parent_id!r}{when}. Run "
            "`healthscore parents` first; it lists the parent accounts it rolls up.",
            key=parent_id,
        )
    found["as_of"] = pd.to_datetime(found["as_of"]).dt.date
    row = found.iloc[0]

    chosen = {"rollup_id": row["rollup_id"], "parent_id": parent_id}
    components = _rows_of(store, "parent_components", chosen)
    components = components.sort_values("position").reset_index(drop=True)
    contributions = _rows_of(store, "parent_contributions", chosen)
    positions = dict(zip(components["component"], components["position"], strict=True))
    order = contributions["component"].map(positions)
    contributions = contributions.assign(_position=order).sort_values(
        ["_position", "child_id"], kind="mergesort"
    )
    return ParentExplanation(
        score=row,
        components=components,
        contributions=contributions.drop(columns="_position").reset_index(drop=True),
    )


def _rows_of(store: Store, table: str, chosen: dict[str, str]) -> pd.DataFrame:
    rows = store.table(table)
    for column, value in chosen.items():
        rows = rows.filter(rows[column] == value)
    return rows.to_pandas()
