"""Model files: a pickle (SDV's file name) or a JSON model, both plain data that runs no code.

Both hold ``{"format": "hma_db-model", "version": 1, "synthesizer": state}`` where ``state`` is
:func:`hma_db.synthesizer.state.to_state`'s data written by :func:`encode`: numpy arrays, numpy
scalars, tuples, dicts with non-string keys, dates, decimals and uuids become small tagged
objects that come back exactly as they were saved (floats round-trip exactly). The pickle is the
same document pickled: it names no class at all, so the unpickler refuses every class a file asks
for. Loading either builds nothing but values.

hma_db 0.1 pickled the live synthesizer instead (rdt, Faker, SQLAlchemy objects): such a file is
recognised by the first class it names and refused with what to do.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
import json
import pickle
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hma_db._version import __version__
from hma_db.errors import ModelFileError

FORMAT = "hma_db-model"
VERSION = 1
FORMATS = ("pickle", "json")
# The first class a pickle of hma_db 0.1 asks for: the synthesizer it pickled whole.
_LEGACY_ROOT = ("hma_db.synthesizer", "HMASynthesizer")


def format_for(filepath: str | Path, format: str | None = None) -> str:  # noqa: A002
    """The model format to write: ``format`` when given, else ``json`` for a ``.json`` file
    name and ``pickle`` for any other."""
    if format is None:
        return "json" if Path(filepath).suffix.lower() == ".json" else "pickle"
    if format not in FORMATS:
        raise ModelFileError(f"format must be 'pickle' or 'json'; found {format!r}.")
    return format


def save(state: dict[str, Any], filepath: str | Path, format: str | None = None) -> None:  # noqa: A002
    """Write a synthesizer state as a model file (see :func:`format_for`)."""
    document = {"format": FORMAT, "version": VERSION, "hma_db": __version__,
                "synthesizer": encode(state)}
    path = Path(filepath)
    if format_for(path, format) == "json":
        path.write_text(json.dumps(document, allow_nan=True), encoding="utf-8")
    else:
        with path.open("wb") as handle:
            pickle.dump(document, handle, protocol=5)


# ------------------------------------------------------------------------------- pickle
class _PlainUnpickler(pickle.Unpickler):
    """An unpickler for plain data: every class a file asks for is refused."""

    def __init__(self, handle, path: Path):
        super().__init__(handle)
        self._path = path

    def find_class(self, module: str, name: str):
        if (module, name) == _LEGACY_ROOT:
            raise ModelFileError(
                f"'{self._path}' was saved by hma_db 0.1, whose pickles hold live objects; "
                f"hma_db {__version__} reads only plain-data models. Fit the model again, or "
                "load it with hma_db 0.1 and save it as JSON "
                "(synthesizer.save('model.json', format='json')), which this release reads.")
        raise ModelFileError(
            f"'{self._path}' asks for {module}.{name}; an hma_db model names no class, so "
            "refusing to load it (it is not an hma_db model, or it was tampered with).")


def _load_pickle(data: bytes, path: Path) -> Any:
    try:
        return _PlainUnpickler(io.BytesIO(data), path).load()
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure means "not a readable model"
        raise ModelFileError(f"'{path}' could not be read as an hma_db model pickle: "
                             f"{type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------------- JSON
# Scalars that are not JSON types, each written as {tag: text} and rebuilt by a constructor
# that only parses text (checked in order: a Timestamp is also a datetime and a date).
_TAGGED = [
    ("__timestamp__", (pd.Timestamp, dt.datetime), lambda v: v.isoformat(), pd.Timestamp),
    ("__date__", (dt.date,), lambda v: v.isoformat(), dt.date.fromisoformat),
    ("__time__", (dt.time,), lambda v: v.isoformat(), dt.time.fromisoformat),
    ("__timedelta__", (pd.Timedelta, dt.timedelta), lambda v: pd.Timedelta(v).isoformat(),
     pd.Timedelta),
    ("__decimal__", (decimal.Decimal,), str, decimal.Decimal),
    ("__uuid__", (uuid.UUID,), str, uuid.UUID),
    ("__bytes__", (bytes,), lambda v: base64.b64encode(v).decode("ascii"), base64.b64decode),
]


def encode(value: Any, where: str = "model") -> Any:
    """``value`` as JSON-able data that :func:`decode` turns back into the same value."""
    if value is None or type(value) in (bool, str, int, float):
        return value
    # Subclasses (SQLAlchemy's quoted_name, an IntEnum...) become the plain value: a model
    # file holds no class of its own choosing.
    for plain in (bool, str, int, float):
        if isinstance(value, plain) and not isinstance(value, np.generic):
            return plain(value)
    if isinstance(value, np.generic) and value.dtype.kind in "biufcMm":
        scalar = str(value) if value.dtype.kind in "Mm" else value.item()
        return {"__npscalar__": scalar, "dtype": value.dtype.str}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {str(k): encode(v, f"{where}.{k}") for k, v in value.items()}
        return {"__items__": [[encode(k, where), encode(v, where)] for k, v in value.items()]}
    if isinstance(value, list):
        return [encode(v, where) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, where) for v in value]}
    if isinstance(value, np.ndarray):
        return _encode_array(value, where)
    if value is pd.NA:
        return {"__na__": True}
    for tag, types_, to_text, _ in _TAGGED:
        if isinstance(value, types_):
            return {tag: to_text(value)}
    raise ModelFileError(f"Cannot write {where}: a {type(value).__name__} is not plain data.")


def _encode_array(array: np.ndarray, where: str) -> dict[str, Any]:
    if array.dtype.kind == "O":
        return {"__ndarray__": [encode(v, where) for v in array.ravel().tolist()],
                "dtype": "object", "shape": list(array.shape)}
    if array.dtype.kind not in "biufcUSM m":
        raise ModelFileError(f"Cannot write {where}: arrays of dtype {array.dtype}.")
    values = array.astype(str).ravel().tolist() if array.dtype.kind in "Mm" \
        else array.ravel().tolist()
    return {"__ndarray__": values, "dtype": array.dtype.str, "shape": list(array.shape)}


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`; builds only plain values and numpy arrays."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__npscalar__" in value:
        return np.array([value["__npscalar__"]], dtype=_safe_dtype(value["dtype"]))[0]
    if "__ndarray__" in value:
        dtype = _safe_dtype(value["dtype"])
        values = [decode(v) for v in value["__ndarray__"]] if dtype == "object" \
            else value["__ndarray__"]
        array = np.empty(len(values), dtype=object) if dtype == "object" else None
        if array is not None:
            array[:] = values
        else:
            array = np.array(values, dtype=dtype)
        return array.reshape(value["shape"])
    if "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
    if "__items__" in value:
        return {_hashable(decode(k)): decode(v) for k, v in value["__items__"]}
    if "__na__" in value:
        return pd.NA
    for tag, _, _, from_text in _TAGGED:
        if tag in value and len(value) == 1:
            return from_text(value[tag])
    return {k: decode(v) for k, v in value.items()}


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def _safe_dtype(text: Any) -> str:
    if text == "object":
        return text
    if not isinstance(text, str) or len(text) > 8 or np.dtype(text).kind not in "biufcUSMm":
        raise ModelFileError(f"The JSON model names an unsupported array dtype {text!r}.")
    return text


def _load_json(data: bytes, path: Path) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"'{path}' is not valid JSON: {exc}") from exc


def _state(document: Any, path: Path, kind: str) -> dict[str, Any]:
    """The synthesizer state of a model document, after checking what the document says."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError(f"'{path}' is {kind} but not an hma_db model (expected "
                             f"\"format\": \"{FORMAT}\").")
    if document.get("version") != VERSION:
        raise ModelFileError(f"'{path}' is an hma_db model of version "
                             f"{document.get('version')!r}; this hma_db reads version {VERSION}.")
    try:
        return decode(document["synthesizer"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"'{path}' is a damaged hma_db model: {exc}") from exc


# ------------------------------------------------------------------------------- detect
def load(filepath: str | Path) -> dict[str, Any]:
    """The synthesizer state in a model file, pickle or JSON (told by its first bytes).

    Raises:
        ModelFileError: the file is missing or is neither kind of hma_db model.
    """
    path = Path(filepath)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelFileError(f"Model file '{path}' does not exist.") from exc
    except OSError as exc:
        raise ModelFileError(f"Model file '{path}' cannot be read: {exc}") from exc
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= pickle.HIGHEST_PROTOCOL:
        return _state(_load_pickle(data, path), path, "a pickle")
    if data.lstrip()[:1] == b"{":
        return _state(_load_json(data, path), path, "JSON")
    raise ModelFileError(
        f"'{path}' is not an hma_db model: it is neither a pickle (first bytes 0x80 0x02-0x05) "
        f"nor a JSON model; its first bytes are {data[:8]!r}.")
