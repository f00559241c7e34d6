"""Values the report can hash, print and compare, whatever the database driver handed back.

The checks hash values (``value_counts``, ``groupby``, ``isin``, row hashes), print them
(``astype(str)``) and compare them (ranges). Drivers return Python objects that break each of
these: a MariaDB SET column comes as ``set`` objects (unhashable), BLOB, GEOMETRY and bytea as
``bytes`` (``astype(str)`` decodes them as UTF-8 and fails) or ``memoryview`` (unhashable, no
order), JSON and arrays as ``dict`` and ``list``, and a SQLite column may mix integers, text and
bytes. :func:`comparable_frames` turns such values into text once, as the report starts, the
same way on the real and the synthetic side, so every check downstream sees hashable values.

:func:`as_numbers` and :func:`as_datetimes` convert a scored column and count the values that
are not numbers or datetimes: those are skipped, and the finding says how many.
"""

from __future__ import annotations

import datetime
import json

import numpy as np
import pandas as pd
from sqlalchemy.dialects import mysql

from hma_db.report.dialects import source_types
from hma_db.schema import Metadata

# What pandas' infer_dtype says of columns whose values are hashable and print as text already.
_PLAIN = {"string", "empty", "integer", "floating", "mixed-integer-float", "decimal", "boolean",
          "datetime", "datetime64", "date", "time", "timedelta", "timedelta64", "period",
          "complex", "categorical", "interval"}


def comparable_frames(data: dict[str, pd.DataFrame], metadata: Metadata) -> dict[str, pd.DataFrame]:
    """``data`` with every value hashable and printable (see :func:`comparable`); columns
    unknown to the metadata are treated as ``unknown``. Frames without such values are
    returned as they are, not copied."""
    out = {}
    for table, frame in data.items():
        columns = metadata.tables[table]["columns"] if table in metadata.tables else {}
        changed = {c: comparable(frame[c], columns.get(c, {}).get("sdtype", "unknown"))
                   for c in frame.columns if frame[c].dtype == object}
        changed = {c: v for c, v in changed.items() if v is not frame[c]}
        if table in metadata.tables:
            changed |= {c: frame[c].map(_set_text, na_action="ignore")
                        for c, t in source_types(metadata, table).items()
                        if isinstance(t, mysql.SET) and c in frame}
        out[table] = frame.assign(**changed) if changed else frame
    return out


def comparable(values: pd.Series, sdtype: str = "unknown") -> pd.Series:
    """The column with hashable values that print as text; ``values`` itself when it has none
    to change (checked by one ``infer_dtype`` call, so a plain column costs no loop).

    Sets become their sorted members joined by commas (MySQL's text of a SET), dicts and lists
    JSON text, bytes ``\\x`` and their hex digits (PostgreSQL's text of a bytea, which no number
    or date parser reads), except in a numerical column, where they are the big-endian unsigned
    integer they hold (MariaDB's BIT).
    """
    if values.dtype != object or pd.api.types.infer_dtype(values, skipna=True) in _PLAIN:
        return values
    convert = _bits if sdtype == "numerical" else _hashable
    return values.map(convert, na_action="ignore")


def _hashable(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (set, frozenset)):
        return ",".join(sorted(str(v) for v in value))
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    if isinstance(value, np.ndarray):
        return json.dumps(value.tolist(), default=str)
    try:
        hash(value)
    except TypeError:
        return str(value)
    return value


def _set_text(value) -> str:
    """A MariaDB SET value, as a set or as text in any member order, as its sorted members
    joined by commas: the real side may come as sets and the synthetic one as text written
    by another database."""
    if isinstance(value, str):
        members = value.split(",")
    elif isinstance(value, (set, frozenset, list, tuple)):
        members = [str(v) for v in value]
    else:
        return value
    return ",".join(sorted(m for m in members if m))


def _bits(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return int.from_bytes(bytes(value), "big")
    return _hashable(value)


def as_numbers(values: pd.Series) -> tuple[pd.Series, int]:
    """Floats (Decimal, integers, numeric text included), and how many present values are not
    numbers (they become NaN)."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype(float), 0
    numbers = pd.to_numeric(values.astype(object).where(values.notna(), np.nan),
                            errors="coerce").astype(float)
    return numbers, int(values.notna().sum() - numbers.notna().sum())


def as_datetimes(values: pd.Series) -> tuple[pd.Series, int]:
    """Naive UTC ``datetime64[ns]``, and how many present values are not datetimes (NaT).

    Times of day (``datetime.time``, and MariaDB's TIME when a driver gives it as a
    ``timedelta``) are read as text, like SQLite's ``'10:30:00'``, so both sides put them on the
    same day (a duration of a day or more is not a time of day: skipped).
    """
    if not pd.api.types.is_datetime64_any_dtype(values):
        text = values.astype(object).where(values.notna(), None)
        if pd.api.types.infer_dtype(text, skipna=True) in ("time", "timedelta", "mixed"):
            text = text.map(_time_text, na_action="ignore")
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    else:
        parsed = values
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    parsed = parsed.astype("datetime64[ns]")
    return parsed, int(values.notna().sum() - parsed.notna().sum())


def _time_text(value):
    return str(value) if isinstance(value, (datetime.time, datetime.timedelta)) else value


def skipped_note(kind: str, real: int = 0, synthetic: int = 0) -> str | None:
    """The note of a finding whose values could not all be compared, or None when all were."""
    parts = [f"{n} {side}" for side, n in (("real", real), ("synthetic", synthetic)) if n]
    if not parts:
        return None
    return f"skipped {' and '.join(parts)} value(s) that are not {kind}"
