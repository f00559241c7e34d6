"""A clone killed in the middle of its write leaves nothing behind.

``hma-db clone`` runs as a subprocess that stops at a pause point (``HMA_DB_TEST_PAUSE``: after
the DDL, after the first table's rows, just before the COMMIT) and is killed there with SIGKILL
or SIGTERM. After ``hma-db clean`` the target must be exactly as it was before the killed run:
the same tables, types, routines and schemas, the same rows, no run marker, no temporary file.
After one more clone instead of the clean, that clone must succeed (it removes the leftovers
first). The clones of one database run side by side, so all 18 kills cost a few clones' time.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conftest import ROOT

from hma_db import Metadata, WriteError
from hma_db.cli.main import cli
from hma_db.target import write
from hma_db.target.session import PAUSE_STAGES

CASES = [(sig, stage) for sig in (signal.SIGKILL, signal.SIGTERM) for stage in PAUSE_STAGES]
# A new file or database: each point once, the signals taken in turn (they act alike there).
FEWER = [CASES[0], CASES[4], CASES[2]]
PAUSE_TIMEOUT = 120  # seconds for every clone of a batch to reach its pause point (2 cores)
KEEP = "CREATE TABLE keep (id INTEGER PRIMARY KEY, note VARCHAR(20))"
KEEP_ROWS = "INSERT INTO keep VALUES (1, 'one'), (2, 'two')"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """Three small tables, two foreign keys: enough for a load with more than one table."""
    path = tmp_path_factory.mktemp("kill") / "source.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript("""
            CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL, amount REAL);
            CREATE TABLE child (id INTEGER PRIMARY KEY,
                                parent_id INTEGER NOT NULL REFERENCES parent(id),
                                qty INTEGER, note TEXT);
            CREATE TABLE tag (id INTEGER PRIMARY KEY, child_id INTEGER REFERENCES child(id),
                              label TEXT);
        """)
        conn.executemany("INSERT INTO parent VALUES (?, ?, ?)",
                         [(i, f"p{i % 5}", i * 1.5) for i in range(1, 31)])
        conn.executemany("INSERT INTO child VALUES (?, ?, ?, ?)",
                         [(i, i % 30 + 1, i % 7, f"n{i % 3}") for i in range(1, 91)])
        conn.executemany("INSERT INTO tag VALUES (?, ?, ?)",
                         [(i, i % 90 + 1, f"t{i % 4}") for i in range(1, 61)])
        conn.commit()
    return path


def _clone(source: Path, target: str, log: Path, stage: str | None = None,
           *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HMA_DB_TEST_PAUSE_FILE": f"{log}.pause"}
    env.pop("HMA_DB_TEST_PAUSE", None)
    if stage is not None:
        env["HMA_DB_TEST_PAUSE"] = stage
    with open(log, "w", encoding="utf-8") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "from hma_db.cli.main import main; main()", "clone",
             str(source), target, "--seed", "1", "-q", *extra],
            env=env, stdout=out, stderr=subprocess.STDOUT)


def _kill_at_pauses(source: Path, targets: list[str], tmp_path: Path, *extra: str,
                    schemas: list[str] | None = None, cases=CASES) -> None:
    """One clone per target and case (signal, pause point), side by side (into ``schemas[i]``
    when given); each killed with its signal once it reports its pause point."""
    started = []
    for i, (target, (sig, stage)) in enumerate(zip(targets, cases, strict=True)):
        log = tmp_path / f"clone-{i}.log"
        into = ("--target-schema", schemas[i]) if schemas else ()
        started.append((_clone(source, target, log, stage, *extra, *into), log, sig, stage))
    deadline = time.monotonic() + PAUSE_TIMEOUT
    for proc, log, sig, stage in started:
        pause = Path(f"{log}.pause")
        while not (pause.exists() and pause.read_text(encoding="utf-8").startswith(stage)):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                pytest.fail(f"the clone did not pause at {stage} (exit {proc.returncode}): "
                            f"{log.read_text(encoding='utf-8')[-2000:]}")
            time.sleep(0.05)
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == -sig  # killed there, not ended on its own
    for proc, *_ in started:
        assert proc.returncode is not None


def _clean(target: str, *extra: str) -> str:
    result = CliRunner().invoke(cli, ["clean", target, *extra])
    assert result.exit_code == 0, result.output
    return result.output


def _sql(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


@contextmanager
def _next_run(source: Path, target: str, tmp_path: Path, *extra: str) -> Iterator[None]:
    """One more clone into ``target`` (if_exists fail, as by default), running while the body
    cleans the other targets; it must succeed."""
    log = tmp_path / "next-run.log"
    proc = _clone(source, target, log, None, *extra)
    try:
        yield
    finally:
        code = proc.wait(timeout=300)
    assert code == 0, log.read_text(encoding="utf-8")


def _server_state(url: str, tables_sql: str, extra_sql: list[str], params: dict) -> dict:
    """The objects the queries list, and the rows of every base table among them."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        objects = [tuple(row) for row in conn.execute(sa.text(tables_sql), params)]
        state = {"objects": objects}
        for i, sql in enumerate(extra_sql):
            state[f"extra{i}"] = sorted(tuple(r) for r in conn.execute(sa.text(sql), params))
        quote = conn.dialect.identifier_preparer.quote
        for schema, name, kind in objects:
            if kind in ("r", "BASE TABLE"):
                rows = conn.exec_driver_sql(f"SELECT * FROM {quote(schema)}.{quote(name)}")
                state[f"{schema}.{name}"] = sorted(tuple(map(str, row)) for row in rows)
    engine.dispose()
    return state


# ------------------------------------------------------------------------------ SQLite
def _sqlite_state(path: Path) -> dict | None:
    leftovers = sorted(p.name for p in path.parent.iterdir()
                       if p.name.startswith(f".{path.name}.") or p.name.startswith(
                           f"{path.name}-"))
    assert leftovers == [], f"left behind next to {path.name}: {leftovers}"
    if not path.exists():
        return None
    with closing(sqlite3.connect(path)) as conn:
        objects = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY 2").fetchall()
        return {"objects": objects, **{
            name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall())
            for kind, name, _ in objects if kind == "table"}}


def test_sqlite_existing_file(source, tmp_path):
    """A killed write into an existing file leaves its journal: the clean rolls it back."""
    paths = [tmp_path / f"target-{i}.sqlite" for i in range(len(CASES))]
    for path in paths:
        with closing(sqlite3.connect(path)) as conn:
            conn.executescript(f"{KEEP}; {KEEP_ROWS};")
    before = _sqlite_state(paths[0])
    _kill_at_pauses(source, [str(p) for p in paths], tmp_path)
    assert any(Path(f"{p}-journal").exists() for p in paths)  # the kills left something
    with _next_run(source, str(paths[0]), tmp_path):
        for path in paths[1:]:
            _clean(str(path))
            assert _sqlite_state(path) == before, path.name
    after_run = _sqlite_state(paths[0])
    assert after_run["keep"] == before["keep"]
    assert {"parent", "child", "tag"} < set(after_run)


def test_sqlite_new_file(source, tmp_path):
    """A killed write into a new file leaves a temporary file, never the target's name."""
    paths = [tmp_path / f"new-{i}.sqlite" for i in range(len(FEWER))]
    _kill_at_pauses(source, [str(p) for p in paths], tmp_path, cases=FEWER)
    assert all(not p.exists() for p in paths)
    assert len(list(tmp_path.glob(".new-*.hma-tmp-*"))) >= len(paths)
    with _next_run(source, str(paths[0]), tmp_path):
        for path in paths[1:]:
            assert "Removed" in _clean(str(path))
            assert _sqlite_state(path) is None
        assert "Nothing left" in _clean(str(paths[1]))
    assert {"parent", "child", "tag"} < set(_sqlite_state(paths[0]))


def test_sqlite_failed_write_into_a_new_file_leaves_none(tmp_path):
    """Not killed but refused (a row without its parent): no file, no temporary file."""
    metadata = Metadata.from_dict({
        "tables": {"parent": {"primary_key": "id", "columns": {"id": {"sdtype": "id"}}},
                   "child": {"primary_key": "id", "columns": {"id": {"sdtype": "id"},
                                                               "parent_id": {"sdtype": "id"}}}},
        "relationships": [{"parent_table_name": "parent", "parent_primary_key": "id",
                           "child_table_name": "child", "child_foreign_key": "parent_id"}]})
    data = {"parent": pd.DataFrame({"id": [1, 2]}),
            "child": pd.DataFrame({"id": [1, 2], "parent_id": [1, 3]})}
    path = tmp_path / "new.sqlite"
    with pytest.raises(WriteError, match="child"):
        write(data, metadata, f"sqlite:///{path}")
    assert _sqlite_state(path) is None
    assert write({**data, "child": data["child"].assign(parent_id=1)}, metadata,
                 f"sqlite:///{path}") == {"parent": 2, "child": 2}
    assert _sqlite_state(path)["child"] == [(1, 1), (2, 1)]


# ------------------------------------------------------------------------------ PostgreSQL
_PG_SYSTEM = "n.nspname NOT IN ('pg_catalog', 'information_schema') " \
             "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
_PG_OBJECTS = ("SELECT n.nspname, c.relname, c.relkind::text FROM pg_class AS c "
               f"JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE {_PG_SYSTEM} ORDER BY 1, 2")
_PG_EXTRA = [f"SELECT n.nspname, t.typname FROM pg_type AS t JOIN pg_namespace AS n "
             f"ON n.oid = t.typnamespace WHERE {_PG_SYSTEM}",
             "SELECT nspname FROM pg_namespace",
             f"SELECT n.nspname, p.proname FROM pg_proc AS p JOIN pg_namespace AS n "
             f"ON n.oid = p.pronamespace WHERE {_PG_SYSTEM}"]


@pytest.mark.postgres
def test_postgres(source, tmp_path, postgres_databases):
    """Into a schema the run creates, next to a table it must not touch."""
    urls = [postgres_databases.new("kill") for _ in CASES]
    for url in urls:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql(KEEP)
            conn.exec_driver_sql(KEEP_ROWS)
        engine.dispose()
    before = [_server_state(url, _PG_OBJECTS, _PG_EXTRA, {}) for url in urls]
    _kill_at_pauses(source, urls, tmp_path, "--target-schema", "synth")
    with _next_run(source, urls[0], tmp_path, "--target-schema", "synth"):
        for url, was in zip(urls[1:], before[1:], strict=True):
            _clean(url, "--target-schema", "synth")
            assert _server_state(url, _PG_OBJECTS, _PG_EXTRA, {}) == was
    after_run = _server_state(urls[0], _PG_OBJECTS, _PG_EXTRA, {})
    assert after_run["public.keep"] == before[0]["public.keep"]
    assert {"synth.parent", "synth.child", "synth.tag"} < set(after_run)


@pytest.mark.postgres
def test_postgres_same_dialect_leaves_no_type(tmp_path, postgres_databases):
    """PostgreSQL -> PostgreSQL builds the target from the source's DDL: an enum type and a
    domain, created in the load's transaction, go with it."""
    source = postgres_databases.new("kill_source")
    _sql(source, "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
         "CREATE DOMAIN short_text AS VARCHAR(20) CHECK (VALUE <> '')",
         "CREATE TABLE person (id SERIAL PRIMARY KEY, feeling mood NOT NULL, name short_text)",
         "CREATE TABLE visit (id SERIAL PRIMARY KEY, person_id INTEGER NOT NULL "
         "REFERENCES person (id), note TEXT)",
         "INSERT INTO person (feeling, name) SELECT (ARRAY['sad', 'ok', 'happy']::mood[])"
         "[1 + i %% 3], 'p' || i FROM generate_series(1, 40) AS i",
         "INSERT INTO visit (person_id, note) SELECT 1 + i %% 40, 'n' || (i %% 4) "
         "FROM generate_series(1, 80) AS i")
    urls = [postgres_databases.new("kill") for _ in FEWER]
    for url in urls:
        _sql(url, KEEP, KEEP_ROWS)
    before = [_server_state(url, _PG_OBJECTS, _PG_EXTRA, {}) for url in urls]
    _kill_at_pauses(source, urls, tmp_path, cases=FEWER)
    with _next_run(source, urls[0], tmp_path):
        for url, was in zip(urls[1:], before[1:], strict=True):
            _clean(url)
            assert _server_state(url, _PG_OBJECTS, _PG_EXTRA, {}) == was
    types = _server_state(urls[0], _PG_OBJECTS, _PG_EXTRA, {})["extra0"]
    assert {("public", "mood"), ("public", "short_text")} <= set(types)  # the DDL was used


# ------------------------------------------------------------------------------ MariaDB
_MY_OBJECTS = ("SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
               "WHERE TABLE_SCHEMA IN (:db, :schema) ORDER BY 1, 2")
_MY_EXTRA = ["SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
             "WHERE ROUTINE_SCHEMA IN (:db, :schema)",
             "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
             "WHERE SCHEMA_NAME IN (:db, :schema)"]


def _mysql_targets(mysql_databases, cases=CASES) -> list[tuple[str, dict]]:
    targets = []
    for _ in cases:
        url = mysql_databases.new("kill")
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql(KEEP)
            conn.exec_driver_sql(KEEP_ROWS)
        engine.dispose()
        database = sa.make_url(url).database
        targets.append((url, {"db": database, "schema": f"{database}_s"}))
    return targets


@pytest.mark.mysql
def test_mariadb(source, tmp_path, mysql_databases):
    """Into the URL's database, next to a table the run must not touch: the tables the run
    created (DDL commits at once on MariaDB) are dropped as its marker lists them."""
    targets = _mysql_targets(mysql_databases)
    before = [_server_state(url, _MY_OBJECTS, _MY_EXTRA, names) for url, names in targets]
    _kill_at_pauses(source, [url for url, _ in targets], tmp_path)
    leftovers = _server_state(targets[0][0], _MY_OBJECTS, _MY_EXTRA, targets[0][1])
    assert any(name == "_hma_db_run" for _, name, _ in leftovers["objects"])
    with _next_run(source, targets[0][0], tmp_path):
        for (url, names), was in zip(targets[1:], before[1:], strict=True):
            assert "Removed" in _clean(url)
            assert _server_state(url, _MY_OBJECTS, _MY_EXTRA, names) == was
    after_run = _server_state(targets[0][0], _MY_OBJECTS, _MY_EXTRA, targets[0][1])
    database = targets[0][1]["db"]
    assert after_run[f"{database}.keep"] == before[0][f"{database}.keep"]
    assert {f"{database}.{t}" for t in ("parent", "child", "tag")} < set(after_run)
    assert not any(name == "_hma_db_run" for _, name, _ in after_run["objects"])


@pytest.mark.mysql
def test_mariadb_new_database(source, tmp_path, mysql_databases):
    """Into a database the run creates (--target-schema): the marker lives in it, and the
    clean drops the whole database."""
    targets = _mysql_targets(mysql_databases, FEWER)
    before = [_server_state(url, _MY_OBJECTS, _MY_EXTRA, names) for url, names in targets]
    try:
        _kill_at_pauses(source, [url for url, _ in targets], tmp_path,
                        schemas=[names["schema"] for _, names in targets], cases=FEWER)
        created = _server_state(targets[0][0], _MY_OBJECTS, _MY_EXTRA, targets[0][1])
        assert (targets[0][1]["schema"],) in created["extra1"]  # the run made the database
        for (url, names), was in zip(targets, before, strict=True):
            assert "Removed" in _clean(url, "--target-schema", names["schema"])
            assert _server_state(url, _MY_OBJECTS, _MY_EXTRA, names) == was
    finally:
        engine = sa.create_engine(targets[0][0], poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            for _, names in targets:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{names['schema']}`")
        engine.dispose()


# ------------------------------------------------------------------------------ the guards
def test_sqlite_temporary_file_of_a_live_process_is_kept(tmp_path):
    mine = tmp_path / f".out.sqlite.hma-tmp-{os.getpid()}"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = [tmp_path / f".out.sqlite.hma-tmp-{gone}", tmp_path / f".out.sqlite.hma-tmp-{gone}-journal"]
    for path in [mine, *stale]:
        path.write_bytes(b"")
    output = _clean(str(tmp_path / "out.sqlite"))
    assert "Removed 2 leftover(s)" in output
    assert mine.exists() and not any(p.exists() for p in stale)


@pytest.mark.mysql
def test_mariadb_a_running_load_is_not_cleaned(source, mysql_databases):
    """A run that holds the database's lock keeps its objects: clean and write refuse."""
    url = mysql_databases.new("kill_lock")
    database = sa.make_url(url).database
    _sql(url, KEEP, "CREATE TABLE _hma_db_run (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
         "run_id VARCHAR(120), kind VARCHAR(16), name VARCHAR(255), replaces VARCHAR(255), "
         "created_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6))",
         "INSERT INTO _hma_db_run (run_id, kind, name) VALUES ('live', 'table', 'keep')")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as holder:
        assert holder.exec_driver_sql(f"SELECT GET_LOCK('hma_db:{database}', 0)").scalar() == 1
        result = CliRunner().invoke(cli, ["clean", url])
        assert result.exit_code == 1
        assert result.output.strip().splitlines()[-1].endswith(
            f"Another load is running into the MariaDB database '{database}' (it holds the lock "
            f"'hma_db:{database}'); run again once it is done. Nothing was changed.")
        with pytest.raises(WriteError, match="Another load is running"):
            write({}, Metadata(), url)
    with engine.connect() as conn:
        assert sorted(sa.inspect(conn).get_table_names()) == ["_hma_db_run", "keep"]
    engine.dispose()
    assert "Removed 1 leftover(s)" in _clean(url)  # the lock is free: the listed table goes


@pytest.mark.mysql
def test_mariadb_a_swap_killed_after_the_commit_is_finished(mysql_databases):
    """Rows committed in a staging table whose swap did not happen: the clean finishes it."""
    url = mysql_databases.new("kill_swap")
    _sql(url, KEEP, KEEP_ROWS, "CREATE TABLE _hma_new_0 (id INTEGER PRIMARY KEY, note TEXT)",
         "INSERT INTO _hma_new_0 VALUES (7, 'new')",
         "CREATE TABLE _hma_db_run (id BIGINT AUTO_INCREMENT PRIMARY KEY, run_id VARCHAR(120), "
         "kind VARCHAR(16), name VARCHAR(255), replaces VARCHAR(255), "
         "created_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6))",
         "INSERT INTO _hma_db_run (run_id, kind, name, replaces) "
         "VALUES ('gone', 'swap', '_hma_new_0', 'keep')")
    _clean(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        assert sorted(sa.inspect(conn).get_table_names()) == ["keep"]
        assert conn.exec_driver_sql("SELECT * FROM keep").all() == [(7, "new")]
    engine.dispose()
