"""Refusals that come before any work on a target: a schema on SQLite, an unreachable target,
a target that is the source database itself (whatever URL reached it), and existing tables
whose triggers would fire for every loaded row; and what goes before any work on MariaDB, where
DDL commits at once: the load's lock on the database and the run marker that lets the next run
(or :func:`clean_target`) remove what a killed run created."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import uuid
from pathlib import Path

import sqlalchemy as sa

from hma_db.engines import Source, connect, engine_for, safe_url
from hma_db.errors import WriteError
from hma_db.target.ddl import dialect_family
from hma_db.target.session import remove_stale_files, sqlite_file
from hma_db.target.staging import drop_dead_staging

log = logging.getLogger(__name__)


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


def firing_triggers(conn: sa.Connection, tables: list[str], schema: str | None,
                    if_exists: str) -> list[str]:
    """One line per table of ``tables`` that a load with ``if_exists`` would fill with its
    enabled triggers firing for every row: ``truncate`` and ``append`` keep the table, and so
    does a MariaDB ``replace`` of an unchanged table (emptied, not dropped)."""
    family = "mysql" if conn.dialect.name in ("mysql", "mariadb") else conn.dialect.name
    if if_exists == "fail" or (if_exists == "replace" and family != "mysql"):
        return []
    return [f"Table '{table}' of the target has trigger(s) {', '.join(names)} that would fire "
            f"for every loaded row; pass fire_triggers=True (--fire-triggers) to load with them"
            + (", or disable_triggers=True to switch them off for the load"
               if family == "postgresql" else "")
            + ", or if_exists='replace'."
            for table, names in sorted(enabled_triggers(conn, tables, schema).items())]


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
        return firing_triggers(conn, tables, schema, if_exists)


@contextlib.contextmanager
def mysql_checks_off(conn: sa.Connection):
    """MariaDB checks a foreign key per row, even within one DELETE or DROP: tables that refer
    to each other can only be emptied or dropped with the checks off. Never around a load."""
    before = conn.exec_driver_sql("SELECT @@SESSION.foreign_key_checks").scalar()
    conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"SET SESSION foreign_key_checks = {int(before)}")

# ------------------------------------------------------------------ MariaDB: the run marker
MARKER = "_hma_db_run"
# A killed client's server session, and so its lock, ends once the server reads the closed
# socket: 3 to 20 ms after the kill on MariaDB 10.11 over loopback (20 kills, SIGKILL and
# SIGTERM). A run (or a clean) right after a kill waits up to this long for the lock before it
# says another load is running.
LOCK_WAIT_SECONDS = 2
# Where a recorded object would be found: (information_schema table, its schema, its name).
_FOUND_IN = {"TABLE": ("TABLES", "TABLE_SCHEMA", "TABLE_NAME"),
             "VIEW": ("TABLES", "TABLE_SCHEMA", "TABLE_NAME"),
             "SEQUENCE": ("TABLES", "TABLE_SCHEMA", "TABLE_NAME"),
             "PROCEDURE": ("ROUTINES", "ROUTINE_SCHEMA", "ROUTINE_NAME"),
             "FUNCTION": ("ROUTINES", "ROUTINE_SCHEMA", "ROUTINE_NAME"),
             "TRIGGER": ("TRIGGERS", "TRIGGER_SCHEMA", "TRIGGER_NAME"),
             "EVENT": ("EVENTS", "EVENT_SCHEMA", "EVENT_NAME")}


def lock_name(database: str) -> str:
    """The ``GET_LOCK`` name a load into ``database`` holds (MySQL takes 64 characters)."""
    name = f"hma_db:{database}"
    return name if len(name) <= 64 else f"hma_db:{hashlib.sha256(database.encode()).hexdigest()}"


class RunMarker:
    """MariaDB, where each DDL statement commits at once: what one run creates, listed in the
    table ``_hma_db_run`` of the target database, so that a run killed half-way can be undone
    by the next run into that database or by ``hma-db clean``.

    - The run holds ``GET_LOCK('hma_db:<database>')`` on the marker's own connection from
      before its first statement to its end. :meth:`open` takes it, or refuses (another load is
      running into the database: its objects are never dropped by another run), then drops what
      the marker lists (a killed run's leftovers) and the marker.
    - A table, staging table, view or routine is recorded just before it is created, and only
      when nothing of its name exists, so the list never names what the run did not make (one
      recorded but never made is dropped with ``IF EXISTS``: nothing). A database is recorded
      just after it is created: the marker lives in it.
    - The rows are autocommitted on the marker's connection. The load's own transaction deletes
      them just before its ``COMMIT`` (:meth:`forget`), so they go exactly when the loaded rows
      are committed; a staging table is marked ``swap`` instead, and a run killed before the
      swap is finished by the next one.
    """

    def __init__(self, engine: sa.Engine, schema: str | None):
        self.engine, self.schema = engine, schema
        self.run = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.conn: sa.Connection | None = None
        self.database: str | None = None
        self.lock = ""
        self.made = False  # the marker table exists

    def open(self) -> list[str]:
        """Take the lock (or raise :class:`WriteError`), then remove what killed runs left:
        one line per object removed."""
        self.conn = connect(self.engine, error=WriteError).execution_options(
            isolation_level="AUTOCOMMIT")
        self.database = self.schema or self.conn.exec_driver_sql("SELECT DATABASE()").scalar()
        if self.database is None:  # no database to write into: the load will say so
            self.close()
            return []
        name = lock_name(self.database)
        if self.conn.exec_driver_sql("SELECT GET_LOCK(%s, %s)",
                                     (name, LOCK_WAIT_SECONDS)).scalar() != 1:
            self.close()
            raise WriteError(f"Another load is running into the MariaDB database "
                             f"'{self.database}' (it holds the lock '{name}'); run again once it "
                             "is done. Nothing was changed.")
        self.lock = name
        return self._drop_listed(self.conn, None)

    def _table(self) -> str:
        quote = self.engine.dialect.identifier_preparer.quote
        return f"{quote(self.database)}.{quote(MARKER)}"

    def record(self, conn: sa.Connection, kind: str, names: list[str],
               replaces: list[str | None] | None = None) -> None:
        """Record ``names`` of ``kind`` (``table``, ``staging table``, ``view``...) that the
        run is about to create and that do not exist yet (``database``: just created)."""
        if self.conn is None or self.database is None:
            return
        rows = [(self.run, kind, name, (replaces or [None] * len(names))[i])
                for i, name in enumerate(names)
                if kind == "database" or not self._exists(conn, kind, name)]
        if not rows:
            return
        if not self.made:
            self.conn.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {self._table()} (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                "run_id VARCHAR(120) NOT NULL, kind VARCHAR(16) NOT NULL, name VARCHAR(255) NOT "
                "NULL, replaces VARCHAR(255) NULL, created_at DATETIME(6) NOT NULL DEFAULT "
                "CURRENT_TIMESTAMP(6)) ENGINE=InnoDB")
            self.made = True
        self.conn.exec_driver_sql(f"INSERT INTO {self._table()} (run_id, kind, name, replaces) "
                                  "VALUES (%s, %s, %s, %s)", rows)

    def _exists(self, conn: sa.Connection, kind: str, name: str) -> bool:
        where = _FOUND_IN.get("TABLE" if kind.endswith("table") else kind.upper())
        if where is None:
            return False
        table, schema, column = where
        return conn.exec_driver_sql(
            f"SELECT COUNT(*) FROM information_schema.{table} WHERE {schema} = %s AND "
            f"{column} = %s", (self.database, name)).scalar() > 0

    def forget(self, conn: sa.Connection) -> None:
        """In the load's transaction, before its ``COMMIT``: the run's rows go with it."""
        if not self.made:
            return
        conn.exec_driver_sql(f"DELETE FROM {self._table()} WHERE run_id = %s AND kind <> "
                             "'staging table'", (self.run,))
        conn.exec_driver_sql(f"UPDATE {self._table()} SET kind = 'swap' WHERE run_id = %s",
                             (self.run,))

    def finish(self) -> None:
        """After the commit (and the swap): remove the run's rows, and the marker if empty.
        The rows are committed: a failure here only leaves a marker the next run removes."""
        try:
            if self.made and self.conn is not None:
                self.conn.exec_driver_sql(f"DELETE FROM {self._table()} WHERE run_id = %s",
                                          (self.run,))
                self._drop_if_empty(self.conn)
        except sa.exc.DBAPIError as exc:
            log.warning("write: the rows are committed, but removing %s failed (%s); the next "
                        "run into the database removes it", MARKER,
                        str(exc.orig).strip().splitlines()[0])
        finally:
            self.close()

    def undo(self) -> None:
        """After a failure: drop what the run recorded, on a connection of its own (the
        marker's may be the one that was lost)."""
        try:
            if self.made:
                with connect(self.engine, error=WriteError) as conn:
                    self._drop_listed(conn.execution_options(isolation_level="AUTOCOMMIT"),
                                      self.run)
        finally:
            self.close()

    def close(self) -> None:
        """Release the lock (a pooled connection would keep it) and the connection."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            if self.lock:
                conn.exec_driver_sql("DO RELEASE_LOCK(%s)", (self.lock,))
            conn.close()
        except Exception:  # noqa: BLE001 - a lost session has released its lock already
            conn.invalidate()

    def _drop_if_empty(self, conn: sa.Connection) -> None:
        if conn.exec_driver_sql(f"SELECT COUNT(*) FROM {self._table()}").scalar() == 0:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self._table()}")

    def _drop_listed(self, conn: sa.Connection, run: str | None) -> list[str]:
        """Drop, newest first, what the marker lists (of ``run``, or of every run) and their
        rows, then the marker when it is empty; one line per object removed."""
        if not self._exists(conn, "table", MARKER):
            return []
        where, params = ("WHERE run_id = %s", (run,)) if run else ("", ())
        rows = conn.exec_driver_sql(f"SELECT kind, name, replaces, run_id FROM {self._table()} "
                                    f"{where} ORDER BY id DESC", params).all()
        lines, gone = [], False
        with mysql_checks_off(conn):
            for kind, name, replaces, run_id in rows:
                done = self._drop_one(conn, kind, name, replaces)
                gone = gone or (kind == "database" and name == self.database)
                if done:
                    lines.append(f"{done} (left by the interrupted run {run_id})" if run is None
                                 else done)
                    (log.warning if run is None else log.info)("write: %s", lines[-1])
        if not gone:
            conn.exec_driver_sql(f"DELETE FROM {self._table()} {where}", params)
            self._drop_if_empty(conn)
        return lines

    def _drop_one(self, conn: sa.Connection, kind: str, name: str,
                  replaces: str | None) -> str | None:
        """Undo one recorded object; what was done, or None when there was nothing to do."""
        quote = conn.dialect.identifier_preparer.quote
        prefix = f"{quote(self.database)}."
        if kind == "database":
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(name)}")
        elif kind == "swap":  # the rows are committed: finish the swap the run began
            if not self._exists(conn, "table", name):
                return None
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prefix}{quote(replaces)}")
            conn.exec_driver_sql(f"RENAME TABLE {prefix}{quote(name)} TO "
                                 f"{prefix}{quote(replaces)}")
            return f"replaced table {replaces} with the committed rows of {name}"
        elif kind.endswith("table") or kind.upper() in _FOUND_IN:
            what = "TABLE" if kind.endswith("table") else kind.upper()
            conn.exec_driver_sql(f"DROP {what} IF EXISTS {prefix}{quote(name)}")
        else:
            log.warning("write: %s %s is listed in %s but not known; left as it is", kind, name,
                        MARKER)
            return None
        if conn.exec_driver_sql("SELECT @@warning_count").scalar():
            return None  # recorded, but killed before it was created
        return f"dropped {kind} {name}"


def clean_target(target: Source, schema: str | None = None) -> list[str]:
    """Remove what interrupted writes left in ``target``; one line per thing removed.

    MariaDB: with the database's load lock (refused when a load is running into it), drop what
    the run marker ``_hma_db_run`` lists and the marker. SQLite: remove the temporary files of
    writes into a new file whose process is gone, and roll back a killed write's transaction
    (its hot journal). PostgreSQL: the server rolls a killed load back. PostgreSQL and MariaDB:
    drop the staging tables (``_hma_stage_<run>_<n>``) of a killed cluster run, and only
    those whose run is gone (:func:`hma_db.target.staging.drop_dead_staging`). Every
    write into a target does the same first; this is that step alone (``hma-db clean``).

    Example:
        >>> clean_target("mysql+pymysql://app@staging/shop")
        ['dropped table Track (left by the interrupted run ci-7:4121:8f3a0c2d)', ...]
    """
    with engine_for(target, error=WriteError, must_exist=False) as engine:
        dialect = dialect_family(engine.dialect.name)
        refuse_sqlite_schema(dialect, schema)
        if dialect == "mysql":
            marker = RunMarker(engine, schema)
            try:
                return marker.open() + _dead_staging(engine, dialect, schema)
            finally:
                marker.close()
        if dialect == "postgresql":
            return _dead_staging(engine, dialect, schema)
        path = sqlite_file(engine) if dialect == "sqlite" else None
        if path is None:
            return []
        return remove_stale_files(path) + _roll_back_journal(engine, path)


def _dead_staging(engine: sa.Engine, dialect: str, schema: str | None) -> list[str]:
    with connect(engine, error=WriteError) as conn:
        return drop_dead_staging(conn.execution_options(isolation_level="AUTOCOMMIT"), dialect,
                                 schema)


def _roll_back_journal(engine: sa.Engine, path: Path) -> list[str]:
    """A killed write's journal: SQLite rolls a hot one back when it next locks the file. One
    whose header was never written (nothing of the transaction reached the file) is not hot and
    stays: removed here, under an exclusive lock, so it is not a live write's journal."""
    journal = Path(f"{path}-journal")
    if not (path.is_file() and journal.exists()):
        return []
    with connect(engine, error=WriteError) as conn:
        raw = conn.connection.driver_connection
        before, raw.isolation_level = raw.isolation_level, None
        try:
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
        except sa.exc.OperationalError as exc:
            raise WriteError(f"Another write is running into {path} (the file is locked); "
                             "run again once it is done.") from exc
        try:
            line = f"rolled back the interrupted transaction in {path} (its journal)"
            if journal.exists():
                journal.unlink()
                line = f"removed the journal of an interrupted write into {path} (none of its " \
                       "changes had reached the file)"
        finally:
            conn.exec_driver_sql("ROLLBACK")
            raw.isolation_level = before
    log.warning("write: %s", line)
    return [line]


# ------------------------------------------------------------------ PostgreSQL: one load at a time
# One lock per database and schema ('public' when none is named), whoever names them how.
_PG_LOAD_LOCK = ("SELECT pg_try_advisory_xact_lock(hashtextextended('hma_db:' || "
                 "current_database() || ':' || coalesce(CAST(:schema AS text), current_schema()), 0))")


def _busy(engine: sa.Engine, schema: str | None) -> str:
    where = safe_url(engine) + (f" (schema '{schema}')" if schema else "")
    return f"Another hma_db run is loading {where}; wait for it to finish and run again."


def hold_target_lock(conn: sa.Connection, dialect: str, schema: str | None) -> None:
    """Take the target's load lock for the transaction under way on ``conn``, or refuse in one
    line: two loads into one empty schema would both create its tables, and the second fail
    late on a raw duplicate key of the catalog (``pg_type_typname_nsp_index``).

    PostgreSQL: a transaction-level advisory lock on a hash of ``'hma_db:'``, the database and
    the schema, so the COMMIT or ROLLBACK (or the end of a killed client's session) releases
    it. Other databases lock elsewhere (MariaDB: the run marker's ``GET_LOCK``)."""
    if dialect != "postgresql":
        return
    if not conn.execute(sa.text(_PG_LOAD_LOCK), {"schema": schema}).scalar():
        raise WriteError(_busy(conn.engine, schema) + " Nothing was written.")


def target_busy(engine: sa.Engine, schema: str | None) -> str | None:
    """The refusal line when another run is loading the target now (PostgreSQL: its load lock
    is held), found before any work; None when it is free. A later load can still start in
    between: :func:`hold_target_lock` is what keeps two loads apart."""
    if engine.dialect.name != "postgresql":
        return None
    with connect(engine, error=WriteError) as conn:
        try:
            free = conn.execute(sa.text(_PG_LOAD_LOCK), {"schema": schema}).scalar()
        finally:
            conn.rollback()  # releases the lock just taken
    return None if free else _busy(engine, schema)
