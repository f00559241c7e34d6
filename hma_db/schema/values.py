"""Source dtypes and Python value kinds: record them at fit, restore them after sampling.

A column's dtype alone does not say what a sampled value must look like: an ``object`` column
may hold strings, ``Decimal`` numbers, ``datetime.date`` values or ``uuid.UUID`` objects. At fit
we record the dtype (``str(series.dtype)``) and, for object columns, the *kind* of the values; at
sample :func:`restore` turns plain arrays (floats, ``datetime64``, strings) back into that shape.

:func:`to_json` / :func:`from_json` carry single values (categories, constants) through JSON,
keeping the types JSON lacks (``Decimal``, dates, timestamps) as small tagged objects.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import uuid
from typing import Any

import numpy as np
import pandas as pd

_SAMPLE = 1000  # values inspected to decide an object column's kind
_DTYPE_KINDS = {"b": "bool", "i": "int", "u": "int", "f": "float", "M": "datetime",
                "m": "timedelta"}  # numpy dtype kind -> value kind

_KINDS: list[tuple[type | tuple[type, ...], str]] = [
    ((bool, np.bool_), "bool"),
    ((int, np.integer), "int"),
    ((float, np.floating), "float"),
    (decimal.Decimal, "decimal"),
    ((dt.datetime, pd.Timestamp), "datetime"),
    (dt.date, "date"),
    (dt.time, "time"),
    ((dt.timedelta, pd.Timedelta), "timedelta"),
    ((bytes, bytearray, memoryview), "bytes"),
    (dict, "dict"),
    ((list, tuple), "list"),
    (uuid.UUID, "uuid"),
    ((ipaddress.IPv4Address, ipaddress.IPv6Address,
      ipaddress.IPv4Network, ipaddress.IPv6Network), "ip"),
    (str, "str"),
]


def _kind_of(value: Any) -> str:
    for types, kind in _KINDS:
        if isinstance(value, types):
            return kind
    return "other"


def value_kind(series: pd.Series) -> str:
    """The kind of the non-null values of a column: ``str``, ``decimal``, ``date``... or
    ``none`` (no values) or ``mixed``. Numbers of several Python types count as ``float``."""
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in _DTYPE_KINDS:  # no scan
        return _DTYPE_KINDS[series.dtype.kind] if series.notna().any() else "none"
    sample = series.iloc[: 5 * _SAMPLE].dropna().iloc[:_SAMPLE]
    if sample.empty:
        sample = series.dropna().iloc[:_SAMPLE]  # the first rows were all null
    if sample.empty:
        return "none"
    if not pd.api.types.is_object_dtype(sample.dtype):
        return _DTYPE_KINDS.get(sample.dtype.kind, "str")
    if pd.api.types.infer_dtype(sample, skipna=True) == "string":  # one C pass, not 14 checks
        return "str"
    found = {_kind_of(v) for v in sample}
    if len(found) == 1:
        return found.pop()
    if found <= {"int", "float", "decimal"}:
        return "decimal" if "decimal" in found else "float"
    return "mixed"


def is_integer_dtype(dtype: str) -> bool:
    """True for int64, Int32, uint8 and the like (nullable or not)."""
    return dtype.lower().lstrip("u").startswith("int")


def _nulls(values: pd.Series) -> pd.Series:
    return values.isna()


def restore(values: Any, dtype: str, kind: str = "none", *, digits: int | None = None) -> pd.Series:
    """Turn sampled values into a Series of the source ``dtype`` and value ``kind``.

    Args:
        values: sampled values (floats, datetime64, strings or Python objects), NaN/None = null.
        dtype: the source dtype string, e.g. ``'int64'``, ``'Int64'``, ``'datetime64[ns, UTC]'``.
        kind: the source value kind for object columns (see :func:`value_kind`).
        digits: decimal places for ``Decimal`` values.
    """
    series = pd.Series(values).reset_index(drop=True)
    if dtype.startswith("datetime64"):
        return _to_datetime(series, dtype)
    if dtype.startswith("timedelta64"):
        return pd.to_timedelta(series).astype(dtype)
    if is_integer_dtype(dtype):
        if series.dtype == object and len(series) and type(series.iloc[0]) is int \
                and _beyond_int64(series):
            return series  # Python integers beyond int64 (a key's regex_format): kept exact
        numbers = _integer_range(pd.to_numeric(series).round(), dtype)
        if dtype[0].islower() and numbers.isna().any():
            nullable = "UInt" + dtype[4:] if dtype.startswith("uint") else "I" + dtype[1:]
            return numbers.astype(nullable)  # NULLs need a nullable dtype
        return numbers.astype(dtype)
    if dtype.startswith(("float", "Float")):
        return pd.to_numeric(series).astype(dtype)
    if dtype in ("bool", "boolean"):
        if series.isna().any():
            return series.astype("boolean")
        return series.astype(dtype)
    if dtype == "category":
        return series.astype("category")
    if dtype.startswith("string"):
        return series.astype(dtype)
    return _to_objects(series, kind, digits)


def _beyond_int64(series: pd.Series) -> bool:
    """Whether an object column of Python integers holds one that int64 cannot (a constant
    column of small ones is restored to its dtype like any other)."""
    values = series.dropna().to_numpy(dtype=object)
    return bool(((values >= 2**63) | (values < -2**63)).any())


def _integer_range(numbers: pd.Series, dtype: str) -> pd.Series:
    """Floats clipped into the integer dtype's range: the float nearest BIGINT UNSIGNED's
    maximum (2**64 - 1) is 2**64, one past it, and a cast would overflow."""
    if numbers.dtype.kind != "f":
        return numbers
    info = np.iinfo(pd.api.types.pandas_dtype(dtype.lower()))
    return numbers.clip(float(info.min), np.nextafter(float(info.max) + 1.0, 0.0))


def _to_datetime(series: pd.Series, dtype: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        stamps = series
    else:
        stamps = pd.to_datetime(series, utc=", " in dtype, format="mixed")
    target = pd.api.types.pandas_dtype(dtype)
    tz = getattr(target, "tz", None)
    if tz is not None:
        if stamps.dt.tz is None:
            stamps = stamps.dt.tz_localize("UTC")
        return stamps.dt.tz_convert(tz).astype(target)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.astype(target)


def decimals(values: np.ndarray, places: int) -> np.ndarray:
    """``Decimal`` objects with ``places`` digits after the point (None for NaN), as the
    database driver returns a NUMERIC column.

    Built from the values scaled to integers (``Decimal(n).scaleb(-places)``), which is about
    four times faster than formatting each value as text first; values too large to scale
    exactly in float64 go through text.
    """
    out = np.full(len(values), None, dtype=object)
    present = np.isfinite(values)
    scaled = np.round(values[present] * 10.0 ** places)
    if not len(scaled):
        return out
    if np.abs(scaled).max() < 2.0 ** 53:
        exponent, make = -places, decimal.Decimal
        out[present] = [make(n).scaleb(exponent) for n in scaled.astype(np.int64).tolist()]
    else:
        out[present] = [decimal.Decimal(f"{v:.{places}f}") for v in values[present].tolist()]
    return out


def _to_objects(series: pd.Series, kind: str, digits: int | None) -> pd.Series:
    """Python objects of the source kind, None for nulls."""
    nulls = _nulls(series)
    if kind == "decimal":
        places = 6 if digits is None else max(int(digits), 0)
        out = pd.Series(decimals(pd.to_numeric(series).to_numpy(dtype=float), places),
                        dtype=object)
    elif kind in ("date", "datetime"):
        stamps = _to_datetime(series, "datetime64[ns]")
        out = pd.Series(stamps.dt.date if kind == "date" else stamps.dt.to_pydatetime(),
                        dtype=object)
    elif kind == "time":
        seconds = pd.to_timedelta(pd.to_numeric(series), unit="s").round("us")
        out = (pd.Timestamp(0) + seconds).dt.time
    elif kind == "int":
        if pd.api.types.infer_dtype(series, skipna=True) == "integer":
            out = series.astype(object)  # Python integers (beyond 64 bits too): kept exact
        else:
            out = pd.to_numeric(series).round().astype("Int64").astype(object)
    elif kind == "float":
        out = pd.to_numeric(series).astype(object)
    elif kind == "str":
        # infer_dtype scans in C; only values that are not text yet are converted.
        out = series if pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty") \
            else series.astype(str)
    elif kind == "uuid":
        out = series.map(lambda v: v if pd.isna(v) or isinstance(v, uuid.UUID) else uuid.UUID(str(v)))
    else:
        out = series.astype(object)
    out = out.astype(object)
    out[nulls.to_numpy()] = None
    return out


# --------------------------------------------------------------------------- JSON values
def to_json(value: Any) -> Any:
    """A JSON-able form of one value (``Decimal``, dates, timestamps, bytes kept as tagged dicts)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return {"$datetime": pd.Timestamp(value).isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": bytes(value).hex()}
    return {"$str": str(value)}


def from_json(value: Any) -> Any:
    """The inverse of :func:`to_json`."""
    if not isinstance(value, dict):
        return value
    (tag, text), = value.items()
    return {"$decimal": decimal.Decimal, "$datetime": pd.Timestamp,
            "$date": dt.date.fromisoformat, "$bytes": bytes.fromhex,
            "$str": str}[tag](text)
