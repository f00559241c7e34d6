"""Maximum-likelihood fits of a four-parameter beta (shapes ``a``, ``b``, support ``loc``,
``scale``): on the data's range in closed form, or over candidate supports by profile.

For a fixed support the beta is an exponential family: the likelihood is concave in the
shapes, and its maximum solves ``digamma(a) - digamma(a + b) = mean(log y)`` and
``digamma(b) - digamma(a + b) = mean(log(1 - y))``; Newton's method from the moments' shapes
finds it in a few steps (:func:`_shapes`, vectorized over supports).
:func:`fit_beta_fixed_support` takes the data's range widened by one ``range / n`` on each
side (about 0.1 ms a column). Where the data reject that fit (a skewed column whose
likelihood wants the support to reach far beyond the values),
:func:`fit_beta_profile` compares the likelihood over a grid of supports, then a finer grid
around the best one: the profile likelihood of the four-parameter beta, on at most
``PROFILE_VALUES`` values.

It replaces scipy's ``beta.fit`` (Nelder-Mead over the four parameters from the data's range,
as copulas' ``BetaUnivariate`` fits): 500-1,000 likelihood evaluations, 12-150 ms a column on
30 to 2,000 values, that often stopped at a support with a lower bound above the smallest
value (then rejected) or on the edge of a singular likelihood (``loc`` 1e-21 ranges below the
minimum). Measured on the 7 columns of the parent16, Chinook and Northwind fits that the
closed form does not fit and whose values have one peak, the Kolmogorov distance to the data
(profile / Nelder-Mead): parent16's ``amount`` 0.043 / 0.026, Northwind's ``freight`` 0.042 /
0.049 and ``products.unit_price`` 0.111 / 0.109 (all three kept as beta either way),
``units_in_stock`` 0.162 / 0.181 and ``units_on_order`` 0.491 / 0.779 (empirical either way),
parent16's ``p00.gap`` 0.085 / failed (now a beta, before the empirical marginal); 1.5-3 ms a
column.

Example:
    >>> params = fit_beta_profile(np.random.default_rng(0).lognormal(size=500))
    >>> sorted(params)
    ['a', 'b', 'loc', 'scale']
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

_NEWTON_STEPS = 50  # the likelihood is concave in (a, b): 4-8 steps in practice
_DECREMENT = 1e-14  # stop when the expected gain of log-likelihood per value is below this
_MIN_SHAPE = 1e-2  # the moments' start is kept at least this
# The profile's supports: the data's range widened on each side by 10 ** LOG_WIDENING ranges
# (every pair), then a 5 x 5 grid between the best one's neighbours. From 1e-6 (a shape
# below 1 puts a spike on the smallest values; the likelihood grows without bound as the
# support closes on them) to 1e4 (a gamma-like tail: the beta's limit as the support grows).
LOG_WIDENING = np.array([-6.0, -4.0, -2.0, -1.0, 0.0, 1.0, 4.0])
# Values the profile is computed on (a prefix of the random subsample): the polish then costs
# the same on 500 values or on 2,000 (1.5-3 ms), and the shapes are re-fitted on all of them.
PROFILE_VALUES = 500


def _shapes(mean_log: np.ndarray, mean_log1m: np.ndarray, mean: np.ndarray,
            var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The shapes of maximum likelihood for each support, from the values' mean of
    ``log y`` and ``log(1 - y)`` and their mean and variance of ``y`` (the start)."""
    common = np.where(var > 0, mean * (1 - mean) / np.where(var > 0, var, 1.0) - 1, 2.0)
    a = np.maximum(mean * common, _MIN_SHAPE)
    b = np.maximum((1 - mean) * common, _MIN_SHAPE)
    for _ in range(_NEWTON_STEPS):
        ab = a + b
        digamma_ab, trigamma_ab = special.digamma(ab), special.zeta(2, ab)
        g1 = special.digamma(a) - digamma_ab - mean_log
        g2 = special.digamma(b) - digamma_ab - mean_log1m
        j11 = special.zeta(2, a) - trigamma_ab
        j22 = special.zeta(2, b) - trigamma_ab
        det = j11 * j22 - trigamma_ab * trigamma_ab
        with np.errstate(all="ignore"):
            step_a = (j22 * g1 + trigamma_ab * g2) / det
            step_b = (j11 * g2 + trigamma_ab * g1) / det
        usable = det > 0
        step_a, step_b = np.where(usable, step_a, 0.0), np.where(usable, step_b, 0.0)
        shrink = np.ones_like(a)
        while True:  # keep both shapes positive
            outside = (a - shrink * step_a <= 0) | (b - shrink * step_b <= 0)
            if not outside.any():
                break
            shrink[outside] /= 2
        a, b = a - shrink * step_a, b - shrink * step_b
        # The gain the step promised (the Newton decrement), once small everywhere: done.
        if np.all(np.abs(g1 * step_a + g2 * step_b) < _DECREMENT):
            break
    return a, b


def _shapes_one(mean_log: float, mean_log1m: float, mean: float, var: float
                ) -> tuple[float, float]:
    """:func:`_shapes` for one support, in scalar math: the same Newton steps and stop, at a
    tenth of the cost (numpy's calls on arrays of one value cost more than the work; 0.03 ms
    against 0.28 ms a column)."""
    common = mean * (1 - mean) / var - 1 if var > 0 else 2.0
    a, b = max(mean * common, _MIN_SHAPE), max((1 - mean) * common, _MIN_SHAPE)
    for _ in range(_NEWTON_STEPS):
        ab = a + b
        digamma_ab, trigamma_ab = special.digamma(ab), special.zeta(2.0, ab)
        g1 = special.digamma(a) - digamma_ab - mean_log
        g2 = special.digamma(b) - digamma_ab - mean_log1m
        j11, j22 = special.zeta(2.0, a) - trigamma_ab, special.zeta(2.0, b) - trigamma_ab
        det = j11 * j22 - trigamma_ab * trigamma_ab
        if not det > 0:
            break
        step_a = (j22 * g1 + trigamma_ab * g2) / det
        step_b = (j11 * g2 + trigamma_ab * g1) / det
        shrink = 1.0
        while a - shrink * step_a <= 0 or b - shrink * step_b <= 0:
            shrink /= 2  # keep both shapes positive
        a, b = float(a - shrink * step_a), float(b - shrink * step_b)
        if abs(g1 * step_a + g2 * step_b) < _DECREMENT:
            break
    return a, b


def _profile(values: np.ndarray, low: np.ndarray, high: np.ndarray):
    """For each support ``[low, high]`` (arrays): its shapes of maximum likelihood and the
    log-likelihood per value."""
    y = (values[None, :] - low[:, None]) / (high - low)[:, None]
    mean_log, mean_log1m = np.log(y).mean(axis=1), np.log1p(-y).mean(axis=1)
    a, b = _shapes(mean_log, mean_log1m, y.mean(axis=1), y.var(axis=1))
    value = ((a - 1) * mean_log + (b - 1) * mean_log1m - special.betaln(a, b)
             - np.log(high - low))
    return a, b, np.where(np.isfinite(value), value, -np.inf)


def _fit_on(values: np.ndarray, low: float, high: float) -> dict[str, float]:
    """The beta of maximum likelihood on the support ``[low, high]``."""
    y = (values - low) / (high - low)
    a, b = _shapes_one(float(np.log(y).mean()), float(np.log1p(-y).mean()),
                       float(y.mean()), float(y.var()))
    if not (math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0):
        raise ValueError("the beta shapes did not converge")
    return {"loc": float(low), "scale": float(high - low), "a": a, "b": b}


def fit_beta_fixed_support(values: np.ndarray) -> dict[str, float]:
    """``{"loc", "scale", "a", "b"}`` of a beta whose support is the data's range widened by
    one ``range / n`` on each side, with the shapes of maximum likelihood on that support.

    The widening keeps the smallest and largest values inside the support (a finite
    likelihood), and is the gap between neighbouring values one expects from ``n`` draws.
    :func:`hma_db.model.marginals.fit_marginal` polishes with :func:`fit_beta_profile`
    only when this one does not pass the fit check.
    """
    values = np.asarray(values, dtype=float)
    smallest, biggest = float(values.min()), float(values.max())
    if not biggest > smallest:
        raise ValueError("a beta needs values that are not all equal")
    pad = (biggest - smallest) / len(values)
    return _fit_on(values, smallest - pad, biggest + pad)


def _around(grid: np.ndarray, best: float) -> np.ndarray:
    """Five points from the grid's neighbour below ``best`` to its neighbour above."""
    i = int(np.searchsorted(grid, best))
    below, above = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    return np.unique(np.r_[np.linspace(below, best, 3), np.linspace(best, above, 3)])


def fit_beta_profile(values: np.ndarray) -> dict[str, float]:
    """``{"loc", "scale", "a", "b"}`` of a four-parameter beta fitted to non-constant finite
    ``values`` in random order: the support of largest profile likelihood among the
    candidates (see the module docstring), computed on the first ``PROFILE_VALUES``, and
    the shapes of maximum likelihood on it for every value."""
    values = np.asarray(values, dtype=float)
    smallest, biggest = float(values.min()), float(values.max())
    if not biggest > smallest:
        raise ValueError("a beta needs values that are not all equal")
    spread, part = biggest - smallest, values[:PROFILE_VALUES]
    best = (-np.inf, 0.0, 0.0)
    below, above = LOG_WIDENING, LOG_WIDENING
    for _ in range(2):  # the grid, then a finer one around its best support
        lows, highs = (g.ravel() for g in np.meshgrid(below, above, indexing="ij"))
        # Widest on both sides: the normal limit (shapes of 1e9, that Newton's method does
        # not settle to the digits asked for), which the truncnorm fallback covers.
        keep = (lows < LOG_WIDENING[-1]) | (highs < LOG_WIDENING[-1])
        lows, highs = lows[keep], highs[keep]
        _, _, value = _profile(part, smallest - spread * 10 ** lows,
                               biggest + spread * 10 ** highs)
        k = int(np.argmax(value))
        if value[k] > best[0]:
            best = (float(value[k]), float(lows[k]), float(highs[k]))
        below, above = _around(LOG_WIDENING, best[1]), _around(LOG_WIDENING, best[2])
    if not np.isfinite(best[0]):
        raise ValueError("no support gives the beta a finite likelihood")
    return _fit_on(values, smallest - spread * 10 ** best[1], biggest + spread * 10 ** best[2])
