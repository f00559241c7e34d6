"""Argument checks of :class:`~hma_db.synthesizer.hma.HMASynthesizer` (the scale check is the
model's, :func:`hma_db.model.check_scale`, shared by every stage that takes a scale)."""

from __future__ import annotations

import numbers
from typing import Any

import pandas as pd

from hma_db.errors import SynthesizerInputError


def check_seed(seed: Any) -> None:
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise SynthesizerInputError(f"seed must be a non-negative integer or None; found {seed!r}.")


def check_row_counts(row_counts: Any, data: dict[str, pd.DataFrame]) -> dict[str, int]:
    """The full row counts to sample at: known tables, integers no smaller than the data."""
    if row_counts is None:
        return {}
    counts = {}
    for table, rows in dict(row_counts).items():
        if table not in data:
            continue  # e.g. metadata.row_counts of tables left out of the model
        if isinstance(rows, bool) or not isinstance(rows, numbers.Integral) \
                or rows < len(data[table]):
            raise SynthesizerInputError(
                f"row_counts['{table}'] must be an integer of at least the {len(data[table])} "
                f"rows fitted on; found {rows!r}.")
        counts[table] = int(rows)
    return counts


def check_chunk_rows(chunk_rows: Any) -> None:
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, numbers.Integral) \
            or chunk_rows < 1:
        raise SynthesizerInputError(f"chunk_rows must be a positive integer; found {chunk_rows!r}.")
