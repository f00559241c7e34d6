"""Running a job file: the scheduled-seeding pipeline with a model cache.

:func:`run_job` is :func:`hma_db.clone` (reflect, read, fit, sample, write) with the job file's
settings applied on the way, through :class:`~hma_db.pipeline.CloneHooks`: column overrides
on the reflected metadata, per-table parameters, locales, scale, seed, ``if_exists``. With
``[model] path`` it keeps the fitted model between runs and fits again only when it must:

- no model file yet;
- the model does not match the job any more: its *fingerprint* (a hash of the metadata after the
  overrides, the per-table parameters, the locales and the seed, all of which the model stores)
  differs from the one the job gives now, which is how a source schema change is noticed;
- the model is older than ``max_age`` (counted from its fit date, which it stores).

A file that is not an hma_db model is an error, never silently overwritten. A report that
cannot be made is recorded in the result; the rows are written all the same.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hma_db.errors import (
    ConfigError,
    HmaDbError,
    ModelFileError,
    ReflectionError,
    SynthesizerInputError,
)
from hma_db.jobs.file import Job, check_target_schema, suggestion
from hma_db.pipeline import CloneHooks, CloneResult, configure_synthesizer, run_clone
from hma_db.progress import stage
from hma_db.schema import BASIC_SDTYPES, Metadata
from hma_db.source import check_max_rows, reflect
from hma_db.synthesizer import DEFAULT_CHUNK_ROWS, HMASynthesizer, format_for, load_synthesizer

logger = logging.getLogger(__name__)


@dataclass
class JobEvent:
    """Something a running job reports, for progress display and logs.

    ``kind`` is one of ``stage_started`` and ``stage_finished`` (with ``stage`` and, when
    finished, ``seconds``), ``model_fitted``, ``model_reused``, ``model_saved``,
    ``report_saved``, ``report_failed``, and
    ``rows_written`` (``table``, ``done`` and ``total`` rows of the table over all chunks, after
    each batch of the write; these
    are passed to ``on_event`` but not kept in :attr:`JobResult.events`).
    """

    kind: str
    message: str
    stage: str | None = None
    seconds: float | None = None
    table: str | None = None
    done: int | None = None
    total: int | None = None


@dataclass
class JobResult(CloneResult):
    """What a job did: rows written per table, seconds per stage, and what became of the model.

    Stages, in order: ``reflect``, ``load model``, then ``read``, ``fit`` and ``save model``
    when the model is fitted, then ``sample``, ``write`` and, with a ``report`` key, ``report``.
    ``model`` is ``"fitted"`` or ``"reused"``; ``model_reason`` says why (e.g. "the model is
    9.0d old, older than max_age 7.0d"). ``report_score`` and ``report_passed`` come from the
    report; a report that could not be made leaves ``report_error`` (the rows are written all
    the same, so the run does not fail for it).
    """

    model: str = "fitted"
    model_reason: str = ""
    report_path: Path | None = None
    report_score: float | None = None
    report_passed: bool | None = None
    report_error: str | None = None
    events: list[JobEvent] = field(default_factory=list)


# ------------------------------------------------------------------------- metadata edits
def _resolve_column(metadata: Metadata, key: str) -> tuple[str, str] | None:
    """``"table.column"`` split at the dot that names an existing column (names may hold dots)."""
    for i, char in enumerate(key):
        if char == "." and key[:i] in metadata.tables \
                and key[i + 1:] in metadata.tables[key[:i]]["columns"]:
            return key[:i], key[i + 1:]
    return None


def apply_overrides(metadata: Metadata, job: Job) -> None:
    """Apply the job's ``[columns."table.column"]`` entries to reflected metadata, in place.

    Raises:
        ConfigError: the column does not exist, or is a key (keys are always generated).
    """
    for override in job.columns:
        where = job.where("columns", override.key)
        found = _resolve_column(metadata, override.key)
        if found is None:
            known = [f"{t}.{c}" for t in metadata.tables for c in metadata.tables[t]["columns"]]
            raise ConfigError(f"{where}: [columns.\"{override.key}\"] names no column of the "
                              f"source{suggestion(override.key, known)}")
        table, column = found
        if column in metadata.primary_key(table) or column in metadata.foreign_key_columns(table):
            raise ConfigError(f"{where}: '{table}.{column}' is a key column; key values are "
                              "always generated (unique and referentially valid), so they take "
                              "no sdtype, provider or categorical setting.")
        if override.provider:
            metadata.update_column(table, column, sdtype=override.provider, pii=True)
        elif override.categorical:
            metadata.update_column(table, column, sdtype="categorical", pii=False)
        elif override.sdtype:
            metadata.update_column(table, column, sdtype=override.sdtype,
                                   pii=override.sdtype not in BASIC_SDTYPES)
        _drop_generator(metadata.tables[table]["columns"][column])


def _drop_generator(column: dict) -> None:
    # A generated-by-type column given a modeled sdtype must be modeled, not generated.
    if column.get("sdtype") != "unknown":
        column.pop("generator", None)


def job_synthesizer(metadata: Metadata, job: Job, *, verbose: bool = False) -> HMASynthesizer:
    """An unfitted synthesizer set up with the job's locales, seed and per-table parameters.

    Raises:
        ConfigError: ``[tables.NAME]`` names a missing table or column, with its line.
    """
    for table in job.table_parameters:
        if table not in metadata.tables:
            raise ConfigError(f"{job.where('tables', table)}: [tables.{table}] names no table "
                              f"of the source{suggestion(table, list(metadata.tables))}")
    try:
        return configure_synthesizer(metadata, locales=job.locales, seed=job.seed,
                                     verbose=verbose, table_parameters=job.table_parameters)
    except SynthesizerInputError as exc:
        table = next((t for t in job.table_parameters if f"'{t}" in str(exc)), None)
        where = job.where("tables", table) if table else job.where()
        raise ConfigError(f"{where}: {exc}") from exc


def reflect_job(source_engine, job: Job) -> Metadata:
    """Reflect the job's source and apply its column overrides (``hma-db plan``'s view)."""
    try:
        metadata = reflect(source_engine, schema=job.source_schema, include=job.include,
                           exclude=job.exclude)
    except ReflectionError as exc:
        named = _named_in_job(job, exc)
        if named is exc:
            raise
        raise named from exc
    apply_overrides(metadata, job)
    return metadata


# ---------------------------------------------------------------------------- model cache
def fingerprint(synthesizer: HMASynthesizer) -> str:
    """A hash of what a model was (or will be) fitted for: metadata, parameters, locales, seed.

    Example:
        >>> fingerprint(load_synthesizer("model.pkl")) == fingerprint(job_synthesizer(md, job))
    """
    metadata = synthesizer.get_metadata()
    state = {"metadata": metadata.to_dict(),
             "parameters": {t: synthesizer.get_table_parameters(t) for t in sorted(metadata.tables)},
             "locales": list(synthesizer.locales), "seed": synthesizer.seed}
    text = json.dumps(state, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _age(synthesizer: HMASynthesizer, path: Path) -> dt.timedelta:
    fitted = synthesizer.get_info().get("last_fit_date")
    if fitted:
        when = dt.datetime.fromisoformat(fitted)
    else:  # a model saved before it was fitted has no date: use the file's
        when = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc) - when


def _days(delta: dt.timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def cached_model(job: Job, wanted: HMASynthesizer) -> tuple[HMASynthesizer | None, str]:
    """The saved model when it can be reused, else None; and the reason, for the log.

    Raises:
        ModelFileError: ``model.path`` exists but is not an hma_db model.
    """
    path = job.model_path
    if path is None:
        return None, "no model cache in the job file"
    if not path.exists():
        return None, f"no saved model at {path} yet"
    model = load_synthesizer(path)
    if not model.get_info().get("is_fit"):
        return None, f"the model at {path} was never fitted"
    if fingerprint(model) != fingerprint(wanted):
        return None, ("the source schema or the job's column, table, locale or seed settings "
                      "changed since the model was fitted")
    age = _age(model, path)
    if job.model_max_age is not None and age > job.model_max_age:
        return None, (f"the model is {_days(age)} old, older than max_age "
                      f"{_days(job.model_max_age)}")
    return model, f"the model at {path} matches the source schema and is {_days(age)} old"


def save_model(synthesizer: HMASynthesizer, path: Path) -> None:
    """Save next to the old model, then swap, so a crash never leaves half a model file.

    ``.json`` files get the JSON format, anything else a pickle. The folder is created.

    Raises:
        ModelFileError: the file cannot be written.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        synthesizer.save(temporary, format=format_for(path))
        os.replace(temporary, path)
    except OSError as exc:
        raise ModelFileError(f"Cannot save the model to '{path}': {exc.strerror or exc}") from exc
    finally:
        temporary.unlink(missing_ok=True)


# ------------------------------------------------------------------------------- running
class _JobHooks(CloneHooks):
    """What a job adds to :func:`hma_db.pipeline.run_clone`: the job's column overrides and
    settings (errors named with their line), the model cache, events and a report that may
    fail without failing the run."""

    def __init__(self, job: Job, result: JobResult, on_event: Callable[[JobEvent], None] | None,
                 verbose: bool):
        self.job, self.result, self.on_event, self.verbose = job, result, on_event, verbose
        self._written: dict[str, int] = {}
        self._totals: dict[str, int] = {}  # rows each table will have, once the model is known

    def emit(self, kind: str, message: str, **details) -> None:
        event = JobEvent(kind, message, **details)
        if kind.startswith("model"):  # stages are logged by progress.stage already
            logger.info("%s", message)
        self.result.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def stage(self, name: str, seconds: float | None) -> None:
        if seconds is None:
            self.emit("stage_started", f"{name}...", stage=name)
        else:
            self.emit("stage_finished", f"{name} done in {seconds:.2f}s", stage=name,
                      seconds=seconds)

    @contextmanager
    def _timed(self, name: str) -> Iterator[None]:
        self.stage(name, None)
        with stage(self.result.seconds, name):
            yield
        self.stage(name, self.result.seconds[name])

    def edit_metadata(self, metadata: Metadata) -> None:
        apply_overrides(metadata, self.job)

    def make_synthesizer(self, metadata: Metadata, make) -> HMASynthesizer:
        if self.job.max_rows is not None:
            try:
                check_max_rows(metadata, self.job.max_rows)
            except SynthesizerInputError as exc:  # max_rows names a table the source lacks
                raise ConfigError(f"{self.job.where('max_rows')}: {exc}") from exc
        return job_synthesizer(metadata, self.job, verbose=self.verbose)

    def reuse(self, wanted: HMASynthesizer) -> HMASynthesizer | None:
        with self._timed("load model"):
            model, reason = cached_model(self.job, wanted)
        self.result.model_reason = reason
        if model is None:
            self.emit("model_fitted", f"fitting a new model: {reason}")
            self._prepare_sampling(wanted)
            return None
        model.verbose = self.verbose
        self.result.model = "reused"
        self.emit("model_reused", f"reusing the saved model: {reason}")
        self._prepare_sampling(model)
        return model

    def fitted(self, synthesizer: HMASynthesizer) -> None:
        self._prepare_sampling(synthesizer)
        if self.job.model_path is not None:
            with self._timed("save model"):
                save_model(synthesizer, self.job.model_path)
            self.emit("model_saved", f"saved the model to {self.job.model_path}")

    def _prepare_sampling(self, synthesizer: HMASynthesizer) -> None:
        if not synthesizer.get_info()["is_fit"]:
            return  # called again once fitted
        # Same seed, same rows: whether the model was fitted now or loaded from the cache. No
        # seed: every run draws new rows, even from a cached model whose stream was saved.
        seed = self.job.seed
        synthesizer.reset_sampling(seed if seed is not None else secrets.randbits(64))
        self._totals = synthesizer.sample_sizes(self.job.scale)

    def rows_written(self, table: str, done: int, total: int) -> None:
        """Rows of ``table`` written so far, over every chunk: a chunked write reports
        ``done`` out of each chunk's ``total``, counting from zero in each."""
        before = self._written.get(table, 0)
        if done >= total:
            self._written[table] = before + total
        if self.on_event is not None:
            whole = self._totals.get(table, total)
            self.on_event(JobEvent("rows_written", f"{table}: {before + done}/{whole} rows",
                                   stage="write", table=table, done=before + done, total=whole))

    def report_failed(self, error: Exception) -> bool:
        if not isinstance(error, (HmaDbError, OSError)):
            return False
        self.result.report_error = str(error)
        logger.warning("the report could not be made: %s", error)
        self.emit("report_failed", f"the report could not be made: {error}")
        return True


def run_job(job: Job, *, verbose: bool = False,
            on_event: Callable[[JobEvent], None] | None = None,
            chunk_rows: int | None = DEFAULT_CHUNK_ROWS) -> JobResult:
    """Run a job: reflect, fit (or reuse the cached model), sample and write into the target.

    Args:
        job: from :func:`hma_db.load_job`.
        verbose: show the synthesizer's progress bars.
        on_event: called with each :class:`JobEvent` as it happens (stages, model decisions).
        chunk_rows: sample and write about this many rows of the largest table at a time, in
            one transaction (None: all at once); memory depends on it, not on ``scale``.

    Returns:
        A :class:`JobResult`: rows written per table, seconds per stage, whether the model was
        fitted or reused and why, and the events.

    Raises:
        ConfigError: the job names a table or column the source does not have.
        ModelFileError: ``model.path`` is not an hma_db model.
        WriteError: the target is unreachable, is the source, has drifted, or refused the rows
            (the target is left as it was).

    Example:
        >>> result = run_job(load_job("examples/chinook-sqlite.toml"))
        >>> result.rows["Invoice"], result.model
        (412, 'fitted')
    """
    check_target_schema(job)
    result = JobResult()
    hooks = _JobHooks(job, result, on_event, verbose)
    try:
        run_clone(job.source, job.target, hooks=hooks, result=result, scale=job.scale,
                  seed=job.seed, schema=job.source_schema, target_schema=job.target_schema,
                  include=job.include, exclude=job.exclude, if_exists=job.if_exists,
                  locales=job.locales, report=job.report, max_rows=job.max_rows,
                  chunk_rows=chunk_rows, verbose=verbose)
    except ReflectionError as exc:
        named = _named_in_job(job, exc)
        if named is exc:
            raise
        raise named from exc
    if result.report is not None:
        path, found = job.report, result.report
        result.report_path, result.report_score = path, found.score
        result.report_passed = found.passed
        hooks.emit("report_saved", f"report saved to {path}: score {found.score:.2f}, "
                                   f"{'passed' if found.passed else 'below its thresholds'}")
    return result


def _named_in_job(job: Job, exc: ReflectionError) -> HmaDbError:
    """A table name of ``include`` or ``exclude`` that the source lacks is the job file's
    mistake: say where it is."""
    option = str(exc).split(" ", 1)[0]
    if option in ("include", "exclude"):
        return ConfigError(f"{job.where(option)}: {exc}")
    return exc
