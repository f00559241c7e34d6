"""PostgreSQL bulk load: DataFrames encoded as COPY text, column by column with Arrow.

The text format of ``COPY ... FROM STDIN`` is one line per row, tab-separated, ``\\N`` for NULL
and backslash escapes for backslash, tab, newline and carriage return. Each column is turned
into an Arrow string array by the rule of its target type (Arrow's casts run in C), escaped,
and the columns are joined element-wise; the joined array's data buffer is the payload, handed
to psycopg without a copy. This is several times faster than psycopg's ``write_row`` per row,
which formats every value in Python (see tests/benchmarks/bench_write.py).
"""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from hma_db.errors import WriteError
from hma_db.target.types import family

_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
_NULL = "\\N"


def _strings(values) -> pa.Array:
    return pa.array(values, type=pa.string(), from_pandas=True)


def _mapped(series: pd.Series, func) -> pa.Array:
    """Python-level formatting for the few types Arrow cannot cast (json, arrays, bytes...)."""
    return _strings(series.map(func, na_action="ignore"))


def _integer(series: pd.Series) -> pa.Array:
    if series.dtype.kind == "f" or series.dtype == object:
        series = series.astype("Int64")
    return pc.cast(pa.array(series, from_pandas=True), pa.string())


def _float(series: pd.Series) -> pa.Array:
    if series.dtype == object:  # Decimal values keep their exact digits
        return _mapped(series, str)
    return pc.cast(pa.array(series.astype("float64"), from_pandas=True), pa.string())


def _boolean(series: pd.Series) -> pa.Array:
    array = pa.array(series.astype("boolean"), from_pandas=True)
    return pc.if_else(array, "t", "f")


def _datetime(series: pd.Series, timezone: bool) -> pa.Array:
    if series.dtype == object or isinstance(series.dtype, pd.StringDtype):
        if series.dropna().map(type).eq(str).all():
            return _strings(series)  # already text, e.g. from a SQLite source
        series = pd.to_datetime(series, utc=timezone)
    if getattr(series.dt, "tz", None) is not None:
        series = series.dt.tz_convert("UTC")
        if not timezone:
            series = series.dt.tz_localize(None)
    return pc.cast(pa.array(series, from_pandas=True), pa.string())


def _date(series: pd.Series) -> pa.Array:
    if series.dtype.kind == "M":
        return pc.cast(pc.cast(pa.array(series, from_pandas=True), pa.date32()), pa.string())
    return _mapped(series, str)


def _interval(series: pd.Series) -> pa.Array:
    if series.dtype.kind == "m":
        # Days and microseconds, so PostgreSQL shows '-1 days +02:03:04.5' rather than hours.
        nanos = series.to_numpy().astype("timedelta64[ns]").astype("int64")
        days, rest = np.divmod(nanos, 86_400 * 10**9)
        valid = series.notna().to_numpy()
        text = pc.binary_join_element_wise(
            pc.cast(pa.array(days, mask=~valid), pa.string()),
            pc.cast(pa.array(rest // 1000, mask=~valid), pa.string()), " days ")
        return pc.binary_join_element_wise(text, " microseconds", "")
    if series.dtype.kind in "if":  # seconds, as the model stores intervals
        return pc.binary_join_element_wise(_float(series), " seconds", "")
    return _mapped(series, str)


def json_text(value) -> str:
    """A value of a JSON column as JSON text. Drivers return JSON documents as dicts and lists
    and JSON strings as ``str``; a ``str`` that holds an object or array is taken as JSON text
    already (as when it comes from a TEXT column), any other ``str`` as a JSON string."""
    if isinstance(value, str):
        if value[:1] in ("{", "["):
            try:
                if isinstance(json.loads(value), dict | list):
                    return value
            except ValueError:
                pass
        return json.dumps(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return json.dumps(value, default=str)


def _array_item(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "NULL"
    if isinstance(value, list | tuple | np.ndarray):
        return _array_literal(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    # An element of a json[] array (a document as the driver returns it) is JSON text.
    text = json.dumps(value) if isinstance(value, dict) else str(value)
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _array_literal(value) -> str:
    """A PostgreSQL array literal: ``{"a","b",NULL}``, nested lists as nested braces."""
    if isinstance(value, str):
        return value  # already a literal
    return "{" + ",".join(_array_item(v) for v in value) + "}"


def _binary(value) -> str:
    return "\\x" + bytes(value).hex()


def _text(series: pd.Series) -> pa.Array:
    if series.dtype != object or series.dropna().map(type).eq(str).all():
        return _strings(series.astype("string") if series.dtype != object else series)
    return _mapped(series, str)


def encode_column(series: pd.Series, column: sa.Column) -> pa.Array:
    """One column as escaped COPY text, NULLs as ``\\N``."""
    kind = family(column.type)
    if kind == "integer":
        return pc.fill_null(_integer(series), _NULL)
    if kind in ("float", "numeric"):
        return pc.fill_null(_float(series), _NULL)
    if kind == "boolean":
        return pc.fill_null(_boolean(series), _NULL)
    encoders = {
        "datetime": lambda s: _datetime(s, bool(getattr(column.type, "timezone", False))),
        "date": _date, "interval": _interval, "time": lambda s: _mapped(s, str),
        "uuid": lambda s: _mapped(s, lambda v: str(uuid.UUID(str(v)))),
        "json": lambda s: _mapped(s, json_text), "array": lambda s: _mapped(s, _array_literal),
        "binary": lambda s: _mapped(s, _binary),
    }
    array = encoders.get(kind, _text)(series)
    for old, new in _ESCAPES:
        array = pc.replace_substring(array, old, new)
    return pc.fill_null(array, _NULL)


def encode_frame(frame: pd.DataFrame, table: sa.Table) -> memoryview:
    """The COPY text payload of ``frame`` (columns named like ``table``'s), newline-terminated."""
    arrays = []
    for name in frame.columns:
        try:
            arrays.append(encode_column(frame[name].reset_index(drop=True), table.c[name]))
        except (TypeError, ValueError, OverflowError, pa.ArrowException) as exc:
            raise WriteError(f"column '{table.name}.{name}': values do not fit its type "
                             f"{table.c[name].type}: {exc}") from exc
    ends = pa.array(np.full(len(frame), "", dtype=object), type=pa.string())
    line = arrays[0] if len(arrays) == 1 else pc.binary_join_element_wise(*arrays, "\t")
    line = pc.binary_join_element_wise(line, ends, "\n")  # row terminator after each line
    offsets = np.frombuffer(line.buffers()[1], dtype=np.int32, count=len(line) + 1,
                            offset=line.offset * 4)
    data = line.buffers()[2]
    return memoryview(data)[offsets[0]:offsets[-1]]


def copy_frame(dbapi_conn, table_sql: str, frame: pd.DataFrame, table: sa.Table,
               batch_size: int, quote, on_batch=None) -> int:
    """COPY ``frame`` into ``table_sql`` in batches of ``batch_size`` rows, in one statement."""
    columns = ", ".join(quote(c) for c in frame.columns)
    with dbapi_conn.cursor() as cursor, cursor.copy(
            f"COPY {table_sql} ({columns}) FROM STDIN") as copy:
        for start in range(0, len(frame), batch_size):
            copy.write(encode_frame(frame.iloc[start:start + batch_size], table))
            if on_batch is not None:
                on_batch(min(start + batch_size, len(frame)))
    return len(frame)
