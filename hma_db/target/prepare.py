"""The rows to load, per table: columns checked, keys shifted for ``append``, and, where the
target checks each row's foreign keys as it arrives (existing PostgreSQL tables), rows ordered
so a self-reference points at earlier rows and the foreign keys that close a cycle set aside.

Everything here is vectorized: keys are matched with ``Index.get_indexer`` (a ``MultiIndex`` for
composite keys) and a self-reference is ordered by each row's depth in its tree, computed by
pointer doubling (``log2(depth)`` numpy passes), never by walking rows in Python.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import sqlalchemy as sa

from hma_db.errors import WriteError
from hma_db.schema import Metadata, key_columns, relationship_name
from hma_db.target.ddl import is_generated_key


@dataclasses.dataclass
class TablePlan:
    """What to load into one table."""

    name: str
    frame: pd.DataFrame                 # columns to insert, rows in load order
    updates: list[tuple[list[str], pd.DataFrame]]  # (key columns, key + FK values) set afterwards
    generated: list[str]                # columns whose counters are moved past the keys


def _index(frame: pd.DataFrame, columns: list[str]) -> pd.Index:
    if len(columns) == 1:
        return pd.Index(frame[columns[0]])
    return pd.MultiIndex.from_frame(frame[columns])


def check_columns(name: str, frame: pd.DataFrame, table: sa.Table, generated: list[str]) -> None:
    """Refuse unknown columns and missing NOT NULL columns, naming them."""
    unknown = [c for c in frame.columns if c not in table.c]
    missing = [c.name for c in table.columns
               if c.name not in frame.columns and not c.nullable and c.name not in generated]
    if unknown or missing:
        problems = ([f"column '{name}.{c}' is not in the target table" for c in unknown]
                    + [f"NOT NULL column '{name}.{c}' is missing from the data" for c in missing])
        raise WriteError(f"The data for table '{name}' does not fit the target table:\n"
                         + "\n".join(f"  - {p}" for p in problems))


def _row_depths(parent_pos: np.ndarray) -> np.ndarray | None:
    """Each row's number of ancestors (parent_pos: parent row or -1), None if rows form a cycle."""
    n = len(parent_pos)
    rows = np.arange(n)
    up = np.where(parent_pos >= 0, parent_pos, rows)
    dist = (parent_pos >= 0).astype(np.int64)
    for _ in range(int(np.ceil(np.log2(max(n, 2)))) + 2):
        if np.array_equal(up, up[up]):
            break
        dist = dist + np.where(up != rows, dist[up], 0)
        up = up[up]
    if not np.array_equal(up, up[up]) or np.any(parent_pos[up] >= 0):
        return None
    return dist


def parents_first(frame: pd.DataFrame, pk: list[str], fk: list[str]) -> np.ndarray | None:
    """Row positions such that every referenced row comes before the rows that reference it,
    or None when the rows reference each other in a cycle."""
    refs = frame[fk]
    parent_pos = _index(frame, pk).get_indexer(_index(frame, fk))
    parent_pos[refs.isna().any(axis=1).to_numpy()] = -1
    depths = _row_depths(parent_pos)
    return None if depths is None else np.argsort(depths, kind="stable")


def shift_keys(data: dict[str, pd.DataFrame], metadata: Metadata, offsets: dict[str, int],
               reference_existing: bool) -> dict[str, pd.DataFrame]:
    """``append``: add each table's offset to its integer primary key and to the foreign keys
    that reference one of its rows in ``data``.

    With ``reference_existing=True`` a foreign key value that matches no row of the parent's
    data is left as it is: it refers to a row already in the target (the target's foreign key
    checks it). Without it such a value is refused.
    """
    out = {name: frame.copy() for name, frame in data.items()}
    for rel in metadata.relationships:
        parent, child = rel["parent_table_name"], rel["child_table_name"]
        if parent not in data or child not in data:
            continue
        pk_cols, fk = key_columns(rel["parent_primary_key"]), key_columns(rel["child_foreign_key"])
        if len(pk_cols) != 1:
            continue  # composite keys are not shifted; a clash is refused by the target
        pk, values = pk_cols[0], data[child][fk[0]]
        known = values.isin(data[parent][pk]) | values.isna()
        if not known.all() and not reference_existing:
            raise WriteError(
                f"{relationship_name(rel)}: {int((~known).sum())} value(s) match no row of "
                f"'{parent}' in the data (e.g. {values[~known].iloc[0]!r}); pass "
                "reference_existing=True to let them refer to rows already in the target")
        if offsets.get(parent):
            out[child][fk[0]] = values.where(~(known & values.notna()), values + offsets[parent])
    for name, offset in offsets.items():
        pk = metadata.primary_key(name)
        if offset and name in out and len(pk) == 1:
            out[name][pk[0]] = data[name][pk[0]] + offset
    return out


def _null_out(frame: pd.DataFrame, pk: list[str], fk: list[str]) -> pd.DataFrame:
    """Set ``fk`` to NULL in ``frame``; return the (pk + fk) rows to update afterwards."""
    if not pk:
        raise WriteError(f"foreign key {fk} closes a cycle but its table has no primary key, "
                         "so it cannot be set after the load")
    later = frame.loc[frame[fk].notna().all(axis=1), pk + fk].copy()
    for column in fk:
        frame[column] = frame[column].where(pd.Series(False, index=frame.index))
    return later


def plan_table(name: str, frame: pd.DataFrame, metadata: Metadata, table: sa.Table,
               deferred: list[dict], generated: list[str], *, at_commit: bool) -> TablePlan:
    """Order the rows of one table and set aside its deferred foreign keys.

    With ``at_commit`` (the target proves every foreign key once all rows are in) the rows go
    as they are: no order and no NULL-then-UPDATE is needed, NOT NULL cycles included."""
    frame = frame.reset_index(drop=True)
    if at_commit:
        return TablePlan(name, frame, [], generated)
    pk = metadata.primary_key(name) if name in metadata.tables else []
    updates = []
    for rel in [r for r in deferred if r["child_table_name"] == name]:
        fk = key_columns(rel["child_foreign_key"])
        updates.append((pk, _null_out(frame, pk, fk)))
    self_refs = [r for r in metadata.self_references()
                 if r["child_table_name"] == name and r not in deferred]
    for i, rel in enumerate(sorted(self_refs, key=relationship_name)):
        fk = key_columns(rel["child_foreign_key"])
        order = parents_first(frame, pk, fk) if i == 0 else None
        if order is not None:
            frame = frame.iloc[order].reset_index(drop=True)
        elif all(table.c[c].nullable for c in fk):
            updates.append((pk, _null_out(frame, pk, fk)))
        else:
            raise WriteError(f"{relationship_name(rel)}: the rows reference each other in a cycle "
                             "and the foreign key is NOT NULL, so no insert order exists")
    return TablePlan(name, frame, updates, generated)


def refuse_not_null_cycles(metadata: Metadata, deferred: list[dict]) -> None:
    """Tables whose foreign keys are checked row by row (existing PostgreSQL tables) cannot load
    a cycle of NOT NULL foreign keys: no row could go first."""
    stuck = [r for r in deferred if not metadata.is_nullable(r)]
    if stuck:
        raise WriteError(
            f"{relationship_name(stuck[0])} closes a cycle of NOT NULL foreign keys, and the "
            "existing target tables check each row as it arrives, so no row can go first; pass "
            "if_exists='replace' (the keys are then proven at commit) or declare the foreign key "
            "DEFERRABLE; the target was left as it was.")


def plan_chunk(metadata: Metadata, tables: list[str], table_of, data: dict[str, pd.DataFrame],
               at_commit: bool) -> list[TablePlan]:
    """The plans of one chunk's ``tables`` (in load order), ``table_of(name)`` giving each
    target table: what the writer loads, and what a Dask worker stages
    (:mod:`hma_db.target.staging`), so both load the same rows the same way."""
    written = set(tables)
    deferred = [r for r in metadata.deferred_relationships()
                if {r["parent_table_name"], r["child_table_name"]} <= written]
    if not at_commit:
        refuse_not_null_cycles(metadata, deferred)
    plans = []
    for name in tables:
        table = table_of(name)
        source = metadata.sql_metadata.tables.get(name) if metadata.sql_metadata else None
        generated = [c.name for c in table.primary_key.columns if c.autoincrement is True
                     or (source is not None and is_generated_key(source, source.c[c.name]))]
        check_columns(name, data[name], table, generated)
        frame = data[name][[c.name for c in table.columns if c.name in data[name].columns]]
        plans.append(plan_table(name, frame, metadata, table, deferred, generated,
                                at_commit=at_commit))
    return plans
