"""Inputs of customer-success managers: sentiments and score overrides.

Each input has an author, a reason and an expiry. As of a date D an input counts when
it was entered by the end of D, expires after the end of D, and no later input of the
same kind replaced it and no clear ended it by then. So an expired input stops
counting by itself, and history rebuilt for an earlier date still counts it.

Nothing is changed or deleted: ``human_inputs`` rows are written once, and every set
and clear adds a ``human_input_audit`` row with the author, the time and the old and
new value. A clear, or a new input of the same kind for the same account, ends the
earlier input at the time of the change.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from dataclasses import dataclass
from typing import Literal

import ibis
import pandas as pd
import pyarrow as pa
from ibis.backends.sql.datatypes import DuckDBType

from healthscore.exceptions import ConfigError, NotFoundError
from healthscore.metrics.asof import period_end
from healthscore.metrics.human import counting_inputs, input_ends, newest_per_account
from healthscore.scoring import (
    UNKNOWN_BAND,
    HealthProfile,
    ProfileSet,
    ScoreResult,
    parse_profile,
)
from healthscore.scoring.overrides import apply_overrides, no_overrides
from healthscore.store import TABLES, Store
from healthscore.store.schema import ADDED_COLUMNS

__all__ = [
    "SENTIMENT_WORDS",
    "HumanInput",
    "InputKind",
    "active_inputs",
    "active_overrides",
    "apply_stored_overrides",
    "clear_input",
    "input_history",
    "list_inputs",
    "set_override",
    "set_sentiment",
    "upgrade_store",
]

logger = logging.getLogger(__name__)

InputKind = Literal["sentiment", "override"]

#: Words accepted as a sentiment, with the 1-5 value each one stores.
SENTIMENT_WORDS: dict[str, int] = {"red": 1, "amber": 3, "green": 5}

# An instant counts as "up to t" when it is before t plus the smallest timestamp
# step, which turns the exclusive period-end filters into inclusive ones.
_TICK = dt.timedelta(microseconds=1)

# Hex digits of an input id: 48 random bits, checked against the stored ids.
_INPUT_ID_LENGTH = 12


@dataclass(frozen=True)
class HumanInput:
    """One stored input, as written by :func:`set_sentiment` or :func:`set_override`.

    Attributes
    ----------
    input_id
        Identifier of the input, used to clear it.
    account_id
        The account it is about.
    kind
        ``"sentiment"`` or ``"override"``.
    value
        The value as text: ``"green"`` or ``"4"`` for a sentiment, ``"score 35"`` or
        ``"band Poor"`` for an override.
    author, reason
        Who entered it and why.
    entered_at, expires_at
        When it starts and stops counting (UTC).
    replaced_input_id
        The input of the same kind that this one ended, if one counted.
    """

    input_id: str
    account_id: str
    kind: InputKind
    value: str
    author: str
    reason: str
    entered_at: dt.datetime
    expires_at: dt.datetime
    replaced_input_id: str | None = None


def set_sentiment(
    store: Store,
    account_id: str,
    value: int | str,
    *,
    author: str,
    reason: str,
    expires: dt.date | dt.datetime,
    at: dt.datetime | None = None,
) -> HumanInput:
    """Record a CSM's sentiment about an account, replacing the one that counts.

    Parameters
    ----------
    store
        The DuckDB store to write to.
    account_id
        An account in the ``accounts`` table.
    value
        A whole number from 1 (worst) to 5 (best), as int or text, or one of
        ``"red"`` (1), ``"amber"`` (3) and ``"green"`` (5) in any case.
    author, reason
        Who enters it and why; neither may be blank.
    expires
        When it stops counting. A date means midnight UTC at the start of that
        date, so the input no longer counts as of that date.
    at
        The entry time (timezone-aware), by default now. An earlier time records an
        input made before; a future time is rejected.

    Returns
    -------
    HumanInput
        The stored input.

    Raises
    ------
    ConfigError
        If the value, author, reason, expiry or entry time is invalid.
    NotFoundError
        If the account is not in the store.
    """
    number, text = _sentiment_value(value)
    row = {"sentiment": float(number), "override_score": None, "override_band": None}
    return _set_input(
        store, account_id, "sentiment", text, row, author, reason, expires, at
    )


def set_override(
    store: Store,
    account_id: str,
    *,
    score: float | None = None,
    band: str | None = None,
    author: str,
    reason: str,
    expires: dt.date | dt.datetime,
    at: dt.datetime | None = None,
) -> HumanInput:
    """Fix an account's overall score or band until the expiry.

    Scoring runs then store the override's score (with the band that the profile
    gives it) or band (with the computed score), next to the computed values. The
    band of a band override must be a band of the profile that scores the account;
    :func:`healthscore.scoring.overrides.apply_overrides` checks that at score time.

    Parameters
    ----------
    store
        The DuckDB store to write to.
    account_id
        An account in the ``accounts`` table.
    score
        A fixed score from 0 to 100. Give either ``score`` or ``band``.
    band
        A fixed band name. When the store contains profiles, it must be a band of
        one of them, and it is stored in that profile's spelling.
    author, reason, expires, at
        As for :func:`set_sentiment`.

    Returns
    -------
    HumanInput
        The stored input.

    Raises
    ------
    ConfigError
        If both or neither of ``score`` and ``band`` are given, the score is
        outside 0-100, the band is unknown, or another argument is invalid.
    NotFoundError
        If the account is not in the store.
    """
    if (score is None) == (band is None):
        raise ConfigError(
            f"give exactly one of score and band; got score={score!r} and "
            f"band={band!r}. Pass --score N to fix the score or --band NAME to fix "
            "the band.",
            field="score",
        )
    if score is not None:
        fixed = _override_score(score)
        row = {"sentiment": None, "override_score": fixed, "override_band": None}
        text = f"score {fixed:g}"
    else:
        name = _override_band(store, band)
        row = {"sentiment": None, "override_score": None, "override_band": name}
        text = f"band {name}"
    return _set_input(
        store, account_id, "override", text, row, author, reason, expires, at
    )


def clear_input(
    store: Store,
    input_id: str,
    *,
    author: str,
    reason: str,
    at: dt.datetime | None = None,
    kind: InputKind | None = None,
) -> HumanInput:
    """End an input now (or at ``at``) and audit who did it and why.

    The input row stays in the store. As of a date before the clear it still counts.
    With ``kind``, an input of the other kind is rejected, so a command that clears
    overrides cannot end a sentiment by a mistyped id.

    Returns
    -------
    HumanInput
        The input that was cleared.

    Raises
    ------
    NotFoundError
        If no input has this id.
    ConfigError
        If the input was already cleared, replaced or expired at that time, is not
        of ``kind``, or the author, reason or time is invalid.
    """
    author = _required_text(author, "author")
    reason = _required_text(reason, "reason")
    moment = _entry_time(at)
    cleared = _find_input(store, input_id)
    if kind is not None and cleared.kind != kind:
        raise ConfigError(
            f"input {input_id!r} is of kind {cleared.kind!r}, not {kind!r}. Clear "
            f"it with `healthscore {cleared.kind} clear {input_id}`.",
            field="input_id",
        )
    _check_still_counts(store, cleared, moment)

    audit = _audit_row(
        cleared,
        action="clear",
        author=author,
        reason=reason,
        changed_at=moment,
        old_value=cleared.value,
        new_value=None,
        ended_input_id=cleared.input_id,
    )
    with store.transaction():
        store.insert("human_input_audit", audit)
    logger.info(
        "cleared %s input %s of account %s", cleared.kind, input_id, cleared.account_id
    )
    return cleared


def active_inputs(store: Store, as_of: dt.date) -> pd.DataFrame:
    """Return the inputs of both kinds that count as of the end of ``as_of``.

    Returns
    -------
    pandas.DataFrame
        The ``human_inputs`` columns, sorted by ``account_id``, ``kind`` and
        ``entered_at``.
    """
    end = period_end(as_of)
    sentiments = counting_inputs(store, end, "sentiment")
    overrides = counting_inputs(store, end, "override")
    rows = sentiments.union(overrides).order_by(
        ["account_id", "kind", "entered_at", "input_id"]
    )
    return rows.to_pandas()


def active_overrides(store: Store, as_of: dt.date) -> pd.DataFrame:
    """Return each account's newest counting override, as :func:`apply_overrides` reads.

    Returns
    -------
    pandas.DataFrame
        ``account_id``, ``input_id``, ``override_score``, ``override_band``,
        ``author``, ``reason`` and ``expires_at``, one row per account.
    """
    newest = newest_per_account(counting_inputs(store, period_end(as_of), "override"))
    columns = [
        "account_id",
        "input_id",
        "override_score",
        "override_band",
        "author",
        "reason",
        "expires_at",
    ]
    return newest.select(*columns).order_by("account_id").to_pandas()


def apply_stored_overrides(
    store: Store,
    result: ScoreResult,
    profile: HealthProfile | ProfileSet,
    as_of: dt.date,
) -> ScoreResult:
    """Apply the overrides that count as of ``as_of`` to a scoring result.

    On a DuckDB store the ``scores`` table first gets any override columns it
    lacks, see :func:`upgrade_store`. Another backend without a ``human_inputs``
    table, such as a Spark database loaded before inputs existed, has no overrides.
    """
    if store.backend.name == "duckdb":
        upgrade_store(store)
    elif "human_inputs" not in store.backend.list_tables():
        logger.info("the store has no human_inputs table, so no override applies")
        return apply_overrides(result, no_overrides(), profile)
    return apply_overrides(result, active_overrides(store, as_of), profile)


def list_inputs(
    store: Store,
    *,
    account_id: str | None = None,
    include_ended: bool = False,
    now: dt.datetime | None = None,
) -> pd.DataFrame:
    """Return the stored inputs with their status at ``now``.

    Parameters
    ----------
    store
        The store to read.
    account_id
        Only this account's inputs.
    include_ended
        Also list inputs that expired, were cleared or were replaced.
    now
        The time the status refers to, by default the current time.

    Returns
    -------
    pandas.DataFrame
        The ``human_inputs`` columns plus ``ended_at`` (when a clear or a newer
        input ended it) and ``status``: ``"active"``, ``"expired"``, ``"cleared"``,
        ``"replaced"`` or ``"pending"`` (entered after ``now``). Sorted by
        account, kind and entry time.
    """
    moment = _entry_time(now) if now is not None else dt.datetime.now(dt.UTC)
    inputs = store.table("human_inputs")
    if account_id is not None:
        inputs = inputs.filter(inputs.account_id == account_id)
    audit = store.table("human_input_audit")
    clears = audit.filter(audit.action == "clear").select(
        input_id="ended_input_id", cleared=ibis.literal(True)
    )
    rows = (
        inputs.left_join(input_ends(store), "input_id")
        .drop("input_id_right")
        .left_join(clears, "input_id")
        .drop("input_id_right")
        .order_by(["account_id", "kind", "entered_at", "input_id"])
        .to_pandas()
    )
    rows["status"] = [
        _status(*values, moment)
        for values in zip(
            rows["entered_at"],
            rows["expires_at"],
            rows["ended_at"],
            rows["cleared"],
            strict=True,
        )
    ]
    rows = rows.drop(columns="cleared")
    if not include_ended:
        rows = rows[rows["status"] == "active"].reset_index(drop=True)
    return rows


def input_history(store: Store, account_id: str) -> pd.DataFrame:
    """Return the audit trail of an account's inputs, with expiries, oldest first.

    Each set and clear is one row from ``human_input_audit``. An input that ran to
    its expiry before now adds a row with action ``"expire"`` at its expiry time,
    with no author.

    Returns
    -------
    pandas.DataFrame
        ``changed_at``, ``action``, ``kind``, ``input_id``, ``author``, ``reason``,
        ``old_value``, ``new_value`` and ``ended_input_id``.

    Raises
    ------
    NotFoundError
        If the account is not in the store.
    """
    _check_account(store, account_id)
    audit = store.table("human_input_audit")
    audit = audit.filter(audit.account_id == account_id).to_pandas()
    expiries = _expiry_rows(store, account_id, dt.datetime.now(dt.UTC))
    columns = [
        "changed_at",
        "action",
        "kind",
        "input_id",
        "author",
        "reason",
        "old_value",
        "new_value",
        "ended_input_id",
    ]
    parts = [frame[columns] for frame in (audit, expiries) if not frame.empty]
    if not parts:
        return audit[columns]
    history = pd.concat(parts, ignore_index=True)
    order = history["action"].map({"expire": 0, "clear": 1, "set": 2})
    history = history.assign(_order=order)
    history = history.sort_values(["changed_at", "_order"], kind="mergesort")
    return history.drop(columns="_order").reset_index(drop=True)


def upgrade_store(store: Store) -> list[str]:
    """Add the columns of :data:`~healthscore.store.schema.ADDED_COLUMNS` a store lacks.

    Stores created before the override columns existed can be read as they are,
    but scoring runs write every column of the ``scores`` schema. The new columns
    are nullable, so existing rows read as having no override.

    Returns
    -------
    list[str]
        The ``table.column`` names that were added.
    """
    added = []
    for table, columns in ADDED_COLUMNS.items():
        present = set(store.backend.table(table).columns)
        for column in columns:
            if column in present:
                continue
            sql_type = DuckDBType.to_string(TABLES[table][column])
            # Ibis has no ALTER TABLE; writable stores are always DuckDB.
            store.backend.raw_sql(
                f'ALTER TABLE "{table}" ADD COLUMN "{column}" {sql_type}'
            )
            added.append(f"{table}.{column}")
    if added:
        logger.info("added columns %s to the store", ", ".join(added))
    return added


def _set_input(
    store: Store,
    account_id: str,
    kind: InputKind,
    value: str,
    values: dict[str, object],
    author: str,
    reason: str,
    expires: dt.date | dt.datetime,
    at: dt.datetime | None,
) -> HumanInput:
    author = _required_text(author, "author")
    reason = _required_text(reason, "reason")
    entered_at = _entry_time(at)
    expires_at = _expiry_time(expires, entered_at, explicit_entry=at is not None)
    _check_account(store, account_id)

    replaced = _counting_input(store, account_id, kind, entered_at)
    stored = HumanInput(
        input_id=_new_input_id(store),
        account_id=account_id,
        kind=kind,
        value=value,
        author=author,
        reason=reason,
        entered_at=entered_at,
        expires_at=expires_at,
        replaced_input_id=None if replaced is None else replaced.input_id,
    )
    row = {
        "input_id": [stored.input_id],
        "account_id": [account_id],
        "kind": [kind],
        "value": [value],
        **{name: [column] for name, column in values.items()},
        "author": [author],
        "reason": [reason],
        "entered_at": [entered_at],
        "expires_at": [expires_at],
    }
    audit = _audit_row(
        stored,
        action="set",
        author=author,
        reason=reason,
        changed_at=entered_at,
        old_value=None if replaced is None else replaced.value,
        new_value=value,
        ended_input_id=stored.replaced_input_id,
    )
    with store.transaction():
        store.insert("human_inputs", pa.table(row))
        store.insert("human_input_audit", audit)

    logger.info(
        "set %s %s of account %s as input %s", kind, value, account_id, stored.input_id
    )
    return stored


def _new_input_id(store: Store) -> str:
    """Return an unused random input id of 12 hex digits, short enough to type."""
    inputs = store.table("human_inputs")
    while True:
        input_id = uuid.uuid4().hex[:_INPUT_ID_LENGTH]
        in_use = inputs.filter(inputs.input_id == input_id).count().execute()
        if not in_use:
            return input_id


def _audit_row(
    target: HumanInput,
    *,
    action: str,
    author: str,
    reason: str,
    changed_at: dt.datetime,
    old_value: str | None,
    new_value: str | None,
    ended_input_id: str | None,
) -> pa.Table:
    row = {
        "audit_id": [uuid.uuid4().hex],
        "input_id": [target.input_id],
        "account_id": [target.account_id],
        "kind": [target.kind],
        "action": [action],
        "author": [author],
        "reason": [reason],
        "changed_at": [changed_at],
        "old_value": pa.array([old_value], pa.string()),
        "new_value": pa.array([new_value], pa.string()),
        "ended_input_id": pa.array([ended_input_id], pa.string()),
    }
    return pa.table(row)


def _sentiment_value(value: object) -> tuple[int, str]:
    """Return the 1-5 number of a sentiment and its text as stored."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in SENTIMENT_WORDS:
            return SENTIMENT_WORDS[text], text
        if text.isdigit() and 1 <= int(text) <= 5:
            return int(text), str(int(text))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value) and float(value).is_integer() and 1 <= value <= 5:
            return int(value), str(int(value))
    raise ConfigError(
        f"sentiment {value!r} is invalid; expected a whole number from 1 (worst) to "
        f"5 (best) or one of {sorted(SENTIMENT_WORDS)}. Pass for example 4 or amber.",
        field="sentiment",
    )


def _override_score(score: object) -> float:
    number = float(score) if isinstance(score, int | float) else math.nan
    if isinstance(score, bool) or not 0.0 <= number <= 100.0:
        raise ConfigError(
            f"override score {score!r} is invalid; expected a number from 0 to 100. "
            "Pass for example --score 35.",
            field="score",
        )
    return number


def _override_band(store: Store, band: object) -> str:
    if not isinstance(band, str) or not band.strip():
        raise ConfigError(
            f"override band {band!r} is empty; expected a band name such as 'Poor'.",
            field="band",
        )
    name = band.strip()
    if name.lower() == UNKNOWN_BAND.lower():
        raise ConfigError(
            f"override band {band!r} is the band of accounts without a score; "
            "expected a band of the profile, such as 'Poor'. To hide a score, clear "
            "the data instead.",
            field="band",
        )
    known = _stored_band_names(store)
    if not known:
        return name
    spelled = {known_name.lower(): known_name for known_name in known}
    if name.lower() not in spelled:
        raise ConfigError(
            f"override band {band!r} is not a band of the stored profiles; expected "
            f"one of {list(known)}. Pick one of these, or score once with the "
            "profile that defines this band.",
            field="band",
        )
    return spelled[name.lower()]


def _stored_band_names(store: Store) -> list[str]:
    texts = store.table("profiles").select("profile_hash", "text").to_pandas()
    names: list[str] = []
    for text in texts.sort_values("profile_hash")["text"]:
        for band in parse_profile(text).bands:
            if band.name not in names:
                names.append(band.name)
    return names


def _required_text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"{field} {value!r} is empty; every human input needs a non-blank "
            f"{field}. Pass --{field} with "
            + ("your name or email." if field == "author" else "the reason for it."),
            field=field,
        )
    return value.strip()


def _entry_time(at: dt.datetime | None) -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    if at is None:
        return now
    moment = _aware_utc(at, "at")
    if moment > now:
        raise ConfigError(
            f"entry time {at.isoformat()!r} is in the future; expected a time up to "
            f"now ({now.isoformat(timespec='seconds')}). Leave it out to use now.",
            field="at",
        )
    return moment


def _expiry_time(
    expires: dt.date | dt.datetime, entered_at: dt.datetime, *, explicit_entry: bool
) -> dt.datetime:
    if isinstance(expires, dt.datetime):
        expires_at = _aware_utc(expires, "expires")
    elif isinstance(expires, dt.date):
        expires_at = dt.datetime.combine(expires, dt.time(), tzinfo=dt.UTC)
    else:
        raise ConfigError(
            f"expiry {expires!r} is not a date; expected a date such as "
            "2027-03-31 (YYYY-MM-DD).",
            field="expires",
        )
    if expires_at <= entered_at:
        when = "the entry time" if explicit_entry else "now"
        raise ConfigError(
            f"expiry {expires.isoformat()!r} is not after {when} "
            f"({entered_at.isoformat(timespec='seconds')}), so the input would never "
            "count. Pass a later --expires date; a date means the start of that "
            "day in UTC.",
            field="expires",
        )
    return expires_at


def _aware_utc(moment: object, field: str) -> dt.datetime:
    if not isinstance(moment, dt.datetime) or moment.utcoffset() is None:
        raise ConfigError(
            f"{field} {moment!r} is not a timezone-aware datetime; pass one with a "
            "time zone, such as datetime.datetime(2027, 1, 31, tzinfo=datetime.UTC).",
            field=field,
        )
    return moment.astimezone(dt.UTC)


def _check_account(store: Store, account_id: str) -> None:
    accounts = store.table("accounts")
    found = accounts.filter(accounts.account_id == account_id).count().execute()
    if not found:
        raise NotFoundError(
            f"account {account_id!r} not found in the store. List accounts with "
            "`healthscore accounts`; ids are case-sensitive.",
            key=str(account_id),
        )


def _counting_input(
    store: Store, account_id: str, kind: InputKind, moment: dt.datetime
) -> HumanInput | None:
    """Return the account's newest input of ``kind`` that counts at ``moment``."""
    inputs = counting_inputs(store, moment + _TICK, kind)
    inputs = inputs.filter(inputs.account_id == account_id)
    rows = newest_per_account(inputs).to_pandas()
    return None if rows.empty else _input_from_row(rows.iloc[0])


def _find_input(store: Store, input_id: str) -> HumanInput:
    inputs = store.table("human_inputs")
    rows = inputs.filter(inputs.input_id == input_id).to_pandas()
    if rows.empty:
        raise NotFoundError(
            f"input {input_id!r} not found. List input ids with `healthscore inputs "
            "list --all`.",
            key=str(input_id),
        )
    return _input_from_row(rows.iloc[0])


def _input_from_row(row: pd.Series) -> HumanInput:
    return HumanInput(
        input_id=str(row["input_id"]),
        account_id=str(row["account_id"]),
        kind=row["kind"],
        value=str(row["value"]),
        author=str(row["author"]),
        reason=str(row["reason"]),
        entered_at=pd.Timestamp(row["entered_at"]).to_pydatetime(),
        expires_at=pd.Timestamp(row["expires_at"]).to_pydatetime(),
    )


def _check_still_counts(store: Store, target: HumanInput, moment: dt.datetime) -> None:
    ends = input_ends(store)
    ended = ends.filter(ends.input_id == target.input_id).to_pandas()
    if not ended.empty:
        ended_at = pd.Timestamp(ended["ended_at"].iloc[0]).isoformat()
        raise ConfigError(
            f"input {target.input_id!r} already ended at {ended_at}, when it was "
            "cleared or replaced. See `healthscore inputs history "
            f"{target.account_id}`.",
            field="input_id",
        )
    if target.expires_at <= moment:
        raise ConfigError(
            f"input {target.input_id!r} expired at {target.expires_at.isoformat()}, "
            "so it no longer counts and there is nothing to clear.",
            field="input_id",
        )
    if target.entered_at > moment:
        raise ConfigError(
            f"input {target.input_id!r} was entered at "
            f"{target.entered_at.isoformat()}, after the clear time "
            f"{moment.isoformat()}; pass a later time.",
            field="at",
        )


def _status(
    entered_at: pd.Timestamp,
    expires_at: pd.Timestamp,
    ended_at: pd.Timestamp,
    cleared: object,
    moment: dt.datetime,
) -> str:
    if entered_at > moment:
        return "pending"
    if not pd.isna(ended_at) and ended_at <= moment:
        return "cleared" if cleared is True else "replaced"
    if expires_at <= moment:
        return "expired"
    return "active"


def _expiry_rows(store: Store, account_id: str, now: dt.datetime) -> pd.DataFrame:
    """Return one ``expire`` row per input of the account that ran to its expiry."""
    inputs = store.table("human_inputs")
    inputs = inputs.filter(
        (inputs.account_id == account_id)
        & (inputs.expires_at <= ibis.literal(now, type="timestamp('UTC')"))
    )
    joined = inputs.left_join(input_ends(store), "input_id").drop("input_id_right")
    # Clears and replacements only end inputs that still count, so an input that
    # ended never reached its expiry.
    expired = joined.filter(joined.ended_at.isnull()).to_pandas()
    return pd.DataFrame(
        {
            "changed_at": expired["expires_at"],
            "action": "expire",
            "kind": expired["kind"],
            "input_id": expired["input_id"],
            "author": None,
            "reason": "expired",
            "old_value": expired["value"],
            "new_value": None,
            "ended_input_id": expired["input_id"],
        }
    )
