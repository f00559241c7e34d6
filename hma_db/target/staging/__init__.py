"""Staging tables of the target: chunks that Dask workers load in parallel, moved into the
target tables by the load's one transaction (see :mod:`hma_db.target.staging.tables`).

Gives :class:`Staging` (one run's tables: created, moved, dropped), :class:`StageJob` (what a
worker needs to load a chunk) and :class:`StagedChunk` (what it loaded) to
:mod:`hma_db.target.write`, and :func:`drop_dead_staging` (a killed run's tables) to
:func:`hma_db.target.clean_target`.
"""

from hma_db.target.staging.tables import (
    STAGE_COLUMNS,
    STAGE_PREFIX,
    StagedChunk,
    StageJob,
    Staging,
    drop_dead_staging,
    is_staging_name,
)

__all__ = ["STAGE_COLUMNS", "STAGE_PREFIX", "StagedChunk", "StageJob", "Staging", "drop_dead_staging",
           "is_staging_name"]
