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
   the dialect's loader (COPY on PostgreSQL) into tables of its own: ``_hma_stage_<run>_<n>_b<id>``
   per table with rows (``n``: the table's place in the load order; ``id``: a batch id drawn
   per attempt, so a chunk Dask computes twice leaves two batches, and only the one whose result
   came back is moved) and ``..._<n>_u<j>_b<id>`` per set of keys to set after the rows;
   ``UNLOGGED`` on PostgreSQL (no WAL: the rows are written once more by the move). Tables of one
   chunk cost no index and no sort: the move reads each one whole, in the order it was loaded.
3. The load's transaction moves each chunk as soon as it and every chunk before it are staged
   (:meth:`Staging.move_chunk`), while the workers stage the next ones: one ``INSERT ...
   SELECT`` per table in foreign-key order, then the deferred keys (``UPDATE ... FROM``). The
   target gets the same rows in the same order for any number of workers. The writer then goes
   on as for chunks it loaded itself: counters reset, post-data DDL (indexes, foreign keys proven
   as they are added, triggers), keys proven, one ``COMMIT``.
4. Every table of the run is dropped after the commit or the rollback (:meth:`Staging.drop`),
   and after a killed run by :func:`drop_dead_staging` (every run into the target, ``hma-db
   clean``).

SQLite has one writer at a time: it is never staged (a clone into SQLite keeps the one writer).
"""

from __future__ import annotations

import dataclasses
import logging
import re
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
# A run's tables: its anchor (``live``), then one per table and chunk (``<n>_b<batch>``) and per
# set of keys set after the rows (``<n>_u<j>_b<batch>``); ``<n>`` and ``<n>_u<j>`` alone are the
# shared tables of the releases before the chunks got tables of their own.
_NAME = re.compile(r"_hma_stage_([0-9a-f]{12})_(?:live|\d+(?:_u\d+)?(?:_b\d+)?)")
_TEXT_FAMILIES = ("enum", "json", "array", "other")  # may be types of the load's own DDL
_LOCK = {"postgresql": "SELECT pg_advisory_lock(hashtextextended(:name, 0))",
         "mysql": "SELECT GET_LOCK(:name, 0)"}
_TRY_LOCK = {"postgresql": "SELECT pg_try_advisory_lock(hashtextextended(:name, 0))",
             "mysql": "SELECT GET_LOCK(:name, 0)"}
_UNLOCK = {"postgresql": "SELECT pg_advisory_unlock(hashtextextended(:name, 0))",
           "mysql": "SELECT RELEASE_LOCK(:name)"}


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
    """What a worker staged for one chunk: its batch id (which names its tables), the rows
    per table (a table without rows has no staging table) and, per table, which of its sets of
    keys to set after the rows were staged (their positions in :func:`update_columns`)."""

    number: int
    batch: int
    rows: dict[str, int]
    updates: dict[str, list[int]]


_ENGINES: dict[str, sa.Engine] = {}  # a worker's engines, one per target, kept between chunks


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

    def table(self, name: str, batch: int, update: int | None = None) -> sa.Table:
        """The staging table of ``name`` (or of its ``update``-th set of keys) for ``batch``:
        the target columns' types, which the loaders encode by."""
        i = self.tables.index(name)
        suffix = f"_{i}" if update is None else f"_{i}_u{update}"
        real = self.real[name]
        columns = list(real.columns) if update is None else [
            real.c[c] for c in update_columns(self.metadata, name, self.tables)[update]]
        return sa.Table(f"{STAGE_PREFIX}{self.run}{suffix}_b{batch}", sa.MetaData(),
                        *[sa.Column(c.name, c.type) for c in columns], schema=self.schema)

    def anchor(self) -> sa.Table:
        """The run's anchor table: it exists while the run does (see :meth:`stage`)."""
        return sa.Table(f"{STAGE_PREFIX}{self.run}_live", sa.MetaData(),
                        sa.Column("run", sa.Integer), schema=self.schema)

    def stage(self, number: int, chunk: dict[str, pd.DataFrame]) -> StagedChunk:
        """Load chunk ``number`` into staging tables of its own, created here: one per table
        with rows, and one per set of keys to set after the rows.

        On PostgreSQL the tables are created and loaded in one transaction, which first reads
        the run's anchor table: once the run has ended (the anchor dropped, waiting for the
        transactions that read it), a late task fails there and leaves nothing. MariaDB commits
        DDL at once: the tables are created first, then loaded in a transaction that reads the
        anchor; a task that fails drops what it created (a task killed in between leaves
        tables that the next run into the target, or ``hma-db clean``, drops)."""
        engine = _ENGINES.get(self.url)
        if engine is None:
            engine = _ENGINES[self.url] = sa.create_engine(self.url, pool_size=1)
        batch = uuid.uuid4().int >> 66  # 62 bits
        plans = plan_chunk(self.metadata, self.tables, self.real.__getitem__, chunk,
                           self.at_commit)
        loads: list[tuple[sa.Table, pd.DataFrame, str]] = []
        rows: dict[str, int] = {}
        updates: dict[str, list[int]] = {}
        for plan in plans:
            if len(plan.frame):
                rows[plan.name] = len(plan.frame)
                loads.append((self.table(plan.name, batch), plan.frame, self.columns[plan.name]))
            sets = update_columns(self.metadata, plan.name, self.tables)
            for _, frame in plan.updates:
                j = sets.index(list(frame.columns))
                updates.setdefault(plan.name, []).append(j)
                loads.append((self.table(plan.name, batch, j), frame,
                              self.updates[plan.name][j]))
        with connect(engine, error=WriteError) as conn:
            created: list[sa.Table] = []
            try:
                self._load(conn, loads, created)
            except BaseException:
                if created and self.dialect == "mysql":
                    _drop_quietly(conn, created)
                raise
        return StagedChunk(number, batch, rows, updates)

    def _load(self, conn: sa.Connection, loads, created: list[sa.Table]) -> None:
        prep, loader = conn.dialect.identifier_preparer, loader_for(self.dialect)
        unlogged = "UNLOGGED " if self.dialect == "postgresql" else ""
        check = f"SELECT 1 FROM {prep.format_table(self.anchor())} WHERE 1 = 0"
        if self.dialect == "mysql":  # DDL commits at once: the tables before the transaction
            for table, _, columns in loads:
                created.append(table)
                conn.exec_driver_sql(f"CREATE TABLE {prep.format_table(table)} ({columns})")
            conn.commit()
        with conn.begin():
            conn.exec_driver_sql(check)  # the run is alive (and stays so until this commits)
            for table, frame, columns in loads:
                if self.dialect != "mysql":
                    conn.exec_driver_sql(
                        f"CREATE {unlogged}TABLE {prep.format_table(table)} ({columns})")
                loader.load(conn, table, frame, self.batch_size)


def _drop_quietly(conn: sa.Connection, tables: list[sa.Table]) -> None:
    prep = conn.dialect.identifier_preparer
    try:
        conn.rollback()
        conn.exec_driver_sql("DROP TABLE IF EXISTS " + ", ".join(
            prep.format_table(t) for t in tables))
        conn.commit()
    except Exception:  # noqa: BLE001 - left to the run's own drop, the next run or hma-db clean
        log.debug("dropping a failed chunk's staging tables failed", exc_info=True)


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
        if real.name not in self.types:
            rows = conn.execute(sa.text(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                "attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped"),
                {"t": conn.dialect.identifier_preparer.format_table(real)})
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
            real, stage = self.target.table(name), self.job.table(name, staged.batch)
            types = self._types(conn, real)
            select = ", ".join(self._value(conn, stage.c[c], types) for c in columns[name])
            # No ORDER BY: one COPY filled the staging table, and a scan from its first page
            # (synchronize_seqscans off, set once per load) gives the rows in that order.
            conn.exec_driver_sql(
                f"INSERT INTO {prep.format_table(real)} "
                f"({', '.join(prep.quote(c) for c in columns[name])}){override} "
                f"SELECT {select} FROM {prep.format_table(stage)}")
            moved[name] = staged.rows[name]
        for name, sets in staged.updates.items():
            if on_table is not None:
                on_table(name)
            for j in sets:
                self._update(conn, name, self.job.table(name, staged.batch, j))
        return moved

    def _update(self, conn: sa.Connection, name: str, stage: sa.Table) -> None:
        """Set the foreign keys staged to be set after the rows (PostgreSQL's existing tables
        only: everywhere else the keys are proven at commit and nothing is set aside)."""
        prep = conn.dialect.identifier_preparer
        real = self.target.table(name)
        pk = self.target.metadata.primary_key(name)
        types = self._types(conn, real)
        sets = ", ".join(f"{prep.quote(c.name)} = {self._value(conn, c, types, 'u.')}"
                         for c in stage.columns if c.name not in pk)
        where = " AND ".join(f"t.{prep.quote(c)} = {self._value(conn, stage.c[c], types, 'u.')}"
                             for c in pk)
        conn.exec_driver_sql(f"UPDATE {prep.format_table(real)} AS t SET {sets} FROM "
                             f"{prep.format_table(stage)} AS u WHERE {where}")

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
        try:
            _drop(conn, tables)
        finally:
            conn.execute(sa.text(_UNLOCK[dialect]), lock)
        lines.append(f"dropped {len(tables)} staging table(s) {STAGE_PREFIX}{run}_* left by an "
                     "interrupted cluster run")
        log.warning("write: %s", lines[-1])
    return lines
