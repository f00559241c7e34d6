"""Columns that keep one value within each parent: every track of an album has one price, one
genre and one media type.

Child rows are drawn row by row given their parent's statistics, so a value the source never
varies within a parent came out mixed: Chinook's synthetic albums had 4.5 genres on average
(real 1.04) and 56 of 347 mixed their tracks' prices (real 0). At fit, :func:`find` measures,
for every child column and foreign key, the share of parents with two or more children set in
that column whose children all hold one value (``constant``), and the share two independent
draws with the column's frequencies would give (``expected``: the mean over those parents of
the sum of p_v to the power of its number of children). A column is kept when

- ``constant`` is at least :data:`MIN_CONSTANT` (most parents), over at least
  :data:`MIN_PARENTS` parents, and
- it is not chance: ``share = (constant - expected) / (1 - expected)`` (the share of parents
  the source holds to one value beyond chance) is at least :data:`MIN_SHARE`. A price of 0.99
  for 94% of tracks leaves a ten-track album one price by chance in 54% of albums.

At sampling, :func:`constant_values` gives that ``share`` of the sampled parents one value: the
first of its children's drawn values, so the value still follows the parent's statistics and
the column keeps its frequencies; the other parents keep their draws, and together the share of
constant parents is the source's. Vectorized over rows: one ``np.unique`` per column. A parent
sampled once for the whole run (a resident table) has its children in every chunk: what chunk
0 decides for it is handed to the later chunks, so it keeps one value in all of them (a parent
with no child in chunk 0 is decided in each chunk that has its children).

Left out: keys of the table itself, the foreign key measured, personal and unique columns,
columns that copy a parent's value (:mod:`hma_db.transform.inherit`, constant already), columns
a rule keeps (given in ``ruled``), self-references. A chunk holds whole families
(:mod:`hma_db.synthesizer.chunks`), so a parent's children are all in its chunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

MIN_CONSTANT = 0.8
MIN_SHARE = 0.5
MIN_PARENTS = 20  # parents with two or more children: fewer say nothing
_SAMPLE = 200_000  # child rows measured (a seeded sample of the parents of a large table)
_ROLES = ("modeled", "choice", "values", "generated", "foreign_key")


def find(metadata, data: dict[str, pd.DataFrame], transformers: dict[str, Any],
         ruled: dict[str, set[str]] | None = None) -> dict[str, list[dict[str, Any]]]:
    """``{child table: [{"foreign_key", "column", "share"}, ...]}`` (see the module doc), the
    foreign key with the largest share for each column."""
    ruled = ruled or {}
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for rel in metadata.relationships:
        child, fk = rel["child_table_name"], rel["child_foreign_key"]
        if child == rel["parent_table_name"] or not isinstance(fk, str) or child not in data \
                or child not in transformers:
            continue
        frame, tt = data[child], transformers[child]
        left_out = _left_out(metadata, child) | {c["column"] for c in tt.parent_copies} \
            | ruled.get(child, set()) | {fk}
        roles = tt.column_roles()
        for column in frame.columns:
            if column in left_out or roles.get(column) not in _ROLES or tt.is_unique(column):
                continue
            share = _share(frame[fk], frame[column])
            best = found.setdefault(child, {}).get(column)
            if share is not None and (best is None or share > best["share"]):
                found[child][column] = {"foreign_key": fk, "column": column, "share": share}
    return {t: sorted(c.values(), key=lambda c: c["column"]) for t, c in found.items() if c}


def _left_out(metadata, table: str) -> set[str]:
    """Columns never held: the table's own and alternate keys, a part of a composite foreign
    key (one part moved alone names no parent), a self-reference (it points at earlier rows)."""
    out = set(metadata.primary_key(table))
    out |= {c for key in metadata.alternate_keys(table) for c in key}
    for rel in metadata.relationships:
        fk = rel["child_foreign_key"]
        if rel["child_table_name"] == table and (
                not isinstance(fk, str) or rel["parent_table_name"] == table):
            out |= {fk} if isinstance(fk, str) else set(fk)
    return out


def _share(parent_key: pd.Series, values: pd.Series) -> float | None:
    """The share of parents held to one value beyond chance, or None when it is not a rule."""
    both = parent_key.notna() & values.notna()
    if both.sum() < 2 * MIN_PARENTS:
        return None
    parents, _ = pd.factorize(parent_key[both])
    if len(parents) > _SAMPLE:  # whole parents, the same ones every fit
        chosen = np.random.default_rng(0).random(parents.max() + 1) < _SAMPLE / len(parents)
        keep = chosen[parents]
        parents, codes = parents[keep], pd.factorize(values[both][keep])[0]
    else:
        codes = pd.factorize(values[both])[0]
    if codes.max(initial=0) == 0:
        return None  # one value in the whole column: nothing to hold
    frame = pd.DataFrame({"p": parents, "v": codes})
    groups = frame.groupby("p")["v"].agg(["size", "nunique"])
    groups = groups[groups["size"] >= 2]
    if len(groups) < MIN_PARENTS:
        return None
    constant = float((groups["nunique"] == 1).mean())
    frequencies = np.bincount(codes) / len(codes)
    sizes, counts = np.unique(groups["size"].to_numpy(), return_counts=True)
    chance = np.array([np.sum(frequencies ** k) for k in sizes])
    expected = float(np.dot(chance, counts) / counts.sum())
    if constant < MIN_CONSTANT or expected >= 1.0:
        return None
    share = (constant - expected) / (1.0 - expected)
    return float(min(share, 1.0)) if share >= MIN_SHARE else None


def constant_values(within: list[dict[str, Any]], child: pd.DataFrame,
                    rng: np.random.Generator, decided: dict[str, pd.DataFrame] | None = None
                    ) -> tuple[dict[str, np.ndarray], dict[str, pd.DataFrame]]:
    """The new values of the held columns of a sampled ``child``, and what was decided per
    parent here.

    In each column's share of parents (one draw per parent and foreign key), every child takes
    the value of the parent's first child with the column set; NULLs stay NULL. ``decided``
    (``{column: frame of parent key, held, value}`` from an earlier chunk of the run) fixes the
    parents it names: a parent whose children are spread over chunks (its table sampled once,
    in chunk 0) keeps one value in all of them. Parents not named there are decided here.
    """
    decided = decided or {}
    out: dict[str, np.ndarray] = {}
    made: dict[str, pd.DataFrame] = {}
    for fk in dict.fromkeys(w["foreign_key"] for w in within):
        if child.empty or fk not in child:
            continue
        parents, keys = pd.factorize(child[fk])  # -1 for a NULL foreign key
        draws = rng.random(len(keys))
        for entry in (w for w in within if w["foreign_key"] == fk):
            column = entry["column"]
            values = child[column].to_numpy(dtype=object).copy()
            value_of = np.full(len(keys), None, dtype=object)
            rows = np.flatnonzero((parents >= 0) & pd.notna(values))
            groups, first = np.unique(parents[rows], return_index=True)
            value_of[groups] = values[rows[first]]
            held = draws < entry["share"]
            earlier = decided.get(column)
            known = np.full(len(keys), -1) if earlier is None else \
                pd.Index(earlier["key"]).get_indexer(keys)
            if earlier is not None and (known >= 0).any():
                at = known[known >= 0]
                held[known >= 0] = earlier["held"].to_numpy(dtype=bool)[at]
                value_of[known >= 0] = earlier["value"].to_numpy(dtype=object)[at]
            new = (known < 0) & pd.notna(value_of)
            made[column] = pd.DataFrame({"key": keys[new], "held": held[new],
                                         "value": value_of[new]})
            take = np.flatnonzero((parents >= 0) & pd.notna(values))
            take = take[held[parents[take]] & pd.notna(value_of[parents[take]])]
            values[take] = value_of[parents[take]]
            out[column] = values
    return out, made


def checked(within: Any, table: str, known: set[str], error: type[Exception]
            ) -> list[dict[str, Any]]:
    """A model file's held columns, refused unless each names columns of the table and a share
    between 0 and 1 (a model file is untrusted input)."""
    entries = within if isinstance(within, list) else [within]
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"foreign_key", "column", "share"} \
                or not isinstance(entry["column"], str) or entry["column"] not in known \
                or not isinstance(entry["foreign_key"], str) or entry["foreign_key"] not in known \
                or isinstance(entry["share"], bool) \
                or not isinstance(entry["share"], (int, float)) \
                or not 0.0 <= entry["share"] <= 1.0:
            raise error(f"The saved transformer of table '{table}' has a column held within "
                        f"its parent that is not valid: {entry!r}")
    return [dict(e) for e in entries]
