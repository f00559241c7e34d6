"""reflect() on MariaDB/MySQL: enums, CHECK lists, JSON, unique indexes, AUTO_INCREMENT, keys."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hma_db import Metadata, ReflectionError
from hma_db.source import begin_read_only
from hma_db.source.reflect import reflect

pytestmark = pytest.mark.mysql

MYSQL_DDL = [
    "CREATE TABLE parent (a INT NOT NULL, b VARCHAR(3) NOT NULL, PRIMARY KEY (a, b))",
    """CREATE TABLE `order` (
        id INT AUTO_INCREMENT PRIMARY KEY,
        pa INT NOT NULL, pb VARCHAR(3) NOT NULL,
        st ENUM('new', 'done') NOT NULL,
        code CHAR(4),
        flag BOOLEAN,
        doc JSON,
        amount DECIMAL(8, 2),
        raw BLOB,
        `status` VARCHAR(10) CHECK (`status` IN ('a', 'b')),
        `Größe` DOUBLE,
        UNIQUE INDEX code_ux (code),
        FOREIGN KEY (pa, pb) REFERENCES parent (a, b))""",
    """CREATE TABLE `user` (id INT PRIMARY KEY, boss INT, email VARCHAR(80),
        CONSTRAINT fk_boss FOREIGN KEY (boss) REFERENCES `user` (id))""",
    """CREATE TABLE transfer (id INT PRIMARY KEY,
        sender INT NOT NULL REFERENCES `user` (id),
        recipient INT NOT NULL REFERENCES `user` (id),
        FOREIGN KEY (sender) REFERENCES `user` (id),
        FOREIGN KEY (recipient) REFERENCES `user` (id))""",
    "CREATE TABLE log (at DATETIME, what TEXT)",
    "CREATE VIEW v AS SELECT id FROM `user`",
    "INSERT INTO parent VALUES (1, 'abc')",
    "INSERT INTO `user` VALUES (1, NULL, 'ann@example.com'), (2, 1, 'bob@example.com')",
]


@pytest.fixture(scope="module")
def mysql_edge(mysql_databases) -> tuple[str, Metadata]:
    url = mysql_databases.new("reflect_mysql")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for statement in MYSQL_DDL:
            conn.exec_driver_sql(statement)
    engine.dispose()
    return url, reflect(url)


def test_mysql_tables(mysql_edge):
    _, metadata = mysql_edge
    assert sorted(metadata.tables) == ["log", "order", "parent", "transfer", "user"]
    assert metadata.row_counts == {"log": 0, "order": 0, "parent": 1, "transfer": 0, "user": 2}
    assert "primary_key" not in metadata.tables["log"]
    metadata.validate()


def test_mysql_columns(mysql_edge):
    _, metadata = mysql_edge
    order = metadata.tables["order"]
    columns = order["columns"]
    assert columns["id"] == {"sdtype": "id", "nullable": False, "autoincrement": True}
    assert columns["st"] == {"sdtype": "categorical", "allowed_values": ["new", "done"],
                             "nullable": False}
    assert columns["status"]["allowed_values"] == ["a", "b"]
    assert columns["flag"]["sdtype"] == "boolean"
    assert columns["doc"]["generator"] == "json"
    assert (columns["amount"]["precision"], columns["amount"]["scale"]) == (8, 2)
    assert columns["raw"]["generator"] == "bytes"
    assert columns["Größe"]["sdtype"] == "numerical"
    assert order["alternate_keys"] == ["code"]
    assert metadata.tables["user"]["columns"]["email"]["sdtype"] == "email"


def test_mysql_keys(mysql_edge):
    _, metadata = mysql_edge
    rels = sorted((r["child_table_name"], str(r["child_foreign_key"]), r["parent_table_name"])
                  for r in metadata.relationships)
    assert rels == [("order", "['pa', 'pb']", "parent"), ("transfer", "recipient", "user"),
                    ("transfer", "sender", "user"), ("user", "boss", "user")]
    rel = next(r for r in metadata.relationships if r["child_table_name"] == "order")
    assert rel["parent_primary_key"] == ["a", "b"]
    assert metadata.tables["order"]["columns"]["pb"] == {"sdtype": "id", "nullable": False,
                                                         "max_length": 3}


def test_mysql_missing_table(mysql_edge):
    url, _ = mysql_edge
    with pytest.raises(ReflectionError, match="include names table.*'Order'"):
        reflect(url, include=["Order"])


def test_mysql_read_only(mysql_edge):
    url, _ = mysql_edge
    engine = sa.create_engine(url, pool_size=1, max_overflow=0)  # one connection, reused
    with engine.connect() as conn:
        begin_read_only(conn)
        with pytest.raises(sa.exc.DBAPIError, match="READ ONLY"):
            conn.exec_driver_sql("INSERT INTO parent VALUES (2, 'xyz')")
    assert reflect(engine).row_counts["parent"] == 1
    with engine.connect() as conn:  # read-only was for those transactions, not the session
        conn.exec_driver_sql("INSERT INTO parent VALUES (2, 'xyz')")
        conn.rollback()
    engine.dispose()


def test_mysql_schema_option(mysql_edge):
    url, direct = mysql_edge
    database = sa.make_url(url).database
    other = sa.make_url(url).set(database="mysql")
    metadata = reflect(other, schema=database)
    assert metadata.schema == database
    assert metadata.to_dict() == direct.to_dict()
    assert all(t.schema is None for t in metadata.sql_metadata.tables.values())
    with pytest.raises(ReflectionError, match="Schema 'hma_no_such_db' does not exist"):
        reflect(url, schema="hma_no_such_db")
