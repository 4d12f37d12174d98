"""Load CSV, JSON Lines, JSON and Parquet files into the store's source tables.

:func:`ingest_file` reads a file, maps its columns with a :class:`ColumnMapping`
(see :mod:`healthscore.ingest.mapping` for the YAML keys), parses and validates every
row, puts rejected rows in the quarantine table with their reasons, and writes the rest
in one transaction.
"""

from healthscore.ingest.loader import IngestResult, ingest_file
from healthscore.ingest.mapping import (
    ENTITIES,
    ENTITY_TARGETS,
    ColumnMapping,
    ColumnSpec,
    CsvOptions,
    load_mapping,
    parse_mapping,
)

__all__ = [
    "ENTITIES",
    "ENTITY_TARGETS",
    "ColumnMapping",
    "ColumnSpec",
    "CsvOptions",
    "IngestResult",
    "ingest_file",
    "load_mapping",
    "parse_mapping",
]
