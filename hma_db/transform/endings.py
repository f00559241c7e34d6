"""Round endings of numbers: prices that end in .00, .50 or .95, salaries in whole thousands.

A modeled number comes out of the copula with every ending alike (19.37, 8.63), where a
person reading real prices sees 18.00, 19.50, 9.95: 79% of Northwind's product prices end in
.00, .50, .25 or .45. Where a number's endings within a *cycle* (a power of ten: the cents
within a unit, the units within a thousand) are concentrated on a few values, the spec keeps
them with their shares (:func:`learn`); at sampling each value takes an ending drawn in those
shares (or keeps its own, for the share of the other endings) and moves to the nearest number
with that ending (:func:`apply`), by at most half a cycle. A cycle is at most a tenth of the
median size, so the marginal barely moves, and the largest cycle that qualifies wins (whole
thousands over whole units).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Measured on the sample databases (2026-12-06): Northwind products.unit_price keeps .00, .50,
# .25 and .45 (79% of 77 prices) and order_details.unit_price .00, .50, .20, .40, .80, .60,
# .45 (78%); orders.freight, whose cents are spread (the commonest 2.2%), keeps none.
MIN_VALUES = 30  # fewer observed values tell nothing about endings
MIN_ENDING_COUNT = 3  # an ending seen fewer times is one of "the others"
MIN_ENDING_SHARE = 0.02
MAX_ENDINGS = 12
MIN_COVERED = 0.6  # the kept endings cover at least this share of the values...
OVER_CHANCE = 4.0  # ...and this many times what as many endings would cover by chance
MAX_CYCLE_SHARE = 0.1  # a cycle is at most this share of the median absolute value
_MAX_UNITS = 2**52  # beyond this, a float no longer holds every unit exactly


def learn(values: np.ndarray, digits: int | None) -> dict[str, Any] | None:
    """``{"cycle", "unit", "endings", "shares"}`` for the observed (non-NaN) ``values`` of a
    number rounded to ``digits`` places, or None when no cycle's endings are concentrated."""
    if digits is None or values.size < MIN_VALUES:
        return None
    unit = 10.0 ** -digits
    units = np.round(values / unit)
    if np.abs(units).max() >= _MAX_UNITS:
        return None
    units = units.astype(np.int64)
    largest = MAX_CYCLE_SHARE * float(np.median(np.abs(values))) / unit
    best = None
    cycle = 10
    while cycle <= largest:
        found = _concentrated(units % cycle, cycle)
        if found is not None:
            best = (cycle, found)
        cycle *= 10
    if best is None:
        return None
    cycle, (endings, shares) = best
    return {"cycle": int(cycle), "unit": int(digits), "endings": endings, "shares": shares}


def _concentrated(endings: np.ndarray, cycle: int) -> tuple[list[int], list[float]] | None:
    found, counts = np.unique(endings, return_counts=True)
    share = counts / endings.size
    keep = (counts >= MIN_ENDING_COUNT) & (share >= MIN_ENDING_SHARE)
    covered = float(share[keep].sum())
    kept = int(keep.sum())
    if not 0 < kept <= MAX_ENDINGS or covered < MIN_COVERED \
            or covered < OVER_CHANCE * kept / cycle:
        return None
    order = np.argsort(-counts[keep], kind="stable")
    return ([int(e) for e in found[keep][order]],
            [round(float(s), 6) for s in share[keep][order]])


def apply(values: np.ndarray, spec: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """``values`` (floats, NaN kept) moved to the nearest number with an ending drawn in the
    learned shares; a value that draws "another ending", or that has a learned ending
    already, is kept as it is."""
    unit = 10.0 ** -int(spec["unit"])
    cycle = int(spec["cycle"])
    endings = np.asarray(spec["endings"], dtype=np.int64)
    shares = np.asarray(spec["shares"], dtype=float)
    pick = np.searchsorted(np.cumsum(shares), rng.random(values.size), side="right")
    chosen = pick < endings.size  # past the last cumulative share: another ending
    out = np.array(values, dtype=float)
    rows = chosen & ~np.isnan(out)
    rows[rows] = ~np.isin(np.round(out[rows] / unit) % cycle, endings)
    units = np.round(out[rows] / unit)
    ending = endings[pick[rows]]
    out[rows] = (np.round((units - ending) / cycle) * cycle + ending) * unit
    return out


def is_valid(spec: Any) -> bool:
    """Whether a model file's endings can be applied: a cycle that is a power of ten of at
    least 10, at most :data:`MAX_ENDINGS` endings inside it, shares summing to at most 1."""
    if not isinstance(spec, dict):
        return False
    cycle, unit = spec.get("cycle"), spec.get("unit")
    endings, shares = spec.get("endings"), spec.get("shares")
    if not (isinstance(cycle, int) and isinstance(unit, int) and isinstance(endings, list)
            and isinstance(shares, list)) or not 0 < len(endings) == len(shares) <= MAX_ENDINGS:
        return False
    return (cycle >= 10 and 10 ** round(np.log10(cycle)) == cycle and -20 <= unit <= 20
            and all(isinstance(e, int) and 0 <= e < cycle for e in endings)
            and all(isinstance(s, int | float) and 0 <= s <= 1 for s in shares)
            and sum(shares) <= 1 + 1e-6)
