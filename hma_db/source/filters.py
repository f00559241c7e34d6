"""Row filters: a table's ``where`` (``--where "orders: order_date >= '2024-01-01'"``) keeps only
the rows a clone should learn from (and, for a kept table, copy), and the rows of other tables
that depended on the rows filtered out go too, so the data stays referentially closed.

A filter is one SQL boolean expression in the source's dialect, checked before it is sent
(:func:`hma_db.schema.check_where`: no ``;``, no comment, balanced quotes and parentheses, so
it cannot end the ``SELECT`` it is placed in or hide the rest of it). It runs in the read-only
transaction of every read of the source (:func:`hma_db.source.read.begin_read_only`): it can
choose rows, not change them.

Closing: a row whose non-NULL foreign key references a row that is not kept is dropped,
parents before children, until nothing changes (a cycle converges since rows are only ever
removed). Keys are compared as whole values with pandas (a composite key as a ``MultiIndex``),
one vectorized pass per relationship and round.
"""

from __future__ import annotations

import logging

import pandas as pd
import sqlalchemy as sa

from hma_db.schema import Metadata, check_where, key_columns

logger = logging.getLogger(__name__)


def where_clause(metadata: Metadata, table: str):
    """``where(table) -> clause`` for :func:`hma_db.source.read.read_table_chunks`, or None."""
    text = metadata.tables[table].get("where")
    if text is None:
        return None
    condition = check_where(text, table)
    return lambda _table: sa.text(f"({condition})")


def _keys(frame: pd.DataFrame, columns: list[str]) -> pd.Index:
    if len(columns) == 1:
        return pd.Index(frame[columns[0]])
    return pd.MultiIndex.from_frame(frame[columns])


def close_filtered(metadata: Metadata, data: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """``data`` without the rows whose foreign keys reference rows that are not in ``data``
    (after a ``where`` removed them), repeated until no row goes; one log line per table."""
    before = {t: len(f) for t, f in data.items()}
    data = dict(data)
    order = metadata.topological_order()
    changed = True
    while changed:
        changed = False
        for rel in sorted(metadata.relationships,
                          key=lambda r: order.index(r["child_table_name"])):
            parent, child = rel["parent_table_name"], rel["child_table_name"]
            fk = key_columns(rel["child_foreign_key"])
            pk = key_columns(rel["parent_primary_key"])
            frame = data[child]
            if frame.empty:
                continue
            present = frame[fk].notna().all(axis=1).to_numpy()
            found = _keys(frame, fk).isin(_keys(data[parent], pk))
            keep = ~present | found
            if not keep.all():
                data[child] = frame.loc[keep].reset_index(drop=True)
                changed = True
    for table, rows in before.items():
        if len(data[table]) != rows:
            logger.info("table %s: %d of %d rows kept (where, and the rows they reference)",
                        table, len(data[table]), rows)
    return data
