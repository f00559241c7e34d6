"""Opening databases: one place that turns what a caller passes into an Engine.

Public functions accept a URL string, a SQLAlchemy ``URL`` or an ``Engine``. An engine hma_db
created is disposed when the work is done; one the caller gave is never disposed. A plain path to
an existing file is taken as a SQLite database, so ``hma-db reflect chinook.sqlite`` works.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from hma_db.errors import HmaDbError

Source = str | sa.URL | sa.Engine


def safe_url(source: Source) -> str:
    """The URL of a source with its password hidden, for messages and logs."""
    if isinstance(source, sa.Engine):
        return source.url.render_as_string(hide_password=True)
    try:
        return sa.make_url(source).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "<an unparsable URL>" if "@" in str(source) else str(source)


def to_url(source: str | sa.URL, *, error: type[HmaDbError] = HmaDbError,
           must_exist: bool = True) -> sa.URL:
    """Parse a URL or a path to an existing SQLite file; raise ``error`` with a clear line.

    ``must_exist=False`` (for a target) accepts a SQLite URL whose file does not exist yet, as
    long as its directory does: SQLite creates the file on first write.
    """
    if isinstance(source, sa.URL):
        return source
    text = str(source)
    if "://" not in text and Path(text).is_file():
        return sa.make_url(f"sqlite:///{Path(text).resolve()}")
    try:
        url = sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise error(
            f"'{safe_url(text)}' is not a database URL; expected dialect+driver://user@host/db "
            "(e.g. postgresql+psycopg://app@localhost/shop) or the path of a SQLite file") from exc
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        if not url.query.get("mode") and not path.is_file() \
                and (must_exist or not path.parent.is_dir()):
            raise error(f"The SQLite file '{path}' does not exist.")
    return url


def create_engine(url: sa.URL, *, error: type[HmaDbError] = HmaDbError) -> sa.Engine:
    """``sqlalchemy.create_engine`` with a clear error when the driver is not installed."""
    try:
        return sa.create_engine(url)
    except (ModuleNotFoundError, sa.exc.NoSuchModuleError) as exc:
        hint = " (pip install 'hma_db[mysql]')" if url.get_backend_name() == "mysql" else ""
        raise error(f"No driver for '{safe_url(url)}': {exc}{hint}") from exc


@contextmanager
def engine_for(source: Source, *, error: type[HmaDbError] = HmaDbError,
               must_exist: bool = True) -> Iterator[sa.Engine]:
    """Yield an Engine for ``source``; dispose it afterwards only if it was created here.

    ``must_exist=False`` lets a SQLite target file be created (see :func:`to_url`).
    """
    if isinstance(source, sa.Engine):
        yield source
        return
    engine = create_engine(to_url(source, error=error, must_exist=must_exist), error=error)
    try:
        yield engine
    finally:
        engine.dispose()


def connect(engine: sa.Engine, *, error: type[HmaDbError] = HmaDbError) -> sa.Connection:
    """Open a connection; a refused or failed connection becomes one clear ``error`` line."""
    try:
        return engine.connect()
    except sa.exc.DBAPIError as exc:
        first_line = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise error(f"Cannot connect to {safe_url(engine)}: {first_line}") from exc
