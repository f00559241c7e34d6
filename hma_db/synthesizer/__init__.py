"""The synthesizer stage: SDV's ``HMASynthesizer`` API over transform and model.

Takes in metadata and ``{table: DataFrame}`` (or a database to read); gives out a fitted
synthesizer whose state is one plain dataclass (:class:`FittedState`), samples with valid keys
(whole, or in chunks of bounded memory), model files (a plain-data pickle or JSON) that load
without running code, and the database helpers that read a source to fit on and write samples
into a target (:func:`read_source`, :func:`sample_and_write`).
"""

from hma_db.synthesizer.chunks import DEFAULT_CHUNK_ROWS, ChunkSampler, Resident, count_rows
from hma_db.synthesizer.database import TargetChecks, read_source, sample_and_write
from hma_db.synthesizer.files import format_for
from hma_db.synthesizer.hma import HMASynthesizer, load_synthesizer
from hma_db.synthesizer.params import DISTRIBUTIONS, NON_PARAMETRIC
from hma_db.synthesizer.preflight import (
    MAX_TOTAL_ROWS,
    check_before_work,
    planned_rows,
    refuse_before_work,
    row_ceiling_problem,
)
from hma_db.synthesizer.rules import known_rules, rule_lines
from hma_db.synthesizer.state import FittedState

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "ChunkSampler",
    "Resident",
    "count_rows",
    "DISTRIBUTIONS",
    "MAX_TOTAL_ROWS",
    "NON_PARAMETRIC",
    "FittedState",
    "HMASynthesizer",
    "check_before_work",
    "format_for",
    "known_rules",
    "load_synthesizer",
    "planned_rows",
    "read_source",
    "refuse_before_work",
    "row_ceiling_problem",
    "rule_lines",
    "sample_and_write",
    "TargetChecks",
]
