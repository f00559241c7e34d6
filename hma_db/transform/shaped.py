"""Values of structured types, generated valid for their type: MAC addresses, ranges, bit
strings, SET combinations and points.

Like :mod:`hma_db.transform.generators`, what is learned is a shape, never values: the number
of octets of a MAC address; the element type, bounds, widths and bound styles of a range; the
lengths of bit strings; how many members a SET value holds (the members themselves are the
column's declared vocabulary, a closed list like an ENUM's); the extent of points. Every value is
written in the input syntax of its type (``'[3,17)'``, ``'0101'``, ``'POINT(1.5 2)'``), which a
PostgreSQL or MariaDB column of that type accepts and any other target keeps as text.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

_SAMPLE = 2_000  # rows looked at to learn a shape
_QUANTILES = np.linspace(0.0, 1.0, 21)


def _quantiles(values: np.ndarray) -> list[float]:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [0.0] * len(_QUANTILES)
    return [float(q) for q in np.quantile(values, _QUANTILES)]


def _draw(points: list[float], n: int, rng: np.random.Generator) -> np.ndarray:
    return np.interp(rng.random(n), _QUANTILES, np.asarray(points, dtype=float))


def _join(parts: list[np.ndarray], sep: str) -> np.ndarray:
    out = parts[0].astype(object)
    for part in parts[1:]:
        out = out + sep + part.astype(object)
    return out


# --------------------------------------------------------------------------- MAC addresses
def learn_mac(values: pd.Series) -> dict[str, Any]:
    """The number of octets (6 for ``macaddr``, 8 for ``macaddr8``)."""
    octets = values.iloc[:_SAMPLE].astype(str).str.count(":") + 1
    return {"octets": int(octets.max()) if len(octets) else 6}


def mac_addresses(spec: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
    """Random unicast, locally administered MAC addresses (never a real vendor's prefix)."""
    matrix = rng.integers(0, 256, size=(n, int(spec.get("octets", 6))))
    matrix[:, 0] = (matrix[:, 0] & 0xFC) | 0x02
    hexes = np.char.mod("%02x", matrix)
    return _join([hexes[:, j] for j in range(hexes.shape[1])], ":") if n else \
        np.empty(0, dtype=object)


# ----------------------------------------------------------------------------------- ranges
_RANGE = re.compile(r'^\s*([\[(])\s*"?([^",]*)"?\s*,\s*"?([^",]*)"?\s*([\])])\s*$')
_INT = re.compile(r"^-?\d+$")
_DATE = re.compile(r"^-?\d{4}-\d{2}-\d{2}$")
_ZONED = re.compile(r"[+-]\d{2}(?::?\d{2})?$|Z$")
_DAY_S = 86_400


def _range_text(value: Any) -> str:
    """A range as text, from a driver's range object (``lower``/``upper``/``bounds``) or text."""
    if hasattr(value, "bounds") and hasattr(value, "lower"):
        if getattr(value, "empty", False):
            return "empty"
        lower = "" if value.lower is None else str(value.lower)
        upper = "" if value.upper is None else str(value.upper)
        return f'{value.bounds[0]}"{lower}","{upper}"{value.bounds[1]}'
    return str(value)


def _element(bounds: pd.Series) -> str:
    sample = bounds[bounds != ""]
    if sample.empty or sample.str.match(_INT).all():
        return "int"
    if sample.str.match(_DATE).all():
        return "date"
    if pd.to_numeric(sample, errors="coerce").notna().all():
        return "num"
    return "tstz" if sample.str.contains(_ZONED).any() else "ts"


def _bound_numbers(bounds: pd.Series, element: str) -> np.ndarray:
    """Bounds on one numeric axis: the number, days (dates) or seconds (timestamps)."""
    present = bounds.where(bounds != "")
    if element in ("int", "num"):
        return pd.to_numeric(present).to_numpy(dtype=float)
    stamps = pd.to_datetime(present, utc=element == "tstz", format="ISO8601")
    if element == "tstz":
        stamps = stamps.dt.tz_localize(None)
    unit = _DAY_S if element == "date" else 1
    seconds = (stamps - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=float)
    return seconds / unit


def _highest(lower: np.ndarray, upper: np.ndarray) -> float | None:
    """The largest finite bound seen (an upper bound, or the lower bound of an unbounded range)."""
    both = np.concatenate([lower, upper])
    both = both[np.isfinite(both)]
    return float(both.max()) if both.size else None


def learn_range(values: pd.Series) -> dict[str, Any]:
    """Element type, bound styles, shares of empty and unbounded ranges, the quantiles of the
    lower bounds and widths, and the largest upper bound (no range reaches past the source's)."""
    text = values.iloc[:_SAMPLE].map(_range_text)
    empty = text.str.lower() == "empty"
    parts = text[~empty].str.extract(_RANGE).fillna("")
    parts.columns = ["left", "lower", "upper", "right"]
    element = _element(pd.concat([parts["lower"], parts["upper"]]))
    lower = _bound_numbers(parts["lower"], element)
    upper = _bound_numbers(parts["upper"], element)
    digits = parts["lower"].str.extract(r"\.(\d+)$")[0].str.len().max() if element == "num" \
        else 0
    bounds = (parts["left"] + parts["right"]).mode()
    finite = np.isfinite(upper)
    return {"element": element, "bounds": str(bounds.iloc[0]) if len(bounds) else "[)",
            "empty": float(empty.mean()) if len(text) else 0.0,
            "lower_inf": float(np.mean(~np.isfinite(lower))) if len(lower) else 0.0,
            "upper_inf": float(np.mean(~finite)) if len(upper) else 0.0,
            "lower": _quantiles(lower), "width": _quantiles(upper - lower),
            "high": _highest(lower, upper),
            "digits": int(digits) if digits == digits and digits else 0}


def _range_bounds(numbers: np.ndarray, element: str, digits: int) -> np.ndarray:
    if element == "int":
        return np.round(numbers).astype(np.int64).astype(str)
    if element == "num":
        return np.char.mod(f"%.{digits}f", numbers)
    if element == "date":
        return np.round(numbers).astype("datetime64[D]").astype(str)
    stamps = np.datetime_as_string(np.round(numbers).astype("datetime64[s]"), unit="s")
    stamps = np.char.replace(stamps, "T", " ")
    return np.char.add(stamps, "+00") if element == "tstz" else stamps


def ranges(spec: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
    """Ranges as text (``'[3,17)'``, ``'["2021-01-01 00:00:00","2021-01-02 00:00:00")'``,
    ``'empty'``) with lower bounds and widths drawn from the source's, within its bounds."""
    element, digits = spec["element"], int(spec.get("digits", 0))
    lower = _draw(spec["lower"], n, rng)
    upper = lower + np.maximum(_draw(spec["width"], n, rng), 0.0)
    if spec.get("high") is not None:
        upper = np.maximum(np.minimum(upper, spec["high"]), lower)
    if element in ("int", "date"):
        lower, upper = np.round(lower), np.maximum(np.round(upper), np.round(lower))
    quote = '"' if element in ("ts", "tstz") else ""
    low = np.char.add(np.char.add(quote, _range_bounds(lower, element, digits)), quote)
    high = np.char.add(np.char.add(quote, _range_bounds(upper, element, digits)), quote)
    low = np.where(rng.random(n) < spec.get("lower_inf", 0.0), "", low)
    high = np.where(rng.random(n) < spec.get("upper_inf", 0.0), "", high)
    left, right = spec.get("bounds", "[)")[0], spec.get("bounds", "[)")[-1]
    left = np.where(low == "", "(", left)
    right = np.where(high == "", ")", right)
    out = np.char.add(np.char.add(np.char.add(np.char.add(left, low), ","), high), right)
    out = out.astype(object)
    out[rng.random(n) < spec.get("empty", 0.0)] = "empty"
    return out


# ------------------------------------------------------------------------------ SET values
def learn_set(values: pd.Series) -> dict[str, Any]:
    """The members of a SET column (its declared vocabulary, in the order it spells them) and
    the share of rows holding each."""
    text = values.iloc[:_SAMPLE].astype(str)
    held = text.str.get_dummies(sep=",")
    order = pd.unique(pd.Series([m for v in text for m in v.split(",") if m], dtype=object))
    return {"members": [str(m) for m in order],
            "shares": [float(held[m].mean()) if m in held else 0.0 for m in order]}


def set_combinations(spec: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
    """Combinations of the members, each held with its learned share, in the SET's order."""
    out = pd.Series([""] * n, dtype=object)
    for member, share in zip(spec["members"], spec["shares"], strict=True):
        held = rng.random(n) < share
        out = out.where(~held, out + ("," + member))
    return out.str.lstrip(",").to_numpy(dtype=object)


# ------------------------------------------------------------------------------ bit strings
def _bit_text(value: Any) -> str:
    if isinstance(value, (int, float, np.integer, np.floating)):  # MariaDB's BIT(n): a number
        return format(int(value), "b")
    return str(value)


def learn_bits(values: pd.Series) -> dict[str, Any]:
    """The quantiles of the bit strings' lengths, and whether values are integers (MariaDB)."""
    sample = values.iloc[:_SAMPLE]
    numeric = bool(len(sample)) and (pd.api.types.is_numeric_dtype(sample.dtype) or sample.map(
        lambda v: isinstance(v, (int, np.integer))).all())  # float64 when the column has NULLs
    lengths = sample.map(_bit_text).str.len().to_numpy(dtype=float)
    return {"lengths": _quantiles(lengths), "as_int": bool(numeric)}


def bit_strings(spec: dict[str, Any], n: int, rng: np.random.Generator,
                length: int | None) -> np.ndarray:
    """Random bit strings (``'0110'``) of the learned lengths; of exactly ``length`` bits for a
    fixed ``bit(n)`` (whose source values all have that length), at most ``length`` for
    ``bit varying(n)``. Integers in the bits' range where the source held integers (MariaDB's
    BIT)."""
    if spec.get("as_int"):
        bits = min(int(length or 64), 63)
        return rng.integers(0, 2 ** bits, size=n, dtype=np.int64).astype(object)
    lengths = np.round(_draw(spec["lengths"], n, rng)).astype(np.int64)
    if length:
        lengths = np.where(lengths > 0, np.minimum(lengths, length), length)  # none seen: full
    lengths = np.maximum(lengths, 1)
    width = int(lengths.max()) if n else 1
    matrix = (rng.integers(0, 2, size=(n, width)) + ord("0")).astype(np.uint32)
    matrix[np.arange(width)[None, :] >= lengths[:, None]] = 0
    return np.ascontiguousarray(matrix).view(f"<U{width}").ravel().astype(object)


# ----------------------------------------------------------------------------------- points
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PAIR_WKT = re.compile(rf"({_NUMBER})\s+({_NUMBER})")
_PAIR_PG = re.compile(rf"\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)")
_WKT_KINDS = {"POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON",
              "GEOMETRYCOLLECTION"}


def _pg_kind(text: pd.Series) -> str:
    """The shape of PostgreSQL's geometric text: '{A,B,C}' line, '<(x,y),r>' circle,
    '((..),..)' polygon or closed path, '[(..),..]' segment or open path, '(..),(..)' box."""
    first = text.str.strip().str[:2]
    for prefix, kind in (("{", "line"), ("<", "circle"), ("((", "closed"), ("[", "open")):
        if first.str.startswith(prefix).all():
            return kind
    return "box" if (text.str.count(r"\(") >= 2).all() else "point"


def learn_point(values: pd.Series) -> dict[str, Any]:
    """The quantiles of the x and y coordinates of every vertex (the source's extent), the kind
    of shape (a column of linestrings gets linestrings, a mixed GEOMETRY column points) and the
    spelling: WKT, or PostgreSQL's own text."""
    text = values.iloc[:_SAMPLE].astype(str)
    postgres = bool(len(text)) and not text.str.match(r"^\s*[A-Za-z]").any()
    pairs = text.str.extractall(_PAIR_PG if postgres else _PAIR_WKT).astype(float)
    if len(pairs):
        x, y = pairs[0].to_numpy(), pairs[1].to_numpy()
    else:  # no vertex to learn from (a line's '{A,B,C}'): the unit square
        x, y = np.array([0.0, 1.0]), np.array([0.0, 1.0])
    kinds = set(text.str.extract(r"^\s*([A-Za-z]+)")[0].str.upper().dropna())
    kind = _pg_kind(text) if postgres else kinds.pop() if len(kinds) == 1 and kinds <= _WKT_KINDS \
        else "POINT"
    return {"x": _quantiles(x), "y": _quantiles(y), "style": "pg" if postgres else "wkt",
            "kind": kind}


def _wkt(kind: str, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """WKT of one kind from the vertex texts a ('x1 y1'), b ('x2 y1') and c ('x2 y2')."""
    line = _join([a, c], ", ")
    ring = "(" + _join([a, b, c, a], ", ") + ")"
    body = {"POINT": a, "LINESTRING": line, "POLYGON": ring, "MULTIPOINT": line,
            "MULTILINESTRING": "(" + line + ")", "MULTIPOLYGON": "(" + ring + ")",
            "GEOMETRYCOLLECTION": "POINT(" + a.astype(object) + ")"}[kind]
    return kind + "(" + np.asarray(body, dtype=object) + ")"


def _postgres(kind: str, a: np.ndarray, b: np.ndarray, c: np.ndarray,
              radius: np.ndarray) -> np.ndarray:
    """PostgreSQL's geometric text from the vertex texts a ('x1,y1'), b, c."""
    a, b, c = ("(" + v.astype(object) + ")" for v in (a, b, c))
    shapes = {"point": lambda: a, "box": lambda: _join([c, a], ","),
              "line": lambda: "[" + _join([a, c], ",") + "]",
              "open": lambda: "[" + _join([a, c], ",") + "]",
              "closed": lambda: "(" + _join([a, b, c], ",") + ")",
              "circle": lambda: "<" + a + "," + radius.astype(object) + ">"}
    return np.asarray(shapes[kind](), dtype=object)


def points(spec: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
    """Shapes of the learned kind with every vertex within the source's extent: WKT, or
    PostgreSQL's geometric text. Two distinct corners (x1, y1), (x2, y2) make every shape: a
    point, a segment, a triangle, a box, a circle."""
    if n == 0:
        return np.empty(0, dtype=object)
    x1, x2 = _draw(spec["x"], n, rng), _draw(spec["x"], n, rng)
    y1, y2 = _draw(spec["y"], n, rng), _draw(spec["y"], n, rng)
    x2 = np.where(x1 == x2, x1 + 1e-6, x2)  # distinct corners: no zero-length line or area
    y2 = np.where(y1 == y2, y1 + 1e-6, y2)
    fx1, fx2, fy1, fy2 = (np.char.mod("%.6f", v).astype(object) for v in (x1, x2, y1, y2))
    if spec.get("style") == "pg":
        radius = np.char.mod("%.6f", np.abs(x2 - x1) / 2 + 1e-6)
        return _postgres(spec.get("kind", "point"), fx1 + "," + fy1, fx2 + "," + fy1,
                         fx2 + "," + fy2, radius)
    return _wkt(spec.get("kind", "POINT"), fx1 + " " + fy1, fx2 + " " + fy1, fx2 + " " + fy2)
