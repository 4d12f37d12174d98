"""The store: an embedded DuckDB file by default, reached through Ibis.

:mod:`healthscore.store.spark` opens the same tables on Apache Spark for reading.
"""

from healthscore.store.connection import (
    DEFAULT_STORE,
    STORE_ENV_VAR,
    Store,
    resolve_store_path,
)
from healthscore.store.schema import SCHEMA_VERSION, TABLES
from healthscore.store.spark import (
    copy_tables,
    is_spark_url,
    open_spark_store,
    open_spark_url,
)

__all__ = [
    "DEFAULT_STORE",
    "SCHEMA_VERSION",
    "STORE_ENV_VAR",
    "TABLES",
    "Store",
    "copy_tables",
    "is_spark_url",
    "open_spark_store",
    "open_spark_url",
    "resolve_store_path",
]
