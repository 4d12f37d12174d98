"""The store: an embedded DuckDB file by default, reached through Ibis."""

from healthscore.store.connection import (
    DEFAULT_STORE,
    STORE_ENV_VAR,
    Store,
    resolve_store_path,
)
from healthscore.store.schema import SCHEMA_VERSION, TABLES

__all__ = [
    "DEFAULT_STORE",
    "SCHEMA_VERSION",
    "STORE_ENV_VAR",
    "TABLES",
    "Store",
    "resolve_store_path",
]
