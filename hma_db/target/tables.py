"""The target's tables for one write: the schema, the tables that exist already (``if_exists``),
the tables to create, and on MariaDB the staging tables and the clean-up after a failure.

:meth:`TargetTables.prepare` runs in the load's transaction, in an order that keeps it
all-or-nothing on MariaDB, where every DDL statement commits on its own: first what is DDL
(drop, or stage, the tables to replace; create the missing ones), then what is not (empty the
tables to reload, with ``DELETE``), so a failure can still roll the emptying back.
"""

from __future__ import annotations

import contextlib
import logging

import sqlalchemy as sa

from hma_db.errors import SchemaDriftError, WriteError
from hma_db.schema import Metadata
from hma_db.target.ddl import create_tables, drift, target_metadata
from hma_db.target.dump_ddl import create_from_dump, usable_dump
from hma_db.target.guard import RunMarker, mysql_checks_off

log = logging.getLogger(__name__)


class TargetTables:
    """The written tables as the target knows them (``target_md``), and what this run did to
    them: created (``created``, ``created_schema``) or loaded under a staging name (``staged``)."""

    def __init__(self, engine: sa.Engine, dialect: str, metadata: Metadata, tables: list[str],
                 schema: str | None, if_exists: str):
        self.engine, self.dialect, self.metadata = engine, dialect, metadata
        self.tables, self.schema, self.if_exists = tables, schema, if_exists
        self.target_md = target_metadata(metadata, tables, dialect, schema)
        self.created: list[str] = []
        self.created_schema = False
        self.staged: dict[str, str] = {}  # MariaDB replace: table -> name it is loaded under
        self.emptied: list[str] = []  # dropped or emptied, to be loaded again
        self.cleanup: list[str] = []  # MariaDB: drops the views and routines this run created
        # MariaDB: what this run creates, recorded in the target as it goes (the run's lock too)
        self.marker = RunMarker(engine, schema) if dialect == "mysql" else None

    def table(self, name: str) -> sa.Table:
        name = self.staged.get(name, name)
        return self.target_md.tables[f"{self.schema}.{name}" if self.schema else name]

    def prepare(self, conn: sa.Connection) -> tuple[set[str], list]:
        """Make every written table exist, empty where ``if_exists`` says so, with its
        constraints declared; return the tables that existed (and keep their rows) and the
        DDL to run after the load."""
        self._ensure_schema(conn)
        existing = self._existing(conn)
        to_empty = self._settle_existing(conn, existing)
        after_load = self._create(conn, [t for t in self.tables if t not in existing])
        if to_empty:
            self._empty(conn, to_empty)
            self.emptied += to_empty
        if self.dialect == "sqlite" and self.emptied:
            self._sqlite_orphans(conn)
        return existing, after_load

    def _ensure_schema(self, conn: sa.Connection) -> None:
        if self.schema is None:
            return
        found = conn.execute(sa.text("SELECT 1 FROM information_schema.schemata "
                                     "WHERE schema_name = :s"), {"s": self.schema}).first()
        if found is None:
            quoted = conn.dialect.identifier_preparer.quote(self.schema)
            kind = "DATABASE" if self.dialect == "mysql" else "SCHEMA"
            conn.exec_driver_sql(f"CREATE {kind} {quoted}")
            self.created_schema = True
            if self.marker is not None:
                self.marker.record(conn, "database", [self.schema])
            log.info("write: created schema %s", self.schema)

    def _existing(self, conn: sa.Connection) -> set[str]:
        """The written tables whose table (or staging table) exists in the target."""
        found = set(sa.inspect(conn).get_table_names(schema=self.schema))
        return {n for n in self.tables if self.staged.get(n, n) in found}

    def _settle_existing(self, conn: sa.Connection, existing: set[str]) -> list[str]:
        """Refuse, drop or stage the existing tables per ``if_exists``; return those to empty.
        Tables dropped or staged leave ``existing`` (they are created anew)."""
        if not existing:
            return []
        names = [t for t in self.tables if t in existing]
        if self.if_exists == "fail":
            raise WriteError(f"These tables already exist in the target: {', '.join(names)}; "
                             "pass if_exists='replace', 'truncate' or 'append' (--if-exists on the "
                             "command line).")
        if self.if_exists == "replace" and self.dialect != "mysql":
            self._drop_dump_views(conn)
            self._drop(conn, names)
            self.emptied += names
            existing.clear()
            return []
        differences = drift(conn, self.target_md, names, self.schema)
        if self.if_exists == "replace":  # MariaDB: DROP would commit at once
            if not differences:
                return names  # same structure: emptied instead
            self._stage(conn, names)
            existing.clear()
            return []
        if differences:
            raise SchemaDriftError(
                "The existing target tables differ from the source schema; fix them or pass "
                "if_exists='replace' (--if-exists replace):", differences)
        return names if self.if_exists == "truncate" else []

    def _qualified(self, conn: sa.Connection, names: list[str]) -> list[str]:
        return [conn.dialect.identifier_preparer.format_table(self.table(n)) for n in names]

    def _drop(self, conn: sa.Connection, names: list[str]) -> None:
        tables = self._qualified(conn, list(reversed(names)))
        if self.dialect == "sqlite":
            for table in tables:
                conn.exec_driver_sql(f"DROP TABLE {table}")
        else:  # one statement: tables that reference each other go together
            conn.exec_driver_sql(f"DROP TABLE {', '.join(tables)}")

    def _drop_dump_views(self, conn: sa.Connection) -> None:
        """The views the source's DDL creates over the replaced tables (an earlier clone's):
        PostgreSQL refuses to drop a table under a view, SQLite would keep the view's name."""
        dump = usable_dump(self.metadata, self.dialect, self.tables, self.schema)
        if dump is None:
            return
        prep = conn.dialect.identifier_preparer
        prefix = f"{prep.quote(self.schema)}." if self.schema else ""
        views = [s.name for s in dump.pre_data + dump.post_data
                 if s.kind == "VIEW" and s.tables <= set(self.tables)]
        for name in reversed(views):  # a view over a view goes first
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {prefix}{prep.quote(name)}")

    def _empty(self, conn: sa.Connection, names: list[str]) -> None:
        tables = self._qualified(conn, list(reversed(names)))
        if self.dialect == "postgresql":
            conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)}")
            return
        # DELETE, not TRUNCATE: TRUNCATE commits on MariaDB.
        with mysql_checks_off(conn) if self.dialect == "mysql" else contextlib.nullcontext():
            for table in tables:
                conn.exec_driver_sql(f"DELETE FROM {table}")

    def _sqlite_orphans(self, conn: sa.Connection) -> None:
        """SQLite drops and empties with its foreign key checks deferred (tables in a cycle
        cannot go one by one otherwise), and switching the deferral off, before the rows, forgets
        what it deferred. So ask here: a table that is not written and refers to an emptied one
        would be left with rows missing their parent (PostgreSQL refuses such a TRUNCATE or
        DROP, too)."""
        names = ", ".join("?" * len(self.emptied))
        children = conn.exec_driver_sql(
            "SELECT DISTINCT m.name FROM sqlite_master AS m, pragma_foreign_key_list(m.name) AS f "
            f"WHERE m.type = 'table' AND f.\"table\" IN ({names}) ORDER BY m.name",
            tuple(self.emptied)).scalars().all()
        quote = conn.dialect.identifier_preparer.quote
        orphans = [row for child in children if child not in self.emptied
                   for row in conn.exec_driver_sql(f"PRAGMA foreign_key_check({quote(child)})")
                   if row[2] in self.emptied]
        if orphans:
            pairs = ", ".join(sorted({f"{row[0]} -> {row[2]}" for row in orphans}))
            raise WriteError(
                f"Emptying {', '.join(sorted({row[2] for row in orphans}))} would leave "
                f"{len(orphans)} row(s) of tables this write does not load without their parent "
                f"({pairs}; FOREIGN KEY); write those tables too, or pass if_exists='append'; "
                "the target was left as it was.")

    def _create(self, conn: sa.Connection, names: list[str]) -> list:
        if not names:
            return []
        dump = usable_dump(self.metadata, self.dialect, names, self.schema)
        if dump is not None and (names != self.tables or self.staged):
            dump = None
        if self.marker is not None:
            self._record(conn, names, dump)
        if dump is not None:
            made = create_from_dump(conn, dump, names, self.schema, self.target_md, self.created)
            if made is not None:
                self.created, self.cleanup = made.tables, made.cleanup
                log.info("write: created %d table(s) from the source's own DDL", len(names))
                return made.after_load
        try:
            after_load = create_tables(conn, [self.table(n) for n in names],
                                       defer_indexes=self.dialect == "postgresql")
        finally:
            if self.dialect == "mysql":  # what exists now was created by this run
                self.created = [n for n in names if n in self._existing(conn)]
            else:
                self.created = list(names)
        log.info("write: created %d table(s)", len(names))
        return after_load

    # ------------------------------------------------------------------ MariaDB only
    def _record(self, conn: sa.Connection, names: list[str], dump) -> None:
        """Before creating ``names`` (from ``dump`` when given): record them in the marker."""
        if dump is not None:
            for statement in dump.pre_data:
                if statement.kind != "TABLE" and statement.tables <= set(names):
                    self.marker.record(conn, statement.kind.lower(), [statement.name])
        self.marker.record(conn, "table", [n for n in names if n not in self.staged])
        staged = [n for n in names if n in self.staged]
        self.marker.record(conn, "staging table", [self.staged[n] for n in staged], staged)

    def _stage(self, conn: sa.Connection, names: list[str]) -> None:
        """Replacing tables whose structure changed: DROP would commit at once, so the new
        tables are created and loaded under staging names and swapped in (DROP + RENAME) only
        after the commit; a failure drops the staging tables and leaves the old ones."""
        staged = {n: f"_hma_new_{i}" for i, n in enumerate(names)}
        found = set(sa.inspect(conn).get_table_names(schema=self.schema))
        if found & set(staged.values()):
            raise WriteError(f"Staging tables {sorted(found & set(staged.values()))} already exist "
                             "in the target (left by an interrupted write?); drop them first.")
        self.staged = staged
        self.target_md = target_metadata(self.metadata, self.tables, self.dialect, self.schema,
                                         staged=staged)

    def swap_staged(self, conn: sa.Connection) -> None:
        """After the commit: the staging tables take the place of the tables they replace."""
        prep = conn.dialect.identifier_preparer
        prefix = f"{prep.quote(self.schema)}." if self.schema else ""
        old = [prefix + prep.quote(n) for n in self.staged]
        renames = [f"{prefix}{prep.quote(new)} TO {prefix}{prep.quote(n)}"
                   for n, new in self.staged.items()]
        try:
            with mysql_checks_off(conn):  # no rows move: the loaded rows were checked
                conn.exec_driver_sql(f"DROP TABLE {', '.join(old)}")
                conn.exec_driver_sql(f"RENAME TABLE {', '.join(renames)}")
            conn.commit()
        except sa.exc.DBAPIError as exc:
            raise WriteError(
                f"The rows are committed in {', '.join(self.staged.values())}, but swapping them "
                f"in for {', '.join(self.staged)} failed: {exc.orig}; finish with RENAME TABLE."
            ) from exc
        log.info("write: replaced %s", ", ".join(self.staged))

    def drop_created(self) -> None:
        """After a failure: drop what this run created (DDL on MariaDB is not transactional),
        as its marker lists it."""
        if self.marker is not None and self.marker.database is not None:
            self.marker.undo()
            return
        if not (self.created or self.created_schema):
            return
        prep = self.engine.dialect.identifier_preparer
        with self.engine.connect() as conn, mysql_checks_off(conn):
            for statement in self.cleanup:
                conn.exec_driver_sql(statement)
            for name in reversed(self.created):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prep.format_table(self.table(name))}")
            if self.created_schema:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {prep.quote(self.schema)}")
            conn.commit()
        log.info("write: dropped %d table(s) this run had created", len(self.created))

