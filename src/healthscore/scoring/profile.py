"""Health profiles: which metrics make up a score, how they are weighted and banded.

A profile is a YAML file, whose format :func:`parse_profile` describes. Parsing
validates it completely, so any :class:`HealthProfile` can be scored. Metric names are
checked later, against the metrics the store can compute, by
:meth:`HealthProfile.check_metrics`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import logging
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from healthscore.exceptions import ProfileError
from healthscore.scoring._checks import (
    MAX_WEIGHT,
    Problems,
    Where,
    check_keys,
    check_number,
    expect_list,
    expect_mapping,
    load_yaml,
    read_description,
    read_number,
    read_text,
    require_key,
)
from healthscore.scoring.schemes import SCHEME_KINDS, Scheme, parse_scheme

__all__ = [
    "DEFAULT_BANDS",
    "DEFAULT_MIN_COVERAGE",
    "RESERVED_COMPONENT_NAMES",
    "UNKNOWN_BAND",
    "Band",
    "Component",
    "HealthProfile",
    "Measure",
    "TrainingLabels",
    "load_profile",
    "parse_profile",
]

logger = logging.getLogger(__name__)

UNKNOWN_BAND = "Unknown"
DEFAULT_MIN_COVERAGE = 0.5
PROFILE_NAME_PATTERN = r"[a-z0-9_-]+"
_PROFILE_NAME_CHARACTERS = "lower-case letters, digits, '-' and '_'"

# Score table columns, which a component name would collide with.
RESERVED_COMPONENT_NAMES = frozenset(
    {"account_id", "segment", "score", "band", "coverage", "weakest_component"}
)

_PROFILE_KEYS = (
    "name",
    "description",
    "applies_to",
    "min_coverage",
    "bands",
    "components",
    "hierarchy",
    "learned",
)
_COMPONENT_KEYS = ("name", "weight", "measures")
_MEASURE_KEYS = ("name", "metric", "weight", *SCHEME_KINDS)
_LEARNED_KEYS = ("observation_dates", "horizon_days", "labels_end")


@dataclass(frozen=True)
class Band:
    """A named score range: scores of at least ``min`` that no earlier band took."""

    name: str
    min: float


DEFAULT_BANDS = (Band("Good", 70.0), Band("Average", 40.0), Band("Poor", 0.0))


@dataclass(frozen=True)
class Measure:
    """One metric mapped to 0-100 points by a scheme, with its weight in a component.

    ``weight`` is the weight as written, relative to the other measures of the
    component. :meth:`HealthProfile.nominal_weights` gives the normalised weights.
    """

    name: str
    metric: str
    weight: float
    scheme: Scheme

    def to_dict(self) -> dict[str, Any]:
        """Return the measure as plain JSON-ready data."""
        return {
            "name": self.name,
            "metric": self.metric,
            "weight": self.weight,
            self.scheme.kind: self.scheme.to_dict(),
        }


@dataclass(frozen=True)
class Component:
    """A named group of measures, such as engagement or support, with its weight."""

    name: str
    weight: float
    measures: tuple[Measure, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the component as plain JSON-ready data."""
        return {
            "name": self.name,
            "weight": self.weight,
            "measures": [measure.to_dict() for measure in self.measures],
        }


@dataclass(frozen=True)
class TrainingLabels:
    """The churn labels a learned profile was fitted on, from its ``learned`` key.

    An account observed on date D was labelled churned when it churned after the
    end of D and by the end of D + ``horizon_days``.

    Attributes
    ----------
    observation_dates
        The dates the training rows were observed on, in ascending order.
    horizon_days
        Days after each observation date in which a churn counted.
    labels_end
        The last day whose churn counts in the labels, which is the latest
        observation date plus ``horizon_days``.
    """

    observation_dates: tuple[dt.date, ...]
    horizon_days: int
    labels_end: dt.date

    @classmethod
    def from_observations(
        cls, observation_dates: Collection[dt.date], horizon_days: int
    ) -> TrainingLabels:
        """Build the labels of these observation dates and compute ``labels_end``."""
        dates = tuple(sorted(observation_dates))
        end = dates[-1] + dt.timedelta(days=horizon_days)
        return cls(dates, horizon_days, end)

    def to_dict(self) -> dict[str, Any]:
        """Return the ``learned`` mapping, with dates as :class:`datetime.date`."""
        return {
            "observation_dates": list(self.observation_dates),
            "horizon_days": self.horizon_days,
            "labels_end": self.labels_end,
        }


@dataclass(frozen=True)
class HealthProfile:
    """A validated health profile.

    Build one with :func:`load_profile` or :func:`parse_profile`. ``source`` and
    ``text`` record where the profile came from, and ``learned`` the churn labels of a
    profile that `healthscore learn` wrote (None for other profiles). None of the
    three takes part in equality or in :attr:`hash`, so the ``learned`` record leaves
    a profile's hash as it was.
    """

    name: str
    description: str
    applies_to_segments: tuple[str, ...] | None
    min_coverage: float
    bands: tuple[Band, ...]
    components: tuple[Component, ...]
    source: Path | None = field(default=None, compare=False)
    text: str = field(default="", compare=False, repr=False)
    learned: TrainingLabels | None = field(default=None, compare=False)

    @property
    def metrics(self) -> tuple[str, ...]:
        """Distinct metric names, in the order the measures use them."""
        return tuple(dict.fromkeys(m.metric for _, m in self.measures))

    @property
    def measures(self) -> tuple[tuple[Component, Measure], ...]:
        """Every measure with its component, in profile order."""
        return tuple((c, m) for c in self.components for m in c.measures)

    @cached_property
    def hash(self) -> str:
        """SHA-256 hex digest of the parsed profile as canonical JSON.

        Reformatting the YAML, reordering category keys or writing ``40`` as ``40.0``
        keeps the hash. Any change to a parsed value, the description included,
        changes it.
        """
        canonical = json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """Return the profile as plain JSON-ready data."""
        segments = self.applies_to_segments
        return {
            "name": self.name,
            "description": self.description,
            "applies_to": None if segments is None else {"segments": list(segments)},
            "min_coverage": self.min_coverage,
            "bands": [{"name": b.name, "min": b.min} for b in self.bands],
            "components": [component.to_dict() for component in self.components],
        }

    def nominal_weights(self) -> tuple[float, ...]:
        """Return each measure's share of the whole score, in profile order.

        A measure's nominal weight is ``component weight / sum of component weights *
        measure weight / sum of measure weights in its component``. The weights sum to
        1 up to float rounding.
        """
        total = math.fsum(c.weight for c in self.components)
        weights = []
        for component in self.components:
            inner = math.fsum(m.weight for m in component.measures)
            for measure in component.measures:
                weights.append(component.weight / total * (measure.weight / inner))
        return tuple(weights)

    def applies_to(self, segment: str | None) -> bool:
        """Return whether accounts of ``segment`` are scored with this profile."""
        if self.applies_to_segments is None:
            return True
        return segment in self.applies_to_segments

    def band_for(self, score: float | None) -> str:
        """Return the name of the first band whose minimum ``score`` reaches.

        A missing score (None or NaN) gets ``"Unknown"``.
        """
        if score is None or math.isnan(score):
            return UNKNOWN_BAND
        for band in self.bands:
            if score >= band.min:
                return band.name
        return self.bands[-1].name

    def check_metrics(self, known: Callable[[str], bool] | Collection[str]) -> None:
        """Raise ProfileError naming every metric that ``known`` does not accept.

        Parameters
        ----------
        known
            The metric names the store can compute, or a function that returns
            whether a name is one. Close matches are suggested only for a collection.

        Raises
        ------
        ProfileError
            Naming each unknown measure's ``metric`` field, the unknown name and close
            matches. ``problems`` lists them all, and ``field`` is the first one.
        """
        is_known = known if callable(known) else known.__contains__
        where = Where(self.source)
        for i, component in enumerate(self.components):
            for j, measure in enumerate(component.measures):
                if is_known(measure.metric):
                    continue
                field_where = where.key(f"components[{i}]").key(f"measures[{j}]")
                hint = _close_metrics(measure, known)
                field_where.key("metric").report(
                    f"unknown metric {measure.metric!r}.{hint} Use a metric the "
                    "metrics layer defines, or fix the spelling."
                )
        where.problems.raise_any()


def _close_metrics(measure: Measure, known: object) -> str:
    if not isinstance(known, Collection) or isinstance(known, str):
        return ""
    matches = difflib.get_close_matches(measure.metric, sorted(known), n=3)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(m) for m in matches) + "?"


def load_profile(path: str | Path) -> HealthProfile:
    """Read and validate a profile YAML file.

    Parameters
    ----------
    path
        The profile file.

    Returns
    -------
    HealthProfile
        The validated profile, with ``source`` set to ``path``.

    Raises
    ------
    ProfileError
        If the file cannot be read or the profile is invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(
            f"cannot read the profile file: {exc}. Check the path and that it is "
            "UTF-8 text.",
            path=path,
        ) from exc
    return parse_profile(text, path=path)


def parse_profile(text: str, path: str | Path | None = None) -> HealthProfile:
    """Parse and validate a profile from YAML text.

    Parameters
    ----------
    text
        The YAML document. Keys: ``name`` (required, ``[a-z0-9_-]+``),
        ``description``, ``applies_to: {segments: [...]}``, ``min_coverage`` (0..1,
        default 0.5), ``bands`` (list of ``{name, min}``, minimums strictly
        decreasing and ending at 0), ``components`` (required) and the optional
        ``learned`` mapping of ``observation_dates``, ``horizon_days`` and
        ``labels_end`` (see :class:`TrainingLabels`), which `healthscore learn`
        writes and scoring ignores. Each component has ``name``, ``weight`` and
        ``measures``. Each measure has ``metric``, an optional ``name`` (default:
        the metric) and ``weight`` (default 1), and exactly one scheme:
        ``category``, ``linear``, ``thresholds`` or ``percentile``.
    path
        The file the text came from, used in error messages.

    Returns
    -------
    HealthProfile

    Raises
    ------
    ProfileError
        For invalid YAML (with the line), an empty document, or invalid values. One
        error reports every invalid value, up to 20: its ``problems`` lists them as
        ``(field, message)`` pairs and its ``field`` is the first one's dotted
        location, such as ``components[0].measures[1].weight``.

    Examples
    --------
    >>> profile = parse_profile('''
    ... name: minimal
    ... components:
    ...   - name: usage
    ...     weight: 1
    ...     measures:
    ...       - metric: active_users_30d
    ...         linear: {worst: 0, best: 50}
    ... ''')
    >>> profile.metrics
    ('active_users_30d',)
    >>> profile.band_for(72.5)
    'Good'
    """
    source = None if path is None else Path(path)
    where = Where(source, problems=Problems(merge_misspelt_keys=True))
    raw = load_yaml(text, source) if text.strip() else None
    if raw is None:
        raise where.error(
            "the profile is empty. Write at least 'name:' and 'components:'."
        )
    raw = expect_mapping(raw, where)

    try:
        profile = _read_profile(raw, where, text)
    except ProfileError as exc:
        where.problems.add(exc)
        error = where.failed()
        if error is exc:
            raise
        raise error from None
    logger.debug("parsed profile %r (%s)", profile.name, profile.hash[:12])
    return profile


def _read_profile(raw: Mapping[Any, Any], where: Where, text: str) -> HealthProfile:
    """Read every top-level key, then raise if any part of the profile was invalid."""
    check_keys(raw, where, allowed=_PROFILE_KEYS)
    name = where.attempt(
        read_text,
        raw,
        "name",
        where,
        pattern=PROFILE_NAME_PATTERN,
        pattern_description=_PROFILE_NAME_CHARACTERS,
    )
    description = where.attempt(read_description, raw, where)
    segments = where.attempt(_read_applies_to, raw.get("applies_to"), where)
    min_coverage = where.attempt(
        read_number,
        raw,
        "min_coverage",
        where,
        default=DEFAULT_MIN_COVERAGE,
        minimum=0,
        maximum=1,
    )
    bands = where.attempt(_read_bands, raw.get("bands"), where.key("bands"))
    components = where.attempt(_read_components, raw, where)
    learned = where.attempt(_read_learned, raw.get("learned"), where.key("learned"))

    where.problems.raise_any()
    if name is None or description is None or min_coverage is None:
        raise where.failed()
    if bands is None or components is None:
        raise where.failed()
    profile = HealthProfile(
        name=name,
        description=description,
        applies_to_segments=segments,
        min_coverage=min_coverage,
        bands=bands,
        components=components,
        source=where.path,
        text=text,
        learned=learned,
    )
    if "hierarchy" in raw:
        _check_hierarchy(profile)
    return profile


def _check_hierarchy(profile: HealthProfile) -> None:
    """Raise ProfileError if the parent roll-up rules of ``profile`` are invalid.

    The rules only affect parent accounts, so the scoring ignores them. The
    parent roll-up reads them from the profile text with
    :func:`healthscore.scoring.hierarchy.hierarchy_rules`.
    """
    # Imported here because the hierarchy module imports this one.
    from healthscore.scoring.hierarchy import hierarchy_rules

    hierarchy_rules(profile)


def _read_applies_to(raw: Any, where: Where) -> tuple[str, ...] | None:
    if raw is None:
        return None
    where = where.key("applies_to")
    raw = expect_mapping(raw, where)
    check_keys(raw, where, allowed=("segments",))
    segments_where = where.key("segments")
    segments = expect_list(require_key(raw, "segments", where), segments_where)
    valid = True
    for i, segment in enumerate(segments):
        if not isinstance(segment, str) or not segment:
            segments_where.item(i).report(
                f"expected a segment name as text; got {segment!r}. Quote the name."
            )
            valid = False
    if not valid:
        raise where.failed()
    return tuple(segments)


def _read_bands(raw: Any, where: Where) -> tuple[Band, ...]:
    if raw is None:
        return DEFAULT_BANDS
    items = [
        where.attempt(_read_band, item, where.item(i))
        for i, item in enumerate(expect_list(raw, where))
    ]
    bands = [band for band in items if band is not None]
    if len(bands) < len(items):
        raise where.failed()
    _check_bands(bands, where)
    return tuple(bands)


def _read_band(raw: Any, where: Where) -> Band:
    raw = expect_mapping(raw, where)
    check_keys(raw, where, allowed=("name", "min"))
    name = where.attempt(read_text, raw, "name", where)
    minimum = where.attempt(read_number, raw, "min", where, minimum=0, maximum=100)
    if name is None or minimum is None:
        raise where.failed()
    return Band(name, minimum)


def _check_bands(bands: list[Band], where: Where) -> None:
    """Record a problem for each reserved, repeated or misordered band."""
    seen: set[str] = set()
    for i, band in enumerate(bands):
        name_where, min_where = where.item(i).key("name"), where.item(i).key("min")
        if band.name == UNKNOWN_BAND:
            name_where.report(
                f"band name {band.name!r} is reserved for scores without enough "
                "data. Choose another name."
            )
        if band.name in seen:
            name_where.report(
                f"band name {band.name!r} is used twice. Give each band its own name."
            )
        seen.add(band.name)
        if i > 0 and band.min >= bands[i - 1].min:
            min_where.report(
                f"band minimums must strictly decrease; {band.min:g} follows "
                f"{bands[i - 1].min:g}. List the bands from best to worst."
            )
    if bands[-1].min != 0:
        last_where = where.item(len(bands) - 1).key("min")
        last_where.report(
            f"the last band must start at 0 so that every score gets a band; got "
            f"{bands[-1].min:g}. Set its min to 0."
        )


def _read_components(raw: Mapping[Any, Any], where: Where) -> tuple[Component, ...]:
    items = expect_list(require_key(raw, "components", where), where.key("components"))
    where = where.key("components")
    components = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        item_where = where.item(i)
        component = item_where.attempt(_read_component, item, item_where)
        if component is None:
            continue
        if component.name in seen:
            item_where.key("name").report(
                f"component name {component.name!r} is used twice. "
                "Give each component its own name."
            )
        seen.add(component.name)
        components.append(component)
    if len(components) < len(items):
        raise where.failed()
    _check_weights_not_all_zero([c.weight for c in components], where, "component")
    return tuple(components)


def _read_component(raw: Any, where: Where) -> Component:
    raw = expect_mapping(raw, where)
    check_keys(raw, where, allowed=_COMPONENT_KEYS)
    name = where.attempt(_read_component_name, raw, where)
    weight = where.attempt(_read_weight, raw, where, default=None)
    measures = where.attempt(_read_measures, raw, where, name)
    if name is None or weight is None or measures is None:
        raise where.failed()
    return Component(name=name, weight=weight, measures=measures)


def _read_component_name(raw: Mapping[Any, Any], where: Where) -> str:
    name = read_text(raw, "name", where)
    if name in RESERVED_COMPONENT_NAMES:
        raise where.key("name").error(
            f"component name {name!r} is reserved for a score column. "
            f"Choose a name other than {', '.join(sorted(RESERVED_COMPONENT_NAMES))}."
        )
    return name


def _read_measures(
    raw: Mapping[Any, Any], where: Where, component: str | None
) -> tuple[Measure, ...]:
    items = expect_list(require_key(raw, "measures", where), where.key("measures"))
    where = where.key("measures")
    in_component = "this component" if component is None else f"component {component!r}"
    measures = []
    seen: set[str] = set()
    for j, item in enumerate(items):
        item_where = where.item(j)
        measure = item_where.attempt(_read_measure, item, item_where)
        if measure is None:
            continue
        if measure.name in seen:
            item_where.report(
                f"measure name {measure.name!r} is used twice in {in_component}. "
                "Add 'name:' to tell the measures apart."
            )
        seen.add(measure.name)
        measures.append(measure)
    if len(measures) < len(items):
        raise where.failed()
    _check_weights_not_all_zero([m.weight for m in measures], where, "measure")
    return tuple(measures)


def _read_measure(raw: Any, where: Where) -> Measure:
    raw = expect_mapping(raw, where)
    check_keys(raw, where, allowed=_MEASURE_KEYS)
    metric = where.attempt(read_text, raw, "metric", where)
    name = where.attempt(read_text, raw, "name", where, default=metric)
    weight = where.attempt(_read_weight, raw, where, default=1.0)
    scheme = where.attempt(parse_scheme, raw, where)
    if metric is None or name is None or weight is None or scheme is None:
        raise where.failed()
    return Measure(name=name, metric=metric, weight=weight, scheme=scheme)


def _read_weight(raw: Mapping[Any, Any], where: Where, default: float | None) -> float:
    if "weight" not in raw:
        if default is None:
            raise where.key("weight").error(
                "missing required key 'weight'. Add 'weight: <number>' to this entry."
            )
        return default
    value = raw["weight"]
    return check_number(value, where.key("weight"), minimum=0, maximum=MAX_WEIGHT)


def _read_learned(raw: Any, where: Where) -> TrainingLabels | None:
    """Read the optional ``learned`` mapping that `healthscore learn` writes."""
    if raw is None:
        return None
    raw = expect_mapping(raw, where)
    check_keys(raw, where, allowed=_LEARNED_KEYS)
    dates_where = where.key("observation_dates")
    items = expect_list(require_key(raw, "observation_dates", where), dates_where)
    dates = [
        dates_where.attempt(_read_date, item, dates_where.item(i))
        for i, item in enumerate(items)
    ]
    horizon = where.attempt(_read_horizon_days, raw, where)
    labels_end = where.attempt(
        _read_date, require_key(raw, "labels_end", where), where.key("labels_end")
    )
    if horizon is None or labels_end is None or None in dates:
        raise where.failed()

    labels = TrainingLabels.from_observations(
        [d for d in dates if d is not None], horizon
    )
    if labels.labels_end != labels_end:
        raise where.key("labels_end").error(
            f"expected {labels.labels_end.isoformat()}, the latest observation date "
            f"plus horizon_days; got {labels_end.isoformat()}. Write "
            f"{labels.labels_end.isoformat()}, or run `healthscore learn` again."
        )
    return labels


def _read_date(value: Any, where: Where) -> dt.date:
    """Check that ``value`` is a date or YYYY-MM-DD text and return it as a date.

    YAML already reads an unquoted YYYY-MM-DD as a date, and a quoted one as text.
    """
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise where.error(
        f"expected a date; got {value!r}. Write it as YYYY-MM-DD, such as 2024-06-30."
    )


def _read_horizon_days(raw: Mapping[Any, Any], where: Where) -> int:
    value = require_key(raw, "horizon_days", where)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise where.key("horizon_days").error(
            f"expected a whole number of days of at least 1; got {value!r}."
        )
    return value


def _check_weights_not_all_zero(weights: list[float], where: Where, kind: str) -> None:
    if not any(weight > 0 for weight in weights):
        raise where.error(
            f"every {kind} weight is 0, so the weights cannot be normalised. "
            f"Give at least one {kind} a weight above 0."
        )
