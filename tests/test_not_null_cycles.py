"""Cycles of NOT NULL foreign keys (issue 14): ``store.manager_staff_id -> staff`` with
``staff.store_id -> store``, as in the classic DVD-rental schema, and a three-table cycle. Both
were refused before ("cycle with no nullable foreign key"); now the model draws the key that
closes the cycle from the other table's sampled rows, and the writer proves every key at commit,
so no row has to go first. Each is cloned into SQLite, PostgreSQL and MariaDB, where the target
keeps the NOT NULL foreign keys and every row satisfies them.
"""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from hma_db import HMASynthesizer, WriteError, reflect
from hma_db.pipeline import clone
from hma_db.target import write

SOURCE = """
CREATE TABLE store (store_id INTEGER PRIMARY KEY, manager_staff_id INTEGER NOT NULL
                        REFERENCES staff (staff_id), city TEXT NOT NULL);
CREATE TABLE staff (staff_id INTEGER PRIMARY KEY, store_id INTEGER NOT NULL
                        REFERENCES store (store_id), salary REAL NOT NULL);
CREATE TABLE a (id INTEGER PRIMARY KEY, b_id INTEGER NOT NULL REFERENCES b (id), x REAL NOT NULL);
CREATE TABLE b (id INTEGER PRIMARY KEY, c_id INTEGER NOT NULL REFERENCES c (id), y REAL NOT NULL);
CREATE TABLE c (id INTEGER PRIMARY KEY, a_id INTEGER NOT NULL REFERENCES a (id), z TEXT NOT NULL);
"""
# (table, its NOT NULL foreign key, the parent it references)
KEYS = [("store", "manager_staff_id", "staff"), ("staff", "store_id", "store"),
        ("a", "b_id", "b"), ("b", "c_id", "c"), ("c", "a_id", "a")]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("cycles") / "cycles.sqlite"
    con = sqlite3.connect(path)  # foreign keys are off in a bare sqlite3 connection
    con.executescript(SOURCE)
    con.executemany("INSERT INTO store VALUES (?, ?, ?)",
                    [(i, 1 + (i - 1) * 10, f"city {i % 3}") for i in range(1, 6)])
    con.executemany("INSERT INTO staff VALUES (?, ?, ?)",
                    [(i, 1 + (i - 1) // 10, 1000 + 37.5 * (i % 9)) for i in range(1, 51)])
    con.executemany("INSERT INTO a VALUES (?, ?, ?)", [(i, 1 + i % 30, i * 0.5) for i in range(1, 41)])
    con.executemany("INSERT INTO b VALUES (?, ?, ?)", [(i, 1 + i % 20, i * 1.5) for i in range(1, 31)])
    con.executemany("INSERT INTO c VALUES (?, ?, ?)",
                    [(i, 1 + i % 40, f"z{i % 4}") for i in range(1, 21)])
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def _target(dialect: str, request, tmp_path) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'target.sqlite'}"
    fixture = "postgres_databases" if dialect == "postgresql" else "mysql_databases"
    return request.getfixturevalue(fixture).new("cycles")


def _orphans_and_nulls(url: str) -> dict[str, tuple[int, int]]:
    """Per foreign key: rows whose key matches no parent row, rows whose key is NULL."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    found = {}
    with engine.connect() as conn:
        for table, fk, parent in KEYS:
            orphans = conn.exec_driver_sql(
                f"SELECT COUNT(*) FROM {table} WHERE {fk} NOT IN (SELECT {parent}_id FROM {parent})"
                if parent in ("store", "staff") else
                f"SELECT COUNT(*) FROM {table} WHERE {fk} NOT IN (SELECT id FROM {parent})").scalar()
            nulls = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table} WHERE {fk} IS NULL").scalar()
            found[f"{table}.{fk}"] = (orphans, nulls)
        inspector = sa.inspect(conn)
        declared = {(t, tuple(f["constrained_columns"]), f["referred_table"])
                    for t, _, _ in KEYS for f in inspector.get_foreign_keys(t)}
        not_null = {(t, c["name"]) for t, _, _ in KEYS for c in inspector.get_columns(t)
                    if not c["nullable"]}
    engine.dispose()
    assert declared == {(t, (fk,), p) for t, fk, p in KEYS}
    assert {(t, fk) for t, fk, _ in KEYS} <= not_null
    return found


@pytest.mark.parametrize("dialect", [
    "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mysql)])
def test_not_null_cycles_clone(source, dialect, request, tmp_path):
    metadata = reflect(source)
    cut = sorted(f"{r['child_table_name']}.{r['child_foreign_key']}"
                 for r in metadata.deferred_relationships())
    assert cut == ["a.b_id", "staff.store_id"]  # one per cycle, the first by name
    target = _target(dialect, request, tmp_path)
    result = clone(source, target, seed=3)
    assert result.rows == {"store": 5, "staff": 50, "a": 40, "b": 30, "c": 20}
    assert _orphans_and_nulls(target) == {f"{t}.{fk}": (0, 0) for t, fk, _ in KEYS}


def test_an_orphan_in_a_not_null_cycle_fails_at_commit(source, tmp_path):
    """The cycle-closing key is not set aside and updated later: it goes in with its row, and a
    wrong one is caught when the keys are proven, with nothing left behind."""
    metadata = reflect(source)
    synthesizer = HMASynthesizer(metadata, seed=1).fit_database(source)
    data = synthesizer.sample()
    data["staff"].loc[0, "store_id"] = 10_000
    target = tmp_path / "orphan.sqlite"
    with pytest.raises(WriteError, match="table 'staff' failed at commit: 1 row.s. reference rows "
                                         "missing from store"):
        write(data, metadata, f"sqlite:///{target}")
    with sqlite3.connect(target) as con:
        assert con.execute("SELECT name FROM sqlite_master").fetchall() == []
