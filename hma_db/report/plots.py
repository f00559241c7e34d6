"""The data behind the report's plots, computed once while evaluating.

Plain, JSON-able summaries (no rows): per scored column, the real and synthetic shares per bin
(numbers and datetimes: up to 30 equal-width bins over both sides' range) or per category (the
30 most frequent real categories, the rest as "(other)", nulls as "(null)"); per relationship,
the shares of parents with 0, 1, 2... children.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hma_db.report.fidelity import SHAPES, cardinality_counts, prepare, scored_columns
from hma_db.schema import Metadata, relationship_name

MAX_BINS = 30
MAX_CATEGORIES = 30
MAX_CHILD_COUNT = 50  # larger children counts are shown as one bar


def _histogram(real: pd.Series, synthetic: pd.Series, sdtype: str) -> dict:
    is_time = sdtype == "datetime"
    a, b = (_floats(v) for v in (real, synthetic))
    both = np.concatenate([a, b])
    if len(both) == 0:
        return {"kind": "histogram", "x": [], "real": [], "synthetic": []}
    edges = np.histogram_bin_edges(both, bins=min(MAX_BINS, max(1, len(np.unique(both)))))
    shares = [np.histogram(v, bins=edges)[0] / max(len(v), 1) for v in (a, b)]
    centers = (edges[:-1] + edges[1:]) / 2
    x = [str(pd.Timestamp(int(c))) for c in centers] if is_time else centers.tolist()
    return {"kind": "histogram", "x": x, "width": None if is_time else float(edges[1] - edges[0]),
            "real": shares[0].tolist(), "synthetic": shares[1].tolist()}


def _floats(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dropna().to_numpy("datetime64[ns]").astype("int64").astype(float)
    return pd.to_numeric(values, errors="coerce").dropna().to_numpy(float)


def _labels(values: pd.Series, keep: pd.Index) -> pd.Series:
    text = values.astype(str).where(values.notna(), "(null)")
    return text.where(text.isin(keep) | text.eq("(null)"), "(other)")


def _bars(real: pd.Series, synthetic: pd.Series) -> dict:
    real_text = real.astype(str).where(real.notna(), "(null)")
    keep = real_text[real_text != "(null)"].value_counts().index[:MAX_CATEGORIES]
    p = _labels(real, keep).value_counts(normalize=True)
    q = _labels(synthetic, keep).value_counts(normalize=True)
    order = list(keep) + [c for c in ("(other)", "(null)") if c in p.index or c in q.index]
    return {"kind": "bars", "x": order, "real": p.reindex(order, fill_value=0).tolist(),
            "synthetic": q.reindex(order, fill_value=0).tolist()}


def _children(counts: np.ndarray) -> pd.Series:
    clipped = pd.Series(np.minimum(counts, MAX_CHILD_COUNT))
    return clipped.value_counts(normalize=True)


def distributions(real: dict[str, pd.DataFrame], synthetic: dict[str, pd.DataFrame],
                  metadata: Metadata) -> dict:
    """``{"columns": {table: {column: plot data}}, "cardinality": [plot data per relationship]}``."""
    columns: dict[str, dict] = {}
    for table in metadata.tables:
        sdtypes = scored_columns(metadata, table)
        if not sdtypes:
            continue
        r, s = prepare(real[table], sdtypes), prepare(synthetic[table], sdtypes)
        columns[table] = {c: (_histogram(r[c], s[c], t) if SHAPES[t] == "continuous"
                              else _bars(r[c], s[c])) | {"sdtype": t}
                          for c, t in sdtypes.items()}
    cardinality = []
    for rel in metadata.relationships:
        parent, child = rel["parent_table_name"], rel["child_table_name"]
        p = _children(cardinality_counts(real[parent], real[child], rel))
        q = _children(cardinality_counts(synthetic[parent], synthetic[child], rel))
        order = sorted(set(p.index) | set(q.index))
        cardinality.append({"relationship": relationship_name(rel), "parent": parent,
                            "child": child, "x": [int(v) for v in order],
                            "real": p.reindex(order, fill_value=0).tolist(),
                            "synthetic": q.reindex(order, fill_value=0).tolist(),
                            "capped_at": MAX_CHILD_COUNT})
    return {"columns": columns, "cardinality": cardinality}
