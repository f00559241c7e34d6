"""A category set by whether another column of its row is set: found in the data, kept at
sampling.

An employee is ``terminated`` exactly when the row has an end date, an order ``cancelled``
when it has a cancellation time, a leave ``pending`` when nobody approved it yet. A copula
draws the category and the other column's null indicator from correlated uniforms, so the
two disagree in a share of the rows that a reader sees at once ("terminated", no end date;
"active", with one). :class:`PresenceRule` keeps the real split: the values of the rows where
the other column is set, and those of the rows where it is NULL, are two separate sets, and
a sampled row whose value is on the wrong side takes one of its side, drawn in the side's
real proportions, after every other rule has placed the column's NULLs.

A rule is found (:func:`find_presence`) when, over every real row where the category is set,
its values (two to :data:`~hma_db.schema.rules.steps.MAX_VALUES`) split that way, each side
holding at least :data:`~hma_db.schema.rules.steps.MIN_ROWS` rows; every pair of a table is
screened on a sample first, and a survivor is confirmed on every row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hma_db.schema.constraints import Constraint, with_columns
from hma_db.schema.keys import key_columns
from hma_db.schema.rules.steps import MAX_VALUES, MIN_ROWS, draw_in_shares, screen_rows
from hma_db.schema.values import from_json, to_json

_GOLDEN = 0.6180339887498949


class PresenceRule(Constraint):
    """``column_name`` takes one of its ``values`` whose ``when_set`` is True where
    ``source_column_name`` is set, and one whose ``when_set`` is False where it is NULL (a NULL
    category passes); ``shares`` are each value's share of its side's real rows.

    Example:
        >>> PresenceRule("status", "end_date", ["active", "on_leave", "terminated"],
        ...              [0.9, 0.1, 1.0], [False, False, True], table_name="employee")
    """

    PARAMETERS = ("column_name", "source_column_name", "values", "shares", "when_set")

    def __init__(self, column_name: str, source_column_name: str, values: list[Any],
                 shares: list[float], when_set: list[bool], table_name: str | None = None):
        super().__init__(table_name)
        self.column_name, self.source_column_name = column_name, source_column_name
        self.values, self.shares = list(values), [float(x) for x in shares]
        self.when_set = [bool(x) for x in when_set]
        if not len(self.values) == len(self.shares) == len(self.when_set) \
                or set(self.when_set) != {True, False} or any(not x > 0 for x in self.shares):
            raise ValueError("a presence rule needs, for the rows with the source set and for "
                             "those without, values with shares above 0")

    def columns(self) -> list[str]:
        return [self.source_column_name, self.column_name]

    def describe(self) -> str:
        return f"{self.column_name} set by whether {self.source_column_name} is set"

    def _side(self, when_set: bool) -> tuple[list[Any], np.ndarray]:
        mine = [k for k, side in enumerate(self.when_set) if side == when_set]
        return [from_json(self.values[k]) for k in mine], np.array([self.shares[k] for k in mine])

    def _wrong(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each row's side (source set), and whether its category is set and on the other."""
        is_set = frame[self.source_column_name].notna().to_numpy()
        actual = frame[self.column_name]
        wrong = np.zeros(len(frame), dtype=bool)
        for side in (True, False):
            rows = is_set == side
            wrong[rows] = ~actual[rows].isin(self._side(side)[0]).to_numpy()
        return is_set, wrong & actual.notna().to_numpy()

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        return pd.Series(~self._wrong(data)[1], index=data.index)

    def reverse_transform(self, data: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """``data`` where a sampled row whose value is on the wrong side takes one of its side,
        in the side's real proportions; the draw's uniform number comes from the row's place
        in the frame (times the golden ratio, modulo 1), so a chunk gives the same rows."""
        frame = data.get(self.table_name)
        if frame is None or not len(frame):
            return data
        is_set, wrong = self._wrong(frame)
        if not wrong.any():
            return data
        column = frame[self.column_name]
        new = column.to_numpy(dtype=object).copy()
        for side in (True, False):
            rows = np.flatnonzero(wrong & (is_set == side))
            if len(rows):
                new[rows] = draw_in_shares(*self._side(side), np.mod((rows + 1) * _GOLDEN, 1.0))
        series = pd.Series(new, index=frame.index)
        if column.dtype != object:
            series = series.astype(column.dtype, errors="ignore")
        return {**data, self.table_name: with_columns(frame, {self.column_name: series})}


def find_presence(metadata, data: dict[str, pd.DataFrame], tables: set[str]
                  ) -> list[PresenceRule]:
    """Categories set by whether another column of their row is set, in every real row (see
    the module docstring); at most one rule per category, from its first such column."""
    found = []
    for table in sorted(tables & set(data)):
        frame = data[table]
        if len(frame) < 2 * MIN_ROWS:
            continue
        sample = screen_rows(frame)
        targets, sources = _candidates(metadata, table, sample)
        taken: set[str] = set()
        for source in sources:
            for target in [t for t in targets if t not in taken and t != source]:
                if _split(sample[source].isna().to_numpy(), targets[target], 1) is None:
                    continue
                codes, distinct = pd.factorize(frame[target], use_na_sentinel=True)
                split = _split(frame[source].isna().to_numpy(), codes, MIN_ROWS)
                if split is None:
                    continue
                values, shares, when_set = split
                rule = PresenceRule(target, source, [to_json(distinct[c]) for c in values],
                                    shares, when_set, table_name=table)
                rule.origin = "data"
                found.append(rule)
                taken.add(target)
    return found


def _candidates(metadata, table: str, frame: pd.DataFrame
                ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Category codes (-1: NULL) of the sample's categories of 2 to MAX_VALUES values, and
    the columns with both set and NULL rows (keys and columns under a policy take no part)."""
    key = set(key_columns(metadata.tables[table].get("primary_key")))
    usable = {c: meta.get("sdtype") for c, meta in metadata.tables[table]["columns"].items()
              if c not in key and not meta.get("policy") and c in frame}
    targets = {}
    for column in [c for c, sdtype in usable.items() if sdtype in ("categorical", "boolean")]:
        try:
            codes, distinct = pd.factorize(frame[column], use_na_sentinel=True)
        except TypeError:  # unhashable values
            continue
        if 2 <= len(distinct) <= MAX_VALUES:
            targets[column] = codes
    nulls = frame.isna().sum()
    sources = [c for c in usable if targets and MIN_ROWS <= nulls[c] <= len(frame) - MIN_ROWS]
    return targets, sources


def _split(null: np.ndarray, codes: np.ndarray, min_rows: int
           ) -> tuple[list[int], list[float], list[bool]] | None:
    """``(codes, shares, when_set)`` when, over the rows with the category set, no value is
    seen both with the source set and with it NULL, each side holding ``min_rows`` rows."""
    known = codes >= 0
    k = int(codes.max()) + 1 if known.any() else 0
    with_set = np.bincount(codes[known & ~null], minlength=k)
    with_null = np.bincount(codes[known & null], minlength=k)
    if k < 2 or ((with_set > 0) & (with_null > 0)).any() \
            or min(with_set.sum(), with_null.sum()) < min_rows:
        return None
    values, shares, when_set = [], [], []
    for counts, side in ((with_set, True), (with_null, False)):
        for code in np.flatnonzero(counts):
            values.append(int(code))
            shares.append(float(counts[code] / counts.sum()))
            when_set.append(side)
    return values, shares, when_set
