"""The tables' fits, one level of the hierarchy at a time, each on a random stream of its own.

A table's *level* is 1 + the highest level of its modeled children (leaves are level 0).
Everything a table's fit needs, its children's extension blocks, is ready once the lower
levels are fitted, so the tables of one level are independent: they are fitted at once through
an ``executor`` (anything with ``map(fn, *iterables)`` that gives the results in order, as
``concurrent.futures`` executors do; :class:`hma_db.cluster.ClientExecutor` for Dask), or one
after the other here with the builtin ``map``. A fit is a :class:`TableJob` in, a
:class:`TableFit` out: plain data that pickles, so a task may run in another process.

Each table draws from its own generator, seeded by one draw of the fit's generator and the
table's name (:func:`table_seeds`), never by the order of the fits, and runs BLAS on one
thread (:func:`hma_db.model.marginals.one_blas_thread`): the model is the same with or
without an executor, on any number of workers, in any process. Measured in one process
(median of 7, runs of each interleaved): Chinook's model fit 0.257-0.270 s before (one
stream shared in fitting order, BLAS threads as the library starts them) and 0.253-0.278 s
after at load average 2.6-2.9 on 2 cores, 0.244-0.260 s and 0.240-0.244 s at 1.2; a
50,000-row parent with 500,000 children of 16 columns 2.65-2.80 s before and 2.21-2.28 s
after (median of 3, load 1.7-2.6).

Where the work goes, with an executor: in a level of several tables, the largest (rows x
columns) is fitted here while the others run on the executor, so this process neither idles
nor copies its largest frame. When the others hold fewer than ``PARALLEL_COLUMNS`` copula
columns and ``PARALLEL_CELLS`` values in all, the trip costs more than it saves and the
whole level is fitted here. A table fitted here spreads its marginals over the executor
when it is wide (:meth:`hma_db.model.copula.GaussianCopula.fit_scores`).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hma_db.errors import SynthesizerInputError
from hma_db.model.copula import PARALLEL_COLUMNS, GaussianCopula, check_distribution
from hma_db.model.fit import (
    EXTENSION_DISTRIBUTION,
    SMALL_TABLE_ROWS,
    TableModel,
    asked_distributions,
    extension_columns,
    num_rows_column,
    own_degrees,
    relationship_statistics,
)
from hma_db.model.latent import align_slices
from hma_db.model.marginals import one_blas_thread

# The other tables of a level go to the executor when they hold PARALLEL_COLUMNS copula
# columns (the wide-table rule of GaussianCopula) or PARALLEL_CELLS values in all. A fit
# costs about 0.25 us a value beyond its marginals (a 500,000-row child of 16 columns and its
# 50,000-row parent: 2.2 s), so 200,000 values are about 50 ms of work; a map costs about
# 20 ms more than the same work here (2 local worker processes). Measured (median of 3,
# load average 1.1-1.3 on 2 cores): a parent of 20,000 rows with two children of 300,000
# rows x 8 columns, 1.15 s here and 0.94-1.03 s with the second child on a worker; with
# children of 20,000 rows (160,000 values) the level stays here (0.47 s either way).
PARALLEL_CELLS = 200_000


@dataclass
class TableJob:
    """What one table's fit needs, as plain data (the task an executor runs).

    ``extensions``: per modeled relationship to a child (sorted by name), its name, its
    aggregated child columns and the extension block of this table's rows. ``parents``: per
    modeled relationship to a parent (sorted by name), its name, the link of this table's rows
    and the parent's number of rows.
    """

    table: str
    frame: pd.DataFrame
    parameters: dict[str, Any]
    seed: np.random.SeedSequence
    extensions: list[tuple[str, list[str], np.ndarray]] = field(default_factory=list)
    parents: list[tuple[str, np.ndarray, int]] = field(default_factory=list)
    keep: bool = False
    small_table_rows: int = 0

    @property
    def width(self) -> int:
        """The copula's columns: own and extension columns (one marginal fit each)."""
        return self.frame.shape[1] + sum(1 + 2 * len(a) for _, a, _ in self.extensions)

    @property
    def cells(self) -> int:
        """Rows x copula columns: the size of the fit and of the data it ships."""
        return len(self.frame) * self.width

    def __sizeof__(self) -> int:  # what Dask's sizeof reads to decide to scatter it
        return (int(self.frame.memory_usage(index=False, deep=False).sum())
                + sum(b.nbytes for *_, b in self.extensions)
                + sum(link.nbytes for _, link, _ in self.parents))


@dataclass
class TableFit:
    """One table's fit: its record, and per relationship to a parent what it learned (the
    entries of the relationship record) and the parent's extension block."""

    record: TableModel
    statistics: dict[str, tuple[dict[str, Any], np.ndarray]]
    notes: list[str]  # warnings to give in the caller's thread (a named family's fallback)


def table_levels(tables: list[str], rels: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The tables by level, each level sorted by name: leaves (no modeled child) first.

    Example:
        >>> table_levels(["a", "p"], {"r": {"parent": "p", "child": "a", "kind": "model"}})
        [['a'], ['p']]
    """
    children: dict[str, set[str]] = {t: set() for t in tables}
    for rel in rels.values():
        if rel["kind"] == "model":
            children[rel["parent"]].add(rel["child"])
    level: dict[str, int] = {}
    while len(level) < len(children):
        ready = [t for t in children if t not in level and children[t] <= level.keys()]
        if not ready:
            raise SynthesizerInputError(
                f"The modeled relationships between {', '.join(sorted(set(children) - set(level)))}"
                f" form a cycle; cut one of its foreign keys (a nullable one is cut by reflect)")
        for table in ready:
            level[table] = 1 + max((level[c] for c in children[table]), default=-1)
    out: list[list[str]] = [[] for _ in range(1 + max(level.values(), default=-1))]
    for table in sorted(level):
        out[level[table]].append(table)
    return out


def table_seeds(rng: np.random.Generator, tables: list[str]) -> dict[str, np.random.SeedSequence]:
    """One seed per table from one draw of ``rng`` and the table's name (SHA-256, the same in
    any process: Python's ``hash`` of a string is not)."""
    entropy = int(rng.integers(2 ** 63))
    return {t: np.random.SeedSequence(entropy, spawn_key=_name_key(t)) for t in tables}


def _name_key(name: str) -> tuple[int, ...]:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))


def fit_tables(metadata, numeric: dict[str, pd.DataFrame], links: dict[str, np.ndarray],
               table_parameters: dict[str, dict], rng: np.random.Generator,
               rels: dict[str, dict[str, Any]], progress: Callable | None = None,
               kept: frozenset[str] = frozenset(), small_table_rows: int = SMALL_TABLE_ROWS,
               executor: Any = None) -> dict[str, TableModel]:
    """Fit every table's copula, a level at a time from the leaves, filling the relationship
    records on the way. A root table (no modeled parent) of at most ``small_table_rows``
    rows, or of fewer rows than copula columns, keeps its fitted rows for sampling
    (``TableModel.replayed``). ``executor``: see the module docstring."""
    order = metadata.topological_order()
    rows = {t: len(numeric[t]) for t in order}
    for name, rel in rels.items():
        if rel["kind"] != "model":
            own_degrees(rel, np.asarray(links[name], dtype=np.int64), rows[rel["parent"]])
    seeds = table_seeds(rng, order)
    levels = table_levels(order, rels)
    tables: dict[str, TableModel] = {}
    pending: dict[str, np.ndarray] = {}  # extension blocks waiting for their parent
    notes: list[str] = []

    def job(table: str) -> TableJob:
        up = _model_rels(rels, child=table)
        return TableJob(
            table, numeric[table], table_parameters.get(table, {}), seeds[table],
            [(n, rels[n]["aggregated"], pending.pop(n)) for n in _model_rels(rels, parent=table)],
            [(n, np.asarray(links[n], dtype=np.int64), rows[rels[n]["parent"]]) for n in up],
            table in kept, 0 if up else small_table_rows)

    level_of = {t: i for i, level in enumerate(levels) for t in level}
    steps = [t for level in levels for t in level]
    for table in (progress(steps, "Modeling tables") if progress else steps):
        if table in tables:  # fitted with the first table of its level
            continue
        jobs = [job(t) for t in levels[level_of[table]]]
        for done, fit in zip(jobs, _fit_level(jobs, executor), strict=True):
            tables[done.table] = fit.record
            for name, (learned, block) in fit.statistics.items():
                rels[name].update(learned)
                pending[name] = block
            notes += fit.notes
    for message in notes:
        warnings.warn(message, UserWarning, stacklevel=3)
    for table, record in tables.items():
        choices = sorted(_model_rels(rels, child=table),
                         key=lambda n: (-rels[n]["information"], n))
        record.primary = choices[0] if choices else None
    return {t: tables[t] for t in reversed(order)}


def _fit_level(jobs: list[TableJob], executor: Any) -> list[TableFit]:
    """The fits of one level's tables, in the order of ``jobs``."""
    if executor is None:
        return list(map(fit_table, jobs))
    here = max(range(len(jobs)), key=lambda i: jobs[i].cells)
    others = jobs[:here] + jobs[here + 1:]
    if sum(job.width for job in others) < PARALLEL_COLUMNS and \
            sum(job.cells for job in others) < PARALLEL_CELLS:
        # Too little work to pay for a trip: all here, a wide table's columns still on the
        # executor.
        return [fit_table(job, executor) for job in jobs]
    # A task in another thread may leave its catch_warnings' filters behind: put them back.
    with warnings.catch_warnings():
        elsewhere = executor.map(fit_table, others)
        try:
            local = fit_table(jobs[here], executor)
            fits = list(elsewhere)
        finally:  # a fit that failed here stops the others (a Dask map cancels its tasks)
            getattr(elsewhere, "close", lambda: None)()
    return fits[:here] + [local] + fits[here:]


def _model_rels(rels: dict[str, dict[str, Any]], parent: str | None = None,
                child: str | None = None) -> list[str]:
    return sorted(n for n, r in rels.items() if r["kind"] == "model"
                  and (parent is None or r["parent"] == parent)
                  and (child is None or r["child"] == child))


def fit_table(job: TableJob, executor: Any = None) -> TableFit:
    """One table's copula, and what each of its relationships to a parent learns from its
    normal scores (the task an executor runs; ``executor`` takes a wide table's marginals)."""
    notes: list[str] = []
    with one_blas_thread():  # the same products in every process (see one_blas_thread)
        record, scores, columns = _fit_copula(job, np.random.default_rng(job.seed), executor,
                                              notes)
        candidates = record.columns + [num_rows_column(n) for n, _, _ in job.extensions]
        statistics = {}
        for name, link, n_parent in job.parents:
            learned: dict[str, Any] = {}
            block = relationship_statistics(learned, scores, columns, candidates, link,
                                            n_parent)
            statistics[name] = (learned, block)
    return TableFit(record, statistics, notes)


def _fit_copula(job: TableJob, rng: np.random.Generator, executor: Any, notes: list[str]):
    """One table's copula over its own and extension columns; returns (record, scores, names).
    A table of at most ``small_table_rows`` rows, or of fewer rows than copula columns (when
    ``small_table_rows`` > 0: a root table), also keeps its fitted rows to be replayed."""
    frame, parameters = job.frame, job.parameters
    own = [str(c) for c in frame.columns]
    blocks = [frame.to_numpy(dtype=float).reshape(len(frame), len(own))]
    blocks += [block for *_, block in job.extensions]
    ext_names = [c for name, aggregated, _ in job.extensions
                 for c in extension_columns(name, aggregated)]
    columns = own + ext_names
    data = np.hstack(blocks)
    # Rows moved inside their categories' slices to follow the other columns (latent.py).
    slices = {own.index(c): edges for c, edges in (parameters.get("slices") or {}).items()
              if c in own}
    data = align_slices(data, slices, rng)
    default = check_distribution(parameters.get("default_distribution", "beta"),
                                 f"{job.table} (default)")
    distributions = {**asked_distributions(own, parameters),
                     **dict.fromkeys(ext_names, EXTENSION_DISTRIBUTION)}
    record = TableModel(rows=len(frame), columns=own, extension_columns=ext_names,
                        default_distribution=default, distributions=distributions)
    if len(frame) == 0:
        return record, np.zeros((0, len(columns))), columns
    # Families the user named (SDV uses them as asked): every own column when the table's
    # default was set, and the columns of numerical_distributions.
    named = set(own) if parameters.get("default_named") else set()
    copula = GaussianCopula(default, distributions,
                            named | set(asked_distributions(own, parameters)))
    try:
        scores = copula.fit_scores(data, columns, rng, executor=executor, notes=notes)
    except SynthesizerInputError as exc:
        raise SynthesizerInputError(f"Table '{job.table}': {exc}") from exc
    record.copula = copula
    if job.keep:
        record.kept = {"values": data.tolist(), "scores": scores.tolist()}
    elif job.small_table_rows > 0 and (len(data) <= job.small_table_rows
                                       or len(data) < len(columns)):
        record.replayed = data.tolist()
    return record, scores, columns
