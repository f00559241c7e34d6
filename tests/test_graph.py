import pytest
from conftest import CHINOOK_SQLITE, NORTHWIND_SQLITE
from schema_metadata import sqlite_metadata

from hma_db import Metadata
from hma_db.schema.graph import relationship_name


@pytest.fixture(scope="module")
def chinook():
    return sqlite_metadata(CHINOOK_SQLITE)


@pytest.fixture(scope="module")
def northwind():
    return sqlite_metadata(NORTHWIND_SQLITE)


def _schema(tables: dict[str, dict[str, bool]], links: list[tuple[str, str, str]]) -> Metadata:
    """Tables with an ``id`` key and the given FK columns (name -> nullable); links are
    (child, fk column, parent)."""
    m = Metadata()
    for table, fks in tables.items():
        m.add_table(table)
        m.add_column("id", table, sdtype="id")
        m.set_primary_key("id", table)
        for column, nullable in fks.items():
            m.add_column(column, table, sdtype="id", nullable=nullable)
    for child, column, parent in links:
        m.add_relationship(parent, child, "id", column)
    return m


def _respects_relationships(metadata: Metadata, order: list[str], skip=()) -> bool:
    position = {t: i for i, t in enumerate(order)}
    return all(position[r["parent_table_name"]] < position[r["child_table_name"]]
               for r in metadata.relationships
               if r["parent_table_name"] != r["child_table_name"] and r not in skip)


def test_chinook_graph(chinook):
    assert len(chinook.relationships) == 11
    assert chinook.parents("Track") == ["Album", "Genre", "MediaType"]
    assert chinook.children("Track") == ["InvoiceLine", "PlaylistTrack"]
    assert chinook.parents("Employee") == [] and chinook.children("Employee") == ["Customer"]
    assert [relationship_name(r) for r in chinook.self_references()] == [
        "Employee.ReportsTo -> Employee"]
    assert chinook.cycles() == [] and chinook.deferred_relationships() == []
    order = chinook.topological_order()
    assert sorted(order) == sorted(chinook.tables)
    assert _respects_relationships(chinook, order)
    assert order[:6] == ["Artist", "Employee", "Genre", "MediaType", "Playlist", "Album"]
    # Artist -> Album -> Track -> InvoiceLine and Employee -> Customer -> Invoice -> InvoiceLine
    assert chinook.depth() == 3


def test_northwind_graph(northwind):
    assert len(northwind.tables) == 14 and len(northwind.relationships) == 13
    assert northwind.parents("order_details") == ["orders", "products"]
    assert northwind.children("employees") == ["employee_territories", "orders"]
    assert _respects_relationships(northwind, northwind.topological_order())
    assert northwind.depth() == 2
    composite = [t for t in northwind.tables if len(northwind.primary_key(t)) == 2]
    assert sorted(composite) == ["customer_customer_demo", "employee_territories", "order_details"]


def test_relationship_name_shows_composite_keys():
    rel = {"parent_table_name": "orders", "child_table_name": "lines",
           "parent_primary_key": ["a", "b"], "child_foreign_key": ["x", "y"]}
    assert relationship_name(rel) == "lines.(x, y) -> orders"


def test_two_table_cycle_is_named_and_cut_at_the_nullable_foreign_key():
    m = _schema({"dept": {"manager_id": True}, "emp": {"dept_id": False}},
                [("dept", "manager_id", "emp"), ("emp", "dept_id", "dept")])
    assert m.cycles() == [["dept", "emp", "dept"]]
    deferred = m.deferred_relationships()
    assert [relationship_name(r) for r in deferred] == ["dept.manager_id -> emp"]
    assert m.topological_order() == ["dept", "emp"]
    assert _respects_relationships(m, m.topological_order(), skip=deferred)
    assert m.depth() == 1
    m.validate()


def test_three_table_cycle():
    m = _schema({"a": {"b_id": False}, "b": {"c_id": False}, "c": {"a_id": True}, "d": {"a_id": False}},
                [("a", "b_id", "b"), ("b", "c_id", "c"), ("c", "a_id", "a"), ("d", "a_id", "a")])
    assert m.cycles() == [["a", "b", "c", "a"]]
    assert [relationship_name(r) for r in m.deferred_relationships()] == ["c.a_id -> a"]
    assert m.topological_order() == ["c", "b", "a", "d"]
    assert m.depth() == 3


def test_cycle_of_not_null_foreign_keys_is_cut_at_its_first_by_name():
    """Before, such a cycle was refused; its keys are now proven at commit, so any edge can be
    cut (the model draws it from the other table's rows). A nullable edge still goes first."""
    m = _schema({"a": {"b_id": False}, "b": {"c_id": False}, "c": {"a_id": False}},
                [("a", "b_id", "b"), ("b", "c_id", "c"), ("c", "a_id", "a")])
    assert m.cycles() == [["a", "b", "c", "a"]]
    assert [relationship_name(r) for r in m.deferred_relationships()] == ["a.b_id -> b"]
    assert m.topological_order() == ["a", "c", "b"]
    m.update_column("c_id", "b", nullable=True)
    assert [relationship_name(r) for r in m.deferred_relationships()] == ["b.c_id -> c"]
    m.validate()


def test_two_foreign_keys_between_the_same_tables_are_cut_together():
    m = _schema({"team": {"captain_id": True, "coach_id": True}, "player": {"team_id": False}},
                [("team", "captain_id", "player"), ("team", "coach_id", "player"),
                 ("player", "team_id", "team")])
    deferred = m.deferred_relationships()
    assert sorted(relationship_name(r) for r in deferred) == [
        "team.captain_id -> player", "team.coach_id -> player"]
    assert m.topological_order() == ["team", "player"]
    assert m.parents("team") == ["player"] and m.children("team") == ["player"]


def test_two_independent_cycles_and_self_reference():
    m = _schema({"a": {"b_id": True, "parent_id": True}, "b": {"a_id": False},
                 "c": {"d_id": False}, "d": {"c_id": True}},
                [("a", "b_id", "b"), ("b", "a_id", "a"), ("c", "d_id", "d"), ("d", "c_id", "c"),
                 ("a", "parent_id", "a")])
    assert sorted(m.cycles()) == [["a", "b", "a"], ["c", "d", "c"]]
    assert sorted(relationship_name(r) for r in m.deferred_relationships()) == [
        "a.b_id -> b", "d.c_id -> c"]
    assert m.parents("a") == ["b"]  # the self-reference is not a parent
    assert m.depth() == 1


def test_depth_of_unrelated_tables_is_zero():
    assert _schema({"x": {}, "y": {}}, []).depth() == 0
    assert Metadata().depth() == 0 and Metadata().topological_order() == []
