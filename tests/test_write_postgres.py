"""write() into PostgreSQL: Chinook and Northwind round trips, type encoding through COPY,
sequences, triggers, and failures that must leave the target as it was."""

from __future__ import annotations

import json

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

from hma_db import SchemaDriftError, WriteError
from hma_db.source.reflect import reflect
from hma_db.target.ddl import drift, target_metadata
from hma_db.target.write import write

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def chinook_data():
    return chinook()


def _run(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for statement in statements:  # the driver's own execute: '%' is not a placeholder
            conn.connection.driver_connection.execute(statement)
    engine.dispose()


def test_chinook_into_postgres(postgres_databases, chinook_data):
    metadata, data = chinook_data
    url = postgres_databases.new("write_chinook")
    assert write(data, metadata, url) == {t: len(data[t]) for t in metadata.topological_order()}
    assert row_counts(url) == {t: len(f) for t, f in data.items()}
    assert structure(url) == structure(f"sqlite:///{CHINOOK_SQLITE}")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        tables = metadata.topological_order()
        assert drift(conn, target_metadata(metadata, tables, "postgresql", None), tables,
                     None) == []
        fks = conn.exec_driver_sql("SELECT COUNT(*) FROM information_schema.table_constraints "
                                   "WHERE constraint_type = 'FOREIGN KEY'").scalar()
    assert fks == len(metadata.relationships)
    assert len(insert_without_id(url, metadata)) == 10


def test_northwind_into_another_postgres_schema(postgres_databases, northwind_postgres):
    metadata = reflect(northwind_postgres)
    engine = sa.create_engine(northwind_postgres, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        data = {t: pd.read_sql_table(t, conn) for t in metadata.tables}
    url = postgres_databases.new("write_northwind")
    counts = write(data, metadata, url, schema="staging")
    assert counts == {t: len(data[t]) for t in metadata.topological_order()}
    assert row_counts(url, schema="staging") == {t: len(f) for t, f in data.items()}
    assert structure(url, schema="staging") == structure(northwind_postgres)
    # bytea pictures and every other value arrive unchanged
    target = sa.create_engine(url, poolclass=sa.pool.NullPool)
    for table in ("categories", "employees", "orders"):
        source = pd.read_sql_query(f"SELECT to_jsonb(t)::text AS j FROM {table} t ORDER BY 1",
                                   engine)
        back = pd.read_sql_query(f"SELECT to_jsonb(t)::text AS j FROM staging.{table} t "
                                 "ORDER BY 1", target)
        assert source["j"].tolist() == back["j"].tolist(), table
    insert_without_id(url, metadata, schema="staging")
    engine.dispose()
    target.dispose()


KINDS_DDL = [
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
    "CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0)",
    """CREATE TABLE kinds (
        id serial PRIMARY KEY, flag boolean, amount numeric(14,4) CHECK (amount >= 0),
        ratio double precision, small smallint, big bigint, at_tz timestamptz, at timestamp,
        day date, clock time, span interval, uid uuid, doc json, docb jsonb, tags text[],
        nums integer[], raw bytea, feeling mood, note text, code varchar(10), pos positive_int)""",
    r"""INSERT INTO kinds (flag, amount, ratio, small, big, at_tz, at, day, clock, span, uid, doc,
        docb, tags, nums, raw, feeling, note, code, pos) VALUES
      (true, 1234567890.1234, 1e-300, -32768, 9223372036854775807, '2024-03-31 02:30:00+02',
       '1999-12-31 23:59:59.999999', '0001-01-01', '23:59:59.5', '-1 days +02:03:04.5',
       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, "x\ty"]}', '{"k": {"n": null}}',
       ARRAY['plain', 'with "quote"', 'back\slash', NULL, 'tab	and
newline', ''], ARRAY[1, NULL, 3], '\x00ff5c0a09'::bytea, 'happy',
       E'tab\there\nnewline\\backslash \\N not null', 'x', 7),
      (false, 0, -0.5, 0, -1, '1970-01-01 00:00:00+00', '2038-01-19 03:14:08', '2024-02-29',
       '00:00:00', '400 days 00:00:01.25', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '[]', '"s"',
       '{}', '{}', '', 'sad', '', 'émoji ✓', 1),
      (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL)""",
]


def kinds_source(postgres_databases):
    """A PostgreSQL database with one row per edge case of every type, its metadata and rows."""
    source = postgres_databases.new("write_kinds")
    _run(source, *KINDS_DDL)
    metadata = reflect(source)
    engine = sa.create_engine(source, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        frame = pd.read_sql_query("SELECT * FROM kinds ORDER BY id", conn)
        # pandas reads a bigint column with NULLs as float64, which rounds 2**63 - 1
        frame["big"] = pd.array(conn.exec_driver_sql("SELECT big FROM kinds ORDER BY id")
                                .scalars().all(), dtype="Int64")
    engine.dispose()
    return source, metadata, {"kinds": frame}


def test_every_type_round_trips_through_copy(postgres_databases):
    source, metadata, data = kinds_source(postgres_databases)
    engine = sa.create_engine(source, poolclass=sa.pool.NullPool)
    url = postgres_databases.new("write_types_dst")
    write(data, metadata, url)
    # An interval read into pandas is a duration (days, not '1 mon'): compare seconds.
    query = ("SELECT (to_jsonb(k) - 'span')::text, EXTRACT(epoch FROM span) FROM kinds k "
             "ORDER BY id")
    target = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as a, target.connect() as b:
        assert a.exec_driver_sql(query).fetchall() == b.exec_driver_sql(query).fetchall()
        types = "SELECT column_name, data_type, udt_name FROM information_schema.columns " \
                "WHERE table_name = 'kinds' ORDER BY ordinal_position"
        found = b.exec_driver_sql(types).fetchall()
        assert [r for r in a.exec_driver_sql(types).fetchall() if r[0] != "pos"] == \
            [r for r in found if r[0] != "pos"]
        assert ("pos", "integer", "int4") in found  # a domain becomes its base type
        b.exec_driver_sql("INSERT INTO kinds (note) VALUES ('next')")
        b.commit()
    engine.dispose()
    target.dispose()
    assert write(data, metadata, url, if_exists="append") == {"kinds": 3}  # no drift
    assert row_counts(url) == {"kinds": 7}


def test_cycle_and_self_reference_on_postgres(postgres_databases):
    url = postgres_databases.new("write_cycle")
    data = cycle_data()
    write(data, _cycle_metadata(), url, batch_size=300)
    check_cycle_load(url, data)


BOOM = [
    "CREATE SEQUENCE boom_counter",
    """CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN IF nextval('boom_counter') % 1500 = 0 THEN
         RAISE EXCEPTION 'boom on row %', currval('boom_counter'); END IF;
       RETURN NEW; END $$""",
    'CREATE TRIGGER boom BEFORE INSERT ON "InvoiceLine" FOR EACH ROW EXECUTE FUNCTION boom()',
]


def test_trigger_failure_on_a_late_table_changes_nothing(postgres_databases, chinook_data):
    metadata, data = chinook_data
    url = postgres_databases.new("write_trigger")
    write(data, metadata, url)
    _run(url, *BOOM)
    before = row_counts(url)
    for mode in ("truncate", "append", "replace"):
        if mode == "replace":
            with pytest.raises(WriteError, match="Track"):  # the trigger went with the table
                write({**data, "Track": data["Track"].assign(GenreId=999)}, metadata, url,
                      if_exists=mode)
        else:
            with pytest.raises(WriteError, match="Table 'InvoiceLine' of the target has "
                                                 "trigger.s. boom that would fire"):
                write(data, metadata, url, if_exists=mode)  # refused before the first row
            with pytest.raises(WriteError, match="table 'InvoiceLine' failed: boom on row"):
                write(data, metadata, url, if_exists=mode, fire_triggers=True)
        assert row_counts(url) == before
    # The option that disables triggers lets the same load through, but not a missing parent:
    # the foreign keys are checked all the same.
    write(data, metadata, url, if_exists="truncate", disable_triggers=True)
    assert row_counts(url) == before
    with pytest.raises(WriteError, match="table 'InvoiceLine' failed: insert or update on table "
                                         "\"InvoiceLine\" violates foreign key constraint"):
        write({**data, "InvoiceLine": data["InvoiceLine"].assign(TrackId=999_999)}, metadata, url,
              if_exists="truncate", disable_triggers=True)
    assert row_counts(url) == before
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:  # enabled again, as it was
        assert conn.exec_driver_sql("SELECT tgenabled FROM pg_trigger WHERE tgname = 'boom'"
                                    ).scalar() == "O"
    engine.dispose()


def test_disable_triggers_needs_the_tables_owner(postgres_databases, chinook_data):
    metadata, data = chinook_data
    url = postgres_databases.new("write_role")
    write(data, metadata, url)
    _run(url, *BOOM)
    before = row_counts(url)
    role = sa.make_url(url).database + "_user"
    _run(url, f"CREATE ROLE {role} LOGIN", f"GRANT ALL ON SCHEMA public TO {role}",
         f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}",
         f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    try:
        with pytest.raises(WriteError, match="trigger 'boom' of table 'InvoiceLine' can only be "
                                             "disabled by the table's owner or a superuser"):
            write(data, metadata, sa.make_url(url).set(username=role), if_exists="truncate",
                  disable_triggers=True)
        assert row_counts(url) == before
    finally:
        _run(url, f"DROP OWNED BY {role}", f"DROP ROLE {role}")


def _killer(admin: str, table: str):
    def progress(name, done, total):
        if name == table and done > 0:
            _run(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'hma_victim'")
    return progress


def test_terminated_connection_leaves_the_target_as_it_was(postgres_databases, chinook_data):
    metadata, data = chinook_data
    url = postgres_databases.new("write_kill")
    _run(url, "CREATE TABLE keep (id int PRIMARY KEY)", "INSERT INTO keep VALUES (1), (2)")
    victim = sa.make_url(url).update_query_dict({"application_name": "hma_victim"})
    with pytest.raises(WriteError, match="table 'Track' failed"):
        write(data, metadata, victim, batch_size=500, progress=_killer(url, "Track"))
    assert row_counts(url) == {"keep": 2}
    write(data, metadata, url)  # a fresh write afterwards works
    before = row_counts(url)
    with pytest.raises(WriteError, match="table 'PlaylistTrack' failed"):
        write(data, metadata, victim, if_exists="append", batch_size=1000,
              progress=_killer(url, "PlaylistTrack"))
    assert row_counts(url) == before


def test_schema_created_and_drift_refused(postgres_databases, chinook_data):
    metadata, data = chinook_data
    url = postgres_databases.new("write_schema")
    write(data, metadata, url, schema="shop")
    _run(url, 'ALTER TABLE shop."Track" ALTER COLUMN "Name" TYPE varchar(500)',
         'ALTER TABLE shop."Genre" ALTER COLUMN "Name" SET NOT NULL',
         'ALTER TABLE shop."Invoice" ADD COLUMN note text')
    with pytest.raises(SchemaDriftError) as info:
        write(data, metadata, url, schema="shop", if_exists="truncate")
    text = str(info.value)
    assert "table Track: column Name has type VARCHAR(500), expected VARCHAR(200)" in text
    assert "table Genre: column Name is NOT NULL in the target, expected NULL" in text
    assert "table Invoice: the target has a column note" in text
    assert row_counts(url, schema="shop") == {t: len(f) for t, f in data.items()}


def check_kinds_elsewhere(url: str) -> pd.DataFrame:
    """The kinds rows read back from SQLite or MariaDB, with the translated values checked."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    back = pd.read_sql_query("SELECT * FROM kinds ORDER BY id", engine)
    assert back["uid"].tolist()[:2] == ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                                        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12"]
    assert json.loads(back["tags"][0]) == ["plain", 'with "quote"', "back\\slash", None,
                                           "tab\tand\nnewline", ""]
    assert json.loads(back["docb"][0]) == {"k": {"n": None}} and json.loads(back["docb"][1]) == "s"
    assert bytes(back["raw"][0]) == b"\x00\xff\\\n\t"
    assert back["note"][0] == "tab\there\nnewline\\backslash \\N not null"
    assert back["feeling"].tolist()[:2] == ["happy", "sad"]
    assert back["span"].tolist()[:2] == [-86400 + 7384.5, 400 * 86400 + 1.25]
    assert str(back["at_tz"][0]).startswith("2024-03-31 00:30:00")  # UTC
    assert back["id"].tolist() == [1, 2, 3] and back.iloc[2].drop("id").isna().all()
    with engine.connect() as conn:
        for bad in ("INSERT INTO kinds (feeling) VALUES ('angry')",
                    "INSERT INTO kinds (amount) VALUES (-1)"):
            with pytest.raises(sa.exc.DBAPIError):  # the enum and the CHECK still hold
                conn.exec_driver_sql(bad)
            conn.rollback()
        conn.exec_driver_sql("INSERT INTO kinds (note) VALUES ('next')")
        assert conn.exec_driver_sql("SELECT MAX(id) FROM kinds").scalar() == 4
    engine.dispose()
    return back


def test_postgres_types_into_sqlite(postgres_databases, tmp_path):
    _, metadata, data = kinds_source(postgres_databases)
    url = f"sqlite:///{tmp_path / 'kinds.sqlite'}"
    write(data, metadata, url)
    engine = sa.create_engine(url)
    with engine.connect() as conn:  # a serial key becomes AUTOINCREMENT, its counter set
        assert conn.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = 'kinds'"
                                    ).scalar() == 3
    engine.dispose()
    check_kinds_elsewhere(url)
    # enum-as-CHECK, JSON, CHAR(36) uuids... are no drift for the check that append runs
    assert write(data, metadata, url, if_exists="append") == {"kinds": 3}


def test_northwind_from_postgres_into_sqlite(northwind_postgres, tmp_path):
    metadata = reflect(northwind_postgres)
    engine = sa.create_engine(northwind_postgres, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        data = {t: pd.read_sql_table(t, conn) for t in metadata.tables}
    engine.dispose()
    url = f"sqlite:///{tmp_path / 'northwind.sqlite'}"
    write(data, metadata, url)
    assert row_counts(url) == {t: len(f) for t, f in data.items()}
    assert structure(url) == structure(northwind_postgres)


def test_foreign_key_violation_found_by_the_copy_changes_nothing(postgres_databases,
                                                                 chinook_data):
    metadata, data = chinook_data
    url = postgres_databases.new("write_fk")
    broken = {**data, "InvoiceLine": data["InvoiceLine"].assign(TrackId=999_999)}
    with pytest.raises(WriteError, match=r"table 'InvoiceLine' failed: insert or update on table "
                                         r"\"InvoiceLine\" violates foreign key constraint .*"
                                         r"\(Key \(TrackId\)=\(999999\) is not present in "
                                         r"table \"Track\"\)"):
        write(broken, metadata, url)
    assert row_counts(url) == {}
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:  # no sequences or types left behind either
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM pg_class WHERE relkind = 'S'").scalar() \
            == 0
    engine.dispose()


def test_foreign_keys_are_added_after_the_rows_and_proven_at_commit(
        postgres_databases, chinook_data):
    metadata, data = chinook_data
    url = postgres_databases.new("write_fk_commit")
    message = check_foreign_keys_proven_at_commit(url, metadata, data)
    assert 'violates foreign key constraint' in message and "(ArtistId)=(999999)" in message
    write(data, metadata, url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:  # as the source declares them: validated, not DEFERRABLE
        found = conn.exec_driver_sql("SELECT condeferrable, convalidated FROM pg_constraint "
                                     "WHERE contype = 'f'").fetchall()
    engine.dispose()
    assert found == [(False, True)] * len(metadata.relationships)


def test_interrupt_during_copy_changes_nothing(postgres_databases, chinook_data):
    metadata, data = chinook_data
    url = postgres_databases.new("write_interrupt")
    write({"Artist": data["Artist"]}, metadata, url)

    def interrupt(table, done, total):
        if table == "PlaylistTrack" and done >= 2000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write(data, metadata, url, if_exists="append", batch_size=1000, progress=interrupt)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:  # rolled back before the interrupt got out: no lock is left
        assert conn.exec_driver_sql(
            "SELECT pid, relation::regclass::text, mode FROM pg_locks WHERE pid <> "
            "pg_backend_pid() AND database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database())").fetchall() == []
    engine.dispose()
    assert row_counts(url) == {"Artist": len(data["Artist"])}
    assert write(data, metadata, url, if_exists="append")["PlaylistTrack"] == 8715
