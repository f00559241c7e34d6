"""The truncated normal of extension columns (hma_db.model.truncnorm) and the cdfs the fit check
uses (hma_db.model.marginals.family_cdf): copulas' parameters, at least its likelihood."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from copulas.univariate import TruncatedGaussian
from scipy import optimize, stats

from hma_db.model.marginals import family_cdf, fit_marginal, instance
from hma_db.model.truncnorm import _EPSILON, fit_truncnorm

_rng = np.random.default_rng(21)
SAMPLES = {
    "normal": _rng.normal(3, 2, size=500),
    "counts": _rng.poisson(3, size=77).astype(float),  # skewed: loc at the lower bound
    "decreasing": _rng.exponential(size=200),
    "increasing": 10 - _rng.exponential(size=200),  # loc at the upper bound
    "uniform": _rng.uniform(0.2, 0.7, size=300),  # flat: the largest scale, range < 1
    "five": np.array([7.0, 11.0, 214.0, 237.0, 3034.0]),
    "two values": np.array([0.0, 0.0, 0.0, 1.0, 1.0]),
    "outlier": np.r_[_rng.normal(size=76), 40.0],
    "timestamps": _rng.normal(1.6e9, 3e6, size=400),
    # Nearly flat over a range of 2.6: the maximum inside, where Newton's steps overshoot.
    "flat": np.random.default_rng(71).uniform(size=3_000) * 2.62 + 1000,
    # A range of 1e9: the largest scale's natural parameter is 1e-18 (rounding reached 0).
    "wide range": _rng.exponential(size=300) * 4.7e8,
}


def _log_likelihood(params: dict[str, float], values: np.ndarray) -> float:
    return -stats.truncnorm.nnlf((params["a"], params["b"], params["loc"], params["scale"]),
                                 values)


def _numerical_maximum(values: np.ndarray) -> float:
    """The largest log-likelihood over copulas' box (loc within the bounds, scale up to the
    squared range) that bounded L-BFGS-B finds from a grid of starts."""
    low, high = values.min() - _EPSILON, values.max() + _EPSILON
    width = high - low

    def negative(theta):
        loc, scale = low + theta[0] * width, theta[1] * width
        return stats.truncnorm.nnlf(((low - loc) / scale, (high - loc) / scale, loc, scale),
                                    values)

    best = np.inf
    largest = width  # the scale bound (high - low) ** 2, in units of the width
    for start_loc in (0.0, 0.25, 0.5, 0.75, 1.0):
        for start_scale in (0.05, 0.3, 1.0):
            found = optimize.minimize(negative, [start_loc, min(start_scale, largest)],
                                      method="L-BFGS-B",
                                      bounds=[(0.0, 1.0), (1e-6, largest)])
            best = min(best, found.fun)
    return -best


@pytest.mark.parametrize("name", SAMPLES)
def test_the_fit_is_a_likelihood_maximum_within_copulas_box(name):
    values = SAMPLES[name]
    params = fit_truncnorm(values)
    low, high = values.min() - _EPSILON, values.max() + _EPSILON
    assert low <= params["loc"] <= high
    assert 0 < params["scale"] <= (high - low) ** 2
    assert params["a"] == pytest.approx((low - params["loc"]) / params["scale"])
    assert params["b"] == pytest.approx((high - params["loc"]) / params["scale"])
    ours = _log_likelihood(params, values)
    tolerance = 1e-7 * len(values)
    assert ours >= _numerical_maximum(values) - tolerance
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = TruncatedGaussian()
        model.fit(values)
    assert ours >= _log_likelihood(model._params, values) - tolerance


def test_where_the_moments_match_the_model_has_the_samples_mean_and_variance():
    values = SAMPLES["normal"]
    params = fit_truncnorm(values)
    model = stats.truncnorm(params["a"], params["b"], params["loc"], params["scale"])
    assert model.mean() == pytest.approx(values.mean(), rel=1e-7)
    assert model.var() == pytest.approx(values.var(), rel=1e-6)


def test_the_fit_refuses_a_constant_and_the_marginal_falls_back():
    with pytest.raises(ValueError, match="not all equal"):
        fit_truncnorm(np.full(10, 2.5))
    learned = fit_marginal("truncnorm", SAMPLES["counts"])
    assert learned["distribution"] == "truncnorm"


FAMILIES = [
    ("norm", {"loc": 1.0, "scale": 2.0}),
    ("truncnorm", {"a": -1.5, "b": 2.0, "loc": 0.5, "scale": 1.5}),
    ("truncnorm", {"a": 3.0, "b": 6.0, "loc": 0.0, "scale": 0.5}),  # both bounds in a tail
    ("beta", {"a": 0.7, "b": 3.0, "loc": -2.0, "scale": 6.0}),
    ("gamma", {"a": 2.5, "loc": -1.0, "scale": 0.8}),
    ("uniform", {"loc": -1.0, "scale": 3.0}),
    ("student_t", {"df": 4.0, "loc": 0.5, "scale": 1.2}),
    ("norm", {"loc": 1.0, "scale": 0.0}),  # a constant
]


@pytest.mark.parametrize(("name", "params"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_each_family_cdf_is_the_one_of_copulas_objects(name, params):
    x = np.linspace(-4.0, 6.0, 201)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.asarray(instance(name, params).cdf(x), dtype=float)
    np.testing.assert_allclose(family_cdf(name, params, x), expected, rtol=1e-9, atol=1e-12)
