"""Checks that fail when a pinned dependency is lifted before its bug is fixed."""

import ibis
import pyarrow as pa


def test_create_table_from_memtable_on_duckdb(tmp_path):
    # sqlglot 30.18 and newer make DuckDB reject the DROP VIEW IF EXISTS that Ibis 12
    # emits here, which is why pyproject.toml pins sqlglot<30.18.
    backend = ibis.duckdb.connect(str(tmp_path / "pin.duckdb"))
    data = ibis.memtable(pa.table({"account_id": ["a", "b"], "arr": [1.0, 2.0]}))

    backend.create_table("accounts_copy", data)

    assert backend.table("accounts_copy").count().execute() == 2


def test_list_tables_on_duckdb(tmp_path):
    # Ibis 12 lists tables through fetch_arrow_table, which DuckDB 2.0 removed, which
    # is why pyproject.toml pins duckdb<2.
    backend = ibis.duckdb.connect(str(tmp_path / "pin.duckdb"))
    backend.create_table("t", schema=ibis.schema({"x": "int64"}))

    assert backend.list_tables() == ["t"]
