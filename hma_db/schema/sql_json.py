"""The reflected SQL schema as plain data, so a JSON model recreates the same target tables.

:func:`hma_db.source.reflect` keeps the source's SQLAlchemy ``Table`` objects in
``Metadata.sql_metadata``; the writer translates them to the target's dialect. A pickled model
keeps those objects; the JSON model (:mod:`hma_db.synthesizer.files`) holds only plain data and builds
nothing but declared values when it loads, so :func:`schema_to_dict` writes each table as::

    {"name": "Employee", "schema": null, "dialect_kwargs": {"sqlite_autoincrement": true},
     "columns": [{"name": "BirthDate", "nullable": true,
                  "type": {"type": "DATETIME", "dialect": null, "args": {}}}, ...],
     "constraints": [{"kind": "primary_key", "name": "PK_Employee", "columns": ["EmployeeId"]},
                     {"kind": "foreign_key", "name": null, "columns": ["ReportsTo"],
                      "table": "Employee", "referred_columns": ["EmployeeId"],
                      "ondelete": "NO ACTION", ...}, ...],
     "indexes": [{"name": "IFK_EmployeeReportsTo", "columns": ["ReportsTo"], "unique": false}]}

A type is a class name and its constructor arguments as plain values (a nested type for an
array's items or a domain's base type, ``{"sql": text}`` for SQL text). :func:`schema_from_dict`
looks the name up only among SQLAlchemy's public type classes (``sqlalchemy.types`` and the
``postgresql``, ``mysql`` and ``sqlite`` dialect packages; not ``PickleType``, which unpickles
what it reads) and hma_db's ``RawType``; anything else is a :class:`~hma_db.ModelFileError`.

SQL text in the file (CHECK constraints, server defaults, generated-column expressions) is data:
loading never runs it, and a CHECK reaches a target only through
:func:`hma_db.target.check_sql.translate_check`, which keeps comparisons and ``IN`` lists only.
Not kept: expression indexes (the writer does not recreate them either), comments, and
constructor arguments that are not plain values (such as an enum's ``values_callable``); a type
whose class is not public is written as a ``RawType`` of its SQL spelling.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from hma_db.errors import ModelFileError
from hma_db.schema.sqltypes import RawType

logger = logging.getLogger(__name__)

_NAMESPACES = {None: sa.types, "postgresql": postgresql, "mysql": mysql, "sqlite": sqlite}
_PLAIN = (str, int, float, bool, type(None))
# An enum's own keywords are not in its constructor's signature (it takes **kw).
_ENUM_KEYWORDS = ("native_enum", "create_constraint", "validate_strings")
# Not kept: the type's MetaData, and a deprecated attribute of SQLAlchemy's schema types.
_NOT_ARGUMENTS = {"self", "metadata", "inherit_schema"}
_IDENTITY = ("always", "start", "increment", "minvalue", "maxvalue", "cycle", "cache")


# ------------------------------------------------------------------------------------- write
def schema_to_dict(sql_metadata: sa.MetaData) -> dict[str, Any]:
    """The tables of ``sql_metadata`` as plain data (see the module docstring)."""
    return {"tables": [_table_to_dict(t) for t in sql_metadata.tables.values()]}


def _table_to_dict(table: sa.Table) -> dict[str, Any]:
    constraints = []
    for con in table.constraints:
        entry = _constraint_to_dict(con)
        if entry is not None:
            constraints.append(entry)
    constraints.sort(key=lambda c: (c["kind"], str(c.get("name")), c.get("columns", [])))
    indexes = []
    for index in sorted(table.indexes, key=lambda i: str(i.name)):
        if any(not isinstance(e, sa.Column) for e in index.expressions):
            logger.debug("table %s: expression index %s not kept", table.name, index.name)
            continue
        indexes.append({"name": index.name, "columns": [c.name for c in index.columns],
                        "unique": bool(index.unique), **_dialect_kwargs(index)})
    return {"name": table.name, "schema": table.schema,
            "columns": [_column_to_dict(c) for c in table.columns],
            "constraints": constraints, "indexes": indexes, **_dialect_kwargs(table)}


def _column_to_dict(column: sa.Column) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": column.name, "type": type_to_dict(column.type),
                             "nullable": bool(column.nullable)}
    if column.autoincrement != "auto":
        entry["autoincrement"] = column.autoincrement
    if column.identity is not None:
        entry["identity"] = {k: getattr(column.identity, k) for k in _IDENTITY
                             if getattr(column.identity, k, None) is not None}
    default = column.server_default
    if isinstance(default, sa.DefaultClause):
        entry["server_default"] = str(default.arg)
    if column.computed is not None:
        entry["computed"] = {"sqltext": str(column.computed.sqltext),
                             "persisted": column.computed.persisted}
    return entry


def _dialect_kwargs(item: sa.Table | sa.Constraint | sa.Index) -> dict[str, Any]:
    """``{"dialect_kwargs": {...}}`` with the options set (``sqlite_autoincrement``,
    ``mysql_engine``, ``postgresql_where``...), or {}."""
    kwargs = {k: _value_to_data(v) for k, v in item.dialect_kwargs.items() if v is not None}
    kwargs = {k: v for k, v in kwargs.items() if v is not _SKIP}
    return {"dialect_kwargs": kwargs} if kwargs else {}


def _constraint_to_dict(con: sa.Constraint) -> dict[str, Any] | None:
    columns = [c.name for c in con.columns] if hasattr(con, "columns") else []
    if isinstance(con, sa.PrimaryKeyConstraint):
        return {"kind": "primary_key", "name": con.name, "columns": columns} if columns else None
    if isinstance(con, sa.UniqueConstraint):
        return {"kind": "unique", "name": con.name, "columns": columns, **_dialect_kwargs(con)}
    if isinstance(con, sa.ForeignKeyConstraint):
        return {"kind": "foreign_key", "name": con.name,
                "columns": [e.parent.name for e in con.elements],
                "table": con.referred_table.name, "referred_schema": con.referred_table.schema,
                "referred_columns": [e.column.name for e in con.elements],
                "ondelete": con.ondelete, "onupdate": con.onupdate,
                "deferrable": con.deferrable, "initially": con.initially}
    if isinstance(con, sa.CheckConstraint):
        return {"kind": "check", "name": con.name, "sqltext": str(con.sqltext)}
    return None


def type_to_dict(type_: sa.types.TypeEngine) -> dict[str, Any]:
    """One column type as ``{"type": class name, "dialect": package or None, "args": {...}}``."""
    if isinstance(type_, RawType):
        return {"type": "RawType", "dialect": "hma_db", "args": {"name": type_.name}}
    cls = type(type_)
    dialect = next((d for d in ("postgresql", "mysql", "sqlite")
                    if cls.__module__.startswith(f"sqlalchemy.dialects.{d}")), None)
    if _NAMESPACES[dialect].__dict__.get(cls.__name__) is not cls:
        spelling = _spelling(type_, dialect)
        logger.info("type %s is not a public SQLAlchemy type; kept as its SQL name %s",
                    cls.__name__, spelling)
        return {"type": "RawType", "dialect": "hma_db", "args": {"name": spelling}}
    args: dict[str, Any] = {}
    for name, default, variadic in _parameters(cls):
        value = getattr(type_, name, default)
        if variadic:
            if isinstance(value, (list, tuple)) and all(isinstance(v, _PLAIN) for v in value):
                args["*"] = list(value)
            continue
        if _same(value, default):
            continue
        data = _value_to_data(value)
        if data is _SKIP:
            logger.debug("type %s: argument %s=%r not kept", cls.__name__, name, value)
            continue
        args[name] = data
    return {"type": cls.__name__, "dialect": dialect, "args": args}


_SKIP = object()


def _parameters(cls: type) -> list[tuple[str, Any, bool]]:
    """(name, default, variadic) of the constructor parameters along the class's bases."""
    found: dict[str, tuple[str, Any, bool]] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        for param in params:
            if param.name in _NOT_ARGUMENTS or param.name.startswith("_") \
                    or param.kind is param.VAR_KEYWORD or param.name in found:
                continue
            variadic = param.kind is param.VAR_POSITIONAL
            found[param.name] = (param.name, None if variadic else param.default, variadic)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break  # a constructor without **kw passes nothing else on to its bases
    if issubclass(cls, sa.Enum):
        found.update({k: (k, None, False) for k in _ENUM_KEYWORDS if k not in found})
    return list(found.values())


def _same(value: Any, default: Any) -> bool:
    try:
        return default is not inspect.Parameter.empty and bool(value == default)
    except Exception:  # noqa: BLE001 - a value that cannot compare with its default is kept
        return False


def _value_to_data(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _PLAIN) for v in value):
        return list(value)
    if isinstance(value, sa.types.TypeEngine):
        return type_to_dict(value)
    if isinstance(value, sa.sql.ClauseElement):
        return {"sql": str(value)}
    return _SKIP


def _spelling(type_: sa.types.TypeEngine, dialect: str | None) -> str:
    try:
        return type_.compile(dialect=_NAMESPACES[dialect].dialect() if dialect else None)
    except Exception:  # noqa: BLE001 - a type without a spelling is written as text
        return "TEXT"


# -------------------------------------------------------------------------------------- read
def schema_from_dict(data: Any) -> sa.MetaData:
    """Rebuild the ``MetaData`` that :func:`schema_to_dict` wrote.

    Raises:
        ModelFileError: the data names a type that is not a public SQLAlchemy type, a column or
            table that does not exist, or is not shaped as written.
    """
    try:
        return _schema_from_dict(data)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, sa.exc.ArgumentError) as exc:
        raise ModelFileError(f"The model's SQL schema is damaged: {type(exc).__name__}: {exc}") \
            from exc


def _schema_from_dict(data: dict[str, Any]) -> sa.MetaData:
    md = sa.MetaData()
    entries = data["tables"]
    tables = {(e.get("schema"), e["name"]): _table_from_dict(e, md) for e in entries}
    for entry in entries:  # foreign keys once every table exists: cycles and self-references
        table = tables[(entry.get("schema"), entry["name"])]
        for con in entry["constraints"]:
            if con["kind"] != "foreign_key":
                continue
            parent = tables.get((con.get("referred_schema"), con["table"]))
            if parent is None:
                raise ModelFileError(
                    f"The model's SQL schema is damaged: table {entry['name']} has a foreign "
                    f"key to {con['table']}, which the schema does not have.")
            table.append_constraint(sa.ForeignKeyConstraint(
                con["columns"], [parent.c[c] for c in con["referred_columns"]], name=con["name"],
                ondelete=con.get("ondelete"), onupdate=con.get("onupdate"),
                deferrable=con.get("deferrable"), initially=con.get("initially")))
    return md


def _table_from_dict(entry: dict[str, Any], md: sa.MetaData) -> sa.Table:
    keys = next((c["columns"] for c in entry["constraints"] if c["kind"] == "primary_key"), [])
    columns = [_column_from_dict(c, entry["name"], c["name"] in keys) for c in entry["columns"]]
    constraints = []
    for con in entry["constraints"]:
        if con["kind"] == "primary_key":
            constraints.append(sa.PrimaryKeyConstraint(*con["columns"], name=con["name"]))
        elif con["kind"] == "unique":
            constraints.append(sa.UniqueConstraint(*con["columns"], name=con["name"],
                                                   **_options(con, entry["name"])))
        elif con["kind"] == "check":
            constraints.append(sa.CheckConstraint(sa.text(con["sqltext"]), name=con["name"]))
        elif con["kind"] != "foreign_key":
            raise ModelFileError(f"The model's SQL schema is damaged: table {entry['name']} has "
                                 f"a constraint of unknown kind {con['kind']!r}.")
    table = sa.Table(entry["name"], md, *columns, *constraints, schema=entry.get("schema"),
                     **_options(entry, entry["name"]))
    for index in entry.get("indexes", []):
        sa.Index(index["name"], *[table.c[c] for c in index["columns"]],
                 unique=bool(index["unique"]), **_options(index, entry["name"]))
    return table


def _options(entry: dict[str, Any], table: str) -> dict[str, Any]:
    options = entry.get("dialect_kwargs", {})
    if not all(isinstance(k, str) and "_" in k for k in options):
        raise ModelFileError(f"The model's SQL schema is damaged: table {table} has the "
                             f"dialect options {sorted(options)!r}.")
    return {k: _data_to_value(v, table) for k, v in options.items()}


def _column_from_dict(entry: dict[str, Any], table: str, primary_key: bool) -> sa.Column:
    args: list[Any] = []
    if "identity" in entry:
        args.append(sa.Identity(**{k: v for k, v in entry["identity"].items() if k in _IDENTITY}))
    if "computed" in entry:
        args.append(sa.Computed(sa.text(entry["computed"]["sqltext"]),
                                persisted=entry["computed"].get("persisted")))
    if "server_default" in entry:
        args.append(sa.DefaultClause(sa.text(entry["server_default"])))
    autoincrement = entry.get("autoincrement", "auto")
    if autoincrement not in (True, False, "auto", "ignore_fk"):
        raise ModelFileError(f"The model's SQL schema is damaged: column {table}.{entry['name']} "
                             f"has autoincrement {autoincrement!r}.")
    return sa.Column(entry["name"], type_from_dict(entry["type"], f"{table}.{entry['name']}"),
                     *args, nullable=bool(entry["nullable"]), primary_key=primary_key,
                     autoincrement=autoincrement)


def type_from_dict(data: dict[str, Any], where: str = "a column") -> sa.types.TypeEngine:
    """The type :func:`type_to_dict` wrote; only public SQLAlchemy types and ``RawType``."""
    name, dialect, args = data["type"], data.get("dialect"), dict(data.get("args", {}))
    if dialect == "hma_db" and name == "RawType":
        return RawType(str(args["name"]))
    namespace = _NAMESPACES.get(dialect) if isinstance(dialect, (str, type(None))) else None
    cls = namespace.__dict__.get(name) if namespace is not None and isinstance(name, str) \
        else None
    if not (isinstance(cls, type) and issubclass(cls, sa.types.TypeEngine)) \
            or issubclass(cls, sa.PickleType):  # unpickles what it reads: never a reflected type
        raise ModelFileError(
            f"The model's SQL schema gives {where} the type {dialect or 'sqlalchemy'}.{name}, "
            "which is not a column type a reflected schema holds; the model file may have "
            "been tampered with.")
    positional = args.pop("*", [])
    values = {k: _data_to_value(v, where) for k, v in args.items()}
    try:
        return cls(*positional, **values)
    except (TypeError, ValueError, sa.exc.ArgumentError) as exc:
        raise ModelFileError(f"The model's SQL schema gives {where} the type {name} with "
                             f"arguments it does not take: {exc}") from exc


def _data_to_value(data: Any, where: str) -> Any:
    if isinstance(data, dict):
        if set(data) == {"sql"}:
            return sa.text(str(data["sql"]))
        return type_from_dict(data, where)
    if isinstance(data, list):
        return [v for v in data if isinstance(v, _PLAIN)]
    if not isinstance(data, _PLAIN):
        raise ModelFileError(f"The model's SQL schema has an unexpected value {data!r} for {where}.")
    return data
