"""The hostile-schema corpus of tests/corpus/: its shapes, how each SQL file is loaded, and the
checks that a clone of a shape kept every key and constraint of the source.

A shape is a few tables that show one thing real databases do and Chinook and Northwind do not
(a partitioned key, a money column, a quote in a name...). tests/test_corpus.py clones each shape
on its own (``include=`` its tables), so one shape that fails cannot hide another.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

CORPUS = Path(__file__).resolve().parent / "corpus"
TARGETS = ("sqlite", "postgresql", "mariadb")


@dataclass(frozen=True)
class Shape:
    """One shape of the corpus: its source dialect, name, tables and (PostgreSQL) schema."""

    source: str
    name: str
    tables: tuple[str, ...]
    schema: str | None = None

    @property
    def id(self) -> str:
        return f"{self.source}-{self.name}"


def _shapes(source: str, *entries) -> list[Shape]:
    return [Shape(source, name, tuple(tables), *rest) for name, tables, *rest in entries]


SHAPES: list[Shape] = [
    *_shapes(
        "postgresql",
        ("partition_range", ["pr_customer", "pr_payment"]),
        ("partition_list", ["pl_event"]),
        ("identity_generated", ["ig_invoice", "ig_line"]),
        ("domain_enum", ["de_person"]),
        ("arrays", ["ar_post"]),
        ("json", ["js_document"]),
        ("uuid", ["uu_account", "uu_session"]),
        ("interval", ["iv_task"]),
        ("network", ["nw_device"]),
        ("money", ["mo_price"]),
        ("ranges", ["rg_booking"]),
        ("tsvector", ["ts_article"]),
        ("xml", ["xm_feed"]),
        ("bits", ["bt_flags"]),
        ("bytea", ["by_file"]),
        ("numeric_plain", ["nu_measure"]),
        ("cross_schema", ["client", "visit"], "sales"),
        ("fk_to_unique", ["fu_product", "fu_order_line"]),
        ("partial_unique", ["pu_coupon"]),
        ("two_fks_one_parent", ["tf_airport", "tf_flight"]),
        ("composite_fk", ["cf_order", "cf_order_line"]),
        ("no_primary_key", ["np_user", "np_event", "np_log"]),
        ("hostile_names", ["select", "MixedCase", "café_ñandú", 'we"ird;name']),
        ("wide_200", ["wd_wide"]),
        ("long_text", ["lt_document"]),
        ("null_only", ["nl_parent", "nl_child"]),
        ("narrow_unique", ["nu_state"]),
        ("datetime_unique", ["du_rental"]),
    ),
    *_shapes(
        "mariadb",
        ("enum", ["m_ticket"]),
        ("set", ["m_film"]),
        ("year", ["m_vintage"]),
        ("bit", ["m_switch"]),
        ("json", ["m_config"]),
        ("tinyint1", ["m_member"]),
        ("unsigned", ["m_counter"]),
        ("auto_increment", ["m_author", "m_book"]),
        ("geometry", ["m_place"]),
        ("blob", ["m_attachment"]),
        ("latin1", ["m_client_latin1"]),
    ),
    *_shapes(
        "sqlite",
        ("foreign_type_names", ["s_event"]),
        ("no_declared_type", ["s_loose"]),
        ("without_rowid", ["s_code", "s_usage"]),
        ("strict", ["s_strict"]),
    ),
]


# ----------------------------------------------------------------------------- loading
def split_statements(script: str) -> list[str]:
    """The statements of a SQL script: split on ``;`` outside quotes ('', "", ``) and
    comments, so a semicolon inside a name or a string does not end a statement."""
    token = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`(?:[^`]|``)*`|--[^\n]*|;|[^'\"`;-]+|-")
    statements, current = [], []
    for match in token.finditer(script):
        piece = match.group()
        if piece == ";":
            statements.append("".join(current).strip())
            current = []
        elif not piece.startswith("--"):
            current.append(piece)
    statements.append("".join(current).strip())
    return [s for s in statements if s]


def load_corpus(dialect: str, url: str) -> None:
    """Load tests/corpus/<dialect>.sql into the empty database at ``url`` without a client
    program: the driver runs PostgreSQL's script in one call, SQLite's with executescript,
    and MariaDB's statement by statement."""
    script = (CORPUS / f"{dialect}.sql").read_text(encoding="utf-8")
    if dialect == "sqlite":
        with sqlite3.connect(sa.make_url(url).database) as conn:
            conn.executescript(script)
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        if dialect == "postgresql":  # no parameters: '%' in the script is not a placeholder
            conn.connection.driver_connection.execute(script)
        else:
            cursor = conn.connection.driver_connection.cursor()
            for statement in split_statements(script):
                cursor.execute(statement)
    engine.dispose()


# ----------------------------------------------------------------------------- checks
def _partial(index: dict) -> bool:
    options = index.get("dialect_options") or {}
    return any(k.endswith("_where") and v is not None for k, v in options.items())


def constraints(url: str, tables: tuple[str, ...], schema: str | None = None) -> dict[str, dict]:
    """Per table: primary key, foreign keys, unique column sets (constraints and unique
    indexes, partial ones too) and NOT NULL columns, as the database reports them; the same
    shape for a source and a target, so the two compare with ``differences``. ``partial`` lists
    the partial unique indexes (MariaDB has none). One query per kind (``get_multi_*``), not per
    table: reflection is most of this test's own time."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        inspector = sa.inspect(engine)
        names = list(tables)
        pks, uniques, indexes, fks, columns = (
            {key[1]: value for key, value in get(schema=schema, filter_names=names).items()}
            for get in (inspector.get_multi_pk_constraint, inspector.get_multi_unique_constraints,
                        inspector.get_multi_indexes, inspector.get_multi_foreign_keys,
                        inspector.get_multi_columns))
    finally:
        engine.dispose()
    return {t: _table_constraints(pks[t], uniques[t], indexes[t], fks[t], columns[t])
            for t in tables}


def _table_constraints(pk: dict, uniques: list, indexes: list, fks: list, columns: list) -> dict:
    key = tuple(pk["constrained_columns"])
    unique = {tuple(u["column_names"]) for u in uniques}
    unique |= {tuple(i["column_names"]) for i in indexes if i.get("unique")}
    unique.discard(key)  # SQLite and MariaDB list the key's own index
    return {"primary key": key, "unique": sorted(unique),
            "partial": sorted(tuple(i["column_names"]) for i in indexes
                              if i.get("unique") and _partial(i)),
            "foreign keys": sorted((tuple(fk["constrained_columns"]), fk["referred_table"],
                                    tuple(fk["referred_columns"])) for fk in fks),
            "not null": sorted({c["name"] for c in columns if not c["nullable"]} - set(key))}


def differences(expected: dict[str, dict], found: dict[str, dict]) -> list[str]:
    """One line per constraint of ``expected`` (the source) that ``found`` (the target) lacks
    or has more of, such as ``client: foreign keys ('country_code',) -> country ('code',)
    missing``."""
    lines = []
    for table, wanted in expected.items():
        got = found.get(table, {})
        for kind, value in wanted.items():
            if kind == "partial":  # partial ones are among "unique" too
                continue
            if kind == "primary key":
                if got.get(kind) != value:
                    lines.append(f"{table}: primary key {value} in the source, "
                                 f"{got.get(kind)} in the target")
                continue
            for item in value:
                if item not in got.get(kind, []):
                    lines.append(f"{table}: {kind} {_shown(item)} missing in the target")
            for item in got.get(kind, []):
                if item not in value:
                    lines.append(f"{table}: {kind} {_shown(item)} only in the target")
    return lines


def _shown(item) -> str:
    if isinstance(item, tuple) and len(item) == 3 and isinstance(item[1], str):
        return f"({', '.join(item[0])}) -> {item[1]} ({', '.join(item[2])})"
    return f"({', '.join(item)})" if isinstance(item, tuple) else str(item)


def row_counts(url: str, tables: tuple[str, ...]) -> dict[str, int]:
    """Rows per table in the database at ``url`` (default schema)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(sa.select(sa.func.count()).select_from(sa.table(t))).scalar()
                    for t in tables}
    finally:
        engine.dispose()


def _numeric_declared(declared: str) -> bool:
    """SQLite's INTEGER or REAL affinity, or a NUMERIC/DECIMAL name: a column whose values
    must be numbers (a DATETIME also has NUMERIC affinity, and holds text)."""
    name = declared.upper()
    return any(word in name for word in ("INT", "REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL"))


def sqlite_type_mismatches(url: str, tables: tuple[str, ...]) -> list[str]:
    """Columns of a SQLite target declared as numbers that hold text or blobs: SQLite stores
    what it is given, so a load into it proves nothing about the values' types."""
    found = []
    with sqlite3.connect(sa.make_url(url).database) as conn:
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            for _, column, declared, *_ in conn.execute(f"PRAGMA table_info({quoted})"):
                if not _numeric_declared(declared or ""):
                    continue
                col = '"' + column.replace('"', '""') + '"'
                bad = conn.execute(f"SELECT COUNT(*), MIN({col}) FROM {quoted} WHERE typeof({col}) "
                                   "NOT IN ('integer', 'real', 'null')").fetchone()
                if bad[0]:
                    found.append(f"{table}.{column} {declared}: {bad[0]} values that are not "
                                 f"numbers, such as {bad[1]!r}")
    return found


_PG_TYPES = """
    SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
        || CASE c.relkind WHEN 'p' THEN ' (partitioned table)' ELSE '' END
    FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = COALESCE(:schema, current_schema()) AND c.relname = ANY(:tables)
      AND a.attnum > 0 AND NOT a.attisdropped"""
_MYSQL_TYPES = """
    SELECT c.TABLE_NAME, c.COLUMN_NAME, CONCAT(c.COLUMN_TYPE, ' ', COALESCE(c.CHARACTER_SET_NAME, ''))
    FROM information_schema.COLUMNS AS c
    WHERE c.TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND c.TABLE_NAME IN :tables"""


def column_types(url: str, tables: tuple[str, ...], schema: str | None = None) -> dict[str, str]:
    """``{"table.column": type}`` as the database declares it (PostgreSQL's format_type, with
    "(partitioned table)" on a partitioned table's columns; MariaDB's COLUMN_TYPE and character
    set; SQLite's affinity and table options): a same-dialect clone must declare what the
    source does."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                rows = [(t, column, _sqlite_kind(conn, t, declared)) for t in tables
                        for _, column, declared, *_ in conn.exec_driver_sql(
                            "SELECT * FROM pragma_table_info(?)", (t,))]
            elif engine.dialect.name == "postgresql":
                rows = conn.execute(sa.text(_PG_TYPES), {"schema": schema, "tables": list(tables)})
            else:
                query = sa.text(_MYSQL_TYPES).bindparams(sa.bindparam("tables", expanding=True))
                rows = conn.execute(query, {"schema": schema, "tables": list(tables)})
            return {f"{t}.{c}": str(declared).strip() for t, c, declared in rows}
    finally:
        engine.dispose()


def _sqlite_kind(conn, table: str, declared: str) -> str:
    """A SQLite column's affinity (what SQLite does with a value: the name itself matters
    little, ``NUMBER(10,2)`` and ``NUMERIC(10, 2)`` behave alike) and its table's STRICT and
    WITHOUT ROWID options."""
    name = (declared or "").upper()
    if "INT" in name:
        affinity = "INTEGER"
    elif any(word in name for word in ("CHAR", "CLOB", "TEXT")):
        affinity = "TEXT"
    elif not name or "BLOB" in name:
        affinity = "BLOB"
    elif any(word in name for word in ("REAL", "FLOA", "DOUB")):
        affinity = "REAL"
    else:
        affinity = "ANY" if name == "ANY" else "NUMERIC"
    strict, without_rowid = conn.exec_driver_sql(
        "SELECT strict, wr FROM pragma_table_list(?)", (table,)).one()
    return f"{affinity} affinity" + (" (STRICT)" if strict else "") + (
        " (WITHOUT ROWID)" if without_rowid else "")


def type_differences(expected: dict[str, str], found: dict[str, str]) -> list[str]:
    """One line per column whose declared type differs (or that is missing)."""
    return [f"{column}: {declared} in the source, {found.get(column, 'no column')} in the target"
            for column, declared in sorted(expected.items()) if found.get(column) != declared]


def table_names(url: str) -> list[str]:
    """The tables of the database at ``url`` (default schema)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


# ----------------------------------------------------------------------------- same dialect
_PG_FACTS = """
    SELECT c.relname, 'column ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
        || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
        || COALESCE(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
        || CASE a.attgenerated WHEN 's' THEN ' GENERATED' ELSE '' END
        || CASE WHEN a.attidentity <> '' THEN ' IDENTITY ' || a.attidentity::text ELSE '' END
    FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = COALESCE(:schema, current_schema()) AND c.relname = ANY(:tables)
      AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT c.relname, 'constraint ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
    FROM pg_constraint AS k JOIN pg_class AS c ON c.oid = k.conrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = COALESCE(:schema, current_schema()) AND c.relname = ANY(:tables)
    UNION ALL
    SELECT c.relname, 'index ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = COALESCE(:schema, current_schema()) AND c.relname = ANY(:tables)
    UNION ALL
    SELECT c.relname, 'trigger ' || pg_get_triggerdef(t.oid)
    FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = COALESCE(:schema, current_schema()) AND c.relname = ANY(:tables)
      AND NOT t.tgisinternal
    UNION ALL
    SELECT p.relname, 'partition ' || c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid)
    FROM pg_inherits AS h JOIN pg_class AS c ON c.oid = h.inhrelid
    JOIN pg_class AS p ON p.oid = h.inhparent
    JOIN pg_namespace AS n ON n.oid = p.relnamespace
    WHERE n.nspname = COALESCE(:schema, current_schema()) AND p.relname = ANY(:tables)"""


def schema_facts(url: str, tables: tuple[str, ...], schema: str | None = None) -> set[str]:
    """What a same-dialect clone must keep of each table, one line per fact, names of schemas
    left out (a clone writes every table into its target's one schema): PostgreSQL's columns
    (type, NOT NULL, default, generated, identity), constraints, indexes, triggers and
    partitions as the catalog prints them; MariaDB's ``SHOW CREATE TABLE`` and triggers;
    SQLite's ``sqlite_master`` entries."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            name = engine.dialect.name
            if name == "postgresql":
                rows = conn.execute(sa.text(_PG_FACTS),
                                    {"schema": schema, "tables": list(tables)}).all()
                schemas = {r[0] for r in conn.exec_driver_sql(
                    "SELECT nspname FROM pg_namespace").all()}
                qualifier = re.compile(r'\b(?:' + "|".join(re.escape(s) for s in schemas)
                                       + r')\.(?=["\w])')
                return {f"{t}: {qualifier.sub('', fact)}" for t, fact in rows}
            if name == "sqlite":
                return {f"{t}: {kind} {sql}" for kind, t, sql in conn.exec_driver_sql(
                    "SELECT type, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL")
                    if t in tables}
            facts = set()
            for table in tables:
                quoted = conn.dialect.identifier_preparer.quote(table)
                create = conn.exec_driver_sql(f"SHOW CREATE TABLE {quoted}").one()[1]
                facts.add(f"{table}: {re.sub(r' AUTO_INCREMENT=[0-9]+', '', create)}")
            for table, trigger, timing, event, body in conn.exec_driver_sql(
                    "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, "
                    "ACTION_STATEMENT FROM information_schema.TRIGGERS "
                    "WHERE TRIGGER_SCHEMA = DATABASE()"):
                if table in tables:
                    facts.add(f"{table}: trigger {trigger} {timing} {event} {body}")
            return facts
    finally:
        engine.dispose()


def insert_without_defaults(url: str, tables: tuple[str, ...]) -> list[str]:
    """An application's INSERT that names only the columns without a default (NOT NULL, not
    generated, not numbered by the database), per table, in a transaction rolled back: the
    values are copied from one row on the server, an integer key column takes ``MAX + 1``.
    Returns one line per INSERT the target refused. A table whose key or unique column is text
    without a default (no value of the application's is known) or that has no row is skipped."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    refused = []
    try:
        with engine.connect() as conn:
            for name in tables:
                table = sa.Table(name, sa.MetaData(), autoload_with=conn)
                keyed = {c.name for c in table.primary_key.columns}
                for con in table.constraints:
                    if isinstance(con, sa.UniqueConstraint):
                        keyed |= {c.name for c in con.columns}
                keyed |= {c.name for i in table.indexes if i.unique for c in i.columns}
                wanted = [c for c in table.columns
                          if not c.nullable and c.server_default is None and c.computed is None
                          and c.identity is None and c.autoincrement is not True]
                if not wanted:  # every column has a default or may be NULL
                    continue
                numbered = [c for c in wanted if c.name in keyed]
                if any(not isinstance(c.type, sa.Integer) or c.foreign_keys for c in numbered) \
                        or not conn.execute(sa.select(sa.func.count()).select_from(table)).scalar():
                    continue
                other = table.alias("other")
                values = [sa.select(sa.func.coalesce(sa.func.max(other.c[c.name]), 0) + 1)
                          .scalar_subquery() if c in numbered else c for c in wanted]
                statement = sa.insert(table).from_select(
                    [c.name for c in wanted], sa.select(*values).select_from(table).limit(1))
                try:  # in the transaction the reads began, rolled back whatever happens
                    conn.execute(statement)
                except sa.exc.DBAPIError as exc:
                    refused.append(f"{name}: {str(exc.orig).strip().splitlines()[0]}")
                finally:
                    conn.rollback()
    finally:
        engine.dispose()
    return refused
