"""Marginal distributions of the copula's columns: the families, their fit, their check.

A column gets the family asked for, fitted on a random subsample (the slow families on a
prefix of it, ``FAMILY_SAMPLE_SIZE``); a family that cannot be fitted falls back
(``FALLBACKS``); the built-in default gives way to the ``empirical`` marginal
(:mod:`hma_db.model.empirical`) where the data reject it or have two peaks. The speed choices
are measured in :mod:`hma_db.model.copula`'s docstring. A group of columns is fitted by
:func:`fit_column_group`, the task an executor runs for a wide table; a fit runs BLAS on one
thread (:func:`one_blas_thread`), so it is the same in any process. With
:mod:`hma_db.model.copula`, the only importer of ``copulas``.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from copulas import univariate
from scipy import special
from threadpoolctl import ThreadpoolController

from hma_db.errors import SynthesizerInputError
from hma_db.model.beta import fit_beta_fixed_support, fit_beta_profile
from hma_db.model.empirical import NAME as EMPIRICAL
from hma_db.model.empirical import POOR_FIT_KS, Empirical, fit_empirical, is_multimodal
from hma_db.model.truncnorm import fit_truncnorm

DISTRIBUTIONS = {
    "norm": univariate.GaussianUnivariate, "beta": univariate.BetaUnivariate,
    "truncnorm": univariate.TruncatedGaussian, "gamma": univariate.GammaUnivariate,
    "uniform": univariate.UniformUnivariate, "student_t": univariate.StudentTUnivariate,
}
# What to try, in order, when a requested family cannot be fitted to a column.
FALLBACKS = {"beta": ("truncnorm", "norm"), "gamma": ("truncnorm", "norm"), "norm": (),
             "student_t": ("norm",), "truncnorm": ("norm",), "uniform": ("truncnorm", "norm"),
             EMPIRICAL: ()}
# The slow maximum-likelihood families fit on a prefix of the (random) subsample.
FAMILY_SAMPLE_SIZE = {"beta": 2_000, "student_t": 2_000, "gamma": 5_000, "truncnorm": 5_000}
_MAX_KS = 0.35  # a fit whose cdf is this far from the data's is treated as failed
_KS_95 = 1.36  # Kolmogorov's 95% critical distance is 1.36 / sqrt(n)
_EDGE, _MAX_EDGE_MASS = 1e-7, 0.01
SCORE_LIMIT = 6.0  # |z| cap: Phi(-6) ~ 1e-9, so no score is infinite
SCORE_GRID = np.linspace(-SCORE_LIMIT, SCORE_LIMIT, 2401)  # the inverse-cdf grid's scores


def check_distribution(name: Any, column: str) -> str:
    """Return ``name`` if it is an allowed distribution, else raise naming the column."""
    if name in DISTRIBUTIONS or name == EMPIRICAL:
        return name
    reason = " (non-parametric distributions are not supported)" if name == "gaussian_kde" else ""
    raise SynthesizerInputError(
        f"Column '{column}': unknown distribution {name!r}{reason}; expected one of "
        f"{', '.join(sorted([*DISTRIBUTIONS, EMPIRICAL]))}")

def instance(name: str, params: dict[str, Any]) -> univariate.Univariate | Empirical:
    """The object whose ``cdf`` and ``ppf`` the copula uses for a fitted marginal."""
    if name == EMPIRICAL:
        return Empirical(params)
    cls = DISTRIBUTIONS[name]
    return univariate.Univariate.from_dict({"type": f"{cls.__module__}.{cls.__name__}", **params})


def family_cdf(name: str, params: dict[str, float], x: np.ndarray) -> np.ndarray:
    """The cdf of a fitted marginal at ``x``, by ``scipy.special`` directly.

    The numbers copulas' objects give through ``scipy.stats`` (to the last bits), without
    their argument checks on every call: a truncnorm's cdf on 77 values took 0.54 ms that
    way, a beta's 0.042 ms, and 0.006 ms by ``betainc``. A zero scale is a constant (the
    cdf steps from 0 to 1 at ``loc``, as in copulas); other parameters out of their domain
    give NaN.
    """
    if name == EMPIRICAL:
        return Empirical(params).cdf(x)
    loc, scale = params["loc"], params["scale"]
    if scale == 0:
        return (x >= loc).astype(float)
    if not scale > 0:
        return np.full(np.shape(x), np.nan)
    z = (x - loc) / scale
    if name == "norm":
        return special.ndtr(z)
    if name == "truncnorm":
        a, b = params["a"], params["b"]
        if a > 0:  # both bounds in the upper tail: the survival function keeps the digits
            tail = special.ndtr(-a)
            return np.clip((tail - special.ndtr(-np.clip(z, a, b))) / (tail - special.ndtr(-b)),
                           0.0, 1.0)
        low = special.ndtr(a)
        return np.clip((special.ndtr(np.clip(z, a, b)) - low) / (special.ndtr(b) - low), 0.0, 1.0)
    if name == "beta":
        return special.betainc(params["a"], params["b"], np.clip(z, 0.0, 1.0))
    if name == "gamma":
        return special.gammainc(params["a"], np.maximum(z, 0.0))
    if name == "uniform":
        return np.clip(z, 0.0, 1.0)
    return special.stdtr(params["df"], z)  # student_t


def _ks_distance(name: str, params: dict[str, float], ordered: np.ndarray) -> float:
    """Kolmogorov distance between the fitted cdf and the empirical cdf of the sorted sample.

    Infinite when the fit is degenerate: non-finite, or more than ``_MAX_EDGE_MASS`` of the
    values strictly inside the data's range on or outside the edges of the fitted support
    (e.g. a beta whose lower bound lies above the smallest values): such a fit never produces
    a good part of the data.

    The cdf is evaluated once per distinct value (a count, a category's slice or a rounded
    amount repeats values; the beta's ``betainc`` costs 0.3 us a value): the empirical cdf
    steps at the last of equal values and starts below the first, so the distance is the
    same as over every value.
    """
    n = len(ordered)
    last = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))  # of each value
    distinct = ordered[last]
    u = np.asarray(family_cdf(name, params, distinct), dtype=float)
    if not np.all(np.isfinite(u)):
        return np.inf
    upper = (last + 1) / n  # the empirical cdf at each distinct value
    lower = np.append(0.0, upper[:-1])  # and just below it
    # Ties at the data's own minimum or maximum may sit on the edge (discrete columns).
    inner = (distinct > distinct[0]) & (distinct < distinct[-1])
    if np.sum((upper - lower)[inner & ((u < _EDGE) | (u > 1 - _EDGE))]) > _MAX_EDGE_MASS:
        return np.inf
    return float(max(np.max(upper - u), np.max(u - lower)))


def _fit_family(name: str, sample: np.ndarray, polish: bool) -> dict[str, float]:
    """The parameters of one family fitted to ``sample`` (raises when it cannot be)."""
    if name == "beta":
        return fit_beta_profile(sample) if polish else fit_beta_fixed_support(sample)
    if name == "truncnorm":
        return fit_truncnorm(sample)
    if name == "norm":  # copulas' GaussianUnivariate: the mean and the spread
        return {"loc": float(np.mean(sample)), "scale": float(np.std(sample))}
    model = DISTRIBUTIONS[name]()
    model.fit(sample)
    return {k: float(v) for k, v in model.to_dict().items() if k != "type"}


def _try_fit(name: str, sample: np.ndarray, polish: bool = False
             ) -> tuple[dict[str, float] | None, float]:
    """Fit one family; return (its parameters, its KS distance) or (None, inf) on failure.
    A beta is fitted on the data's range in closed form, or with ``polish`` over candidate
    supports too (see beta.py)."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            params = _fit_family(name, sample, polish)
            if not all(np.isfinite(v) for v in params.values()):
                return None, np.inf
            return params, _ks_distance(name, params, np.sort(sample))
    except (ValueError, RuntimeError, ArithmeticError, np.linalg.LinAlgError):
        return None, np.inf


def fit_marginal(name: str, values: np.ndarray, named: bool = False,
                 column: str = "", notes: list[str] | None = None) -> dict[str, Any]:
    """Fit the requested family (or its first usable fallback) to a non-constant column
    whose values are in random order (slow families use a prefix).

    A family the user ``named`` is kept however well it fits; only a fit that fails
    numerically falls back, with a warning naming the ``column`` (as SDV uses the family it is
    asked for). Otherwise values with several peaks, or a fit the data reject (Kolmogorov
    distance above ``POOR_FIT_KS`` and the 95% critical distance), get the ``empirical``
    marginal. Returns
    ``{"distribution", "requested", "learned_parameters"}``. With ``notes``, the warning's
    text is appended there instead, for the caller to warn from its own thread: a fit run by
    an executor may run in another thread or process.
    """
    if name == EMPIRICAL or (not named and is_multimodal(values)):
        # Several peaks: no family has that shape, so none is fitted.
        return {"distribution": EMPIRICAL, "requested": name,
                "learned_parameters": fit_empirical(values)}
    if named:
        subsample = values[:FAMILY_SAMPLE_SIZE.get(name, len(values))]
        params, _ = _try_fit(name, subsample)
        if params is None and name == "beta":
            params, _ = _try_fit(name, subsample, polish=True)
        if params is not None:
            return {"distribution": name, "requested": name, "learned_parameters": params}
    best: tuple[float, str, dict[str, float]] | None = None
    for candidate in (name, *FALLBACKS[name]):
        subsample = values[:FAMILY_SAMPLE_SIZE.get(candidate, len(values))]
        params, distance = _try_fit(candidate, subsample)
        critical = _KS_95 / np.sqrt(len(subsample))
        if candidate == "beta" and not distance <= min(_MAX_KS, critical):
            # Polished by likelihood only where the data reject the closed-form fit.
            polished = _try_fit(candidate, subsample, polish=True)
            if polished[1] < distance:
                params, distance = polished
        if params is not None and distance <= _MAX_KS:
            if not named and distance > max(POOR_FIT_KS, critical):
                break  # a poor fit: the empirical marginal
            return {"distribution": candidate, "requested": name, "learned_parameters": params}
        if params is not None and (best is None or distance < best[0]):
            best = (distance, candidate, params)
    if not named:
        return {"distribution": EMPIRICAL, "requested": name,
                "learned_parameters": fit_empirical(values)}
    return _named_fallback(name, values, best, column, notes)


def _named_fallback(name: str, values: np.ndarray, best: tuple | None, column: str,
                    notes: list[str] | None) -> dict[str, Any]:
    """The best fit found for a named family that could not be fitted, with a warning."""
    if best is None:  # even the normal fit failed: use the moments directly
        params = {"loc": float(np.mean(values)), "scale": float(np.std(values) or 1.0)}
        best = (np.inf, "norm", params)
    instead = (f"'{best[1]}' is used instead" if best[1] != name
               else "it takes the values' mean and spread instead")
    message = (f"Column '{column}': the distribution '{name}' asked for could not be "
               f"fitted to its values; {instead}.")
    if notes is None:
        warnings.warn(message, UserWarning, stacklevel=3)
    else:
        notes.append(message)
    return {"distribution": best[1], "requested": name, "learned_parameters": best[2]}


_blas: dict[str, Any] = {"lock": threading.Lock(), "holders": 0, "limit": None, "control": None}


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS on one thread while this process fits, so a fit is the same in every process.

    OpenBLAS splits some products differently by its number of threads: ``x.T @ y`` of
    3,503 x 20 differs in the last bits with 1 and 2 threads, and a truncnorm fit on such
    statistics moved in the third digit. Dask's worker processes run BLAS on one thread
    (``OPENBLAS_NUM_THREADS=1``), so every fit does: its products are at most 200,000 rows
    by the table's columns, where a second thread gained nothing (measured in
    :mod:`hma_db.model.levels`). Counted, so
    threads of one process fitting at once keep the limit until the last one is done
    (``threadpoolctl``'s limit is for the whole process).
    """
    with _blas["lock"]:
        if _blas["holders"] == 0:
            if _blas["control"] is None:
                _blas["control"] = ThreadpoolController()
            _blas["limit"] = _blas["control"].limit(limits=1, user_api="blas")
        _blas["holders"] += 1
    try:
        yield
    finally:
        with _blas["lock"]:
            _blas["holders"] -= 1
            if _blas["holders"] == 0:
                _blas["limit"].restore_original_limits()
                _blas["limit"] = None


def fit_column_group(group: tuple[np.ndarray, list[tuple[str, str, bool]]]
                     ) -> list[tuple[dict[str, Any], list[str]]]:
    """Fit the marginals of a group of columns: the task an executor runs.

    Args:
        group: ``(values, specs)``: the subsample's values of the group's columns (one row
            per column) and, per column, ``(name, family, named)``.

    Returns:
        Per column ``(marginal, notes)``: plain data, the same in any process (the
        univariate object and inverse-cdf grid are built from it where they are used,
        :func:`column_state`).
    """
    sample, specs = group
    out = []
    with one_blas_thread():
        for values, (column, family, named) in zip(sample, specs, strict=True):
            out.append(_fit_one(values, column, family, named))
    return out


def _fit_one(values: np.ndarray, column: str, family: str, named: bool
             ) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    if len(values) == 0 or np.ptp(values) == 0:
        value = float(values[0]) if len(values) else 0.0
        marginal = {"distribution": family, "requested": family, "constant": value,
                    "learned_parameters": {"loc": value, "scale": 0.0}}
    else:
        marginal = fit_marginal(family, values, named=named, column=column, notes=notes)
    return marginal, notes


def column_state(marginal: dict[str, Any]) -> tuple[Any, np.ndarray | None]:
    """A marginal's univariate object and inverse-cdf grid (None, None for a constant).

    Built when a copula first maps values or scores of the column, not at fit: the grid's
    2,401 quantiles cost 0.1-2 ms a column (a beta's ``ppf`` through scipy is the slowest),
    48 ms of the parent16 benchmark's 150 ms model fit.
    """
    if "constant" in marginal:
        return None, None
    model = instance(marginal["distribution"], marginal["learned_parameters"])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        grid = np.asarray(model.ppf(special.ndtr(SCORE_GRID)), dtype=float)
    # Guard against a non-finite end of the grid (unbounded families at u ~ 1e-9).
    finite = np.isfinite(grid)
    grid = np.interp(SCORE_GRID, SCORE_GRID[finite], grid[finite]) if finite.any() else \
        np.zeros_like(SCORE_GRID)
    return model, np.maximum.accumulate(grid)
