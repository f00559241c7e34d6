"""Read a database's tables into DataFrames, streamed in chunks.

Rows are fetched with ``yield_per`` (a server-side cursor on PostgreSQL and MariaDB), so a large
table never sits in the driver's buffers twice. The source is only ever read: on PostgreSQL the
transaction is declared ``READ ONLY``, and it is rolled back at the end everywhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import pandas as pd
import sqlalchemy as sa

from hma_db.engines import Source, connect, engine_for
from hma_db.errors import ReflectionError
from hma_db.metadata import Metadata

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 50_000


def _selectable(metadata: Metadata, table_name: str) -> sa.Table | sa.TableClause:
    """The reflected Table when there is one (its types convert values, e.g. SQLite dates), else a
    lightweight table built from the metadata's column names."""
    if metadata.sql_metadata is not None and table_name in metadata.sql_metadata.tables:
        return metadata.sql_metadata.tables[table_name]
    columns = [sa.column(name) for name in metadata.tables[table_name]["columns"]]
    return sa.table(table_name, *columns)


def begin_read_only(conn: sa.Connection) -> None:
    """Start a transaction that the server itself refuses to write in, where it can."""
    conn.begin()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif conn.dialect.name in ("mysql", "mariadb"):
        conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")


def read_table_chunks(conn: sa.Connection, metadata: Metadata, table_name: str, *,
                      chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[pd.DataFrame]:
    """Yield the rows of one table as DataFrames of at most ``chunk_size`` rows, in column order
    of the metadata. Yields one empty frame (with the columns) for an empty table."""
    table = _selectable(metadata, table_name)
    names = list(metadata.tables[table_name]["columns"])
    query = sa.select(*[table.c[name] for name in names])
    pk = [table.c[c] for c in metadata.primary_key(table_name)]
    if pk:  # a stable row order makes reads, and so fits with a seed, reproducible
        query = query.order_by(*pk)
    if metadata.schema:
        conn = conn.execution_options(schema_translate_map={None: metadata.schema})
    result = conn.execution_options(yield_per=chunk_size).execute(query)
    empty = True
    for rows in result.partitions():
        empty = False
        yield pd.DataFrame.from_records(rows, columns=names)
    if empty:
        yield pd.DataFrame({name: pd.Series(dtype="object") for name in names})


def read_tables(source: Source, metadata: Metadata, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                on_chunk: Callable[[str, int], None] | None = None) -> dict[str, pd.DataFrame]:
    """Read every table of ``metadata`` from ``source`` into a DataFrame.

    Args:
        source: URL, SQLAlchemy URL or Engine of the source database.
        metadata: the tables and columns to read (usually from :func:`hma_db.reflect`).
        chunk_size: rows fetched per round trip.
        on_chunk: called with (table name, rows in the chunk) after each chunk, for progress bars.

    Example:
        >>> data = read_tables("sqlite:///examples/chinook.sqlite", reflect(...))
    """
    data: dict[str, pd.DataFrame] = {}
    with engine_for(source, error=ReflectionError) as engine, \
            connect(engine, error=ReflectionError) as conn:
        begin_read_only(conn)
        try:
            for table_name in metadata.topological_order():
                started = time.perf_counter()
                chunks = []
                for chunk in read_table_chunks(conn, metadata, table_name, chunk_size=chunk_size):
                    chunks.append(chunk)
                    if on_chunk is not None:
                        on_chunk(table_name, len(chunk))
                frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
                data[table_name] = frame
                logger.info("read %s: %d rows in %.2fs", table_name, len(frame),
                            time.perf_counter() - started)
        except sa.exc.DBAPIError as exc:
            raise ReflectionError(f"Reading table '{table_name}' failed: "
                                  f"{str(exc.orig).strip().splitlines()[0]}") from exc
        finally:
            conn.rollback()
    return {name: data[name] for name in metadata.tables}
