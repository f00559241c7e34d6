"""Column defaults in cross-dialect clones (issue 14): a literal or the current date and time is
kept in the target's own SQL, so the application's INSERTs that leave those columns out still
work on staging; a default with no equivalent (a function call) is dropped with one warning
line naming the column, and so is a view of the source. Checked from a SQLite source into
PostgreSQL and MariaDB, and from a PostgreSQL source into SQLite and MariaDB.
"""

from __future__ import annotations

import logging
import sqlite3

import pytest
import sqlalchemy as sa

from hma_db.pipeline import clone

SQLITE_SOURCE = """
CREATE TABLE ticket (id INTEGER PRIMARY KEY, title TEXT NOT NULL,
    status VARCHAR(10) NOT NULL DEFAULT 'new', opened TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    due DATE DEFAULT (date('now')), votes INTEGER NOT NULL DEFAULT 0,
    weight REAL NOT NULL DEFAULT -1.5, urgent BOOLEAN NOT NULL DEFAULT 0,
    slug TEXT DEFAULT (lower('X')));
"""
PG_SOURCE = """
CREATE TABLE ticket (id serial PRIMARY KEY, title text NOT NULL,
    status varchar(10) NOT NULL DEFAULT 'new'::character varying,
    opened timestamp NOT NULL DEFAULT now(), due date DEFAULT CURRENT_DATE,
    votes integer NOT NULL DEFAULT 0, weight real NOT NULL DEFAULT '-1.5'::real,
    urgent boolean NOT NULL DEFAULT false, slug text DEFAULT md5('x'));
INSERT INTO ticket (title) SELECT 'ticket ' || i FROM generate_series(1, 20) AS i;
CREATE VIEW open_ticket AS SELECT id, title FROM ticket WHERE status = 'new';
"""


def _sqlite_source(tmp_path) -> str:
    path = tmp_path / "source.sqlite"
    with sqlite3.connect(path) as con:
        con.executescript(SQLITE_SOURCE)
        con.executemany("INSERT INTO ticket (title) VALUES (?)", [(f"t{i}",) for i in range(20)])
    return f"sqlite:///{path}"


def _pg_source(request) -> str:
    url = request.getfixturevalue("postgres_databases").new("defaults_source")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.connection.driver_connection.execute(PG_SOURCE)
    engine.dispose()
    return url


def _target(dialect: str, request, tmp_path) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'target.sqlite'}"
    fixture = "postgres_databases" if dialect == "postgresql" else "mysql_databases"
    return request.getfixturevalue(fixture).new("defaults_target")


@pytest.mark.parametrize(("source", "target"), [
    pytest.param("sqlite", "postgresql", marks=pytest.mark.postgres),
    pytest.param("sqlite", "mariadb", marks=pytest.mark.mysql),
    pytest.param("postgresql", "sqlite", marks=pytest.mark.postgres),
    pytest.param("postgresql", "mariadb", marks=[pytest.mark.postgres, pytest.mark.mysql])])
def test_defaults_that_translate_are_kept(source, target, request, tmp_path, caplog):
    source_url = _sqlite_source(tmp_path) if source == "sqlite" else _pg_source(request)
    target_url = _target(target, request, tmp_path)
    with caplog.at_level(logging.WARNING, logger="hma_db"):
        clone(source_url, target_url, seed=2)
    dropped = [r.getMessage() for r in caplog.records if "has no" in r.getMessage()]
    function = "lower('X')" if source == "sqlite" else "md5('x'::text)"
    assert dropped == [f"column ticket.slug: its default {function} has no "
                       f"{'mysql' if target == 'mariadb' else target} form; the target column has "
                       "no default"]
    if source == "postgresql":  # and what the other dialect cannot hold, named once
        left_out = [r.getMessage() for r in caplog.records if "is not created" in r.getMessage()]
        assert left_out == [f"write: view open_ticket of the postgresql source is not created in "
                            f"the {'mysql' if target == 'mariadb' else target} target (only clones "
                            "into the same kind of database copy views, triggers and routines)"]
    engine = sa.create_engine(target_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO ticket (id, title) VALUES (1000, 'from the app')"))
        row = conn.execute(sa.text("SELECT status, opened, due, votes, weight, urgent, slug "
                                   "FROM ticket WHERE id = 1000")).one()
    engine.dispose()
    status, opened, due, votes, weight, urgent, slug = row
    assert (status, votes, float(weight), bool(urgent), slug) == ("new", 0, -1.5, False, None)
    assert opened is not None and due is not None
