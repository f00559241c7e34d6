"""What reflected metadata must know about keys beyond primary keys and full unique constraints.

:func:`add_key_facts` completes the metadata that :mod:`hma_db.source.reflect` built:

- **partial unique indexes** (``CREATE UNIQUE INDEX ... (code) WHERE active``) become alternate
  keys: the target recreates them, so sampling must keep the column unique (unique among all
  rows is a safe superset of unique among the indexed ones);
- **foreign keys to a UNIQUE non-key column** become relationships like any other (the
  referenced column is a generated key; the child references the values of sampled parents);
- **partition bounds** (PostgreSQL range and list partitions, from ``pg_partitioned_table``
  and ``pg_get_expr(relpartbound)``) are stored on the partition column as
  ``partition_bounds``, so generated keys land in an existing partition.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import sqlalchemy as sa

from hma_db.schema import Metadata

logger = logging.getLogger(__name__)


def add_key_facts(conn: sa.Connection, metadata: Metadata, sql_metadata: sa.MetaData,
                  schema: str | None) -> None:
    """Complete ``metadata`` with partial unique keys, foreign keys to unique columns and
    partition bounds."""
    add_partial_unique_keys(metadata, sql_metadata)
    add_unique_references(metadata, sql_metadata)
    add_partition_bounds(conn, metadata, schema)


# --------------------------------------------------------------------------- unique keys
def key_value(columns: list[str]) -> str | list[str]:
    """One column name alone, several as a list (SDV's layout of a key)."""
    return columns[0] if len(columns) == 1 else list(columns)


def _is_partial(index: sa.Index) -> bool:
    return any(k.endswith("_where") and v is not None for k, v in index.dialect_kwargs.items())


def add_partial_unique_keys(metadata: Metadata, sql_metadata: sa.MetaData) -> None:
    """Partial unique indexes on plain columns, as ``partial_unique`` (a list of keys) on the
    index's first column: sampled unique in every row. They are not alternate keys, which the
    source rows must satisfy: rows outside the index's WHERE may repeat a value."""
    for name, entry in metadata.tables.items():
        table = sql_metadata.tables.get(name)
        if table is None:
            continue
        known = [sorted(k) for k in [metadata.primary_key(name), *metadata.alternate_keys(name)]]
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            if not (index.unique and _is_partial(index)):
                continue
            if not all(isinstance(e, sa.Column) for e in index.expressions):
                continue
            columns = [e.name for e in index.expressions]
            if sorted(columns) in known or not all(c in entry["columns"] for c in columns):
                continue
            entry["columns"][columns[0]].setdefault("partial_unique", []).append(columns)
            known.append(sorted(columns))
            logger.info("table %s: partial unique index %s kept unique in every row", name,
                        index.name)


def add_unique_references(metadata: Metadata, sql_metadata: sa.MetaData) -> None:
    """Foreign keys to a unique column (or columns) other than the primary key, as
    relationships; both ends become generated key columns (sdtype ``id``)."""
    for child, table in sorted(sql_metadata.tables.items()):
        if child not in metadata.tables:
            continue
        for fkc in sorted(table.foreign_key_constraints, key=lambda c: c.name or ""):
            pairs = [(e.column.table.name, e.column.name, e.parent.name) for e in fkc.elements]
            parent = pairs[0][0]
            referenced = [p for _, p, _ in pairs]
            columns = [c for _, _, c in pairs]
            if parent not in metadata.tables or sorted(referenced) == sorted(
                    metadata.primary_key(parent)):
                continue
            if sorted(referenced) not in [sorted(k) for k in metadata.alternate_keys(parent)]:
                logger.warning(
                    "foreign key %s.(%s) references %s.(%s), which is not a unique key: it is "
                    "kept in the target schema but not modeled, so the load may fail; declare "
                    "%s.(%s) UNIQUE in the source, or exclude table %s",
                    child, ", ".join(columns), parent, ", ".join(referenced), parent,
                    ", ".join(referenced), child)
                continue
            if not _all_columns(metadata, parent, referenced) or not _all_columns(
                    metadata, child, columns):
                continue
            _add_reference(metadata, parent, referenced, child, columns)


def _all_columns(metadata: Metadata, table: str, columns: list[str]) -> bool:
    return all(c in metadata.tables[table]["columns"] for c in columns)


def _add_reference(metadata: Metadata, parent: str, referenced: list[str], child: str,
                   columns: list[str]) -> None:
    rel = {"parent_table_name": parent, "parent_primary_key": key_value(referenced),
           "child_table_name": child, "child_foreign_key": key_value(columns)}
    if rel in metadata.relationships:
        return
    for table, names in ((parent, referenced), (child, columns)):
        specs = metadata.tables[table]["columns"]
        for name in names:
            kept = {k: specs[name][k] for k in ("nullable", "max_length", "regex_format",
                                                 "partition_bounds") if k in specs[name]}
            if specs[name].get("generator") == "uuid":
                kept["generator"] = "uuid"
            specs[name] = {"sdtype": "id", **kept}
    metadata.relationships.append(rel)
    logger.info("foreign key %s.(%s) -> %s.(%s): modeled as a relationship to a unique key",
                child, ", ".join(columns), parent, ", ".join(referenced))


# ----------------------------------------------------------------------------- partitions
_KEYDEF = re.compile(r'^(RANGE|LIST)\s*\(\s*("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s*\)$',
                     re.I)
_LITERAL = re.compile(r"'((?:[^']|'')*)'(?:::[\w ]+)?|(-?\d+(?:\.\d+)?)|(MINVALUE|MAXVALUE|NULL)",
                      re.I)


def _literals(text: str) -> list[Any]:
    """The values of a bound list: quoted text, numbers; None for MINVALUE, MAXVALUE, NULL."""
    out: list[Any] = []
    for quoted, number, word in _LITERAL.findall(text):
        out.append(None if word else number or quoted.replace("''", "'"))
    return out


def partition_bounds(conn: sa.Connection, schema: str | None) -> dict[str, dict[str, Any]]:
    """Per partitioned table of ``schema`` (PostgreSQL), its partition column and the bounds
    of its partitions: ``{"column": c, "ranges": [[from, to], ...]}`` (``to`` exclusive, None
    unbounded) or ``{"column": c, "values": [...]}``. A table with a DEFAULT partition, or
    partitioned by several columns or an expression, takes any value: it is left out."""
    if conn.dialect.name != "postgresql" or conn.dialect.server_version_info < (10,):
        return {}
    rows = conn.execute(sa.text(
        "SELECT c.relname, pg_catalog.pg_get_partkeydef(c.oid), "
        "pg_catalog.pg_get_expr(k.relpartbound, k.oid) "
        "FROM pg_catalog.pg_partitioned_table p "
        "JOIN pg_catalog.pg_class c ON c.oid = p.partrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_catalog.pg_inherits i ON i.inhparent = c.oid "
        "JOIN pg_catalog.pg_class k ON k.oid = i.inhrelid "
        "WHERE n.nspname = COALESCE(:schema, current_schema()) AND NOT c.relispartition "
        "ORDER BY c.relname, k.relname"), {"schema": schema}).all()
    found: dict[str, dict[str, Any]] = {}
    unbounded: set[str] = set()
    for table, keydef, bound in rows:
        match = _KEYDEF.match((keydef or "").strip())
        if match is None or bound.strip().upper() == "DEFAULT":
            unbounded.add(table)
            continue
        column = match.group(2).strip('"').replace('""', '"')
        entry = found.setdefault(table, {"column": column})
        if match.group(1).upper() == "LIST":
            entry.setdefault("values", []).extend(_literals(bound.split("IN", 1)[1]))
        else:
            low, high = re.split(r"\)\s*TO\s*\(", bound.split("FROM", 1)[1], maxsplit=1)
            entry.setdefault("ranges", []).append([*_literals(low)[:1], *_literals(high)[:1]])
    return {t: e for t, e in found.items() if t not in unbounded}


def add_partition_bounds(conn: sa.Connection, metadata: Metadata, schema: str | None) -> None:
    """Store each partitioned table's bounds on its partition column (``partition_bounds``)."""
    for table, entry in partition_bounds(conn, schema).items():
        columns = metadata.tables.get(table, {}).get("columns", {})
        if entry["column"] not in columns:
            continue
        bounds = {k: v for k, v in entry.items() if k != "column"}
        columns[entry["column"]]["partition_bounds"] = bounds
        logger.info("table %s: %s keeps within the bounds of %d partition(s)", table,
                    entry["column"], len(bounds.get("ranges", [])) or 1)
