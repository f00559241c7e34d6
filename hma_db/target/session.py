"""The load's transaction on each database, and every foreign key proven before it commits.

Rows go in at bulk speed and the foreign keys are proven once, set-based, before ``COMMIT``;
any orphan rolls the whole write back:

- PostgreSQL: the foreign keys of the tables this write creates are added after their rows, in
  the same transaction (:func:`hma_db.target.ddl.create_tables` returns them with the deferred
  indexes); ``ALTER TABLE ... ADD FOREIGN KEY`` validates all rows in one join. Existing tables
  keep their constraints: ``SET CONSTRAINTS ALL IMMEDIATE`` checks their rows as each ``COPY``
  ends (also a ``DEFERRABLE`` key's). ``disable_triggers`` disables the tables' own triggers by
  name (``ALTER TABLE ... DISABLE TRIGGER``), not the internal ones that check foreign keys, and
  enables them before ``COMMIT``.
- MariaDB: ``foreign_key_checks`` is 0 for the load, and one anti-join per foreign key of the
  written tables (:meth:`Session.prove_foreign_keys`) finds any row whose parent is missing,
  since MariaDB does not look back at rows loaded while the checks were off.
- SQLite: ``PRAGMA foreign_keys`` is on and ``defer_foreign_keys`` too, for the whole
  transaction; ``PRAGMA foreign_key_check`` on each written table names any orphan before the
  ``COMMIT`` (which SQLite would refuse anyway).

This is what lets a cycle of NOT NULL foreign keys load: no row needs its parent to be in first.

A SQLite file that does not exist yet is written under a temporary name in the same directory
(``.<name>.hma-tmp-<pid>``) and renamed into place after the ``COMMIT`` (:func:`open_target`):
a failed or killed write leaves no file behind (the next write into the path, or ``hma-db
clean``, removes the temporary files of a process that is gone). :func:`pause_point` stops a
write at a named stage, for the tests that kill it there.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from hma_db.engines import Source, engine_for, to_url
from hma_db.errors import WriteError

log = logging.getLogger(__name__)
_ENABLE = {"O": "ENABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}


class Session:
    """The connection settings of one write, set on entry and restored on exit."""

    def __init__(self, conn: sa.Connection, dialect: str):
        self.conn, self.dialect = conn, dialect
        self.saved: tuple = ()
        self.triggers: list[tuple[str, str, str]] = []  # (table, trigger, pg_trigger.tgenabled)
        self.shown: dict[str, str] = {}

    def begin(self) -> sa.RootTransaction:
        conn = self.conn
        if self.dialect == "sqlite":
            raw = conn.connection.driver_connection
            self.saved = (raw.isolation_level,
                          conn.exec_driver_sql("PRAGMA foreign_keys").scalar())
            conn.rollback()
            raw.isolation_level = None  # we issue BEGIN ourselves, so DDL is transactional too
            # outside any transaction: inside one, SQLite ignores this pragma
            conn.exec_driver_sql("PRAGMA foreign_keys = ON")
            conn.rollback()
        elif self.dialect == "mysql":
            self.saved = tuple(conn.exec_driver_sql(
                "SELECT @@SESSION.foreign_key_checks, @@SESSION.sql_mode").one())
            conn.rollback()
        trans = conn.begin()
        if self.dialect == "sqlite":
            conn.exec_driver_sql("BEGIN")
            # Until COMMIT: tables that reference each other can be emptied and loaded in any order.
            conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        return trans

    def start_load(self, at_commit: bool) -> None:
        """Called before the first row. ``at_commit``: the foreign keys are proven by
        :meth:`prove_foreign_keys` after the rows (False only for existing PostgreSQL tables,
        whose rows the server checks as each statement ends)."""
        if self.dialect == "postgresql" and not at_commit:
            self.conn.exec_driver_sql("SET CONSTRAINTS ALL IMMEDIATE")
        elif self.dialect == "mysql":
            self.conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
            # A key of 0 (a kept table's, an appended one's) is a value, not "the next number".
            self.conn.exec_driver_sql(
                "SET SESSION sql_mode = CONCAT_WS(',', @@SESSION.sql_mode, 'NO_AUTO_VALUE_ON_ZERO')")

    def prove_foreign_keys(self, tables: list[sa.Table], shown: dict[str, str]) -> None:
        """Raise :class:`WriteError` naming the first foreign key of ``tables`` that a row
        breaks (MariaDB and SQLite; PostgreSQL proved them as it added them). ``shown`` maps a
        table loaded under a staging name to the name it is shown by."""
        self.shown = shown
        if self.dialect == "sqlite":
            self._sqlite_check(tables)
        elif self.dialect == "mysql":
            for table in tables:
                for fk in sorted(table.foreign_key_constraints, key=lambda c: c.column_keys):
                    self._mysql_check(table, fk)

    def _name(self, table: sa.Table) -> str:
        return self.shown.get(table.name, table.name)

    def _sqlite_check(self, tables: list[sa.Table]) -> None:
        quote = self.conn.dialect.identifier_preparer.quote
        for table in tables:
            rows = self.conn.exec_driver_sql(
                f"PRAGMA foreign_key_check({quote(table.name)})").fetchall()
            if rows:
                parents = ", ".join(sorted({row[2] for row in rows}))
                raise WriteError(f"Writing table '{self._name(table)}' failed at commit: {len(rows)} "
                                 f"row(s) reference rows missing from {parents} (FOREIGN KEY); "
                                 "the target was left as it was.")

    def _mysql_check(self, table: sa.Table, fk: sa.ForeignKeyConstraint) -> None:
        child, parent = table.alias("c"), fk.referred_table.alias("p")
        pairs = [(child.c[e.parent.name], parent.c[e.column.name]) for e in fk.elements]
        orphans = sa.select(*[c for c, _ in pairs]).select_from(
            child.outerjoin(parent, sa.and_(*[c == p for c, p in pairs]))).where(
            *[c.is_not(None) for c, _ in pairs], pairs[0][1].is_(None))
        count = self.conn.execute(sa.select(sa.func.count()).select_from(orphans.subquery()))
        found = count.scalar()
        if found:
            example = self.conn.execute(orphans.limit(1)).first()
            raise WriteError(
                f"Writing table '{self._name(table)}' failed at commit: {found} row(s) have a "
                f"foreign key ({', '.join(c.name for c, _ in pairs)}) matching no row of "
                f"'{self._name(fk.referred_table)}' ({', '.join(p.name for _, p in pairs)}), such as "
                f"{tuple(example)}; the target was left as it was.")

    def commit(self, trans: sa.RootTransaction) -> None:
        self.enable_triggers()
        if self.dialect == "sqlite":
            self._sqlite_commit()
        trans.commit()

    def _sqlite_commit(self) -> None:
        """A failed COMMIT (a row of a table this write did not load lost its parent) keeps the
        transaction open: ask SQLite which rows miss their parent before the caller rolls back."""
        try:
            self.conn.exec_driver_sql("COMMIT")
        except sa.exc.IntegrityError as exc:
            rows = self.conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            pairs = ", ".join(sorted({f"{row[0]} -> {row[2]}" for row in rows}))
            raise WriteError(f"Writing the target failed at COMMIT: {len(rows)} row(s) reference "
                             f"rows missing from their parent ({pairs}; FOREIGN KEY); the target "
                             "was left as it was.") from exc

    def end(self) -> None:
        """Restore the connection's settings (the transaction is over by now)."""
        try:
            if self.dialect == "sqlite":
                self.conn.exec_driver_sql(f"PRAGMA foreign_keys = {int(self.saved[1])}")
                self.conn.rollback()
                self.conn.connection.driver_connection.isolation_level = self.saved[0]
            elif self.dialect == "mysql":
                self.conn.exec_driver_sql(
                    f"SET SESSION foreign_key_checks = {int(self.saved[0])}")
                self.conn.execute(sa.text("SET SESSION sql_mode = :mode"),
                                  {"mode": self.saved[1]})
                self.conn.rollback()
        except Exception:  # noqa: BLE001 - the connection may be gone; nothing left to restore
            self.conn.invalidate()

    # ------------------------------------------------------------------ triggers (PostgreSQL)
    def disable_triggers(self, tables: list[sa.Table]) -> None:
        """Disable the enabled user triggers of ``tables`` for this transaction (foreign key
        checks are internal triggers and stay on); needs each table's owner."""
        conn = self.conn
        for table in tables:
            table_sql = conn.dialect.identifier_preparer.format_table(table)
            found = conn.execute(sa.text(
                "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) "
                "AND NOT tgisinternal AND tgenabled <> 'D' ORDER BY tgname"), {"t": table_sql})
            for name, state in found:
                quoted = conn.dialect.identifier_preparer.quote(name)
                try:
                    conn.exec_driver_sql(f"ALTER TABLE {table_sql} DISABLE TRIGGER {quoted}")
                except sa.exc.DBAPIError as exc:
                    raise WriteError(
                        f"disable_triggers=True: trigger '{name}' of table '{table.name}' can "
                        f"only be disabled by the table's owner or a superuser: "
                        f"{str(exc.orig).strip().splitlines()[0]}") from exc
                self.triggers.append((table_sql, quoted, state))
        if self.triggers:
            log.info("write: %d trigger(s) disabled for the load", len(self.triggers))

    def enable_triggers(self) -> None:
        for table_sql, trigger, state in self.triggers:
            self.conn.exec_driver_sql(f"ALTER TABLE {table_sql} {_ENABLE[state]} TRIGGER {trigger}")
        self.triggers = []


# ------------------------------------------------------------------ SQLite: a new file
TEMP_MARK = ".hma-tmp-"
_SIDE_FILES = ("", "-journal", "-wal", "-shm")


def sqlite_file(target: Source) -> Path | None:
    """The path of a SQLite target given as a plain file (not in memory, not a URI), else None."""
    url = target.url if isinstance(target, sa.Engine) else to_url(
        target, error=WriteError, must_exist=False)
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") \
            or database.startswith("file:") or url.query.get("mode"):
        return None
    return Path(database)


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill there terminates the process: keep its files instead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return False
    return True


def remove_stale_files(path: Path) -> list[str]:
    """Remove the temporary files (and their journals) that a write into ``path`` left when
    its process was killed; one line per file removed. A file whose process is still running
    (the same process id on this machine) is left alone."""
    pattern = re.compile(re.escape(f".{path.name}{TEMP_MARK}") + r"(\d+)(-journal|-wal|-shm)?")
    lines = []
    for found in sorted(path.parent.glob(f".{path.name}{TEMP_MARK}*")) \
            if path.parent.is_dir() else ():
        match = pattern.fullmatch(found.name)
        if match is None or _alive(int(match.group(1))):
            continue
        found.unlink(missing_ok=True)
        lines.append(f"removed {found}, left by the interrupted write of process "
                     f"{match.group(1)}")
        log.warning("write: %s", lines[-1])
    return lines


def _remove(temp: Path) -> None:
    for suffix in _SIDE_FILES:
        Path(f"{temp}{suffix}").unlink(missing_ok=True)


@contextmanager
def open_target(target: Source) -> Iterator[sa.Engine]:
    """The engine to write ``target`` through (:func:`hma_db.engines.engine_for`), except for
    a SQLite file given by URL or path that does not exist yet: the engine then writes a
    temporary file next to it, renamed into place (``os.replace``) once the body is done, and
    removed with its journal when the body fails. An Engine given by the caller is used as it
    is (it may carry its own connection settings), so a new file it names is written in place.
    Either way, the leftovers of killed writes into that file go first."""
    path = sqlite_file(target)
    if path is not None:
        remove_stale_files(path)
    if path is None or path.exists() or isinstance(target, sa.Engine):
        with engine_for(target, error=WriteError, must_exist=False) as engine:
            yield engine
        return
    url = to_url(target, error=WriteError, must_exist=False)
    temp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")
    _remove(temp)
    try:
        with engine_for(url.set(database=str(temp)), error=WriteError,
                        must_exist=False) as engine:
            yield engine
        os.replace(temp, path)  # the engine is disposed: no connection holds the file
    except BaseException:
        _remove(temp)
        raise
    log.info("write: created %s", path)


# ------------------------------------------------------------------ tests: kill points
PAUSE_STAGES = ("after_ddl", "mid_copy", "before_commit")
PAUSE_SECONDS = 60  # longer than a test takes to see the line and kill the process


def pause_point(stage: str) -> None:
    """Test only: when ``HMA_DB_TEST_PAUSE`` names ``stage`` (one of :data:`PAUSE_STAGES`;
    ``worker_chunk`` / ``worker_staged``: a chunk's task on a Dask worker before it samples /
    after it staged its rows, :mod:`hma_db.cluster`; ``after_move``: staged rows moved, not
    committed),
    write ``<stage> <pid>`` to the file ``HMA_DB_TEST_PAUSE_FILE`` (else to standard error)
    and sleep, so that a test can kill the write right there. Unset, it costs one lookup."""
    if os.environ.get("HMA_DB_TEST_PAUSE") != stage:
        return
    line = f"{stage} {os.getpid()}\n"
    where = os.environ.get("HMA_DB_TEST_PAUSE_FILE")
    if where:
        with open(where, "a", encoding="utf-8") as file:
            file.write(line)
    else:
        sys.stderr.write(line)
        sys.stderr.flush()
    time.sleep(PAUSE_SECONDS)
