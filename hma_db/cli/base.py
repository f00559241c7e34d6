"""The machinery every ``hma-db`` command shares.

Errors become messages here, in one place (:class:`HmaDbGroup`): an :class:`~hma_db.HmaDbError`
becomes one ``error: ...`` line on standard error (followed by the list of problems when the error
carries one) and an exit code; a traceback is shown only with ``--verbose``. Passwords are hidden
from everything the command prints. Also here: the output settings (``--quiet``, progress lines),
logging, and the conversions of SOURCE / TARGET / table-name arguments.

Exit codes: 0 done, 1 the job failed, 2 usage or configuration error.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from hma_db import (
    ConfigError,
    HmaDbError,
    MetadataError,
    ModelFileError,
    ReflectionError,
    SynthesizerInputError,
)

EXIT_DONE, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

EPILOG = """\b
Exit codes:
  0  done
  1  the job failed (the database refused, the data did not fit...)
  2  usage or configuration error (bad option, URL, file, schema or table name)"""

# Errors in what the user asked for, as opposed to a job that failed while running.
_USAGE_ERRORS = (ConfigError, MetadataError, SynthesizerInputError, ModelFileError)

# hma_db.engines (the one password masker) imports SQLAlchemy: it is imported where it is used,
# so that 'hma-db --help' does not wait for it.


def hide_passwords(text: str) -> str:
    """Replace the password of every URL in ``text`` with ``***`` (see
    :func:`hma_db.engines.hide_passwords`)."""
    from hma_db import engines

    return engines.hide_passwords(text)


def _database_failed(exc: BaseException) -> bool:
    """True when the database itself failed (refused, timed out, denied) somewhere in the chain."""
    import sqlalchemy as sa

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, (sa.exc.DBAPIError, ConnectionError, TimeoutError)):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def exit_code(exc: HmaDbError) -> int:
    """The exit code for an error: 2 when the request was wrong, 1 when the job failed.

    A :class:`~hma_db.ReflectionError` counts as a usage error (bad URL, missing file, unknown
    schema or table) unless the database itself failed (refused connection, denied query); so
    does any error in a URL or path (``bad_url``, set by :mod:`hma_db.engines`), source or target.
    """
    if isinstance(exc, _USAGE_ERRORS) or getattr(exc, "bad_url", False):
        return EXIT_USAGE
    if isinstance(exc, ReflectionError):
        return EXIT_FAILED if _database_failed(exc) else EXIT_USAGE
    return EXIT_FAILED


@dataclass
class Settings:
    """The output options (``-v``/``-q``, given before or after the subcommand), handed to
    every command."""

    verbose: bool = False
    quiet: bool = False
    undo_logging: Callable[[], None] | None = None

    def set_output(self, verbose: bool, quiet: bool) -> None:
        """Set ``--verbose``/``--quiet`` (once more when a subcommand repeats them) and send
        hma_db's logs to standard error at that level."""
        verbose, quiet = verbose or self.verbose, quiet or self.quiet
        if verbose and quiet:
            raise click.UsageError("--verbose and --quiet exclude each other.")
        if self.undo_logging is not None:
            self.undo_logging()
        self.verbose, self.quiet = verbose, quiet
        self.undo_logging = configure_logging(verbose, quiet)

    def close(self) -> None:
        """Leave logging as it was before the command (see :func:`configure_logging`)."""
        if self.undo_logging is not None:
            self.undo_logging()
            self.undo_logging = None

    def echo(self, text: str = "") -> None:
        """Print normal output (standard output), unless ``--quiet``.

        A reader that stops early (``hma-db reflect ... | head``) closes the pipe: the rest of
        the output goes nowhere and the command still finishes its work (the ``-o`` file).
        """
        if self.quiet:
            return
        try:
            click.echo(hide_passwords(text))
            sys.stdout.flush()
        except BrokenPipeError:
            # Python would report the pipe again when it flushes at exit; point the file
            # descriptor at /dev/null instead (the recipe of the signal module's documentation).
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            self.quiet = True

    def warn(self, text: str) -> None:
        """Print a warning on standard error (even with ``--quiet``)."""
        click.echo(hide_passwords(f"warning: {text}"), err=True)

    @property
    def interactive(self) -> bool:
        """True when standard error is a terminal (progress bars; no timestamps needed)."""
        return sys.stderr.isatty()

    def progress(self, message: str) -> None:
        """A progress line on standard error: plain on a terminal, timestamped for logs (cron)."""
        if self.quiet:
            return
        if not self.interactive:
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            message = f"{stamp} {message}"
        click.echo(hide_passwords(message), err=True)


    def stage_line(self, name: str, seconds: float | None) -> None:
        """A stage's start (``seconds`` None) or end as a progress line, as ``run`` prints."""
        self.progress(f"{name}..." if seconds is None else f"{name} done in {seconds:.2f}s")


class _PasswordHidingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return hide_passwords(super().format(record))


def configure_logging(verbose: bool, quiet: bool) -> Callable[[], None]:
    """Send hma_db's log records to standard error: DEBUG with -v, errors only with -q.

    Returns the function that undoes it, since a command may run inside a larger process
    (tests, a notebook) whose logging must be left as it was.
    """
    logger = logging.getLogger("hma_db")
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING)
    handler.setFormatter(_PasswordHidingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    previous_level = logger.level
    if verbose:
        logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)

    return undo


def _output_flag(verbose: bool):
    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        settings = ctx.find_object(Settings)
        if value and settings is not None:
            settings.set_output(verbose=verbose, quiet=not verbose)
    return callback


def output_options(command: Callable) -> Callable:
    """``-v/--verbose`` and ``-q/--quiet`` on a subcommand too, so ``hma-db clone SRC TGT
    --verbose`` works as ``hma-db --verbose clone SRC TGT`` does (they set the same
    :class:`Settings`)."""
    command = click.option("-q", "--quiet", is_flag=True, expose_value=False,
                           callback=_output_flag(False),
                           help="Print only errors and warnings.")(command)
    return click.option("-v", "--verbose", is_flag=True, expose_value=False,
                        callback=_output_flag(True),
                        help="Show debug logs and tracebacks.")(command)


def report_error(exc: BaseException, verbose: bool) -> None:
    """Print an error: its traceback with ``--verbose``, then the ``error:`` line."""
    if verbose:
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        click.echo(hide_passwords(trace.rstrip()), err=True)
    from hma_db import engines

    if isinstance(exc, HmaDbError):
        message = str(exc).strip() or type(exc).__name__
    elif (line := engines.driver_error_line(exc)) is not None:
        message = line  # a lost connection is no bug of hma_db: say which database, what to do
    else:
        hint = "" if verbose else " (rerun with --verbose for the traceback)"
        message = f"unexpected {type(exc).__name__}: {str(exc).strip()}{hint}"
    click.echo(hide_passwords(f"error: {message}"), err=True)


def _verbose(ctx: click.Context) -> bool:
    """``--verbose`` given before or after the subcommand."""
    settings = ctx.obj
    return settings.verbose if isinstance(settings, Settings) else bool(
        ctx.params.get("verbose", False))


class HmaDbGroup(click.Group):
    """A click group that turns errors from any subcommand into a message and an exit code."""

    def invoke(self, ctx: click.Context):
        import sqlalchemy as sa

        from hma_db import engines

        try:
            # Every driver error says which database raised it (see report_error).
            with engines.tag_driver_errors(sa.engine.Engine, None):
                return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except HmaDbError as exc:
            report_error(exc, _verbose(ctx))
            ctx.exit(exit_code(exc))
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no bare traceback
            report_error(exc, _verbose(ctx))
            ctx.exit(EXIT_FAILED)

    def list_commands(self, ctx: click.Context) -> list[str]:
        # Pipeline order, not alphabetical: the order a new user reads them in.
        order = ("reflect", "clone", "fit", "sample", "plan", "run", "report")
        rank = {name: i for i, name in enumerate(order)}
        return sorted(self.commands, key=lambda name: (rank.get(name, len(order)), name))


def split_names(values: tuple[str, ...]) -> list[str] | None:
    """Names from a repeated and/or comma-separated option (``--include a,b --include c``)."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    return names or None


def split_pairs(values: tuple[str, ...], separator: str, option: str) -> dict[str, str] | None:
    """``KEY<separator>VALUE`` options as a dict (``--policy orders.ship_name=fake:company``,
    ``--where "orders: order_date >= '2024-01-01'"``); a value without the separator is a
    usage error naming the option."""
    pairs = {}
    for value in values:
        key, found, rest = value.partition(separator)
        if not found or not key.strip() or not rest.strip():
            raise click.BadParameter(f"expected KEY{separator}VALUE; found {value!r}",
                                     param_hint=option)
        pairs[key.strip()] = rest.strip()
    return pairs or None


def source_label(source: str) -> str:
    """How a source is shown: a URL without its password, or the path as given."""
    if "://" not in source:
        return source
    from hma_db import engines

    return engines.safe_url(source)


def database_url(source: str) -> str:
    """SOURCE as a URL: a plain path to an existing file is taken as a SQLite database (the
    API's own rule, :func:`hma_db.engines.path_url`)."""
    if "://" in source:
        return source
    from hma_db import engines

    return engines.path_url(source, error=ConfigError).render_as_string(hide_password=False)


def target_url(target: str) -> str:
    """TARGET as a URL: a plain path is a SQLite file (created when it does not exist)."""
    if "://" in target:
        return target
    if Path(target).is_dir():
        raise ConfigError(f"'{target}' is a directory; TARGET is a database URL or the path of a "
                          "SQLite file ('hma-db sample' writes CSV or Parquet files into a "
                          "directory).")
    from hma_db import engines

    return engines.path_url(target, error=ConfigError, must_exist=False).render_as_string(
        hide_password=False)


_SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")


def sample_target(target: str, file_format: str | None) -> tuple[str, str | Path]:
    """``("database", url)`` or ``("directory", path)`` for the TARGET of ``hma-db sample``.

    A URL is a database; ``--format``, a trailing slash or an existing directory mean a
    directory of files; any other path is a SQLite file.
    """
    directory = target.endswith(("/", os.sep)) or Path(target).is_dir()
    if "://" in target:
        if file_format is not None:
            raise click.UsageError("--format writes files into a directory; TARGET is a "
                                   "database URL.")
        return "database", target
    if file_format is None and not directory:
        return "database", target_url(target)
    path = Path(target)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"'{target}' is a file; --format writes one file per table into a "
                          "directory: choose a directory (created when missing).")
    if not directory and path.suffix.lower() in _SQLITE_SUFFIXES:
        raise click.UsageError(f"'{target}' names a SQLite file, but --format writes files into "
                               "a directory: drop --format, or choose a directory name.")
    return "directory", path


def check_row_ceiling(total: int, scale: float, max_total_rows: int) -> None:
    """Refuse to write more than ``--max-total-rows`` rows before any work (the rule of
    :func:`hma_db.synthesizer.row_ceiling_problem`, which ``clone`` and ``run`` apply)."""
    from hma_db.synthesizer import row_ceiling_problem

    problem = row_ceiling_problem(total, scale, max_total_rows)
    if problem:
        raise ConfigError(problem + " Nothing was written.")


def check_output(output: Path | None, force: bool) -> None:
    """Refuse an existing output file before any work is done (unless ``--force``)."""
    if output is not None and output.exists() and not force:
        raise ConfigError(f"'{output}' already exists; choose another file or pass --force.")
