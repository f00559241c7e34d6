"""Vectorized link assignment: child counts, capacity-limited matching, self-references, and
junction keys without repeated combinations.

A *link* is an int64 array with one entry per child row: the position of the parent row, or
``-1`` for a NULL foreign key. Everything here is O(n log n) in the rows (sorts, ``repeat``,
``bincount``) and never builds a children x parents matrix.
"""

from __future__ import annotations

import numpy as np

from hma_db.errors import SamplingError


def half_up(value: float) -> int:
    """Round half away from zero (Python's ``round`` rounds half to even)."""
    return int(np.floor(value + 0.5))


def allocate(weights: np.ndarray, total: int, cap: int | None = None,
             floor: int = 0) -> np.ndarray:
    """Integer counts proportional to ``weights`` summing exactly to ``total``.

    Largest-remainder rounding; with ``cap`` no count exceeds it (the excess is spread over
    the others in proportion to their weights). Zero or missing weights everywhere give equal
    shares. ``total`` is lowered to ``cap * len(weights)`` when it cannot fit. With ``floor``
    (when ``total`` allows it), every count is at least ``floor``.
    """
    n = len(weights)
    if floor > 0 and total >= floor * n and (cap is None or cap >= floor):
        rest = np.asarray(weights, dtype=float) - floor
        return floor + allocate(rest, total - floor * n, None if cap is None else cap - floor)
    counts = np.zeros(n, dtype=np.int64)
    if cap is not None:
        total = min(total, cap * n)
    if n == 0 or total <= 0:
        return counts
    w = np.clip(np.nan_to_num(np.asarray(weights, dtype=float)), 0, None)
    if w.sum() <= 0:
        w = np.ones(n)
    exact = w * (total / w.sum()) if cap is None else _water_fill(w, total, cap)
    counts = np.floor(exact).astype(np.int64)
    rest = total - int(counts.sum())
    if rest > 0:
        fraction = exact - counts
        if cap is not None:
            fraction[counts >= cap] = -1.0
        counts[np.argsort(-fraction, kind="stable")[:rest]] += 1
    return counts


def _water_fill(w: np.ndarray, total: int, cap: int) -> np.ndarray:
    """Shares ``min(cap, lam * w)`` summing to ``total`` (water-filling, one sort).

    The largest weights are capped one by one: ``k`` capped entries leave
    ``lam = (total - cap k) / sum(rest)``, and the first ``k`` whose next weight stays under
    the cap is the solution. When every weighted entry is capped, the rest is spread evenly
    over the zero-weight entries.
    """
    n = len(w)
    order = np.argsort(-w, kind="stable")
    ws = w[order]
    suffix = np.cumsum(ws[::-1])[::-1]
    remaining = total - cap * np.arange(n, dtype=float)
    with np.errstate(all="ignore"):
        lam = np.where(suffix > 0, remaining / np.where(suffix > 0, suffix, 1), np.inf)
        ok = (suffix > 0) & (remaining >= 0) & (lam * ws <= cap * (1 + 1e-12))
    shares = np.zeros(n)
    if ok.any():
        k = int(np.argmax(ok))
        shares[k:] = np.minimum(cap, lam[k] * ws[k:])
    else:
        k = int((ws > 0).sum())
        if n > k:
            shares[k:] = (total - cap * k) / (n - k)
    shares[:k] = cap
    out = np.empty(n)
    out[order] = shares
    return out


def degrees_at(quantiles: list[float], u: np.ndarray) -> np.ndarray:
    """Out-degrees at probabilities ``u`` from the stored quantiles (a step function, so the
    degrees keep the source's exact values, e.g. Chinook's invoices of 1, 2, 4, 6, 9 or 14 lines)."""
    q = np.asarray(quantiles, dtype=float)
    if len(q) == 0:
        return np.ones(len(u))
    return q[np.minimum((np.asarray(u) * len(q)).astype(np.int64), len(q) - 1)]


def sample_degrees(quantiles: list[float], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` independent draws from the stored out-degree distribution."""
    return degrees_at(quantiles, rng.random(n))


def degree_quantiles(counts: np.ndarray, size: int = 200) -> list[float]:
    """The out-degree distribution as ``size`` quantiles at evenly spaced mid-probabilities
    (actual values of ``counts``, plain floats)."""
    if len(counts) == 0:
        return []
    size = min(size, len(counts))
    probabilities = (np.arange(size) + 0.5) / size
    return [float(v) for v in np.quantile(counts, probabilities, method="inverted_cdf")]


def match_by_key(child_key: np.ndarray, capacities: np.ndarray, parent_key: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Give each child a parent row: parent ``p`` receives ``capacities[p]`` children, and the
    children with the lowest keys go to the parents with the lowest keys (rank matching).

    ``len(child_key)`` must equal ``capacities.sum()``. Ties are broken at random.
    """
    slots = np.repeat(np.arange(len(capacities), dtype=np.int64), capacities)
    slot_order = np.lexsort((rng.random(len(slots)), parent_key[slots]))
    child_order = np.lexsort((rng.random(len(child_key)), child_key))
    out = np.empty(len(child_key), dtype=np.int64)
    out[child_order] = slots[slot_order]
    return out


def allocate_within(weights: np.ndarray, total: int, bounds: tuple[int, int] | None,
                    cap: int | None = None) -> np.ndarray:
    """:func:`allocate` keeping every count within ``bounds`` (the source's fewest and most
    children per parent, which SDMetrics' diagnostic checks) wherever the total allows it."""
    if bounds is None:
        return allocate(weights, total, cap)
    low, high = bounds
    if total <= high * len(weights):
        cap = high if cap is None else min(cap, high)
    return allocate(weights, total, cap, floor=low)


def nonnull_count(n_children: int, null_share: float, n_parents: int) -> int:
    """How many of ``n_children`` rows get a non-NULL foreign key."""
    if n_parents == 0:
        return 0
    return n_children - min(n_children, half_up(n_children * null_share))


def assign_by_capacity(n_children: int, null_share: float, weights: np.ndarray,
                       child_key: np.ndarray | None, parent_key: np.ndarray | None,
                       rng: np.random.Generator, cap: int | None = None,
                       bounds: tuple[int, int] | None = None,
                       capacities: np.ndarray | None = None) -> np.ndarray:
    """A link for ``n_children`` rows to ``len(weights)`` parents, after the children exist.

    The non-NULL share is ``1 - null_share``; parent ``p`` receives about ``weights[p]``
    children (largest-remainder rounded, at most ``cap``, within ``bounds`` where possible);
    with keys, children are matched to parents of similar key (see :func:`match_by_key`),
    else at random. Given ``capacities`` (a chunk's share of a run's counts), they decide.
    """
    n_parents = len(weights)
    link = np.full(n_children, -1, dtype=np.int64)
    n_linked = nonnull_count(n_children, null_share, n_parents)
    if cap is not None:
        n_linked = min(n_linked, cap * n_parents)
    if capacities is not None:
        n_linked = int(capacities.sum())
    if n_linked == 0:
        return link
    chosen = np.sort(rng.choice(n_children, n_linked, replace=False))
    if capacities is None:
        capacities = allocate_within(weights, n_linked, bounds, cap)
    if child_key is None or parent_key is None:
        child_key, parent_key = rng.random(n_children), np.zeros(n_parents)
    link[chosen] = match_by_key(child_key[chosen], capacities, parent_key, rng)
    return link


def assign_self(n: int, null_share: float, quantiles: list[float], rng: np.random.Generator,
                cap: int | None = None) -> np.ndarray:
    """A self-reference for ``n`` rows where every row points at an earlier row or is NULL.

    Row 0 is always a root; the NULL share and the out-degree distribution follow the source
    (drawn stratified, so a few rows still get the source's few large degrees). Sampled
    out-degrees are given to the earliest rows, largest first, which makes the rank
    matching of children to earlier parents feasible; the rare child that still has no earlier
    slot gets a uniformly drawn earlier row. No cycle can form since every link points back.
    When the source has no NULL at all (its roots reference themselves), the roots reference
    themselves too instead of being NULL.
    """
    link = np.full(n, -1, dtype=np.int64)
    if null_share == 0:
        return _self_roots(n, quantiles, rng, cap)
    if n <= 1:
        return link
    n_null = max(1, half_up(n * null_share))
    m = n - n_null
    if m <= 0:
        return link
    null_rows = np.concatenate([[0], 1 + rng.choice(n - 1, n_null - 1, replace=False)])
    is_child = np.ones(n, dtype=bool)
    is_child[null_rows] = False
    children = np.flatnonzero(is_child)
    # One draw in each of n equal slices of the out-degree distribution: independent draws
    # of Northwind's 9 employees (degrees 5, 3 and seven 0) were all 0 in some seeds, and
    # equal shares then made a chain 8 levels deep (the source has 2).
    degrees = np.sort(degrees_at(quantiles, (np.arange(n) + rng.random(n)) / n))[::-1]
    capacities = np.sort(allocate(degrees, m, cap))[::-1]
    slots = np.repeat(np.arange(n, dtype=np.int64), capacities)
    late = slots >= children
    slots[late] = np.floor(rng.random(int(late.sum())) * children[late]).astype(np.int64)
    link[children] = slots
    return link


def _self_roots(n: int, quantiles: list[float], rng: np.random.Generator,
                cap: int | None) -> np.ndarray:
    """A self-reference with no NULL: as :func:`assign_self`, then every root points at itself."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    link = assign_self(n, 1 / n, quantiles, rng, cap) if n > 1 else np.full(1, -1, np.int64)
    roots = np.flatnonzero(link < 0)
    link[roots] = roots
    return link


MAX_REFILLED_GROUPS = 1_000  # groups refilled one by one; more go to consecutive targets


def _codes(arrays: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    """One int64 code per row for a combination of non-negative positions."""
    if np.prod([float(max(s, 1)) for s in sizes]) < 2 ** 62:
        return np.ravel_multi_index(tuple(arrays), tuple(max(s, 1) for s in sizes))
    return np.unique(np.stack(arrays, axis=1), axis=0, return_inverse=True)[1].ravel()


def _duplicated(codes: np.ndarray) -> np.ndarray:
    """True for every repeat of a code after its first occurrence."""
    order = np.argsort(codes, kind="stable")
    repeat = np.zeros(len(codes), dtype=bool)
    repeat[order[1:]] = codes[order[1:]] == codes[order[:-1]]
    return repeat


def deduplicate(group_links: list[np.ndarray], group_sizes: list[int], last: np.ndarray,
                n_last: int, rng: np.random.Generator, name: str) -> np.ndarray:
    """Reassign ``last`` so that no (group links..., last) combination repeats.

    Repeats first swap targets with random rows that do not repeat, which keeps every
    target's number of rows exactly (the capacities and the source's range of children per
    parent); the few groups still repeating after some rounds get consecutive targets from a
    random start, distinct because a group never holds more rows than there are targets.
    """
    last = last.copy()
    rows = np.flatnonzero(np.all([g >= 0 for g in group_links], axis=0) & (last >= 0))
    if len(rows) == 0:
        return last
    # Compact group numbers, so that group * n_last + target cannot overflow.
    group = np.unique(_codes([g[rows] for g in group_links], group_sizes),
                      return_inverse=True)[1].ravel()
    for _ in range(24):
        repeat = _duplicated(group * n_last + last[rows])
        movers, others = np.flatnonzero(repeat), np.flatnonzero(~repeat)
        if len(movers) == 0:
            return last
        k = min(len(movers), len(others))
        mover = rows[movers[:k]]
        partner = rows[rng.choice(others, k, replace=False)]
        last[mover], last[partner] = last[partner], last[mover].copy()
    repeat = _duplicated(group * n_last + last[rows])
    if repeat.any():
        # The large groups are refilled with the repeating ones: they hold most targets, so
        # the room they leave decides whether the others can keep their targets' counts.
        ids, sizes = np.unique(group, return_counts=True)
        bad_groups = np.union1d(np.unique(group[repeat]), ids[sizes > n_last // 2])
        in_bad = np.isin(group, bad_groups)
        if len(bad_groups) > MAX_REFILLED_GROUPS:
            last[rows[in_bad]] = _consecutive_targets(group[in_bad], n_last, rng, name)
        else:
            capacity = np.bincount(last[rows], minlength=n_last)
            room = capacity - np.bincount(last[rows[~in_bad]], minlength=n_last)
            last[rows[in_bad]] = _refill_groups(group[in_bad], room, rng, name)
    return last


def _refill_groups(groups: np.ndarray, room: np.ndarray, rng: np.random.Generator,
                   name: str) -> np.ndarray:
    """Distinct targets for the rows of each group, keeping each target's number of rows.

    Largest group first, each takes the targets with the most room left (ties at random): the
    greedy construction of a bipartite graph with given degrees, which succeeds whenever the
    degrees allow one (Gale-Ryser). A target's room can run out only when they do not; it
    then takes more rows than planned, never a repeated pair. This loops over the groups the
    swaps could not fix, a few large ones (at most ``MAX_REFILLED_GROUPS``), each step
    vectorized over the targets.
    """
    room = room.astype(float)
    n_last = len(room)
    order = np.argsort(groups, kind="stable")
    _, starts, sizes = np.unique(groups[order], return_index=True, return_counts=True)
    out = np.empty(len(groups), dtype=np.int64)
    for i in np.argsort(-sizes, kind="stable"):
        size = int(sizes[i])
        if size > n_last:
            raise SamplingError(
                f"{name}: a combination group holds {size} rows but only {n_last} distinct "
                "targets exist, so the key cannot be unique")
        most_room = np.argpartition(-(room + 0.5 * rng.random(n_last)), size - 1)[:size]
        out[order[starts[i]:starts[i] + size]] = rng.permutation(most_room)
        room[most_room] -= 1
    return out


def _consecutive_targets(groups: np.ndarray, n_last: int, rng: np.random.Generator,
                         name: str) -> np.ndarray:
    """Per row, ``(start of its group + its rank within the group) % n_last``: distinct
    targets within every group."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_groups, sorted_groups, side="left")
    if rank.max() >= n_last:
        raise SamplingError(
            f"{name}: a combination group holds {int(rank.max()) + 1} rows but only {n_last} "
            "distinct targets exist, so the key cannot be unique")
    _, inverse = np.unique(sorted_groups, return_inverse=True)
    start = rng.integers(n_last, size=int(inverse.max()) + 1)
    out = np.empty(len(groups), dtype=np.int64)
    out[order] = (start[inverse] + rank) % n_last
    return out
