"""Exceptions raised by healthscore.

Every error the library raises on purpose derives from :class:`HealthscoreError`, so a
caller can catch them all at once. The leaves also derive from the matching builtin, so
code that expects a ``ValueError`` or ``LookupError`` keeps working::

    HealthscoreError
     ├── ConfigError (ValueError)       an option, a store location or a setting
     │    ├── ProfileError              a health profile file
     │    └── MappingError              an ingest column mapping file
     ├── InputDataError (ValueError)    a data file that cannot be loaded at all
     ├── StoreError                     the DuckDB store cannot be opened or written
     └── NotFoundError (LookupError)    an account or a snapshot that is not stored

Each message names the value, what was expected and the fix. The fields below carry the
same facts for callers, such as an HTTP layer, that map errors without parsing text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "ConfigError",
    "HealthscoreError",
    "InputDataError",
    "MappingError",
    "NotFoundError",
    "ProfileError",
    "StoreError",
]


class HealthscoreError(Exception):
    """Base class of every error healthscore raises on purpose."""


class ConfigError(ValueError, HealthscoreError):
    """An option or setting has an invalid value.

    Parameters
    ----------
    message
        What is wrong, with the value and the fix.
    field
        The option or setting at fault, if one is.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ProfileError(ConfigError):
    """A health profile is invalid.

    Parameters
    ----------
    message
        What is wrong and how to fix it.
    path
        The profile file, or ``None`` for a profile built in memory.
    field
        Dotted location of the bad value, such as ``components[1].measures[0].weight``.
        With several problems, the first problem's field.
    problems
        Every problem found, as ``(field, message)`` pairs. With more than one, the
        error text is ``path: message`` followed by one ``field: problem`` line per
        problem. Defaults to the single problem ``(field, message)``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        field: str | None = None,
        problems: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        listed = [(field or "", message)] if problems is None else list(problems)
        where = f"{path}" if path is not None else "profile"
        if len(listed) > 1:
            if field is None:
                field = listed[0][0] or None
            lines = [
                f"{name}: {problem}" if name else problem for name, problem in listed
            ]
            text = "\n".join([f"{where}: {message}", *lines])
        else:
            if field:
                where = f"{where}: {field}"
            text = f"{where}: {message}"
        super().__init__(text, field=field)
        self.path = None if path is None else Path(path)
        self.reason = message
        self.problems: list[tuple[str, str]] = listed


class MappingError(ConfigError):
    """An ingest column mapping is invalid.

    Parameters
    ----------
    message
        What is wrong and how to fix it.
    path
        The mapping file, or ``None`` for a mapping built in memory.
    field
        Location of the bad value inside the mapping.
    """

    def __init__(
        self, message: str, *, path: str | Path | None = None, field: str | None = None
    ) -> None:
        where = f"{path}" if path is not None else "mapping"
        if field:
            where = f"{where}: {field}"
        super().__init__(f"{where}: {message}", field=field)
        self.path = None if path is None else Path(path)
        self.reason = message


class InputDataError(ValueError, HealthscoreError):
    """A data file cannot be loaded at all, so nothing from it was stored.

    Row-level problems do not raise this: such rows go to the quarantine table.

    Parameters
    ----------
    message
        What is wrong with the file and how to fix it.
    path
        The file at fault.
    """

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        super().__init__(f"{path}: {message}" if path is not None else message)
        self.path = None if path is None else Path(path)
        self.reason = message


class StoreError(HealthscoreError):
    """The store cannot be opened, read or written."""


class NotFoundError(LookupError, HealthscoreError):
    """A requested account, snapshot or record is not in the store.

    Parameters
    ----------
    message
        What was looked for and how to find valid values.
    key
        The value that was not found.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key
