"""hma_db: clone a production SQL database into a realistic, anonymized synthetic copy.

The public API, in pipeline order: :func:`reflect` a database into :class:`Metadata`, fit an
:class:`HMASynthesizer` on its tables, sample synthetic tables, and :func:`write` them into a
target database; :func:`clone` does all of it in one call.
"""

from hma_db.clone import CloneResult, clone
from hma_db.errors import (
    ConfigError,
    DataError,
    HmaDbError,
    MetadataError,
    ModelFileError,
    NotFittedError,
    ReflectionError,
    SamplingError,
    SchemaDriftError,
    SynthesizerInputError,
    WriteError,
)
from hma_db.job_file import Job, load_job
from hma_db.job_plan import Plan, format_plan, plan_job
from hma_db.jobs import JobResult, run_job
from hma_db.metadata import METADATA_SPEC_VERSION, Metadata
from hma_db.read import read_tables
from hma_db.reflect import reflect
from hma_db.report import Report, evaluate, evaluate_databases
from hma_db.simplify import simplify_schema
from hma_db.subset import read_subset
from hma_db.synthesizer import HMASynthesizer, load_synthesizer
from hma_db.transform import TableTransformer
from hma_db.write import write, write_chunks

__version__ = "0.1.0"

__all__ = [
    "METADATA_SPEC_VERSION",
    "CloneResult",
    "ConfigError",
    "DataError",
    "HMASynthesizer",
    "HmaDbError",
    "Job",
    "JobResult",
    "Metadata",
    "MetadataError",
    "ModelFileError",
    "NotFittedError",
    "Plan",
    "ReflectionError",
    "Report",
    "SamplingError",
    "SchemaDriftError",
    "SynthesizerInputError",
    "TableTransformer",
    "WriteError",
    "__version__",
    "clone",
    "evaluate",
    "evaluate_databases",
    "format_plan",
    "load_job",
    "load_synthesizer",
    "plan_job",
    "read_subset",
    "read_tables",
    "reflect",
    "run_job",
    "simplify_schema",
    "write",
    "write_chunks",
]
