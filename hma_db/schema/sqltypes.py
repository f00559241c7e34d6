"""SQL types to sdtypes, and CHECK constraints to allowed values.

:func:`type_options` maps one reflected SQLAlchemy type to the column options of DESIGN.md
section 2 (``sdtype``, ``generator``, ``max_length``, ``precision``, ``scale``,
``computer_representation``, ``allowed_values``). Types are matched through SQLAlchemy's generic
type classes, so every dialect's subclasses (``postgresql.JSONB``, ``mysql.ENUM``...) are covered;
PostgreSQL domains resolve to their base type and keep their CHECK.

:func:`allowed_values_from_check` reads ``col IN (...)`` lists from a CHECK constraint's SQL, in
the spellings SQLite, MariaDB/MySQL and PostgreSQL (``col = ANY (ARRAY[...])``) give back.

:func:`sqlite_declared_type` types a SQLite column whose declared name SQLAlchemy does not know
(``TIMESTAMPTZ``, ``NUMBER(10,2)``, none at all) by SQLite's affinity rules
(:func:`sqlite_affinity`) and a sample of its values. :func:`is_geometry` names the spatial
columns generated as shapes; a MariaDB ``SET`` is a category of its members (:func:`set_width`).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.sql import sqltypes

# Kinds that need a look at the data (text: personal data or categorical; date: date of birth).
TEXT, DATE = "text", "date"


class RawType(sa.types.UserDefinedType):
    """A column type SQLAlchemy does not know (``xml``, ``geometry``...), kept by its SQL name so the
    schema can be recreated in the same kind of database."""

    cache_ok = True

    def __init__(self, name: str, dialect: str | None = None):
        self.name = name
        self.dialect = dialect  # the database family it was read from ('mysql'...), if known

    def get_col_spec(self, **_: Any) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"RawType({self.name!r})"


# Generated-by-type columns: the generic type class -> generator name. Order matters (JSONB is a
# JSON, BYTEA a LargeBinary).
_GENERATED: list[tuple[tuple[type, ...], str]] = [
    ((sa.ARRAY,), "array"),
    ((sa.JSON,), "json"),
    ((sa.Uuid,), "uuid"),
    ((postgresql.INTERVAL, sa.Interval), "interval"),
    ((postgresql.INET, postgresql.CIDR), "ip"),
    ((postgresql.MACADDR, postgresql.MACADDR8), "mac"),
    ((postgresql.AbstractSingleRange,), "range"),
    ((postgresql.TSVECTOR,), "tsvector"),
    ((postgresql.TSQUERY,), "tsquery"),
    ((sqltypes._Binary,), "bytes"),
]
_RAW_TEXT = {"citext", "name"}  # text types of extensions or catalogs that SQLAlchemy does not know
_RAW_GENERATORS = {"xml": "xml", "tsvector": "tsvector", "inet": "ip", "cidr": "ip",
                   "inet4": "ip", "inet6": "ip",
                   "macaddr": "mac", "macaddr8": "mac", "int4range": "range", "int8range": "range",
                   "numrange": "range", "daterange": "range", "tsrange": "range",
                   "tstzrange": "range",
                   "json": "json", "jsonb": "json", "uuid": "uuid"}


# Spatial types whose values may be points: generated as points within the source's extent.
# Spatial types: generated as shapes of their kind within the source's extent. The OGC names
# (MariaDB, PostGIS) read and write WKT; PostgreSQL's own geometric types their own text.
GEOMETRY_NAMES = {"point", "geometry", "geography", "linestring", "polygon", "multipoint",
                  "multilinestring", "multipolygon", "geometrycollection"}
POSTGRES_GEOMETRY = {"point", "line", "lseg", "box", "path", "polygon", "circle"}


def _type_word(type_: RawType) -> str:
    return re.split(r"[\s(]", type_.name.strip().lower(), maxsplit=1)[0]


def is_native_geometry(type_: sa.types.TypeEngine) -> bool:
    """PostgreSQL's own geometric types (point, box, polygon...), read and written as their
    text ('(1,2)', '((0,0),(1,1))'), not WKT."""
    return isinstance(type_, RawType) and type_.dialect == "postgresql" and \
        _type_word(type_) in POSTGRES_GEOMETRY


def is_geometry(type_: sa.types.TypeEngine) -> bool:
    """A spatial column SQLAlchemy does not know (MariaDB POINT/LINESTRING/GEOMETRY...,
    PostgreSQL point/box/polygon..., PostGIS geometry/geography), judged by its SQL name."""
    if not isinstance(type_, RawType):
        return False
    return _type_word(type_) in GEOMETRY_NAMES or is_native_geometry(type_)


def base_type(type_: sa.types.TypeEngine) -> sa.types.TypeEngine:
    """The type under a PostgreSQL domain (domains of domains included)."""
    while isinstance(type_, postgresql.DOMAIN):
        type_ = type_.data_type
    return type_


def domain_checks(type_: sa.types.TypeEngine) -> list[str]:
    """The CHECK expressions of a PostgreSQL domain and of the domains it is built on."""
    checks = []
    while isinstance(type_, postgresql.DOMAIN):
        if type_.check is not None:
            checks.append(str(type_.check))
        type_ = type_.data_type
    return checks


def _is_boolean_tinyint(type_: sa.types.TypeEngine) -> bool:
    # MariaDB/MySQL spell BOOLEAN as TINYINT(1).
    return isinstance(type_, mysql.TINYINT) and getattr(type_, "display_width", None) == 1


def _numeric_options(type_: sa.types.TypeEngine) -> dict[str, Any]:
    if isinstance(type_, (sa.Integer, mysql.YEAR)):
        return {"sdtype": "numerical", "computer_representation": "Int64"}
    options: dict[str, Any] = {"sdtype": "numerical", "computer_representation": "Float"}
    if isinstance(type_, sa.Numeric) and not isinstance(type_, sa.Float):
        if type_.precision is not None:
            options["precision"] = type_.precision
        if type_.scale is not None:
            options["scale"] = type_.scale
            if type_.scale == 0:
                options["computer_representation"] = "Int64"
    if isinstance(type_, postgresql.MONEY):
        options["scale"] = 2
    return options


def set_width(type_: mysql.SET) -> int:
    """The longest value a MariaDB SET can hold: every member, joined by commas."""
    members = [str(v) for v in type_.values]
    return max(sum(len(m) for m in members) + len(members) - 1, 1)


def _bit_options(type_: sa.types.TypeEngine) -> dict[str, Any]:
    """A bit string: ``bit`` alone is ``bit(1)``, ``bit varying`` alone has no limit."""
    length = type_.length or (None if getattr(type_, "varying", False) else 1)
    options: dict[str, Any] = {"sdtype": "unknown", "generator": "bits"}
    if length:
        options["max_length"] = int(length)
    return options


def type_options(type_: sa.types.TypeEngine) -> tuple[dict[str, Any], str | None]:
    """Column options for a SQL type, and the kind of data check it needs (TEXT, DATE or None).

    Example:
        >>> type_options(sa.String(40))
        ({'sdtype': 'unknown', 'generator': 'text', 'max_length': 40}, 'text')
    """
    type_ = base_type(type_)
    if isinstance(type_, sa.Enum):
        return {"sdtype": "categorical", "allowed_values": list(type_.enums)}, None
    if isinstance(type_, sa.Boolean) or _is_boolean_tinyint(type_):
        return {"sdtype": "boolean"}, None
    if isinstance(type_, (postgresql.BIT, mysql.BIT)):
        return _bit_options(type_), None
    if isinstance(type_, mysql.SET):
        # A closed vocabulary: its combinations are categories, as an ENUM's values are.
        # (generator: what a column whose combinations are all rare is drawn with)
        return {"sdtype": "categorical", "max_length": set_width(type_), "generator": "set"}, None
    for classes, generator in _GENERATED:
        if isinstance(type_, classes):
            return {"sdtype": "unknown", "generator": generator}, None
    if isinstance(type_, postgresql.OID | postgresql.REGCLASS):  # object ids: numbers
        return {"sdtype": "numerical", "computer_representation": "Int64"}, None
    if isinstance(type_, (sa.Integer, sa.Numeric, sa.Float, postgresql.MONEY, mysql.YEAR)):
        return _numeric_options(type_), None
    if isinstance(type_, sa.Time):
        return {"sdtype": "datetime", "datetime_format": "%H:%M:%S"}, None
    if isinstance(type_, (sa.Date, sa.DateTime)):
        return {"sdtype": "datetime"}, DATE
    if isinstance(type_, sa.String):
        options: dict[str, Any] = {"sdtype": "unknown", "generator": "text"}
        if getattr(type_, "length", None):
            options["max_length"] = int(type_.length)
        return options, TEXT
    if is_geometry(type_):
        return {"sdtype": "unknown", "generator": "point"}, None
    if isinstance(type_, RawType):
        name = type_.name.split("(")[0].strip().lower()
        if name in _RAW_TEXT:
            return {"sdtype": "unknown", "generator": "text"}, TEXT
        return {"sdtype": "unknown", "generator": _RAW_GENERATORS.get(name, "text")}, None
    return {"sdtype": "unknown", "generator": "text"}, None


# ------------------------------------------------------------------------------ CHECK parsing
_IDENT = r'(?:"(?:[^"]|"")+"|`(?:[^`]|``)+`|\[[^\]]+\]|[^\W\d][\w$]*)'
_CAST = r"(?:::[\w ]+(?:\[\])?)?"
_COLUMN = rf"(?P<col>{_IDENT})\s*\)*\s*{_CAST}\s*\)*"
_IN = re.compile(rf"(?<![\w\"`\]])\(*\s*{_COLUMN}\s+(?P<not>NOT\s+)?IN\s*\((?P<items>[^()]*)\)",
                 re.I)
_ANY = re.compile(
    rf"(?<![\w\"`\]])\(*\s*{_COLUMN}\s*=\s*ANY\s*\(\s*\(*\s*ARRAY\s*\[(?P<items>[^\]]*)\]", re.I)
_ITEM = re.compile(r"(?:_\w+)?'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\b", re.I)


def _unquote(identifier: str) -> str:
    if identifier[0] in "\"`[":
        inner = identifier[1:-1]
        return inner.replace('""', '"') if identifier[0] == '"' else inner.replace("``", "`")
    return identifier


def _items(text: str) -> list[Any]:
    values: list[Any] = []
    for string, number in _ITEM.findall(text):
        if number:
            values.append(float(number) if re.search(r"[.eE]", number) else int(number))
        else:
            values.append(string.replace("''", "'"))
    return values


def allowed_values_from_check(sqltext: str, columns: list[str]) -> dict[str, list[Any]]:
    """Map each column restricted to a list of values by a CHECK expression to that list.

    ``columns`` are the table's column names (use ``["VALUE"]`` for a domain's CHECK). A CHECK
    joined with OR constrains nothing on its own and is ignored, as is ``NOT IN``.

    Example:
        >>> allowed_values_from_check("st::text = ANY (ARRAY['a'::text, 'b'::text])", ["st"])
        {'st': ['a', 'b']}
    """
    if re.search(r"\bOR\b", sqltext, re.I):
        return {}
    by_lower = {c.lower(): c for c in columns}
    found: dict[str, list[Any]] = {}
    for match in [*_IN.finditer(sqltext), *_ANY.finditer(sqltext)]:
        if match.groupdict().get("not"):
            continue
        name = _unquote(match.group("col"))
        column = name if name in columns else by_lower.get(name.lower())
        values = _items(match.group("items"))
        if column is not None and values:
            found[column] = values
    return found


_JSON_VALID = re.compile(rf"\bjson_valid\s*\(\s*(?P<col>{_IDENT})\s*\)", re.I)


def json_checked_columns(sqltext: str, columns: list[str]) -> set[str]:
    """Columns a CHECK declares to hold JSON (MariaDB stores JSON as LONGTEXT + json_valid)."""
    names = {_unquote(m.group("col")) for m in _JSON_VALID.finditer(sqltext)}
    return {c for c in columns if c in names}


# ------------------------------------------------------------------ SQLite declared type names
# SQLite accepts any type name (TIMESTAMPTZ, DATETIME2, NUMBER(10,2), VARCHAR2(30), none at all)
# and stores each value in the storage class its *affinity* prefers; the name alone often says
# little (TIMESTAMPTZ has NUMERIC affinity, yet holds ISO text), so the values settle the type.
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ZONE = r"(?:Z|[+-]\d{2}(?::?\d{2})?)"
_ISO_STAMP = re.compile(rf"^\d{{4}}-\d{{2}}-\d{{2}}[T ]\d{{2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?{_ZONE}?$")
_ISO_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}(?:\.\d+)?$")
_HAS_ZONE = re.compile(rf"[T ].*{_ZONE}$")
_INT32_MAX = 2**31 - 1


def sqlite_affinity(declared: str | None) -> str:
    """The affinity SQLite gives a declared type name (https://www.sqlite.org/datatype3.html,
    section 3.1, its five rules in their order): INTEGER, TEXT, BLOB, REAL or NUMERIC.

    Example:
        >>> sqlite_affinity("UNSIGNED BIG INT"), sqlite_affinity("TIMESTAMPTZ")
        ('INTEGER', 'NUMERIC')
    """
    name = (declared or "").upper()
    if "INT" in name:
        return "INTEGER"
    if any(part in name for part in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in name or not name.strip():
        return "BLOB"
    if any(part in name for part in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def _declared_numbers(declared: str) -> list[int]:
    match = re.search(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", declared or "")
    return [int(g) for g in match.groups() if g is not None] if match else []


def _text_type(texts: list[str], declared: str, affinity: str) -> sa.types.TypeEngine:
    """ISO dates, timestamps and times outside a TEXT-affinity column are dates and times;
    anything else is text (numbers in a TEXT column stay text: that is what SQLite stored)."""
    if affinity != "TEXT" and texts:
        if all(_ISO_DATE.match(t) for t in texts):
            return sa.Date()
        if all(_ISO_DATE.match(t) or _ISO_STAMP.match(t) for t in texts):
            return sa.DateTime(timezone=any(_HAS_ZONE.search(t) for t in texts))
        if all(_ISO_TIME.match(t) for t in texts):
            return sa.Time()
    sizes = _declared_numbers(declared)
    return sa.String(sizes[0]) if sizes and affinity == "TEXT" else sa.Text()


def _empty_type(declared: str, affinity: str) -> sa.types.TypeEngine:
    """The type of a column without a value to look at: its affinity (and a date or time name)."""
    name = (declared or "").upper()
    if affinity == "NUMERIC" and ("DATE" in name or "TIME" in name):
        return sa.Date() if "TIME" not in name else sa.DateTime()
    return {"INTEGER": sa.BigInteger, "REAL": sa.Float, "NUMERIC": sa.Float,
            "BLOB": sa.Text}.get(affinity, lambda: _text_type([], declared, affinity))()


def sqlite_declared_type(declared: str | None, values: list[Any],
                         integer_range: tuple[int, int] | None = None) -> sa.types.TypeEngine:
    """The SQLAlchemy type of a SQLite column from its declared name and a sample of its values
    (as sqlite3 returns them: ``int``, ``float``, ``str``, ``bytes``).

    ``integer_range``: the smallest and largest integer stored (decides INTEGER or BIGINT).

    Example:
        >>> sqlite_declared_type("TIMESTAMPTZ", ["2022-02-15 09:34:33+00:00"])
        DateTime(timezone=True)
    """
    declared = declared or ""
    affinity = sqlite_affinity(declared)
    classes = {type(v).__name__ for v in values}
    if not classes:
        return _empty_type(declared, affinity)
    if classes == {"str"}:
        return _text_type(values, declared, affinity)
    if classes == {"bytes"}:
        return sa.LargeBinary()
    if classes == {"int"}:
        low, high = integer_range or (min(values), max(values))
        big = "BIG" in declared.upper() or max(abs(low), abs(high)) > _INT32_MAX
        return sa.BigInteger() if big else sa.Integer()
    if classes <= {"int", "float"}:
        sizes = _declared_numbers(declared)
        if affinity == "NUMERIC" and len(sizes) == 2:
            return sa.Numeric(*sizes)
        return sa.Float()
    return sa.Text()  # mixed storage classes: text is what every value can be read as
