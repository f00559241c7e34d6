"""Validity: does the synthetic data keep the schema's rules?

Checks, each one row of findings (table, column(s), check, violating rows): primary keys unique
and not null, alternate keys unique, foreign keys resolve, NOT NULL columns, CHECK ``IN`` lists
(``allowed_values``), text within ``max_length``, and numbers and datetimes within the real
data's range. On DataFrames the checks are pandas expressions; in a database they are COUNT
queries run in the target (:func:`sql_checks`), so what is checked is what was written.

A range is compared in the column's own precision (a 4-byte float within its 7 digits), and a
value that is not a number or a datetime is skipped, counted in the finding's ``note``.
"""

from __future__ import annotations

import datetime
import re

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from hma_db.report.values import as_datetimes, as_numbers, skipped_note
from hma_db.schema import Metadata, key_columns

_KINDS = {"numerical": "numbers", "datetime": "datetimes"}
_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")


def _finding(table: str, columns: list[str], check: str, violations: int, rows: int) -> dict:
    return {"table": table, "columns": columns, "check": check, "violations": int(violations),
            "rows": int(rows), "passed": int(violations) == 0}


def ranges(data: dict[str, pd.DataFrame], metadata: Metadata) -> dict[str, dict[str, tuple]]:
    """``{table: {column: (min, max)}}`` of the numerical and datetime columns of ``data``
    (values that are not numbers or datetimes left out)."""
    out: dict[str, dict[str, tuple]] = {}
    for table, frame in data.items():
        for column, meta in metadata.tables[table]["columns"].items():
            if meta.get("sdtype") in ("numerical", "datetime") and column in frame:
                values = _comparable(frame[column], meta["sdtype"])[0]
                if len(values):
                    out.setdefault(table, {})[column] = (values.min(), values.max())
    return out


def _comparable(values: pd.Series, sdtype: str) -> tuple[pd.Series, int]:
    """The present values as floats or datetimes, and how many others were skipped."""
    converted, skipped = as_numbers(values) if sdtype == "numerical" else as_datetimes(values)
    return converted.dropna(), skipped


def _relationships_of(metadata: Metadata, table: str) -> list[dict]:
    return [r for r in metadata.relationships if r["child_table_name"] == table]


def _orphans(child: pd.DataFrame, parent: pd.DataFrame, rel: dict) -> int:
    fk, pk = key_columns(rel["child_foreign_key"]), key_columns(rel["parent_primary_key"])
    refs = child[fk].dropna()
    if len(fk) == 1:
        return int((~refs[fk[0]].isin(parent[pk[0]])).sum())
    known = pd.MultiIndex.from_frame(parent[pk].set_axis(fk, axis=1))
    return int((~pd.MultiIndex.from_frame(refs).isin(known)).sum())


def frame_checks(data: dict[str, pd.DataFrame], metadata: Metadata,
                 value_ranges: dict[str, dict[str, tuple]] | None = None) -> list[dict]:
    """Every validity check on synthetic DataFrames; ``value_ranges`` from the real data."""
    findings = []
    for table, table_meta in metadata.tables.items():
        frame, n = data[table], len(data[table])
        pk = metadata.primary_key(table)
        if pk:
            findings.append(_finding(table, pk, "primary key not null",
                                     frame[pk].isna().any(axis=1).sum(), n))
            findings.append(_finding(table, pk, "primary key unique",
                                     frame[pk].duplicated(keep=False).sum(), n))
        for key in metadata.alternate_keys(table):
            present = frame[key].dropna()
            findings.append(_finding(table, key, "unique", present.duplicated(keep=False).sum(), n))
        for rel in _relationships_of(metadata, table):
            findings.append(_finding(table, key_columns(rel["child_foreign_key"]),
                                     f"foreign key -> {rel['parent_table_name']}",
                                     _orphans(frame, data[rel["parent_table_name"]], rel), n))
        findings += _column_checks(table, frame, table_meta["columns"],
                                   (value_ranges or {}).get(table, {}),
                                   _table(metadata, table).c)
    return findings


def _counts_characters(meta: dict, type_: sa.types.TypeEngine | None) -> bool:
    """Whether the column's ``max_length`` is a number of characters its text must keep within.

    Not for a MariaDB SET, whose text joins several members (each within the length), a BIT
    (its length is in bits), nor binary values, which the report prints as hex digits.
    """
    return bool(meta.get("max_length")) and meta.get("generator") != "bytes" \
        and not isinstance(type_, (mysql.SET, mysql.BIT, sa.LargeBinary, sa.BINARY,
                                   sa.VARBINARY))


def _column_checks(table: str, frame: pd.DataFrame, columns: dict, table_ranges: dict,
                   sql_columns) -> list[dict]:
    findings, n = [], len(frame)
    for column, meta in columns.items():
        values = frame[column]
        if meta.get("nullable") is False:
            findings.append(_finding(table, [column], "not null", values.isna().sum(), n))
        if meta.get("allowed_values"):
            allowed = set(meta["allowed_values"])
            bad = values.notna() & ~values.isin(allowed) & ~values.astype(str).isin(
                {str(v) for v in allowed})
            findings.append(_finding(table, [column], "allowed values", bad.sum(), n))
        if _counts_characters(meta, getattr(sql_columns.get(column), "type", None)) \
                and values.map(type).eq(str).any():
            lengths = values.dropna().astype(str).str.len()
            findings.append(_finding(table, [column], f"length <= {meta['max_length']}",
                                     (lengths > meta["max_length"]).sum(), n))
        if column in table_ranges:
            low, high = table_ranges[column]
            present, skipped = _comparable(values, meta["sdtype"])
            finding = _finding(table, [column], "within the real range",
                               ((present < low) | (present > high)).sum(), n)
            note = skipped_note(_KINDS[meta["sdtype"]], synthetic=skipped)
            findings.append(finding | {"note": note} if note else finding)
    return findings


# ------------------------------------------------------------------------------ SQL
def _count(conn: sa.Connection, query) -> int:
    return int(conn.execute(query).scalar() or 0)


def _table(metadata: Metadata, table: str, name: str | None = None):
    """The reflected Table when there is one (its types bind values as the target stores them),
    else a table clause from the metadata's column names."""
    if metadata.sql_metadata is not None and table in metadata.sql_metadata.tables:
        sql_table = metadata.sql_metadata.tables[table]
    else:
        columns = [sa.column(c) for c in metadata.tables[table]["columns"]]
        sql_table = sa.table(table, *columns)
    return sql_table.alias(name) if name else sql_table


def sql_checks(conn: sa.Connection, metadata: Metadata, *, schema: str | None = None,
               value_ranges: dict[str, dict[str, tuple]] | None = None) -> list[dict]:
    """The validity checks as COUNT queries in the database behind ``conn``."""
    if schema:
        conn = conn.execution_options(schema_translate_map={None: schema})
    findings = []
    for table, table_meta in metadata.tables.items():
        t = _table(metadata, table)
        n = _count(conn, sa.select(sa.func.count()).select_from(t))
        pk = metadata.primary_key(table)
        if pk:
            nulls = sa.select(sa.func.count()).select_from(t).where(
                sa.or_(*[t.c[c].is_(None) for c in pk]))
            findings.append(_finding(table, pk, "primary key not null", _count(conn, nulls), n))
            findings.append(_finding(table, pk, "primary key unique", _repeated(conn, t, pk), n))
        for key in metadata.alternate_keys(table):
            findings.append(_finding(table, key, "unique", _repeated(conn, t, key), n))
        for rel in _relationships_of(metadata, table):
            findings.append(_finding(table, key_columns(rel["child_foreign_key"]),
                                     f"foreign key -> {rel['parent_table_name']}",
                                     _sql_orphans(conn, metadata, rel), n))
        findings += _sql_column_checks(conn, t, table, table_meta["columns"], n,
                                       (value_ranges or {}).get(table, {}))
    return findings


def _repeated(conn: sa.Connection, t, key: list[str]) -> int:
    """Rows whose non-null key value is shared with another row."""
    groups = (sa.select(sa.func.count().label("n")).select_from(t)
              .where(sa.and_(*[t.c[c].is_not(None) for c in key]))
              .group_by(*[t.c[c] for c in key]).having(sa.func.count() > 1).subquery())
    return _count(conn, sa.select(sa.func.coalesce(sa.func.sum(groups.c.n), 0)))


def _sql_orphans(conn: sa.Connection, metadata: Metadata, rel: dict) -> int:
    fk, pk = key_columns(rel["child_foreign_key"]), key_columns(rel["parent_primary_key"])
    child = _table(metadata, rel["child_table_name"], "c")
    parent = _table(metadata, rel["parent_table_name"], "p")
    on = sa.and_(*[child.c[f] == parent.c[p] for f, p in zip(fk, pk, strict=True)])
    join = child.outerjoin(parent, on)
    query = sa.select(sa.func.count()).select_from(join).where(
        sa.and_(*[child.c[f].is_not(None) for f in fk]), parent.c[pk[0]].is_(None))
    return _count(conn, query)


def _sql_column_checks(conn: sa.Connection, t, table: str, columns: dict, n: int,
                       table_ranges: dict) -> list[dict]:
    findings = []
    count = sa.select(sa.func.count()).select_from(t)
    for column, meta in columns.items():
        c = t.c[column]
        if meta.get("nullable") is False:
            findings.append(_finding(table, [column], "not null",
                                     _count(conn, count.where(c.is_(None))), n))
        if meta.get("allowed_values"):
            bad = count.where(c.is_not(None), c.not_in(list(meta["allowed_values"])))
            findings.append(_finding(table, [column], "allowed values", _count(conn, bad), n))
        if _counts_characters(meta, c.type) and meta.get("sdtype") not in ("numerical",
                                                                           "datetime", "boolean"):
            # characters, not bytes: MySQL's LENGTH counts bytes
            length = sa.func.length if conn.dialect.name == "sqlite" else sa.func.char_length
            text = sa.cast(c, sa.Text) if conn.dialect.name == "postgresql" else c
            bad = count.where(c.is_not(None), length(text) > meta["max_length"])
            findings.append(_finding(table, [column], f"length <= {meta['max_length']}",
                                     _count(conn, bad), n))
        if column in table_ranges:
            low, high = _widened(c.type, *(_plain(v) for v in table_ranges[column]))
            if conn.dialect.name == "sqlite" and meta["sdtype"] == "datetime":
                # SQLite keeps datetimes as text in several formats: compare them as days
                c, low, high = (sa.func.julianday(v) for v in (c, _day(low), _day(high)))
            else:
                low, high = sa.literal(low, c.type), sa.literal(high, c.type)
            bad = count.where(sa.or_(c < low, c > high))
            findings.append(_finding(table, [column], "within the real range",
                                     _count(conn, bad), n))
    return findings


def _day(value) -> str:
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


# float4 holds 24 significant bits (about 7 digits) and MariaDB sends a FLOAT rounded to 6: the
# real range read back is that close to the stored values, and no closer.
SINGLE_PRECISION = 1e-5


def single_precision(type_: sa.types.TypeEngine) -> bool:
    """Whether a column type may hold 4-byte floats: PostgreSQL's ``real``, MariaDB's ``FLOAT``
    and ``FLOAT(p)`` with p <= 24. A ``REAL`` counts wherever it was read (SQLite's is 8 bytes,
    but a target of another dialect makes it ``real``, 4 bytes)."""
    if not isinstance(type_, sa.Float) or isinstance(type_, (sa.Double, mysql.REAL)):
        return False
    if isinstance(type_, sa.REAL) or (isinstance(type_, mysql.FLOAT) and type_.precision is None):
        return True
    return type_.precision is not None and type_.precision <= 24


def _widened(type_: sa.types.TypeEngine, low, high) -> tuple:
    """The real range compared in the column's own precision.

    The minimum and maximum come back from the database as 8-byte floats, and a 4-byte column
    compared with an 8-byte parameter is compared after widening: a value equal to the real
    maximum in the column is then found above it (the real database failed against itself). A
    relative margin of the column's precision keeps such a value in.
    """
    if not single_precision(type_) or not isinstance(low, float) or not isinstance(high, float):
        return low, high
    return low - abs(low) * SINGLE_PRECISION, high + abs(high) * SINGLE_PRECISION
