"""Numbers keep their round endings (prices that end in .00 or .50, salaries in whole
thousands) where the source has them, and only there; the marginal barely moves; the endings
are saved with the model and checked when loaded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import NORTHWIND_SQLITE

from hma_db import HMASynthesizer, Metadata, load_synthesizer, read_tables, reflect
from hma_db.errors import ModelFileError
from hma_db.transform import endings


def _cents(values: pd.Series) -> pd.Series:
    values = values.dropna().astype(float)
    return np.round((values - np.floor(values)) * 100).astype(int)


@pytest.fixture(scope="module")
def northwind():
    url = f"sqlite:///{NORTHWIND_SQLITE}"
    metadata = reflect(url)
    data = read_tables(url, metadata)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=11)
    synthesizer.fit(data)
    return synthesizer, data


def test_northwind_prices_keep_their_endings_and_freight_keeps_its_spread(northwind):
    synthesizer, data = northwind
    specs = synthesizer.table_transformers["products"]._specs
    assert specs["unit_price"]["endings"]["endings"][:2] == [0, 50]
    assert synthesizer.table_transformers["orders"]._specs["freight"]["endings"] is None
    out = synthesizer.sample(scale=2.0)
    real = _cents(data["products"].unit_price).isin([0, 25, 50, 95]).mean()
    fake = _cents(out["products"].unit_price).isin([0, 25, 50, 95]).mean()
    assert real > 0.7 and fake > 0.6  # 3.9% before
    freight = _cents(out["orders"].freight)
    assert freight.value_counts(normalize=True).iloc[0] < 0.1  # no ending invented
    for table, column in (("products", "unit_price"), ("orders", "freight")):
        a, b = data[table][column].astype(float), out[table][column].astype(float)
        assert abs(a.median() - b.median()) < 0.25 * a.median()
        assert b.min() >= a.min() and b.max() <= a.max()


def test_salaries_in_whole_thousands_stay_whole_and_the_mean_stays():
    rng = np.random.default_rng(0)
    salary = np.round(rng.lognormal(11, 0.3, 400) / 1000) * 1000
    salary[:20] += rng.integers(1, 999, 20)  # a few odd ones
    frame = pd.DataFrame({"id": np.arange(400), "salary": salary,
                          "age": rng.integers(20, 65, 400).astype(float) + rng.random(400)})
    metadata = Metadata.load_from_dict({"tables": {"staff": {
        "primary_key": "id", "columns": {"id": {"sdtype": "id"},
                                         "salary": {"sdtype": "numerical"},
                                         "age": {"sdtype": "numerical"}}}}})
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1)
    synthesizer.fit({"staff": frame})
    spec = synthesizer.table_transformers["staff"]._specs["salary"]["endings"]
    assert spec["cycle"] == 1000 and spec["endings"] == [0]
    out = synthesizer.sample(scale=5.0)["staff"]
    assert (out.salary % 1000 == 0).mean() > 0.9
    assert abs(out.salary.mean() / frame.salary.mean() - 1) < 0.05
    assert synthesizer.table_transformers["staff"]._specs["age"]["endings"] is None


def test_endings_only_where_they_are_concentrated():
    rng = np.random.default_rng(3)
    spread = np.round(rng.uniform(10, 100, 500), 2)
    assert endings.learn(spread, 2) is None
    few = np.round(rng.uniform(10, 100, 20)) + 0.99
    assert endings.learn(few, 2) is None  # too few values to tell
    small = np.round(rng.uniform(0.1, 5, 500), 1)  # a cycle of 1 would move them too far
    assert endings.learn(small, 1) is None
    nines = np.floor(rng.uniform(10, 100, 500)) + 0.99
    assert endings.learn(nines, 2) == {"cycle": 100, "unit": 2, "endings": [99],
                                       "shares": [1.0]}
    moved = endings.apply(spread, endings.learn(nines, 2), np.random.default_rng(0))
    assert np.allclose(np.round(moved % 1, 2), 0.99)
    assert np.abs(moved - spread).max() <= 0.5 + 1e-9


def test_endings_are_saved_with_the_model_and_checked_when_loaded(northwind, tmp_path):
    synthesizer, _ = northwind
    path = tmp_path / "northwind.hma"
    synthesizer.save(path)
    loaded = load_synthesizer(path)
    pd.testing.assert_frame_equal(loaded.sample(scale=1.0)["products"],
                                  synthesizer.sample(scale=1.0)["products"])
    state = synthesizer.table_transformers["products"].to_dict()
    for bad in ({"cycle": 0, "unit": 2, "endings": [0], "shares": [1.0]},
                {"cycle": 100, "unit": 2, "endings": [150], "shares": [0.5]},
                {"cycle": 100, "unit": 2, "endings": [0, 50], "shares": [0.9, 0.9]},
                "import os"):
        state["columns"]["unit_price"]["endings"] = bad
        with pytest.raises(ModelFileError, match="'products' has endings for column "
                                                 "'unit_price'"):
            type(synthesizer.table_transformers["products"]).from_dict(
                state, synthesizer.metadata)
