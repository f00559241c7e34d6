"""A job's settings applied to the clone: column overrides on the reflected metadata, the
synthesizer's locales, seed and per-table parameters, and errors named by their line in the job
file."""

from __future__ import annotations

from hma_db.errors import (
    ConfigError,
    HmaDbError,
    MetadataError,
    ReflectionError,
    SynthesizerInputError,
)
from hma_db.jobs.file import Job, suggestion
from hma_db.pipeline import configure_synthesizer
from hma_db.schema import BASIC_SDTYPES, Metadata, apply_policies, split_column
from hma_db.source import check_max_rows, reflect
from hma_db.synthesizer import HMASynthesizer


def apply_overrides(metadata: Metadata, job: Job) -> None:
    """Apply the job's ``[columns."table.column"]`` entries to reflected metadata, in place.

    Raises:
        ConfigError: the column does not exist, or is a key (keys are always generated).
    """
    for override in job.columns:
        where = job.where("columns", override.key)
        found = split_column(metadata.tables, override.key)
        if found is None:
            known = [f"{t}.{c}" for t in metadata.tables for c in metadata.tables[t]["columns"]]
            raise ConfigError(f"{where}: [columns.\"{override.key}\"] names no column of the "
                              f"source{suggestion(override.key, known)}")
        table, column = found
        if column in metadata.primary_key(table) or column in metadata.foreign_key_columns(table):
            raise ConfigError(f"{where}: '{table}.{column}' is a key column; key values are "
                              "always generated (unique and referentially valid), so they take "
                              "no sdtype, provider or categorical setting.")
        if override.policy is not None:
            metadata.tables[table]["columns"][column]["policy"] = override.policy
        if override.provider:
            metadata.update_column(column, table, sdtype=override.provider, pii=True)
        elif override.categorical:
            metadata.update_column(column, table, sdtype="categorical", pii=False)
        elif override.sdtype:
            metadata.update_column(column, table, sdtype=override.sdtype,
                                   pii=override.sdtype not in BASIC_SDTYPES)
        _drop_generator(metadata.tables[table]["columns"][column])
    try:
        apply_policies(metadata.tables, job.table_policies, job.where_filters)
    except MetadataError as exc:
        table = next((t for t in (*job.table_policies, *job.where_filters)
                      if f"'{t}'" in str(exc)), None)
        raise ConfigError(f"{job.where('tables', table) if table else job.where()}: [tables."
                          f"{table}] names no table of the source"
                          f"{suggestion(table or '', list(metadata.tables))}") from exc
    metadata.take_updated()  # the job file records these edits: no "save the metadata" warning


def _drop_generator(column: dict) -> None:
    # A generated-by-type column given a modeled sdtype must be modeled, not generated.
    if column.get("sdtype") != "unknown":
        column.pop("generator", None)


def job_synthesizer(metadata: Metadata, job: Job, *, verbose: bool = False) -> HMASynthesizer:
    """An unfitted synthesizer set up with the job's locales, seed and per-table parameters.

    ``plan`` and ``run`` both build the job's synthesizer here, so a plan refuses what a run
    would refuse.

    Raises:
        ConfigError: ``[tables.NAME]`` or ``max_rows`` names a missing table or column, with
            its line.
    """
    if job.max_rows is not None:
        try:
            check_max_rows(metadata, job.max_rows)
        except SynthesizerInputError as exc:  # max_rows names a table the source lacks
            raise ConfigError(f"{job.where('max_rows')}: {exc}") from exc
    for table in job.table_parameters:
        if table not in metadata.tables:
            raise ConfigError(f"{job.where('tables', table)}: [tables.{table}] names no table "
                              f"of the source{suggestion(table, list(metadata.tables))}")
    try:
        return configure_synthesizer(metadata, locales=job.locales, seed=job.seed,
                                     verbose=verbose, table_parameters=job.table_parameters,
                                     find_rules=job.find_rules, skip_rules=job.skip_rules)
    except SynthesizerInputError as exc:
        table = next((t for t in job.table_parameters if f"'{t}" in str(exc)), None)
        where = job.where("tables", table) if table else job.where()
        raise ConfigError(f"{where}: {exc}") from exc


def reflect_job(source_engine, job: Job) -> Metadata:
    """Reflect the job's source and apply its column overrides (``hma-db plan``'s view)."""
    try:
        metadata = reflect(source_engine, schema=job.source_schema, include=job.include,
                           exclude=job.exclude, drop_cut_keys=job.drop_cut_keys,
                           reference_tables=job.reference_tables)
    except ReflectionError as exc:
        named = named_in_job(job, exc)
        if named is exc:
            raise
        raise named from exc
    apply_overrides(metadata, job)
    return metadata


def named_in_job(job: Job, exc: ReflectionError) -> HmaDbError:
    """A table name of ``include`` or ``exclude`` that the source lacks is the job file's
    mistake: say where it is."""
    option = str(exc).split(" ", 1)[0]
    if option in ("include", "exclude"):
        return ConfigError(f"{job.where(option)}: {exc}")
    return exc
