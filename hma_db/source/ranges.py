"""Reading large PostgreSQL tables in key ranges, by several readers at once, in one snapshot.

Why: a clone's read is one connection reading table after table; on a cluster, the workers
can each read a range of a large table's keys. The result must be the very frame
:func:`hma_db.source.read_tables` gives, so the fit (and so the output) does not depend on how
the read was spread:

- A read is ordered by the primary key (:func:`hma_db.source.read.table_query`), so only
  tables whose key starts with an integer column are split: into equal-width ranges of that
  column, each read ordered by the key, and the ranges put back in order give the same rows in
  the same order.
- Every range is read in the snapshot of the transaction that plans the read
  (``pg_export_snapshot`` there, ``SET TRANSACTION SNAPSHOT`` in each reader), so a source
  that changes meanwhile is read as of one moment, as the one reader does.
- The readers return their raw chunks; they are concatenated and their dtypes settled once,
  here, as for the chunks of one reader (:func:`hma_db.source.read.concat_chunks`).

Only PostgreSQL (the exported snapshot) and only tables without a ``where`` filter; everything
else is read here, in the same snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd
import sqlalchemy as sa

from hma_db.engines import Source, connect, engine_for
from hma_db.errors import ReflectionError
from hma_db.schema import Metadata
from hma_db.source.read import (
    DEFAULT_CHUNK_SIZE,
    collect,
    read_each,
    read_failure,
    read_table_chunks,
    table_selectable,
)

logger = logging.getLogger(__name__)

# A table is split when it has at least this many rows. One reader reads about 300,000 rows/s
# here (TPC-H SF0.05: orders, 75,000 rows, 0.25 s; lineitem, 300,000 rows, 1.0 s; 2026-12-06,
# 2 cores under load), so a smaller table takes under a second, less than its ranges' tasks and
# their chunks' way back cost: SF0.05 read whole by one reader in 1.8-2.0 s, with orders and
# lineitem split over 2 local workers in 4.2-5.3 s (same frames; two runs).
MIN_SPLIT_ROWS = 200_000

KeyRange = tuple[str, int | None, int | None]  # (table, low, high): low <= key < high
Reader = Callable[[list[KeyRange], str], list[list[pd.DataFrame]]]


def integer_key(metadata: Metadata, table: str) -> str | None:
    """The first column of the table's primary key when it is an integer, else None: the read
    is ordered by the whole key, so ranges of its first column, put back in order, keep that
    order (TPC-H's lineitem: ranges of l_orderkey, each ordered by l_orderkey, l_linenumber)."""
    pk = metadata.primary_key(table)
    if not pk:
        return None
    column = table_selectable(metadata, table).c[pk[0]]
    return pk[0] if isinstance(column.type, sa.Integer) else None


def key_ranges(conn: sa.Connection, metadata: Metadata, table: str, parts: int
               ) -> list[KeyRange] | None:
    """``parts`` equal-width ranges of the first column of the table's key when it is an
    integer (the first and last range open), or None when it is not or there are no rows."""
    key = integer_key(metadata, table)
    if key is None or parts < 2:
        return None
    column = table_selectable(metadata, table).c[key]
    schema = metadata.source_schema(table)
    run = conn.execution_options(schema_translate_map={None: schema}) if schema else conn
    low, high = run.execute(sa.select(sa.func.min(column), sa.func.max(column))).one()
    if low is None or high <= low:
        return None
    step = (high - low + 1) / parts
    bounds = [None, *[int(low + step * i) for i in range(1, parts)], None]
    return [(table, bounds[i], bounds[i + 1]) for i in range(parts)]


def read_range(url: str, metadata: Metadata, ranges: list[KeyRange], snapshot: str,
               chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[list[pd.DataFrame]]:
    """A reader's part: the raw chunks of each key range, read in the exported ``snapshot``.
    ``url`` is the source's, password included."""
    with engine_for(url, error=ReflectionError) as engine, \
            connect(engine, error=ReflectionError) as conn:
        conn.begin()
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute(sa.text("SET TRANSACTION SNAPSHOT '" + snapshot.replace("'", "") + "'"))
        try:
            return [list(read_table_chunks(conn, metadata, table, chunk_size=chunk_size,
                                           where=_between(metadata, table, low, high)))
                    for table, low, high in ranges]
        except sa.exc.DBAPIError as exc:
            raise read_failure(ranges[0][0], exc) from exc
        finally:
            conn.rollback()


def _between(metadata: Metadata, table: str, low: int | None, high: int | None):
    key = integer_key(metadata, table)

    def where(selectable):
        column = selectable.c[key]
        clauses = ([column >= low] if low is not None else []) + \
            ([column < high] if high is not None else [])
        return sa.and_(*clauses) if clauses else sa.true()

    return where


def read_tables_in_ranges(source: Source, metadata: Metadata, read: Reader, parts: int, *,
                          min_rows: int = MIN_SPLIT_ROWS,
                          on_chunk: Callable[[str, int], None] | None = None
                          ) -> dict[str, pd.DataFrame] | None:
    """:func:`hma_db.source.read_tables`, with each table of at least ``min_rows`` rows (as
    reflected) whose key starts with an integer column read in ``parts`` key ranges by
    ``read(ranges, snapshot)`` (which returns each range's raw chunks, in order). None when
    nothing would be split (not PostgreSQL, a ``where`` filter, no large table): read as usual.
    """
    big = [t for t in metadata.topological_order()
           if (metadata.row_counts or {}).get(t, 0) >= min_rows and integer_key(metadata, t)]
    if not big or any(metadata.tables[t].get("where") for t in metadata.tables):
        return None
    with engine_for(source, error=ReflectionError) as engine:
        if engine.dialect.name != "postgresql":
            return None
        with connect(engine, error=ReflectionError) as conn:
            conn.begin()
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()

            def read_one(table: str) -> pd.DataFrame:
                ranges = key_ranges(conn, metadata, table, parts) if table in big else None
                if ranges is None:
                    return collect(read_table_chunks(conn, metadata, table), table, on_chunk)
                logger.info("read %s in %d key ranges", table, len(ranges))
                return collect((c for part in read(ranges, snapshot) for c in part), table,
                               on_chunk)

            return read_each(conn, metadata, read_one)
