"""Triggers of existing target tables (issue 14, point 2): loading into a table whose trigger
would fire for every synthetic row (an audit log, a counter, a notification) is refused before
any work unless the user opts in with ``fire_triggers``; with it, the load runs and the triggers
fire. ``hma-db plan`` lists the refusal. Checked on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from hma_db import WriteError
from hma_db.pipeline import clone

TRIGGER = {
    "sqlite": ["CREATE TRIGGER item_audit AFTER INSERT ON item BEGIN "
               "INSERT INTO audit (item_id) VALUES (NEW.id); END"],
    "postgresql": ["CREATE FUNCTION log_item() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN INSERT INTO audit (item_id) VALUES (NEW.id); RETURN NEW; END $$",
                   "CREATE TRIGGER item_audit AFTER INSERT ON item FOR EACH ROW "
                   "EXECUTE FUNCTION log_item()"],
    "mariadb": ["CREATE TRIGGER item_audit AFTER INSERT ON item FOR EACH ROW "
                "INSERT INTO audit (item_id) VALUES (NEW.id)"],
}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("triggers") / "source.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, price REAL NOT NULL)")
        con.executemany("INSERT INTO item VALUES (?, ?)", [(i, i * 1.25) for i in range(1, 31)])
    return f"sqlite:///{path}"


def _target(dialect: str, request, tmp_path) -> str:
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'target.sqlite'}"
    else:
        fixture = "postgres_databases" if dialect == "postgresql" else "mysql_databases"
        url = request.getfixturevalue(fixture).new("triggers")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE item (id INTEGER PRIMARY KEY, price FLOAT NOT NULL)")
        conn.exec_driver_sql("CREATE TABLE audit (item_id INTEGER NOT NULL)")
        for statement in TRIGGER[dialect]:
            conn.exec_driver_sql(statement)
    engine.dispose()
    return url


def _counts(url: str) -> tuple[int, int]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        found = tuple(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar()
                      for t in ("item", "audit"))
    engine.dispose()
    return found


@pytest.mark.parametrize("dialect", [
    "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mysql)])
def test_existing_triggers_are_refused_before_the_work_unless_fired(source, dialect, request,
                                                                     tmp_path):
    target = _target(dialect, request, tmp_path)
    for mode in ("append", "truncate"):
        with pytest.raises(WriteError, match=r"Table 'item' of the target has trigger\(s\) "
                                             r"item_audit that would fire for every loaded row; "
                                             r"pass fire_triggers=True \(--fire-triggers\)"):
            clone(source, target, if_exists=mode, seed=1)
        assert _counts(target) == (0, 0)
    clone(source, target, if_exists="append", seed=1, fire_triggers=True)
    assert _counts(target) == (30, 30)


def test_plan_lists_the_trigger_refusal(source, tmp_path):
    from hma_db.jobs import format_plan, load_job, plan_job

    target = _target("sqlite", None, tmp_path)
    job = tmp_path / "job.toml"
    job.write_text(f'source = "{sa.make_url(source).database}"\ntarget = "{tmp_path}/target.sqlite"\n'
                   'if_exists = "append"\n')
    text = format_plan(plan_job(load_job(job)))
    assert "Table 'item' of the target has trigger(s) item_audit that would fire" in text
    job.write_text(job.read_text() + "fire_triggers = true\n")
    assert "item_audit" not in format_plan(plan_job(load_job(job)))
    assert _counts(target) == (0, 0)
