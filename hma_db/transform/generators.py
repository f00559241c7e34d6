"""Generated-by-type columns: values of the right type and shape, never copied from the source.

What is learned is a *shape*, never values: quantiles of text and byte lengths, of array element
counts, of interval durations; the keys of JSON objects (only keys seen in at least
``min_category_count`` rows) with the share of rows holding each and the JSON type of its values.
Generation is vectorized: text is cut out of a random word corpus as a code-point matrix,
bytes are a matrix of random non-zero bytes, JSON objects are assembled column by column.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from hma_db.schema import value_kind
from hma_db.transform import shaped, textshape
from hma_db.transform.keys.keygen import uuids

_QUANTILES = np.linspace(0.0, 1.0, 21)
_CELLS = 4_000_000  # characters per block of generated text (bounds memory)
_SLACK = 12  # characters past the target length searched for a word end
_JSON_SAMPLE = 2_000  # rows parsed to learn the keys of a JSON column
GENERATORS = ("text", "json", "array", "bytes", "uuid", "interval", "ip", "xml", "tsvector",
              "number", "mac", "range", "bits", "point", "tsquery", "set")


def quantiles(values: np.ndarray) -> list[float]:
    """21 quantiles (0%, 5%, ... 100%) of the values, as a JSON-able list."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return [0.0] * len(_QUANTILES)
    return [float(q) for q in np.quantile(values, _QUANTILES)]


def from_quantiles(points: list[float], n: int, rng: np.random.Generator) -> np.ndarray:
    """Draws from the piecewise-uniform distribution between the quantiles."""
    return np.interp(rng.random(n), _QUANTILES, np.asarray(points, dtype=float))


# Words a reader takes for a missing value ('Bring Theory None': 68 Chinook names had it). A
# spec learned since then says so (``plain_words``); an older model keeps every word, so that
# it samples the very rows it sampled.
_NULL_WORDS = {"none", "null", "nil", "nan", "n/a", "na", "undefined"}


@lru_cache(maxsize=16)
def _words(locale: str, plain: bool = False) -> tuple[str, ...]:
    from faker import Faker

    words = [w for w in Faker(locale).get_words_list() if w and " " not in w and '"' not in w
             and "\\" not in w and not (plain and w.lower() in _NULL_WORDS)]
    return tuple(words)


def text(lengths: np.ndarray, rng: np.random.Generator, locale: str = "en_US",
         limit: int | None = None, plain: bool = True) -> np.ndarray:
    """Strings of whole words, each ending at the word end nearest its target length (never
    past ``limit``; a single word longer than its target is cut); ``plain``: no word that
    reads as a missing value."""
    lengths = np.maximum(np.asarray(lengths, dtype="int64"), 0)
    if limit:
        lengths = np.minimum(lengths, limit)
    n = len(lengths)
    longest = int(lengths.max()) if n else 0
    if longest == 0:
        return np.full(n, "", dtype=object)
    words = np.array(_words(locale, plain), dtype=object)
    width = longest + _SLACK
    corpus = " ".join(words[rng.integers(len(words), size=max(2_000, width // 2))])
    codes = np.frombuffer(corpus.encode("utf-32-le"), dtype=np.uint32)
    starts = np.flatnonzero(np.r_[True, codes[:-1] == ord(" ")])
    starts = starts[starts + width <= len(codes)]
    caps = np.minimum(lengths + _SLACK, limit if limit else width)
    out = np.empty(n, dtype=object)
    step = max(1, _CELLS // width)
    offsets = np.arange(width)
    for block in range(0, n, step):
        rows = slice(block, block + step)
        begin = starts[rng.integers(len(starts), size=len(lengths[rows]))]
        matrix = codes[begin[:, None] + offsets[None, :]]
        ends = _word_ends(matrix == ord(" "), lengths[rows], caps[rows])
        matrix[offsets[None, :] >= ends[:, None]] = 0
        out[rows] = np.ascontiguousarray(matrix).view(f"<U{width}").ravel()
    return pd.Series(out, dtype=object).str.rstrip().to_numpy(dtype=object)


def _word_ends(spaces: np.ndarray, targets: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Per row, the word end (a space position) nearest the target length, at most ``caps``."""
    positions = np.arange(spaces.shape[1])[None, :]
    before = np.where(spaces & (positions <= targets[:, None]), positions, -1).max(axis=1)
    after_ok = spaces & (positions >= targets[:, None]) & (positions <= caps[:, None])
    after = np.where(after_ok, positions, spaces.shape[1] + 1).min(axis=1)
    has_after = after <= spaces.shape[1]
    use_after = has_after & ((before <= 0) | (after - targets <= targets - before))
    ends = np.where(use_after, after, np.where(before > 0, before, targets))
    return np.where(targets == 0, 0, ends)


def random_bytes(lengths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Byte strings of the given lengths (non-zero bytes, so numpy keeps every byte)."""
    lengths = np.maximum(np.asarray(lengths, dtype="int64"), 0)
    longest = int(lengths.max()) if len(lengths) else 0
    if longest == 0:
        return np.full(len(lengths), b"", dtype=object)
    matrix = rng.integers(1, 256, size=(len(lengths), longest), dtype=np.uint8)
    matrix[np.arange(longest)[None, :] >= lengths[:, None]] = 0
    return matrix.view(f"S{longest}").ravel().astype(object)


def _networks(octets: np.ndarray, prefixes: np.ndarray) -> np.ndarray:
    """IPv4 octets with the host bits right of each prefix cleared (a cidr value refuses them)."""
    address = (octets.astype(np.int64) << np.array([24, 16, 8, 0])).sum(axis=1)
    mask = (0xFFFFFFFF << (32 - prefixes)) & 0xFFFFFFFF
    return (address & mask)[:, None] >> np.array([24, 16, 8, 0]) & 0xFF


def ip_addresses(n: int, rng: np.random.Generator, v6_share: float = 0.0,
                 prefix_share: float = 0.0, prefixes: list[float] | None = None) -> np.ndarray:
    """IPv4 (and, in the learned share, IPv6) addresses as text; in ``prefix_share`` of the
    rows IPv4 networks ('10.1.0.0/16') with prefix lengths drawn from ``prefixes``."""
    octets = rng.integers(1, 255, size=(n, 4))
    with_prefix, lengths = np.zeros(n, dtype=bool), np.full(n, 32)
    if prefix_share > 0:  # (no draw otherwise: the stream of plain addresses stays as it was)
        with_prefix = rng.random(n) < prefix_share
        lengths = np.clip(np.round(from_quantiles(prefixes, n, rng)), 8, 32).astype(np.int64)
        octets[with_prefix] = _networks(octets[with_prefix], lengths[with_prefix])
    octets = octets.astype(str)
    out = octets[:, 0]
    for j in range(1, 4):
        out = np.char.add(np.char.add(out, "."), octets[:, j])
    out = out.astype(object)
    v6 = rng.random(n) < v6_share
    if v6.any():
        groups = np.char.mod("%x", rng.integers(0, 65536, size=(int(v6.sum()), 8)))
        joined = groups[:, 0]
        for j in range(1, 8):
            joined = np.char.add(np.char.add(joined, ":"), groups[:, j])
        out[v6] = joined
    if with_prefix.any():
        rows = with_prefix & ~v6
        out[rows] = out[rows] + np.char.add("/", lengths[rows].astype(str)).astype(object)
    return out


# ------------------------------------------------------------------------------ learning
def _lengths(values: pd.Series) -> np.ndarray:
    if values.map(lambda v: isinstance(v, (bytes, bytearray, memoryview))).all():
        return values.map(lambda v: len(bytes(v))).to_numpy(dtype=float)
    return values.astype(str).str.len().to_numpy(dtype=float)


def _json_type(value: Any) -> str:
    for types, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"),
                        (list, "list"), (dict, "dict")):
        if isinstance(value, types):
            return name
    return "null"


def _learn_json(values: pd.Series, min_count: int) -> dict[str, Any]:
    sample = values.iloc[:_JSON_SAMPLE]
    objects = [v if isinstance(v, dict) else json.loads(v) if isinstance(v, str) else {}
               for v in sample]
    objects = [o for o in objects if isinstance(o, dict)]
    frame = pd.DataFrame.from_records(objects) if objects else pd.DataFrame()
    keys = []
    for key in frame.columns:
        present = frame[key].dropna()
        if len(present) < min_count:
            continue
        types = present.map(_json_type)
        numbers = pd.to_numeric(present[types.isin(["int", "float"])], errors="coerce").dropna()
        strings = present[types == "str"].astype(str).str.len()
        keys.append({"key": str(key), "share": len(present) / max(len(objects), 1),
                     "type": str(types.mode().iloc[0]),
                     "range": [float(numbers.min()), float(numbers.max())] if len(numbers)
                     else [0.0, 100.0],
                     "lengths": quantiles(strings.to_numpy())})
    return {"keys": keys}


def _learn_array(values: pd.Series) -> dict[str, Any]:
    as_text = values.map(lambda v: isinstance(v, str)).all()
    if as_text:
        inner = values.astype(str).str.strip("{}[]")
        items = inner.str.split(",").map(lambda xs: [x.strip() for x in xs if x.strip()])
    else:
        items = values.map(list)
    flat = pd.Series([x for xs in items.iloc[:_JSON_SAMPLE] for x in xs], dtype=object)
    inner = 0
    if not as_text and len(flat) and flat.map(lambda v: isinstance(v, (list, tuple))).all():
        # A multidimensional array: rows of equal width (PostgreSQL refuses ragged ones).
        inner = int(flat.map(len).mode().iloc[0])
        flat = pd.Series([x for xs in flat for x in xs], dtype=object)
    numbers = pd.to_numeric(flat, errors="coerce") if not flat.map(
        lambda v: isinstance(v, bool)).any() else pd.Series(np.nan, index=flat.index)
    numeric = len(flat) > 0 and numbers.notna().all()
    integer = numeric and bool((numbers == numbers.round()).all())
    element, span = ("int" if integer else "float", [float(numbers.min()), float(numbers.max())]) \
        if numeric else _element_kind(flat)
    return {"counts": quantiles(items.map(len).to_numpy()), "element": element, "range": span,
            "inner": inner,
            "lengths": quantiles(flat.astype(str).str.len().to_numpy()) if len(flat) else
            quantiles(np.array([5.0])),
            "style": ("braces" if values.astype(str).str.startswith("{").all() else "brackets")
            if as_text else "list"}


_UUID_TEXT = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_MAC_TEXT = r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5,7}$"


def _element_kind(flat: pd.Series) -> tuple[str, list[float]]:
    """The kind of an array's non-numeric elements and their range (epoch seconds of
    timestamps, days of dates), so an element of a ``uuid[]`` or ``date[]`` is a value of its
    type, not a word."""
    kind = value_kind(flat)
    if kind in ("datetime", "date"):
        stamps = pd.to_datetime(flat, utc=True) if kind == "datetime" else pd.to_datetime(flat)
        seconds = (stamps.dt.tz_localize(None) if kind == "datetime" else stamps).astype(
            "datetime64[s]").astype(np.int64)
        zoned = kind == "datetime" and any(getattr(v, "tzinfo", None) for v in flat.iloc[:50])
        return ("timestamptz" if zoned else kind), [float(seconds.min()), float(seconds.max())]
    shown = flat.astype(str)
    if kind == "uuid" or (kind == "str" and len(shown) and shown.str.match(_UUID_TEXT).all()):
        return "uuid", [0.0, 0.0]
    if kind == "str" and len(shown) and shown.str.match(_MAC_TEXT).all():
        return "mac", [float(shown.str.count(":").max() + 1)] * 2
    return {"bool": "bool", "ip": "ip", "dict": "json", "list": "json"}.get(kind, "str"), \
        [0.0, 0.0]


def _elements(spec: dict[str, Any], total: int, rng: np.random.Generator,
              locale: str) -> np.ndarray:
    """``total`` array elements of the learned kind."""
    element, (low, high) = spec["element"], spec["range"]
    if element == "int":
        return rng.integers(int(low), int(high) + 1, size=total)
    if element == "float":
        return np.round(rng.uniform(low, high, size=total), 2)
    if element in ("date", "datetime", "timestamptz"):
        stamps = rng.uniform(low, high, size=total).astype("int64").astype("datetime64[s]")
        if element == "date":
            return stamps.astype("datetime64[D]").astype(str).astype(object)
        shown = np.char.replace(np.datetime_as_string(stamps, unit="s"), "T", " ")
        return (np.char.add(shown, "+00") if element == "timestamptz" else shown).astype(object)
    special = {"bool": lambda: (rng.random(total) < 0.5).astype(object),
               "uuid": lambda: uuids(total, rng), "ip": lambda: ip_addresses(total, rng),
               "mac": lambda: shaped.mac_addresses({"octets": int(low)}, total, rng),
               "json": lambda: np.full(total, "{}", dtype=object)}
    if element in special:
        return special[element]()
    lengths = from_quantiles(spec["lengths"], total, rng)
    return text(_cap(lengths, None), rng, locale, int(max(spec["lengths"])) or None,
                plain=bool(spec.get("plain_words")))


_SHAPED = {  # generator -> (learn, generate)
    "mac": (shaped.learn_mac, lambda spec, n, rng, _length: shaped.mac_addresses(spec, n, rng)),
    "range": (shaped.learn_range, lambda spec, n, rng, _length: shaped.ranges(spec, n, rng)),
    "bits": (shaped.learn_bits, shaped.bit_strings),
    "point": (shaped.learn_point, lambda spec, n, rng, _length: shaped.points(spec, n, rng)),
    "set": (shaped.learn_set, lambda spec, n, rng, _length: shaped.set_combinations(spec, n, rng)),
}


def learn(generator: str, values: pd.Series, min_count: int) -> dict[str, Any]:
    """The shape of a generated-by-type column from its non-null source values."""
    spec: dict[str, Any] = {"generator": generator}
    if generator in ("text", "xml", "tsvector", "tsquery", "json", "array"):
        spec["plain_words"] = True
    if generator in ("text", "xml", "tsvector", "tsquery", "bytes"):
        spec["lengths"] = quantiles(_lengths(values))
        if generator == "text" and len(values) and values.map(lambda v: isinstance(v, str)).all():
            spec.update(textshape.learn(values))  # codes, or the case of words
    elif generator == "json":
        spec.update(_learn_json(values, min_count))
    elif generator == "array":
        spec.update(_learn_array(values))
    elif generator == "interval":
        seconds = pd.to_timedelta(values).dt.total_seconds().to_numpy()
        spec["seconds"] = quantiles(seconds)
        spec["whole"] = bool(np.all(seconds == np.round(seconds)))
    elif generator == "ip":
        text = values.astype(str)
        spec["v6_share"] = float(text.str.contains(":").mean()) if len(values) else 0.0
        v4_prefix = text.str.extract(r"^[\d.]+/(\d+)$")[0].dropna().astype(float)
        spec["prefix_share"] = len(v4_prefix) / len(values) if len(values) else 0.0
        spec["prefixes"] = quantiles(v4_prefix.to_numpy())
    elif generator == "number":
        numbers = pd.to_numeric(values).to_numpy(dtype=float)
        spec["values"] = quantiles(numbers)
        spec["whole"] = bool(np.all(numbers == np.round(numbers)))
    elif generator in _SHAPED:
        spec.update(_SHAPED[generator][0](values))
    elif generator == "uuid":
        spec["upper"] = bool(values.astype(str).str.isupper().all()) if len(values) else False
    return spec


# ---------------------------------------------------------------------------- generation
def _cap(lengths: np.ndarray, max_length: int | None) -> np.ndarray:
    lengths = np.round(lengths).astype("int64")
    return np.minimum(lengths, max_length) if max_length else lengths


def _json_values(key: dict[str, Any], n: int, rng: np.random.Generator, locale: str,
                 plain: bool) -> np.ndarray:
    low, high = key["range"]
    kind = key["type"]
    if kind == "int":
        return rng.integers(int(low), int(high) + 1, size=n).astype(str).astype(object)
    if kind == "float":
        return np.round(rng.uniform(low, high, size=n), 2).astype(str).astype(object)
    if kind == "bool":
        return np.where(rng.random(n) < 0.5, "true", "false").astype(object)
    if kind == "str":
        words = text(_cap(from_quantiles(key["lengths"], n, rng), None), rng, locale,
                     plain=plain)
        return ('"' + pd.Series(words, dtype=object) + '"').to_numpy(dtype=object)
    return np.full(n, {"list": "[]", "dict": "{}"}.get(kind, "null"), dtype=object)


def json_objects(spec: dict[str, Any], n: int, rng: np.random.Generator, locale: str,
                 as_text: bool) -> np.ndarray:
    """JSON objects with the learned keys (text, or dicts when the source held dicts)."""
    body = pd.Series([""] * n, dtype=object)
    for key in spec["keys"]:
        present = rng.random(n) < key["share"]
        pair = ", " + json.dumps(key["key"]) + ": " + pd.Series(
            _json_values(key, n, rng, locale, bool(spec.get("plain_words"))), dtype=object)
        body = body + pair.where(present, "")
    objects = ("{" + body.str.slice(2) + "}").to_numpy(dtype=object)
    if as_text:
        return objects
    return np.array([json.loads(o) for o in objects] + [None], dtype=object)[:-1]


def arrays(spec: dict[str, Any], n: int, rng: np.random.Generator, locale: str) -> np.ndarray:
    """Arrays with element counts shaped like the source (lists, or text like the source)."""
    counts = np.maximum(np.round(from_quantiles(spec["counts"], n, rng)), 0).astype("int64")
    total = int(counts.sum())
    inner = int(spec.get("inner", 0))
    flat = _elements(spec, total * max(inner, 1), rng, locale)
    if inner:  # rows of ``inner`` elements each: a two-dimensional array
        flat = pd.Series(list(np.asarray(flat).reshape(total, inner).tolist()) + [None],
                         dtype=object).iloc[:-1].to_numpy()
    rows = np.repeat(np.arange(n), counts)
    if spec["style"] == "list":
        groups = pd.Series(flat, dtype=object).groupby(rows).agg(list)
        return groups.reindex(range(n)).map(lambda v: v if isinstance(v, list) else []).to_numpy(
            dtype=object)
    joined = pd.Series(flat).astype(str).groupby(rows).agg(",".join).reindex(range(n), fill_value="")
    left, right = ("{", "}") if spec["style"] == "braces" else ("[", "]")
    return (left + joined + right).to_numpy(dtype=object)


def _texts(spec: dict[str, Any], n: int, rng: np.random.Generator, max_length: int | None,
           locale: str) -> np.ndarray:
    generator, plain = spec["generator"], bool(spec.get("plain_words"))
    if spec.get("codes"):  # digits stay digits: '5467', not 'towa'
        return textshape.codes(spec, n, rng, max_length)
    lengths = _cap(from_quantiles(spec["lengths"], n, rng), max_length)
    if generator == "xml":
        tags = len("<value></value>")
        inner = text(np.maximum(lengths - tags, 1), rng, locale,
                     max_length - tags if max_length else None, plain=plain)
        return ("<value>" + pd.Series(inner, dtype=object) + "</value>").to_numpy(dtype=object)
    words = textshape.with_case(text(lengths, rng, locale, max_length, plain=plain),
                                spec.get("case"))
    if generator == "tsquery":  # words a query must all match: 'brown & fox'
        return pd.Series(words, dtype=object).str.replace(" ", " & ", regex=False).to_numpy(
            dtype=object)
    return words


def generate(spec: dict[str, Any], n: int, rng: np.random.Generator, *, kind: str,
             max_length: int | None = None, locale: str = "en_US") -> np.ndarray:
    """``n`` values for a generated-by-type column (no nulls; the caller inserts them)."""
    generator = spec["generator"]
    if generator in ("text", "xml", "tsvector", "tsquery"):
        return _texts(spec, n, rng, max_length, locale)
    if generator == "bytes":
        return random_bytes(_cap(from_quantiles(spec["lengths"], n, rng), max_length), rng)
    if generator == "json":
        return json_objects(spec, n, rng, locale, as_text=kind != "dict")
    if generator == "array":
        return arrays(spec, n, rng, locale)
    if generator == "uuid":
        out = uuids(n, rng)
        return pd.Series(out, dtype=object).str.upper().to_numpy(dtype=object) if spec.get(
            "upper") else out
    if generator in _SHAPED:
        return _SHAPED[generator][1](spec, n, rng, max_length)
    if generator == "ip":
        return ip_addresses(n, rng, spec.get("v6_share", 0.0), spec.get("prefix_share", 0.0),
                            spec.get("prefixes"))
    if generator == "interval":
        seconds = from_quantiles(spec["seconds"], n, rng)
        seconds = np.round(seconds) if spec.get("whole") else seconds
        return pd.to_timedelta(seconds, unit="s").to_numpy()
    numbers = from_quantiles(spec["values"], n, rng)
    return np.round(numbers) if spec.get("whole") else numbers
