"""The ``hash`` and ``mask`` policies: source values made unrecognisable, column at a time.

Both work on whole arrays, never value by value: strings become a 2-D array of code points
(one row per value, one column per character), each character is classified (digit, lower- or
upper-case ASCII letter, anything else) and rewritten in place, and the rows are turned back
into strings. A value keeps its length and the class of every character, so it fits the
column's width and pattern (``AB-1234`` stays two capitals, a dash and four digits).

Letters outside ASCII become ASCII letters of their case.

``hash`` is keyed: pandas' SipHash of each value (``pandas.util.hash_array`` with a 16-byte key
derived from ``HMA_DB_HASH_KEY``) seeds a splitmix64 stream per character position. The same
value gives the same pseudonym in every table and every run with the same key, so an e-mail in
two tables still matches; without the key the pseudonym cannot be computed, and with another
key it differs. Numbers hash their digits (sign and decimal point kept, at most the largest
magnitude seen, so the type still holds them); dates and timestamps move by a keyed number of
days (at most half a year either way), keeping the time of day.

``mask`` is not keyed: letters become ``x``/``X`` and digits ``9``, optionally keeping the last N
characters or an e-mail's domain (from the ``@`` on).
"""

from __future__ import annotations

import base64
import decimal
import hashlib
import os

import numpy as np
import pandas as pd

from hma_db.errors import DataError
from hma_db.schema import HASH_KEY_VARIABLE, Policy

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_SHIFT_DAYS = 183  # a hashed date moves by at most half a year, so seasons roughly hold


def hash_key(where: str) -> str:
    """The 16-character SipHash key derived from ``HMA_DB_HASH_KEY``; a clear error without it."""
    secret = os.environ.get(HASH_KEY_VARIABLE, "")
    if not secret:
        raise DataError(f"{where}: policy 'hash' needs a secret key in the environment variable "
                        f"{HASH_KEY_VARIABLE} (never in a job file): set it, the same in every "
                        "run whose pseudonyms must match")
    return base64.b64encode(hashlib.sha256(secret.encode()).digest()[:12]).decode()


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: well spread 64-bit values from consecutive inputs."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _codes(texts: np.ndarray) -> tuple[np.ndarray, int]:
    fixed = texts.astype(str)
    width = max(1, fixed.dtype.itemsize // 4)
    fixed = fixed.astype(f"<U{width}")
    return fixed.view(np.uint32).reshape(len(texts), width).copy(), width


def _strings(codes: np.ndarray, width: int) -> np.ndarray:
    return codes.view(f"<U{width}").reshape(len(codes)).astype(object)


def _classes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Digits, lower-case letters and upper-case letters; a letter outside ASCII (é, ß, Ж)
    counts as lower- or upper-case too, so it never shows through."""
    chars = codes.view("<U1")
    letters = (codes > 127) & np.char.isalpha(chars)
    upper = ((codes >= 65) & (codes <= 90)) | (letters & np.char.isupper(chars))
    lower = ((codes >= 97) & (codes <= 122)) | (letters & ~upper)
    return (codes >= 48) & (codes <= 57), lower, upper


def _stream(seeds: np.ndarray, width: int) -> np.ndarray:
    positions = (np.arange(1, width + 1, dtype=np.uint64) * _GOLDEN)[None, :]
    with np.errstate(over="ignore"):
        return _mix(seeds[:, None] + positions)


def _hash_texts(texts: np.ndarray, key: str, letters: bool = True) -> np.ndarray:
    seeds = pd.util.hash_array(texts.astype(object), hash_key=key)
    codes, width = _codes(texts)
    random = _stream(seeds, width)
    digit, lower, upper = _classes(codes)
    codes[digit] = 48 + (random[digit] % np.uint64(10)).astype(np.uint32)
    if letters:
        codes[lower] = 97 + (random[lower] % np.uint64(26)).astype(np.uint32)
        codes[upper] = 65 + (random[upper] % np.uint64(26)).astype(np.uint32)
    return _strings(codes, width)


def hash_values(values: pd.Series, kind: str, where: str) -> pd.Series:
    """Keyed pseudonyms of the non-null ``values`` (see the module docstring)."""
    key = hash_key(where)
    if values.empty:
        return values
    if kind in ("date", "datetime") or pd.api.types.is_datetime64_any_dtype(values):
        seeds = pd.util.hash_array(values.astype(str).to_numpy(dtype=object), hash_key=key)
        days = (_mix(seeds) % np.uint64(2 * _SHIFT_DAYS + 1)).astype(np.int64) - _SHIFT_DAYS
        moved = pd.to_datetime(values) + pd.to_timedelta(days, unit="D")
        return pd.Series(moved.dt.date if kind == "date" else moved, index=values.index)
    if kind == "bool" or pd.api.types.is_bool_dtype(values):
        seeds = pd.util.hash_array(values.astype(str).to_numpy(dtype=object), hash_key=key)
        return pd.Series((_mix(seeds) % np.uint64(2)).astype(bool), index=values.index)
    if kind in ("int", "float", "decimal") or pd.api.types.is_numeric_dtype(values):
        return _hash_numbers(values, kind, key)
    if kind not in ("str", "uuid"):
        raise DataError(f"{where}: policy 'hash' works on text, numbers, dates and booleans; "
                        f"this column holds {kind} values: use null, constant or fake")
    texts = values.astype(str).to_numpy(dtype=object)
    return pd.Series(_hash_texts(texts, key), index=values.index)


def _hash_numbers(values: pd.Series, kind: str, key: str) -> pd.Series:
    texts = values.astype(str).to_numpy(dtype=object)
    hashed = _hash_texts(texts, key, letters=False)  # 'e', 'inf', 'nan' left as they are
    if kind == "decimal":  # one Decimal per distinct value: the caller hashes distinct values
        return pd.Series(hashed, index=values.index).map(decimal.Decimal)
    numbers = pd.to_numeric(pd.Series(hashed, index=values.index), errors="coerce")
    largest = float(np.nanmax(np.abs(values.astype(float)))) if len(values) else 0.0
    # Same digits, so the same magnitude: but 99 may become 127 in a column whose largest is 99.
    numbers = numbers.where(numbers.abs() <= largest, numbers % (largest + 1))
    if kind == "int" or pd.api.types.is_integer_dtype(values):
        return numbers.round().astype(values.dtype if values.dtype != object else "int64")
    return numbers.astype(float)


def mask_values(values: pd.Series, policy: Policy, kind: str, where: str) -> pd.Series:
    """``values`` (non-null text) with letters as ``x``/``X`` and digits as ``9``, keeping the
    last ``policy.keep_last`` characters, or from the ``@`` on with ``policy.keep_domain``."""
    if kind not in ("str", "uuid"):
        raise DataError(f"{where}: policy 'mask' works on text; this column holds {kind} "
                        "values: use hash, null or constant")
    if values.empty:
        return values
    texts = values.astype(str).to_numpy(dtype=object)
    codes, width = _codes(texts)
    lengths = np.char.str_len(texts.astype(str))
    positions = np.arange(width)[None, :]
    kept = positions >= (lengths - policy.keep_last)[:, None] if policy.keep_last else \
        np.zeros(codes.shape, dtype=bool)
    if policy.keep_domain:
        at = np.char.find(texts.astype(str), "@")
        kept |= (at[:, None] >= 0) & (positions >= at[:, None])
    digit, lower, upper = _classes(codes)
    codes[digit & ~kept] = ord("9")
    codes[lower & ~kept] = ord("x")
    codes[upper & ~kept] = ord("X")
    return pd.Series(_strings(codes, width), index=values.index)
