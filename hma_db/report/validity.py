"""Validity: does the synthetic data keep the schema's rules?

Checks, each one row of findings (table, column(s), check, violating rows): primary keys unique
and not null, alternate keys unique, foreign keys resolve, NOT NULL columns, CHECK ``IN`` lists
(``allowed_values``), text within ``max_length``, and numbers and datetimes within the real
data's range. On DataFrames the checks are pandas expressions; in a database they are COUNT
queries run in the target (:func:`sql_checks`), so what is checked is what was written.

A range is compared in the column's own precision (a 4-byte float within its 7 digits), and a
value that is not a number or a datetime is skipped, counted in the finding's ``note``.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from hma_db.report.dialects import (
    query_table,
    range_bounds,
    source_types,
    sql_value,
    sqlite_day,
    sqlite_number,
)
from hma_db.report.values import as_datetimes, as_numbers, skipped_note
from hma_db.schema import Metadata, key_columns
from hma_db.source import begin_read_only

_KINDS = {"numerical": "numbers", "datetime": "datetimes"}


def _finding(table: str, columns: list[str], check: str, violations: int, rows: int) -> dict:
    return {"table": table, "columns": columns, "check": check, "violations": int(violations),
            "rows": int(rows), "passed": int(violations) == 0}


def ranges(data: dict[str, pd.DataFrame], metadata: Metadata) -> dict[str, dict[str, tuple]]:
    """``{table: {column: (min, max)}}`` of the numerical and datetime columns of ``data``
    (values that are not numbers or datetimes left out)."""
    out: dict[str, dict[str, tuple]] = {}
    for table, frame in data.items():
        for column, meta in metadata.tables[table]["columns"].items():
            if meta.get("sdtype") in ("numerical", "datetime") and column in frame:
                values = _comparable(frame[column], meta["sdtype"])[0]
                if len(values):
                    out.setdefault(table, {})[column] = (values.min(), values.max())
    return out


def _comparable(values: pd.Series, sdtype: str) -> tuple[pd.Series, int]:
    """The present values as floats or datetimes, and how many others were skipped."""
    converted, skipped = as_numbers(values) if sdtype == "numerical" else as_datetimes(values)
    return converted.dropna(), skipped


def _relationships_of(metadata: Metadata, table: str) -> list[dict]:
    return [r for r in metadata.relationships if r["child_table_name"] == table]


def _orphans(child: pd.DataFrame, parent: pd.DataFrame, rel: dict) -> int:
    fk, pk = key_columns(rel["child_foreign_key"]), key_columns(rel["parent_primary_key"])
    refs = child[fk].dropna()
    if len(fk) == 1:
        return int((~refs[fk[0]].isin(parent[pk[0]])).sum())
    known = pd.MultiIndex.from_frame(parent[pk].set_axis(fk, axis=1))
    return int((~pd.MultiIndex.from_frame(refs).isin(known)).sum())


def frame_checks(data: dict[str, pd.DataFrame], metadata: Metadata,
                 value_ranges: dict[str, dict[str, tuple]] | None = None) -> list[dict]:
    """Every validity check on synthetic DataFrames; ``value_ranges`` from the real data."""
    findings = []
    for table, table_meta in metadata.tables.items():
        frame, n = data[table], len(data[table])
        pk = metadata.primary_key(table)
        if pk:
            findings.append(_finding(table, pk, "primary key not null",
                                     frame[pk].isna().any(axis=1).sum(), n))
            findings.append(_finding(table, pk, "primary key unique",
                                     frame[pk].duplicated(keep=False).sum(), n))
        for key in metadata.alternate_keys(table):
            present = frame[key].dropna()
            findings.append(_finding(table, key, "unique", present.duplicated(keep=False).sum(), n))
        for rel in _relationships_of(metadata, table):
            findings.append(_finding(table, key_columns(rel["child_foreign_key"]),
                                     f"foreign key -> {rel['parent_table_name']}",
                                     _orphans(frame, data[rel["parent_table_name"]], rel), n))
        findings += _column_checks(table, frame, table_meta["columns"],
                                   (value_ranges or {}).get(table, {}),
                                   source_types(metadata, table))
    return findings


def rule_checks(real: dict[str, pd.DataFrame], synthetic: dict[str, pd.DataFrame],
                rules: list) -> list[dict]:
    """One finding per business rule (declared, a source CHECK, or found in the real data):
    the synthetic rows that break it, and ``real_violations``, the real rows that do."""
    findings = []
    for rule in rules:
        table = rule.table_name
        if table not in synthetic or table not in real:
            continue
        origin = {"data": "found in the data", "check": "a CHECK of the source"}.get(
            rule.origin, "declared")
        across = getattr(rule, "across_tables", False)  # a sum over children, two key paths
        if across and not set(rule.tables_read()) <= set(real) & set(synthetic):
            continue
        finding = _finding(table, rule.columns(), f"rule {rule.describe()} ({origin})",
                           _broken(rule, synthetic, across), len(synthetic[table]))
        finding["real_violations"] = _broken(rule, real, across)
        findings.append(finding)
    return findings


def _broken(rule, data: dict[str, pd.DataFrame], across: bool) -> int:
    """The rows of ``data`` that break ``rule`` (read on every table it spans)."""
    valid = rule.is_valid_tables(data) if across else rule.is_valid(data[rule.table_name])
    return int((~valid.to_numpy(dtype=bool)).sum())


def _counts_characters(meta: dict, type_: sa.types.TypeEngine | None) -> bool:
    """Whether the column's ``max_length`` is a number of characters its text must keep within.

    Not for a MariaDB SET, whose text joins several members (each within the length), a BIT
    (its length is in bits), nor binary values, which the report prints as hex digits.
    """
    return bool(meta.get("max_length")) and meta.get("generator") != "bytes" \
        and not isinstance(type_, (mysql.SET, mysql.BIT, sa.LargeBinary, sa.BINARY,
                                   sa.VARBINARY))


def _column_checks(table: str, frame: pd.DataFrame, columns: dict, table_ranges: dict,
                   types: dict) -> list[dict]:
    findings, n = [], len(frame)
    for column, meta in columns.items():
        values = frame[column]
        if meta.get("nullable") is False:
            findings.append(_finding(table, [column], "not null", values.isna().sum(), n))
        if meta.get("allowed_values"):
            allowed = set(meta["allowed_values"])
            bad = values.notna() & ~values.isin(allowed) & ~values.astype(str).isin(
                {str(v) for v in allowed})
            findings.append(_finding(table, [column], "allowed values", bad.sum(), n))
        if _counts_characters(meta, types.get(column)) and values.map(type).eq(str).any():
            lengths = values.dropna().astype(str).str.len()
            findings.append(_finding(table, [column], f"length <= {meta['max_length']}",
                                     (lengths > meta["max_length"]).sum(), n))
        if column in table_ranges:
            low, high = table_ranges[column]
            present, skipped = _comparable(values, meta["sdtype"])
            finding = _finding(table, [column], "within the real range",
                               ((present < low) | (present > high)).sum(), n)
            note = skipped_note(_KINDS[meta["sdtype"]], synthetic=skipped)
            findings.append(finding | {"note": note} if note else finding)
    return findings


# ------------------------------------------------------------------------------ SQL
class _Counter:
    """Runs the COUNT queries of the checks, in the caller's read-only transaction.

    A query the database refuses (a comparison its types have no operator for, a value its
    driver cannot bind) counts no violation and leaves a note on the finding made of it: the
    check was not made, and the report goes on. The transaction is begun again, since
    PostgreSQL refuses every later statement of a failed one.
    """

    def __init__(self, conn: sa.Connection):
        self.conn, self.refused = conn, None

    def __call__(self, query) -> int:
        try:
            return int(self.conn.execute(query).scalar() or 0)
        except sa.exc.StatementError as exc:
            self.conn.rollback()
            begin_read_only(self.conn)
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            self.refused = f"not checked: the database refused the query ({reason})"
            return 0

    def finding(self, table: str, columns: list[str], check: str, violations: int,
                rows: int) -> dict:
        found = _finding(table, columns, check, violations, rows)
        note, self.refused = self.refused, None
        return found | {"note": note} if note else found


def sql_checks(conn: sa.Connection, metadata: Metadata, *, schema: str | None = None,
               value_ranges: dict[str, dict[str, tuple]] | None = None) -> list[dict]:
    """The validity checks as COUNT queries in the database behind ``conn``."""
    if schema:
        conn = conn.execution_options(schema_translate_map={None: schema})
    findings, count = [], _Counter(conn)
    for table, table_meta in metadata.tables.items():
        t = query_table(metadata, table, conn.dialect)
        n = count(sa.select(sa.func.count()).select_from(t))
        pk = metadata.primary_key(table)
        if pk:
            nulls = sa.select(sa.func.count()).select_from(t).where(
                sa.or_(*[t.c[c].is_(None) for c in pk]))
            findings.append(count.finding(table, pk, "primary key not null", count(nulls), n))
            findings.append(count.finding(table, pk, "primary key unique",
                                          _repeated(count, t, pk), n))
        for key in metadata.alternate_keys(table):
            findings.append(count.finding(table, key, "unique", _repeated(count, t, key), n))
        for rel in _relationships_of(metadata, table):
            findings.append(count.finding(table, key_columns(rel["child_foreign_key"]),
                                          f"foreign key -> {rel['parent_table_name']}",
                                          _sql_orphans(count, metadata, rel), n))
        findings += _sql_column_checks(count, t, table, table_meta["columns"], n,
                                       (value_ranges or {}).get(table, {}),
                                       source_types(metadata, table))
    return findings


def _repeated(count: _Counter, t, key: list[str]) -> int:
    """Rows whose non-null key value is shared with another row."""
    groups = (sa.select(sa.func.count().label("n")).select_from(t)
              .where(sa.and_(*[t.c[c].is_not(None) for c in key]))
              .group_by(*[t.c[c] for c in key]).having(sa.func.count() > 1).subquery())
    return count(sa.select(sa.func.coalesce(sa.func.sum(groups.c.n), 0)))


def _sql_orphans(count: _Counter, metadata: Metadata, rel: dict) -> int:
    fk, pk = key_columns(rel["child_foreign_key"]), key_columns(rel["parent_primary_key"])
    dialect = count.conn.dialect
    child = query_table(metadata, rel["child_table_name"], dialect, "c")
    parent = query_table(metadata, rel["parent_table_name"], dialect, "p")
    on = sa.and_(*[child.c[f] == parent.c[p] for f, p in zip(fk, pk, strict=True)])
    join = child.outerjoin(parent, on)
    query = sa.select(sa.func.count()).select_from(join).where(
        sa.and_(*[child.c[f].is_not(None) for f in fk]), parent.c[pk[0]].is_(None))
    return count(query)


def _sql_column_checks(count: _Counter, t, table: str, columns: dict, n: int,
                       table_ranges: dict, types: dict) -> list[dict]:
    """Per column: NOT NULL, allowed values, length and range. What a check means for a column
    is decided by its type in the source (``types``), which ``t`` may not carry in this dialect."""
    findings, dialect = [], count.conn.dialect.name
    rows = sa.select(sa.func.count()).select_from(t)
    for column, meta in columns.items():
        c = sql_value(t.c[column], types.get(column))
        if meta.get("nullable") is False:
            findings.append(count.finding(table, [column], "not null",
                                          count(rows.where(c.is_(None))), n))
        if meta.get("allowed_values"):
            allowed = list(meta["allowed_values"])
            # labels compared as text: an ENUM of another database is no VARCHAR in PostgreSQL
            text = sa.cast(c, sa.String) if all(isinstance(v, str) for v in allowed) else c
            bad = rows.where(c.is_not(None), text.not_in(allowed))
            findings.append(count.finding(table, [column], "allowed values", count(bad), n))
        if _counts_characters(meta, types.get(column)) and meta.get("sdtype") not in (
                "numerical", "datetime", "boolean"):
            # characters, not bytes: MySQL's LENGTH counts bytes
            length = sa.func.length if dialect == "sqlite" else sa.func.char_length
            text = sa.cast(c, sa.Text) if dialect == "postgresql" else c
            bad = rows.where(c.is_not(None), length(text) > meta["max_length"])
            findings.append(count.finding(table, [column], f"length <= {meta['max_length']}",
                                          count(bad), n))
        if column in table_ranges:
            low, high = range_bounds(types.get(column), *table_ranges[column])
            if dialect == "sqlite" and meta["sdtype"] == "datetime":
                # SQLite keeps datetimes as text in several formats: compare them as days
                c, low, high = (sa.func.julianday(v) for v in (c, sqlite_day(low),
                                                                 sqlite_day(high)))
            else:
                if dialect == "sqlite":
                    low, high = sqlite_number(low), sqlite_number(high)
                low, high = sa.literal(low, c.type), sa.literal(high, c.type)
            bad = rows.where(sa.or_(c < low, c > high))
            findings.append(count.finding(table, [column], "within the real range",
                                          count(bad), n))
    return findings
