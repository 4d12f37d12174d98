import datetime as dt

import duckdb
import pyarrow as pa
import pytest

from healthscore.exceptions import ConfigError, StoreError
from healthscore.store import (
    DEFAULT_STORE,
    STORE_ENV_VAR,
    TABLES,
    Store,
    resolve_store_path,
)


def _account_rows(*ids):
    return pa.table({"account_id": list(ids), "load_id": ["test"] * len(ids)})


def test_resolve_store_path_prefers_argument(monkeypatch, tmp_path):
    monkeypatch.setenv(STORE_ENV_VAR, str(tmp_path / "env.duckdb"))

    assert resolve_store_path(tmp_path / "arg.duckdb") == tmp_path / "arg.duckdb"


def test_resolve_store_path_uses_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(STORE_ENV_VAR, str(tmp_path / "env.duckdb"))

    assert resolve_store_path(None) == tmp_path / "env.duckdb"


def test_resolve_store_path_default(monkeypatch):
    monkeypatch.delenv(STORE_ENV_VAR, raising=False)

    assert resolve_store_path(None) == DEFAULT_STORE


def test_resolve_store_path_rejects_directory(tmp_path):
    with pytest.raises(ConfigError, match="is a directory; expected a DuckDB file"):
        resolve_store_path(tmp_path)


def test_open_creates_every_table(tmp_path):
    with Store.open(tmp_path / "s.duckdb") as store:
        tables = set(store.backend.list_tables())

    assert set(TABLES) <= tables


def test_open_keeps_rows_between_connections(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store.open(path) as store:
        store.insert("accounts", _account_rows("a1", "a2"))

    with Store.open(path) as store:
        assert store.table("accounts").count().execute() == 2


def test_open_rejects_file_that_is_not_duckdb(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("not a database\n" * 100)

    with pytest.raises(StoreError, match="cannot open the store"):
        Store.open(path)


def test_transaction_rolls_back_on_error(tmp_path):
    with Store.open(tmp_path / "s.duckdb") as store:
        store.insert("accounts", _account_rows("a1"))

        with pytest.raises(RuntimeError, match="boom"), store.transaction():
            store.insert("accounts", _account_rows("a2", "a3"))
            raise RuntimeError("boom")

        assert store.table("accounts").count().execute() == 1


def test_transaction_commits_on_success(tmp_path):
    with Store.open(tmp_path / "s.duckdb") as store:
        with store.transaction():
            store.insert("accounts", _account_rows("a1"))
            store.insert("accounts", _account_rows("a2"))

        assert store.table("accounts").count().execute() == 2


def test_insert_casts_to_table_schema(tmp_path):
    moment = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    rows = pa.table(
        {
            "account_id": ["a1"],
            "load_id": ["x"],
            "created_at": pa.array([moment], pa.timestamp("us", tz="UTC")),
            "arr": pa.array([1200], pa.int64()),
        }
    )
    with Store.open(tmp_path / "s.duckdb") as store:
        store.insert("accounts", rows)
        stored = store.table("accounts").to_pyarrow()

    assert stored.column("arr").to_pylist() == [1200.0]
    assert stored.column("created_at").to_pylist()[0] == moment


def test_table_rejects_unknown_name(tmp_path):
    with Store.open(":memory:") as store, pytest.raises(ConfigError, match="orders"):
        store.table("orders")


@pytest.mark.parametrize("name", ["events.csv", "scores.parquet", "accounts.jsonl"])
def test_open_rejects_data_file_extension(tmp_path, name):
    path = tmp_path / name
    path.write_text("account_id\nA1\n")

    with pytest.raises(StoreError, match="has the extension of a data file"):
        Store.open(path)

    assert path.read_text() == "account_id\nA1\n"


def test_open_rejects_empty_file(tmp_path):
    path = tmp_path / "empty.duckdb"
    path.touch()

    with pytest.raises(StoreError, match="it is not a DuckDB database file"):
        Store.open(path)


def test_store_close_leaves_no_write_ahead_log(tmp_path):
    path = tmp_path / "store.duckdb"
    rows = pa.table(
        {
            "load_id": [f"load-{n}" for n in range(50_000)],
            "events": list(range(50_000)),
            "rolled_at": [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)] * 50_000,
        }
    )

    store = Store.open(path)
    setting = store.backend.con.execute(
        "SELECT current_setting('checkpoint_threshold')"
    ).fetchone()[0]
    store.insert("rolled_up_loads", rows)
    wal_before_close = path.with_name(path.name + ".wal").exists()
    store.close()

    assert setting == "1.0 GiB"
    assert wal_before_close
    assert not path.with_name(path.name + ".wal").exists()
    with Store.open(path, create=False) as reopened:
        assert reopened.table("rolled_up_loads").count().execute() == 50_000


def test_store_open_rejects_other_duckdb_database(tmp_path):
    path = tmp_path / "other.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE mine (x INTEGER)")

    with pytest.raises(StoreError, match="not a healthscore store") as raised:
        Store.open(path)

    assert "'mine'" in str(raised.value)
    with duckdb.connect(str(path)) as con:
        tables = [row[0] for row in con.execute("SHOW TABLES").fetchall()]
    assert tables == ["mine"]
