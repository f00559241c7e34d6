"""Columns that follow their parent (hma_db.transform.inherit): the vectorized measures give
what the obvious ones give, on awkward columns (NULLs, ties, one-child parents, one value)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hma_db.transform import inherit


def _obvious_held_share(parent_key: pd.Series, values: pd.Series) -> float | None:
    """The share of parents held to one value beyond chance, with a group-by per column."""
    both = parent_key.notna() & values.notna()
    if both.sum() < 2 * inherit.HELD_MIN_PARENTS:
        return None
    parents, _ = pd.factorize(parent_key[both])
    if len(parents) > inherit._HELD_SAMPLE:
        chosen = np.random.default_rng(0).random(parents.max() + 1) < \
            inherit._HELD_SAMPLE / len(parents)
        keep = chosen[parents]
        parents, codes = parents[keep], pd.factorize(values[both][keep])[0]
    else:
        codes = pd.factorize(values[both])[0]
    if codes.max(initial=0) == 0:
        return None
    groups = pd.DataFrame({"p": parents, "v": codes}).groupby("p")["v"].agg(["size", "nunique"])
    groups = groups[groups["size"] >= 2]
    if len(groups) < inherit.HELD_MIN_PARENTS:
        return None
    constant = float((groups["nunique"] == 1).mean())
    frequencies = np.bincount(codes) / len(codes)
    sizes, counts = np.unique(groups["size"].to_numpy(), return_counts=True)
    chance = np.array([np.sum(frequencies ** k) for k in sizes])
    expected = float(np.dot(chance, counts) / counts.sum())
    if constant < inherit.HELD_MIN_CONSTANT or expected >= 1.0:
        return None
    share = (constant - expected) / (1.0 - expected)
    return float(min(share, 1.0)) if share >= inherit.HELD_MIN_SHARE else None


def _family(rng: np.random.Generator, parents: int, mixed: float) -> tuple[pd.Series, pd.Series]:
    """A foreign key (some NULL, some one-child parents) and a column held within the parent
    except in ``mixed`` of the rows."""
    key = np.repeat(np.arange(parents), rng.integers(1, 6, parents)).astype(float)
    own = rng.choice(["a", "b", "c", "d"], parents)[key.astype(int)].astype(object)
    swap = rng.random(len(key)) < mixed
    own[swap] = rng.choice(["a", "b", "c", "d"], swap.sum())
    key[rng.random(len(key)) < 0.05] = np.nan
    own[rng.random(len(key)) < 0.05] = None
    order = rng.permutation(len(key))
    return pd.Series(key[order]), pd.Series(own[order])


@pytest.mark.parametrize("mixed", [0.0, 0.02, 0.1, 0.5])
@pytest.mark.parametrize("seed", range(4))
def test_the_held_share_is_the_group_bys(seed, mixed):
    key, values = _family(np.random.default_rng(seed), 120, mixed)
    expected = _obvious_held_share(key, values)
    assert inherit._held_share(inherit._Parents(key), values) == expected
    if mixed == 0.0:
        assert expected is not None and expected > 0.9  # the case is held: the test can fail
    # the same key read for a second column (its codes made once) gives the same
    parents = inherit._Parents(key)
    filled = values.fillna("a")
    assert inherit._held_share(parents, values) == expected
    assert inherit._held_share(parents, filled) == _obvious_held_share(key, filled)


def test_the_held_share_of_awkward_columns_is_the_group_bys(monkeypatch):
    rng = np.random.default_rng(9)
    key = pd.Series(np.repeat(np.arange(40), 2))
    cases = [pd.Series(np.ones(80)),  # one value: nothing to hold
             pd.Series(np.where(np.arange(80) % 2, 1.0, np.nan)),  # one row set per parent
             pd.Series(rng.integers(0, 2, 80)),  # chance
             pd.Series(np.repeat(rng.integers(0, 3, 40), 2)),  # held, with ties of values
             pd.Series([None] * 80, dtype=object)]  # no value
    for values in cases:
        assert inherit._held_share(inherit._Parents(key), values) == \
            _obvious_held_share(key, values)
    empty = pd.Series([], dtype=float)
    assert inherit._held_share(inherit._Parents(empty), empty) is None
    monkeypatch.setattr(inherit, "_HELD_SAMPLE", 300)  # the sample of whole parents
    key, values = _family(rng, 400, 0.02)
    assert len(key) > 300
    assert inherit._held_share(inherit._Parents(key), values) == _obvious_held_share(key, values)


def test_the_screen_never_drops_a_pair_that_agrees():
    rng = np.random.default_rng(2)
    rows = 400
    base = rng.integers(0, 5, rows)
    child = pd.DataFrame({
        "ints": base, "floats": base + 0.0, "flags": base > 2,
        "nullable": pd.array(np.where(base > 3, None, base), dtype="Int64"),
        "text": base.astype(str).astype(object)})
    parent = child.copy()
    for column, share in (("ints", 0.49), ("floats", 0.5), ("flags", 0.51)):
        other = rng.permutation(rows) >= share * rows  # rows where the parent's value differs
        parent.loc[other, column] = parent[column][other].to_numpy() + 7 \
            if column != "flags" else ~parent[column][other].to_numpy()
    parent["floats"] = parent["floats"].where(rng.random(rows) > 0.1)  # NaN in both, some rows
    child["floats"] = child["floats"].where(parent["floats"].notna() | (rng.random(rows) > 0.5))
    parent["big"] = np.full(rows, 2 ** 53)  # equal as floats to 2**53 + 1, not as numbers
    child["big"] = np.full(rows, 2 ** 53 + 1)
    positions = np.arange(rows)
    screen = inherit._Screen(child, parent, positions, positions)
    for column in child.columns:
        kept = screen.may_agree(column, list(parent.columns))
        for other in parent.columns:
            a, b = child[column].to_numpy(dtype=object), parent[other].to_numpy(dtype=object)
            if inherit.agreement(a, b)[0] >= inherit.MIN_SHARE:
                assert other in kept, (column, other)
        assert kept == [o for o in parent.columns if o in kept]  # in the parent's order
    assert "ints" not in screen.may_agree("ints", ["ints"])  # 0.49 of rows: dropped cheaply
    assert screen.may_agree("big", ["big"]) == ["big"]  # left to the exact measure
