"""The model stage: the hierarchical model (HMA) on plain arrays.

Takes in numeric frames per table and *links* (each child row's parent row position); gives out
a fitted :class:`HMAModel` (one Gaussian copula per table, extension columns that summarize each
parent's children) that samples numeric frames and links back, whole or a chunk at a time. It
never sees key values or SQL. The only importer of ``copulas``.
"""

from hma_db.model.fit import SMALL_TABLE_ROWS, TableModel
from hma_db.model.hierarchy import HMAModel, fit_hma
from hma_db.model.sample import RunShare, check_scale, sample_chunk, target_rows

__all__ = [
    "SMALL_TABLE_ROWS",
    "HMAModel",
    "RunShare",
    "TableModel",
    "check_scale",
    "fit_hma",
    "sample_chunk",
    "target_rows",
]
