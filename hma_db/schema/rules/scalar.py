"""Constraints that bound one column: a comparison with a value, a range, a list of values.

They are what a CHECK on one column says (``price >= 0``, ``qty BETWEEN 1 AND 100``, ``status
IN ('new', 'paid')``); ``ScalarInequality`` and ``ScalarRange`` carry SDV's names and parameters.
The model keeps them by construction where it can (numbers and dates are sampled within their
real range, categories among the real ones, and the real rows keep the rule); the sampler redraws
any row that still breaks one. Like a CHECK, a NULL passes.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import pandas as pd

from hma_db.errors import SynthesizerInputError
from hma_db.schema.constraints import Constraint, as_numbers

RELATIONS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _column(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise SynthesizerInputError(f"column_name must be a column name; found {value!r}.")
    return value


def _compare(values: pd.Series, op: str, bound: Any) -> np.ndarray:
    """``values op bound`` per row, True where the value is NULL; numbers, dates and text."""
    present = values.notna().to_numpy()
    numeric = isinstance(bound, (int, float, np.number)) and not isinstance(bound, bool)
    if numeric or pd.api.types.is_datetime64_any_dtype(values.dtype):
        left = as_numbers(values)
        right = float(bound) if numeric else as_numbers(pd.Series([bound]))[0]
    else:
        left = values.astype(object).to_numpy()
        right = str(bound) if isinstance(bound, str) else bound
        left = np.where(present, left, right)  # NULLs compare to anything; masked below
    with np.errstate(invalid="ignore"):
        holds = np.asarray(RELATIONS[op](left, right), dtype=bool)
    return holds | ~present


class ScalarInequality(Constraint):
    """``column_name relation value`` where the column is set (``relation``: >, >=, <, <=).

    Example:
        >>> ScalarInequality("unit_price", ">=", 0, table_name="order_details")
    """

    PARAMETERS = ("column_name", "relation", "value")

    def __init__(self, column_name: str, relation: str, value: Any, table_name: str | None = None):
        super().__init__(table_name)
        self.column_name = _column(column_name)
        if relation not in RELATIONS:
            raise SynthesizerInputError(
                f"ScalarInequality.relation must be one of {', '.join(RELATIONS)}; "
                f"found {relation!r}.")
        self.relation, self.value = relation, value

    def columns(self) -> list[str]:
        return [self.column_name]

    def describe(self) -> str:
        return f"{self.column_name} {self.relation} {self.value!r}"

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        return pd.Series(_compare(data[self.column_name], self.relation, self.value),
                         index=data.index)


class ScalarRange(Constraint):
    """``low_value <= column_name <= high_value`` (``<`` when ``strict_boundaries``).

    Example:
        >>> ScalarRange("discount", 0, 1, table_name="order_details")
    """

    PARAMETERS = ("column_name", "low_value", "high_value", "strict_boundaries")

    def __init__(self, column_name: str, low_value: Any, high_value: Any,
                 strict_boundaries: bool = False, table_name: str | None = None):
        super().__init__(table_name)
        self.column_name = _column(column_name)
        self.low_value, self.high_value = low_value, high_value
        self.strict_boundaries = bool(strict_boundaries)

    def columns(self) -> list[str]:
        return [self.column_name]

    def describe(self) -> str:
        op = "<" if self.strict_boundaries else "<="
        return f"{self.low_value!r} {op} {self.column_name} {op} {self.high_value!r}"

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        values = data[self.column_name]
        low, high = (">", "<") if self.strict_boundaries else (">=", "<=")
        holds = _compare(values, low, self.low_value) & _compare(values, high, self.high_value)
        return pd.Series(holds, index=data.index)


class AllowedValues(Constraint):
    """``column_name`` is one of ``values`` where it is set (a CHECK's ``IN`` list).

    Example:
        >>> AllowedValues("status", ["new", "paid"], table_name="orders")
    """

    PARAMETERS = ("column_name", "values")

    def __init__(self, column_name: str, values: list, table_name: str | None = None):
        super().__init__(table_name)
        self.column_name = _column(column_name)
        if isinstance(values, str) or not isinstance(values, (list, tuple)) or not values:
            raise SynthesizerInputError(
                f"AllowedValues.values must be a list of values; found {values!r}.")
        self.values = list(values)

    def columns(self) -> list[str]:
        return [self.column_name]

    def describe(self) -> str:
        return f"{self.column_name} in ({', '.join(repr(v) for v in self.values)})"

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        values = data[self.column_name]
        allowed = set(self.values) | {str(v) for v in self.values}
        numbers = [v for v in self.values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        holds = values.isin(allowed).to_numpy() | values.isna().to_numpy()
        if numbers and pd.api.types.is_numeric_dtype(values.dtype):
            holds |= np.isin(as_numbers(values), np.asarray(numbers, dtype=float))
        return pd.Series(holds, index=data.index)
