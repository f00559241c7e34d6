"""Sample a run's chunks on Dask workers and hand them back in order, to be written here: the
path for SQLite targets (one writer at a time) and ``append``; into PostgreSQL and MariaDB the
workers load their chunks themselves (:mod:`hma_db.cluster.staged`).

Why this shape: sampling is the CPU-bound part of a large clone and each chunk of a run is
independent once chunk 0 is known (:class:`hma_db.synthesizer.ChunkSampler`). Chunk 0 (the
resident tables, drawn from the synthesizer's own stream) is sampled here; the sampler, which
carries the fitted model, and chunk 0's resident state go to every worker once (``scatter`` with
``broadcast``); every later chunk is one task. A chunk's random stream is seeded by the run's
seed and the chunk's number, and its keys come from its place in the run, so a chunk is the
same rows on any worker, a chunk the scheduler recomputes after losing a worker is the same
again, and the run is the same for any number of workers, and the same as without a cluster.

At most :data:`WINDOW_PER_WORKER` chunks per worker are in flight or waiting to be fetched, so
memory on the workers and here depends on the chunk size, not on the scale. The chunks are
written here, in order, in the target's one transaction (:func:`hma_db.write_chunks`): the
target changes in one commit or not at all, and a chunk that fails (a worker lost for good, an
error in the task) stops the run with one line.

``dask.distributed`` is imported only when a cluster is asked for.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pandas as pd

from hma_db.errors import ConfigError, SamplingError
from hma_db.synthesizer import DEFAULT_CHUNK_ROWS, ChunkSampler, Resident, count_rows
from hma_db.target import pause_point

logger = logging.getLogger(__name__)

# Two chunks per worker keep every worker busy (one sampling, one done and waiting to be
# fetched) while the writer here takes the oldest; more only holds more chunks in memory.
WINDOW_PER_WORKER = 2
CONNECT_TIMEOUT = "30s"  # a scheduler that does not answer in this time is refused
_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$|^[\w.\-]+:\d+$")
INSTALL_HINT = 'install it with: pip install "hma_db[dask]"'
# Dask's nanny starts every worker with MALLOC_TRIM_THRESHOLD_=65536 (to give memory back to
# the OS sooner). Setting it turns off glibc's sliding mmap threshold, so every array above
# 128 KiB is a fresh mmap whose pages fault in again: TPC-H SF1's chunks sampled in 69.4 s in
# one process and in 93.9 s in the same process with that variable (2026-12-06). The local
# workers hma_db starts go without it; their other settings (one BLAS thread) stay.
WORKER_ENVIRON_UNSET = ("MALLOC_TRIM_THRESHOLD_",)


def check_cluster(cluster: Any) -> None:
    """Refuse a ``cluster`` value that cannot name a cluster, before any work.

    Accepted: a number of local worker processes (an ``int`` of at least 1), a scheduler
    address (``tcp://host:8786`` or ``host:8786``), or a ``distributed.Client``.
    """
    if isinstance(cluster, bool):
        raise ConfigError(f"cluster must be a number of workers or a scheduler address; "
                          f"found {cluster!r}")
    if isinstance(cluster, int):
        if cluster < 1:
            raise ConfigError(f"cluster: the number of workers must be at least 1; found {cluster}")
        return
    if isinstance(cluster, str):
        if not _ADDRESS.match(cluster.strip()):
            raise ConfigError(f"cluster: expected a Dask scheduler address such as "
                              f"tcp://host:8786; found {cluster!r}")
        return
    if type(cluster).__name__ == "Client" and hasattr(cluster, "submit"):
        return
    raise ConfigError(f"cluster must be a number of workers, a scheduler address or a "
                      f"distributed.Client; found {type(cluster).__name__}")


def _distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError(f"A Dask cluster needs dask.distributed, which is not installed; "
                          f"{INSTALL_HINT}") from exc
    return distributed


@contextmanager
def open_cluster(cluster: Any) -> Iterator[Any]:
    """A ``distributed.Client`` for ``cluster`` (see :func:`check_cluster`), closed on exit
    unless it was given; a number starts a ``LocalCluster`` of that many single-threaded worker
    processes on this machine, stopped on exit."""
    check_cluster(cluster)
    distributed = _distributed()
    if not isinstance(cluster, int | str):
        yield cluster
        return
    local = None
    try:
        if isinstance(cluster, int):
            local = local_cluster(cluster)
            client = distributed.Client(local)
        else:
            client = distributed.Client(cluster.strip(), timeout=CONNECT_TIMEOUT)
    except OSError as exc:  # includes the client's TimeoutError
        if local is not None:
            local.close()
        raise ConfigError(f"Cannot reach the Dask scheduler at {cluster}: {exc}") from exc
    try:
        logger.info("cluster: %d worker(s) at %s", len(client.scheduler_info()["workers"]),
                    client.scheduler.address)
        yield client
    finally:
        client.close()
        if local is not None:
            local.close()


def local_cluster(workers: int, processes: bool = True) -> Any:
    """A ``LocalCluster`` of ``workers`` single-threaded worker processes on this machine,
    started without Dask's allocator setting (see :data:`WORKER_ENVIRON_UNSET`)."""
    import dask

    distributed = _distributed()
    unset = {f"distributed.nanny.pre-spawn-environ.{name}": None
             for name in WORKER_ENVIRON_UNSET}
    with dask.config.set(unset):
        return distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                        processes=processes, dashboard_address=None)


def pack_chunk(chunk: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], dict]:
    """The chunk with its Decimal columns as text, and which columns those are.

    Pickle writes a Decimal through its ``__reduce__``, one Python call per value: a 100,000-row
    chunk with two Decimal columns took 2.0 s to pickle on the worker; as text, 0.3 s to turn
    and pickle there and 0.3 s to read back into Decimals here (TPC-H's lineitem has four).
    """
    packed, decimals = {}, {}
    for table, frame in chunk.items():
        columns = [c for c in frame.columns if frame[c].dtype == object
                   and _all_decimal(frame[c])]
        if columns:
            frame = frame.copy()
            for column in columns:
                frame[column] = frame[column].map(str, na_action="ignore")
            decimals[table] = columns
        packed[table] = frame
    return packed, decimals


def _all_decimal(values: pd.Series) -> bool:
    return pd.api.types.infer_dtype(values, skipna=True) == "decimal"  # pandas' C-level scan


def unpack_chunk(packed: tuple[dict[str, pd.DataFrame], dict]) -> dict[str, pd.DataFrame]:
    chunk, decimals = packed
    for table, columns in decimals.items():
        for column in columns:
            chunk[table][column] = chunk[table][column].map(Decimal, na_action="ignore")
    return chunk


def _sample_on_worker(sampler: ChunkSampler, number: int, resident: Resident
                      ) -> tuple[dict[str, pd.DataFrame], dict]:
    """The task: one chunk of the run, packed for the way back (a test can stop it here to
    kill the worker)."""
    pause_point("worker_chunk")
    chunk, _ = sampler.chunk(number, resident)
    return pack_chunk(chunk)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def cluster_chunks(client: Any, sampler: ChunkSampler,
                   on_rows: Callable[[str, int], None] | None = None,
                   window: int | None = None) -> Iterator[dict[str, pd.DataFrame]]:
    """Yield the chunks of ``sampler`` in order: chunk 0 sampled here, the others on the
    workers of ``client`` (see the module docstring).

    Raises:
        SamplingError: a chunk failed on the cluster (the task raised, or the scheduler gave up
            on it after losing workers), naming the chunk and the reason.
    """
    first, resident = sampler.chunk(0)
    count_rows(first, on_rows)
    yield first
    total = len(sampler)
    if total == 1:
        return
    remote_sampler, remote_resident = client.scatter([sampler, resident], broadcast=True)
    workers = max(1, len(client.scheduler_info()["workers"]))
    window = window or WINDOW_PER_WORKER * workers
    run = uuid.uuid4().hex[:12]
    pending: deque = deque()
    number = 1
    try:
        while number < total or pending:
            while number < total and len(pending) < window:
                pending.append((number, client.submit(
                    _sample_on_worker, remote_sampler, number, remote_resident,
                    key=f"hma-db-chunk-{run}-{number}", pure=False)))
                number += 1
            done, future = pending.popleft()
            try:
                chunk = unpack_chunk(future.result())
            except Exception as exc:
                raise SamplingError(f"Sampling chunk {done} of {total} on the Dask cluster failed "
                                    f"({_reason(exc)}); nothing was written.") from exc
            future.release()
            count_rows(chunk, on_rows)
            yield chunk
    finally:
        for _, future in pending:
            future.cancel()
        client.cancel([remote_sampler, remote_resident])
    logger.info("cluster: %d chunk(s) sampled on %d worker(s)", total - 1, workers)


class ClusterSampling:
    """A fitted synthesizer whose :meth:`sample_chunks` runs on a Dask cluster; everything
    else is the synthesizer's own (this is what :func:`hma_db.clone` hands the writer)."""

    def __init__(self, synthesizer, client: Any):
        self._synthesizer, self._client = synthesizer, client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._synthesizer, name)

    def sample_chunks(self, scale: float = 1.0, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                      on_rows: Callable[[str, int], None] | None = None
                      ) -> Iterator[dict[str, pd.DataFrame]]:
        """The synthesizer's ``sample_chunks``, its chunks after the first sampled on the
        cluster: the same rows."""
        sampler = self._synthesizer.chunk_sampler(scale, chunk_rows)
        yield from cluster_chunks(self._client, sampler, on_rows)
        sampler.log_totals()
