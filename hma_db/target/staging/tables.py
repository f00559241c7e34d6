"""Staging tables: chunks loaded in parallel by Dask workers, moved by one transaction.

Why: with one writer, a clone can never be faster than its write (129,000 rows/s into
PostgreSQL on the development machine, ``docs/scaling.md``), however many workers sample. Here
each worker loads its own chunk, and the target still changes in one commit or not at all.

A run (:func:`hma_db.write_chunks` given ``staged=``), on PostgreSQL or MariaDB:

1. Once the target's tables are prepared in the load's transaction, :class:`Staging` takes a
   lock named after the run (PostgreSQL: a session advisory lock; MariaDB: ``GET_LOCK``) on a
   connection of its own, held for as long as the run lives, and creates the run's anchor table
   ``_hma_stage_<run>_live`` (committed). The run id (12 hex digits) keeps concurrent runs apart;
   the lock is how a later run or ``hma-db clean`` tells a killed run's staging tables (dropped)
   from a live one's (left alone). On MariaDB the anchor is also recorded in the run marker
   (:class:`~hma_db.target.guard.RunMarker`) before it is created.
2. A worker plans its chunk as the writer plans one (:func:`~hma_db.target.prepare.plan_chunk`:
   where existing PostgreSQL tables check each row's keys, the foreign keys that close a cycle
   are set aside for an UPDATE and self-references are ordered parents first) and loads it with
   the dialect's loader (COPY on PostgreSQL), each row tagged with its chunk number and a batch
   id drawn per attempt (a chunk Dask computes twice leaves two batches; only the one whose
   result came back is moved), in a transaction that first reads the anchor. The staging tables
   are the worker's own, created by it: ``_hma_stage_<run>_<n>_w<slot>`` per table (``n``: the
   table's place in the load order) and ``..._<n>_u<j>_w<slot>`` per set of keys to set after
   the rows. On PostgreSQL a slot is a worker thread (``UNLOGGED`` tables with a BRIN index on
   the chunk, which the worker summarizes after each chunk): the load's transaction locks each
   table it reads until it ends, so the tables must not grow with the chunks. On MariaDB a slot
   is a chunk (see :func:`_slot`).
3. The load's transaction moves each chunk as soon as it and every chunk before it are staged
   (:meth:`Staging.move_chunk`), while the workers stage the next ones: one ``INSERT ...
   SELECT ... WHERE`` chunk and batch per table in foreign-key order (no sort: the chunk's rows
   are read in the order they went in), then the deferred keys (``UPDATE ... FROM``). The
   writer then goes on as for chunks it loaded itself: counters reset, post-data DDL (indexes,
   foreign keys proven as they are added, triggers), keys proven, one ``COMMIT``.
4. Every table of the run is dropped after the commit or the rollback (:meth:`Staging.drop`),
   and after a killed run by :func:`drop_dead_staging` (every run into the target, ``hma-db
   clean``).

SQLite has one writer at a time: it is never staged (a clone into SQLite keeps the one writer).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import uuid

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from hma_db.engines import connect, safe_url
from hma_db.errors import WriteError
from hma_db.schema import Metadata, key_columns
from hma_db.target.loaders import loader_for
from hma_db.target.prepare import plan_chunk
from hma_db.target.types import family

log = logging.getLogger(__name__)

STAGE_PREFIX = "_hma_stage_"
# A run's tables: its anchor (``live``), then per worker thread (``w<slot>``) one per table
# (``<n>_w<slot>``) and per set of keys set after the rows (``<n>_u<j>_w<slot>``); ``<n>`` and
# ``<n>_u<j>`` alone are the shared tables of the releases before workers had tables of their own.
_NAME = re.compile(r"_hma_stage_([0-9a-f]{12})_(?:live|\d+(?:_u\d+)?(?:_w[0-9a-f]{16})?)")
_CHUNK, _BATCH = "_hma_chunk", "_hma_batch"
STAGE_COLUMNS = (_CHUNK, _BATCH)  # the staging tables' own columns, after the target's
_TEXT_FAMILIES = ("enum", "json", "array", "other")  # may be types of the load's own DDL
_LOCK = {"postgresql": "SELECT pg_advisory_lock(hashtextextended(:name, 0))",
         "mysql": "SELECT GET_LOCK(:name, 0)"}
_TRY_LOCK = {"postgresql": "SELECT pg_try_advisory_lock(hashtextextended(:name, 0))",
             "mysql": "SELECT GET_LOCK(:name, 0)"}
_UNLOCK = {"postgresql": "SELECT pg_advisory_unlock(hashtextextended(:name, 0))",
           "mysql": "SELECT RELEASE_LOCK(:name)"}


def is_staging_name(name: str) -> bool:
    """Whether a table is named exactly like a run's staging table: the next run into the
    target, or ``hma-db clean``, drops such a table when its run is not running."""
    return _NAME.fullmatch(name) is not None


def _lock_name(run: str) -> str:
    return f"hma_db_stage:{run}"


def update_columns(metadata: Metadata, name: str, tables: list[str]) -> list[list[str]]:
    """The column sets a plan may set after the rows for table ``name`` (see
    :func:`~hma_db.target.prepare.plan_table`): its key plus each cycle-closing or
    self-referencing foreign key."""
    pk = metadata.primary_key(name) if name in metadata.tables else []
    deferred = [r for r in metadata.deferred_relationships()
                if {r["parent_table_name"], r["child_table_name"]} <= set(tables)]
    rels = [r for r in deferred if r["child_table_name"] == name] + [
        r for r in metadata.self_references() if r["child_table_name"] == name and r not in deferred]
    found: list[list[str]] = []
    for rel in rels:
        columns = pk + key_columns(rel["child_foreign_key"])
        if columns not in found:
            found.append(columns)
    return found


def _texted(column: sa.Column, dialect: str) -> bool:
    return dialect == "postgresql" and (
        isinstance(column.type, sa.Enum | postgresql.DOMAIN) or family(column.type) in _TEXT_FAMILIES)


def _columns_sql(columns, dialect) -> str:
    """A staging table's column list: the target columns' types, TEXT where the workers may
    not see the type (see the module docstring)."""
    prep = dialect.identifier_preparer
    return ", ".join(
        f"{prep.quote(c.name)} "
        f"{'TEXT' if _texted(c, dialect.name) else c.type.compile(dialect=dialect)}"
        for c in columns)


@dataclasses.dataclass(frozen=True)
class StagedChunk:
    """What a worker staged for one chunk: its number and batch id (the rows are tagged with
    both), the slot of the tables it went into, the rows per table and, per table, which of its
    sets of keys to set after the rows were staged (positions in :func:`update_columns`)."""

    number: int
    batch: int
    slot: str
    rows: dict[str, int]
    updates: dict[str, list[int]]


_ENGINES: dict[str, sa.Engine] = {}  # a worker's engines, one per target, kept between chunks
_SLOTS: dict[tuple[str, int], str] = {}  # (run, thread) -> the slot of that thread's tables
_MADE: set[tuple[str, str]] = set()  # (url, table) staging tables this process created


def _slot(run: str, dialect: str) -> str:
    """Where this task stages: on PostgreSQL, this worker thread's tables in ``run``, so a
    chunk's rows are contiguous in them (one writer per table) and the tables grow with the
    threads, not the chunks (the load's transaction holds a lock on each table it reads until it
    ends, and PostgreSQL's lock table is sized for a few thousand: the cluster checks the room
    before the work, :func:`hma_db.cluster.stages_on_workers`). On MariaDB, tables of the
    chunk's own: InnoDB's ``INSERT ... SELECT`` keeps shared locks on the rows and gaps it read
    until the load commits, which would stop a worker appending to a table already moved from."""
    if dialect != "postgresql":  # 64 bits: no two chunks of a run share one
        return uuid.uuid4().hex[:16]
    key = (run, threading.get_ident())
    if key not in _SLOTS:
        _SLOTS[key] = uuid.uuid4().hex[:16]
    return _SLOTS[key]


@dataclasses.dataclass(repr=False)
class StageJob:
    """What a worker needs to stage a chunk; it pickles (Dask sends it to each worker once).
    ``url`` carries the password: the workers connect with it; the repr (which Dask writes in
    a failed task's log line) hides it. ``columns[name]`` is the column list of ``name``'s
    staging tables (SQL), ``updates[name]`` those of its keys set after the rows."""

    url: str
    dialect: str
    metadata: Metadata
    tables: list[str]
    real: dict[str, sa.Table]
    run: str
    schema: str | None
    columns: dict[str, str]
    updates: dict[str, list[str]]
    at_commit: bool
    batch_size: int

    def __repr__(self) -> str:
        return f"StageJob({safe_url(sa.make_url(self.url))}, {len(self.tables)} table(s))"

    def table(self, name: str, slot: str, update: int | None = None) -> sa.Table:
        """The staging table of ``name`` (or of its ``update``-th set of keys) in ``slot``:
        the target columns' types (which the loaders encode by), the chunk and the batch."""
        i = self.tables.index(name)
        suffix = f"_{i}" if update is None else f"_{i}_u{update}"
        real = self.real[name]
        columns = list(real.columns) if update is None else [
            real.c[c] for c in update_columns(self.metadata, name, self.tables)[update]]
        return sa.Table(f"{STAGE_PREFIX}{self.run}{suffix}_w{slot}", sa.MetaData(),
                        *[sa.Column(c.name, c.type) for c in columns],
                        sa.Column(_CHUNK, sa.Integer), sa.Column(_BATCH, sa.BigInteger),
                        schema=self.schema)

    def anchor(self) -> sa.Table:
        """The run's anchor table: it exists while the run does (see :meth:`stage`)."""
        return sa.Table(f"{STAGE_PREFIX}{self.run}_live", sa.MetaData(),
                        sa.Column("run", sa.Integer), schema=self.schema)

    def stage(self, number: int, chunk: dict[str, pd.DataFrame]) -> StagedChunk:
        """Load chunk ``number`` into this worker thread's staging tables (created on its first
        chunk), each row tagged with the chunk and a batch id drawn per attempt, in one
        transaction that first reads the run's anchor table: once the run has ended (the
        anchor dropped, waiting for the transactions that read it), a late task fails there
        and loads nothing."""
        engine = _ENGINES.get(self.url)
        if engine is None:
            # No pool: a worker may run many threads, and keeps no connection after the run.
            engine = _ENGINES[self.url] = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        slot, batch = _slot(self.run, self.dialect), uuid.uuid4().int >> 66  # 62 bits
        plans = plan_chunk(self.metadata, self.tables, self.real.__getitem__, chunk,
                           self.at_commit)
        loads: list[tuple[sa.Table, pd.DataFrame, str]] = []
        rows: dict[str, int] = {}
        updates: dict[str, list[int]] = {}
        for plan in plans:
            if len(plan.frame):
                rows[plan.name] = len(plan.frame)
                loads.append((self.table(plan.name, slot), plan.frame, self.columns[plan.name]))
            sets = update_columns(self.metadata, plan.name, self.tables)
            for _, frame in plan.updates:
                j = sets.index(list(frame.columns))
                updates.setdefault(plan.name, []).append(j)
                loads.append((self.table(plan.name, slot, j), frame, self.updates[plan.name][j]))
        loader = loader_for(self.dialect)
        with connect(engine, error=WriteError) as conn:
            self._create(conn, [(t, c) for t, _, c in loads if (self.url, t.name) not in _MADE])
            with conn.begin():
                conn.exec_driver_sql(self._alive(conn))  # and stays so until this commits
                for table, frame, _ in loads:
                    loader.load(conn, table, _tagged(frame, number, batch), self.batch_size)
                if self.dialect == "postgresql":  # the new pages' ranges, for the move's scan
                    for table, _, _ in loads:
                        conn.execute(sa.text(
                            "SELECT brin_summarize_new_values(c.oid) FROM pg_class AS c JOIN "
                            "pg_namespace AS n ON n.oid = c.relnamespace WHERE c.relname = :i "
                            "AND n.nspname = COALESCE(:s, current_schema())"),
                            {"i": table.name + "_c", "s": table.schema})
        return StagedChunk(number, batch, slot, rows, updates)

    def _alive(self, conn: sa.Connection) -> str:
        return f"SELECT 1 FROM {conn.dialect.identifier_preparer.format_table(self.anchor())} " \
            "WHERE 1 = 0"

    def _create(self, conn: sa.Connection, new: list[tuple[sa.Table, str]]) -> None:
        """Create the task's new staging tables. PostgreSQL: with a BRIN index on the chunk (a
        chunk's rows fill consecutive pages), in a transaction that reads the anchor first.
        MariaDB (a chunk's own tables, read whole) commits each DDL statement at once: a table
        made after the run ended (the anchor gone) is dropped again here."""
        if not new:
            return
        prep = conn.dialect.identifier_preparer
        tagged = f"{prep.quote(_CHUNK)} INTEGER, {prep.quote(_BATCH)} BIGINT"
        if self.dialect == "postgresql":
            with conn.begin():
                conn.exec_driver_sql(self._alive(conn))
                for table, columns in new:
                    conn.exec_driver_sql(f"CREATE UNLOGGED TABLE {prep.format_table(table)} "
                                         f"({columns}, {tagged})")
                    conn.exec_driver_sql(
                        f"CREATE INDEX {prep.quote(table.name + '_c')} ON "
                        f"{prep.format_table(table)} USING brin ({prep.quote(_CHUNK)}) "
                        "WITH (pages_per_range = 16)")
        else:
            created = []
            try:
                for table, columns in new:
                    conn.exec_driver_sql(self._alive(conn))
                    conn.exec_driver_sql(f"CREATE TABLE {prep.format_table(table)} ({columns}, "
                                         f"{tagged})")
                    created.append(table)
                conn.exec_driver_sql(self._alive(conn))
                conn.commit()
            except BaseException:
                _drop_quietly(conn, created)
                raise
        if self.dialect == "postgresql":  # MariaDB's are the chunk's own: never made again
            _MADE.update((self.url, t.name) for t, _ in new)


def _this(staged: StagedChunk, alias: str = "") -> str:
    """The condition for the rows of one staged chunk (its chunk number and batch: a chunk
    Dask computed twice left two batches, and only the one whose result came back is moved)."""
    return f"{alias}{_CHUNK} = {int(staged.number)} AND {alias}{_BATCH} = {int(staged.batch)}"


def _tagged(frame: pd.DataFrame, number: int, batch: int) -> pd.DataFrame:
    return frame.assign(**{_CHUNK: number, _BATCH: batch})


def _drop_quietly(conn: sa.Connection, tables: list[sa.Table]) -> None:
    if not tables:
        return
    prep = conn.dialect.identifier_preparer
    try:
        conn.rollback()
        conn.exec_driver_sql("DROP TABLE IF EXISTS " + ", ".join(
            prep.format_table(t) for t in tables))
        conn.commit()
    except Exception:  # noqa: BLE001 - left to the run's own drop, the next run or hma-db clean
        log.debug("dropping a late task's staging tables failed", exc_info=True)


class Staging:
    """One run in the target: its lock and anchor table (:meth:`create`), the staged chunks
    moved into the target tables one at a time in the load's transaction
    (:meth:`move_chunk`), every table of the run dropped at the end (:meth:`drop`); see the
    module docstring. ``target`` is the write's :class:`~hma_db.target.tables.TargetTables`."""

    def __init__(self, target, at_commit: bool, batch_size: int):
        self.target, self.at_commit, self.batch_size = target, at_commit, batch_size
        self.dialect = target.dialect
        self.run = uuid.uuid4().hex[:12]
        self.conn: sa.Connection | None = None
        self.job: StageJob | None = None
        self.types: dict[str, dict[str, str]] = {}

    def create(self) -> StageJob:
        """Hold the run's lock and create its anchor table (committed); the workers' job."""
        if self.dialect not in _LOCK:
            raise WriteError(f"Staging tables need PostgreSQL or MariaDB; {self.dialect} has "
                             "one writer (write its chunks with write_chunks alone).")
        engine = self.target.engine
        self.conn = connect(engine, error=WriteError).execution_options(
            isolation_level="AUTOCOMMIT")
        self.conn.execute(sa.text(_LOCK[self.dialect]), {"name": _lock_name(self.run)})
        tables, dialect = list(self.target.tables), self.conn.dialect
        real = {n: self.target.table(n) for n in tables}
        for name in tables:
            taken = [c for c in (_CHUNK, _BATCH) if c in real[name].c]
            if taken:
                raise WriteError(f"Table '{name}' has a column named {taken[0]}, which its "
                                 "staging tables need for themselves; write it without a "
                                 "cluster.")
        self.job = StageJob(
            engine.url.render_as_string(hide_password=False), self.dialect,
            self.target.metadata, tables, real, self.run, self._schema(),
            {n: _columns_sql(real[n].columns, dialect) for n in tables},
            {n: [] if self.at_commit else [
                _columns_sql([real[n].c[c] for c in columns], dialect)
                for columns in update_columns(self.target.metadata, n, tables)]
             for n in tables},
            self.at_commit, self.batch_size)
        anchor = self.job.anchor()
        if self.target.marker is not None:  # MariaDB: listed before it exists
            self.target.marker.record(self.conn, "table", [anchor.name])
        anchor.create(self.conn)
        log.info("write: run %s stages its chunks in %s%s_*", self.run, STAGE_PREFIX, self.run)
        return self.job

    def _schema(self) -> str | None:
        """The target schema when the workers can see it (it exists, committed); else the
        connection's default one (a PostgreSQL schema this run creates is not committed yet)."""
        schema = self.target.schema
        if schema is None:
            return None
        found = self.conn.execute(sa.text("SELECT 1 FROM information_schema.schemata WHERE "
                                          "schema_name = :s"), {"s": schema}).first()
        return schema if found else None

    # ------------------------------------------------------------------ the move
    def _types(self, conn: sa.Connection, real: sa.Table) -> dict[str, str]:
        """PostgreSQL: the target table's column types as the server names them."""
        if self.dialect != "postgresql":
            return {}
        if real.name not in self.types:  # by name: a '%' in it would be doubled in a regclass
            rows = conn.execute(sa.text(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a "
                "JOIN pg_class AS c ON c.oid = a.attrelid JOIN pg_namespace AS n ON n.oid = "
                "c.relnamespace WHERE c.relname = :t AND n.nspname = COALESCE(:s, "
                "current_schema()) AND a.attnum > 0 AND NOT a.attisdropped"),
                {"t": real.name, "s": real.schema})
            self.types[real.name] = dict(rows.all())
        return self.types[real.name]

    def _value(self, conn, column: sa.Column, types: dict[str, str], alias: str = "") -> str:
        quoted = alias + conn.dialect.identifier_preparer.quote(column.name)
        if _texted(column, self.dialect):
            return f"CAST({quoted} AS {types[column.name]})"
        return quoted

    def move_chunk(self, conn: sa.Connection, staged: StagedChunk, columns: dict[str, list[str]],
                   on_table=None) -> dict[str, int]:
        """Move one staged chunk into the target tables in the load's transaction: each table's
        rows (``columns[name]``: the columns the data had) in foreign-key order, then the keys
        set after the rows; the rows moved per table. ``on_table(name)`` is called before each
        table (for the write's error messages)."""
        prep = conn.dialect.identifier_preparer
        override = " OVERRIDING SYSTEM VALUE" if self.dialect == "postgresql" else ""
        moved = {}
        for name in self.job.tables:
            if not staged.rows.get(name):
                continue
            if on_table is not None:
                on_table(name)
            real, stage = self.target.table(name), self.job.table(name, staged.slot)
            types = self._types(conn, real)
            select = ", ".join(self._value(conn, stage.c[c], types) for c in columns[name])
            # No ORDER BY: the chunk's rows went in by one COPY (one writer per staging table),
            # and the scan of the chunk index's pages reads them in that order.
            result = conn.exec_driver_sql(
                f"INSERT INTO {prep.format_table(real)} "
                f"({', '.join(prep.quote(c) for c in columns[name])}){override} "
                f"SELECT {select} FROM {prep.format_table(stage)} WHERE {_this(staged)}")
            if result.rowcount != staged.rows[name]:  # never commit fewer rows than staged
                raise WriteError(f"Table '{name}': chunk {staged.number} moved "
                                 f"{result.rowcount} of its {staged.rows[name]} staged rows.")
            moved[name] = staged.rows[name]
        for name, sets in staged.updates.items():
            if on_table is not None:
                on_table(name)
            for j in sets:
                self._update(conn, name, self.job.table(name, staged.slot, j), staged)
        return moved

    def _update(self, conn: sa.Connection, name: str, stage: sa.Table,
                staged: StagedChunk) -> None:
        """Set the foreign keys staged to be set after the rows (PostgreSQL's existing tables
        only: everywhere else the keys are proven at commit and nothing is set aside)."""
        prep = conn.dialect.identifier_preparer
        real = self.target.table(name)
        pk = self.target.metadata.primary_key(name)
        types = self._types(conn, real)
        sets = ", ".join(f"{prep.quote(c.name)} = {self._value(conn, c, types, 'u.')}"
                         for c in stage.columns if c.name not in (*pk, _CHUNK, _BATCH))
        where = " AND ".join(f"t.{prep.quote(c)} = {self._value(conn, stage.c[c], types, 'u.')}"
                             for c in pk)
        conn.exec_driver_sql(f"UPDATE {prep.format_table(real)} AS t SET {sets} FROM "
                             f"{prep.format_table(stage)} AS u WHERE {where} AND "
                             f"{_this(staged, 'u.')}")

    def drop(self) -> None:
        """Drop the run's tables and release its lock (after the load's transaction ended: it
        holds locks on them until then). The anchor goes first, once the workers' transactions
        that read it have ended, so that no task stages anything after the others are listed.
        A failure here is a warning: the next run into the target, or ``hma-db clean``, drops
        them."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        prep = conn.dialect.identifier_preparer
        try:
            if self.job is not None:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {prep.format_table(self.job.anchor())}")
                tables = [(s, n) for s, n, run in _listed(conn, self.dialect, self.job.schema)
                          if run == self.run]
                _drop(conn, tables)
            conn.execute(sa.text(_UNLOCK[self.dialect]), {"name": _lock_name(self.run)})
            conn.close()
            log.info("write: staging tables %s%s_* dropped", STAGE_PREFIX, self.run)
        except Exception as exc:  # noqa: BLE001 - the rows are safe; the tables are found later
            log.warning("write: dropping the staging tables %s%s_* failed (%s); the next run "
                        "into the target or hma-db clean drops them", STAGE_PREFIX, self.run,
                        str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
            conn.invalidate()


def _listed(conn: sa.Connection, dialect: str, schema: str | None
            ) -> list[tuple[str, str, str]]:
    """Every table named like a run's staging table: (schema, name, run). PostgreSQL: every
    schema of the database (a run whose target schema was new stages in the default one).
    MariaDB: the target database (``schema``, else the connection's)."""
    if dialect == "postgresql":
        found = conn.execute(sa.text(
            "SELECT n.nspname, c.relname FROM pg_class AS c JOIN pg_namespace AS n "
            "ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND c.relname LIKE '%hma%stage%' "
            "ORDER BY 1, 2")).all()
    elif dialect == "mysql":
        found = conn.execute(sa.text(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
            "COALESCE(:s, DATABASE()) AND TABLE_NAME LIKE '%hma%stage%' ORDER BY 1, 2"),
            {"s": schema}).all()
    else:
        return []
    return [(where, name, match.group(1)) for where, name in found
            if (match := _NAME.fullmatch(name))]


def _drop(conn: sa.Connection, tables: list[tuple[str, str]], per_statement: int = 200) -> None:
    """Drop (schema, name) tables, a few hundred per statement (a large run has a table per
    chunk and table)."""
    quote = conn.dialect.identifier_preparer.quote
    for start in range(0, len(tables), per_statement):
        conn.exec_driver_sql("DROP TABLE IF EXISTS " + ", ".join(
            f"{quote(s)}.{quote(n)}" for s, n in tables[start:start + per_statement]))


def drop_dead_staging(conn: sa.Connection, dialect: str, schema: str | None) -> list[str]:
    """Drop the staging tables of runs that are gone (their lock is free); one line per run.
    Only tables named exactly like a run's staging tables are touched; those of a live run
    (another clone loading now) are left alone. ``conn`` should be in autocommit.

    PostgreSQL: every schema of the database (a run whose target schema was new stages in the
    default one). MariaDB: the target database (``schema``, else the connection's)."""
    runs: dict[str, list[tuple[str, str]]] = {}
    for where, name, run in _listed(conn, dialect, schema):
        runs.setdefault(run, []).append((where, name))
    lines = []
    for run, tables in sorted(runs.items()):
        lock = {"name": _lock_name(run)}
        if not conn.execute(sa.text(_TRY_LOCK[dialect]), lock).scalar():
            log.info("write: staging tables of run %s are in use by a running load; left", run)
            continue
        try:  # the anchor first: a late task of the run stages nothing after the listing
            _drop(conn, sorted(tables, key=lambda t: not t[1].endswith("_live")))
        finally:
            conn.execute(sa.text(_UNLOCK[dialect]), lock)
        lines.append(f"dropped {len(tables)} staging table(s) {STAGE_PREFIX}{run}_* left by an "
                     "interrupted cluster run")
        log.warning("write: %s", lines[-1])
    return lines
