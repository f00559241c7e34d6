"""Write tables into a target database: schema, foreign-key order, bulk load, all or nothing.

:func:`write` creates the target tables from the source schema translated to the target's
dialect (:mod:`hma_db.ddl`), or checks existing ones for drift, loads parents before children
with the dialect's bulk loader (:mod:`hma_db.loaders`), fills the foreign keys that close a cycle
afterwards, moves key counters past the loaded keys and commits once. On any failure the target
is left as it was (see :class:`_Run` for how, per database).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import pandas as pd
import sqlalchemy as sa

from hma_db.ddl import create_tables, dialect_family, drift, is_generated_key, target_metadata
from hma_db.engines import Source, connect, engine_for
from hma_db.errors import HmaDbError, SchemaDriftError, WriteError
from hma_db.loaders import loader_for
from hma_db.metadata import Metadata
from hma_db.write_prepare import check_columns, plan_table, shift_keys
from hma_db.write_types import family

log = logging.getLogger(__name__)
IF_EXISTS = ("fail", "replace", "truncate", "append")
Progress = Callable[[str, int, int], None]


def write(data: dict[str, pd.DataFrame], metadata: Metadata, target: Source, *,
          schema: str | None = None, if_exists: str = "fail", batch_size: int | None = None,
          disable_triggers: bool = False, reference_existing: bool = False,
          progress: Progress | None = None) -> dict[str, int]:
    """Write ``data`` into ``target`` in one transaction; return the rows written per table.

    Tables are created from ``metadata.sql_metadata`` translated to the target's dialect (from
    the sdtypes when the metadata was not reflected), in ``schema`` when given (created if
    missing; on MariaDB a schema is a database). Existing tables must match that schema
    (:class:`SchemaDriftError` lists the differences otherwise).

    Args:
        data: one DataFrame per table, columns named like the table's.
        metadata: the tables, keys and relationships (from :func:`hma_db.reflect` ideally).
        target: a URL string, a SQLAlchemy ``URL`` or an ``Engine`` (not disposed).
        schema: the target schema (PostgreSQL schema, MariaDB database).
        if_exists: what to do with tables that exist: ``fail`` (default), ``replace`` (drop and
            recreate; on MariaDB, where DDL commits, tables of the same structure are emptied
            instead and changed ones are loaded under staging names and swapped in after the
            commit), ``truncate`` (empty, then load) or ``append``. ``append`` adds to each
            single-column integer primary key the offset ``max(target) - min(data) + 1`` when the
            keys would collide, and the same offset to the foreign keys referring to those rows;
            other keys (strings, composite keys of their own) are written as given and a clash
            is refused by the target.
        batch_size: rows per COPY chunk / ``executemany`` call (progress granularity).
        disable_triggers: PostgreSQL only: ``session_replication_role = replica`` for the load
            (needs a superuser; it also skips foreign key checks). Refused elsewhere.
        reference_existing: with ``append``, a foreign key value that matches no row of the
            parent's data is kept as is and refers to a row already in the target (which the
            target's foreign key checks); without it such a value raises :class:`WriteError`.
            A value that matches a row of the parent's data follows that row's new key. When the
            parent table is not in ``data`` at all, its foreign key values are kept as given.
        progress: called as ``progress(table, rows_done, rows_total)`` after each batch.

    Returns:
        ``{table: rows written}`` in load order.

    Raises:
        WriteError: the target is unreachable or refused the rows; it was left as it was.
        SchemaDriftError: an existing table differs from the source schema.

    Example:
        >>> write(synthetic, metadata, "postgresql+psycopg://app@staging/shop",
        ...       if_exists="replace")
        {'Artist': 275, 'Album': 347, ...}
    """
    tables = _check_arguments(data, metadata, if_exists, batch_size)
    with engine_for(target, error=WriteError, must_exist=False) as engine:
        dialect = dialect_family(engine.dialect.name)
        if schema is not None and dialect == "sqlite":
            raise WriteError(f"SQLite has no schemas; write to another file instead of schema "
                             f"'{schema}'.")
        if disable_triggers and dialect != "postgresql":
            raise WriteError(f"disable_triggers is supported on PostgreSQL only, not {dialect}.")
        target_md = target_metadata(metadata, tables, dialect, schema)
        run = _Run(engine, dialect, data, metadata, target_md, tables, schema=schema,
                   if_exists=if_exists, batch_size=batch_size, disable_triggers=disable_triggers,
                   reference_existing=reference_existing, progress=progress)
        return run.execute()


def write_chunks(chunks: Iterable[dict[str, pd.DataFrame]], metadata: Metadata, target: Source, *,
                 schema: str | None = None, if_exists: str = "fail",
                 batch_size: int | None = None, progress: Progress | None = None
                 ) -> dict[str, int]:
    """Write ``{table: DataFrame}`` chunks in one transaction, each chunk as :func:`write` would.

    Every chunk must hold every table (empty frames are fine) and may reference rows of earlier
    chunks. The chunks are consumed one at a time, so they can be generated lazily
    (:meth:`HMASynthesizer.sample_chunks`) and memory stays bounded. All or nothing: a failure
    in any chunk, or an interruption, leaves the target as it was.

    Returns:
        ``{table: rows written}`` over all chunks.
    """
    iterator = iter(chunks)
    first = next(iterator, None)
    if first is None:
        raise WriteError("write_chunks got no chunk to write.")
    tables = _check_arguments(first, metadata, if_exists, batch_size)
    with engine_for(target, error=WriteError, must_exist=False) as engine:
        dialect = dialect_family(engine.dialect.name)
        if schema is not None and dialect == "sqlite":
            raise WriteError(f"SQLite has no schemas; write to another file instead of schema "
                             f"'{schema}'.")
        target_md = target_metadata(metadata, tables, dialect, schema)
        run = _Run(engine, dialect, first, metadata, target_md, tables, schema=schema,
                   if_exists=if_exists, batch_size=batch_size, disable_triggers=False,
                   reference_existing=False, progress=progress, more=iterator)
        return run.execute()


def _check_arguments(data, metadata: Metadata, if_exists: str, batch_size) -> list[str]:
    if if_exists not in IF_EXISTS:
        raise WriteError(f"if_exists must be one of {', '.join(IF_EXISTS)}; found {if_exists!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise WriteError(f"batch_size must be a positive integer; found {batch_size!r}")
    unknown = sorted(set(data) - set(metadata.tables))
    if unknown:
        raise WriteError(f"The data has tables the metadata does not know: {', '.join(unknown)}")
    return [t for t in metadata.topological_order() if t in data]


class _Run:
    """One write. PostgreSQL and SQLite run DDL and rows in one transaction (SQLite through an
    explicit BEGIN, since Python's sqlite3 would commit DDL on its own; its foreign keys are
    deferred to the end of the transaction and checked table by table before COMMIT). MariaDB
    commits DDL implicitly: the tables (and database) this run created are recorded and dropped,
    in reverse order, when the load fails; rows go in one InnoDB transaction."""

    def __init__(self, engine, dialect, data, metadata, target_md, tables, **options):
        self.engine, self.dialect, self.data, self.metadata = engine, dialect, data, metadata
        self.target_md, self.tables = target_md, tables
        self.schema, self.if_exists = options["schema"], options["if_exists"]
        self.options = options
        self.loader = loader_for(dialect)
        self.batch_size = options["batch_size"] or self.loader.default_batch_size
        self.created: list[str] = []
        self.created_schema = False
        self.staged: dict[str, str] = {}  # MariaDB replace: table -> name it is loaded under
        self.current: str | None = None

    def table(self, name: str) -> sa.Table:
        name = self.staged.get(name, name)
        return self.target_md.tables[f"{self.schema}.{name}" if self.schema else name]

    def execute(self) -> dict[str, int]:
        conn = connect(self.engine, error=WriteError)
        try:
            sqlite_state = self._sqlite_begin(conn) if self.dialect == "sqlite" else None
            trans = conn.begin()
            if sqlite_state is not None:
                conn.exec_driver_sql("BEGIN")
            try:
                counts = self._load(conn)
                trans.commit()
            except BaseException as exc:
                self._undo(conn, trans)
                raise self._error(exc) from exc
            finally:
                if sqlite_state is not None:
                    self._sqlite_end(conn, sqlite_state)
            if self.staged:  # after the commit, outside the undo: the rows are safe by now
                self._swap_staged(conn)
        finally:
            conn.close()
        log.info("write: %d table(s), %d row(s) committed", len(counts), sum(counts.values()))
        return counts

    def _error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, HmaDbError) or not isinstance(exc, Exception):
            return exc  # ours already say what happened; Ctrl-C stays Ctrl-C
        orig = getattr(exc, "orig", None) or exc
        args = getattr(orig, "args", ())
        # pymysql errors are (code, message) pairs: keep the message
        text = args[1] if len(args) == 2 and isinstance(args[0], int) else orig
        detail = str(text).strip().splitlines()
        where = f"table '{self.current}'" if self.current else "the target"
        return WriteError(f"Writing {where} failed: {detail[0] if detail else type(exc).__name__}; "
                          "the target was left as it was.")

    # ------------------------------------------------------------------------ transactions
    def _sqlite_begin(self, conn: sa.Connection) -> tuple:
        raw = conn.connection.driver_connection
        state = (raw.isolation_level, conn.exec_driver_sql("PRAGMA foreign_keys").scalar())
        conn.rollback()
        raw.isolation_level = None  # we issue BEGIN ourselves, so DDL is transactional too
        conn.exec_driver_sql("PRAGMA foreign_keys = ON")
        conn.rollback()
        return state

    def _sqlite_end(self, conn: sa.Connection, state: tuple) -> None:
        try:
            conn.exec_driver_sql(f"PRAGMA foreign_keys = {int(state[1])}")
            conn.rollback()
            conn.connection.driver_connection.isolation_level = state[0]
        except Exception:  # noqa: BLE001 - the connection may be gone; nothing left to restore
            conn.invalidate()

    def _undo(self, conn: sa.Connection, trans) -> None:
        try:
            trans.rollback()
        except Exception:  # noqa: BLE001 - a lost connection has rolled back on the server
            log.debug("rollback failed; the server discards the transaction", exc_info=True)
        if self.dialect == "mysql" and (self.created or self.created_schema):
            self._drop_created()

    def _drop_created(self) -> None:
        """MariaDB: drop what this run created (DDL there is not transactional)."""
        prep = self.engine.dialect.identifier_preparer
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            for name in reversed(self.created):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prep.format_table(self.table(name))}")
            if self.created_schema:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {prep.quote(self.schema)}")
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")
            conn.commit()
        log.info("write: dropped %d table(s) this run had created", len(self.created))

    # ------------------------------------------------------------------------------ schema
    def _load(self, conn: sa.Connection) -> dict[str, int]:
        if self.dialect == "sqlite":
            # Checked at COMMIT instead of per statement: lets truncate/replace empty tables
            # that reference each other; every foreign key is still enforced.
            conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        self._ensure_schema(conn)
        existing = self._existing(conn)
        self._handle_existing(conn, existing)
        after_load = self._create(conn, [t for t in self.tables if t not in existing])
        if self.options["disable_triggers"]:
            self._disable_triggers(conn)
        plans = self._plans(self._shifted(conn, existing))
        counts = self._load_plans(conn, plans, dict.fromkeys(self.tables, 0))
        # Later chunks (write_chunks) go into the same transaction, after the first one.
        for chunk in self.options.get("more", ()):
            self.data = chunk
            counts = self._load_plans(conn, self._plans(self._shifted(conn, existing)), counts)
        if "more" in self.options:
            for name, rows in counts.items():
                log.info("write: %s: %d row(s)", name, rows)
        for plan in plans:
            self.current = plan.name
            self.loader.reset_counters(conn, self.table(plan.name), plan.generated)
        for name, statement in after_load:
            self.current = name
            conn.execute(statement)
        if self.dialect == "sqlite":
            self._check_foreign_keys(conn)
        self.current = None
        return counts

    def _check_foreign_keys(self, conn: sa.Connection) -> None:
        """SQLite checks deferred foreign keys at COMMIT without saying where; ask first, so
        the error names the table and the parent its rows miss."""
        for name in self.tables:
            rows = conn.exec_driver_sql(
                f"PRAGMA foreign_key_check({conn.dialect.identifier_preparer.quote(name)})"
            ).fetchall()
            if rows:
                parents = sorted({row[2] for row in rows})
                raise WriteError(f"Writing table '{name}' failed: {len(rows)} row(s) reference "
                                 f"rows missing from {', '.join(parents)} (FOREIGN KEY); the "
                                 "target was left as it was.")

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
            log.info("write: created schema %s", self.schema)

    def _existing(self, conn: sa.Connection) -> set[str]:
        """The written tables whose table (or staging table) exists in the target."""
        found = set(sa.inspect(conn).get_table_names(schema=self.schema))
        return {n for n in self.tables if self.staged.get(n, n) in found}

    def _handle_existing(self, conn: sa.Connection, existing: set[str]) -> None:
        if not existing:
            return
        names = [t for t in self.tables if t in existing]
        if self.if_exists == "fail":
            raise WriteError(f"These tables already exist in the target: {', '.join(names)}; "
                             "pass if_exists='replace', 'truncate' or 'append'.")
        if self.if_exists == "replace":
            if self.dialect == "mysql":
                if drift(conn, self.target_md, names, self.schema):
                    self._stage(conn, names)
                    existing.clear()
                else:
                    self._empty(conn, names)  # DROP would commit; same structure: empty them
                return
            self._drop(conn, names)
            existing.clear()
            return
        differences = drift(conn, self.target_md, names, self.schema)
        if differences:
            raise SchemaDriftError(
                "The existing target tables differ from the source schema; fix them or pass "
                "if_exists='replace':", differences)
        if self.if_exists == "truncate":
            self._empty(conn, names)

    def _qualified(self, conn: sa.Connection, names: list[str]) -> list[str]:
        return [conn.dialect.identifier_preparer.format_table(self.table(n)) for n in names]

    def _drop(self, conn: sa.Connection, names: list[str]) -> None:
        tables = self._qualified(conn, list(reversed(names)))
        if self.dialect == "sqlite":
            for table in tables:
                conn.exec_driver_sql(f"DROP TABLE {table}")
        else:  # one statement: tables that reference each other go together
            conn.exec_driver_sql(f"DROP TABLE {', '.join(tables)}")

    def _stage(self, conn: sa.Connection, names: list[str]) -> None:
        """MariaDB, replacing tables whose structure changed: DROP would commit at once, so the
        new tables are created and loaded under staging names and swapped in (DROP + RENAME)
        only after the commit; a failure drops the staging tables and leaves the old ones."""
        staged = {n: f"_hma_new_{i}" for i, n in enumerate(names)}
        found = set(sa.inspect(conn).get_table_names(schema=self.schema))
        if found & set(staged.values()):
            raise WriteError(f"Staging tables {sorted(found & set(staged.values()))} already exist "
                             "in the target (left by an interrupted write?); drop them first.")
        self.staged = staged
        self.target_md = target_metadata(self.metadata, self.tables, self.dialect, self.schema,
                                         staged=staged)

    def _swap_staged(self, conn: sa.Connection) -> None:
        prep = conn.dialect.identifier_preparer
        prefix = f"{prep.quote(self.schema)}." if self.schema else ""
        old = [prefix + prep.quote(n) for n in self.staged]
        renames = [f"{prefix}{prep.quote(new)} TO {prefix}{prep.quote(n)}"
                   for n, new in self.staged.items()]
        try:
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            conn.exec_driver_sql(f"DROP TABLE {', '.join(old)}")
            conn.exec_driver_sql(f"RENAME TABLE {', '.join(renames)}")
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")
            conn.commit()
        except sa.exc.DBAPIError as exc:
            raise WriteError(
                f"The rows are committed in {', '.join(self.staged.values())}, but swapping them "
                f"in for {', '.join(self.staged)} failed: {exc.orig}; finish with RENAME TABLE."
            ) from exc
        log.info("write: replaced %s", ", ".join(self.staged))

    def _empty(self, conn: sa.Connection, names: list[str]) -> None:
        tables = self._qualified(conn, list(reversed(names)))
        if self.dialect == "postgresql":
            conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)}")
            return
        if self.dialect == "mysql":  # DELETE, not TRUNCATE: TRUNCATE commits on MariaDB
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
        for table in tables:
            conn.exec_driver_sql(f"DELETE FROM {table}")
        if self.dialect == "mysql":
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")

    def _create(self, conn: sa.Connection, names: list[str]) -> list:
        if not names:
            return []
        try:
            after_load = create_tables(conn, self.target_md, [self.table(n) for n in names],
                                       constraints_after_load=self.dialect == "postgresql")
        finally:
            if self.dialect == "mysql":  # what exists now was created by this run
                self.created = [n for n in names if n in self._existing(conn)]
            else:
                self.created = list(names)
        log.info("write: created %d table(s)", len(names))
        return after_load

    def _disable_triggers(self, conn: sa.Connection) -> None:
        try:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        except sa.exc.DBAPIError as exc:
            raise WriteError("disable_triggers=True needs a role allowed to set "
                             f"session_replication_role (a superuser): {exc.orig}") from exc

    # -------------------------------------------------------------------------------- rows
    def _shifted(self, conn: sa.Connection, existing: set[str]) -> dict[str, pd.DataFrame]:
        if self.if_exists != "append":
            return self.data
        offsets = {}
        for name in self.tables:
            pk = list(self.table(name).primary_key.columns)
            frame = self.data[name]
            if name not in existing or len(pk) != 1 or family(pk[0].type) != "integer" \
                    or pk[0].name not in frame or frame.empty:
                continue
            current = conn.execute(sa.select(sa.func.max(pk[0]))).scalar()
            lowest = frame[pk[0].name].min()
            if current is not None and lowest <= current:
                offsets[name] = int(current - lowest + 1)
        log.info("write: append shifts keys by %s", offsets)
        return shift_keys(self.data, self.metadata, offsets, self.options["reference_existing"])

    def _plans(self, data: dict[str, pd.DataFrame]):
        written = set(self.tables)
        deferred = [r for r in self.metadata.deferred_relationships()
                    if {r["parent_table_name"], r["child_table_name"]} <= written]
        plans = []
        for name in self.tables:
            table = self.table(name)
            source = self.metadata.sql_metadata.tables.get(name) if self.metadata.sql_metadata \
                else None
            generated = [c.name for c in table.primary_key.columns if c.autoincrement is True
                         or (source is not None and is_generated_key(source, source.c[c.name]))]
            check_columns(name, data[name], table, generated)
            frame = data[name][[c.name for c in table.columns if c.name in data[name].columns]]
            plans.append(plan_table(name, frame, self.metadata, table, deferred, generated))
        return plans

    def _load_plans(self, conn: sa.Connection, plans, counts: dict[str, int]) -> dict[str, int]:
        """Load one chunk's tables, then fill its deferred and self-referencing keys."""
        for plan in plans:
            counts[plan.name] += self._load_table(conn, plan)
        for plan in plans:
            self.current = plan.name
            for keys, frame in plan.updates:
                self.loader.update(conn, self.table(plan.name), keys, frame, self.batch_size)
        return counts

    def _load_table(self, conn: sa.Connection, plan) -> int:
        self.current = plan.name
        total, progress = len(plan.frame), self.options["progress"]

        def on_batch(done: int) -> None:
            if progress is not None:
                progress(plan.name, done, total)

        rows = self.loader.load(conn, self.table(plan.name), plan.frame, self.batch_size, on_batch)
        (log.debug if "more" in self.options else log.info)("write: %s: %d row(s)", plan.name, rows)
        return rows
