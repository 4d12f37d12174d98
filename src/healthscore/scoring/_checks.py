"""Helpers that read typed values out of a parsed profile and raise ProfileError.

Every helper takes a :class:`Where`, the profile file plus the dotted field being read,
so each error names both.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from healthscore.exceptions import ProfileError

_MISSING: Any = object()


@dataclass(frozen=True)
class Where:
    """A location inside a profile: the file and the dotted field."""

    path: Path | None
    field: str = ""

    def key(self, name: str) -> Where:
        """Return the location of the mapping key ``name`` below this one."""
        return Where(self.path, f"{self.field}.{name}" if self.field else name)

    def item(self, index: int) -> Where:
        """Return the location of list item ``index`` below this one."""
        return Where(self.path, f"{self.field}[{index}]")

    def error(self, message: str) -> ProfileError:
        """Build the ProfileError for a bad value at this location."""
        return ProfileError(message, path=self.path, field=self.field or None)


def suggest(word: str, choices: Collection[str]) -> str:
    """Return a " Did you mean ...?" hint for ``word``, or an empty string."""
    matches = difflib.get_close_matches(word, sorted(choices), n=3, cutoff=0.6)
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
    mapping: Mapping[Any, Any],
    where: Where,
    *,
    allowed: Collection[str],
    required: Collection[str] = (),
) -> None:
    """Raise for the first unknown key or the first missing required key."""
    for key in mapping:
        if key not in allowed:
            raise where.key(str(key)).error(
                f"unknown key {key!r}.{suggest(str(key), allowed)} "
                f"Allowed keys here: {', '.join(sorted(allowed))}."
            )
    for key in required:
        if key not in mapping:
            raise where.key(key).error(
                f"missing required key {key!r}. Add '{key}:' to this entry."
            )


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
    """Return ``value`` as a finite float within ``minimum..maximum``, else raise."""
    span = _describe_range(minimum, maximum)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value):
        raise where.error(f"expected a number{span}; got {value!r}. Write a number.")
    too_low = minimum is not None and value < minimum
    too_high = maximum is not None and value > maximum
    if too_low or too_high:
        raise where.error(
            f"expected a number{span}; got {value!r}. Write a number{span} instead."
        )
    return float(value)


def _describe_range(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum:g} to {maximum:g}"
    if minimum is not None:
        return f" of at least {minimum:g}"
    if maximum is not None:
        return f" of at most {maximum:g}"
    return ""


def read_text(
    mapping: Mapping[Any, Any],
    key: str,
    where: Where,
    *,
    default: Any = _MISSING,
    pattern: str | None = None,
) -> str:
    """Return ``mapping[key]`` as non-empty text, optionally matching ``pattern``."""
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
            f"invalid value {value!r}: expected text matching {pattern}. "
            f"Use lower-case letters, digits, '-' and '_' only, such as "
            f"{_slug(value)!r}."
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
        mark = exc.problem_mark or exc.context_mark
        place = (
            ""
            if mark is None
            else f" at line {mark.line + 1}, column {mark.column + 1}"
        )
        problem = exc.problem or exc.context or "unreadable YAML"
        raise ProfileError(
            f"invalid YAML{place}: {problem}. Fix the syntax there and load it again.",
            path=path,
        ) from exc
    except yaml.YAMLError as exc:
        raise ProfileError(
            f"invalid YAML: {exc}. Fix the syntax and load it again.", path=path
        ) from exc
