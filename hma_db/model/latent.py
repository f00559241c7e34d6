"""Where a row sits inside its category's slice, so that the copula sees a category's links.

A category (and a few-valued number, and a null indicator) reaches the model as a *slice* of
[0, 1), as wide as its frequency, and each row as a uniform draw inside its slice
(:class:`hma_db.transform.encoders.FrequencyIntervalEncoder`). The draw is independent of
everything, so the correlation the copula estimates between such a column and the others is
attenuated: Chinook's ``Track.UnitPrice`` (0.99, or 1.99 for the 6% that are videos) is
correlated 0.93 with ``Milliseconds`` in the rows, 0.27 in the copula, and the synthetic tracks
came out at 0.05 (0.62 in the copula and 0.27 in the rows with the slices aligned).

A Gaussian copula of a categorical column says the category is a latent normal score cut at
the slices' edges. :func:`align_slices` draws that latent score for every row from its
conditional distribution given the row's other columns (a normal truncated to the row's slice:
one step of the Gibbs sampler of Hoff's extended rank likelihood, 2007), ``ROUNDS`` times over
the sliced columns, and puts the row at that point of its slice. Every row stays in its slice,
so the categories and their frequencies do not change; only the order inside a slice does.

Cost: ``ROUNDS`` passes over at most ``FIT_ROWS`` rows and ``SWEEPS`` over all of them, each
two products of the rows with a coefficient vector per sliced column.
"""

from __future__ import annotations

import numpy as np
from scipy import special

# The chain starts from the attenuated correlation and climbs slowly: measured with
# tests/benchmarks/bench_fidelity.py (seeds 0-2, Chinook / Northwind whole-database quality),
# none 0.808 / 0.829, 3 rounds 0.823 / 0.826, 10 rounds 0.840 / 0.821 (Chinook's Column Pair
# Trends 0.623 -> 0.720; the copula's Milliseconds-UnitPrice correlation 0.27 -> 0.50 after
# 3 rounds, 0.62 after 10). The rounds run on at most FIT_ROWS random rows, which fixes the
# correlation; then SWEEPS passes move every row given it. On a million rows of 16 columns,
# 4 of them sliced (2-core machine, loaded): 0.3 s when they are independent of the others
# (nothing is looked up for every row), 1.7 s when one of them is linked (the copula's own fit
# takes 4 s).
ROUNDS = 10
SWEEPS = 2
FIT_ROWS = 20_000
_GRID = 1_000
MIN_R2 = 0.01
_MIN_COEFFICIENT = 0.02
_RIDGE = 1e-6
_MIN_VARIANCE = 1e-4


def mid_rank_scores(values: np.ndarray) -> np.ndarray:
    """Normal scores ``Phi^-1(r / (n + 1))`` of one column's mid-ranks ``r`` (from 1; equal
    values share the mean of their ranks), from one sort: the runs of equal values are
    found in sorted order, so no value is searched for (two binary searches per value took
    0.7 ms of a 4,500-row column's 1.2 ms; now 0.2 ms in all)."""
    n = len(values)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, n])
    # Twice the mid-rank, from 1: the first and the last position of the run, plus 2.
    twice = 2 * starts + sizes + 1
    out = np.empty(n)
    out[order] = np.repeat(special.ndtri(twice / (2 * (n + 1))), sizes)
    return out


def _correlation(z: np.ndarray) -> np.ndarray:
    corr = np.corrcoef(z.T)
    corr[~np.isfinite(corr)] = 0.0
    np.fill_diagonal(corr, 1.0)
    return corr


def _ordered_in_slices(key: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Scores inside each row's slice, evenly spread in the order of ``key``: the start of
    the chain. From independent draws the chain climbs to a strong link in many rounds (a
    price that is 1.99 exactly for the long tracks: 0.79 after 10 rounds); from this order,
    the most the data allow, it comes down to it."""
    order = np.lexsort((key, low))
    ranked_low = low[order]
    first = np.searchsorted(ranked_low, ranked_low, "left")
    count = np.searchsorted(ranked_low, ranked_low, "right") - first
    share = (np.arange(len(key)) - first + 0.5) / count
    lo, hi = special.ndtr(ranked_low), special.ndtr(high[order])
    out = np.empty(len(key))
    out[order] = special.ndtri(lo + share * (hi - lo))
    return np.clip(out, low, high)


def _regressions(corr: np.ndarray, columns) -> dict[int, tuple[np.ndarray, float]]:
    """For each column j: the coefficients of its score on the others' (zero for j itself)
    and the residual sd.

    All from one inverse of the (ridged) correlation matrix P: the regression of j on the
    others is -P[:, j] / P[j, j], the same solution as a least-squares solve on the others'
    block, without one solve per column (a 200-column table with 50 sliced columns: 10 s of
    solves per fit, 0.1 s with the inverse)."""
    d = len(corr)
    ridged = corr + _RIDGE * np.eye(d)
    try:  # positive definite with the ridge: its inverse is its pseudo-inverse, 9x faster
        precision = np.linalg.inv(ridged)  # (4 us against 36 us at 4 x 4: 11 a fit)
    except np.linalg.LinAlgError:
        precision = np.linalg.pinv(ridged, hermitian=True)
    out = {}
    for j in columns:
        beta = -precision[:, j] / precision[j, j]
        beta[j] = 0.0  # zero for column j itself: one product, no copy of the others
        # Coefficients within the noise of a correlation on FIT_ROWS rows (standard error
        # 0.007) are dropped: a column no other explains needs no score of the others.
        beta[np.abs(beta) < _MIN_COEFFICIENT] = 0.0
        out[j] = beta, float(np.sqrt(max(1.0 - float(corr[j] @ beta), _MIN_VARIANCE)))
    return out


def _sweep(z: np.ndarray, bounds: dict[int, tuple[np.ndarray, np.ndarray]],
           corr: np.ndarray, rng: np.random.Generator) -> None:
    """Draw each sliced column's latent score given the others (in place)."""
    regressions = _regressions(corr, bounds)
    for j, (low, high) in bounds.items():
        beta, sd = regressions[j]
        mean = z @ beta
        p_low, p_high = special.ndtr((low - mean) / sd), special.ndtr((high - mean) / sd)
        u = p_low + rng.random(len(z)) * (p_high - p_low)
        with np.errstate(all="ignore"):
            draw = mean + sd * special.ndtri(u)
        # Far in a tail the slice's probability underflows: the clip takes its nearer edge.
        z[:, j] = np.clip(np.where(np.isfinite(draw), draw, mean), low, high)


def align_slices(data: np.ndarray, slices: dict[int, np.ndarray],
                 rng: np.random.Generator, rounds: int = ROUNDS) -> np.ndarray:
    """``data`` with each sliced column's rows moved inside their slices (see the module).

    Args:
        data: ``(n, d)`` floats; a sliced column's values lie in [0, 1].
        slices: ``{column index: the slices' edges}``, ascending from 0 to 1.
        rng: draws the latent scores.
        rounds: passes over the sliced columns.
    """
    n, d = data.shape
    if not slices or n < 3 or d < 2:
        return data
    rows = rng.permutation(n)[:FIT_ROWS]
    sample = data[rows]
    edges = {j: np.asarray(e, dtype=float) for j, e in slices.items()}
    # Scores from ranks within the random rows (exact mid-ranks there), interpolated for the
    # others: sorting every column of a million rows would cost more than the copula's fit.
    part = np.column_stack([mid_rank_scores(sample[:, j]) for j in range(d)])
    fitted = {j: _bounds(sample[:, j], e) for j, e in edges.items()}
    for j, (low, high) in fitted.items():
        part[:, j] = np.clip(special.ndtri(np.clip(sample[:, j], 1e-12, 1 - 1e-12)), low, high)
    corr = _correlation(part)
    start = _regressions(corr, fitted)
    for j, (low, high) in fitted.items():  # start from the order the others predict
        part[:, j] = _ordered_in_slices(part @ start[j][0], low, high)
    for _ in range(rounds):
        corr = _correlation(part)
        _sweep(part, fitted, corr, rng)
    if len(rows) == n:
        out = data.copy()
        _put_back(out, rows, part, fitted)
        return out
    # Every row, given the correlation the rounds reached. Only columns the others explain
    # (R^2 of at least MIN_R2) move: an independent one is where it should be already, and
    # TPC-H's columns are all independent (their slices are not even looked up for every row).
    regressions = _regressions(corr, fitted)
    moved = [j for j in fitted if regressions[j][1] ** 2 <= 1 - MIN_R2]
    if not moved:
        return data
    needed = set(moved)
    for j in moved:
        needed |= set(np.flatnonzero(np.abs(regressions[j][0]) > 0).tolist())
    z = np.zeros((n, d))
    # Through _GRID quantiles of the random rows: a search among 1,000 numbers stays in
    # the processor's cache (among 20,000 it took 0.2 s per million rows).
    probabilities = (np.arange(_GRID) + 0.5) / _GRID
    for j in sorted(needed):
        z[:, j] = np.interp(data[:, j], np.quantile(sample[:, j], probabilities),
                            special.ndtri(probabilities))
    bounds = {j: _bounds(data[:, j], edges[j]) for j in moved}
    for j, (low, high) in bounds.items():
        z[:, j] = np.clip(special.ndtri(np.clip(data[:, j], 1e-12, 1 - 1e-12)), low, high)
    for _ in range(SWEEPS):
        _sweep(z, bounds, corr, rng)
    out = data.copy()
    _put_back(out, slice(None), z, bounds)
    return out


def _bounds(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The normal scores of the edges of each value's slice."""
    cell = np.clip(np.searchsorted(edges, values, "right") - 1, 0, len(edges) - 2)
    return special.ndtri(edges[cell]), special.ndtri(edges[cell + 1])


def _put_back(out: np.ndarray, rows, z: np.ndarray,
              bounds: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    """Each moved column's rows at the point of their slice their latent score says."""
    for j, (low, high) in bounds.items():
        lo, hi = special.ndtr(low), special.ndtr(high)
        out[rows, j] = np.clip(special.ndtr(z[:, j]), lo, np.nextafter(hi, lo))
