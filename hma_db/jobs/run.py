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

import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hma_db.errors import (
    HmaDbError,
    ReflectionError,
)
from hma_db.jobs.cache import cached_model, save_model
from hma_db.jobs.file import Job, check_target_schema
from hma_db.jobs.setup import apply_overrides, job_synthesizer, named_in_job
from hma_db.pipeline import CloneHooks, CloneResult, run_clone
from hma_db.progress import stage
from hma_db.schema import Metadata
from hma_db.synthesizer import DEFAULT_CHUNK_ROWS, HMASynthesizer

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
                  chunk_rows=chunk_rows, verbose=verbose, fire_triggers=job.fire_triggers,
                  reference_tables=job.reference_tables, cluster=job.cluster,
                  drop_cut_keys=job.drop_cut_keys, max_total_rows=job.max_total_rows)
    except ReflectionError as exc:
        named = named_in_job(job, exc)
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
