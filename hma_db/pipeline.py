"""The orchestrator: reflect, read, fit, sample and write in one call (:func:`clone`).

This is the only module that imports every stage. Callers that add to the job (scheduled jobs
add column overrides, a model cache, events and a report that may fail without failing the run)
pass :class:`CloneHooks` to :func:`run_clone` instead of writing the steps again.

(The module is not called ``clone``: a submodule of that name would be bound on the package as
``hma_db.clone`` and hide the function.)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from hma_db.cluster import (
    ClientExecutor,
    check_cluster,
    cluster_read,
    cluster_write,
    open_cluster,
)
from hma_db.engines import Source, driver_error_line, engine_for, safe_url, tag_driver_errors
from hma_db.errors import HmaDbError, ReflectionError, WriteError
from hma_db.model import check_scale
from hma_db.progress import stage
from hma_db.report import Report, evaluate_databases
from hma_db.schema import Metadata, apply_policies
from hma_db.source import reflect
from hma_db.synthesizer import (
    DEFAULT_CHUNK_ROWS,
    MAX_TOTAL_ROWS,
    HMASynthesizer,
    read_source,
    refuse_before_work,
    sample_and_write,
)
from hma_db.target import check_target, clean_target, target_busy, trigger_problems

logger = logging.getLogger(__name__)


@dataclass
class CloneResult:
    """What a clone did: rows written per table, seconds per stage, and the source rows read
    per table (fewer than the source has with ``max_rows``; none when a job reuses its model)."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    rows_read: dict[str, int] = field(default_factory=dict)
    report: Report | None = None  # with clone(..., report=path)
    notes: list[str] = field(default_factory=list)  # what the run chose instead, and why


class CloneHooks:
    """What a caller adds to :func:`run_clone`'s steps; each method does nothing by default."""

    def edit_metadata(self, metadata: Metadata) -> None:
        """Change the reflected metadata in place before anything is read."""

    def make_synthesizer(self, metadata: Metadata, make: Callable[[], HMASynthesizer]
                         ) -> HMASynthesizer:
        """The unfitted synthesizer (``make()`` builds clone's own)."""
        return make()

    def reuse(self, wanted: HMASynthesizer) -> HMASynthesizer | None:
        """A fitted synthesizer to sample from instead of reading and fitting ``wanted``."""
        return None

    def fitted(self, synthesizer: HMASynthesizer) -> None:
        """Called once ``synthesizer`` is fitted (not when one was reused)."""

    def stage(self, name: str, seconds: float | None) -> None:
        """A stage starts (``seconds`` None) or ends."""

    def rows_written(self, table: str, done: int, total: int) -> None:
        """After each written batch: ``done`` rows of ``total`` in the table's current chunk."""

    def report_failed(self, error: Exception) -> bool:
        """The report could not be made; True keeps the written rows and the run going."""
        return False


def configure_synthesizer(metadata, *, locales: list[str] | None = None, seed: int | None = None,
                          verbose: bool = False,
                          table_parameters: dict[str, dict] | None = None,
                          find_rules: bool = True,
                          skip_rules: list[str] | None = None) -> HMASynthesizer:
    """An unfitted synthesizer with its locales, seed, per-table parameters and found rules
    set."""
    synthesizer = HMASynthesizer(metadata, locales=locales or ["en_US"], verbose=verbose,
                                 seed=seed, find_rules=find_rules, skip_rules=skip_rules)
    for table_name, parameters in (table_parameters or {}).items():
        synthesizer.set_table_parameters(table_name, parameters)
    return synthesizer


def save_report(source: Source, target: Source, metadata, path: str | os.PathLike, *,
                schema: str | None = None, target_schema: str | None = None,
                locales: list[str] | None = None, seed: int | None = None) -> Report:
    """Evaluate the written ``target`` against ``source`` and save the report to ``path``
    (HTML, or JSON when the name ends in ``.json``)."""
    found = evaluate_databases(source, target, metadata, schema=schema,
                               target_schema=target_schema,
                               locales=tuple(locales or ["en_US"]), seed=seed or 0)
    found.save(path)
    return found


def clone(source: Source, target: Source, *, scale: float = 1.0, seed: int | None = None,
          schema: str | None = None, target_schema: str | None = None,
          include: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
          if_exists: str = "fail", locales: list[str] | None = None,
          report: str | os.PathLike | None = None,
          table_parameters: dict[str, dict] | None = None, verbose: bool = False,
          max_rows: int | dict[str, int] | None = None,
          chunk_rows: int | None = DEFAULT_CHUNK_ROWS, fire_triggers: bool = False,
          on_stage: Callable[[str, float | None], None] | None = None,
          drop_cut_keys: bool = False,
          max_total_rows: int | None = MAX_TOTAL_ROWS,
          policies: dict[str, str] | None = None, where: dict[str, str] | None = None,
          reference_tables: bool = True, cluster: Any = None, find_rules: bool = True,
          skip_rules: list[str] | None = None) -> CloneResult:
    """Clone ``source`` into ``target`` as synthetic data: reflect, read, fit, sample, write.

    Args:
        source: the production database (URL, SQLAlchemy URL, Engine, or the path of a SQLite
            file); only ever read.
        target: the database to fill (the same, a SQLite path is created when missing); its
            tables are created, or checked for drift.
        scale: rows per table relative to the source (0.5 halves every table).
        seed: makes the output reproducible.
        schema / target_schema: the schema to read from and to write into.
        include / exclude: table names to keep or leave out (with their relationships). A kept
            table that references one left out is refused before any work, unless
            ``drop_cut_keys`` keeps it without that foreign key.
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
        fire_triggers: load existing target tables (``truncate``/``append``) that have triggers,
            with the triggers firing for every row; refused before any work otherwise.
        on_stage: called with ``(stage, None)`` when a stage starts and ``(stage, seconds)``
            when it ends: progress for a log, where bars are no use (``hma-db clone`` under
            cron or CI).
        drop_cut_keys: see ``include`` / ``exclude``.
        max_total_rows: refuse, before any work, a run that would write more rows in total
            (default 100 million; None or 0: no ceiling).
        policies: masking policies (:mod:`hma_db.schema.policies`): ``{"table.column":
            "fake:company" | "keep" | "hash" | "mask[:last=N|:domain]" | "null" |
            "constant:VALUE" | "model", "table": "keep" | "empty" | "model"}``.
        where: ``{table: SQL condition}``: only those rows of the table are learned (and
            copied, for a kept table); rows of other tables that referenced the rest go too.
        reference_tables: copy lookup tables as they are (at most 100 rows, no personal data:
            :func:`hma_db.schema.reference_tables`); False models them like any other.
        cluster: fit and sample on a Dask cluster (``pip install "hma_db[dask]"``): a
            scheduler address (``tcp://host:8786``), a ``distributed.Client``, or a number of
            worker processes to start on this machine. The rows are the same as without it, for
            any number of workers (:mod:`hma_db.cluster`). Into PostgreSQL or MariaDB each
            worker loads its chunks into staging tables, moved chunk by chunk by one
            transaction into the target tables; into SQLite (one writer at a time), or with
            ``append``, the chunks come back and are written here. Either way the target
            changes in one commit or not at all. The tables of one level of the hierarchy,
            and the columns of a wide table, are fitted on the workers at once.
        find_rules / skip_rules: keep the rules found in the data (False: none of them; the
            source's CHECKs are kept either way), less those named in ``skip_rules``
            (``"Track: Bytes > Milliseconds"``), as :class:`HMASynthesizer` takes them.

    Returns:
        A :class:`CloneResult` with rows written per table and seconds per stage.

    Raises:
        ReflectionError / WriteError: a lost connection or another driver error, in one line
            naming the source or the target database.

    Example:
        >>> clone("sqlite:///examples/chinook.sqlite", "sqlite:///staging.sqlite", seed=7)
    """
    return run_clone(source, target, scale=scale, seed=seed, schema=schema,
                     target_schema=target_schema, include=include, exclude=exclude,
                     if_exists=if_exists, locales=locales, report=report,
                     table_parameters=table_parameters, verbose=verbose, max_rows=max_rows,
                     chunk_rows=chunk_rows, fire_triggers=fire_triggers,
                     hooks=_StageHooks(on_stage) if on_stage else None,
                     drop_cut_keys=drop_cut_keys, max_total_rows=max_total_rows,
                     policies=policies, where=where, reference_tables=reference_tables,
                     cluster=cluster, find_rules=find_rules, skip_rules=skip_rules)


class _StageHooks(CloneHooks):
    """:func:`clone`'s ``on_stage``: the stages' starts and ends, nothing else."""

    def __init__(self, on_stage: Callable[[str, float | None], None]):
        self.on_stage = on_stage

    def stage(self, name: str, seconds: float | None) -> None:
        self.on_stage(name, seconds)


def run_clone(source: Source, target: Source, *, hooks: CloneHooks | None = None,
              result: CloneResult | None = None, scale: float = 1.0, seed: int | None = None,
              schema: str | None = None, target_schema: str | None = None,
              include: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
              if_exists: str = "fail", locales: list[str] | None = None,
              report: str | os.PathLike | None = None,
              table_parameters: dict[str, dict] | None = None, verbose: bool = False,
              max_rows: int | dict[str, int] | None = None,
              chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
              fire_triggers: bool = False, drop_cut_keys: bool = False,
              max_total_rows: int | None = MAX_TOTAL_ROWS,
              policies: dict[str, str] | None = None, where: dict[str, str] | None = None,
              reference_tables: bool = True, cluster: Any = None, find_rules: bool = True,
              skip_rules: list[str] | None = None) -> CloneResult:
    """:func:`clone` with ``hooks`` into its steps, filling ``result`` (a new
    :class:`CloneResult` when None; a subclass keeps what the caller adds)."""
    check_scale(scale)
    if cluster is not None:
        check_cluster(cluster)
    hooks = hooks or CloneHooks()
    result = result if result is not None else CloneResult()
    timed = _Timer(result, hooks)
    with engine_for(source, error=ReflectionError) as source_engine, \
            engine_for(target, error=WriteError, must_exist=False) as target_engine, \
            _driver_errors_in_one_line(source_engine, target_engine, timed), ExitStack() as stack:
        with timed("reflect"):
            metadata = reflect(source_engine, schema=schema, include=include, exclude=exclude,
                               drop_cut_keys=drop_cut_keys, reference_tables=reference_tables)
            apply_policies(metadata.tables, policies, where)
            hooks.edit_metadata(metadata)
            metadata.validate()  # a bad policy or filter is refused before any work
        check_target(source_engine, target_engine, schema, target_schema)
        busy = target_busy(target_engine, target_schema)
        if busy:  # before reading: the write would be refused (hold_target_lock) after the fit
            raise WriteError(busy + " Nothing was read or written.")
        clean_target(target_engine, target_schema)  # what a killed run left, before any check
        refuse_before_work(metadata, target_engine, scale=scale, target_schema=target_schema,
                           max_total_rows=max_total_rows)
        triggers = trigger_problems(target_engine, list(metadata.tables), target_schema,
                                    if_exists, fire_triggers)
        if triggers:
            raise WriteError(triggers[0] + " Nothing was read or written.")
        # An unreachable scheduler is refused here, before the source is read.
        client = stack.enter_context(open_cluster(cluster)) if cluster is not None else None
        wanted = hooks.make_synthesizer(metadata, lambda: configure_synthesizer(
            metadata, locales=locales, seed=seed, verbose=verbose,
            table_parameters=table_parameters, find_rules=find_rules, skip_rules=skip_rules))
        synthesizer = hooks.reuse(wanted)
        if synthesizer is None:
            synthesizer = wanted
            with timed("read"):
                # On a cluster of its own (not local workers, which read slower than this
                # process: docs/scaling.md), large tables in key ranges (hma_db.cluster).
                data = cluster_read(client, source_engine, metadata) if client is not None \
                    and max_rows is None and not isinstance(cluster, int) else None
                if data is None:
                    data = read_source(source_engine, metadata, max_rows=max_rows, seed=seed,
                                       verbose=verbose)
            result.rows_read = {t: len(frame) for t, frame in data.items()}
            with timed("fit"):  # a level's tables at once on the cluster (hma_db.model.levels)
                on_cluster = {} if client is None else {"executor": ClientExecutor(client)}
                synthesizer.fit(data, row_counts=metadata.row_counts if max_rows else None,
                                **on_cluster)
            del data  # the source rows are not needed past this point
            hooks.fitted(synthesizer)
        hooks.stage("sample", None)  # sampling and writing run chunk by chunk, timed apart
        timed.current = "write"
        options = dict(scale=scale, schema=target_schema, if_exists=if_exists,
                       chunk_rows=chunk_rows, verbose=verbose, progress=hooks.rows_written,
                       fire_triggers=fire_triggers)
        if client is None:
            result.rows = sample_and_write(synthesizer, _write_into(target, target_engine),
                                           result.seconds, **options)
        else:  # the workers load staging tables where the target allows (hma_db.cluster)
            result.rows = cluster_write(client, synthesizer, _write_into(target, target_engine),
                                        target_engine, result.seconds, notes=result.notes,
                                        **options)
        hooks.stage("sample", result.seconds["sample"])
        hooks.stage("write", result.seconds["write"])
        if report is not None:
            _report(result, timed, hooks, source_engine, target_engine, metadata, report,
                    schema=schema, target_schema=target_schema, locales=locales, seed=seed)
    return result


@contextmanager
def _driver_errors_in_one_line(source_engine, target_engine, timed: _Timer) -> Iterator[None]:
    """A lost connection or another driver error that no stage translated becomes one line
    naming the database: the one whose engine raised it, else the one the stage was using."""
    with tag_driver_errors(source_engine, "source"), tag_driver_errors(target_engine, "target"):
        try:
            yield
        except HmaDbError:
            raise
        except Exception as exc:
            on_target = timed.current == "write"
            line = driver_error_line(exc, "target" if on_target else "source",
                                     safe_url(target_engine if on_target else source_engine))
            if line is None:
                raise
            error = WriteError if line.startswith("The target ") else ReflectionError
            raise error(line) from exc


def _report(result: CloneResult, timed: _Timer, hooks: CloneHooks, source_engine,
            target_engine, metadata, path, **options) -> None:
    try:
        with timed("report"):
            result.report = save_report(source_engine, target_engine, metadata, path, **options)
    except Exception as exc:
        if not hooks.report_failed(exc):
            raise


def _write_into(target: Source, target_engine):
    """What the writer gets: a SQLite file opened here from a URL or path goes as its URL, so
    that a new file is written under a temporary name and renamed at the end (an Engine is
    written through as it is)."""
    if target_engine is not target and target_engine.dialect.name == "sqlite":
        return target_engine.url
    return target_engine


class _Timer:
    """Times a stage into ``result.seconds`` and tells the hooks when it starts and ends."""

    def __init__(self, result: CloneResult, hooks: CloneHooks):
        self.result, self.hooks = result, hooks
        self.current = ""  # the stage under way: which database a driver error came from

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.current = name
        self.hooks.stage(name, None)
        with stage(self.result.seconds, name):
            yield
        self.hooks.stage(name, self.result.seconds[name])
