"""Parent accounts scored from their children's scores.

A parent account's component scores come from its children's component scores, with
one roll-up operator per component:

``arr_weighted_mean``
    The mean of the children's scores weighted by their ARR.
``mean``
    The plain mean of the children's scores.
``worst``
    The lowest child score.
``share_poor``
    ``100 * (1 - p)``, where ``p`` is the share of children whose component score
    falls in the profile's lowest band (Poor by default).

Children without data for a component are left out of that component, and the
remaining shares are renormalised. The parent's score is the sum of its component
scores weighted by the profile's component weights, renormalised over the components
with data, exactly as the engine combines an account's measures.

Each component score is the sum of its children's contributions, added left to right
in ``child_id`` order, so ``sum()`` over a parent's contributions of one component
gives the component score exactly. A child that is itself a parent takes part with
its own roll-up, so grandparents are rolled up level by level.

The rules come from an optional ``hierarchy:`` mapping in the profile YAML, such as::

    hierarchy:
      default: arr_weighted_mean
      support: worst
      feedback: share_poor

Its keys are component names, plus ``default`` for every component not listed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from healthscore.exceptions import InputDataError, ProfileError
from healthscore.scoring._checks import load_yaml, suggest
from healthscore.scoring.engine import COVERAGE_TOLERANCE
from healthscore.scoring.profile import UNKNOWN_BAND, Band, HealthProfile, parse_profile

__all__ = [
    "DEFAULT_OPERATOR",
    "HIERARCHY_KEY",
    "OPERATORS",
    "HierarchyRules",
    "ParentScores",
    "hierarchy_rules",
    "parse_profile_with_hierarchy",
    "roll_up",
]

logger = logging.getLogger(__name__)

HIERARCHY_KEY = "hierarchy"
DEFAULT_OPERATOR = "arr_weighted_mean"
OPERATORS = ("arr_weighted_mean", "mean", "worst", "share_poor")

#: Notes on contribution rows that got no share of the parent's component score.
NO_DATA_NOTE = "no data"
NO_ARR_NOTE = "no ARR"
NOT_WORST_NOTE = "not the worst"
#: Note on every row of a component rolled up as a plain mean because no child with
#: data had a positive ARR.
MEAN_FALLBACK_NOTE = "mean: no child with data has ARR"

# Start of a top-level `hierarchy:` key in YAML block style, quoted or not.
_HIERARCHY_LINE = re.compile(r"""^(["']?)hierarchy\1[ \t]*:""")
# A line that starts a new top-level entry: anything but indentation, a comment or
# a blank line.
_TOP_LEVEL_LINE = re.compile(r"^[^\s#]")


@dataclass(frozen=True)
class HierarchyRules:
    """Roll-up rules of parent accounts: one operator per component, weights, bands.

    Attributes
    ----------
    operators
        The roll-up operator of each component, in profile order.
    weights
        Each component's weight as written in the profile, in profile order.
    bands
        The profile's bands, best first. The last one is the band that
        ``share_poor`` counts.
    min_coverage
        A parent whose components with data carry less than this share of the
        weight gets no score and the band Unknown.
    """

    operators: Mapping[str, str]
    weights: Mapping[str, float]
    bands: tuple[Band, ...]
    min_coverage: float

    @property
    def components(self) -> tuple[str, ...]:
        """Component names in profile order."""
        return tuple(self.weights)

    @property
    def poor_band(self) -> str:
        """Name of the lowest band, which ``share_poor`` counts."""
        return self.bands[-1].name

    def band_for(self, score: float) -> str:
        """Return the first band whose minimum ``score`` reaches, or Unknown for NaN."""
        if math.isnan(score):
            return UNKNOWN_BAND
        for band in self.bands:
            if score >= band.min:
                return band.name
        return self.bands[-1].name

    def to_json(self) -> str:
        """Return the operators as compact JSON, in profile order."""
        return json.dumps(dict(self.operators), separators=(",", ":"))


@dataclass(frozen=True)
class ParentScores:
    """Scores of parent accounts, with the children's parts that explain them.

    Attributes
    ----------
    scores
        One row per parent with at least one scored child, lowest level first, then
        by ``parent_id``. The columns are ``parent_id``, ``score`` (NaN when
        Unknown), ``band``, ``coverage`` and ``level``, which is 1 for a parent of
        leaf accounts and 2 for a parent of such parents. Next come ``children``
        (direct children that take part), ``worst_child``, ``worst_child_score``
        and ``arr``. That ARR is the sum of the children's ARR, and it weighs this
        parent in a roll-up above it. Last comes one column per component, NaN if
        no child has data.
    components
        One row per parent and component: ``parent_id``, ``component``,
        ``position`` (its index in the profile), ``operator``, ``score``,
        ``weight`` (normalised), ``effective_weight``, ``contribution`` and
        ``children_with_data``. A parent's contributions,
        added in component order, give its score.
    contributions
        One row per parent, component and direct child. Columns: ``parent_id``,
        ``component``, ``child_id``, ``operator`` and ``child_score`` (the child's
        component score). Then ``points``, the value the operator counts: the child
        score, or 0 or 100 for ``share_poor``. Last come ``weight`` (the child's
        share), ``contribution`` (``weight * points``) and ``note`` (why a child
        got no share, else None). For each parent and component, the contributions
        added in row order give the component score.
    """

    scores: pd.DataFrame
    components: pd.DataFrame
    contributions: pd.DataFrame


@dataclass
class _Level:
    """Score, ARR and component scores of every account that can be a child."""

    ids: list[str] = field(default_factory=list)
    score: dict[str, float] = field(default_factory=dict)
    arr: dict[str, float] = field(default_factory=dict)
    parts: dict[str, np.ndarray] = field(default_factory=dict)


def hierarchy_rules(profile: HealthProfile) -> HierarchyRules:
    """Read the roll-up rules of ``profile`` from the ``hierarchy:`` key of its text.

    A profile without the key rolls every component up with
    :data:`DEFAULT_OPERATOR`.

    Raises
    ------
    ProfileError
        If the ``hierarchy:`` value is not a mapping, names an unknown component or
        an unknown operator.
    """
    raw = load_yaml(profile.text, profile.source) if profile.text.strip() else None
    section = raw.get(HIERARCHY_KEY) if isinstance(raw, Mapping) else None
    return _read_rules(section, profile)


def parse_profile_with_hierarchy(
    text: str, path: str | Path | None = None
) -> tuple[HealthProfile, HierarchyRules]:
    """Parse a profile whose YAML may contain a ``hierarchy:`` key, and its rules.

    :func:`~healthscore.scoring.parse_profile` rejects keys it does not know, so the
    ``hierarchy:`` block is blanked out before parsing, which keeps the line numbers
    of any error. The profile keeps the full ``text``, and its hash is that of the
    same profile without the block.

    Raises
    ------
    ProfileError
        If the profile or its ``hierarchy:`` value is invalid.
    """
    source = None if path is None else Path(path)
    raw = load_yaml(text, source) if text.strip() else None
    if not isinstance(raw, Mapping) or HIERARCHY_KEY not in raw:
        profile = parse_profile(text, path=source)
        return profile, _read_rules(None, profile)

    profile = parse_profile(_without_hierarchy(text, raw, source), path=source)
    profile = dataclasses.replace(profile, text=text)
    return profile, _read_rules(raw[HIERARCHY_KEY], profile)


def _without_hierarchy(text: str, raw: Mapping[Any, Any], source: Path | None) -> str:
    """Return ``text`` with the top-level ``hierarchy:`` entry replaced by blank lines.

    When the blanked text does not parse to the same mapping without that key, as
    with a flow-style document, the mapping is written out again instead.
    """
    lines = text.splitlines(keepends=True)
    inside = False
    for i, line in enumerate(lines):
        if _HIERARCHY_LINE.match(line):
            inside = True
        elif _TOP_LEVEL_LINE.match(line):
            inside = False
        if inside:
            lines[i] = "\n"
    blanked = "".join(lines)

    expected = {key: value for key, value in raw.items() if key != HIERARCHY_KEY}
    if load_yaml(blanked, source) == expected:
        return blanked
    return json.dumps(expected)


def _read_rules(section: Any, profile: HealthProfile) -> HierarchyRules:
    names = [component.name for component in profile.components]
    chosen = _read_operators(section, names, profile.source)
    default = chosen.pop("default", DEFAULT_OPERATOR)
    return HierarchyRules(
        operators={name: chosen.get(name, default) for name in names},
        weights={c.name: c.weight for c in profile.components},
        bands=profile.bands,
        min_coverage=profile.min_coverage,
    )


def _read_operators(
    section: Any, components: list[str], path: Path | None
) -> dict[str, str]:
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ProfileError(
            f"expected a mapping of component names to roll-up operators; got "
            f"{section!r}. Write for example 'hierarchy: {{default: mean, support: "
            "worst}'.",
            path=path,
            field=HIERARCHY_KEY,
        )
    keys = ["default", *components]
    problems = []
    for key, operator in section.items():
        where = f"{HIERARCHY_KEY}.{key}"
        if key not in keys:
            problems.append(
                (
                    where,
                    f"unknown component {key!r}.{suggest(str(key), keys)} Use "
                    f"'default' or a component of the profile: {', '.join(keys[1:])}.",
                )
            )
        elif operator not in OPERATORS:
            hint = suggest(str(operator), OPERATORS)
            problems.append(
                (
                    where,
                    f"unknown roll-up operator {operator!r}.{hint} Use one of "
                    f"{', '.join(OPERATORS)}.",
                )
            )
    _raise_problems(problems, path)
    return {str(key): str(operator) for key, operator in section.items()}


def _raise_problems(problems: list[tuple[str, str]], path: Path | None) -> None:
    if len(problems) == 1:
        where, message = problems[0]
        raise ProfileError(message, path=path, field=where)
    if problems:
        raise ProfileError(
            f"found {len(problems)} problems in '{HIERARCHY_KEY}'. Fix each of them:",
            path=path,
            problems=problems,
        )


def roll_up(
    children_scores: pd.DataFrame, accounts: pd.DataFrame, rules: HierarchyRules
) -> ParentScores:
    """Score every parent account from its children's component scores.

    Parameters
    ----------
    children_scores
        One row per scored account, as ``ScoreResult.scores``: ``account_id``,
        ``score`` and one column per component of ``rules`` (NaN without data).
    accounts
        One row per account: ``account_id``, ``parent_id`` (None for an account
        without a parent) and optional ``arr``. Missing or zero ARR gives a child
        no weight under ``arr_weighted_mean``.
    rules
        The operators, component weights and bands, from :func:`hierarchy_rules`.

    Returns
    -------
    ParentScores
        Parents with at least one scored child. A child that is a parent itself
        takes part with its roll-up, whose ARR is the sum of its children's ARR.
        Else it takes part with its row of ``children_scores``. Children with no
        such row are left out.

    Raises
    ------
    InputDataError
        If a column is missing, an id repeats, an ARR is negative, or the
        ``parent_id`` links form a cycle, which the message lists.
    """
    _check_inputs(children_scores, accounts, rules)
    parent_of = _parent_links(accounts)
    levels = _levels(parent_of)
    values = _leaf_values(children_scores, accounts, rules)

    children: dict[str, list[str]] = {}
    for child, parent in sorted(parent_of.items()):
        children.setdefault(parent, []).append(child)

    frames: list[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]] = []
    for level in sorted(set(levels.values())):
        parents = sorted(p for p, height in levels.items() if height == level)
        edges = [
            (parent, child)
            for parent in parents
            for child in children[parent]
            if child in values.score
        ]
        if edges:
            frames.append(_roll_up_level(edges, level, values, rules))
    return _collect(frames, rules)


def _check_inputs(
    children_scores: pd.DataFrame, accounts: pd.DataFrame, rules: HierarchyRules
) -> None:
    needed = ["account_id", "score", *rules.components]
    _require_columns(children_scores, needed, "children's scores")
    _require_columns(accounts, ["account_id", "parent_id"], "accounts")
    for frame, what in ((children_scores, "children's scores"), (accounts, "accounts")):
        repeated = frame["account_id"][frame["account_id"].duplicated()].unique()
        if len(repeated):
            raise InputDataError(
                f"account_id values appear more than once in the {what}: "
                f"{list(repeated[:5])!r}. Pass one row per account."
            )
    if "arr" in accounts.columns:
        negative = accounts.loc[accounts["arr"] < 0, "account_id"]
        if len(negative):
            raise InputDataError(
                f"accounts {list(negative[:5])!r} have a negative ARR; expected 0 "
                "or more. Fix the ARR of these accounts and load them again."
            )


def _require_columns(frame: pd.DataFrame, needed: list[str], what: str) -> None:
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise InputDataError(
            f"the {what} have no column {missing!r}; got {list(frame.columns)!r}. "
            "Pass the scores of a run made with the same profile as the rules."
        )


def _parent_links(accounts: pd.DataFrame) -> dict[str, str]:
    linked = accounts[accounts["parent_id"].notna()]
    return dict(
        zip(
            linked["account_id"].astype(str),
            linked["parent_id"].astype(str),
            strict=True,
        )
    )


def _levels(parent_of: dict[str, str]) -> dict[str, int]:
    """Return each parent's level: 1 above leaves, else 1 + its highest child's.

    Raises InputDataError naming the accounts of every cycle of ``parent_id`` links.
    """
    _check_cycles(parent_of)
    parents = set(parent_of.values())
    levels: dict[str, int] = {}
    for leaf in sorted(set(parent_of) - parents):
        node, height = leaf, 0
        while node in parent_of:
            node, height = parent_of[node], height + 1
            if levels.get(node, 0) >= height:
                break
            levels[node] = height
    return levels


def _check_cycles(parent_of: dict[str, str]) -> None:
    state: dict[str, int] = {}
    cycles: list[list[str]] = []
    for start in sorted(parent_of):
        path: list[str] = []
        node: str | None = start
        while node is not None and node not in state:
            state[node] = 1
            path.append(node)
            node = parent_of.get(node)
        if node is not None and state[node] == 1:
            cycles.append(path[path.index(node) :])
        for visited in path:
            state[visited] = 2
    if cycles:
        shown = "; ".join(" -> ".join([*c, c[0]]) for c in cycles[:5])
        raise InputDataError(
            f"parent_id links form {len(cycles)} cycle(s): {shown}. An account cannot "
            "be its own ancestor. Clear or fix the parent_id of one account in each "
            "cycle and load the accounts again."
        )


def _leaf_values(
    children_scores: pd.DataFrame, accounts: pd.DataFrame, rules: HierarchyRules
) -> _Level:
    values = _Level()
    arr = _arr_by_account(accounts)
    parts = children_scores[list(rules.components)].to_numpy(np.float64)
    ids = children_scores["account_id"].astype(str).tolist()
    scores = children_scores["score"].to_numpy(np.float64)
    for i, account_id in enumerate(ids):
        values.ids.append(account_id)
        values.score[account_id] = float(scores[i])
        values.arr[account_id] = arr.get(account_id, math.nan)
        values.parts[account_id] = parts[i]
    return values


def _arr_by_account(accounts: pd.DataFrame) -> dict[str, float]:
    if "arr" not in accounts.columns:
        return {}
    arr = pd.to_numeric(accounts["arr"], errors="coerce").to_numpy(np.float64)
    return dict(zip(accounts["account_id"].astype(str), arr.tolist(), strict=True))


def _roll_up_level(
    edges: list[tuple[str, str]], level: int, values: _Level, rules: HierarchyRules
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Roll up one level of parents, then make their roll-ups available as children."""
    parent_ids = [parent for parent, _ in edges]
    child_ids = [child for _, child in edges]
    parents, group = np.unique(np.array(parent_ids, dtype=object), return_inverse=True)
    child_parts = np.vstack([values.parts[child] for child in child_ids])
    arr = np.array([values.arr[child] for child in child_ids], dtype=np.float64)

    contributions, with_data = [], []
    component_scores = np.full((len(parents), len(rules.components)), np.nan)
    for k, component in enumerate(rules.components):
        operator = rules.operators[component]
        part = _roll_up_component(
            child_parts[:, k], arr, group, len(parents), operator, rules
        )
        component_scores[:, k] = part.score
        with_data.append(part.with_data)
        contributions.append(
            pd.DataFrame(
                {
                    "parent_id": parent_ids,
                    "component": component,
                    "child_id": child_ids,
                    "operator": operator,
                    "child_score": child_parts[:, k],
                    "points": part.points,
                    "weight": part.share,
                    "contribution": part.contribution,
                    "note": pd.Series(part.notes, dtype=object),
                }
            )
        )

    totals = _combine(component_scores, rules)
    scores = _parent_rows(parents, group, child_ids, values, arr, totals, level, rules)
    components = _component_rows(parents, component_scores, with_data, totals, rules)
    _add_parents_as_children(scores, component_scores, values)
    return scores, components, _parent_major(contributions, group)


def _parent_major(contributions: list[pd.DataFrame], group: np.ndarray) -> pd.DataFrame:
    """Concatenate per-component rows and order them by parent, component, child."""
    edges, count = len(group), len(contributions)
    order = np.lexsort(
        (
            np.tile(np.arange(edges), count),
            np.repeat(np.arange(count), edges),
            np.tile(group, count),
        )
    )
    frame = pd.concat(contributions, ignore_index=True)
    return frame.take(order).reset_index(drop=True)


@dataclass(frozen=True)
class _ComponentPart:
    """One component rolled up over the edges of a level."""

    score: np.ndarray
    points: np.ndarray
    share: np.ndarray
    contribution: np.ndarray
    notes: np.ndarray
    with_data: np.ndarray


def _roll_up_component(
    child_scores: np.ndarray,
    arr: np.ndarray,
    group: np.ndarray,
    count: int,
    operator: str,
    rules: HierarchyRules,
) -> _ComponentPart:
    """Roll one component up: each child's share, points and contribution.

    ``group`` gives each edge's parent, and edges of one parent are in child order.
    """
    present = ~np.isnan(child_scores)
    with_data = np.bincount(group, weights=present, minlength=count).astype(np.int64)
    notes = np.where(present, None, NO_DATA_NOTE).astype(object)
    points = child_scores
    if operator == "share_poor":
        poor = _in_lowest_band(child_scores, rules)
        points = np.where(present, np.where(poor, 0.0, 100.0), np.nan)
        share = _mean_shares(present, group, with_data)
    elif operator == "mean":
        share = _mean_shares(present, group, with_data)
    elif operator == "worst":
        share = _worst_shares(child_scores, present, group, count)
        notes[present & (share == 0)] = NOT_WORST_NOTE
    else:
        share = _arr_shares(arr, present, group, with_data, notes)

    contribution = np.where(present, share * np.nan_to_num(points), 0.0)
    # np.add.at adds unbuffered in index order, so each parent's sum runs left to
    # right over its children, as Python's sum() over the contributions does.
    score = np.zeros(count)
    np.add.at(score, group, contribution)
    score[with_data == 0] = np.nan
    return _ComponentPart(score, points, share, contribution, notes, with_data)


def _in_lowest_band(scores: np.ndarray, rules: HierarchyRules) -> np.ndarray:
    if len(rules.bands) == 1:
        return np.ones(scores.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return scores < rules.bands[-2].min


def _mean_shares(
    present: np.ndarray, group: np.ndarray, with_data: np.ndarray
) -> np.ndarray:
    counts = with_data[group]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(present, 1.0 / counts, 0.0)


def _worst_shares(
    child_scores: np.ndarray, present: np.ndarray, group: np.ndarray, count: int
) -> np.ndarray:
    """Give the whole share to each parent's lowest child, the first one on a tie."""
    filled = np.where(present, child_scores, np.inf)
    lowest = np.full(count, np.inf)
    np.minimum.at(lowest, group, filled)
    candidates = np.flatnonzero(present & (filled == lowest[group]))
    _, first = np.unique(group[candidates], return_index=True)
    share = np.zeros(len(child_scores))
    share[candidates[first]] = 1.0
    return share


def _arr_shares(
    arr: np.ndarray,
    present: np.ndarray,
    group: np.ndarray,
    with_data: np.ndarray,
    notes: np.ndarray,
) -> np.ndarray:
    """Share by ARR among children with data, else the plain mean; notes in place."""
    with np.errstate(invalid="ignore"):
        weights = np.where(present & (arr > 0), arr, 0.0)
    totals = np.bincount(group, weights=weights, minlength=len(with_data))[group]
    fallback = totals == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(
            fallback, _mean_shares(present, group, with_data), weights / totals
        )
    share = np.where(present, share, 0.0)

    notes[present & ~fallback & (weights == 0)] = NO_ARR_NOTE
    notes[present & fallback] = MEAN_FALLBACK_NOTE
    if (present & fallback).any():
        logger.warning(
            "%d parents have no child with both data and ARR for a component rolled "
            "up by arr_weighted_mean, so it is rolled up as a plain mean",
            len(np.unique(group[present & fallback])),
        )
    return share


@dataclass(frozen=True)
class _Totals:
    weights: np.ndarray
    coverage: np.ndarray
    effective: np.ndarray
    contributions: np.ndarray
    score: np.ndarray


def _combine(component_scores: np.ndarray, rules: HierarchyRules) -> _Totals:
    """Add up the component scores with renormalised weights, as the engine does."""
    raw = np.array(list(rules.weights.values()), dtype=np.float64)
    weights = raw / math.fsum(raw)
    present = ~np.isnan(component_scores)
    coverage = np.zeros(component_scores.shape[0])
    for k in range(component_scores.shape[1]):
        coverage += np.where(present[:, k], weights[k], 0.0)
    threshold = rules.min_coverage - COVERAGE_TOLERANCE
    known = (coverage > 0) & (coverage >= threshold)

    used = present & known[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        effective = np.where(used, weights[None, :] / coverage[:, None], 0.0)
    contributions = np.where(used, np.nan_to_num(component_scores) * effective, 0.0)
    score = np.zeros(component_scores.shape[0])
    for k in range(component_scores.shape[1]):
        score += contributions[:, k]
    # Renormalised weights sum to 1 only up to rounding, like the engine's.
    np.clip(score, 0.0, 100.0, out=score)
    score[~known] = np.nan
    return _Totals(weights, coverage, effective, contributions, score)


def _parent_rows(
    parents: np.ndarray,
    group: np.ndarray,
    child_ids: list[str],
    values: _Level,
    arr: np.ndarray,
    totals: _Totals,
    level: int,
    rules: HierarchyRules,
) -> pd.DataFrame:
    count = len(parents)
    child_scores = np.array([values.score[child] for child in child_ids])
    worst = _worst_shares(child_scores, ~np.isnan(child_scores), group, count)
    worst_child = np.full(count, None, dtype=object)
    worst_score = np.full(count, np.nan)
    for i in np.flatnonzero(worst):
        worst_child[group[i]] = child_ids[i]
        worst_score[group[i]] = child_scores[i]

    known_arr = ~np.isnan(arr)
    arr_sum = np.bincount(group, weights=np.where(known_arr, arr, 0.0), minlength=count)
    arr_known = np.bincount(group, weights=known_arr, minlength=count)
    return pd.DataFrame(
        {
            "parent_id": parents.astype(object),
            "score": totals.score,
            "band": [rules.band_for(score) for score in totals.score],
            "coverage": totals.coverage,
            "level": np.full(count, level, dtype=np.int64),
            "children": np.bincount(group, minlength=count).astype(np.int64),
            "worst_child": worst_child,
            "worst_child_score": worst_score,
            "arr": np.where(arr_known > 0, arr_sum, np.nan),
        }
    )


def _component_rows(
    parents: np.ndarray,
    component_scores: np.ndarray,
    with_data: list[np.ndarray],
    totals: _Totals,
    rules: HierarchyRules,
) -> pd.DataFrame:
    names = list(rules.components)
    count = len(parents)
    return pd.DataFrame(
        {
            "parent_id": np.repeat(parents.astype(object), len(names)),
            "component": np.tile(np.array(names, dtype=object), count),
            "position": np.tile(np.arange(len(names), dtype=np.int64), count),
            "operator": np.tile(
                np.array([rules.operators[n] for n in names], dtype=object), count
            ),
            "score": component_scores.ravel(),
            "weight": np.tile(totals.weights, count),
            "effective_weight": totals.effective.ravel(),
            "contribution": totals.contributions.ravel(),
            "children_with_data": np.column_stack(with_data).ravel(),
        }
    )


def _add_parents_as_children(
    scores: pd.DataFrame, component_scores: np.ndarray, values: _Level
) -> None:
    """Store each parent's roll-up as the values it takes part with one level up."""
    rows = zip(scores["parent_id"], scores["score"], scores["arr"], strict=True)
    for i, (parent, score, arr) in enumerate(rows):
        values.score[parent] = float(score)
        values.arr[parent] = float(arr)
        values.parts[parent] = component_scores[i]


def _collect(
    frames: list[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]],
    rules: HierarchyRules,
) -> ParentScores:
    if not frames:
        return _empty_parent_scores(rules)
    scores = pd.concat([f[0] for f in frames], ignore_index=True)
    for k, component in enumerate(rules.components):
        scores[component] = np.concatenate(
            [f[1]["score"].to_numpy()[k :: len(rules.components)] for f in frames]
        )
    components = pd.concat([f[1] for f in frames], ignore_index=True)
    contributions = pd.concat([f[2] for f in frames], ignore_index=True)
    logger.info(
        "rolled up %d parent accounts over %d levels",
        len(scores),
        int(scores["level"].max()),
    )
    return ParentScores(scores, components, contributions)


def _empty_parent_scores(rules: HierarchyRules) -> ParentScores:
    scores = pd.DataFrame(
        {
            "parent_id": pd.Series(dtype=object),
            "score": pd.Series(dtype=np.float64),
            "band": pd.Series(dtype=object),
            "coverage": pd.Series(dtype=np.float64),
            "level": pd.Series(dtype=np.int64),
            "children": pd.Series(dtype=np.int64),
            "worst_child": pd.Series(dtype=object),
            "worst_child_score": pd.Series(dtype=np.float64),
            "arr": pd.Series(dtype=np.float64),
            **{name: pd.Series(dtype=np.float64) for name in rules.components},
        }
    )
    components = pd.DataFrame(
        {
            name: pd.Series(dtype=dtype)
            for name, dtype in [
                ("parent_id", object),
                ("component", object),
                ("position", np.int64),
                ("operator", object),
                ("score", np.float64),
                ("weight", np.float64),
                ("effective_weight", np.float64),
                ("contribution", np.float64),
                ("children_with_data", np.int64),
            ]
        }
    )
    contributions = pd.DataFrame(
        {
            name: pd.Series(dtype=dtype)
            for name, dtype in [
                ("parent_id", object),
                ("component", object),
                ("child_id", object),
                ("operator", object),
                ("child_score", np.float64),
                ("points", np.float64),
                ("weight", np.float64),
                ("contribution", np.float64),
                ("note", object),
            ]
        }
    )
    return ParentScores(scores, components, contributions)
