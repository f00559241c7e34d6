"""Business rules as data: SDV's constraint classes, their validity checks and their JSON form.

The predefined classes carry SDV's names and parameters, each with the ``table_name`` it
applies to; how the synthesizer keeps them by construction is :mod:`hma_db.synthesizer.constraints`.
A constraint is stored as ``{"constraint_class": name, "table_name": ..., "constraint_parameters":
{...}}``; :func:`constraint_from_dict` restores only the predefined class names, so a model file
or a JSON list can never name a class to build. Programmable constraints
(:class:`SingleTableProgrammableConstraint`, :class:`ProgrammableConstraint`) are user code: they
cannot be stored as data.

Example:
    >>> from hma_db import HMASynthesizer, Inequality
    >>> synthesizer.add_constraints([Inequality("order_date", "shipped_date", table_name="orders")])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hma_db.errors import SynthesizerInputError
from hma_db.schema.values import from_json, to_json


class SingleTableProgrammableConstraint:
    """SDV's interface for a rule written in code, on one table's DataFrame.

    Subclass it and override what the rule needs: ``fit(data, metadata)`` learns from the real
    table, ``get_updated_metadata(metadata)`` describes the columns ``transform(data)`` gives the
    model, ``reverse_transform(data)`` turns sampled columns back, ``is_valid(data)`` says per
    row whether the rule holds. When sampling in chunks each call gets whole rows of one chunk.
    """

    table_name: str | None = None

    def fit(self, data: pd.DataFrame, metadata: Any) -> None:
        """Learn what the rule needs from the real table (nothing by default)."""

    def get_updated_metadata(self, metadata: Any) -> Any:
        """The metadata of the columns ``transform`` gives (unchanged by default)."""
        return metadata

    def transform(self, data: pd.DataFrame) -> pd.DataFrame:
        """The real table as the model should see it (unchanged by default)."""
        return data

    def reverse_transform(self, data: pd.DataFrame) -> pd.DataFrame:
        """Sampled rows back in the table's own columns (unchanged by default)."""
        return data

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        """One boolean per row: does the rule hold (True for every row by default)."""
        return pd.Series(True, index=data.index)


class ProgrammableConstraint(SingleTableProgrammableConstraint):
    """SDV's multi-table programmable constraint: the same methods on ``{table: DataFrame}``.

    ``is_valid`` returns ``{table: boolean Series}``; ``transform`` may change values and
    sdtypes, not table or column names. When sampling in chunks ``reverse_transform`` gets one
    chunk at a time: the rows of each table sampled in every chunk come with all their
    children (whole families, never cut in the middle), while a small table sampled once in
    the first chunk (at most ``chunk_rows`` rows, and its parents too) is not repeated in later
    chunks that reference it: a rule summing children into such a parent needs ``sample()``
    or a ``chunk_rows`` below that parent's size.
    """

    def is_valid(self, data: dict[str, pd.DataFrame]) -> dict[str, pd.Series]:  # type: ignore[override]
        return {t: pd.Series(True, index=f.index) for t, f in data.items()}


class Constraint:
    """A predefined rule on the columns of one table (the base of SDV's predefined classes)."""

    PARAMETERS: tuple[str, ...] = ()

    def __init__(self, table_name: str | None = None):
        self.table_name = table_name
        # 'declared' (given to add_constraints), 'data' (found in every real row) or 'check'
        # (a CHECK constraint of the source database).
        self.origin = "declared"

    @property
    def found(self) -> bool:
        """True for a rule the synthesizer found (in the data or the database's CHECKs)."""
        return self.origin != "declared"

    def columns(self) -> list[str]:
        """The columns the rule reads."""
        raise NotImplementedError

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        """One boolean per row: does the rule hold (rows with a NULL in a compared column do)."""
        raise NotImplementedError

    def describe(self) -> str:
        """The rule in one short line (``shipped_date >= order_date``)."""
        return f"{type(self).__name__.lower()} of {', '.join(self.columns())}"

    def to_dict(self) -> dict[str, Any]:
        """``{"constraint_class", "table_name", "constraint_parameters"}``, plain JSON data."""
        params = {name: _plain(getattr(self, name)) for name in self.PARAMETERS}
        out = {"constraint_class": type(self).__name__, "table_name": self.table_name,
               "constraint_parameters": params}
        return {**out, "origin": self.origin} if self.found else out

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=str))

    def __repr__(self) -> str:
        args = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.PARAMETERS)
        return f"{type(self).__name__}({args}, table_name={self.table_name!r})"


def _plain(value: Any) -> Any:
    return [to_json(v) for v in value] if isinstance(value, list) else to_json(value)


def _names(value: Any, what: str, least: int) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or len(value) < least \
            or not all(isinstance(v, str) for v in value):
        raise SynthesizerInputError(f"{what} must be a list of at least {least} column names; "
                                    f"found {value!r}.")
    if len(set(value)) != len(value):
        raise SynthesizerInputError(f"{what} names a column twice: {value!r}.")
    return list(value)


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise SynthesizerInputError(f"{what} must be a column name; found {value!r}.")
    return value


def as_numbers(values: pd.Series) -> np.ndarray:
    """Numbers, dates and timestamps as comparable floats (NaN for NULL)."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iuf":
        # Plain numpy numbers hold no NULL but NaN: a copy as floats is all the general path
        # below does for them, in 3 us instead of 70 (a rule found in the data converts its
        # columns a few times per fit).
        return values.to_numpy(dtype=float, copy=True)
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in (
            "decimal", "integer", "floating", "mixed-integer-float"):
        # NUMERIC/DECIMAL columns read as Decimal objects (one C-level type scan to tell)
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    stamps = pd.to_datetime(values, errors="coerce", utc=True)
    numbers = stamps.astype("int64").to_numpy(dtype=float)
    return np.where(stamps.isna().to_numpy(), np.nan, numbers)


def with_columns(frame: pd.DataFrame, columns: dict[str, Any]) -> pd.DataFrame:
    """``frame`` with ``columns`` replaced, the others shared, not copied: a rule that sets one
    column of a sampled chunk copied all of them with ``DataFrame.assign`` (TPC-H's 16-column
    lines: 0.87 s of an 18 s run for two rules). ``frame`` itself is left as it was."""
    out = frame.copy(deep=False)
    for name, values in columns.items():
        out[name] = values
    return out


def at_least(low: pd.Series, high: pd.Series, strict: bool) -> np.ndarray:
    """Per row: ``high >= low`` (``>`` when strict), True where either is NULL."""
    lo, hi = as_numbers(low), as_numbers(high)
    with np.errstate(invalid="ignore"):
        holds = hi > lo if strict else hi >= lo
    return holds | np.isnan(lo) | np.isnan(hi)


class Inequality(Constraint):
    """``high_column_name`` is at least ``low_column_name`` (greater when ``strict_boundaries``)
    in every row where both are set: numbers, dates or timestamps.

    Example:
        >>> Inequality("order_date", "shipped_date", table_name="orders")
    """

    PARAMETERS = ("low_column_name", "high_column_name", "strict_boundaries")

    def __init__(self, low_column_name: str, high_column_name: str,
                 strict_boundaries: bool = False, table_name: str | None = None):
        super().__init__(table_name)
        self.low_column_name = _name(low_column_name, "low_column_name")
        self.high_column_name = _name(high_column_name, "high_column_name")
        if self.low_column_name == self.high_column_name:
            raise SynthesizerInputError(
                f"Inequality compares '{low_column_name}' with itself; name two columns.")
        self.strict_boundaries = bool(strict_boundaries)

    def columns(self) -> list[str]:
        return [self.low_column_name, self.high_column_name]

    def describe(self) -> str:
        op = ">" if self.strict_boundaries else ">="
        return f"{self.high_column_name} {op} {self.low_column_name}"

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        return pd.Series(at_least(data[self.low_column_name], data[self.high_column_name],
                                  self.strict_boundaries), index=data.index)


class Range(Constraint):
    """``low <= middle <= high`` (``<`` when ``strict_boundaries``) where the values are set.

    Example:
        >>> Range("birth_date", "hire_date", "end_date", table_name="employees")
    """

    PARAMETERS = ("low_column_name", "middle_column_name", "high_column_name",
                  "strict_boundaries")

    def __init__(self, low_column_name: str, middle_column_name: str, high_column_name: str,
                 strict_boundaries: bool = False, table_name: str | None = None):
        super().__init__(table_name)
        self.low_column_name = _name(low_column_name, "low_column_name")
        self.middle_column_name = _name(middle_column_name, "middle_column_name")
        self.high_column_name = _name(high_column_name, "high_column_name")
        _names(self.columns(), "Range's columns", 3)
        self.strict_boundaries = bool(strict_boundaries)

    def columns(self) -> list[str]:
        return [self.low_column_name, self.middle_column_name, self.high_column_name]

    def describe(self) -> str:
        return f" {'<' if self.strict_boundaries else '<='} ".join(self.columns())

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        low, mid, high = (data[c] for c in self.columns())
        strict = self.strict_boundaries
        return pd.Series(at_least(low, mid, strict) & at_least(mid, high, strict)
                         & at_least(low, high, strict), index=data.index)


class FixedCombinations(Constraint):
    """Only the combinations of ``column_names`` seen in the real table appear.

    Example:
        >>> FixedCombinations(["city", "country"], table_name="customers")
    """

    PARAMETERS = ("column_names",)

    def __init__(self, column_names: list[str], table_name: str | None = None):
        super().__init__(table_name)
        self.column_names = _names(column_names, "FixedCombinations.column_names", 2)
        self.combinations: pd.DataFrame | None = None  # learned at fit

    def columns(self) -> list[str]:
        return list(self.column_names)

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        if self.combinations is None:  # before fit every combination is as good as another
            return pd.Series(True, index=data.index)
        seen = self.combinations.assign(_seen=True)
        merged = data[self.column_names].merge(seen, how="left", on=self.column_names)
        return pd.Series(merged["_seen"].fillna(False).astype(bool).to_numpy(), index=data.index)


class OneHotEncoding(Constraint):
    """Exactly one of ``column_names`` is 1 (or True) in every row, the others 0.

    Example:
        >>> OneHotEncoding(["is_card", "is_cash", "is_transfer"], table_name="payments")
    """

    PARAMETERS = ("column_names",)

    def __init__(self, column_names: list[str], table_name: str | None = None):
        super().__init__(table_name)
        self.column_names = _names(column_names, "OneHotEncoding.column_names", 2)

    def columns(self) -> list[str]:
        return list(self.column_names)

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        values = data[self.column_names].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        ones, zeros = values == 1, values == 0
        return pd.Series((ones.sum(axis=1) == 1) & ((ones | zeros).all(axis=1)), index=data.index)


class FixedIncrements(Constraint):
    """``column_name`` is a whole multiple of ``increment_value`` where it is set.

    Example:
        >>> FixedIncrements("salary", increment_value=500, table_name="employees")
    """

    PARAMETERS = ("column_name", "increment_value")

    def __init__(self, column_name: str, increment_value: float, table_name: str | None = None):
        super().__init__(table_name)
        self.column_name = _name(column_name, "column_name")
        if isinstance(increment_value, bool) or not isinstance(increment_value, (int, float)) \
                or not increment_value > 0:
            raise SynthesizerInputError(
                f"FixedIncrements.increment_value must be a number above 0; found "
                f"{increment_value!r}.")
        self.increment_value = increment_value

    def columns(self) -> list[str]:
        return [self.column_name]

    def describe(self) -> str:
        return f"{self.column_name} in steps of {self.increment_value}"

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        values = as_numbers(data[self.column_name]) / self.increment_value
        # A relative tolerance of 1e-9: decimals read as floats (0.1 * 3) are not exact.
        whole = np.abs(values - np.rint(values)) <= 1e-9 * np.maximum(1.0, np.abs(values))
        return pd.Series(whole | np.isnan(values), index=data.index)


CONSTRAINT_CLASSES: dict[str, type[Constraint]] = {
    c.__name__: c for c in (Inequality, Range, FixedCombinations, OneHotEncoding, FixedIncrements)}


def _stored_classes() -> dict[str, type[Constraint]]:
    """The classes a stored rule may name: the predefined ones, and the schema stage's rules on
    one column (:mod:`hma_db.schema.rules`); never a subclass defined outside the schema stage."""
    found, todo = dict(CONSTRAINT_CLASSES), list(Constraint.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith("hma_db.schema."):
            found.setdefault(cls.__name__, cls)
    return found


def constraint_from_dict(d: Any) -> Constraint:
    """A predefined constraint from its :meth:`Constraint.to_dict` form; any other class name
    is refused (the data names a class, it never builds one)."""
    if not isinstance(d, dict) or not isinstance(d.get("constraint_parameters", {}), dict):
        raise SynthesizerInputError(
            f"A constraint must be a dict with 'constraint_class', 'table_name' and "
            f"'constraint_parameters'; found {d!r}.")
    name, stored = d.get("constraint_class"), _stored_classes()
    cls = stored.get(name) if isinstance(name, str) else None
    if cls is None:
        raise SynthesizerInputError(
            f"Unknown constraint class {name!r}; only {', '.join(stored)} can be "
            "stored as data (a programmable constraint is code: add it with add_constraints).")
    params = {k: from_json(v) for k, v in d.get("constraint_parameters", {}).items()}
    unknown = sorted(set(params) - set(cls.PARAMETERS))
    if unknown:
        raise SynthesizerInputError(
            f"{name} has no parameter(s) {', '.join(unknown)}; it takes {', '.join(cls.PARAMETERS)}.")
    try:
        constraint = cls(**params, table_name=d.get("table_name"))
    except TypeError as exc:
        raise SynthesizerInputError(f"{name}: {exc}") from exc
    origin = d.get("origin", "declared")
    constraint.origin = origin if origin in ("declared", "data", "check") else "declared"
    return constraint


def load_constraints(source: str | Path | list) -> list[Constraint]:
    """Predefined constraints from a JSON file (or an already parsed list) of their dicts.

    Example:
        >>> synthesizer.add_constraints(load_constraints("constraints.json"))
    """
    if isinstance(source, (str, Path)):
        try:
            source = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SynthesizerInputError(f"Cannot read constraints from '{source}': {exc}") from exc
    if isinstance(source, dict):
        source = source.get("constraints", [source])
    if not isinstance(source, list):
        raise SynthesizerInputError(f"Constraints JSON must be a list of constraint dicts; "
                                    f"found {type(source).__name__}.")
    return [constraint_from_dict(d) for d in source]
