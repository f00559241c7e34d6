"""Read a source's large PostgreSQL tables on the Dask workers, in key ranges, in one snapshot
(:func:`hma_db.source.read_tables_in_ranges`): the same frames as one reader gives.

Each key range is one task; its chunks come back packed as the sampled chunks of the one-writer
path do (Decimal columns as text, :func:`hma_db.cluster.runner.pack_chunk`). Used by
:func:`hma_db.clone` on a cluster when the whole source is read (no ``max_rows``); a closed
subset (``max_rows``) is read here.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import sqlalchemy as sa

from hma_db.cluster.runner import pack_chunk, unpack_chunk
from hma_db.engines import safe_url
from hma_db.source import read_range, read_tables_in_ranges

logger = logging.getLogger(__name__)

RANGES_PER_WORKER = 2  # a worker that finishes its first range early takes another


class _Source(str):
    """The source URL, its password hidden in its repr: Dask writes a failed task's arguments
    into its log line."""

    def __repr__(self) -> str:
        return f"Source({safe_url(sa.make_url(str(self)))})"


def _read_on_worker(url: str, metadata, key_range, snapshot: str) -> list:
    chunks = read_range(str(url), metadata, [key_range], snapshot)[0]
    return [pack_chunk({"chunk": chunk}) for chunk in chunks]


def cluster_read(client: Any, source_engine, metadata, on_chunk=None,
                 min_rows: int | None = None) -> dict[str, pd.DataFrame] | None:
    """Every table of ``metadata``, the large ones read in key ranges on ``client``'s workers;
    None when nothing would be split (then read as usual)."""
    url = _Source(source_engine.url.render_as_string(hide_password=False))
    workers = max(1, len(client.scheduler_info()["workers"]))
    [remote] = client.scatter([metadata], broadcast=True)

    def read(ranges, snapshot: str) -> list[list[pd.DataFrame]]:
        futures = [client.submit(_read_on_worker, url, remote, key_range, snapshot, pure=False)
                   for key_range in ranges]
        return [[unpack_chunk(packed)["chunk"] for packed in part] for part in client.gather(futures)]

    options = {} if min_rows is None else {"min_rows": min_rows}
    try:
        return read_tables_in_ranges(source_engine, metadata, read,
                                     RANGES_PER_WORKER * workers, on_chunk=on_chunk, **options)
    finally:
        client.cancel([remote])
