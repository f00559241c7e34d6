"""The synthesizer stage: SDV's ``HMASynthesizer`` API over transform and model.

Takes in metadata and ``{table: DataFrame}`` (or a database to read); gives out a fitted
synthesizer whose state is one plain dataclass (:class:`FittedState`), samples with valid keys
(whole, or in chunks of bounded memory), and model files (a plain-data pickle or JSON) that
load without running code.
"""

from hma_db.synthesizer.checks import check_scale
from hma_db.synthesizer.chunks import DEFAULT_CHUNK_ROWS
from hma_db.synthesizer.hma import HMASynthesizer, load_synthesizer
from hma_db.synthesizer.params import DISTRIBUTIONS, NON_PARAMETRIC

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "DISTRIBUTIONS",
    "HMASynthesizer",
    "NON_PARAMETRIC",
    "check_scale",
    "load_synthesizer",
]
