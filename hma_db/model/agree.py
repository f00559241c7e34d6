"""Two foreign-key paths from one child row to one ancestor that agree in every source row.

A payment names its customer directly and through its rental (``payment.customer_id =
rental.customer_id`` of its rental, in every real row): the *direct* relationship (payment ->
customer) and the *path* (payment -> rental -> customer) reach the same row. Sampled
independently they disagree almost always, so :func:`find_agreements` records each such triple
at fit on the direct relationship (``agrees``: the ``via`` and ``up`` relationships), from the
links alone, when it holds in every row where both paths are set, on at least
:data:`MIN_ROWS` rows and more than one ancestor.

At sampling (:func:`keep_agreements`) the child keeps the parent it was sampled under (its
*first* parent) and takes the other from its relatives:

* sampled under the ancestor (payment under customer): the payment takes a rental of its
  customer, the payments of each customer dealt in turn over that customer's rentals from a
  random start, so each rental gets about (payments / rentals) of its customer's payments; a
  customer without sampled rentals keeps the rental drawn and takes that rental's customer;
* sampled under the middle table (payment under rental): the payment takes its rental's customer.

The second parent's child counts are then the result of the first parent's, not the ones the
model drew for it. Relationships in a junction key or one-to-one are left alone (moving a link
could repeat a key).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

MIN_ROWS = 30  # as for inequalities found in the data (hma_db.schema.rules.found)


def _movable(rels: dict[str, dict[str, Any]], junctions: dict, name: str) -> bool:
    rel = rels[name]
    in_key = any(name in key for keys in junctions.values() for key in keys)
    return rel["kind"] == "model" and not rel["unique"] and not in_key


def _through(via: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Each child row's ancestor through the path (-1 where a link on the way is NULL)."""
    if len(up) == 0:
        return np.full(len(via), -1, dtype=np.int64)
    return np.where(via >= 0, up[np.clip(via, 0, None)], -1)


def find_agreements(rels: dict[str, dict[str, Any]], junctions: dict,
                    links: dict[str, np.ndarray]) -> list[str]:
    """Mark each direct relationship whose path through another parent agrees in every row
    (``rels[direct]["agrees"] = {"via": ..., "up": ...}``); the rules found, as text."""
    found = []
    for direct, d in sorted(rels.items()):
        if not _movable(rels, junctions, direct):
            continue
        for via, v in sorted(rels.items()):
            if via == direct or v["child"] != d["child"] or v["parent"] in (d["parent"], d["child"]) \
                    or not _movable(rels, junctions, via) or set(d["fk"]) <= set(v["fk"]):
                continue
            for up, u in sorted(rels.items()):
                if u["child"] != v["parent"] or u["parent"] != d["parent"] or u["kind"] != "model":
                    continue
                ancestor, through = np.asarray(links[direct]), _through(links[via], links[up])
                both = (ancestor >= 0) & (through >= 0)
                if both.sum() >= MIN_ROWS and len(np.unique(ancestor[both])) > 1 \
                        and (ancestor[both] == through[both]).all():
                    d["agrees"] = {"via": via, "up": up}
                    found.append(f"{direct} = {via} -> {up}")
                    break
            if "agrees" in d:
                break
    for text in found:
        logger.info("found in every row: %s", text)
    return found


def _spread(ancestor: np.ndarray, up: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each child with an ancestor, a middle row under that ancestor (-1: it has none),
    the children of each ancestor dealt in turn over its middle rows from a random start."""
    order = np.argsort(up, kind="stable")
    ranked = up[order]
    start = np.searchsorted(ranked, ancestor, "left")
    count = np.searchsorted(ranked, ancestor, "right") - start
    count = np.where(ancestor >= 0, count, 0)
    # each child's rank among its ancestor's children, in a random order
    shuffled = rng.permutation(len(ancestor))
    by_ancestor = shuffled[np.argsort(ancestor[shuffled], kind="stable")]
    rank = np.empty(len(ancestor), dtype=np.int64)
    first = np.searchsorted(ancestor[by_ancestor], ancestor[by_ancestor], "left")
    rank[by_ancestor] = np.arange(len(ancestor)) - first
    offsets = rng.integers(0, 1 << 30, int(ancestor.max(initial=0)) + 1)
    offset = offsets[np.clip(ancestor, 0, None)]
    pick = start + (rank + offset) % np.maximum(count, 1)
    return np.where(count > 0, order[np.minimum(pick, max(len(order) - 1, 0))], -1)


def keep_agreements(model, sampled: dict, links: dict[str, np.ndarray],
                    rng: np.random.Generator) -> None:
    """Make this chunk's links agree along every recorded path (see the module docstring).
    ``sampled[t].links`` holds the links of tables sampled in earlier chunks."""
    for direct, d in sorted(model.relationships.items()):
        agree = d.get("agrees")
        if not agree or direct not in links:
            continue
        via, up = agree["via"], agree["up"]
        middle = sampled.get(model.relationships[via]["parent"])
        up_link = links.get(up, getattr(middle, "links", {}).get(up))
        if up_link is None or via not in links:
            continue  # a kept middle table: its real links are not in the model
        if model.tables[d["child"]].primary == direct:
            chosen = np.where(links[via] >= 0, _spread(links[direct], up_link, rng), -1)
            links[via] = np.where(chosen >= 0, chosen, links[via])
        through = _through(links[via], up_link)
        links[direct] = np.where(through >= 0, through, links[direct])
