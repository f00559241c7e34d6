"""Checks before the work: what a run would meet before writing, found without reading a row.

More rows in total than the ceiling (a ``--scale`` typo must not write until the disk is full),
unique columns whose generator has no room for the rows at the run's scale (personal data and
patterned keys), and types with no form in the target's dialect. ``clone`` and ``run`` refuse a
run with any of them before reading the source, and ``hma-db plan`` lists the same lines.
"""

from __future__ import annotations

import math

import sqlalchemy as sa

from hma_db.errors import ConfigError, HmaDbError, SamplingError
from hma_db.model import target_rows
from hma_db.schema import Metadata
from hma_db.target import dialect_family, is_staging_name, target_metadata
from hma_db.transform import parse_pattern, plan_roles, unique_columns, unique_room

# 100 million rows: about 6 GB of SQLite and 18 minutes of sampling and writing at the pace of
# Chinook's clone at scale 4 (62,284 rows, 59 bytes and 11 microseconds a row); a run above it
# is asked for explicitly (0 or None: no ceiling), so a typo in --scale does not fill the disk.
MAX_TOTAL_ROWS = 100_000_000


def planned_rows(metadata: Metadata, scale: float) -> int:
    """Rows the run writes in total: every table's source rows times ``scale`` (a table kept as
    it is, its own rows; an emptied one, none)."""
    total = 0
    for table, entry in metadata.tables.items():
        rows, policy = metadata.row_counts.get(table, 0), entry.get("policy")
        total += 0 if policy == "empty" else rows if policy == "keep" else target_rows(rows, scale)
    return total


def row_ceiling_problem(total: int, scale: float,
                        max_total_rows: int | None = MAX_TOTAL_ROWS) -> str | None:
    """The line that refuses writing ``total`` rows (at ``scale``) above ``max_total_rows``,
    or None (also when ``max_total_rows`` is None or 0: no ceiling)."""
    if not max_total_rows or total <= max_total_rows:
        return None
    return (f"The run would write {total:,} rows in total (scale {scale:g}), more than the "
            f"ceiling of {max_total_rows:,}; lower the scale, or raise the ceiling with "
            "--max-total-rows N (max_total_rows, 0 for none).")


def _personal_room(metadata: Metadata, table: str, rows: int) -> list[str]:
    """Unique personal-data columns that no value of their width can make unique."""
    roles, columns = plan_roles(metadata, table), metadata.tables[table]["columns"]
    return [problem for name in sorted(unique_columns(metadata, table))
            if roles.get(name) == "personal"
            and (problem := unique_room(columns[name].get("max_length"), rows,
                                        f"'{table}.{name}'")) is not None]


def _key_room(metadata: Metadata, table: str, rows: int) -> list[str]:
    """Keys whose ``regex_format`` (set, or learned at reflection) has fewer values than rows."""
    columns, fks = metadata.tables[table]["columns"], set(metadata.foreign_key_columns(table))
    problems = []
    for key in [metadata.primary_key(table), *metadata.alternate_keys(table)]:
        free = [c for c in key if c not in fks]
        if not free or not all(columns[c].get("regex_format") for c in free):
            continue  # integers, uuids or links: room for any number of rows
        named = ", ".join(f"{table}.{c}" for c in free)
        try:
            room = math.prod(math.prod(len(a) for a in parse_pattern(
                columns[c]["regex_format"], f"'{table}.{c}'")) for c in free)
        except HmaDbError as exc:
            problems.append(f"{exc}; set a regex_format hma_db can generate in the metadata.")
            continue
        if rows > room:
            formats = ", ".join(f"'{columns[c]['regex_format']}'" for c in free)
            problems.append(f"Key ({named}): regex_format {formats} allows only {room:,} "
                            f"distinct values and {rows:,} rows need one each; set a wider "
                            "regex_format or lower the scale.")
    return problems


def _type_problems(metadata: Metadata, tables: list[str], dialect: sa.Dialect,
                   schema: str | None) -> list[str]:
    """Tables and columns whose types do not translate to the target's dialect."""
    name = dialect_family(dialect.name)
    try:
        wanted = target_metadata(metadata, tables, name, schema)
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none stops the check
        return [f"The source schema cannot be translated to {name}: {exc}"]
    problems = []
    for table in wanted.tables.values():  # no order needed (and tables may form a cycle)
        for column in table.columns:
            try:
                column.type.compile(dialect=dialect)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"Column '{table.name}.{column.name}': its type {column.type!r} "
                                f"has no {name} form ({exc}); exclude the table or override the "
                                "column's sdtype.")
        try:
            sa.schema.CreateTable(table).compile(dialect=dialect)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"Table '{table.name}' cannot be created in {name}: {exc}; exclude "
                            "it or fix the source schema.")
    return problems


def check_before_work(metadata: Metadata, target_engine: sa.Engine, *, scale: float = 1.0,
                      target_schema: str | None = None,
                      max_total_rows: int | None = MAX_TOTAL_ROWS) -> list[str]:
    """Every problem the run would meet before writing, found without reading a row: more rows
    in total than ``max_total_rows`` (None or 0: no ceiling), a table named like the staging
    tables (:func:`hma_db.target.staging.is_staging_name`), unique
    columns whose generator has no room for the rows at ``scale`` (personal data and
    patterned keys), and types with no form in the target's dialect. One line each, naming
    the table, the column and what to do.

    ``run_clone`` refuses a run with any of them before reading the source, and ``hma-db plan``
    lists them: one implementation, so a plan that passes is a run that gets past them.
    """
    ceiling = row_ceiling_problem(planned_rows(metadata, scale), scale, max_total_rows)
    tables = metadata.topological_order()
    problems = [ceiling] if ceiling else []
    problems += [f"Table '{t}' is named like hma_db's staging tables, which the next run into "
                 "the target or 'hma-db clean' would drop: leave it out of the run (exclude) "
                 "or rename it in the source" for t in tables if is_staging_name(t)]
    for table in tables:
        rows = target_rows(metadata.row_counts.get(table, 0), scale)
        problems += _personal_room(metadata, table, rows) + _key_room(metadata, table, rows)
    return problems + _type_problems(metadata, tables, target_engine.dialect, target_schema)


def refuse_before_work(metadata: Metadata, target_engine: sa.Engine, *, scale: float,
                       target_schema: str | None,
                       max_total_rows: int | None = MAX_TOTAL_ROWS) -> None:
    """Raise :class:`SamplingError` listing :func:`check_before_work`'s problems, if any; a
    :class:`ConfigError` first for more rows than the ceiling (the request itself is wrong)."""
    ceiling = row_ceiling_problem(planned_rows(metadata, scale), scale, max_total_rows)
    if ceiling:
        raise ConfigError(ceiling + " Nothing was read or written.")
    problems = check_before_work(metadata, target_engine, scale=scale,
                                 target_schema=target_schema, max_total_rows=None)
    if len(problems) == 1:
        raise SamplingError(problems[0])
    if problems:
        raise SamplingError("The run would fail; nothing was read or written:\n"
                            + "\n".join(f"  - {p}" for p in problems))
