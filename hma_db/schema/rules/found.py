"""Rules found in the data: inequalities between two columns of one table that hold in every
real row, and the proposals ``reflect`` makes from a sample of each table.

A pair qualifies when both columns are numbers, or both dates/timestamps, neither is a key nor
masked by a policy, both are set in at least :data:`MIN_ROWS` rows, their ranges overlap (so the
rule is not trivially true, such as an amount always below a year) and the high column is at
least the low one wherever both are set (NULLs are allowed where the source has them). The rule
is strict when no row ties. Columns always equal are not a rule.

:func:`find_inequalities` runs at fit on every row read; :func:`propose_rules` runs the same
finders (and :func:`~hma_db.schema.rules.sums.find_formulas`) on the few rows ``reflect``
samples, so a user sees the likely rules before any fit. A proposal is only that: the fit keeps
a rule only if every row it reads holds it. Sums over child rows and agreement along two key
paths need whole families, not a sample of each table, and are found at fit only.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from hma_db.schema.constraints import Inequality, as_numbers
from hma_db.schema.pii import DATE_PII
from hma_db.schema.policies import table_policy
from hma_db.schema.rules.sums import find_formulas

logger = logging.getLogger(__name__)

# Below 30 rows where both columns are set, an order seen in every row is too often chance
# (two independent columns agree on 9 rows with probability 2 / 2**9 = 0.4%, on 30 rows 2e-9).
MIN_ROWS = 30
# A birth date comes before every other date of a person's row (hired, ordered, joined) by
# what it means, not by chance: that order is kept from this many rows (Northwind's 9
# employees), and even when the two ranges do not overlap, since a birth date is made by
# Faker, not drawn inside its real range.
MIN_BIRTH_ROWS = 5


def _kind(meta: dict) -> str | None:
    if meta.get("policy"):
        return None  # masked columns are not modeled as they are
    sdtype = meta.get("sdtype")
    if sdtype == "numerical":
        return "number"
    if sdtype == "datetime" or sdtype in DATE_PII:
        return "date"
    return None


def _candidates(metadata, table: str, frame: pd.DataFrame, skip: set[str]) -> dict[str, list[str]]:
    keys = set(metadata.primary_key(table)) | set(metadata.foreign_key_columns(table))
    groups: dict[str, list[str]] = {}
    for column, meta in metadata.tables[table]["columns"].items():
        kind = _kind(meta)
        if kind and column not in keys and column not in skip and column in frame.columns:
            groups.setdefault(kind, []).append(column)
    return groups


def _births(metadata, table: str, columns: list[str]) -> np.ndarray:
    """Per column: is it a birth date (see :data:`MIN_BIRTH_ROWS`)."""
    meta = metadata.tables[table]["columns"]
    return np.array([meta[c].get("sdtype") in DATE_PII for c in columns])


def find_inequalities(metadata, table: str, frame: pd.DataFrame,
                      skip: set[str] = frozenset()) -> list[Inequality]:
    """The inequalities that hold in every row of ``frame`` (see the module docstring)."""
    found = []
    for columns in _candidates(metadata, table, frame, skip).values():
        if len(columns) < 2:
            continue
        try:
            values = np.column_stack([as_numbers(frame[c]) for c in columns])
        except (TypeError, ValueError):
            continue
        found += _ordered_pairs(table, columns, values, _births(metadata, table, columns))
    for rule in found:
        logger.info("table %s: found %s %s %s in every row", table, rule.high_column_name,
                    ">" if rule.strict_boundaries else ">=", rule.low_column_name)
    return found


def _ordered_pairs(table: str, columns: list[str], values: np.ndarray, births: np.ndarray
                   ) -> list[Inequality]:
    if len(values) < MIN_BIRTH_ROWS:  # an empty table (or a handful of rows) holds no rule
        return []
    # Columns as rows: every reduction below runs along contiguous memory (reducing a million
    # rows of two columns along axis 0 took 280 ms of a 1M-row child's 330).
    by_column = np.ascontiguousarray(values.T)
    present = ~np.isnan(by_column)
    low_min = np.where(present, by_column, np.inf).min(axis=1)
    high_max = np.where(present, by_column, -np.inf).max(axis=1)
    n = len(columns)
    first, second = _screened_pairs(by_column, present)
    le, lt, ge, both = _orders(by_column, present, first, second)
    overlap = np.maximum(low_min[first], low_min[second]) <= \
        np.minimum(high_max[first], high_max[second])
    birth = births[first] & ~births[second]  # a birth date below another date
    enough = both >= np.where(birth, MIN_BIRTH_ROWS, MIN_ROWS)
    holds, strict = np.zeros((n, n), dtype=bool), np.zeros((n, n), dtype=bool)
    holds[first, second] = le & ~ge & (overlap | birth) & enough
    strict[first, second] = lt
    holds &= ~_implied(holds, strict, present.all(axis=1))
    found = []
    for i, j in zip(*np.nonzero(holds), strict=True):
        rule = Inequality(columns[i], columns[j], strict_boundaries=bool(strict[i, j]),
                          table_name=table)
        rule.origin = "data"
        found.append(rule)
    return found


SCREEN_ROWS = 64  # rows every pair is tried on at once; most pairs break an order there
_CELLS = 1 << 20  # pair x row cells per step of the pairs that remain


def _screened_pairs(by_column: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (i, j), i != j, whose column i is at most column j in the first
    :data:`SCREEN_ROWS` rows where both are set: the only ones that can hold in every row.
    parent16's 16 columns: 240 pairs, 29 left."""
    values, set_ = by_column[:, :SCREEN_ROWS], present[:, :SCREEN_ROWS]
    both = set_[:, None, :] & set_[None, :, :]
    with np.errstate(invalid="ignore"):
        le = ((values[:, None, :] <= values[None, :, :]) | ~both).all(axis=2)
    np.fill_diagonal(le, False)
    return np.nonzero(le)


def _orders(by_column: np.ndarray, present: np.ndarray, first: np.ndarray, second: np.ndarray
            ) -> tuple[np.ndarray, ...]:
    """Per pair (first[k], second[k]), over the rows where both are set: is the first at most
    the second in every row (le), below it in every row (lt), at least it in every row (ge),
    and in how many rows are both set."""
    pairs, rows = len(first), by_column.shape[1]
    le, lt, ge = (np.ones(pairs, dtype=bool) for _ in range(3))
    both = np.zeros(pairs, dtype=np.int64)
    step = max(1, _CELLS // max(pairs, 1))
    for start in range(0, rows if pairs else 0, step):
        a, b = by_column[first, start:start + step], by_column[second, start:start + step]
        unset = ~(present[first, start:start + step] & present[second, start:start + step])
        with np.errstate(invalid="ignore"):
            le &= ((a <= b) | unset).all(axis=1)
            lt &= ((a < b) | unset).all(axis=1)
            ge &= ((a >= b) | unset).all(axis=1)
        both += unset.shape[1] - unset.sum(axis=1)
    return le, lt, ge, both


def _implied(holds: np.ndarray, strict: np.ndarray, full: np.ndarray) -> np.ndarray:
    """The pairs a <= c that follow from a <= b and b <= c through a column b set in every row
    (as strict when either step is): kept, they add one modeled gap each for nothing. Fifty
    proportional columns (a wide table of prices) are 1,225 ordered pairs and a chain of 49."""
    implied = np.zeros_like(holds)
    for b in np.flatnonzero(full & holds.any(axis=0) & holds.any(axis=1)):  # n x n per column b
        steps = np.outer(holds[:, b], holds[b, :])
        implied |= steps & ((strict[:, [b]] | strict[[b], :]) | ~strict)
    return implied


def propose_rules(metadata, samples: dict[str, pd.DataFrame]) -> list:
    """The inequalities and row formulas that hold in every sampled row of each modeled table
    (``samples``: table -> a sample of its number and date columns), marked ``origin =
    "sample"``."""
    modeled = {t for t in samples if t in metadata.tables
               and table_policy(metadata.tables, t) == "model"}
    found: list = []
    for table in sorted(modeled):
        found += find_inequalities(metadata, table, samples[table])
    found += find_formulas(metadata, samples, modeled)
    for rule in found:
        rule.origin = "sample"
    return found
