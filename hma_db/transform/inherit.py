"""Columns that repeat a parent's value through a foreign key: an invoice's billing address is
its customer's address.

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

Text is compared with text and numbers with numbers (Chinook ``InvoiceLine.UnitPrice`` is its
track's ``UnitPrice`` in every row: a copy keeps the price a track sells at, where the model
drew it apart, correlation 0.00 with the track's price instead of 1.00); a column
that is not personal data takes no personal (faked) value, so a category keeps the source's
values; a column derived from another of its row, or that another is derived from
(:mod:`hma_db.transform.dependencies`), keeps its row's agreement; self-references are left
out (a chain of managers would need one pass per level).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hma_db.schema import guess_from_name

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
    found = []
    for column in columns:
        a = child[column].to_numpy(dtype=object)[linked]
        for other in parents:
            if roles[column] != "personal" and parent_roles[other] == "personal":
                continue  # a category keeps the source's values: no faked value enters it
            if (child_tt.value_kinds[column] == "str") != \
                    (parent_tt.value_kinds[other] == "str"):
                continue  # text against text, numbers against numbers
            b = parent[other].to_numpy(dtype=object)[position]
            if agreement(a[:_SCREEN], b[:_SCREEN])[0] < MIN_SHARE:
                continue  # most pairs end here, on a few hundred rows
            share, kappa = agreement(a, b)
            if share >= MIN_SHARE and kappa >= MIN_AGREEMENT:
                found.append({"column": column, "parent_column": other, "share": share,
                              "nulls": bool(child[column].isna().any())})
    return found


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
            made = source[position[take]]
            if not copy["nulls"]:
                keep = pd.notna(made)
                take[np.flatnonzero(take)[~keep]] = False
                made = made[keep]
            values[take] = made
            out[copy["column"]] = values
    return out
