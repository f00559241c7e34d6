"""The target stage: write synthetic tables into a database or files.

Takes in ``{table: DataFrame}`` (or an iterator of such chunks) and the metadata; creates the
target tables or checks existing ones for drift, loads rows in foreign-key order (COPY on
PostgreSQL, batched inserts elsewhere) in one transaction, resets sequences, and gives out the
rows written per table. :func:`write_files` writes CSV or Parquet files instead.
:func:`rows_failing_check` has the target evaluate a CHECK on rows before they are written.
:func:`clean_target` removes what a killed write left (every write does it first).
``write_chunks(..., staged=...)`` moves chunks that others (Dask workers) loaded in parallel
into staging tables (:class:`StageJob`), in the same one transaction.
"""

from hma_db.target.check_sql import check_expression, rows_failing_check
from hma_db.target.ddl import dialect_family, drift, target_metadata
from hma_db.target.files import write_files
from hma_db.target.guard import (
    check_target,
    clean_target,
    refuse_sqlite_schema,
    target_busy,
    trigger_problems,
)
from hma_db.target.session import pause_point
from hma_db.target.staging import STAGE_COLUMNS, StagedChunk, StageJob, is_staging_name
from hma_db.target.write import StagedChunks, write, write_chunks

__all__ = [
    "STAGE_COLUMNS",
    "check_expression",
    "rows_failing_check",
    "check_target",
    "clean_target",
    "refuse_sqlite_schema",
    "dialect_family",
    "drift",
    "is_staging_name",
    "pause_point",
    "StagedChunk",
    "StageJob",
    "StagedChunks",
    "target_busy",
    "target_metadata",
    "trigger_problems",
    "write",
    "write_chunks",
    "write_files",
]
