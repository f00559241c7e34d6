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
    """Creates uniquely named databases on one server and drops them at the end of the session."""

    def __init__(self, admin: sa.Engine):
        self.admin = admin
        self.created: list[str] = []

    def new(self, hint: str = "db") -> str:
        """Create an empty database and return its URL (as a string, password included)."""
        name = f"hma_test_{re.sub(r'[^a-z0-9]', '_', hint.lower())}_{os.getpid()}_{next(_counter)}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        self.created.append(name)
        return self.admin.url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            if self.admin.dialect.name == "postgresql":
                conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = ANY(:names) AND pid <> pg_backend_pid()"),
                    {"names": self.created})
            for name in self.created:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        self.admin.dispose()


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
