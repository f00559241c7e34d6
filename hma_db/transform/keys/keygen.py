"""Unique key values: integers, strings following a pattern, uuids.

A string key follows a *pattern*: the column's ``regex_format`` from the metadata, or one learned
from the source values (``ALFKI``, ``ANATR`` -> ``[A-Z]{5}``; ``INV-0012`` -> ``INV-[0-9]{4}``
when every value shares the prefix). Patterns are a small regex subset: literal characters,
escapes, ``\\d``, ``\\w``, ``.``, character classes with ranges, and the quantifiers ``{m}``,
``{m,n}``, ``?``, ``*``, ``+`` (a variable count is generated at its largest, or 1 for ``*`` and
``+``, which still matches).

Every kind is a *sequence*: the value at position ``i`` of a run is a function of ``i`` and a
seed. Integers are ``i + 1``, prefixed keys count; patterned strings write a keyed permutation
of ``i`` (a Feistel network, :func:`permute`) in mixed radix; uuids carry a 64-bit bijection
of ``i``. Distinct positions therefore give distinct values by construction, so chunked
sampling (:class:`Span`) keeps keys unique across chunks with no memory of earlier chunks and
no rejection loop; everything is vectorized over rows.
"""

from __future__ import annotations

import math
import re
import string
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

import hma_db.transform.keys.keytime as keytime
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
    """How to generate a key column: ``int``, ``uuid``, ``pattern``, ``prefix`` (+ counter),
    ``temporal`` (dates, timestamps, times) or ``listed`` (a list partition's values)."""
    from hma_db.schema import value_kind

    kind = value_kind(series)
    listed = (spec.get("partition_bounds") or {}).get("values")
    if listed:  # a list partition's column takes only the listed values
        return keytime.learn_listed(series, listed)
    temporal = keytime.temporal_type(series, kind)
    if temporal:  # dates and timestamps stay dates and timestamps (keytime's docstring)
        return keytime.learn_temporal(series, spec, temporal, kind)
    if spec.get("generator") == "uuid" or kind == "uuid":
        return {"kind": "uuid"}
    if kind in ("int", "float", "decimal"):
        if _digit_pattern(spec.get("regex_format")):  # SDV: an integer id written by a regex
            return {"kind": "int_pattern", "pattern": spec["regex_format"]}
        ranges = keytime.integer_ranges(spec)  # a range partition's bounds, if any
        return {"kind": "int"} if ranges is None else {"kind": "int", "ranges": ranges}
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


def _digit_pattern(regex: Any) -> bool:
    """Whether ``regex`` writes only digits, so it can number an integer key."""
    if not isinstance(regex, str):
        return False
    try:
        positions = parse_pattern(regex, "")
    except MetadataError:
        return False
    return bool(positions) and all(set(a) <= set(string.digits) for a in positions)


def pattern_integers(pattern: str, index: np.ndarray, seed: int, where: str,
                     total: int) -> np.ndarray:
    """An integer key following a digits-only ``regex_format`` (``[1-9]{17}``): int64 where
    every value fits, else exact Python integers (a regex beyond 19 digits)."""
    text = pattern_strings(parse_pattern(pattern, where), index, seed, where, total)
    if len(parse_pattern(pattern, where)) <= 18:
        return text.astype(np.int64)
    return np.array([int(t) for t in text], dtype=object)  # beyond int64: exact


@dataclass(frozen=True)
class Span:
    """Where one call's rows sit in a sampling run of a table (chunked sampling).

    The rows are positions ``offset .. offset + rows - 1`` of the run's ``total`` rows. Unique
    values (keys, unique personal data) are a function of ``seed`` and the position, so calls
    over disjoint spans of one run never repeat a value, and nothing is remembered between them.
    """

    seed: int
    offset: int
    total: int

    def column_seed(self, table: str, column: str) -> int:
        """The seed of one column's sequence (stable across processes: no ``hash()``)."""
        name = zlib.crc32(f"{table}.{column}".encode())
        return int(np.random.SeedSequence([int(self.seed), name]).generate_state(
            1, np.uint64)[0] >> 1)


def sequence(span: Span | None, table: str, column: str) -> dict[str, int]:
    """``generate_key`` keywords placing a column's values in a chunked run (none alone)."""
    return {} if span is None else {"seed": span.column_seed(table, column), "total": span.total}


def generate_key(spec: dict[str, Any], n: int, rng: np.random.Generator, start: int,
                 where: str, *, seed: int | None = None, total: int | None = None) -> np.ndarray:
    """``n`` distinct values: positions ``start .. start + n - 1`` of the column's key sequence.

    Integers are the positions themselves; prefixed strings count them; patterned strings and
    uuids are a keyed permutation of them (see the module docstring), fixed by ``seed`` (drawn
    from ``rng`` when not given). Calls with one seed over disjoint positions never repeat a
    value. ``total`` is the last position of the whole run (chunked sampling): it decides
    whether a prefix counter still fits ``max_length`` and whether the pattern has room.
    """
    total = max(int(total or 0), start + n - 1)
    if seed is None and not _counted(spec, total, where):
        seed = int(rng.integers(2**63))
    index = np.arange(start - 1, start - 1 + n, dtype="int64")
    return _values_at(spec, index, seed, where, total)


def _counted(spec: dict[str, Any], total: int, where: str) -> bool:
    """Whether the column's values count the positions (no seed: integers, a prefix counter
    that fits its column)."""
    return spec["kind"] == "int" or (spec["kind"] == "prefix" and _space(spec, total, where) is None)


def _space(spec: dict[str, Any], total: int, where: str) -> int | None:
    """How many distinct values a key column can take in a run of ``total`` rows (None: enough
    for any run)."""
    kind = spec["kind"]
    if kind in ("temporal", "listed"):
        return keytime.space(spec, total)
    if kind == "int" and spec.get("ranges"):
        return keytime.integer_room(spec["ranges"])
    if kind in ("pattern", "int_pattern"):
        return math.prod(len(a) for a in parse_pattern(spec["pattern"], where))
    if kind == "prefix":
        prefix, limit = spec["prefix"], spec.get("max_length")
        if limit and len(prefix) + len(str(total)) > limit:
            return 36 ** max(limit - len(prefix), 0)
    return None


def generate_composite_key(specs: list[dict[str, Any]], n: int, rng: np.random.Generator,
                           start: int, wheres: list[str], *, seeds: list[int | None] | None = None,
                           total: int | None = None) -> list[np.ndarray]:
    """Values for the generated columns of a composite primary key: only the combination is
    unique, so a column with few possible values (a one-letter code) may repeat.

    The widest column carries the row's position; the others cycle through their own keyed
    sequences. When no column alone has room for the run, the position is spread over the
    columns in mixed radix (widest first). Values depend only on the position and the seeds,
    as in :func:`generate_key`, so chunks of one run never repeat a combination.
    """
    total = max(int(total or 0), start + n - 1)
    seeds = list(seeds) if seeds is not None else [None] * len(specs)
    spaces = _composite_spaces(specs, total, wheres)
    order = sorted(range(len(specs)), key=lambda j: -(spaces[j] or 2**63))
    index = np.arange(start - 1, start - 1 + n, dtype="int64")
    positions: dict[int, np.ndarray] = {}
    free: set[int] = set()  # dates and listed values beside a column that carries the position
    if spaces[order[0]] is None or spaces[order[0]] >= total:
        for j in order:
            positions[j] = index if spaces[j] is None else index % spaces[j]
        free = {j for j in order[1:] if specs[j]["kind"] in _DRAWN}
    else:
        if math.prod(spaces) < total:
            raise SamplingError(
                f"The key ({', '.join(wheres)}) allows only {math.prod(spaces)} distinct "
                f"combinations; {total} were requested. Set a wider regex_format.")
        rest = index
        if any(specs[j]["kind"] in _DRAWN for j in order) and math.prod(spaces) <= 2**62:
            # Spread the positions over every combination, so that the last column (a list
            # partition's value) is not the same for the first rows of the run.
            first = seeds[order[0]]
            mixer = int(rng.integers(2**63)) if first is None else (first ^ 0x5BD1E995)
            rest = permute(index, math.prod(spaces), mixer)
        for j in order:
            positions[j], rest = rest % spaces[j], rest // spaces[j]
    out = []
    for j, spec in enumerate(specs):
        seed = seeds[j]
        if seed is None and not _counted(spec, total, wheres[j]):  # draws as generate_key does
            seed = int(rng.integers(2**63))
        room = total if spaces[j] is None else min(total, spaces[j])
        out.append(_values_at(spec, positions[j], seed, wheres[j], room, unique=j not in free))
    return out


_DRAWN = ("temporal", "listed")  # key kinds drawn from a distribution where they may repeat


def _composite_spaces(specs: list[dict[str, Any]], total: int, wheres: list[str]
                      ) -> list[int | None]:
    """The room of each column of a composite key: dates within their seen range, so that a
    date keeps its distribution while another column carries the position; widened beyond it
    only when no combination of the columns has room otherwise."""
    seen = [keytime.space(spec, 0) if spec["kind"] == "temporal" else _space(spec, total, where)
            for spec, where in zip(specs, wheres, strict=True)]
    if any(s is None or s >= total for s in seen) or math.prod(seen) >= total:
        return seen
    return [_space(spec, total, where) for spec, where in zip(specs, wheres, strict=True)]


def _values_at(spec: dict[str, Any], index: np.ndarray, seed: int | None, where: str,
               total: int, unique: bool = True) -> np.ndarray:
    """A key column's values at the 0-based positions ``index`` of its sequence; ``total``
    values of it are needed in the whole run (whether a prefix counter fits, whether a
    pattern has room). A date or listed column that need not be unique (``unique=False``)
    is drawn from its distribution."""
    kind = spec["kind"]
    if kind == "int":
        if spec.get("ranges"):
            return keytime.integers_in_ranges(spec["ranges"], index, where, total)
        return index + 1
    if kind in ("temporal", "listed"):
        return keytime.values(spec, index, seed, where, total, unique, permute, _mix)
    if kind == "uuid":
        return keyed_uuids(index, seed)
    if kind == "int_pattern":
        return pattern_integers(spec["pattern"], index, seed, where, total)
    if kind == "prefix":
        prefix, limit = spec["prefix"], spec.get("max_length")
        if not (limit and len(prefix) + len(str(total)) > limit):
            return np.char.add(prefix, (index + 1).astype(str)).astype(object)
        # The counter outgrows the column (somewhere in the run, so the whole run switches):
        # digits and letters of the allowed width.
        positions = list(prefix) + [string.digits + string.ascii_uppercase] * max(
            limit - len(prefix), 0)
    else:
        positions = parse_pattern(spec["pattern"], where)
    return pattern_strings(positions, index, seed, where, total)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a bijection of the 64-bit integers that scatters neighbours."""
    x = x.astype(np.uint64)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)  # uint64 arrays wrap around, as the mixer wants
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def permute(index: np.ndarray, space: int, seed: int) -> np.ndarray:
    """A keyed permutation of ``[0, space)`` (``space`` <= 2**62) applied to ``index``.

    A 4-round Feistel network on the smallest even number of bits that holds ``space``, with
    cycle walking (values that land outside ``[0, space)`` go round again), so distinct
    indices always give distinct numbers and no table of the permutation is ever built.
    """
    index = np.asarray(index, dtype=np.int64)
    if space <= 1:
        return np.zeros(len(index), dtype=np.int64)
    half = ((space - 1).bit_length() + 1) // 2
    mask, shift = np.uint64((1 << half) - 1), np.uint64(half)
    keys = np.random.SeedSequence(int(seed)).generate_state(4, np.uint64)
    out = index.astype(np.uint64)
    todo = np.arange(len(out))
    while len(todo):  # 2**(2*half) < 4 * space: a few passes over fewer and fewer values
        left, right = out[todo] >> shift, out[todo] & mask
        for key in keys:
            left, right = right, left ^ (_mix(right ^ key) & mask)
        out[todo] = (left << shift) | right
        todo = todo[out[todo] >= np.uint64(space)]
    return out.astype(np.int64)


def pattern_strings(positions: list[str], index: np.ndarray, seed: int, where: str,
                    total: int | None = None) -> np.ndarray:
    """The strings at ``index`` (distinct indices give distinct strings) of a keyed sequence
    of the strings with one character per position from its alphabet.

    The last positions (as many as 2**62 values can number) spell a keyed permutation of the
    index in mixed radix; any earlier positions are filled from a hash of the index.
    """
    index = np.asarray(index, dtype=np.int64)
    n = len(index)
    sizes = [len(a) for a in positions]
    space = math.prod(sizes)
    needed = max(int(total or 0), int(index.max()) + 1 if n else 0)
    if space < needed:
        raise SamplingError(f"Column {where}: its pattern allows only {space} distinct values; "
                            f"{needed} unique values were requested. Set a wider regex_format.")
    if not positions:
        return np.full(n, "", dtype=object)
    first, permuted = len(positions), 1
    while first > 0 and permuted * sizes[first - 1] <= 2**62:
        first -= 1
        permuted *= sizes[first]
    codes = np.zeros((n, len(positions)), dtype="int64")
    numbers = permute(index, permuted, seed)
    for j in range(len(positions) - 1, first - 1, -1):
        codes[:, j], numbers = numbers % sizes[j], numbers // sizes[j]
    filler = _mix(index.astype(np.uint64) + np.random.SeedSequence([int(seed), 1]).generate_state(
        1, np.uint64)[0])
    for j in range(first):
        codes[:, j] = (filler % np.uint64(sizes[j])).astype("int64")
        filler = _mix(filler)
    chars = np.empty((n, len(positions)), dtype="<U1")
    for j, alphabet in enumerate(positions):
        chars[:, j] = np.array(list(alphabet))[codes[:, j]]
    return chars.view(f"<U{len(positions)}").ravel().astype(object)


def _uuid_text(raw: np.ndarray) -> np.ndarray:
    """Rows of 16 bytes as version-4 uuid strings (lower case, with dashes)."""
    n = len(raw)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    digits = np.array(list("0123456789abcdef"))
    hexes = np.stack([digits[raw >> 4], digits[raw & 0x0F]], axis=2).reshape(n, 32)
    dash = np.full((n, 1), "-")
    parts = [hexes[:, :8], dash, hexes[:, 8:12], dash, hexes[:, 12:16], dash, hexes[:, 16:20],
             dash, hexes[:, 20:]]
    return np.concatenate(parts, axis=1).astype("<U1").view("<U36").ravel().astype(object)


def uuids(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random version-4 uuid strings (lower case, with dashes)."""
    return _uuid_text(rng.integers(0, 256, size=(n, 16), dtype=np.uint8))


# Bytes of a uuid that carry no version or variant bit: 8 of them hold the unique part.
_UNIQUE_BYTES = [7, 9, 10, 11, 12, 13, 14, 15]
_OTHER_BYTES = [0, 1, 2, 3, 4, 5, 6, 8]


def keyed_uuids(index: np.ndarray, seed: int) -> np.ndarray:
    """Version-4 uuid strings at ``index`` of a keyed sequence: distinct indices (below 2**64)
    give distinct uuids, because 64 of the 122 random-looking bits are a bijection of the index.
    """
    index = np.asarray(index, dtype=np.int64).astype(np.uint64)
    keys = np.random.SeedSequence(int(seed)).generate_state(2, np.uint64)
    raw = np.empty((len(index), 16), dtype=np.uint8)
    raw[:, _UNIQUE_BYTES] = _bytes(_mix(index + keys[0]))
    raw[:, _OTHER_BYTES] = _bytes(_mix(index ^ keys[1]))
    return _uuid_text(raw)


def _bytes(words: np.ndarray) -> np.ndarray:
    return words.astype(">u8").view(np.uint8).reshape(len(words), 8)
