"""The source's own DDL for the chosen tables, captured at reflect time for same-dialect clones.

A clone into the dialect of its source can build the target from the source's own statements
instead of translating SQLAlchemy tables: partitioned tables, domains, ENUM and SET types,
defaults, generated columns, views and triggers survive as they are. :func:`capture` reads
them over the reflecting connection (``SHOW CREATE ...`` on MariaDB, ``sqlite_master`` on SQLite)
or with ``pg_dump --schema-only`` (:mod:`hma_db.source.dump_pg`), keeps what the chosen tables
use, and returns a :class:`SchemaDump`: statements to run before the rows (``pre_data``) and
after them (``post_data``: indexes, constraints, triggers).

The dump lives in ``Metadata.sql_metadata.info`` (:func:`schema_dump`) and nowhere else: it is not
written to model files, and a model file's metadata has none (DDL text from a file never runs).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import sqlalchemy as sa

from hma_db.source.dump_pg import capture_postgresql

logger = logging.getLogger(__name__)

_INFO_KEY = "hma_db.schema_dump"


@dataclass(frozen=True)
class DumpStatement:
    """One DDL statement of the source.

    ``kind`` is what it creates (``TABLE``, ``TYPE``, ``VIEW``, ``TRIGGER``...), ``name`` the
    object's bare name, ``tables`` the chosen tables it needs (empty for types, domains and
    functions), ``sql`` the statement with the source's schema qualifiers as the source wrote them.
    """

    kind: str
    name: str
    tables: frozenset[str]
    sql: str


@dataclass(frozen=True)
class SchemaDump:
    """The DDL of the chosen tables, in the order the source's own tools give it."""

    dialect: str  # 'postgresql', 'mysql' or 'sqlite'
    schemas: tuple[str, ...]  # the source schemas the statements qualify names with
    pre_data: tuple[DumpStatement, ...]
    post_data: tuple[DumpStatement, ...]

    @property
    def tables(self) -> frozenset[str]:
        """The chosen tables the dump creates."""
        return frozenset().union(*(s.tables for s in self.pre_data if s.kind == "TABLE"))


def schema_dump(metadata) -> SchemaDump | None:
    """The dump captured when ``metadata`` was reflected, or None (not reflected, loaded from a
    model file, or the source's tools were not available)."""
    sql_metadata = getattr(metadata, "sql_metadata", None)
    return None if sql_metadata is None else sql_metadata.info.get(_INFO_KEY)


def attach(sql_metadata: sa.MetaData, dump: SchemaDump | None) -> None:
    """Keep ``dump`` with the reflected tables (a metadata copy shares them)."""
    if dump is not None:
        sql_metadata.info[_INFO_KEY] = dump


def capture(conn: sa.Connection, schema: str | None, tables: list[str],
            table_schemas: dict[str, str]) -> SchemaDump | None:
    """The source's DDL for ``tables`` (of ``schema``, or of ``table_schemas[t]``), or None
    when it cannot be had (the reason is logged once)."""
    dialect = "mysql" if conn.dialect.name in ("mysql", "mariadb") else conn.dialect.name
    try:
        if dialect == "postgresql":
            found = capture_postgresql(conn, schema, tables, table_schemas)
            if found is None:
                return None
            schemas, pre, post = found
            return SchemaDump("postgresql", schemas, tuple(DumpStatement(*s) for s in pre),
                              tuple(DumpStatement(*s) for s in post))
        if dialect == "mysql":
            return _capture_mysql(conn, schema, tables, table_schemas)
        if dialect == "sqlite":
            return _capture_sqlite(conn, schema, tables)
    except sa.exc.DBAPIError as exc:
        logger.warning("the source's own DDL could not be read (%s); a same-dialect target is "
                       "created from the translated tables", str(exc.orig).strip().splitlines()[0])
    return None


# ------------------------------------------------------------------------------------- SQLite
_SQL_NAME = re.compile(r'"((?:[^"]|"")+)"|`((?:[^`]|``)+)`|\[([^\]]+)\]|([A-Za-z_][\w$]*)')


def _names_in(sql: str) -> set[str]:
    """Every identifier-like word of ``sql``, unquoted, lowercased (a superset of the tables
    it uses: enough to tell whether it uses a table that is not chosen)."""
    return {next(g for g in m.groups() if g is not None).lower()
            for m in _SQL_NAME.finditer(re.sub(r"'(?:[^']|'')*'", "''", sql))}


def _uses_only(sql: str, own: str, chosen: set[str], every: set[str]) -> bool:
    used = (_names_in(sql) & every) - {own.lower()}
    return used <= chosen


def _outside_references(conn: sa.Connection, sql: str, params: tuple,
                        chosen: set[tuple[str, str]]) -> list[str]:
    """Foreign keys (rows of ``child, parent schema, parent``) to tables that are not read:
    their inline ``REFERENCES`` would make every row of the target fail."""
    return sorted({f"{child} -> {parent}" for child, where, parent
                   in conn.exec_driver_sql(sql, params) if (where, parent) not in chosen})


def _capture_sqlite(conn: sa.Connection, schema: str | None,
                    tables: list[str]) -> SchemaDump | None:
    names = ", ".join("?" * len(tables))
    outside = _outside_references(
        conn, f"SELECT m.name, '', f.\"table\" FROM sqlite_master AS m, "
        f"pragma_foreign_key_list(m.name) AS f WHERE m.type = 'table' AND m.name IN ({names})",
        tuple(tables), {("", t) for t in tables})
    if outside:
        logger.info("foreign keys to tables that are not read (%s): a SQLite target is created "
                    "from the translated tables", ", ".join(outside))
        return None
    master = f'"{schema}".sqlite_master' if schema else "sqlite_master"
    rows = conn.exec_driver_sql(
        f"SELECT type, name, tbl_name, sql FROM {master} WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' ORDER BY rowid").all()
    every = {name.lower() for kind, name, _, _ in rows if kind in ("table", "view")}
    chosen = {t.lower() for t in tables}
    pre, post = [], []
    for kind, name, _, sql in rows:
        if kind == "table" and name in tables:
            pre.append(DumpStatement("TABLE", name, frozenset([name]), sql))
    kept = set(chosen)
    for kind, name, table, sql in rows:  # in creation order: a view over a view comes later
        if kind == "view" and _uses_only(sql, name, kept, every) and _names_in(sql) & kept:
            kept.add(name.lower())
            used = frozenset(t for t in tables if t.lower() in _names_in(sql))
            post.append(DumpStatement("VIEW", name, used, sql))
        elif kind in ("index", "trigger") and table in tables:
            if _uses_only(sql, name, kept, every):
                post.append(DumpStatement(kind.upper(), name, frozenset([table]), sql))
            else:
                logger.info("table %s: %s %s uses a table that is not read; not copied", table,
                            kind, name)
    return SchemaDump("sqlite", (), tuple(pre), tuple(post))


# ------------------------------------------------------------------------------------ MariaDB
_DEFINER = re.compile(r"\s+DEFINER=(?:`(?:[^`]|``)*`|'[^']*'|\S+)@(?:`(?:[^`]|``)*`|'[^']*'|\S+)")
_AUTO_INCREMENT = re.compile(r" AUTO_INCREMENT=\d+")


def _bq(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _capture_mysql(conn: sa.Connection, schema: str | None, tables: list[str],
                   table_schemas: dict[str, str]) -> SchemaDump | None:
    own = schema or conn.exec_driver_sql("SELECT DATABASE()").scalar()
    where = {t: table_schemas.get(t, own) for t in tables}
    outside = _outside_references(
        conn, "SELECT TABLE_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME FROM "
        "information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_NAME IS NOT NULL AND "
        "TABLE_SCHEMA = %s", (own,), {(s, t) for t, s in where.items()})
    outside = [o for o in outside if o.split(" -> ")[0] in where]
    if outside:
        logger.info("foreign keys to tables that are not read (%s): a MariaDB target is created "
                    "from the translated tables", ", ".join(outside))
        return None
    pre = []
    for name in tables:
        row = conn.exec_driver_sql(f"SHOW CREATE TABLE {_bq(where[name])}.{_bq(name)}").one()
        sql = _AUTO_INCREMENT.sub("", row[1])  # the target's counter follows its loaded keys
        pre.append(DumpStatement("TABLE", name, frozenset([name]), sql))
    every = {r[0].lower() for r in conn.exec_driver_sql(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (own,))}
    chosen = {t.lower() for t, s in where.items() if s == own}
    views, kept = _mysql_views(conn, own, chosen, every, tables)
    triggers = _mysql_triggers(conn, own, kept, every, tables)
    routines = _mysql_routines(conn, own, [s.sql for s in views + triggers])
    schemas = tuple(dict.fromkeys([own, *where.values()]))
    return SchemaDump("mysql", schemas, tuple(pre + routines + views), tuple(triggers))


def _mysql_views(conn: sa.Connection, own: str, chosen: set[str], every: set[str],
                 tables: list[str]) -> tuple[list[DumpStatement], set[str]]:
    rows = conn.exec_driver_sql(
        "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS "
        "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME", (own,)).all()
    kept, found, pending = set(chosen), [], list(rows)
    while pending:  # a view over a view is kept once the view under it is
        ready = [(n, d) for n, d in pending if _uses_only(d, n, kept, every)
                 and (_names_in(d) - {own.lower()}) & kept]
        if not ready:
            break
        for name, definition in ready:
            create = conn.exec_driver_sql(f"SHOW CREATE VIEW {_bq(own)}.{_bq(name)}").one()[1]
            used = frozenset(t for t in tables if t.lower() in _names_in(definition))
            found.append(DumpStatement("VIEW", name, used, _DEFINER.sub("", create, count=1)))
            kept.add(name.lower())
            pending.remove((name, definition))
    return found, kept


def _mysql_triggers(conn: sa.Connection, own: str, kept: set[str], every: set[str],
                    tables: list[str]) -> list[DumpStatement]:
    rows = conn.exec_driver_sql(
        "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_STATEMENT FROM information_schema.TRIGGERS "
        "WHERE TRIGGER_SCHEMA = %s ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER", (own,)).all()
    found = []
    for name, table, body in rows:
        if table.lower() not in kept or table not in tables:
            continue
        if not _uses_only(body, name, kept, every):
            logger.info("table %s: trigger %s uses a table that is not read; not copied",
                        table, name)
            continue
        create = conn.exec_driver_sql(f"SHOW CREATE TRIGGER {_bq(own)}.{_bq(name)}").one()[2]
        found.append(DumpStatement("TRIGGER", name, frozenset([table]),
                                   _DEFINER.sub("", create, count=1)))
    return found


def _mysql_routines(conn: sa.Connection, own: str, texts: list[str]) -> list[DumpStatement]:
    """The functions and procedures that kept views and triggers call by name."""
    rows = conn.exec_driver_sql(
        "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
        "WHERE ROUTINE_SCHEMA = %s ORDER BY ROUTINE_NAME", (own,)).all()
    words = set().union(*(_names_in(t) for t in texts)) if texts else set()
    found = []
    for name, kind in rows:
        if name.lower() not in words:
            continue
        create = conn.exec_driver_sql(f"SHOW CREATE {kind} {_bq(own)}.{_bq(name)}").one()[2]
        if create is None:  # the reading user may not see its body
            logger.info("%s %s: its body is not visible to this user; not copied", kind, name)
            continue
        found.append(DumpStatement(kind, name, frozenset(), _DEFINER.sub("", create, count=1)))
    return found
