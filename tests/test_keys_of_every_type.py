"""Keys of every type (issue 13, points 1 and 4): dates, timestamps, times, uuids, decimals and
listed values in composite primary keys, UNIQUE constraints and partial unique indexes; the
bounds of PostgreSQL partitions; foreign keys to a UNIQUE non-key column; foreign keys into a
schema (read too). Each shape is cloned end to end into SQLite, PostgreSQL and MariaDB
with every constraint enforced by the target.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from hma_db import Metadata, ReflectionError, reflect
from hma_db.pipeline import clone
from hma_db.transform import TableTransformer

# ------------------------------------------------------------------------------ sources
PG_SOURCE = """
CREATE TABLE customer (customer_id serial PRIMARY KEY, code varchar(12) NOT NULL UNIQUE,
                       badge varchar(3) NOT NULL, active boolean NOT NULL);
CREATE UNIQUE INDEX customer_badge_active ON customer (badge) WHERE active;
CREATE TABLE inventory (inventory_id int PRIMARY KEY, film text NOT NULL);
CREATE TABLE rental (rental_id serial PRIMARY KEY, rental_date timestamp NOT NULL,
                     inventory_id int NOT NULL REFERENCES inventory,
                     customer_id int NOT NULL REFERENCES customer,
                     UNIQUE (rental_date, inventory_id, customer_id));
CREATE TABLE payment (payment_id serial, payment_date timestamptz NOT NULL,
                      customer_code varchar(12) NOT NULL REFERENCES customer (code),
                      amount numeric(5,2) NOT NULL,
                      PRIMARY KEY (payment_date, payment_id)) PARTITION BY RANGE (payment_date);
CREATE TABLE payment_2022_01 PARTITION OF payment
    FOR VALUES FROM ('2022-01-01 00:00:00+00') TO ('2022-02-01 00:00:00+00');
CREATE TABLE payment_2022_02 PARTITION OF payment
    FOR VALUES FROM ('2022-02-01 00:00:00+00') TO ('2022-03-01 00:00:00+00');
CREATE TABLE payment_2022_04 PARTITION OF payment
    FOR VALUES FROM ('2022-04-01 00:00:00+00') TO ('2022-05-01 00:00:00+00');
CREATE TABLE event (day date, slot time, region text, note text,
                    PRIMARY KEY (day, slot, region)) PARTITION BY LIST (region);
CREATE TABLE event_eu PARTITION OF event FOR VALUES IN ('eu', 'uk');
CREATE TABLE event_us PARTITION OF event FOR VALUES IN ('us');
CREATE TABLE ledger (entry uuid PRIMARY KEY, amount numeric(10,2) NOT NULL);
CREATE TABLE reading (taken timestamptz NOT NULL, level float) PARTITION BY RANGE (taken);
CREATE TABLE reading_jan PARTITION OF reading FOR VALUES FROM ('2021-01-01') TO ('2021-02-01');
CREATE TABLE reading_mar PARTITION OF reading FOR VALUES FROM ('2021-03-01') TO ('2021-04-01');
CREATE TABLE account (id int PRIMARY KEY, opened date) PARTITION BY RANGE (id);
CREATE TABLE account_a PARTITION OF account FOR VALUES FROM (100000) TO (100500);
CREATE TABLE account_b PARTITION OF account FOR VALUES FROM (300000) TO (301000);
CREATE TABLE price (sku numeric(8,0), valid_from date, price numeric(8,2),
                    PRIMARY KEY (sku, valid_from));
INSERT INTO customer (code, badge, active)
    SELECT 'C-' || lpad(i::text, 5, '0'),
           CASE WHEN i % 5 = 0 THEN 'A' || (i / 5) ELSE 'B' || (i % 8) END, i % 5 = 0
    FROM generate_series(1, 200) i;
INSERT INTO inventory SELECT i, 'film ' || (i % 7) FROM generate_series(0, 49) i;
INSERT INTO rental (rental_date, inventory_id, customer_id)
    SELECT timestamp '2005-05-24 22:00:00' + i * interval '37 minutes 13 seconds', i % 50,
           1 + i % 200 FROM generate_series(1, 1000) i;
INSERT INTO payment (payment_date, customer_code, amount)
    SELECT timestamptz '2022-01-01 00:00:00+00'
               + ((i * 7919) % 3300) * interval '17 minutes 3.330639 seconds',
           'C-' || lpad((1 + i % 200)::text, 5, '0'), (i % 900) / 100.0
    FROM generate_series(1, 1000) i;
INSERT INTO payment (payment_date, customer_code, amount)
    SELECT timestamptz '2022-04-01 00:00:00+00' + i * interval '3 hours', 'C-00001', 1
    FROM generate_series(1, 200) i;
INSERT INTO event SELECT date '2023-01-01' + (i % 40), time '08:00' + (i % 17) * interval '15 minutes',
                         (ARRAY['eu', 'uk', 'us'])[1 + i % 3], 'n'
    FROM generate_series(1, 600) i ON CONFLICT DO NOTHING;
INSERT INTO ledger SELECT gen_random_uuid(), i FROM generate_series(1, 300) i;
INSERT INTO reading SELECT timestamptz '2021-01-01 00:00:00+00' + (i % 2) * interval '59 days'
                           + (i % 97) * interval '7 hours', i % 13 FROM generate_series(1, 600) i;
INSERT INTO account SELECT 100000 + i + (i % 2) * 200000, date '2020-01-01' + i
    FROM generate_series(0, 399) i;
INSERT INTO price SELECT 1000 + i % 30, date '2020-01-06' + (i / 30) * 7, i
    FROM generate_series(1, 600) i;
"""

SQLITE_SOURCE = """
CREATE TABLE customer (customer_id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE,
                       badge TEXT NOT NULL, active INTEGER NOT NULL);
CREATE UNIQUE INDEX customer_badge_active ON customer (badge) WHERE active;
CREATE TABLE inventory (inventory_id INTEGER PRIMARY KEY, film TEXT NOT NULL);
CREATE TABLE rental (rental_id INTEGER PRIMARY KEY, rental_date DATETIME NOT NULL,
                     inventory_id INTEGER NOT NULL REFERENCES inventory (inventory_id),
                     customer_id INTEGER NOT NULL REFERENCES customer (customer_id),
                     UNIQUE (rental_date, inventory_id, customer_id));
CREATE TABLE payment (payment_id INTEGER NOT NULL, payment_date TEXT NOT NULL,
                      customer_code TEXT NOT NULL REFERENCES customer (code), amount REAL,
                      PRIMARY KEY (payment_date, payment_id));
CREATE TABLE slot (day DATE NOT NULL, at TIME NOT NULL, room TEXT NOT NULL,
                   PRIMARY KEY (day, at, room));
CREATE TABLE ledger (entry TEXT PRIMARY KEY, amount NUMERIC NOT NULL);
"""

TARGETS = ["sqlite", "postgresql", "mariadb"]


def _sqlite_source(path: Path) -> str:
    """A SQLite database holding every key shape of SQLITE_SOURCE (timestamps as text)."""
    rng = np.random.default_rng(0)
    con = sqlite3.connect(path)
    con.executescript(SQLITE_SOURCE)
    customers = [(i, f"C-{i:05d}", f"A{i // 5}" if i % 5 == 0 else f"B{i % 8}", int(i % 5 == 0))
                 for i in range(1, 201)]
    con.executemany("INSERT INTO customer VALUES (?, ?, ?, ?)", customers)
    con.executemany("INSERT INTO inventory VALUES (?, ?)", [(i, f"film {i % 7}") for i in range(50)])
    start = pd.Timestamp("2005-05-24 22:00:00")
    rentals = [(i, str(start + pd.Timedelta(seconds=2233 * i)), i % 50, 1 + i % 200)
               for i in range(1, 1001)]
    con.executemany("INSERT INTO rental VALUES (?, ?, ?, ?)", rentals)
    stamps = pd.Timestamp("2022-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 40 * 86_400_000_000, 800), unit="us")
    payments = [(i, stamps[i].isoformat(sep=" "), f"C-{1 + i % 200:05d}", 1.5)
                for i in range(800)]
    con.executemany("INSERT INTO payment VALUES (?, ?, ?, ?)", payments)
    slots = {(f"2023-01-{1 + i % 28:02d}", f"{8 + i % 9:02d}:{15 * (i % 4):02d}:00",
              "AB"[i % 2]) for i in range(500)}
    con.executemany("INSERT INTO slot VALUES (?, ?, ?)", sorted(slots))
    con.executemany("INSERT INTO ledger VALUES (?, ?)",
                    [(str(pd.util.hash_pandas_object(pd.Series([i])).iloc[0]), i)
                     for i in range(300)])
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def _postgres_source(postgres_databases) -> str:
    url = postgres_databases.new("keys_pg")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.connection.driver_connection.execute(PG_SOURCE)
    engine.dispose()
    return url


def _target(kind: str, tmp_path: Path, request) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'target.sqlite'}"
    fixture = "postgres_databases" if kind == "postgresql" else "mysql_databases"
    return request.getfixturevalue(fixture).new("keys_target")


def _frames(url: str) -> dict[str, pd.DataFrame]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        names = sa.inspect(conn).get_table_names()
        frames = {n: pd.read_sql_table(n, conn) for n in names if not n.startswith("hma_")}
    engine.dispose()
    return frames


def _check_keys(frames: dict[str, pd.DataFrame]) -> None:
    """Every key of every type is unique, of its type, and references a parent row."""
    payment, customer = frames["payment"], frames["customer"]
    assert payment["customer_code"].isin(customer["code"]).all()
    assert not payment.duplicated(["payment_date", "payment_id"]).any()
    assert not customer["badge"][customer["active"].astype(bool)].duplicated().any()
    stamps = pd.to_datetime(frames["rental"]["rental_date"], format="mixed")
    assert stamps.notna().all()
    assert not frames["rental"].duplicated(["rental_date", "inventory_id", "customer_id"]).any()


# --------------------------------------------------------------------- PostgreSQL source
@pytest.mark.parametrize("kind", TARGETS)
def test_partitioned_postgres_keys_clone_into_every_target(postgres_databases, tmp_path,
                                                           request, kind):
    """A timestamptz in a partitioned table's primary key stays a timestamp within the
    partitions' bounds (no row in March, which has no partition); a timestamp in a composite
    UNIQUE, a list partition's value, a date with a time in a key, uuid and numeric keys;
    a partial unique index and a foreign key to a UNIQUE column are kept at the load."""
    source = _postgres_source(postgres_databases)
    target = _target(kind, tmp_path, request)
    result = clone(source, target, seed=5)
    assert result.rows["payment"] == 1200
    frames = _frames(target)
    _check_keys(frames)
    paid = pd.to_datetime(frames["payment"]["payment_date"], utc=True, format="mixed")
    months = set(paid.dt.month)
    assert months <= {1, 2, 4} and paid.dt.year.eq(2022).all()
    assert set(frames["event"]["region"]) == {"eu", "uk", "us"}
    days = pd.to_datetime(frames["event"]["day"])
    assert days.min() >= pd.Timestamp("2023-01-01") and days.max() <= pd.Timestamp("2023-02-10")
    weekdays = pd.to_datetime(frames["price"]["valid_from"]).dt.weekday
    assert weekdays.eq(0).all()  # weekly dates stay on their weekday
    assert frames["ledger"]["entry"].astype(str).str.len().eq(36).all()
    taken = pd.to_datetime(frames["reading"]["taken"], utc=True, format="mixed")
    assert set(taken.dt.month) == {1, 3}  # a modeled partition column: none in February


def test_partition_bounds_are_reflected(postgres_databases):
    metadata = reflect(_postgres_source(postgres_databases))
    bounds = metadata.tables["payment"]["columns"]["payment_date"]["partition_bounds"]
    assert len(bounds["ranges"]) == 3
    assert bounds["ranges"][2][0].startswith("2022-04-01")
    assert metadata.tables["event"]["columns"]["region"]["partition_bounds"] == {
        "values": ["eu", "uk", "us"]}
    assert {"parent_table_name": "customer", "parent_primary_key": "code",
            "child_table_name": "payment", "child_foreign_key": "customer_code"} in \
        metadata.relationships
    assert metadata.tables["customer"]["columns"]["badge"]["partial_unique"] == [["badge"]]


# ------------------------------------------------------------------------- SQLite source
@pytest.mark.parametrize("kind", TARGETS)
def test_sqlite_keys_clone_into_every_target(tmp_path, request, kind):
    """SQLite: timestamps stored as text in a composite primary key and a composite UNIQUE,
    a date and a time in one key, a partial unique index, a foreign key to a UNIQUE column."""
    source = _sqlite_source(tmp_path / "source.sqlite")
    target = _target(kind, tmp_path, request)
    clone(source, target, seed=2)
    frames = _frames(target)
    _check_keys(frames)
    slot = frames["slot"]
    assert not slot.duplicated().any()
    assert pd.to_datetime(slot["day"].astype(str)).between("2023-01-01", "2023-12-31").all()


def test_temporal_keys_unique_in_chunks(tmp_path):
    """A datetime, the one generated column of a composite UNIQUE (the others are foreign
    keys), stays unique across chunks of one run."""
    source = _sqlite_source(tmp_path / "source.sqlite")
    target = f"sqlite:///{tmp_path / 'target.sqlite'}"
    clone(source, target, seed=9, scale=3, chunk_rows=700)
    rental = _frames(target)["rental"]
    assert len(rental) == 3000
    assert not rental["rental_date"].duplicated().any()


def test_timestamp_key_values_keep_the_distribution():
    """A timestamp carrying the row's position keeps the source's distribution."""
    stamps = pd.Series(pd.Timestamp("2020-01-01") + pd.to_timedelta(
        np.random.default_rng(1).gamma(2.0, 3600.0, 2000).round(), unit="s"))
    data = pd.DataFrame({"at": stamps.drop_duplicates().reset_index(drop=True)})
    metadata = Metadata.from_dict({"tables": {"t": {"columns": {"at": {"sdtype": "id"}},
                                                    "primary_key": "at"}}})
    tt = TableTransformer("t", metadata)
    tt.fit(data)
    keys = tt.generate_keys(len(data), np.random.default_rng(0))["at"]
    assert keys.is_unique and keys.dtype == data["at"].dtype
    seen, made = data["at"].astype("int64"), keys.astype("int64")
    assert abs(np.median(made) - np.median(seen)) < 0.05 * (seen.max() - seen.min())


# ------------------------------------------------------------------------ other schemas
def test_cross_schema_foreign_key_is_modeled(postgres_databases, tmp_path):
    """``a.orders.customer_id -> b.customers``: b.customers is read too, and the clone keeps the
    foreign key (before: the key was dropped with a warning and generated as a plain column)."""
    url = postgres_databases.new("keys_schemas")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE SCHEMA a; CREATE SCHEMA b; "
            "CREATE TABLE b.customers (id int PRIMARY KEY, region text NOT NULL); "
            "INSERT INTO b.customers SELECT i, 'r' || (i %% 3) FROM generate_series(1, 20) i; "
            "CREATE TABLE a.orders (id int PRIMARY KEY, "
            "customer_id int NOT NULL REFERENCES b.customers (id), total numeric(8, 2)); "
            "INSERT INTO a.orders SELECT i, 1 + i %% 20, i * 1.5 FROM generate_series(1, 60) i")
    engine.dispose()
    metadata = reflect(url, schema="a")
    assert metadata.table_schemas == {"customers": "b"}
    assert {(r["parent_table_name"], r["child_table_name"]) for r in metadata.relationships} == {
        ("customers", "orders")}
    target = f"sqlite:///{tmp_path / 'schemas.sqlite'}"
    clone(url, target, schema="a", seed=1)
    with sqlite3.connect(tmp_path / "schemas.sqlite") as con:
        assert con.execute("SELECT COUNT(*) FROM customers").fetchone() == (20,)
        assert con.execute("SELECT COUNT(*) FROM orders WHERE customer_id NOT IN "
                           "(SELECT id FROM customers)").fetchone() == (0,)
        assert con.execute("PRAGMA foreign_key_list(orders)").fetchall()[0][2] == "customers"


def test_cross_schema_name_clash_is_refused(postgres_databases):
    url = postgres_databases.new("keys_schema_clash")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA a; CREATE SCHEMA b; "
                             "CREATE TABLE b.customers (id int PRIMARY KEY); "
                             "CREATE TABLE a.customers (id int PRIMARY KEY); "
                             "CREATE TABLE a.orders (id int PRIMARY KEY, "
                             "customer_id int REFERENCES b.customers (id))")
    engine.dispose()
    with pytest.raises(ReflectionError, match=r"orders.*b\.customers.*exclude a\.customers"):
        reflect(url, schema="a")


# ------------------------------------------------------------- one shape per test (SQLite)
def _one_shape(path: Path, script: str, rows: list[tuple[str, list[tuple]]]) -> str:
    con = sqlite3.connect(path)
    con.executescript(script)
    for sql, values in rows:
        con.executemany(sql, values)
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def test_partial_unique_index_is_sampled_unique(tmp_path):
    """``CREATE UNIQUE INDEX ... (code) WHERE active``: active rows never share a code in the
    target (before: the code was modeled as a category and the load hit a duplicate key)."""
    source = _one_shape(tmp_path / "s.sqlite", """
        CREATE TABLE badge (id INTEGER PRIMARY KEY, code TEXT NOT NULL, active INTEGER NOT NULL);
        CREATE UNIQUE INDEX badge_code_active ON badge (code) WHERE active;""",
        [("INSERT INTO badge VALUES (?, ?, ?)",
          [(i, f"A{i // 5}" if i % 5 == 0 else f"B{i % 8}", int(i % 5 == 0))
           for i in range(1, 301)])])
    target = f"sqlite:///{tmp_path / 't.sqlite'}"
    clone(source, target, seed=1, scale=2)
    badge = _frames(target)["badge"]
    assert len(badge) == 600 and badge["code"].is_unique
    assert reflect(source).tables["badge"]["columns"]["code"]["partial_unique"] == [["code"]]


def test_foreign_key_to_unique_column_is_modeled(tmp_path, caplog):
    """A foreign key to a UNIQUE non-key column is a relationship: the children reference the
    sampled parents' values (before: "not modeled", and the load failed after the fit)."""
    source = _one_shape(tmp_path / "s.sqlite", """
        CREATE TABLE coded (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, size REAL);
        CREATE TABLE uses_code (id INTEGER PRIMARY KEY,
                                code TEXT REFERENCES coded (code), qty INTEGER);""",
        [("INSERT INTO coded VALUES (?, ?, ?)", [(i, f"K{i:04d}", i / 3) for i in range(80)]),
         ("INSERT INTO uses_code VALUES (?, ?, ?)",
          [(i, None if i % 9 == 0 else f"K{(i * 7) % 80:04d}", i % 4) for i in range(400)])])
    target = f"sqlite:///{tmp_path / 't.sqlite'}"
    with caplog.at_level(logging.WARNING, logger="hma_db"):
        clone(source, target, seed=4)
    assert not [r for r in caplog.records if "not modeled" in r.getMessage()]
    frames = _frames(target)
    codes = frames["uses_code"]["code"]
    assert codes.dropna().isin(frames["coded"]["code"]).all()
    assert 0.05 < codes.isna().mean() < 0.2  # the NULL share is kept
    assert frames["coded"]["code"].is_unique


def test_rows_land_in_the_partitions_of_a_partitioned_target(postgres_databases):
    """Into a target made with the source's partitions (and no default partition), every
    row finds its partition: PostgreSQL refuses a row outside every partition's bounds."""
    source = _postgres_source(postgres_databases)
    target = postgres_databases.new("keys_partitioned")
    ddl = ";".join(s for s in PG_SOURCE.split(";") if not s.strip().upper().startswith("INSERT"))
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.connection.driver_connection.execute(ddl)
    clone(source, target, seed=6, scale=1.5, if_exists="truncate")
    with engine.connect() as conn:
        parts = dict(conn.exec_driver_sql(
            "SELECT tableoid::regclass::text, count(*) FROM payment GROUP BY 1").all())
        regions = dict(conn.exec_driver_sql(
            "SELECT tableoid::regclass::text, count(*) FROM event GROUP BY 1").all())
    engine.dispose()
    assert sum(parts.values()) == 1800 and set(parts) <= {
        "payment_2022_01", "payment_2022_02", "payment_2022_04"}
    assert set(regions) == {"event_eu", "event_us"}
    with engine.connect() as conn:
        readings = dict(conn.exec_driver_sql(
            "SELECT tableoid::regclass::text, count(*) FROM reading GROUP BY 1").all())
        accounts = conn.exec_driver_sql("SELECT count(*) FROM account").scalar()
    engine.dispose()
    assert set(readings) == {"reading_jan", "reading_mar"} and sum(readings.values()) == 900
    assert accounts == 600  # integer keys counted through the partitions (100000.., 300000..)


MARIADB_SOURCE = [
    "CREATE TABLE customer (customer_id INT PRIMARY KEY, name VARCHAR(20) NOT NULL)",
    "CREATE TABLE inventory (inventory_id INT PRIMARY KEY, film VARCHAR(20) NOT NULL)",
    "CREATE TABLE rental (rental_id INT AUTO_INCREMENT PRIMARY KEY, rental_date DATETIME NOT NULL,"
    " inventory_id INT NOT NULL, customer_id INT NOT NULL, return_date DATETIME,"
    " UNIQUE KEY rental_date (rental_date, inventory_id, customer_id),"
    " FOREIGN KEY (inventory_id) REFERENCES inventory (inventory_id),"
    " FOREIGN KEY (customer_id) REFERENCES customer (customer_id))",
    "CREATE TABLE visit (day DATE NOT NULL, at TIME(3) NOT NULL, ref DECIMAL(6,0) NOT NULL,"
    " PRIMARY KEY (day, at, ref))",
]


@pytest.mark.parametrize("kind", TARGETS)
def test_mariadb_datetime_in_composite_unique(mysql_databases, tmp_path, request, kind):
    """MariaDB: a DATETIME in a composite UNIQUE whose other columns are foreign keys (it
    alone makes the rows unique), and a DATE, a TIME(3) and a DECIMAL in one primary key."""
    source = mysql_databases.new("keys_maria")
    engine = sa.create_engine(source, poolclass=sa.pool.NullPool)
    start = pd.Timestamp("2005-05-24 22:53:30")
    with engine.begin() as conn:
        for statement in MARIADB_SOURCE:
            conn.exec_driver_sql(statement)
        conn.execute(sa.text("INSERT INTO customer VALUES (:i, :n)"),
                     [{"i": i, "n": f"c{i}"} for i in range(1, 60)])
        conn.execute(sa.text("INSERT INTO inventory VALUES (:i, :f)"),
                     [{"i": i, "f": f"f{i % 9}"} for i in range(1, 80)])
        conn.execute(sa.text("INSERT INTO rental (rental_date, inventory_id, customer_id, "
                             "return_date) VALUES (:d, :inv, :c, :r)"),
                     [{"d": start + pd.Timedelta(seconds=1931 * i), "inv": 1 + i % 79,
                       "c": 1 + i % 59, "r": None} for i in range(900)])
        conn.execute(sa.text("INSERT INTO visit VALUES (:d, :t, :r)"),
                     [{"d": f"2024-02-{1 + i % 29:02d}", "t": f"{9 + i % 8}:{i % 60:02d}:00.250",
                       "r": 1000 + i} for i in range(300)])
    engine.dispose()
    target = _target(kind, tmp_path, request)
    clone(source, target, seed=3, scale=1.5)
    frames = _frames(target)
    rental = frames["rental"]
    assert len(rental) == 1350 and rental["rental_date"].is_unique
    stamps = pd.to_datetime(rental["rental_date"], format="mixed")
    assert stamps.between("2005-05-01", "2005-12-31").all()
    visit = frames["visit"]
    assert not visit.duplicated(["day", "at", "ref"]).any()
    assert pd.to_datetime(visit["day"].astype(str)).dt.month.eq(2).all()
