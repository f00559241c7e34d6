"""reflect() on SQLite: Chinook, Northwind, edge-case schemas, bad input; the type and CHECK helpers."""

from __future__ import annotations

import importlib.util
import json

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import CHINOOK_SQLITE, NORTHWIND_SQLITE

from hma_db import Metadata, ReflectionError
from hma_db.schema.sqltypes import RawType, allowed_values_from_check, type_options
from hma_db.source.profiling import learn_key_format, text_options
from hma_db.source.reflect import reflect


def _sqlite(tmp_path, ddl: str, name: str = "edge.sqlite") -> str:
    path = tmp_path / name
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        for statement in ddl.split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    engine.dispose()
    return f"sqlite:///{path}"


def _rels(metadata: Metadata) -> set[tuple]:
    def key(k):
        return tuple(k) if isinstance(k, list) else (k,)
    return {(r["child_table_name"], key(r["child_foreign_key"]), r["parent_table_name"],
             key(r["parent_primary_key"])) for r in metadata.relationships}


# ------------------------------------------------------------------------------------ Chinook
@pytest.fixture(scope="module")
def chinook() -> Metadata:
    return reflect(f"sqlite:///{CHINOOK_SQLITE}")


def test_chinook_tables_and_relationships(chinook):
    assert len(chinook.tables) == 11
    assert len(chinook.relationships) == 11
    assert ("Employee", ("ReportsTo",), "Employee", ("EmployeeId",)) in _rels(chinook)
    assert chinook.tables["PlaylistTrack"]["primary_key"] == ["PlaylistId", "TrackId"]
    assert chinook.row_counts["InvoiceLine"] == 2240 and chinook.row_counts["Employee"] == 8
    chinook.validate()


def test_chinook_columns(chinook):
    customer = chinook.tables["Customer"]["columns"]
    assert customer["Email"] == {"sdtype": "email", "pii": True, "nullable": False,
                                 "max_length": 60}
    assert customer["Phone"]["sdtype"] == "phone_number" and customer["Phone"]["pii"]
    assert customer["FirstName"]["sdtype"] == "first_name"
    assert customer["CustomerId"] == {"sdtype": "id", "nullable": False, "autoincrement": True}
    assert customer["SupportRepId"] == {"sdtype": "id", "nullable": True}
    invoice = chinook.tables["Invoice"]["columns"]
    assert invoice["Total"] == {"sdtype": "numerical", "computer_representation": "Float",
                                "precision": 10, "scale": 2, "nullable": False}
    assert invoice["InvoiceDate"] == {"sdtype": "datetime", "nullable": False}
    # 24 countries over 412 invoices repeat: a category, not personal data.
    assert invoice["BillingCountry"]["sdtype"] == "categorical"
    assert chinook.tables["Employee"]["columns"]["BirthDate"]["sdtype"] == "date_of_birth"
    track = chinook.tables["Track"]["columns"]
    assert track["Name"] == {"sdtype": "unknown", "generator": "text", "max_length": 200,
                             "nullable": False}
    assert track["Milliseconds"]["computer_representation"] == "Int64"
    # Key columns are never personal data, whatever their name.
    for table in chinook.tables:
        keys = chinook.primary_key(table) + chinook.foreign_key_columns(table)
        assert {chinook.tables[table]["columns"][c]["sdtype"] for c in keys} <= {"id"}
    for rel in chinook.relationships:
        child = chinook.tables[rel["child_table_name"]]["columns"]
        fk = rel["child_foreign_key"]
        assert all(child[c]["sdtype"] == "id" for c in ([fk] if isinstance(fk, str) else fk))


def test_chinook_json_round_trip(chinook, tmp_path):
    path = tmp_path / "chinook.json"
    chinook.save_to_json(path)
    loaded = Metadata.load_from_json(path)
    loaded.validate()
    assert loaded.to_dict() == chinook.to_dict()
    assert json.loads(path.read_text()) == json.loads(json.dumps(chinook.to_dict()))


def test_chinook_sql_metadata(chinook):
    tables = chinook.sql_metadata.tables
    assert sorted(tables) == sorted(chinook.tables)
    assert all(t.schema is None for t in tables.values())
    track = tables["Track"]
    assert {fk.column.table.name for fk in track.foreign_keys} == {"Album", "Genre", "MediaType"}
    assert isinstance(track.c.Name.type, sa.String) and track.c.Name.type.length == 200
    assert track.c.Name.nullable is False and track.c.Composer.nullable is True
    assert chinook.schema is None


def test_chinook_include_exclude_and_engine_kept():
    engine = sa.create_engine(f"sqlite:///{CHINOOK_SQLITE}")
    metadata = reflect(engine, include=["Customer", "Invoice", "Employee"])
    assert sorted(metadata.tables) == ["Customer", "Employee", "Invoice"]
    assert len(metadata.relationships) == 3
    metadata.validate()
    # The given engine is still usable: reflect did not dispose it.
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM Genre").scalar() == 25
    engine.dispose()
    # Customer references Employee: leaving it out is refused unless asked for.
    with pytest.raises(ReflectionError, match="exclude leaves out Employee, which "
                                              "Customer.SupportRepId references"):
        reflect(sa.make_url(f"sqlite:///{CHINOOK_SQLITE}"), exclude=["Employee"])
    partial = reflect(sa.make_url(f"sqlite:///{CHINOOK_SQLITE}"), exclude=["Employee"],
                      drop_cut_keys=True)
    assert "Employee" not in partial.tables and len(partial.tables) == 10
    # The foreign key to the excluded table is gone from the schema and from the metadata.
    assert not partial.sql_metadata.tables["Customer"].foreign_keys
    assert partial.tables["Customer"]["columns"]["SupportRepId"]["sdtype"] == "numerical"
    partial.validate()


def test_plain_path_is_sqlite():
    assert len(reflect(str(CHINOOK_SQLITE)).tables) == 11


# ---------------------------------------------------------------------------------- Northwind
def test_northwind():
    metadata = reflect(f"sqlite:///{NORTHWIND_SQLITE}")
    metadata.validate()
    assert len(metadata.tables) == 14 and len(metadata.relationships) == 13
    composite = sorted(t for t, d in metadata.tables.items()
                       if isinstance(d.get("primary_key"), list))
    assert composite == ["customer_customer_demo", "employee_territories", "order_details"]
    empty = sorted(t for t, n in metadata.row_counts.items() if n == 0)
    assert empty == ["customer_customer_demo", "customer_demographics"]
    customers = metadata.tables["customers"]["columns"]
    assert customers["customer_id"]["regex_format"] == "[A-Z]{5}"
    assert metadata.tables["territories"]["columns"]["territory_id"]["regex_format"] == r"\d{5}"
    # SMALLINT primary keys are not SQLite rowid aliases.
    assert "autoincrement" not in metadata.tables["orders"]["columns"]["order_id"]
    assert metadata.tables["employees"]["columns"]["photo"]["generator"] == "bytes"
    assert metadata.tables["us_states"]["columns"]["state_abbr"]["sdtype"] == "state_abbr"


# ----------------------------------------------------------------------- edge-case schemas
EDGE_DDL = """
CREATE TABLE parent (a INTEGER NOT NULL, b VARCHAR(3) NOT NULL, label TEXT, PRIMARY KEY (a, b));
CREATE TABLE child (
    id INTEGER PRIMARY KEY, pa INTEGER NOT NULL, pb VARCHAR(3) NOT NULL,
    status VARCHAR(8) NOT NULL CHECK (status IN ('new', 'done', 'it''s')),
    code CHAR(4) UNIQUE, x INTEGER, y INTEGER,
    FOREIGN KEY (pb, pa) REFERENCES parent (b, a));
CREATE UNIQUE INDEX child_xy ON child (x, y);
CREATE TABLE node (id INTEGER PRIMARY KEY AUTOINCREMENT, up INTEGER REFERENCES node (id));
CREATE TABLE ping (id INTEGER PRIMARY KEY, pong_id INTEGER NOT NULL REFERENCES pong (id));
CREATE TABLE pong (id INTEGER PRIMARY KEY, ping_id INTEGER REFERENCES ping (id));
CREATE TABLE person (id INT PRIMARY KEY, name TEXT);
CREATE TABLE message (id INTEGER PRIMARY KEY, sender INTEGER NOT NULL REFERENCES person (id),
                      recipient INTEGER NOT NULL REFERENCES person (id), body TEXT);
CREATE TABLE log (at TIMESTAMP, what TEXT);
CREATE TABLE "order" ("Order Id" INTEGER PRIMARY KEY, "user" TEXT, "Größe" REAL);
CREATE TABLE "Order Details" ("OrderID" INTEGER NOT NULL REFERENCES "order" ("Order Id"),
                              "Line" INTEGER NOT NULL, "select" INTEGER,
                              PRIMARY KEY ("OrderID", "Line"));
CREATE TABLE "user" (id INTEGER PRIMARY KEY, "e-mail" VARCHAR(80), contact TEXT);
CREATE TABLE coded (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE);
CREATE TABLE uses_code (id INTEGER PRIMARY KEY, code TEXT REFERENCES coded (code));
CREATE TABLE wr (id INTEGER PRIMARY KEY, v TEXT) WITHOUT ROWID;
CREATE TABLE priced (id INTEGER PRIMARY KEY, net REAL NOT NULL,
                     gross REAL GENERATED ALWAYS AS (net * 1.2) STORED UNIQUE);
CREATE UNIQUE INDEX parent_ba ON parent (b, a);
CREATE VIEW person_names AS SELECT name FROM person;
INSERT INTO parent VALUES (1, 'abc', 'x');
INSERT INTO person VALUES (1, 'Ann'), (2, 'Bob');
INSERT INTO "user" VALUES (1, 'a@example.com', 'ann@example.com'),
                          (2, 'b@example.org', 'bob@example.net')
"""


@pytest.fixture(scope="module")
def edge(tmp_path_factory) -> Metadata:
    return reflect(_sqlite(tmp_path_factory.mktemp("edge"), EDGE_DDL))


def test_edge_tables_views_and_empty(edge):
    assert sorted(edge.tables) == ["Order Details", "child", "coded", "log", "message", "node",
                                   "order", "parent", "person", "ping", "pong", "priced", "user",
                                   "uses_code", "wr"]
    assert edge.row_counts["log"] == 0 and edge.row_counts["person"] == 2
    assert "primary_key" not in edge.tables["log"]
    edge.validate()


def test_edge_composite_foreign_key_in_primary_key_order(edge):
    assert ("child", ("pa", "pb"), "parent", ("a", "b")) in _rels(edge)
    columns = edge.tables["child"]["columns"]
    assert columns["pa"]["sdtype"] == columns["pb"]["sdtype"] == "id"
    assert edge.tables["parent"]["primary_key"] == ["a", "b"]
    assert "alternate_keys" not in edge.tables["parent"]  # (b, a) is the primary key again


def test_edge_check_unique_and_autoincrement(edge):
    child = edge.tables["child"]
    assert child["columns"]["status"] == {"sdtype": "categorical",
                                          "allowed_values": ["new", "done", "it's"],
                                          "nullable": False, "max_length": 8}
    assert sorted(map(str, child["alternate_keys"])) == ["['x', 'y']", "code"]
    assert child["columns"]["code"]["max_length"] == 4
    assert child["columns"]["id"]["autoincrement"] is True
    assert edge.tables["node"]["columns"]["id"]["autoincrement"] is True
    # INT PRIMARY KEY is not a rowid alias, nor is any key of a WITHOUT ROWID table.
    assert "autoincrement" not in edge.tables["person"]["columns"]["id"]
    assert "autoincrement" not in edge.tables["wr"]["columns"]["id"]


def test_edge_generated_column_left_to_the_database(edge):
    assert list(edge.tables["priced"]["columns"]) == ["id", "net"]
    assert "alternate_keys" not in edge.tables["priced"]
    assert edge.sql_metadata.tables["priced"].c.gross.computed is not None


def test_edge_self_reference_cycle_and_two_parents(edge):
    rels = _rels(edge)
    assert ("node", ("up",), "node", ("id",)) in rels
    assert {("ping", ("pong_id",), "pong", ("id",)), ("pong", ("ping_id",), "ping", ("id",))} <= rels
    assert {("message", ("sender",), "person", ("id",)),
            ("message", ("recipient",), "person", ("id",))} <= rels
    cycles = edge.cycles()
    assert len(cycles) == 1 and sorted(cycles[0][:-1]) == ["ping", "pong"]
    assert [graph_rel["child_table_name"] for graph_rel in edge.deferred_relationships()] == ["pong"]


def test_edge_foreign_key_to_unique_key(edge):
    # Kept in the physical schema and modeled as a relationship to the unique key (issue 13).
    assert [fk.column.name for fk in edge.sql_metadata.tables["uses_code"].foreign_keys] == ["code"]
    assert [r for r in edge.relationships if r["child_table_name"] == "uses_code"] == [
        {"parent_table_name": "coded", "parent_primary_key": "code",
         "child_table_name": "uses_code", "child_foreign_key": "code"}]
    assert edge.tables["coded"]["alternate_keys"] == ["code"]


def test_edge_reserved_quoted_unicode_names(edge):
    assert edge.tables["order"]["primary_key"] == "Order Id"
    assert edge.tables["order"]["columns"]["Größe"]["sdtype"] == "numerical"
    assert edge.tables["Order Details"]["primary_key"] == ["OrderID", "Line"]
    assert ("Order Details", ("OrderID",), "order", ("Order Id",)) in _rels(edge)
    assert edge.tables["Order Details"]["columns"]["select"]["sdtype"] == "numerical"
    user = edge.tables["user"]["columns"]
    assert user["e-mail"]["sdtype"] == "email"
    # The name says nothing; the values are emails.
    assert user["contact"]["sdtype"] == "email" and user["contact"]["pii"] is True
    assert edge.sql_metadata.tables["Order Details"].c["OrderID"].foreign_keys


# ------------------------------------------------------------------------------- bad input
def test_bad_url():
    with pytest.raises(ReflectionError, match="not a valid database URL") as info:
        reflect("not a url ://secret")
    with pytest.raises(ReflectionError, match="Unknown database dialect") as info:
        reflect("nosuchdb://user:hunter2@host/db")
    assert "hunter2" not in str(info.value)
    if importlib.util.find_spec("MySQLdb") is None:  # the driver hma_db does not install
        with pytest.raises(ReflectionError, match="not installed.*mysql\\+pymysql") as info:
            reflect("mysql+mysqldb://app:hunter2@localhost/shop")
        assert "hunter2" not in str(info.value)


def test_missing_sqlite_file_is_not_created(tmp_path):
    path = tmp_path / "missing.sqlite"
    with pytest.raises(ReflectionError, match="does not exist") as info:
        reflect(f"sqlite:///{path}")
    assert str(path) in str(info.value)
    assert not path.exists()
    with pytest.raises(ReflectionError, match="is not a file"):
        reflect(f"sqlite:///{tmp_path}")


def test_refused_connection_hides_password():
    with pytest.raises(ReflectionError, match="Cannot connect to") as info:
        reflect("postgresql+psycopg://app:s3cr3t-pw@127.0.0.1:1/shop")
    message = str(info.value)
    assert "s3cr3t-pw" not in message and "127.0.0.1:1" in message and "***" in message
    assert "\n" not in message


def test_unknown_schema_and_missing_tables():
    url = f"sqlite:///{CHINOOK_SQLITE}"
    with pytest.raises(ReflectionError, match="Schema 'nope' does not exist.*main"):
        reflect(url, schema="nope")
    with pytest.raises(ReflectionError, match="include names table.*'Nope'.*Album, Artist"):
        reflect(url, include=["Customer", "Nope"])
    with pytest.raises(ReflectionError, match="exclude names table.*'customer'"):
        reflect(url, exclude=["customer"])
    with pytest.raises(ReflectionError, match="Expected a database URL"):
        reflect(42)


def test_source_is_not_written(tmp_path):
    url = _sqlite(tmp_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    path = tmp_path / "edge.sqlite"
    before = path.read_bytes()
    metadata = reflect(url)
    assert metadata.row_counts == {"t": 0} and path.read_bytes() == before


def test_empty_database(tmp_path):
    metadata = reflect(_sqlite(tmp_path, "CREATE VIEW v AS SELECT 1 AS one"))
    assert metadata.tables == {} and metadata.relationships == []


# --------------------------------------------------------------------------------- helpers
@pytest.mark.parametrize(("sql", "columns", "expected"), [
    ("st::text = ANY (ARRAY['a'::character varying, 'b'::character varying]::text[])", ["st"],
     {"st": ["a", "b"]}),
    ("(st)::text = ANY ((ARRAY['a'::character varying, 'it''s'::character varying])::text[])",
     ["st"], {"st": ["a", "it's"]}),
    ("\"Order Status\" in ('x','y') AND qty > 0", ["Order Status", "qty"],
     {"Order Status": ["x", "y"]}),
    ("`st` in (_utf8mb4'a',_utf8mb4'b')", ["st"], {"st": ["a", "b"]}),
    ("level = ANY (ARRAY[1, 2, 3])", ["level"], {"level": [1, 2, 3]}),
    ("VALUE::text = ANY (ARRAY['red'::text])", ["VALUE"], {"VALUE": ["red"]}),
    ("STATUS IN (1.5, -2)", ["status"], {"status": [1.5, -2]}),
    ("a IN (1, 2) OR b > 0", ["a", "b"], {}),
    ("a NOT IN (1, 2)", ["a"], {}),
    ("a > 0", ["a"], {}),
    ("other IN (1)", ["a"], {}),
])
def test_allowed_values_from_check(sql, columns, expected):
    assert allowed_values_from_check(sql, columns) == expected


def test_type_options():
    assert type_options(sa.Numeric(12, 0))[0]["computer_representation"] == "Int64"
    assert type_options(sa.Float())[0] == {"sdtype": "numerical", "computer_representation": "Float"}
    assert type_options(sa.Enum("a", "b"))[0] == {"sdtype": "categorical",
                                                  "allowed_values": ["a", "b"]}
    assert type_options(sa.LargeBinary())[0]["generator"] == "bytes"
    assert type_options(sa.Boolean())[0] == {"sdtype": "boolean"}
    assert type_options(sa.Text()) == ({"sdtype": "unknown", "generator": "text"}, "text")
    assert type_options(RawType("xml")) == ({"sdtype": "unknown", "generator": "xml"}, None)
    assert type_options(RawType("citext"))[1] == "text"
    assert type_options(RawType("geometry(Point,4326)"))[0]["generator"] == "point"  # issue 13


def test_learn_key_format():
    assert learn_key_format(pd.Series(["ALFKI", "ANATR", "BONAP"]), 91) == {
        "regex_format": "[A-Z]{5}"}
    assert learn_key_format(pd.Series(["INV-001", "INV-0420"]), 10) == {
        "regex_format": r"[A-Z]{3}\-\d{3,4}"}
    assert learn_key_format(pd.Series(["ab", "A1"]), 10) == {}
    # Too few possible values for the table: no pattern.
    assert learn_key_format(pd.Series(["A", "B"]), 100) == {}
    assert learn_key_format(pd.Series(["0b7c3f1e-5d2a-4c8e-9f10-2a3b4c5d6e7f"]), 5) == {
        "generator": "uuid"}


def test_text_options():
    base = {"sdtype": "unknown", "generator": "text", "max_length": 20, "nullable": True}
    values = pd.Series(["x"] * 10)
    assert text_options("email", base, values, 10, 10)["sdtype"] == "email"
    assert text_options("kind", base, values, 2, 100) == {"sdtype": "categorical",
                                                          "max_length": 20, "nullable": True}
    assert text_options("country", base, values, 2, 100)["sdtype"] == "categorical"
    # a country repeated 1.5 times on average is a closed vocabulary; one that does not repeat
    # is personal data
    assert text_options("country", base, values, 20, 30)["sdtype"] == "categorical"
    assert text_options("country", base, values, 25, 30)["sdtype"] == "country"
    assert text_options("note", base, values, 30, 30) == base
    # Repeated emails are still personal data, not categories.
    emails = pd.Series(["ann@example.com", "bob@example.com"] * 50)
    assert text_options("assignee", base, emails, 2, 100)["sdtype"] == "email"
