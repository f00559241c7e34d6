"""Categories determined by another column (a city's country) are derived, not modeled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CHINOOK_SQLITE, NORTHWIND_SQLITE

from hma_db import HMASynthesizer, load_synthesizer, read_tables, reflect
from hma_db.transform.dependencies import derive, find, learn

CITIES = {"Paris": "France", "Lyon": "France", "Berlin": "Germany", "Hamburg": "Germany",
          "Oslo": "Norway", "Rome": None}


def _places(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(list(CITIES), size=n)
    return pd.DataFrame({
        "city": city,
        "country": [CITIES[c] for c in city],
        "code": [f"c{i}" for i in range(n)],  # unique: determines everything, trivially
        "mood": rng.choice(["ok", "good", "bad"], size=n),  # independent of the city
    })


def test_find_keeps_the_most_specific_column_and_derives_the_others():
    frame = _places()
    assert find(frame, ["country", "city", "mood"], min_category_count=5) == {"country": "city"}


def test_a_nearly_unique_column_determines_nothing():
    frame = _places()
    assert find(frame, ["code", "country", "mood"], min_category_count=5) == {}


def test_a_single_counterexample_breaks_the_dependency():
    frame = _places()
    frame.loc[17, "country"] = "Spain" if frame.loc[17, "country"] != "Spain" else "Italy"
    assert find(frame, ["city", "country"], min_category_count=5) == {}


def test_the_mapping_keeps_only_emitted_categories_and_derives_with_nulls():
    frame = _places()
    frame.loc[0, ["city", "country"]] = ["Vaduz", "Liechtenstein"]  # one row: rare, never emitted
    spec = learn(frame, "city", "country", {"categories": ["Paris", "Lyon", "Berlin", "Hamburg",
                                                           "Oslo", "Rome"]})
    assert "Vaduz" not in {a for a, _ in spec["mapping"]}
    assert "Liechtenstein" not in {b for _, b in spec["mapping"]}
    values = np.array(["Oslo", "Rome", None, "Paris"], dtype=object)
    assert derive(values, spec).tolist() == ["Norway", None, None, "France"]


@pytest.fixture(scope="module")
def chinook():
    source = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(source)
    # A city is personal data by default, and so is a state found to hold the customers'
    # states; kept as categories here, as a job's categorical = true
    for column in ("BillingCity", "BillingState"):
        metadata.update_column(column, "Invoice", sdtype="categorical", pii=False)
    return metadata, read_tables(source, metadata)


def test_chinook_invoices_keep_each_city_in_its_country(chinook, tmp_path):
    metadata, data = chinook
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=4)
    synthesizer.fit(data)
    real = data["Invoice"].drop_duplicates("BillingCity").set_index("BillingCity")
    synthetic = synthesizer.sample(scale=2.0)["Invoice"]
    for column in ("BillingCountry", "BillingState"):
        expected = real[column].reindex(synthetic["BillingCity"]).to_numpy()
        got = synthetic[column].to_numpy()
        same = (got == expected) | (pd.isna(got) & pd.isna(expected))
        assert same.all(), column
    # Derived columns are not in the copula, and a JSON model derives them the same way.
    assert "BillingCountry" not in synthesizer.get_learned_distributions("Invoice")
    synthesizer.save(tmp_path / "model.json", format="json")
    synthesizer.reset_sampling(9)
    loaded = load_synthesizer(tmp_path / "model.json")
    loaded.reset_sampling(9)
    pd.testing.assert_frame_equal(synthesizer.sample(0.5)["Invoice"], loaded.sample(0.5)["Invoice"])


def test_northwind_ship_places_follow_the_ship_name():
    source = f"sqlite:///{NORTHWIND_SQLITE}"
    metadata = reflect(source)
    # A city is personal data by default; kept as a category here, as a job's categorical = true
    metadata.update_column("ship_city", "orders", sdtype="categorical")
    data = read_tables(source, metadata)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=2)
    synthesizer.fit(data)
    orders = synthesizer.sample(scale=1.0)["orders"]
    pairs = orders[["ship_city", "ship_country"]].drop_duplicates()
    real = set(map(tuple, data["orders"][["ship_city", "ship_country"]].drop_duplicates().to_numpy()))
    assert set(map(tuple, pairs.to_numpy())) <= real
