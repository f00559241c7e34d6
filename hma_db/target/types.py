"""SQL types across PostgreSQL, SQLite and MariaDB: translation and type families.

:func:`translate_type` maps a source column type (any of the three dialects) to the closest
valid type of the target dialect; :func:`family` names the kind of value a type holds, which is
what the drift check compares (``VARCHAR(20)`` on one side and ``NVARCHAR(20)`` on the other are
the same column) and what the loaders use to encode values.

The choices, where the target lacks the source's type:

=====================  ===================  =====================  ===========================
source                 PostgreSQL           MariaDB                SQLite
=====================  ===================  =====================  ===========================
enum                   ENUM (named type)    ENUM                   VARCHAR + CHECK IN
domain                 its base type        its base type          its base type
array                  ARRAY                JSON                   JSON (text)
json / jsonb / hstore  JSON / JSONB         JSON                   JSON (text)
uuid                   UUID                 CHAR(36)               CHAR(36)
timestamptz            TIMESTAMPTZ          DATETIME(6), UTC       DATETIME text, UTC
interval               INTERVAL             DOUBLE (seconds)       DOUBLE (seconds)
SET (MariaDB)          VARCHAR(all members) SET                    VARCHAR(all members)
INT UNSIGNED           BIGINT               INT UNSIGNED           BIGINT
BIGINT UNSIGNED        NUMERIC(20, 0)       BIGINT UNSIGNED        NUMERIC(20, 0) (a REAL)
YEAR, BIT(n)           SMALLINT, INTEGER    YEAR, BIT(n)           SMALLINT, INTEGER
POINT, GEOMETRY...     TEXT (WKT)           kept (from MariaDB)    TEXT (WKT)
text in a key/index    TEXT                 VARCHAR(255)           TEXT
other types            kept from PostgreSQL TEXT (LONGTEXT)        TEXT
=====================  ===================  =====================  ===========================
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from hma_db.schema import DATE_PII, RawType, is_geometry, set_width

# MariaDB limits: DECIMAL precision, and a VARCHAR long enough for most keys yet under the
# 3072-byte index limit in utf8mb4 (255 * 4 bytes), also for two-column keys.
MYSQL_MAX_DECIMAL = 65
MYSQL_KEY_VARCHAR = 255
MYSQL_MAX_VARCHAR = 16383

_FAMILIES = [  # order matters: subclasses before their bases
    (sa.Enum, "enum"), (sa.Boolean, "boolean"), (sa.ARRAY, "array"), (sa.JSON, "json"),
    (postgresql.HSTORE, "json"), (sa.Uuid, "uuid"), (sa.Interval, "interval"),
    (postgresql.INTERVAL, "interval"), (sa.Float, "float"), (sa.Numeric, "numeric"),
    (sa.Integer, "integer"), (mysql.YEAR, "integer"), (mysql.BIT, "integer"), (sa.DateTime, "datetime"),
    (sa.Date, "date"), (sa.Time, "time"), (sa.sql.sqltypes._Binary, "binary"),
    (sa.String, "string"),
]


def _base(type_: sa.types.TypeEngine) -> sa.types.TypeEngine:
    """A PostgreSQL domain's base type (recursively); other types unchanged."""
    while isinstance(type_, postgresql.DOMAIN):
        type_ = type_.data_type
    return type_


def family(type_: sa.types.TypeEngine) -> str:
    """The kind of value a type holds: 'integer', 'string', 'json', ... or 'other'."""
    type_ = _base(type_)
    if isinstance(type_, mysql.TINYINT) and getattr(type_, "display_width", None) == 1:
        return "boolean"  # MariaDB's BOOL
    for cls, name in _FAMILIES:
        if isinstance(type_, cls):
            return name
    return "other"


def _string(type_: sa.String, dialect: str, keyed: bool) -> sa.types.TypeEngine:
    length = getattr(type_, "length", None)
    if isinstance(type_, sa.Text | postgresql.CITEXT):
        length = None
    if isinstance(type_, sa.CHAR | sa.NCHAR) and length:
        return sa.CHAR(length)
    if dialect == "mysql":
        if keyed:
            return sa.String(min(length or MYSQL_KEY_VARCHAR, MYSQL_KEY_VARCHAR * 3))
        if length is None or length > MYSQL_MAX_VARCHAR:
            return mysql.LONGTEXT()
    if length is None:
        return sa.Text()
    return sa.String(length)


def _numeric(type_: sa.Numeric, dialect: str) -> sa.types.TypeEngine:
    precision, scale = type_.precision, type_.scale
    if dialect == "mysql":
        if precision is None:
            return sa.Numeric(MYSQL_MAX_DECIMAL, 30)
        precision = min(precision, MYSQL_MAX_DECIMAL)
        scale = min(scale or 0, precision, 30)
        if getattr(type_, "unsigned", False):  # same dialect: DECIMAL UNSIGNED kept
            return mysql.DECIMAL(precision, scale, unsigned=True)
    return sa.Numeric(precision, scale)


def _float(type_: sa.Float, dialect: str) -> sa.types.TypeEngine:
    single = isinstance(type_, sa.REAL | mysql.FLOAT) or (
        type_.precision is not None and type_.precision <= 24)
    unsigned = dialect == "mysql" and getattr(type_, "unsigned", False)  # kept on MariaDB
    if single:
        return sa.REAL() if dialect != "mysql" else mysql.FLOAT(unsigned=unsigned)
    return mysql.DOUBLE(unsigned=True) if unsigned else sa.Double()


# An UNSIGNED integer elsewhere: the next wider signed type that holds its whole range
# (BIGINT UNSIGNED reaches 2**64 - 1: NUMERIC(20, 0)).
_UNSIGNED_ELSEWHERE = [(mysql.TINYINT, sa.SmallInteger), (sa.SmallInteger, sa.Integer),
                       (mysql.MEDIUMINT, sa.Integer), (sa.BigInteger, lambda: sa.Numeric(20, 0)),
                       (sa.Integer, sa.BigInteger)]


def _integer(type_: sa.types.TypeEngine, dialect: str) -> sa.types.TypeEngine:
    """Same dialect on MariaDB: the type itself (UNSIGNED, YEAR, BIT(n) kept); elsewhere an
    integer type that holds the source's whole range."""
    if dialect == "mysql" and isinstance(type_, (mysql.YEAR, mysql.BIT)) or getattr(
            type_, "unsigned", False) and dialect == "mysql":
        return type_.copy()
    if isinstance(type_, mysql.BIT):
        return sa.BigInteger() if (type_.length or 1) > 31 else sa.Integer()
    if isinstance(type_, mysql.YEAR):
        return sa.SmallInteger()
    if getattr(type_, "unsigned", False):
        return next(make() for cls, make in _UNSIGNED_ELSEWHERE if isinstance(type_, cls))
    if isinstance(type_, sa.BigInteger):
        return sa.BigInteger()
    if isinstance(type_, sa.SmallInteger | mysql.TINYINT):
        return sa.SmallInteger()
    return sa.Integer()


def _set(type_: mysql.SET, dialect: str) -> sa.types.TypeEngine:
    """A MariaDB SET: kept on MariaDB; elsewhere text as wide as all its members together, so
    every combination fits ('Trailers,Commentaries,Deleted Scenes')."""
    if dialect == "mysql":
        return mysql.SET(*type_.values)
    return sa.String(set_width(type_))


def _datetime(type_, dialect: str) -> sa.types.TypeEngine:
    timezone = bool(getattr(type_, "timezone", False))
    if dialect == "postgresql":
        return postgresql.TIMESTAMP(timezone=timezone)
    if dialect == "mysql":
        return mysql.DATETIME(fsp=6)
    return sa.DateTime(timezone=timezone)  # SQLite: DATETIME text, '+00:00' when zoned


def _enum(type_: sa.Enum, dialect: str, name: str, schema: str | None) -> sa.types.TypeEngine:
    values = list(type_.enums)
    enum_name = (type_.name or f"{name}_enum").lower()
    if dialect == "sqlite":
        return sa.Enum(*values, name=enum_name, native_enum=False, create_constraint=True,
                       length=max((len(v) for v in values), default=1))
    return sa.Enum(*values, name=enum_name, schema=schema if dialect == "postgresql" else None)


def _by_family(type_, kind: str, dialect: str, keyed: bool, name: str, schema: str | None):
    pg = dialect == "postgresql"
    simple = {
        "boolean": sa.Boolean, "date": sa.Date,
        "binary": (postgresql.BYTEA if pg else mysql.LONGBLOB if dialect == "mysql"
                   else sa.LargeBinary),
        "uuid": (lambda: sa.Uuid()) if pg else (lambda: sa.CHAR(36)),
        "interval": postgresql.INTERVAL if pg else sa.Double,
        "json": ((postgresql.JSONB if isinstance(type_, postgresql.JSONB) else postgresql.JSON)
                 if pg else sa.JSON),
    }
    if kind in simple:
        return simple[kind]()
    if kind == "time":
        return sa.Time(timezone=bool(getattr(type_, "timezone", False)) and pg)
    if kind == "enum":
        return _enum(type_, dialect, name, schema)
    if kind == "array":
        if pg:
            item = translate_type(type_.item_type, dialect, keyed=False, name=name, schema=schema)
            return postgresql.ARRAY(item, dimensions=type_.dimensions)
        return sa.JSON()
    handlers = {"float": lambda: _float(type_, dialect), "numeric": lambda: _numeric(type_, dialect),
                "integer": lambda: _integer(type_, dialect),
                "datetime": lambda: _datetime(type_, dialect),
                "string": lambda: _string(type_, dialect, keyed)}
    return handlers[kind]()


def translate_type(type_: sa.types.TypeEngine, dialect: str, *, keyed: bool = False,
                   name: str = "col", schema: str | None = None) -> sa.types.TypeEngine:
    """The closest type of ``dialect`` ('postgresql', 'sqlite', 'mysql') for a source type.

    ``keyed``: the column is in a key or an index (MariaDB then needs a bounded VARCHAR).
    ``name``: used to name a PostgreSQL enum type that has no name. ``schema``: where a
    PostgreSQL enum type is created.
    """
    type_ = _base(type_)
    if isinstance(type_, mysql.SET):
        return _set(type_, dialect)
    kind = family(type_)
    if kind != "other":
        return _by_family(type_, kind, dialect, keyed, name, schema)
    if is_geometry(type_) and type_.dialect == dialect:
        return RawType(type_.name, dialect=dialect)  # POINT, GEOMETRY...: same dialect keeps it
    if dialect == "postgresql" and type(type_).__module__.startswith("sqlalchemy.dialects.postgresql"):
        return type_.copy()  # tsvector, inet, money, xml...: PostgreSQL to PostgreSQL keeps them
    if isinstance(type_, postgresql.MONEY):
        return _numeric(sa.Numeric(19, 2), dialect)
    return _string(sa.Text(), dialect, keyed)


_SDTYPE_TYPES = {
    "boolean": sa.Boolean, "datetime": sa.DateTime, "numerical": sa.Double,
}
_GENERATOR_TYPES = {
    "json": sa.JSON, "array": sa.JSON, "bytes": sa.LargeBinary, "uuid": lambda: sa.CHAR(36),
    "interval": sa.Double,
}


def sdtype_type(options: dict, dialect: str, *, keyed: bool = False) -> sa.types.TypeEngine:
    """A column type from a column's sdtype and options, for metadata that was not reflected
    (a model fitted on edited metadata JSON, or a JSON model saved before models kept the SQL
    schema)."""
    sdtype = options.get("sdtype")
    if options.get("computer_representation") == "Int64" or (
            sdtype == "id" and not options.get("regex_format")
            and options.get("generator") != "uuid"):
        return sa.Integer()
    if sdtype == "numerical" and options.get("precision") is not None:
        return _numeric(sa.Numeric(options["precision"], options.get("scale")), dialect)
    generator = options.get("generator")
    if generator in _GENERATOR_TYPES:
        return translate_type(_GENERATOR_TYPES[generator](), dialect, keyed=keyed)
    if sdtype == "datetime" and options.get("datetime_format") == "%H:%M:%S":
        return sa.Time()  # a TIME column: its values are datetime.time, not timestamps
    if sdtype in _SDTYPE_TYPES:
        return translate_type(_SDTYPE_TYPES[sdtype](), dialect, keyed=keyed)
    if sdtype in DATE_PII:  # personal data generated as dates (date_of_birth), not text
        return translate_type(sa.DateTime(), dialect, keyed=keyed)
    return _string(sa.String(options.get("max_length")), dialect, keyed)
