"""A category set by where a date or a number of its row falls: found in the data, kept at
sampling.

TPC-H's ``lineitem.l_linestatus`` is ``O`` (open) exactly when the line ships after
1995-06-17 and ``F`` (fulfilled) before; an order's priority band follows its amount; a
member's tier follows the points. A copula draws the category and the date from correlated
uniforms, so the status comes out wrong in a share of the rows that a reader sees at once:
in a TPC-H clone at scale factor 0.05, 27% of the lines shipped before the cut were still
open and 31% of those shipped after it were closed. :class:`StepRule` keeps the real cut: the category
is set from the source column after every other rule has placed it.

A rule is found (:func:`find_steps`) when, over every real row where both are set, the
category's values (two to :data:`MAX_STEPS`) occupy separate ranges of the source, each value
one range of at least :data:`MIN_ROWS` rows. The cut between two ranges is their midpoint.
Every source and category column of a table is screened at once on a sample of rows, then
confirmed on every row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hma_db.schema.constraints import Constraint
from hma_db.schema.keys import key_columns
from hma_db.schema.values import from_json, to_json

MIN_ROWS = 30  # rows in each range, as for the other rules found in the data
MAX_STEPS = 6  # values of a category set by ranges: statuses, flags, bands
_SCREEN_ROWS = 20_000  # rows every pair is screened on before the survivors see them all
_FIRST_ROWS = 256  # of those, the rows every pair is tried on first


class StepRule(Constraint):
    """``column_name`` is ``values[i]`` where ``source_column_name`` lies between ``edges[i-1]``
    and ``edges[i]`` (numbers, or dates as seconds since 1970; a NULL source passes).

    Example:
        >>> StepRule("l_linestatus", "l_shipdate", [803_433_600.0], ["F", "O"],
        ...          table_name="lineitem")
    """

    PARAMETERS = ("column_name", "source_column_name", "edges", "values")

    def __init__(self, column_name: str, source_column_name: str, edges: list[float],
                 values: list[Any], table_name: str | None = None):
        super().__init__(table_name)
        self.column_name, self.source_column_name = column_name, source_column_name
        self.edges = [float(e) for e in edges]
        self.values = list(values)
        if len(self.values) != len(self.edges) + 1 or len(self.values) < 2 \
                or any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("a step rule needs increasing edges and one value more than edges")

    def columns(self) -> list[str]:
        return [self.source_column_name, self.column_name]

    def describe(self) -> str:
        return f"{self.column_name} set by ranges of {self.source_column_name}"

    def expected(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each row's value by its source, and where the source is set."""
        position = positions(frame[self.source_column_name])
        known = ~np.isnan(position)
        values = np.empty(len(self.values), dtype=object)
        values[:] = [from_json(v) for v in self.values]
        step = np.searchsorted(np.asarray(self.edges), np.where(known, position, 0.0))
        return values[step], known

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        expected, known = self.expected(data)
        actual = data[self.column_name].to_numpy(dtype=object)
        holds = ~known | (actual == expected)
        return pd.Series(holds, index=data.index)

    def reverse_transform(self, data: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """``data`` with the category set from the source in every sampled row."""
        frame = data.get(self.table_name)
        if frame is None or not len(frame):
            return data
        expected, known = self.expected(frame)
        column = frame[self.column_name]
        new = column.to_numpy(dtype=object).copy()
        new[known] = expected[known]
        series = pd.Series(new, index=frame.index)
        if column.dtype != object:
            series = series.astype(column.dtype, errors="ignore")
        return {**data, self.table_name: frame.assign(**{self.column_name: series})}


def positions(values: pd.Series) -> np.ndarray:
    """Numbers as floats, dates as seconds since 1970 (NaN: NULL or not a value)."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iuf":
        return values.to_numpy(dtype=float)
    if isinstance(values.dtype, np.dtype) and values.dtype.kind == "M":  # naive: UTC
        stamps = values.to_numpy()
        return np.where(np.isnat(stamps), np.nan, stamps.astype("datetime64[ns]").astype(
            "int64") / 1e9)
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
            values.dtype):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if values.dtype == object:  # dates, Decimals, text: each distinct value converted once
        try:
            codes, distinct = pd.factorize(values, use_na_sentinel=True)
        except TypeError:  # unhashable values (lists, dicts): no position
            return np.full(len(values), np.nan)
        converted = np.r_[_positions(pd.Series(distinct, dtype=object)), np.nan]
        return converted[codes]  # code -1 (NULL): the NaN at the end
    return _positions(values)


def _positions(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        stamps = values
    else:
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.notna().sum() == values.notna().sum():  # Decimals and numbers as objects
            return numbers.to_numpy(dtype=float, na_value=np.nan)
        stamps = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    if getattr(stamps.dt, "tz", None) is None:
        stamps = stamps.dt.tz_localize("UTC")
    seconds = stamps.astype("int64").to_numpy(dtype=float) / 1e9
    return np.where(stamps.isna().to_numpy(), np.nan, seconds)


def find_steps(metadata, data: dict[str, pd.DataFrame], tables: set[str]) -> list[StepRule]:
    """Categories set by ranges of a date or number column of their row, in every real row
    (see the module docstring); at most one rule per category, from the source whose ranges
    are widest apart. Every pair of a table is screened on a sample of its rows; only the
    pairs that hold there read every row (TPC-H's 6 million lines: 7 sources, 4 categories)."""
    found = []
    for table in sorted(tables & set(data)):
        frame = data[table]
        if len(frame) < 2 * MIN_ROWS:
            continue
        sample = frame if len(frame) <= _SCREEN_ROWS else frame.iloc[np.unique(
            np.random.default_rng(0).integers(0, len(frame), _SCREEN_ROWS))]
        sources, targets = _candidates(metadata, table, sample)
        if not sources or not targets:
            continue
        for rule in _table_steps(frame, sources, targets).values():
            rule.table_name, rule.origin = table, "data"
            found.append(rule)
    return found


def _candidates(metadata, table: str, frame: pd.DataFrame) -> tuple[dict[str, np.ndarray],
                                                                    dict[str, np.ndarray]]:
    """Source positions (dates and numbers) and category codes (-1: NULL) of the columns of
    ``frame`` (a sample of the table's rows) that may take part; keys and columns under a
    policy never do."""
    keys = set(key_columns(metadata.tables[table].get("primary_key"))) | set(
        metadata.foreign_key_columns(table))
    usable = {c: meta.get("sdtype") for c, meta in metadata.tables[table]["columns"].items()
              if c not in keys and not meta.get("policy") and c in frame}
    targets = {}
    for column in [c for c, sdtype in usable.items() if sdtype in ("categorical", "boolean")]:
        codes = _codes(frame[column])
        if codes is not None and 2 <= codes.max(initial=-1) + 1 <= MAX_STEPS:
            targets[column] = codes
    sources = {}
    for column in [c for c, sdtype in usable.items() if targets and sdtype in (
            "datetime", "numerical")]:
        position = positions(frame[column])
        if np.isfinite(position).sum() >= 2 * MIN_ROWS:
            sources[column] = position
    return sources, targets


def _codes(values: pd.Series) -> np.ndarray | None:
    try:
        return pd.factorize(values, use_na_sentinel=True)[0]
    except TypeError:  # unhashable values
        return None


def _table_steps(frame: pd.DataFrame, sources: dict[str, np.ndarray],
                 targets: dict[str, np.ndarray]) -> dict[str, StepRule]:
    """The rules of one table: the pairs that hold on the sample (``sources``, ``targets``)
    checked on every row."""
    best: dict[str, tuple[float, StepRule]] = {}
    names = list(targets)
    sampled = np.column_stack([targets[t] for t in names])
    full_codes: dict[str, np.ndarray | None] = {}
    for source, sample in sources.items():
        # Any subset of the rows must hold the ranges too: a few rows first (most pairs of
        # real columns fail there), then the sample, then every row.
        held = np.flatnonzero(_separated(sample[:_FIRST_ROWS], sampled[:_FIRST_ROWS], 1))
        held = held[_separated(sample, sampled[:, held], min_rows=1)] if len(held) else held
        if not len(held):
            continue
        position = positions(frame[source])
        for j in held:
            name = names[j]
            if name not in full_codes:
                full_codes[name] = _codes(frame[name])
            codes = full_codes[name]
            if codes is None or not 2 <= codes.max(initial=-1) + 1 <= MAX_STEPS:
                continue
            cuts = _cuts(position, codes)
            if cuts is None:
                continue
            edges, order, width = cuts
            distinct = pd.factorize(frame[name], use_na_sentinel=True)[1]
            rule = StepRule(name, source, edges, [to_json(distinct[c]) for c in order])
            if name not in best or width > best[name][0]:
                best[name] = (width, rule)
    return {name: rule for name, (_, rule) in best.items()}


def _separated(position: np.ndarray, codes: np.ndarray, min_rows: int) -> np.ndarray:
    """Per category column (of ``codes``, rows by columns): over the rows with both set, does
    each value hold one range of the source alone (no tie across two values), with at least
    ``min_rows`` rows each?"""
    both = np.isfinite(position)[:, None] & (codes >= 0)
    order = np.argsort(position, kind="stable")
    x, c, b = position[order], codes[order], both[order]
    out = np.zeros(codes.shape[1], dtype=bool)
    for j in range(codes.shape[1]):  # a few category columns per table: not a loop over rows
        xs, cs = x[b[:, j]], c[b[:, j], j]
        if len(cs) < 2:
            continue
        change = cs[1:] != cs[:-1]
        runs = int(change.sum()) + 1
        distinct = len(np.unique(cs))
        if runs != distinct or distinct < 2 or (change & (xs[1:] == xs[:-1])).any():
            continue
        out[j] = bool(np.diff(np.r_[0, np.flatnonzero(change) + 1, len(cs)]).min() >= min_rows)
    return out


def _cuts(position: np.ndarray, codes: np.ndarray) -> tuple[list[float], list[int], float] | None:
    """(edges, codes in source order, the narrowest gap between two ranges relative to the
    source's spread) when the category's values hold separate ranges of at least
    :data:`MIN_ROWS` rows on every row, else None."""
    if not _separated(position, codes[:, None], MIN_ROWS)[0]:
        return None
    both = np.isfinite(position) & (codes >= 0)
    ranges = pd.DataFrame({"x": position[both], "c": codes[both]}).groupby("c").x.agg(
        ["min", "max"]).sort_values("min")
    highs, lows = ranges["max"].to_numpy()[:-1], ranges["min"].to_numpy()[1:]
    spread = float(np.nanmax(position) - np.nanmin(position)) or 1.0
    return ((highs + lows) / 2).tolist(), ranges.index.to_list(), float((lows - highs).min()) / spread
