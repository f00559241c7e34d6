"""Key columns of dates, timestamps and times, and key columns limited to a list of values.

A date in a key usually carries meaning too (``payment_date`` in ``PRIMARY KEY (payment_date,
payment_id)`` of a table partitioned by date), so it is not a counter: it keeps the source's
distribution (its quantiles, at the resolution seen), stays within the bounds of the table's
partitions, and is made unique only where the key needs it. Written as a patterned string it
would come out as ``'2022-01-22 03:29:99'``.

Values are *ticks*, whole multiples of the column's resolution (a day, a second, a
microsecond...). The allowed ticks are a few intervals (the partitions' ranges within the
seen range, widened upward when a unique column needs more room); they are numbered
consecutively (*compressed*), so a draw never lands in a gap between two partitions.

- **unique** (the column alone carries the row's position): the ``n`` values of the run are the
  quantile function at ``n`` evenly spaced probabilities, pushed apart to one tick each
  (a cumulative maximum), then dealt to the positions by a keyed permutation. Values depend on
  the position and the seed only, so chunks of a run never repeat one.
- **free** (another key column makes the combination unique): a keyed hash of the position is
  a uniform draw pushed through the quantile function.

A column of a *list* partition takes only the partitions' values (``kind: listed``), in the
proportions seen.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from hma_db.errors import SamplingError

_QUANTILES = 1001  # points of the stored quantile function
_DAY_NS = 86_400 * 10**9
_UNITS_NS = [_DAY_NS, 3_600 * 10**9, 60 * 10**9, 10**9, 10**6, 10**3, 1]
_PATTERNS = {
    "date": r"^\d{4}-\d{2}-\d{2}$",
    "datetime": r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$",
    "time": r"^\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$",
}
_LATEST_NS = np.iinfo(np.int64).max - _DAY_NS  # the last timestamp pandas can hold
_UNBOUNDED_SECONDS = 1e12


def temporal_type(series: pd.Series, kind: str) -> str | None:
    """``date``, ``datetime`` or ``time`` for a column of such values (or ISO text of them, as
    SQLite stores them), else None."""
    if kind in ("datetime", "date", "time"):
        return kind
    if kind != "str":
        return None
    text = series.dropna().astype(str).iloc[:1000]
    if text.empty:
        return None
    return next((name for name, pattern in _PATTERNS.items() if text.str.match(pattern).all()),
                None)


def _nanoseconds(values: pd.Series, temporal: str) -> np.ndarray:
    """Non-null values as int64 nanoseconds: since the epoch (UTC), or since midnight."""
    if temporal == "time":
        return pd.to_timedelta(values.astype(str)).to_numpy().astype("int64")
    stamps = pd.to_datetime(values, utc=True, format="mixed")
    return stamps.dt.tz_localize(None).to_numpy().astype("int64")


def _text_format(text: pd.Series, temporal: str) -> dict[str, Any]:
    """How the source writes its values as text: separator, fraction digits, zone suffix."""
    sample = text.iloc[:1000]
    fraction = sample.str.extract(r"\d{2}:\d{2}:\d{2}\.(\d+)")[0].str.len().max()
    zone = sample.str.extract(r"(Z|[+-]\d{2}(?::?\d{2})?)$")[0].dropna()
    return {"sep": "T" if sample.str.contains("T").any() else " ",
            "seconds": bool(sample.str.match(r".*\d{2}:\d{2}:\d{2}").all()) or temporal == "date",
            "fraction": int(0 if pd.isna(fraction) else fraction),
            "zone": ("Z" if zone.iloc[0] == "Z" else "+00:00") if len(zone) else ""}


def learn_temporal(series: pd.Series, meta: dict[str, Any], temporal: str,
                   kind: str) -> dict[str, Any]:
    """The spec of a date/timestamp/time key column: resolution, quantiles, partition ranges."""
    ns = _nanoseconds(series.dropna(), temporal)
    if len(ns) == 0:  # no rows to learn from: today at day resolution
        ns = np.array([pd.Timestamp("today").normalize().value if temporal != "time" else 0])
    # The step between values (a week, 15 minutes...) from a fixed origin, so weekly dates
    # stay on their weekday and quarter hours on the quarter.
    origin = int(ns.min())
    unit = int(np.gcd.reduce(ns - origin)) or next(u for u in _UNITS_NS if origin % u == 0)
    ticks = np.sort((ns - origin) // unit)
    probs = np.linspace(0.0, 1.0, min(_QUANTILES, len(ticks)))
    quantiles = np.round(np.quantile(ticks, probs)).astype("int64")
    ranges = (meta.get("partition_bounds") or {}).get("ranges")
    return {"kind": "temporal", "type": temporal, "unit": int(unit), "origin": origin,
            "quantiles": [int(q) for q in quantiles],
            "ranges": None if not ranges else [_tick_range(r, origin, unit, temporal)
                                               for r in ranges],
            "text": _text_format(series.dropna().astype(str), temporal) if kind == "str" else None,
            "format": meta.get("datetime_format")}


def _tick_range(bounds: list[Any], origin: int, unit: int, temporal: str) -> list[int | None]:
    """A partition's ``[from, to)`` as inclusive ticks (None: unbounded)."""
    low, high = bounds
    out: list[int | None] = []
    for value, last in ((low, False), (high, True)):
        if value is None:
            out.append(None)
            continue
        ns = int(_nanoseconds(pd.Series([str(value)]), temporal)[0]) - origin
        out.append(-(-ns // unit) - (1 if last else 0))  # ceil; the upper bound is exclusive
    return out


def learn_listed(series: pd.Series, values: list[Any]) -> dict[str, Any]:
    """A key column of a list partition: only the listed values, weighted as seen."""
    text = [str(v) for v in values if v is not None]
    seen = series.dropna().astype(str).value_counts()
    counts = np.array([int(seen.get(v, 0)) for v in text], dtype=float)
    return {"kind": "listed", "values": text,
            "weights": (counts if counts.sum() else np.ones(len(text))).tolist()}


# ------------------------------------------------------------------------------- room
def _limit(spec: dict[str, Any]) -> int:
    """The last tick a value of the column's type can take."""
    ns = _DAY_NS - 1 if spec["type"] == "time" else _LATEST_NS
    return (ns - spec["origin"]) // spec["unit"]


def intervals(spec: dict[str, Any], needed: int) -> np.ndarray:
    """Allowed ticks as sorted inclusive ``[start, end]`` rows: the partitions within the seen
    range, extended upward (within the partitions and the type) until ``needed`` fit."""
    low, high = spec["quantiles"][0], spec["quantiles"][-1]
    ranges = spec.get("ranges") or [[None, None]]
    top = min(_limit(spec), max(high, low) + needed)  # no more room is ever needed
    rows = sorted([low if a is None else max(a, low), top if b is None else min(b, top)]
                  for a, b in ranges)
    rows = np.array([r for r in rows if r[0] <= r[1]] or [[low, low]], dtype=np.int64)
    sizes = rows[:, 1] - rows[:, 0] + 1
    within = np.minimum(rows[:, 1], max(high, low)) - rows[:, 0] + 1
    room = int(np.clip(within, 0, None).sum())
    if room >= needed:  # the seen range is enough: stop at its top
        rows[:, 1] = np.minimum(rows[:, 1], high)
        return rows[rows[:, 0] <= rows[:, 1]]
    ends = np.cumsum(sizes)  # otherwise take partitions upward until the values fit
    last = int(np.searchsorted(ends, needed))
    if last >= len(rows):
        return rows
    rows = rows[: last + 1].copy()
    rows[-1, 1] = rows[-1, 0] + (needed - (ends[last - 1] if last else 0)) - 1
    return rows


def space(spec: dict[str, Any], total: int) -> int:
    """How many distinct values the column can take in a run of ``total`` rows (``total``
    0: within the seen range only)."""
    if spec["kind"] == "listed":
        return len(spec["values"])
    rows = intervals(spec, total)
    return int((rows[:, 1] - rows[:, 0] + 1).sum())


def _compress(ticks: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Ticks numbered consecutively over the allowed intervals (gaps squeezed out)."""
    starts = np.concatenate([[0], np.cumsum(rows[:, 1] - rows[:, 0] + 1)[:-1]])
    k = np.clip(np.searchsorted(rows[:, 0], ticks, side="right") - 1, 0, len(rows) - 1)
    return starts[k] + np.clip(ticks - rows[k, 0], 0, rows[k, 1] - rows[k, 0])


def _expand(codes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    starts = np.concatenate([[0], np.cumsum(rows[:, 1] - rows[:, 0] + 1)[:-1]])
    k = np.searchsorted(starts, codes, side="right") - 1
    return rows[k, 0] + (codes - starts[k])


# --------------------------------------------------------------------------- generation
def uniform(index: np.ndarray, seed: int, mix) -> np.ndarray:
    """A keyed uniform draw in [0, 1) per position (no state: chunks agree)."""
    salt = np.random.SeedSequence([int(seed), 2]).generate_state(1, np.uint64)[0]
    bits = mix(np.asarray(index, dtype=np.int64).astype(np.uint64) ^ salt)
    return (bits >> np.uint64(11)).astype(np.float64) / float(2**53)


def values(spec: dict[str, Any], index: np.ndarray, seed: int, where: str, total: int,
           unique: bool, permute, mix) -> np.ndarray:
    """The column's values at ``index``; distinct for distinct indices below ``total`` when
    ``unique``. ``permute`` and ``mix`` are keygen's keyed permutation and bit mixer."""
    index = np.asarray(index, dtype=np.int64)
    if spec["kind"] == "listed":
        return _listed(spec, index, seed, where, total, unique, permute, mix)
    rows = intervals(spec, total if unique else 0)
    room = int((rows[:, 1] - rows[:, 0] + 1).sum())
    quantiles = _compress(np.asarray(spec["quantiles"], dtype=np.int64), rows).astype(float)
    probs = np.linspace(0.0, 1.0, len(quantiles))
    if unique:
        if room < total:
            raise SamplingError(
                f"Column {where}: its {spec['type']} values within the partitions' bounds allow "
                f"only {room} distinct values; {total} unique values were requested. Add a "
                "partition, or sample fewer rows (a smaller scale).")
        spread = _spread(tuple(quantiles.tolist()), total, room)
        codes = spread[permute(index, total, seed)]
    else:
        codes = np.round(np.interp(uniform(index, seed, mix), probs, quantiles)).astype(np.int64)
    ticks = _expand(np.clip(codes, 0, room - 1), rows)
    return _output(spec["origin"] + ticks * spec["unit"], spec)


@functools.lru_cache(maxsize=2)
def _spread(quantiles: tuple[float, ...], total: int, room: int) -> np.ndarray:
    """The ``total`` distinct codes of a run, in order: the quantile function at evenly spaced
    probabilities, pushed apart to one code each. Kept for the next chunks of the same run,
    which would otherwise each rebuild all ``total`` of them."""
    probs = np.linspace(0.0, 1.0, len(quantiles))
    k = np.arange(total, dtype=np.int64)
    grid = np.round(np.interp((k + 0.5) / total, probs, np.asarray(quantiles))).astype(np.int64)
    spread = k + np.maximum.accumulate(np.clip(grid - k, 0, room - total))
    spread.setflags(write=False)
    return spread


def _listed(spec: dict[str, Any], index: np.ndarray, seed: int, where: str, total: int,
            unique: bool, permute, mix) -> np.ndarray:
    listed = np.array(spec["values"], dtype=object)
    if unique:
        if len(listed) < total:
            raise SamplingError(
                f"Column {where}: its partitions allow only the values {spec['values']}; "
                f"{total} unique values were requested. Add a partition, or sample fewer rows.")
        return listed[permute(index, len(listed), seed)]
    cumulative = np.cumsum(spec["weights"]) / np.sum(spec["weights"])
    picks = np.searchsorted(cumulative, uniform(index, seed, mix), side="right")
    return listed[np.minimum(picks, len(listed) - 1)]


def _output(ns: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Nanoseconds as the column's values: timestamps (naive UTC), seconds since midnight for
    times, or text as the source wrote it."""
    text = spec.get("text")
    if spec["type"] == "time":
        if text is None and not spec.get("format"):
            return ns / 1e9
        stamps = pd.Series((ns + 0).astype("datetime64[ns]"))
    else:
        stamps = pd.Series(ns.astype("datetime64[ns]"))
    if spec.get("format"):
        return stamps.dt.strftime(spec["format"]).to_numpy(dtype=object)
    if text is None:
        return stamps.astype(object).to_numpy()
    return _as_text(stamps, spec["type"], text)


def _as_text(stamps: pd.Series, temporal: str, text: dict[str, Any]) -> np.ndarray:
    if temporal == "date":
        return stamps.dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    clock = "%H:%M:%S" if text["seconds"] else "%H:%M"
    fmt = clock if temporal == "time" else f"%Y-%m-%d{text['sep']}{clock}"
    out = stamps.dt.strftime(fmt)
    if text["fraction"]:
        digits = (stamps.dt.microsecond * 1000 + stamps.dt.nanosecond).astype(str).str.zfill(9)
        out = out + "." + digits.str[: text["fraction"]]
    return (out + text["zone"]).to_numpy(dtype=object)


# ------------------------------------------------------------- integers in range partitions
def integer_ranges(meta: dict[str, Any]) -> list[list[int]] | None:
    """A range-partitioned integer key's allowed values as inclusive ``[start, end]`` rows
    from 1 up (or from the lowest bound, when no partition holds 1); None: unbounded."""
    ranges = (meta.get("partition_bounds") or {}).get("ranges")
    if not ranges:
        return None
    rows = sorted([_ceil(a) if a is not None else -(2**62), _ceil(b) - 1 if b is not None
                   else 2**62] for a, b in ranges)
    positive = [[max(a, 1), b] for a, b in rows if b >= max(a, 1)]
    return positive or [r for r in rows if r[0] <= r[1]]


def _ceil(text: Any) -> int:
    import decimal
    import math

    return int(math.ceil(decimal.Decimal(str(text))))


def integers_in_ranges(ranges: list[list[int]], index: np.ndarray, where: str,
                       total: int) -> np.ndarray:
    """The integers at ``index`` of the allowed values counted upward (gaps skipped)."""
    rows = np.array(ranges, dtype=np.int64)
    if integer_room(ranges) < total:
        raise SamplingError(
            f"Column {where}: its partitions allow only {integer_room(ranges)} values; {total} "
            "unique values were requested. Add a partition, or sample fewer rows.")
    return _expand(np.asarray(index, dtype=np.int64), rows)


def integer_room(ranges: list[list[int]]) -> int:
    return int(sum(min(b - a + 1, 2**62) for a, b in ranges))


# ------------------------------------------------------------ modeled partition columns
def partition_spans(meta: dict[str, Any], unit_ns: int) -> list[list[float]] | None:
    """A modeled timestamp column's range partitions as inclusive ``[low, high]`` seconds at
    the column's resolution, or None. Decoded values in a gap between partitions are moved
    to the nearest bound, since PostgreSQL has no partition for them."""
    ranges = (meta.get("partition_bounds") or {}).get("ranges")
    if not ranges:
        return None

    def seconds(value: Any, upper: bool) -> float:
        if value is None:  # unbounded: beyond any timestamp (finite, for JSON model files)
            return _UNBOUNDED_SECONDS if upper else -_UNBOUNDED_SECONDS
        ns = int(_nanoseconds(pd.Series([str(value)]), "datetime")[0])
        ticks = -(-ns // unit_ns) - (1 if upper else 0)  # the upper bound is exclusive
        return ticks * unit_ns / 1e9

    return sorted([seconds(a, False), seconds(b, True)] for a, b in ranges)


def into_spans(values: np.ndarray, spans: list[list[float]]) -> np.ndarray:
    """Values outside every span moved to the nearest bound of a span (NaN kept)."""
    rows = np.array(spans, dtype=float)
    out = np.asarray(values, dtype=float).copy()
    k = np.searchsorted(rows[:, 0], out, side="right") - 1  # the span starting below
    below = np.where(k >= 0, rows[np.maximum(k, 0), 1], -np.inf)  # its end
    above = np.where(k + 1 < len(rows), rows[np.minimum(k + 1, len(rows) - 1), 0], np.inf)
    gap = (out > below) & ~np.isnan(out)
    out[gap] = np.where(out[gap] - below[gap] <= above[gap] - out[gap], below[gap], above[gap])
    return out
