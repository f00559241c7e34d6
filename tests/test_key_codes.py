"""Relationships coded as integers follow foreign keys exactly as ``isin`` on the key values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hma_db.source.key_codes import link_keys


def _isin_parents(parent: pd.DataFrame, child: pd.DataFrame, pk, fk, rows) -> np.ndarray:
    referenced = pd.MultiIndex.from_frame(child.loc[rows, fk].dropna())
    found = np.asarray(pd.MultiIndex.from_frame(parent[pk]).isin(referenced))
    return found & parent[pk].notna().all(axis=1).to_numpy()


def _isin_children(parent: pd.DataFrame, child: pd.DataFrame, pk, fk, rows) -> np.ndarray:
    kept = pd.MultiIndex.from_frame(parent.loc[rows, pk].dropna())
    found = np.asarray(pd.MultiIndex.from_frame(child[fk]).isin(kept))
    return found & child[fk].notna().all(axis=1).to_numpy()


def _frames(kind: str, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = 300
    if kind in ("compact", "compact_int"):  # compact_int: no NULL, indexed by offset
        parent = pd.DataFrame({"a": np.arange(10, 10 + n), "b": np.arange(n) % 7})
    elif kind == "sparse":  # far apart integers: not indexed by offset
        parent = pd.DataFrame({"a": np.arange(n) * 10**12, "b": np.arange(n) % 7})
    elif kind == "strings":
        parent = pd.DataFrame({"a": [f"k{i}" for i in range(n)], "b": [f"x{i % 5}" for i in range(n)]})
    else:  # duplicates and NULLs in the parent (a foreign key to a non-unique column)
        parent = pd.DataFrame({"a": np.where(np.arange(n) % 9 == 0, np.nan, np.arange(n) // 2),
                               "b": np.arange(n) % 3})
    picks = rng.integers(0, n, 1000)
    child = pd.DataFrame({"a": parent["a"].to_numpy()[picks], "b": parent["b"].to_numpy()[picks]})
    child = child.astype({"a": "float64"} if kind in ("compact", "dupes") else {})
    if kind != "compact_int":
        child.loc[rng.random(1000) < 0.1, "a"] = None  # NULL foreign keys
    child.loc[rng.random(1000) < 0.05, "b"] = 99 if kind != "strings" else "nowhere"  # dangling
    if kind == "compact_int":
        child.loc[rng.random(1000) < 0.05, "a"] = 5  # below the parents' range
    return parent, child


@pytest.mark.parametrize("kind", ["compact", "compact_int", "sparse", "strings", "dupes"])
@pytest.mark.parametrize("columns", [["a"], ["a", "b"]])
def test_links_match_isin(kind, columns):
    rng = np.random.default_rng(5)
    parent, child = _frames(kind, rng)
    rel = {"parent_table_name": "p", "child_table_name": "c", "parent_primary_key": columns,
           "child_foreign_key": columns}
    if len(columns) == 1:
        rel["parent_primary_key"] = rel["child_foreign_key"] = columns[0]
    link = link_keys({"p": parent, "c": child}, rel)
    for share in (0.0, 0.05, 0.5, 1.0):
        child_rows = rng.random(len(child)) < share
        parent_rows = rng.random(len(parent)) < share
        assert np.array_equal(link.parents_of(child_rows),
                              _isin_parents(parent, child, columns, columns, child_rows))
        assert np.array_equal(link.children_of(parent_rows),
                              _isin_children(parent, child, columns, columns, parent_rows))
