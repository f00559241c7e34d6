"""The Gaussian copula: marginals, fallbacks, correlation, conditional sampling, plain data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from hma_db.errors import SynthesizerInputError
from hma_db.model.copula import FIT_SAMPLE_SIZE, GaussianCopula, nearest_correlation
from hma_db.model.latent import mid_rank_scores
from hma_db.model.marginals import instance

RHO = np.array([[1.0, 0.7, -0.3], [0.7, 1.0, 0.0], [-0.3, 0.0, 1.0]])


def _data(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 3)) @ np.linalg.cholesky(RHO).T
    u = stats.norm.cdf(z)
    return np.column_stack([stats.gamma(2, scale=3).ppf(u[:, 0]),
                            stats.beta(2, 5).ppf(u[:, 1]) * 100,
                            np.round(stats.norm(50, 10).ppf(u[:, 2]))])


def test_fit_recovers_correlation_and_marginals():
    data = _data(20_000)
    copula = GaussianCopula("beta", {"c": "truncnorm"}).fit(data, ["a", "b", "c"])
    assert copula.columns == ["a", "b", "c"]
    np.testing.assert_allclose(copula.correlation, RHO, atol=0.05)
    learned = copula.learned_distributions()
    assert learned["c"]["distribution"] == "truncnorm"
    assert learned["b"]["distribution"] == "beta"
    assert set(learned["b"]["learned_parameters"]) == {"a", "b", "loc", "scale"}
    fake = copula.from_scores(copula.sample_scores(20_000, np.random.default_rng(1)))
    np.testing.assert_allclose(fake.mean(axis=0), data.mean(axis=0), rtol=0.05)
    np.testing.assert_allclose(fake.std(axis=0), data.std(axis=0), rtol=0.12)
    spearman = stats.spearmanr(fake).statistic
    np.testing.assert_allclose(spearman, stats.spearmanr(data).statistic, atol=0.05)


def test_every_named_distribution_fits():
    data = _data(3_000)[:, [1]]
    for name in ("norm", "beta", "truncnorm", "gamma", "uniform", "student_t", "empirical"):
        copula = GaussianCopula(name, named={"x"}).fit(data, ["x"])
        assert copula.learned_distributions()["x"]["distribution"] == name


def test_a_default_family_that_fits_poorly_gives_way_to_the_empirical_marginal():
    data = _data(3_000)[:, [1]]  # a beta(2, 5): a uniform is far from it, a beta is close
    assert GaussianCopula("beta").fit(data, ["x"]).learned_distributions()["x"] == \
        GaussianCopula("beta", named={"x"}).fit(data, ["x"]).learned_distributions()["x"]
    learned = GaussianCopula("uniform").fit(data, ["x"]).learned_distributions()["x"]
    assert learned["distribution"] == "empirical" and learned["fallback_from"] == "uniform"


def test_scores_round_trip_and_are_finite():
    data = _data(5_000)
    copula = GaussianCopula("truncnorm").fit(data, ["a", "b", "c"])
    scores = copula.to_scores(data)
    assert np.all(np.isfinite(scores))
    np.testing.assert_allclose(copula.from_scores(scores), data, atol=0.02 * data.std(axis=0).max())
    far = copula.to_scores(data * 1000)  # far outside the fitted range: still finite
    assert np.all(np.isfinite(far))


def test_failed_fit_falls_back_and_is_recorded():
    rng = np.random.default_rng(0)
    column = np.r_[rng.normal(size=999), 1e12]  # one huge outlier: beta degenerates
    copula = GaussianCopula("beta").fit(column[:, None], ["spend"])
    learned = copula.learned_distributions()["spend"]
    assert learned["distribution"] != "beta"
    assert learned["fallback_from"] == "beta"


def test_constant_and_tiny_inputs():
    data = np.column_stack([np.full(50, 7.5), np.arange(50.0)])
    copula = GaussianCopula().fit(data, ["k", "x"])
    assert copula.learned_distributions()["k"]["learned_parameters"]["scale"] == 0.0
    fake = copula.from_scores(copula.sample_scores(10, np.random.default_rng(0)))
    assert np.all(fake[:, 0] == 7.5)
    one = GaussianCopula().fit(np.array([[3.0, 4.0]]), ["a", "b"])
    np.testing.assert_array_equal(one.correlation, np.eye(2))
    np.testing.assert_array_equal(one.from_scores(np.zeros((2, 2))), [[3.0, 4.0]] * 2)
    empty = GaussianCopula().fit(np.zeros((5, 0)), [])
    assert empty.sample_scores(4, np.random.default_rng(0)).shape == (4, 0)
    assert empty.from_scores(np.zeros((4, 0))).shape == (4, 0)


@pytest.mark.parametrize("name", ["gaussian_kde", "lognormal", None])
def test_refused_distributions_name_the_column(name):
    with pytest.raises(SynthesizerInputError, match="amount") as info:
        GaussianCopula("beta", {"amount": name})
    assert "truncnorm" in str(info.value)
    with pytest.raises(SynthesizerInputError, match="beta"):
        GaussianCopula(name)


def test_non_finite_values_are_refused():
    data = np.array([[1.0, np.nan], [2.0, 3.0]])
    with pytest.raises(SynthesizerInputError, match="b"):
        GaussianCopula().fit(data, ["a", "b"])


def test_nearest_correlation_is_valid():
    bad = np.array([[1.0, 0.9, 0.9], [0.9, 1.0, -0.9], [0.9, -0.9, 1.0]])  # not PSD
    fixed = nearest_correlation(bad)
    np.testing.assert_allclose(np.diag(fixed), 1.0)
    np.testing.assert_allclose(fixed, fixed.T)
    assert np.linalg.eigvalsh(fixed).min() > 0
    assert np.abs(fixed - bad).max() < 0.6
    np.linalg.cholesky(fixed)


def test_conditional_scores_follow_the_schur_complement():
    copula = GaussianCopula("norm").fit(_data(20_000), ["a", "b", "c"])
    rng = np.random.default_rng(3)
    known = np.full((20_000, 1), 1.5)
    full = copula.conditional_scores(known, ["a"], rng)
    assert np.all(full[:, 0] == 1.5)
    rho = copula.correlation
    np.testing.assert_allclose(full[:, 1].mean(), 1.5 * rho[1, 0], atol=0.03)
    np.testing.assert_allclose(full[:, 1].var(), 1 - rho[1, 0] ** 2, atol=0.03)
    both = copula.conditional_scores(np.zeros((3, 3)), ["c", "a", "b"], rng)
    np.testing.assert_array_equal(both, np.zeros((3, 3)))
    with pytest.raises(SynthesizerInputError, match="zz"):
        copula.conditional_scores(known, ["zz"], rng)


def test_to_dict_is_plain_json_and_round_trips():
    copula = GaussianCopula("beta", {"c": "student_t"}).fit(_data(2_000), ["a", "b", "c"])
    text = json.dumps(copula.to_dict())
    again = GaussianCopula.from_dict(json.loads(text))
    scores = copula.sample_scores(100, np.random.default_rng(0))
    np.testing.assert_array_equal(again.from_scores(scores), copula.from_scores(scores))
    np.testing.assert_array_equal(again.correlation, copula.correlation)
    assert again.learned_distributions() == copula.learned_distributions()
    damaged = json.loads(text)
    damaged["marginals"][0]["distribution"] = "gaussian_kde"
    with pytest.raises(SynthesizerInputError):
        GaussianCopula.from_dict(damaged)


def test_large_columns_fit_on_a_subsample_deterministically():
    data = _data(FIT_SAMPLE_SIZE * 3)
    first = GaussianCopula("gamma").fit(data, ["a", "b", "c"], np.random.default_rng(5))
    second = GaussianCopula("gamma").fit(data, ["a", "b", "c"], np.random.default_rng(5))
    assert first.to_dict() == second.to_dict()
    np.testing.assert_allclose(first.correlation, RHO, atol=0.05)


def test_the_inverse_cdf_grids_are_built_on_first_use_and_follow_the_exact_ppf():
    """The fit builds no grid (they cost more than the fit of a small table); the first
    mapping builds them, from the fitted parameters, as close to the exact inverse cdf as
    the grid built at fit was (step 0.005 in score space)."""
    data = _data(2_000)
    copula = GaussianCopula("beta", {"c": "truncnorm"}).fit(data, ["a", "b", "c"])
    assert copula._states == [None, None, None]
    scores = np.clip(copula.sample_scores(1_000, np.random.default_rng(4)), -5.9, 5.9)
    values = copula.from_scores(scores)
    assert all(state is not None for state in copula._states)
    for j, marginal in enumerate(copula.marginals):
        exact = instance(marginal["distribution"], marginal["learned_parameters"]).ppf(
            stats.norm.cdf(scores[:, j]))
        np.testing.assert_allclose(values[:, j], exact, rtol=0, atol=1e-4 * np.ptp(data[:, j]))
    again = GaussianCopula.from_dict(json.loads(json.dumps(copula.to_dict())))
    assert again._states == [None, None, None]
    np.testing.assert_array_equal(again.to_scores(data[:50]), copula.to_scores(data[:50]))


def test_ranks_from_one_sort_are_the_ranks_within_a_sample_of_every_row():
    rng = np.random.default_rng(9)
    for values in (rng.normal(size=500), rng.integers(0, 4, size=300).astype(float),
                   np.round(rng.lognormal(size=800), 1), np.array([2.0, 2.0, 1.0])):
        shuffled = values[rng.permutation(len(values))]
        np.testing.assert_array_equal(mid_rank_scores(values),
                                      GaussianCopula._sample_rank_scores(values, shuffled))
    ties = mid_rank_scores(np.array([5.0, 1.0, 5.0, 3.0]))
    np.testing.assert_allclose(ties, stats.norm.ppf(np.array([3.5, 1, 3.5, 2]) / 5))
