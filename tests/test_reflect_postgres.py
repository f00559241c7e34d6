"""reflect() on PostgreSQL: Chinook and Northwind as on SQLite, PostgreSQL types, partitions, schemas."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import CHINOOK_SNAKE_SQLITE, NORTHWIND_SQLITE

from hma_db import Metadata, ReflectionError
from hma_db.schema.sqltypes import RawType
from hma_db.source import begin_read_only
from hma_db.source.reflect import reflect

pytestmark = pytest.mark.postgres


def _structure(metadata: Metadata) -> tuple:
    rels = sorted((r["child_table_name"], str(r["child_foreign_key"]), r["parent_table_name"],
                   str(r["parent_primary_key"])) for r in metadata.relationships)
    keys = {t: d.get("primary_key") for t, d in metadata.tables.items()}
    nullable = {(t, c): o["nullable"] for t, d in metadata.tables.items()
                for c, o in d["columns"].items()}
    return sorted(metadata.tables), rels, keys, nullable


def _run(url: str, ddl: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(ddl)
    engine.dispose()


def test_chinook_same_structure_as_sqlite(chinook_postgres):
    metadata = reflect(chinook_postgres)
    metadata.validate()
    assert len(metadata.tables) == 11 and len(metadata.relationships) == 11
    assert _structure(metadata) == _structure(reflect(f"sqlite:///{CHINOOK_SNAKE_SQLITE}"))
    assert metadata.tables["playlist_track"]["primary_key"] == ["playlist_id", "track_id"]
    customer = metadata.tables["customer"]["columns"]
    assert customer["email"]["sdtype"] == "email" and customer["phone"]["pii"] is True
    assert metadata.row_counts["invoice_line"] == 2240
    # INT primary keys without a sequence are not numbered by the database.
    assert "autoincrement" not in customer["customer_id"]
    assert reflect(chinook_postgres, schema="public").to_dict() == metadata.to_dict()


def test_northwind_same_structure_as_sqlite(northwind_postgres):
    metadata = reflect(northwind_postgres)
    metadata.validate()
    assert len(metadata.tables) == 14 and len(metadata.relationships) == 13
    assert sum(isinstance(d.get("primary_key"), list) for d in metadata.tables.values()) == 3
    assert sorted(t for t, n in metadata.row_counts.items() if n == 0) == [
        "customer_customer_demo", "customer_demographics"]
    sqlite = reflect(f"sqlite:///{NORTHWIND_SQLITE}")
    assert _structure(metadata)[:3] == _structure(sqlite)[:3]
    assert metadata.tables["customers"]["columns"]["customer_id"]["regex_format"] == "[A-Z]{5}"


PG_DDL = """
CREATE EXTENSION IF NOT EXISTS citext;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN colour AS varchar(10) CHECK (VALUE IN ('red', 'green'));
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE account (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    handle varchar(30) NOT NULL UNIQUE,
    email text,
    contact citext
);
CREATE TABLE "Event" (
    "EventId" bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id uuid NOT NULL REFERENCES account (id),
    n serial,
    feeling mood NOT NULL,
    colour colour,
    amount positive,
    tags text[],
    payload json,
    doc jsonb,
    token uuid,
    took interval,
    addr inet,
    net cidr,
    raw bytea,
    search tsvector,
    page xml,
    price money,
    ratio numeric(6, 3),
    at timestamptz,
    "Status" varchar(10) CHECK ("Status" IN ('open', 'closed')),
    score integer CHECK (score IN (1, 2, 3)),
    doubled integer GENERATED ALWAYS AS (score * 2) STORED
);
CREATE UNIQUE INDEX event_partial ON "Event" (token) WHERE token IS NOT NULL;
CREATE UNIQUE INDEX event_pair ON "Event" (account_id, at);
CREATE TABLE measurement (
    account_id uuid NOT NULL,
    taken date NOT NULL,
    value double precision,
    PRIMARY KEY (account_id, taken)
) PARTITION BY RANGE (taken);
CREATE TABLE measurement_2024 PARTITION OF measurement
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE measurement_2025 PARTITION OF measurement
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
ALTER TABLE measurement_2024 ADD CONSTRAINT m24_account FOREIGN KEY (account_id)
    REFERENCES account (id);
ALTER TABLE measurement_2025 ADD CONSTRAINT m25_account FOREIGN KEY (account_id)
    REFERENCES account (id);
CREATE TABLE "Order Details" ("OrderID" bigint NOT NULL REFERENCES "Event" ("EventId"),
                              "Line" int NOT NULL, "select" text, "Größe" real,
                              PRIMARY KEY ("OrderID", "Line"));
CREATE VIEW recent AS SELECT * FROM "Event";
CREATE MATERIALIZED VIEW totals AS SELECT account_id, count(*) AS n FROM "Event" GROUP BY 1;
INSERT INTO account (handle, email, contact)
    VALUES ('ann', 'ann@example.com', 'Ann@Example.com'), ('bob', 'bob@example.com', NULL);
INSERT INTO measurement SELECT id, DATE '2024-05-01', 1.5 FROM account;
"""


@pytest.fixture(scope="module")
def pg_edge(postgres_databases) -> tuple[str, Metadata]:
    url = postgres_databases.new("reflect_pg")
    _run(url, PG_DDL)
    return url, reflect(url)


def test_pg_tables_views_partitions(pg_edge):
    _, metadata = pg_edge
    assert sorted(metadata.tables) == ["Event", "Order Details", "account", "measurement"]
    metadata.validate()
    assert metadata.row_counts == {"Event": 0, "Order Details": 0, "account": 2,
                                   "measurement": 2}
    details = metadata.tables["Order Details"]
    assert details["primary_key"] == ["OrderID", "Line"]
    assert details["columns"]["Größe"]["sdtype"] == "numerical"


def test_pg_partition_named_in_include(pg_edge):
    url, _ = pg_edge
    with pytest.raises(ReflectionError, match="'measurement_2024' is a partition of 'measurement'"):
        reflect(url, include=["measurement_2024"])
    assert sorted(reflect(url, include=["measurement", "account"]).tables) == [
        "account", "measurement"]


def test_pg_types(pg_edge):
    _, metadata = pg_edge
    event = metadata.tables["Event"]["columns"]
    assert event["EventId"] == {"sdtype": "id", "nullable": False, "autoincrement": True}
    assert event["n"]["autoincrement"] is True and event["n"]["sdtype"] == "numerical"
    assert event["feeling"] == {"sdtype": "categorical", "allowed_values": ["sad", "ok", "happy"],
                                "nullable": False}
    assert event["colour"] == {"sdtype": "categorical", "allowed_values": ["red", "green"],
                               "nullable": True, "max_length": 10}
    assert event["amount"]["sdtype"] == "numerical"
    generators = {c: event[c].get("generator") for c in
                  ("tags", "payload", "doc", "token", "took", "addr", "net", "raw", "search",
                   "page")}
    assert generators == {"tags": "array", "payload": "json", "doc": "json", "token": "uuid",
                          "took": "interval", "addr": "ip", "net": "ip", "raw": "bytes",
                          "search": "tsvector", "page": "xml"}
    assert event["price"]["sdtype"] == "numerical" and event["price"]["scale"] == 2
    assert (event["ratio"]["precision"], event["ratio"]["scale"]) == (6, 3)
    assert event["at"]["sdtype"] == "datetime"
    assert event["Status"]["allowed_values"] == ["open", "closed"]
    assert event["score"]["allowed_values"] == [1, 2, 3]
    assert "doubled" not in event  # generated by the database


def test_pg_keys(pg_edge):
    _, metadata = pg_edge
    account = metadata.tables["account"]
    assert account["columns"]["id"] == {"sdtype": "id", "nullable": False, "generator": "uuid"}
    assert account["alternate_keys"] == ["handle"]
    # An extension's text type: its values are looked at like text.
    assert account["columns"]["contact"]["sdtype"] == "email"
    assert "CITEXT" in repr(metadata.sql_metadata.tables["account"].c.contact.type)
    # The partial unique index is not a key; the full one is.
    assert metadata.tables["Event"]["alternate_keys"] == [["account_id", "at"]]
    assert metadata.tables["Event"]["columns"]["account_id"] == {"sdtype": "id", "nullable": False}
    rels = {(r["child_table_name"], r["child_foreign_key"]) for r in metadata.relationships}
    # measurement's foreign key exists only on its partitions: lifted to the partitioned table.
    assert rels == {("Event", "account_id"), ("measurement", "account_id"),
                    ("Order Details", "OrderID")}


def test_pg_sql_metadata(pg_edge):
    _, metadata = pg_edge
    tables = metadata.sql_metadata.tables
    assert sorted(tables) == ["Event", "Order Details", "account", "measurement"]
    # The domain keeps its name, its CHECK and (unlike SQLAlchemy's reflection) its length.
    colour = tables["Event"].c.colour.type
    assert colour.name == "colour" and "red" in str(colour.check)
    assert colour.data_type.length == 10
    assert isinstance(tables["Event"].c.page.type, RawType)
    assert tables["Event"].c.page.type.get_col_spec() == "xml"
    assert tables["Event"].c.EventId.identity is not None
    fks = {(fk.parent.name, fk.column.table.name) for fk in tables["measurement"].foreign_keys}
    assert fks == {("account_id", "account")}


def test_pg_schema_option(postgres_databases):
    url = postgres_databases.new("reflect_schema")
    _run(url, """
        CREATE SCHEMA "Sales";
        CREATE TABLE "Sales"."user" (id int PRIMARY KEY, name text);
        CREATE TABLE "Sales"."order" (id int PRIMARY KEY,
                                      "user" int REFERENCES "Sales"."user" (id));
        CREATE TABLE public.other (id int PRIMARY KEY);
    """)
    metadata = reflect(url, schema="Sales")
    assert sorted(metadata.tables) == ["order", "user"] and metadata.schema == "Sales"
    assert metadata.relationships == [{"parent_table_name": "user", "parent_primary_key": "id",
                                       "child_table_name": "order", "child_foreign_key": "user"}]
    assert all(t.schema is None for t in metadata.sql_metadata.tables.values())
    order = metadata.sql_metadata.tables["order"]
    assert [fk.column.table.name for fk in order.foreign_keys] == ["user"]
    assert sorted(reflect(url, schema="public").tables) == ["other"]
    with pytest.raises(ReflectionError, match="Schema 'sales' does not exist.*Sales"):
        reflect(url, schema="sales")


def test_pg_large_table_sampled(postgres_databases):
    url = postgres_databases.new("reflect_big")
    _run(url, """
        CREATE TABLE big (id bigserial PRIMARY KEY, kind text, note text, email text);
        INSERT INTO big (kind, note, email)
        SELECT (ARRAY['a', 'b', 'c'])[1 + mod(i, 3)], md5(i::text), 'u' || i || '@example.com'
        FROM generate_series(1, 250000) i;
    """)
    columns = reflect(url).tables["big"]["columns"]
    assert columns["kind"]["sdtype"] == "categorical"
    assert columns["note"]["generator"] == "text"
    assert columns["email"]["sdtype"] == "email"


def test_pg_read_only_and_engine_kept(postgres_databases):
    url = postgres_databases.new("reflect_ro")
    _run(url, "CREATE TABLE t (id int PRIMARY KEY)")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        begin_read_only(conn)
        with pytest.raises(sa.exc.DBAPIError, match="read-only"):
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    assert sorted(reflect(engine).tables) == ["t"]
    with engine.begin() as conn:  # the caller's engine still works, and still writes
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    engine.dispose()


def test_pg_missing_database_and_table(postgres_databases):
    url = sa.make_url(postgres_databases.new("reflect_missing"))
    with pytest.raises(ReflectionError, match="Cannot connect to.*does not exist"):
        reflect(url.set(database="hma_no_such_database"))
    # The server trusts loopback connections, so a password in the URL is accepted and ignored;
    # it must not appear in the message.
    with pytest.raises(ReflectionError, match="include names table.*'ghost'") as info:
        reflect(url.set(password="pw-Secret-42"), include=["ghost"])
    assert "pw-Secret-42" not in str(info.value) and "***" in str(info.value)
