"""Refusals that come before any work on a target: a schema on SQLite, an unreachable target,
a target that is the source database itself (whatever URL reached it), and existing tables
whose triggers would fire for every loaded row."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from hma_db.engines import connect, safe_url
from hma_db.errors import WriteError


def refuse_sqlite_schema(dialect: str, schema: str | None) -> None:
    """SQLite has no schemas: refuse one (``dialect`` as SQLAlchemy names it)."""
    if schema is not None and dialect == "sqlite":
        raise WriteError(f"SQLite has no schemas; write to another file instead of schema "
                         f"'{schema}'.")


def _probe(conn: sa.Connection, sql: str):
    """The first value of a query, or None when this server or role cannot answer it."""
    try:
        with conn.begin_nested():
            return conn.exec_driver_sql(sql).scalar()
    except sa.exc.DBAPIError:
        return None


def database_identity(conn: sa.Connection, schema: str | None) -> tuple:
    """What makes a database and schema the same one, whatever URL reached it.

    PostgreSQL: the cluster's system identifier (or data directory, or address and port), the
    database and the schema. MariaDB/MySQL: host name and data directory, and the database.
    SQLite: the resolved file path (an in-memory database is never the same as another).
    """
    name = conn.dialect.name
    if name == "postgresql":
        server = (_probe(conn, "SELECT system_identifier::text FROM pg_control_system()")
                  or _probe(conn, "SELECT current_setting('data_directory')")
                  or _probe(conn, "SELECT inet_server_addr()::text || ':' || inet_server_port()"))
        return (name, server, conn.exec_driver_sql("SELECT current_database()").scalar(),
                schema or conn.exec_driver_sql("SELECT current_schema()").scalar())
    if name in ("mysql", "mariadb"):
        server = conn.exec_driver_sql("SELECT CONCAT(@@hostname, ':', @@datadir)").scalar()
        return ("mysql", server, schema or conn.exec_driver_sql("SELECT DATABASE()").scalar())
    if name == "sqlite":
        rows = conn.exec_driver_sql("PRAGMA database_list").fetchall()
        files = {row[1]: row[2] for row in rows}
        path = files.get(schema or "main") or ""
        return (name, os.path.realpath(path) if path else f"memory:{id(conn.engine)}")
    return (name, conn.engine.url.render_as_string(hide_password=True), schema)


def check_target(source_engine: sa.Engine, target_engine: sa.Engine,
                 schema: str | None, target_schema: str | None) -> None:
    """Refuse a schema on a SQLite target (the writer would, but only after the fit), an
    unreachable target, or a target that is the source itself."""
    refuse_sqlite_schema(target_engine.dialect.name, target_schema)
    database = target_engine.url.database or ""
    if target_engine.dialect.name == "sqlite" and database not in ("", ":memory:") \
            and not database.startswith("file:") and not Path(database).exists():
        return  # a file still to be created is not the source; connecting would leave it empty
    with connect(target_engine, error=WriteError) as target_conn, \
            connect(source_engine, error=WriteError) as source_conn:
        if database_identity(target_conn, target_schema) == database_identity(source_conn, schema):
            raise WriteError(
                f"The target {safe_url(target_engine)} (schema {target_schema or 'default'}) is "
                f"the source database itself; refusing to write into the source. Choose another "
                "database or a --target-schema.")


_TRIGGERS = {
    "postgresql": "SELECT c.relname, t.tgname FROM pg_trigger AS t "
                  "JOIN pg_class AS c ON c.oid = t.tgrelid "
                  "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
                  "WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' "
                  "AND n.nspname = COALESCE(:schema, current_schema()) ORDER BY 1, 2",
    "mysql": "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME FROM information_schema.TRIGGERS "
             "WHERE EVENT_OBJECT_SCHEMA = COALESCE(:schema, DATABASE()) ORDER BY 1, 2",
    "sqlite": "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger' ORDER BY 1, 2",
}


def enabled_triggers(conn: sa.Connection, tables: list[str],
                     schema: str | None) -> dict[str, list[str]]:
    """``{table: [trigger, ...]}`` of the enabled user triggers on ``tables`` in the target."""
    family = "mysql" if conn.dialect.name in ("mysql", "mariadb") else conn.dialect.name
    if family not in _TRIGGERS:
        return {}
    params = {} if family == "sqlite" else {"schema": schema}
    found: dict[str, list[str]] = {}
    for table, trigger in conn.execute(sa.text(_TRIGGERS[family]), params):
        if table in tables:
            found.setdefault(table, []).append(trigger)
    return found


def trigger_problems(target_engine: sa.Engine, tables: list[str], schema: str | None,
                     if_exists: str, fire_triggers: bool = False) -> list[str]:
    """One line per existing target table that ``truncate`` or ``append`` (or a MariaDB
    ``replace`` of an unchanged table, which empties it) would load with its triggers firing
    for every row, unless ``fire_triggers`` says the user wants that. Tables this run creates
    get their triggers after the rows, so none fires during the load."""
    if fire_triggers or if_exists == "fail" or (
            if_exists == "replace" and target_engine.dialect.name not in ("mysql", "mariadb")):
        return []
    database = target_engine.url.database or ""
    if target_engine.dialect.name == "sqlite" and database not in ("", ":memory:") \
            and not database.startswith("file:") and not Path(database).exists():
        return []
    with connect(target_engine, error=WriteError) as conn:
        found = enabled_triggers(conn, tables, schema)
    return [f"Table '{table}' of the target has trigger(s) {', '.join(names)} that would fire "
            f"for every loaded row; pass fire_triggers=True (--fire-triggers) to load with them"
            + (", or disable_triggers=True to switch them off for the load"
               if target_engine.dialect.name == "postgresql" else "")
            + ", or if_exists='replace'."
            for table, names in sorted(found.items())]
