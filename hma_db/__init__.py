"""hma_db: clone a production SQL database into a realistic, anonymized synthetic copy.

The public API, in pipeline order: :func:`reflect` a database into :class:`Metadata`, fit an
:class:`HMASynthesizer` on its tables, sample synthetic tables, and :func:`write` them into a
target database; :func:`clone` does all of it in one call.
"""

import sys as _sys
from types import ModuleType as _ModuleType
from typing import TYPE_CHECKING as _TYPE_CHECKING

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

# The rest of the API is imported on first use (PEP 562): pandas, SQLAlchemy, scipy and copulas
# take seconds to import, and ``hma-db --help`` or ``import hma_db.errors`` need none of them.
_LAZY = {
    "CloneResult": "hma_db.clone",
    "clone": "hma_db.clone",
    "Job": "hma_db.job_file",
    "load_job": "hma_db.job_file",
    "Plan": "hma_db.job_plan",
    "format_plan": "hma_db.job_plan",
    "plan_job": "hma_db.job_plan",
    "JobResult": "hma_db.jobs",
    "run_job": "hma_db.jobs",
    "METADATA_SPEC_VERSION": "hma_db.metadata",
    "Metadata": "hma_db.metadata",
    "read_tables": "hma_db.read",
    "reflect": "hma_db.reflect",
    "Report": "hma_db.report",
    "evaluate": "hma_db.report",
    "evaluate_databases": "hma_db.report",
    "simplify_schema": "hma_db.simplify",
    "read_subset": "hma_db.subset",
    "HMASynthesizer": "hma_db.synthesizer",
    "load_synthesizer": "hma_db.synthesizer",
    "TableTransformer": "hma_db.transform",
    "write": "hma_db.write",
    "write_chunks": "hma_db.write",
    "write_files": "hma_db.write_files",
}


class _Package(_ModuleType):
    """The package module, so that ``reflect``, ``write`` and ``clone`` stay functions.

    Importing a submodule binds it on its package (``hma_db.reflect = <module>``); with the
    lazy imports below, that would hide the function of the same name from every later
    ``from hma_db import reflect``. The binding keeps the submodule's function instead (the
    submodule stays reachable through ``sys.modules`` and ``from hma_db.reflect import ...``).
    """

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, _ModuleType) and _LAZY.get(name) == f"{__name__}.{name}" \
                and hasattr(value, name):
            value = getattr(value, name)
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


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
    from hma_db.clone import CloneResult, clone
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
    from hma_db.write_files import write_files

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
    "write_files",
]
