"""Joins of per-account aggregates onto the accounts in scope."""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

__all__ = ["join_on_account", "zero_fill_when_loaded"]


def join_on_account(left: ir.Table, right: ir.Table) -> ir.Table:
    """Left-join ``right`` onto ``left`` by ``account_id``, keeping one key column."""
    joined = left.left_join(right, "account_id")
    extra = [name for name in right.columns if name != "account_id"]
    return joined.select(*left.columns, *extra)


def zero_fill_when_loaded(
    scope_ids: ir.Table,
    aggregate: ir.Table,
    source: ir.Table,
    keys: Sequence[str],
    count_keys: Sequence[str],
) -> ir.Table:
    """Attach ``aggregate`` to every account in scope, with 0 for counts of none.

    An account without rows in ``aggregate`` gets 0 for each of ``count_keys`` when
    ``source`` has at least one row, and a missing value when ``source`` is empty.
    An empty source means the data was never loaded, which must not read as zero
    activity. Keys outside ``count_keys`` stay missing for such accounts.

    Parameters
    ----------
    scope_ids
        One row per account in scope, with column ``account_id``.
    aggregate
        At most one row per account, with ``account_id`` and every key.
    source
        The filtered source rows that ``aggregate`` was computed from.
    keys
        The columns of ``aggregate`` to return.
    count_keys
        The subset of ``keys`` that count rows.
    """
    loaded = source.aggregate(_source_rows=source.count())
    joined = join_on_account(scope_ids, aggregate).cross_join(loaded)

    columns: dict[str, ir.Value] = {}
    for key in keys:
        value = joined[key]
        if key in count_keys:
            value = ibis.ifelse(
                joined._source_rows > 0, value.coalesce(0), ibis.null(value.type())
            )
        columns[key] = value
    return joined.select("account_id", **columns)
