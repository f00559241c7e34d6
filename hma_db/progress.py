"""Progress of a clone's stages (read, fit, sample, write): bars in rows and stage times.

One :class:`RowBar` per stage counts rows across tables (the table being worked on is shown
beside the bar); tqdm computes the rate and the time left from the stage's total. Logs get one
INFO line per table per stage from the stages themselves, and one line per stage from
:func:`stage`; bars are for people at a terminal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm

logger = logging.getLogger(__name__)


@contextmanager
def stage(seconds: dict[str, float], name: str) -> Iterator[None]:
    """Time one stage into ``seconds[name]`` and log it when it ends."""
    started = time.perf_counter()
    yield
    seconds[name] = time.perf_counter() - started
    logger.info("%s done in %.2fs", name, seconds[name])


class RowBar:
    """Rows done out of ``total`` for one stage (``total=None``: no ETA, just the rate).

    Example:
        >>> bar = RowBar("write", total=1_000_000, enabled=True)
        >>> bar.add("Invoice", 50_000)
        >>> bar.close()
    """

    def __init__(self, stage: str, total: int | None, enabled: bool):
        self.bar = tqdm(total=total, desc=stage, unit="rows", unit_scale=True,
                        disable=not enabled, dynamic_ncols=True)
        self._done: dict[str, int] = {}
        self.rows = 0  # counted even when the bar is disabled

    def add(self, table: str, rows: int) -> None:
        """Count ``rows`` more rows of ``table`` (the ``on_chunk`` callback of reads)."""
        self.rows += rows
        self.bar.set_postfix_str(table, refresh=False)
        self.bar.update(rows)

    def set_total(self, total: int) -> None:
        """Give the stage its total once it is known (a subset's size), for the ETA."""
        self.bar.total = total
        self.bar.refresh()

    def batch(self, table: str, done: int, total: int) -> None:
        """The ``progress(table, done, total)`` callback of writes: ``done`` counts the rows of
        the table's current load, and starts again for each chunk."""
        last = self._done.get(table, 0)
        self._done[table] = 0 if done >= total else done  # the next chunk counts from zero
        self.add(table, done - last)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> RowBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
