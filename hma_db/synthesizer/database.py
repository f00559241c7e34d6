"""The synthesizer's database methods: read a source and fit, sample and write a target.

These back :meth:`HMASynthesizer.fit_database`, :meth:`~HMASynthesizer.sample_to_database` and
:meth:`~HMASynthesizer.sample_to_directory`, and :func:`hma_db.clone` builds on them. They use
the synthesizer through its public API only (this module does not import it).
"""

from __future__ import annotations

import logging
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import sqlalchemy as sa

from hma_db.engines import Source, connect, engine_for, safe_url
from hma_db.errors import DataError, WriteError
from hma_db.model import check_scale
from hma_db.progress import RowBar, stage
from hma_db.schema import Constraint
from hma_db.source import read_subset, read_tables
from hma_db.synthesizer.chunks import DEFAULT_CHUNK_ROWS
from hma_db.synthesizer.rules import untranslated_checks
from hma_db.target import check_expression, rows_failing_check, write, write_chunks, write_files

logger = logging.getLogger(__name__)

REDRAWS = 5  # rounds of redrawing the rows a target's CHECK finds false, before refusing
UNCHECKED = "CHECK constraint"  # how the warning about unevaluated CHECKs begins


def warn_unchecked(metadata, where: str) -> None:
    """Name the source's CHECKs that no rule keeps, when no target database evaluates them."""
    left = [f"{t}: {c.label()}" for t, checks in untranslated_checks(metadata).items()
            for c in checks]
    if left:
        warnings.warn(f"{UNCHECKED}s not translated into rules are not evaluated by {where} "
                      f"(only a database target evaluates them): {'; '.join(left)}",
                      stacklevel=3)


class TargetChecks:
    """The source's CHECKs that do not translate into rules, evaluated by the target database
    on each sampled chunk before it is written (see :func:`hma_db.target.rows_failing_check`).

    A row a CHECK finds false takes the CHECK's columns (and those of any rule sharing them)
    from a row of the same chunk that passes every CHECK of its table: those columns are drawn
    again from the model's rows that pass, the rest of the row stays. Keys and unique columns
    are never copied. After :data:`REDRAWS` rounds the run is refused naming the table, the
    CHECK and the count. The first chunk is sampled and checked before the target is opened,
    so a CHECK no sampled row keeps is refused before anything is written; a later chunk that
    fails rolls back the one transaction. A chunk holds whole families
    (:mod:`hma_db.synthesizer.chunks`).
    """

    def __init__(self, synthesizer, target):
        metadata = synthesizer.get_metadata()
        self.checks = untranslated_checks(metadata)
        self.rules = [c for c in synthesizer.get_constraints() if isinstance(c, Constraint)]
        self.rng = np.random.default_rng(synthesizer.seed)
        # Columns a redraw must not copy: keys, and unique columns (a copy would repeat a value).
        self.keys = {t: set(metadata.primary_key(t)) | set(metadata.foreign_key_columns(t))
                     | {c for key in metadata.alternate_keys(t) for c in key}
                     for t in self.checks}
        self.engine, self.dialect, self.sql = None, "sqlite", metadata.sql_metadata
        if self.checks:
            url = target.url if isinstance(target, sa.Engine) else sa.make_url(str(target))
            self.dialect = url.get_backend_name()
            self.engine = target if isinstance(target, sa.Engine) and self.dialect != "sqlite" \
                else sa.create_engine("sqlite://")  # SQLite: its rules, not its (new) file
        self.exprs = {t: self._expressions(metadata, t) for t in self.checks}

    def _expressions(self, metadata, table: str) -> list[tuple]:
        columns = list(metadata.tables[table]["columns"])
        source = next((t for t in self.sql.tables.values() if t.name == table), None)
        out = []
        for check in self.checks[table]:
            expr = check_expression(check.text, self.dialect, columns, source_table=source)
            used = [c for c in columns if re.search(rf"(?<![\w$]){re.escape(c)}(?![\w$])",
                                                     check.text, re.I)]
            if expr is None or not used:
                logger.warning("table %s: %s cannot be evaluated by the target; not kept",
                               table, check.label())
                continue
            out.append((check, expr, used))
        return out

    def keep(self, chunk: dict) -> dict:
        """The chunk with every row kept by every evaluated CHECK."""
        for table, exprs in self.exprs.items():
            if exprs and table in chunk and len(chunk[table]):
                chunk[table] = self._table(table, chunk[table], exprs)
        return chunk

    def _failing(self, frame, exprs) -> list[np.ndarray]:
        out = []
        for check, expr, used in exprs:
            failing = np.zeros(len(frame), dtype=bool)
            try:
                with self.engine.connect() as conn, conn.begin():
                    failing = rows_failing_check(conn, frame[used], expr)
            except sa.exc.DBAPIError as exc:
                logger.warning("%s cannot be evaluated by the target (%s); not kept",
                               check.label(), str(exc.orig).strip().splitlines()[0])
            out.append(failing)
        return out

    def _closure(self, table: str, used: list[str]) -> list[str]:
        """``used`` with the columns of every rule that shares one of them, to copy together."""
        columns, grown = set(used), True
        while grown:
            rules = [r for r in self.rules if r.table_name == table and set(r.columns()) & columns]
            grown = bool(set().union(*[set(r.columns()) for r in rules]) - columns)
            columns |= set().union(*[set(r.columns()) for r in rules])
        return sorted(columns)

    def _table(self, table: str, frame, exprs):
        frame = frame.copy()
        for _ in range(REDRAWS + 1):
            failing = self._failing(frame, exprs)
            bad = np.logical_or.reduce(failing)
            if not bad.any():
                return frame
            good = np.flatnonzero(~bad)
            for (_, _, used), rows in zip(exprs, failing, strict=True):
                copied = self._closure(table, used)
                if rows.any() and len(good) and not set(copied) & self.keys[table]:
                    donors = self.rng.choice(good, int(rows.sum()))
                    frame.iloc[np.flatnonzero(rows), [frame.columns.get_loc(c) for c in copied]] = \
                        frame.iloc[donors, [frame.columns.get_loc(c) for c in copied]].to_numpy()
        broken = [(check, int(rows.sum())) for (check, _, _), rows in zip(exprs, failing, strict=True)
                  if rows.any()]
        raise WriteError("; ".join(
            f"Table '{table}': {count} of {len(frame)} sampled rows break {check.label()} in the "
            f"target database after {REDRAWS} redraws" for check, count in broken)
            + "; nothing was written.")


def read_source(source: Source, metadata, *, max_rows=None, seed: int | None = None,
                verbose: bool = False) -> dict:
    """Every table of ``metadata`` from ``source`` (or a closed subset of about ``max_rows``
    rows), with a progress bar in rows.

    Raises:
        DataError: the source has no rows at all.
    """
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


def fit_database(synthesizer, source: Source, max_rows: int | dict[str, int] | None = None,
                 executor: Any = None):
    """Read every table of the synthesizer's metadata from ``source`` (or a closed subset of
    about ``max_rows`` rows) and fit on it, at the full row counts (``executor``: see
    :meth:`hma_db.HMASynthesizer.fit`)."""
    metadata = synthesizer.get_metadata()
    data = read_source(source, metadata, max_rows=max_rows, seed=synthesizer.seed)
    synthesizer.fit(data, row_counts=metadata.row_counts if max_rows is not None else None,
                    executor=executor)
    return synthesizer


def sample_to_database(synthesizer, target: Source, *, scale: float = 1.0,
                       schema: str | None = None, if_exists: str = "fail",
                       chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
                       fire_triggers: bool = False) -> dict[str, int]:
    """Sample synthetic tables and write them into ``target``, ``chunk_rows`` rows of the
    largest table at a time in one transaction (None: all at once); rows written per table.
    ``fire_triggers``: as for :func:`hma_db.write`."""
    check_scale(scale)
    with engine_for(target, error=WriteError, must_exist=False) as engine:
        sqlite = engine.dialect.name == "sqlite" and engine is not target
        if not sqlite:  # fail before sampling when unreachable (a SQLite file is not opened
            connect(engine, error=WriteError).close()  # here: a new one would be left behind)
        # A SQLite file goes to the writer as its URL: a new file is then written under a
        # temporary name and renamed at the end, so a failed or killed run leaves no file.
        return sample_and_write(synthesizer, engine.url if sqlite else engine, {}, scale=scale,
                                schema=schema, if_exists=if_exists, chunk_rows=chunk_rows,
                                fire_triggers=fire_triggers)


def sample_to_directory(synthesizer, directory: str | os.PathLike, *,
                        scale: float = 1.0, format: str = "csv", if_exists: str = "fail",  # noqa: A002
                        chunk_rows: int | None = DEFAULT_CHUNK_ROWS) -> dict[str, int]:
    """Sample synthetic tables and write them as files into ``directory`` (see
    :func:`hma_db.write_files`), ``chunk_rows`` rows of the largest table at a time (None: all
    at once); rows written per table."""
    total = sum(synthesizer.sample_sizes(scale).values())  # checks the scale and the fit
    if chunk_rows is None:
        chunks = (synthesizer.sample(scale=scale) for _ in range(1))  # drawn after the checks
    else:
        warn_unchecked(synthesizer.get_metadata(), "sample_to_directory")
        chunks = synthesizer.sample_chunks(scale=scale, chunk_rows=chunk_rows)
    with RowBar("sample and write", total, synthesizer.verbose) as bar:
        return write_files(chunks, directory, format=format, if_exists=if_exists,
                           metadata=synthesizer.get_metadata(), progress=bar.add)


def _both(first: Callable, second: Callable | None) -> Callable:
    """Call ``first`` and then ``second`` (when given) with the same arguments."""
    if second is None:
        return first

    def call(*args) -> None:
        first(*args)
        second(*args)

    return call


def _timed(chunks: Iterator[dict], seconds: dict[str, float], name: str) -> Iterator[dict]:
    """Pass ``chunks`` on, adding the time spent producing them to ``seconds[name]``."""
    seconds[name] = 0.0
    while True:
        started = time.perf_counter()
        chunk = next(chunks, None)
        seconds[name] += time.perf_counter() - started
        if chunk is None:
            return
        yield chunk


def sample_and_write(synthesizer, target_engine, seconds: dict[str, float], *,
                     scale: float, schema: str | None, if_exists: str,
                     chunk_rows: int | None = DEFAULT_CHUNK_ROWS, verbose: bool = False,
                     progress: Callable[[str, int, int], None] | None = None,
                     fire_triggers: bool = False) -> dict[str, int]:
    """Sample and write, in chunks of bounded size unless appending (whose key shifting needs
    every table at once) or ``chunk_rows`` is None; the seconds of both stages go into
    ``seconds``. ``progress(table, done, total)`` is called after each written batch, ``done``
    counting from zero again in each chunk (as :func:`hma_db.write_chunks` does)."""
    metadata = synthesizer.get_metadata()
    checks = TargetChecks(synthesizer, target_engine)
    if chunk_rows is None or if_exists == "append":
        with stage(seconds, "sample"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=UNCHECKED)  # the target evaluates them
            synthetic = checks.keep(synthesizer.sample(scale=scale))
        with stage(seconds, "write"):
            return write(synthetic, metadata, target_engine, schema=schema, if_exists=if_exists,
                         fire_triggers=fire_triggers, progress=progress)
    started = time.perf_counter()
    total = sum(synthesizer.sample_sizes(scale).values())
    with RowBar("sample", total, verbose) as sampled, RowBar("write", total, verbose) as written:
        chunks = _timed(map(checks.keep, synthesizer.sample_chunks(
            scale=scale, chunk_rows=chunk_rows, on_rows=sampled.add)), seconds, "sample")
        rows = write_chunks(chunks, metadata, target_engine, schema=schema, if_exists=if_exists,
                            fire_triggers=fire_triggers, progress=_both(written.batch, progress))
    seconds["write"] = time.perf_counter() - started - seconds["sample"]
    logger.info("sample done in %.2fs; write done in %.2fs", seconds["sample"], seconds["write"])
    return rows
