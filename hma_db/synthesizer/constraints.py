"""Constraints kept by construction, around each table's :class:`~hma_db.transform.TableTransformer`.

Before a table reaches its transformer, :class:`TableRules` rewrites the columns a rule binds so
that every value the model can sample is valid, and turns the decoded columns back after sampling:

* ``Inequality`` / ``Range``: the high column also gets a *gap* column ``high.gap``,
  ``log(high - low + eps)`` (in seconds for timestamps, days for dates, whole units when both
  columns hold whole numbers), or ``log((high - low) / low)`` for positive numbers whose ratio
  is far tighter than the gap (bytes over milliseconds). After sampling
  ``high = max(lows) + gap``, and any sampled gap decodes to one at least 0 (at least one
  unit, or above 0, when strict): the rule holds by construction, and no
  value is clipped onto the boundary. A high column with several lows (found rules) takes the
  largest, and chains (``a <= b <= c``) decode in column order. Where every low is NULL the
  high column keeps its own modeled value;
* ``FixedCombinations``: the columns become one category, the index of a real combination;
* ``OneHotEncoding``: the columns become one category, the name of the hot column;
* ``FixedIncrements``: the column is modeled divided by the increment and rounded back.

Each step is row-local, so a chunk of rows (:mod:`hma_db.synthesizer.chunks`) decodes alone.
A rule the real rows already break is refused at fit, with the count and example rows.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import Any

import numpy as np
import pandas as pd

from hma_db.errors import DataError, ModelFileError, SynthesizerInputError
from hma_db.schema import (
    Constraint,
    FixedCombinations,
    FixedIncrements,
    Inequality,
    OneHotEncoding,
    Range,
    as_numbers,
    decimals,
    from_json,
    to_json,
    with_columns,
)

# The column a rule models in place of its high column: ``Bytes.gap``. A distribution asked for
# ``Bytes`` applies to it (the model matches ``column.<anything>``), and the synthesizer shows
# its learned distribution under ``Bytes``.
GAP_SUFFIX = ".gap"
EXAMPLE_ROWS = 3  # broken rows shown when refusing a rule at fit
QUANTILES = 201  # of the real gaps: a 0.5% rank step, 1.6 kB per rule in a model file
NS_PER_UNIT = {"number": 1.0, "date": 86_400e9, "timestamp": 1e9, "timestamptz": 1e9}


def check_declared(metadata, constraint: Constraint) -> None:
    """Refuse a constraint whose table or columns do not exist or are keys."""
    table = constraint.table_name
    if table not in metadata.tables:
        raise SynthesizerInputError(
            f"{constraint!r} names the table {table!r}; the metadata has: "
            f"{', '.join(sorted(metadata.tables))}. Pass table_name=.")
    columns = metadata.tables[table]["columns"]
    keys = set(metadata.primary_key(table)) | set(metadata.foreign_key_columns(table))
    for column in constraint.columns():
        if column not in columns:
            raise SynthesizerInputError(
                f"{constraint!r}: table '{table}' has no column '{column}'; its columns are "
                f"{', '.join(columns)}.")
        if column in keys:
            raise SynthesizerInputError(
                f"{constraint!r}: '{table}.{column}' is a key; keys are generated, not "
                "modeled, so a constraint cannot bind them.")


def refuse_broken(constraint: Constraint, frame: pd.DataFrame) -> None:
    """A rule the real rows break cannot be kept: say how many rows and show some."""
    valid = constraint.is_valid(frame).to_numpy(dtype=bool)
    if valid.all():
        return
    bad = frame.loc[~valid, constraint.columns()]
    raise DataError(
        f"Table '{constraint.table_name}': {int((~valid).sum())} of {len(frame)} real rows break "
        f"{constraint!r}, for example:\n{bad.head(EXAMPLE_ROWS).to_string()}\nFix the data or "
        "drop the constraint.")


def _representation(values: pd.Series, fmt: str | None) -> str:
    """How a compared column holds its values: number, decimal, date, timestamp(tz) or text."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return "timestamptz" if getattr(values.dtype, "tz", None) is not None else "timestamp"
    if pd.api.types.infer_dtype(values, skipna=True) == "decimal":
        # NUMERIC/DECIMAL read as Decimal objects: written back as Decimals of the column's
        # decimals (Gap.fit adds them: "decimal:2"), so a gap of one cent stays one cent.
        return "decimal"
    present = values.dropna()
    first = present.iloc[0] if len(present) else None
    if isinstance(first, str):
        return "text:" + (fmt or ("%Y-%m-%d" if len(first) == 10 else "%Y-%m-%d %H:%M:%S"))
    if isinstance(first, dt.date) and not isinstance(first, dt.datetime):
        return "date"
    return "timestamp"


def _numbers(values: pd.Series, rep: str) -> np.ndarray:
    raw = as_numbers(values)
    return raw if _numeric(rep) else raw / NS_PER_UNIT.get(rep, 1e9)


def _unit_of(rep: str) -> float:
    """What :func:`_numbers` divides by for ``rep`` (1: numbers and decimals as they are)."""
    return 1.0 if _numeric(rep) else NS_PER_UNIT.get(rep, 1e9)


class Numbers:
    """A frame's columns as numbers (:func:`_numbers`), each converted once per representation.

    A table's gaps share their columns (parent16's six found gaps read four low columns, each
    up to five times over: the conversions and the frame copies were 26 ms of its 60 ms
    preprocessing outside the transformers); the arrays are shared, so nobody writes to them.
    """

    def __init__(self, frame: pd.DataFrame):
        self.frame, self._cache = frame, {}

    def __call__(self, column: str, rep: str) -> np.ndarray:
        key = (column, _unit_of(rep))
        if key not in self._cache:
            self._cache[key] = _numbers(self.frame[column], rep)
        return self._cache[key]

    def whole(self, column: str, rep: str) -> bool:
        """Does the column hold whole numbers (:func:`_whole`)?"""
        key = ("whole", column, _unit_of(rep))
        if key not in self._cache:
            self._cache[key] = _whole(self(column, rep))
        return self._cache[key]

    def largest(self, columns: list[str], rep: str) -> np.ndarray:
        """Per row, the largest of ``columns`` that is set (NaN: none is)."""
        key = (tuple(columns), _unit_of(rep))
        if key not in self._cache:
            lows = np.column_stack([self(c, rep) for c in columns])
            present = ~np.isnan(lows)
            self._cache[key] = np.where(
                present.any(axis=1), np.nanmax(np.where(present, lows, -np.inf), axis=1), np.nan)
        return self._cache[key]


def _checked_rep(rep: Any) -> str:
    """A model file's representation, refused unless it is one hma_db writes (a model file is
    untrusted input: 'decimal:99999999' would build huge strings per row)."""
    rep = str(rep)
    ok = rep in NS_PER_UNIT or (rep.startswith("text:") and len(rep) <= 40) or bool(
        re.fullmatch(r"decimal:\d", rep))  # at most 9 decimals
    if not ok:
        raise ModelFileError(f"A saved rule has an unknown representation {rep[:40]!r}.")
    return rep


def _numeric(rep: str) -> bool:
    return rep == "number" or rep.startswith("decimal")


def _values(numbers: np.ndarray, rep: str) -> pd.Series:
    """Numbers back in a column's representation (the inverse of :func:`_numbers`)."""
    if rep == "number":
        return pd.Series(numbers)
    if rep.startswith("decimal:"):
        text = pd.Series(np.char.mod(f"%.{int(rep[8:])}f", numbers))
        return text.where(~np.isnan(numbers)).map(decimal.Decimal, na_action="ignore") \
            .astype(object).where(~np.isnan(numbers), None)
    ns = np.rint(numbers * NS_PER_UNIT.get(rep, 1e9))
    stamps = pd.to_datetime(pd.Series(ns).astype("Int64"), unit="ns", utc=True)
    if rep == "date":
        return stamps.dt.date.astype(object).where(stamps.notna(), None)
    if rep.startswith("text:"):
        return stamps.dt.strftime(rep[5:]).astype(object).where(stamps.notna(), None)
    return stamps if rep == "timestamptz" else stamps.dt.tz_localize(None)


def _whole(numbers: np.ndarray) -> bool:
    present = numbers[~np.isnan(numbers)]
    # 1e-6 of a unit: timestamps read as float nanoseconds keep about this much precision.
    return bool(len(present)) and bool(np.all(np.abs(present - np.rint(present)) <= 1e-6))


class Gap:
    """``high >= max(lows)`` kept as a log-scale gap column (see the module docstring)."""

    def __init__(self, high: str, lows: list[str], strict: bool, column: str):
        self.high, self.lows, self.strict, self.column = high, list(lows), strict, column
        self.rep, self.unit, self.eps = "number", 0.0, 0.0
        # The high column's real range and the real gaps' quantiles, to keep high within its
        # range (enforce_min_max_values) without clipping; empty: not bounded.
        self.bounds: list[float] = []
        self.quantiles: list[float] = []
        self.nullable = False  # high is NULL in some real rows whose lows are set
        # No real row has high set and every low NULL: high is wholly derived from the gap,
        # so the model does not see it (one column fewer per rule for the copula and its
        # parents' aggregates).
        self.replaced = False
        # The gap modeled relative to the low (log(gap / low)) where that is much tighter than
        # the gap itself: a track's bytes are its milliseconds times a bitrate, and a copula
        # keeps the ratio far better than a gap spanning six orders of magnitude.
        self.relative = False
        # The low is personal data made by Faker (a birth date) and the high is modeled (a
        # hire date): the low is derived from the high (high - gap), not the high from a
        # made-up low, so the modeled column keeps its distribution and correlations. The
        # gap is then not modeled but drawn from the real gaps' quantiles: a modeled gap
        # replayed with its row (a small table's rows are replayed) would give back the
        # real birth date.
        self.derive_low = False
        self._present: np.ndarray | None = None  # the real gaps, until their quantiles are taken

    def fit(self, frame: pd.DataFrame, fmt: str | None, derive_low: bool = False,
            numbers: Numbers | None = None, quantiles: bool = True) -> None:
        """Learn the gap from the real rows (``numbers``: ``frame``'s columns as numbers,
        shared by the table's steps; ``quantiles=False``: the real gaps are kept for
        :func:`fit_quantiles` to take their quantiles with other gaps')."""
        numbers = numbers or Numbers(frame)
        self.derive_low = derive_low and len(self.lows) == 1
        self.rep = _representation(frame[self.high], fmt)
        columns = [self.high, *self.lows]
        values = [numbers(c, self.rep) for c in columns]
        self.unit = 1.0 if all(numbers.whole(c, self.rep) for c in columns) else 0.0
        if self.rep == "decimal":
            digits = max(decimals(v) for v in values)
            self.rep = f"decimal:{digits}"
            self.unit = self.unit or 10.0 ** -digits
        gap = self._gap(numbers)
        positive = gap[gap > 0]
        # Continuous gaps of 0 need an offset for the log: a thousandth of the median gap
        # keeps zeros apart from the rest without dwarfing them.
        self.eps = 0.0 if self.unit or self.strict or not len(positive) else \
            float(np.median(positive)) * 1e-3
        present = gap[~np.isnan(gap)]
        lows = self._lows(numbers)
        self.relative = self._tighter_relative(gap, lows)
        self.nullable = bool((np.isnan(values[0]) & ~np.isnan(lows)).any())
        self.replaced = not self.derive_low and not bool((~np.isnan(values[0])
                                                          & np.isnan(lows)).any())
        if len(present):
            self.bounds = [float(np.nanmin(values[0])), float(np.nanmax(values[0]))]
            self._present = present
            if quantiles:
                fit_quantiles([self])


    def _tighter_relative(self, gap: np.ndarray, lows: np.ndarray) -> bool:
        """Numbers only, every low above 0 and every gap too: is log(gap / low) at most half
        as spread (in standard deviations) as log(gap)?"""
        both = ~np.isnan(gap) & ~np.isnan(lows)
        if not _numeric(self.rep) or both.sum() < 2 or (lows[both] <= 0).any() \
                or (gap[both] <= 0).any():
            return False
        spread = np.std(np.log(gap[both]))
        return bool(np.std(np.log(gap[both] / lows[both])) <= 0.5 * spread)

    def unbound(self) -> None:
        """Let high leave its real range (enforce_min_max_values=False)."""
        self.bounds, self.quantiles = [], []

    def _within(self, gap: np.ndarray, lows: np.ndarray) -> np.ndarray:
        """Gaps that would put high outside its real range, redrawn inside it from the real
        gaps' distribution: a row whose gap has rank p outside the allowed ranks [a, b] takes
        the rank at the same relative place within [a, b]. Rows inside keep their gap, so each
        row's gap follows the real gaps truncated to its room; nothing lands on the boundary."""
        if not self.quantiles:
            return gap
        q, levels = np.asarray(self.quantiles), np.linspace(0, 1, len(self.quantiles))
        with np.errstate(invalid="ignore"):
            a = np.interp(self.bounds[0] - lows, q, levels)
            b = np.interp(self.bounds[1] - lows, q, levels)
            p = np.interp(gap, q, levels)
            outside = ((gap < self.bounds[0] - lows) | (gap > self.bounds[1] - lows)) & (b > a)
        if self.nullable:
            # No real gap fits (an order placed on the last day, shipped one day later at the
            # least): NULL, as the real rows near the end of the range are (not shipped yet).
            with np.errstate(invalid="ignore"):
                gap = np.where(b > a, gap, np.nan)
        if not outside.any():
            return gap
        below = np.where(a > 0, p / np.where(a > 0, a, 1), 0.0)
        above = np.where(b < 1, (p - b) / np.where(b < 1, 1 - b, 1), 1.0)
        share = np.clip(np.where(p < a, below, above), 0.0, 1.0)
        redrawn = np.interp(a + share * (b - a), levels, q)
        if self.unit:  # whole units, and never below the smallest real gap
            redrawn = np.maximum(np.rint(redrawn / self.unit) * self.unit, q[0])
        return np.where(outside, redrawn, gap)

    def _lows(self, numbers: Numbers) -> np.ndarray:
        return numbers.largest(self.lows, self.rep)

    def _gap(self, numbers: Numbers) -> np.ndarray:
        return numbers(self.high, self.rep) - self._lows(numbers)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.derive_low:
            return frame
        return frame.assign(**{self.column: self.modeled(Numbers(frame))})

    def modeled(self, numbers: Numbers) -> np.ndarray:
        """The gap column the model sees (a replaced high goes after every gap)."""
        gap = self._gap(numbers)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.relative:  # every real gap and low is above 0 (see fit)
                return np.log(gap / self._lows(numbers))
            if self.unit:
                return np.log1p(np.rint(gap / self.unit) - (1 if self.strict else 0))
            return np.log(gap + self.eps)

    def reverse(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.derive_low:
            return self._derive_low(frame)
        y = pd.to_numeric(frame[self.column], errors="coerce").to_numpy(dtype=float)
        lows = self._lows(Numbers(frame))
        # abs: a log sampled below the real minimum folds back above 0 rather than onto it.
        if self.relative:  # above 0 whatever is drawn; whole units rounded up, so never 0
            gap = np.exp(y) * np.abs(lows)
            if self.unit:
                gap = np.ceil(gap / self.unit) * self.unit
        elif self.unit:
            gap = (np.rint(np.abs(np.expm1(y))) + (1 if self.strict else 0)) * self.unit
        else:
            gap = np.abs(np.exp(y) - self.eps)
        gap = self._within(gap, lows)
        derived = ~np.isnan(lows)
        out = frame.drop(columns=[self.column])
        kind = float if self.rep == "number" else object
        if self.replaced:  # out is drop's new frame: set in place, not copied again
            out[self.high] = pd.Series(np.nan if kind is float else None, index=out.index,
                                       dtype=kind)
        if not derived.any():
            return out
        high = out[self.high].astype(kind).copy()
        new = _values(lows + gap, self.rep)
        high[derived] = new[derived].to_numpy()
        out[self.high] = high
        return out

    def _derive_low(self, out: pd.DataFrame) -> pd.DataFrame:
        """The low as high - gap where both are set: a made-up birth date moved to the
        modeled hire date minus an age drawn from the real ages at hire (interpolated between
        their quantiles); a row without a high keeps its low. The draw's uniform number comes
        from the made-up low itself (its day times the golden ratio, modulo 1: equidistributed
        over days), so the result is as repeatable as Faker's seeded values, with no random
        stream of its own."""
        low = self.lows[0]
        high, made = _numbers(out[self.high], self.rep), _numbers(out[low], self.rep)
        if not self.quantiles:
            return out
        per_day = 1.0 if _numeric(self.rep) or self.rep == "date" else 86_400.0
        u = np.mod(np.floor(made / per_day) * 0.6180339887498949, 1.0)
        q = np.asarray(self.quantiles)
        gap = np.interp(u, np.linspace(0, 1, len(q)), q)
        if self.unit:
            gap = np.maximum(np.rint(gap / self.unit) * self.unit, q[0])
        derived = ~np.isnan(high) & ~np.isnan(made)
        if not derived.any():
            return out
        if per_day > 1 and not np.any(np.mod(high[derived], per_day)):
            # Hire dates at midnight: a birth date at midnight too, not 22:52:16 (Chinook).
            gap = np.rint(gap / per_day) * per_day
        kind = float if self.rep == "number" else object
        values = out[low].astype(kind).copy()
        values[derived] = _values(high - gap, self.rep)[derived].to_numpy()
        return with_columns(out, {low: values})

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "gap", "high": self.high, "lows": self.lows, "strict": self.strict,
                "column": self.column, "rep": self.rep, "unit": self.unit, "eps": self.eps,
                "bounds": self.bounds, "quantiles": self.quantiles, "nullable": self.nullable,
                "replaced": self.replaced, "relative": self.relative,
                "derive_low": self.derive_low}

    def meta(self) -> dict[str, dict]:
        if self.derive_low:
            return {}
        return {self.column: {"sdtype": "numerical", "computer_representation": "Float"}}


def fit_quantiles(gaps: list[Gap]) -> None:
    """Each gap's quantiles of the real gaps it kept at fit, taken at once for gaps of as
    many rows (numpy gives each column of a 2-D quantile what it gives the column alone, and
    parent16's six gaps take 0.09 ms together, 0.36 ms one by one)."""
    by_length: dict[int, list[Gap]] = {}
    for gap in gaps:
        if getattr(gap, "_present", None) is not None:
            by_length.setdefault(len(gap._present), []).append(gap)
    for group in by_length.values():
        taken = np.quantile(np.column_stack([g._present for g in group]),
                            np.linspace(0, 1, QUANTILES), axis=0)
        for k, gap in enumerate(group):
            gap.quantiles, gap._present = taken[:, k].tolist(), None


class Category:
    """Several columns modeled as one category: a fixed combination or a one-hot group."""

    def __init__(self, columns: list[str], one_hot: bool, column: str):
        self.columns, self.one_hot, self.column = list(columns), one_hot, column
        self.combinations: pd.DataFrame | None = None

    def fit(self, frame: pd.DataFrame, fmt: str | None = None) -> None:
        if not self.one_hot:
            self.combinations = frame[self.columns].drop_duplicates().reset_index(drop=True)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.one_hot:
            values = frame[self.columns].apply(pd.to_numeric, errors="coerce").to_numpy(float)
            code = np.asarray(self.columns, dtype=object)[np.argmax(values == 1, axis=1)]
        else:
            codes = self.combinations.assign(_code=np.arange(len(self.combinations)))
            merged = frame[self.columns].merge(codes, how="left", on=self.columns)
            code = np.char.add("c", merged["_code"].to_numpy().astype(int).astype(str))
        return frame.drop(columns=self.columns).assign(**{self.column: code})

    def reverse(self, frame: pd.DataFrame) -> pd.DataFrame:
        code = frame[self.column].astype(str).to_numpy()
        if self.one_hot:
            out = {c: (code == c).astype(int) for c in self.columns}
        else:
            rows = pd.to_numeric(pd.Series(code).str[1:], errors="coerce").fillna(0).astype(int)
            # When every combination was rare the category model emits new codes (rare values
            # are never sampled): they wrap onto the known combinations, the only ones allowed.
            rows = rows.to_numpy() % max(len(self.combinations), 1)
            taken = self.combinations.iloc[rows].reset_index(drop=True)
            out = {c: taken[c].to_numpy() for c in self.columns}
        return frame.drop(columns=[self.column]).assign(**out)

    def to_dict(self) -> dict[str, Any]:
        combos = None if self.combinations is None else \
            [[to_json(v) for v in self.combinations[c]] for c in self.columns]
        return {"kind": "category", "columns": self.columns, "one_hot": self.one_hot,
                "column": self.column, "combinations": combos}

    def meta(self) -> dict[str, dict]:
        return {self.column: {"sdtype": "categorical"}}


class Increments:
    """A column modeled as the whole number of increments it holds."""

    def __init__(self, column: str, increment: float):
        self.column, self.increment = column, increment

    def fit(self, frame: pd.DataFrame, fmt: str | None = None) -> None:
        """Nothing to learn: the increment is given."""

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        values = pd.to_numeric(frame[self.column], errors="coerce") / self.increment
        return frame.assign(**{self.column: np.rint(values)})

    def reverse(self, frame: pd.DataFrame) -> pd.DataFrame:
        values = pd.to_numeric(frame[self.column], errors="coerce")
        return frame.assign(**{self.column: np.rint(values) * self.increment})

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "increments", "column": self.column, "increment": self.increment}

    def meta(self) -> dict[str, dict]:
        return {self.column: {"sdtype": "numerical", "computer_representation": "Float"}}


def _free_name(taken: set[str], base: str) -> str:
    name = base
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _ordered_gaps(table: str, edges: dict[str, dict[str, bool]], taken: set[str]) -> list[Gap]:
    """One gap per high column, lows first (a chain decodes in order); a cycle is refused."""
    gaps, done, pending = [], set(), dict(edges)
    while pending:
        ready = [h for h, lows in pending.items() if not set(lows) & set(pending)]
        if not ready:
            raise SynthesizerInputError(
                f"Table '{table}': the inequalities on {', '.join(sorted(pending))} form a "
                "cycle; drop one of them.")
        for high in sorted(ready):
            lows = pending.pop(high)
            gaps.append(Gap(high, sorted(lows), all(lows.values()),
                            _free_name(taken, f"{high}{GAP_SUFFIX}")))
            done.add(high)
    return gaps


class TableRules:
    """The steps that keep one table's constraints, fitted on its real rows."""

    def __init__(self, table: str, steps: list):
        self.table, self.steps = table, steps

    @classmethod
    def build(cls, table: str, constraints: list[Constraint], columns: list[str]) -> TableRules:
        taken = set(columns)
        steps: list = []
        edges: dict[str, dict[str, bool]] = {}
        for c in constraints:
            if isinstance(c, (Inequality, Range)):
                pairs = list(zip(c.columns()[:-1], c.columns()[1:], strict=True))
                for low, high in pairs:
                    lows = edges.setdefault(high, {})
                    lows[low] = lows.get(low, False) or c.strict_boundaries
            elif isinstance(c, FixedIncrements):
                steps.append(Increments(c.column_name, c.increment_value))
            elif isinstance(c, (FixedCombinations, OneHotEncoding)):
                one_hot = isinstance(c, OneHotEncoding)
                base = "__one_hot__" if one_hot else "__combination__"
                steps.append(Category(c.columns(), one_hot, _free_name(taken, base + c.columns()[0])))
        _refuse_overlaps(table, steps, edges)
        return cls(table, steps + _ordered_gaps(table, edges, taken))

    def fit(self, frame: pd.DataFrame, metadata, bounded: bool = True,
            numbers: Numbers | None = None) -> None:
        """Learn each step from the real rows; ``bounded``: keep high columns within their real
        range (the table's ``enforce_min_max_values``)."""
        numbers = numbers or Numbers(frame)
        meta = metadata.tables[self.table]["columns"]
        lows_of = [low for step in self.steps if isinstance(step, Gap) for low in step.lows]
        for step in self.steps:
            fmt = meta.get(getattr(step, "high", ""), {}).get("datetime_format")
            if isinstance(step, Gap):
                made = [meta.get(c, {}).get("pii") for c in (*step.lows, step.high)]
                # A made-up low below two highs is left as it is: the second would move it
                # again and could break the first (a birth date before two dates: rare).
                alone = lows_of.count(step.lows[0]) == 1
                step.fit(frame, fmt, derive_low=bool(made[0]) and not any(made[1:]) and alone,
                         numbers=numbers, quantiles=False)
            else:
                step.fit(frame, fmt)
        gaps = [step for step in self.steps if isinstance(step, Gap)]
        if bounded:
            fit_quantiles(gaps)
        for gap in gaps:
            if not bounded:
                gap.unbound()
            gap._present = None

    def updated_metadata(self, metadata):
        """A copy of ``metadata`` whose table has the columns :meth:`transform` gives."""
        view = metadata.copy()
        columns = view.tables[self.table]["columns"]
        for step in self.steps:
            gone = step.columns if isinstance(step, Category) else \
                [step.high] if isinstance(step, Gap) and step.replaced else []
            for column in gone:
                columns.pop(column, None)
            columns.update(step.meta())
        return view

    def fit_transform(self, frame: pd.DataFrame, metadata, bounded: bool = True) -> pd.DataFrame:
        """:meth:`fit`, then :meth:`transform`, converting each column once."""
        numbers = Numbers(frame)
        self.fit(frame, metadata, bounded, numbers)
        return self.transform(frame, numbers)

    def transform(self, frame: pd.DataFrame, numbers: Numbers | None = None) -> pd.DataFrame:
        """The columns the transformer models (``numbers``: ``frame``'s, from :meth:`fit`)."""
        numbers, given = numbers or Numbers(frame), frame
        gaps: dict[str, np.ndarray] = {}  # added at once: one copy of the frame, not one a gap
        for step in self.steps:
            if isinstance(step, Gap):
                if not step.derive_low:
                    gaps[step.column] = step.modeled(numbers)
                continue
            if gaps:  # a step after a gap (a model file's order) sees the gaps before it
                frame, gaps = frame.assign(**gaps), {}
            frame = step.transform(frame)
            numbers = Numbers(frame)
        # A high column is the low of the next gap in a chain: dropped once every gap is taken.
        replaced = {s.high for s in self.steps if isinstance(s, Gap) and s.replaced}
        if not gaps or not frame.columns.is_unique:
            frame = frame.assign(**gaps) if gaps else frame
            return frame.drop(columns=list(replaced)) if replaced or frame is given else frame
        # One frame built from the kept columns' arrays (each keeps its dtype) and the gaps:
        # 0.1 ms for parent16's six gaps where an assign per gap took 1.0 (20 ms against 65 on
        # a million rows); the gaps keep the frame's index, as assign gives them.
        columns = {c: frame[c].array for c in frame.columns if c not in replaced}
        return pd.DataFrame({**columns, **gaps}, index=frame.index)

    def reverse(self, frame: pd.DataFrame) -> pd.DataFrame:
        for step in self.steps:  # lows before highs (see _ordered_gaps)
            frame = step.reverse(frame)
        return frame

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableRules:
        steps = []
        for s in d["steps"]:
            if s["kind"] == "gap":
                step = Gap(str(s["high"]), [str(x) for x in s["lows"]], bool(s["strict"]),
                           str(s["column"]))
                step.rep, step.unit, step.eps = _checked_rep(s["rep"]), float(s["unit"]), \
                    float(s["eps"])
                step.bounds = [float(x) for x in s.get("bounds", [])]
                step.quantiles = [float(x) for x in s.get("quantiles", [])]
                step.nullable = bool(s.get("nullable", False))
                step.replaced = bool(s.get("replaced", False))
                step.relative = bool(s.get("relative", False))
                step.derive_low = bool(s.get("derive_low", False))
            elif s["kind"] == "category":
                step = Category([str(x) for x in s["columns"]], bool(s["one_hot"]), str(s["column"]))
                if s["combinations"] is not None:
                    step.combinations = pd.DataFrame(
                        {c: pd.Series([from_json(v) for v in vals], dtype=object)
                         for c, vals in zip(step.columns, s["combinations"], strict=True)})
            elif s["kind"] == "increments":
                step = Increments(str(s["column"]), float(s["increment"]))
            else:
                raise SynthesizerInputError(f"Unknown constraint step {s['kind']!r}.")
            steps.append(step)
        return cls(str(d["table"]), steps)

    def combinations(self, columns: list[str]) -> pd.DataFrame | None:
        """The real combinations learned for a ``FixedCombinations`` of ``columns``."""
        for step in self.steps:
            if isinstance(step, Category) and step.columns == list(columns):
                return step.combinations
        return None


def _refuse_overlaps(table: str, steps: list, edges: dict[str, dict[str, bool]]) -> None:
    """A column rewritten by two kinds of rule would be decoded twice: refuse it."""
    seen: dict[str, int] = {}
    for i, step in enumerate(steps):
        for column in (step.columns if isinstance(step, Category) else [step.column]):
            if seen.setdefault(column, i) != i:
                raise SynthesizerInputError(
                    f"Table '{table}': column '{column}' is bound by two constraints that "
                    "rewrite it; keep one.")
    gap_columns = set(edges) | {low for lows in edges.values() for low in lows}
    both = sorted(gap_columns & set(seen))
    if both:
        raise SynthesizerInputError(
            f"Table '{table}': column(s) {', '.join(both)} are in an Inequality or Range and in "
            "another constraint that rewrites them; keep one.")
