"""Read a database's tables into DataFrames, streamed in chunks.

On PostgreSQL through psycopg 3, tables are read with ``COPY (SELECT ...) TO STDOUT`` parsed by
pyarrow (:mod:`hma_db.source.read_copy`), which gives the same values and dtypes as the general path and
falls back to it where it cannot (the reason logged at DEBUG). Elsewhere rows are fetched with
``yield_per`` (a server-side cursor on MariaDB and on PostgreSQL through other drivers), so a
large table never sits in the driver's buffers twice. The source is only ever read: on
PostgreSQL and MariaDB the transaction is declared ``READ ONLY`` (:func:`begin_read_only`, on
PostgreSQL also ``REPEATABLE READ``, so that the several passes of a subset read see one
snapshot), and it is rolled back at the end everywhere.

Chunk dtypes come from the SQL types (a domain's from its base type), not from the values of one
chunk: an integer column is ``int64`` when it is ``NOT NULL`` and pandas' nullable ``Int64``
otherwise, a boolean column ``bool`` or ``boolean``, a float column ``float64``, so that a chunk
with a NULL in it has the same dtypes as one without. :func:`read_tables` concatenates the chunks
and then settles every nullable column to the dtype a single fetch of the whole table gives
(``int64`` without NULLs, ``float64`` with them), which is what models are fitted on.

Measured (TPC-H SF1 on PostgreSQL 16, 2 shared cores, ``tests/benchmarks/bench_scale.py --only
read``, eight tables, 8.66 million rows, in one run): through COPY 12.2 s, 0.65 of the throughput
of a raw ``COPY ... TO STDOUT`` of the same tables (7.9 s, bytes only, no parsing; ``lineitem``
0.67, ``orders`` 0.66); through SQLAlchemy 47.4 s, 0.17 of it (0.13 in an earlier, busier run).
What is left is mostly making the Python objects the model gets (``Decimal``, ``date``, ``str``)
and libpq's one call per row.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from hma_db.engines import Source, connect, engine_for, first_line
from hma_db.errors import ReflectionError
from hma_db.schema import Metadata, base_type, is_geometry, is_native_geometry
from hma_db.source.filters import close_filtered, where_clause
from hma_db.source.read_copy import copy_reader, is_psycopg

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 50_000


def table_selectable(metadata: Metadata, table_name: str) -> sa.Table | sa.TableClause:
    """The reflected Table when there is one (its types convert values, e.g. SQLite dates), else a
    lightweight table built from the metadata's column names."""
    if metadata.sql_metadata is not None and table_name in metadata.sql_metadata.tables:
        return metadata.sql_metadata.tables[table_name]
    columns = [sa.column(name) for name in metadata.tables[table_name]["columns"]]
    return sa.table(table_name, *columns)


def begin_read_only(conn: sa.Connection) -> None:
    """Start a transaction that the server itself refuses to write in, where it can.

    The one read-only guard of hma_db: every read of a source (reflect, read, subset, report) goes
    through it, on engines hma_db created and on engines the caller gave alike. It holds for this
    transaction only, so a caller's pooled connection still writes afterwards.

    On PostgreSQL it is also ``REPEATABLE READ``: every query of the transaction sees the same
    snapshot, so a table read twice (keys first, then rows) gives the same rows in the same order.
    MariaDB's InnoDB default is already repeatable read; SQLite reads one snapshot per transaction.
    """
    conn.begin()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    elif conn.dialect.name in ("mysql", "mariadb"):
        try:  # the transaction has not started on the server yet: the next statement starts it
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        except sa.exc.DBAPIError:
            logger.info("this server cannot make the transaction read-only; reading anyway")


def chunk_dtypes(metadata: Metadata, table_name: str, names: list[str]) -> dict[str, str]:
    """The dtype of each column of a chunk, from the SQL type and nullability (when reflected).

    Only types whose pandas dtype would otherwise depend on the values are listed: integers
    (``int64`` / nullable ``Int64``), booleans (``bool`` / ``boolean``) and floats.
    """
    table = table_selectable(metadata, table_name)
    if not isinstance(table, sa.Table):
        return {}
    dtypes = {}
    for name in names:
        column = table.c[name]
        try:
            nullable = bool(column.nullable) and not column.primary_key
            sql_type = base_type(column.type)  # a domain's values are those of its base type
            if isinstance(sql_type, sa.Boolean):
                dtypes[name] = "boolean" if nullable else "bool"
            elif isinstance(sql_type, sa.BigInteger) and getattr(sql_type, "unsigned", False):
                if not nullable:  # BIGINT UNSIGNED passes int64's maximum: int64 would wrap
                    dtypes[name] = "uint64"
            elif isinstance(sql_type, sa.Integer):
                dtypes[name] = "Int64" if nullable else "int64"
            elif isinstance(sql_type, sa.Float) and not sql_type.asdecimal:
                dtypes[name] = "float64"
        except (NotImplementedError, AttributeError):  # a type without a Python equivalent
            continue
    return dtypes


def _typed(frame: pd.DataFrame, dtypes: dict[str, str], table_name: str) -> pd.DataFrame:
    """``frame`` with the planned dtypes; a column whose values do not fit keeps its own."""
    for name, dtype in dtypes.items():
        try:
            frame[name] = frame[name].astype(dtype)
        except (TypeError, ValueError):
            logger.debug("table %s column %s: values do not fit %s; kept as %s",
                         table_name, name, dtype, frame[name].dtype)
    return frame


def settle_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Nullable integer and boolean columns in the dtype one fetch of the whole table gives:
    ``int64`` / ``bool`` without missing values, ``float64`` / ``object`` with them."""
    for name in frame.columns:
        dtype = str(frame[name].dtype)
        if dtype not in ("Int64", "boolean"):
            continue
        column = frame[name]
        if not column.isna().any():
            frame[name] = column.astype("int64" if dtype == "Int64" else "bool")
        elif dtype == "Int64":
            frame[name] = column.astype("float64")
        else:
            frame[name] = column.astype(object).where(column.notna(), None)
    return frame


def readable(column: sa.ColumnElement) -> sa.ColumnElement:
    """A column as it is read: PostgreSQL's ``money`` as ``numeric``, whose text ('$1.25',
    '1.234,50 €') would otherwise depend on the server's ``lc_monetary``; a MariaDB ``SET`` as
    its text ('Trailers,Commentaries', members in declared order), not a Python set that
    nothing downstream can hash or compare; a spatial column as text, not the server's binary."""
    type_ = base_type(getattr(column, "type", None))
    if isinstance(type_, postgresql.MONEY):
        return sa.cast(column, sa.Numeric(19, 2)).label(column.name)
    if isinstance(type_, mysql.SET):
        return sa.cast(column, sa.String()).label(column.name)
    if is_geometry(type_):  # as text: 'POINT(1 2)' (WKT), or '(1,2)' for PostgreSQL's point
        if is_native_geometry(type_):
            return sa.cast(column, sa.Text()).label(column.name)
        return sa.func.ST_AsText(column, type_=sa.Text()).label(column.name)
    return column


def table_query(metadata: Metadata, table_name: str, columns: list[str] | None = None,
                where=None) -> sa.Select:
    """SELECT ``columns`` (default all) of a table, ordered by its primary key when it has one
    (a stable order makes reads, and so fits with a seed, reproducible)."""
    table = table_selectable(metadata, table_name)
    names = list(columns or metadata.tables[table_name]["columns"])
    query = sa.select(*[readable(table.c[name]) for name in names])
    if where is not None:
        query = query.where(where(table))
    pk = [table.c[c] for c in metadata.primary_key(table_name)]
    return query.order_by(*pk) if pk else query


def read_table_chunks(conn: sa.Connection, metadata: Metadata, table_name: str, *,
                      chunk_size: int = DEFAULT_CHUNK_SIZE, columns: list[str] | None = None,
                      where=None, use_copy: bool = True) -> Iterator[pd.DataFrame]:
    """Yield the rows of one table as DataFrames of at most ``chunk_size`` rows.

    Args:
        conn: a connection (in a read-only transaction, see :func:`begin_read_only`).
        metadata: the tables and columns.
        table_name: the table to read.
        chunk_size: rows per chunk (and per server round trip).
        columns: the columns to read (default every column, in metadata order).
        where: ``where(table) -> clause`` to filter rows on the server.
        use_copy: on PostgreSQL through psycopg 3, read through ``COPY`` (see
            :mod:`hma_db.source.read_copy`); False forces the SQLAlchemy path.

    Every chunk has the same dtypes (see :func:`chunk_dtypes`). Yields one empty frame (with the
    columns) for an empty table.
    """
    names = list(columns or metadata.tables[table_name]["columns"])
    query = table_query(metadata, table_name, names, where)
    dtypes = chunk_dtypes(metadata, table_name, names)
    reader = None
    if use_copy and is_psycopg(conn):
        reader = copy_reader(conn, query, names, table_name,
                             metadata.source_schema(table_name), dtypes)
    if reader is not None:
        frames = reader(chunk_size)
    else:
        frames = _fetched_frames(conn, metadata.source_schema(table_name), query, names, chunk_size)
    empty = True
    for frame in frames:
        empty = False
        yield _typed(frame, dtypes, table_name)
    if empty:
        frame = pd.DataFrame({name: pd.Series(dtype="object") for name in names})
        yield _typed(frame, dtypes, table_name)


def _fetched_frames(conn: sa.Connection, schema: str | None, query: sa.Select, names: list[str],
                    chunk_size: int) -> Iterator[pd.DataFrame]:
    """The rows of ``query`` (a table of ``schema``) fetched through SQLAlchemy, ``chunk_size``
    rows per frame."""
    if schema:
        conn = conn.execution_options(schema_translate_map={None: schema})
    result = conn.execution_options(yield_per=chunk_size).execute(query)
    for rows in result.partitions():
        yield pd.DataFrame.from_records(rows, columns=names)


def concat_chunks(chunks: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame from a table's chunks, with settled dtypes (see :func:`settle_dtypes`)."""
    chunks = [c for c in chunks if len(c)] or chunks[:1]
    if len(chunks) > 1:
        _align_all_null_columns(chunks)
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    return settle_dtypes(frame)


def _align_all_null_columns(chunks: list[pd.DataFrame]) -> None:
    """Give a column that is all NULL in some chunks the dtype its other chunks concatenate to.

    An all-NULL chunk says nothing about the column's type; pandas 2 leaves it out when it
    concatenates (with a FutureWarning), pandas 3 will not. Done here, the result is the same
    for both. One vectorized pass per column and chunk, not per row.
    """
    for name in chunks[0].columns:
        present = [c[name].notna() for c in chunks]
        if all(p.all() for p in present) or not any(p.any() for p in present):
            continue
        # One non-null value of each informative chunk: they concatenate to the common dtype.
        dtype = pd.concat([c[name][p].iloc[:1] for c, p in zip(chunks, present, strict=True)
                           if p.any()]).dtype
        for chunk, p in zip(chunks, present, strict=True):
            if not p.any() and chunk[name].dtype != dtype:
                with contextlib.suppress(TypeError, ValueError):  # NULLs cannot be bool
                    chunk[name] = chunk[name].astype(dtype)


def read_failure(table_name: str, exc: sa.exc.DBAPIError) -> ReflectionError:
    """The error for a failed read, naming the table and the server's first message line."""
    return ReflectionError(f"Reading table '{table_name}' failed: {first_line(exc)}")


def read_tables(source: Source, metadata: Metadata, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                on_chunk: Callable[[str, int], None] | None = None) -> dict[str, pd.DataFrame]:
    """Read every table of ``metadata`` from ``source`` into a DataFrame.

    Args:
        source: URL, SQLAlchemy URL or Engine of the source database.
        metadata: the tables and columns to read (usually from :func:`hma_db.source.reflect`).
        chunk_size: rows fetched per round trip.
        on_chunk: called with (table name, rows in the chunk) after each chunk, for progress bars.

    A table's ``where`` (its metadata) filters its rows on the server, and the rows of other
    tables that referenced the rows left out go too (:mod:`hma_db.source.filters`).

    Example:
        >>> data = read_tables("sqlite:///examples/chinook.sqlite", reflect(...))
    """
    filters = {t: where_clause(metadata, t) for t in metadata.tables}
    data: dict[str, pd.DataFrame] = {}
    with engine_for(source, error=ReflectionError) as engine, \
            connect(engine, error=ReflectionError) as conn:
        begin_read_only(conn)
        data = read_each(conn, metadata, lambda table: collect(
            read_table_chunks(conn, metadata, table, chunk_size=chunk_size, where=filters[table]),
            table, on_chunk))
    if any(filters.values()):
        data = close_filtered(metadata, data)
    return {name: data[name] for name in metadata.tables}


def read_each(conn: sa.Connection, metadata: Metadata,
              read_one: Callable[[str], pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every table of ``metadata`` read by ``read_one(table)`` in foreign-key order, each timed
    and logged, in the read transaction of ``conn`` (rolled back at the end); a database error
    names its table. Returns the tables in the metadata's order."""
    data: dict[str, pd.DataFrame] = {}
    table = None
    try:
        for table in metadata.topological_order():
            started = time.perf_counter()
            data[table] = read_one(table)
            log_read(table, len(data[table]), metadata, started)
    except sa.exc.DBAPIError as exc:
        raise read_failure(table, exc) from exc
    finally:
        conn.rollback()
    return {name: data[name] for name in metadata.tables}


def collect(chunks: Iterable[pd.DataFrame], table: str,
            on_chunk: Callable[[str, int], None] | None = None) -> pd.DataFrame:
    """One table's frame from its chunks, ``on_chunk(table, rows)`` called after each."""
    frames = []
    for chunk in chunks:
        frames.append(chunk)
        if on_chunk is not None:
            on_chunk(table, len(chunk))
    return concat_chunks(frames)


def log_read(table_name: str, rows: int, metadata: Metadata, started: float) -> None:
    """One INFO line per table: rows read (of the source's rows), seconds and rows/s."""
    seconds = time.perf_counter() - started
    total = metadata.row_counts.get(table_name)
    of = f" of {total}" if total is not None and total != rows else ""
    logger.info("read %s: %d%s rows in %.2fs (%.0f rows/s)", table_name, rows, of, seconds,
                rows / seconds if seconds > 0 else 0.0)
