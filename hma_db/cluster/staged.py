"""Sample and load on the workers: each worker loads its own chunks into staging tables of the
target, and one transaction here moves them into the real tables (:mod:`hma_db.target.staging`).

Why: with the chunks coming back to one writer, the writer is the floor of the clone (TPC-H
SF1: 67 s of writing in a 139 s run, and slower with workers as the chunks travel back;
``docs/scaling.md``). Here only a batch id and row counts come back; the rows go from each
worker straight into the target, in parallel, and each chunk's move (one ``INSERT ...
SELECT`` per table inside the target) runs here while the workers stage the next ones.

Chunk 0 (the resident tables, drawn from the synthesizer's own stream) is sampled here and
written by the load's transaction itself, while the workers sample and stage the others; the
rows are the same as without a cluster and for any number of workers (each chunk seeded by the
run's seed and its number, and moved in chunk order).

Used for PostgreSQL and MariaDB targets; SQLite takes one writer at a time, and ``append`` (its
key shifting needs every table at once), a run in one chunk, and a source with CHECKs the target
must evaluate on each chunk keep the one writer here (:func:`hma_db.cluster.ClusterSampling`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa

from hma_db.engines import connect
from hma_db.errors import SamplingError, WriteError
from hma_db.synthesizer import (
    DEFAULT_CHUNK_ROWS,
    ChunkSampler,
    Resident,
    TargetChecks,
    sample_and_write,
)
from hma_db.target import STAGE_COLUMNS, StagedChunk, StageJob, pause_point, write_chunks

logger = logging.getLogger(__name__)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _stage_on_worker(sampler: ChunkSampler, number: int, resident: Resident, job: StageJob
                     ) -> StagedChunk:
    """The task: sample chunk ``number`` and load it into the staging tables (a test can stop
    it at the pause points, before and after its rows are staged, to kill the worker)."""
    pause_point("worker_chunk")
    chunk, _ = sampler.chunk(number, resident)
    staged = job.stage(number, chunk)
    pause_point("worker_staged")
    return staged


def _count_on_worker(sampler: ChunkSampler, number: int, resident: Resident) -> dict[str, int]:
    """The task of :func:`sample_only`: sample chunk ``number``, keep only its row counts."""
    chunk, _ = sampler.chunk(number, resident)
    return {t: len(f) for t, f in chunk.items()}


class WorkerChunks:
    """The chunks after the first, sampled and staged on the workers of ``client``: what
    :func:`hma_db.write_chunks` takes as ``staged``."""

    def __init__(self, client: Any, sampler: ChunkSampler, resident: Resident,
                 seconds: dict[str, float]):
        self.client, self.sampler, self.resident, self.seconds = client, sampler, resident, seconds
        self.futures: list = []
        self.scattered: list = []
        self.rows: dict[str, int] = {}
        self.done_at: float | None = None  # when the last chunk was staged

    def start(self, job: StageJob) -> None:
        """Send the sampler, chunk 0's resident state and the job to every worker once, then
        one task per chunk."""
        self.scattered = self.client.scatter([self.sampler, self.resident, job], broadcast=True)
        sampler, resident, remote_job = self.scattered
        self.futures = [self.client.submit(_stage_on_worker, sampler, number, resident,
                                           remote_job, key=f"hma-db-stage-{number}-{id(self)}",
                                           pure=False)
                        for number in range(1, len(self.sampler))]

    def ready(self) -> Iterator[StagedChunk]:
        """Each staged chunk in chunk order, as soon as it and the chunks before it are
        staged (the load's transaction moves it while the workers stage the next ones); the
        first chunk that fails stops the run in one line."""
        import distributed

        started = time.perf_counter()
        total, numbers = len(self.sampler), {f.key: n for n, f in enumerate(self.futures, 1)}
        done: dict[int, StagedChunk] = {}
        following = 1
        for future in distributed.as_completed(self.futures):
            number = numbers[future.key]
            try:
                done[number] = future.result()
            except Exception as exc:
                raise SamplingError(f"Sampling and staging chunk {number} of {total} on the Dask "
                                    f"cluster failed ({_reason(exc)}); nothing was written.") \
                    from exc
            future.release()
            while following in done:
                chunk = done.pop(following)
                for table, count in chunk.rows.items():
                    self.rows[table] = self.rows.get(table, 0) + count
                if following == total - 1:
                    self.done_at = time.perf_counter()
                    self.seconds["stage"] = self.done_at - started
                    logger.info("cluster: %d chunk(s) sampled and staged on %d worker(s)",
                                total - 1, len(self.client.scheduler_info()["workers"]))
                following += 1
                yield chunk

    def cancel(self) -> None:
        if self.futures:
            self.client.cancel(self.futures)
        if self.scattered:
            self.client.cancel(self.scattered)
        self.futures, self.scattered = [], []


def stages_on_workers(target_engine, synthesizer, *, if_exists: str, chunk_rows: int | None,
                      client: Any = None, schema: str | None = None) -> bool:
    """Whether the workers can load their chunks themselves (:func:`staging_refusal` finds no
    reason against it)."""
    return staging_refusal(target_engine, synthesizer, if_exists=if_exists,
                           chunk_rows=chunk_rows, client=client, schema=schema) is None


def staging_refusal(target_engine, synthesizer, *, if_exists: str, chunk_rows: int | None,
                    client: Any = None, schema: str | None = None) -> str | None:
    """Why the workers should not load their chunks into staging tables, or None (see the
    module docstring): a SQLite target, ``append``, one chunk; a column named like the staging
    tables' own, which the one writer takes; a CHECK evaluated on each chunk; on PostgreSQL,
    a target that cannot hold the staging tables' locks or where this user may not create
    tables (:func:`_postgres_refusal`). Decided before the work; the clone's summary says it."""
    if target_engine.dialect.name == "sqlite":
        return "a SQLite target takes one writer at a time"
    if if_exists == "append":
        return "if_exists=append writes into the existing tables, which staging would replace"
    if chunk_rows is None:
        return "the run is one chunk"
    if target_engine.dialect.name == "postgresql" and client is not None:
        reason = _postgres_refusal(target_engine, synthesizer, client, schema)
        if reason:
            return reason
    metadata = synthesizer.get_metadata()
    taken = [(t, c) for t, spec in metadata.tables.items() for c in spec["columns"]
             if c in STAGE_COLUMNS]
    if taken:
        return (f"table '{taken[0][0]}' has a column named {taken[0][1]}, as the staging "
                "tables' own (rename it in the target to stage)")
    checked = [t for t, exprs in TargetChecks(synthesizer, target_engine).exprs.items() if exprs]
    if checked:
        return (f"the CHECK constraints of table '{checked[0]}' are evaluated on each chunk "
                "before it is written")
    return None


# Locks a staging table can cost the load's transaction until it commits: the table, its BRIN
# index, and its TOAST table and index when a value is stored out of line.
_LOCKS_PER_TABLE = 4


def _postgres_refusal(target_engine, synthesizer, client: Any, schema: str | None) -> str | None:
    """Why the workers should not stage into this PostgreSQL target, or None.

    Each worker thread has its own staging tables (one per table, and one per set of keys set
    after the rows) and the load's transaction holds a lock on each until it commits, in a
    lock table that the whole server shares (``max_locks_per_transaction`` x
    (``max_connections`` + ``max_prepared_transactions``)): half of it at most. The staging
    tables go into the target schema, or the user's current one when the run creates it."""
    threads = max(1, sum(client.nthreads().values()))
    metadata = synthesizer.get_metadata()
    tables = len(metadata.tables) + len(metadata.deferred_relationships()) + len(
        metadata.self_references())
    needed = _LOCKS_PER_TABLE * tables * (threads + 1)
    with connect(target_engine, error=WriteError) as conn:
        per, connections = conn.exec_driver_sql(
            "SELECT current_setting('max_locks_per_transaction')::int, "
            "current_setting('max_connections')::int + "
            "current_setting('max_prepared_transactions')::int").one()
        where = conn.execute(sa.text(
            "SELECT COALESCE((SELECT nspname FROM pg_namespace WHERE nspname = :s), "
            "current_schema())"), {"s": schema}).scalar()
        allowed = where is not None and conn.execute(
            sa.text("SELECT has_schema_privilege(:n, 'CREATE')"), {"n": where}).scalar()
    if needed > per * connections // 2:
        return (f"staging {tables} table(s) on {threads} worker thread(s) needs about {needed} "
                f"locks in one transaction, over half of the server's {per * connections} "
                f"(raise max_locks_per_transaction to {-(-2 * needed // connections)} to stage)")
    if not allowed:
        return f"this user cannot create tables in schema '{where}' for the staging tables"
    return None


def cluster_sample_and_write(client: Any, synthesizer, target_engine,
                             seconds: dict[str, float], *, scale: float, schema: str | None,
                             if_exists: str, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                             progress: Callable[[str, int, int], None] | None = None,
                             fire_triggers: bool = False) -> dict[str, int]:
    """Sample chunk 0 here and the others on the workers, which load them into staging tables;
    move every chunk into ``target_engine`` in one transaction. ``seconds`` gets ``sample``
    (chunk 0, here), ``write`` (everything after it: the tables prepared and chunk 0 written
    while the workers work, then ``stage``, until the workers sampled and staged the other
    chunks, each moved here as soon as it is staged, then ``move``: the rest, from the last
    chunk staged: its move, the keys proven, the commit and the staging tables dropped)."""
    started = time.perf_counter()
    sampler = synthesizer.chunk_sampler(scale, chunk_rows)
    first, resident = sampler.chunk(0)
    seconds["sample"] = time.perf_counter() - started
    workers = WorkerChunks(client, sampler, resident, seconds) if len(sampler) > 1 else None
    rows = write_chunks([first], synthesizer.get_metadata(), target_engine, schema=schema,
                        if_exists=if_exists, fire_triggers=fire_triggers, progress=progress,
                        staged=workers)
    done = time.perf_counter()
    seconds["write"] = done - started - seconds["sample"]
    if workers is not None and workers.done_at is not None:
        seconds["move"] = done - workers.done_at
    sampler.log_totals()
    return rows


def cluster_write(client: Any, synthesizer, target, target_engine, seconds: dict[str, float],
                  notes: list[str] | None = None, **options) -> dict[str, int]:
    """Write a clone's sample through the workers: staged on them where the target allows
    (:func:`staging_refusal`), else sampled on them and written here by one writer, with the
    reason appended to ``notes`` (``options``: those of
    :func:`hma_db.synthesizer.sample_and_write`)."""
    from hma_db.cluster.runner import ClusterSampling

    reason = staging_refusal(target_engine, synthesizer, if_exists=options["if_exists"],
                             chunk_rows=options.get("chunk_rows", DEFAULT_CHUNK_ROWS),
                             client=client, schema=options.get("schema"))
    if reason is None:
        options.pop("verbose", None)
        return cluster_sample_and_write(client, synthesizer, target_engine, seconds, **options)
    note = f"cluster: {reason}: the chunks were sampled on the workers and written by one writer"
    logger.info(note)
    if notes is not None:
        notes.append(note)
    return sample_and_write(ClusterSampling(synthesizer, client), target, seconds, **options)


def sample_only(synthesizer, scale: float, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                client: Any = None) -> dict[str, int]:
    """Sample a run without writing it (chunk 0 here, the others on ``client``'s workers, or
    here without one) and return the rows per table: the sampling stage alone, to measure."""
    sampler = synthesizer.chunk_sampler(scale, chunk_rows)
    first, resident = sampler.chunk(0)
    rows = {t: len(f) for t, f in first.items()}
    if client is None:
        counts = [{t: len(f) for t, f in sampler.chunk(n, resident)[0].items()}
                  for n in range(1, len(sampler))]
    else:
        remote_sampler, remote_resident = client.scatter([sampler, resident], broadcast=True)
        futures = [client.submit(_count_on_worker, remote_sampler, n, remote_resident, pure=False)
                   for n in range(1, len(sampler))]
        counts = client.gather(futures)
        client.cancel([remote_sampler, remote_resident])
    for found in counts:
        for table, count in found.items():
            rows[table] += count
    return rows
