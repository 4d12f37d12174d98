"""Profile sets: several health profiles, each chosen for an account by rules.

A profile set is a YAML file that lists profiles in the order they are tried. Each
entry names a profile file (relative to the set file's folder) or contains a profile
inline, and a ``when`` rule. An account gets the profile of the first entry whose rule
it matches, and the last entry, which has no ``when``, takes every other account::

    name: saas-lifecycle              # optional, default: the file name
    description: New accounts are judged on onboarding, the rest on usage.
    profiles:
      - profile: onboarding.yaml
        when: {age_days_below: 90}
      - profile: enterprise.yaml
        when: {segment: [enterprise], plan: [enterprise, premium]}
      - profile: saas-default.yaml    # the default

Rule keys, all optional, at least one per ``when``:

``segment``, ``plan``
    A name or a list of names. The account's segment (or plan) must be one of them.
    Names match exactly, case included. An account without a segment (or plan)
    never matches.
``age_days_below``, ``age_days_at_least``
    The account's age in days at the end of the as-of date, the same value as the
    ``tenure_days`` metric, must be below (or at least) this number. An account
    without ``created_at`` never matches.
``arr_below``, ``arr_at_least``
    The account's ARR must be below (or at least) this number. An account without
    ARR never matches.

A rule matches when every key it has matches, so ``{segment: [enterprise], plan:
[enterprise, premium]}`` means segment enterprise and plan enterprise or premium. To
choose a profile by one key or another, repeat the profile in two entries. A profile
that has ``applies_to: {segments: [...]}`` also requires the account's segment to be
one of those, so accounts of other segments go on to the next entry.

A single profile file is accepted wherever a set is, as a set of one. Its accounts are
the ones its ``applies_to`` selects, as when it is scored alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import json
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from healthscore.exceptions import ConfigError, InputDataError, ProfileError
from healthscore.metrics.asof import SECONDS_PER_DAY, period_end
from healthscore.scoring._checks import (
    Problems,
    Where,
    check_keys,
    check_number,
    expect_list,
    expect_mapping,
    load_yaml,
    read_description,
    read_text,
    require_key,
)
from healthscore.scoring.engine import ScoreResult, score_accounts
from healthscore.scoring.profile import (
    PROFILE_NAME_PATTERN,
    HealthProfile,
    parse_profile,
)

__all__ = [
    "AssignmentRule",
    "ProfileSet",
    "ProfileSetEntry",
    "ProfileSetScores",
    "as_profile_set",
    "assign_profiles",
    "load_profile_set",
    "parse_profile_set",
    "score_profile_set",
]

logger = logging.getLogger(__name__)

DEFAULT_SET_NAME = "profile-set"

_SET_KEYS = ("name", "description", "profiles")
_ENTRY_KEYS = ("profile", "when")
_TEXT_RULE_KEYS = ("segment", "plan")
_RANGE_RULE_KEYS = {
    "age_days": ("age_days_at_least", "age_days_below"),
    "arr": ("arr_at_least", "arr_below"),
}
_RULE_KEYS = (
    *_TEXT_RULE_KEYS,
    *(key for pair in _RANGE_RULE_KEYS.values() for key in pair),
)
_NAME_CHARACTERS = "lower-case letters, digits, '-' and '_'"


@dataclass(frozen=True)
class AssignmentRule:
    """The conditions an account must all meet to get an entry's profile.

    A field left as None places no condition. Ranges include their lower bound
    (``*_at_least``) and exclude their upper bound (``*_below``).
    """

    segments: tuple[str, ...] | None = None
    plans: tuple[str, ...] | None = None
    age_days_at_least: float | None = None
    age_days_below: float | None = None
    arr_at_least: float | None = None
    arr_below: float | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Account columns the rule reads, in the order of the rule keys."""
        needed = {
            "segment": self.segments is not None,
            "plan": self.plans is not None,
            "created_at": self._uses_age,
            "arr": self.arr_at_least is not None or self.arr_below is not None,
        }
        return tuple(name for name, used in needed.items() if used)

    @property
    def _uses_age(self) -> bool:
        return self.age_days_at_least is not None or self.age_days_below is not None

    def to_dict(self) -> dict[str, Any]:
        """Return the rule as the ``when`` mapping of a set file, without empty keys."""
        values = {
            "segment": None if self.segments is None else list(self.segments),
            "plan": None if self.plans is None else list(self.plans),
            "age_days_at_least": self.age_days_at_least,
            "age_days_below": self.age_days_below,
            "arr_at_least": self.arr_at_least,
            "arr_below": self.arr_below,
        }
        return {key: value for key, value in values.items() if value is not None}

    def describe(self) -> str:
        """Return the rule in words, such as ``segment in ['smb'] and arr >= 5000``."""
        parts = []
        if self.segments is not None:
            parts.append(f"segment in {list(self.segments)!r}")
        if self.plans is not None:
            parts.append(f"plan in {list(self.plans)!r}")
        bounds = [
            ("age_days", ">=", self.age_days_at_least),
            ("age_days", "<", self.age_days_below),
            ("arr", ">=", self.arr_at_least),
            ("arr", "<", self.arr_below),
        ]
        for name, operator, bound in bounds:
            if bound is not None:
                parts.append(f"{name} {operator} {bound:g}")
        return " and ".join(parts)

    def matches(self, accounts: _AccountColumns) -> np.ndarray:
        """Return a boolean array: which accounts meet every condition."""
        mask = np.ones(accounts.size, dtype=bool)
        if self.segments is not None:
            mask &= _is_in(accounts.column("segment"), self.segments)
        if self.plans is not None:
            mask &= _is_in(accounts.column("plan"), self.plans)
        if self._uses_age:
            ages = accounts.age_days()
            mask &= _in_range(ages, self.age_days_at_least, self.age_days_below)
        if self.arr_at_least is not None or self.arr_below is not None:
            mask &= _in_range(accounts.arr(), self.arr_at_least, self.arr_below)
        return mask


@dataclass(frozen=True)
class ProfileSetEntry:
    """One entry of a profile set: a profile and the rule that selects its accounts.

    ``when`` is None for the default entry. ``reference`` is the profile path as
    written in the set file, or None for an inline profile. It does not take part in
    equality.
    """

    profile: HealthProfile
    when: AssignmentRule | None
    reference: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as plain JSON-ready data, naming the profile by its hash."""
        data: dict[str, Any] = {
            "profile": self.profile.name,
            "profile_hash": self.profile.hash,
        }
        if self.when is not None:
            data["when"] = self.when.to_dict()
        return data


@dataclass(frozen=True)
class ProfileSet:
    """A validated profile set: entries tried in order, the first match wins.

    Build one with :func:`load_profile_set`, :func:`parse_profile_set` or
    :func:`as_profile_set`. ``source`` and ``text`` record where the set came from
    and do not take part in equality or in :attr:`hash`.
    """

    name: str
    description: str
    entries: tuple[ProfileSetEntry, ...]
    source: Path | None = field(default=None, compare=False)
    text: str = field(default="", compare=False, repr=False)

    @property
    def profiles(self) -> tuple[HealthProfile, ...]:
        """Distinct profiles, in the order the entries first use them."""
        by_name = {entry.profile.name: entry.profile for entry in self.entries}
        return tuple(by_name.values())

    @property
    def default(self) -> HealthProfile | None:
        """The profile of the last entry if it has no rule, else None."""
        last = self.entries[-1]
        return last.profile if last.when is None else None

    @property
    def metrics(self) -> tuple[str, ...]:
        """Distinct metric names the profiles use, in profile order."""
        names = (metric for p in self.profiles for metric in p.metrics)
        return tuple(dict.fromkeys(names))

    @property
    def account_columns(self) -> tuple[str, ...]:
        """Account columns that :func:`assign_profiles` reads for this set."""
        needed = {"account_id"}
        for entry in self.entries:
            if entry.when is not None:
                needed.update(entry.when.columns)
            if entry.profile.applies_to_segments is not None:
                needed.add("segment")
        order = ("account_id", "segment", "plan", "created_at", "arr")
        return tuple(name for name in order if name in needed)

    @cached_property
    def hash(self) -> str:
        """SHA-256 hex digest of the set's parsed content and its profiles' hashes."""
        canonical = json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """Return the set as plain JSON-ready data."""
        return {
            "name": self.name,
            "description": self.description,
            "profiles": [entry.to_dict() for entry in self.entries],
        }

    def profile(self, name: str) -> HealthProfile:
        """Return the member profile called ``name``.

        Raises
        ------
        KeyError
            If no entry uses a profile of that name.
        """
        for candidate in self.profiles:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def check_metrics(self, known: Callable[[str], bool] | Collection[str]) -> None:
        """Raise ProfileError naming every unknown metric of every member profile.

        Parameters
        ----------
        known
            As for :meth:`HealthProfile.check_metrics`.

        Raises
        ------
        ProfileError
            With one problem per unknown metric. Each field starts with the entry,
            such as ``profiles[1].profile.components[0].measures[2].metric``.
        """
        where = Where(self.source)
        checked: set[str] = set()
        for i, entry in enumerate(self.entries):
            if entry.profile.name in checked:
                continue
            checked.add(entry.profile.name)
            try:
                entry.profile.check_metrics(known)
            except ProfileError as exc:
                entry_where = _entry_where(where, i).key("profile")
                _report_profile_error(exc, entry_where, entry.reference)
        where.problems.raise_any()


def as_profile_set(profiles: HealthProfile | ProfileSet) -> ProfileSet:
    """Return ``profiles`` as a profile set, wrapping a single profile as a set of one.

    The set of one has the profile's name, no rule, and the profile's ``source`` and
    ``text``. Its accounts are those the profile's ``applies_to`` selects.
    """
    if isinstance(profiles, ProfileSet):
        return profiles
    if not isinstance(profiles, HealthProfile):
        raise ConfigError(
            f"expected a HealthProfile or a ProfileSet; got {profiles!r}. Load one "
            "with load_profile or load_profile_set.",
            field="profile",
        )
    reference = None if profiles.source is None else str(profiles.source)
    return ProfileSet(
        name=profiles.name,
        description=profiles.description,
        entries=(ProfileSetEntry(profiles, None, reference),),
        source=profiles.source,
        text=profiles.text,
    )


def load_profile_set(path: str | Path) -> ProfileSet:
    """Read and validate a profile set file, or a single profile file as a set of one.

    Parameters
    ----------
    path
        The set file. Profile paths in it are relative to its folder.

    Returns
    -------
    ProfileSet
        The validated set, with ``source`` set to ``path``.

    Raises
    ------
    ProfileError
        If the file cannot be read, or the set or one of its profiles is invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(
            f"cannot read the profile set file: {exc}. Check the path and that it "
            "is UTF-8 text.",
            path=path,
        ) from exc
    return parse_profile_set(text, path=path)


def parse_profile_set(
    text: str, path: str | Path | None = None, *, base_dir: str | Path | None = None
) -> ProfileSet:
    """Parse and validate a profile set, or a single profile as a set of one.

    Parameters
    ----------
    text
        The YAML document. A mapping with a ``profiles`` key is a set: optional
        ``name`` (``[a-z0-9_-]+``, default the file name or ``profile-set``) and
        ``description``, and ``profiles``, a list of entries. Each entry has
        ``profile`` (a file path or an inline profile mapping) and ``when`` (a
        rule, see the module documentation). Only the last entry, which is
        required to be there, has no ``when``. Any other document is parsed as a
        single profile by :func:`~healthscore.scoring.profile.parse_profile`.
    path
        The file the text came from, used in error messages and to resolve
        relative profile paths.
    base_dir
        The folder relative profile paths start from. Default: the folder of
        ``path``, else the current directory.

    Returns
    -------
    ProfileSet

    Raises
    ------
    ProfileError
        For invalid YAML, an invalid set or an invalid profile. One error reports
        every problem found, up to 20, as for ``parse_profile``. A problem inside a
        profile has a field that starts with its entry, such as
        ``profiles[0].profile.components[1].weight``.

    Examples
    --------
    >>> profile_set = parse_profile_set('''
    ... profiles:
    ...   - profile:
    ...       name: young
    ...       components:
    ...         - {name: usage, weight: 1, measures: [{metric: active_days_30d,
    ...            linear: {worst: 0, best: 20}}]}
    ...     when: {age_days_below: 90}
    ...   - profile:
    ...       name: mature
    ...       components:
    ...         - {name: usage, weight: 1, measures: [{metric: active_days_30d,
    ...            linear: {worst: 0, best: 25}}]}
    ... ''')
    >>> [p.name for p in profile_set.profiles]
    ['young', 'mature']
    >>> profile_set.entries[0].when.describe()
    'age_days < 90'
    """
    source = None if path is None else Path(path)
    where = Where(source, problems=Problems(merge_misspelt_keys=True))
    raw = load_yaml(text, source) if text.strip() else None
    if raw is None:
        raise where.error(
            "the profile set is empty. Write 'profiles:' with one entry per profile."
        )
    if not _is_set_document(raw):
        return as_profile_set(parse_profile(text, path=source))

    folder = _base_folder(source, base_dir)
    try:
        profile_set = _read_set(raw, where, text, folder)
    except ProfileError as exc:
        where.problems.add(exc)
        raise where.failed() from None
    logger.debug(
        "parsed profile set %r with %d entries (%s)",
        profile_set.name,
        len(profile_set.entries),
        profile_set.hash[:12],
    )
    return profile_set


def _is_set_document(raw: Any) -> bool:
    """Return whether a parsed document is a set rather than a single profile.

    A document without ``components`` whose keys include one close to ``profiles``
    counts as a set, so that a misspelt ``profiles`` key is reported as such.
    """
    if not isinstance(raw, Mapping):
        return False
    if "profiles" in raw:
        return True
    if "components" in raw:
        return False
    keys = [str(key) for key in raw]
    return bool(difflib.get_close_matches("profiles", keys, n=1, cutoff=0.75))


def _base_folder(source: Path | None, base_dir: str | Path | None) -> Path:
    if base_dir is not None:
        return Path(base_dir)
    if source is not None:
        return source.parent
    return Path.cwd()


def _read_set(
    raw: Mapping[Any, Any], where: Where, text: str, folder: Path
) -> ProfileSet:
    """Read every top-level key, then raise if any part of the set was invalid."""
    check_keys(raw, where, allowed=_SET_KEYS)
    if "components" in raw:
        where.key("components").report(
            "a profile set lists its profiles under 'profiles' and has no "
            "'components'. Move the components into a profile file or an inline "
            "profile."
        )
    name = where.attempt(
        read_text,
        raw,
        "name",
        where,
        default=_default_name(where.path),
        pattern=PROFILE_NAME_PATTERN,
        pattern_description=_NAME_CHARACTERS,
    )
    description = where.attempt(read_description, raw, where)
    entries = where.attempt(_read_entries, raw, where, folder)

    where.problems.raise_any()
    if name is None or description is None or entries is None:
        raise where.failed()
    return ProfileSet(
        name=name,
        description=description,
        entries=entries,
        source=where.path,
        text=text,
    )


def _default_name(source: Path | None) -> str:
    if source is None:
        return DEFAULT_SET_NAME
    stem = source.stem.lower()
    if all(char.isalnum() and char.isascii() or char in "-_" for char in stem):
        return stem or DEFAULT_SET_NAME
    return DEFAULT_SET_NAME


def _read_entries(
    raw: Mapping[Any, Any], where: Where, folder: Path
) -> tuple[ProfileSetEntry, ...]:
    items = expect_list(require_key(raw, "profiles", where), where.key("profiles"))
    _check_default(items, where)
    entries = []
    for i, item in enumerate(items):
        entry = where.attempt(_read_entry, item, _entry_where(where, i), folder)
        if entry is not None:
            entries.append((i, entry))
    if len(entries) < len(items):
        raise where.failed()

    _check_repeated_rules(entries, where)
    _check_profile_names(entries, where)
    return tuple(entry for _, entry in entries)


def _read_entry(raw: Any, where: Where, folder: Path) -> ProfileSetEntry:
    raw = expect_mapping(raw, where)
    check_keys(raw, where, allowed=_ENTRY_KEYS)
    loaded = where.attempt(_read_entry_profile, raw, where, folder)
    when = where.attempt(_read_when, raw, where)
    if loaded is None or (when is None and "when" in raw):
        raise where.failed()
    profile, reference = loaded
    return ProfileSetEntry(profile=profile, when=when, reference=reference)


def _read_entry_profile(
    raw: Mapping[Any, Any], where: Where, folder: Path
) -> tuple[HealthProfile, str | None]:
    value = require_key(raw, "profile", where)
    where = where.key("profile")
    if isinstance(value, Mapping):
        return _read_inline_profile(value, where), None
    if isinstance(value, str) and value.strip():
        return _read_profile_file(value, where, folder), value
    raise where.error(
        f"expected a profile file path or an inline profile mapping; got {value!r}. "
        "Write a path such as 'onboarding.yaml', relative to the set file."
    )


def _read_inline_profile(value: Mapping[Any, Any], where: Where) -> HealthProfile:
    # The mapping goes back to YAML text so parse_profile validates it as it
    # validates a file. safe_dump quotes the strings that YAML 1.1 would read as
    # booleans or numbers, so the values read back unchanged.
    text = yaml.safe_dump(dict(value), sort_keys=False, allow_unicode=True)
    try:
        return parse_profile(text)
    except ProfileError as exc:
        _report_profile_error(exc, where, None)
        raise where.failed() from None


def _read_profile_file(reference: str, where: Where, folder: Path) -> HealthProfile:
    path = folder / reference
    if not path.is_file():
        raise where.error(
            f"profile file {reference!r} not found at {str(path)!r}. Write a path "
            "relative to the set file's folder, or an absolute path."
        )
    try:
        text = path.read_text(encoding="utf-8")
        if _is_set_document(load_yaml(text, path)):
            raise where.error(
                f"{reference!r} is a profile set, and a set cannot contain another "
                "set. List its profiles in this set instead."
            )
        return parse_profile(text, path=path)
    except (OSError, UnicodeDecodeError) as exc:
        raise where.error(
            f"cannot read profile file {reference!r}: {exc}. Check that it is "
            "readable UTF-8 text."
        ) from exc
    except ProfileError as exc:
        if exc.path is None or exc.path == where.path:
            raise
        _report_profile_error(exc, where, reference)
        raise where.failed() from None


def _report_profile_error(
    error: ProfileError, where: Where, reference: str | None
) -> None:
    """Record each problem of a member profile at its field below the entry."""
    prefix = "" if reference is None else f"in profile file {reference!r}: "
    for inner_field, reason in error.problems:
        target = where.key(inner_field) if inner_field else where
        target.report(f"{prefix}{reason}")


def _read_when(raw: Mapping[Any, Any], where: Where) -> AssignmentRule | None:
    if "when" not in raw:
        return None
    where = where.key("when")
    value = raw["when"]
    if isinstance(value, Mapping) and not value:
        raise where.error(
            "the rule is empty. Add a condition such as 'segment: [smb]', or remove "
            "'when' to make this the default entry."
        )
    value = expect_mapping(value, where)
    problems_before = len(where.problems)
    check_keys(value, where, allowed=_RULE_KEYS)

    segments = where.attempt(_read_names, value, "segment", where)
    plans = where.attempt(_read_names, value, "plan", where)
    bounds = {}
    for lower_key, upper_key in _RANGE_RULE_KEYS.values():
        lower = where.attempt(_read_bound, value, lower_key, where)
        upper = where.attempt(_read_bound, value, upper_key, where)
        _check_range(lower, upper, where.key(upper_key), lower_key, upper_key)
        bounds[lower_key], bounds[upper_key] = lower, upper

    if len(where.problems) > problems_before:
        raise where.failed()
    return AssignmentRule(segments=segments, plans=plans, **bounds)


def _read_names(
    raw: Mapping[Any, Any], key: str, where: Where
) -> tuple[str, ...] | None:
    if key not in raw:
        return None
    value = raw[key]
    where = where.key(key)
    if isinstance(value, str) and value:
        return (value,)
    names = expect_list(value, where)
    valid = True
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            where.item(i).report(
                f"expected a {key} name as text; got {name!r}. Quote the name."
            )
            valid = False
    if not valid:
        raise where.failed()
    return tuple(dict.fromkeys(names))


def _read_bound(raw: Mapping[Any, Any], key: str, where: Where) -> float | None:
    if key not in raw:
        return None
    return check_number(raw[key], where.key(key), minimum=0)


def _check_range(
    lower: float | None,
    upper: float | None,
    where: Where,
    lower_key: str,
    upper_key: str,
) -> None:
    if lower is None or upper is None or lower < upper:
        return
    where.report(
        f"{upper_key} {upper:g} is not above {lower_key} {lower:g}, so no account "
        f"can match. Make {upper_key} larger than {lower_key}."
    )


def _check_default(items: list[Any], where: Where) -> None:
    """Record a problem unless exactly the last entry leaves out ``when``."""
    last = len(items) - 1
    for i, item in enumerate(items):
        if isinstance(item, Mapping) and "when" not in item and i < last:
            _entry_where(where, i).report(
                "only the last entry may leave out 'when', because the entries "
                "after a default are never used. Add a 'when' rule to this entry or "
                "move it to the end."
            )
    if isinstance(items[last], Mapping) and "when" in items[last]:
        _entry_where(where, last).key("when").report(
            "the last entry has a 'when' rule, so accounts that match no rule get "
            "no profile. Add a last entry without 'when' as the default."
        )


def _check_repeated_rules(
    entries: list[tuple[int, ProfileSetEntry]], where: Where
) -> None:
    first_with_rule: dict[AssignmentRule, int] = {}
    for i, entry in entries:
        rule = entry.when
        if rule is None:
            continue
        earlier = first_with_rule.setdefault(rule, i)
        if earlier != i and entries[earlier][1].profile.applies_to_segments is None:
            _entry_where(where, i).key("when").report(
                f"the rule {rule.describe()!r} repeats profiles[{earlier}]'s rule, so "
                "this entry never matches an account. Change the rule or remove the "
                "entry."
            )


def _check_profile_names(
    entries: list[tuple[int, ProfileSetEntry]], where: Where
) -> None:
    """Record a problem for two different profiles with one name."""
    first_by_name: dict[str, tuple[int, HealthProfile]] = {}
    for i, entry in entries:
        profile = entry.profile
        earlier = first_by_name.setdefault(profile.name, (i, profile))
        if earlier[1] != profile:
            _entry_where(where, i).key("profile").report(
                f"profile name {profile.name!r} is also the name of the different "
                f"profile in profiles[{earlier[0]}]. Rename one of them, because "
                "scores name the profile that made them."
            )


def _entry_where(where: Where, index: int) -> Where:
    return where.key("profiles").item(index)


@dataclass(frozen=True)
class _AccountColumns:
    """The account columns rules read, checked and converted once per call."""

    frame: pd.DataFrame
    as_of: dt.date | None

    @property
    def size(self) -> int:
        return len(self.frame)

    def column(self, name: str) -> pd.Series:
        return self.frame[name]

    def age_days(self) -> np.ndarray:
        """Return each account's age in days at the end of the as-of date.

        Like the ``tenure_days`` metric, the creation time is truncated to whole
        seconds, so the age is the period end minus that time.
        """
        if self.as_of is None:
            raise ConfigError(
                "as_of is missing, but a rule uses the account age. Pass the as-of "
                "date, such as datetime.date(2025, 3, 31).",
                field="as_of",
            )
        end = pd.Timestamp(period_end(self.as_of))
        created = _utc_times(self.frame["created_at"])
        seconds = (end - created).dt.total_seconds().to_numpy(dtype=np.float64)
        return np.ceil(seconds) / SECONDS_PER_DAY

    def arr(self) -> np.ndarray:
        column = self.frame["arr"]
        try:
            values = pd.to_numeric(column)
        except (TypeError, ValueError) as exc:
            raise InputDataError(
                f"the arr column must hold numbers; got dtype {column.dtype}: {exc}. "
                "Convert it with pandas.to_numeric."
            ) from exc
        return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _utc_times(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert("UTC")
    if column.isna().all():
        return pd.Series(pd.NaT, index=column.index, dtype="datetime64[us, UTC]")
    raise InputDataError(
        f"the created_at column must hold timezone-aware times; got dtype "
        f"{column.dtype}. Convert it with pandas.to_datetime(values, utc=True)."
    )


def _is_in(column: pd.Series, names: tuple[str, ...]) -> np.ndarray:
    return column.isin(names).to_numpy(dtype=bool, na_value=False)


def _in_range(
    values: np.ndarray, at_least: float | None, below: float | None
) -> np.ndarray:
    """Return which values lie in ``[at_least, below)``. NaN is in no range."""
    mask = ~np.isnan(values)
    with np.errstate(invalid="ignore"):
        if at_least is not None:
            mask &= values >= at_least
        if below is not None:
            mask &= values < below
    return mask


def assign_profiles(
    accounts: pd.DataFrame,
    profile_set: ProfileSet | HealthProfile,
    as_of: dt.date | None,
) -> pd.Series:
    """Choose each account's profile: the first entry whose rule it matches.

    Parameters
    ----------
    accounts
        One row per account with ``account_id`` and the columns the set's rules
        read (:attr:`ProfileSet.account_columns`): ``segment`` and ``plan`` as
        text, ``created_at`` as timezone-aware times and ``arr`` as numbers. A
        missing value never meets a condition on its column.
    profile_set
        The profile set, or a single profile as a set of one.
    as_of
        The date at whose end account ages are measured. Only a set with an age
        rule needs it.

    Returns
    -------
    pandas.Series
        The profile name per account, indexed by ``account_id`` in the order of
        ``accounts`` and named ``profile``. None marks an account no entry takes,
        which happens only when the last entry has a rule or its profile's
        ``applies_to`` leaves the account out.

    Raises
    ------
    InputDataError
        If ``account_id`` is absent, missing or repeated, or a column the rules read
        is absent or of the wrong type.
    ConfigError
        If a rule uses the account age and ``as_of`` is None or not a date.

    Examples
    --------
    >>> import pandas as pd
    >>> profile_set = parse_profile_set('''
    ... profiles:
    ...   - profile: {name: big, components: [{name: c, weight: 1, measures:
    ...       [{metric: arr, linear: {worst: 0, best: 1}}]}]}
    ...     when: {arr_at_least: 100000}
    ...   - profile: {name: small, components: [{name: c, weight: 1, measures:
    ...       [{metric: arr, linear: {worst: 0, best: 1}}]}]}
    ... ''')
    >>> accounts = pd.DataFrame({"account_id": ["a", "b"], "arr": [250_000.0, 900.0]})
    >>> assign_profiles(accounts, profile_set, as_of=None).tolist()
    ['big', 'small']
    """
    profile_set = as_profile_set(profile_set)
    _check_account_ids(accounts, "accounts")
    _check_columns(accounts, profile_set)
    columns = _AccountColumns(accounts.reset_index(drop=True), as_of)

    names = np.full(len(accounts), None, dtype=object)
    open_rows = np.ones(len(accounts), dtype=bool)
    for entry in profile_set.entries:
        matched = open_rows & _entry_mask(entry, columns)
        names[matched] = entry.profile.name
        open_rows &= ~matched

    index = pd.Index(accounts["account_id"].to_numpy(), name="account_id")
    assignments = pd.Series(names, index=index, name="profile", dtype=object)
    _log_assignments(assignments, profile_set)
    return assignments


def _entry_mask(entry: ProfileSetEntry, columns: _AccountColumns) -> np.ndarray:
    mask = np.ones(columns.size, dtype=bool)
    if entry.when is not None:
        mask &= entry.when.matches(columns)
    segments = entry.profile.applies_to_segments
    if segments is not None:
        mask &= _is_in(columns.column("segment"), segments)
    return mask


def _check_account_ids(frame: pd.DataFrame, label: str) -> None:
    if "account_id" not in frame.columns:
        raise InputDataError(
            f"the {label} table has no 'account_id' column; got columns "
            f"{list(frame.columns)!r}. Add one row per account with its account_id."
        )
    ids = frame["account_id"]
    if ids.isna().any():
        raise InputDataError(
            f"{int(ids.isna().sum())} {label} rows have no account_id. "
            "Drop them or fill in the account_id."
        )
    repeated = ids[ids.duplicated()].unique()
    if len(repeated):
        raise InputDataError(
            f"account_id values appear more than once in the {label} table: "
            f"{list(repeated[:5])!r}. Pass one row per account."
        )


def _check_columns(accounts: pd.DataFrame, profile_set: ProfileSet) -> None:
    missing = [c for c in profile_set.account_columns if c not in accounts.columns]
    if missing:
        raise InputDataError(
            f"the accounts table has no column {', '.join(map(repr, missing))}, "
            f"which the rules of profile set {profile_set.name!r} read; got columns "
            f"{list(accounts.columns)!r}. Add the column, with missing values where "
            "they are unknown."
        )


def _log_assignments(assignments: pd.Series, profile_set: ProfileSet) -> None:
    counts = assignments.value_counts(dropna=False)
    unassigned = int(assignments.isna().sum())
    logger.info(
        "assigned profiles of set %r to %d accounts: %s; %d with no profile",
        profile_set.name,
        len(assignments),
        ", ".join(f"{name} {int(n)}" for name, n in counts.items() if name),
        unassigned,
    )


@dataclass(frozen=True)
class ProfileSetScores:
    """Scores of accounts that a profile set scored, each by exactly one profile.

    Attributes
    ----------
    scores
        The :attr:`ScoreResult.scores` rows of every profile, with a ``profile``
        column after ``account_id``, in the order of the metrics table. Component
        columns are those of every profile in set order, NaN for an account whose
        profile lacks the component.
    components, measures
        The :class:`ScoreResult` tables of every profile with a ``profile`` column
        after ``account_id``, ordered by account as in the metrics table.
    results
        The :class:`ScoreResult` of each profile that scored at least one account,
        keyed by profile name.
    unscored
        The ``account_id`` of every metrics row that no profile scored.
    """

    scores: pd.DataFrame
    components: pd.DataFrame
    measures: pd.DataFrame
    results: Mapping[str, ScoreResult]
    unscored: pd.Series


def score_profile_set(
    metrics: pd.DataFrame,
    profile_set: ProfileSet | HealthProfile,
    assignments: pd.Series | None = None,
) -> ProfileSetScores:
    """Score every account in ``metrics`` with the profile the set assigns it.

    The accounts are grouped by profile and each group is scored by
    :func:`~healthscore.scoring.engine.score_accounts`. Percentile measures therefore
    rank an account among peers of its segment that share its profile.

    Parameters
    ----------
    metrics
        One row per account: ``account_id``, optional ``segment`` and one column
        per metric of every member profile.
    profile_set
        The profile set, or a single profile as a set of one.
    assignments
        The profile name per account, indexed by ``account_id``, as
        :func:`assign_profiles` returns it. An account it lacks, or maps to None,
        is not scored. By default ``assign_profiles(metrics, profile_set,
        as_of=None)``, which needs every column the rules read in ``metrics`` and
        no age rule.

    Returns
    -------
    ProfileSetScores

    Raises
    ------
    InputDataError
        If ``account_id`` is absent, missing or repeated, or an assignment names a
        profile that is not in the set.
    """
    profile_set = as_profile_set(profile_set)
    _check_account_ids(metrics, "metrics")
    if assignments is None:
        assignments = assign_profiles(metrics, profile_set, as_of=None)
    frame = metrics.reset_index(drop=True)
    names = _assigned_names(frame, profile_set, assignments)

    parts = []
    for profile in profile_set.profiles:
        positions = np.flatnonzero(names == profile.name)
        if len(positions):
            result = score_accounts(frame.iloc[positions], profile)
            parts.append((profile, positions, result))
    unscored = frame["account_id"][pd.isna(names)].reset_index(drop=True)
    return _combine_results(frame, profile_set, parts, unscored)


def _assigned_names(
    frame: pd.DataFrame, profile_set: ProfileSet, assignments: pd.Series
) -> np.ndarray:
    if assignments.index.has_duplicates:
        repeated = assignments.index[assignments.index.duplicated()].unique()
        raise InputDataError(
            f"assignments name accounts more than once: {list(repeated[:5])!r}. "
            "Pass one profile name per account, as assign_profiles returns them."
        )
    names = frame["account_id"].map(assignments).to_numpy(dtype=object, copy=True)
    missing = pd.isna(names)
    known = {profile.name for profile in profile_set.profiles}
    unknown = sorted(set(pd.unique(names[~missing])) - known)
    if unknown:
        raise InputDataError(
            f"assignments name profiles {unknown!r}, which are not in profile set "
            f"{profile_set.name!r} (profiles {sorted(known)!r}). Assign profiles "
            "with assign_profiles and the same set."
        )
    names[missing] = None
    return names


def _combine_results(
    frame: pd.DataFrame,
    profile_set: ProfileSet,
    parts: list[tuple[HealthProfile, np.ndarray, ScoreResult]],
    unscored: pd.Series,
) -> ProfileSetScores:
    if not parts:
        # No account was scored: keep the columns a scoring of no rows has.
        profile = profile_set.profiles[0]
        empty = score_accounts(frame.iloc[:0], _without_applies_to(profile))
        parts = [(profile, np.array([], dtype=np.int64), empty)]
        results: dict[str, ScoreResult] = {}
    else:
        results = {profile.name: result for profile, _, result in parts}

    tables = {}
    for table in ("scores", "components", "measures"):
        pieces, order = [], []
        for profile, positions, result in parts:
            # A shallow copy, so inserting the column leaves ``results`` unchanged.
            piece = getattr(result, table).copy(deep=False)
            rows_per_account = len(piece) // max(len(positions), 1)
            names = np.repeat(np.array([profile.name], dtype=object), len(piece))
            piece.insert(1, "profile", pd.Series(names, dtype=object, copy=False))
            pieces.append(piece)
            order.append(np.repeat(positions, rows_per_account))
        tables[table] = _in_account_order(pieces, order)
    return ProfileSetScores(
        scores=tables["scores"],
        components=tables["components"],
        measures=tables["measures"],
        results=results,
        unscored=unscored,
    )


def _without_applies_to(profile: HealthProfile) -> HealthProfile:
    return dataclasses.replace(profile, applies_to_segments=None)


def _in_account_order(
    pieces: list[pd.DataFrame], order: list[np.ndarray]
) -> pd.DataFrame:
    """Concatenate ``pieces`` and sort rows stably by their account's position."""
    if len(pieces) == 1:
        # Only one profile scored accounts, so its rows are already in account order.
        return pieces[0]
    combined = pd.concat(pieces, ignore_index=True, sort=False)
    positions = np.concatenate(order) if order else np.array([], dtype=np.int64)
    rows = np.argsort(positions, kind="stable")
    return combined.take(rows).reset_index(drop=True)
