"""The hierarchical model (HMA) on plain arrays: one Gaussian copula per table, linked through
extension columns that summarize each parent row's children.

Inputs are numeric frames (a table's transformed modeled columns, possibly none) and *links*:
per relationship (named by :func:`hma_db.schema.graph.relationship_name`), an int64 array with the
parent row position of every child row, ``-1`` for a NULL foreign key. The model never sees
key values; :mod:`hma_db.synthesizer.hma` turns keys into links and back.

Fitting is in :mod:`hma_db.model.fit` (extension statistics) and :mod:`hma_db.model.levels`
(the tables a level of the hierarchy at a time, from the leaves), sampling in
:mod:`hma_db.model.sample` (top-down, all children of all parents in one pass) and
:mod:`hma_db.model.assign` (counts, secondary parents, self-references, junction keys).

Example:
    >>> model = fit_hma(metadata, numeric, links, {}, np.random.default_rng(0))
    >>> frames, links = model.sample(1.0, np.random.default_rng(1))
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from hma_db.errors import ModelFileError, SynthesizerInputError
from hma_db.model.agree import find_agreements as agreements
from hma_db.model.fit import SMALL_TABLE_ROWS, TableModel, check_inputs, plan
from hma_db.model.levels import fit_tables
from hma_db.model.sample import check_scale, sample_tables

logger = logging.getLogger(__name__)

FORMAT = "hma_db.hma"  # the name of the format, kept from the first release
VERSION = 1


def fit_hma(metadata, numeric: dict[str, pd.DataFrame], links: dict[str, np.ndarray],
            table_parameters: dict[str, dict], rng: np.random.Generator,
            progress: Callable | None = None,
            row_counts: dict[str, int] | None = None,
            kept: Iterable[str] = (), find_agreements: bool = True,
            small_table_rows: int = SMALL_TABLE_ROWS, executor: Any = None) -> HMAModel:
    """Fit the hierarchical model.

    Args:
        metadata: the :class:`~hma_db.Metadata` (tables, keys, relationships).
        numeric: per table, its modeled columns as floats (no missing values; may have no column).
        links: per relationship name, the parent row position of each child row (-1: NULL).
        table_parameters: per table, ``default_distribution`` and ``numerical_distributions``
            (keyed by source column; a modeled column ``col`` or ``col.<anything>`` uses it).
        rng: the random generator: one draw seeds each table's own stream, with its name
            (subsamples for the marginal fits; see :func:`hma_db.model.levels.table_seeds`).
        progress: optional ``progress(iterable, description) -> iterable`` (e.g. a tqdm wrapper).
        row_counts: the full row count of tables fitted on a subset; sampling sizes follow
            them (roots get the full counts, child totals are exact per table, spread over the
            parents as in the subset). Tables not listed keep their fitted row count.
        kept: tables kept as they are: their fitted rows stand for their sample, so their
            children are drawn under the real rows (see :func:`hma_db.model.sample.kept_rows`).
        find_agreements: find two foreign-key paths to one ancestor that agree in every row,
            and keep them at sampling (:mod:`hma_db.model.agree`).
        small_table_rows: a root table of at most this many rows (or of fewer rows than
            copula columns) replays its fitted rows instead of sampling its copula (see
            :func:`hma_db.model.sample.replayed_rows`); 0 turns it off.
        executor: anything with ``map(fn, *iterables)`` giving the results in order (a
            ``concurrent.futures`` executor, :class:`hma_db.cluster.ClientExecutor`): the
            tables of one level of the hierarchy, and the marginals of a wide table, are
            fitted there at once (:mod:`hma_db.model.levels`). The model is the same with or
            without one.

    Returns:
        The fitted :class:`HMAModel`.

    Raises:
        SynthesizerInputError: a missing frame or link, a link out of range, an unknown or
            non-parametric distribution, or non-finite values.
    """
    rels, junctions = plan(metadata)
    check_inputs(metadata, numeric, links, rels)
    if find_agreements:
        agreements(rels, junctions, links)
    tables = fit_tables(metadata, numeric, links, table_parameters, rng, rels, progress,
                        frozenset(kept), small_table_rows, executor)
    for table, record in tables.items():
        logger.info("table %s: %d rows, %d columns + %d extension columns", table,
                    record.rows, len(record.columns), len(record.extension_columns))
    for table, rows in (row_counts or {}).items():
        tables[table].rows = int(rows)
    return HMAModel(metadata.topological_order(), tables, rels, junctions)


class HMAModel:
    """A fitted hierarchical model: table copulas, relationship statistics, the sampling order.

    Build it with :func:`fit_hma`; everything it holds is plain data besides the copulas,
    and :meth:`to_dict` turns those into plain data too.
    """

    def __init__(self, order: list[str], tables: dict[str, TableModel],
                 relationships: dict[str, dict[str, Any]], junctions: dict[str, list[list[str]]]):
        self.order = list(order)
        self.tables = tables
        self.relationships = relationships
        self.junctions = junctions

    @property
    def row_counts(self) -> dict[str, int]:
        """The source row count of every table."""
        return {t: int(r.rows) for t, r in self.tables.items()}

    def sample(self, scale: float, rng: np.random.Generator
               ) -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]]:
        """Sample every table.

        Args:
            scale: row count multiplier (each table gets ``round(rows * scale)`` rows, at least
                1 unless the source table was empty; half rounds up).
            rng: the random generator; the same generator state gives the same output.

        Returns:
            ``(frames, links)``: per table its modeled columns, and per relationship a link
            into the sampled parent rows (``-1``: NULL). Self-references point only at earlier
            rows; junction keys never repeat a combination.
        """
        check_scale(scale)
        return sample_tables(self, float(scale), rng)

    def learned_distributions(self, table: str) -> dict[str, dict[str, Any]]:
        """``{column: {"distribution", "learned_parameters"}}`` for a table's modeled columns
        (``fallback_from`` names the requested family when it could not be fitted)."""
        if table not in self.tables:
            raise SynthesizerInputError(
                f"Unknown table '{table}'; the model has: {', '.join(sorted(self.tables))}")
        record = self.tables[table]
        if record.copula is None:  # an empty source table: nothing was learned
            return {c: {"distribution": record.distributions.get(
                c, record.default_distribution), "learned_parameters": {}}
                for c in record.columns}
        learned = record.copula.learned_distributions()
        return {c: learned[c] for c in record.columns}

    # ----------------------------------------------------------------------- plain data
    def to_dict(self) -> dict[str, Any]:
        """The model as plain JSON-able data (lists, dicts, strings, numbers)."""
        tables = {name: record.to_dict() for name, record in self.tables.items()}
        return {"format": FORMAT, "version": VERSION, "order": list(self.order),
                "tables": tables, "relationships": copy.deepcopy(self.relationships),
                "junctions": copy.deepcopy(self.junctions)}

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> HMAModel:
        """Rebuild a model written by :meth:`to_dict`."""
        if not isinstance(params, dict) or params.get("format") != FORMAT:
            raise ModelFileError(f"Not an hma_db hierarchical model (expected format '{FORMAT}')")
        if params.get("version") != VERSION:
            raise ModelFileError(f"Hierarchical model version {params.get('version')!r}; "
                                 f"this hma_db reads version {VERSION}")
        try:
            tables = {name: TableModel.from_dict(record)
                      for name, record in params["tables"].items()}
            return cls(params["order"], tables, copy.deepcopy(params["relationships"]),
                       copy.deepcopy(params["junctions"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"Damaged hierarchical model: {exc!r}") from exc
