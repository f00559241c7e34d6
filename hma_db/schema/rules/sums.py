"""Sums found in the data: a parent column that is, in every real parent row, the sum over its
children of a column or of the product of two (Chinook: ``Invoice.Total =
sum(InvoiceLine.UnitPrice * InvoiceLine.Quantity)``), within the parent column's rounding.

:func:`find_sums` looks for them at fit: number columns only (no key, no masked column), at
least :data:`MIN_PARENTS` parent rows with the column set, not constant. :class:`ParentSum`
states one; at sampling its :meth:`~ParentSum.reverse_transform` recomputes the parent column
from the sampled children of each chunk (a chunk holds whole families,
:mod:`hma_db.synthesizer.chunks`), one ``bincount`` per rule, rounded to the parent column's
decimals. The model still draws the children; the parent column follows them.

:class:`RowFormula` is the same within one row (``line_total = unit_price * quantity``,
``gross = net + tax``), found by :func:`find_formulas` and recomputed the same way.
"""

from __future__ import annotations

import decimal
import itertools
import logging

import numpy as np
import pandas as pd

from hma_db.schema.constraints import Constraint, with_columns
from hma_db.schema.keys import key_columns

logger = logging.getLogger(__name__)

MIN_PARENTS = 30  # as for the inequalities found in the data
MAX_DIGITS = 6  # decimals looked for in a parent column


def numbers(values: pd.Series) -> np.ndarray:
    """Numbers (ints, floats, decimals) as floats, NaN for NULL or anything else."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iuf":
        return values.to_numpy(dtype=float, copy=True)  # what the general path gives, 20x faster
    if values.dtype == object:
        values = pd.to_numeric(values.map(lambda v: float(v) if isinstance(v, decimal.Decimal)
                                          else v), errors="coerce")
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def decimals(values: np.ndarray) -> int:
    """The fewest decimals that write every value (at most :data:`MAX_DIGITS`)."""
    present = values[~np.isnan(values)]
    for digits in range(MAX_DIGITS + 1):
        scaled = present * 10.0 ** digits
        if np.all(np.abs(scaled - np.rint(scaled)) <= 1e-6 * np.maximum(1.0, np.abs(scaled))):
            return digits
    return MAX_DIGITS


class ParentSum(Constraint):
    """``table.column_name`` is the sum of the product of ``child_column_names`` over the rows
    of ``child_table_name`` whose ``child_foreign_key`` references the row's ``key_name``,
    rounded to ``digits`` decimals.

    Example:
        >>> ParentSum("Total", "InvoiceLine", "InvoiceId", "InvoiceId", ["UnitPrice", "Quantity"],
        ...           2, table_name="Invoice")
    """

    PARAMETERS = ("column_name", "child_table_name", "child_foreign_key", "key_name",
                  "child_column_names", "digits")
    across_tables = True

    def __init__(self, column_name: str, child_table_name: str, child_foreign_key: str,
                 key_name: str, child_column_names: list[str], digits: int = 2,
                 table_name: str | None = None):
        super().__init__(table_name)
        self.column_name, self.child_table_name = column_name, child_table_name
        self.child_foreign_key, self.key_name = child_foreign_key, key_name
        self.child_column_names, self.digits = list(child_column_names), int(digits)

    def columns(self) -> list[str]:
        return [self.column_name]

    def tables_read(self) -> list[str]:
        return [self.table_name, self.child_table_name]

    def describe(self) -> str:
        terms = " * ".join(f"{self.child_table_name}.{c}" for c in self.child_column_names)
        return f"{self.table_name}.{self.column_name} = sum({terms})"

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        """One table alone cannot break it (see :meth:`is_valid_tables`)."""
        return pd.Series(True, index=data.index)

    def sums(self, data: dict[str, pd.DataFrame]) -> np.ndarray:
        """Each parent row's sum over the children in ``data`` that reference its key (as a
        join would: two rows with one key both get that key's children)."""
        parent, child = data[self.table_name], data[self.child_table_name]
        term = np.prod([numbers(child[c]) for c in self.child_column_names], axis=0)
        keep = ~np.isnan(term) & child[self.child_foreign_key].notna().to_numpy()
        by_key = pd.Series(term[keep]).groupby(
            child[self.child_foreign_key].to_numpy()[keep]).sum()
        return parent[self.key_name].map(by_key).fillna(0.0).to_numpy(dtype=float)

    def is_valid_tables(self, data: dict[str, pd.DataFrame]) -> pd.Series:
        """Per parent row: is the column its children's sum (NULL passes)?"""
        parent = data[self.table_name]
        value = numbers(parent[self.column_name])
        holds = np.abs(value - self.sums(data)) <= 0.5 * 10.0 ** -self.digits + 1e-9 * np.abs(value)
        return pd.Series(holds | np.isnan(value), index=parent.index)

    def reverse_transform(self, data: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """``data`` with the parent column recomputed from the children in it."""
        parent = data.get(self.table_name)
        if parent is None or not len(parent) or self.child_table_name not in data:
            return data
        # a NULL stays NULL, as the model drew it; Decimals stay Decimals
        new = _like(parent[self.column_name], np.round(self.sums(data), self.digits), self.digits)
        return {**data, self.table_name: with_columns(parent, {self.column_name: new})}


class RowFormula(Constraint):
    """``column_name`` is the sum (``operation="sum"``) or the product (``"product"``) of
    ``column_names`` in its own row, rounded to ``digits`` decimals (NULL passes).

    Example:
        >>> RowFormula("line_total", ["unit_price", "quantity"], "product", 2, table_name="lines")
    """

    PARAMETERS = ("column_name", "column_names", "operation", "digits")

    def __init__(self, column_name: str, column_names: list[str], operation: str = "sum",
                 digits: int = 2, table_name: str | None = None):
        super().__init__(table_name)
        self.column_name, self.column_names = column_name, list(column_names)
        self.operation, self.digits = operation, int(digits)

    def columns(self) -> list[str]:
        return [*self.column_names, self.column_name]

    def describe(self) -> str:
        sign = " + " if self.operation == "sum" else " * "
        return f"{self.column_name} = {sign.join(self.column_names)}"

    def value(self, frame: pd.DataFrame) -> np.ndarray:
        terms = np.vstack([numbers(frame[c]) for c in self.column_names])
        return terms.sum(axis=0) if self.operation == "sum" else terms.prod(axis=0)

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        value, target = self.value(data), numbers(data[self.column_name])
        with np.errstate(invalid="ignore"):
            holds = np.abs(target - value) <= 0.5 * 10.0 ** -self.digits + 1e-9 * np.abs(target)
        return pd.Series(holds | np.isnan(target) | np.isnan(value), index=data.index)

    def reverse_transform(self, data: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """``data`` with the column recomputed from the others in each sampled row."""
        frame = data.get(self.table_name)
        if frame is None or not len(frame):
            return data
        new = _like(frame[self.column_name], np.round(self.value(frame), self.digits), self.digits)
        return {**data, self.table_name: with_columns(frame, {self.column_name: new})}


def _like(old: pd.Series, values: np.ndarray, digits: int) -> pd.Series:
    """``values`` in the representation of ``old`` (Decimals or numbers), NULL where it was."""
    sample = old.dropna()
    if len(sample) and isinstance(sample.iloc[0], decimal.Decimal):
        text = pd.Series(np.char.mod(f"%.{digits}f", values), index=old.index)
        new = text.where(~np.isnan(values)).map(decimal.Decimal, na_action="ignore").astype(object)
    else:
        new = pd.Series(values, index=old.index).astype(old.dtype, errors="ignore")
    return new.where(old.notna(), old)


PREFILTER_ROWS = 8  # rows every pair is tried on at once before the survivors see them all


def find_formulas(metadata, data: dict[str, pd.DataFrame], tables: set[str]) -> list[RowFormula]:
    """Columns that are the sum or product of two other number columns of their own row in
    every real row (at least :data:`MIN_PARENTS` rows, none of the three constant).

    Every pair is tried at once on a few rows (:data:`PREFILTER_ROWS`) with numpy; only the
    pairs that hold there are checked on every row. A 200-column table has 3.9 million
    (target, pair, operation) triples: one by one they took minutes, this way well under a
    second."""
    found = []
    for table in sorted(tables & set(data)):
        frame, columns = data[table], _number_columns(metadata, table)
        if len(frame) < MIN_PARENTS or len(columns) < 3:
            continue
        matrix = np.column_stack([numbers(frame[c]) for c in columns])
        with np.errstate(invalid="ignore"):
            varied = np.nanstd(matrix, axis=0) > 0
        names = [c for c, keep in zip(columns, varied, strict=True) if keep]
        rule = _first_formula(table, frame, names, matrix[:, varied])
        if rule is not None:  # one formula per table: a second could be derived from the first
            rule.origin = "data"
            found.append(rule)
            logger.info("table %s: found in every row: %s", table, rule.describe())
    return found


def _first_formula(table: str, frame: pd.DataFrame, names: list[str], matrix: np.ndarray
                   ) -> RowFormula | None:
    """The first (target, operation, pair) in order that holds in every row."""
    digits = _column_decimals(matrix)
    screened = _screened_formulas(matrix, digits)
    for t, target in enumerate(names):
        value = matrix[:, t]
        for operation in ("product", "sum"):
            for a, b in zip(*np.nonzero(screened.get((t, operation), [])), strict=True):
                rule = RowFormula(target, [names[a], names[b]], operation, digits[t],
                                  table_name=table)
                present = ~np.isnan(value) & ~np.isnan(rule.value(frame))
                if present.sum() >= MIN_PARENTS and rule.is_valid(frame).to_numpy()[present].all():
                    return rule
    return None


_FORMULA_CELLS = 1 << 21  # (target, row, pair) cells screened per step


def _screened_formulas(matrix: np.ndarray, digits: list[int]) -> dict[tuple, np.ndarray]:
    """``{(target, operation): pairs}``: for each column set in at least :data:`MIN_PARENTS`
    rows, the pairs of other columns (``a < b``) whose sum or product is the target within
    its rounding in the target's first :data:`PREFILTER_ROWS` rows that are set. Targets
    sharing those rows are screened together (parent16's 16 columns: 32 screens of a few
    pairs each were 1.0 ms, 0.2 ms at once)."""
    n = matrix.shape[1]
    set_ = ~np.isnan(matrix)
    groups: dict[tuple, list[int]] = {}
    for t in np.flatnonzero(set_.sum(axis=0) >= MIN_PARENTS):
        groups.setdefault(tuple(np.flatnonzero(set_[:, t])[:PREFILTER_ROWS]), []).append(int(t))
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    out = {}
    for rows, targets in groups.items():
        terms = matrix[list(rows)]
        step = max(1, _FORMULA_CELLS // (len(rows) * n * n))
        for operation in ("product", "sum"):
            made = terms[:, :, None] * terms[:, None, :] if operation == "product" \
                else terms[:, :, None] + terms[:, None, :]
            for start in range(0, len(targets), step):
                chosen = targets[start:start + step]
                goal = terms[:, chosen].T[:, :, None, None]  # targets x rows x 1 x 1
                tolerance = 0.5 * 10.0 ** -np.array(digits)[chosen][:, None, None, None] \
                    + 1e-9 * np.abs(goal)
                with np.errstate(invalid="ignore"):
                    holds = ((np.abs(goal - made) <= tolerance) | np.isnan(made)).all(axis=1)
                for t, pairs in zip(chosen, holds & upper, strict=True):
                    pairs[t, :] = pairs[:, t] = False  # the target is not one of its terms
                    out[(t, operation)] = pairs
    return out


def _number_columns(metadata, table: str) -> list[str]:
    keys = set(metadata.primary_key(table)) | set(metadata.foreign_key_columns(table))
    return [c for c, meta in metadata.tables[table]["columns"].items()
            if meta.get("sdtype") == "numerical" and not meta.get("policy") and c not in keys]


def find_sums(metadata, data: dict[str, pd.DataFrame], tables: set[str]) -> list[ParentSum]:
    """The parent-sum rules that hold in every row of ``data`` (see the module docstring);
    ``tables``: the modeled tables (a kept table is copied, its rows need no rule).

    Every candidate term of a relationship (a child column, or the product of two) is summed
    per parent in one group-by, and each parent column is compared with all of them at once:
    a 16-column parent with 4,500 children took 107 ms one term at a time (144 group-bys),
    the most of any step of its fit. Terms no parent column can be the sum of are told first
    with ``bincount`` (:func:`_plausible`): the group-by runs for the few left, or not at all."""
    found = []
    for rel in metadata.relationships:
        parent, child = rel["parent_table_name"], rel["child_table_name"]
        pk, fk = key_columns(rel["parent_primary_key"]), key_columns(rel["child_foreign_key"])
        if parent == child or len(pk) != 1 or not {parent, child} <= tables \
                or parent not in data or child not in data:
            continue
        values = {t: numbers(data[parent][t]) for t in _number_columns(metadata, parent)}
        values = {t: v for t, v in values.items() if _checkable(v)}
        sources = _number_columns(metadata, child)
        if not values or not sources:
            continue
        # products first: with Quantity always 1, sum(UnitPrice * Quantity) is the rule meant
        terms = [list(p) for p in itertools.combinations(sources, 2)] + [[c] for c in sources]
        columns = {c: numbers(data[child][c]) for c in sources}
        matrix = np.column_stack(list(values.values()))
        digits = dict(zip(values, _column_decimals(matrix), strict=True))
        plausible = _plausible(values, digits, data[parent][pk[0]], data[child][fk[0]],
                               columns, terms)
        needed = sorted({k for ks in plausible.values() for k in ks})
        if not needed:
            continue
        sums = _term_sums(data[parent][pk[0]], data[child], fk[0], [terms[k] for k in needed],
                          columns)
        at = {k: i for i, k in enumerate(needed)}
        for target, value in values.items():
            tried = plausible[target]  # in the terms' order: the first that holds is taken
            present = ~np.isnan(value)
            value = value[present]
            tolerance = 0.5 * 10.0 ** -digits[target] + 1e-9 * np.abs(value)
            candidate = sums[present][:, [at[k] for k in tried]]
            holds = (np.abs(candidate - value[:, None]) <= tolerance[:, None]).all(axis=0)
            if holds.any():
                term = terms[tried[int(np.argmax(holds))]]
                rule = ParentSum(target, child, fk[0], pk[0], term, digits[target],
                                 table_name=parent)
                rule.origin = "data"
                found.append(rule)
                logger.info("found in every row: %s", rule.describe())
    return found


def _checkable(value: np.ndarray) -> bool:
    """Enough parent rows with the column set, and not constant."""
    if int((~np.isnan(value)).sum()) < MIN_PARENTS:
        return False
    present = value[~np.isnan(value)]
    spread = float(present.max() - present.min())
    # A finite spread far above underflow has a standard deviation above 0 (the deviation of
    # the largest or smallest value from the mean is at least half of it); otherwise (one
    # value, infinities) nanstd decides, as it always did. 16 columns: 0.5 ms -> 0.05 ms.
    return 1e-150 < spread < np.inf or bool(np.nanstd(value) > 0)


def _plausible(values: dict[str, np.ndarray], digits: dict[str, int], keys: pd.Series,
               links: pd.Series, columns: dict[str, np.ndarray], terms: list[list[str]]
               ) -> dict[str, list[int]]:
    """Per parent column, the terms (indices) whose sums can match it in every parent row.

    Each term is summed per parent with ``bincount``, whose rounding differs from the
    group-by's by far less than a millionth of the sum of the values' sizes: a term further than
    that beyond a row's tolerance cannot hold there. parent16: 48 (column, term) pairs, none
    left, no group-by (1.0 ms -> 0.1 ms). Keys that are not plain numbers, or repeat, keep every
    term (the group-by decides alone)."""
    every = {t: list(range(len(terms))) for t in values}
    plain = [isinstance(k.dtype, np.dtype) and k.dtype.kind in "iuf" for k in (keys, links)]
    if not all(plain):
        return every
    try:
        position = pd.Index(keys.to_numpy()).get_indexer(links.to_numpy())
    except pd.errors.InvalidIndexError:  # repeated keys: a child counts for each of them
        return every
    found = position >= 0
    position, parents = position[found], len(keys)
    value = np.column_stack(list(values.values()))  # parent rows x parent columns
    tolerance = 0.5 * 10.0 ** -np.array([digits[t] for t in values]) + 1e-9 * np.abs(value)
    out: dict[str, list[int]] = {t: [] for t in values}
    for k, term in enumerate(terms):
        made = np.prod([columns[c][found] for c in term], axis=0)
        made = np.where(np.isnan(made), 0.0, made)  # the group-by leaves NULL terms out
        sums = np.bincount(position, weights=made, minlength=parents)[:, None]
        sizes = np.bincount(position, weights=np.abs(made), minlength=parents)[:, None]
        with np.errstate(invalid="ignore"):  # NaN (a NULL parent column): not far
            far = (np.abs(sums - value) > tolerance + 1e-6 * (np.abs(value) + sizes)).any(axis=0)
        for target, beyond in zip(values, far, strict=True):
            if not beyond:
                out[target].append(k)
    return out


def _column_decimals(matrix: np.ndarray) -> list[int]:
    """:func:`decimals` of each column of ``matrix``, all at once."""
    digits = np.full(matrix.shape[1], MAX_DIGITS)
    left = np.ones(matrix.shape[1], dtype=bool)
    for d in range(MAX_DIGITS + 1):
        scaled = matrix[:, left] * 10.0 ** d
        with np.errstate(invalid="ignore"):
            close = np.abs(scaled - np.rint(scaled)) <= 1e-6 * np.maximum(1.0, np.abs(scaled))
        whole = (close | np.isnan(scaled)).all(axis=0)
        digits[np.flatnonzero(left)[whole]] = d
        left[np.flatnonzero(left)[whole]] = False
        if not left.any():
            break
    return [int(d) for d in digits]


# Terms summed per group-by: child rows x terms floats stay near 160 MB for a child of a
# million rows (20 terms), however many columns the child has.
_SUM_CELLS = 20_000_000


def _term_sums(keys: pd.Series, child: pd.DataFrame, fk: str, terms: list[list[str]],
               columns: dict[str, np.ndarray]) -> np.ndarray:
    """Parent rows x terms: each parent row's sum of each term over the children that
    reference its key, as :meth:`ParentSum.sums` computes it for one term (a NULL term or
    foreign key is left out; a parent without children sums to 0). ``columns``: the child's
    number columns as :func:`numbers` gives them."""
    links = child[fk]
    linked = links.notna().to_numpy()
    out = np.empty((len(keys), len(terms)))
    step = max(1, _SUM_CELLS // max(1, len(child)))
    for start in range(0, len(terms), step):
        block = terms[start:start + step]
        values = np.column_stack([np.prod([columns[c] for c in t], axis=0) for t in block])
        by_key = pd.DataFrame(values[linked]).groupby(links.to_numpy()[linked]).sum()
        out[:, start:start + len(block)] = by_key.reindex(keys.to_numpy()).fillna(0.0) \
            .to_numpy(dtype=float)
    return out


