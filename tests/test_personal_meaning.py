"""Personal data by meaning, not by variety (issue 15): a column named or shaped like personal
data is generated whatever its number of distinct values, and its values (a constant included)
never reach the model file or the target."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
from click.testing import CliRunner

import hma_db
from hma_db.cli.main import cli
from hma_db.source.profiling import text_options

CITY, EMAIL, PHONE = "Realcityville", "only.person@realmail.example", "+1 555 010 0199"


@pytest.fixture
def one_valued(tmp_path) -> str:
    """80 customers who all live in one city and share one e-mail address and phone number."""
    path = tmp_path / "source.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customer (id INTEGER PRIMARY KEY, city VARCHAR(40) NOT NULL, "
                     "email VARCHAR(60), phone VARCHAR(20), contact VARCHAR(60), "
                     "kind VARCHAR(10), spent REAL)")
        conn.executemany("INSERT INTO customer VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [(i, CITY, EMAIL, PHONE, EMAIL, "retail", i * 1.25) for i in range(80)])
    return str(path)


def test_one_valued_personal_columns_are_personal_data(one_valued):
    columns = hma_db.reflect(one_valued).tables["customer"]["columns"]
    assert columns["city"] == {"sdtype": "city", "pii": True, "nullable": False, "max_length": 40}
    for name, sdtype in (("email", "email"), ("phone", "phone_number"), ("contact", "email")):
        assert columns[name]["sdtype"] == sdtype and columns[name]["pii"], name
    assert columns["kind"]["sdtype"] == "categorical"  # a constant that is not personal


def test_their_values_are_in_neither_the_model_file_nor_the_target(one_valued, tmp_path):
    model, target = tmp_path / "model.json", tmp_path / "out.sqlite"
    fitted = CliRunner().invoke(cli, ["fit", one_valued, "-o", str(model), "--seed", "4"])
    assert fitted.exit_code == 0, fitted.output
    saved = model.read_text()
    for value in (CITY, EMAIL, PHONE):
        assert value not in saved
    assert "retail" in saved  # the model does keep constants that are not personal
    cloned = CliRunner().invoke(cli, ["clone", one_valued, str(target), "--seed", "4"])
    assert cloned.exit_code == 0, cloned.output
    with sqlite3.connect(target) as conn:
        rows = pd.read_sql("SELECT * FROM customer", conn)
    assert len(rows) == 80
    for column, value in (("city", CITY), ("email", EMAIL), ("phone", PHONE), ("contact", EMAIL)):
        assert not rows[column].eq(value).any(), column
    assert rows["city"].notna().all() and rows["city"].str.len().between(1, 40).all()
    assert rows["city"].nunique() > 1  # Faker cities, not one copied value


def test_city_names_are_personal_whatever_their_count():
    base = {"sdtype": "unknown", "generator": "text", "max_length": 40, "nullable": True}
    one = pd.Series([CITY] * 10)
    assert text_options("city", base, one, 1, 100)["sdtype"] == "city"
    # Chinook's BillingCity: 53 cities over 412 invoices, which repeat like categories.
    assert text_options("BillingCity", base, one, 53, 412)["sdtype"] == "city"
    # Regions are shared by millions: a state or a country that repeats stays a category.
    assert text_options("country", base, one, 1, 100)["sdtype"] == "categorical"
    assert text_options("BillingState", base, one, 25, 412)["sdtype"] == "categorical"
