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

Columns with other sdtypes (``id``, ``unknown``, personal data) take no part, as in SDMetrics.
Unlike SDMetrics, a self-referencing relationship is scored too (SDMetrics fails on it).
"""

from __future__ import annotations

import itertools
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
        pairs = list(itertools.combinations(sdtypes, 2))
        details = pair_trends(real[table], synthetic[table], sdtypes, pairs)
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
        pairs = list(itertools.product([f"p.{c}" for c in parent_types],
                                       [f"c.{c}" for c in child_types]))
        details = pair_trends(joined_real, joined_syn, sdtypes, pairs)
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
