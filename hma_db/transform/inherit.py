"""Columns that follow their parent: a value copied from the parent row (an invoice's billing
address is its customer's address), and a value held within the parent (every track of an
album has one price).

A table's columns are generated table by table, so a child column that holds its parent's
value in the source (Chinook ``Invoice.BillingAddress`` = the customer's ``Address`` in 412 of
412 rows, Northwind ``orders.ship_city`` = the customer's ``city`` in 98%) came out equal in
no synthetic row. At fit, :func:`find` measures for every child column the share of rows
that hold the value of a parent column (through a one-column foreign key, null = null counting
as equal) and keeps the best parent column when:

- the share is at least :data:`MIN_SHARE` ("most rows": the lowest pair on Chinook and
  Northwind is ``orders.ship_address``, 0.94; below 0.5 a column is a value of its own), and
- it is not chance: the share beats the one two independent columns with these frequencies
  would have (``expected``) by :data:`MIN_AGREEMENT` of the room left (Cohen's kappa), so
  two flags that are 'Y' in 90% of rows each are not taken for a copy.

The pairs are stored in the child's transformer (``parent_copies``, saved in the model file),
and :func:`parent_values` applies them after sampling, once the parent's values are made: the
chosen share of child rows take their parent's synthetic value. The columns copied through one
foreign key share one draw per row, so a row whose address is copied has its city copied too.
A text column of at most :data:`VOCABULARY_VALUES` values (a status) takes only the parent
values it has itself.

Text is compared with text and numbers with numbers (Chinook ``InvoiceLine.UnitPrice`` is its
track's ``UnitPrice`` in every row: a copy keeps the price a track sells at, where the model
drew it apart, correlation 0.00 with the track's price instead of 1.00); a column
that is not personal data takes no personal (faked) value, so a category keeps the source's
values; a column derived from another of its row, or that another is derived from
(:mod:`hma_db.transform.dependencies`), keeps its row's agreement; self-references are left
out (a chain of managers would need one pass per level).

**Values held within a parent**: every track of an album has one price, one genre and one
media type.

Child rows are drawn row by row given their parent's statistics, so a value the source never
varies within a parent came out mixed: Chinook's synthetic albums had 4.5 genres on average
(real 1.04) and 56 of 347 mixed their tracks' prices (real 0). At fit, :func:`find_held`
measures, for every child column and foreign key, the share of parents with two or more children set in
that column whose children all hold one value (``constant``), and the share two independent
draws with the column's frequencies would give (``expected``: the mean over those parents of
the sum of p_v to the power of its number of children). A column is kept when

- ``constant`` is at least :data:`HELD_MIN_CONSTANT` (most parents), over at least
  :data:`HELD_MIN_PARENTS` parents, and
- it is not chance: ``share = (constant - expected) / (1 - expected)`` (the share of parents
  the source holds to one value beyond chance) is at least :data:`HELD_MIN_SHARE`. A price
  of 0.99 for 94% of tracks leaves a ten-track album one price by chance in 54% of albums.

At sampling, :func:`constant_values` gives that ``share`` of the sampled parents one value: the
value its first child drew, shared out so that the children keep the counts they drew
(parents sorted by that value and laid over blocks of their children's values, each parent
taking the block under its middle child; a held key of a table copied as it is keeps every
count exactly, each child taking the block under it), so the value still follows the
parent's statistics and the column keeps its frequencies; the other parents keep their
draws, and together the share of constant parents is the source's. Vectorized over rows:
one ``np.unique`` per column. A parent
sampled once for the whole run (a resident table) has its children in every chunk: what chunk
0 decides for it is handed to the later chunks, so it keeps one value in all of them (a parent
with no child in chunk 0 is decided in each chunk that has its children).

Left out: keys of the table itself, the foreign key measured, personal and unique columns,
columns that copy a parent's value (:mod:`hma_db.transform.inherit`, constant already), columns
a rule keeps (given in ``ruled``; "*": a programmable rule, whose columns are its code's),
self-references. A chunk holds whole families (:mod:`hma_db.synthesizer.chunks`), so a
parent's children are in its chunk, except a resident parent's, which chunk 0 decides.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hma_db.schema import guess_from_name
from hma_db.transform import encoders, scaled

MIN_SHARE = 0.5
MIN_AGREEMENT = 0.5
MIN_ROWS = 20  # fewer linked child rows say nothing
_SAMPLE = 50_000  # child rows the shares are measured on (a seeded sample of a large table)
_SCREEN = 500  # rows a pair is screened on before it is measured on the sample
_CHILD_ROLES = ("personal", "modeled", "choice", "generated", "values")


_KINDS = ("str", "int", "float", "decimal")  # values compared as they are


def _comparable(frame: pd.DataFrame, kinds: dict[str, str], roles: dict[str, str],
                allowed: tuple[str, ...] | None) -> list[str]:
    return [c for c in frame.columns if kinds.get(c) in _KINDS and roles.get(c) is not None
            and (allowed is None or roles[c] in allowed)]


def _codes(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both columns coded on one set of values (null = -1 in both)."""
    codes, _ = pd.factorize(pd.Series(np.concatenate([a, b]), dtype=object),
                            use_na_sentinel=True)
    return codes[:len(a)], codes[len(a):]


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(share of rows where ``a`` equals ``b``, Cohen's kappa of that share)."""
    ca, cb = _codes(a, b)
    share = float(np.mean(ca == cb)) if len(ca) else 0.0
    size = int(max(ca.max(initial=-1), cb.max(initial=-1))) + 2
    pa = np.bincount(ca + 1, minlength=size) / max(len(ca), 1)
    pb = np.bincount(cb + 1, minlength=size) / max(len(cb), 1)
    expected = float(np.dot(pa, pb))
    return share, (share - expected) / (1.0 - expected) if expected < 1.0 else 0.0


def find(metadata, data: dict[str, pd.DataFrame],
         transformers: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``{child table: [copy, ...]}``: each child column that holds a parent column's
    value in most rows (see the module doc), with the foreign key, the parent column and the
    share. ``transformers`` give each column's role and value kind."""
    found: dict[str, list[dict[str, Any]]] = {}
    for rel in metadata.relationships:
        child, parent = rel["child_table_name"], rel["parent_table_name"]
        fk, pk = rel["child_foreign_key"], rel["parent_primary_key"]
        if child == parent or not isinstance(fk, str) or not isinstance(pk, str) or \
                child not in data or parent not in data:
            continue
        copies = _pairs(data[child], data[parent], fk, pk, transformers[child],
                        transformers[parent])
        for copy in copies:
            copy.update(foreign_key=fk, parent=parent, parent_key=pk)
        found.setdefault(child, []).extend(copies)
    best: dict[str, list[dict[str, Any]]] = {}
    for child, copies in found.items():  # one parent column per child column: the best share
        chosen: dict[str, dict[str, Any]] = {}
        for copy in copies:
            if copy["column"] not in chosen or copy["share"] > chosen[copy["column"]]["share"]:
                chosen[copy["column"]] = copy
        best[child] = _tie_states(sorted(chosen.values(),
                                         key=lambda c: (c["foreign_key"], -c["share"])))
    return {t: c for t, c in best.items() if c}


def _tie_states(copies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A country, state and postcode copied through one foreign key get one share, the larger
    of the state's and the postcode's, so no row takes its parent's state with a postcode or a
    country of its own (an en_US postcode must lie in its state's range, a state in its
    country). Measured on Northwind's orders: ship_postal_code 0.949 -> 0.984, ship_country
    1.000 -> 0.984 (the rows left keep an address of their own, whole)."""
    for fk in dict.fromkeys(c["foreign_key"] for c in copies):
        tied = [c for c in copies if c["foreign_key"] == fk
                and guess_from_name(c["column"]) in ("state", "postcode", "country")]
        places = [c["share"] for c in tied if guess_from_name(c["column"]) != "country"]
        if len(tied) > 1 and places:
            for copy in tied:
                copy["share"] = max(places)
    return sorted(copies, key=lambda c: (c["foreign_key"], -c["share"]))


def _pairs(child: pd.DataFrame, parent: pd.DataFrame, fk: str, pk: str, child_tt,
           parent_tt) -> list[dict[str, Any]]:
    rows = np.random.default_rng(0).permutation(len(child))[:_SAMPLE]
    rows.sort()
    position = pd.Index(parent[pk]).get_indexer(child[fk].to_numpy()[rows])
    linked = rows[position >= 0]
    position = position[position >= 0]
    if len(linked) < MIN_ROWS:
        return []
    roles, parent_roles = child_tt.column_roles(), parent_tt.column_roles()
    columns = _comparable(child, child_tt.value_kinds, roles, _CHILD_ROLES)
    tied = child_tt.derivation_sources()  # a city whose country is derived from it stays
    columns = [c for c in columns if not child_tt.is_unique(c) and c not in tied]
    parents = _comparable(parent, parent_tt.value_kinds, parent_roles, None)
    # The screen's rows are drawn from all the linked rows: the first ones are the oldest
    # (Northwind's first 500 order lines sold at 80% of today's catalogue price, so a copy
    # made in 69% of all lines was screened out on them).
    few = np.sort(np.random.default_rng(1).permutation(len(linked))[:_SCREEN])
    screen = _Screen(child, parent, linked[few], position[few])
    floats: dict[str, np.ndarray] = {}  # the parent's numbers at the linked rows, made once
    found = []
    for column in columns:
        others = [other for other in parents
                  # a category keeps the source's values: no faked value enters it
                  if (roles[column] == "personal" or parent_roles[other] != "personal")
                  # text against text, numbers against numbers
                  and (child_tt.value_kinds[column] == "str")
                  == (parent_tt.value_kinds[other] == "str")]
        a = None
        for other in screen.may_agree(column, others):
            if a is None:  # a column of objects: made for the few pairs the screen leaves
                a = child[column].iloc[linked].to_numpy(dtype=object)
            b = parent[other].iloc[position].to_numpy(dtype=object)
            if agreement(a[few], b[few])[0] < MIN_SHARE:
                continue  # most pairs end here, on a few hundred rows
            share, kappa = agreement(a, b)
            if share >= MIN_SHARE and kappa >= MIN_AGREEMENT:
                found.append({"column": column, "parent_column": other, "share": share,
                              "nulls": bool(child[column].isna().any()),
                              **_vocabulary(child[column], roles[column],
                                            child_tt.value_kinds[column])})
        if roles[column] == "modeled" and child_tt.value_kinds[column] in _NUMBERS and \
                not any(f["column"] == column for f in found):
            numbers = [o for o in others if parent_roles[o] == "modeled"
                       and parent_tt.value_kinds[o] in _NUMBERS]
            copy = _scaled(child[column], parent, numbers, linked, position, few, floats)
            if copy is not None:
                found.append({"column": column, **copy,
                              "kind": child_tt.value_kinds[column],
                              "nulls": bool(child[column].isna().any())})
    return found


_NUMBERS = ("int", "float", "decimal")


def _scaled(values: pd.Series, parent: pd.DataFrame, numbers: list[str], linked: np.ndarray,
            position: np.ndarray, few: np.ndarray, floats: dict[str, np.ndarray]
            ) -> dict[str, Any] | None:
    """A child number that is a parent number times a constant (:mod:`hma_db.transform.
    scaled`), screened on the screen's rows first; with its decimal places. ``floats`` keeps
    the parent's numbers at the linked rows for the table's other columns."""
    if not numbers:
        return None
    a = scaled.as_floats(values.iloc[linked])
    digits = encoders.learn_digits(a[np.isfinite(a)])
    if digits is None:
        return None
    for o in numbers:
        if o not in floats:
            floats[o] = scaled.as_floats(parent[o].iloc[position])
    b = {o: floats[o] for o in numbers}
    if scaled.find(a[few], {o: v[few] for o, v in b.items()}, digits) is None:
        return None
    found = scaled.find(a, b, digits)
    return None if found is None else {**found, "digits": digits}


def _floats(values: pd.Series) -> np.ndarray | None:
    """Plain numpy numbers (or flags) as floats; None for any other column."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "biuf":
        return values.to_numpy(dtype=float)
    return None


class _Screen:
    """The pairs of number columns that cannot hold one value in most rows, told at once.

    Two plain numpy number columns are equal as floats in every row where their values are
    equal (and in some more, such as 2**53 + 1 and 2**53): the share of rows equal as floats
    bounds the share :func:`agreement` measures, so a pair below :data:`MIN_SHARE` that way is
    below it exactly. parent16 has 34 pairs of number columns, all below: 11 ms of object
    factorizing, 0.2 ms this way. Other columns (text, decimals, nullable integers) are left
    to :func:`agreement`.
    """

    def __init__(self, child: pd.DataFrame, parent: pd.DataFrame, rows: np.ndarray,
                 positions: np.ndarray):
        self.child, self.parent, self.rows, self.positions = child, parent, rows, positions
        self._parent_floats: dict[str, np.ndarray | None] = {}

    def _parent(self, column: str) -> np.ndarray | None:
        if column not in self._parent_floats:
            values = _floats(self.parent[column])
            self._parent_floats[column] = None if values is None else values[self.positions]
        return self._parent_floats[column]

    def may_agree(self, column: str, others: list[str]) -> list[str]:
        """The columns of ``others`` (parent columns, in order) that may hold ``column``'s
        value in at least :data:`MIN_SHARE` of the screened rows."""
        values = _floats(self.child[column])
        numeric = [o for o in others if self._parent(o) is not None]
        if values is None or not numeric or not len(self.rows):
            return others
        a = values[self.rows][:, None]
        b = np.column_stack([self._parent(o) for o in numeric])
        upper = np.mean((a == b) | (np.isnan(a) & np.isnan(b)), axis=0)
        below = {o for o, share in zip(numeric, upper, strict=True) if share < MIN_SHARE}
        return [o for o in others if o not in below]


# A text column with at most this many values is a closed vocabulary (a status, a mode): a
# parent's value outside it is not copied. TPC-H lineitem.l_linestatus (F, O) copies its
# order's o_orderstatus (F, O, P) in most rows; 'P' had reached 5% of the synthetic lines.
VOCABULARY_VALUES = 100


def _vocabulary(values: pd.Series, role: str, kind: str) -> dict[str, list[str]]:
    """``{"values": [...]}`` for a closed vocabulary of text (not personal data), else {}."""
    if kind != "str" or role == "personal":
        return {}
    found = pd.unique(values.dropna())
    if len(found) > VOCABULARY_VALUES or not all(isinstance(v, str) for v in found):
        return {}
    return {"values": sorted(found)}


def parent_values(copies: list[dict[str, Any]], child: pd.DataFrame,
                  parents: dict[str, pd.DataFrame],
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The new values of the copied columns of a sampled ``child``: in each column's share of
    rows, the value of its parent row in ``parents`` (the sampled parent tables).

    One uniform draw per row and foreign key: a row is copied in every column whose share
    exceeds its draw, so the copied columns of a row come from one parent row together. A
    column whose source had no nulls takes no null from its parent.
    """
    out: dict[str, np.ndarray] = {}
    for fk in dict.fromkeys(c["foreign_key"] for c in copies):
        group = [c for c in copies if c["foreign_key"] == fk]
        parent = parents.get(group[0]["parent"])
        if parent is None or parent.empty or child.empty:
            continue
        position = pd.Index(parent[group[0]["parent_key"]]).get_indexer(child[fk])
        draw = rng.random(len(child))
        for copy in group:
            values = child[copy["column"]].to_numpy(dtype=object).copy()
            source = parent[copy["parent_column"]].to_numpy(dtype=object)
            take = (position >= 0) & (draw < copy["share"])
            if "values" in copy:  # a closed vocabulary takes no value from outside it
                offered = pd.Series(source[position[take]])
                take[take] = (offered.isin(copy["values"]) | offered.isna()).to_numpy()
            made = source[position[take]]
            if "factor" in copy:  # a twelfth of the salary: the parent's value, scaled
                made = scaled.scale(made, copy)
            if not copy["nulls"]:
                keep = pd.notna(made)
                take[np.flatnonzero(take)[~keep]] = False
                made = made[keep]
            values[take] = made
            out[copy["column"]] = values
    return out


# Measured on Chinook: Album -> Track holds UnitPrice (constant 1.00, beyond chance 1.00),
# MediaTypeId (1.00 / 0.995) and GenreId (0.97 / 0.958); the next columns are far below (a
# track's Composer, 0.5 of albums, is a value of each track). Northwind has none above 0.8
# (order_details.discount within an order: 0.75). Half the room beyond chance, as for copies.
HELD_MIN_CONSTANT = 0.8
HELD_MIN_SHARE = 0.5
HELD_MIN_PARENTS = 20  # parents with two or more children: fewer say nothing
_HELD_SAMPLE = 200_000  # child rows measured (a seeded sample of the parents of a large table)
_HELD_ROLES = ("modeled", "choice", "values", "generated", "foreign_key")


def find_held(metadata, data: dict[str, pd.DataFrame], transformers: dict[str, Any],
              ruled: dict[str, set[str]] | None = None) -> dict[str, list[dict[str, Any]]]:
    """``{child table: [{"foreign_key", "column", "share"}, ...]}`` (see the module doc), the
    foreign key with the largest share for each column."""
    ruled = ruled or {}
    if "*" in ruled:  # a programmable rule on every table: what it keeps is its code's
        return {}
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for rel in metadata.relationships:
        child, fk = rel["child_table_name"], rel["child_foreign_key"]
        if child == rel["parent_table_name"] or not isinstance(fk, str) or child not in data \
                or child not in transformers:
            continue
        frame, tt = data[child], transformers[child]
        if "*" in ruled.get(child, set()):
            continue
        # a city whose country is derived from it moves with it, not on its own
        left_out = _never_held(metadata, child) | {c["column"] for c in tt.parent_copies} \
            | ruled.get(child, set()) | tt.derivation_sources() | {fk}
        roles, parents = tt.column_roles(), _Parents(frame[fk])
        for column in frame.columns:
            if column in left_out or roles.get(column) not in _HELD_ROLES or \
                    tt.value_kinds.get(column) not in _KINDS or tt.is_unique(column):
                continue  # (JSON, arrays and bytes are not values to compare)
            share = _held_share(parents, frame[column])
            best = found.setdefault(child, {}).get(column)
            if share is not None and (best is None or share > best["share"]):
                found[child][column] = {"foreign_key": fk, "column": column, "share": share}
    return {t: sorted(c.values(), key=lambda c: c["column"]) for t, c in found.items() if c}


def _never_held(metadata, table: str) -> set[str]:
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


class _Parents:
    """A foreign key's parents as codes (first seen first), for the rows where it and a column
    are set; the codes of the rows where the key is set are made once for all its columns."""

    def __init__(self, key: pd.Series):
        self.key, self.set = key, _set(key)
        self._codes: np.ndarray | None = None

    def codes(self, both: np.ndarray) -> np.ndarray:
        """``pd.factorize(key[both])[0]``."""
        if not (both == self.set).all():  # a column NULL where the key is set
            return pd.factorize(_rows(self.key, both))[0]
        if self._codes is None:
            self._codes = pd.factorize(_rows(self.key, self.set))[0]
        return self._codes


def _set(values: pd.Series) -> np.ndarray:
    """Per row: is the value set (numpy integers and flags always are)."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iub":
        return np.ones(len(values), dtype=bool)
    return values.notna().to_numpy()


def _rows(values: pd.Series, rows: np.ndarray):
    """``values[rows]`` (a boolean mask), as factorize codes it alike: the numpy array itself
    when every row is taken (a Series costs 0.1 ms a column here)."""
    if isinstance(values.dtype, np.dtype):
        array = values.to_numpy()
        return array if rows.all() else array[rows]
    return values[rows]


def _held_share(parents: _Parents, values: pd.Series) -> float | None:
    """The share of parents held to one value beyond chance, or None when it is not a rule."""
    both = parents.set & _set(values)
    if both.sum() < 2 * HELD_MIN_PARENTS:
        return None
    codes_of = parents.codes(both)
    if len(codes_of) > _HELD_SAMPLE:  # whole parents, the same ones every fit
        chosen = np.random.default_rng(0).random(codes_of.max() + 1) < _HELD_SAMPLE / len(codes_of)
        keep = chosen[codes_of]
        codes_of, codes = codes_of[keep], pd.factorize(_rows(values, both)[keep])[0]
    else:
        codes = pd.factorize(_rows(values, both))[0]
    if codes.max(initial=0) == 0:
        return None  # one value in the whole column: nothing to hold
    size, constant_in = _group_sizes(codes_of, codes)
    several = size >= 2
    if several.sum() < HELD_MIN_PARENTS:
        return None
    constant = float(np.mean(constant_in[several]))
    if constant < HELD_MIN_CONSTANT:  # before the chance, the dearest part (most columns end here)
        return None
    frequencies = np.bincount(codes) / len(codes)
    sizes, counts = np.unique(size[several], return_counts=True)
    chance = np.array([np.sum(frequencies ** k) for k in sizes])
    expected = float(np.dot(chance, counts) / counts.sum())
    if expected >= 1.0:
        return None
    share = (constant - expected) / (1.0 - expected)
    return float(min(share, 1.0)) if share >= HELD_MIN_SHARE else None


def _group_sizes(parents: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per parent code: its rows, and whether they all hold one value code. A group-by with
    ``nunique`` took 1.2 ms on 4,500 rows and 74 ms on a million; the smallest and largest code
    of each parent, 0.04 ms and 5.5 ms."""
    groups = int(parents.max()) + 1
    size = np.bincount(parents, minlength=groups)
    low = np.full(groups, np.iinfo(np.int64).max)
    high = np.full(groups, -1, dtype=np.int64)
    np.minimum.at(low, parents, codes.astype(np.int64, copy=False))
    np.maximum.at(high, parents, codes.astype(np.int64, copy=False))
    return size, low == high


def constant_values(within: list[dict[str, Any]], child: pd.DataFrame,
                    rng: np.random.Generator, decided: dict[str, pd.DataFrame] | None = None,
                    every_parent: dict[str, np.ndarray] | None = None
                    ) -> tuple[dict[str, np.ndarray], dict[str, pd.DataFrame]]:
    """The new values of the held columns of a sampled ``child``, and what was decided per
    parent here.

    In each column's share of parents (one draw per parent and foreign key), every child takes
    the value of the parent's first child with the column set; NULLs stay NULL. ``decided``
    (``{column: frame of parent key, held, value}`` from an earlier chunk of the run) fixes the
    parents it names: a parent whose children are spread over chunks (its table sampled once,
    in chunk 0) keeps one value in all of them. Parents not named there are decided here.
    ``every_parent`` (``{foreign key: parent keys}``, chunk 0 of a run) has every one of those
    parents decided, a parent without a child here taking a value drawn among this chunk's.
    """
    decided, every_parent = decided or {}, every_parent or {}
    out: dict[str, np.ndarray] = {}
    made: dict[str, pd.DataFrame] = {}
    for fk in dict.fromkeys(w["foreign_key"] for w in within):
        if child.empty or fk not in child:
            continue
        parents, keys = pd.factorize(child[fk])  # -1 for a NULL foreign key
        if fk in every_parent:  # the parents without a child here come after the others
            absent = pd.Index(every_parent[fk]).difference(pd.Index(keys), sort=False)
            keys = pd.Index(keys).append(absent)
        draws = rng.random(len(keys))
        for entry in (w for w in within if w["foreign_key"] == fk):
            column = entry["column"]
            values = child[column].to_numpy(dtype=object).copy()
            value_of = np.full(len(keys), None, dtype=object)
            rows = np.flatnonzero((parents >= 0) & pd.notna(values))
            groups, first = np.unique(parents[rows], return_index=True)
            value_of[groups] = values[rows[first]]
            lone = np.flatnonzero(pd.isna(value_of))
            if fk in every_parent and len(rows) and len(lone):
                value_of[lone] = values[rows[rng.integers(len(rows), size=len(lone))]]
            held = draws < entry["share"]
            earlier = decided.get(column)
            known = np.full(len(keys), -1) if earlier is None else \
                pd.Index(earlier["key"]).get_indexer(keys)
            if earlier is not None and (known >= 0).any():
                at = known[known >= 0]
                held[known >= 0] = earlier["held"].to_numpy(dtype=bool)[at]
                value_of[known >= 0] = earlier["value"].to_numpy(dtype=object)[at]
            new = (known < 0) & pd.notna(value_of)
            take = np.flatnonzero((parents >= 0) & pd.notna(values))
            value_of, by_row = _balanced(value_of, held & new, parents[take], values[take], rng)
            made[column] = pd.DataFrame({"key": keys[new], "held": held[new],
                                         "value": value_of[new]})
            keep = held[parents[take]] & pd.notna(value_of[parents[take]])
            values[take[keep]] = value_of[parents[take[keep]]]
            if entry.get("exact") and by_row is not None:  # every value keeps its count
                values[take[by_row[0]]] = by_row[1]
            out[column] = values
    return out, made


def _balanced(value_of: np.ndarray, chosen: np.ndarray, row_parent: np.ndarray,
              row_values: np.ndarray, rng: np.random.Generator
              ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """``value_of`` with the ``chosen`` parents' values shared out so that their rows keep the
    counts they were drawn with (an album takes one genre, and every genre keeps about its
    tracks), and the value of each of those rows for counts kept exactly.

    Taking each parent's first value keeps the counts only on average: Chinook's media types of
    7 and 11 tracks came out with 0 and 30. Here the parents are laid end to end, sorted by
    the value they would take (ties at random), over blocks of their rows' values in the
    same order. A parent takes the block under its middle row: it keeps its own value unless it
    straddles a block's end, and each value's count is off by less than one parent's rows at
    each end of its block. Each row's own block (the second result: positions among
    ``row_parent`` and their values) keeps every count exact, at the price of one parent with
    two values at each block's end."""
    parents = np.flatnonzero(chosen)
    mine = chosen[row_parent]
    if len(parents) < 2 or not mine.any():
        return value_of, None
    codes, uniques = pd.factorize(np.concatenate([value_of[parents], row_values[mine]]))
    uniques = np.asarray(uniques, dtype=object)
    first, targets = codes[:len(parents)], codes[len(parents):]
    owner = np.searchsorted(parents, row_parent[mine])  # each row's parent among the chosen
    sizes = np.bincount(owner, minlength=len(parents))
    order = np.lexsort((rng.random(len(parents)), first))
    ends = np.cumsum(np.bincount(targets, minlength=len(uniques)))
    starts = np.empty(len(parents))
    starts[order] = np.cumsum(sizes[order]) - sizes[order]
    block = np.minimum(np.searchsorted(ends, starts + sizes / 2.0, side="right"),
                       len(uniques) - 1)
    out = value_of.copy()
    out[parents] = uniques[block]
    rows = np.argsort(owner, kind="stable")  # a parent's rows in a run, in their order
    within = np.arange(len(rows)) - (np.cumsum(sizes) - sizes)[owner[rows]]
    place = np.empty(len(rows), dtype=np.int64)
    place[rows] = starts[owner[rows]].astype(np.int64) + within
    own = uniques[np.minimum(np.searchsorted(ends, place, side="right"), len(uniques) - 1)]
    return out, (np.flatnonzero(mine), own)


def checked_held(within: Any, table: str, known: set[str], foreign_keys: set[str],
                 error: type[Exception]) -> list[dict[str, Any]]:
    """A model file's held columns, refused unless it is a list of entries that each name a
    column of the table once, one of its foreign keys and a share between 0 and 1 (a model
    file is untrusted input)."""
    entries = within if isinstance(within, list) else [within]
    columns = [e.get("column") for e in entries if isinstance(e, dict)]
    for entry in entries:
        if not isinstance(within, list) or not isinstance(entry, dict) \
                or set(entry) != {"foreign_key", "column", "share"} \
                or not isinstance(entry["column"], str) or entry["column"] not in known \
                or columns.count(entry["column"]) != 1 \
                or not isinstance(entry["foreign_key"], str) \
                or entry["foreign_key"] not in foreign_keys \
                or isinstance(entry["share"], bool) \
                or not isinstance(entry["share"], (int, float)) \
                or not 0.0 <= entry["share"] <= 1.0:
            raise error(f"The saved transformer of table '{table}' has a column held within "
                        f"its parent that is not valid: {entry!r}")
    return [dict(e) for e in entries]
