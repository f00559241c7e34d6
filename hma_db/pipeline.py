"""The orchestrator: reflect, read, fit, sample and write in one call.

This is the only module that imports every stage. :func:`clone` is the whole job;
:func:`fit_database` and :func:`sample_to_database` split it in two for users who keep a fitted
model between runs (they back ``HMASynthesizer.fit_database`` and
``HMASynthesizer.sample_to_database``); :func:`sample_to_directory` writes CSV or Parquet files
instead (``HMASynthesizer.sample_to_directory``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from hma_db.engines import Source, connect, engine_for, safe_url
from hma_db.errors import DataError, WriteError
from hma_db.model import target_rows
from hma_db.progress import RowBar
from hma_db.report import Report, evaluate_databases
from hma_db.source import read_subset, read_tables, reflect
from hma_db.synthesizer import DEFAULT_CHUNK_ROWS, HMASynthesizer, check_scale
from hma_db.target import write, write_chunks, write_files

logger = logging.getLogger(__name__)


@dataclass
class CloneResult:
    """What a clone did: rows written per table, seconds per stage, and the source rows read
    per table (fewer than the source has with ``max_rows``; none when a job reuses its model)."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    rows_read: dict[str, int] = field(default_factory=dict)
    report: Report | None = None  # with clone(..., report=path)


@contextmanager
def _stage(result: CloneResult, name: str) -> Iterator[None]:
    """Time one stage of the job into ``result.seconds``."""
    started = time.perf_counter()
    yield
    result.seconds[name] = time.perf_counter() - started
    logger.info("%s done in %.2fs", name, result.seconds[name])


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


def _check_target(source_engine: sa.Engine, target_engine: sa.Engine,
                  schema: str | None, target_schema: str | None) -> None:
    """Refuse a schema on a SQLite target (the writer would, but only after the fit), an
    unreachable target, or a target that is the source itself."""
    if target_schema is not None and target_engine.dialect.name == "sqlite":
        raise WriteError(f"SQLite has no schemas; write to another file instead of schema "
                         f"'{target_schema}'.")
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


def _read_source(source: Source, metadata, *, max_rows=None, seed: int | None = None,
                 verbose: bool = False) -> dict:
    total = sum(metadata.row_counts.values()) if metadata.row_counts and not max_rows else None
    with RowBar("read", total, verbose) as bar:
        if max_rows is None:
            data = read_tables(source, metadata, on_chunk=bar.add)
        else:
            data = read_subset(source, metadata, max_rows, seed=seed, on_chunk=bar.add,
                               on_plan=bar.set_total)
    if all(len(frame) == 0 for frame in data.values()):
        raise DataError(f"The source {safe_url(source)} has no rows in any of its "
                        f"{len(data)} tables; there is nothing to learn from.")
    return data


def configure_synthesizer(metadata, *, locales: list[str] | None = None, seed: int | None = None,
                          verbose: bool = False,
                          table_parameters: dict[str, dict] | None = None) -> HMASynthesizer:
    """An unfitted synthesizer with its locales, seed and per-table parameters set."""
    synthesizer = HMASynthesizer(metadata, locales=locales or ["en_US"], verbose=verbose,
                                 seed=seed)
    for table_name, parameters in (table_parameters or {}).items():
        synthesizer.set_table_parameters(table_name, parameters)
    return synthesizer


def fit_database(synthesizer: HMASynthesizer, source: Source,
                 max_rows: int | dict[str, int] | None = None) -> HMASynthesizer:
    """Read every table of the synthesizer's metadata from ``source`` (or a closed subset of
    about ``max_rows`` rows) and fit on it, at the full row counts."""
    metadata = synthesizer.get_metadata()
    data = _read_source(source, metadata, max_rows=max_rows, seed=synthesizer.seed)
    synthesizer.fit(data, row_counts=metadata.row_counts if max_rows is not None else None)
    return synthesizer


def sample_to_database(synthesizer: HMASynthesizer, target: Source, *, scale: float = 1.0,
                       schema: str | None = None, if_exists: str = "fail",
                       chunk_rows: int | None = DEFAULT_CHUNK_ROWS) -> dict[str, int]:
    """Sample synthetic tables and write them into ``target``, ``chunk_rows`` rows of the
    largest table at a time in one transaction (None: all at once); rows written per table."""
    check_scale(scale)
    with engine_for(target, error=WriteError, must_exist=False) as engine:
        connect(engine, error=WriteError).close()  # fail before sampling when unreachable
        return sample_and_write(synthesizer, engine, CloneResult(), scale=scale, schema=schema,
                                if_exists=if_exists, chunk_rows=chunk_rows)


def sample_to_directory(synthesizer: HMASynthesizer, directory: str | os.PathLike, *,
                        scale: float = 1.0, format: str = "csv", if_exists: str = "fail",
                        chunk_rows: int | None = DEFAULT_CHUNK_ROWS) -> dict[str, int]:
    """Sample synthetic tables and write them as files into ``directory`` (see
    :func:`hma_db.target.files`), ``chunk_rows`` rows of the largest table at a time (None: all
    at once); rows written per table."""
    check_scale(scale)
    if chunk_rows is None:
        chunks = (synthesizer.sample(scale=scale) for _ in range(1))  # drawn after the checks
    else:
        chunks = synthesizer.sample_chunks(scale=scale, chunk_rows=chunk_rows)
    total = sum(target_rows(r, scale) for r in synthesizer._fitted_model("sample").row_counts.values())
    with RowBar("sample and write", total, synthesizer.verbose) as bar:
        return write_files(chunks, directory, format=format, if_exists=if_exists,
                           metadata=synthesizer.get_metadata(), progress=bar.add)


def save_report(source: Source, target: Source, metadata, path: str | os.PathLike, *,
                schema: str | None = None, target_schema: str | None = None,
                locales: list[str] | None = None, seed: int | None = None) -> Report:
    """Evaluate the written ``target`` against ``source`` and save the report to ``path``
    (HTML, or JSON when the name ends in ``.json``)."""
    found = evaluate_databases(source, target, metadata, schema=schema,
                               target_schema=target_schema,
                               locales=tuple(locales or ["en_US"]), seed=seed or 0)
    path = Path(path)
    if path.suffix.lower() == ".json":
        found.to_json(path)
    else:
        found.save_html(path)
    return found


def clone(source: Source, target: Source, *, scale: float = 1.0, seed: int | None = None,
          schema: str | None = None, target_schema: str | None = None,
          include: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
          if_exists: str = "fail", locales: list[str] | None = None,
          report: str | os.PathLike | None = None,
          table_parameters: dict[str, dict] | None = None, verbose: bool = False,
          max_rows: int | dict[str, int] | None = None,
          chunk_rows: int | None = DEFAULT_CHUNK_ROWS) -> CloneResult:
    """Clone ``source`` into ``target`` as synthetic data: reflect, read, fit, sample, write.

    Args:
        source: the production database (URL, SQLAlchemy URL or Engine); only ever read.
        target: the database to fill; its tables are created, or checked for drift.
        scale: rows per table relative to the source (0.5 halves every table).
        seed: makes the output reproducible.
        schema / target_schema: the schema to read from and to write into.
        include / exclude: table names to keep or leave out (with their relationships).
        if_exists: ``fail``, ``replace``, ``truncate`` or ``append`` for existing target tables.
        locales: Faker locales for personal data (default ``['en_US']``).
        table_parameters: ``{table: parameters}`` as for ``set_table_parameters``.
        verbose: show progress bars.
        report: also write the quality and privacy report of the target against the source
            here (HTML; JSON when the name ends in ``.json``); it is kept in ``result.report``.
        max_rows: fit on a referentially closed random subset of about this many rows (or
            ``{table: rows}``); the output still has the source's row counts times ``scale``.
        chunk_rows: sample and write about this many rows of the largest table at a time, all
            in one transaction, so memory does not grow with ``scale`` (None: all at once).

    Returns:
        A :class:`CloneResult` with rows written per table and seconds per stage.

    Example:
        >>> clone("sqlite:///examples/chinook.sqlite", "sqlite:///staging.sqlite", seed=7)
    """
    check_scale(scale)
    result = CloneResult()
    with engine_for(source) as source_engine, \
            engine_for(target, error=WriteError, must_exist=False) as target_engine:
        with _stage(result, "reflect"):
            metadata = reflect(source_engine, schema=schema, include=include, exclude=exclude)
        _check_target(source_engine, target_engine, schema, target_schema)
        synthesizer = configure_synthesizer(metadata, locales=locales, seed=seed, verbose=verbose,
                                            table_parameters=table_parameters)
        with _stage(result, "read"):
            data = _read_source(source_engine, metadata, max_rows=max_rows, seed=seed,
                                verbose=verbose)
        result.rows_read = {t: len(frame) for t, frame in data.items()}
        with _stage(result, "fit"):
            synthesizer.fit(data, row_counts=metadata.row_counts if max_rows else None)
        del data  # the source rows are not needed past this point
        result.rows = sample_and_write(synthesizer, target_engine, result, scale=scale,
                                       schema=target_schema, if_exists=if_exists,
                                       chunk_rows=chunk_rows, verbose=verbose)
        if report is not None:
            with _stage(result, "report"):
                result.report = save_report(source_engine, target_engine, metadata, report,
                                            schema=schema, target_schema=target_schema,
                                            locales=locales, seed=seed)
    return result


def _both(first: Callable, second: Callable | None) -> Callable:
    """Call ``first`` and then ``second`` (when given) with the same arguments."""
    if second is None:
        return first

    def call(*args) -> None:
        first(*args)
        second(*args)

    return call


def _timed(chunks: Iterator[dict], result: CloneResult, name: str) -> Iterator[dict]:
    """Pass ``chunks`` on, adding the time spent producing them to ``result.seconds[name]``."""
    result.seconds[name] = 0.0
    while True:
        started = time.perf_counter()
        chunk = next(chunks, None)
        result.seconds[name] += time.perf_counter() - started
        if chunk is None:
            return
        yield chunk


def sample_and_write(synthesizer: HMASynthesizer, target_engine, result: CloneResult, *,
                     scale: float, schema: str | None, if_exists: str,
                     chunk_rows: int | None = DEFAULT_CHUNK_ROWS, verbose: bool = False,
                     progress: Callable[[str, int, int], None] | None = None) -> dict[str, int]:
    """Sample and write, in chunks of bounded size unless appending (whose key shifting needs
    every table at once) or ``chunk_rows`` is None; the seconds of both stages go into
    ``result.seconds``. ``progress(table, done, total)`` is called after each written batch,
    ``done`` counting from zero again in each chunk (as :func:`hma_db.write_chunks` does)."""
    metadata = synthesizer.get_metadata()
    if chunk_rows is None or if_exists == "append":
        with _stage(result, "sample"):
            synthetic = synthesizer.sample(scale=scale)
        with _stage(result, "write"):
            return write(synthetic, metadata, target_engine, schema=schema, if_exists=if_exists,
                         progress=progress)
    started = time.perf_counter()
    total = sum(target_rows(r, scale) for r in synthesizer._fitted_model("sample").row_counts.values())
    with RowBar("sample", total, verbose) as sampled, RowBar("write", total, verbose) as written:
        chunks = _timed(iter(synthesizer.sample_chunks(scale=scale, chunk_rows=chunk_rows,
                                                       on_rows=sampled.add)), result, "sample")
        rows = write_chunks(chunks, metadata, target_engine, schema=schema, if_exists=if_exists,
                            progress=_both(written.batch, progress))
    result.seconds["write"] = time.perf_counter() - started - result.seconds["sample"]
    logger.info("sample done in %.2fs; write done in %.2fs", result.seconds["sample"],
                result.seconds["write"])
    return rows
