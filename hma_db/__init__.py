"""hma_db: clone a production SQL database into a realistic, anonymized synthetic copy.

The public API, in pipeline order: :func:`reflect` a database into :class:`Metadata`, fit an
:class:`HMASynthesizer` on its tables, sample synthetic tables, and :func:`write` them into a
target database; :func:`clone` does all of it in one call.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING

from hma_db._version import __version__
from hma_db.errors import (
    ConfigError,
    DataError,
    HmaDbError,
    InvalidDataError,
    MetadataError,
    ModelFileError,
    NotFittedError,
    ReflectionError,
    SamplingError,
    SchemaDriftError,
    SynthesizerInputError,
    WriteError,
)

# The rest of the API is imported on first use (PEP 562): pandas, SQLAlchemy, scipy and copulas
# take seconds to import, and ``hma-db --help`` or ``import hma_db.errors`` need none of them.
_LAZY = {
    "CloneResult": "hma_db.pipeline",
    "clone": "hma_db.pipeline",
    "Job": "hma_db.jobs",
    "load_job": "hma_db.jobs",
    "Plan": "hma_db.jobs",
    "format_plan": "hma_db.jobs",
    "plan_job": "hma_db.jobs",
    "JobResult": "hma_db.jobs",
    "run_job": "hma_db.jobs",
    "METADATA_SPEC_VERSION": "hma_db.schema",
    "Metadata": "hma_db.schema",
    "read_tables": "hma_db.source",
    "reflect": "hma_db.source",
    "Report": "hma_db.report",
    "evaluate": "hma_db.report",
    "evaluate_databases": "hma_db.report",
    "simplify_schema": "hma_db.schema",
    "FixedCombinations": "hma_db.schema",
    "FixedIncrements": "hma_db.schema",
    "Inequality": "hma_db.schema",
    "OneHotEncoding": "hma_db.schema",
    "ProgrammableConstraint": "hma_db.schema",
    "Range": "hma_db.schema",
    "SingleTableProgrammableConstraint": "hma_db.schema",
    "load_constraints": "hma_db.schema",
    "AllowedValues": "hma_db.schema",
    "ParentSum": "hma_db.schema",
    "PathAgreement": "hma_db.schema",
    "RowFormula": "hma_db.schema",
    "ScalarInequality": "hma_db.schema",
    "ScalarRange": "hma_db.schema",
    "read_subset": "hma_db.source",
    "HMASynthesizer": "hma_db.synthesizer",
    "load_synthesizer": "hma_db.synthesizer",
    "TableTransformer": "hma_db.transform",
    "write": "hma_db.target",
    "write_chunks": "hma_db.target",
    "write_files": "hma_db.target",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hma_db' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if _TYPE_CHECKING:
    from hma_db.jobs import Job, JobResult, Plan, format_plan, load_job, plan_job, run_job
    from hma_db.pipeline import CloneResult, clone
    from hma_db.report import Report, evaluate, evaluate_databases
    from hma_db.schema import (
        METADATA_SPEC_VERSION,
        AllowedValues,
        FixedCombinations,
        FixedIncrements,
        Inequality,
        Metadata,
        OneHotEncoding,
        ParentSum,
        PathAgreement,
        ProgrammableConstraint,
        Range,
        RowFormula,
        ScalarInequality,
        ScalarRange,
        SingleTableProgrammableConstraint,
        load_constraints,
        simplify_schema,
    )
    from hma_db.source import read_subset, read_tables, reflect
    from hma_db.synthesizer import HMASynthesizer, load_synthesizer
    from hma_db.target import write, write_chunks, write_files
    from hma_db.transform import TableTransformer


__all__ = [
    "METADATA_SPEC_VERSION",
    "AllowedValues",
    "CloneResult",
    "ConfigError",
    "DataError",
    "FixedCombinations",
    "FixedIncrements",
    "HMASynthesizer",
    "HmaDbError",
    "Inequality",
    "InvalidDataError",
    "Job",
    "JobResult",
    "Metadata",
    "MetadataError",
    "ModelFileError",
    "NotFittedError",
    "OneHotEncoding",
    "ParentSum",
    "PathAgreement",
    "Plan",
    "ProgrammableConstraint",
    "Range",
    "ReflectionError",
    "Report",
    "RowFormula",
    "SamplingError",
    "ScalarInequality",
    "ScalarRange",
    "SchemaDriftError",
    "SingleTableProgrammableConstraint",
    "SynthesizerInputError",
    "TableTransformer",
    "WriteError",
    "__version__",
    "clone",
    "evaluate",
    "evaluate_databases",
    "format_plan",
    "load_constraints",
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
    "write_files",
]
