"""A Gaussian copula on plain numpy arrays, with marginals from ``copulas.univariate``.

Each column gets a parametric marginal ``F`` (``norm``, ``beta``, ``truncnorm``, ``gamma``,
``uniform`` or ``student_t``), or the ``empirical`` one (:mod:`hma_db.model.empirical`) where
asked for or where the parametric fit is poor or the values have several peaks; the dependence
between columns is the correlation matrix of the normal scores of the fitted data (from
mid-ranks, robust to ties and to a poorly fitting marginal), projected to the nearest valid
correlation matrix; ``to_scores`` maps new data by
``z = Phi^-1(F(x))``. The marginals are fitted in :mod:`hma_db.model.marginals`, the only
importer of ``copulas``; everything the copula keeps is plain data (``to_dict``).

Speed choices, measured on a 2-core machine (1 million values, one column):

* marginals are fitted on a random subsample of at most ``FIT_SAMPLE_SIZE`` values, fewer for
  the slow families (``FAMILY_SAMPLE_SIZE``), in closed form or by Newton's method, never by
  a general-purpose optimizer. A ``beta`` is fitted on the data's range, its shapes by
  likelihood (Newton on the digamma equations in scalar math, 0.03-0.09 ms a column); where
  the data reject that fit (Kolmogorov distance above the 95% critical value
  ``1.36 / sqrt(n)``) and have one peak, its support is polished by profile likelihood over
  up to 73 candidate supports on at most 500 values (1.2-2.1 ms a column; scipy's Nelder-Mead over
  the four parameters took 12-150 ms, copulas' own 24-280 ms; see
  :mod:`hma_db.model.beta`). A ``truncnorm`` (every extension column) by Newton's method in
  its natural parameters within copulas' box on loc and scale (0.1-0.25 ms a column,
  copulas' SLSQP 1.9-2.7 ms; :mod:`hma_db.model.truncnorm`). The fit check's cdf is
  evaluated by ``scipy.special`` once per distinct value, and a column with several peaks
  goes to the empirical marginal before any family is fitted;
* the inverse-cdf grid of a marginal (``from_scores``, below) is built on first use, not at
  fit: 0.1-2 ms a column, most of it a beta's ``ppf``;
* measured on issue 20's shape (a 16-column parent of 77 rows with 4,500 children, the
  ``parent16`` case of ``tests/benchmarks/bench_fit.py``), CPU time of the model fit
  (``fit_processed_data``, median of 35): 143.5 ms before (grids at fit, Nelder-Mead polish,
  copulas' truncnorm and cdfs) and 26.8 ms after, of which the marginals 11.6 ms and
  ``align_slices`` 7.4 ms (load average 4.5 on 2 cores; wall time 293 -> 44 ms there). The
  quality is unchanged (``tests/benchmarks/bench_fidelity.py``, seeds 0-9: Chinook 0.837,
  Northwind 0.836 before and after). ``student_t`` and ``gamma`` are still fitted by copulas
  (0.7 s on 2k values for ``student_t``), only where a user names them;
* with an ``executor`` (:meth:`GaussianCopula.fit_scores`), the marginals of a table of at
  least ``PARALLEL_COLUMNS`` columns are fitted ``COLUMNS_PER_TASK`` at a time, every n-th
  column in one task (slow columns sit together: extension columns come last; on the
  200-column table of ``tests/test_beta.py`` the last 50 took 71-81% of the time), the
  first group here. That table (100 rows) fitted in 1.0-1.2 s here; with 2 local worker
  processes in 0.52-0.66 s in the runs where a core was free and 0.86-1.06 s where it was
  not (medians of 5-7, load average 1.1-3.2 on 2 cores: other benchmarks were running).
  A pool of 2 threads is slower (1.25-1.32 s against 0.90-1.18 s, load average 3.3-3.7):
  the likelihood fits hold the GIL. Since the fits above its model fit takes 0.13-0.26 s
  here and 0.22-0.26 s with 2 worker processes (median of 7, load average 5): the
  thresholds should be measured again on a quiet machine;
* ``from_scores`` evaluates the exact inverse cdf on a fine grid of scores and interpolates
  linearly (``beta``'s exact ``ppf`` costs 2.6 s per million values, the grid 0.02 s);
  the grid step is 0.005 in score space, so the error is far below any rounding of the data.
  ``to_scores`` on more than ``EXACT_CDF_ROWS`` rows interpolates the same grid backwards
  (``beta``'s exact cdf costs 1 s per million values).

Example:
    >>> copula = GaussianCopula("beta", {"age": "truncnorm"}).fit(data, ["age", "income"])
    >>> fake = copula.from_scores(copula.sample_scores(100, np.random.default_rng(0)))
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import special

from hma_db.errors import SynthesizerInputError
from hma_db.model.latent import mid_rank_scores
from hma_db.model.marginals import (
    SCORE_GRID,
    SCORE_LIMIT,
    check_distribution,
    column_state,
    fit_column_group,
    fit_marginal,  # noqa: F401 - importable from here, as before
)

FIT_SAMPLE_SIZE = 10_000
CORRELATION_ROWS = 200_000  # random rows the correlation is estimated on (SE < 0.003)
EXACT_CDF_ROWS = 20_000  # above this, to_scores interpolates the inverse-cdf grid
_GRID = SCORE_GRID
_MIN_EIGENVALUE = 1e-6
# With an executor, a table of at least PARALLEL_COLUMNS columns fits its marginals there,
# COLUMNS_PER_TASK columns a task. Measured again once a marginal took 0.1-2 ms (2026-12-06,
# quiet 2-core machine, the corpus' wide table cut to k columns, the copula's whole fit here
# -> with 2 local worker processes, median of 5): 100 rows, 50 columns 14 -> 38 ms, 100
# columns 27 -> 62, 200 columns 105 -> 138, 400 columns 418 -> 354 (1.18x); 2,000 rows 47 ->
# 78, 113 -> 95, 205 -> 215, 1,277 -> 829 ms (1.54x). A map costs about 20 ms more than the
# same work here; below 400 columns the workers win at most 1.19x and lose up to 2.6x.
COLUMNS_PER_TASK = 25
PARALLEL_COLUMNS = 400


def nearest_correlation(matrix: np.ndarray) -> np.ndarray:
    """The nearest valid correlation matrix: eigenvalues clipped to a small positive floor,
    then rescaled to a unit diagonal (symmetric, positive definite)."""
    matrix = np.nan_to_num(np.asarray(matrix, dtype=float))
    matrix = (matrix + matrix.T) / 2
    if matrix.size == 0:
        return matrix.reshape(0, 0)
    values, vectors = np.linalg.eigh(matrix)
    fixed = (vectors * np.clip(values, _MIN_EIGENVALUE, None)) @ vectors.T
    scale = 1 / np.sqrt(np.diag(fixed))
    fixed = fixed * scale[:, None] * scale[None, :]
    np.fill_diagonal(fixed, 1.0)
    return (fixed + fixed.T) / 2


def _normal_ppf(u: np.ndarray) -> np.ndarray:
    return np.clip(special.ndtri(u), -SCORE_LIMIT, SCORE_LIMIT)


class GaussianCopula:
    """A Gaussian copula with one parametric marginal per column.

    Args:
        default_distribution: the marginal family for columns not named in
            ``numerical_distributions`` (one of ``DISTRIBUTIONS``).
        numerical_distributions: ``{column: family}`` overrides.
        named: the columns whose family the user named (see :func:`fit_marginal`).

    Example:
        >>> copula = GaussianCopula("truncnorm").fit(np.random.rand(100, 2), ["a", "b"])
        >>> copula.learned_distributions()["a"]["distribution"]
        'truncnorm'
    """

    def __init__(self, default_distribution: str = "beta",
                 numerical_distributions: dict[str, str] | None = None,
                 named: set[str] | frozenset[str] = frozenset()):
        self.default_distribution = check_distribution(default_distribution, "<default>")
        self.numerical_distributions = {
            col: check_distribution(name, col)
            for col, name in (numerical_distributions or {}).items()}
        # Columns whose family the user named: kept unless its fit fails (fit_marginal).
        self.named = frozenset(named)
        self.columns: list[str] = []
        self.marginals: list[dict[str, Any]] = []
        self.correlation = np.zeros((0, 0))
        # Per column, (univariate object, inverse-cdf grid) once built (_state), else None.
        self._states: list[tuple[Any, np.ndarray | None] | None] = []

    # ----------------------------------------------------------------------------------- fit
    def fit(self, data: np.ndarray, columns: list[str],
            rng: np.random.Generator | None = None) -> GaussianCopula:
        """Fit the marginals and the correlation of the normal scores.

        Args:
            data: ``(n, d)`` finite floats.
            columns: the ``d`` column names.
            rng: draws the subsample the marginals are fitted on (default: a fixed seed).
        """
        self.fit_scores(data, columns, rng)
        return self

    def fit_scores(self, data: np.ndarray, columns: list[str],
                   rng: np.random.Generator | None = None, executor: Any = None,
                   notes: list[str] | None = None) -> np.ndarray:
        """Like :meth:`fit`, and return the normal scores of ``data`` the correlation was
        estimated on (from mid-ranks, see :meth:`_rank_scores`).

        Args:
            executor: anything with ``map(fn, *iterables)`` giving the results in order
                (``concurrent.futures`` style): a table of at least ``PARALLEL_COLUMNS``
                columns fits its marginals there, ``COLUMNS_PER_TASK`` columns a task. The
                fit is the same with or without one.
            notes: where a named family's fallback is written instead of warned (see
                :func:`~hma_db.model.marginals.fit_marginal`).
        """
        data = self._check(data, columns)
        rng = rng if rng is not None else np.random.default_rng(0)
        self.columns = list(columns)
        # Rows in random order, so that every prefix is itself a random subsample. Every
        # column is fitted on the same rows, whichever task it lands in.
        order = rng.permutation(len(data))
        sample = data[order[:FIT_SAMPLE_SIZE]]
        # Every n-th column in one group: slow columns sit together (extension columns come
        # last), so contiguous groups would leave one task with most of the work. One
        # contiguous row of values per column, the same in any task.
        n_groups = -(-len(columns) // COLUMNS_PER_TASK)
        members = [range(g, len(columns), n_groups) for g in range(n_groups)]
        groups = [(np.ascontiguousarray(sample[:, list(m)].T), [
            (columns[j], self.numerical_distributions.get(columns[j], self.default_distribution),
             columns[j] in self.named) for j in m]) for m in members]
        if executor is not None and len(columns) >= PARALLEL_COLUMNS:
            # The first group is fitted here while the executor fits the others. Another
            # thread's catch_warnings may leave its filters behind: put them back after.
            with warnings.catch_warnings():
                elsewhere = executor.map(fit_column_group, groups[1:])
                try:
                    done = [fit_column_group(groups[0]), *elsewhere]
                finally:  # a fit that failed here stops the others (see levels.py)
                    getattr(elsewhere, "close", lambda: None)()
        else:
            done = list(map(fit_column_group, groups))
        fitted: list = [None] * len(columns)
        for m, group in zip(members, done, strict=True):
            for j, result in zip(m, group, strict=True):
                fitted[j] = result
        self.marginals = [marginal for marginal, _ in fitted]
        self._states = [None] * len(columns)
        for message in (m for _, said in fitted for m in said):
            if notes is None:
                warnings.warn(message, UserWarning, stacklevel=2)
            else:
                notes.append(message)
        scores = self._rank_scores(data, sample)
        self.correlation = self._fit_correlation(scores[order[:CORRELATION_ROWS]])
        return scores

    def _rank_scores(self, data: np.ndarray, sample: np.ndarray) -> np.ndarray:
        """Normal scores of the fitted data from mid-ranks: ``Phi^-1(rank / (n + 1))``.

        Tied values share the score of their mean rank. ``Phi^-1(F(x))`` sends every value at
        or beyond the edge of a bounded fit to -6 or +6: a 0/1 column fitted by a beta puts
        all its zeros at -6, which wrecks the correlations. Mid-ranks do not depend on how
        well the marginal fits (on the generated 1k-parent, 4-column benchmark case SDMetrics'
        Intertable Trends went from 0.977 to 0.983, Column Pair Trends stayed at 0.836).
        Ranks are taken within the random ``sample`` (all rows when the data is small):
        one binary search per value among the sample's distinct values instead of a full sort
        of every column. When the sample is every row, the ranks of one sort
        (:func:`~hma_db.model.latent.mid_rank_scores`, the same numbers: 0.2 ms against 0.5
        ms on 4,500 rows).
        """
        scores = np.zeros(data.shape)
        m = len(sample)
        for j, marginal in enumerate(self.marginals):
            if "constant" in marginal:
                continue
            if m == len(data):
                scores[:, j] = mid_rank_scores(data[:, j])
            else:
                scores[:, j] = self._sample_rank_scores(data[:, j], sample[:, j])
        return scores

    @staticmethod
    def _sample_rank_scores(values: np.ndarray, sample: np.ndarray) -> np.ndarray:
        """Normal scores of ``values`` from their mid-ranks within ``sample``."""
        distinct, counts = np.unique(sample, return_counts=True)
        starts = np.concatenate([[0], np.cumsum(counts)])
        pos = np.searchsorted(distinct, values)
        found = distinct[np.minimum(pos, len(distinct) - 1)] == values
        # Twice the mid-rank: values below, plus half the ties of an equal value.
        twice = 2 * starts[pos] + np.where(found, counts[np.minimum(pos, len(counts) - 1)], 0)
        return special.ndtri((twice + 1) / (2 * (len(sample) + 1)))

    def _check(self, data: np.ndarray, columns: list[str]) -> np.ndarray:
        data = np.asarray(data, dtype=float)
        if data.ndim != 2:
            data = data.reshape(len(data), len(columns))
        if data.shape[1] != len(columns):
            raise SynthesizerInputError(
                f"Expected {len(columns)} columns ({', '.join(columns)}), found {data.shape[1]}")
        bad = [col for j, col in enumerate(columns) if not np.all(np.isfinite(data[:, j]))]
        if bad:
            raise SynthesizerInputError(
                f"Columns {', '.join(bad)} hold missing or infinite values; expected finite numbers")
        return data

    def _state(self, j: int) -> tuple[Any, np.ndarray | None]:
        """Column ``j``'s univariate object and inverse-cdf grid, built on first use (see
        :func:`~hma_db.model.marginals.column_state`; (None, None) for a constant). Two
        threads building the same column build the same thing."""
        state = self._states[j]
        if state is None:
            state = self._states[j] = column_state(self.marginals[j])
        return state

    @staticmethod
    def _fit_correlation(scores: np.ndarray) -> np.ndarray:
        d = scores.shape[1]
        if d == 0:
            return np.zeros((0, 0))
        if len(scores) < 2:
            return np.eye(d)
        centered = scores - scores.mean(axis=0)
        spread = np.sqrt((centered ** 2).sum(axis=0))
        with np.errstate(all="ignore"):
            corr = (centered.T @ centered) / np.outer(spread, spread)
        corr[~np.isfinite(corr)] = 0.0  # constant columns are independent of everything
        np.fill_diagonal(corr, 1.0)
        return nearest_correlation(corr)

    # ------------------------------------------------------------------------ transformations
    def to_scores(self, data: np.ndarray) -> np.ndarray:
        """Normal scores ``z = Phi^-1(F(x))`` of ``(n, d)`` data, finite and within +-6."""
        data = np.asarray(data, dtype=float).reshape(len(data), len(self.columns))
        scores = np.zeros(data.shape)
        for j in range(len(self.columns)):
            model, grid = self._state(j)
            if model is None:
                continue
            if len(data) > EXACT_CDF_ROWS:
                # The inverse of the ppf grid: same accuracy as from_scores, ~50x faster.
                scores[:, j] = np.interp(data[:, j], grid, _GRID)
                continue
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                u = np.asarray(model.cdf(data[:, j]), dtype=float)
            scores[:, j] = _normal_ppf(np.nan_to_num(u, nan=0.5))
        return scores

    def from_scores(self, scores: np.ndarray) -> np.ndarray:
        """Values ``x = F^-1(Phi(z))`` for ``(n, d)`` normal scores."""
        scores = np.asarray(scores, dtype=float).reshape(len(scores), len(self.columns))
        out = np.empty((len(self.columns), len(scores)))  # one contiguous row per column
        step = _GRID[1] - _GRID[0]
        for j, marginal in enumerate(self.marginals):
            _, grid = self._state(j)
            if grid is None:
                out[j] = marginal["constant"]
                continue
            # The grid is uniform: a score's cell is found by arithmetic, not binary search.
            position = np.clip(scores[:, j], -SCORE_LIMIT, SCORE_LIMIT)
            position += SCORE_LIMIT
            position /= step
            cell = np.minimum(position.astype(np.int64), len(_GRID) - 2)
            position -= cell
            low = grid[cell]
            out[j] = low + position * (grid[cell + 1] - low)
        return out.T

    # ------------------------------------------------------------------------------ sampling
    def sample_scores(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` rows of standard normal scores with the learned correlation."""
        d = len(self.columns)
        if d == 0:
            return np.zeros((n, 0))
        return rng.standard_normal((n, d)) @ np.linalg.cholesky(self.correlation).T

    def conditional_scores(self, known: np.ndarray, known_columns: list[str],
                           rng: np.random.Generator) -> np.ndarray:
        """Full ``(n, d)`` scores: ``known_columns`` fixed to ``known``, the others drawn from
        the normal distribution conditional on them (Schur complement)."""
        index = {col: j for j, col in enumerate(self.columns)}
        missing = [c for c in known_columns if c not in index]
        if missing:
            raise SynthesizerInputError(
                f"Unknown copula columns {missing}; the copula has {self.columns}")
        known = np.asarray(known, dtype=float).reshape(len(known), len(known_columns))
        k_idx = np.array([index[c] for c in known_columns], dtype=int)
        u_idx = np.setdiff1d(np.arange(len(self.columns)), k_idx)
        out = np.empty((len(known), len(self.columns)))
        out[:, k_idx] = known
        if len(u_idx) == 0:
            return out
        regression, cond_chol = self.conditional_parameters(k_idx, u_idx)
        noise = rng.standard_normal((len(known), len(u_idx))) @ cond_chol.T
        out[:, u_idx] = known @ regression.T + noise
        return out

    def conditional_parameters(self, k_idx: np.ndarray, u_idx: np.ndarray):
        """(regression matrix B, Cholesky factor L): z_u | z_k ~ N(B z_k, L L^T)."""
        corr = self.correlation
        s_kk, s_uk = corr[np.ix_(k_idx, k_idx)], corr[np.ix_(u_idx, k_idx)]
        regression = (np.linalg.solve(s_kk, s_uk.T).T if len(k_idx)
                      else np.zeros((len(u_idx), 0)))
        cond = corr[np.ix_(u_idx, u_idx)] - regression @ s_uk.T
        cond = (cond + cond.T) / 2
        values, vectors = np.linalg.eigh(cond)
        # A square-root factor that tolerates the tiny negative eigenvalues of rounding.
        return regression, vectors * np.sqrt(np.clip(values, 0, None))

    # ------------------------------------------------------------------------------- results
    def learned_distributions(self) -> dict[str, dict[str, Any]]:
        """``{column: {"distribution": name, "learned_parameters": {...}}}``; a fallback family
        is reported with ``"fallback_from"`` naming the requested one."""
        out = {}
        for col, marginal in zip(self.columns, self.marginals, strict=True):
            entry = {"distribution": marginal["distribution"],
                     "learned_parameters": dict(marginal["learned_parameters"])}
            if marginal["distribution"] != marginal["requested"]:
                entry["fallback_from"] = marginal["requested"]
            out[col] = entry
        return out

    def to_dict(self) -> dict[str, Any]:
        """The fitted copula as plain JSON-able data."""
        return {
            "default_distribution": self.default_distribution,
            "numerical_distributions": dict(self.numerical_distributions),
            "columns": list(self.columns),
            "marginals": [
                {**m, "learned_parameters": dict(m["learned_parameters"])} for m in self.marginals],
            "correlation": self.correlation.tolist(),
        }

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> GaussianCopula:
        """Rebuild a copula written by :meth:`to_dict` (names are checked, no code is loaded)."""
        copula = cls(params["default_distribution"], params.get("numerical_distributions"))
        copula.columns = list(params["columns"])
        copula.marginals = []
        for col, marginal in zip(copula.columns, params["marginals"], strict=True):
            check_distribution(marginal["distribution"], col)
            copula.marginals.append({**marginal,
                                     "learned_parameters": dict(marginal["learned_parameters"])})
        d = len(copula.columns)
        copula.correlation = np.asarray(params["correlation"], dtype=float).reshape(d, d)
        copula._states = [None] * d
        return copula
