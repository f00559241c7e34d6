"""The exceptions hma_db raises.

Every error hma_db raises on purpose is a subclass of :class:`HmaDbError`, so callers can catch
one type. Foreign errors (SQLAlchemy, rdt, copulas, psycopg) are translated at the module that
calls the foreign library, with the original kept as ``__cause__``::

    HmaDbError
    ├── MetadataError          the metadata is inconsistent (unknown sdtype, missing key column...)
    ├── ReflectionError        the source schema cannot be read (bad URL, refused, unknown schema)
    ├── DataError              a table does not match its metadata (missing column, repeated key...);
    │                          also importable as ``InvalidDataError``, SDV's name
    ├── SynthesizerInputError  a synthesizer was called wrongly (unknown table, distribution, scale)
    │   └── NotFittedError     sample() or similar before fit(); also a SamplingError and a
    │                          ValueError, what SDV's callers catch
    ├── ModelFileError         a file that is not a model, or a model for another schema
    ├── SamplingError          sampling could not satisfy the constraints (e.g. a cycle with no
    │                          nullable foreign key)
    ├── WriteError             the target refused the rows or the schema; the target is unchanged
    │   └── SchemaDriftError   an existing target schema differs from the source
    └── ConfigError            a job file or command line option is wrong

Messages name the table and column, what was expected, what was found and, where it helps,
how to fix it. Passwords never appear in a message.
"""

from __future__ import annotations


class HmaDbError(Exception):
    """The root of every error hma_db raises on purpose."""


class MetadataError(HmaDbError):
    """The metadata is inconsistent.

    ``problems`` holds every problem found, one line each, so a user fixes them in one pass.
    """

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = list(problems or [])
        if len(self.problems) == 1:  # one problem, one line
            message = f"{message.rstrip(':')}: {self.problems[0]}"
        elif self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class ReflectionError(HmaDbError):
    """The source database or its schema cannot be read."""


class DataError(HmaDbError):
    """The data does not match the metadata.

    ``problems`` holds every problem found, one line each.
    """

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = list(problems or [])
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


# SDV's name for the same error: ``except InvalidDataError`` in code written for SDV catches it.
InvalidDataError = DataError


class SynthesizerInputError(HmaDbError):
    """A synthesizer method was given an argument it cannot use."""


class ModelFileError(HmaDbError):
    """A file is not an hma_db model, or the model does not match the schema it is used with."""


class SamplingError(HmaDbError):
    """Synthetic data that satisfies the schema's constraints cannot be produced."""


class NotFittedError(SynthesizerInputError, SamplingError, ValueError):
    """The synthesizer has not been fitted yet.

    SDV raises ``SamplingError`` when ``sample`` comes before ``fit`` and scikit-learn style code
    catches ``ValueError``; this is both, so either ``except`` clause catches it.
    """


class WriteError(HmaDbError):
    """Writing to the target failed; the target was left as it was."""


class SchemaDriftError(WriteError):
    """The existing target schema differs from the source schema.

    ``differences`` holds one human-readable line per difference.
    """

    def __init__(self, message: str, differences: list[str] | None = None):
        self.differences = list(differences or [])
        if self.differences:
            message = message + "\n" + "\n".join(f"  - {d}" for d in self.differences)
        super().__init__(message)


class ConfigError(HmaDbError):
    """A job file or a command-line option is wrong."""
