"""A category set by where a date or a number of its row falls: found in the data, kept at
sampling.

TPC-H's ``lineitem.l_linestatus`` is ``O`` (open) exactly when the line ships after
1995-06-17 and ``F`` (fulfilled) before; its ``l_returnflag`` is ``R`` or ``A`` when the line
was received by then and ``N`` after; an order's priority band follows its amount. A copula
draws the category and the date from correlated uniforms, so the category comes out wrong in
a share of the rows that a reader sees at once: in a TPC-H clone at scale factor 0.05, 27% of
the lines shipped before the cut were still open and 31% of those shipped after it were
closed; 30% of the return flags contradicted the receipt date. :class:`StepRule` keeps the
real cut: each range of the source has its own values, and a row whose value does not belong
to its range takes one that does, drawn in the range's real proportions, after every other
rule has placed the source.

A rule is found (:func:`find_steps`) when, over every real row where both are set, the
category's values (two to :data:`MAX_VALUES`) fall into at least two separate ranges of the
source (the union of each value's range, from its smallest to its largest row), each range
holding at least :data:`MIN_ROWS` rows. The cut between two ranges is their midpoint. Every
source and category column of a table is screened at once on a few rows, then on a sample,
and a survivor is confirmed on every row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hma_db.schema.constraints import Constraint, with_columns
from hma_db.schema.keys import key_columns
from hma_db.schema.values import from_json, to_json

MIN_ROWS = 30  # rows in each range, as for the other rules found in the data
MAX_VALUES = 8  # values of a category set by ranges: statuses, flags, bands
_SCREEN_ROWS = 20_000  # rows every pair is screened on before the survivors see them all
_FIRST_ROWS = 256  # of those, the rows every pair is tried on first


class StepRule(Constraint):
    """``column_name`` takes one of the values of its range where ``source_column_name`` lies
    between ``edges[i-1]`` and ``edges[i]`` (numbers, or dates as seconds since 1970; a NULL
    source, or a NULL category, passes). ``values`` are the categories, ``steps`` the range
    of each (0 below the first edge) and ``shares`` its share of its range's real rows.

    Example:
        >>> StepRule("l_returnflag", "l_receiptdate", [803_433_600.0], ["A", "R", "N"],
        ...          [0.5, 0.5, 1.0], [0, 0, 1], table_name="lineitem")
    """

    PARAMETERS = ("column_name", "source_column_name", "edges", "values", "shares", "steps")

    def __init__(self, column_name: str, source_column_name: str, edges: list[float],
                 values: list[Any], shares: list[float], steps: list[int],
                 table_name: str | None = None):
        super().__init__(table_name)
        self.column_name, self.source_column_name = column_name, source_column_name
        self.edges = [float(e) for e in edges]
        self.values, self.shares = list(values), [float(x) for x in shares]
        self.steps = [int(i) for i in steps]
        if not len(self.values) == len(self.shares) == len(self.steps) \
                or set(self.steps) != set(range(len(self.edges) + 1)) or not self.edges \
                or any(not x > 0 for x in self.shares) \
                or any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("a step rule needs increasing edges and, for each of the ranges "
                             "between them, values with shares above 0")

    def _range(self, i: int) -> tuple[list[Any], np.ndarray]:
        mine = [k for k, step in enumerate(self.steps) if step == i]
        return [from_json(self.values[k]) for k in mine], np.array([self.shares[k] for k in mine])

    def columns(self) -> list[str]:
        return [self.source_column_name, self.column_name]

    def describe(self) -> str:
        return f"{self.column_name} set by ranges of {self.source_column_name}"

    def _steps(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row's range, whether its source and its category are set, and its source's
        position."""
        position = positions(frame[self.source_column_name])
        known = ~np.isnan(position) & frame[self.column_name].notna().to_numpy()
        step = np.searchsorted(np.asarray(self.edges), np.where(known, position, 0.0))
        return step, known, position

    def _allowed(self, actual: np.ndarray, step: np.ndarray) -> np.ndarray:
        allowed = np.zeros(len(actual), dtype=bool)
        for i in range(len(self.edges) + 1):  # a few ranges: not a loop over rows
            mine = step == i
            allowed[mine] = pd.Series(actual[mine], dtype=object).isin(
                self._range(i)[0]).to_numpy()
        return allowed

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        step, known, _ = self._steps(data)
        holds = ~known | self._allowed(data[self.column_name].to_numpy(dtype=object), step)
        return pd.Series(holds, index=data.index)

    def reverse_transform(self, data: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """``data`` where a sampled row whose value does not belong to its source's range takes
        one that does, in the range's real proportions; the draw's uniform number comes from
        the row's source (times the golden ratio, modulo 1), so a chunk gives the same rows."""
        frame = data.get(self.table_name)
        if frame is None or not len(frame):
            return data
        step, known, position = self._steps(frame)
        column = frame[self.column_name]
        new = column.to_numpy(dtype=object).copy()
        wrong = known & ~self._allowed(new, step)
        if not wrong.any():
            return data
        u = np.mod(position[wrong] * 0.6180339887498949, 1.0)
        for i in range(len(self.edges) + 1):
            rows = np.flatnonzero(wrong)[step[wrong] == i]
            if len(rows):
                new[rows] = draw_in_shares(*self._range(i), u[step[wrong] == i])
        series = pd.Series(new, index=frame.index)
        if column.dtype != object:
            series = series.astype(column.dtype, errors="ignore")
        return {**data, self.table_name: with_columns(frame, {self.column_name: series})}


def draw_in_shares(values: list[Any], shares: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One of ``values`` per uniform number in ``u``, in the proportions ``shares``."""
    ends = np.cumsum(shares) / shares.sum()
    pick = np.minimum(np.searchsorted(ends, u, side="right"), len(values) - 1)
    choices = np.empty(len(values), dtype=object)
    choices[:] = values
    return choices[pick]


def screen_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows every pair of columns of a table is screened on: all of them, or a seeded
    sample of :data:`_SCREEN_ROWS` (the survivors are confirmed on every row)."""
    if len(frame) <= _SCREEN_ROWS:
        return frame
    return frame.iloc[np.unique(np.random.default_rng(0).integers(0, len(frame), _SCREEN_ROWS))]


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
        sources, targets = _candidates(metadata, table, screen_rows(frame))
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
        factorized = _codes(frame[column])
        if factorized is not None and 2 <= len(factorized[1]) <= MAX_VALUES:
            targets[column] = factorized[0]
    sources = {}
    for column in [c for c, sdtype in usable.items() if targets and sdtype in (
            "datetime", "numerical")]:
        position = positions(frame[column])
        if np.isfinite(position).sum() >= 2 * MIN_ROWS:
            sources[column] = position
    return sources, targets


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """The values' codes (-1: NULL) and the distinct values, or None for unhashable ones."""
    try:
        return pd.factorize(values, use_na_sentinel=True)
    except TypeError:
        return None


def _table_steps(frame: pd.DataFrame, sources: dict[str, np.ndarray],
                 targets: dict[str, np.ndarray]) -> dict[str, StepRule]:
    """The rules of one table: the pairs that hold on a sample (``sources``, ``targets``: the
    sample's positions and codes) checked on every row."""
    best: dict[str, tuple[float, StepRule]] = {}
    first = np.sort(np.random.default_rng(1).permutation(len(next(iter(sources.values()))))[
        :_FIRST_ROWS])
    full_codes: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
    for source, sample in sources.items():
        # Any subset of the rows keeps the ranges apart too: a few random rows of the sample
        # first (most pairs of real columns fail there), then the sample, then every row.
        held = [name for name, codes in targets.items()
                if _split(sample[first], codes[first], 1) and _split(sample, codes, 1)]
        if not held:
            continue
        position = positions(frame[source])
        for name in held:
            if name not in full_codes:
                full_codes[name] = _codes(frame[name])
            factorized = full_codes[name]
            found = None if factorized is None or len(factorized[1]) > MAX_VALUES else \
                _split(position, factorized[0], MIN_ROWS)
            if found is None:
                continue
            edges, groups, width = found
            distinct = factorized[1]
            members = [(to_json(distinct[c]), share, i) for i, group in enumerate(groups)
                       for c, share in group]
            rule = StepRule(name, source, edges, *(list(part) for part in zip(*members,
                                                                               strict=True)))
            if name not in best or width > best[name][0]:
                best[name] = (width, rule)
    return {name: rule for name, (_, rule) in best.items()}


def _split(position: np.ndarray, codes: np.ndarray, min_rows: int):
    """``(edges, groups, width)`` when, over the rows with both set, the category's values
    fall into at least two separate ranges of the source (each value's smallest to largest
    row; no position shared by two ranges), each of at least ``min_rows`` rows, else None.
    ``groups``: per range, ``(code, share of the range's rows)``; ``width``: the narrowest gap
    between two ranges, relative to the source's spread."""
    both = np.isfinite(position) & (codes >= 0)
    if both.sum() < 2:
        return None
    x, c = position[both], codes[both]
    k = int(c.max()) + 1
    low, high = np.full(k, np.inf), np.full(k, -np.inf)
    np.minimum.at(low, c, x)
    np.maximum.at(high, c, x)
    counts = np.bincount(c, minlength=k)
    seen = np.flatnonzero(counts)
    order = seen[np.argsort(low[seen], kind="stable")]
    reach = np.maximum.accumulate(high[order])
    cut = np.flatnonzero(reach[:-1] < low[order][1:])  # a range ends before the next begins
    if not len(cut):
        return None
    bounds = np.r_[0, cut + 1, len(order)]
    groups = [order[bounds[i]:bounds[i + 1]] for i in range(len(bounds) - 1)]
    if min(int(counts[g].sum()) for g in groups) < min_rows:
        return None
    edges = ((reach[cut] + low[order][cut + 1]) / 2).tolist()
    spread = float(x.max() - x.min()) or 1.0
    width = float((low[order][cut + 1] - reach[cut]).min()) / spread
    shares = [[(int(code), float(counts[code] / counts[g].sum())) for code in g] for g in groups]
    return edges, shares, width
