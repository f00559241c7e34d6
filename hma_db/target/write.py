"""Write tables into a target database: schema, foreign-key order, bulk load, all or nothing.

:func:`write` creates the target tables from the source schema translated to the target's
dialect with every constraint declared (:mod:`hma_db.target.ddl`), or handles the existing ones per
``if_exists`` (:mod:`hma_db.target.tables`); loads parents before children with the dialect's
bulk loader (:mod:`hma_db.target.loaders`), moves key counters past the loaded keys, proves every
foreign key in one set-based pass (:mod:`hma_db.target.session`) and commits once. On any
failure the target is left as it was (see :class:`_Run` for how, per database).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import pandas as pd
import sqlalchemy as sa

from hma_db.engines import Source, connect
from hma_db.errors import HmaDbError, WriteError
from hma_db.schema import Metadata
from hma_db.target.ddl import dialect_family
from hma_db.target.guard import firing_triggers, hold_target_lock, refuse_sqlite_schema
from hma_db.target.loaders import loader_for
from hma_db.target.prepare import plan_chunk, shift_keys
from hma_db.target.session import Session, open_target, pause_point
from hma_db.target.staging import StagedChunk, Staging
from hma_db.target.tables import TargetTables
from hma_db.target.types import family

log = logging.getLogger(__name__)
IF_EXISTS = ("fail", "replace", "truncate", "append")
Progress = Callable[[str, int, int], None]


class StagedChunks(Protocol):
    """Chunks loaded by others into staging tables (see :func:`write_chunks`)."""

    def start(self, job) -> None: ...

    def ready(self) -> Iterator[StagedChunk]: ...

    def cancel(self) -> None: ...


def write(data: dict[str, pd.DataFrame], metadata: Metadata, target: Source, *,
          schema: str | None = None, if_exists: str = "fail", batch_size: int | None = None,
          disable_triggers: bool = False, fire_triggers: bool = False,
          reference_existing: bool = False, progress: Progress | None = None) -> dict[str, int]:
    """Write ``data`` into ``target`` in one transaction; return the rows written per table.

    Tables are created from ``metadata.sql_metadata`` translated to the target's dialect (from
    the sdtypes when the metadata was not reflected), in ``schema`` when given (created if
    missing; on MariaDB a schema is a database). Existing tables must match that schema
    (:class:`SchemaDriftError` lists the differences otherwise).

    Args:
        data: one DataFrame per table, columns named like the table's.
        metadata: the tables, keys and relationships (from :func:`hma_db.source.reflect` ideally).
        target: a URL string, a SQLAlchemy ``URL``, the path of a SQLite file or an
            ``Engine`` (not disposed). A SQLite file that does not exist yet, given by URL or
            path, is written under a temporary name in its directory and renamed into place
            after the commit, so a failed or killed write leaves no file; an Engine is written
            through as it is (a new file it names is created in place).
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
        disable_triggers: PostgreSQL only: the enabled triggers of the existing target tables
            are disabled for the load and enabled again before the commit (needs the tables'
            owner). Foreign keys are still checked. Refused elsewhere.
        fire_triggers: load existing tables that have triggers with the triggers firing for
            every row; without it (or ``disable_triggers``) such a table is refused before the
            first row (:func:`hma_db.target.guard.trigger_problems`). Tables this write creates
            get their triggers after the rows.
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
            Also when another load into the same MariaDB database holds its lock.
        SchemaDriftError: an existing table differs from the source schema.

    Example:
        >>> write(synthetic, metadata, "postgresql+psycopg://app@staging/shop",
        ...       if_exists="replace")
        {'Artist': 275, 'Album': 347, ...}
    """
    tables = _check_arguments(data, metadata, if_exists, batch_size)
    with open_target(target) as engine:
        dialect = dialect_family(engine.dialect.name)
        refuse_sqlite_schema(dialect, schema)
        if disable_triggers and dialect != "postgresql":
            raise WriteError(f"disable_triggers is supported on PostgreSQL only, not {dialect}.")
        target = TargetTables(engine, dialect, metadata, tables, schema, if_exists)
        run = _Run(target, data, if_exists=if_exists, batch_size=batch_size,
                   disable_triggers=disable_triggers, fire_triggers=fire_triggers,
                   reference_existing=reference_existing, progress=progress)
        return run.execute()


def write_chunks(chunks: Iterable[dict[str, pd.DataFrame]], metadata: Metadata, target: Source, *,
                 schema: str | None = None, if_exists: str = "fail",
                 batch_size: int | None = None, fire_triggers: bool = False,
                 progress: Progress | None = None, staged: StagedChunks | None = None
                 ) -> dict[str, int]:
    """Write ``{table: DataFrame}`` chunks in one transaction, each chunk as :func:`write` would.

    Every chunk must hold every table (empty frames are fine) and may reference rows of earlier
    chunks. The chunks are consumed one at a time, so they can be generated lazily
    (:meth:`HMASynthesizer.sample_chunks`) and memory stays bounded. All or nothing: a failure
    in any chunk, or an interruption, leaves the target as it was.

    ``staged`` (PostgreSQL and MariaDB; not with ``append``): more chunks that others load in
    parallel into staging tables (:mod:`hma_db.target.staging`; :mod:`hma_db.cluster` has Dask
    workers do it). Once the tables are prepared, ``staged.start(job)`` is handed what a loader
    needs (``job.stage(number, chunk)`` loads a chunk); after ``chunks``, ``staged.ready()``
    yields each :class:`~hma_db.target.staging.StagedChunk` in chunk order as soon as it is
    staged, and its rows move into the target tables in the same transaction while the others
    are staged. ``staged.cancel()`` is called when the write ends either way; the
    staging tables are dropped after the commit or rollback.

    Returns:
        ``{table: rows written}`` over all chunks.
    """
    iterator = iter(chunks)
    first = next(iterator, None)
    if first is None:
        raise WriteError("write_chunks got no chunk to write.")
    tables = _check_arguments(first, metadata, if_exists, batch_size)
    with open_target(target) as engine:
        dialect = dialect_family(engine.dialect.name)
        refuse_sqlite_schema(dialect, schema)
        if staged is not None and (dialect == "sqlite" or if_exists == "append"):
            raise WriteError("Staged chunks need a PostgreSQL or MariaDB target and no "
                             f"if_exists='append'; found {dialect}, if_exists={if_exists!r}.")
        target = TargetTables(engine, dialect, metadata, tables, schema, if_exists)
        run = _Run(target, first, if_exists=if_exists, batch_size=batch_size,
                   disable_triggers=False, fire_triggers=fire_triggers,
                   reference_existing=False, progress=progress, more=iterator, staged=staged)
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
    explicit BEGIN, since Python's sqlite3 would commit DDL on its own; a new SQLite file is a
    temporary file until the commit, see :func:`open_target`). MariaDB commits DDL implicitly:
    the run takes the database's lock, removes what a killed run left, and records what it
    creates in the target (:class:`~hma_db.target.guard.RunMarker`), which a failure drops
    again, newest first; rows go in one InnoDB transaction, whose COMMIT also clears the
    record."""

    def __init__(self, target: TargetTables, data: dict[str, pd.DataFrame], **options):
        self.target, self.data, self.options = target, data, options
        self.dialect, self.metadata, self.tables = target.dialect, target.metadata, target.tables
        self.loader = loader_for(self.dialect)
        self.batch_size = options["batch_size"] or self.loader.default_batch_size
        self.current: str | None = None
        self.staging: Staging | None = None

    def execute(self) -> dict[str, int]:
        marker = self.target.marker
        if marker is not None:
            marker.open()  # the lock, then a killed run's leftovers, before anything else
        try:
            try:
                counts = self._transaction()
            finally:
                self._end_staging()
            if marker is not None:
                marker.finish()
        finally:
            if marker is not None:
                marker.close()
        log.info("write: %d table(s), %d row(s) committed", len(counts), sum(counts.values()))
        return counts

    def _transaction(self) -> dict[str, int]:
        conn = connect(self.target.engine, error=WriteError)
        if self.options.get("staged") is not None and self.dialect == "postgresql":
            # Each move must see the chunks the workers committed since the load began: a
            # REPEATABLE READ default (server, role or engine) would move nothing.
            conn.execution_options(isolation_level="READ COMMITTED")
        try:
            session = Session(conn, self.dialect)
            try:
                trans = session.begin()
                try:
                    hold_target_lock(conn, self.dialect, self.target.schema)  # one load at a time
                    counts = self._load(conn, session)
                    self.current = None
                    if self.target.marker is not None:  # goes with the COMMIT, atomically
                        self.target.marker.forget(conn)
                    pause_point("before_commit")
                    session.commit(trans)
                except BaseException as exc:
                    self._undo(trans)
                    raise self._error(exc) from exc
            finally:
                session.end()
            if self.target.staged:  # after the commit, outside the undo: the rows are safe
                self.target.swap_staged(conn)
        finally:
            conn.close()
        return counts

    def _error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, HmaDbError) or not isinstance(exc, Exception):
            return exc  # ours already say what happened; Ctrl-C stays Ctrl-C
        orig = getattr(exc, "orig", None) or exc
        args = getattr(orig, "args", ())
        # pymysql errors are (code, message) pairs: keep the message
        text = args[1] if len(args) == 2 and isinstance(args[0], int) else orig
        lines = str(text).strip().splitlines()
        detail = getattr(getattr(orig, "diag", None), "message_detail", None)  # psycopg
        message = lines[0] if lines else type(exc).__name__
        if detail and detail not in message:  # e.g. which key is not present in which table
            message = f"{message} ({detail.rstrip('.')})"
        where = f"table '{self.current}'" if self.current else "the target"
        return WriteError(f"Writing {where} failed: {message}; the target was left as it was.")

    def _undo(self, trans) -> None:
        try:
            trans.rollback()
        except Exception:  # noqa: BLE001 - a lost connection has rolled back on the server
            log.debug("rollback failed; the server discards the transaction", exc_info=True)
        if self.dialect == "mysql":
            self.target.drop_created()

    def _load(self, conn: sa.Connection, session: Session) -> dict[str, int]:
        if not (self.options["disable_triggers"] or self.options["fire_triggers"]):
            self._refuse_triggers(conn)
        existing, after_load = self.target.prepare(conn)
        pause_point("after_ddl")
        if self.options["disable_triggers"]:
            session.disable_triggers([self.target.table(n) for n in self.tables])
        # Only existing PostgreSQL tables check each row's keys as it arrives.
        at_commit = self.dialect != "postgresql" or not existing
        session.start_load(at_commit)
        plans = self._plans(self._shifted(conn, existing), at_commit)
        staged = self.options.get("staged")
        if staged is not None:  # the workers load while this chunk goes in
            self.staging = Staging(self.target, at_commit, self.batch_size)
            staged.start(self.staging.create())
        counts = self._load_plans(conn, plans, dict.fromkeys(self.tables, 0))
        # Later chunks (write_chunks) go into the same transaction, after the first one.
        for chunk in self.options.get("more", ()):
            self.data = chunk
            counts = self._load_plans(conn, self._plans(self._shifted(conn, existing), at_commit),
                                      counts)
        if staged is not None:
            counts = self._move_staged(conn, staged, plans, counts)
        if "more" in self.options:
            for name, rows in counts.items():
                log.info("write: %s: %d row(s)", name, rows)
        for plan in plans:
            self.current = plan.name
            self.loader.reset_counters(conn, self.target.table(plan.name), plan.generated)
        for name, statement in after_load:  # indexes, then foreign keys proven as they are added
            self.current = name
            conn.execute(statement)
        self.current = None
        session.prove_foreign_keys([self.target.table(n) for n in self.tables],
                                   {staged: name for name, staged in self.target.staged.items()})
        return counts

    def _move_staged(self, conn: sa.Connection, staged: StagedChunks, plans,
                     counts: dict[str, int]) -> dict[str, int]:
        """Each staged chunk's rows into the target tables as soon as it is staged, in chunk
        order (see :mod:`hma_db.target.staging`)."""
        progress = self.options["progress"]
        columns = {plan.name: list(plan.frame.columns) for plan in plans}
        postgres = self.dialect == "postgresql"
        if postgres:  # a chunk's rows through the chunk index, never a scan of the whole table
            scans = conn.exec_driver_sql("SHOW enable_seqscan").scalar()
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")

        def on_table(name: str) -> None:
            self.current = name

        for chunk in staged.ready():
            moved = self.staging.move_chunk(conn, chunk, columns, on_table)
            for name, rows in moved.items():
                counts[name] += rows
                if progress is not None:
                    progress(name, rows, rows)
        if postgres:  # the indexes and foreign keys added next scan whole tables
            conn.exec_driver_sql(f"SET LOCAL enable_seqscan = {'off' if scans == 'off' else 'on'}")
        self.current = None
        pause_point("after_move")
        return counts

    def _end_staging(self) -> None:
        staged = self.options.get("staged")
        try:
            if staged is not None:
                staged.cancel()
        except Exception:  # noqa: BLE001 - a lost scheduler: the run's own error stands
            log.warning("write: cancelling the cluster's tasks failed", exc_info=True)
        finally:
            if self.staging is not None:
                self.staging.drop()

    def _refuse_triggers(self, conn: sa.Connection) -> None:
        """Before anything changes: existing tables to load whose triggers would fire."""
        found = firing_triggers(conn, self.tables, self.target.schema, self.options["if_exists"])
        if found:
            raise WriteError(f"{found[0]} Nothing was written.")

    # -------------------------------------------------------------------------------- rows
    def _shifted(self, conn: sa.Connection, existing: set[str]) -> dict[str, pd.DataFrame]:
        if self.options["if_exists"] != "append":
            return self.data
        offsets = {}
        for name in self.tables:
            pk = list(self.target.table(name).primary_key.columns)
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

    def _plans(self, data: dict[str, pd.DataFrame], at_commit: bool):
        return plan_chunk(self.metadata, self.tables, self.target.table, data, at_commit)

    def _load_plans(self, conn: sa.Connection, plans, counts: dict[str, int]) -> dict[str, int]:
        """Load one chunk's tables, then fill its deferred and self-referencing keys."""
        for plan in plans:
            counts[plan.name] += self._load_table(conn, plan)
        for plan in plans:
            self.current = plan.name
            for keys, frame in plan.updates:
                self.loader.update(conn, self.target.table(plan.name), keys, frame,
                                   self.batch_size)
        return counts

    def _load_table(self, conn: sa.Connection, plan) -> int:
        self.current = plan.name
        total, progress = len(plan.frame), self.options["progress"]

        def on_batch(done: int) -> None:
            if progress is not None:
                progress(plan.name, done, total)

        rows = self.loader.load(conn, self.target.table(plan.name), plan.frame, self.batch_size,
                                on_batch)
        if plan.name == self.tables[0]:
            pause_point("mid_copy")  # the first table's rows are in, the others' not yet
        (log.debug if "more" in self.options else log.info)("write: %s: %d row(s)", plan.name, rows)
        return rows
