"""clone() end to end: Chinook from SQLite into SQLite, PostgreSQL and MariaDB at several scales,
and Northwind from PostgreSQL into another PostgreSQL schema. The target must come out with the
source's structure, its foreign keys declared and enforced, valid keys, row counts that follow
``scale``, and counters that let the application insert without an id."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import CHINOOK_SQLITE, NORTHWIND_POSTGRES_SQL, run_postgres_script, scaled_rows
from test_write import insert_without_id, row_counts, structure

from hma_db.pipeline import clone
from hma_db.source.read import read_tables
from hma_db.source.reflect import reflect

SCALES = [0.5, 1.0, 3.0]
CHINOOK = f"sqlite:///{CHINOOK_SQLITE}"


@pytest.fixture(scope="module")
def chinook_counts() -> dict[str, int]:
    return row_counts(CHINOOK)


def check_clone(source: str, target: str, scale: float, result, source_counts: dict[str, int],
                schema: str | None = None, target_schema: str | None = None) -> None:
    """Everything the target must show after a clone of ``source`` at ``scale``."""
    source_metadata = reflect(source, schema=schema)  # its reference tables are copied as is
    expected = {t: scaled_rows(source_metadata, t, scale, n) for t, n in source_counts.items()}
    assert result.rows == expected
    assert row_counts(target, schema=target_schema) == expected
    assert structure(target, schema=target_schema) == structure(source, schema=schema)
    metadata = reflect(target, schema=target_schema)
    # Unique, non-null primary keys and foreign keys that all resolve (raises otherwise).
    metadata.validate_data(read_tables(target, metadata))
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        declared = sum(len(inspector.get_foreign_keys(t, schema=target_schema))
                       for t in inspector.get_table_names(schema=target_schema))
    engine.dispose()
    assert declared == len(metadata.relationships)


def check_orphan_refused(target: str, child: str, column: str, schema: str | None = None) -> None:
    """The target itself refuses a row whose foreign key references nothing."""
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
    table = sa.Table(child, sa.MetaData(), schema=schema, autoload_with=engine)
    row = {c.name: None for c in table.columns}
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys = ON")
        existing = conn.execute(sa.select(table).limit(1)).mappings().one()
        row.update(existing)
        for key in table.primary_key.columns:
            if key.name != column:
                row[key.name] = conn.execute(sa.select(sa.func.max(key))).scalar() + 1
        (fk,) = [fk for fk in table.foreign_keys if fk.parent.name == column]
        row[column] = conn.execute(sa.select(sa.func.max(fk.column))).scalar() + 1  # no parent
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(table.insert().values(row))
            conn.commit()
    engine.dispose()


def clone_chinook(target: str, scale: float, counts: dict[str, int]) -> None:
    """Clone Chinook at ``scale`` (in chunks of 5,000 rows, so scale 3 takes several) and check
    the target, its enforced foreign keys and its key counters."""
    result = clone(CHINOOK, target, scale=scale, seed=3, chunk_rows=5_000)
    check_clone(CHINOOK, target, scale, result, counts)
    check_orphan_refused(target, "InvoiceLine", "InvoiceId")
    assert len(insert_without_id(target, reflect(CHINOOK))) == 10


@pytest.mark.parametrize("scale", SCALES)
def test_chinook_into_sqlite(tmp_path, chinook_counts, scale):
    clone_chinook(f"sqlite:///{tmp_path / 'clone.sqlite'}", scale, chinook_counts)


@pytest.mark.postgres
@pytest.mark.parametrize("scale", SCALES)
def test_chinook_into_postgres(postgres_databases, chinook_counts, scale):
    clone_chinook(postgres_databases.new("clone"), scale, chinook_counts)


@pytest.mark.mysql
@pytest.mark.parametrize("scale", SCALES)
def test_chinook_into_mariadb(mysql_databases, chinook_counts, scale):
    clone_chinook(mysql_databases.new("clone"), scale, chinook_counts)


@pytest.mark.postgres
def test_northwind_from_postgres_into_another_schema(postgres_databases):
    # Into the same server and database, another schema: allowed (only the source's own schema
    # is refused), and the source is left exactly as it was. A private copy of Northwind, since
    # the shared one must keep a single schema.
    northwind_postgres = postgres_databases.new("clone_northwind")
    run_postgres_script(northwind_postgres, NORTHWIND_POSTGRES_SQL)
    before = row_counts(northwind_postgres)
    result = clone(northwind_postgres, northwind_postgres, target_schema="staging", seed=8)
    check_clone(northwind_postgres, northwind_postgres, 1.0, result, before,
                target_schema="staging")
    assert row_counts(northwind_postgres) == before
    check_orphan_refused(northwind_postgres, "order_details", "order_id", schema="staging")
    insert_without_id(northwind_postgres, reflect(northwind_postgres), schema="staging")
