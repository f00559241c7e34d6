"""Model files: a pickle (SDV's format) or a plain-data JSON model that runs no code to load.

Pickle runs code while it loads, so a pickle is only read after two checks: the file starts
with a pickle protocol header, and the first class the stream asks for is hma_db's
``HMASynthesizer``; every later class must come from a library a model is made of, and names
that load files, import modules or evaluate code are refused. This narrows, but cannot close,
what a crafted pickle can do: accept pickles only from trusted sources and exchange models as
JSON otherwise.

The JSON model is ``{"format": "hma_db-model", "version": 1, "synthesizer": state}``; numpy
arrays, numpy scalars, tuples and dicts with non-string keys are written as small tagged
objects so that they come back exactly as they were saved (floats round-trip exactly), and
loading builds nothing but those values.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
import json
import pickle
import re
import types
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hma_db.errors import ModelFileError

FORMAT = "hma_db-model"
VERSION = 1
_ROOT_CLASS = ("hma_db.synthesizer.hma", "HMASynthesizer")
# Packages whose classes make up a fitted model (numpy/pandas containers, the transformers,
# the marginals, Faker generators, the reflected SQLAlchemy schema).
_PACKAGES = {"hma_db", "numpy", "pandas", "scipy", "sklearn", "rdt", "copulas", "faker",
             "sqlalchemy", "collections", "datetime", "decimal", "uuid", "copyreg", "_codecs",
             "random", "zoneinfo", "pytz", "dateutil", "enum", "re", "_random", "ipaddress"}
_BUILTINS = {"set", "frozenset", "list", "dict", "tuple", "bytearray", "bytes", "complex",
             "slice", "range", "object", "int", "float", "str", "bool", "NotImplemented",
             "Ellipsis"}
_RNG_CONSTRUCTORS = {("numpy.random._pickle", n) for n in
                     ("__generator_ctor", "__bit_generator_ctor", "__randomstate_ctor")}
_CLASS_ATTRIBUTES = {"_kw_reg_for_dialect_cls"}
# Name parts that load files, import modules, run code or write: never part of a model.
_FORBIDDEN = {"eval", "exec", "system", "popen", "spawn", "import", "load", "loads", "read",
              "open", "compile", "getattr", "setattr", "delattr", "globals", "locals", "shell",
              "call", "run", "execute", "input", "breakpoint", "write", "remove", "unlink",
              "rmtree", "fromfile", "tofile", "pickle", "clone", "connect", "engine"}


# ------------------------------------------------------------------------------- pickle
def save_pickle(obj: Any, filepath: str | Path) -> None:
    """Write ``obj`` as a pickle (protocol 5)."""
    path = Path(filepath)
    with path.open("wb") as handle:
        pickle.dump(obj, handle, protocol=5)


class _ModelUnpickler(pickle.Unpickler):
    """An unpickler that resolves a narrow set of classes, the first one being the model's."""

    def __init__(self, handle, path: Path):
        super().__init__(handle)
        self._path = path
        self._first = True

    def find_class(self, module: str, name: str):
        if self._first:
            self._first = False
            if (module, name) != _ROOT_CLASS:
                raise ModelFileError(
                    f"'{self._path}' is a pickle of {module}.{name}, not an hma_db "
                    "HMASynthesizer; refusing to load it.")
        elif (module, name) == ("builtins", "getattr"):
            return _class_attribute
        elif not _allowed(module, name):
            raise ModelFileError(
                f"'{self._path}' asks for {module}.{name}, which an hma_db model never "
                "contains; refusing to load it (the file may have been tampered with).")
        found = super().find_class(module, name)
        if isinstance(found, types.ModuleType):
            raise ModelFileError(f"'{self._path}' asks for the module {module}.{name}; "
                                 "refusing to load it.")
        return found


def _class_attribute(owner: Any, name: str) -> Any:
    """The only ``getattr`` a model needs: SQLAlchemy's per-dialect keyword registry."""
    if not isinstance(owner, type) or name not in _CLASS_ATTRIBUTES \
            or owner.__module__.split(".")[0] not in _PACKAGES:
        raise ModelFileError(f"A model pickle asked for the attribute {name!r} of {owner!r}; "
                             "refusing to load it.")
    return getattr(owner, name)


def _allowed(module: str, name: str) -> bool:
    if (module, name) in _RNG_CONSTRUCTORS:
        return True
    if module == "builtins":
        return name in _BUILTINS
    if module.split(".")[0] not in _PACKAGES:
        return False
    if module.startswith("hma_db") and not name[:1].isupper():
        return False  # hma_db's own functions are never needed, only its classes
    parts = set(re.split(r"[^a-z0-9]+", f"{module}.{name}".lower()))
    return not parts & _FORBIDDEN


def _load_pickle(data: bytes, path: Path):
    from hma_db.synthesizer.hma import HMASynthesizer

    try:
        obj = _ModelUnpickler(io.BytesIO(data), path).load()
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure means "not a readable model"
        raise ModelFileError(f"'{path}' could not be read as an hma_db model pickle: "
                             f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, HMASynthesizer):
        raise ModelFileError(f"'{path}' holds a {type(obj).__name__}, not an HMASynthesizer.")
    return obj


# --------------------------------------------------------------------------------- JSON
def save_json(state: dict[str, Any], filepath: str | Path) -> None:
    """Write a synthesizer state as a JSON model."""
    document = {"format": FORMAT, "version": VERSION, "synthesizer": encode(state)}
    Path(filepath).write_text(json.dumps(document, allow_nan=True), encoding="utf-8")


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
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biufcMm":
        scalar = str(value) if value.dtype.kind in "Mm" else value.item()
        return {"__npscalar__": scalar, "dtype": value.dtype.str}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: encode(v, f"{where}.{k}") for k, v in value.items()}
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
    raise ModelFileError(f"Cannot write {where} as JSON: a {type(value).__name__} is not plain "
                         "data; save with format='pickle' instead.")


def _encode_array(array: np.ndarray, where: str) -> dict[str, Any]:
    if array.dtype.kind == "O":
        return {"__ndarray__": [encode(v, where) for v in array.ravel().tolist()],
                "dtype": "object", "shape": list(array.shape)}
    if array.dtype.kind not in "biufcUSM m":
        raise ModelFileError(f"Cannot write {where} as JSON: arrays of dtype {array.dtype}.")
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


def _load_json(data: bytes, path: Path) -> dict[str, Any]:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"'{path}' is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError(f"'{path}' is JSON but not an hma_db model (expected "
                             f"\"format\": \"{FORMAT}\").")
    if document.get("version") != VERSION:
        raise ModelFileError(f"'{path}' is an hma_db model of version "
                             f"{document.get('version')!r}; this hma_db reads version {VERSION}.")
    try:
        return decode(document["synthesizer"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"'{path}' is a damaged hma_db JSON model: {exc}") from exc


# ------------------------------------------------------------------------------- detect
def load(filepath: str | Path) -> tuple[str, Any]:
    """``("pickle", synthesizer)`` or ``("json", state)`` from a model file.

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
        return "pickle", _load_pickle(data, path)
    if data.lstrip()[:1] == b"{":
        return "json", _load_json(data, path)
    raise ModelFileError(
        f"'{path}' is not an hma_db model: it is neither a pickle (first bytes 0x80 0x02-0x05) "
        f"nor a JSON model; its first bytes are {data[:8]!r}.")
