"""``simplify_schema``: SDV's helper for shrinking a dataset to what a synthesizer should model.

SDV's ``HMASynthesizer`` accepts few tables and one level of depth, so SDV's ``simplify_schema``
keeps a root table with its children and grandchildren and drops columns. hma_db models any
number of tables at any depth, so nothing has to go for size: what it keeps is the *main
connected schema* (the tables linked, through any chain of foreign keys, to the root table with
the most descendants), and it drops the tables that share no relationship with it. Every kept
table keeps all of its columns, rows and relationships, so the result is still referentially
closed and writes back into the source schema unchanged.
"""

from __future__ import annotations

import pandas as pd

from hma_db.schema.metadata import Metadata


def _neighbours(metadata: Metadata) -> dict[str, set[str]]:
    linked: dict[str, set[str]] = {t: set() for t in metadata.tables}
    for rel in metadata.relationships:
        parent, child = rel["parent_table_name"], rel["child_table_name"]
        linked[parent].add(child)
        linked[child].add(parent)
    return linked


def _reach(start: str, linked: dict[str, set[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for other in linked[todo.pop()] - seen:
            seen.add(other)
            todo.append(other)
    return seen


def _descendants(table: str, metadata: Metadata) -> set[str]:
    seen, todo = set(), [table]
    while todo:
        for child in set(metadata.children(todo.pop())) - seen:
            seen.add(child)
            todo.append(child)
    return seen


def main_root(metadata: Metadata, data: dict[str, pd.DataFrame]) -> str:
    """The root table (no parent) with the most descendant tables; ties go to more rows, then name.

    With cycles and no root at all, the table with the most descendants is chosen.
    """
    deferred = metadata.deferred_relationships()
    kept = [r for r in metadata.relationships if r not in deferred]
    has_parent = {r["child_table_name"] for r in kept
                  if r["parent_table_name"] != r["child_table_name"]}
    candidates = [t for t in metadata.tables if t not in has_parent] or list(metadata.tables)
    return min(candidates, key=lambda t: (-len(_descendants(t, metadata)),
                                          -len(data.get(t, ())), t))


def simplify_schema(data: dict[str, pd.DataFrame], metadata: Metadata,
                    verbose: bool = True) -> tuple[dict[str, pd.DataFrame], Metadata]:
    """Keep the main connected part of a schema: the tables linked to its main root table.

    Args:
        data: ``{table name: DataFrame}`` matching ``metadata``.
        metadata: the schema; it is not modified.
        verbose: print a summary of the tables kept and dropped.

    Returns:
        ``(data, metadata)`` restricted to the tables linked to the main root (see
        :func:`main_root`); tables with no relationship to it are dropped. Columns, rows and
        relationships of kept tables are unchanged.

    Raises:
        MetadataError, DataError: the metadata or the data is not valid.

    Example:
        >>> simple_data, simple_metadata = simplify_schema(data, metadata)
    """
    metadata.validate()
    metadata.validate_data(data)
    if not metadata.tables:
        return dict(data), metadata.copy()
    keep = _reach(main_root(metadata, data), _neighbours(metadata))
    simple_metadata = metadata.copy()
    for table in [t for t in metadata.tables if t not in keep]:
        simple_metadata.remove_table(table)
    simple_data = {t: frame.copy() for t, frame in data.items() if t in keep}
    if verbose:
        print(_summary(data, keep))
    return simple_data, simple_metadata


def _summary(data: dict[str, pd.DataFrame], keep: set[str]) -> str:
    width = max(len(t) for t in data)
    lines = [f"{'table':<{width}}  {'rows':>8}  {'columns':>7}  result"]
    for table in sorted(data):
        frame = data[table]
        status = "kept" if table in keep else "dropped (no relationship to the main tables)"
        lines.append(f"{table:<{width}}  {len(frame):>8}  {frame.shape[1]:>7}  {status}")
    dropped = len(data) - len(keep)
    lines.append(f"Kept {len(keep)} of {len(data)} tables"
                 + (f"; dropped {dropped}." if dropped else "; nothing to drop."))
    return "\n".join(lines)
