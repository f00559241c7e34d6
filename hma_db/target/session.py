"""The load's transaction on each database, and foreign key checks that stay on during it.

Every foreign key of the target is checked by the server while the rows go in, never after:

- PostgreSQL: the constraints exist before the first ``COPY`` (:func:`hma_db.target.ddl.create_tables`);
  the server checks a ``COPY``'s rows as that statement ends (one per table and chunk), before
  the next table is loaded. ``SET CONSTRAINTS ALL IMMEDIATE`` does the same for a foreign key
  the schema declares ``DEFERRABLE`` (kept so) instead of waiting for ``COMMIT``.
  ``disable_triggers`` disables the tables' own triggers by name (``ALTER TABLE ... DISABLE
  TRIGGER``), not the internal ones that check foreign keys, and enables them before ``COMMIT``.
- MariaDB: ``foreign_key_checks`` is set to 1 for the load (it is off only while tables are
  emptied or dropped, see :mod:`hma_db.target.tables`) and restored afterwards.
- SQLite: ``PRAGMA foreign_keys`` is on, and ``defer_foreign_keys`` only while existing tables
  are dropped or emptied (tables in a cycle cannot go one by one otherwise); switching it off,
  before the first row, forgets what it deferred, so :mod:`hma_db.target.tables` checks the
  tables left behind first. Then each ``INSERT`` is checked as it runs. A foreign key the
  target's own schema declares ``DEFERRABLE INITIALLY DEFERRED`` is checked at ``COMMIT``
  (SQLite cannot make it immediate); a failure there names the tables.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from hma_db.errors import WriteError

log = logging.getLogger(__name__)
_ENABLE = {"O": "ENABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}


class Session:
    """The connection settings of one write, set on entry and restored on exit."""

    def __init__(self, conn: sa.Connection, dialect: str):
        self.conn, self.dialect = conn, dialect
        self.saved: tuple = ()
        self.triggers: list[tuple[str, str, str]] = []  # (table, trigger, pg_trigger.tgenabled)

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
            self.saved = (conn.exec_driver_sql("SELECT @@SESSION.foreign_key_checks").scalar(),)
            conn.rollback()
        trans = conn.begin()
        if self.dialect == "sqlite":
            conn.exec_driver_sql("BEGIN")
            # Until the first row: lets existing tables that reference each other be emptied.
            conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        return trans

    def check_rows_as_loaded(self) -> None:
        """Called before the first row: from here on, each statement's rows are checked."""
        statement = {"postgresql": "SET CONSTRAINTS ALL IMMEDIATE",
                     "mysql": "SET SESSION foreign_key_checks = 1",
                     "sqlite": "PRAGMA defer_foreign_keys = OFF"}[self.dialect]
        self.conn.exec_driver_sql(statement)

    def commit(self, trans: sa.RootTransaction) -> None:
        self.enable_triggers()
        if self.dialect == "sqlite":
            self._sqlite_commit()
        trans.commit()

    def _sqlite_commit(self) -> None:
        """A failed COMMIT (a DEFERRABLE INITIALLY DEFERRED foreign key) keeps the transaction
        open: ask SQLite which rows miss their parent before the caller rolls back."""
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
