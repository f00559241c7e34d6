import pandas as pd
import pytest
from conftest import CHINOOK_SQLITE
from schema_metadata import sqlite_frames, sqlite_metadata

from hma_db import DataError, Metadata
from hma_db.schema.pii import guess_from_name, guess_from_values, is_faker_provider, words


@pytest.fixture(scope="module")
def chinook_frames():
    return sqlite_frames(CHINOOK_SQLITE)


def _orders() -> Metadata:
    m = Metadata()
    m.add_table("orders")
    m.add_column("shop", "orders", sdtype="id")
    m.add_column("no", "orders", sdtype="id")
    m.add_column("code", "orders", sdtype="categorical")
    m.set_primary_key(["shop", "no"], "orders")
    m.add_alternate_keys(["code"], "orders")
    m.add_table("lines")
    m.add_column("id", "lines", sdtype="id")
    m.add_column("shop", "lines", sdtype="id", nullable=True)
    m.add_column("no", "lines", sdtype="id", nullable=True)
    m.add_column("order_code", "lines", sdtype="categorical")
    m.set_primary_key("id", "lines")
    m.add_relationship("orders", "lines", ["shop", "no"], ["shop", "no"])
    return m


def _problems(metadata, data) -> list[str]:
    with pytest.raises(DataError) as info:
        metadata.validate_data(data)
    return info.value.problems


def test_valid_data_passes():
    orders = pd.DataFrame({"shop": [1, 1, 2], "no": [1, 2, 1], "code": ["a", "b", "c"]})
    lines = pd.DataFrame({"id": [1, 2, 3], "shop": [1, 2, None], "no": [2, 1, 5],
                          "order_code": ["a", "b", "c"]})
    _orders().validate_data({"orders": orders, "lines": lines})


def test_missing_and_extra_tables_and_columns():
    orders = pd.DataFrame({"shop": [1], "no": [1], "extra": [0]})
    problems = _problems(_orders(), {"orders": orders, "stray": pd.DataFrame()})
    assert problems == [
        "table 'lines' is in the metadata but not in the data",
        "table 'stray' is in the data but not in the metadata",
        "column 'orders.code' is in the metadata but not in the data",
        "column 'orders.extra' is in the data but not in the metadata",
    ]


def test_null_and_repeated_composite_primary_key_and_repeated_alternate_key():
    orders = pd.DataFrame({"shop": [1, 1, 1, None, 2], "no": [1, 1, 2, 3, 2],
                           "code": ["a", "a", "b", "c", None]})
    lines = pd.DataFrame({"id": [1, 1, None], "shop": [1, 1, 1], "no": [1, 1, 1],
                          "order_code": ["x", "y", "z"]})
    problems = _problems(_orders(), {"orders": orders, "lines": lines})
    assert "primary key 'orders' (shop, no) has 1 null value(s); expected none" in problems
    assert "primary key 'orders' (shop, no) has repeated values: (1.0, 1)" in problems
    assert "alternate key 'orders.code' has repeated values: 'a'" in problems
    assert "primary key 'lines.id' has 1 null value(s); expected none" in problems
    assert "primary key 'lines.id' has repeated values: 1.0" in problems
    assert len(problems) == 5


def test_orphan_foreign_keys_single_and_composite_show_a_few_values():
    m = _orders()
    m.add_table("notes")
    m.add_column("line_id", "notes", sdtype="id")
    m.add_relationship("lines", "notes", "id", "line_id")
    orders = pd.DataFrame({"shop": [1, 2], "no": [1, 1], "code": ["a", "b"]})
    lines = pd.DataFrame({"id": [1, 2, 3, 4], "shop": [1, 1, 3, None], "no": [1, 2, 1, 9],
                          "order_code": list("abcd")})
    notes = pd.DataFrame({"line_id": [1, 10, 11, 12, 13, 14, 15, 16, 16]})
    problems = _problems(m, {"orders": orders, "lines": lines, "notes": notes})
    assert problems == [
        # (None, 9) is not checked: a NULL in a composite foreign key means "no parent"
        "foreign key lines.(shop, no) -> orders: 2 row(s) reference no parent row, "
        "e.g. (1.0, 2), (3.0, 1)",
        "foreign key notes.line_id -> lines: 8 row(s) reference no parent row, "
        "e.g. 10, 11, 12, 13, 14 and 2 more",
    ]


def _one_key() -> Metadata:
    m = Metadata()
    for table, column in (("parent", "key"), ("child", "ref")):
        m.add_table(table)
        m.add_column(column, table, sdtype="id")
    m.add_column("id", "child", sdtype="id")
    m.set_primary_key("key", "parent")
    m.set_primary_key("id", "child")
    m.add_relationship("parent", "child", "key", "ref")
    return m


@pytest.mark.parametrize("key, refs, expected", [
    # increasing integers, integers in any order, floats, text: one-column keys told at once
    ([1, 2, 3], [3, 1, 1], []),
    ([3, 1, 2], [2, None, 2], []),
    ([0.5, -1.0, 2.0], [2.0, float("nan")], []),
    (["b", "a", "c"], ["a", None], []),
    ([], [], []),
    ([1, 2, 2, 3], [1], ["primary key 'parent.key' has repeated values: 2"]),
    ([5, 4, 4], [5], ["primary key 'parent.key' has repeated values: 4"]),
    ([1.0, None, 2.0], [1.0], ["primary key 'parent.key' has 1 null value(s); expected none"]),
    (["a", None, "a"], ["a"], ["primary key 'parent.key' has 1 null value(s); expected none",
                               "primary key 'parent.key' has repeated values: 'a'"]),
    ([1, 2], [2, 3, None, 3], ["foreign key child.ref -> parent: 2 row(s) reference no parent "
                               "row, e.g. 3.0"]),
])
def test_one_column_keys_and_references(key, refs, expected):
    data = {"parent": pd.DataFrame({"key": pd.Series(key, dtype=object if not key else None)
                                    .infer_objects()}),
            "child": pd.DataFrame({"id": range(len(refs)), "ref": pd.Series(
                refs, dtype=object if not refs else None).infer_objects()})}
    if expected:
        assert _problems(_one_key(), data) == expected
    else:
        _one_key().validate_data(data)


def test_not_a_dataframe():
    problems = _problems(_orders(), {"orders": [1, 2], "lines": None})
    assert problems == ["table 'orders': expected a pandas DataFrame, found list",
                        "table 'lines': expected a pandas DataFrame, found NoneType"]


def test_chinook_data_matches_its_declared_schema(chinook_frames):
    metadata = sqlite_metadata(CHINOOK_SQLITE)
    metadata.validate()
    metadata.validate_data(chinook_frames)
    broken = dict(chinook_frames)
    broken["Invoice"] = chinook_frames["Invoice"].iloc[1:]
    problems = _problems(metadata, broken)
    assert problems == ["foreign key InvoiceLine.InvoiceId -> Invoice: 2 row(s) reference no "
                        "parent row, e.g. 1"]


def test_detect_from_dataframes_on_chinook(chinook_frames):
    m = Metadata.detect_from_dataframes(chinook_frames)
    assert sorted(m.tables) == sorted(chinook_frames)
    assert m.primary_key("Invoice") == ["InvoiceId"]
    assert m.primary_key("PlaylistTrack") == []  # composite keys are not guessed from data
    found = {(r["child_table_name"], r["child_foreign_key"], r["parent_table_name"])
             for r in m.relationships}
    assert found == {
        ("Album", "ArtistId", "Artist"), ("Track", "AlbumId", "Album"),
        ("Track", "GenreId", "Genre"), ("Track", "MediaTypeId", "MediaType"),
        ("Invoice", "CustomerId", "Customer"), ("InvoiceLine", "InvoiceId", "Invoice"),
        ("InvoiceLine", "TrackId", "Track"), ("PlaylistTrack", "PlaylistId", "Playlist"),
        ("PlaylistTrack", "TrackId", "Track"),
    }
    customer = m.tables["Customer"]["columns"]
    assert customer["Email"] == {"sdtype": "email", "pii": True, "nullable": False}
    assert customer["Phone"]["sdtype"] == "phone_number" and customer["Phone"]["pii"]
    assert customer["Company"]["nullable"] is True
    assert m.tables["Invoice"]["columns"]["Total"]["sdtype"] == "numerical"
    assert m.tables["Invoice"]["columns"]["InvoiceDate"]["sdtype"] == "datetime"
    assert m.tables["MediaType"]["columns"]["Name"]["sdtype"] == "categorical"
    assert m.tables["Track"]["columns"]["Name"] == {"sdtype": "unknown", "generator": "text",
                                                    "nullable": False}
    assert m.tables["Employee"]["columns"]["BirthDate"]["sdtype"] == "datetime"
    m.validate()
    m.validate_data(chinook_frames)


def test_detect_boolean_and_value_based_pii():
    frame = pd.DataFrame({"id": range(50), "active": [True, False] * 25,
                          "contact": [f"user{i}@example.org" for i in range(50)],
                          "blob": [f"free text number {i}" for i in range(50)]})
    columns = Metadata.detect_from_dataframes({"t": frame}).tables["t"]["columns"]
    assert columns["id"]["sdtype"] == "id"
    assert columns["active"]["sdtype"] == "boolean"
    assert columns["contact"] == {"sdtype": "email", "pii": True, "nullable": False}
    assert columns["blob"]["sdtype"] == "unknown"


@pytest.mark.parametrize("name, provider", [
    ("Email", "email"), ("e_mail", "email"), ("FirstName", "first_name"),
    ("surname", "last_name"), ("BillingPostalCode", "postcode"), ("zip", "postcode"),
    ("mobile_no", "phone_number"), ("Fax", "phone_number"), ("ContactName", "name"),
    ("company_name", "company"), ("ssn", "ssn"), ("ip_address", "ipv4"),
    ("BillingAddress", "street_address"), ("City", "city"), ("birth_date", "date_of_birth"),
    ("homepage", "url"), ("UserName", "user_name"), ("iban", "iban"),
    ("Total", None), ("Name", None), ("ReportsTo", None), ("Milliseconds", None),
])
def test_pii_guess_from_name(name, provider):
    assert guess_from_name(name) == provider


def test_pii_guess_from_values_and_helpers():
    assert guess_from_values(["a@b.org", "c.d+e@f.co.uk", None]) == "email"
    assert guess_from_values(["+1 (555) 010-2000", "555 123 4567"]) == "phone_number"
    assert guess_from_values(["10.0.0.1", "192.168.1.20"]) == "ipv4"
    assert guess_from_values(["https://example.org/a", "http://x.y"]) == "url"
    assert guess_from_values(["a@b.org", "not an email", "x", "y"]) is None
    assert guess_from_values([None, None]) is None
    # Months and dates written as text are not phone numbers (a payslip's '2026-01' period
    # came out as '(909)915-7212x01883'), nor are short codes.
    assert guess_from_values(["2026-01", "2026-02", "2025-12"]) is None
    assert guess_from_values(["2024-01-05", "2023/12/31", "2024.02.29"]) is None
    assert guess_from_values(["123-45", "99-1"]) is None
    assert guess_from_values(["030-0074321", "4346321723"]) == "phone_number"
    assert words("BillingPostalCode") == "billing postal code"
    assert words("HTTPServer_url") == "http server url"
    assert is_faker_provider("email") and is_faker_provider("phone_number")
    assert not is_faker_provider("no_such_provider") and not is_faker_provider("_private")
