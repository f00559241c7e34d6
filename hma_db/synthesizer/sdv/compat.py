"""What :class:`~hma_db.HMASynthesizer` does the way SDV does, so code written for SDV runs.

- the metadata may be an hma_db ``Metadata``, SDV's ``Metadata`` (anything with ``to_dict()``)
  or a dict in SDV's layout;
- metadata edited or detected and not saved gets SDV's warning, once;
- ``regex_format`` of an ``id`` column: a pattern with groups or alternatives is refused when the
  synthesizer is built (SDV refuses it too), and an integer primary key whose pattern can start
  with ``0`` is refused at ``fit`` (the generated text would not read back as the same integer);
- column labels that are not strings (``0``, ``1.5``): SDV's metadata names columns by strings,
  so the data is renamed on the way in and back on the way out;
- a ``scale`` that leaves a table with less than one row warns, with SDV's message;
- an integer primary key whose ``regex_format`` writes more digits than its source dtype holds
  comes out as exact Python integers, with SDV's overflow warning naming the table and column.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from typing import Any

import pandas as pd

from hma_db.errors import InvalidDataError, SynthesizerInputError
from hma_db.schema import Metadata

UPDATED_METADATA_WARNING = (
    "We strongly recommend saving the metadata using 'save_to_json' for replicability in future "
    "SDV versions.")
SMALL_SCALE_WARNING = (
    "The 'scale' parameter is too small. Some tables may have 1 row. For better quality data, "
    "please choose a larger scale.")
OVERFLOW_WARNING = (
    "The real data in '{table}' and column '{column}' was stored as '{dtype}' but the synthetic "
    "data overflowed when casting back to this type. If this is a problem, please check your "
    "input data and metadata settings.")
# Regex syntax the key generator does not expand: groups, alternatives, look-arounds.
_COMPLEX_REGEX = ("(", ")", "|")
# What a leading character class or escape can produce, for the "can start with 0" check.
_ESCAPES_WITH_ZERO = ("\\d", "\\w", ".")


def as_metadata(metadata: Any) -> Metadata:
    """An hma_db ``Metadata`` from one, from SDV's ``Metadata`` (through ``to_dict()``) or from
    a dict; warns as SDV does when an hma_db ``Metadata`` was edited and not saved."""
    if isinstance(metadata, Metadata):
        if metadata.take_updated():
            warnings.warn(UPDATED_METADATA_WARNING, UserWarning, stacklevel=3)
        return metadata
    if isinstance(metadata, dict):
        return Metadata.load_from_dict(metadata)
    to_dict = getattr(metadata, "to_dict", None)
    if callable(to_dict):
        return Metadata.load_from_dict(to_dict())
    raise SynthesizerInputError(
        "metadata must be an hma_db Metadata, an SDV Metadata (anything with to_dict()) or a "
        f"dict in SDV's multi-table layout; found {type(metadata).__name__}.")


def check_regex_formats(metadata: Metadata) -> None:
    """Refuse an ``id`` column whose ``regex_format`` has groups or alternatives (SDV's
    message)."""
    for table, spec in metadata.tables.items():
        for column, options in spec["columns"].items():
            regex = options.get("regex_format")
            if options.get("sdtype") == "id" and isinstance(regex, str) and \
                    any(token in regex for token in _COMPLEX_REGEX):
                raise SynthesizerInputError(
                    "SDV synthesizers do not currently support complex regex formats such as "
                    f"'{regex}', which you have provided for table '{table}', column '{column}'. "
                    "Please use a simplified format or update to a different sdtype.")


def can_start_with_zero(regex: str) -> bool:
    """True when a string matching ``regex`` (anchored at its start) may begin with ``0``.

    Reads only the first element: a literal, an escape such as ``\\d``, or a character class.
    """
    if not regex:
        return False
    if regex.startswith(_ESCAPES_WITH_ZERO):
        return True
    if regex[0] == "[":
        end = regex.find("]", 2)
        body = regex[1:end if end > 0 else None]
        negated = body.startswith("^")
        return _class_has_zero(body.removeprefix("^")) != negated
    return regex[0] == "0"


def _class_has_zero(body: str) -> bool:
    """True when the character class ``[body]`` contains ``0``."""
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            if body[i + 1] in "dw":
                return True
            i += 2
        elif i + 2 < len(body) and body[i + 1] == "-":
            if body[i] <= "0" <= body[i + 2]:
                return True
            i += 3
        else:
            if body[i] == "0":
                return True
            i += 1
    return False


def check_integer_key_regex(metadata: Metadata, data: dict[str, pd.DataFrame]) -> None:
    """Refuse an integer primary key whose ``regex_format`` can start with ``0`` (SDV's
    ``InvalidDataError`` and message)."""
    for table, frame in data.items():
        pk = metadata.primary_key(table) if table in metadata.tables else []
        if len(pk) != 1 or pk[0] not in frame.columns:
            continue
        regex = metadata.tables[table]["columns"][pk[0]].get("regex_format")
        if isinstance(regex, str) and pd.api.types.is_integer_dtype(frame[pk[0]]) \
                and can_start_with_zero(regex):
            raise InvalidDataError(
                f'Primary key for table "{table}" is stored as an int but the Regex allows it '
                'to start with "0". Please remove the Regex or update it to correspond to valid '
                "ints.")


def string_labels(data: Any) -> tuple[Any, dict[str, dict[str, Any]]]:
    """``data`` with every column label a string, and per table ``{string: label}`` for the
    labels that were not (``{}`` when all were)."""
    if not isinstance(data, dict):
        return data, {}
    labels, out = {}, {}
    for table, frame in data.items():
        if isinstance(frame, pd.DataFrame) and not all(isinstance(c, str) for c in frame.columns):
            labels[table] = {str(c): c for c in frame.columns if not isinstance(c, str)}
            frame = frame.rename(columns=str)
        out[table] = frame
    return out, labels


def restore_labels(tables: dict[str, pd.DataFrame],
                   labels: dict[str, dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """The sampled tables with the caller's original column labels."""
    return {t: frame.rename(columns=labels[t]) if labels.get(t) else frame
            for t, frame in tables.items()}


def warn_small_scale(full_sizes: dict[str, int], scale: float) -> None:
    """SDV's warning when ``scale`` would give a table that has rows less than one row (it gets
    one)."""
    if any(rows > 0 and rows * scale < 1 for rows in full_sizes.values()):
        warnings.warn(SMALL_SCALE_WARNING, UserWarning, stacklevel=3)


def warn_overflowed_keys(tables: dict[str, pd.DataFrame], metadata: Metadata,
                         source_dtypes: dict[str, dict[str, str]]) -> None:
    """SDV's warning for each primary key whose source was a fixed-width integer and whose
    sampled values did not fit it (they are Python integers: exact, dtype ``object``)."""
    for table in metadata.tables:
        key = metadata.tables[table].primary_key
        dtype = source_dtypes.get(table, {}).get(key) if isinstance(key, str) else None
        frame = tables.get(table)
        if dtype and pd.api.types.is_integer_dtype(dtype) and frame is not None \
                and key in frame and frame[key].dtype == object:
            warnings.warn(OVERFLOW_WARNING.format(table=table, column=key, dtype=dtype),
                          UserWarning, stacklevel=3)


def day(timestamp: str | None) -> str | None:
    """``'2026-12-06'`` from an ISO timestamp: the form SDV's ``get_info`` gives dates in."""
    return None if timestamp is None else str(timestamp)[:10]



def installed_sdv_version() -> str | None:
    """The ``sdv`` release installed beside hma_db, read from the package metadata (``sdv`` is
    not imported), or None.

    ``get_info`` stamps it on a fit under SDV's key ``fitted_sdv_version``: SDV code compares
    that stamp with the installed ``sdv`` to warn about models fitted by a newer release, so a
    team moving from SDV sees its own release there. Without ``sdv`` the stamp is hma_db's.
    """
    try:
        return importlib.metadata.version("sdv")
    except importlib.metadata.PackageNotFoundError:
        return None
