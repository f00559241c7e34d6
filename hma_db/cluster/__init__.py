"""The cluster stage: a clone's sampling (and loading) spread over Dask workers.

Takes in a fitted synthesizer and a cluster (a scheduler address, a number of local workers, or
a ``distributed.Client``); gives out the synthesizer's chunks, sampled on the workers, the same
rows whatever the number of workers. On a PostgreSQL or MariaDB target each worker loads its
chunks into staging tables and one transaction here moves them (:mod:`hma_db.cluster.staged`);
otherwise the chunks come back in order to the one writer here (:mod:`hma_db.cluster.runner`).
Large PostgreSQL source tables are read on the workers in key ranges, in one snapshot
(:mod:`hma_db.cluster.reads`). A fit's tables of one level, and a wide table's columns, run on
the workers through :class:`ClientExecutor` (:mod:`hma_db.cluster.executor`).
``dask.distributed`` is optional (``pip install "hma_db[dask]"``): nothing here imports it until
a cluster is asked for.
"""

from hma_db.cluster.executor import ClientExecutor
from hma_db.cluster.reads import cluster_read
from hma_db.cluster.runner import (
    ClusterSampling,
    check_cluster,
    cluster_chunks,
    local_cluster,
    open_cluster,
)
from hma_db.cluster.staged import (
    WorkerChunks,
    cluster_sample_and_write,
    cluster_write,
    sample_only,
    stages_on_workers,
    staging_refusal,
)

__all__ = ["ClientExecutor", "ClusterSampling", "WorkerChunks", "check_cluster",
           "cluster_chunks", "cluster_read", "cluster_sample_and_write", "cluster_write",
           "local_cluster", "open_cluster", "sample_only", "stages_on_workers",
           "staging_refusal"]
