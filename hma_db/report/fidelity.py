"""Fidelity metrics with SDMetrics' definitions, on numpy, pandas and scipy.

The four properties of SDMetrics' multi-table ``QualityReport`` (sdmetrics 0.32), computed the
same way so that scores can be compared with it:

- **Column Shapes**: per column, KS complement (numerical, datetime) or TV complement
  (categorical, boolean); the property is the mean over all scored columns of all tables.
- **Column Pair Trends**: per pair of columns in a table, correlation similarity (two continuous
  columns; Pearson) or contingency similarity (otherwise; a continuous column is cut into
  ``numpy.histogram_bin_edges``' 10 bins of its own data, real and synthetic separately, then
  ``numpy.digitize``). Only pairs that carry a trend in the real data count: |Pearson| > 0.5, or
  Cramér's V > 0.3 (SDMetrics' report thresholds).
- **Cardinality**: per relationship, KS complement of the children-per-parent counts.
- **Intertable Trends**: column pair trends between each parent column and each child column
  of the child rows joined to their parent.

Column pairs are scored all at once per table (``table_pair_trends``: one Pearson matrix per
side, one sort of encoded contingency cells per chunk of pairs); ``pair_trends`` is the same
definition pair by pair, which the tests hold it equal to.

Columns with other sdtypes (``id``, ``unknown``, personal data) take no part, as in SDMetrics.
Unlike SDMetrics, a self-referencing relationship is scored too (SDMetrics fails on it).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from scipy.stats.contingency import association

from hma_db.report.values import as_datetimes, as_numbers, skipped_note
from hma_db.schema import Metadata, key_columns

SHAPES = {"numerical": "continuous", "datetime": "continuous", "categorical": "discrete",
          "ordinal": "discrete", "boolean": "discrete"}
CORRELATION_THRESHOLD = 0.5
ASSOCIATION_THRESHOLD = 0.3
CONTINGENCY_SUBSAMPLE = 50_000
_DECIMALS = sys.float_info.dig - 1  # SDMetrics rounds before KS to ignore float noise


def scored_columns(metadata: Metadata, table: str) -> dict[str, str]:
    """``{column: sdtype}`` of the columns that the fidelity properties score, in table order."""
    columns = metadata.tables[table]["columns"]
    return {name: meta["sdtype"] for name, meta in columns.items() if meta.get("sdtype") in SHAPES}


def prepare(frame: pd.DataFrame, sdtypes: dict[str, str],
            skipped: dict[str, int] | None = None) -> pd.DataFrame:
    """The scored columns with comparable dtypes: numbers as float, datetimes as datetime64.

    Decimal and integer columns from a database become float; text dates are parsed; time zones
    are dropped after conversion to UTC so that real and synthetic compare. A value that is not
    a number (or a datetime) becomes null; ``skipped``, when given, gets how many per column.
    """
    out = {}
    for column, sdtype in sdtypes.items():
        values, lost = frame[column], 0
        if sdtype == "numerical":
            values, lost = as_numbers(values)
        elif sdtype == "datetime":
            values, lost = as_datetimes(values)
        out[column] = values
        if skipped is not None and lost:
            skipped[column] = lost
    return pd.DataFrame(out, index=frame.index)


def _numeric(values: pd.Series) -> np.ndarray:
    """Floats for KS and correlation: datetimes as nanoseconds, NaT as NaN."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return np.where(values.isna(), np.nan, values.to_numpy("datetime64[ns]").astype("int64"))
    return pd.to_numeric(values, errors="coerce").to_numpy(float)


# ------------------------------------------------------------------------------ single columns
def ks_complement(real: pd.Series, synthetic: pd.Series) -> float:
    """1 - the two-sample Kolmogorov-Smirnov statistic (NaN when either side is empty)."""
    a, b = _numeric(real), _numeric(synthetic)
    a = np.sort(np.round(a[~np.isnan(a)], _DECIMALS))
    b = np.sort(np.round(b[~np.isnan(b)], _DECIMALS))
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    points = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, points, side="right") / len(a)
    cdf_b = np.searchsorted(b, points, side="right") / len(b)
    return float(1 - np.max(np.abs(cdf_a - cdf_b)))


def tv_complement(real: pd.Series, synthetic: pd.Series) -> float:
    """1 - the total variation distance between the category frequencies (nulls ignored)."""
    p = real.dropna().value_counts(normalize=True)
    q = synthetic.dropna().value_counts(normalize=True)
    if len(p) == 0 or len(q) == 0:
        return float("nan")
    if orderable(real, synthetic):
        p, q = p.align(q, fill_value=0.0)
    else:
        index = p.index.union(q.index, sort=False)
        p, q = p.reindex(index, fill_value=0.0), q.reindex(index, fill_value=0.0)
    return float(1 - 0.5 * np.abs(p - q).sum())


def orderable(*columns: pd.Series) -> bool:
    """Whether the values can be sorted: not when a column mixes types (1 and 'a', bytes and
    dates), which sorted groupings and alignments refuse. Sorted where they can be, the sums run
    in the order they always did, to the last bit."""
    return not any(c.dtype == object and pd.api.types.infer_dtype(c, skipna=True)
                   in ("mixed", "mixed-integer") for c in columns)


# ------------------------------------------------------------------------------ column pairs
def correlation_similarity(real: pd.DataFrame, synthetic: pd.DataFrame) -> tuple[float, float, float]:
    """(score, real r, synthetic r): 1 - |r_real - r_synthetic| / 2 with Pearson's r.

    NaN score when a column is constant (as SDMetrics, which refuses constant data).
    """
    if (real.nunique() == 1).any() or (synthetic.nunique() == 1).any():
        return float("nan"), float("nan"), float("nan")
    r_real = _pearson(real)
    r_syn = _pearson(synthetic)
    if np.isnan(r_real) or np.isnan(r_syn):
        return float("nan"), r_real, r_syn
    return 1 - abs(r_real - r_syn) / 2, r_real, r_syn


def _pearson(frame: pd.DataFrame) -> float:
    x, y = _numeric(frame.iloc[:, 0]), _numeric(frame.iloc[:, 1])
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 2:
        return float("nan")
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float(np.clip((x * y).sum() / denominator, -1, 1)) if denominator > 0 else float("nan")


def contingency_similarity(real: pd.DataFrame, synthetic: pd.DataFrame,
                           rng: np.random.Generator | None = None) -> tuple[float, float]:
    """(score, Cramér's V of the real pair): 1 - TV distance of the two joint distributions.

    Nulls are a category of their own, as in SDMetrics. Above 50,000 rows both sides are
    subsampled to 50,000.
    """
    rng = rng or np.random.default_rng(0)
    real, synthetic = (_subsample(f, rng) for f in (real, synthetic))
    columns = list(real.columns[:2])
    sort = orderable(*(real[c] for c in columns), *(synthetic[c] for c in synthetic.columns[:2]))
    real_counts = real.groupby(columns, dropna=False, sort=sort).size()
    table = real_counts.unstack(fill_value=0)
    if table.to_numpy().sum() == 0 or min(table.shape) < 2:
        return float("nan"), float("nan")
    cramer = float(association(table.to_numpy(), method="cramer"))
    p = real_counts / len(real)
    q = synthetic.set_axis(columns, axis=1).groupby(columns, dropna=False, sort=sort).size() \
        / len(synthetic)
    index = p.index.union(q.index, sort=False).drop_duplicates()
    diff = (p.reindex(index, fill_value=0) - q.reindex(index, fill_value=0)).abs().fillna(0)
    return float(1 - diff.sum() / 2), cramer


def _subsample(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= CONTINGENCY_SUBSAMPLE:
        return frame
    return frame.iloc[rng.choice(len(frame), CONTINGENCY_SUBSAMPLE, replace=False)]


def discretize(values: pd.Series) -> pd.Series | None:
    """SDMetrics' bins for a continuous column: 10 equal-width bins of its own non-null values.

    ``numpy.digitize`` puts the maximum and the nulls in bin 11, as SDMetrics does.
    """
    numbers = _numeric(values)
    present = numbers[~np.isnan(numbers)]
    try:
        edges = np.histogram_bin_edges(present) if len(present) else np.linspace(0, 1, 11)
    except ValueError:  # a range too narrow for 10 float bins: SDMetrics skips the pairs
        return None
    return pd.Series(np.digitize(numbers, bins=edges), index=values.index)


def pair_trends(real: pd.DataFrame, synthetic: pd.DataFrame, sdtypes: dict[str, str],
                pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """Details of column pair trends for ``pairs`` of columns of ``real`` and ``synthetic``.

    The definition pair by pair, some 6 ms a pair: the report computes the same details for
    all pairs at once with ``table_pair_trends``, and the tests hold the two equal.

    Returns one row per pair: Column 1, Column 2, Metric, Score, Real Correlation, Synthetic
    Correlation, Real Association and Meets Threshold? (whether the pair counts).
    """
    continuous = [c for c, s in sdtypes.items() if SHAPES[s] == "continuous"]
    discrete_real = {c: discretize(real[c]) for c in continuous}
    discrete_syn = {c: discretize(synthetic[c]) for c in continuous}
    rows = []
    for first, second in pairs:
        shapes = (SHAPES[sdtypes[first]], SHAPES[sdtypes[second]])
        if shapes == ("continuous", "continuous"):
            score, r_real, r_syn = correlation_similarity(real[[first, second]],
                                                          synthetic[[first, second]])
            meets = bool(abs(r_real) > CORRELATION_THRESHOLD) if not np.isnan(r_real) else False
            rows.append((first, second, "CorrelationSimilarity", score, r_real, r_syn, np.nan,
                         meets))
            continue
        if any(SHAPES[sdtypes[c]] == "continuous" and (discrete_real[c] is None
                                                       or discrete_syn[c] is None)
               for c in (first, second)):
            rows.append((first, second, "ContingencySimilarity", np.nan, np.nan, np.nan, np.nan,
                         False))
            continue
        pick_real = [discrete_real[c] if SHAPES[sdtypes[c]] == "continuous" and "discrete" in shapes
                     else real[c] for c in (first, second)]
        pick_syn = [discrete_syn[c] if SHAPES[sdtypes[c]] == "continuous" and "discrete" in shapes
                    else synthetic[c] for c in (first, second)]
        score, cramer = contingency_similarity(pd.concat(pick_real, axis=1, keys=[0, 1]),
                                               pd.concat(pick_syn, axis=1, keys=[0, 1]))
        meets = bool(cramer > ASSOCIATION_THRESHOLD) if not np.isnan(cramer) else False
        rows.append((first, second, "ContingencySimilarity", score, np.nan,
                     np.nan, cramer, meets))
    return pd.DataFrame(rows, columns=["Column 1", "Column 2", "Metric", "Score", "Real Correlation",
                                       "Synthetic Correlation", "Real Association",
                                       "Meets Threshold?"])


# ------------------------------------------------------------------------------ all pairs at once
_PAIR_CHUNK = 4_000_000  # cells of (rows x pairs) held at once by the contingency step


def table_pair_trends(real: pd.DataFrame, synthetic: pd.DataFrame, sdtypes: dict[str, str],
                      pairs: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """Details of pairs of ``sdtypes``' columns, the same as ``pair_trends`` gives them.

    ``pairs`` are positions in ``sdtypes`` (first columns, second columns); by default every
    pair of columns, in ``itertools.combinations`` order.

    ``pair_trends`` loops over pairs (some 6 ms each: 115 s for a 200-column table). Here the
    Pearson coefficients of all continuous pairs come from one matrix product per side, and the
    contingency tables of all other pairs from one sort of encoded (pair, cell) keys per chunk
    of pairs, so the cost no longer grows with a Python call per pair.
    """
    columns = list(sdtypes)
    pairs = np.triu_indices(len(columns), k=1) if pairs is None else pairs
    first, second = (np.asarray(a, dtype=np.int64) for a in pairs)
    continuous = np.array([SHAPES[sdtypes[c]] == "continuous" for c in columns], dtype=bool)
    n_pairs = len(first)
    score, r_real, r_syn, cramer = (np.full(n_pairs, np.nan) for _ in range(4))
    both = continuous[first] & continuous[second]
    if both.any():
        score[both], r_real[both], r_syn[both] = _correlation_pairs(
            real, synthetic, columns, first[both], second[both])
    if (~both).any():
        score[~both], cramer[~both] = _contingency_pairs(real, synthetic, columns, continuous,
                                                         first[~both], second[~both])
    meets = np.where(both, np.abs(np.nan_to_num(r_real)) > CORRELATION_THRESHOLD,
                     np.nan_to_num(cramer) > ASSOCIATION_THRESHOLD)
    names = np.array(columns, dtype=object)
    return pd.DataFrame({
        "Column 1": names[first].tolist(), "Column 2": names[second].tolist(),
        "Metric": np.where(both, "CorrelationSimilarity", "ContingencySimilarity").tolist(),
        "Score": score, "Real Correlation": r_real, "Synthetic Correlation": r_syn,
        "Real Association": cramer, "Meets Threshold?": meets.astype(bool)})


def _correlation_pairs(real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[str],
                       first: np.ndarray, second: np.ndarray):
    """(score, real r, synthetic r) of continuous pairs, as ``correlation_similarity``."""
    used = np.unique(np.concatenate([first, second]))
    position = np.full(len(columns), -1)
    position[used] = np.arange(len(used))
    a, b = position[first], position[second]
    names = [columns[i] for i in used]
    constant = np.zeros(len(used), dtype=bool)
    r = []
    for frame in (real, synthetic):
        constant |= (frame[names].nunique() == 1).to_numpy()
        matrix = np.column_stack([_numeric(frame[c]) for c in names]) if len(frame) else \
            np.empty((0, len(names)))
        r.append(_pairwise_pearson(matrix)[a, b])
    flat = constant[a] | constant[b]
    r_real, r_syn = (np.where(flat, np.nan, x) for x in r)
    return 1 - np.abs(r_real - r_syn) / 2, r_real, r_syn


def _pairwise_pearson(matrix: np.ndarray) -> np.ndarray:
    """Pearson's r of every pair of columns over the rows where both are present (NaN when
    fewer than 2 such rows or either is constant there), as ``_pearson`` gives it pair by pair.

    Columns are centred and scaled over all their values first, so that the sums of the
    pairwise formula (n Sxy - Sx Sy) stay small and lose no precision to cancellation.
    """
    present = ~np.isnan(matrix)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.nansum(matrix, axis=0) / np.maximum(present.sum(axis=0), 1)
        x = np.where(present, matrix - centre, 0.0)
        spread = np.sqrt((x * x).sum(axis=0))
        x = x / np.where(spread > 0, spread, 1.0)
        mask = present.astype(float)
        n = mask.T @ mask
        sum_x = x.T @ mask  # [i, j]: sum of column i over rows where j is present too
        sum_xx = (x * x).T @ mask
        var_x = sum_xx - sum_x * sum_x / n
        covariance = x.T @ x - sum_x * sum_x.T / n
        flat_x = var_x <= 1e-12 * sum_xx  # constant over the rows shared with the other column
        flat = flat_x | flat_x.T | (n < 2)
        r = covariance / np.sqrt(var_x * var_x.T)
    return np.where(flat, np.nan, np.clip(r, -1, 1))


def _contingency_pairs(real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[str],
                       continuous: np.ndarray, first: np.ndarray, second: np.ndarray):
    """(score, real Cramér's V) of the pairs with a discrete column, as ``contingency_similarity``
    on continuous columns binned by ``discretize``; NaN where a binning failed."""
    codes_real, codes_syn, sizes = _pair_codes(real, synthetic, columns, continuous)
    valid = sizes[first] > 0
    valid &= sizes[second] > 0
    score, cramer = np.full(len(first), np.nan), np.full(len(first), np.nan)
    rng = np.random.default_rng(0)  # the subsample every contingency_similarity call draws
    codes_real, codes_syn = (_subsample_rows(c, rng) for c in (codes_real, codes_syn))
    pairs = np.flatnonzero(valid)
    step = max(1, _PAIR_CHUNK // max(1, len(codes_real) + len(codes_syn)))
    for start in range(0, len(pairs), step):
        chunk = pairs[start:start + step]
        score[chunk], cramer[chunk] = _contingency_chunk(codes_real, codes_syn, sizes,
                                                         first[chunk], second[chunk])
    return score, cramer


def _pair_codes(real: pd.DataFrame, synthetic: pd.DataFrame, columns: list[str],
                continuous: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer codes of each column's categories (nulls one category, continuous columns by
    bin), shared by real and synthetic; a size of 0 marks a column whose binning failed."""
    codes_real = np.zeros((len(real), len(columns)), dtype=np.int64)
    codes_syn = np.zeros((len(synthetic), len(columns)), dtype=np.int64)
    sizes = np.zeros(len(columns), dtype=np.int64)
    for i, column in enumerate(columns):
        a, b = real[column], synthetic[column]
        if continuous[i]:
            a, b = discretize(a), discretize(b)
            if a is None or b is None:
                continue
        codes, uniques = pd.factorize(pd.concat([a, b], ignore_index=True), use_na_sentinel=False)
        codes_real[:, i], codes_syn[:, i] = codes[:len(a)], codes[len(a):]
        sizes[i] = max(len(uniques), 1)
    return codes_real, codes_syn, sizes


def _subsample_rows(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(codes) <= CONTINGENCY_SUBSAMPLE:
        return codes
    return codes[rng.choice(len(codes), CONTINGENCY_SUBSAMPLE, replace=False)]


def _contingency_chunk(codes_real: np.ndarray, codes_syn: np.ndarray, sizes: np.ndarray,
                       first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores and Cramér's V of a chunk of pairs from one sort of (pair, cell) keys per side."""
    cells = sizes[first] * sizes[second]
    offset = np.concatenate([[0], np.cumsum(cells)[:-1]])

    def keys(codes: np.ndarray) -> np.ndarray:
        return (offset + codes[:, first] * sizes[second] + codes[:, second]).ravel()

    n_real, n_syn, n_pairs = len(codes_real), len(codes_syn), len(first)
    real_keys, real_counts = np.unique(keys(codes_real), return_counts=True)
    syn_keys, syn_counts = np.unique(keys(codes_syn), return_counts=True)
    union, where = np.unique(np.concatenate([real_keys, syn_keys]), return_inverse=True)
    diff = np.bincount(where, np.concatenate([real_counts / max(n_real, 1),
                                              -syn_counts / max(n_syn, 1)]), minlength=len(union))
    pair_of = np.searchsorted(offset, union, side="right") - 1
    score = 1 - np.bincount(pair_of, np.abs(diff), minlength=n_pairs) / 2
    cramer = _cramers_v(real_keys, real_counts, offset, sizes[second], n_real, n_pairs)
    return np.where(np.isnan(cramer), np.nan, score), cramer


def _cramers_v(cell_keys: np.ndarray, counts: np.ndarray, offset: np.ndarray, width: np.ndarray,
               n: int, n_pairs: int) -> np.ndarray:
    """Cramér's V of each pair's real table from its non-empty cells (as scipy's ``association``
    without correction); NaN where a side has fewer than 2 categories or there are no rows.

    chi2 = sum over non-empty cells of (O - E)^2 / E plus the expected counts of the empty
    cells (their O is 0), which are n minus the expected counts of the non-empty ones.
    """
    pair = np.searchsorted(offset, cell_keys, side="right") - 1
    local = cell_keys - offset[pair]
    row_key, col_key = pair * (local.max(initial=0) + 1) + local // width[pair], \
        pair * (width.max(initial=0) + 1) + local % width[pair]
    rows_of = [np.unique(k, return_inverse=True) for k in (row_key, col_key)]
    row_sum = np.bincount(rows_of[0][1], counts)[rows_of[0][1]]
    col_sum = np.bincount(rows_of[1][1], counts)[rows_of[1][1]]
    n_rows = np.bincount(pair[np.unique(rows_of[0][1], return_index=True)[1]], minlength=n_pairs)
    n_cols = np.bincount(pair[np.unique(rows_of[1][1], return_index=True)[1]], minlength=n_pairs)
    n_cells = np.bincount(pair, minlength=n_pairs)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = row_sum * col_sum / n
        chi2 = np.bincount(pair, (counts - expected) ** 2 / expected, minlength=n_pairs)
        empty = n - np.bincount(pair, expected, minlength=n_pairs)
        chi2 = chi2 + np.where(n_cells < n_rows * n_cols, np.maximum(empty, 0.0), 0.0)
        value = chi2 / n / (np.minimum(n_rows, n_cols) - 1)
    return np.where((np.minimum(n_rows, n_cols) < 2) | (n == 0), np.nan, np.sqrt(value))


def property_score(details: pd.DataFrame) -> float:
    """The mean score of the rows that count (all rows, or those meeting the threshold)."""
    if details.empty:
        return float("nan")
    if "Meets Threshold?" in details:
        return float(details.loc[details["Meets Threshold?"].astype(bool), "Score"].mean())
    return float(details["Score"].mean())


# ------------------------------------------------------------------------------ properties
def column_shapes(real: dict[str, pd.DataFrame], synthetic: dict[str, pd.DataFrame],
                  metadata: Metadata) -> pd.DataFrame:
    """Column Shapes details: Table, Column, Metric, Score (real and synthetic prepared)."""
    rows = []
    for table in metadata.tables:
        for column, sdtype in scored_columns(metadata, table).items():
            if SHAPES[sdtype] == "continuous":
                rows.append((table, column, "KSComplement",
                             ks_complement(real[table][column], synthetic[table][column])))
            else:
                rows.append((table, column, "TVComplement",
                             tv_complement(real[table][column], synthetic[table][column])))
    return pd.DataFrame(rows, columns=["Table", "Column", "Metric", "Score"])


def column_pair_trends(real, synthetic, metadata: Metadata) -> pd.DataFrame:
    """Column Pair Trends details: every pair of scored columns within each table."""
    frames = []
    for table in metadata.tables:
        sdtypes = scored_columns(metadata, table)
        details = table_pair_trends(real[table], synthetic[table], sdtypes)
        frames.append(details.assign(Table=table))
    return _concat(frames, ["Table"])


def cardinality_counts(parent: pd.DataFrame, child: pd.DataFrame, rel: dict) -> np.ndarray:
    """Children per parent row (0 for parents without children), in parent row order."""
    pk, fk = key_columns(rel["parent_primary_key"]), key_columns(rel["child_foreign_key"])
    refs = child[fk].dropna()
    if len(pk) == 1:
        parent_keys, child_keys = pd.Index(parent[pk[0]]), pd.Index(refs[fk[0]])
    else:
        parent_keys = pd.MultiIndex.from_frame(parent[pk])
        child_keys = pd.MultiIndex.from_frame(refs.set_axis(pk, axis=1))
    position = parent_keys.get_indexer(child_keys) if parent_keys.is_unique else \
        pd.Index(parent_keys.drop_duplicates()).get_indexer(child_keys)
    counts = np.bincount(position[position >= 0], minlength=len(parent_keys))
    return counts[: len(parent_keys)]


def cardinality(real, synthetic, metadata: Metadata) -> pd.DataFrame:
    """Cardinality details: Child Table, Parent Table, Foreign Key, Metric, Score."""
    rows = []
    for rel in metadata.relationships:
        parent, child = rel["parent_table_name"], rel["child_table_name"]
        real_counts = cardinality_counts(real[parent], real[child], rel)
        syn_counts = cardinality_counts(synthetic[parent], synthetic[child], rel)
        score = ks_complement(pd.Series(real_counts, dtype=float), pd.Series(syn_counts, dtype=float))
        rows.append((child, parent, str(rel["child_foreign_key"]), "CardinalityShapeSimilarity",
                     score))
    return pd.DataFrame(rows, columns=["Child Table", "Parent Table", "Foreign Key", "Metric",
                                       "Score"])


def _denormalize(data: dict[str, pd.DataFrame], rel: dict, parent_cols: list[str],
                 child_cols: list[str]) -> pd.DataFrame:
    """Child rows joined to their parent row (inner join), columns ``p.<col>`` / ``c.<col>``."""
    pk, fk = key_columns(rel["parent_primary_key"]), key_columns(rel["child_foreign_key"])
    parent = data[rel["parent_table_name"]]
    child = data[rel["child_table_name"]]
    left = child[fk].set_axis([f"k{i}" for i in range(len(fk))], axis=1).join(
        child[child_cols].add_prefix("c."))
    right = parent[pk].set_axis([f"k{i}" for i in range(len(pk))], axis=1).join(
        parent[parent_cols].add_prefix("p."))
    keys = [f"k{i}" for i in range(len(fk))]
    left, right = _same_key_types(left.dropna(subset=keys), right.dropna(subset=keys), keys)
    return left.merge(right, on=keys, how="inner").drop(columns=keys)


def _same_key_types(left: pd.DataFrame, right: pd.DataFrame,
                    keys: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both sides' key columns as Python objects where their dtypes differ.

    pandas refuses to merge an object column with an int64 one, and a foreign key read from a
    database is an object column when it is all NULL, holds Decimals or mixes types. Objects
    compare by value (1 == 1.0 == Decimal(1)), so the join finds the same pairs as SQL would.
    """
    numeric = pd.api.types.is_numeric_dtype
    differ = [k for k in keys if left[k].dtype != right[k].dtype
              and not (numeric(left[k]) and numeric(right[k]))]  # int with float merges
    if not differ:
        return left, right
    return (left.astype({k: object for k in differ}), right.astype({k: object for k in differ}))


def intertable_trends(real, synthetic, metadata: Metadata) -> pd.DataFrame:
    """Intertable Trends details: each parent column against each child column, per relationship."""
    frames = []
    for rel in metadata.relationships:
        parent, child = rel["parent_table_name"], rel["child_table_name"]
        parent_types = scored_columns(metadata, parent)
        child_types = scored_columns(metadata, child)
        if not parent_types or not child_types:
            continue
        joined_real = _denormalize(real, rel, list(parent_types), list(child_types))
        joined_syn = _denormalize(synthetic, rel, list(parent_types), list(child_types))
        sdtypes = {f"p.{c}": s for c, s in parent_types.items()}
        sdtypes.update({f"c.{c}": s for c, s in child_types.items()})
        pairs = (np.repeat(np.arange(len(parent_types)), len(child_types)),
                 len(parent_types) + np.tile(np.arange(len(child_types)), len(parent_types)))
        details = table_pair_trends(joined_real, joined_syn, sdtypes, pairs)
        details["Column 1"] = details["Column 1"].str[2:]
        details["Column 2"] = details["Column 2"].str[2:]
        frames.append(details.assign(**{"Parent Table": parent, "Child Table": child,
                                        "Foreign Key": str(rel["child_foreign_key"])}))
    return _concat(frames, ["Parent Table", "Child Table", "Foreign Key"])


def _concat(frames: list[pd.DataFrame], leading: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=leading + ["Column 1", "Column 2", "Metric", "Score",
                                               "Meets Threshold?"])
    out = pd.concat(frames, ignore_index=True)
    return out[leading + [c for c in out.columns if c not in leading]]


PROPERTIES = {
    "Column Shapes": column_shapes,
    "Column Pair Trends": column_pair_trends,
    "Cardinality": cardinality,
    "Intertable Trends": intertable_trends,
}


def fidelity(real: dict[str, pd.DataFrame], synthetic: dict[str, pd.DataFrame],
             metadata: Metadata) -> dict[str, pd.DataFrame]:
    """The details of every property, on prepared copies of the scored columns plus keys.

    Column Shapes gets a ``Note`` column when some values were not numbers or datetimes and
    were skipped (the score is then of the values that were).
    """
    skipped_real: dict[str, dict[str, int]] = {}
    skipped_syn: dict[str, dict[str, int]] = {}
    real_p, syn_p = _prepared(real, metadata, skipped_real), _prepared(synthetic, metadata,
                                                                       skipped_syn)
    details = {name: compute(real_p, syn_p, metadata) for name, compute in PROPERTIES.items()}
    details["Column Shapes"] = _with_notes(details["Column Shapes"], metadata, skipped_real,
                                           skipped_syn)
    return details


def _prepared(data: dict[str, pd.DataFrame], metadata: Metadata,
              skipped: dict[str, dict[str, int]]) -> dict[str, pd.DataFrame]:
    out = {}
    for table in metadata.tables:
        sdtypes = scored_columns(metadata, table)
        frame = data[table]
        keys = [c for c in frame.columns if c not in sdtypes]
        prepared = prepare(frame, sdtypes, skipped.setdefault(table, {}))
        out[table] = pd.concat([frame[keys], prepared], axis=1)[list(frame.columns)]
    return out


def _with_notes(details: pd.DataFrame, metadata: Metadata, skipped_real: dict,
                skipped_syn: dict) -> pd.DataFrame:
    """``details`` plus a Note per column whose values were partly skipped (none: unchanged)."""
    if not any(skipped_real.values()) and not any(skipped_syn.values()):
        return details
    kinds = {"numerical": "numbers", "datetime": "datetimes"}
    notes = [skipped_note(kinds.get(metadata.tables[t]["columns"][c]["sdtype"], "comparable"),
                          skipped_real.get(t, {}).get(c, 0), skipped_syn.get(t, {}).get(c, 0))
             for t, c in zip(details["Table"], details["Column"], strict=True)]
    return details.assign(Note=notes)
