"""Sampling the hierarchical model: tables top-down, all children of all parents at once.

Each table is drawn in topological order. A root table's rows come from its copula, except a
small one's (:func:`replayed_rows`): its fitted rows are drawn again in a permutation. A child
table is drawn under its *primary* parent relationship: the parents' sampled ``num_rows``
(clipped to the range seen) become exact child counts by largest-remainder rounding; every
child of parent p gets the aggregated scores ``mean_p + sd_p * e`` with ``e`` correlated like
the children within a parent, and its remaining columns are drawn from its copula conditional
on those scores. Children with a NULL primary foreign key come from the copula alone.

Afterwards, every other foreign key is assigned: secondary parents by capacity and
resemblance, cut (cycle) relationships by capacity, self-references to earlier rows, then
junction keys are de-duplicated. Every step is vectorized over rows.
"""

from __future__ import annotations

import math
import numbers
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from hma_db.errors import SynthesizerInputError
from hma_db.model.agree import keep_agreements
from hma_db.model.assign import (
    allocate,
    allocate_within,
    assign_by_capacity,
    assign_self,
    deduplicate,
    degrees_at,
    half_up,
    nonnull_count,
    sample_degrees,
)
from hma_db.model.fit import extension_columns, num_rows_column


@dataclass
class RunShare:
    """Where a chunk sits in its run (:mod:`hma_db.synthesizer.chunks`): each table's rows
    before this chunk and in the whole run, a seed of the run, and the tables sampled once for
    every chunk (``resident``, when the run has several chunks). Children of a kept table, or
    chunked children of a resident one, take their parent rows from one sequence of parent
    slots per relationship, drawn once per run with the parents' counts and cut into
    consecutive pieces, one per chunk: the counts of the whole run are the parents' own,
    whatever the number of chunks. Without it, each chunk spread its children over every
    resident parent: Chinook at scale 3 in 14 chunks gave each of 731 albums 14-15 tracks, one
    per chunk (real: 1-57, most under 15), and 1.36 genres per album (real 1.02)."""

    seed: int
    offsets: dict[str, int]
    totals: dict[str, int]
    slots: dict[str, np.ndarray] = field(default_factory=dict)
    resident: frozenset[str] = frozenset()

    def shared(self, rel, parent: _Sampled) -> bool:
        """Whether ``rel``'s children take run-wide slots of ``parent`` (see above)."""
        return parent.kept or (rel["parent"] in self.resident
                               and rel["child"] not in self.resident)


class _Sampled:
    """The sampled values and scores of one table, with column lookup."""

    def __init__(self, columns: list[str], scores: np.ndarray, values: np.ndarray,
                 kept: bool = False):
        self.index = {c: j for j, c in enumerate(columns)}
        self.scores, self.values = scores, values
        # Real rows (a kept table's, or a small root table's replayed): their child counts are
        # the real ones.
        self.kept = kept
        self.links: dict[str, np.ndarray] = {}  # to its parents, for later chunks' agreements

    def __len__(self) -> int:
        return len(self.values)

    def take(self, columns: list[str], scores: bool = False) -> np.ndarray:
        source = self.scores if scores else self.values
        return source[:, [self.index[c] for c in columns]]


def target_rows(source_rows: int, scale: float) -> int:
    """``round(rows * scale)``, at least 1 unless the source table was empty."""
    return 0 if source_rows == 0 else max(1, half_up(source_rows * scale))


def sample_tables(model, scale: float, rng: np.random.Generator
                  ) -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]]:
    """Sample every table of a fitted ``HMAModel``; see :meth:`HMAModel.sample`."""
    rows = {t: target_rows(model.tables[t].rows, scale) for t in model.order}
    frames, links, _ = sample_chunk(model, rows, rng)
    return frames, links


def sample_chunk(model, rows: dict[str, int], rng: np.random.Generator,
                 fixed: dict[str, _Sampled] | None = None, run: RunShare | None = None
                 ) -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray], dict[str, _Sampled]]:
    """Sample ``rows[t]`` rows of every table not in ``fixed``.

    ``fixed`` holds tables sampled earlier (in a previous chunk, see
    :mod:`hma_db.synthesizer.chunks`): they are parents for this chunk's rows, are not sampled again,
    and their own links are not reassigned. Child counts are exact per table: the chunk's
    ``rows[child]`` are spread over the parents of the chunk (and the fixed ones). ``run`` says
    where the chunk sits in a run of several (see :class:`RunShare`).

    Returns:
        ``(frames, links, sampled)``: frames of the tables sampled here, links of their
        relationships, and every table's sampled state (to pass on as ``fixed``).
    """
    fixed = {**kept_rows(model), **(fixed or {})}
    sampled: dict[str, _Sampled] = dict(fixed)
    links: dict[str, np.ndarray] = {}
    for table in model.order:
        if table not in fixed:
            sampled[table] = _sample_table(model, table, rows[table], sampled, links, rng, run)
    for name in sorted(model.relationships):
        if name not in links and model.relationships[name]["child"] not in fixed:
            links[name] = _assign_other(model, name, sampled, rng, run)
    for table in sorted(set(model.junctions) - set(fixed)):
        for key in model.junctions[table]:
            _deduplicate_key(model, key, sampled, links, rng)
    keep_agreements(model, sampled, links, rng)
    for name, link in links.items():
        sampled[model.relationships[name]["child"]].links[name] = link
    frames = {}
    for table in sorted(set(model.tables) - set(fixed)):
        own = model.tables[table].columns
        frames[table] = pd.DataFrame(sampled[table].values[:, :len(own)], columns=own)
    return frames, links, sampled


def kept_rows(model) -> dict[str, _Sampled]:
    """The tables kept as they are, as if sampled: their fitted rows and scores (every chunk
    treats them as fixed parents, so each child row references a real row of theirs)."""
    found = {}
    for table, record in model.tables.items():
        if record.kept is not None:
            columns = record.columns + record.extension_columns
            shape = (len(record.kept["values"]), len(columns))
            values = np.asarray(record.kept["values"], dtype=float).reshape(shape)
            scores = np.asarray(record.kept["scores"], dtype=float).reshape(shape)
            found[table] = _Sampled(columns, scores, values, kept=True)
    return found


def _sample_table(model, table: str, n: int, sampled: dict[str, _Sampled],
                  links: dict[str, np.ndarray], rng: np.random.Generator,
                  run: RunShare | None = None) -> _Sampled:
    record = model.tables[table]
    columns = record.columns + record.extension_columns
    copula, primary = record.copula, record.primary
    if n == 0 or copula is None:
        if primary is not None:
            links[primary] = np.zeros(0, dtype=np.int64)
        return _Sampled(columns, np.zeros((0, len(columns))), np.zeros((0, len(columns))))
    if primary is None and record.replayed is not None:
        return replayed_rows(copula, record.replayed, columns, n, rng)
    if primary is None:
        scores = copula.sample_scores(n, rng)
    else:
        scores, link = _children_scores(model, table, primary, n, sampled, rng, run)
        order = rng.permutation(len(scores))  # interleave NULL-parent rows with the others
        scores, links[primary] = scores[order], link[order]
    return _Sampled(columns, scores, copula.from_scores(scores))


def replayed_rows(copula, rows: list[list[float]], columns: list[str], n: int,
                  rng: np.random.Generator) -> _Sampled:
    """``n`` rows of a small root table: its fitted rows (own and extension columns) in a
    random order, every row once per ``len(rows)`` drawn (``scale`` > 1 repeats each row, a
    smaller one takes a random subset). A copula fitted on a few rows draws each parent's
    child count afresh (Northwind's 6 shippers got 205-210 orders each against 249-326, Chinook's
    media type of 3,034 tracks got 37); the real rows carry their real counts and the values
    that go with them."""
    values = np.asarray(rows, dtype=float).reshape(len(rows), len(columns))
    rounds = -(-n // len(values))
    order = rng.permuted(np.tile(np.arange(len(values)), (rounds, 1)), axis=1).ravel()[:n]
    values = values[order]
    return _Sampled(columns, copula.to_scores(values), values, kept=True)


def _children_scores(model, table: str, name: str, n: int, sampled: dict[str, _Sampled],
                     rng: np.random.Generator, run: RunShare | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Scores of ``n`` rows of ``table`` drawn under the parents of relationship ``name``."""
    rel = model.relationships[name]
    parent = sampled[rel["parent"]]
    copula = model.tables[table].copula
    n_linked = nonnull_count(n, rel["null_share"], len(parent))
    n_null = n - n_linked  # NULL foreign keys, at the source's share
    cap = _primary_cap(model, table, name, sampled)
    if run and run.shared(rel, parent):
        counts, n_linked = _kept_share(rel, name, parent, n, run, cap)
        n_null = n - n_linked
    else:
        counts = allocate_within(_expected_counts(rel, name, parent), n_linked,
                                 _range(rel, parent), cap)
    # A unique key can make fewer children possible than asked (scale < 1 on a junction
    # table): the table then gets fewer rows rather than NULLs in a key column.
    n_linked = int(counts.sum())
    parent_of = np.repeat(np.arange(len(parent), dtype=np.int64), counts)
    aggregated = rel["aggregated"]
    if aggregated:
        k = len(aggregated)
        stats = parent.take(extension_columns(name, aggregated)[1:])
        means, sds = stats[:, :k][parent_of], np.clip(stats[:, k:], 0, None)[parent_of]
        known = means + sds * _within_noise(rel, counts, rng)
        linked = copula.conditional_scores(known, aggregated, rng)
    else:
        linked = copula.sample_scores(n_linked, rng)
    orphans = copula.sample_scores(n_null, rng)
    link = np.concatenate([parent_of, np.full(n_null, -1, dtype=np.int64)])
    return np.vstack([linked, orphans]), link


def _expected_counts(rel, name: str, parent: _Sampled) -> np.ndarray:
    """Each sampled parent's number of children: its ``num_rows`` score mapped through the
    source's out-degree quantiles, so counts keep the source's values and range (the copula
    keeps their dependence on the parent's other columns); a kept row's real count."""
    if parent.kept:  # a kept table's rows: the real number of children each had
        return np.clip(parent.take([num_rows_column(name)])[:, 0], 0, None)
    score = parent.take([num_rows_column(name)], scores=True)[:, 0]
    return degrees_at(rel["degree_quantiles"], special.ndtr(score))


def _within_noise(rel, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Correlated within-group deviations that sum to zero in every group, for children laid
    out parent by parent (``counts[p]`` consecutive rows for parent ``p``).

    The sampled group mean already contains the noise of averaging m children; centering the
    deviations makes the children's mean score exactly the sampled one, so their total variance
    is between + within (not inflated by within/m) and the parent-child dependence is kept.
    One-child groups get the sampled mean itself.
    """
    k = len(rel["aggregated"])
    chol = np.linalg.cholesky(np.asarray(rel["within_correlation"]))
    noise = rng.standard_normal((int(counts.sum()), k)) @ chol.T
    present = counts > 0
    if present.any():
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[present]
        means = np.add.reduceat(noise, starts, axis=0) / counts[present][:, None]
        noise -= np.repeat(means, counts[present], axis=0)
    # Centered deviations have sample variance (ddof=1) of one, so sd_p is the group's sd.
    return noise


def _primary_cap(model, table: str, name: str, sampled: dict[str, _Sampled]) -> int | None:
    """Most children one parent may have so that the table's unique keys can hold."""
    if model.relationships[name]["unique"]:
        return 1
    caps = []
    for key in model.junctions.get(table, []):
        if name in key:
            others = [model.relationships[o]["parent"] for o in key if o != name]
            if all(p in sampled for p in others):
                caps.append(int(np.prod([float(len(sampled[p])) for p in others])))
    return min(caps) if caps else None


def _kept_share(rel, name: str, parent: _Sampled, n: int, run: RunShare,
                cap: int | None) -> tuple[np.ndarray, int]:
    """A chunk's child counts under a kept table, or a resident one (its piece of the run's
    parent slots, :class:`RunShare`), and
    how many of its ``n`` rows have a parent (the rest are NULL at the source's share; a cap
    that leaves fewer slots gives fewer rows, as :func:`_children_scores` explains)."""
    child, share, parents = rel["child"], rel["null_share"], len(parent)
    slots = run.slots.get(name)
    if slots is None:
        total = nonnull_count(run.totals[child], share, parents)
        # Only a one-child-per-parent key caps the whole run; a junction's cap is per chunk.
        counts = allocate(_expected_counts(rel, name, parent), total, 1 if rel["unique"] else None)
        seed = [run.seed, zlib.crc32(name.encode())]
        slots = np.random.default_rng(seed).permutation(
            np.repeat(np.arange(parents, dtype=np.int64), counts))
        run.slots[name] = slots
    start = run.offsets.get(child, 0)
    begin, end = (nonnull_count(start + k, share, parents) for k in (0, n))
    counts = np.bincount(slots[begin:end], minlength=parents).astype(np.int64)
    if cap is not None and counts.max(initial=0) > cap:  # a junction's parent-pairs run out:
        counts = allocate(counts, end - begin, cap)  # the excess goes to the others
    return counts, end - begin


def _assign_other(model, name: str, sampled: dict[str, _Sampled],
                  rng: np.random.Generator, run: RunShare | None = None) -> np.ndarray:
    """A link for a secondary, cut or self relationship, once every table is sampled."""
    rel = model.relationships[name]
    child, parent = sampled[rel["child"]], sampled[rel["parent"]]
    cap = 1 if rel["unique"] else None
    if rel["kind"] == "self":
        return assign_self(len(child), rel["null_share"], rel["degree_quantiles"], rng, cap)
    if rel["kind"] == "deferred":
        weights = sample_degrees(rel["degree_quantiles"], len(parent), rng)
        return assign_by_capacity(len(child), rel["null_share"], weights, None, None, rng, cap,
                                  _range(rel, parent))
    weights = _expected_counts(rel, name, parent)
    child_key = parent_key = None
    w = np.asarray(rel["projection"], dtype=float)
    if rel["aggregated"] and np.any(w != 0):
        k = len(rel["aggregated"])
        parent_key = parent.take(extension_columns(name, rel["aggregated"])[1:1 + k]) @ w
        projected = child.take(rel["aggregated"], scores=True) @ w
        child_key = rel["shrink"] * projected + rel["posterior_sd"] * rng.standard_normal(len(child))
    capacities = _kept_share(rel, name, parent, len(child), run, cap)[0] \
        if run and run.shared(rel, parent) else None
    return assign_by_capacity(len(child), rel["null_share"], weights, child_key, parent_key,
                              rng, cap, _range(rel, parent), capacities)


def _range(rel, parent: _Sampled) -> tuple[int, int] | None:
    """The source's fewest and most children per parent row; None under a kept table, whose
    real counts are shared out in proportion over the chunks of a run (a floor of one child
    per parent and chunk would give a 7-track media type one track in each of 18 chunks)."""
    if parent.kept:
        return None
    return int(rel["min_count"]), int(max(rel["max_count"], rel["min_count"], 1))


def _deduplicate_key(model, key: list[str], sampled: dict[str, _Sampled],
                     links: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """Make the combination of the links in ``key`` unique by reassigning one of them."""
    rels = model.relationships
    table = rels[key[0]]["child"]
    primary = model.tables[table].primary
    # Reassign a secondary link, never the primary one the rows were generated under.
    # Prefer a link with no order constraint (a self-reference must point at earlier rows).
    movable = sorted((n for n in key if n != primary), key=lambda n: (rels[n]["kind"] == "self", n))
    last = movable[0]
    others = [n for n in key if n != last]
    links[last] = deduplicate(
        [links[n] for n in others], [len(sampled[rels[n]["parent"]]) for n in others],
        links[last], len(sampled[rels[last]["parent"]]), rng, f"Table '{table}' key {key}")


def check_scale(scale: Any) -> None:
    """Refuse a scale that is not a positive finite number (``bool`` included)."""
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) \
            or not math.isfinite(scale) or scale <= 0:
        raise SynthesizerInputError(
            f"scale must be a positive finite number (1.0 keeps the source row counts); "
            f"found {scale!r}.")
