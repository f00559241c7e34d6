"""A ``distributed.Client`` as the ``executor`` a fit takes (:func:`hma_db.model.fit_hma`,
:meth:`hma_db.HMASynthesizer.fit`): ``map(fn, *iterables)`` whose results come back in order.

The tasks of a fit are one table of a level, or a group of a wide table's columns; each
argument goes to exactly one task. An argument of at least :data:`SCATTER_BYTES` (as Dask's
``sizeof`` counts it: a table's frame, links and extension blocks) is scattered to the workers
first, so it travels once from here to the worker that needs it instead of through the
scheduler inside the task graph, which Dask warns about from 10 MB on. ``dask`` is imported
only when a map is asked for: the client given brings it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

# Measured on 2 local worker processes, two tasks of one array each, median of 5 (load
# average 3.2 on 2 cores): 0.1 MB in the task 20.7 ms, scattered 26.0 ms; 1 MB 20.9 / 21.6 ms;
# 10 MB 43.7 / 38.0 ms; 100 MB 212 / 215 ms. Equal from about 1 MB on, and a scattered
# argument goes to its worker without passing through the scheduler's graph.
SCATTER_BYTES = 1_000_000


class ClientExecutor:
    """``client.map`` + ``client.gather`` with the interface of ``concurrent.futures``' map.

    Args:
        client: a ``distributed.Client`` (left open: its owner closes it).
        scatter_bytes: arguments of at least this size are scattered before the tasks run.

    Example:
        >>> with distributed.Client(n_workers=2) as client:
        ...     synthesizer.fit(data, executor=ClientExecutor(client))
    """

    def __init__(self, client: Any, scatter_bytes: int = SCATTER_BYTES):
        self.client = client
        self.scatter_bytes = scatter_bytes

    def map(self, fn: Callable, *iterables: Iterable) -> Iterator:
        """Submit ``fn`` on every tuple of arguments now; the iterator waits for the results
        and gives them in order (a task's exception is raised from it)."""
        from dask.sizeof import sizeof  # installed with distributed, whose client we hold

        columns = [list(arguments) for arguments in iterables]
        # In a list, so that a tuple is scattered as one object, not element by element.
        columns = [[self.client.scatter([a], hash=False)[0] if sizeof(a) >= self.scatter_bytes
                    else a for a in column] for column in columns]
        futures = self.client.map(fn, *columns, pure=False) if columns and columns[0] else []
        return _Results(self.client, futures)


class _Results:
    """The results of one map, in order; :meth:`close` (also once they are all read) cancels
    what is left, so a fit that fails here leaves no task running on the cluster."""

    def __init__(self, client: Any, futures: list):
        self.client, self.futures, self.results = client, futures, None

    def __iter__(self) -> Iterator:
        try:
            yield from self.client.gather(self.futures)
        finally:
            self.close()

    def close(self) -> None:
        if self.futures:
            self.client.cancel(self.futures)
            self.futures = []
