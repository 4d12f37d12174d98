"""Read the store on Apache Spark through Ibis's PySpark backend.

The metric expressions run unchanged on a :class:`~healthscore.store.Store` opened
here, and scoring runs on the metric frame pulled to pandas. A Spark store is for
reading: loads and score snapshots go to a DuckDB store, and :func:`copy_tables`
copies its tables to Spark.

Spark keeps a timestamp as an instant and shows it in the session time zone, so the
session runs in UTC (Ibis 12 sets ``spark.sql.session.timeZone`` to UTC on connect
too). Ibis 12 reads Spark's ``TimestampType`` as a naive ``timestamp`` whose values
are the same UTC instants as in the DuckDB store's ``timestamp('UTC')`` columns.

PySpark is an optional dependency, imported when a function here first needs it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa

from healthscore.exceptions import ConfigError, StoreError
from healthscore.store.connection import Store
from healthscore.store.schema import SCHEMA_VERSION, TABLES

if TYPE_CHECKING:
    from ibis.backends.pyspark import Backend as PySparkBackend
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType

__all__ = [
    "METRIC_INPUT_TABLES",
    "SPARK_URL_PREFIX",
    "SparkLocation",
    "check_master",
    "check_spark_installed",
    "copy_tables",
    "is_spark_url",
    "local_session",
    "open_spark_store",
    "open_spark_url",
    "parse_spark_url",
    "session_settings",
    "spark_session",
    "stored_tables",
]

logger = logging.getLogger(__name__)

SPARK_URL_PREFIX = "spark://"
# The address a local session's driver listens on.
LOOPBACK = "127.0.0.1"

# A database name that Spark accepts unquoted.
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Masters written as they are. Any other host is a standalone cluster master.
_PLAIN_MASTERS = re.compile(r"^(local(\[(\d+|\*)(,\d+)?\])?|yarn)$")

# Master URLs of a standalone cluster or Kubernetes.
_URL_MASTERS = re.compile(r"^(spark|k8s)://\S+$")

# Tables that a scoring run writes, and the quarantine of rejected rows.
_NOT_METRIC_INPUTS = frozenset(
    {
        "quarantine",
        "metric_snapshots",
        "profiles",
        "scores",
        "score_components",
        "score_measures",
    }
)

#: The store tables that metrics may read, in store order. Scoring on Spark copies
#: these from the DuckDB store, or expects them in the Spark database.
METRIC_INPUT_TABLES: tuple[str, ...] = tuple(
    name for name in TABLES if name not in _NOT_METRIC_INPUTS
)


@dataclass(frozen=True)
class SparkLocation:
    """The location of a Spark store, parsed from a ``spark://`` URL.

    Attributes
    ----------
    master
        The Spark master, such as ``"local[2]"``, ``"yarn"`` or
        ``"spark://host:7077"``.
    database
        The Spark database that contains the store tables, or ``None`` for the
        session's temporary views.
    """

    master: str
    database: str | None = None


def is_spark_url(value: object) -> bool:
    """Return whether ``value`` is a ``spark://`` store URL rather than a file path."""
    return isinstance(value, str) and value.startswith(SPARK_URL_PREFIX)


def parse_spark_url(url: str) -> SparkLocation:
    """Parse ``spark://MASTER[/DATABASE]`` into a master and an optional database.

    ``spark://local[2]`` runs Spark in this process on 2 cores, ``spark://yarn/hs``
    submits to YARN and reads the tables of database ``hs``, and
    ``spark://host:7077/hs`` connects to the standalone master ``spark://host:7077``.

    Raises
    ------
    ConfigError
        If the URL does not start with ``spark://``, names no master, or names a
        database that is not a plain identifier.
    """
    if not is_spark_url(url):
        raise ConfigError(
            f"store URL {url!r} is not a Spark URL; expected 'spark://MASTER' or "
            "'spark://MASTER/DATABASE', such as 'spark://local[2]'.",
            field="store",
        )
    master, _, database = url[len(SPARK_URL_PREFIX) :].partition("/")
    if not master:
        raise ConfigError(
            f"store URL {url!r} names no Spark master; expected a master such as "
            "'spark://local[2]', 'spark://yarn' or 'spark://host:7077'.",
            field="store",
        )
    if database and not _DATABASE_NAME.match(database):
        raise ConfigError(
            f"store URL {url!r} names the Spark database {database!r}; expected "
            "letters, digits and underscores, not starting with a digit.",
            field="store",
        )
    if not _PLAIN_MASTERS.match(master):
        master = SPARK_URL_PREFIX + master
    return SparkLocation(master=master, database=database or None)


def check_master(master: str) -> str:
    """Return ``master`` if Spark accepts it as a master URL, else raise ConfigError.

    Accepted forms are ``local``, ``local[N]``, ``local[*]``, ``local[N,F]``,
    ``yarn``, ``spark://HOST:PORT`` and ``k8s://URL``.
    """
    if _PLAIN_MASTERS.match(master) or _URL_MASTERS.match(master):
        return master
    raise ConfigError(
        f"Spark master {master!r} is not a master URL; expected 'local[N]', "
        "'local[*]', 'yarn', 'spark://HOST:PORT' or 'k8s://URL', such as "
        "'local[2]' for 2 cores on this machine.",
        field="spark_master",
    )


def check_spark_installed() -> None:
    """Raise ConfigError unless PySpark is installed and Java can be found.

    Java is looked up as Spark's launcher does: ``$JAVA_HOME/bin/java`` when
    ``JAVA_HOME`` is set, else ``java`` on ``PATH``. Its version is not checked.
    """
    _import_spark_session()
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        if not (Path(java_home) / "bin" / "java").is_file():
            raise ConfigError(
                f"JAVA_HOME {java_home!r} contains no bin/java, and Spark needs Java "
                "17 or 21. Point JAVA_HOME at a Java installation or unset it to use "
                "the java on PATH.",
                field="backend",
            )
        return
    if shutil.which("java") is None:
        raise ConfigError(
            "Java was not found on PATH, and Spark needs Java 17 or 21. Install it "
            "(on Debian or Ubuntu: `apt-get install openjdk-17-jre-headless`) or set "
            "JAVA_HOME.",
            field="backend",
        )


def local_session(master: str = "local[*]", **conf: str) -> SparkSession:
    """Return a Spark session for ``master`` whose session time zone is UTC.

    An active session is reused, as ``SparkSession.builder.getOrCreate`` does, and
    ``conf`` is applied to it. Settings that ``conf`` leaves out come from Spark's
    own configuration, such as ``spark-defaults.conf`` in ``$SPARK_CONF_DIR``.

    Parameters
    ----------
    master
        The Spark master URL.
    **conf
        Further Spark settings, such as ``{"spark.sql.shuffle.partitions": "4"}``.

    Raises
    ------
    ConfigError
        If PySpark is not installed.
    StoreError
        If Spark fails to start, for example because Java is missing or too old.
    """
    session_class = _import_spark_session()
    builder = session_class.builder.master(master)
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    for key, value in session_settings(master, conf).items():
        builder = builder.config(key, value)
    return _start(builder, master)


def session_settings(master: str, conf: dict[str, str]) -> dict[str, str]:
    """Return ``conf`` with the loopback address as driver host for a local master.

    A ``local[...]`` session then serves its driver on 127.0.0.1 only, and no other
    machine can reach it. ``conf`` overrides these defaults. For a local master
    this also sets the environment variable ``SPARK_LOCAL_IP`` to 127.0.0.1 when
    it is unset, which Spark reads when its JVM starts.
    """
    if not master.startswith("local"):
        return dict(conf)
    os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
    defaults = {"spark.driver.host": LOOPBACK, "spark.driver.bindAddress": LOOPBACK}
    return {**defaults, **conf}


@contextlib.contextmanager
def spark_session(master: str = "local[*]", **conf: str) -> Iterator[SparkSession]:
    """Start or reuse Spark on ``master`` and yield a new session of it.

    The new session shares the Spark application but has its own temporary views
    and current database, so :func:`copy_tables` and ``database`` leave other
    sessions unchanged. On exit the Spark application is stopped if this call
    started it. An application that was already running is left running.

    Parameters
    ----------
    master
        The Spark master URL, checked with :func:`check_master`.
    **conf
        Further Spark settings, passed to :func:`local_session`.

    Raises
    ------
    ConfigError
        If the master is not a master URL, or PySpark or Java is missing.
    StoreError
        If Spark fails to start.
    """
    check_master(master)
    check_spark_installed()
    session_class = _import_spark_session()
    running = session_class.getActiveSession() is not None
    root = local_session(master, **conf)
    session = root.newSession()
    session.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        yield session
    finally:
        if not running:
            root.stop()
            logger.debug("stopped Spark on %s", master)


def stored_tables(store: Store) -> list[str]:
    """Return the store tables that exist in the Spark store's current database.

    Store tables left out are the empty temporary views that
    :func:`open_spark_store` registers in their place.

    Raises
    ------
    StoreError
        If ``store`` is not a Spark store.
    """
    session = _spark_session(store, "list the Spark tables of")
    database = session.catalog.currentDatabase()
    found = {
        table.name
        for table in session.catalog.listTables(database)
        if not table.isTemporary
    }
    return [name for name in TABLES if name in found]


def open_spark_store(
    session: SparkSession | None = None,
    *,
    master: str = "local[*]",
    database: str | None = None,
) -> Store:
    """Open the store on Spark for reading.

    Store tables that Spark lacks are registered as empty temporary views with the
    store schema, so every metric can be computed, as on a new DuckDB store.

    Parameters
    ----------
    session
        The Spark session to use. ``None`` starts or reuses one with
        :func:`local_session` on ``master``.
    master
        The Spark master when ``session`` is ``None``.
    database
        The Spark database that contains the store tables, made the session's
        current database. ``None`` keeps the current one, where the temporary views of
        :func:`copy_tables` are found.

    Returns
    -------
    Store
        A store whose ``backend`` is the Ibis PySpark backend. Its ``insert`` and
        ``transaction`` raise :class:`StoreError`, and its ``close`` stops the
        Spark session.

    Raises
    ------
    ConfigError
        If PySpark is not installed.
    StoreError
        If ``database`` does not exist or the store was written by a newer
        healthscore.
    """
    if session is None:
        session = local_session(master)
    backend = ibis.pyspark.connect(session)
    if database is not None:
        _use_database(session, database)

    _register_missing_tables(backend, session)
    _check_schema_version(backend)
    logger.debug("opened Spark store in database %s", backend.current_database)
    return Store.from_backend(backend)


def open_spark_url(url: str) -> Store:
    """Open the store at a ``spark://MASTER[/DATABASE]`` URL.

    See :func:`parse_spark_url` for the URL forms and :func:`open_spark_store` for
    the store.
    """
    location = parse_spark_url(url)
    session = local_session(location.master)
    return open_spark_store(session, database=location.database)


def copy_tables(
    source: Store,
    target: Store,
    names: Iterable[str] | None = None,
    *,
    database: str | None = None,
) -> dict[str, int]:
    """Copy store tables from ``source`` to the Spark store ``target``.

    Each table is read into Arrow on the driver and written with the store schema,
    so times stay UTC instants. A copy replaces the table of that name.

    NOTE: the rows of each table pass through the driver's memory. For data that
    does not fit there, write Parquet files and register them in Spark instead.

    Parameters
    ----------
    source
        The store to read, usually a DuckDB store.
    target
        A store from :func:`open_spark_store`.
    names
        The tables to copy. ``None`` copies every store table.
    database
        ``None`` writes session-scoped temporary views. A database name writes
        managed tables into that Spark database, which must exist, and drops any
        temporary view of the same name that would hide them.

    Returns
    -------
    dict[str, int]
        Rows copied per table.

    Raises
    ------
    ConfigError
        If a name is not a store table.
    StoreError
        If ``target`` is not a Spark store or ``database`` does not exist.
    """
    session = _spark_session(target, "copy tables to")
    selected = list(TABLES) if names is None else list(names)
    _check_table_names(selected)
    if database is not None:
        _check_database(session, database)

    copied = {}
    for name in selected:
        data = _read_arrow(source, name)
        frame = session.createDataFrame(data, schema=_spark_schema(name))
        if database is None:
            frame.createOrReplaceTempView(name)
        else:
            session.catalog.dropTempView(name)
            frame.write.mode("overwrite").saveAsTable(f"{database}.{name}")
        copied[name] = data.num_rows
    logger.info("copied %d store tables to Spark: %s", len(copied), copied)
    return copied


def _import_spark_session() -> type[SparkSession]:
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError(
            "the Spark backend needs PySpark, which is not installed. Install it "
            "with `pip install 'healthscore[spark]'` (PySpark 4.0 and Java 17).",
            field="backend",
        ) from exc
    return SparkSession


def _start(builder: SparkSession.Builder, master: str) -> SparkSession:
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        session = builder.getOrCreate()
    except (PySparkException, Py4JError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise StoreError(
            f"Spark failed to start on master {master!r}: {reason}. Check that "
            "`java -version` shows Java 17 or 21 and that the master is reachable; "
            "Spark's own log above shows the cause."
        ) from exc
    logger.info("Spark %s runs on %s", session.version, master)
    return session


def _spark_session(store: Store, action: str) -> SparkSession:
    session = getattr(store.backend, "_session", None)
    if store.backend.name != "pyspark" or session is None:
        raise StoreError(
            f"cannot {action} a {store.backend.name!r} store; expected a Spark "
            "store. Open it with open_spark_store()."
        )
    return session


def _check_table_names(names: list[str]) -> None:
    unknown = [name for name in names if name not in TABLES]
    if unknown:
        raise ConfigError(
            f"unknown store tables {unknown!r}; expected names from {sorted(TABLES)}.",
            field="names",
        )


def _check_database(session: SparkSession, database: str) -> None:
    if not session.catalog.databaseExists(database):
        raise StoreError(
            f"Spark database {database!r} not found. Create it with "
            f"`CREATE DATABASE {database}` or pass the name of an existing database. "
            "Spark reads its catalog settings, such as "
            "spark.sql.catalogImplementation=hive, from spark-defaults.conf in "
            "$SPARK_CONF_DIR."
        )


def _use_database(session: SparkSession, database: str) -> None:
    _check_database(session, database)
    session.catalog.setCurrentDatabase(database)


def _spark_schema(name: str) -> StructType:
    from ibis.backends.pyspark.datatypes import PySparkSchema

    schema: StructType = PySparkSchema.from_ibis(TABLES[name])
    return schema


def _read_arrow(source: Store, name: str) -> pa.Table:
    """Read a store table as Arrow, cast to the store schema."""
    target = TABLES[name].to_pyarrow()
    data = source.table(name).to_pyarrow()
    columns = [data.column(field.name).cast(field.type) for field in target]
    return pa.Table.from_arrays(columns, schema=target)


def _register_missing_tables(backend: PySparkBackend, session: SparkSession) -> None:
    existing = set(backend.list_tables())
    for name in TABLES:
        if name not in existing:
            empty = TABLES[name].to_pyarrow().empty_table()
            frame = session.createDataFrame(empty, schema=_spark_schema(name))
            frame.createOrReplaceTempView(name)
            logger.debug("registered empty Spark view %s", name)


def _check_schema_version(backend: PySparkBackend) -> None:
    found = backend.table("schema_info").schema_version.max().to_pyarrow().as_py()
    if found is not None and found > SCHEMA_VERSION:
        raise StoreError(
            f"Spark store has schema version {found}, newer than {SCHEMA_VERSION} of "
            "this healthscore. Upgrade healthscore."
        )
