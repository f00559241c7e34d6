"""Staging tables: chunks loaded in parallel by Dask workers, moved by one transaction.

Why: with one writer, a clone can never be faster than its write (129,000 rows/s into
PostgreSQL on the development machine, ``docs/scaling.md``), however many workers sample. Here
each worker loads its own chunk, and the target still changes in one commit or not at all.

A run (:func:`hma_db.write_chunks` given ``staged=``), on PostgreSQL or MariaDB:

1. Once the target's tables are prepared in the load's transaction, :class:`Staging` creates one
   staging table per written table, ``_hma_stage_<run>_<n>`` (``n``: the table's place in the
   load order), on a connection of its own and committed at once, so the workers see them;
   ``UNLOGGED`` on PostgreSQL (no WAL: the rows are written once more by the move). The run id
   (12 hex digits) keeps concurrent runs apart. That connection holds a lock named after the run
   (PostgreSQL: a session advisory lock; MariaDB: ``GET_LOCK``) for as long as the run lives,
   which is how a later run or ``hma-db clean`` tells a killed run's staging tables (dropped) from
   a live one's (left alone). On MariaDB, whose DDL commits at once, they are also recorded in the
   run marker (:class:`~hma_db.target.guard.RunMarker`) before they are created, so a failed run
   drops them with everything else it created.
2. A worker plans its chunk as the writer plans one (:func:`~hma_db.target.prepare.plan_chunk`:
   where existing PostgreSQL tables check each row's keys, the foreign keys that close a cycle
   are set aside for an UPDATE and self-references are ordered parents first; those updates get
   staging tables of their own, ``..._<n>_u<j>``) and loads it with the dialect's loader (COPY on
   PostgreSQL), each row tagged with its chunk, its position and a batch id drawn per attempt, in
   one transaction. A chunk Dask computes twice (a worker lost after its commit) leaves two
   batches; only the one whose result came back is moved.
3. The load's transaction moves the rows (:meth:`Staging.move_table`): one ``INSERT ... SELECT``
   per table in foreign-key order, ``ORDER BY`` chunk and position, so the target gets the same
   rows in the same order for any number of workers; then the deferred keys (``UPDATE ...
   FROM``). The writer then goes on as for chunks it loaded itself: counters reset, post-data DDL
   (indexes, foreign keys proven as they are added, triggers), keys proven, one ``COMMIT``.
4. The staging tables are dropped after the commit or the rollback (:meth:`Staging.drop`), and
   after a killed run by :func:`drop_dead_staging` (every run into the target, ``hma-db clean``).

Column types: MariaDB's staging columns are the target's. PostgreSQL's are too where the type is
built in; a type the load's own uncommitted transaction may have created (an enum, a domain, a
type of the source's DDL) is invisible to the workers, so its column is TEXT and the move casts
it to the target column's type. COPY text is the same either way.

SQLite has one writer at a time: it is never staged (a clone into SQLite keeps the one writer).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import uuid

import numpy as np
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
_NAME = re.compile(r"_hma_stage_([0-9a-f]{12})_\d+(?:_u\d+)?")
_CHUNK, _ROW, _BATCH = "_hma_chunk", "_hma_row", "_hma_batch"
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


def _stage_table(md: sa.MetaData, name: str, schema: str | None, columns) -> sa.Table:
    """A staging table whose columns carry the target columns' types (the loaders encode by
    them), with the chunk, position and batch columns."""
    taken = [c.name for c in columns if c.name in (_CHUNK, _ROW, _BATCH)]
    if taken:
        raise WriteError(f"Table '{columns[0].table.name}' has a column named {taken[0]}, which "
                         "its staging table needs for itself; write it without a cluster.")
    return sa.Table(name, md, *[sa.Column(c.name, c.type) for c in columns],
                    sa.Column(_CHUNK, sa.Integer), sa.Column(_ROW, sa.BigInteger),
                    sa.Column(_BATCH, sa.BigInteger), schema=schema)


def _texted(column: sa.Column, dialect: str) -> bool:
    return dialect == "postgresql" and (
        isinstance(column.type, sa.Enum | postgresql.DOMAIN) or family(column.type) in _TEXT_FAMILIES)


def _tagged(frame: pd.DataFrame, number: int, batch: int) -> pd.DataFrame:
    return frame.assign(**{_CHUNK: number, _ROW: np.arange(len(frame), dtype=np.int64),
                           _BATCH: batch})


_ENGINES: dict[str, sa.Engine] = {}  # a worker's engines, one per target, kept between chunks


@dataclasses.dataclass(repr=False)
class StageJob:
    """What a worker needs to stage a chunk; it pickles (Dask sends it to each worker once).
    ``url`` carries the password: the workers connect with it; the repr (which Dask writes in
    a failed task's log line) hides it."""

    url: str
    dialect: str
    metadata: Metadata
    tables: list[str]
    real: dict[str, sa.Table]
    staging: dict[str, sa.Table]
    updates: dict[str, list[sa.Table]]
    at_commit: bool
    batch_size: int

    def __repr__(self) -> str:
        return f"StageJob({safe_url(sa.make_url(self.url))}, {len(self.tables)} table(s))"

    def stage(self, number: int, chunk: dict[str, pd.DataFrame]) -> tuple[int, dict[str, int]]:
        """Load chunk ``number`` into the staging tables in one transaction; its batch id and
        rows per table."""
        engine = _ENGINES.get(self.url)
        if engine is None:
            engine = _ENGINES[self.url] = sa.create_engine(self.url, pool_size=1)
        batch = uuid.uuid4().int >> 66  # 62 bits: a BIGINT
        loader = loader_for(self.dialect)
        plans = plan_chunk(self.metadata, self.tables, self.real.__getitem__, chunk,
                           self.at_commit)
        rows = {}
        with connect(engine, error=WriteError) as conn, conn.begin():
            for plan in plans:
                rows[plan.name] = loader.load(conn, self.staging[plan.name],
                                              _tagged(plan.frame, number, batch), self.batch_size)
                for _, frame in plan.updates:
                    loader.load(conn, self._update_table(plan.name, list(frame.columns)),
                                _tagged(frame, number, batch), self.batch_size)
        return batch, rows

    def _update_table(self, name: str, columns: list[str]) -> sa.Table:
        for table in self.updates.get(name, []):
            if [c.name for c in table.columns][:-3] == columns:
                return table
        raise WriteError(f"Table '{name}': no staging table for the keys set after the rows "
                         f"({', '.join(columns)})")


class Staging:
    """One run's staging tables in the target, created by :meth:`create`, moved into the
    target tables by :meth:`move_table` / :meth:`move_updates` in the load's transaction and
    dropped by :meth:`drop` (see the module docstring). ``target`` is the write's
    :class:`~hma_db.target.tables.TargetTables`."""

    def __init__(self, target, at_commit: bool, batch_size: int):
        self.target, self.at_commit, self.batch_size = target, at_commit, batch_size
        self.dialect = target.dialect
        self.run = uuid.uuid4().hex[:12]
        self.conn: sa.Connection | None = None
        self.tables: dict[str, sa.Table] = {}
        self.updates: dict[str, list[sa.Table]] = {}
        self.created: list[sa.Table] = []
        self.batches: list[int] = []

    def create(self) -> StageJob:
        """Create the staging tables (committed) and hold the run's lock; the workers' job."""
        if self.dialect not in _LOCK:
            raise WriteError(f"Staging tables need PostgreSQL or MariaDB; {self.dialect} has "
                             "one writer (write its chunks with write_chunks alone).")
        engine = self.target.engine
        self.conn = connect(engine, error=WriteError).execution_options(
            isolation_level="AUTOCOMMIT")
        self.conn.execute(sa.text(_LOCK[self.dialect]), {"name": _lock_name(self.run)})
        schema = self._schema()
        md, tables = sa.MetaData(), self.target.tables
        for i, name in enumerate(tables):
            real = self.target.table(name)
            self.tables[name] = _stage_table(md, f"{STAGE_PREFIX}{self.run}_{i}", schema,
                                             real.columns)
            self.updates[name] = [] if self.at_commit else [
                _stage_table(md, f"{STAGE_PREFIX}{self.run}_{i}_u{j}", schema,
                             [real.c[c] for c in columns])
                for j, columns in enumerate(update_columns(self.target.metadata, name, tables))]
        every = [*self.tables.values(), *[t for ts in self.updates.values() for t in ts]]
        if self.target.marker is not None:  # MariaDB: listed before they exist
            self.target.marker.record(self.conn, "table", [t.name for t in every])
        for table in every:
            self.conn.exec_driver_sql(self._create_sql(table))
            self.created.append(table)
        log.info("write: %d staging table(s) %s%s_* created", len(every), STAGE_PREFIX, self.run)
        return StageJob(engine.url.render_as_string(hide_password=False), self.dialect,
                        self.target.metadata, list(tables),
                        {n: self.target.table(n) for n in tables}, self.tables, self.updates,
                        self.at_commit, self.batch_size)

    def _schema(self) -> str | None:
        """The target schema when the workers can see it (it exists, committed); else the
        connection's default one (a PostgreSQL schema this run creates is not committed yet)."""
        schema = self.target.schema
        if schema is None:
            return None
        found = self.conn.execute(sa.text("SELECT 1 FROM information_schema.schemata WHERE "
                                          "schema_name = :s"), {"s": schema}).first()
        return schema if found else None

    def _create_sql(self, table: sa.Table) -> str:
        prep, dialect = self.conn.dialect.identifier_preparer, self.conn.dialect
        columns = []
        for column in table.columns:
            if column.name in (_CHUNK, _ROW, _BATCH):
                kind = "INTEGER" if column.name == _CHUNK else "BIGINT"
            elif _texted(column, self.dialect):
                kind = "TEXT"
            else:
                kind = column.type.compile(dialect=dialect)
            columns.append(f"{prep.quote(column.name)} {kind}")
        unlogged = "UNLOGGED " if self.dialect == "postgresql" else ""
        return f"CREATE {unlogged}TABLE {prep.format_table(table)} ({', '.join(columns)})"

    # ------------------------------------------------------------------ the move
    def _types(self, conn: sa.Connection, real: sa.Table) -> dict[str, str]:
        """PostgreSQL: the target table's column types as the server names them."""
        if self.dialect != "postgresql":
            return {}
        rows = conn.execute(sa.text(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
            "attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped"),
            {"t": conn.dialect.identifier_preparer.format_table(real)})
        return dict(rows.all())

    def _value(self, conn, stage: sa.Table, column: str, types: dict[str, str],
               alias: str = "") -> str:
        quoted = alias + conn.dialect.identifier_preparer.quote(column)
        if _texted(stage.c[column], self.dialect):
            return f"CAST({quoted} AS {types[column]})"
        return quoted

    def _batches(self) -> str:
        return ", ".join(str(int(b)) for b in self.batches) or "NULL"

    def move_table(self, conn: sa.Connection, name: str, columns: list[str]) -> int:
        """Move the staged rows of ``name`` (its ``columns``, as the data had them) into the
        target table, in chunk and row order; the rows moved."""
        prep = conn.dialect.identifier_preparer
        real, stage = self.target.table(name), self.tables[name]
        types = self._types(conn, real)
        select = ", ".join(self._value(conn, stage, c, types) for c in columns)
        override = " OVERRIDING SYSTEM VALUE" if self.dialect == "postgresql" else ""
        result = conn.exec_driver_sql(
            f"INSERT INTO {prep.format_table(real)} ({', '.join(prep.quote(c) for c in columns)})"
            f"{override} SELECT {select} FROM {prep.format_table(stage)} WHERE {_BATCH} IN "
            f"({self._batches()}) ORDER BY {_CHUNK}, {_ROW}")
        return result.rowcount

    def move_updates(self, conn: sa.Connection, name: str) -> None:
        """Set the foreign keys staged to be set after the rows (PostgreSQL's existing tables
        only: everywhere else the keys are proven at commit and nothing is set aside)."""
        prep = conn.dialect.identifier_preparer
        real = self.target.table(name)
        pk = self.target.metadata.primary_key(name)
        types = self._types(conn, real) if self.updates.get(name) else {}
        for stage in self.updates.get(name, []):
            columns = [c.name for c in stage.columns][:-3]
            sets = ", ".join(f"{prep.quote(c)} = {self._value(conn, stage, c, types, 'u.')}"
                             for c in columns if c not in pk)
            where = " AND ".join(f"t.{prep.quote(c)} = {self._value(conn, stage, c, types, 'u.')}"
                                 for c in pk)
            conn.exec_driver_sql(
                f"UPDATE {prep.format_table(real)} AS t SET {sets} FROM "
                f"{prep.format_table(stage)} AS u WHERE {where} AND u.{_BATCH} IN "
                f"({self._batches()})")

    def drop(self) -> None:
        """Drop the staging tables and release the run's lock (after the load's transaction
        ended: it holds locks on them until then). A failure here is a warning: the next run
        into the target, or ``hma-db clean``, drops them."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        prep = conn.dialect.identifier_preparer
        try:
            if self.created:
                conn.exec_driver_sql("DROP TABLE IF EXISTS " + ", ".join(
                    prep.format_table(t) for t in self.created))
            conn.execute(sa.text(_UNLOCK[self.dialect]), {"name": _lock_name(self.run)})
            conn.close()
            log.info("write: staging tables %s%s_* dropped", STAGE_PREFIX, self.run)
        except Exception as exc:  # noqa: BLE001 - the rows are safe; the tables are found later
            log.warning("write: dropping the staging tables %s%s_* failed (%s); the next run "
                        "into the target or hma-db clean drops them", STAGE_PREFIX, self.run,
                        str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
            conn.invalidate()


def drop_dead_staging(conn: sa.Connection, dialect: str, schema: str | None) -> list[str]:
    """Drop the staging tables of runs that are gone (their lock is free); one line per run.
    Only tables named exactly like a run's staging tables are touched; those of a live run
    (another clone loading now) are left alone. ``conn`` should be in autocommit.

    PostgreSQL: every schema of the database (a run whose target schema was new stages in the
    default one). MariaDB: the target database (``schema``, else the connection's)."""
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
    runs: dict[str, list[tuple[str, str]]] = {}
    for where, name in found:
        match = _NAME.fullmatch(name)
        if match:
            runs.setdefault(match.group(1), []).append((where, name))
    prep, lines = conn.dialect.identifier_preparer, []
    for run, tables in sorted(runs.items()):
        lock = {"name": _lock_name(run)}
        if not conn.execute(sa.text(_TRY_LOCK[dialect]), lock).scalar():
            log.info("write: staging tables of run %s are in use by a running load; left", run)
            continue
        try:
            conn.exec_driver_sql("DROP TABLE IF EXISTS " + ", ".join(
                f"{prep.quote(s)}.{prep.quote(n)}" for s, n in tables))
        finally:
            conn.execute(sa.text(_UNLOCK[dialect]), lock)
        lines.append(f"dropped {len(tables)} staging table(s) {STAGE_PREFIX}{run}_* left by an "
                     "interrupted cluster run")
        log.warning("write: %s", lines[-1])
    return lines
