"""New tables of a same-dialect target created from the source's own DDL.

When the metadata carries the source's DDL (:func:`hma_db.source.schema_dump`, captured at
reflect time and never read from a model file) in the target's dialect, and every written table
is new, :func:`create_from_dump` runs its pre-data statements (types, domains, functions,
tables, partitions, defaults, sequences; on MariaDB also views and routines) with the source's
schema names changed to the target's, and returns its post-data statements (constraints,
indexes, triggers, and views on PostgreSQL and SQLite) to run after the rows: a trigger never
fires during the load. The translated tables (``target_md``) stay the model the loaders
write through; they must name the same columns in the same order as the created tables.

Anything it cannot use safely (a qualifier it cannot rewrite, two objects of one name, a
statement the target refuses, different columns) undoes what it ran and returns None, and the
caller translates as for any other target, with one log line saying why.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import sqlalchemy as sa

from hma_db.schema import Metadata
from hma_db.source import SchemaDump, schema_dump

log = logging.getLogger(__name__)

_STRING = re.compile(r"('(?:[^']|'')*')")
# Objects of which a target may hold one of the same name already (a type left by an earlier
# clone whose tables were dropped): kept as they are, like the translated ENUMs (checkfirst).
_SHARED = {"TYPE", "DOMAIN", "SEQUENCE"}


@dataclass
class DumpResult:
    """What :func:`create_from_dump` created: the tables, the DDL to run after the rows, and
    on MariaDB the statements that drop its views and routines after a failure."""

    tables: list[str]
    after_load: list[tuple[str, sa.TextClause]]
    cleanup: list[str] = field(default_factory=list)


def usable_dump(metadata: Metadata, dialect: str, tables: list[str],
                schema: str | None) -> SchemaDump | None:
    """The metadata's dump when it can build ``tables`` in a ``dialect`` target, else None."""
    dump = schema_dump(metadata)
    if dump is None:
        return None
    if dump.dialect != dialect:
        _log_not_translated(dump, dialect, tables)
        return None
    if not set(tables) <= dump.tables:
        log.info("write: %s not in the source's DDL; tables translated",
                 ", ".join(sorted(set(tables) - dump.tables)))
        return None
    if dialect != "postgresql" and set(tables) != dump.tables:
        # Their CREATE TABLE declares foreign keys inline, to tables that are not written.
        log.info("write: %s not written; tables translated",
                 ", ".join(sorted(dump.tables - set(tables))))
        return None
    if dialect == "mysql" and schema is not None:
        log.info("write: a MariaDB target database given by name; tables translated from the "
                 "source schema instead of its own DDL")
        return None
    return dump


# What a translated target cannot hold: code and views in another dialect's SQL.
_UNTRANSLATED = {"VIEW", "TRIGGER", "FUNCTION", "PROCEDURE", "MATERIALIZED VIEW", "RULE"}


def _log_not_translated(dump: SchemaDump, dialect: str, tables: list[str]) -> None:
    """One line per view, trigger or routine of the source that a clone into another dialect
    leaves out (its SQL is the source's dialect; the tables and their keys are translated)."""
    for statement in (*dump.pre_data, *dump.post_data):
        if statement.kind in _UNTRANSLATED and (not statement.tables
                                                or statement.tables & set(tables)):
            log.warning("write: %s %s of the %s source is not created in the %s target (only "
                        "clones into the same kind of database copy views, triggers and routines)",
                        statement.kind.lower(), statement.name, dump.dialect, dialect)


def qualifier_pattern(dialect: str, schemas: tuple[str, ...]) -> re.Pattern | None:
    if not schemas:
        return None
    if dialect == "mysql":
        names = ["`" + re.escape(s.replace("`", "``")) + "`" for s in schemas]
    else:
        names = ['"' + re.escape(s.replace('"', '""')) + '"' for s in schemas]
        names += [re.escape(s) for s in schemas if re.fullmatch(r"[a-z_][a-z0-9_$]*", s)]
    return re.compile(rf"(?<![\w$.\"`])(?:{'|'.join(names)})\.(?=[\w\"`])")


def requalify(sql: str, pattern: re.Pattern | None, target: str) -> str | None:
    """``sql`` with the source schemas' qualifiers replaced by ``target`` (``"name".`` or empty)
    in the code and in ``'schema.name'::regclass``; None when a string literal holds one
    elsewhere (``EXECUTE 'SELECT ... FROM sales.t'``: text that may be code, left unrewritten)."""
    if pattern is None:
        return sql
    pieces = _STRING.split(sql)
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            pieces[i] = pattern.sub(target, piece)
        elif pattern.search(piece[1:-1]):
            if i + 1 == len(pieces) or not pieces[i + 1].startswith("::reg"):
                return None
            pieces[i] = "'" + pattern.sub(target, piece[1:-1]) + "'"
    return "".join(pieces)


def _prepared(conn: sa.Connection, dump: SchemaDump, tables: list[str],
              schema: str | None) -> tuple[list, list, str] | None:
    """Pre- and post-data statements for ``tables``, rewritten for the target, and the target
    schema's qualifier (``"public".``; empty on MariaDB and SQLite); or None."""
    quote = conn.dialect.identifier_preparer.quote
    target = ""
    if dump.dialect == "postgresql":
        target = quote(schema or conn.exec_driver_sql("SELECT current_schema()").scalar()) + "."
    same = dump.dialect == "postgresql" and target == quote(dump.schemas[0]) + "." and len(
        dump.schemas) == 1
    pattern = None if same else qualifier_pattern(dump.dialect, dump.schemas)
    wanted = set(tables)
    sections = []
    for section in (dump.pre_data, dump.post_data):
        kept = []
        for statement in section:
            if not statement.tables <= wanted:
                continue
            sql = requalify(statement.sql, pattern, target)
            if sql is None:
                log.warning("write: %s %s names its schema where it cannot be rewritten; tables "
                            "translated", statement.kind.lower(), statement.name)
                return None
            kept.append((statement, sql))
        sections.append(kept)
    made = [(s.kind, s.name) for s, sql in sections[0] if sql.lstrip().upper().startswith("CREATE")]
    if len(made) != len(set(made)):  # two source schemas each had one of that name
        log.warning("write: the source schemas %s hold objects of the same name; tables "
                    "translated", ", ".join(dump.schemas))
        return None
    return sections[0], sections[1], target


def _exists(conn: sa.Connection, kind: str, name: str, qualifier: str) -> bool:
    function = "to_regtype" if kind in ("TYPE", "DOMAIN") else "to_regclass"
    quoted = conn.dialect.identifier_preparer.quote(name)
    return conn.execute(sa.text(f"SELECT {function}(:n) IS NOT NULL"),
                        {"n": qualifier + quoted}).scalar()


def _run(conn: sa.Connection, sql: str) -> None:
    """One statement as written: no parameter markers (``%``, ``:``) are interpreted."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def _columns_match(conn: sa.Connection, tables: list[str], target_md: sa.MetaData,
                   schema: str | None) -> bool:
    inspector = sa.inspect(conn)
    for name in tables:
        model = target_md.tables[f"{schema}.{name}" if schema else name]
        found = [c["name"] for c in inspector.get_columns(name, schema=schema)]
        if found != [c.name for c in model.columns]:
            log.warning("write: table %s from the source's DDL has columns %s, the model %s; "
                        "tables translated", name, found, [c.name for c in model.columns])
            return False
    return True


def create_from_dump(conn: sa.Connection, dump: SchemaDump, tables: list[str],
                     schema: str | None, target_md: sa.MetaData,
                     created: list[str]) -> DumpResult | None:
    """Create ``tables`` from the source's DDL; return what to run after the rows, or None
    (everything it ran undone) when the dump cannot be used. ``created`` receives the tables
    as they are made (MariaDB commits each at once: a failure later must drop them)."""
    prepared = _prepared(conn, dump, tables, schema)
    if prepared is None:
        return None
    pre, post, qualifier = prepared
    if dump.dialect == "mysql":
        return _create_mysql(conn, pre, post, tables, target_md, created)
    conn.exec_driver_sql("SAVEPOINT hma_dump")
    try:
        if dump.dialect == "postgresql":  # bodies name tables created later, as in pg_dump
            conn.exec_driver_sql("SET LOCAL check_function_bodies = off")
        for statement, sql in pre:
            if statement.kind in _SHARED and sql.lstrip().upper().startswith("CREATE") \
                    and _exists(conn, statement.kind, statement.name, qualifier):
                log.info("write: %s %s exists in the target; kept", statement.kind.lower(),
                         statement.name)
                continue
            if statement.kind in ("FUNCTION", "PROCEDURE"):
                sql = re.sub(r"^\s*CREATE ", "CREATE OR REPLACE ", sql, count=1)
            _run(conn, sql)
        if not _columns_match(conn, tables, target_md, schema):
            conn.exec_driver_sql("ROLLBACK TO SAVEPOINT hma_dump")
            return None
    except (sa.exc.DBAPIError, conn.dialect.loaded_dbapi.Error) as exc:
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT hma_dump")
        _refused(exc)
        return None
    conn.exec_driver_sql("RELEASE SAVEPOINT hma_dump")
    created += tables
    return DumpResult(list(tables), _after_load(post))


def _refused(exc: Exception) -> None:
    orig = getattr(exc, "orig", None) or exc  # _run raises the driver's own errors
    log.warning("write: the target refused the source's DDL (%s); tables translated",
                (str(orig).strip().splitlines() or [type(orig).__name__])[0])


def _after_load(post: list) -> list[tuple[str, sa.TextClause]]:
    # sa.text reads ":name" as a parameter; "\:" is a plain colon.
    return [(sorted(s.tables)[0] if s.tables else s.name, sa.text(sql.replace(":", "\\:")))
            for s, sql in post]


def _create_mysql(conn: sa.Connection, pre: list, post: list, tables: list[str],
                  target_md: sa.MetaData, created: list[str]) -> DumpResult | None:
    """MariaDB commits each DDL statement: what was made is recorded as it is made, and
    dropped again when the dump cannot be used."""
    quote = conn.dialect.identifier_preparer.quote
    cleanup: list[str] = []
    before = conn.exec_driver_sql("SELECT @@SESSION.foreign_key_checks").scalar()
    conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")  # a parent may come later
    try:
        usable = False
        try:
            for statement, sql in pre:
                _run(conn, sql)
                if statement.kind == "TABLE":
                    created.append(statement.name)
                else:  # dropped first: a view over a table goes before it
                    cleanup.insert(0, f"DROP {statement.kind} IF EXISTS {quote(statement.name)}")
            usable = _columns_match(conn, tables, target_md, None)
        except (sa.exc.DBAPIError, conn.dialect.loaded_dbapi.Error) as exc:
            _refused(exc)
        if not usable:
            for sql in cleanup + [f"DROP TABLE IF EXISTS {quote(n)}" for n in reversed(created)]:
                conn.exec_driver_sql(sql)
            created.clear()
            return None
    finally:
        conn.exec_driver_sql(f"SET SESSION foreign_key_checks = {int(before)}")
    return DumpResult(list(tables), _after_load(post), cleanup)
