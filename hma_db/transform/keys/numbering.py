"""Line numbers within a parent: the last column of a composite key that counts ``1..n``
within each parent, as an order's lines do (TPC-H ``lineitem (l_orderkey, l_linenumber)``).

A key column is generated as a sequence over the whole run (:mod:`hma_db.transform.keys.keygen`),
which keeps the combination unique but numbers an order's lines 181, 182, 183. When the
source numbers (nearly) every parent's rows ``start..start+n-1`` (``start`` 0 or 1), the
sampled rows are numbered the same way once their foreign keys are known
(:func:`number_within`); the combination stays unique because the parent's key is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# Share of the source rows whose number is their place within the parent that makes the column
# a line number. Below 1 so that a subset read with max_rows, which can cut a family, or a
# deleted line here and there, still counts.
MIN_NUMBERED_SHARE = 0.95
STARTS = (1, 0)


def learn(frame: pd.DataFrame, primary_key: list[str], foreign_keys: set[str],
          key_specs: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """``{"column", "by", "start"}`` when the one primary-key column that is not a foreign key
    numbers the rows within each value of the others; else None. ``key_specs`` are the key
    columns' generation specs: only a plain integer key (no partition ranges) is numbered."""
    by = [c for c in primary_key if c in foreign_keys]
    rest = [c for c in primary_key if c not in foreign_keys]
    if not by or len(rest) != 1 or frame.empty:
        return None
    spec = key_specs.get(rest[0]) or {}
    if spec.get("kind") != "int" or spec.get("ranges"):
        return None
    column = rest[0]
    numbers = pd.to_numeric(frame[column], errors="coerce")
    if numbers.isna().any():
        return None
    order = frame[by].assign(_n=numbers).sort_values([*by, "_n"], kind="stable")
    place = order.groupby(by, sort=False, dropna=False).cumcount().to_numpy()
    numbers = order["_n"].to_numpy(dtype="float64")
    for start in STARTS:
        if np.mean(numbers == place + start) >= MIN_NUMBERED_SHARE:
            return {"column": column, "by": by, "start": start}
    return None


def number_within(keys: pd.DataFrame, numbered: dict[str, Any],
                  before: np.ndarray | None = None) -> pd.DataFrame:
    """``keys`` with ``numbered["column"]`` set to each row's place among the rows of its
    parent, from ``numbered["start"]``, in row order (the dtype kept). ``before``: per row, how
    many rows of its parent earlier chunks of the run numbered, where a parent's rows are
    spread over the chunks."""
    column = numbered["column"]
    place = keys.groupby(numbered["by"], sort=False, dropna=False).cumcount().to_numpy()
    values = place + int(numbered["start"])
    if before is not None:
        values = values + np.asarray(before, dtype=np.int64)
    out = keys.copy()
    out[column] = pd.Series(values, index=keys.index).astype(keys[column].dtype)
    return out
