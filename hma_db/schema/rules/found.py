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
    present = ~np.isnan(values)
    low_min = np.nanmin(np.where(present, values, np.inf), axis=0)
    high_max = np.nanmax(np.where(present, values, -np.inf), axis=0)
    n = len(columns)
    holds, strict = np.zeros((n, n), dtype=bool), np.zeros((n, n), dtype=bool)
    for i in range(n):  # one pass per column, vectorized over rows and columns
        both = present[:, [i]] & present
        with np.errstate(invalid="ignore"):
            le = np.where(both, values[:, [i]] <= values, True).all(axis=0)
            lt = np.where(both, values[:, [i]] < values, True).all(axis=0)
            ge = np.where(both, values[:, [i]] >= values, True).all(axis=0)
        overlap = np.maximum(low_min[i], low_min) <= np.minimum(high_max[i], high_max)
        birth = births[i] & ~births  # a birth date below another date
        enough = both.sum(axis=0) >= np.where(birth, MIN_BIRTH_ROWS, MIN_ROWS)
        holds[i] = le & ~ge & (overlap | birth) & enough
        strict[i] = lt
    np.fill_diagonal(holds, False)
    holds &= ~_implied(holds, strict, present.all(axis=0))
    found = []
    for i, j in zip(*np.nonzero(holds), strict=True):
        rule = Inequality(columns[i], columns[j], strict_boundaries=bool(strict[i, j]),
                          table_name=table)
        rule.origin = "data"
        found.append(rule)
    return found


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
