"""Read a database's schema into :class:`~hma_db.Metadata`, with the SQLAlchemy tables behind it.

:func:`reflect` is the only user of SQLAlchemy's ``Inspector`` in hma_db. It reads the tables of one
schema (views and PostgreSQL partitions left out), maps SQL types to sdtypes
(:mod:`hma_db.schema.sqltypes`), turns primary and foreign keys into ``id`` columns and relationships,
unique constraints and unique indexes into alternate keys, and looks at a small sample of the data
(:mod:`hma_db.source.profiling`) to find personal data, categorical text and the shape of string keys.
Generated (computed) columns stay in the SQLAlchemy tables but not in the metadata: the database
computes them, so they are never read, modeled or written.
The source is opened read-only where the database allows it (:func:`~hma_db.source.read.begin_read_only`)
and never written.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from typing import Any

import pandas as pd
import sqlalchemy as sa

from hma_db.engines import Source, connect, engine_for, first_line, safe_url
from hma_db.errors import ReflectionError
from hma_db.schema import DATE, DATE_PII, TEXT, Metadata, base_type, propose_rules, type_options
from hma_db.schema import reference_tables as find_reference_tables
from hma_db.source import profiling
from hma_db.source.dump import attach, capture
from hma_db.source.read import begin_read_only
from hma_db.source.reflect_keys import add_key_facts
from hma_db.source.reflect_schema import (
    add_mysql_checks,
    add_referenced_tables,
    add_sqlite_unique_constraints,
    alternate_keys,
    autoincrement_columns,
    bare_tables,
    checked_values,
    complete_types,
    lift_partition_foreign_keys,
    partitions,
)

logger = logging.getLogger(__name__)

_KEY = "key"  # the kind of a string primary-key column, whose format is learned from the data


def reflect(source: Source, *, schema: str | None = None, include: Iterable[str] | None = None,
            exclude: Iterable[str] | None = None, drop_cut_keys: bool = False,
            reference_tables: bool = True) -> Metadata:
    """Reflect the tables of a database into :class:`Metadata`.

    Args:
        source: a URL string, a ``sqlalchemy.URL`` or an ``Engine`` (a given engine is not
            disposed; one created here is). A path to an existing SQLite file also works.
        schema: the schema to read (default: the connection's default schema).
        include: read only these tables.
        exclude: leave these tables out.
        drop_cut_keys: keep a table whose foreign key references a table that ``include`` or
            ``exclude`` leaves out, without that foreign key (refused by default).
        reference_tables: give lookup tables (at most 100 rows, no personal data, parents
            that are lookup tables too: :func:`hma_db.schema.reference_tables`) the table
            policy ``keep``, so a clone copies them as they are; False models them too.

    Returns:
        The metadata, with ``sql_metadata`` (the SQLAlchemy tables keyed by bare name),
        ``schema`` and ``row_counts`` set.

    Raises:
        ReflectionError: the URL is invalid, the SQLite file does not exist, the connection is
            refused, the schema does not exist, ``include``/``exclude`` name a missing table,
            or leave out a table that a kept table references (unless ``drop_cut_keys``).

    Example:
        >>> metadata = reflect("sqlite:///examples/chinook.sqlite")
        >>> metadata.tables["Customer"]["columns"]["Email"]
        {'sdtype': 'email', 'pii': True, 'nullable': False, 'max_length': 60}
    """
    with engine_for(source, error=ReflectionError) as engine, \
            connect(engine, error=ReflectionError) as conn:
        label = safe_url(engine)
        try:
            begin_read_only(conn)
            with warnings.catch_warnings():
                # Unknown column types are looked up by name afterwards (sqltypes.RawType).
                warnings.simplefilter("ignore", sa.exc.SAWarning)
                metadata = _reflect(conn, schema, include, exclude, label, drop_cut_keys)
            if reference_tables:
                _keep_reference_tables(metadata)
            return metadata
        except sa.exc.SQLAlchemyError as exc:
            raise ReflectionError(
                f"Cannot read the schema of {label}: {first_line(exc, engine.url)}") from exc
        finally:
            conn.rollback()


def _keep_reference_tables(metadata: Metadata) -> None:
    found = find_reference_tables(metadata.tables, metadata.relationships, metadata.row_counts,
                                  metadata.topological_order())
    for table in found:
        metadata.tables[table]["policy"] = "keep"
    metadata.proposed_rules = [r for r in metadata.proposed_rules if r.table_name not in found]
    if found:
        logger.info("reference tables copied as is: %s", ", ".join(found))


# -------------------------------------------------------------------------- choosing tables
def _check_schema(inspector: sa.Inspector, schema: str | None, label: str) -> None:
    if schema is None:
        return
    names = inspector.get_schema_names()
    if schema not in names:
        raise ReflectionError(f"Schema '{schema}' does not exist in {label}; its schemas are: "
                              f"{', '.join(names)}")


def _names(values: Iterable[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [values] if isinstance(values, str) else list(values)


def _select_tables(available: list[str], include: list[str] | None, exclude: list[str] | None,
                   where: str, parts: dict[str, str]) -> list[str]:
    for option, names in (("include", include), ("exclude", exclude)):
        missing = [n for n in names or [] if n not in available]
        if missing:
            shown = ", ".join(available[:30]) + (" ..." if len(available) > 30 else "")
            hints = [f"'{m}' is a partition of '{parts[m]}'" for m in missing if m in parts]
            raise ReflectionError(
                f"{option} names table(s) {', '.join(repr(m) for m in missing)} that do not "
                f"exist in {where}; its tables are: {shown or '(none)'}"
                + (f" ({'; '.join(hints)}: name the partitioned table)" if hints else ""))
    chosen = [t for t in available if include is None or t in include]
    return [t for t in chosen if t not in (exclude or [])]


def _cut_keys(inspector: sa.Inspector, names: list[str], available: list[str],
              schema: str | None) -> list[tuple[str, str, list[str]]]:
    """``(table, parent, columns)`` for each foreign key of a kept table to a table of the same
    schema that is left out (a table of another schema is read with it: not a cut)."""
    kept = set(names)
    own = {None, schema if schema is not None else inspector.default_schema_name}
    cuts = []
    for table in names:
        for fk in inspector.get_foreign_keys(table, schema=schema):
            parent = fk["referred_table"]
            if fk.get("referred_schema") in own and parent in available and parent not in kept:
                cuts.append((table, parent, fk["constrained_columns"]))
    return cuts


def _refuse_cut_keys(cuts: list[tuple[str, str, list[str]]], include: list[str] | None) -> None:
    """One line naming every cut foreign key and how to fix it: add the parents, or drop the keys."""
    said, fixes = [], {}
    for table, parent, columns in cuts:
        by_include = include is not None and parent not in include
        said.append((f"include keeps {table} but not {parent}" if by_include
                     else f"exclude leaves out {parent}") + ", which "
                    + ", ".join(f"{table}.{c}" for c in columns) + " references")
        fixes.setdefault("add {} to --include" if by_include else "remove {} from --exclude",
                         {})[parent] = None
    fix = " and ".join(form.format(", ".join(parents)) for form, parents in fixes.items())
    tables = ", ".join(dict.fromkeys(table for table, _, _ in cuts))
    keys = "that foreign key" if len(cuts) == 1 else "those foreign keys"
    raise ReflectionError(f"{'; '.join(dict.fromkeys(said))}: {fix}, or pass --drop-cut-keys "
                          f"(drop_cut_keys=True) to keep {tables} without {keys}")


def _reflect(conn: sa.Connection, schema: str | None, include: Iterable[str] | None,
             exclude: Iterable[str] | None, label: str, drop_cut_keys: bool = False) -> Metadata:
    inspector = sa.inspect(conn)
    _check_schema(inspector, schema, label)
    where = label + (f" (schema '{schema}')" if schema else "")
    parts = partitions(conn, schema)
    available = sorted(t for t in inspector.get_table_names(schema=schema) if t not in parts)
    names = _select_tables(available, _names(include), _names(exclude), where, parts)
    if (include is not None or exclude is not None) and not drop_cut_keys:
        cuts = _cut_keys(inspector, names, available, schema)
        if cuts:  # refused before a row is read: the target would hold keys pointing nowhere
            _refuse_cut_keys(cuts, _names(include))
    source = sa.MetaData()
    source.reflect(bind=conn, schema=schema, only=names, views=False, resolve_fks=False)
    source_tables = {n: source.tables[f"{schema}.{n}" if schema else n] for n in names}
    foreign = add_referenced_tables(conn, source, source_tables, schema)
    complete_types(conn, source_tables)
    sql_metadata = bare_tables(source_tables)
    lift_partition_foreign_keys(inspector, sql_metadata, parts, schema)
    add_sqlite_unique_constraints(conn, sql_metadata, schema)
    add_mysql_checks(conn, sql_metadata, schema)
    metadata = _to_metadata(conn, sql_metadata, source_tables)
    add_key_facts(conn, metadata, sql_metadata, schema)  # partial unique, FKs to UNIQUE, partitions
    metadata.sql_metadata, metadata.schema = sql_metadata, schema
    metadata.table_schemas = foreign
    # The source's own DDL, for a target of the same dialect (kept in memory only).
    attach(sql_metadata, capture(conn, schema, list(sql_metadata.tables), foreign))
    logger.info("reflected %d tables and %d relationships from %s", len(metadata.tables),
                len(metadata.relationships), where)
    return metadata


# ------------------------------------------------------------------------- building metadata
def _to_metadata(conn: sa.Connection, sql_metadata: sa.MetaData,
                 source_tables: dict[str, sa.Table]) -> Metadata:
    metadata = Metadata()
    relationships = [rel for table in sql_metadata.tables.values()
                     for rel in _relationships(table)]
    fk_columns: dict[str, set[str]] = {}
    for rel in relationships:
        fk_columns.setdefault(rel["child_table_name"], set()).update(rel["child_foreign_key"])
    samples: dict[str, Any] = {}  # each table's sampled text columns
    numbers: dict[str, Any] = {}  # each table's sampled number and date columns
    for name, table in sql_metadata.tables.items():
        rows = conn.execute(sa.select(sa.func.count()).select_from(source_tables[name])).scalar()
        metadata.row_counts[name] = int(rows)
        entry = _table_entry(conn, table, source_tables[name], fk_columns.get(name, set()),
                             int(rows), samples, numbers)
        metadata.tables[name] = entry
        logger.info("table %s: %d columns, %d rows", name, len(table.columns), rows)
    _personal_by_overlap(metadata, samples)
    metadata.relationships = [
        {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in rel.items()}
        for rel in relationships  # a generated foreign-key column is the database's business
        if all(c in metadata.tables[rel["child_table_name"]]["columns"]
               for c in rel["child_foreign_key"])
    ]
    # Proposals only: the fit keeps a rule if every row it reads holds it.
    metadata.proposed_rules = propose_rules(metadata, numbers)
    return metadata


def _personal_by_overlap(metadata: Metadata, samples: dict[str, Any]) -> None:
    """Text columns whose values are another column's personal data become personal data
    (:func:`hma_db.source.profiling.personal_by_overlap`), faked by default."""
    for (table, column), provider in profiling.personal_by_overlap(samples,
                                                                    metadata.tables).items():
        options = metadata.tables[table]["columns"][column]
        kept = {k: options[k] for k in ("nullable", "max_length") if k in options}
        metadata.tables[table]["columns"][column] = {"sdtype": provider, "pii": True, **kept}
        logger.info("column %s.%s holds the values of personal data (%s): faked", table,
                    column, provider)


def _relationships(table: sa.Table) -> list[dict[str, Any]]:
    """One relationship per foreign key that references its parent's primary key."""
    found = []
    for fkc in sorted(table.foreign_key_constraints, key=lambda c: (c.column_keys, c.name or "")):
        parent = fkc.referred_table
        pairs = {e.column.name: e.parent.name for e in fkc.elements}
        pk = [c.name for c in parent.primary_key.columns]
        if not pk or set(pairs) != set(pk):
            continue  # a foreign key to a unique key: reflect_keys.add_unique_references
        rel = {"parent_table_name": parent.name, "parent_primary_key": pk,
               "child_table_name": table.name, "child_foreign_key": [pairs[c] for c in pk]}
        if rel not in found:
            found.append(rel)
    return found


def _table_entry(conn: sa.Connection, table: sa.Table, source_table: sa.Table, fk_columns: set[str],
                 rows: int, samples: dict[str, Any], numbers: dict[str, Any]) -> dict[str, Any]:
    """One table in SDV's layout: column options, primary key, alternate keys."""
    pk = [c.name for c in table.primary_key.columns]
    allowed, json_columns = checked_values(table)
    serial = autoincrement_columns(conn, table, source_table.schema)
    columns: dict[str, dict[str, Any]] = {}
    kinds: dict[str, str | None] = {}
    for column in table.columns:
        if column.computed is not None:
            # The database computes it from the other columns: never read, modeled or written.
            logger.info("table %s: generated column %s left to the database", table.name,
                        column.name)
            continue
        options, kind = type_options(column.type)
        if column.name in json_columns:
            options, kind = {"sdtype": "unknown", "generator": "json"}, None
        options["nullable"] = bool(column.nullable) and column.name not in pk
        if column.name in serial:
            options["autoincrement"] = True
        if column.name in pk or column.name in fk_columns:
            own_key = column.name not in fk_columns
            options = _key_options(options, own_key)
            # A string key of the table's own gets its format from the data.
            own_string = own_key and "generator" not in options and isinstance(
                base_type(column.type), sa.String)
            kind = _KEY if own_string else None
        elif column.name in allowed:
            options = {"sdtype": "categorical", "allowed_values": allowed[column.name],
                       **{k: options[k] for k in ("nullable", "max_length") if k in options}}
            kind = None
        columns[column.name], kinds[column.name] = options, kind
    samples[table.name], numbers[table.name] = _profile(conn, source_table, columns, kinds, rows)
    entry: dict[str, Any] = {"columns": columns}
    if pk:
        entry["primary_key"] = pk[0] if len(pk) == 1 else pk
    alternate = [k for k in alternate_keys(table)
                 if all(c in columns for c in ([k] if isinstance(k, str) else k))]
    if alternate:
        entry["alternate_keys"] = alternate
    return entry


def _key_options(options: dict[str, Any], own_key: bool) -> dict[str, Any]:
    """Options of a primary- or foreign-key column: sdtype 'id' and what generating it needs."""
    kept = {k: options[k] for k in ("nullable", "max_length", "autoincrement") if k in options}
    key = {"sdtype": "id", **kept}
    if own_key and options.get("generator") == "uuid":
        key["generator"] = "uuid"
    return key


def _profile(conn: sa.Connection, table: sa.Table, columns: dict[str, dict[str, Any]],
             kinds: dict[str, str | None], rows: int) -> tuple[Any, Any]:
    """Settle text columns, birth dates and string-key formats from a small sample of the data;
    returns the sampled text columns, and the number and date columns (as numbers and
    timestamps) in which ``propose_rules`` looks for rules."""
    for name, kind in kinds.items():
        if kind == DATE:
            columns[name] = profiling.date_options(name, columns[name])
    wanted = [n for n, k in kinds.items() if k in (TEXT, _KEY)]
    frame, stats = profiling.sample(conn, table, wanted, rows)
    for name in wanted:
        if kinds[name] == _KEY:
            columns[name].update(profiling.learn_key_format(frame[name], rows))
        else:
            distinct, non_null = stats[name]
            columns[name] = profiling.text_options(name, columns[name], frame[name], distinct,
                                                   non_null)
    return frame[[n for n in wanted if kinds[n] == TEXT]], _ordered_sample(conn, table, columns,
                                                                           rows)


def _ordered_sample(conn: sa.Connection, table: sa.Table, columns: dict[str, dict[str, Any]],
                    rows: int) -> pd.DataFrame:
    """The sampled number and date columns, as numbers and timestamps, where ``propose_rules``
    looks for rules; empty when the driver cannot load a value (PostgreSQL's 'infinity'
    timestamp): a proposal is not worth failing ``reflect``, and the read names the value."""
    ordered = [n for n, options in columns.items() if options.get("sdtype") == "numerical"
               or options.get("sdtype") == "datetime" or options.get("sdtype") in DATE_PII]
    if not ordered:
        return pd.DataFrame()
    try:
        with conn.begin_nested():  # a failed query must not end reflect's transaction
            frame, _ = profiling.sample(conn, table, ordered, rows, counts=False)
    except sa.exc.DBAPIError as exc:
        logger.info("table %s: no rules proposed (%s)", table.name,
                    str(exc.orig).strip().splitlines()[0])
        return pd.DataFrame()
    return pd.DataFrame({n: _comparable(frame[n], columns[n]) for n in ordered},
                        index=frame.index)


def _comparable(values: pd.Series, options: dict[str, Any]) -> pd.Series:
    """Sampled numbers as floats and dates as timestamps (NaN/NaT where unreadable)."""
    if options.get("sdtype") == "numerical":
        return pd.to_numeric(values, errors="coerce")
    return pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
