"""PostgreSQL reads through ``COPY (SELECT ...) TO STDOUT (FORMAT csv)``, parsed in bulk by pyarrow.

:func:`hma_db.source.read.read_table_chunks` streams rows through SQLAlchemy, which builds one Python
tuple per row and one object per value before pandas sees them; on TPC-H SF1 that reached 0.13
of the throughput of a raw ``COPY`` (see :mod:`hma_db.source.read`). Here the same ``SELECT`` (same
columns, filter and primary-key order) is wrapped in a ``COPY`` on the driver connection of the
SQLAlchemy connection, inside the caller's transaction (so ``READ ONLY``, ``REPEATABLE READ`` and
the snapshot are the same), and each chunk of rows is parsed by ``pyarrow.csv`` in C++.

The values and dtypes are those of the SQLAlchemy path: the CSV text of a value is the text the
server would send psycopg (same output function), and each column is turned into what psycopg's
text loader and SQLAlchemy's result processor give, followed by pandas' inference on those
objects. Common types are converted vectorized (integers, floats, booleans, text, dates,
timestamps with and without time zone; ``numeric`` through ``Decimal`` as psycopg does); the
objects of text, numeric and date columns are made once per distinct value when values repeat
(they are immutable, so sharing them changes only time and memory). Every other type (uuid,
json, interval, time, arrays, bytea, enums, inet...) goes through psycopg's own loader and
SQLAlchemy's own processor per value, then pandas' inference, so it is exact by construction; a
vectorized conversion that fails on a value (``infinity``, a timestamp beyond pandas'
nanosecond range, an offset with seconds) falls back to that path for the column of that chunk.
One deliberate difference: a nullable integer column holding values beyond 2**53 is exact here,
where the SQLAlchemy path rounds them through float64 in chunks that also hold a NULL.

The SQLAlchemy path is kept (see :func:`copy_reader`) when the driver is not psycopg 3, the client
encoding is not UTF-8, or the query cannot be compiled for ``COPY``; the reason is logged at DEBUG.

Rows arrive one per ``CopyData`` message (PostgreSQL sends one message per row), so a chunk is cut
after exactly ``chunk_size`` messages and only one chunk of raw text is held at a time.
"""

from __future__ import annotations

import logging
import select
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import sqlalchemy as sa

from hma_db.errors import ReflectionError

logger = logging.getLogger(__name__)

# PostgreSQL type oids with a vectorized conversion, and psycopg's loader for each (another
# loader, registered on the connection, means other values: then psycopg's loader is used).
_FAST = {20: ("int", "IntLoader"), 21: ("int", "IntLoader"), 23: ("int", "IntLoader"),
         26: ("int", "IntLoader"), 700: ("float", "FloatLoader"), 701: ("float", "FloatLoader"),
         16: ("bool", "BoolLoader"), 1700: ("numeric", "NumericLoader"),
         1082: ("date", "DateLoader"), 1114: ("timestamp", "TimestampLoader"),
         1184: ("timestamptz", "TimestamptzLoader")}
_NS_MIN, _NS_MAX = pd.Timestamp.min.value // 1000 + 1, pd.Timestamp.max.value // 1000


@dataclass
class _Column:
    """How one output column is parsed (``csv_type``) and turned into a pandas column."""

    name: str
    kind: str  # int, float, bool, numeric, text, date, timestamp, timestamptz or generic
    csv_type: pa.DataType
    load: Callable[[bytes], Any]  # psycopg's text loader for the column's type
    process: Callable[[Any], Any] | None  # SQLAlchemy's result processor, if any
    dtype: str | None = None  # the planned chunk dtype (hma_db.source.read.chunk_dtypes)
    repeats: bool | None = None  # whether values repeat enough to make objects once each


def is_psycopg(conn: sa.Connection) -> bool:
    """Whether ``conn`` is PostgreSQL through psycopg 3 (the only driver with this path)."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def copy_reader(conn: sa.Connection, query: sa.Select, names: list[str], table_name: str,
                schema: str | None, dtypes: dict[str, str]
                ) -> Callable[[int], Iterator[pd.DataFrame]] | None:
    """A function ``(chunk_size) -> chunks`` reading ``query`` through COPY, or None when this
    query must go through SQLAlchemy (the reason is logged at DEBUG).

    The chunks hold the values and dtypes that ``DataFrame.from_records`` gives on the rows
    SQLAlchemy returns, except that nullable integer and boolean columns planned in ``dtypes``
    (see :func:`hma_db.source.read.chunk_dtypes`) are built as ``Int64`` / ``boolean`` directly.
    """
    raw = conn.connection.driver_connection
    if raw.info.encoding != "utf-8":
        logger.debug("read %s: client encoding %s is not UTF-8; reading through SQLAlchemy",
                     table_name, raw.info.encoding)
        return None
    translate = {"schema_translate_map": {None: schema}, "render_schema_translate": True} \
        if schema else {}
    try:
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True},
                                 **translate)
        described = sa.select(*query.selected_columns).limit(0).compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True}, **translate)
    except sa.exc.SQLAlchemyError as exc:
        logger.debug("read %s: query not compiled for COPY (%s); reading through SQLAlchemy",
                     table_name, exc)
        return None
    if any(b.type.dialect_impl(conn.dialect).bind_processor(conn.dialect) is not None
           for b in compiled.binds.values()):
        logger.debug("read %s: the filter has parameters that SQLAlchemy converts; reading "
                     "through SQLAlchemy", table_name)
        return None
    if not conn.in_transaction():
        conn.begin()  # as SQLAlchemy's autobegin would, so the caller's rollback ends it
    columns = _plan(conn, raw, described, query, names, table_name)
    for column in columns:
        column.dtype = dtypes.get(column.name)
    logger.debug("read %s through COPY: %s", table_name,
                 ", ".join(f"{c.name}={c.kind}" for c in columns))
    sql, params = _statement(compiled)
    return lambda chunk_size: _chunks(raw, sql, params, columns, table_name, chunk_size)


def _statement(compiled: sa.engine.Compiled) -> tuple[str, dict | None]:
    """The SQL and parameters for psycopg. Without parameters psycopg sends the text as it is,
    so the ``%%`` that SQLAlchemy writes for a ``%`` (its ``pyformat`` escape) is undone here."""
    params = compiled.construct_params()
    if params:
        return compiled.string, params
    return compiled.string.replace("%%", "%"), None


def _plan(conn: sa.Connection, raw, described: sa.engine.Compiled, query: sa.Select,
          names: list[str], table_name: str) -> list[_Column]:
    """Each column's kind, from its type oid (what psycopg loads) and its SQLAlchemy type."""
    from psycopg import Error, pq
    from psycopg.adapt import Transformer

    try:
        with raw.cursor() as cursor:
            cursor.execute(*_statement(described))
            oids = [d.type_code for d in cursor.description]
    except Error as exc:  # name the table, as the SQLAlchemy path does
        raise ReflectionError(f"Reading table '{table_name}' failed: "
                              f"{str(exc).strip().splitlines()[0]}") from exc
    transformer = Transformer(raw)
    columns = []
    for name, oid, selected in zip(names, oids, query.selected_columns, strict=True):
        loader = transformer.get_loader(oid, pq.Format.TEXT)
        process = selected.type.dialect_impl(conn.dialect).result_processor(conn.dialect, oid)
        kind = _kind(oid, type(loader).__name__) if process is None else "generic"
        csv_type = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
                    "generic": pa.binary()}.get(kind, pa.string())
        columns.append(_Column(name, kind, csv_type, loader.load, process))
    return columns


def _kind(oid: int, loader_name: str) -> str:
    kind, loader = _FAST.get(oid, ("text", "TextLoader"))
    return kind if loader_name == loader else "generic"


def _chunks(raw, sql: str, params: dict | None, columns: list[_Column], table_name: str,
            chunk_size: int) -> Iterator[pd.DataFrame]:
    """Stream the COPY and yield one frame per ``chunk_size`` rows."""
    from psycopg import Error

    timezone = raw.info.timezone
    options = _csv_options(columns)
    try:
        with raw.cursor() as cursor:
            # A reader closed early (or interrupted) makes psycopg cancel the COPY, which fails
            # the transaction; going back to this savepoint keeps it (and its snapshot) usable,
            # as closing a SQLAlchemy result early does.
            cursor.execute("SAVEPOINT hma_db_copy")
            try:
                with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params):
                    for piece in _pieces(raw, chunk_size):
                        yield _frame(piece, columns, options, timezone)
            except GeneratorExit:
                cursor.execute("ROLLBACK TO SAVEPOINT hma_db_copy")
                raise
            cursor.execute("RELEASE SAVEPOINT hma_db_copy")
    except Error as exc:
        raise ReflectionError(f"Reading table '{table_name}' failed: "
                              f"{str(exc).strip().splitlines()[0]}") from exc


def _pieces(raw, chunk_size: int) -> Iterator[bytearray]:
    """The rows of the running COPY, ``chunk_size`` at a time, read from libpq directly.

    PostgreSQL sends one message per row. psycopg's ``Copy.read`` runs a generator round trip
    for each; this loop makes one libpq call per row instead (``lineitem``'s key columns: 4.6 s
    through ``Copy.read``, 2.9 s here, of which the server's part was 2.0 s). The bytes are
    appended to a bytearray: keeping the blocks (memoryviews over libpq buffers) to join them
    later cost as much as the reading itself.
    """
    from psycopg import OperationalError

    pgconn = raw.pgconn
    get, consume, wait = pgconn.get_copy_data, pgconn.consume_input, _waiter(pgconn.socket)
    data, rows = bytearray(), 0
    while True:
        nbytes, block = get(1)  # 1: never block while holding the interpreter
        if nbytes > 0:
            data += block
            rows += 1
            if rows == chunk_size:
                yield data
                data, rows = bytearray(), 0
        elif nbytes == 0:  # no whole row buffered yet: wait for the socket
            wait()
            consume()
        elif nbytes == -1:  # the end: the COPY's own result says whether it succeeded
            break
        else:
            raise OperationalError(pgconn.error_message.decode(errors="replace"))
    _end_copy(raw)
    if rows:
        yield data


def _waiter(socket: int) -> Callable[[], Any]:
    """Wait until ``socket`` can be read, the interpreter released meanwhile (``poll`` where
    there is one: ``select`` refuses descriptors above 1023)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(socket, select.POLLIN)
        return poller.poll
    return lambda: select.select([socket], [], [])


def _end_copy(raw) -> None:
    """Collect the results that follow the COPY's data, as psycopg does after its last row,
    and raise the server's error if it failed (e.g. a value its output function refused)."""
    from psycopg import errors, pq

    pgconn = raw.pgconn
    wait = _waiter(pgconn.socket)
    failed = None
    while True:
        while pgconn.is_busy():
            wait()
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            break
        if result.status != pq.ExecStatus.COMMAND_OK and failed is None:
            failed = result
    if failed is not None:
        raise errors.error_from_result(failed, encoding=raw.info.encoding)


def _csv_options(columns: list[_Column]) -> dict:
    names = [f"c{i}" for i in range(len(columns))]
    return {
        "read_options": pcsv.ReadOptions(column_names=names, block_size=1 << 22),
        # Text may hold newlines; PostgreSQL's CSV quotes them.
        "parse_options": pcsv.ParseOptions(newlines_in_values=True),
        # An unquoted empty field is NULL, a quoted one the empty string.
        "convert_options": pcsv.ConvertOptions(
            column_types={n: c.csv_type for n, c in zip(names, columns, strict=True)}, null_values=[""],
            strings_can_be_null=True, quoted_strings_can_be_null=False, true_values=["t"],
            false_values=["f"]),
    }


def _frame(data: bytearray, columns: list[_Column], options: dict, timezone) -> pd.DataFrame:
    table = pcsv.read_csv(pa.BufferReader(pa.py_buffer(data)), **options)
    return pd.DataFrame({c.name: _convert(table.column(i), c, timezone)
                         for i, c in enumerate(columns)}, copy=False)


# --------------------------------------------------------------------------- conversions
def _convert(values: pa.ChunkedArray, column: _Column, timezone):
    """One parsed column as the values and dtype ``DataFrame.from_records`` gives on the objects
    psycopg and SQLAlchemy return (all-NULL columns: object None, as there)."""
    n, nulls = len(values), values.null_count
    if nulls == n and n and column.kind != "generic":
        return np.full(n, None, dtype=object)
    kind = column.kind
    if column.dtype in ("Int64", "boolean") and kind in ("int", "bool"):
        mask = values.is_null().to_numpy(zero_copy_only=False)
        data = values.fill_null(0 if kind == "int" else False).to_numpy(zero_copy_only=False)
        array = pd.arrays.IntegerArray if kind == "int" else pd.arrays.BooleanArray
        return array(data, mask)
    if kind in ("int", "float"):
        if nulls and kind == "int":
            values = values.cast(pa.float64())  # as pandas makes ints with None
        return values.to_numpy(zero_copy_only=False)
    if kind == "bool":
        return values.to_numpy(zero_copy_only=False)  # object with None when NULLs
    if kind in _MAKERS:
        try:
            return _shared_objects(values, column, _MAKERS[kind])
        except pa.ArrowInvalid:  # e.g. a date 'infinity': psycopg's loader says what it makes
            return _generic(values, column)
    converted = _temporal(values, kind, timezone) if kind != "generic" else None
    return converted if converted is not None else _generic(values, column)


def _texts(values: pa.Array) -> np.ndarray:
    return values.to_numpy(zero_copy_only=False)


def _decimals(values: pa.Array) -> np.ndarray:
    return np.fromiter(map(Decimal, values.to_pylist()), dtype=object, count=len(values))


def _dates(values: pa.Array) -> np.ndarray:
    return values.cast(pa.date32()).to_pandas(date_as_object=True).to_numpy()


_MAKERS = {"text": _texts, "numeric": _decimals, "date": _dates}


def _shared_objects(values: pa.ChunkedArray, column: _Column,
                    make: Callable[[pa.Array], np.ndarray]) -> np.ndarray:
    """An object array of ``make`` on the non-NULL values, None for NULLs.

    When values repeat (at most half of them distinct: flags, categories, dates, amounts), the
    objects are made once per distinct value and shared: they are immutable (str, Decimal,
    date), so only the time and memory differ. A column seen to be mostly distinct is not
    dictionary-encoded again.
    """
    values = values.combine_chunks()
    if column.repeats is not False:
        encoded = values.dictionary_encode()
        distinct = len(encoded.dictionary)
        column.repeats = distinct <= 0.5 * len(values)
        if column.repeats:
            lookup = np.empty(distinct + 1, dtype=object)  # the last slot, None, for NULLs
            lookup[:distinct] = make(encoded.dictionary)
            return lookup[encoded.indices.fill_null(distinct).to_numpy(zero_copy_only=False)]
    if not values.null_count:
        return make(values)
    out = np.full(len(values), None, dtype=object)
    out[values.is_valid().to_numpy(zero_copy_only=False)] = make(values.drop_null())
    return out


def _temporal(values: pa.ChunkedArray, kind: str, timezone):
    """Timestamps as datetime64[ns] (with the session's time zone), or None when a value does not
    convert vectorized (left to psycopg's loader)."""
    try:
        parsed = values.cast(pa.timestamp("us", "UTC" if kind == "timestamptz" else None))
    except pa.ArrowInvalid:
        return None
    bounds = pc.min_max(parsed.cast(pa.int64()))
    if bounds["min"].as_py() < _NS_MIN or bounds["max"].as_py() > _NS_MAX:
        return None  # pandas keeps such datetimes as objects: psycopg's loader makes them
        return None
    naive = parsed.cast(pa.timestamp("us")).cast(pa.timestamp("ns")).to_numpy(
        zero_copy_only=False)
    if kind == "timestamp":
        return naive
    return pd.DatetimeIndex(naive).tz_localize("UTC").tz_convert(timezone).array


def _objects(values: pa.ChunkedArray, make: Callable[[Any], Any]) -> np.ndarray:
    """An object array of ``make(value)`` for each non-NULL value and None for NULLs."""
    present = values.drop_null().to_pylist()
    made = np.fromiter(map(make, present), dtype=object, count=len(present))
    if not values.null_count:
        return made
    out = np.full(len(values), None, dtype=object)
    out[values.is_valid().to_numpy(zero_copy_only=False)] = made
    return out


def _generic(values: pa.ChunkedArray, column: _Column):
    """psycopg's loader and SQLAlchemy's processor on each value, then pandas' inference."""
    if values.type != pa.binary():
        values = values.cast(pa.binary())
    load, process = column.load, column.process
    if process is None:
        made = _objects(values, load)
    elif column.kind == "generic" and _is_text_loader(load):
        # Text through a processor (enums): once per distinct value, the results are immutable.
        encoded = values.combine_chunks().dictionary_encode()
        distinct = [process(load(v)) for v in encoded.dictionary.to_pylist()]
        lookup = np.fromiter(distinct + [process(None)], dtype=object, count=len(distinct) + 1)
        made = lookup[encoded.indices.fill_null(len(distinct)).to_numpy()]
    else:
        made = np.fromiter((process(None if v is None else load(v)) for v in values.to_pylist()),
                           dtype=object, count=len(values))
    return pd.Series(made, dtype=object, copy=False).infer_objects().array


def _is_text_loader(load: Callable) -> bool:
    return type(getattr(load, "__self__", None)).__name__ == "TextLoader"
