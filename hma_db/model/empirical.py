"""The ``empirical`` marginal: the observed values' quantile function, interpolated between knots.

A parametric family misses some shapes: Chinook's ``Track.Milliseconds`` and ``Bytes`` are
two-peaked (songs and videos) and heavy-tailed, and a beta puts the 99th percentile of
``Milliseconds`` at 1.45M where the data have 2.66M. The empirical marginal keeps the shape of
the data instead: ``knots`` are the values at ``MAX_KNOTS`` evenly spaced probabilities (the
minimum and the maximum included), the quantile function interpolates linearly between them and
the cdf is its inverse. A model file holds the knots, never every value: at most ``MAX_KNOTS``
numbers a column, whatever the table's size.

It is used where the user asks for it (``numerical_distributions``), and chosen by
:func:`hma_db.model.marginals.fit_marginal` for a column whose best parametric fit the data reject
(its Kolmogorov distance above ``POOR_FIT_KS`` and above the 95% critical distance) or whose
values have two peaks or more (:func:`is_multimodal`). A family the user named is kept.

Example:
    >>> values = np.random.default_rng(0).exponential(size=1000)
    >>> Empirical(fit_empirical(values)).ppf(np.array([0.0, 1.0])) == [values.min(), values.max()]
    array([ True,  True])
"""

from __future__ import annotations

from typing import Any

import numpy as np

NAME = "empirical"
# Knots kept per column: the quantile function at 1/99 steps of probability, so 1% of the
# values lie between two knots. Measured with tests/benchmarks/bench_fidelity.py (seeds 0-2):
# 100 and 200 knots score the same (Chinook 0.806 both, Northwind 0.831 both); a saved Chinook
# model is 90 kB with 100 knots and 108 kB with 200 (60 kB with parametric marginals only).
MAX_KNOTS = 100
# A parametric fit this far (Kolmogorov distance) from the data, and farther than the 95%
# critical distance 1.36 / sqrt(n) (below it the data do not reject the family: on the 77
# rows of a Northwind table the noise alone reaches 0.15), is replaced by the empirical
# marginal. Measured with tests/benchmarks/bench_fidelity.py (seeds 0-2, whole-database
# quality, Chinook / Northwind): parametric only 0.806 / 0.815; 0.10: 0.806 / 0.832; 0.05:
# 0.806 / 0.831; 0.02: 0.803 / 0.827; every column empirical 0.786 / 0.789 (Column Pair
# Trends fall); 0.05 with the critical-distance floor 0.808 / 0.829 (Column Shapes 0.908 ->
# 0.944 and 0.907 -> 0.933).
POOR_FIT_KS = 0.05
# Multimodality: in a histogram of HISTOGRAM_BINS bins between the 1st and 99th percentile,
# smoothed, some bin (a dip) has at least MIN_SIDE_SHARE of the values on each side, a peak on
# each side of at least MIN_PEAK_SHARE of the values, and stands below DIP_SHARE of the lower
# of the two peaks by three standard deviations of a count (noise on small tables). A minority
# mode counts however wide it is (Chinook's videos are 6% of the tracks, spread over 1.3-5.3
# million milliseconds); a long tail falls without such a dip. A column of few distinct values
# gets one bin per value, so that the gaps between integers are not dips.
HISTOGRAM_BINS = 30
MIN_SIDE_SHARE = 0.03
MIN_PEAK_SHARE = 0.01
DIP_SHARE = 0.5
_NOISE = 3.0
_MIN_VALUES = 50  # fewer values than this say nothing about the number of peaks


def fit_empirical(values: np.ndarray) -> dict[str, Any]:
    """``{"knots": [...]}``: with at most ``MAX_KNOTS`` values, the sorted values themselves
    (the model file then holds each of them, as the replayed rows of a small table do); with
    more, ``MAX_KNOTS`` quantiles at evenly spaced probabilities. Non-decreasing, first the
    minimum, last the maximum."""
    values = np.asarray(values, dtype=float)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("an empirical distribution needs finite values")
    if len(values) <= MAX_KNOTS:  # the values themselves (at least two knots)
        knots = np.sort(values) if len(values) > 1 else np.repeat(values, 2)
    else:
        knots = np.quantile(values, np.linspace(0.0, 1.0, MAX_KNOTS))
    return {"knots": np.maximum.accumulate(knots).tolist()}


class Empirical:
    """The cdf and quantile function of ``{"knots": [...]}`` (the interface the copula uses of
    a ``copulas.univariate`` model: ``cdf``, ``ppf``)."""

    def __init__(self, params: dict[str, Any]):
        knots = np.asarray(params.get("knots", []), dtype=float)
        if knots.ndim != 1 or len(knots) < 2 or not np.all(np.isfinite(knots)) \
                or np.any(np.diff(knots) < 0):
            raise ValueError("an empirical distribution needs at least two finite, "
                             "non-decreasing knots")
        self.knots = knots
        self.probabilities = np.linspace(0.0, 1.0, len(knots))

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(u, dtype=float), self.probabilities, self.knots)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Where knots repeat (a value many rows share) the cdf of that value is the middle of
        its flat stretch of probability, as a mid-rank would be."""
        x = np.asarray(x, dtype=float)
        low = np.interp(x, self.knots, self.probabilities)  # numpy takes the last of equal knots
        high = 1.0 - np.interp(-x, -self.knots[::-1], 1.0 - self.probabilities[::-1])
        return (low + high) / 2


def _quantile(ordered: np.ndarray, q: float) -> float:
    """``np.quantile(values, q)`` (its default, linear method, to the last bit) of sorted
    values: interpolated between the two values around position ``(n - 1) q``."""
    position = (len(ordered) - 1) * q
    below = int(np.floor(position))
    gamma = position - below
    a, b = float(ordered[below]), float(ordered[min(below + 1, len(ordered) - 1)])
    # numpy interpolates from the nearer end: the same rounding.
    return b - (b - a) * (1 - gamma) if gamma >= 0.5 else a + (b - a) * gamma


def is_multimodal(values: np.ndarray) -> bool:
    """Two separated peaks or more in the values' smoothed histogram (see the constants).

    Everything from one sort: the percentiles (:func:`_quantile`), the distinct values
    from the differences, the histogram by a binary search per bin edge. The numbers of
    ``np.quantile``, ``np.unique`` and ``np.histogram``, at a third of their cost (0.09 ms
    against 0.26 ms on 77 values, 0.28 ms against 0.52 ms on 4,500; the same answer on
    3,199 columns, 287 of them with two peaks).
    """
    values = np.asarray(values, dtype=float)
    if len(values) < _MIN_VALUES:
        return False
    ordered = np.sort(values)
    low, high = _quantile(ordered, 0.01), _quantile(ordered, 0.99)
    if not high > low:
        return False
    inside = ordered[np.searchsorted(ordered, low, "left"):np.searchsorted(ordered, high, "right")]
    bins = int(min(HISTOGRAM_BINS, 1 + np.count_nonzero(np.diff(inside))))
    # Bin i holds edge i <= x < edge i + 1, the last one its upper edge too (np.histogram).
    starts = np.searchsorted(inside, np.linspace(low, high, bins + 1)[:-1], "left")
    counts = np.diff(np.append(starts, len(inside)))
    shares = counts / len(values)
    padded = np.concatenate(([shares[0]], shares, [shares[-1]]))  # np.pad's "edge" mode
    share = np.convolve(padded, [0.25, 0.5, 0.25], "valid")
    left_peak = np.maximum.accumulate(share)  # highest bin at or before each bin
    right_peak = np.maximum.accumulate(share[::-1])[::-1]
    left_mass = np.cumsum(share) - share
    right_mass = share[::-1].cumsum()[::-1] - share
    lower = np.minimum(left_peak, right_peak)
    n = len(values)
    dips = (share < DIP_SHARE * lower) & (lower >= MIN_PEAK_SHARE) \
        & ((lower - share) * n >= _NOISE * np.sqrt(lower * n)) \
        & (left_mass >= MIN_SIDE_SHARE) & (right_mass >= MIN_SIDE_SHARE)
    return bool(dips.any())
