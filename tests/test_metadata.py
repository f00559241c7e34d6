import json

import pytest

from hma_db import METADATA_SPEC_VERSION, Metadata, MetadataError

# A multi-table metadata file in SDV's documented layout, written for these tests: a spec version,
# tables -> columns -> sdtype with SDV's options (regex_format, datetime_format, pii), primary keys
# (a list when composite), alternate keys, an empty column_relationships list, and relationships
# naming parent/child tables and keys (lists for a composite foreign key).
SDV_FILE = {
    "METADATA_SPEC_VERSION": "V1",
    "tables": {
        "stores": {
            "primary_key": "store_code",
            "alternate_keys": ["phone"],
            "columns": {
                "store_code": {"sdtype": "id", "regex_format": "ST-[0-9]{4}"},
                "phone": {"sdtype": "phone_number", "pii": True},
                "opened": {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"},
                "size_m2": {"sdtype": "numerical", "computer_representation": "Float"},
                "has_parking": {"sdtype": "boolean"},
            },
            "column_relationships": [],
        },
        "shelves": {
            "primary_key": ["store_code", "shelf_no"],
            "columns": {
                "store_code": {"sdtype": "id", "regex_format": "ST-[0-9]{4}"},
                "shelf_no": {"sdtype": "id"},
                "aisle": {"sdtype": "categorical"},
            },
        },
        "stock": {
            "primary_key": "stock_id",
            "alternate_keys": [["store_code", "shelf_no", "sku"]],
            "columns": {
                "stock_id": {"sdtype": "id"},
                "store_code": {"sdtype": "id", "regex_format": "ST-[0-9]{4}"},
                "shelf_no": {"sdtype": "id"},
                "sku": {"sdtype": "categorical"},
                "manager_email": {"sdtype": "email", "pii": True},
                "counted_at": {"sdtype": "datetime", "datetime_format": "%d %b %Y %H:%M"},
                "quantity": {"sdtype": "numerical", "computer_representation": "Int64"},
            },
        },
    },
    "relationships": [
        {"parent_table_name": "stores", "parent_primary_key": "store_code",
         "child_table_name": "shelves", "child_foreign_key": "store_code"},
        {"parent_table_name": "shelves", "parent_primary_key": ["store_code", "shelf_no"],
         "child_table_name": "stock", "child_foreign_key": ["store_code", "shelf_no"]},
    ],
}


def _shop() -> Metadata:
    """A small schema built through the editing API: composite keys, unique keys, self-reference."""
    m = Metadata()
    m.add_table("customer")
    m.add_column("id", "customer", sdtype="id")
    m.add_column("email", "customer", sdtype="email", pii=True, max_length=80)
    m.add_column("referred_by", "customer", sdtype="id", nullable=True)
    m.set_primary_key("id", "customer")
    m.add_alternate_keys(["email"], "customer")
    m.add_table("order")
    for column, sdtype in (("customer_id", "id"), ("order_no", "id"), ("total", "numerical")):
        m.add_column(column, "order", sdtype=sdtype)
    m.set_primary_key(["customer_id", "order_no"], "order")
    m.add_table("line")
    for column, sdtype in (("customer_id", "id"), ("order_no", "id"), ("qty", "numerical")):
        m.add_column(column, "line", sdtype=sdtype)
    m.add_relationship("customer", "order", "id", "customer_id")
    m.add_relationship("customer", "customer", "id", "referred_by")
    m.add_relationship("order", "line", ["customer_id", "order_no"], ["customer_id", "order_no"])
    return m


def test_dict_round_trip_keeps_keys_and_options():
    m = _shop()
    d = m.to_dict()
    assert d["METADATA_SPEC_VERSION"] == METADATA_SPEC_VERSION
    assert d["tables"]["order"]["primary_key"] == ["customer_id", "order_no"]
    assert d["tables"]["customer"]["alternate_keys"] == ["email"]
    assert "primary_key" not in d["tables"]["line"]
    again = Metadata.from_dict(d)
    assert again == m
    assert again.to_dict() == d
    m.validate()


def test_to_dict_and_copy_are_independent():
    m = _shop()
    d = m.to_dict()
    d["tables"]["customer"]["columns"]["email"]["sdtype"] = "numerical"
    other = m.copy()
    other.update_column("email", "customer", sdtype="categorical")
    assert m.tables["customer"]["columns"]["email"]["sdtype"] == "email"
    assert other != m


def test_json_round_trip(tmp_path):
    m = _shop()
    path = tmp_path / "shop.json"
    m.save_to_json(path)
    assert json.loads(path.read_text()) == m.to_dict()
    loaded = Metadata.load_from_json(path)
    assert loaded == m
    assert loaded.primary_key("order") == ["customer_id", "order_no"]


def test_save_refuses_to_overwrite(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("{}")
    with pytest.raises(MetadataError, match="already exists"):
        _shop().save_to_json(path)
    assert path.read_text() == "{}"


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(MetadataError, match="does not exist"):
        Metadata.load_from_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(MetadataError, match="bad.json' is not valid JSON"):
        Metadata.load_from_json(bad)
    with pytest.raises(MetadataError, match="'tables' key"):
        Metadata.from_dict({"columns": {"a": {"sdtype": "id"}}})
    # A single-table SDV file loads as one table, as SDV's Metadata.load_from_json does.
    single = tmp_path / "single.json"
    single.write_text(json.dumps({"columns": {"a": {"sdtype": "id"}}}))
    assert list(Metadata.load_from_json(single, single_table_name="t").tables) == ["t"]


@pytest.mark.parametrize("version", ["V1", "MULTI_TABLE_V1"])
def test_sdv_layout_file_loads_and_validates(tmp_path, version):
    path = tmp_path / "sdv.json"
    path.write_text(json.dumps({**SDV_FILE, "METADATA_SPEC_VERSION": version}, indent=4))
    m = Metadata.load_from_json(path)
    m.validate()
    assert m.primary_key("shelves") == ["store_code", "shelf_no"]
    assert m.alternate_keys("stock") == [["store_code", "shelf_no", "sku"]]
    assert m.alternate_keys("stores") == [["phone"]]
    assert m.tables["stores"]["columns"]["store_code"]["regex_format"] == "ST-[0-9]{4}"
    assert m.tables["stock"]["columns"]["counted_at"]["datetime_format"] == "%d %b %Y %H:%M"
    assert m.get_column_names("stock", pii=True) == ["manager_email"]
    assert m.foreign_key_columns("stock") == ["store_code", "shelf_no"]
    assert m.topological_order() == ["stores", "shelves", "stock"]
    assert m.depth() == 2
    # Written back in the same layout; only the empty column_relationships list is left out.
    out = m.to_dict()
    expected = json.loads(json.dumps(SDV_FILE))
    del expected["tables"]["stores"]["column_relationships"]
    assert out["tables"] == expected["tables"]
    assert out["relationships"] == expected["relationships"]


def test_validate_collects_every_problem_in_one_error():
    d = {
        "tables": {
            "a": {"primary_key": "id", "columns": {"id": {"sdtype": "id"},
                                                    "b_id": {"sdtype": "id"},
                                                    "score": {"sdtype": "no_such_sdtype"}}},
            "b": {"primary_key": "id", "columns": {"id": {"sdtype": "id"},
                                                    "a_id": {"sdtype": "id"}}},
            "nokey": {"columns": {"x": {"sdtype": "numerical"}}},
            "ghost_key": {"primary_key": "missing", "alternate_keys": [["id", "nope"]],
                          "columns": {"id": {"sdtype": "id"}}},
            "child": {"columns": {"nokey_x": {"sdtype": "numerical"},
                                  "a_id": {"sdtype": "numerical"},
                                  "p1": {"sdtype": "id"}}},
            "pair": {"primary_key": ["k1", "k2"], "columns": {"k1": {"sdtype": "id"},
                                                              "k2": {"sdtype": "id"}}},
        },
        "relationships": [
            # a <-> b with NOT NULL foreign keys: a cycle that cannot be loaded
            {"parent_table_name": "b", "parent_primary_key": "id",
             "child_table_name": "a", "child_foreign_key": "b_id"},
            {"parent_table_name": "a", "parent_primary_key": "id",
             "child_table_name": "b", "child_foreign_key": "a_id"},
            {"parent_table_name": "nokey", "parent_primary_key": "x",
             "child_table_name": "child", "child_foreign_key": "nokey_x"},
            {"parent_table_name": "a", "parent_primary_key": "id",
             "child_table_name": "child", "child_foreign_key": "a_id"},
            {"parent_table_name": "pair", "parent_primary_key": ["k1", "k2"],
             "child_table_name": "child", "child_foreign_key": "p1"},
            {"parent_table_name": "nowhere", "parent_primary_key": "id",
             "child_table_name": "child", "child_foreign_key": "p1"},
        ],
    }
    with pytest.raises(MetadataError) as info:
        Metadata.from_dict(d).validate()
    problems = info.value.problems
    expected = [
        "column 'a.score': unknown sdtype 'no_such_sdtype'",
        "table 'ghost_key': primary key column 'missing' does not exist",
        "table 'ghost_key': alternate key column 'nope' does not exist",
        "parent table 'nokey' has no primary key",
        "'child.a_id' has sdtype 'numerical' but 'a.id' has 'id'",
        "the foreign key has 1 column(s) but the primary key has 2",
        "child.p1 -> nowhere: unknown table 'nowhere'",
    ]
    for text in expected:
        assert any(text in p for p in problems), (text, problems)
    assert len(problems) == len(expected)
    # Every problem also appears in the message, one per line.
    assert str(info.value).count("\n  - ") == len(problems)


def test_validate_reports_a_missing_foreign_key_column_and_a_wrong_parent_key():
    m = _shop()
    # 'referred_by' is neither the primary key nor an alternate key ('email' would be valid).
    m.relationships.append({"parent_table_name": "customer", "parent_primary_key": "referred_by",
                            "child_table_name": "line", "child_foreign_key": "buyer"})
    with pytest.raises(MetadataError) as info:
        m.validate()
    assert any("expected the parent's primary key ['id'], found ['referred_by']" in p
               for p in info.value.problems)
    assert any("child column 'line.buyer' does not exist" in p for p in info.value.problems)


def test_validate_accepts_a_cycle_through_a_nullable_foreign_key():
    m = Metadata()
    for table, other in (("dept", "emp"), ("emp", "dept")):
        m.add_table(table)
        m.add_column("id", table, sdtype="id")
        m.add_column(f"{other}_id", table, sdtype="id", nullable=table == "dept")
        m.set_primary_key("id", table)
    m.add_relationship("emp", "dept", "id", "emp_id")
    m.add_relationship("dept", "emp", "id", "dept_id")
    m.validate()


def test_editing_methods():
    m = _shop()
    m.update_column("email", "customer", sdtype="categorical")
    # a new sdtype drops the old sdtype's options but keeps the physical ones
    assert m.tables["customer"]["columns"]["email"] == {"sdtype": "categorical", "max_length": 80}
    m.update_column("total", "order", computer_representation="Float")
    assert m.tables["order"]["columns"]["total"] == {"sdtype": "numerical",
                                                     "computer_representation": "Float"}
    assert m.get_column_names("order", sdtype="id") == ["customer_id", "order_no"]
    with pytest.raises(MetadataError, match="has no column 'nope'"):
        m.set_primary_key(["customer_id", "nope"], "order")
    with pytest.raises(MetadataError, match="Unknown table 'nope'"):
        m.update_column("x", "nope", sdtype="id")
    with pytest.raises(MetadataError, match="already exists"):
        m.add_relationship("customer", "order", "id", "customer_id")
    with pytest.raises(MetadataError, match="needs an sdtype"):
        m.add_column("note", "order")
    m.remove_relationship("customer", "order")
    assert m.parents("order") == []
    with pytest.raises(MetadataError, match="no relationship"):
        m.remove_relationship("customer", "order")
    m.row_counts["order"] = 3
    m.remove_table("order")
    assert "order" not in m.tables and "order" not in m.row_counts
    assert [r["child_table_name"] for r in m.relationships] == ["customer"]


def test_is_nullable_needs_every_foreign_key_column_nullable():
    m = _shop()
    rel = m.relationships[2]
    assert not m.is_nullable(rel)
    m.update_column("customer_id", "line", nullable=True)
    assert not m.is_nullable(rel)
    m.update_column("order_no", "line", nullable=True)
    assert m.is_nullable(rel)
