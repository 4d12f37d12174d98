"""Helpers that read typed values out of a parsed profile and raise ProfileError.

Every helper takes a :class:`Where`, the profile file plus the dotted field being read,
so each error names both. A ``Where`` also carries the :class:`Problems` found so far in
the profile, so that parsing can go on past one invalid value and report them all.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import yaml

from healthscore.exceptions import ProfileError

P = ParamSpec("P")
T = TypeVar("T")

_MISSING: Any = object()

#: Problems listed in one ProfileError. Parsing goes on past this many and counts the
#: rest.
MAX_PROBLEMS = 20

#: Largest weight a component or measure may have. Weights are relative, so this only
#: keeps sums of weights far from float overflow.
MAX_WEIGHT = 1_000_000

# Scientific notation without a dot, such as 1e3, which YAML 1.1 reads as a string.
_SCIENTIFIC = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+")


class Problems:
    """The validation errors found so far in one profile, one per field, in order.

    Parameters
    ----------
    merge_misspelt_keys
        If true, a key that is missing because an unknown key of the same mapping
        misspells it is reported once, as the unknown key with its "Did you mean"
        hint, and not again as a missing key.
    """

    def __init__(self, *, merge_misspelt_keys: bool = False) -> None:
        self._errors: dict[str, ProfileError] = {}
        self._unlisted: set[str] = set()
        self._merge_misspelt_keys = merge_misspelt_keys
        self._misspelt: set[str] = set()

    def __len__(self) -> int:
        return len(self._errors) + len(self._unlisted)

    def add_misspelt_key(self, field: str) -> None:
        """Record that an unknown key misspells the absent key at ``field``.

        With ``merge_misspelt_keys``, :meth:`add` then drops any problem at
        ``field``. Because the key is absent, the only such problem is that it
        is missing.
        """
        if self._merge_misspelt_keys:
            self._misspelt.add(field)

    def is_misspelt(self, field: str) -> bool:
        """Return whether a recorded unknown key misspells the key at ``field``."""
        return field in self._misspelt

    def add(self, error: ProfileError) -> None:
        """Record ``error`` unless its field already has a problem or is misspelt.

        Past :data:`MAX_PROBLEMS` only the field is kept, to count the problem.
        """
        key = error.field or ""
        if key in self._errors or key in self._unlisted or key in self._misspelt:
            return
        if len(self._errors) < MAX_PROBLEMS:
            self._errors[key] = error
        else:
            self._unlisted.add(key)

    def error(self) -> ProfileError:
        """Build the one ProfileError that reports every recorded problem.

        A single problem comes back as the error that was recorded.
        """
        errors = list(self._errors.values())
        if not errors:
            return ProfileError("the profile is invalid.")
        if len(errors) == 1 and not self._unlisted:
            return errors[0]
        if self._unlisted:
            summary = (
                f"found {len(self)} problems, of which the first {len(errors)} are "
                "listed. Fix them and load the profile again:"
            )
        else:
            summary = (
                f"found {len(errors)} problems. Fix each of them and load the "
                "profile again:"
            )
        return ProfileError(
            summary,
            path=errors[0].path,
            field=errors[0].field,
            problems=[(e.field or "", e.reason) for e in errors],
        )

    def raise_any(self) -> None:
        """Raise :meth:`error` if any problem was recorded."""
        if self:
            raise self.error()


@dataclass(frozen=True)
class Where:
    """A location inside a profile: the file, the dotted field and its problems.

    Locations made with :meth:`key` and :meth:`item` share the same :class:`Problems`.
    """

    path: Path | None
    field: str = ""
    problems: Problems = dataclasses.field(
        default_factory=Problems, compare=False, repr=False
    )

    def key(self, name: str) -> Where:
        """Return the location of the mapping key ``name`` below this one."""
        dotted = f"{self.field}.{name}" if self.field else name
        return Where(self.path, dotted, self.problems)

    def item(self, index: int) -> Where:
        """Return the location of list item ``index`` below this one."""
        return Where(self.path, f"{self.field}[{index}]", self.problems)

    def error(self, message: str) -> ProfileError:
        """Build the ProfileError for a bad value at this location."""
        return ProfileError(message, path=self.path, field=self.field or None)

    def report(self, message: str) -> None:
        """Record a problem at this location and let parsing go on."""
        self.problems.add(self.error(message))

    def attempt(
        self, read: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T | None:
        """Return ``read(*args, **kwargs)``, or record its ProfileError and return None.

        A caller whose value came back None raises :meth:`failed` once it has read
        the values that do not depend on it.
        """
        try:
            return read(*args, **kwargs)
        except ProfileError as exc:
            self.problems.add(exc)
            return None

    def failed(self) -> ProfileError:
        """Build the error a part of the profile raises after recording problems."""
        return self.problems.error()


def close_matches(word: str, choices: Collection[str]) -> list[str]:
    """Return up to 3 of ``choices`` that resemble ``word``, the closest first."""
    return difflib.get_close_matches(word, sorted(choices), n=3, cutoff=0.6)


def suggest(word: str, choices: Collection[str]) -> str:
    """Return a " Did you mean ...?" hint for ``word``, or an empty string."""
    matches = close_matches(word, choices)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(m) for m in matches) + "?"


def expect_mapping(value: Any, where: Where) -> Mapping[Any, Any]:
    """Return ``value`` if it is a mapping, else raise naming its type."""
    if not isinstance(value, Mapping):
        raise where.error(
            f"expected a mapping of keys to values; got {value!r}. "
            "Write it as 'key: value' lines indented below the field."
        )
    return value


def expect_list(value: Any, where: Where) -> list[Any]:
    """Return ``value`` if it is a non-empty list, else raise."""
    if not isinstance(value, list) or not value:
        raise where.error(
            f"expected a non-empty list; got {value!r}. "
            "Write one '- ' item per line below the field."
        )
    return value


def check_keys(
    mapping: Mapping[Any, Any], where: Where, *, allowed: Collection[str]
) -> None:
    """Record a problem for every key of ``mapping`` that is not in ``allowed``.

    Missing keys are reported by the reader of each key, such as :func:`read_text`
    or :func:`require_key`. When the closest allowed key to an unknown one is
    absent, the unknown key is recorded as its misspelling with
    :meth:`Problems.add_misspelt_key`.
    """
    for key in mapping:
        if key in allowed:
            continue
        matches = close_matches(str(key), allowed)
        if matches and matches[0] not in mapping:
            where.problems.add_misspelt_key(where.key(matches[0]).field)
        where.key(str(key)).report(
            f"unknown key {key!r}.{suggest(str(key), allowed)} "
            f"Allowed keys here: {', '.join(sorted(allowed))}."
        )


def require_key(mapping: Mapping[Any, Any], key: str, where: Where) -> Any:
    """Return ``mapping[key]``, else raise that the required key is missing."""
    if key not in mapping:
        raise where.key(key).error(
            f"missing required key {key!r}. Add '{key}:' to this entry."
        )
    return mapping[key]


def read_number(
    mapping: Mapping[Any, Any],
    key: str,
    where: Where,
    *,
    default: Any = _MISSING,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """Return ``mapping[key]`` as a finite float within ``minimum..maximum``."""
    if key not in mapping:
        if default is _MISSING:
            raise where.key(key).error(
                f"missing required key {key!r}. Add '{key}: <number>' to this entry."
            )
        return float(default)
    return check_number(mapping[key], where.key(key), minimum=minimum, maximum=maximum)


def check_number(
    value: Any,
    where: Where,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """Return ``value`` as a finite float within ``minimum..maximum``, else raise.

    Text in scientific notation without a dot, such as ``1e3``, counts as a number,
    because YAML 1.1 reads it as text.
    """
    span = _describe_range(minimum, maximum)
    number = _to_float(value)
    if number is None:
        raise where.error(
            f"expected a number{span}; got {value!r}. Write a number such as 12, "
            "0.5 or 1.0e+3."
        )
    if not math.isfinite(number) and isinstance(value, int):
        raise where.error(
            f"expected a number{span}; got an integer too large for a float. "
            f"Write a number{span} instead."
        )
    if not math.isfinite(number):
        raise where.error(
            f"expected a finite number{span}; got {value!r}. "
            f"Write a finite number{span} instead."
        )
    too_low = minimum is not None and number < minimum
    too_high = maximum is not None and number > maximum
    if too_low or too_high:
        raise where.error(
            f"expected a number{span}; got {value!r}. Write a number{span} instead."
        )
    return number


def _to_float(value: Any) -> float | None:
    """Return ``value`` as a float, or None if it is no number.

    An int beyond the float range becomes +-inf.
    """
    if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _describe_range(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {_format_bound(minimum)} to {_format_bound(maximum)}"
    if minimum is not None:
        return f" of at least {_format_bound(minimum)}"
    if maximum is not None:
        return f" of at most {_format_bound(maximum)}"
    return ""


def _format_bound(bound: float) -> str:
    """Format a range bound, with thousands separators if it is a whole number."""
    if float(bound).is_integer():
        return f"{int(bound):,}"
    return f"{bound:g}"


def read_description(raw: Mapping[Any, Any], where: Where) -> str:
    """Return the optional ``description`` text of ``raw``, empty when absent."""
    value = raw.get("description")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise where.key("description").error(
            f"expected text; got {value!r}. Quote the description."
        )
    return value


def read_text(
    mapping: Mapping[Any, Any],
    key: str,
    where: Where,
    *,
    default: Any = _MISSING,
    pattern: str | None = None,
    pattern_description: str = "",
) -> str:
    """Return ``mapping[key]`` as non-empty text, optionally matching ``pattern``.

    ``pattern_description`` names the allowed characters in words, for the message.
    """
    if key not in mapping:
        if default is _MISSING:
            raise where.key(key).error(
                f"missing required key {key!r}. Add '{key}: <text>' to this entry."
            )
        return str(default)
    value = mapping[key]
    if not isinstance(value, str) or not value.strip():
        raise where.key(key).error(
            f"expected non-empty text; got {value!r}. Write the {key} as text."
        )
    if pattern is not None and re.fullmatch(pattern, value) is None:
        raise where.key(key).error(
            f"invalid value {value!r}: expected only {pattern_description}. "
            f"Write it as {_slug(value)!r}, for example."
        )
    return value


def _slug(value: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", value.lower()).strip("-")
    return slug or "my-profile"


class ProfileLoader(yaml.SafeLoader):
    """A YAML loader with YAML 1.2 booleans that rejects duplicate keys.

    PyYAML follows YAML 1.1, which reads ``yes``, ``no``, ``on`` and ``off`` as
    booleans. Category maps often use ``Yes`` and ``No`` as values, so this loader reads
    only ``true`` and ``false`` as booleans. A key written twice in one mapping raises
    instead of keeping the last value.
    """

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        """Build a mapping, raising ConstructorError on a repeated scalar key."""
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found duplicate key {key_node.value!r}",
                    key_node.start_mark,
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


ProfileLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load_yaml(text: str, path: Path | None) -> Any:
    """Parse ``text`` with :class:`ProfileLoader`; a syntax error names its line."""
    try:
        # ProfileLoader derives from SafeLoader, so it cannot build arbitrary objects.
        return yaml.load(text, Loader=ProfileLoader)
    except yaml.MarkedYAMLError as exc:
        raise ProfileError(_describe_yaml_error(exc), path=path) from exc
    except yaml.YAMLError as exc:
        raise ProfileError(
            f"invalid YAML: {type(exc).__name__}. Fix the syntax and load it again.",
            path=path,
        ) from exc
    except ValueError as exc:
        # PyYAML's constructors raise a bare ValueError for an integer past Python's
        # 4300-digit conversion limit and for a date-like value that is no date.
        raise ProfileError(
            f"invalid YAML value: {exc}. Quote the value to keep it as text, or "
            "fix it.",
            path=path,
        ) from exc


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> str:
    """Build the message ``invalid YAML at line L, column C: problem`` for ``exc``.

    ``str(exc)`` would repeat the offending line with a caret under it, which does not
    fit in a one-line message.
    """
    mark = exc.problem_mark or exc.context_mark
    place = "" if mark is None else f" at {_describe_mark(mark)}"
    problem = _plain_tokens(exc.problem or exc.context or "unreadable YAML")
    context = ""
    if exc.problem and exc.context and exc.context_mark is not None:
        context = f" ({exc.context} that starts at {_describe_mark(exc.context_mark)})"
    return (
        f"invalid YAML{place}: {problem}{context}. Fix the syntax there, such as the "
        "indentation, a quote or a bracket, and load it again."
    )


def _describe_mark(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _plain_tokens(problem: str) -> str:
    """Replace PyYAML's end-of-input token name with plain words."""
    return problem.replace("'<stream end>'", "the end of the file")
