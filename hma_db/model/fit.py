"""Fitting the hierarchical model: the relationship plan, extension statistics, table copulas.

Tables are fitted bottom-up (children before parents). For a child C of parent P through a
modeled relationship r (neither a self-reference nor cut to break a cycle), every row of P gets
the *extension columns* of r: ``num_rows`` (its number of children) and, for each aggregated
column of C, the mean and standard deviation of its children's normal scores. P's copula then
models its own columns and all its extension columns jointly.

What is aggregated from C: its own modeled columns and its own ``num_rows`` columns, never its
other extension columns, so every table's width stays linear in the schema. When C offers more
than ``MAX_AGGREGATED`` such columns, the ones whose group means vary most between parents
(largest share of between-parent variance) are kept. Every aggregated column costs the
parent two extension columns, each a truncnorm fit plus a rank pass over the parent's rows:
on a 100k-row parent, 41 such columns took 12 s and 65 took 22 s on this 2-core machine under
a load average of 11 (linear in the width; the d x d algebra is negligible). 20 keeps a
parent of a 16-column child at 41 extension columns and bounds any parent at 41 per child
table; the columns left out carry the least parent-level signal and are still modeled by C's
own copula, drawn conditionally on the aggregated ones.

All group statistics come from ``np.bincount`` over the link array, one call per column:
no loop over parents or rows. The order of the tables' fits, one level of the hierarchy at a
time, is in :mod:`hma_db.model.levels`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hma_db.errors import SynthesizerInputError
from hma_db.model.assign import degree_quantiles
from hma_db.model.copula import GaussianCopula, check_distribution, nearest_correlation
from hma_db.schema import key_columns, relationship_name

MAX_AGGREGATED = 20
# A root table of at most this many rows (or of fewer rows than copula columns) is not sampled
# from its copula, fitted on too few rows to hold its children's counts: its fitted rows are
# reused (see :func:`hma_db.model.sample.replayed_rows`). 30 takes in the lookup tables of
# Chinook (5-25 rows) and Northwind (3-29 rows), whose copulas gave each parent a fresh child
# count; measured with tests/benchmarks/bench_fidelity.py (seeds 0-2), whole-database quality
# went 0.772 -> 0.806 on Chinook (Cardinality 0.936 -> 0.975) and 0.740 -> 0.801 on Northwind
# (Cardinality 0.895 -> 0.984). The next root tables are far larger (Artist 275, customers 91).
SMALL_TABLE_ROWS = 30
COVARIANCE_ROWS = 200_000
EXTENSION_DISTRIBUTION = "truncnorm"
SEP = " :: "  # joins a relationship name and a statistic into an extension column name


@dataclass
class TableModel:
    """What the model learned of one table: its copula over its own modeled columns and the
    extension columns of its children, and how many rows the source had."""

    rows: int
    columns: list[str]
    extension_columns: list[str]
    default_distribution: str
    distributions: dict[str, str]
    copula: GaussianCopula | None = None  # None for an empty source table
    primary: str | None = field(default=None)  # the relationship it is sampled under
    # A table kept as it is: the rows it was fitted on (own and extension columns) and their
    # scores, which stand for its sample so its children follow its real rows.
    kept: dict[str, list] | None = None
    # A small root table: the rows it was fitted on (own and extension columns), drawn again
    # in a permutation at sampling instead of from the copula.
    replayed: list[list[float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the ``tables`` entries of a JSON model)."""
        return {"rows": self.rows, "columns": list(self.columns),
                "extension_columns": list(self.extension_columns),
                "default_distribution": self.default_distribution,
                "distributions": dict(self.distributions), "primary": self.primary,
                "copula": None if self.copula is None else self.copula.to_dict(),
                **({"kept": copy.deepcopy(self.kept)} if self.kept is not None else {}),
                **({"replayed": copy.deepcopy(self.replayed)} if self.replayed is not None else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableModel:
        """The inverse of :meth:`to_dict`."""
        copula = data["copula"]
        return cls(rows=int(data["rows"]), columns=list(data["columns"]),
                   extension_columns=list(data["extension_columns"]),
                   default_distribution=data["default_distribution"],
                   distributions=copy.deepcopy(data["distributions"]),
                   copula=None if copula is None else GaussianCopula.from_dict(copula),
                   primary=data.get("primary"), kept=_kept(data.get("kept")),
                   replayed=_replayed(data.get("replayed"),
                                      len(data["columns"]) + len(data["extension_columns"])))


def _kept(data: Any) -> dict[str, list] | None:
    """A kept table's rows from a model file: two float matrices of one shape, or None."""
    if data is None:
        return None
    values, scores = (np.asarray(data.get(k, []), dtype=float) for k in ("values", "scores"))
    if values.shape != scores.shape or values.ndim != 2:
        raise SynthesizerInputError("a kept table's rows in the model file are malformed")
    return {"values": values.tolist(), "scores": scores.tolist()}


def _replayed(data: Any, width: int) -> list[list[float]] | None:
    """A small root table's fitted rows from a model file: a float matrix ``width`` wide."""
    if data is None:
        return None
    values = np.asarray(data, dtype=float)
    if values.ndim != 2 or values.shape[1] != width or not len(values):
        raise SynthesizerInputError(
            f"a small table's rows in the model file are malformed: expected a matrix of "
            f"{width} columns, found shape {values.shape}")
    return values.tolist()


def num_rows_column(rel_name: str) -> str:
    return f"{rel_name}{SEP}num_rows"


def extension_columns(rel_name: str, aggregated: list[str]) -> list[str]:
    """Names of a relationship's extension columns: num_rows, the means, the stds."""
    return ([num_rows_column(rel_name)] + [f"{rel_name}{SEP}mean{SEP}{c}" for c in aggregated]
            + [f"{rel_name}{SEP}std{SEP}{c}" for c in aggregated])


# ------------------------------------------------------------------------------------- plan
def plan(metadata) -> tuple[dict[str, dict[str, Any]], dict[str, list[list[str]]]]:
    """Every relationship (kind ``model``, ``self`` or ``deferred``) and every junction key.

    A junction key is a primary or alternate key made only of foreign-key columns covering two
    or more relationships; a key made of one relationship's foreign key marks it ``unique``
    (each parent row has at most one child).
    """
    deferred = metadata.deferred_relationships()
    rels: dict[str, dict[str, Any]] = {}
    for rel in metadata.relationships:
        parent, child = rel["parent_table_name"], rel["child_table_name"]
        kind = "self" if parent == child else "deferred" if rel in deferred else "model"
        rels[relationship_name(rel)] = {"parent": parent, "child": child, "kind": kind,
                                        "fk": key_columns(rel["child_foreign_key"]),
                                        "unique": False}
    junctions: dict[str, list[list[str]]] = {}
    for table in sorted(metadata.tables):
        fk_columns = set(metadata.foreign_key_columns(table))
        for key in [metadata.primary_key(table), *metadata.alternate_keys(table)]:
            if not key or not set(key) <= fk_columns:
                continue
            inside = sorted(n for n, r in rels.items()
                            if r["child"] == table and set(r["fk"]) <= set(key))
            if {c for n in inside for c in rels[n]["fk"]} != set(key):
                continue
            if len(inside) == 1:
                rels[inside[0]]["unique"] = True
            elif inside not in junctions.get(table, []):
                junctions.setdefault(table, []).append(inside)
    return rels, junctions


def check_inputs(metadata, numeric: dict[str, pd.DataFrame], links: dict[str, np.ndarray],
                 rels: dict[str, dict[str, Any]]) -> None:
    """Every table has a frame and every relationship a link of the right length and range."""
    missing = sorted(set(metadata.tables) - set(numeric))
    if missing:
        raise SynthesizerInputError(f"No numeric frame for table(s) {', '.join(missing)}")
    for name, rel in rels.items():
        if name not in links:
            raise SynthesizerInputError(f"No link array for the relationship {name}")
        link = np.asarray(links[name])
        n_child, n_parent = len(numeric[rel["child"]]), len(numeric[rel["parent"]])
        if link.shape != (n_child,):
            raise SynthesizerInputError(
                f"The link of {name} has shape {link.shape}; expected ({n_child},), one entry "
                f"per row of '{rel['child']}'")
        if n_child and (link.min() < -1 or link.max() >= n_parent):
            raise SynthesizerInputError(
                f"The link of {name} holds positions outside -1..{n_parent - 1} "
                f"('{rel['parent']}' has {n_parent} rows)")


def asked_distributions(columns: list[str], parameters: dict[str, Any]) -> dict[str, str]:
    """Per modeled column, the distribution asked for its source column (``col`` or ``col.*``)."""
    asked = parameters.get("numerical_distributions") or {}
    out = {}
    for column in columns:
        for source, name in asked.items():
            if column == source or column.startswith(f"{source}."):
                out[column] = check_distribution(name, column)
    return out


# ------------------------------------------------------------------------ group statistics
def _group_sums(values: np.ndarray, link: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.zeros((n_groups, values.shape[1]))
    for j in range(values.shape[1]):
        out[:, j] = np.bincount(link, weights=values[:, j], minlength=n_groups)
    return out


def _between_within(scores: np.ndarray, link: np.ndarray, counts: np.ndarray):
    """Group means, residuals, within covariance and noise-corrected between covariance."""
    n_groups = len(counts)
    means = _group_sums(scores, link, n_groups) / np.maximum(counts, 1)[:, None]
    resid = scores - means[link]
    present = counts > 0
    n, groups = len(link), int(present.sum())
    k = scores.shape[1]
    # The cross-products of at most COVARIANCE_ROWS evenly spaced rows (a tall product is the
    # slowest step at a million children; 200k rows leave a standard error under 0.003).
    step = max(1, -(-n // COVARIANCE_ROWS))
    part = resid[::step]
    within = (part.T @ part) * (n / max(len(part), 1)) / (n - groups) if n > groups \
        else np.zeros((k, k))
    if n == 0:
        return means, resid, within, np.zeros((k, k))
    centered = means[present] - scores.mean(axis=0)
    between = (centered * counts[present][:, None]).T @ centered / n
    # A group mean of m children carries within/m of noise: remove it from the between part.
    return means, resid, within, between - within * (groups / n)


def _share_between(between: np.ndarray, within: np.ndarray) -> np.ndarray:
    b, w = np.clip(np.diag(between), 0, None), np.diag(within)
    total = b + w
    return np.where(total > 0, b / np.where(total > 0, total, 1), 0.0)


def relationship_statistics(rel: dict[str, Any], scores: np.ndarray, columns: list[str],
                            candidates: list[str], link: np.ndarray, n_parent: int
                            ) -> np.ndarray:
    """Fill ``rel`` with what sampling needs and return the parent's extension block.

    Args:
        rel: the relationship record (updated in place).
        scores: the child's normal scores, ``(n_child, len(columns))``.
        columns: the child's copula columns.
        candidates: the child columns that may be aggregated (own and num_rows columns).
        link: the child's link to the parent.
        n_parent: rows of the parent.
    """
    valid = link >= 0
    parent_of = link[valid]
    counts = np.bincount(parent_of, minlength=n_parent).astype(float)
    index = [columns.index(c) for c in candidates] if len(parent_of) else []
    z = scores[valid][:, index] if index else np.zeros((len(parent_of), 0))
    means, resid, within, between = _between_within(z, parent_of, counts)
    share = _share_between(between, within)
    keep = np.sort(np.argsort(-share, kind="stable")[:MAX_AGGREGATED])
    means, resid, share = means[:, keep], resid[:, keep], share[keep]
    within, between = within[np.ix_(keep, keep)], between[np.ix_(keep, keep)]
    pooled = np.sqrt(np.clip(np.diag(within), 0, None))
    squares = _group_sums(resid ** 2, parent_of, n_parent)
    with np.errstate(all="ignore"):
        sd = np.sqrt(squares / (counts - 1)[:, None])
    sd = np.where((counts >= 2)[:, None], sd, pooled[None, :])
    null_share = float(np.mean(~valid)) if len(link) else 0.0
    rel.update({
        "aggregated": [candidates[i] for i in keep],
        "null_share": null_share,
        "min_count": int(counts.min()) if n_parent else 0,
        "max_count": int(counts.max()) if n_parent else 0,
        "degree_quantiles": degree_quantiles(counts),
        "within_correlation": _correlation(within).tolist(),
        "information": (1 - null_share) * (1 + float(share.sum())),
        **_projection(between, within),
    })
    return np.column_stack([counts, means, sd])


def _correlation(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(all="ignore"):
        corr = cov / np.outer(sd, sd)
    corr[~np.isfinite(corr)] = 0.0
    np.fill_diagonal(corr, 1.0)
    return nearest_correlation(corr)


def _projection(between: np.ndarray, within: np.ndarray) -> dict[str, Any]:
    """The direction along which parents differ most, for resemblance-aware assignment.

    Along ``w``: a child's projected score y = m + e with parent part m ~ N(0, b) and within
    part e ~ N(0, v). A draw of m given y (mean ``shrink * y``, sd ``posterior_sd``) is the
    child's matching key against the parents' projected means.
    """
    k = len(between)
    if k == 0:
        return {"projection": [], "shrink": 0.0, "posterior_sd": 0.0}
    values, vectors = np.linalg.eigh((between + between.T) / 2)
    w = vectors[:, -1]
    b, v = max(float(values[-1]), 0.0), float(max(w @ within @ w, 0.0))
    if b + v <= 0:
        return {"projection": [0.0] * k, "shrink": 0.0, "posterior_sd": 0.0}
    return {"projection": w.tolist(), "shrink": b / (b + v),
            "posterior_sd": float(np.sqrt(b * v / (b + v)))}


def own_degrees(rel: dict[str, Any], link: np.ndarray, n_parent: int) -> None:
    """Null share and out-degree shape of a self-reference or cut relationship."""
    valid = link >= 0
    counts = np.bincount(link[valid], minlength=n_parent)
    rel.update({"null_share": float(np.mean(~valid)) if len(link) else 0.0,
                "degree_quantiles": degree_quantiles(counts),
                "min_count": int(counts.min()) if n_parent else 0,
                "max_count": int(counts.max()) if n_parent else 0})
