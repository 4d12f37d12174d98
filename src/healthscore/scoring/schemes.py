"""Measure schemes: the rules that turn one metric's values into 0-100 points.

Each scheme scores a whole column at once with numpy. A missing value, or a value the
scheme cannot score, gets NaN points, and the scheme may attach a note with the reason.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd

from healthscore.scoring._checks import (
    Where,
    check_keys,
    check_number,
    expect_mapping,
    read_number,
    read_text,
    require_key,
)

__all__ = [
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "CategoryScheme",
    "LinearScheme",
    "SCHEME_KINDS",
    "PercentileScheme",
    "Scheme",
    "ScoredValues",
    "ThresholdScheme",
    "parse_scheme",
    "to_numbers",
    "to_texts",
]

logger = logging.getLogger(__name__)

#: Largest ``min_peers`` a percentile scheme accepts.
MAX_MIN_PEERS = 1_000_000

HIGHER_IS_BETTER = "higher_is_better"
LOWER_IS_BETTER = "lower_is_better"
_DIRECTIONS = (HIGHER_IS_BETTER, LOWER_IS_BETTER)


class ScoredValues(NamedTuple):
    """Points for one measure over all accounts.

    Attributes
    ----------
    points
        float64 array of 0-100 points, NaN where the account gets none.
    notes
        object array of the same length: why an account got no points, else None.
    """

    points: np.ndarray
    notes: np.ndarray


def to_numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Convert a metric column to float64.

    Parameters
    ----------
    values
        The metric column: numeric, boolean or text.

    Returns
    -------
    numbers
        float64 array, NaN where the value is missing or is not a number.
        Booleans become 1.0 and 0.0, and text such as ``"12.5"`` is parsed.
    invalid
        bool array, True where a value is present but is not a number.
    """
    present = values.notna().to_numpy()
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(
        values.dtype
    ):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        parsed = pd.to_numeric(values.astype(object), errors="coerce")
        numbers = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    return numbers, present & np.isnan(numbers)


def to_texts(values: pd.Series) -> np.ndarray:
    """Convert a metric column to an object array of ``str``, None where missing.

    Booleans become ``"true"`` and ``"false"``, and whole numbers lose their
    decimal point (``2.0`` becomes ``"2"``) so that they match category keys.
    """
    texts = values.astype(object)
    if not isinstance(values.dtype, pd.StringDtype):
        texts = texts.map(_text_of, na_action="ignore")
    array = texts.to_numpy(dtype=object, copy=True)
    array[pd.isna(array)] = None
    return array


def _text_of(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _empty_notes(size: int) -> np.ndarray:
    return np.full(size, None, dtype=object)


def _write_notes(
    notes: np.ndarray, rows: np.ndarray, keys: np.ndarray, template: str
) -> None:
    """Set ``notes[rows]`` to ``template`` formatted with each row's key.

    Each distinct key is formatted once, so a note on many rows stays cheap.
    """
    if len(rows) == 0:
        return
    texts = {key: template.format(key) for key in pd.unique(keys)}
    notes[rows] = pd.Series(keys, dtype=object).map(texts).to_numpy(dtype=object)


def _note_invalid_numbers(
    values: pd.Series, invalid: np.ndarray, notes: np.ndarray
) -> None:
    rows = np.flatnonzero(invalid)
    keys = values.to_numpy(dtype=object)[rows]
    _write_notes(notes, rows, keys, "value {!r} is not a number")


def _read_direction(raw: Mapping[Any, Any], where: Where) -> str:
    direction = read_text(raw, "direction", where, default=HIGHER_IS_BETTER)
    if direction not in _DIRECTIONS:
        raise where.key("direction").error(
            f"invalid direction {direction!r}: expected {HIGHER_IS_BETTER!r} or "
            f"{LOWER_IS_BETTER!r}. Write one of the two."
        )
    return direction


@dataclass(frozen=True)
class CategoryScheme:
    """Fixed points per text value, such as a contract type.

    Values are compared as text: booleans arrive as ``"true"`` and ``"false"``. A value
    not in ``points`` gets ``other`` points, or no points with a note when ``other`` is
    None.
    """

    points: tuple[tuple[str, float], ...]
    other: float | None = None

    kind: ClassVar[str] = "category"

    @classmethod
    def parse(cls, raw: Any, where: Where) -> CategoryScheme:
        """Build the scheme from its YAML mapping, raising ProfileError if invalid."""
        raw = expect_mapping(raw, where)
        check_keys(raw, where, allowed=("points", "other"))
        points = where.attempt(_read_category_points, raw, where)
        other = None
        if raw.get("other") is not None:
            other = where.attempt(
                check_number, raw["other"], where.key("other"), minimum=0, maximum=100
            )
            if other is None:
                raise where.failed()
        if points is None:
            raise where.failed()
        return cls(points=points, other=other)

    def to_dict(self) -> dict[str, Any]:
        """Return the scheme as plain JSON-ready data."""
        return {"points": dict(self.points), "other": self.other}

    def score(self, values: pd.Series, peer_groups: np.ndarray) -> ScoredValues:
        """Score ``values``; ``peer_groups`` is unused by this scheme."""
        texts = pd.Series(to_texts(values), dtype=object)
        mapped = texts.map(dict(self.points))
        points = mapped.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        unmatched = texts.notna().to_numpy() & np.isnan(points)
        notes = _empty_notes(len(points))
        if self.other is not None:
            points[unmatched] = self.other
        else:
            rows = np.flatnonzero(unmatched)
            keys = texts.to_numpy(dtype=object)[rows]
            _write_notes(notes, rows, keys, "value {!r} not in category map")
        return ScoredValues(points, notes)


def _read_category_points(
    raw: Mapping[Any, Any], where: Where
) -> tuple[tuple[str, float], ...]:
    points_where = where.key("points")
    mapping = expect_mapping(require_key(raw, "points", where), points_where)
    if not mapping:
        raise points_where.error(
            "expected at least one 'value: points' entry; got an empty mapping. "
            "List the category values and their points."
        )
    entries = []
    for key, value in mapping.items():
        text = where.attempt(_category_key, key, points_where)
        points = where.attempt(_points, value, where, key)
        if text is not None and points is not None:
            entries.append((text, points))
    if len(entries) < len(mapping):
        raise where.failed()
    return tuple(entries)


def _category_key(key: Any, where: Where) -> str:
    if key is None or isinstance(key, list | dict):
        raise where.error(
            f"invalid category value {key!r}: expected text, a number or true/false. "
            "Quote the value if it is empty, such as '\"\": 0'."
        )
    return _text_of(key)


def _points(value: Any, where: Where, key: Any) -> float:
    return check_number(value, where.key(f"points.{key}"), minimum=0, maximum=100)


@dataclass(frozen=True)
class LinearScheme:
    """Points rising in a straight line from ``worst`` (0) to ``best`` (100), clamped.

    ``worst > best`` means lower values are better.
    """

    worst: float
    best: float

    kind: ClassVar[str] = "linear"

    @classmethod
    def parse(cls, raw: Any, where: Where) -> LinearScheme:
        """Build the scheme from its YAML mapping, raising ProfileError if invalid."""
        raw = expect_mapping(raw, where)
        check_keys(raw, where, allowed=("worst", "best"))
        worst = where.attempt(read_number, raw, "worst", where)
        best = where.attempt(read_number, raw, "best", where)
        if worst is None or best is None:
            raise where.failed()
        if worst == best:
            raise where.key("best").error(
                f"worst and best are both {worst:g}; expected two different values. "
                "Set best to the value that earns 100 points."
            )
        if not math.isfinite(best - worst):
            raise where.key("best").error(
                f"worst ({worst:g}) and best ({best:g}) are too far apart: their "
                "difference overflows a float. Bring them closer together."
            )
        return cls(worst=worst, best=best)

    def to_dict(self) -> dict[str, Any]:
        """Return the scheme as plain JSON-ready data."""
        return {"worst": self.worst, "best": self.best}

    def score(self, values: pd.Series, peer_groups: np.ndarray) -> ScoredValues:
        """Score ``values``; ``peer_groups`` is unused by this scheme."""
        numbers, invalid = to_numbers(values)
        with np.errstate(invalid="ignore"):
            scaled = 100.0 * (numbers - self.worst) / (self.best - self.worst)
        points = np.clip(scaled, 0.0, 100.0)
        notes = _empty_notes(len(points))
        _note_invalid_numbers(values, invalid, notes)
        return ScoredValues(points, notes)


@dataclass(frozen=True)
class ThresholdScheme:
    """Good, average or poor points by comparing the value with two thresholds.

    With ``higher_is_better`` a value >= ``good`` earns the good points, a value >=
    ``average`` the average points, and any other value the poor points.
    ``lower_is_better`` mirrors this with <=.
    """

    good: float
    average: float
    direction: str = HIGHER_IS_BETTER
    good_points: float = 100.0
    average_points: float = 60.0
    poor_points: float = 0.0

    kind: ClassVar[str] = "thresholds"

    @classmethod
    def parse(cls, raw: Any, where: Where) -> ThresholdScheme:
        """Build the scheme from its YAML mapping, raising ProfileError if invalid."""
        raw = expect_mapping(raw, where)
        check_keys(raw, where, allowed=("direction", "good", "average", "points"))
        direction = where.attempt(_read_direction, raw, where)
        good = where.attempt(read_number, raw, "good", where)
        average = where.attempt(read_number, raw, "average", where)
        levels = where.attempt(_read_levels, raw.get("points", {}), where.key("points"))
        if direction is None or good is None or average is None or levels is None:
            raise where.failed()
        _check_threshold_order(good, average, direction, where)
        return cls(good, average, direction, *levels)

    def to_dict(self) -> dict[str, Any]:
        """Return the scheme as plain JSON-ready data."""
        return {
            "direction": self.direction,
            "good": self.good,
            "average": self.average,
            "points": {
                "good": self.good_points,
                "average": self.average_points,
                "poor": self.poor_points,
            },
        }

    def score(self, values: pd.Series, peer_groups: np.ndarray) -> ScoredValues:
        """Score ``values``; ``peer_groups`` is unused by this scheme."""
        numbers, invalid = to_numbers(values)
        with np.errstate(invalid="ignore"):
            if self.direction == HIGHER_IS_BETTER:
                is_good, is_average = numbers >= self.good, numbers >= self.average
            else:
                is_good, is_average = numbers <= self.good, numbers <= self.average
        points = np.where(
            is_good,
            self.good_points,
            np.where(is_average, self.average_points, self.poor_points),
        )
        points[np.isnan(numbers)] = np.nan
        notes = _empty_notes(len(points))
        _note_invalid_numbers(values, invalid, notes)
        return ScoredValues(points, notes)


def _check_threshold_order(
    good: float, average: float, direction: str, where: Where
) -> None:
    if direction == HIGHER_IS_BETTER and not good > average:
        raise where.key("good").error(
            f"good ({good:g}) must be greater than average ({average:g}) when "
            f"direction is {HIGHER_IS_BETTER!r}. Swap the values, or set "
            f"direction: {LOWER_IS_BETTER}."
        )
    if direction == LOWER_IS_BETTER and not good < average:
        raise where.key("good").error(
            f"good ({good:g}) must be less than average ({average:g}) when "
            f"direction is {LOWER_IS_BETTER!r}. Swap the values, or set "
            f"direction: {HIGHER_IS_BETTER}."
        )


def _read_levels(raw: Any, where: Where) -> tuple[float, float, float]:
    raw = expect_mapping(raw, where)
    check_keys(raw, where, allowed=("good", "average", "poor"))
    levels = [
        where.attempt(
            read_number, raw, key, where, default=default, minimum=0, maximum=100
        )
        for key, default in (("good", 100), ("average", 60), ("poor", 0))
    ]
    good, average, poor = levels
    if good is None or average is None or poor is None:
        raise where.failed()
    if not good >= average >= poor:
        raise where.error(
            f"points good={good:g}, average={average:g}, poor={poor:g} are out of "
            "order; expected good >= average >= poor. Reorder the points."
        )
    return good, average, poor


@dataclass(frozen=True)
class PercentileScheme:
    """Points from the account's percentile among its peers in the same segment.

    Among the ``n`` accounts of a segment that have a value, an account with average
    rank ``r`` (ties share the mean of their ranks, lowest value = rank 1) gets
    ``100 * (r - 1) / (n - 1)`` points, so the lone best gets 100 and the lone worst 0.
    A segment with one account gives it 50. ``lower_is_better`` ranks from the highest
    value down. Accounts without a segment form a peer group of their own. A segment
    with fewer than ``min_peers`` values gives no points to any of its accounts.
    """

    min_peers: int = 10
    direction: str = HIGHER_IS_BETTER

    kind: ClassVar[str] = "percentile"

    @classmethod
    def parse(cls, raw: Any, where: Where) -> PercentileScheme:
        """Build the scheme from its YAML mapping, raising ProfileError if invalid."""
        raw = {} if raw is None else expect_mapping(raw, where)
        check_keys(raw, where, allowed=("min_peers", "direction"))
        min_peers = where.attempt(_read_min_peers, raw, where)
        direction = where.attempt(_read_direction, raw, where)
        if min_peers is None or direction is None:
            raise where.failed()
        return cls(min_peers=min_peers, direction=direction)

    def to_dict(self) -> dict[str, Any]:
        """Return the scheme as plain JSON-ready data."""
        return {"min_peers": self.min_peers, "direction": self.direction}

    def score(self, values: pd.Series, peer_groups: np.ndarray) -> ScoredValues:
        """Score ``values`` against peers that share the same ``peer_groups`` code."""
        numbers, invalid = to_numbers(values)
        notes = _empty_notes(len(numbers))
        _note_invalid_numbers(values, invalid, notes)
        points = np.full(len(numbers), np.nan)
        rows = np.flatnonzero(~np.isnan(numbers))

        peers = pd.DataFrame({"group": peer_groups[rows], "value": numbers[rows]})
        grouped = peers.groupby("group", sort=False)["value"]
        ascending = self.direction == HIGHER_IS_BETTER
        ranks = grouped.rank(method="average", ascending=ascending).to_numpy()
        counts = grouped.transform("size").to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            percentile = np.where(counts > 1, 100.0 * (ranks - 1) / (counts - 1), 50.0)

        too_few = counts < self.min_peers
        percentile[too_few] = np.nan
        points[rows] = percentile
        template = "too few peers ({}" + f" < {self.min_peers})"
        _write_notes(notes, rows[too_few], counts[too_few].astype(int), template)
        return ScoredValues(points, notes)


def _read_min_peers(raw: Mapping[Any, Any], where: Where) -> int:
    min_peers = read_number(
        raw, "min_peers", where, default=10, minimum=1, maximum=MAX_MIN_PEERS
    )
    if not min_peers.is_integer():
        raise where.key("min_peers").error(
            f"expected a whole number of accounts; got {raw['min_peers']!r}. "
            f"Write a whole number such as {math.ceil(min_peers)}."
        )
    return int(min_peers)


Scheme = CategoryScheme | LinearScheme | ThresholdScheme | PercentileScheme

_SCHEMES: dict[str, type[Scheme]] = {
    scheme.kind: scheme
    for scheme in (CategoryScheme, LinearScheme, ThresholdScheme, PercentileScheme)
}
SCHEME_KINDS = tuple(_SCHEMES)


def parse_scheme(raw: Mapping[Any, Any], where: Where) -> Scheme:
    """Build the one scheme named in a measure's mapping.

    Parameters
    ----------
    raw
        The measure's YAML mapping, which must hold exactly one of the keys
        ``category``, ``linear``, ``thresholds`` and ``percentile``.
    where
        The measure's location, for error messages.

    Raises
    ------
    ProfileError
        If the measure names no scheme, several, or an invalid one.
    """
    kinds = [kind for kind in SCHEME_KINDS if kind in raw]
    misspelt = any(
        where.problems.is_misspelt(where.key(kind).field) for kind in SCHEME_KINDS
    )
    if not kinds and misspelt:
        # The unknown-key problem already names the misspelt scheme, so a second
        # "names no scheme" problem would report the same mistake twice.
        raise where.failed()
    if len(kinds) != 1:
        found = "none" if not kinds else ", ".join(kinds)
        raise where.error(
            f"expected exactly one scheme ({', '.join(SCHEME_KINDS)}); found {found}. "
            "Keep one scheme per measure and split the rest into their own measures."
        )
    kind = kinds[0]
    return _SCHEMES[kind].parse(raw[kind], where.key(kind))
