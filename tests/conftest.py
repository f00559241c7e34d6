"""Shared fixtures: the sample databases, and fresh PostgreSQL / MariaDB databases.

Server tests use ``HMA_DB_TEST_POSTGRES_URL`` and ``HMA_DB_TEST_MYSQL_URL`` (an administrative
URL: the fixtures create and drop their own databases), falling back to the loopback defaults.
When no server answers they skip with the reason, unless ``HMA_DB_REQUIRE_SERVERS=1`` (CI), which
turns the skip into a failure.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
CHINOOK_SQLITE = ROOT / "examples" / "chinook.sqlite"
CHINOOK_SNAKE_SQLITE = DATA / "chinook" / "chinook_snake_case.sqlite"
CHINOOK_POSTGRES_SQL = DATA / "chinook" / "chinook_postgresql.sql"
NORTHWIND_SQLITE = DATA / "northwind" / "northwind.sqlite"
NORTHWIND_POSTGRES_SQL = DATA / "northwind" / "northwind_postgresql.sql"

POSTGRES_URL = os.environ.get(
    "HMA_DB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MYSQL_URL = os.environ.get("HMA_DB_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
REQUIRE_SERVERS = os.environ.get("HMA_DB_REQUIRE_SERVERS") == "1"

_counter = itertools.count()
_wider_setups = 0  # > 0 while a class-, module- or session-scoped fixture is being set up


def _server_or_skip(url: str, kind: str) -> sa.Engine:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect():
            pass
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "no server"
        reason = (f"no {kind} server reachable at "
                  f"{sa.make_url(url).render_as_string(hide_password=True)}: "
                  f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        if REQUIRE_SERVERS:
            pytest.fail(reason + " (HMA_DB_REQUIRE_SERVERS=1 makes this a failure)")
        pytest.skip(reason)
    return engine


class _Databases:
    """Creates uniquely named databases on one server and drops them when they are done with.

    On PostgreSQL a database made by a test (in its body or a function-scoped fixture) is dropped
    as that test ends; one made by a wider fixture (``chinook_postgres``...) lives to the end of
    the session, as every database does on MariaDB. The reason is that each ``DROP DATABASE``
    forces an immediate checkpoint, which writes and fsyncs every dirty page on the server, while
    the pages of the database being dropped are thrown away unwritten. Dropping all of the
    session's databases at its end made the first ``DROP`` write out the pages of all the others
    (thousands of files to fsync), only to delete them a moment later: a teardown of seconds, more
    the more databases the run made and the slower the disk. Dropped as soon as its test ends, a
    database's pages mostly never reach the disk, and each checkpoint has little left to write.
    """

    live: list[_Databases] = []

    def __init__(self, admin: sa.Engine):
        self.admin = admin
        self.postgres = admin.dialect.name == "postgresql"
        self.created: list[str] = []  # dropped at the end of the session
        self.of_test: list[str] = []  # dropped at the end of the current test
        _Databases.live.append(self)

    def new(self, hint: str = "db") -> str:
        """Create an empty database and return its URL (as a string, password included)."""
        name = f"hma_test_{re.sub(r'[^a-z0-9]', '_', hint.lower())}_{os.getpid()}_{next(_counter)}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        (self.of_test if self.postgres and not _wider_setups else self.created).append(name)
        return self.admin.url.set(database=name).render_as_string(hide_password=False)

    def _drop(self, names: list[str]) -> None:
        if not names:
            return
        with self.admin.connect() as conn:
            for name in names:
                # FORCE ends the sessions still connected, and waits for them to exit.
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}"
                                     + (" WITH (FORCE)" if self.postgres else ""))

    def drop_test_databases(self) -> None:
        names, self.of_test = self.of_test, []
        self._drop(names)

    def drop_all(self) -> None:
        _Databases.live.remove(self)
        names, self.created = self.of_test + self.created, []
        self.of_test = []
        self._drop(names)
        self.admin.dispose()


class _WiderFixtures:
    """Counts the wider-than-function fixtures being set up: a database they make outlives the
    test that first asked for them (also when asked through ``request.getfixturevalue``).
    Registered as a plugin, since a hook in this conftest would miss the session-scoped
    fixtures (pytest calls their hooks for the root directory only)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef):
        global _wider_setups
        wider = fixturedef.scope != "function"
        _wider_setups += wider
        try:
            return (yield)
        finally:
            _wider_setups -= wider


def pytest_configure(config):
    if not config.pluginmanager.has_plugin("hma_db_wider_fixtures"):
        config.pluginmanager.register(_WiderFixtures(), "hma_db_wider_fixtures")


@pytest.fixture(autouse=True)
def _drop_the_tests_databases():
    """Drop the databases the test made as it ends (after its other function-scoped fixtures,
    which may still use them; before the wider fixtures' teardown)."""
    yield
    for databases in _Databases.live:
        databases.drop_test_databases()


@pytest.fixture(scope="session")
def postgres_databases():
    """``postgres_databases.new("hint")`` -> URL of a fresh empty PostgreSQL database."""
    dbs = _Databases(_server_or_skip(POSTGRES_URL, "PostgreSQL"))
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def mysql_databases():
    """``mysql_databases.new("hint")`` -> URL of a fresh empty MariaDB/MySQL database."""
    dbs = _Databases(_server_or_skip(MYSQL_URL, "MariaDB/MySQL"))
    yield dbs
    dbs.drop_all()


def run_postgres_script(url: str, path: Path) -> None:
    """Run a psql script in the database at ``url``, skipping its database-level commands
    (DROP/CREATE DATABASE and ``\\c``) so it loads into the database we created."""
    lines = [
        line for line in path.read_text(encoding="utf-8").splitlines()
        if not re.match(r"^\s*(\\c\b|DROP DATABASE|CREATE DATABASE)", line, re.I)
    ]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        # The driver's own execute: no parameters, so '%' in the data is not a placeholder.
        conn.connection.driver_connection.execute("\n".join(lines))
    engine.dispose()


@pytest.fixture(scope="session")
def chinook_postgres(postgres_databases) -> str:
    """URL of a PostgreSQL database loaded with Chinook (snake_case names)."""
    url = postgres_databases.new("chinook")
    run_postgres_script(url, CHINOOK_POSTGRES_SQL)
    return url


@pytest.fixture(scope="session")
def northwind_postgres(postgres_databases) -> str:
    """URL of a PostgreSQL database loaded with Northwind."""
    url = postgres_databases.new("northwind")
    run_postgres_script(url, NORTHWIND_POSTGRES_SQL)
    return url


@pytest.fixture
def chinook_sqlite_copy(tmp_path) -> str:
    """URL of a private copy of the Chinook SQLite file (safe to write to)."""
    target = tmp_path / "chinook.sqlite"
    target.write_bytes(CHINOOK_SQLITE.read_bytes())
    return f"sqlite:///{target}"


def query_frame(url: str, sql: str):
    """The rows of ``sql`` on the database at ``url`` as a DataFrame (one connection, closed)."""
    import pandas as pd

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text(sql), conn)
    engine.dispose()
    return frame


def fit_and_sample(path, seed: int = 3):
    """Reflect, read and fit the SQLite file at ``path``; (metadata, real tables, one sample)."""
    from hma_db import HMASynthesizer, read_tables, reflect

    url = f"sqlite:///{path}"
    metadata = reflect(url)
    real = read_tables(url, metadata)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=seed)
    synthesizer.fit(real)
    return metadata, real, synthesizer.sample()



def scaled_rows(metadata, table: str, scale: float, rows: int | None = None) -> int:
    """The rows ``table`` gets at ``scale``: a kept table (a reference table by default) its
    own rows, an empty table none, any other ``round(rows * scale)`` (``rows`` defaults to the
    metadata's row count)."""
    from hma_db.model import target_rows

    policy = metadata.tables[table].get("policy")
    rows = metadata.row_counts[table] if rows is None else rows
    return rows if policy == "keep" else 0 if policy == "empty" else target_rows(rows, scale)
