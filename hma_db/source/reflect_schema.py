"""The physical schema behind reflected metadata, and the per-dialect lookups the Inspector lacks.

- :func:`bare_tables` copies reflected tables into a ``MetaData`` keyed by bare table name
  (``schema=None``), dropping foreign keys to tables that were not reflected, so ``write`` can
  recreate the schema anywhere.
- :func:`add_referenced_tables`: tables of other schemas that read tables reference are read too.
- :func:`partitions` and :func:`lift_partition_foreign_keys`: PostgreSQL partitions are left out
  and foreign keys declared only on partitions move to their partitioned table.
- :func:`raw_type_names`: the SQL name of a column type SQLAlchemy does not know (``xml``...).
- :func:`autoincrement_columns`: identity, serial, AUTO_INCREMENT and SQLite rowid-alias columns.
- :func:`checked_values` and :func:`alternate_keys`: what CHECKs, domains, unique constraints and
  unique indexes say about columns.

Per-dialect SQL lives here and nowhere else.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from hma_db.errors import ReflectionError
from hma_db.schema import (
    RawType,
    allowed_values_from_check,
    base_type,
    domain_checks,
    json_checked_columns,
    sqlite_declared_type,
)

logger = logging.getLogger(__name__)


def bare_tables(tables: dict[str, sa.Table]) -> sa.MetaData:
    """Copies of ``tables`` in a new MetaData with ``schema=None``, without dangling foreign keys."""
    metadata = sa.MetaData()
    read = {(t.schema, t.name) for t in tables.values()}

    def read_schema_blank(table, _to_schema, constraint, referred_schema):
        # Foreign keys to any table that was read (in its schema or another) point at bare names.
        try:
            referred = constraint.referred_table.name
        except sa.exc.NoReferencedTableError:
            return referred_schema
        if referred_schema == table.schema or (referred_schema, referred) in read:
            return sa.schema.BLANK_SCHEMA
        return referred_schema

    for table in tables.values():
        table.to_metadata(metadata, schema=None, referred_schema_fn=read_schema_blank)
    for table in metadata.tables.values():
        for fkc in list(table.foreign_key_constraints):
            try:
                fkc.referred_table  # noqa: B018 - resolves the parent, or raises
            except sa.exc.NoReferencedTableError:
                logger.info("table %s: foreign key to a table outside the reflected set dropped",
                            table.name)
                _drop_foreign_key(table, fkc)
    return metadata


def add_referenced_tables(conn: sa.Connection, source: sa.MetaData, tables: dict[str, sa.Table],
                          schema: str | None) -> dict[str, str]:
    """Reflect into ``source`` and add to ``tables`` every table of another schema that a read
    table references (and what those reference in turn), so a foreign key across schemas is
    modeled like any other; returns ``{table: its schema}`` for them. The target holds them in
    its one schema, under their own names: two of one name are refused here."""
    if conn.dialect.name == "sqlite":
        return {}
    inspector = sa.inspect(conn)
    own = schema if schema is not None else inspector.default_schema_name
    foreign: dict[str, str] = {}
    pending = list(tables.values())
    while pending:
        table = pending.pop(0)
        for fk in inspector.get_foreign_keys(table.name, schema=table.schema):
            referred, name = fk["referred_schema"], fk["referred_table"]
            if referred in (None, table.schema, own) or foreign.get(name) == referred:
                continue
            if name in tables:
                raise ReflectionError(
                    f"table {table.name}: its foreign key ({', '.join(fk['constrained_columns'])})"
                    f" references {referred}.{name}, and schema '{own}' has a table '{name}' too;"
                    f" the target holds both in one schema: exclude {own}.{name} or rename one")
            source.reflect(bind=conn, schema=referred, only=[name], views=False,
                           resolve_fks=False)
            tables[name] = source.tables[f"{referred}.{name}"]
            foreign[name] = referred
            pending.append(tables[name])
            logger.info("table %s: references %s.%s, which is read too (another schema)",
                        table.name, referred, name)
    return foreign


def _drop_foreign_key(table: sa.Table, fkc: sa.ForeignKeyConstraint) -> None:
    table.constraints.discard(fkc)
    for fk in fkc.elements:
        fk.parent.foreign_keys.discard(fk)
        table.foreign_keys.discard(fk)


def complete_types(conn: sa.Connection, tables: dict[str, sa.Table]) -> None:
    """Give columns whose type SQLAlchemy does not know a RawType with the SQL type name, and
    string domains their length."""
    if conn.dialect.name == "sqlite":
        for name, table in tables.items():
            sqlite_types(conn, table, name, table.schema)
    if conn.dialect.name in ("mysql", "mariadb"):
        for table in tables.values():
            mysql_tinyint_numbers(conn, table)
    lengths = domain_lengths(conn) if conn.dialect.name == "postgresql" else {}
    for column in (c for t in tables.values() for c in t.columns):
        if isinstance(column.type, postgresql.DOMAIN) and column.type.name in lengths:
            base = base_type(column.type)
            if isinstance(base, sa.String) and base.length is None:
                base.length = lengths[column.type.name]
    for name, table in tables.items():
        unknown = [c for c in table.columns if isinstance(c.type, sa.types.NullType)]
        if not unknown:
            continue
        raw = raw_type_names(conn, name, table.schema)
        family = "mysql" if conn.dialect.name == "mariadb" else conn.dialect.name
        for column in unknown:
            column.type = RawType(raw.get(column.name) or "text", dialect=family)


_SQLITE_SAMPLE = 1000  # values looked at per SQLite column whose declared type says little
_SQLITE_NAMES = set(sqlite.base.ischema_names)  # names SQLAlchemy reads as what they say


def _sqlite_values(conn: sa.Connection, table: str, column: str, schema: str | None,
                   bounds: bool = True) -> tuple:
    quote = conn.dialect.identifier_preparer.quote_identifier
    source = f"{quote(schema)}.{quote(table)}" if schema else quote(table)
    col = quote(column)
    values = [r[0] for r in conn.exec_driver_sql(
        f"SELECT {col} FROM {source} WHERE {col} IS NOT NULL LIMIT {_SQLITE_SAMPLE}")]
    if not bounds:
        return values, None
    found = conn.exec_driver_sql(
        f"SELECT min({col}), max({col}) FROM {source} WHERE typeof({col}) = 'integer'").one()
    return values, (tuple(found) if found[0] is not None else None)


def _check_sqlite_values(conn: sa.Connection, table: sa.Table, name: str, column: str,
                        declared: str, schema: str | None) -> None:
    """A DATE, DATETIME, TIME, DECIMAL or BOOLEAN column whose values are something else
    ('2022-02-15 10:00:00' in a DATE, epoch seconds in a TIMESTAMP, 'n/a' in a DECIMAL, 'yes'
    in a BOOLEAN) takes the type of its values: SQLAlchemy's conversions would fail on them
    while reading, or read every text as true."""
    current = table.c[column].type
    exact = isinstance(current, sa.Numeric) and not isinstance(current, sa.Float)
    flag = isinstance(current, sa.Boolean)
    if not (exact or flag or isinstance(current, (sa.Date, sa.DateTime, sa.Time))):
        return
    values, _ = _sqlite_values(conn, name, column, schema, bounds=False)
    if flag and not any(isinstance(v, str) for v in values):
        return  # 0 and 1: a boolean as SQLite stores one ('yes'/'no' would all read as true)
    found = sqlite_declared_type(declared, values)
    readable = {sa.Date: sa.Date, sa.DateTime: (sa.Date, sa.DateTime), sa.Time: sa.Time,
                sa.Boolean: sa.Integer, sa.Numeric: (sa.Integer, sa.Numeric, sa.Float)}
    fits = next(ok for kind, ok in readable.items() if isinstance(current, kind))
    if values and not isinstance(found, fits):
        logger.info("table %s: column %s declared %r holds values of type %s", name, column,
                    declared, found)
        table.c[column].type = found


def sqlite_types(conn: sa.Connection, table: sa.Table, name: str, schema: str | None) -> None:
    """Type the SQLite columns whose declared name SQLAlchemy does not know (TIMESTAMPTZ,
    DATETIME2, NUMBER(10,2), VARCHAR2(30), none at all) by SQLite's affinity rules and a look at
    their values: SQLAlchemy would call TIMESTAMPTZ NUMERIC and fail on its ISO text."""
    for _, column, declared, *_ in _sqlite_table_info(conn, name, schema):
        base = re.sub(r"\(.*", "", declared or "").strip().upper()
        if column not in table.c:
            continue
        if base in _SQLITE_NAMES:
            _check_sqlite_values(conn, table, name, column, declared, schema)
            continue
        values, bounds = _sqlite_values(conn, name, column, schema)
        found = sqlite_declared_type(declared, values, bounds)
        logger.info("table %s: column %s declared %r read as %s", name, column, declared or "",
                    found)
        table.c[column].type = found


def mysql_tinyint_numbers(conn: sa.Connection, table: sa.Table) -> None:
    """A MariaDB TINYINT(1) is BOOLEAN's spelling, unless it holds numbers other than 0 and 1
    (a rating 0-5 declared TINYINT(1)): then it is a number, not a flag that loses them."""
    for column in table.columns:
        type_ = column.type
        if not (isinstance(type_, mysql.TINYINT) and type_.display_width == 1):
            continue
        other = conn.execute(sa.select(column).where(column.not_in([0, 1])).limit(1)).first()
        if other is not None:
            column.type = mysql.TINYINT(unsigned=bool(type_.unsigned))
            logger.info("table %s: TINYINT(1) column %s holds numbers besides 0 and 1; read as "
                        "a number", table.name, column.name)


def checked_values(table: sa.Table) -> tuple[dict[str, list[Any]], set[str]]:
    """Columns limited to a list of values by a CHECK (or a domain's), and JSON-checked columns."""
    columns = [c.name for c in table.columns]
    allowed: dict[str, list[Any]] = {}
    json_columns: set[str] = set()
    for constraint in table.constraints:
        if isinstance(constraint, sa.CheckConstraint):
            allowed.update(allowed_values_from_check(str(constraint.sqltext), columns))
            json_columns |= json_checked_columns(str(constraint.sqltext), columns)
    for column in table.columns:
        for check in domain_checks(column.type):
            values = allowed_values_from_check(check, ["VALUE"]).get("VALUE")
            if values:
                allowed[column.name] = values
    return allowed, json_columns


def alternate_keys(table: sa.Table) -> list[Any]:
    """Unique constraints and full unique indexes on plain columns, the primary key excepted."""
    pk = [c.name for c in table.primary_key.columns]
    keys: list[list[str]] = []
    candidates = [[c.name for c in u.columns] for u in table.constraints
                  if isinstance(u, sa.UniqueConstraint)]
    for index in sorted(table.indexes, key=lambda i: i.name or ""):
        partial = any(k.endswith("_where") and v is not None for k, v in index.dialect_kwargs.items())
        if index.unique and not partial and all(isinstance(e, sa.Column) for e in index.expressions):
            candidates.append([e.name for e in index.expressions])
    for key in sorted(candidates):
        if key and sorted(key) != sorted(pk) and sorted(key) not in [sorted(k) for k in keys]:
            keys.append(key)
    return [k[0] if len(k) == 1 else k for k in keys]


def partitions(conn: sa.Connection, schema: str | None) -> dict[str, str]:
    """PostgreSQL partitions of ``schema`` mapped to their root partitioned table ({} elsewhere)."""
    if conn.dialect.name != "postgresql" or conn.dialect.server_version_info < (12,):
        return {}
    rows = conn.execute(sa.text(
        "SELECT c.relname, r.relname FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_catalog.pg_class r ON r.oid = pg_catalog.pg_partition_root(c.oid) "
        "WHERE c.relispartition AND n.nspname = COALESCE(:schema, current_schema())"),
        {"schema": schema}).all()
    return {child: root for child, root in rows}


def lift_partition_foreign_keys(inspector: sa.Inspector, metadata: sa.MetaData,
                                parts: dict[str, str], schema: str | None) -> None:
    """Add to each partitioned table the foreign keys declared only on its partitions."""
    for partition, root in sorted(parts.items()):
        table = metadata.tables.get(root)
        if table is None:
            continue
        for fk in inspector.get_foreign_keys(partition, schema=schema):
            if fk["referred_schema"] not in (None, schema, inspector.default_schema_name):
                continue
            parent = metadata.tables.get(parts.get(fk["referred_table"], fk["referred_table"]))
            if parent is None or any(c not in parent.c for c in fk["referred_columns"]):
                continue
            known = {(tuple(c.column_keys), c.referred_table.name)
                     for c in table.foreign_key_constraints}
            if (tuple(fk["constrained_columns"]), parent.name) in known:
                continue
            table.append_constraint(sa.ForeignKeyConstraint(
                fk["constrained_columns"], [parent.c[c] for c in fk["referred_columns"]],
                name=fk["name"]))
            logger.info("table %s: foreign key %s lifted from partition %s", root, fk["name"],
                        partition)


def raw_type_names(conn: sa.Connection, table: str, schema: str | None) -> dict[str, str]:
    """The SQL type name of each column of ``table``, as the database spells it."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        rows = conn.execute(sa.text(
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) "
            "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = :t AND n.nspname = COALESCE(:s, current_schema()) "
            "AND a.attnum > 0 AND NOT a.attisdropped"), {"t": table, "s": schema}).all()
    elif dialect in ("mysql", "mariadb"):
        rows = conn.execute(sa.text(
            "SELECT column_name, column_type FROM information_schema.columns "
            "WHERE table_schema = COALESCE(:s, DATABASE()) AND table_name = :t"),
            {"t": table, "s": schema}).all()
    elif dialect == "sqlite":
        rows = [(r[1], r[2]) for r in _sqlite_table_info(conn, table, schema)]
    else:
        rows = []
    return {name: type_name for name, type_name in rows}


def domain_lengths(conn: sa.Connection) -> dict[str, int]:
    """The length of each PostgreSQL domain over a sized string type (``varchar(10)``), which
    SQLAlchemy's domain reflection drops."""
    if conn.dialect.name != "postgresql":
        return {}
    rows = conn.execute(sa.text(
        "SELECT t.typname, pg_catalog.format_type(t.typbasetype, t.typtypmod) "
        "FROM pg_catalog.pg_type t WHERE t.typtype = 'd'")).all()
    found = {}
    for name, base in rows:
        match = re.search(r"char(?:acter)?(?: varying)?\((\d+)\)$", base or "")
        if match:
            found[name] = int(match.group(1))
    return found


def _sqlite_table_info(conn: sa.Connection, table: str, schema: str | None) -> list:
    quote = conn.dialect.identifier_preparer.quote_identifier
    prefix = f"{quote(schema)}." if schema else ""
    return conn.exec_driver_sql(f"PRAGMA {prefix}table_info({quote(table)})").all()


def add_sqlite_unique_constraints(conn: sa.Connection, metadata: sa.MetaData,
                                  schema: str | None) -> None:
    """Add the column-level UNIQUE constraints SQLAlchemy's SQLite reflection misses."""
    if conn.dialect.name != "sqlite":
        return
    quote = conn.dialect.identifier_preparer.quote_identifier
    prefix = f"{quote(schema)}." if schema else ""
    for table in metadata.tables.values():
        known = {tuple(sorted(c.name for c in u.columns)) for u in table.constraints
                 if isinstance(u, sa.UniqueConstraint)}
        for index in conn.exec_driver_sql(f"PRAGMA {prefix}index_list({quote(table.name)})"):
            if index[3] != "u":  # 'u': made by a UNIQUE constraint, not by CREATE INDEX
                continue
            info = conn.exec_driver_sql(f"PRAGMA {prefix}index_info({quote(index[1])})").all()
            columns = [row[2] for row in sorted(info)]
            if tuple(sorted(columns)) not in known and all(c in table.c for c in columns):
                table.append_constraint(sa.UniqueConstraint(*columns))
                known.add(tuple(sorted(columns)))


def _mysql_checks(conn: sa.Connection, schema: str | None) -> list:
    return conn.execute(sa.text(
        "SELECT tc.table_name, cc.constraint_name, cc.check_clause "
        "FROM information_schema.check_constraints cc "
        "JOIN information_schema.table_constraints tc "
        "ON tc.constraint_schema = cc.constraint_schema "
        "AND tc.constraint_name = cc.constraint_name AND tc.constraint_type = 'CHECK' "
        "WHERE cc.constraint_schema = COALESCE(:s, DATABASE())"), {"s": schema}).all()


def add_mysql_checks(conn: sa.Connection, metadata: sa.MetaData, schema: str | None) -> None:
    """Add the column-level CHECK constraints SQLAlchemy's MariaDB/MySQL reflection misses."""
    if conn.dialect.name not in ("mysql", "mariadb"):
        return
    try:
        rows = _mysql_checks(conn, schema)
    except sa.exc.DBAPIError:  # servers older than MariaDB 10.2 / MySQL 8.0.16 have no CHECKs
        return
    for table_name, name, clause in rows:
        table = metadata.tables.get(table_name)
        if table is None:
            continue
        known = {(c.name, str(c.sqltext)) for c in table.constraints
                 if isinstance(c, sa.CheckConstraint)}
        if not any(n == name or text == clause for n, text in known):
            table.append_constraint(sa.CheckConstraint(sa.text(clause), name=name))


def _sqlite_rowid_alias(conn: sa.Connection, table: sa.Table, schema: str | None) -> str | None:
    """The column that aliases SQLite's rowid (a lone INTEGER PRIMARY KEY), if any."""
    pk = list(table.primary_key.columns)
    if len(pk) != 1:
        return None
    master = f"{conn.dialect.identifier_preparer.quote_identifier(schema)}.sqlite_master" \
        if schema else "sqlite_master"
    sql = conn.execute(sa.text(f"SELECT sql FROM {master} WHERE type = 'table' AND name = :n"),
                       {"n": table.name}).scalar() or ""
    if re.search(r"\bWITHOUT\s+ROWID\b", sql, re.I):
        return None
    declared = {r[1]: (r[2] or "") for r in _sqlite_table_info(conn, table.name, schema)}
    return pk[0].name if declared.get(pk[0].name, "").strip().upper() == "INTEGER" else None


def autoincrement_columns(conn: sa.Connection, table: sa.Table, schema: str | None) -> set[str]:
    """Columns the database numbers itself: identity, serial, AUTO_INCREMENT, SQLite rowid."""
    found = set()
    for column in table.columns:
        default = column.server_default
        serial = isinstance(default, sa.DefaultClause) and "nextval(" in str(
            getattr(default.arg, "text", default.arg))
        if column.autoincrement is True or column.identity is not None or serial:
            found.add(column.name)
    if conn.dialect.name == "sqlite":
        alias = _sqlite_rowid_alias(conn, table, schema)
        if alias:
            found.add(alias)
    return found
