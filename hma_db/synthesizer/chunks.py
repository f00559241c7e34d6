"""Sampling in chunks, so that memory depends on the chunk size and not on ``scale``.

The tables are split in two:

* **resident** tables: small ones (at most ``chunk_rows`` rows at this scale) whose parents are
  all resident too, such as lookup tables, and tables keyed by resident parents only (a
  junction of two lookup tables: it holds at most one row per pair, and chunks drawing their
  own pairs would repeat pairs). They are sampled whole in the first chunk and kept (their
  sampled scores and keys) as parents for every later chunk;
* **chunked** tables: every other one. Each table's total, ``round(rows * scale)``, is split
  evenly over ``K`` chunks (the first ``total % K`` chunks get one row more), so totals are
  exact. ``K`` is the largest chunked table's total divided by ``chunk_rows``, rounded up, but
  never more than the smallest chunked table's total, so every chunk has at least one row of
  every chunked table for its children to reference.

Each chunk is one run of the hierarchical sampler (:func:`hma_db.model.sample.sample_chunk`) with
the resident tables fixed: a chunk's children are drawn under the chunk's parents (or the
resident ones), secondary, cycle and self references are assigned among the rows of the chunk
and the resident tables, so every foreign key of a chunk points at a row of the same chunk or a
resident row.

Keys and unique columns are unique across chunks by construction, with nothing remembered
between chunks: each table's chunk is a :class:`~hma_db.transform.keys.keygen.Span` (its
rows' positions in the run) and every unique value is a function of one seed drawn per run
and the row's position (integers count on, patterned strings and uuids are keyed
permutations of the position, unique personal data numbers the rounds of a fixed Faker pool;
see :mod:`hma_db.transform.keys.keygen` and :mod:`hma_db.transform.personal`). Memory per
unique column is one Faker pool, whatever the scale.

:meth:`HMASynthesizer.sample <hma_db.synthesizer.HMASynthesizer.sample>` is the same run with
one chunk holding every table (``chunk_rows=None``).

Limit: a chunked table whose key is made of references to resident tables only (it also has a
chunked parent outside the key) can repeat a combination in two chunks; :func:`chunk_plan`
logs a warning naming it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hma_db.model import RunShare, sample_chunk
from hma_db.schema import key_columns, relationship_name
from hma_db.synthesizer.links import assign_keys, cast_like
from hma_db.synthesizer.rules import reverse_multi_table
from hma_db.synthesizer.state import FittedState
from hma_db.transform import Span, constant_values, number_within, parent_values

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 100_000


def resident_tables(metadata, totals: dict[str, int], chunk_rows: int,
                    together: frozenset[tuple[str, str]] = frozenset()) -> set[str]:
    """Small tables whose parents are all resident (see the module docstring); a parent of a
    ``(parent, child)`` pair in ``together`` is chunked when the child is (a rule recomputes
    the parent from its children, chunk by chunk)."""
    resident: set[str] = set()
    for table in metadata.topological_order():
        # A table keyed by resident parents stays whole too: chunks drawing their own pairs
        # of the same parents would repeat pairs. It holds at most one row per pair.
        if all(p in resident for p in metadata.parents(table)) and (
                totals[table] <= chunk_rows or _parent_keys(metadata, table)):
            resident.add(table)
    # A cycle cut at a nullable key: a resident table must not reference a chunked one.
    changed = True
    while changed:
        changed = False
        for rel in metadata.relationships:
            if rel["child_table_name"] in resident and rel["parent_table_name"] not in resident:
                resident.discard(rel["child_table_name"])
                changed = True
        for parent, child in together:
            if parent in resident and child not in resident:
                resident.discard(parent)
                changed = True
    return resident


def _parent_keys(metadata, table: str) -> list[list[str]]:
    """The unique keys of a table made only of foreign-key columns, with their parents."""
    fks = set(metadata.foreign_key_columns(table))
    keys = [metadata.primary_key(table), *metadata.alternate_keys(table)]
    return [key for key in keys if key and set(key) <= fks]


def _key_parents(metadata, table: str, key: list[str]) -> set[str]:
    return {r["parent_table_name"] for r in metadata.relationships
            if r["child_table_name"] == table and set(key_columns(r["child_foreign_key"])) & set(key)}


def _warn_repeatable_keys(metadata, resident: set[str]) -> None:
    """A chunked table whose parent-made key references resident tables only (it has another,
    chunked parent) can repeat a combination in two chunks: say so before sampling."""
    for table in sorted(set(metadata.tables) - resident):
        for key in _parent_keys(metadata, table):
            if _key_parents(metadata, table, key) <= resident:
                logger.warning("table %s: its key %s is made of references to tables sampled "
                               "once (%s); two chunks may repeat a combination. Raise chunk_rows "
                               "to sample %s whole.", table, key,
                               ", ".join(sorted(_key_parents(metadata, table, key))), table)


def chunk_plan(metadata, totals: dict[str, int], chunk_rows: int | None,
               kept: frozenset[str] = frozenset(),
               together: frozenset[tuple[str, str]] = frozenset()
               ) -> tuple[set[str], list[dict[str, int]]]:
    """The resident tables and, per chunk, the rows of each chunked table (``chunk_rows``
    None: one chunk of every table). Kept tables are resident whatever their size: they are
    written once, in the first chunk."""
    if chunk_rows is None:
        return set(totals), [dict(totals)]
    resident = resident_tables(metadata, totals, chunk_rows, together) | set(kept)
    _warn_repeatable_keys(metadata, resident)
    chunked = [t for t in metadata.topological_order() if t not in resident and totals[t] > 0]
    if not chunked:
        return resident | set(totals), [dict(totals)]
    k = max(1, min(math.ceil(max(totals[t] for t in chunked) / chunk_rows),
                   min(totals[t] for t in chunked)))
    chunks = []
    for c in range(k):
        rows = {t: totals[t] // k + (c < totals[t] % k) for t in chunked}
        rows.update({t: totals[t] if c == 0 else 0 for t in totals if t not in rows})
        chunks.append(rows)
    return resident, chunks


@dataclass
class SampleRun:
    """One sampling run, planned before its first row: the run's seed, each table's total, the
    resident tables, each chunk's rows and where each chunk starts in each table.

    Chunk 0 draws from the synthesizer's sampling stream and samples the resident tables; every
    later chunk draws from a stream of its own, seeded by ``(seed, chunk number)``, so it can be
    sampled anywhere, in any order (:mod:`hma_db.cluster` samples them on workers) and the run's
    rows are the same however the chunks are spread."""

    seed: int
    totals: dict[str, int]
    resident: set[str]
    chunks: list[dict[str, int]]
    starts: list[dict[str, int]]
    kept: dict[str, pd.DataFrame]

    def __len__(self) -> int:
        return len(self.chunks)


@dataclass
class Resident:
    """What chunk 0 hands every later chunk: the resident tables' sampled state (their
    children's parents), their keys, and their empty frames."""

    sampled: dict = field(default_factory=dict)
    keys: dict[str, pd.DataFrame] = field(default_factory=dict)
    empty: dict[str, pd.DataFrame] = field(default_factory=dict)
    # Parents of copied values and of the rules across tables, as chunk 0 wrote them.
    rows: dict[str, pd.DataFrame] = field(default_factory=dict)
    # Per child table and held column, the value chunk 0 gave each resident parent
    # (hma_db.transform.inherit), so its children in later chunks take the same.
    held: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)


def plan_run(state: FittedState, metadata, scale: float,
             chunk_rows: int | None = DEFAULT_CHUNK_ROWS) -> SampleRun:
    """Plan a run; draws the run's seed from the synthesizer's sampling stream."""
    totals = state.sample_sizes(scale)
    kept = {t: _kept_frame(state, t) for t in state.kept}
    together = frozenset(tuple(c.tables_read()) for c in state.multi_table
                         if getattr(c, "across_tables", False))  # found parent sums
    resident, chunks = chunk_plan(metadata, totals, chunk_rows, frozenset(kept), together)
    logger.info("sampling in %d chunk(s); resident tables: %s", len(chunks),
                ", ".join(sorted(resident)) or "none")
    seed = int(state.sample_rng.integers(2**63))  # fixes every unique column's sequence
    starts, at = [], dict.fromkeys(totals, 0)
    for number, rows in enumerate(chunks):
        starts.append(dict(at))
        for table in totals:
            at[table] += len(kept[table]) if table in kept and number == 0 else \
                (0 if table in kept else rows[table])
    return SampleRun(seed, totals, resident, chunks, starts, kept)


def chunk_rng(state: FittedState, run: SampleRun, number: int) -> np.random.Generator:
    """The stream chunk ``number`` draws from (see :class:`SampleRun`)."""
    return state.sample_rng if number == 0 else np.random.default_rng([run.seed, number])


def sample_run_chunk(state: FittedState, metadata, run: SampleRun, number: int,
                     resident: Resident | None = None) -> tuple[dict[str, pd.DataFrame], Resident]:
    """Chunk ``number`` of ``run`` as ``{table: DataFrame}`` (every table; resident ones are
    empty after chunk 0), and the :class:`Resident` state chunk 0 leaves for the others (which
    must be given it)."""
    if number > 0 and resident is None:
        raise ValueError("chunks after the first need the resident state of chunk 0")
    resident = resident or Resident(keys=dict(run.kept))  # kept tables' children: real keys
    rng = chunk_rng(state, run, number)
    offsets = run.starts[number]
    share = RunShare(run.seed, dict(offsets), run.totals,
                     resident=frozenset(run.resident) if len(run) > 1 else frozenset())
    frames, links, sampled = sample_chunk(state.model, run.chunks[number], rng, resident.sampled,
                                          share)
    spans = {t: Span(run.seed, offsets[t], run.totals[t]) for t in frames}
    keys = {t: state.transformers[t].generate_keys(len(frames[t]), rng, span=spans[t])
            for t in sorted(frames)}
    keys = _assign(metadata, {**resident.keys, **keys}, links, state.dtypes,
                   set(resident.sampled) | set(run.kept),
                   _line_numbers(state, metadata, run, share, links))
    out = dict(run.kept) if number == 0 else {}
    for table in sorted(frames):
        out[table] = decode_table(state, table, frames[table], keys[table], rng, spans[table])
    held = _hold_within_parents(state, metadata, out, rng, resident.held, run.resident,
                                number == 0, len(run) > 1)
    _copy_parent_values(state, metadata, out, {**resident.rows, **out}, rng)
    if number == 0:
        resident = Resident({t: sampled[t] for t in run.resident if t not in run.kept},
                            {t: keys[t] for t in run.resident},
                            {t: out[t].iloc[0:0] for t in run.resident},
                            {t: out[t] for t in run.resident if t in out}, held)
    chunk = {t: out.get(t, resident.empty.get(t)) for t in metadata.tables}
    if state.multi_table:
        chunk = _reverse_rules(state.multi_table, chunk, resident, number)
    return chunk, resident


def _line_numbers(state: FittedState, metadata, run: SampleRun, share: RunShare, links: dict
                  ) -> Callable[[str, pd.DataFrame], pd.DataFrame]:
    """The hook that numbers a table's lines within each parent (:mod:`hma_db.transform.keys.
    numbering`) once its foreign keys are known, before its children take its keys. A resident
    parent's lines are spread over the chunks: they take the run's parent slots in order
    (:class:`~hma_db.model.RunShare`), so a chunk's line of a parent is numbered after that
    parent's lines in the slots of the chunks before it (TPC-H at scale factor 0.05: 75,000
    orders sampled once, their 300,000 lines in three chunks)."""
    def number(table: str, keys: pd.DataFrame) -> pd.DataFrame:
        tt = state.transformers.get(table)
        numbered = getattr(tt, "numbered", None)  # None in models fitted before it
        if not numbered or keys.empty:
            return keys
        rels = [r for r in metadata.relationships if r["child_table_name"] == table
                and set(key_columns(r["child_foreign_key"])) <= set(numbered["by"])]
        if len(run) == 1 or not {r["parent_table_name"] for r in rels} & set(run.resident):
            return number_within(keys, numbered)
        name = relationship_name(rels[0]) if len(rels) == 1 else None
        slots, link = share.slots.get(name), links.get(name)
        if slots is None or link is None or len(link) != len(keys):
            return keys  # the run-wide sequence: unique, not numbered within the parent
        begin = share.offsets.get(table, 0)
        before = np.bincount(slots[:begin], minlength=int(link.max(initial=-1)) + 1)
        return number_within(keys, numbered, before[link])
    return number


def _reverse_rules(rules: list, chunk: dict[str, pd.DataFrame], resident: Resident,
                   number: int) -> dict[str, pd.DataFrame]:
    """The multi-table rules turned back on a chunk. A later chunk's rows see their resident
    parents as chunk 0 left them (a line dated after its order, where 75,000 orders are
    resident and 300,000 lines are chunked), which the chunk does not write again."""
    if number == 0:
        chunk = reverse_multi_table(rules, chunk)
        resident.rows.update({t: chunk[t] for t in resident.rows})  # as written
        return chunk
    seen = reverse_multi_table(rules, {**chunk, **resident.rows})
    return {t: chunk[t] if t in resident.rows else seen[t] for t in chunk}


class ChunkSampler:
    """A planned run whose chunks can be sampled separately: :meth:`chunk` ``(0)`` where the run
    was planned (it draws from the synthesizer's own stream), then every other chunk anywhere,
    in any order, given chunk 0's :class:`Resident` state. A chunk holds whole families: every
    row of a chunked table has its parents in the same chunk or among the resident tables, so a
    constraint sees no family cut in two. It pickles (the fitted state with it), which is how
    :mod:`hma_db.cluster` sends it to workers once."""

    def __init__(self, state: FittedState, metadata, scale: float,
                 chunk_rows: int | None = DEFAULT_CHUNK_ROWS):
        self.state, self.metadata = state, metadata
        self.run = plan_run(state, metadata, scale, chunk_rows)

    def __len__(self) -> int:
        return len(self.run)

    def chunk(self, number: int, resident: Resident | None = None
              ) -> tuple[dict[str, pd.DataFrame], Resident]:
        """Chunk ``number`` and the resident state (see :func:`sample_run_chunk`)."""
        return sample_run_chunk(self.state, self.metadata, self.run, number, resident)

    def log_totals(self) -> None:
        for table in self.metadata.topological_order():
            logger.info("table %s: sampled %d rows in %d chunk(s)", table, self.run.totals[table],
                        1 if table in self.run.resident else len(self.run))


def iter_sample(state: FittedState, metadata, scale: float,
                chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
                on_rows: Callable[[str, int], None] | None = None
                ) -> Iterator[dict[str, pd.DataFrame]]:
    """Yield ``{table: DataFrame}`` chunks of a fitted synthesizer's sample; see the module doc.

    Every chunk has every table (resident ones are empty after the first chunk) with the source
    columns and dtypes. The synthesizer's sampling stream (``state.sample_rng``) is drawn from,
    so consecutive runs differ and ``reset_sampling`` repeats them.
    """
    sampler = ChunkSampler(state, metadata, scale, chunk_rows)
    resident = None
    for number in range(len(sampler)):
        chunk, resident = sampler.chunk(number, resident)
        count_rows(chunk, on_rows)
        yield chunk
    sampler.log_totals()


def count_rows(chunk: dict[str, pd.DataFrame], on_rows: Callable[[str, int], None] | None
               ) -> None:
    """Tell ``on_rows`` (progress bars) the rows of each table of ``chunk``."""
    if on_rows is not None:
        for table, frame in chunk.items():
            if len(frame):
                on_rows(table, len(frame))


def _copy_parent_values(state: FittedState, metadata, out: dict[str, pd.DataFrame],
                        parents: dict[str, pd.DataFrame], rng: np.random.Generator) -> None:
    """Child columns that repeat their parent's value (an invoice's billing address is its
    customer's address; :mod:`hma_db.transform.inherit`) take it, parents first, in place."""
    for table in metadata.topological_order():
        copies = state.transformers[table].parent_copies if table in state.transformers else []
        if not copies or table not in out or table in state.kept:
            continue
        made = parent_values(copies, out[table], parents, rng)
        if made:
            frame = out[table].copy()
            for column, values in made.items():
                frame[column] = cast_like(pd.Series(values), state.dtypes[table].get(column))
            out[table] = parents[table] = frame


def _hold_within_parents(state: FittedState, metadata, out: dict[str, pd.DataFrame],
                         rng: np.random.Generator, decided: dict[str, dict[str, pd.DataFrame]],
                         resident: set[str], first: bool, chunked: bool = False
                         ) -> dict[str, dict[str, pd.DataFrame]]:
    """Child columns that keep one value within a parent (every track of an album has one
    genre; :mod:`hma_db.transform.inherit`) take one value per parent, in place.

    A resident parent (sampled once, in chunk 0) has children in every chunk: chunk 0
    (``first``) decides every one of them and returns it, for the later chunks. A held
    foreign key takes only a resident parent's rows as values, so a later chunk never points
    at a row of chunk 0's chunked tables (a chunk keeps whole families)."""
    parent_of = {(r["child_table_name"], r["child_foreign_key"]):
                 (r["parent_table_name"], r["parent_primary_key"])
                 for r in metadata.relationships if isinstance(r["child_foreign_key"], str)}
    kept: dict[str, dict[str, pd.DataFrame]] = {}
    for table in sorted(out):
        tt = state.transformers.get(table)
        # A held foreign key points at resident rows, a kept table's real rows included: an
        # album's tracks take one genre (Chinook: 80% of albums had two genres or more, real
        # 3%), and a kept table's rows keep their real counts of children ("exact"), which
        # leaves an album with two genres where one genre's tracks end. Counts over a run's
        # chunks are kept only by the chunk that has all of a parent's children, so the
        # children of a resident parent, spread over the chunks, are not held to a kept row.
        def parent(w: dict, column: str, table: str = table) -> str:
            return parent_of.get((table, w[column]), ("",))[0]

        held = [dict(w, exact=parent(w, "column") in state.kept)
                for w in (tt.within_parent if tt is not None else [])
                if ((table, w["column"]) not in parent_of or parent(w, "column") in resident)
                and not (parent(w, "column") in state.kept and chunked
                         and parent(w, "foreign_key") in resident)]
        if not held or table in state.kept or out[table].empty:
            continue
        fk_of = {w["column"]: w["foreign_key"] for w in held}
        lone = {}  # chunk 0: every resident parent, with or without a child here
        for fk in set(fk_of.values()) if first else ():
            parent, key = parent_of.get((table, fk), (None, None))
            if parent in resident and parent in out:
                lone[fk] = out[parent][key].to_numpy()
        values, made = constant_values(held, out[table], rng, decided.get(table), lone)
        if values:
            frame = out[table].copy()
            for column, column_values in values.items():
                frame[column] = cast_like(pd.Series(column_values),
                                          state.dtypes[table].get(column))
            out[table] = frame
        mine = {c: f for c, f in made.items() if parent_of.get((table, fk_of[c]), ("",))[0]
                in resident}
        if first and mine:
            kept[table] = mine
    return kept


def _kept_frame(state: FittedState, table: str) -> pd.DataFrame:
    """A kept table's source rows, in its source columns and dtypes."""
    frame = state.kept[table].reset_index(drop=True)
    return pd.DataFrame({c: cast_like(frame[c], state.dtypes[table].get(c))
                         for c in state.columns[table]}, index=pd.RangeIndex(len(frame)))


def decode_table(state: FittedState, table: str, numeric: pd.DataFrame, keys: pd.DataFrame,
                 rng: np.random.Generator, span: Span) -> pd.DataFrame:
    """One table in the source's columns and dtypes; ``span`` keeps a chunk's unique columns
    apart from the other chunks'."""
    body = state.transformers[table].reverse_transform(numeric, rng, span)
    body = body.reset_index(drop=True)
    if table in state.constraints:  # the columns the constraints rewrote, turned back
        body = state.constraints[table].reverse(body)
    keys = keys.reset_index(drop=True)
    dtypes = state.dtypes[table]
    out = {}
    for column in state.columns[table]:
        values = keys[column] if column in keys.columns else body[column]
        out[column] = cast_like(values, dtypes.get(column))
    return pd.DataFrame(out, index=pd.RangeIndex(len(numeric)))


def _assign(metadata, keys: dict[str, pd.DataFrame], links, dtypes, fixed: set[str],
            complete: Callable[[str, pd.DataFrame], pd.DataFrame] | None = None
            ) -> dict[str, pd.DataFrame]:
    """Foreign keys of this chunk's tables; the fixed tables' keys are complete already."""
    if not fixed:
        return assign_keys(metadata, keys, links, dtypes, complete)
    view = metadata.copy()
    view.relationships = [r for r in metadata.relationships if r["child_table_name"] not in fixed]
    done = assign_keys(view, keys, links, dtypes, complete)
    return {t: keys[t] if t in fixed else done[t] for t in keys}
