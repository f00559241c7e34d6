"""The quality and privacy report: is the synthetic data realistic, valid and free of leaks?

:func:`evaluate` compares real and synthetic tables in memory; :func:`evaluate_databases`
reads both from databases (sampling tables larger than ``max_rows``) and runs the validity
checks as SQL in the target. Both return a :class:`Report`:

- ``score``: the overall fidelity score, the mean of the four properties of SDMetrics'
  multi-table quality report (Column Shapes, Column Pair Trends, Cardinality, Intertable
  Trends; see :mod:`hma_db.report.fidelity`), NaN properties left out as SDMetrics does;
- ``properties`` and ``details``: per property, the score and the per-column / per-pair /
  per-relationship rows; ``table_scores``: each property's mean per table;
- ``validity``: schema rules checked on the synthetic data (:mod:`hma_db.report.validity`);
- ``privacy``: leak checks against chance baselines (:mod:`hma_db.report.privacy`);
- ``to_json()`` and ``save_html(path)`` (:mod:`hma_db.report.html`).

Whatever the drivers return (sets, bytes, JSON, ranges, columns of mixed types), values are made
hashable and printable first (:mod:`hma_db.report.values`); a value that is no number or
datetime where one is scored is skipped and counted in a note, and a check the target database
refuses is reported as not made (:mod:`hma_db.report.dialects` says how each side is read).
"""

from __future__ import annotations

import datetime
import decimal
import math

import numpy as np
import pandas as pd
import sqlalchemy as sa

from hma_db.engines import Source, connect, engine_for, safe_url
from hma_db.errors import DataError, ReflectionError
from hma_db.report.dialects import query_table, source_types, sql_value
from hma_db.report.fidelity import PROPERTIES, fidelity, property_score
from hma_db.report.plots import distributions
from hma_db.report.privacy import privacy
from hma_db.report.result import DEFAULT_THRESHOLDS, Report
from hma_db.report.validity import frame_checks, ranges, rule_checks, sql_checks
from hma_db.report.values import comparable_frames
from hma_db.schema import Metadata
from hma_db.source import begin_read_only, reflect
from hma_db.synthesizer import known_rules

DEFAULT_MAX_ROWS = 100_000
def _check_tables(real: dict, synthetic: dict, metadata: Metadata) -> None:
    problems = [f"table '{t}' is missing from the {side} data" for t in metadata.tables
                for side, data in (("real", real), ("synthetic", synthetic)) if t not in data]
    problems += [f"column '{t}.{c}' is missing from the {side} data"
                 for t, meta in metadata.tables.items()
                 for side, data in (("real", real), ("synthetic", synthetic)) if t in data
                 for c in meta["columns"] if c not in data[t].columns]
    if problems:
        raise DataError("The data does not match the metadata.", problems)


def evaluate(real: dict[str, pd.DataFrame], synthetic: dict[str, pd.DataFrame],
             metadata: Metadata | dict, *, min_category_count: int = 5,
             locales: tuple[str, ...] | list[str] = ("en_US",), seed: int = 0,
             thresholds: dict[str, float] | None = None,
             constraints: list | None = None) -> Report:
    """Compare synthetic tables with the real ones they imitate.

    Args:
        real / synthetic: ``{table: DataFrame}`` with the columns of ``metadata``.
        metadata: a :class:`Metadata` (or its dict in SDV's layout).
        min_category_count: a category seen fewer times in ``real`` is rare: it must not appear
            in ``synthetic`` (the synthesizer's setting of the same name).
        locales: the Faker locales of the synthesizer, for the chance baseline of personal data.
        seed: for the random train/holdout split and subsamples.
        thresholds: overrides of :data:`DEFAULT_THRESHOLDS` for the summary's pass/fail.
        constraints: declared constraints (``synthesizer.get_constraints()``) to count the
            violations of, besides the source's CHECKs comparing two columns and the rules
            found in the real data (always counted).

    Returns:
        A :class:`Report`.

    Example:
        >>> report = evaluate(real, synthesizer.sample(), metadata)
        >>> report.score
    """
    metadata = Metadata.from_dict(metadata) if isinstance(metadata, dict) else metadata
    _check_tables(real, synthetic, metadata)
    rules = _rules(real, synthetic, metadata, constraints)
    real, synthetic = comparable_frames(real, metadata), comparable_frames(synthetic, metadata)
    validity = frame_checks(synthetic, metadata, ranges(real, metadata)) + rules
    return _build(real, synthetic, metadata, validity, min_category_count=min_category_count,
                  locales=tuple(locales), seed=seed, thresholds=thresholds)


def _rules(real, synthetic, metadata: Metadata, constraints: list | None) -> list[dict]:
    """The violations of each declared, CHECK and found rule, real and synthetic."""
    declared = [c for c in constraints or [] if hasattr(c, "columns") and not c.found]
    found = known_rules(metadata, real)
    pairs = {(type(c).__name__, c.table_name, tuple(c.columns())) for c in declared}
    found = [r for r in found if ("Inequality", r.table_name, tuple(r.columns())) not in pairs]
    return rule_checks(real, synthetic, declared + found)


def _build(real, synthetic, metadata: Metadata, validity: list[dict], *, min_category_count: int,
           locales: tuple[str, ...], seed: int, thresholds: dict | None,
           rows: dict | None = None) -> Report:
    details = fidelity(real, synthetic, metadata)
    properties = {name: property_score(details[name]) for name in PROPERTIES}
    scores = [s for s in properties.values() if not math.isnan(s)]
    return Report(
        score=float(np.mean(scores)) if scores else float("nan"),
        properties=properties, details=details, validity=validity,
        privacy=privacy(real, synthetic, metadata, min_category_count=min_category_count,
                        locales=locales, seed=seed),
        rows=rows or {t: {"real": len(real[t]), "synthetic": len(synthetic[t])}
                      for t in metadata.tables},
        thresholds={**DEFAULT_THRESHOLDS, **(thresholds or {})},
        distributions=distributions(real, synthetic, metadata))


def evaluate_databases(source: Source, target: Source, metadata: Metadata | None = None, *,
                       schema: str | None = None, target_schema: str | None = None,
                       max_rows: int = DEFAULT_MAX_ROWS, min_category_count: int = 5,
                       locales: tuple[str, ...] | list[str] = ("en_US",), seed: int = 0,
                       thresholds: dict[str, float] | None = None) -> Report:
    """Evaluate the synthetic database ``target`` against the real database ``source``.

    Tables with more than ``max_rows`` rows are sampled at random (``max_rows`` rows) on both
    sides, so Cardinality and Intertable Trends are then approximate. The validity checks run
    as COUNT queries in the target over all its rows; value ranges come from the source.

    Args:
        source / target: URL, SQLAlchemy URL or Engine; both are only read.
        metadata: the schema; reflected from ``source`` when not given.
        schema / target_schema: the schemas to read from.
        max_rows: rows read per table and side, at most.
        min_category_count, locales, seed, thresholds: as for :func:`evaluate`.

    Example:
        >>> evaluate_databases("sqlite:///prod.sqlite", "sqlite:///staging.sqlite").score
    """
    with engine_for(source, error=ReflectionError) as source_engine, \
            engine_for(target, error=ReflectionError) as target_engine:
        if metadata is None:
            metadata = reflect(source_engine, schema=schema)
        schemas = {t: metadata.table_schemas.get(t, schema) for t in metadata.tables}
        real, real_rows, real_ranges = _read(source_engine, metadata, schemas, max_rows, seed)
        synthetic, syn_rows, _ = _read(target_engine, metadata,
                                       dict.fromkeys(metadata.tables, target_schema), max_rows,
                                       seed)
        with connect(target_engine, error=ReflectionError) as conn:
            begin_read_only(conn)
            try:
                validity = sql_checks(conn, metadata, schema=target_schema,
                                      value_ranges=real_ranges)
            finally:
                conn.rollback()
    rows = {t: {"real": real_rows[t], "synthetic": syn_rows[t]} for t in metadata.tables}
    # On tables read in part (max_rows) the rules are counted on the rows read.
    validity = validity + _rules(real, synthetic, metadata, None)
    real, synthetic = comparable_frames(real, metadata), comparable_frames(synthetic, metadata)
    return _build(real, synthetic, metadata, validity, min_category_count=min_category_count,
                  locales=tuple(locales), seed=seed, thresholds=thresholds, rows=rows)


def _read(engine: sa.Engine, metadata: Metadata, schemas: dict[str, str | None], max_rows: int,
          seed: int) -> tuple[dict, dict, dict]:
    """Every table (a random ``max_rows`` sample of a larger one) from its schema in
    ``schemas``, row counts, value ranges."""
    data, counts, value_ranges = {}, {}, {}
    with connect(engine, error=ReflectionError) as conn:
        begin_read_only(conn)
        try:
            for table in metadata.tables:
                schema = schemas.get(table)
                read = conn.execution_options(schema_translate_map={None: schema}) if schema \
                    else conn
                data[table], counts[table] = _read_table(read, metadata, table, max_rows, seed)
                value_ranges[table] = _sql_ranges(read, metadata, table, data[table])
        except sa.exc.DBAPIError as exc:
            raise ReflectionError(f"Reading table '{table}' from {safe_url(engine)} failed: "
                                  f"{str(exc.orig).strip().splitlines()[0]}") from exc
        finally:
            conn.rollback()
    return data, counts, value_ranges


def _read_table(conn: sa.Connection, metadata: Metadata, table: str, max_rows: int,
                seed: int) -> tuple[pd.DataFrame, int]:
    names = list(metadata.tables[table]["columns"])
    selectable = query_table(metadata, table, conn.dialect)
    count = int(conn.execute(sa.select(sa.func.count()).select_from(selectable)).scalar())

    def query(t, types):
        select = sa.select(*[sql_value(t.c[n], types.get(n)).label(n) for n in names])
        if count <= max_rows:
            return select
        random = sa.func.rand() if conn.dialect.name in ("mysql", "mariadb") else sa.func.random()
        return select.order_by(random).limit(max_rows)

    rows = _fetch(conn, metadata, table, query)
    frame = pd.DataFrame.from_records(rows, columns=names) if rows else \
        pd.DataFrame({n: pd.Series(dtype=object) for n in names})
    return frame, count


def _fetch(conn: sa.Connection, metadata: Metadata, table: str, query) -> list:
    """The rows of ``query(table, source types)``, read again untyped when SQLAlchemy cannot
    convert a value to the column's source type (text in a SQLite DATETIME column, a target
    column of text where the source had REAL): such values are then taken as the database
    gives them, and the report skips what it cannot read, with a note."""
    types = source_types(metadata, table)
    try:
        return conn.execute(query(query_table(metadata, table, conn.dialect), types)).fetchall()
    except (sa.exc.InvalidRequestError, ValueError, TypeError):
        return conn.execute(query(query_table(metadata, table, typed=False), types)).fetchall()


def _sql_ranges(conn: sa.Connection, metadata: Metadata, table: str,
                frame: pd.DataFrame) -> dict[str, tuple]:
    """(min, max) of the numerical and datetime columns, from the whole table.

    A column that also holds other values (SQLite stores what it is given) may have a MIN or
    MAX that is no number or datetime: the range of its values is then taken from the rows
    read, ``frame``.
    """
    sdtypes = {c: m.get("sdtype") for c, m in metadata.tables[table]["columns"].items()}
    columns = [c for c, sdtype in sdtypes.items() if sdtype in ("numerical", "datetime")]
    if not columns:
        return {}
    row = _fetch(conn, metadata, table, lambda t, types: sa.select(*[
        f(sql_value(t.c[c], types.get(c))) for c in columns for f in (sa.func.min, sa.func.max)]))[0]
    found = {c: (row[2 * i], row[2 * i + 1]) for i, c in enumerate(columns)
             if row[2 * i] is not None}
    odd = [c for c, bounds in found.items() if not all(_bound(sdtypes[c], b) for b in bounds)]
    if odd:
        found = {c: b for c, b in found.items() if c not in odd}
        found |= ranges({table: frame[odd]}, metadata).get(table, {})
    return found


def _bound(sdtype: str, value) -> bool:
    """Whether a MIN or MAX is a number (numerical) or reads as a datetime (datetime)."""
    if sdtype == "numerical":
        return isinstance(value, (int, float, decimal.Decimal, np.number)) \
            and not isinstance(value, (bool, np.bool_))
    if isinstance(value, (datetime.date, datetime.time)):
        return True
    return isinstance(value, str) and pd.notna(pd.to_datetime(value, errors="coerce"))
