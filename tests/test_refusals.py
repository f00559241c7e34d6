"""Refusals that come before the work (issue 15): each one exits with its code and says in one
line what is wrong and what to do.

A cut foreign key (``--include``/``--exclude`` leaving out a referenced table), a target another
run is loading (PostgreSQL's advisory lock), a lost connection, a bad URL, a plain SQLite path in
the Python API, and more rows than the ceiling.
"""

from __future__ import annotations

import re
import sqlite3
import uuid

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conftest import CHINOOK_SQLITE

import hma_db
from hma_db import ConfigError, ReflectionError, WriteError
from hma_db.cli.main import MAX_TOTAL_ROWS, cli
from hma_db.pipeline import CloneHooks, run_clone
from hma_db.synthesizer import MAX_TOTAL_ROWS as API_MAX_TOTAL_ROWS
from hma_db.synthesizer import planned_rows
from hma_db.target import target_busy
from hma_db.target.guard import hold_target_lock

PROGRESS_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ .*\n?", re.M)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def error_line(result) -> str:
    """The one ``error:`` line of a failed command (progress lines aside), checked to be one."""
    lines = PROGRESS_LINE.sub("", result.stderr).splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# ------------------------------------------------------------------------- cut foreign keys
CUT = ("error: include keeps Invoice but not Customer, which Invoice.CustomerId references: "
       "add Customer to --include, or pass --drop-cut-keys (drop_cut_keys=True) to keep Invoice "
       "without that foreign key")


@pytest.mark.parametrize("command", ["clone", "reflect", "fit"])
def test_a_cut_foreign_key_is_refused_before_any_work(command, tmp_path):
    target = tmp_path / "out.sqlite"
    args = {"clone": ["clone", CHINOOK_SQLITE, target],
            "reflect": ["reflect", CHINOOK_SQLITE],
            "fit": ["fit", CHINOOK_SQLITE, "-o", tmp_path / "m.json"]}[command]
    result = run(*args, "--include", "Invoice")
    assert result.exit_code == 2
    assert error_line(result) == CUT
    assert not target.exists() and not (tmp_path / "m.json").exists()
    kept = run(*args, "--include", "Invoice", "--drop-cut-keys", "--seed", "1") \
        if command != "reflect" else run(*args, "--include", "Invoice", "--drop-cut-keys")
    assert kept.exit_code == 0, kept.output


def test_exclude_names_what_to_remove_and_every_cut_key():
    with pytest.raises(ReflectionError) as info:
        hma_db.reflect(CHINOOK_SQLITE, exclude=["Employee", "Genre"])
    assert str(info.value) == (
        "exclude leaves out Employee, which Customer.SupportRepId references; exclude leaves out "
        "Genre, which Track.GenreId references: remove Employee, Genre from --exclude, or pass "
        "--drop-cut-keys (drop_cut_keys=True) to keep Customer, Track without those foreign keys")
    closed = hma_db.reflect(CHINOOK_SQLITE, include=["Customer", "Employee", "Invoice"])
    assert len(closed.relationships) == 3  # a closed set is no cut


def test_a_cut_in_a_job_file_names_its_line(tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(f'source = "{CHINOOK_SQLITE}"\ntarget = "{tmp_path / "t.sqlite"}"\n'
                   'include = ["Invoice", "InvoiceLine"]\n')
    result = run("plan", job)
    assert result.exit_code == 2
    assert error_line(result).startswith(f"error: {job}, line 3: include keeps Invoice but not "
                                         "Customer, which Invoice.CustomerId references;")
    job.write_text(job.read_text() + "drop_cut_keys = true\n")
    assert run("plan", job).exit_code == 0


def test_tables_of_another_schema_are_read_not_cut(postgres_databases):
    url = postgres_databases.new("schemas")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA crm; CREATE TABLE crm.customer (id int PRIMARY KEY);"
                             "CREATE TABLE public.orders (id int PRIMARY KEY, customer_id int "
                             "REFERENCES crm.customer(id)); CREATE TABLE public.note (id int "
                             "PRIMARY KEY)")
    metadata = hma_db.reflect(url, include=["orders"])
    assert sorted(metadata.tables) == ["customer", "orders"] and metadata.relationships


# ------------------------------------------------------------------------- a target being loaded
def test_two_clones_into_one_empty_postgres_target(postgres_databases, tmp_path):
    """The second clone starts while the first one's write transaction is open (from its
    progress callback): it is refused in one line before reading, and the first one commits."""
    target = postgres_databases.new("two_loads")
    schema = f"s_{uuid.uuid4().hex[:8]}"
    second: list = []

    class StartAnother(CloneHooks):
        def rows_written(self, table, done, total):
            if not second:
                second.append(run("clone", CHINOOK_SQLITE, target, "--target-schema", schema,
                                  "--include", "Artist,Album", "--seed", "2"))

    first = run_clone(CHINOOK_SQLITE, target, hooks=StartAnother(), target_schema=schema,
                      include=["Artist", "Album"], seed=1)
    assert first.rows == {"Artist": 275, "Album": 347}
    assert second[0].exit_code == 1
    shown = sa.make_url(target).render_as_string(hide_password=True)
    assert error_line(second[0]) == (f"error: Another hma_db run is loading {shown} (schema "
                                     f"'{schema}'); wait for it to finish and run again. Nothing "
                                     "was read or written.")
    # Another schema of the same database is another lock: free.
    assert target_busy(sa.create_engine(target, poolclass=sa.pool.NullPool), "other") is None


def test_a_write_that_starts_under_anothers_lock_is_refused(postgres_databases):
    """A load that got past the check before work (the other started in between) is refused by
    the lock its own transaction takes, before any DDL."""
    engine = sa.create_engine(postgres_databases.new("locked"), poolclass=sa.pool.NullPool)
    with engine.connect() as holder, engine.connect() as late:
        with holder.begin():
            hold_target_lock(holder, "postgresql", None)
            assert target_busy(engine, None) is not None and target_busy(engine, "public")
            with late.begin(), pytest.raises(WriteError) as info:
                hold_target_lock(late, "postgresql", "public")  # None and 'public': one lock
        assert str(info.value).startswith("Another hma_db run is loading postgresql+psycopg://")
        assert str(info.value).endswith("(schema 'public'); wait for it to finish and run again. "
                                        "Nothing was written.")
        assert target_busy(engine, None) is None  # the holder's COMMIT released it


# ------------------------------------------------------------------------- lost connections
def test_a_lost_source_connection_is_one_line_naming_the_source(postgres_databases, tmp_path,
                                                                monkeypatch):
    source = postgres_databases.new("lost")
    engine = sa.create_engine(source, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE item (id int PRIMARY KEY, price float)")
        conn.exec_driver_sql("INSERT INTO item SELECT g, g * 1.5 FROM generate_series(1, 50) g")
    import hma_db.pipeline as pipeline

    real_read = pipeline.read_source

    def read_after_a_restart(source_engine, *args, **kwargs):
        with engine.connect() as admin:  # the server ends every other session of the source
            admin.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return real_read(source_engine, *args, **kwargs)

    monkeypatch.setattr(pipeline, "read_source", read_after_a_restart)
    result = run("clone", source, tmp_path / "out.sqlite", "--seed", "1")
    assert result.exit_code == 1
    line = error_line(result)
    shown = sa.make_url(source).render_as_string(hide_password=True)
    assert line.startswith(f"error: The source database {shown} failed or the connection was "
                           "lost (OperationalError: "), line
    assert line.endswith("; check that the server is up and reachable, then run again")
    assert "unexpected" not in line


def test_a_driver_error_outside_a_clone_names_the_database(tmp_path, monkeypatch):
    """``hma-db fit`` reads through the synthesizer: the CLI names the database that failed."""
    path = tmp_path / "src.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x REAL)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, i / 2) for i in range(30)])
    from hma_db.synthesizer import HMASynthesizer

    def fit_database(self, url, **kwargs):
        with sa.create_engine(url).connect() as conn:
            conn.exec_driver_sql("SELECT * FROM no_such_table")

    monkeypatch.setattr(HMASynthesizer, "fit_database", fit_database)
    result = run("fit", path, "-o", tmp_path / "m.json")
    assert result.exit_code == 1
    assert error_line(result) == (
        f"error: The database sqlite:///{path} refused a statement (OperationalError: no such "
        "table: no_such_table); check that its schema did not change during the run and that "
        "its user may read it, then run again")


# ------------------------------------------------------------------------------- URLs and paths
@pytest.mark.parametrize("argument", ["source", "target"])
def test_an_unparsable_url_exits_2(argument, tmp_path):
    bad = "postgresql+psycopg://app:pw@db:notaport/shop"
    args = [bad, tmp_path / "t.sqlite"] if argument == "source" else [CHINOOK_SQLITE, bad]
    result = run("clone", *args)
    assert result.exit_code == 2
    assert error_line(result) == (
        "error: 'postgresql+psycopg://app:***@db:notaport/shop' is not a valid database URL; "
        "expected dialect+driver://user@host/database, e.g. postgresql+psycopg://app@localhost/"
        "shop or sqlite:///path/to/file.sqlite, or the path of a SQLite file")


def test_an_unknown_driver_or_a_missing_target_directory_exits_2(tmp_path):
    result = run("clone", CHINOOK_SQLITE, "nosuchdb://u@h/db")
    assert result.exit_code == 2 and "Unknown database dialect or driver 'nosuchdb'" in \
        error_line(result)
    result = run("clone", CHINOOK_SQLITE, f"sqlite:///{tmp_path}/missing/out.sqlite")
    assert result.exit_code == 2 and "its directory does not exist" in error_line(result)


def test_the_python_api_takes_plain_sqlite_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = hma_db.clone(str(CHINOOK_SQLITE), "new.sqlite", include=["Artist", "Album"], seed=3)
    assert result.rows == {"Artist": 275, "Album": 347}
    with sqlite3.connect(tmp_path / "new.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM Album").fetchone() == (347,)
    sqlite3.connect(tmp_path / "existing.sqlite").close()  # an existing (empty) file
    again = hma_db.clone(CHINOOK_SQLITE, tmp_path / "existing.sqlite", include=["Artist"],
                         seed=3)  # paths as PathLike too
    assert again.rows == {"Artist": 275}
    with pytest.raises(ReflectionError, match="'nothere.sqlite' is not a database URL and no "
                                              "such file exists"):
        hma_db.clone("nothere.sqlite", "other.sqlite")
    assert not (tmp_path / "other.sqlite").exists()


# ------------------------------------------------------------------------------- row ceiling
def test_more_rows_than_the_ceiling_are_refused_before_any_work(tmp_path):
    target = tmp_path / "out.sqlite"
    result = run("clone", CHINOOK_SQLITE, target, "--scale", "1e6")
    assert result.exit_code == 2
    total = planned_rows(hma_db.reflect(CHINOOK_SQLITE), 1e6)  # 15,607 source rows, times 1e6
    assert total > 15_000_000_000  # (less the rows of tables kept as they are)
    assert error_line(result) == (
        f"error: The run would write {total:,} rows in total (scale 1e+06), more than the "
        "ceiling of 100,000,000; lower the scale, or raise the ceiling with --max-total-rows N "
        "(max_total_rows, 0 for none). Nothing was read or written.")
    assert not target.exists()
    result = run("clone", CHINOOK_SQLITE, target, "--include", "Artist", "--max-total-rows", "100")
    assert result.exit_code == 2 and "275 rows in total (scale 1)" in error_line(result)
    assert run("clone", CHINOOK_SQLITE, target, "--include", "Artist", "--max-total-rows", "0",
               "--scale", "0.5").exit_code == 0
    with pytest.raises(ConfigError, match="ceiling of 274"):
        hma_db.clone(CHINOOK_SQLITE, tmp_path / "b.sqlite", include=["Artist"], max_total_rows=274)
    assert MAX_TOTAL_ROWS == API_MAX_TOTAL_ROWS == 100_000_000


def test_plan_prints_the_rows_to_write_and_lists_the_ceiling(tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(f'source = "{CHINOOK_SQLITE}"\ntarget = "{tmp_path / "t.sqlite"}"\n'
                   'include = ["Artist", "Album"]\nscale = 2\nmax_total_rows = 1000\n')
    result = run("plan", job)
    assert result.exit_code == 1
    assert "rows    1,244 to write (ceiling 1,000)" in result.stdout
    assert error_line(result) == (
        "error: the run would fail: The run would write 1,244 rows in total (scale 2), more "
        "than the ceiling of 1,000; lower the scale, or raise the ceiling with --max-total-rows "
        "N (max_total_rows, 0 for none).")
    job.write_text(job.read_text().replace("1000", "0"))
    result = run("plan", job)
    assert result.exit_code == 0 and "rows    1,244 to write (ceiling none)" in result.stdout
    job.write_text(job.read_text().replace("max_total_rows = 0", "max_total_rows = 1000"))
    with pytest.raises(ConfigError, match="ceiling of 1,000"):  # run refuses what plan lists
        hma_db.run_job(hma_db.load_job(job))
    assert not (tmp_path / "t.sqlite").exists()


def test_sample_from_a_model_is_held_to_the_ceiling(tmp_path):
    model, target = tmp_path / "m.json", tmp_path / "out.sqlite"
    assert run("fit", CHINOOK_SQLITE, "-o", model, "--include", "Artist,Album").exit_code == 0
    result = run("sample", model, target, "--scale", "1e6")
    assert result.exit_code == 2
    assert error_line(result) == (
        "error: The run would write 622,000,000 rows in total (scale 1e+06), more than the "
        "ceiling of 100,000,000; lower the scale, or raise the ceiling with --max-total-rows N "
        "(max_total_rows, 0 for none). Nothing was written.")
    assert not target.exists()
    assert run("sample", model, target, "--scale", "2", "--max-total-rows", "1244").exit_code == 0
