"""How the report queries a column in any of the three databases.

The report reads the real and the synthetic database, and runs its validity checks in the
target, with the tables of the metadata, whose types were reflected from the source. A type of
one dialect may not exist in the other (a MariaDB SET read back from PostgreSQL), a value may
come back in a form that is no number (PostgreSQL's money as ``'$1,234.50'``), and a 4-byte
float may be compared with the 8-byte float the driver read of it. This module holds those
rules, so that reading and checking apply the same ones.
"""

from __future__ import annotations

import datetime
import re

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from hma_db.schema import Metadata

# float4 holds 24 significant bits (about 7 digits) and MariaDB sends a FLOAT rounded to 6: the
# real range read back is that close to the stored values, and no closer.
SINGLE_PRECISION = 1e-5
_FAMILIES = {"mariadb": "mysql"}  # dialect name -> the sqlalchemy.dialects module of its types
_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")


def query_table(metadata: Metadata, table: str, dialect: sa.Dialect | None = None,
                name: str | None = None, *,
                typed: bool = True) -> sa.Table | sa.TableClause | sa.Alias:
    """The table to query: the reflected Table when there is one (its types convert values and
    bind parameters as the database stores them), else a table clause of the metadata's column
    names; aliased as ``name`` if given.

    With a ``dialect``, a column whose type that dialect cannot use (a MariaDB SET or a
    PostgreSQL type read from another database) is queried untyped, as the database gives it;
    ``typed=False`` leaves every column untyped.
    """
    if not typed or metadata.sql_metadata is None or table not in metadata.sql_metadata.tables:
        sql_table = sa.table(table, *[sa.column(c) for c in metadata.tables[table]["columns"]])
    else:
        sql_table = metadata.sql_metadata.tables[table]
        if dialect is not None and not all(_usable(c.type, dialect) for c in sql_table.c):
            sql_table = sa.table(table, *[
                sa.column(c.name, c.type if _usable(c.type, dialect) else sa.types.NullType())
                for c in sql_table.c])
    return sql_table.alias(name) if name else sql_table


def source_types(metadata: Metadata, table: str) -> dict[str, sa.types.TypeEngine]:
    """``{column: SQL type}`` as reflected from the source (NullType when not reflected): what a
    check means for a column is decided by these, whatever database it reads."""
    return {c.name: c.type for c in query_table(metadata, table).c}


def _usable(type_: sa.types.TypeEngine, dialect: sa.Dialect) -> bool:
    """Whether the type can convert values in ``dialect``: a generic type or one of the
    dialect's own that the dialect can adapt, or a type of another dialect that it adapts into
    its own (a MariaDB ENUM in PostgreSQL). Not: a type the dialect refuses to adapt (a SET in
    PostgreSQL raises TypeError; PostgreSQL's ``double precision``, reflected with precision
    53, raises ArgumentError in MariaDB, which wants a scale too), nor another dialect's type
    that stays itself (MariaDB's BIT then asks PostgreSQL for ``supports_native_bit``)."""
    try:
        impl = type_.dialect_impl(dialect)
    except (TypeError, ValueError, NotImplementedError, sa.exc.SQLAlchemyError):
        return False
    module = type(type_).__module__.split(".")
    if module[:2] != ["sqlalchemy", "dialects"] or module[2] == _FAMILIES.get(dialect.name,
                                                                              dialect.name):
        return True
    return type(impl) is not type(type_)


def sql_value(column: sa.ColumnElement,
              type_: sa.types.TypeEngine | None = None) -> sa.ColumnElement:
    """The column as the report reads and compares it, by its type in the source (``type_``,
    else the column's own).

    PostgreSQL's ``money`` as ``numeric``: the driver sends money as text such as
    ``'$1,234.50'``, which is no number, and money compares with money only. MariaDB's ``SET``
    as its text (members joined by commas), the form every database can hold. MariaDB's
    ``YEAR`` typed as the integer it is, with no change to the SQL (SQLAlchemy's YEAR has no
    comparison operators of its own).
    """
    type_ = column.type if type_ is None else type_
    if isinstance(type_, postgresql.MONEY):
        return sa.cast(column, sa.Numeric)
    if isinstance(type_, mysql.SET):
        return sa.type_coerce(column, sa.String())
    if isinstance(type_, mysql.YEAR):
        return sa.type_coerce(column, sa.Integer)
    return column


def single_precision(type_: sa.types.TypeEngine) -> bool:
    """Whether a column type may hold 4-byte floats: PostgreSQL's ``real``, MariaDB's ``FLOAT``
    and ``FLOAT(p)`` with p <= 24. A ``REAL`` counts wherever it was read (SQLite's is 8 bytes,
    but a target of another dialect makes it ``real``, 4 bytes)."""
    if not isinstance(type_, sa.Float) or isinstance(type_, (sa.Double, mysql.REAL)):
        return False
    if isinstance(type_, sa.REAL) or (isinstance(type_, mysql.FLOAT) and type_.precision is None):
        return True
    return type_.precision is not None and type_.precision <= 24


def range_bounds(type_: sa.types.TypeEngine | None, low, high) -> tuple:
    """The real range as bound parameters, compared in the column's own precision.

    Numpy scalars and Timestamps become the Python values drivers take. The minimum and maximum
    of a 4-byte float column come back as 8-byte floats, and the column compared with an 8-byte
    parameter is compared after widening: a value equal to the real maximum was then found above
    it (the real database failed against itself). A relative margin of the column's precision
    keeps such a value in.
    """
    low, high = _plain(low), _plain(high)
    if not single_precision(type_) or not isinstance(low, float) or not isinstance(high, float):
        return low, high
    return low - abs(low) * SINGLE_PRECISION, high + abs(high) * SINGLE_PRECISION


SQLITE_INTEGER = (-(2**63), 2**63 - 1)  # SQLite's INTEGER is 8 bytes, signed


def sqlite_number(value):
    """A range end SQLite can take as a parameter: an integer beyond its 8-byte INTEGER (a
    BIGINT UNSIGNED near its maximum) as the REAL that SQLite stores for such a value."""
    if isinstance(value, int) and not SQLITE_INTEGER[0] <= value <= SQLITE_INTEGER[1]:
        return float(value)
    return value


def sqlite_day(value) -> str:
    """A range end as text that SQLite's ``julianday`` reads as it reads the column.

    A time of day stays one (``julianday('10:30:00')`` is on 2000-01-01, for the column's text as
    for the bound; pandas would put it on today's date, past every stored time). Text pandas
    cannot read is left as it is, so it is compared as SQLite reads it, or not at all.
    """
    if isinstance(value, datetime.time) or (isinstance(value, str)
                                            and _TIME_OF_DAY.match(value.strip())):
        return str(value).strip()
    try:
        return str(pd.Timestamp(value))
    except (ValueError, TypeError):
        return str(value)


def _plain(value):
    """A bound parameter the drivers take: Python floats and datetimes, not numpy scalars."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value
