"""Unique key values: integers, strings following a pattern, uuids.

A string key follows a *pattern*: the column's ``regex_format`` from the metadata, or one learned
from the source values (``ALFKI``, ``ANATR`` -> ``[A-Z]{5}``; ``INV-0012`` -> ``INV-[0-9]{4}``
when every value shares the prefix). Patterns are a small regex subset: literal characters,
escapes, ``\\d``, ``\\w``, ``.``, character classes with ranges, and the quantifiers ``{m}``,
``{m,n}``, ``?``, ``*``, ``+`` (a variable count is generated at its largest, or 1 for ``*`` and
``+``, which still matches). Unique values are drawn as distinct integers below the number of
strings the pattern allows and written in mixed radix: vectorized, no rejection loop per row.
"""

from __future__ import annotations

import math
import re
import string
from typing import Any

import numpy as np
import pandas as pd

from hma_db.errors import MetadataError, SamplingError

_CLASSES = {"d": string.digits, "w": string.ascii_letters + string.digits + "_",
            "s": " "}
_DOT = string.ascii_letters + string.digits
_ANY_LENGTH = 1  # repetitions generated for '*' and '+'


def _class_chars(body: str) -> str:
    chars: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            chars += list(_CLASSES.get(body[i + 1], body[i + 1]))
            i += 2
        elif i + 2 < len(body) and body[i + 1] == "-":
            chars += [chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1)]
            i += 3
        else:
            chars.append(body[i])
            i += 1
    return "".join(dict.fromkeys(chars))


def _quantifier(pattern: str, i: int) -> tuple[int, int]:
    """(repetitions, characters consumed) for the quantifier at ``pattern[i:]``."""
    if i >= len(pattern):
        return 1, 0
    if pattern[i] == "{":
        end = pattern.index("}", i)
        bounds = pattern[i + 1:end].split(",")
        return int(bounds[-1] or bounds[0]), end + 1 - i
    return {"?": (1, 1), "*": (_ANY_LENGTH, 1), "+": (_ANY_LENGTH, 1)}.get(pattern[i], (1, 0))


def parse_pattern(pattern: str, where: str) -> list[str]:
    """The pattern as one alphabet per generated character position."""
    body = pattern.removeprefix("^").removesuffix("$")
    positions: list[str] = []
    i = 0
    try:
        while i < len(body):
            char = body[i]
            if char in "()|":
                raise ValueError("groups and alternatives are not supported")
            if char == "[":
                end = body.index("]", i + 1)
                if body[i + 1] == "^":
                    raise ValueError("negated classes are not supported")
                alphabet, i = _class_chars(body[i + 1:end]), end + 1
            elif char == "\\":
                alphabet, i = _CLASSES.get(body[i + 1], body[i + 1]), i + 2
            else:
                alphabet, i = (_DOT if char == "." else char), i + 1
            count, used = _quantifier(body, i)
            positions += [alphabet] * count
            i += used
    except (ValueError, IndexError) as exc:
        raise MetadataError(f"Column {where}: cannot generate values for regex_format "
                            f"{pattern!r}: {exc}") from exc
    return positions


def _char_class(char: str) -> str:
    if char.isdigit():
        return "[0-9]"
    if char.isalpha():
        return "[A-Z]" if char.isupper() else "[a-z]"
    return re.escape(char)


def learn_pattern(values: pd.Series, min_count: int) -> str | None:
    """A pattern for fixed-length string keys, or None when the lengths vary.

    A position keeps its literal character when every value (at least ``min_count`` of them)
    has the same one there; otherwise it becomes a class (digits, upper or lower case letters,
    or their union when the position mixes them).
    """
    text = values.dropna().astype(str)
    lengths = text.str.len().unique()
    if len(text) == 0 or len(lengths) != 1 or lengths[0] == 0:
        return None
    chars = np.array([list(v) for v in text.iloc[:10_000]])
    parts: list[str] = []
    for column in chars.T:
        distinct = set(column.tolist())
        if len(distinct) == 1 and len(text) >= min_count:
            parts.append(re.escape(column[0]))
            continue
        classes = {_char_class(c) for c in distinct}
        if len(classes) == 1:
            parts.append(classes.pop())
        else:
            inner = "".join(sorted(c.strip("[]") for c in classes if c.startswith("[")))
            parts.append(f"[{inner}]" if all(c.startswith("[") for c in classes) else "[A-Za-z0-9]")
    return _compress(parts)


def _compress(parts: list[str]) -> str:
    """``['[A-Z]', '[A-Z]', '-']`` -> ``'[A-Z]{2}-'``."""
    out: list[str] = []
    i = 0
    while i < len(parts):
        j = i
        while j < len(parts) and parts[j] == parts[i]:
            j += 1
        out.append(parts[i] + (f"{{{j - i}}}" if j - i > 1 else ""))
        i = j
    return "".join(out)


def learn_key(series: pd.Series, spec: dict[str, Any], min_count: int) -> dict[str, Any]:
    """How to generate a key column: ``int``, ``uuid``, ``pattern`` or ``prefix`` (+ counter)."""
    from hma_db.values import value_kind

    kind = value_kind(series)
    if spec.get("generator") == "uuid" or kind == "uuid":
        return {"kind": "uuid"}
    if kind in ("int", "float", "decimal"):
        return {"kind": "int"}
    if spec.get("regex_format"):
        return {"kind": "pattern", "pattern": spec["regex_format"]}
    text = series.dropna().astype(str)
    if text.empty:  # no rows to learn from: numbers, or numbers written as text
        return {"kind": "int"} if pd.api.types.is_numeric_dtype(series.dtype) else {
            "kind": "prefix", "prefix": ""}
    pattern = learn_pattern(text, min_count)
    if pattern is not None:
        return {"kind": "pattern", "pattern": pattern}
    match = text.str.extract(r"^(\D*)(\d+)$")
    prefixes = match[0].dropna().unique()
    if match[1].notna().all() and len(prefixes) == 1:
        return {"kind": "prefix", "prefix": str(prefixes[0]),
                "max_length": spec.get("max_length")}
    width = int(text.str.len().max())
    return {"kind": "pattern", "pattern": f"[A-Z0-9]{{{max(width, 1)}}}"}


def generate_key(spec: dict[str, Any], n: int, rng: np.random.Generator, start: int,
                 where: str) -> np.ndarray:
    """``n`` distinct values following a learned key spec (ints are ``start..start+n-1``)."""
    kind = spec["kind"]
    if kind == "int":
        return np.arange(start, start + n, dtype="int64")
    if kind == "prefix":
        prefix, limit = spec["prefix"], spec.get("max_length")
        if limit and len(prefix) + len(str(start + n - 1)) > limit:
            # The counter outgrows the column: random digits and letters of the allowed width.
            alphabet = string.digits + string.ascii_uppercase
            positions = list(prefix) + [alphabet] * max(limit - len(prefix), 0)
            return pattern_strings(positions, n, rng, where)
        return np.char.add(prefix, np.arange(start, start + n).astype(str)).astype(object)
    if kind == "uuid":
        return uuids(n, rng)
    return pattern_strings(parse_pattern(spec["pattern"], where), n, rng, where)


def _distinct_below(space: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct integers in ``[0, space)``, in random order."""
    if space <= 4 * n:
        return rng.permutation(space)[:n]
    out = np.unique(rng.integers(space, size=n + n // 8 + 16))
    while len(out) < n:
        out = np.unique(np.concatenate([out, rng.integers(space, size=n - len(out) + 16)]))
    return rng.permutation(out)[:n]


def pattern_strings(positions: list[str], n: int, rng: np.random.Generator,
                    where: str) -> np.ndarray:
    """``n`` distinct strings, one character per position from its alphabet."""
    sizes = [len(a) for a in positions]
    space = math.prod(sizes)
    if space < n:
        raise SamplingError(f"Column {where}: its pattern allows only {space} distinct values; "
                            f"{n} unique values were requested. Set a wider regex_format.")
    if not positions:
        return np.full(n, "", dtype=object)
    # Draw the number in mixed radix from the last (fastest) position; cap so int64 never
    # overflows: positions beyond the first 18 decimal digits of variety are drawn freely.
    codes = np.zeros((n, len(positions)), dtype="int64")
    budget = min(space, 2**62)
    numbers = _distinct_below(budget, n, rng) if budget == space else None
    for j in range(len(positions) - 1, -1, -1):
        if numbers is not None:
            codes[:, j], numbers = numbers % sizes[j], numbers // sizes[j]
        else:
            codes[:, j] = rng.integers(sizes[j], size=n)
    chars = np.empty((n, len(positions)), dtype="<U1")
    for j, alphabet in enumerate(positions):
        chars[:, j] = np.array(list(alphabet))[codes[:, j]]
    out = chars.view(f"<U{len(positions)}").ravel().astype(object)
    if numbers is None and len(pd.unique(out)) < n:
        return pattern_strings(positions, n, rng, where)  # astronomically rare
    return out


def uuids(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random version-4 uuid strings (lower case, with dashes)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    digits = np.array(list("0123456789abcdef"))
    hexes = np.stack([digits[raw >> 4], digits[raw & 0x0F]], axis=2).reshape(n, 32)
    dash = np.full((n, 1), "-")
    parts = [hexes[:, :8], dash, hexes[:, 8:12], dash, hexes[:, 12:16], dash, hexes[:, 16:20],
             dash, hexes[:, 20:]]
    return np.concatenate(parts, axis=1).astype("<U1").view("<U36").ravel().astype(object)
