"""The foreign-key graph of a schema: parents, children, cycles, a load order and depth.

Functions take the table names and the relationship dicts of a :class:`~hma_db.Metadata`
(``parent_table_name``, ``child_table_name``, ``child_foreign_key``) and a predicate telling
whether a relationship's foreign key is nullable. They never look at data.
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable, Iterable

Relationship = dict


def relationship_name(rel: Relationship) -> str:
    """``child.fk -> parent`` for messages; composite keys are shown as ``(a, b)``."""
    fk = rel["child_foreign_key"]
    fk_text = fk if isinstance(fk, str) else "(" + ", ".join(fk) + ")"
    return f"{rel['child_table_name']}.{fk_text} -> {rel['parent_table_name']}"


def _edges(relationships: Iterable[Relationship]) -> list[tuple[str, str]]:
    """(parent, child) pairs without self-references."""
    return [
        (r["parent_table_name"], r["child_table_name"])
        for r in relationships
        if r["parent_table_name"] != r["child_table_name"]
    ]


def _sorter(tables: Iterable[str], relationships: Iterable[Relationship]):
    sorter = graphlib.TopologicalSorter({t: set() for t in sorted(tables)})
    for parent, child in _edges(relationships):
        sorter.add(child, parent)
    return sorter


def _find_cycle(tables: Iterable[str], relationships: list[Relationship]) -> list[str] | None:
    try:
        tuple(_sorter(tables, relationships).static_order())
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def _cycle_relationships(cycle: list[str], relationships: list[Relationship]) -> list[Relationship]:
    """The relationships along a cycle as graphlib reports it (each node is a parent of the next)."""
    steps = set(zip(cycle[:-1], cycle[1:], strict=True))
    return [r for r in relationships if (r["parent_table_name"], r["child_table_name"]) in steps]


def deferred_relationships(
    tables: Iterable[str],
    relationships: list[Relationship],
    is_nullable: Callable[[Relationship], bool],
) -> list[Relationship]:
    """The relationships to cut so that the graph has no cycle between tables.

    A cut relationship is not modeled as a parent-child hierarchy: its foreign key is drawn
    from the sampled rows of its parent once every table is sampled. A nullable one is cut
    first (a target that checks keys as rows arrive writes it NULL, then updates it); a cycle
    whose foreign keys are all NOT NULL is cut at its first one by name, and loads where the
    keys are proven at commit (see :mod:`hma_db.target.session`).
    """
    tables = list(tables)
    remaining = list(relationships)
    deferred: list[Relationship] = []
    while (cycle := _find_cycle(tables, remaining)) is not None:
        along = _cycle_relationships(cycle, remaining)
        candidates = sorted((r for r in along if is_nullable(r)), key=relationship_name) \
            or sorted(along, key=relationship_name)
        # Cut every candidate edge between the same two tables, so the pair never re-forms a cycle.
        cut = candidates[0]
        pair = (cut["parent_table_name"], cut["child_table_name"])
        for rel in [r for r in candidates
                    if (r["parent_table_name"], r["child_table_name"]) == pair]:
            deferred.append(rel)
            remaining.remove(rel)
    return deferred


def cycles(tables: Iterable[str], relationships: list[Relationship]) -> list[list[str]]:
    """Each cycle between two or more tables, as the list of its tables (first one repeated last)."""
    tables = list(tables)
    remaining = list(relationships)
    found: list[list[str]] = []
    while (cycle := _find_cycle(tables, remaining)) is not None:
        found.append(list(reversed(cycle)))
        along = _cycle_relationships(cycle, remaining)
        remaining.remove(sorted(along, key=relationship_name)[0])
    return found


def topological_order(tables: Iterable[str], relationships: list[Relationship]) -> list[str]:
    """Tables with every parent before its children; ties in name order. Must be acyclic."""
    sorter = _sorter(tables, relationships)
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order


def depth(tables: Iterable[str], relationships: list[Relationship]) -> int:
    """The number of foreign-key steps on the longest parent-to-child chain (0: no relationship)."""
    order = topological_order(tables, relationships)
    level = dict.fromkeys(order, 0)
    edges = _edges(relationships)
    for table in order:
        for parent, child in edges:
            if parent == table:
                level[child] = max(level[child], level[table] + 1)
    return max(level.values(), default=0)
