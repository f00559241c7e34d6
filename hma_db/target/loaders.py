"""Per-dialect bulk loaders: how rows get into the target, how deferred keys are updated and how
key counters are moved past the loaded keys.

``LOADERS`` maps a dialect family to a :class:`Loader`: PostgreSQL loads with ``COPY ... FROM
STDIN`` (:mod:`hma_db.target.copy`), SQLite and MariaDB with batched ``executemany`` (pymysql
turns an ``executemany`` INSERT into multi-row INSERTs under its statement-size limit, well below
MariaDB's packet size; sqlite3 binds each row's values, far below SQLite's 32766 variables).
Each statement's rows are checked against the foreign keys by the target as they go in.
"""

from __future__ import annotations

import uuid

import pandas as pd
import sqlalchemy as sa

from hma_db.errors import WriteError
from hma_db.schema import is_geometry
from hma_db.target.copy import copy_frame, json_text
from hma_db.target.types import family


class Loader:
    """Batched ``executemany`` loads, updates by primary key; counters need no reset."""

    default_batch_size = 10_000

    def __init__(self, dialect: str):
        self.dialect = dialect

    def _marker(self, conn: sa.Connection) -> str:
        return "?" if conn.dialect.paramstyle == "qmark" else "%s"

    def _placeholder(self, conn: sa.Connection, column: sa.Column) -> str:
        """A value's placeholder; a spatial column on MariaDB takes WKT through ST_GeomFromText."""
        mark = self._marker(conn)
        return f"ST_GeomFromText({mark})" if is_geometry(column.type) and \
            self.dialect == "mysql" else mark

    def load(self, conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, batch_size: int,
             on_batch=None) -> int:
        """Insert every row of ``frame`` (columns named like the table's) into ``table``."""
        quote = conn.dialect.identifier_preparer.quote
        columns = ", ".join(quote(c) for c in frame.columns)
        marks = ", ".join(self._placeholder(conn, table.c[c]) for c in frame.columns)
        sql = f"INSERT INTO {_table_sql(conn, table)} ({columns}) VALUES ({marks})"
        for start in range(0, len(frame), batch_size):
            rows = python_rows(frame.iloc[start:start + batch_size], table, self.dialect)
            try:
                conn.exec_driver_sql(sql, rows)
            except sa.exc.IntegrityError as exc:
                if self.dialect == "sqlite" and "FOREIGN KEY" in str(exc.orig):
                    raise _missing_parents(conn, table, sql, rows) from exc
                raise
            if on_batch is not None:
                on_batch(min(start + batch_size, len(frame)))
        return len(frame)

    def update(self, conn: sa.Connection, table: sa.Table, keys: list[str], frame: pd.DataFrame,
               batch_size: int) -> None:
        """Set the non-key columns of ``frame`` on the rows whose ``keys`` match."""
        quote, mark = conn.dialect.identifier_preparer.quote, self._marker(conn)
        values = [c for c in frame.columns if c not in keys]
        sets = ", ".join(f"{quote(c)} = {mark}" for c in values)
        where = " AND ".join(f"{quote(c)} = {mark}" for c in keys)
        sql = f"UPDATE {_table_sql(conn, table)} SET {sets} WHERE {where}"
        ordered = frame[values + keys]
        for start in range(0, len(ordered), batch_size):
            conn.exec_driver_sql(sql, python_rows(ordered.iloc[start:start + batch_size], table,
                                                  self.dialect))

    def reset_counters(self, conn: sa.Connection, table: sa.Table, columns: list[str]) -> None:
        """SQLite (rowid, sqlite_sequence) and InnoDB (AUTO_INCREMENT) move their counters past
        explicitly inserted keys by themselves; the tests check an INSERT without an id."""


class PostgresLoader(Loader):
    """COPY for loads, COPY into a temporary table plus ``UPDATE ... FROM`` for updates."""

    default_batch_size = 50_000

    def load(self, conn, table, frame, batch_size, on_batch=None) -> int:
        raw = conn.connection.driver_connection
        return copy_frame(raw, _table_sql(conn, table), frame, table, batch_size,
                          conn.dialect.identifier_preparer.quote, on_batch)

    def update(self, conn, table, keys, frame, batch_size) -> None:
        quote = conn.dialect.identifier_preparer.quote
        temp = quote(f"hma_update_{table.name}"[:63])
        columns = ", ".join(quote(c) for c in frame.columns)
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {temp} ON COMMIT DROP AS SELECT {columns} "
                             f"FROM {_table_sql(conn, table)} WITH NO DATA")
        temp_table = sa.Table(temp.strip('"'), sa.MetaData(),
                              *[sa.Column(c.name, c.type) for c in table.columns if c.name in frame])
        copy_frame(conn.connection.driver_connection, temp, frame, temp_table, batch_size, quote)
        sets = ", ".join(f"{quote(c)} = u.{quote(c)}" for c in frame.columns if c not in keys)
        where = " AND ".join(f"t.{quote(c)} = u.{quote(c)}" for c in keys)
        conn.exec_driver_sql(f"UPDATE {_table_sql(conn, table)} AS t SET {sets} FROM {temp} AS u "
                             f"WHERE {where}")
        conn.exec_driver_sql(f"DROP TABLE {temp}")

    def reset_counters(self, conn, table, columns) -> None:
        quote = conn.dialect.identifier_preparer.quote
        for column in columns:
            # setval(..., false): the next nextval() returns max + 1 (1 on an empty table).
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence(:t, :c), "
                f"COALESCE((SELECT MAX({quote(column)}) FROM {_table_sql(conn, table)}), 0) + 1, "
                "false)"), {"t": _table_sql(conn, table), "c": column})


def _missing_parents(conn: sa.Connection, table: sa.Table, sql: str, rows: list) -> WriteError:
    """SQLite's immediate check says only "FOREIGN KEY constraint failed": insert the failed
    batch again with the check deferred, inside a savepoint, and ask which rows miss which
    parent; then undo that insert."""
    conn.exec_driver_sql("SAVEPOINT hma_fk_probe")
    try:
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        conn.exec_driver_sql(sql, rows)
        quoted = conn.dialect.identifier_preparer.quote(table.name)
        found = conn.exec_driver_sql(f"PRAGMA foreign_key_check({quoted})").fetchall()
    finally:
        conn.exec_driver_sql("ROLLBACK TO hma_fk_probe")
        conn.exec_driver_sql("RELEASE hma_fk_probe")
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = OFF")
    parents = ", ".join(sorted({row[2] for row in found})) or "a parent table"
    return WriteError(f"Writing table '{table.name}' failed: {len(found)} row(s) reference rows "
                      f"missing from {parents} (FOREIGN KEY); the target was left as it was.")


LOADERS = {"postgresql": PostgresLoader, "sqlite": Loader, "mysql": Loader}


def loader_for(dialect: str) -> Loader:
    """The loader of a dialect family ('postgresql', 'sqlite', 'mysql')."""
    return LOADERS[dialect](dialect)


def _table_sql(conn: sa.Connection, table: sa.Table) -> str:
    return conn.dialect.identifier_preparer.format_table(table)


def _datetimes(series: pd.Series, dialect: str, timezone: bool = False) -> pd.Series:
    if series.dtype == object and series.dropna().map(type).eq(str).all():
        return series
    series = pd.to_datetime(series)
    zoned = series.dt.tz is not None
    if zoned:  # no time zone type outside PostgreSQL: store UTC
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    if dialect == "sqlite":  # SQLAlchemy's SQLite DATETIME text format
        text = series.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
        if (series.dropna().dt.microsecond == 0).all():
            text = series.dt.strftime("%Y-%m-%d %H:%M:%S")
        if zoned and timezone:  # a TIMESTAMPTZ column keeps saying which zone: '...+00:00'
            text = text + "+00:00"
        return text.where(series.notna(), None)
    # datetime64[us] -> object gives datetime.datetime values, which every driver binds.
    values = series.astype("datetime64[us]").to_numpy().astype(object)
    return pd.Series(values, index=series.index, dtype=object)


def _text(value) -> str:
    return value if isinstance(value, str) else str(value)


def _convert(series: pd.Series, column: sa.Column, dialect: str) -> pd.Series:
    kind = family(column.type)
    if kind == "datetime":
        return _datetimes(series, dialect, bool(getattr(column.type, "timezone", False)))
    if kind == "date" and series.dtype.kind == "M":
        series = series.dt.date
    if series.dtype.kind == "m":  # an interval outside PostgreSQL is DOUBLE seconds
        return series.dt.total_seconds()
    if dialect == "sqlite" and series.dtype.kind == "u" and (series > 2**63 - 1).any():
        return series.astype("float64")  # BIGINT UNSIGNED past SQLite's INTEGER: a REAL
    if kind == "integer" and series.dtype.kind == "f":
        return series.astype("Int64")
    converters = {
        "uuid": lambda v: str(uuid.UUID(str(v))),
        "json": json_text, "array": json_text,
        "binary": bytes,
    }
    if kind in ("date", "time") and dialect == "sqlite":
        converters[kind] = str
    if kind in ("numeric", "float") and dialect == "sqlite" and series.dtype == object:
        converters[kind] = float  # sqlite3 cannot bind Decimal; NUMERIC affinity stores a number
    if kind in ("string", "enum", "other") and series.dtype == object:
        converters[kind] = _text  # e.g. uuid.UUID values for a CHAR(36) column
    if kind in converters:
        return series.map(converters[kind], na_action="ignore")
    return series


def python_rows(frame: pd.DataFrame, table: sa.Table, dialect: str) -> list[tuple]:
    """Rows of plain Python values (None for missing) that sqlite3 and pymysql can bind."""
    columns = []
    for name in frame.columns:
        try:
            series = _convert(frame[name], table.c[name], dialect)
        except (TypeError, ValueError, OverflowError) as exc:
            raise WriteError(f"column '{table.name}.{name}': values do not fit its type "
                             f"{table.c[name].type}: {exc}") from exc
        columns.append(series.to_numpy(dtype=object, na_value=None))
    return list(zip(*columns, strict=True))
