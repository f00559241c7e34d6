"""The ``hma-db`` command line.

Every command is one call into the public API plus a printed summary (texts in
:mod:`hma_db.cli.output`); errors, exit codes, output settings and argument conversions are in
:mod:`hma_db.cli.base`.

Exit codes: 0 done, 1 the job failed, 2 usage or configuration error.
"""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path

import click

import hma_db  # the API's names load on first use: 'hma-db --help' stays quick
from hma_db import __version__
from hma_db.cli.base import (
    EPILOG,
    EXIT_FAILED,
    HmaDbGroup,
    Settings,
    check_output,
    check_row_ceiling,
    database_url,
    hide_passwords,
    output_options,
    sample_target,
    source_label,
    split_names,
    split_pairs,
    target_url,
)
from hma_db.cli.output import metadata_summary, report_summary, run_summary
from hma_db.errors import MetadataError

# The default ceiling of 'clone --max-total-rows' (hma_db.synthesizer.MAX_TOTAL_ROWS, repeated
# so that 'hma-db --help' does not import the synthesizer; a test checks they agree).
MAX_TOTAL_ROWS = 100_000_000

MAX_TOTAL_ROWS_OPTION = click.option(
    "--max-total-rows", type=click.IntRange(min=0), default=MAX_TOTAL_ROWS, show_default=True,
    metavar="N", help="Refuse, before any work, to write more rows than this in total (0: no "
                      "ceiling).")

DROP_CUT_KEYS = click.option(
    "--drop-cut-keys", is_flag=True,
    help="Keep a table that references one --include/--exclude leaves out, without that foreign "
         "key (refused by default).")


@click.group(cls=HmaDbGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=EPILOG + "\n\nRun 'hma-db COMMAND --help' for the options of a command.")
@click.version_option(__version__, "--version", prog_name="hma-db")
@click.option("-v", "--verbose", is_flag=True, help="Show debug logs and tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and warnings.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Clone a SQL database into a realistic, anonymized synthetic copy."""
    ctx.obj = Settings()
    ctx.obj.set_output(verbose, quiet)
    ctx.call_on_close(ctx.obj.close)


@cli.command("reflect", epilog=EPILOG,
             short_help="Summarize a database's schema; save it as metadata JSON.")
@click.argument("source")
@click.option("--schema", metavar="NAME", help="Schema to read (default: the connection's).")
@click.option("--include", multiple=True, metavar="TABLE",
              help="Read only these tables (repeat the option or separate names with commas).")
@click.option("--exclude", multiple=True, metavar="TABLE",
              help="Skip these tables (repeat the option or separate names with commas).")
@DROP_CUT_KEYS
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the metadata to this JSON file (SDV's multi-table layout).")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@output_options
@click.pass_obj
def reflect_command(settings: Settings, source: str, schema: str | None, include: tuple[str, ...],
                    exclude: tuple[str, ...], drop_cut_keys: bool, output: Path | None,
                    force: bool) -> None:
    """Read the schema of SOURCE and summarize it; save the metadata with -o.

    SOURCE is a database URL (postgresql+psycopg://user@host/db, mysql+pymysql://...,
    sqlite:///file.sqlite) or the path of a SQLite file.
    """
    check_output(output, force)
    metadata = hma_db.reflect(database_url(source), schema=schema, include=split_names(include),
                              exclude=split_names(exclude), drop_cut_keys=drop_cut_keys)
    try:
        metadata.validate()
    except MetadataError as exc:
        settings.warn(str(exc))
    settings.echo(metadata_summary(metadata, source_label(source)))
    if output is not None:
        if force and output.exists():
            output.unlink()
        metadata.save_to_json(output)
        settings.echo(f"\nWrote {output}")


@cli.command("clone", epilog=EPILOG,
             short_help="Clone a database into a synthetic copy: reflect, fit, sample, write.")
@click.argument("source")
@click.argument("target")
@click.option("--scale", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Rows per table relative to the source.")
@click.option("--seed", type=click.IntRange(min=0), help="The same seed gives the same rows.")
@click.option("--schema", metavar="NAME", help="Schema to read (default: the connection's).")
@click.option("--target-schema", metavar="NAME", help="Schema to write into.")
@click.option("--include", multiple=True, metavar="TABLE",
              help="Clone only these tables (repeat the option or separate names with commas).")
@click.option("--exclude", multiple=True, metavar="TABLE",
              help="Leave these tables out (repeat the option or separate names with commas).")
@click.option("--if-exists", type=click.Choice(["fail", "replace", "truncate", "append"]),
              default="fail", show_default=True, help="What to do with existing target tables.")
@click.option("--locales", multiple=True, metavar="LOCALE",
              help="Faker locales for personal data (default en_US; e.g. en_US,fr_CA).")
@click.option("--max-rows", type=click.IntRange(min=1), metavar="N",
              help="Fit on a referentially closed random subset of about N rows.")
@click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the quality and privacy report (HTML, or JSON for a .json name).")
@click.option("--fire-triggers", is_flag=True,
              help="Load existing tables that have triggers (truncate/append), triggers firing.")
@DROP_CUT_KEYS
@MAX_TOTAL_ROWS_OPTION
@click.option("--policy", "policies", multiple=True, metavar="TABLE.COLUMN=POLICY",
              help="Masking policy: TABLE.COLUMN=model|fake[:PROVIDER[:LOCALE]]|keep|hash|"
                   "mask[:last=N|:domain]|null|constant:VALUE, or TABLE=keep|empty|model.")
@click.option("--where", "filters", multiple=True, metavar="'TABLE: CONDITION'",
              help="Learn (and copy) only these rows of TABLE, e.g. "
                   "\"orders: order_date >= '2024-01-01'\".")
@click.option("--no-reference-tables", is_flag=True,
              help="Model small lookup tables too, instead of copying them as they are.")
@click.option("--no-found-rules", is_flag=True,
              help="Keep none of the rules found in the data (the source's CHECKs still hold).")
@click.option("--skip-rule", "skip_rules", multiple=True, metavar="RULE",
              help="Leave out this found rule, named as \"Track: Bytes > Milliseconds\" "
                   "(repeatable).")
@click.option("--cluster", metavar="ADDRESS",
              help="Fit and sample on this Dask cluster (tcp://host:8786); needs "
                   "hma_db[dask].")
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Fit and sample on N Dask worker processes on this machine; needs "
                   "hma_db[dask].")
@output_options
@click.pass_obj
def clone_command(settings: Settings, source: str, target: str, scale: float, seed: int | None,
                  schema: str | None, target_schema: str | None, include: tuple[str, ...],
                  exclude: tuple[str, ...], if_exists: str, locales: tuple[str, ...],
                  max_rows: int | None, report_file: Path | None, fire_triggers: bool,
                  drop_cut_keys: bool, max_total_rows: int, policies: tuple[str, ...],
                  filters: tuple[str, ...], no_reference_tables: bool, no_found_rules: bool,
                  skip_rules: tuple[str, ...], cluster: str | None,
                  workers: int | None) -> None:
    """Clone the database SOURCE into TARGET as synthetic data.

    Reflects SOURCE, learns it, samples SCALE times its rows and writes them into TARGET
    (tables created, or checked for drift when they exist). SOURCE is only read. Both are
    database URLs or paths of SQLite files (TARGET is created when missing).

    Progress goes to standard error: bars on a terminal, else one timestamped line per stage
    start and end (cron, CI); the summary goes to standard output.

    With --cluster or --workers the chunks are sampled on Dask workers, and the tables of one
    level of the hierarchy (and the columns of a wide table) fitted at once: the same rows as
    without them, for any number of workers. Into PostgreSQL or MariaDB each worker loads its
    chunks into staging tables and one transaction moves each chunk as it is staged; into
    SQLite they are written here. Either way the target changes in one commit or not at all.
    """
    if cluster and workers:
        raise click.UsageError("--cluster and --workers name two clusters; give one of them.")
    result = hma_db.clone(database_url(source), target_url(target), scale=scale, seed=seed,
                          schema=schema, target_schema=target_schema, include=split_names(include),
                          exclude=split_names(exclude), if_exists=if_exists,
                          locales=split_names(locales),
                          verbose=settings.interactive and not settings.quiet,
                          max_rows=max_rows, report=report_file, fire_triggers=fire_triggers,
                          on_stage=None if settings.interactive else settings.stage_line,
                          drop_cut_keys=drop_cut_keys, max_total_rows=max_total_rows,
                          policies=split_pairs(policies, "=", "--policy"),
                          where=split_pairs(filters, ":", "--where"),
                          reference_tables=not no_reference_tables, cluster=cluster or workers,
                          find_rules=not no_found_rules, skip_rules=list(skip_rules) or None)
    settings.echo(run_summary(result.rows, result.seconds, source_label(target),
                              notes=result.notes))
    if result.report is not None:
        settings.echo("\n" + report_summary(result.report, source_label(source),
                                            source_label(target)))
        settings.echo(f"Wrote {report_file}")


@cli.command("plan", epilog=EPILOG,
             short_help="Show what a job file would do, without writing anything.")
@click.argument("job_file", type=click.Path(dir_okay=False, path_type=Path))
@output_options
@click.pass_context
def plan_command(ctx: click.Context, job_file: Path) -> None:
    """Show what 'hma-db run JOB_FILE' would do, without writing anything.

    Connects to the source and the target, reflects the source with the job's overrides, checks
    existing target tables for drift, makes the checks a run makes before any work (room for
    unique values at the job's scale, key shapes, types in the target's dialect) and prints the
    tables in write order, their rows and how each column will be generated. Exits with 1 when
    the run would fail, with one line per problem.
    """
    settings: Settings = ctx.obj
    plan = hma_db.plan_job(hma_db.load_job(job_file))
    settings.echo(hma_db.format_plan(plan))
    if not plan.ok:
        for problem in plan.problems:  # one line each, as a log or a CI step shows them
            click.echo(hide_passwords(f"error: the run would fail: {problem}"), err=True)
        ctx.exit(EXIT_FAILED)


@cli.command("run", epilog=EPILOG,
             short_help="Run a job file: reflect, fit or reuse, sample, write.")
@click.argument("job_file", type=click.Path(dir_okay=False, path_type=Path))
@output_options
@click.pass_obj
def run_command(settings: Settings, job_file: Path) -> None:
    """Run a job file: reflect the source, fit (or reuse the saved model), sample, write.

    Progress goes to standard error (timestamped when it is not a terminal, e.g. under cron),
    the summary to standard output. See 'hma-db plan' to check a job first.
    """
    job = hma_db.load_job(job_file)
    result = hma_db.run_job(job, verbose=settings.interactive and not settings.quiet,
                            on_event=lambda event: settings.progress(event.message))
    model = f"{result.model} ({result.model_reason})" if result.model_reason else result.model
    settings.echo(run_summary(result.rows, result.seconds, source_label(job.target), model,
                              notes=result.notes))


@cli.command("fit", epilog=EPILOG,
             short_help="Learn a model of a database and save it to a file.")
@click.argument("source")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The model file: .json (recommended) or .pkl (SDV's name; 'sample' loads "
                   "a pickle only with --trust-pickle). Both hold the same plain data.")
@click.option("--metadata", "metadata_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Use this metadata JSON (e.g. from 'hma-db reflect', edited) instead of "
                   "reflecting SOURCE.")
@click.option("--schema", metavar="NAME", help="Schema to read (default: the connection's).")
@click.option("--include", multiple=True, metavar="TABLE",
              help="Fit only these tables (repeat the option or separate names with commas).")
@click.option("--exclude", multiple=True, metavar="TABLE",
              help="Leave these tables out (repeat the option or separate names with commas).")
@DROP_CUT_KEYS
@click.option("--locales", multiple=True, metavar="LOCALE",
              help="Faker locales for personal data (default en_US; e.g. en_US,fr_CA).")
@click.option("--seed", type=click.IntRange(min=0),
              help="Make fitting and every later 'hma-db sample' of this model reproducible.")
@click.option("--max-rows", type=click.IntRange(min=1), metavar="N",
              help="Fit on a referentially closed random subset of about N rows (the model "
                   "still samples the full table sizes).")
@click.option("--force", is_flag=True, help="Overwrite the model file if it exists.")
@output_options
@click.pass_obj
def fit_command(settings: Settings, source: str, output: Path, metadata_file: Path | None,
                schema: str | None, include: tuple[str, ...], exclude: tuple[str, ...],
                drop_cut_keys: bool, locales: tuple[str, ...], seed: int | None,
                max_rows: int | None, force: bool) -> None:
    """Learn a model of the database SOURCE and save it to a file.

    SOURCE is a database URL or the path of a SQLite file; it is only read.
    """
    check_output(output, force)
    if metadata_file is not None and (include or exclude):
        raise click.UsageError("--include/--exclude choose tables to reflect; with --metadata, "
                               "remove tables from the metadata file instead.")
    url, started = database_url(source), time.perf_counter()
    if metadata_file is not None:
        metadata = hma_db.Metadata.load_from_json(metadata_file)
        metadata.schema = schema
    else:
        metadata = hma_db.reflect(url, schema=schema, include=split_names(include),
                                  exclude=split_names(exclude), drop_cut_keys=drop_cut_keys)
    synthesizer = hma_db.HMASynthesizer(metadata, locales=split_names(locales) or ["en_US"], seed=seed,
                                        verbose=settings.interactive and not settings.quiet)
    synthesizer.fit_database(url, max_rows=max_rows)
    seconds = time.perf_counter() - started
    if force and output.exists():
        output.unlink()
    synthesizer.save(output)  # JSON for a .json name, else a pickle
    settings.echo(f"Fitted a model of {len(metadata.tables)} tables from {source_label(source)} "
                  f"in {seconds:.2f}s; saved it to {output}")


@cli.command("sample", epilog=EPILOG,
             short_help="Write synthetic tables sampled from a saved model.")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("target")
@click.option("--scale", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Rows per table relative to the source.")
@click.option("--seed", type=click.IntRange(min=0),
              help="Sample the rows of this seed: the same seed gives the same rows, in any "
                   "process.")
@click.option("--format", "file_format", type=click.Choice(["csv", "parquet"]),
              help="Write files into the directory TARGET, one <table>.csv or <table>.parquet "
                   "each [default for a directory: csv].")
@click.option("--schema", metavar="NAME", help="Schema to write into (default: the connection's).")
@click.option("--if-exists", type=click.Choice(["fail", "replace", "truncate", "append"]),
              default="fail", show_default=True,
              help="What to do with existing target tables (a directory: fail or replace).")
@click.option("--trust-pickle", is_flag=True,
              help="Load MODEL even if it is a pickle (.pkl): a pickle is executable input in "
                   "general, so give this only for a file from a trusted place.")
@MAX_TOTAL_ROWS_OPTION
@output_options
@click.pass_obj
def sample_command(settings: Settings, model: Path, target: str, scale: float, seed: int | None,
                   file_format: str | None, schema: str | None, if_exists: str,
                   trust_pickle: bool, max_total_rows: int) -> None:
    """Sample synthetic tables from a saved MODEL and write them into TARGET.

    \b
    TARGET is
      a database URL   postgresql+psycopg://app@staging/shop, sqlite:///out.sqlite
      a directory      with --format, or a path ending in / or an existing directory:
                       one <table>.csv (default) or <table>.parquet file per table
                       (created when missing; other files are left alone)
      any other path   a SQLite file (created when missing)

    Without --seed, a model fitted with --seed gives the same rows every time and one fitted
    without draws new rows each time. Nothing is written when the command fails.
    """
    kind, where = sample_target(target, file_format)
    if kind == "directory" and schema is not None:
        raise click.UsageError("--schema is for databases; TARGET is a directory.")
    if kind == "directory" and if_exists not in ("fail", "replace"):
        raise click.UsageError(f"--if-exists {if_exists} is for databases (it keeps a table's "
                               "definition or continues its keys); a directory takes fail or "
                               "replace.")
    synthesizer = hma_db.load_synthesizer(model, trust_pickle=trust_pickle)
    check_row_ceiling(sum(synthesizer.sample_sizes(scale).values()), scale, max_total_rows)
    synthesizer.verbose = settings.interactive and not settings.quiet
    if seed is None and synthesizer.seed is None:
        seed = secrets.randbits(64)  # the model's saved stream would repeat the same rows
    if seed is not None:
        synthesizer.reset_sampling(seed)
    started = time.perf_counter()
    if kind == "directory":
        file_format = file_format or "csv"
        rows = synthesizer.sample_to_directory(where, scale=scale, format=file_format,
                                               if_exists=if_exists)
        label = f"{target} ({'CSV' if file_format == 'csv' else 'Parquet'} files)"
    else:
        rows = synthesizer.sample_to_database(where, scale=scale, schema=schema,
                                              if_exists=if_exists)
        label = source_label(target)
    seconds = {"sample and write": time.perf_counter() - started}
    settings.echo(run_summary(rows, seconds, label))


@cli.command("report", epilog=EPILOG,
             short_help="Compare a synthetic database with the real one: quality and privacy.")
@click.argument("source")
@click.argument("target")
@click.option("--metadata", "metadata_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Use this metadata JSON instead of reflecting SOURCE.")
@click.option("--schema", metavar="NAME", help="Schema of SOURCE (default: the connection's).")
@click.option("--target-schema", metavar="NAME", help="Schema of TARGET (default: the connection's).")
@click.option("--max-rows", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Rows read per table and side, at most (larger tables are sampled).")
@click.option("-o", "--output", "--html", "html_file",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report as one self-contained HTML file with plots.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every finding as JSON.")
@click.option("--check", is_flag=True, help="Exit with 1 when the report does not pass.")
@click.option("--fail-under", type=click.FloatRange(0, 1), metavar="SCORE",
              help="Exit with 1 when the overall score is below SCORE (e.g. 0.8).")
@output_options
@click.pass_context
def report_command(ctx: click.Context, source: str, target: str, metadata_file: Path | None,
                   schema: str | None, target_schema: str | None, max_rows: int,
                   html_file: Path | None, json_file: Path | None, check: bool,
                   fail_under: float | None) -> None:
    """Evaluate the synthetic database TARGET against the real database SOURCE.

    Fidelity (SDMetrics' multi-table quality properties), validity (keys, references, ranges,
    checked as SQL in TARGET) and privacy (copied rows, personal data, rare categories). Both
    databases are only read.
    """
    settings: Settings = ctx.obj
    metadata = hma_db.Metadata.load_from_json(metadata_file) if metadata_file is not None else None
    report = hma_db.evaluate_databases(database_url(source), database_url(target), metadata,
                                       schema=schema, target_schema=target_schema, max_rows=max_rows)
    settings.echo(report_summary(report, source_label(source), source_label(target)))
    if html_file is not None:
        settings.echo(f"Wrote {report.save_html(html_file)}")
    if json_file is not None:
        report.to_json(json_file)
        settings.echo(f"Wrote {json_file}")
    if fail_under is not None and not report.score >= fail_under:  # NaN fails too
        click.echo(f"error: the score {report.score:.3f} is under --fail-under {fail_under}",
                   err=True)
        ctx.exit(EXIT_FAILED)
    if check and not report.passed:
        click.echo("error: the report did not pass its thresholds", err=True)
        ctx.exit(EXIT_FAILED)


@cli.command("clean", epilog=EPILOG,
             short_help="Remove what an interrupted clone, run or sample left in a target.")
@click.argument("target")
@click.option("--target-schema", metavar="NAME",
              help="The schema written into (on MariaDB, the database).")
@output_options
@click.pass_obj
def clean_command(settings: Settings, target: str, target_schema: str | None) -> None:
    """Remove what a killed or failed write left in TARGET.

    \b
    MariaDB     the tables, views, routines and database a killed run created
                (a run lists them in the table _hma_db_run as it goes), and the list
    SQLite      the temporary file .NAME.hma-tmp-PID of a write into a new file
                whose process is gone; a killed write's transaction, rolled back
    PostgreSQL  nothing of a write: the server rolls a killed load back
    and both    the staging tables _hma_stage_<run>_* of a killed cluster run
                (--workers, --cluster); a run's that is still loading, and every other
                table, stay

    Every clone, run and sample into TARGET does this first. Refused while another load is
    running into the MariaDB database. One warning line per thing removed.
    """
    from hma_db.target import clean_target  # here: 'hma-db --help' stays quick

    removed = clean_target(target_url(target), schema=target_schema)
    settings.echo(f"Removed {len(removed)} leftover(s) of interrupted writes from "
                  f"{source_label(target)}" if removed else
                  f"Nothing left by an interrupted write in {source_label(target)}")


def main(argv: list[str] | None = None) -> None:
    """The ``hma-db`` console script."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="hma-db")
