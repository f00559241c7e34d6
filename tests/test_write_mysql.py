"""write() into MariaDB: Chinook round trip, AUTO_INCREMENT, and failures after the implicit
commits of DDL (the tables and the database this run created are dropped again)."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import CHINOOK_SQLITE
from test_write import (
    _cycle_metadata,
    check_cycle_load,
    check_foreign_keys_proven_at_commit,
    chinook,
    cycle_data,
    insert_without_id,
    row_counts,
    structure,
)
from test_write_postgres import check_kinds_elsewhere, kinds_source

from hma_db import WriteError
from hma_db.source.reflect import reflect
from hma_db.target.ddl import drift, target_metadata
from hma_db.target.write import write

pytestmark = pytest.mark.mysql


@pytest.fixture(scope="module")
def chinook_data():
    return chinook()


def _run(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def test_chinook_into_mariadb(mysql_databases, chinook_data):
    metadata, data = chinook_data
    url = mysql_databases.new("write_chinook")
    assert write(data, metadata, url) == {t: len(data[t]) for t in metadata.topological_order()}
    assert row_counts(url) == {t: len(f) for t, f in data.items()}
    assert structure(url) == structure(f"sqlite:///{CHINOOK_SQLITE}")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        tables = metadata.topological_order()
        assert drift(conn, target_metadata(metadata, tables, "mysql", None), tables, None) == []
        fks = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = DATABASE()").scalar()
    engine.dispose()
    assert fks == len(metadata.relationships)
    assert len(insert_without_id(url, metadata)) == 10
    write(data, metadata, url, if_exists="replace")  # same structure: emptied, not dropped
    assert row_counts(url) == {t: len(f) for t, f in data.items()}
    write(data, metadata, url, if_exists="append")
    assert row_counts(url) == {t: 2 * len(f) for t, f in data.items()}


def test_cycle_and_self_reference_on_mariadb(mysql_databases):
    url = mysql_databases.new("write_cycle")
    data = cycle_data()
    write(data, _cycle_metadata(), url, batch_size=300)
    check_cycle_load(url, data)


def test_a_planted_orphan_fails_at_commit(mysql_databases, chinook_data):
    metadata, data = chinook_data
    url = mysql_databases.new("write_fk_commit")
    message = check_foreign_keys_proven_at_commit(url, metadata, data)
    assert "failed at commit: 347 row(s) have a foreign key (ArtistId) matching no row of " \
        "'Artist' (ArtistId), such as (999999,)" in message
    # The checks are off for the load and proven after it, whatever the connection came with.
    unchecked = sa.create_engine(url, connect_args={"init_command": "SET foreign_key_checks = 1"})
    bad = {**data, "Album": data["Album"].assign(ArtistId=999_999)}
    write(data, metadata, unchecked)
    before = row_counts(url)
    # Emptying and loading again: the orphan is found at commit and the emptying rolled back.
    with pytest.raises(WriteError, match="table 'Album' failed at commit"):
        write(bad, metadata, unchecked, if_exists="truncate")
    assert row_counts(url) == before
    with unchecked.connect() as conn:
        assert conn.exec_driver_sql("SELECT @@SESSION.foreign_key_checks").scalar() == 1
    unchecked.dispose()


def test_emptying_is_rolled_back_when_other_tables_are_created(mysql_databases, chinook_data):
    """CREATE TABLE commits on MariaDB: the tables to create come before the DELETEs that empty
    the existing ones, so a failure still rolls the emptying back."""
    metadata, data = chinook_data
    url = mysql_databases.new("write_partial")
    write({"Artist": data["Artist"]}, metadata, url)
    broken = {**data, "InvoiceLine": data["InvoiceLine"].assign(TrackId=999_999)}
    for mode in ("truncate", "replace"):
        with pytest.raises(WriteError, match="table 'InvoiceLine' failed"):
            write(broken, metadata, url, if_exists=mode)
        assert row_counts(url) == {"Artist": len(data["Artist"])}


BOOM = [
    "CREATE SEQUENCE boom_counter",
    """CREATE TRIGGER boom BEFORE INSERT ON InvoiceLine FOR EACH ROW BEGIN
         IF MOD(NEXTVAL(boom_counter), 1500) = 0 THEN
           SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'boom on row 1500';
         END IF; END""",
]


def test_trigger_failure_on_a_late_table_changes_nothing(mysql_databases, chinook_data):
    metadata, data = chinook_data
    url = mysql_databases.new("write_trigger")
    write(data, metadata, url)
    _run(url, *BOOM)
    before = row_counts(url)
    for mode in ("truncate", "append", "replace"):
        with pytest.raises(WriteError, match="Table 'InvoiceLine' of the target has "
                                             "trigger.s. boom that would fire"):
            write(data, metadata, url, if_exists=mode)  # refused before the first row
        with pytest.raises(WriteError, match="table 'InvoiceLine' failed: boom on row 1500"):
            write(data, metadata, url, if_exists=mode, fire_triggers=True)
        assert row_counts(url) == before


def _killer(admin: str, database: str, table: str):
    def progress(name, done, total):
        if name == table and done > 0:
            _run(admin, *[f"KILL CONNECTION {pid}" for pid in _victims(admin, database)])
    return progress


def _victims(admin: str, database: str) -> list[int]:
    engine = sa.create_engine(admin, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        pids = conn.exec_driver_sql(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()",
            (database,)).scalars().all()
    engine.dispose()
    return list(pids)


def test_killed_connection_drops_what_the_run_created(mysql_databases, chinook_data):
    metadata, data = chinook_data
    url = mysql_databases.new("write_kill")
    database = sa.make_url(url).database
    _run(url, "CREATE TABLE keep (id int PRIMARY KEY)", "INSERT INTO keep VALUES (1), (2)")
    with pytest.raises(WriteError, match="table 'Track' failed"):
        write(data, metadata, url, batch_size=500, progress=_killer(url, database, "Track"))
    assert row_counts(url) == {"keep": 2}
    write({"Artist": data["Artist"], "Album": data["Album"]}, metadata, url)
    before = row_counts(url)
    with pytest.raises(WriteError, match="table 'PlaylistTrack' failed"):
        write(data, metadata, url, if_exists="append", batch_size=1000,
              progress=_killer(url, database, "PlaylistTrack"))
    assert row_counts(url) == before


def test_failure_drops_the_database_it_created(mysql_databases, chinook_data):
    metadata, data = chinook_data
    url = mysql_databases.new("write_schema")
    schema = f"hma_write_schema_{os.getpid()}"
    broken = {**data, "InvoiceLine": data["InvoiceLine"].assign(TrackId=999_999)}
    try:
        with pytest.raises(WriteError, match="table 'InvoiceLine' failed"):
            write(broken, metadata, url, schema=schema)
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            assert schema not in sa.inspect(conn).get_schema_names()
        engine.dispose()
        assert write(data, metadata, url, schema=schema)["InvoiceLine"] == len(data["InvoiceLine"])
        assert row_counts(url, schema=schema) == {t: len(f) for t, f in data.items()}
    finally:
        _run(url, f"DROP DATABASE IF EXISTS {schema}")


def test_postgres_types_into_mariadb(postgres_databases, mysql_databases):
    _, metadata, data = kinds_source(postgres_databases)
    url = mysql_databases.new("write_kinds")
    write(data, metadata, url)
    check_kinds_elsewhere(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        column = "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = " \
                 "DATABASE() AND TABLE_NAME = 'kinds' AND COLUMN_NAME = %s"
        assert conn.exec_driver_sql(column, ("feeling",)).scalar() == "enum('sad','ok','happy')"
        assert conn.exec_driver_sql(column, ("amount",)).scalar() == "decimal(14,4)"
        assert conn.exec_driver_sql(column, ("uid",)).scalar() == "char(36)"
    engine.dispose()
    assert write(data, metadata, url, if_exists="append") == {"kinds": 3}  # no drift


def test_northwind_from_postgres_into_mariadb(northwind_postgres, mysql_databases):
    metadata = reflect(northwind_postgres)
    engine = sa.create_engine(northwind_postgres, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        data = {t: pd.read_sql_table(t, conn) for t in metadata.tables}
    engine.dispose()
    url = mysql_databases.new("write_northwind")
    write(data, metadata, url)
    assert row_counts(url) == {t: len(f) for t, f in data.items()}
    assert structure(url) == structure(northwind_postgres)


def test_replacing_changed_tables_is_all_or_nothing(mysql_databases, chinook_data):
    metadata, data = chinook_data
    url = mysql_databases.new("write_replace")
    write(data, metadata, url)
    _run(url, "ALTER TABLE Genre ADD COLUMN extra INTEGER", "ALTER TABLE Track DROP COLUMN Composer")
    before = row_counts(url)
    broken = {**data, "InvoiceLine": data["InvoiceLine"].assign(TrackId=999_999)}
    with pytest.raises(WriteError, match="table 'InvoiceLine' failed"):
        write(broken, metadata, url, if_exists="replace")
    assert row_counts(url) == before  # old tables, old rows, no staging tables left
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        assert "extra" in [c["name"] for c in sa.inspect(conn).get_columns("Genre")]
    write(data, metadata, url, if_exists="replace")
    assert row_counts(url) == {t: len(f) for t, f in data.items()}
    assert structure(url) == structure(f"sqlite:///{CHINOOK_SQLITE}")
    with engine.connect() as conn:
        tables = metadata.topological_order()
        assert drift(conn, target_metadata(metadata, tables, "mysql", None), tables, None) == []
        fks = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = DATABASE()").scalar()
    engine.dispose()
    assert fks == len(metadata.relationships)
    insert_without_id(url, metadata)
