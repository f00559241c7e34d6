"""Opening databases and hiding passwords: the one place for both.

Public functions accept a URL string, a SQLAlchemy ``URL`` or an ``Engine``. An engine hma_db
created is disposed when the work is done; one the caller gave is never disposed. A plain path
(no ``://``) is taken as a SQLite database, so ``hma-db reflect chinook.sqlite`` and
``hma_db.clone(source, "new.sqlite")`` work alike: a source must exist (never a new empty
database), a target is created when missing. An error in a URL or path (unparsable, unknown
driver, missing file) carries ``bad_url = True``: the command line exits 2 for it, as for any
other bad argument.

Every URL shown to a person goes through :func:`safe_url` (SQLAlchemy's rendering, password
hidden), and every free text that may hold one (a driver's message, a traceback) through
:func:`hide_passwords`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from hma_db.errors import HmaDbError

Source = str | sa.URL | sa.Engine

_URL_HINT = ("expected dialect+driver://user@host/database, e.g. "
             "postgresql+psycopg://app@localhost/shop or sqlite:///path/to/file.sqlite, "
             "or the path of a SQLite file")

# scheme://user:password@host -> scheme://user:***@host. The password may hold anything but '@'
# and white space, as SQLAlchemy's own URL parser allows ('/' and ':' included).
_PASSWORD_IN_URL = re.compile(r"(\w[\w+.-]*://[^\s:/@]*):[^\s@]*@")


def hide_passwords(text: str) -> str:
    """Replace the password of every URL in ``text`` with ``***``.

    Example:
        >>> hide_passwords("could not connect to postgresql://app:s3cret@db/shop")
        'could not connect to postgresql://app:***@db/shop'
    """
    return _PASSWORD_IN_URL.sub(r"\1:***@", text)


def safe_url(source: Source) -> str:
    """The URL of a source with its password hidden, for messages and logs."""
    if isinstance(source, sa.Engine):
        source = source.url
    try:
        return sa.make_url(source).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        text = str(source)
        masked = hide_passwords(text)
        # An '@' the pattern does not recognise may still follow a password: show nothing.
        return masked if masked != text or "@" not in text else "<an unparsable URL>"


def first_line(exc: BaseException, url: sa.URL | None = None) -> str:
    """The first line of a database error (the driver's own message when there is one), with
    ``url``'s password and any password in a URL hidden."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    text = lines[0] if lines else type(orig).__name__
    if url is not None and url.password:
        text = text.replace(str(url.password), "***")
    return hide_passwords(text)


def url_error(error: type[HmaDbError], message: str) -> HmaDbError:
    """``error(message)`` marked as a mistake in a URL or path (``bad_url``: exit 2 on the
    command line), whatever the error class the caller reports it as."""
    found = error(message)
    found.bad_url = True  # type: ignore[attr-defined]
    return found


def path_url(path: str | os.PathLike, *, error: type[HmaDbError] = HmaDbError,
             must_exist: bool = True) -> sa.URL:
    """The SQLite URL of a plain path: an existing file, or (``must_exist=False``) one to create."""
    path = Path(path)
    if path.is_dir():
        raise url_error(error, f"'{path}' is a directory; expected a database URL or the path of "
                               "a SQLite file")
    if must_exist and not path.is_file():
        raise url_error(error, f"'{path}' is not a database URL and no such file exists; "
                               f"{_URL_HINT}")
    return sa.URL.create("sqlite", database=str(path.resolve()))


def to_url(source: str | sa.URL, *, error: type[HmaDbError] = HmaDbError,
           must_exist: bool = True) -> sa.URL:
    """Parse a URL or a path to a SQLite file; raise ``error`` with a clear line.

    ``must_exist=False`` (for a target) accepts a SQLite URL or path whose file does not exist
    yet, as long as its directory does: SQLite creates the file on first write.
    """
    if isinstance(source, sa.URL):
        url = source
    elif isinstance(source, (str, os.PathLike)):
        text = str(source)
        if "://" not in text:
            url = path_url(text, error=error, must_exist=must_exist)
        else:
            try:
                url = sa.make_url(text)
            except (sa.exc.ArgumentError, ValueError) as exc:
                raise url_error(error, f"'{safe_url(text)}' is not a valid database URL; "
                                       f"{_URL_HINT}") from exc
    else:
        raise error(f"Expected a database URL (str or sqlalchemy.URL) or an Engine; found "
                    f"{type(source).__name__}")
    if url.get_backend_name() == "sqlite":
        _check_sqlite_file(url, error, must_exist)
    return url


def _check_sqlite_file(url: sa.URL, error: type[HmaDbError], must_exist: bool) -> None:
    """Refuse a SQLite file that is missing (connecting would create it) or not a file."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or url.query.get("mode"):
        return  # in memory, or a URI whose mode says what to do
    path = Path(database)
    if path.is_file() or (not must_exist and not path.exists() and path.parent.is_dir()):
        return
    what = ("is not a file" if path.exists() else "does not exist" if must_exist
            else "cannot be created: its directory does not exist")
    raise url_error(error, f"The SQLite database file '{path}' {what}; check the path in the "
                           f"URL '{safe_url(url)}'")


def create_engine(url: sa.URL, *, error: type[HmaDbError] = HmaDbError) -> sa.Engine:
    """``sqlalchemy.create_engine`` with one clear line for an unknown or missing driver."""
    try:
        return sa.create_engine(url)
    except sa.exc.NoSuchModuleError as exc:
        raise url_error(error, f"Unknown database dialect or driver '{url.drivername}' in "
                               f"'{safe_url(url)}'; {_URL_HINT}") from exc
    except ImportError as exc:
        hint = " (for MariaDB/MySQL use mysql+pymysql://, installed by pip install " \
            "'hma_db[mysql]')" if url.get_backend_name() in ("mysql", "mariadb") else ""
        raise url_error(error, f"The database driver for '{safe_url(url)}' is not installed: "
                               f"{exc}{hint}") from exc
    except sa.exc.ArgumentError as exc:
        raise url_error(error, f"Invalid database URL '{safe_url(url)}': "
                               f"{first_line(exc, url)}") from exc


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
    except sa.exc.SQLAlchemyError as exc:
        raise error(f"Cannot connect to {safe_url(engine)}: {first_line(exc, engine.url)}") \
            from exc


# ------------------------------------------------------------------ driver errors, one line
_ROLE = "_hma_db_database"  # the attribute a driver error is tagged with: (role, safe URL)
_DRIVER_ERRORS = ("OperationalError", "InterfaceError", "DatabaseError", "Error")
# The drivers' words for a server that went away (psycopg, pymysql, sqlite3): a lost connection,
# as opposed to a statement the server refused.
_LOST = re.compile(r"connect|closed|terminat|lost|gone away|timed? ?out|shut ?down|reset by|"
                   r"broken pipe|unable to open|disk i/o", re.I)


def _driver_error(exc: BaseException) -> BaseException | None:
    """The driver error in ``exc``'s chain: SQLAlchemy's wrapper, or a raw DB-API error (a
    ``COPY`` through the driver's own cursor is not wrapped)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, sa.exc.DBAPIError):
            return current
        module = type(current).__module__.split(".")[0]
        if module in ("psycopg", "psycopg2", "pymysql", "MySQLdb", "sqlite3") \
                and type(current).__name__ in _DRIVER_ERRORS + ("ProgrammingError",):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def tag_driver_errors(engine: sa.Engine | type[sa.Engine], role: str | None) -> Iterator[None]:
    """Mark every driver error raised through ``engine`` (or every engine, given the class) with
    ``role`` ("source", "target") and the engine's URL, so one line can name the database."""
    def tag(context) -> None:
        error, known = context.sqlalchemy_exception, None
        if error is not None:
            known = getattr(error, _ROLE, None)
        if error is not None and (known is None or (known[0] is None and role is not None)):
            setattr(error, _ROLE, (role, safe_url(context.engine)))

    sa.event.listen(engine, "handle_error", tag)
    try:
        yield
    finally:
        sa.event.remove(engine, "handle_error", tag)


def driver_error_line(exc: BaseException, role: str | None = None,
                      url: str | None = None) -> str | None:
    """One line for a lost connection or another driver error in ``exc``'s chain: which database
    (the tagged one, else ``role`` and ``url``) and what to do; None when there is none."""
    found = _driver_error(exc)
    if found is None:
        return None
    role, url = getattr(found, _ROLE, None) or (role, url)
    which = " ".join(p for p in ("The", role, "database", url and f"{url}") if p)
    text = first_line(found)
    if _LOST.search(text) or isinstance(found, sa.exc.InterfaceError) \
            or type(found).__name__ == "InterfaceError":
        return (f"{which} failed or the connection was lost ({type(found).__name__}: {text}); "
                "check that the server is up and reachable, then run again")
    return (f"{which} refused a statement ({type(found).__name__}: {text}); check that its "
            "schema did not change during the run and that its user may read it, then run again")
