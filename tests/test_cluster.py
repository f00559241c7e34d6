"""Sampling on a Dask cluster (``clone(..., cluster=...)``): the same rows for any number of
workers, and a worker killed mid-run leaves the target as it was.

Dask's ``LocalCluster`` starts real worker processes on this machine; the chunks travel to
them and back through Dask's own serialization, as on a remote cluster.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import REQUIRE_SERVERS

from hma_db import clone
from hma_db.errors import ConfigError, SamplingError, WriteError

ROOT = Path(__file__).resolve().parents[1]
CHINOOK = ROOT / "examples" / "chinook.sqlite"

try:
    import dask
    import distributed
except ImportError:  # pragma: no cover - CI installs the extra (.ci/run)
    if REQUIRE_SERVERS:
        raise
    pytest.skip('dask.distributed is not installed (pip install "hma_db[dask]")',
                allow_module_level=True)


def _tables(path: Path) -> dict[str, pd.DataFrame]:
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {n: pd.read_sql_query(f'SELECT * FROM "{n}" ORDER BY rowid', conn) for n in names}


def test_the_same_seed_gives_the_same_target_with_1_2_and_4_workers(tmp_path):
    """Chinook at scale 10 in 9 chunks: without a cluster and on 1, 2 and 4 workers."""
    options = dict(scale=10, seed=11, chunk_rows=10_000, reference_tables=False)
    alone = tmp_path / "alone.sqlite"
    clone(CHINOOK, alone, **options)
    expected = _tables(alone)
    assert sum(len(f) for f in expected.values()) > 150_000
    for workers in (1, 2, 4):
        target = tmp_path / f"workers_{workers}.sqlite"
        clone(CHINOOK, target, cluster=workers, **options)
        found = _tables(target)
        assert list(found) == list(expected)
        for table, frame in expected.items():
            pd.testing.assert_frame_equal(found[table], frame, obj=f"{table} ({workers} workers)")


def test_a_client_given_is_used_and_left_open(tmp_path):
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as local, \
            distributed.Client(local) as client:
        clone(CHINOOK, tmp_path / "a.sqlite", scale=2, seed=1, chunk_rows=5_000, cluster=client)
        assert client.status == "running"
    clone(CHINOOK, tmp_path / "b.sqlite", scale=2, seed=1, chunk_rows=5_000)
    a, b = _tables(tmp_path / "a.sqlite"), _tables(tmp_path / "b.sqlite")
    for table in a:
        pd.testing.assert_frame_equal(a[table], b[table])


def _kill_the_paused_worker(pause_file: Path, done: threading.Event,
                            stage: str = "worker_chunk") -> int | None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not done.is_set():
        if pause_file.exists():
            line = pause_file.read_text(encoding="utf-8").split("\n")[0].split()
            if len(line) == 2 and line[0] == stage:
                os.kill(int(line[1]), signal.SIGKILL)
                return int(line[1])
        time.sleep(0.1)
    return None


def _killed_run(source: Path, target, tmp_path: Path, monkeypatch, stage: str = "worker_chunk",
                **options) -> str:
    """Clone with a worker that stops at ``stage`` of its first chunk (before it samples, or
    after it staged its rows) and is killed there; the error."""
    pause_file = tmp_path / "pause.txt"
    monkeypatch.setenv("HMA_DB_TEST_PAUSE", stage)  # the workers inherit it
    monkeypatch.setenv("HMA_DB_TEST_PAUSE_FILE", str(pause_file))
    errors: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            clone(source, target, cluster=2, **options)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)
        finally:
            done.set()

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        thread = threading.Thread(target=run)
        thread.start()
        killed = _kill_the_paused_worker(pause_file, done, stage)
        thread.join(timeout=180)
    assert killed is not None, "no worker reached its pause point"
    assert not thread.is_alive()
    assert len(errors) == 1, "the run did not fail"
    return str(errors[0]), errors[0]


def test_a_worker_killed_mid_run_leaves_a_sqlite_target_as_it_was(tmp_path, monkeypatch):
    target = tmp_path / "staging.sqlite"
    clone(CHINOOK, target, seed=1)  # what the target holds before
    before = _tables(target)
    message, error = _killed_run(CHINOOK, target, tmp_path, monkeypatch, scale=3, seed=2,
                                 chunk_rows=5_000, if_exists="replace")
    assert isinstance(error, (SamplingError, WriteError))
    assert "\n" not in message
    assert "chunk" in message and "Dask cluster" in message and "KilledWorker" in message
    after = _tables(target)
    assert list(after) == list(before)
    for table in before:
        pd.testing.assert_frame_equal(after[table], before[table])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pause.txt", "staging.sqlite"]


CHINOOK_TABLES = {"Album", "Artist", "Customer", "Employee", "Genre", "Invoice", "InvoiceLine",
                  "MediaType", "Playlist", "PlaylistTrack", "Track"}


def _server_tables(url: str) -> dict[str, pd.DataFrame]:
    """Every table of a PostgreSQL or MariaDB database, its rows sorted by every column (a
    PostgreSQL heap may place a row in space an earlier page left: the order on disk is not
    part of the output)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            quote = conn.dialect.identifier_preparer.quote
            out = {}
            for name in sorted(sa.inspect(conn).get_table_names()):
                frame = pd.read_sql_query(sa.text(f"SELECT * FROM {quote(name)}"), conn)
                out[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
            return out
    finally:
        engine.dispose()


@pytest.mark.parametrize("stage", ["worker_chunk", "worker_staged"])
def test_a_worker_killed_mid_run_leaves_a_postgres_target_as_it_was(
        tmp_path, monkeypatch, postgres_databases, stage):
    """Killed before it samples, or after its rows are in a staging table: the target's real
    tables are unchanged and the staging tables are gone."""
    target = postgres_databases.new("cluster_kill")
    clone(CHINOOK, target, seed=1, scale=0.5)
    before = _server_tables(target)
    message, _ = _killed_run(CHINOOK, target, tmp_path, monkeypatch, stage, scale=3, seed=2,
                             chunk_rows=5_000, if_exists="replace")
    assert "KilledWorker" in message and "\n" not in message
    assert message.startswith("Sampling and staging chunk ") and "nothing was written" in message
    after = _server_tables(target)
    assert set(after) == CHINOOK_TABLES  # no staging table left
    for table, frame in before.items():
        pd.testing.assert_frame_equal(after[table], frame, obj=table)


@pytest.mark.parametrize("stage", ["worker_chunk", "worker_staged"])
def test_a_worker_killed_mid_run_leaves_a_mariadb_target_as_it_was(
        tmp_path, monkeypatch, mysql_databases, stage):
    """MariaDB commits DDL at once: the staging tables go through the run marker, and a
    failure drops them with it."""
    target = mysql_databases.new("cluster_kill")
    clone(CHINOOK, target, seed=1, scale=0.5)
    before = _server_tables(target)
    message, _ = _killed_run(CHINOOK, target, tmp_path, monkeypatch, stage, scale=2, seed=2,
                             chunk_rows=3_000, if_exists="replace")
    assert "KilledWorker" in message and "\n" not in message
    after = _server_tables(target)
    assert set(after) == CHINOOK_TABLES  # no staging table, no run marker left
    for table, frame in before.items():
        pd.testing.assert_frame_equal(after[table], frame, obj=table)


@pytest.fixture(scope="module")
def chinook_x10_alone(postgres_databases) -> dict[str, pd.DataFrame]:
    """Chinook at scale 10 in 9 chunks into PostgreSQL without a cluster."""
    target = postgres_databases.new("cluster_alone")
    clone(CHINOOK, target, **X10)
    found = _server_tables(target)
    assert sum(len(f) for f in found.values()) > 150_000
    return found


X10 = dict(scale=10, seed=11, chunk_rows=10_000, reference_tables=False)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_the_same_seed_gives_the_same_postgres_target_through_staging_tables(
        postgres_databases, chinook_x10_alone, workers):
    """Each worker loads its chunks into staging tables and one transaction moves them: the
    target holds the same rows as without a cluster, for any number of workers."""
    target = postgres_databases.new(f"cluster_staged_{workers}")
    result = clone(CHINOOK, target, cluster=workers, **X10)
    assert result.seconds["stage"] > 0 and result.seconds["move"] > 0  # the staged path ran
    found = _server_tables(target)
    assert set(found) == CHINOOK_TABLES  # the staging tables are dropped
    for table, frame in chinook_x10_alone.items():
        pd.testing.assert_frame_equal(found[table], frame, obj=f"{table} ({workers} workers)")


@pytest.mark.parametrize("cluster, found", [
    (0, "at least 1; found 0"),
    ("not an address", "expected a Dask scheduler address"),
    (2.5, "found float"),
    (True, "found True"),
])
def test_a_bad_cluster_is_refused_before_any_work(tmp_path, cluster, found):
    with pytest.raises(ConfigError, match=found):
        clone(CHINOOK, tmp_path / "t.sqlite", cluster=cluster)
    assert not (tmp_path / "t.sqlite").exists()


def test_an_unreachable_scheduler_is_refused_before_the_source_is_read(tmp_path, monkeypatch):
    from hma_db.cluster import runner

    monkeypatch.setattr(runner, "CONNECT_TIMEOUT", "2s")  # the client's own wait: 30 s
    stages = []
    with pytest.raises(ConfigError, match="Cannot reach the Dask scheduler at tcp://127.0.0.1:1"), \
            dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        clone(CHINOOK, tmp_path / "t.sqlite", cluster="tcp://127.0.0.1:1",
              on_stage=lambda name, seconds: stages.append(name))
    assert "read" not in stages
    assert not (tmp_path / "t.sqlite").exists()


def test_the_command_line_and_a_job_file_sample_on_local_workers(tmp_path):
    from click.testing import CliRunner

    from hma_db import load_job, run_job
    from hma_db.cli.main import cli

    alone = tmp_path / "alone.sqlite"
    clone(CHINOOK, alone, scale=2, seed=5, chunk_rows=5_000)
    result = CliRunner().invoke(cli, ["clone", str(CHINOOK), str(tmp_path / "cli.sqlite"),
                                      "--scale", "2", "--seed", "5", "--workers", "2"])
    assert result.exit_code == 0, result.output
    # Why the workers did not load their chunks themselves: in the summary, not only the log.
    assert "Note: cluster: a SQLite target takes one writer at a time: the chunks were " \
        "sampled on the workers and written by one writer" in result.output
    job = tmp_path / "job.toml"
    job.write_text(f'source = "{CHINOOK}"\ntarget = "{tmp_path / "job.sqlite"}"\n'
                   'scale = 2\nseed = 5\ncluster = 2\n')
    assert run_job(load_job(job), chunk_rows=5_000).notes[0].startswith(
        "cluster: a SQLite target takes one writer")
    expected = _tables(alone)
    for name in ("job.sqlite",):
        found = _tables(tmp_path / name)
        for table in expected:
            pd.testing.assert_frame_equal(found[table], expected[table])
    assert {t: len(f) for t, f in _tables(tmp_path / "cli.sqlite").items()} == \
        {t: len(f) for t, f in expected.items()}


def test_the_command_line_refuses_two_clusters_and_a_job_file_a_bad_one(tmp_path):
    from click.testing import CliRunner

    from hma_db import load_job
    from hma_db.cli.main import cli

    result = CliRunner().invoke(cli, ["clone", str(CHINOOK), str(tmp_path / "t.sqlite"),
                                      "--workers", "2", "--cluster", "tcp://127.0.0.1:8786"])
    assert result.exit_code == 2
    assert "give one of them" in result.output
    job = tmp_path / "job.toml"
    job.write_text(f'source = "{CHINOOK}"\ntarget = "{tmp_path / "t.sqlite"}"\ncluster = 0\n')
    with pytest.raises(ConfigError, match='cluster.*scheduler address such as "tcp://host:8786"'):
        load_job(job)


DEAD, LIVE = "0123456789ab", "fedcba987654"
LEFTOVERS = [f"_hma_stage_{DEAD}_0", f"_hma_stage_{DEAD}_1_u0", f"_hma_stage_{LIVE}_0"]
NOT_OURS = ["_hma_stage_keep", f"_hma_stage_{DEAD}", f"my_hma_stage_{DEAD}_0",
            f"_hma_stage_{DEAD}_0_copy", "Track"]


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_hma_db_clean_drops_a_killed_runs_staging_tables_and_nothing_else(request, server):
    """Tables named like a run's staging tables whose run is gone are dropped; a live run's
    (its lock held), and every other table, are left."""
    from click.testing import CliRunner

    from hma_db.cli.main import cli

    databases = request.getfixturevalue(f"{'postgres' if server == 'postgres' else 'mysql'}"
                                        "_databases")
    target = databases.new("cluster_clean")
    engine = sa.create_engine(target)
    lock = ("SELECT pg_advisory_lock(hashtextextended(:n, 0))" if server == "postgres"
            else "SELECT GET_LOCK(:n, 0)")
    with engine.connect() as live:
        live = live.execution_options(isolation_level="AUTOCOMMIT")
        quote = live.dialect.identifier_preparer.quote
        for name in LEFTOVERS + NOT_OURS:
            live.exec_driver_sql(f"CREATE TABLE {quote(name)} (a INTEGER)")
        live.execute(sa.text(lock), {"n": f"hma_db_stage:{LIVE}"})  # as a running load does
        result = CliRunner().invoke(cli, ["clean", target])
        assert result.exit_code == 0, result.output
        assert "Removed 1 leftover(s)" in result.output
        assert set(sa.inspect(live).get_table_names()) == {f"_hma_stage_{LIVE}_0", *NOT_OURS}
    engine.dispose()  # the live run ends: its lock goes with its session
    result = CliRunner().invoke(cli, ["clean", target])
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(target)
    assert set(sa.inspect(engine).get_table_names()) == set(NOT_OURS)
    engine.dispose()


def test_a_killed_clone_leaves_staging_tables_that_hma_db_clean_removes(
        tmp_path, postgres_databases):
    """The clone itself killed after the move, before its COMMIT (SIGKILL to its process group,
    workers included): the real tables are as they were, the staging tables are left, and
    ``hma-db clean`` removes them."""
    from click.testing import CliRunner

    from hma_db.cli.main import cli

    target = postgres_databases.new("cluster_killed_clone")
    clone(CHINOOK, target, seed=1, scale=0.5)
    before = _server_tables(target)
    pause_file = tmp_path / "pause.txt"
    env = {**os.environ, "HMA_DB_TEST_PAUSE": "after_move",
           "HMA_DB_TEST_PAUSE_FILE": str(pause_file)}
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from hma_db import clone; clone(sys.argv[1], "
         "sys.argv[2], scale=2, seed=3, chunk_rows=5_000, cluster=2, if_exists='replace')",
         str(CHINOOK), target],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 150
        while not (pause_file.exists() and pause_file.read_text().startswith("after_move")):
            assert process.poll() is None, "the clone ended before its pause point"
            assert time.monotonic() < deadline, "the clone never reached its pause point"
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the clone, its scheduler and its workers
        process.wait(timeout=30)
    left = _server_tables(target)
    staging = sorted(set(left) - CHINOOK_TABLES)
    assert staging and all(name.startswith("_hma_stage_") for name in staging)
    assert sum(len(left[name]) for name in staging) > 0
    for table, frame in before.items():
        pd.testing.assert_frame_equal(left[table], frame, obj=table)
    deadline = time.monotonic() + 30  # the server ends the killed session, and its lock
    while True:
        result = CliRunner().invoke(cli, ["clean", target])
        assert result.exit_code == 0, result.output
        if "Removed 1 leftover(s)" in result.output or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "Removed 1 leftover(s)" in result.output
    assert set(_server_tables(target)) == CHINOOK_TABLES


def _team_cycle(path: Path) -> None:
    """Teams and players referencing each other, cut at the nullable ``team.captain_id``."""
    rng = np.random.default_rng(0)
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE team (id INTEGER PRIMARY KEY, name TEXT NOT NULL, budget REAL NOT NULL, "
            "captain_id INTEGER REFERENCES player(id));"
            "CREATE TABLE player (id INTEGER PRIMARY KEY, "
            "team_id INTEGER NOT NULL REFERENCES team(id), score REAL NOT NULL);")
        conn.executemany("INSERT INTO team VALUES (?, ?, ?, NULL)",
                         [(i, f"team {i % 37}", float(b))
                          for i, b in enumerate(rng.gamma(2, 1000, 1500), 1)])
        teams, scores = rng.integers(1, 1501, 4500), rng.normal(50, 10, 4500)
        conn.executemany("INSERT INTO player VALUES (?, ?, ?)",
                         [(i, int(t), float(s))
                          for i, (t, s) in enumerate(zip(teams, scores, strict=True), 1)])
        conn.execute("UPDATE team SET captain_id = "
                     "(SELECT min(id) FROM player WHERE player.team_id = team.id)")


def test_a_cycle_into_existing_postgres_tables_is_staged_null_then_updated(
        tmp_path, postgres_databases):
    """Existing PostgreSQL tables (truncate) check each row's keys as it arrives: the workers
    stage the cycle-closing key apart, and the move sets it after the rows, as the one writer
    does; the same rows as without a cluster."""
    source = tmp_path / "teams.sqlite"
    _team_cycle(source)
    targets = [postgres_databases.new("cluster_cycle_staged"),
               postgres_databases.new("cluster_cycle_alone")]
    for target in targets:
        clone(source, target, seed=1)  # the tables exist from here on
    options = dict(scale=2, seed=5, chunk_rows=1_000, if_exists="truncate")
    staged = clone(source, targets[0], cluster=2, **options)
    clone(source, targets[1], **options)
    assert staged.seconds["stage"] > 0
    found, expected = _server_tables(targets[0]), _server_tables(targets[1])
    assert set(found) == {"player", "team"}
    assert found["team"]["captain_id"].notna().sum() > 2_000
    for table, frame in expected.items():
        pd.testing.assert_frame_equal(found[table], frame, obj=table)


def test_the_same_seed_gives_the_same_mariadb_target_through_staging_tables(mysql_databases):
    """MariaDB: the staging tables go through the run marker; the rows are the same as without
    a cluster, and neither staging table nor marker is left."""
    targets = [mysql_databases.new("cluster_staged"), mysql_databases.new("cluster_alone")]
    options = dict(scale=2, seed=4, chunk_rows=3_000, reference_tables=False)
    staged = clone(CHINOOK, targets[0], cluster=2, **options)
    clone(CHINOOK, targets[1], **options)
    assert staged.seconds["stage"] > 0
    found, expected = _server_tables(targets[0]), _server_tables(targets[1])
    assert set(found) == CHINOOK_TABLES
    for table, frame in expected.items():
        pd.testing.assert_frame_equal(found[table], frame, obj=table)


def test_the_job_sent_to_the_workers_hides_the_password_in_its_repr():
    """Dask writes a failed task's arguments in its log line: the target's password must not
    be there, though the workers connect with it."""
    from hma_db.target import StageJob

    job = StageJob("postgresql+psycopg://app:s3cret@db.example/shop", "postgresql", None,
                   ["Track"], {}, "0123456789ab", None, {}, {}, True, 50_000)
    assert "s3cret" not in repr(job) and "s3cret" not in str(job)
    assert "app:***@db.example/shop" in repr(job)
    assert "s3cret" in job.url  # what the workers connect with


def test_large_tables_read_on_the_workers_in_key_ranges_give_the_same_frames(chinook_postgres,
                                                                             caplog):
    """Tables whose key starts with an integer column (PlaylistTrack's is two columns) read in
    key ranges by two workers, in the snapshot of the planning transaction: the very frames one
    reader gives (rows, order, dtypes, Decimal values)."""
    from hma_db import reflect
    from hma_db.cluster import cluster_read
    from hma_db.source import read_tables

    metadata = reflect(chinook_postgres)
    expected = read_tables(chinook_postgres, metadata)
    engine = sa.create_engine(chinook_postgres)
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as local, \
                distributed.Client(local) as client:
            with caplog.at_level("INFO", logger="hma_db.source.ranges"):
                found = cluster_read(client, engine, metadata, min_rows=1_000)
            assert cluster_read(client, engine, metadata, min_rows=10**9) is None  # none split
    finally:
        engine.dispose()
    assert found is not None and list(found) == list(expected)
    split = {r.getMessage().lower() for r in caplog.records if "key ranges" in r.getMessage()}
    assert "read track in 4 key ranges" in split and len(split) >= 3, split
    assert any(m.startswith("read playlist") for m in split), split
    for table, frame in expected.items():
        pd.testing.assert_frame_equal(found[table], frame, obj=table)


def test_a_column_named_like_the_staging_tables_own_is_written_by_the_one_writer(
        tmp_path, postgres_databases, caplog):
    """A source column named ``_hma_chunk`` (a staging table's own) does not stop a cluster
    run: its chunks are written by the clone's process, the same rows as without a cluster."""
    source = tmp_path / "tagged.sqlite"
    rng = np.random.default_rng(0)
    with sqlite3.connect(source) as conn:
        conn.executescript("CREATE TABLE batch (id INTEGER PRIMARY KEY, _hma_chunk INTEGER "
                           "NOT NULL, weight REAL NOT NULL);")
        conn.executemany("INSERT INTO batch VALUES (?, ?, ?)",
                         [(i, int(c), float(w)) for i, (c, w) in enumerate(
                             zip(rng.integers(0, 9, 3000), rng.gamma(2, 3, 3000),
                                 strict=True), 1)])
    targets = [postgres_databases.new("cluster_tagged"), postgres_databases.new("tagged_alone")]
    options = dict(scale=2, seed=2, chunk_rows=1_000)
    with caplog.at_level(logging.INFO, logger="hma_db"):
        clustered = clone(source, targets[0], cluster=2, **options)
    clone(source, targets[1], **options)
    assert "stage" not in clustered.seconds
    assert "as the staging tables' own" in caplog.text
    assert clustered.notes == ["cluster: table 'batch' has a column named _hma_chunk, as the "
                               "staging tables' own (rename it in the target to stage): the "
                               "chunks were sampled on the workers and written by one writer"]
    found, expected = _server_tables(targets[0]), _server_tables(targets[1])
    assert len(found["batch"]) == 6000
    pd.testing.assert_frame_equal(found["batch"], expected["batch"])


class _Threads:
    """What stages_on_workers reads of a Dask client: its worker threads."""

    def __init__(self, count: int):
        self.count = count

    def nthreads(self) -> dict[str, int]:
        return {f"tcp://worker-{i}": 1 for i in range(self.count)}


def test_staging_needs_room_for_its_locks_and_the_right_to_create_tables(postgres_databases):
    """Decided before the work: a PostgreSQL target whose lock table cannot hold the staging
    tables' locks (a thread's tables each, all held by the load until it commits), or where
    the user may not create tables, keeps the one writer, and the reason says why."""
    from hma_db import HMASynthesizer, reflect
    from hma_db.cluster import stages_on_workers, staging_refusal

    target = postgres_databases.new("cluster_locks")
    synthesizer = HMASynthesizer(reflect(CHINOOK))
    options = dict(if_exists="replace", chunk_rows=1_000)
    engine = sa.create_engine(target)
    try:
        assert stages_on_workers(engine, synthesizer, client=_Threads(2), **options)
        assert not stages_on_workers(engine, synthesizer, client=_Threads(500), **options)
        reason = staging_refusal(engine, synthesizer, client=_Threads(500), **options)
        assert re.search(r"raise max_locks_per_transaction to \d+ to stage", reason)
        with engine.connect() as conn:
            conn.exec_driver_sql("DROP ROLE IF EXISTS hma_db_no_create")
            conn.exec_driver_sql("CREATE ROLE hma_db_no_create LOGIN")
            conn.exec_driver_sql("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            conn.commit()
        guest = sa.create_engine(sa.make_url(target).set(username="hma_db_no_create"))
        reason = staging_refusal(guest, synthesizer, client=_Threads(2), **options)
        assert "cannot create tables in schema 'public'" in reason
        guest.dispose()
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql("DROP ROLE IF EXISTS hma_db_no_create")
            conn.commit()
        engine.dispose()


def test_a_repeatable_read_target_still_gets_every_staged_chunk(postgres_databases):
    """The load moves chunks that workers commit after it began: it reads them in READ
    COMMITTED even where the database's default is REPEATABLE READ (which would have moved
    nothing and committed chunk 0 alone)."""
    targets = [postgres_databases.new("cluster_repeatable"), postgres_databases.new("rr_alone")]
    for target in targets:
        url = sa.make_url(target)
        admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{url.database}" SET '
                                 "default_transaction_isolation = 'repeatable read'")
        admin.dispose()
    options = dict(scale=2, seed=6, chunk_rows=3_000)
    staged = clone(CHINOOK, targets[0], cluster=2, **options)
    clone(CHINOOK, targets[1], **options)
    assert staged.seconds["stage"] > 0
    found, expected = _server_tables(targets[0]), _server_tables(targets[1])
    assert sum(len(f) for f in found.values()) == sum(staged.rows.values()) > 30_000
    for table, frame in expected.items():
        pd.testing.assert_frame_equal(found[table], frame, obj=table)


def _worker_environment() -> tuple[str | None, str | None]:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OPENBLAS_NUM_THREADS")


def test_local_workers_start_without_dasks_allocator_setting(monkeypatch):
    """Dask's MALLOC_TRIM_THRESHOLD_ turns off glibc's sliding mmap threshold: TPC-H SF1's
    chunks sampled 35% slower with it. The workers hma_db starts go without it and keep one
    BLAS thread (the same model on any number of workers)."""
    from hma_db.cluster import open_cluster

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with open_cluster(1) as client:
        found = set(client.run(_worker_environment).values())
    assert found == {(None, "1")}
    assert dask.config.get("distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_") == 65536
