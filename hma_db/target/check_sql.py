"""CHECK constraints and column defaults across dialects: keep the ones whose SQL means the
same everywhere.

A reflected CHECK is SQL text in the source's dialect. Comparisons, ``IN`` lists, ``BETWEEN``,
``LIKE``, ``IS [NOT] NULL`` and ``AND``/``OR``/``NOT`` over columns and literals mean the same on
PostgreSQL, SQLite and MariaDB once PostgreSQL's casts (``'a'::text``) are removed and
``= ANY (ARRAY[...])`` is written as ``IN (...)``, and MariaDB's ``a MOD b`` as ``a % b``;
identifiers are re-quoted for the target.
Anything else (functions, casts to other types, subqueries, boolean columns compared with
integers) is dropped by the caller, with a log line, rather than guessed.

A default (:func:`translate_default`) is kept when it is a literal (a string, a number, a
boolean) or the current date or time, which every target writes its own way; a sequence's
``nextval`` is the target's own counter (identity, AUTO_INCREMENT, rowid), and any other
expression is dropped with one line.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid

import numpy as np
import pandas as pd
import sqlalchemy as sa

from hma_db.target.types import family

_CAST = (r"::\s*(?:double\s+precision|character\s+varying|bit\s+varying|"
         r"time(?:stamp)?\s+with(?:out)?\s+time\s+zone|\"[^\"]+\"|[A-Za-z_]\w*)"
         r"(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?(?:\[\])*")
_TOKEN = re.compile(rf"""
    (?P<str>'(?:[^']|'')*')
  | (?P<qid>"(?:[^"]|"")*"|`[^`]*`|\[[A-Za-z_][\w ]*\])
  | (?P<cast>{_CAST})
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z_][\w$]*)
  | (?P<op><>|!=|<=|>=|[=<>(),+\-*/%\[\]])
  | (?P<ws>\s+)
""", re.X)
_KEYWORDS = {"and", "or", "not", "in", "is", "null", "between", "like", "true", "false",
             "any", "all", "array"}
# A function one dialect names differently, for the target that evaluates a CHECK on rows
# (MariaDB writes length(code) back as octet_length(`code`); SQLite before 3.43 knows only
# length, which counts characters: the same for the ASCII text such CHECKs are about).
_FUNCTIONS = {"sqlite": {"char_length": "length", "character_length": "length",
                         "octet_length": "length"}}
_ANY = re.compile(r"(=|<>)\s*(ANY|ALL)\s*\(\s*(\(\s*)?ARRAY\s*\[([^\]]*)\]\s*(?(3)\))\s*\)", re.I)


def source_dialect(table: sa.Table) -> str | None:
    """The dialect a reflected table came from, judged by its column types' modules."""
    for col in table.columns:
        module = type(col.type).__module__
        for name in ("postgresql", "sqlite", "mysql"):
            if f".dialects.{name}" in module:
                return name
    return None


def _quote(name: str, dialect: str) -> str:
    if dialect == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def _tokens(text: str) -> list[tuple[str, str]] | None:
    pos, out = 0, []
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            return None
        out.append((match.lastgroup, match.group()))
        pos = match.end()
    return out


def _identifier(kind: str, value: str) -> str:
    if kind == "word":
        return value
    if value[0] == '"':
        return value[1:-1].replace('""', '"')
    return value[1:-1]


def _rewrite(tokens, dialect: str, columns: dict[str, sa.Column],
             calls: bool = False) -> str | None:
    parts = []
    for i, (kind, value) in enumerate(tokens):
        if kind == "cast":
            continue
        if kind in ("word", "qid"):
            name = _identifier(kind, value)
            if kind == "word" and value.lower() in _KEYWORDS:
                parts.append(value.upper())
                continue
            if kind == "word" and value.lower() == "mod" and not _called(tokens, i) \
                    and name not in columns and name.lower() not in columns:
                parts.append("%")  # MariaDB writes a % b back as a MOD b
                continue
            if calls and kind == "word" and _called(tokens, i):
                # a function, evaluated by the target as it is named there
                parts.append(_FUNCTIONS.get(dialect, {}).get(value.lower(), value))
                continue
            column = columns.get(name)
            if column is None and kind == "word":
                column = columns.get(name.lower())
            if column is None or family(column.type) == "boolean":
                return None
            parts.append(_quote(column.name, dialect))
        elif kind == "str" and dialect == "mysql":
            parts.append(value.replace("\\", "\\\\"))
        else:
            parts.append(value)
    return "".join(parts)


def _called(tokens, i: int) -> bool:
    rest = [v for k, v in tokens[i + 1:] if k != "ws"]
    return bool(rest) and rest[0] == "("


def _in_list(match: re.Match) -> str:
    negated = match.group(1) == "<>" and match.group(2).upper() == "ALL"
    if match.group(1) == "<>" and not negated:
        return match.group(0)  # '<> ANY' is not NOT IN; left as is, refused below
    return ("NOT IN" if negated else "IN") + f" ({match.group(4).strip()})"


def translate_check(text: str, dialect: str, column_names: list[str], *,
                    source_table: sa.Table | None = None) -> str | None:
    """The CHECK's SQL for ``dialect``, or None when it does not translate safely."""
    if source_table is not None and source_dialect(source_table) == dialect:
        return text
    tokens = _tokens(text)
    if tokens is None:
        return None
    if source_table is not None:
        columns = {c.name: c for c in source_table.columns}
    else:
        columns = {name: sa.Column(name, sa.String()) for name in column_names}
    columns.update({name.lower(): col for name, col in list(columns.items())})
    rewritten = _rewrite(tokens, dialect, columns)
    if rewritten is None:
        return None
    rewritten = _ANY.sub(_in_list, rewritten)
    if re.search(r"\b(ANY|ALL|ARRAY)\b|\[", rewritten):
        return None
    return rewritten


def check_expression(text: str, dialect: str, column_names: list[str], *,
                     source_table: sa.Table | None = None) -> str | None:
    """A CHECK's SQL for the target database to evaluate on rows: as :func:`translate_check`,
    but function calls are kept as named (the target says whether it has them)."""
    if source_table is not None and source_dialect(source_table) == dialect:
        return text
    tokens = _tokens(text)
    if tokens is None:
        return None
    columns = {name: sa.Column(name, sa.String()) for name in column_names}
    if source_table is not None:
        columns.update({c.name: c for c in source_table.columns if c.name in columns})
    columns.update({name.lower(): col for name, col in list(columns.items())})
    rewritten = _rewrite(tokens, dialect, columns, calls=True)
    return None if rewritten is None else _ANY.sub(_in_list, rewritten)


def _sql_type(values: pd.Series) -> sa.types.TypeEngine:
    """A column type holding ``values`` as the CHECK would see them in the target table."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return sa.Boolean()
    if pd.api.types.is_integer_dtype(values.dtype):
        return sa.BigInteger()
    if pd.api.types.is_float_dtype(values.dtype):
        return sa.Float(53)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return sa.DateTime()
    present = values.dropna()
    first = present.iloc[0] if len(present) else None
    if isinstance(first, dt.datetime):
        return sa.DateTime()
    if isinstance(first, dt.date):
        return sa.Date()
    if isinstance(first, decimal.Decimal):
        return sa.Numeric(38, 10)
    return sa.Text()


def rows_failing_check(conn: sa.Connection, frame: pd.DataFrame, expression: str) -> np.ndarray:
    """Per row of ``frame``: does the target database find the CHECK ``expression`` false?

    The rows go into a temporary table of the expression's columns on ``conn``, and the target
    selects the failing ones, with its own functions and comparison rules (NULL passes, as in
    a CHECK). The table is dropped before returning.
    """
    name = f"hma_check_{uuid.uuid4().hex[:12]}"
    table = sa.Table(name, sa.MetaData(), sa.Column("hma_row", sa.BigInteger),
                     *[sa.Column(c, _sql_type(frame[c])) for c in frame.columns],
                     prefixes=["TEMPORARY"])
    table.create(conn)
    try:
        values = frame.astype(object).where(frame.notna(), None).reset_index(drop=True)
        records = values.assign(hma_row=np.arange(len(values))).to_dict("records")
        if records:
            conn.execute(table.insert(), records)
        quoted = conn.dialect.identifier_preparer.quote(name)
        failing = conn.execute(sa.text(
            f"SELECT hma_row FROM {quoted} WHERE NOT ({expression})")).scalars().all()
    finally:  # TEMPORARY: a plain DROP TABLE commits on MariaDB
        temporary = "TEMPORARY " if conn.dialect.name == "mysql" else ""
        conn.exec_driver_sql(f"DROP {temporary}TABLE {conn.dialect.identifier_preparer.quote(name)}")
    out = np.zeros(len(frame), dtype=bool)
    out[np.asarray(failing, dtype=np.int64)] = True
    return out


_NOW = {"now()", "current_timestamp", "current_timestamp()", "localtimestamp",
        "localtimestamp()", "transaction_timestamp()", "statement_timestamp()",
        "clock_timestamp()", "datetime('now')", "sysdate()", "utc_timestamp()"}
_TODAY = {"current_date", "current_date()", "curdate()", "date('now')"}
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def translate_default(text: str, column: sa.Column, dialect: str) -> sa.TextClause | None:
    """The target form of a reflected ``DEFAULT`` (SQL text in the source's dialect), or None
    when it has none that means the same (the caller logs the drop)."""
    value = re.sub(_CAST, "", text.strip()).strip()
    while value.startswith("(") and value.endswith(")"):  # MariaDB and SQLite wrap expressions
        value = value[1:-1].strip()
    lowered = value.lower()
    kind = family(column.type)
    if lowered == "null":
        return sa.text("NULL")
    if lowered in _NOW or lowered.startswith(("now(", "current_timestamp(", "localtimestamp(")):
        if kind == "date":
            return sa.text("CURRENT_DATE") if dialect == "postgresql" else \
                sa.text("(CURRENT_DATE)") if dialect == "mysql" else None
        return sa.text("CURRENT_TIMESTAMP") if kind == "datetime" else None
    if lowered in _TODAY:
        return {"postgresql": sa.text("CURRENT_DATE"), "mysql": sa.text("(CURRENT_DATE)"),
                "sqlite": sa.text("CURRENT_DATE")}[dialect] if kind == "date" else None
    if kind == "boolean" and lowered in ("true", "false", "1", "0", "'t'", "'f'", "b'1'", "b'0'"):
        truth = lowered in ("true", "1", "'t'", "b'1'")
        return sa.text(("true" if truth else "false") if dialect == "postgresql" else str(int(truth)))
    number = value[1:-1] if value[:1] == value[-1:] == "'" else value  # PostgreSQL: '-1.5'::real
    if _NUMBER.fullmatch(number) and kind in ("integer", "float", "numeric"):
        return sa.text(number)
    if re.fullmatch(r"'(?:[^']|'')*'", value) and kind in ("string", "enum", "date", "datetime",
                                                            "time", "uuid"):
        return sa.text(value)
    return None
