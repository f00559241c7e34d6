"""The cluster stage: a clone's sampling spread over Dask workers.

Takes in a fitted synthesizer and a cluster (a scheduler address, a number of local workers, or
a ``distributed.Client``); gives out the synthesizer's chunks, sampled on the workers and handed
back in order, the same rows whatever the number of workers. ``dask.distributed`` is optional
(``pip install "hma_db[dask]"``): nothing here imports it until a cluster is asked for.
"""

from hma_db.cluster.runner import (
    ClusterSampling,
    check_cluster,
    cluster_chunks,
    open_cluster,
)

__all__ = ["ClusterSampling", "check_cluster", "cluster_chunks", "open_cluster"]
