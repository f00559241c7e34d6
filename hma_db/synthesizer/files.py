"""Model files: a pickle (SDV's file name) or a JSON model, both plain data that runs no code.

Both hold ``{"format": "hma_db-model", "version": 1, "synthesizer": state}`` where ``state`` is
:func:`hma_db.synthesizer.state.to_state`'s data written by :func:`encode`: numpy arrays, numpy
scalars, tuples, dicts with non-string keys, dates, decimals and uuids become small tagged
objects that come back exactly as they were saved (floats round-trip exactly). The pickle is the
same document pickled: it names no class at all, so the unpickler admits only the callables of
:data:`ALLOWED_GLOBALS` (none) and refuses every other one a file asks for, before it is called.
Loading either builds nothing but values.

A pickle is still executable input in general, so the command line and job files load one only
when asked (``--trust-pickle``, ``[model] trust_pickle = true``: :func:`load` with
``trust_pickle=False`` refuses any pickle, told by its first bytes whatever its name); the Python
calls read one as SDV's do.

**Signing.** When the environment variable ``HMA_DB_MODEL_KEY`` is set, :func:`save` writes a
pickle after a one-line header, ``HMADB-SIG1 <64 hex digits>\n``: the HMAC-SHA256 of the pickle
bytes that follow, keyed with the variable's UTF-8 bytes. :func:`load` with the key set refuses an
unsigned or mis-signed pickle before unpickling it (``hmac.compare_digest``); without the key, a
signed pickle loads with a warning that it could not be verified. JSON models are not signed.

hma_db 0.1 pickled the live synthesizer instead (rdt, Faker, SQLAlchemy objects): such a file is
recognised by the first class it names and refused with what to do.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import hmac
import io
import json
import logging
import os
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

# The (module, name) pairs the unpickler may import: reviewed, frozen, and exactly what the
# project's own pickles use. The document :func:`save` pickles is dicts, lists, str, int, float,
# bool and None only (arrays, dates, decimals... are tagged by :func:`encode` first), and protocol 5
# writes those with dedicated opcodes that name no callable, so the list is empty; numpy's array
# reconstruction (numpy.core.multiarray._reconstruct, numpy.dtype) is not needed and not admitted.
# tests/test_model_gadgets.py checks that every global the project's pickles name is listed here.
# An entry may be added only for a callable that builds a value from its arguments and can neither
# import, evaluate, open nor call what it is given.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset()

KEY_VARIABLE = "HMA_DB_MODEL_KEY"
SIGNATURE_HEADER = b"HMADB-SIG1 "
_SIGNATURE_LENGTH = len(SIGNATURE_HEADER) + 64 + 1  # the header, the hex SHA-256 tag, "\n"

logger = logging.getLogger(__name__)


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
        data = pickle.dumps(document, protocol=5)
        key = _key()
        path.write_bytes(data if key is None else _signature(key, data) + data)


def _key() -> bytes | None:
    text = os.environ.get(KEY_VARIABLE)
    return text.encode("utf-8") if text else None


def _signature(key: bytes, data: bytes) -> bytes:
    return SIGNATURE_HEADER + hmac.new(key, data, hashlib.sha256).hexdigest().encode() + b"\n"


def _is_pickle(data: bytes) -> bool:
    return data.startswith(SIGNATURE_HEADER) or (
        len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= pickle.HIGHEST_PROTOCOL)


def _refuse_untrusted(path: Path) -> ModelFileError:
    return ModelFileError(
        f"'{path}' is a pickle model, and a pickle is executable input in general, so it is "
        "loaded only when trusted: use a .json model, or pass --trust-pickle (a job file: "
        "trust_pickle = true under [model]) if the file comes from a trusted place.")


def _verified(data: bytes, path: Path) -> bytes:
    """The pickle bytes of ``data``, after checking its signature against the key, if any."""
    key, signed = _key(), data.startswith(SIGNATURE_HEADER)
    if not signed:
        if key is not None:
            raise ModelFileError(f"'{path}' is an unsigned pickle and {KEY_VARIABLE} is set, so "
                                 "refusing to load it: save it again with the key set, or use a "
                                 "JSON model.")
        return data
    header, body = data[:_SIGNATURE_LENGTH], data[_SIGNATURE_LENGTH:]
    tag = header[len(SIGNATURE_HEADER):-1]
    if header[-1:] != b"\n" or len(tag) != 64:
        raise ModelFileError(f"'{path}' has a damaged signature header (expected "
                             f"{SIGNATURE_HEADER.decode()}<64 hex digits> on the first line).")
    if key is None:
        logger.warning("'%s' is signed but %s is not set: its signature could not be verified",
                       path, KEY_VARIABLE)
        return body
    if not hmac.compare_digest(_signature(key, body), header):
        raise ModelFileError(f"'{path}' does not match its signature under {KEY_VARIABLE} (it "
                             "was changed since it was saved, or signed with another key); "
                             "refusing to load it.")
    return body


# ------------------------------------------------------------------------------- pickle
class _PlainUnpickler(pickle.Unpickler):
    """An unpickler for plain data: every class a file asks for outside :data:`ALLOWED_GLOBALS`
    is refused (``GLOBAL``, ``STACK_GLOBAL``, ``INST``, ``OBJ`` and the ``EXT`` codes all come
    through :meth:`find_class`), so ``REDUCE`` has nothing to call."""

    def __init__(self, handle, path: Path):
        super().__init__(handle)
        self._path = path

    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
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
def load(filepath: str | Path, trust_pickle: bool = True) -> dict[str, Any]:
    """The synthesizer state in a model file, pickle or JSON (told by its first bytes).

    ``trust_pickle=False`` refuses a pickle before reading it (the command line and job files
    pass it unless told otherwise).

    Raises:
        ModelFileError: the file is missing or is neither kind of hma_db model, or is a pickle
            that was not trusted or whose signature is missing or wrong while
            ``HMA_DB_MODEL_KEY`` is set.
    """
    path = Path(filepath)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelFileError(f"Model file '{path}' does not exist.") from exc
    except OSError as exc:
        raise ModelFileError(f"Model file '{path}' cannot be read: {exc}") from exc
    if _is_pickle(data):
        if not trust_pickle:
            raise _refuse_untrusted(path)
        return _state(_load_pickle(_verified(data, path), path), path, "a pickle")
    if data.lstrip()[:1] == b"{":
        return _state(_load_json(data, path), path, "JSON")
    raise ModelFileError(
        f"'{path}' is not an hma_db model: it is neither a pickle (first bytes 0x80 0x02-0x05 "
        f"or {SIGNATURE_HEADER.decode().strip()}) "
        f"nor a JSON model; its first bytes are {data[:8]!r}.")
