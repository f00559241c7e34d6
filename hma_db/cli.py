"""The ``hma-db`` command line.

Every command is one call into the public API plus a printed summary. Errors are turned into
messages here, in one place (:class:`_Group`): an :class:`~hma_db.HmaDbError` becomes one
``error: ...`` line on standard error (followed by the list of problems when the error carries
one) and an exit code; a traceback is shown only with ``--verbose``. Passwords are hidden from
everything this module prints.

Exit codes: 0 done, 1 the job failed, 2 usage or configuration error.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import click
import sqlalchemy as sa

from hma_db import (
    ConfigError,
    HmaDbError,
    HMASynthesizer,
    Metadata,
    MetadataError,
    ModelFileError,
    ReflectionError,
    SynthesizerInputError,
    __version__,
    format_plan,
    load_job,
    load_synthesizer,
    plan_job,
    reflect,
    run_job,
)
from hma_db.cli_output import metadata_summary, run_summary

EXIT_DONE, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

EPILOG = """\b
Exit codes:
  0  done
  1  the job failed (the database refused, the data did not fit...)
  2  usage or configuration error (bad option, URL, file, schema or table name)"""

# Errors in what the user asked for, as opposed to a job that failed while running.
_USAGE_ERRORS = (ConfigError, MetadataError, SynthesizerInputError, ModelFileError)

# scheme://user:password@host -> scheme://user:***@host, for text that did not come through
# SQLAlchemy's URL rendering (a foreign exception message, a traceback).
_PASSWORD_IN_URL = re.compile(r"(\w[\w+.-]*://[^\s:/@]*):[^\s@/]*@")

_LOG_HANDLER_NAME = "hma-db-cli"


def hide_passwords(text: str) -> str:
    """Replace the password of every URL in ``text`` with ``***``."""
    return _PASSWORD_IN_URL.sub(r"\1:***@", text)


def _database_failed(exc: BaseException) -> bool:
    """True when the database itself failed (refused, timed out, denied) somewhere in the chain."""
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
    schema or table) unless the database itself failed (refused connection, denied query).
    """
    if isinstance(exc, _USAGE_ERRORS):
        return EXIT_USAGE
    if isinstance(exc, ReflectionError):
        return EXIT_FAILED if _database_failed(exc) else EXIT_USAGE
    return EXIT_FAILED


@dataclass
class _Settings:
    """The group's options, handed to every command."""

    verbose: bool = False
    quiet: bool = False

    def echo(self, text: str = "") -> None:
        """Print normal output (standard output), unless ``--quiet``."""
        if not self.quiet:
            click.echo(hide_passwords(text))

    def warn(self, text: str) -> None:
        """Print a warning on standard error (even with ``--quiet``)."""
        click.echo(hide_passwords(f"warning: {text}"), err=True)

    @property
    def interactive(self) -> bool:
        """True when standard error is a terminal (progress bars; no timestamps needed)."""
        return click.get_text_stream("stderr").isatty()

    def progress(self, message: str) -> None:
        """A progress line on standard error: plain on a terminal, timestamped for logs (cron)."""
        if self.quiet:
            return
        if not self.interactive:
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            message = f"{stamp} {message}"
        click.echo(hide_passwords(message), err=True)


class _PasswordHidingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return hide_passwords(super().format(record))


def _configure_logging(verbose: bool, quiet: bool) -> None:
    """Send hma_db's log records to standard error: DEBUG with -v, errors only with -q."""
    logger = logging.getLogger("hma_db")
    for handler in [h for h in logger.handlers if h.get_name() == _LOG_HANDLER_NAME]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(click.get_text_stream("stderr"))
    handler.set_name(_LOG_HANDLER_NAME)
    handler.setFormatter(_PasswordHidingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING)


def _report(exc: BaseException, verbose: bool) -> None:
    """Print an error: its traceback with ``--verbose``, then the ``error:`` line."""
    if verbose:
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        click.echo(hide_passwords(trace.rstrip()), err=True)
    if isinstance(exc, HmaDbError):
        message = str(exc).strip() or type(exc).__name__
    else:
        hint = "" if verbose else " (rerun with --verbose for the traceback)"
        message = f"unexpected {type(exc).__name__}: {str(exc).strip()}{hint}"
    click.echo(hide_passwords(f"error: {message}"), err=True)


class _Group(click.Group):
    """A click group that turns errors from any subcommand into a message and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except HmaDbError as exc:
            _report(exc, ctx.params.get("verbose", False))
            ctx.exit(exit_code(exc))
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no bare traceback
            _report(exc, ctx.params.get("verbose", False))
            ctx.exit(EXIT_FAILED)

    def list_commands(self, ctx: click.Context) -> list[str]:
        # Pipeline order, not alphabetical: the order a new user reads them in.
        order = ("reflect", "clone", "fit", "sample", "plan", "run", "report")
        rank = {name: i for i, name in enumerate(order)}
        return sorted(self.commands, key=lambda name: (rank.get(name, len(order)), name))


@click.group(cls=_Group, epilog=EPILOG + "\n\nRun 'hma-db COMMAND --help' for the options of a command.",
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="hma-db")
@click.option("-v", "--verbose", is_flag=True, help="Show debug logs and tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and warnings.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Clone a SQL database into a realistic, anonymized synthetic copy."""
    if verbose and quiet:
        raise click.UsageError("--verbose and --quiet exclude each other.")
    _configure_logging(verbose, quiet)
    ctx.obj = _Settings(verbose=verbose, quiet=quiet)


def _names(values: tuple[str, ...]) -> list[str] | None:
    """Table names from repeated and/or comma-separated options (``--include a,b --include c``)."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    return names or None


def _source_label(source: str) -> str:
    """How a source is shown: a URL without its password, or the path as given."""
    if "://" not in source:
        return source
    try:
        return sa.make_url(source).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return hide_passwords(source)


def _database_url(source: str) -> str:
    """SOURCE as a URL: a plain path to an existing file is taken as a SQLite database."""
    if "://" in source:
        return source
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"'{source}' is not a database URL and no such file exists; SOURCE is a "
                          "URL (dialect+driver://user@host/db) or the path of a SQLite file.")
    return f"sqlite:///{path.resolve()}"


def _target_url(target: str) -> str:
    """TARGET as a URL: a plain path is a SQLite file (created when it does not exist)."""
    if "://" in target:
        return target
    path = Path(target)
    if path.is_dir():
        raise ConfigError(f"'{target}' is a directory; TARGET is a database URL or the path of a "
                          "SQLite file (writing CSV or Parquet files is not supported).")
    return f"sqlite:///{path.resolve()}"


def _check_output(output: Path | None, force: bool) -> None:
    """Refuse an existing output file before any work is done (unless ``--force``)."""
    if output is not None and output.exists() and not force:
        raise ConfigError(f"'{output}' already exists; choose another file or pass --force.")


@cli.command("reflect", epilog=EPILOG,
             short_help="Summarize a database's schema; save it as metadata JSON.")
@click.argument("source")
@click.option("--schema", metavar="NAME", help="Schema to read (default: the connection's).")
@click.option("--include", multiple=True, metavar="TABLE",
              help="Read only these tables (repeat the option or separate names with commas).")
@click.option("--exclude", multiple=True, metavar="TABLE",
              help="Skip these tables (repeat the option or separate names with commas).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the metadata to this JSON file (SDV's multi-table layout).")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@click.pass_obj
def reflect_command(settings: _Settings, source: str, schema: str | None, include: tuple[str, ...],
                    exclude: tuple[str, ...], output: Path | None, force: bool) -> None:
    """Read the schema of SOURCE and summarize it; save the metadata with -o.

    SOURCE is a database URL (postgresql+psycopg://user@host/db, mysql+pymysql://...,
    sqlite:///file.sqlite) or the path of a SQLite file.
    """
    _check_output(output, force)
    metadata = reflect(_database_url(source), schema=schema, include=_names(include),
                       exclude=_names(exclude))
    try:
        metadata.validate()
    except MetadataError as exc:
        settings.warn(str(exc))
    settings.echo(metadata_summary(metadata, _source_label(source)))
    if output is not None:
        if force and output.exists():
            output.unlink()
        metadata.save_to_json(output)
        settings.echo(f"\nWrote {output}")


@cli.command("plan", epilog=EPILOG,
             short_help="Show what a job file would do, without writing anything.")
@click.argument("job_file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def plan_command(ctx: click.Context, job_file: Path) -> None:
    """Show what 'hma-db run JOB_FILE' would do, without writing anything.

    Connects to the source and the target, reflects the source with the job's overrides, checks
    existing target tables for drift and prints the tables in write order, their rows and how
    each column will be generated. Exits with 1 when the run would fail.
    """
    settings: _Settings = ctx.obj
    plan = plan_job(load_job(job_file))
    settings.echo(format_plan(plan))
    if not plan.ok:
        click.echo(hide_passwords("error: the run would fail: " + "; ".join(plan.problems)), err=True)
        ctx.exit(EXIT_FAILED)


@cli.command("run", epilog=EPILOG,
             short_help="Run a job file: reflect, fit or reuse, sample, write.")
@click.argument("job_file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def run_command(settings: _Settings, job_file: Path) -> None:
    """Run a job file: reflect the source, fit (or reuse the saved model), sample, write.

    Progress goes to standard error (timestamped when it is not a terminal, e.g. under cron),
    the summary to standard output. See 'hma-db plan' to check a job first.
    """
    job = load_job(job_file)
    result = run_job(job, verbose=settings.interactive and not settings.quiet,
                     on_event=lambda event: settings.progress(event.message))
    model = f"{result.model} ({result.model_reason})" if result.model_reason else result.model
    settings.echo(run_summary(result.rows, result.seconds, _source_label(job.target), model))


@cli.command("fit", epilog=EPILOG,
             short_help="Learn a model of a database and save it to a file.")
@click.argument("source")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The model file: .pkl (pickle, like SDV) or .json (plain data, loads without "
                   "running code).")
@click.option("--metadata", "metadata_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Use this metadata JSON (e.g. from 'hma-db reflect', edited) instead of "
                   "reflecting SOURCE.")
@click.option("--schema", metavar="NAME", help="Schema to read (default: the connection's).")
@click.option("--include", multiple=True, metavar="TABLE",
              help="Fit only these tables (repeat the option or separate names with commas).")
@click.option("--exclude", multiple=True, metavar="TABLE",
              help="Leave these tables out (repeat the option or separate names with commas).")
@click.option("--locales", multiple=True, metavar="LOCALE",
              help="Faker locales for personal data (default en_US; e.g. en_US,fr_CA).")
@click.option("--seed", type=click.IntRange(min=0),
              help="Make fitting and every later 'hma-db sample' of this model reproducible.")
@click.option("--force", is_flag=True, help="Overwrite the model file if it exists.")
@click.pass_obj
def fit_command(settings: _Settings, source: str, output: Path, metadata_file: Path | None,
                schema: str | None, include: tuple[str, ...], exclude: tuple[str, ...],
                locales: tuple[str, ...], seed: int | None, force: bool) -> None:
    """Learn a model of the database SOURCE and save it to a file.

    SOURCE is a database URL or the path of a SQLite file; it is only read.
    """
    _check_output(output, force)
    if metadata_file is not None and (include or exclude):
        raise click.UsageError("--include/--exclude choose tables to reflect; with --metadata, "
                               "remove tables from the metadata file instead.")
    url, started = _database_url(source), time.perf_counter()
    if metadata_file is not None:
        metadata = Metadata.load_from_json(metadata_file)
        metadata.schema = schema
    else:
        metadata = reflect(url, schema=schema, include=_names(include), exclude=_names(exclude))
    synthesizer = HMASynthesizer(metadata, locales=_names(locales) or ["en_US"], seed=seed,
                                 verbose=settings.interactive and not settings.quiet)
    synthesizer.fit_database(url)
    seconds = time.perf_counter() - started
    if force and output.exists():
        output.unlink()
    synthesizer.save(output, format="json" if output.suffix.lower() == ".json" else "pickle")
    settings.echo(f"Fitted a model of {len(metadata.tables)} tables from {_source_label(source)} "
                  f"in {seconds:.2f}s; saved it to {output}")


@cli.command("sample", epilog=EPILOG,
             short_help="Write synthetic tables sampled from a saved model.")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("target")
@click.option("--scale", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Rows per table relative to the source.")
@click.option("--schema", metavar="NAME", help="Schema to write into (default: the connection's).")
@click.option("--if-exists", type=click.Choice(["fail", "replace", "truncate", "append"]),
              default="fail", show_default=True, help="What to do with existing target tables.")
@click.pass_obj
def sample_command(settings: _Settings, model: Path, target: str, scale: float,
                   schema: str | None, if_exists: str) -> None:
    """Sample synthetic tables from a saved MODEL and write them into TARGET.

    TARGET is a database URL or the path of a SQLite file (created when missing). A model
    fitted with --seed gives the same rows every time.
    """
    synthesizer = load_synthesizer(model)
    synthesizer.verbose = settings.interactive and not settings.quiet
    started = time.perf_counter()
    rows = synthesizer.sample_to_database(_target_url(target), scale=scale, schema=schema,
                                          if_exists=if_exists)
    seconds = {"sample and write": time.perf_counter() - started}
    settings.echo(run_summary(rows, seconds, _source_label(target)))


def main(argv: list[str] | None = None) -> None:
    """The ``hma-db`` console script."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="hma-db")
