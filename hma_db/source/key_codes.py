"""Relationships coded as integers, so that following foreign keys is numpy indexing.

A relationship's parent key values and child foreign-key values are mapped once into one space
of integer codes: equal values get equal codes, a NULL (or any part of a composite key that is
NULL) gets -1, which matches nothing. Compact integer keys (the usual surrogate keys) are their own
codes, offset by the minimum, without hashing; other keys go through ``pandas.factorize``, and a
composite key combines its columns' codes, numbering the pairs seen when the product of the code
ranges is too sparse to index. Then "the parents of these child rows" and "the children of these
parent rows" are a boolean lookup table indexed by codes, a few numpy passes however many rows.
Duplicate parent key values (a foreign key to a non-unique column, which MariaDB allows) get one
code and behave as ``isin`` would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hma_db.schema import key_columns


@dataclass
class KeyLink:
    """One relationship with its key values coded in one space: a child row references a parent
    row when their codes are equal; -1 (a NULL) matches nothing. Coded once, so each closure
    step is a few numpy passes instead of hashing the tables' keys again (``isin``)."""

    child: str
    parent: str
    child_codes: np.ndarray
    parent_codes: np.ndarray
    size: int

    def parents_of(self, child_rows: np.ndarray) -> np.ndarray:
        """The parent rows referenced by the given child rows."""
        return _hits(self.child_codes[child_rows], self.size)[self.parent_codes]

    def children_of(self, parent_rows: np.ndarray) -> np.ndarray:
        """The child rows that reference one of the given parent rows."""
        return _hits(self.parent_codes[parent_rows], self.size)[self.child_codes]


def _hits(codes: np.ndarray, size: int) -> np.ndarray:
    # One slot more than there are codes, always False, which code -1 indexes.
    hit = np.zeros(size + 1, dtype=bool)
    hit[codes] = True
    hit[-1] = False
    return hit


def link_keys(keys: dict[str, pd.DataFrame], rel: dict) -> KeyLink:
    """Code a relationship's parent key and child foreign key (composite keys included)."""
    child, parent = keys[rel["child_table_name"]], keys[rel["parent_table_name"]]
    codes, size = None, 1
    for pk, fk in zip(key_columns(rel["parent_primary_key"]), key_columns(rel["child_foreign_key"]),
                      strict=True):
        column, column_size = _codes(parent[pk].to_numpy(), child[fk].to_numpy())
        if codes is None:
            codes, size = column, column_size
            continue
        null = (codes < 0) | (column < 0)
        codes = codes * column_size + column
        if size * column_size > 4 * len(codes):  # too sparse to index: number the pairs seen
            codes, seen = pd.factorize(np.where(null, -1, codes))
            size = len(seen)
        else:
            size *= column_size
        codes[null] = -1
    return KeyLink(rel["child_table_name"], rel["parent_table_name"], codes[len(parent):],
                 codes[:len(parent)], size)


def _codes(parent: np.ndarray, child: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes of the parent values then the child values, and how many codes there are.

    Integer keys in a compact range are their own codes (offset by the minimum): no hashing.
    """
    if parent.dtype.kind in "iu" and child.dtype.kind in "iu" and len(parent):
        low, high = int(parent.min()), int(parent.max())
        if high - low < 4 * (len(parent) + len(child)):
            codes = np.concatenate([parent, child]).astype(np.int64) - low
            codes[(codes < 0) | (codes > high - low)] = -1
            return codes, high - low + 1
    codes, uniques = pd.factorize(pd.concat([pd.Series(parent), pd.Series(child)],
                                            ignore_index=True))
    return codes.astype(np.int64), len(uniques)
