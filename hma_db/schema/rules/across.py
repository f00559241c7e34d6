"""Rules that span two tables, found in the data: a child that reaches one ancestor along two
foreign-key paths naming the same ancestor row along both, and a child's date never before its
parent's (:class:`ParentOrder`: TPC-H's lines ship after their order is placed; 5.4% of the
synthetic lines of SF1 shipped before it).

``payment.customer_id = payment.rental_id -> rental.customer_id``: the direct foreign key and
the path through another parent agree. The model keeps it by linking each sampled child along
both paths at once (:mod:`hma_db.model.agree`); this class states it, checks it on tables and
stores it with the model. Rows where either path is NULL pass.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from hma_db.schema.constraints import Constraint, with_columns
from hma_db.schema.keys import key_columns

MIN_ROWS = 30  # rows where both paths are set, as for the other rules found in the data


class PathAgreement(Constraint):
    """``table.column_name`` equals ``via_table_name.via_parent_column_name`` of the row that
    ``table.via_column_name`` references (by ``via_table_name.via_key_name``).

    Example:
        >>> PathAgreement("customer_id", "rental_id", "rental", "rental_id", "customer_id",
        ...               table_name="payment")
    """

    PARAMETERS = ("column_name", "via_column_name", "via_table_name", "via_key_name",
                  "via_parent_column_name")
    across_tables = True  # is_valid_tables reads every table

    def __init__(self, column_name: str, via_column_name: str, via_table_name: str,
                 via_key_name: str, via_parent_column_name: str, table_name: str | None = None):
        super().__init__(table_name)
        self.column_name, self.via_column_name = column_name, via_column_name
        self.via_table_name, self.via_key_name = via_table_name, via_key_name
        self.via_parent_column_name = via_parent_column_name

    def columns(self) -> list[str]:
        return [self.column_name, self.via_column_name]

    def tables_read(self) -> list[str]:
        return [self.table_name, self.via_table_name]

    def describe(self) -> str:
        return (f"{self.table_name}.{self.column_name} = {self.table_name}.{self.via_column_name}"
                f" -> {self.via_table_name}.{self.via_parent_column_name}")

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        """One table alone cannot break it (see :meth:`is_valid_tables`)."""
        return pd.Series(True, index=data.index)

    def is_valid_tables(self, data: dict[str, pd.DataFrame]) -> pd.Series:
        """Per row of the child table: do both paths name the same ancestor?"""
        child, middle = data[self.table_name], data[self.via_table_name]
        ancestor = middle.drop_duplicates(self.via_key_name).set_index(self.via_key_name)[
            self.via_parent_column_name]
        through = child[self.via_column_name].map(ancestor)
        direct = child[self.column_name]
        holds = (direct == through) | direct.isna() | through.isna()
        return pd.Series(holds.to_numpy(dtype=bool), index=child.index)


def find_paths(metadata, data: dict[str, pd.DataFrame]) -> list[PathAgreement]:
    """The path agreements that hold in every row of ``data``, from the key values (the model
    finds the same from its links, :mod:`hma_db.model.agree`; this is for reports)."""
    single = [r for r in metadata.relationships if len(key_columns(r["child_foreign_key"])) == 1
              and r["parent_table_name"] != r["child_table_name"]]
    found = []
    for d in single:
        child, ancestor = d["child_table_name"], d["parent_table_name"]
        for v in single:
            middle = v["parent_table_name"]
            if v is d or v["child_table_name"] != child or middle in (ancestor, child):
                continue
            for u in single:
                if u["child_table_name"] != middle or u["parent_table_name"] != ancestor:
                    continue
                rule = PathAgreement(
                    key_columns(d["child_foreign_key"])[0], key_columns(v["child_foreign_key"])[0],
                    middle, key_columns(v["parent_primary_key"])[0],
                    key_columns(u["child_foreign_key"])[0], table_name=child)
                if {child, middle} <= set(data) and _holds(rule, data):
                    rule.origin = "data"
                    found.append(rule)
                    break
    return found


def _holds(rule: PathAgreement, data: dict[str, pd.DataFrame]) -> bool:
    child, middle = data[rule.table_name], data[rule.via_table_name]
    through = child[rule.via_column_name].map(
        middle.drop_duplicates(rule.via_key_name).set_index(rule.via_key_name)[
            rule.via_parent_column_name])
    both = child[rule.column_name].notna() & through.notna()
    direct = child.loc[both, rule.column_name]
    return int(both.sum()) >= MIN_ROWS and direct.nunique() > 1 \
        and bool((direct == through[both]).all())


# Quantiles kept of the real gaps between a child's date and its parent's: a 1% rank step.
ORDER_QUANTILES = 101
_DAY = 86_400.0


class ParentOrder(Constraint):
    """``table.column_name`` is never before ``parent_table_name.parent_column_name`` of the row
    that ``table.foreign_key`` references (never on it either when ``strict_boundaries``): a
    line ships after its order is placed, a payment comes after its rental.

    ``gaps`` are quantiles of the real gaps in seconds; ``followers`` are the child's dates
    that are never before ``column_name`` in the real rows (a line's receipt date after its
    ship date): they move with it. When ``bounded``, a child dated further after its parent
    than any real row is redrawn at sampling too (TPC-H: lines committed 30 to 90 days after
    their order came out 1 to 2,123 days after it), though only the order is a rule the rows
    must keep; so is one dated closer to its parent than any real row (TPC-H: commits 30 to
    90 days after the order came out 1 day after it). A date that follows another of its row
    (a receipt after its shipping) is not bounded: moving it alone could put it before the
    one it follows.

    Example:
        >>> ParentOrder("l_shipdate", "l_orderkey", "orders", "o_orderkey", "o_orderdate",
        ...             True, [86400.0, 5e6], ["l_receiptdate"], table_name="lineitem")
    """

    PARAMETERS = ("column_name", "foreign_key", "parent_table_name", "parent_key",
                  "parent_column_name", "strict_boundaries", "gaps", "followers", "bounded",
                  "latest")
    across_tables = True

    def __init__(self, column_name: str, foreign_key: str, parent_table_name: str,
                 parent_key: str, parent_column_name: str, strict_boundaries: bool = False,
                 gaps: list[float] | None = None, followers: list[str] | None = None,
                 bounded: bool = False, latest: float | None = None,
                 table_name: str | None = None):
        super().__init__(table_name)
        self.column_name, self.foreign_key = column_name, foreign_key
        # The column's last real date (seconds): a redrawn date never goes past it.
        self.latest = None if latest is None else float(latest)
        self.parent_table_name, self.parent_key = parent_table_name, parent_key
        self.parent_column_name, self.strict_boundaries = parent_column_name, bool(strict_boundaries)
        self.gaps = [float(g) for g in (gaps or [])]
        self.followers = [str(f) for f in (followers or [])]
        self.bounded = bool(bounded)
        if self.gaps and (len(self.gaps) > ORDER_QUANTILES or min(self.gaps) < 0):
            raise ValueError("gaps must be at most 101 quantiles of gaps of 0 or more seconds")

    def columns(self) -> list[str]:
        return [self.column_name, *self.followers]

    def tables_read(self) -> list[str]:
        return [self.table_name, self.parent_table_name]

    def describe(self) -> str:
        sign = ">" if self.strict_boundaries else ">="
        return (f"{self.table_name}.{self.column_name} {sign} "
                f"{self.parent_table_name}.{self.parent_column_name}")

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        """One table alone cannot break it (see :meth:`is_valid_tables`)."""
        return pd.Series(True, index=data.index)

    def _pair(self, data: dict[str, pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
        """The child's dates and its parent's, as seconds (NaN: NULL or no parent)."""
        child, parent = data[self.table_name], data[self.parent_table_name]
        position = pd.Index(parent[self.parent_key]).get_indexer(child[self.foreign_key])
        own, theirs = _seconds(child[self.column_name]), np.full(len(child), np.nan)
        found = position >= 0  # a chunk's parent table may hold none of these parents
        theirs[found] = _seconds(parent[self.parent_column_name])[position[found]]
        return own, theirs

    def is_valid_tables(self, data: dict[str, pd.DataFrame]) -> pd.Series:
        """Per child row: is its date after its parent's (NULL passes)?"""
        own, theirs = self._pair(data)
        with np.errstate(invalid="ignore"):
            holds = own > theirs if self.strict_boundaries else own >= theirs
        holds |= np.isnan(own) | np.isnan(theirs)
        return pd.Series(holds, index=data[self.table_name].index)

    def reverse_transform(self, data: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """A child row dated before its parent, or (``bounded``) further after it than the
        largest real gap or closer than the smallest (TPC-H commits 30 to 90 days after the
        order came 1 day after it), gets the parent's date plus a gap drawn from the real gaps (a
        redraw of those rows only, never the parent's date itself); its followers move by as
        much. The draw's uniform number comes from the row's own date (its day times the
        golden ratio, modulo 1), so a chunk gives the same rows again."""
        child = data.get(self.table_name)
        if child is None or not len(child) or self.parent_table_name not in data or \
                not self.gaps:
            return data
        own, theirs = self._pair(data)
        with np.errstate(invalid="ignore"):
            broken = (own <= theirs) if self.strict_boundaries else (own < theirs)
            if self.bounded:  # a day more or less: dates round to one
                broken |= (own - theirs > max(self.gaps) + _DAY) | (
                    own - theirs < min(self.gaps) - _DAY)
        if not broken.any():
            return data
        u = np.mod(np.floor(own[broken] / _DAY) * 0.6180339887498949, 1.0)
        gap = np.interp(u, np.linspace(0, 1, len(self.gaps)), self.gaps)
        if self.strict_boundaries:
            gap = np.maximum(gap, min(g for g in self.gaps if g > 0) if max(self.gaps) > 0
                             else 1.0)
        new = theirs[broken] + gap
        if self.latest is not None:  # never after the last real date (a leave in 2036)
            new = np.minimum(new, np.maximum(self.latest, theirs[broken] + min(self.gaps)))
        shift = np.zeros(len(child))
        shift[broken] = new - own[broken]
        moved = {c: _shifted(child[c], shift) for c in [self.column_name, *self.followers]
                 if c in child}
        return {**data, self.table_name: with_columns(child, moved)}


def _seconds(values: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    numbers = stamps.astype("int64").to_numpy(dtype=float) / 1e9
    return np.where(stamps.isna().to_numpy(), np.nan, numbers)


def _shifted(values: pd.Series, seconds: np.ndarray) -> pd.Series:
    """``values`` moved by ``seconds`` per row, in their own representation (datetime64,
    dates, timestamps or text); whole days for dates. Only the moved rows are looked at: a
    NULL test over a whole object column cost more than the move."""
    rows = np.flatnonzero(~np.isnan(seconds) & (seconds != 0))
    if pd.api.types.is_datetime64_any_dtype(values.dtype):  # NaT stays NaT
        delta = np.zeros(len(values))
        delta[rows] = seconds[rows]
        return values + pd.to_timedelta(delta, unit="s")
    subset = values.iloc[rows]
    rows = rows[subset.notna().to_numpy()]
    if not len(rows):
        return values
    first = values.iloc[rows[0]]
    stamps = pd.to_datetime(values.iloc[rows], errors="coerce", format="mixed")
    days = isinstance(first, dt.date) and not isinstance(first, dt.datetime) or \
        (isinstance(first, str) and len(first) == 10)
    delta = seconds[rows]
    if days:
        delta = np.ceil(delta / _DAY) * _DAY  # whole days, never less than the gap
    new = stamps + pd.to_timedelta(delta, unit="s")
    out = values.to_numpy(dtype=object, copy=True)
    if isinstance(first, str):
        out[rows] = new.dt.strftime("%Y-%m-%d" if days else "%Y-%m-%d %H:%M:%S").to_numpy()
    elif days:
        out[rows] = new.dt.date.to_numpy()
    else:
        out[rows] = new.dt.to_pydatetime()
    return pd.Series(out, index=values.index, name=values.name)


def find_orders(metadata, data: dict[str, pd.DataFrame], tables: set[str]) -> list[ParentOrder]:
    """Child dates never before their parent's date in any real row (see :class:`ParentOrder`):
    at least :data:`MIN_ROWS` linked rows with both set, the two ranges overlapping (a date
    always after another by its range alone needs no rule), single-column foreign keys."""
    found = []
    for rel in metadata.relationships:
        parent, child = rel["parent_table_name"], rel["child_table_name"]
        fk, pk = rel["child_foreign_key"], rel["parent_primary_key"]
        if parent == child or not isinstance(fk, str) or not isinstance(pk, str) or \
                not {parent, child} <= tables or parent not in data or child not in data:
            continue
        for column in _dates(metadata, child):
            for parent_column in _dates(metadata, parent):
                rule = _order(data, child, column, fk, parent, pk, parent_column,
                              _dates(metadata, child))
                if rule is not None:
                    found.append(rule)
    for rule in found:  # a date that follows another of its row moves only with that one
        rule.bounded = not any(rule.column_name in other.followers for other in found
                               if other.table_name == rule.table_name)
    # Rules are turned back last first: a date's rule before the rules of the dates that
    # follow it (a date with more followers leads). The other way round, a receipt dated
    # before its order was redrawn from the real gaps, then moved again with its ship date:
    # TPC-H receipts came up to 1,449 days after shipping (real: 1-30).
    return sorted(found, key=lambda rule: len(rule.followers))


def _dates(metadata, table: str) -> list[str]:
    keys = set(metadata.primary_key(table)) | set(metadata.foreign_key_columns(table))
    return [c for c, meta in metadata.tables[table]["columns"].items()
            if meta.get("sdtype") == "datetime" and not meta.get("policy") and c not in keys]


def _order(data, child, column, fk, parent, pk, parent_column, dates) -> ParentOrder | None:
    rule = ParentOrder(column, fk, parent, pk, parent_column, table_name=child)
    own, theirs = rule._pair(data)
    both = ~np.isnan(own) & ~np.isnan(theirs)
    if both.sum() < MIN_ROWS or np.nanmax(theirs) < np.nanmin(own):
        return None
    gaps = own[both] - theirs[both]
    if (gaps < 0).any():
        return None
    rule.strict_boundaries = bool((gaps > 0).all())
    rule.gaps = np.quantile(gaps, np.linspace(0, 1, ORDER_QUANTILES)).tolist()
    rule.latest = float(np.nanmax(own))
    mine = {c: _seconds(data[child][c]) for c in dates if c != column}
    with np.errstate(invalid="ignore"):
        rule.followers = [c for c, v in mine.items()
                          if (np.isnan(v) | np.isnan(own) | (v >= own)).all()
                          and (~np.isnan(v) & ~np.isnan(own)).sum() >= MIN_ROWS]
    rule.origin = "data"
    return rule
