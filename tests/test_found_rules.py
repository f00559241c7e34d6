"""Inequalities found in the data (hma_db.schema.rules.found): the screened, vectorized finder
finds what the obvious pair-by-pair one finds, on awkward columns."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hma_db.schema.rules import found as finder


def _obvious(columns: list[str], values: np.ndarray, births: np.ndarray) -> set[tuple]:
    """Every ordered pair checked on its own over every row where both are set."""
    if len(values) < finder.MIN_BIRTH_ROWS:
        return set()
    n = len(columns)
    present = ~np.isnan(values)
    low = [values[present[:, k], k].min() if present[:, k].any() else np.inf for k in range(n)]
    high = [values[present[:, k], k].max() if present[:, k].any() else -np.inf for k in range(n)]
    holds, strict = np.zeros((n, n), dtype=bool), np.zeros((n, n), dtype=bool)
    for i, j in itertools.permutations(range(n), 2):
        both = present[:, i] & present[:, j]
        a, b = values[both, i], values[both, j]
        birth = births[i] and not births[j]
        overlap = max(low[i], low[j]) <= min(high[i], high[j])
        enough = both.sum() >= (finder.MIN_BIRTH_ROWS if birth else finder.MIN_ROWS)
        holds[i, j] = (a <= b).all() and not (a >= b).all() and (overlap or birth) and enough
        strict[i, j] = (a < b).all()
    holds &= ~finder._implied(holds, strict, present.all(axis=0))
    pairs = zip(*np.nonzero(holds), strict=True)
    return {(columns[i], columns[j], bool(strict[i, j])) for i, j in pairs}


def _awkward(rows: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 20, rows).astype(float)  # ties
    values = np.column_stack([
        base, base + rng.integers(0, 3, rows),  # at least base, equal in some rows
        base + 1 + rng.integers(0, 3, rows),  # above base in every row
        rng.uniform(0, 40, rows),  # no order
        np.where(np.arange(rows) < 70, np.nan, base + 5),  # set only after the screened rows
        np.where(rng.random(rows) < 0.3, np.nan, base - 2),  # below base, NULL in some rows
        np.full(rows, np.nan),  # never set
        base - 100,  # a birth date: far below the others
        np.where(np.arange(rows) == rows - 1, -99.0, base + 2),  # ordered but for its last row
    ])
    births = np.zeros(values.shape[1], dtype=bool)
    births[7] = True
    return [f"c{k}" for k in range(values.shape[1])], values, births


@pytest.mark.parametrize("rows", [0, 4, 5, 12, 40, 300])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("cells", [finder._CELLS, 7])
def test_the_finder_finds_what_each_pair_checked_alone_finds(rows, seed, cells, monkeypatch):
    monkeypatch.setattr(finder, "_CELLS", cells)  # 7: a few rows per step
    columns, values, births = _awkward(rows, seed)
    rules = finder._ordered_pairs("t", columns, values, births)
    got = {(r.low_column_name, r.high_column_name, r.strict_boundaries) for r in rules}
    assert got == _obvious(columns, values, births)
    if rows >= 40:  # the case has rules of each kind: the comparison can fail
        assert {("c0", "c1", False), ("c0", "c2", True), ("c7", "c0", True)} <= got
        assert rows < 70 or any("c4" in p[:2] for p in got)  # set beyond the screened rows
        assert not {p for p in got if "c8" in p[:2] and "c0" in p[:2]}  # broken in the last row
