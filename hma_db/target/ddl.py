"""The target schema: source tables translated to the target's dialect, and the drift check.

:func:`target_metadata` turns the source ``Table`` objects of ``Metadata.sql_metadata`` (or, when
the metadata was not reflected, the sdtypes) into a ``sqlalchemy.MetaData`` for PostgreSQL,
SQLite or MariaDB/MySQL. Types go through :mod:`hma_db.target.types`; CHECK constraints through
:mod:`hma_db.target.check_sql`. :func:`drift` compares existing target tables with alembic.
"""

from __future__ import annotations

import logging
import warnings

import sqlalchemy as sa

from hma_db.schema import Metadata, key_columns
from hma_db.target.check_sql import source_dialect, translate_check, translate_default
from hma_db.target.types import family, sdtype_type, translate_type

log = logging.getLogger(__name__)

# Identifier limits: PostgreSQL truncates at 63 bytes, MariaDB refuses more than 64.
_NAME_LIMIT = {"postgresql": 63, "mysql": 64, "mariadb": 64}


def dialect_family(dialect_name: str) -> str:
    """'postgresql', 'sqlite' or 'mysql' (MariaDB reports itself as mysql or mariadb)."""
    return "mysql" if dialect_name in ("mysql", "mariadb") else dialect_name


def is_generated_key(table: sa.Table, column: sa.Column, options: dict | None = None) -> bool:
    """True when the column is an integer key the database generates (identity, serial,
    AUTO_INCREMENT, SQLite rowid alias)."""
    if (options or {}).get("autoincrement") is True or column.identity is not None:
        return True
    default = column.server_default
    if default is not None and "nextval" in str(getattr(default, "arg", "")).lower():
        return True
    pk = list(table.primary_key.columns)
    if pk != [column] or family(column.type) != "integer" or column.foreign_keys:
        return False
    return column.autoincrement is True or column.autoincrement == "auto"


def _name(name: str | None, dialect: str) -> str | None:
    limit = _NAME_LIMIT.get(dialect)
    return name[:limit] if name and limit else name


def _keyed_columns(table: sa.Table) -> set[str]:
    """Columns used in a key or an index (MariaDB needs bounded VARCHARs there)."""
    cols = {c.name for c in table.primary_key.columns}
    for con in table.constraints:
        if isinstance(con, sa.UniqueConstraint | sa.ForeignKeyConstraint):
            cols |= {c.name for c in con.columns}
    for index in table.indexes:
        cols |= {c.name for c in index.columns}
    for col in table.columns:
        if col.foreign_keys:
            cols.add(col.name)
    return cols


def _column(source: sa.Table, col: sa.Column, dialect: str, keyed: set[str], options: dict,
            schema: str | None, dropped: list[str]) -> sa.Column:
    generated = is_generated_key(source, col, options)
    if getattr(col.type, "check", None) is not None:  # a PostgreSQL domain with a CHECK
        log.info("column %s.%s: domain %s becomes its base type; its CHECK (%s) is not kept",
                 source.name, col.name, getattr(col.type, "name", "?"), col.type.check)
    type_ = translate_type(col.type, dialect, keyed=col.name in keyed,
                           name=f"{source.name}_{col.name}", schema=schema)
    if generated and dialect == "sqlite":
        type_ = sa.Integer()  # only INTEGER PRIMARY KEY is SQLite's rowid alias
    # SQLite numbers only a lone INTEGER PRIMARY KEY and MariaDB only the first column of a
    # key: in a composite key (payment_date, payment_id) the generated values are written as
    # they are, without AUTO_INCREMENT.
    composite = len(source.primary_key.columns) > 1 and dialect != "postgresql"
    kwargs = {"nullable": col.nullable and not col.primary_key, "primary_key": col.primary_key,
              "autoincrement": generated and not composite if col.primary_key else False}
    args = []
    if generated and dialect == "postgresql" and col.identity is not None:
        args.append(sa.Identity(always=bool(col.identity.always)))
    default = _default(source, col, generated, dialect, dropped)
    if default is not None:
        kwargs["server_default"] = default
    return sa.Column(col.name, type_, *args, **kwargs)


def _default(source: sa.Table, col: sa.Column, generated: bool, dialect: str,
             dropped: list[str]) -> sa.TextClause | None:
    """The column's DEFAULT in the target's dialect; a default with no equivalent is dropped
    and named in ``dropped`` (the writer logs it when it creates the table: the application's
    INSERTs that rely on it would fail on the target)."""
    if col.server_default is None or generated or col.computed is not None:
        return None
    text = str(getattr(col.server_default.arg, "text", col.server_default.arg))
    if "nextval(" in text.lower():
        return None
    found = translate_default(text, col, dialect)
    if found is None:
        dropped.append(f"column {source.name}.{col.name}: its default {text} has no {dialect} "
                       "form; the target column has no default")
    return found


def _constraint_order(con: sa.Constraint) -> tuple:
    """A stable order for constraints: unnamed ones (SQLite's foreign keys) have no name to
    sort by, and a set's order changes between processes, so the columns and text break ties."""
    text = str(getattr(con, "sqltext", ""))
    return type(con).__name__, str(con.name), tuple(c.name for c in con.columns), text


def _constraints(source: sa.Table, dialect: str, tables: dict[str, str],
                 schema: str | None) -> list:
    out = []
    for con in sorted(source.constraints, key=_constraint_order):
        cols = [c.name for c in con.columns]
        if isinstance(con, sa.PrimaryKeyConstraint) and cols:
            out.append(sa.PrimaryKeyConstraint(*cols, name=_name(con.name, dialect)))
        elif isinstance(con, sa.UniqueConstraint):
            out.append(sa.UniqueConstraint(*cols, name=_name(con.name, dialect)))
        elif isinstance(con, sa.ForeignKeyConstraint):
            fk = _foreign_key(source, con, dialect, tables, schema)
            if fk is not None:
                out.append(fk)
        elif isinstance(con, sa.CheckConstraint):
            text = translate_check(str(con.sqltext), dialect, [c.name for c in source.columns],
                                   source_table=source)
            if text is None:
                log.info("table %s: CHECK (%s) does not translate to %s; dropped",
                         source.name, con.sqltext, dialect)
            else:
                out.append(sa.CheckConstraint(text, name=_name(con.name, dialect)))
    return out


def _foreign_key(source: sa.Table, con: sa.ForeignKeyConstraint, dialect: str,
                 tables: dict[str, str], schema: str | None) -> sa.ForeignKeyConstraint | None:
    parent = con.elements[0].column.table.name if con.elements else None
    if parent not in tables:
        log.info("table %s: foreign key to %s dropped: %s is not written", source.name, parent,
                 parent)
        return None
    prefix = f"{schema}.{tables[parent]}" if schema else tables[parent]
    # A table staged under another name gets generated constraint names: its namesake still
    # holds the source's names until the swap (MariaDB names foreign keys per database).
    name = _name(con.name, dialect) if tables[source.name] == source.name else None
    kwargs = {"name": name, "ondelete": con.ondelete, "onupdate": con.onupdate}
    if dialect == "postgresql":  # only PostgreSQL has deferrable constraints
        kwargs.update(deferrable=con.deferrable, initially=con.initially)
    return sa.ForeignKeyConstraint([c.name for c in con.columns],
                                   [f"{prefix}.{e.column.name}" for e in con.elements], **kwargs)


def _indexes(source: sa.Table, target: sa.Table, dialect: str) -> None:
    for index in sorted(source.indexes, key=lambda i: str(i.name)):
        if index.expressions and any(not isinstance(e, sa.Column) for e in index.expressions):
            log.info("table %s: expression index %s dropped", source.name, index.name)
            continue
        cols = [target.c[c.name] for c in index.columns]
        sa.Index(_name(index.name, dialect), *cols, unique=bool(index.unique))


def translate_table(source: sa.Table, target_md: sa.MetaData, dialect: str,
                    tables: dict[str, str], options: dict[str, dict],
                    schema: str | None) -> sa.Table:
    """Recreate one source table in ``target_md`` for the target dialect.

    ``tables`` maps every written table to its name in the target (itself, or a staging name).
    """
    keyed = _keyed_columns(source)
    columns = [_column(source, c, dialect, keyed, options.get(c.name, {}), schema,
                       target_md.info.setdefault("dropped", {}).setdefault(source.name, []))
               for c in source.columns]
    pk_cols = [c.name for c in source.primary_key.columns]
    for col in columns:
        col.primary_key = False
    constraints = _constraints(source, dialect, tables, schema)
    if not any(isinstance(c, sa.PrimaryKeyConstraint) for c in constraints) and pk_cols:
        constraints.append(sa.PrimaryKeyConstraint(*pk_cols))
    kwargs = {}
    generated = any(is_generated_key(source, c, options.get(c.name, {})) for c in source.columns)
    if dialect == "sqlite" and generated and (
            source.dialect_options["sqlite"].get("autoincrement")
            or source_dialect(source) not in (None, "sqlite")):
        # A sequence or AUTO_INCREMENT never hands out a key twice; SQLite's AUTOINCREMENT
        # (sqlite_sequence) is the same promise, a bare rowid is not.
        kwargs["sqlite_autoincrement"] = True
    target = sa.Table(tables[source.name], target_md, *columns, *constraints, schema=schema,
                      **kwargs)
    _indexes(source, target, dialect)
    return target


def _sdtype_table(metadata: Metadata, name: str, target_md: sa.MetaData, dialect: str,
                  tables: dict[str, str], schema: str | None) -> sa.Table:
    """A table built from the sdtypes alone (metadata that was not reflected)."""
    spec = metadata.tables[name]
    pk = metadata.primary_key(name)
    keyed = set(pk) | set(metadata.foreign_key_columns(name))
    for key in metadata.alternate_keys(name):
        keyed |= set(key)
    columns = []
    for col, options in spec["columns"].items():
        type_ = sdtype_type(options, dialect, keyed=col in keyed)
        generated = (pk == [col] and isinstance(type_, sa.Integer)
                     and col not in metadata.foreign_key_columns(name))
        columns.append(sa.Column(col, type_, nullable=options.get("nullable", col not in pk),
                                 autoincrement=generated))
    constraints = [sa.PrimaryKeyConstraint(*pk)] if pk else []
    constraints += [sa.UniqueConstraint(*key) for key in metadata.alternate_keys(name)]
    for rel in metadata.relationships:
        if rel["child_table_name"] == name and rel["parent_table_name"] in tables:
            parent = tables[rel["parent_table_name"]]
            prefix = f"{schema}.{parent}" if schema else parent
            constraints.append(sa.ForeignKeyConstraint(
                key_columns(rel["child_foreign_key"]),
                [f"{prefix}.{c}" for c in key_columns(rel["parent_primary_key"])]))
    return sa.Table(tables[name], target_md, *columns, *constraints, schema=schema)


def target_metadata(metadata: Metadata, tables: list[str], dialect_name: str,
                    schema: str | None, staged: dict[str, str] | None = None) -> sa.MetaData:
    """The target ``MetaData`` holding ``tables`` translated to ``dialect_name``.

    ``staged`` maps tables to the name they are created under (see ``write``'s MariaDB
    ``replace``); their foreign keys refer to the staged names of their parents.
    """
    dialect = dialect_family(dialect_name)
    target_md = sa.MetaData()
    names = {t: (staged or {}).get(t, t) for t in tables}
    for name in tables:
        source = metadata.sql_metadata.tables.get(name) if metadata.sql_metadata else None
        if source is None:
            _sdtype_table(metadata, name, target_md, dialect, names, schema)
        else:
            options = metadata.tables.get(name, {}).get("columns", {})
            translate_table(source, target_md, dialect, names, options, schema)
    return target_md


# ------------------------------------------------------------------------------------ drift
# Families that one dialect stores as another: an ENUM on SQLite is a VARCHAR with a CHECK,
# a uuid outside PostgreSQL is CHAR(36), JSON on MariaDB reflects as LONGTEXT, a boolean on
# MariaDB/SQLite may come back as an integer, an interval outside PostgreSQL is DOUBLE seconds.
_SAME_STORAGE = [{"enum", "string"}, {"uuid", "string"}, {"json", "string", "other"},
                 {"array", "json", "string", "other"}, {"boolean", "integer"},
                 {"interval", "float"}]


def _same_type(found: sa.types.TypeEngine, wanted: sa.types.TypeEngine, dialect: str) -> bool:
    a, b = family(found), family(wanted)
    if a != b:
        return dialect != "postgresql" and any({a, b} <= group for group in _SAME_STORAGE)
    if a == "string":
        la, lb = getattr(found, "length", None), getattr(wanted, "length", None)
        return la is None or lb is None or la == lb
    if a == "numeric":
        return (found.precision, found.scale) == (wanted.precision, wanted.scale) or None in (
            found.precision, wanted.precision)
    return True


def _describe(diff, dialect: str) -> str | None:
    """One line for an alembic difference, or None when it is dialect noise or harmless."""
    kind = diff[0]
    if kind == "add_column":
        return f"table {diff[2]}: column {diff[3].name} is missing in the target"
    if kind == "remove_column":
        return f"table {diff[2]}: the target has a column {diff[3].name} the source does not have"
    if kind == "modify_type":
        found, wanted = diff[5], diff[6]
        if _same_type(found, wanted, dialect):
            return None
        return f"table {diff[2]}: column {diff[3]} has type {found}, expected {wanted}"
    if kind == "modify_nullable":
        state = {True: "NULL", False: "NOT NULL"}
        return (f"table {diff[2]}: column {diff[3]} is {state[diff[5]]} in the target, expected "
                f"{state[diff[6]]}")
    if kind in ("add_fk", "remove_fk"):
        fk = diff[1]
        cols = ", ".join(c.name for c in fk.columns) if fk.columns else ", ".join(
            e.parent.name for e in fk.elements)
        where = "missing in the target" if kind == "add_fk" else "only in the target"
        return f"table {fk.table.name}: foreign key ({cols}) -> {fk.referred_table.name} is {where}"
    if kind in ("add_constraint", "remove_constraint") and isinstance(diff[1], sa.UniqueConstraint):
        con = diff[1]
        where = "missing in the target" if kind == "add_constraint" else "only in the target"
        return (f"table {con.table.name}: unique constraint ({', '.join(c.name for c in con.columns)})"
                f" is {where}")
    return None  # indexes, server defaults, comments: not part of what the load relies on


def _in_primary_key(md: sa.MetaData, schema: str | None, table: str, column: str) -> bool:
    found = md.tables.get(f"{schema}.{table}" if schema else table)
    return found is not None and column in found.primary_key.columns


def drift(conn: sa.Connection, target_md: sa.MetaData, tables: list[str],
          schema: str | None) -> list[str]:
    """Differences between the existing ``tables`` in the target and ``target_md`` (one line each)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    dialect = dialect_family(conn.dialect.name)
    wanted = set(tables)

    def include_name(name, type_, parent_names):
        if type_ == "schema":
            return name == schema
        return name in wanted if type_ == "table" else True

    def compare_type(context, inspected, column, found, expected):
        return not _same_type(found, expected, dialect)

    md = sa.MetaData()
    for name in tables:
        target_md.tables[f"{schema}.{name}" if schema else name].to_metadata(md)
    context = MigrationContext.configure(conn, opts={
        "compare_type": compare_type, "include_name": include_name,
        "include_schemas": schema is not None, "target_metadata": md})
    lines = []
    with warnings.catch_warnings():  # tables in a cycle cannot be sorted; the comparison needs no order
        warnings.filterwarnings("ignore", "Cannot correctly sort tables", sa.exc.SAWarning)
        diffs = compare_metadata(context, md)
    for diff in diffs:
        for item in diff if isinstance(diff, list) else [diff]:
            if item[0] == "modify_nullable" and _in_primary_key(md, item[1], item[2], item[3]):
                continue  # a key column is NOT NULL whatever SQLite reflects for INTEGER PRIMARY KEY
            line = _describe(item, dialect)
            if line is not None:
                lines.append(line)
    return sorted(set(lines))


# ---------------------------------------------------------------------------------- create
def create_tables(conn: sa.Connection, tables: list[sa.Table], *,
                  defer_indexes: bool) -> list[tuple[str, sa.schema.ExecutableDDLElement]]:
    """Create ``tables`` (parents first); return the DDL to run once the rows are in, as
    (table, statement).

    Primary keys, unique and CHECK constraints are part of each ``CREATE TABLE``. With
    ``defer_indexes`` (PostgreSQL, where DDL is transactional) the non-unique indexes and then
    every foreign key are returned instead: sorting a loaded table once is cheaper than growing a
    B-tree row by row, and adding a foreign key to loaded rows proves them all in one join
    instead of one lookup per row (see :mod:`hma_db.target.session`). Unique indexes enforce
    uniqueness (a foreign key may refer to one) and are built with their table. Elsewhere every
    constraint is declared up front (SQLAlchemy's order: SQLite takes cycles inline, MariaDB by
    ``ALTER TABLE``) and the session proves the keys before the commit.
    """
    dropped = tables[0].metadata.info.get("dropped", {})
    for line in (line for t in tables for line in dropped.get(t.name, [])):
        log.warning(line)
    if not defer_indexes:
        tables[0].metadata.create_all(conn, tables=tables)
        return []
    later, foreign_keys = [], []
    for table in tables:
        for column in table.columns:
            if isinstance(column.type, sa.Enum) and column.type.native_enum:
                column.type.create(conn, checkfirst=True)
        conn.execute(sa.schema.CreateTable(table, include_foreign_key_constraints=[]))
        foreign_keys += [(table.name, sa.schema.AddConstraint(fk))
                         for fk in sorted(table.foreign_key_constraints, key=_constraint_order)]
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            if index.unique:
                conn.execute(sa.schema.CreateIndex(index))
            else:
                later.append((table.name, sa.schema.CreateIndex(index)))
    return later + foreign_keys
