"""SDV's transformers API on HMASynthesizer: rdt transformers chosen per column, through fit,
save, load and sample (issue 19)."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from rdt.transformers import (
    AnonymizedFaker,
    FloatFormatter,
    LabelEncoder,
    PseudoAnonymizedFaker,
    RegexGenerator,
    UniformEncoder,
    UnixTimestampEncoder,
)

from hma_db import HMASynthesizer, Metadata, ModelFileError, SynthesizerInputError

N = 80


def _data() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 200, N), unit="D")
    guests = pd.DataFrame({
        "guest_id": np.arange(N), "hotel_id": rng.integers(0, 6, N),
        "email": [f"guest{i}@real-hotel.test" for i in range(N)],
        "name": rng.choice(["Ann Lee", "Bob Stone", "Cy Twombly", "Di Fox"], N),
        "code": [f"R{i:04d}" for i in range(N)],
        "fee": np.round(rng.normal(50, 10, N), 2),
        "room": rng.choice(["single", "double", "suite"], N),
        "level": rng.choice(["low", "mid", "high"], N),
        "checkin": days.strftime("%d %b %Y"),
    })
    hotels = pd.DataFrame({"hotel_id": np.arange(6), "stars": rng.integers(1, 6, 6)})
    return {"hotels": hotels, "guests": guests}


def _metadata() -> Metadata:
    return Metadata.load_from_dict({
        "tables": {
            "hotels": {"primary_key": "hotel_id", "columns": {
                "hotel_id": {"sdtype": "id"}, "stars": {"sdtype": "numerical"}}},
            "guests": {"primary_key": "guest_id", "columns": {
                "guest_id": {"sdtype": "id"}, "hotel_id": {"sdtype": "id"},
                "email": {"sdtype": "email", "pii": True}, "name": {"sdtype": "categorical"},
                "code": {"sdtype": "unknown"}, "fee": {"sdtype": "numerical"},
                "room": {"sdtype": "categorical"}, "level": {"sdtype": "categorical"},
                "checkin": {"sdtype": "datetime", "datetime_format": "%d %b %Y"}}}},
        "relationships": [{"parent_table_name": "hotels", "parent_primary_key": "hotel_id",
                           "child_table_name": "guests", "child_foreign_key": "hotel_id"}]})


CHOSEN = {
    "email": AnonymizedFaker(provider_name="internet", function_name="email"),
    "name": PseudoAnonymizedFaker(provider_name="person", function_name="name"),
    "code": RegexGenerator(regex_format="Z[0-9]{5}"),
    "fee": FloatFormatter(learn_rounding_scheme=True, enforce_min_max_values=True),
    "room": UniformEncoder(),
    "level": LabelEncoder(),
    "checkin": UnixTimestampEncoder(datetime_format="%d %b %Y", enforce_min_max_values=True),
}


@pytest.fixture(scope="module")
def fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesizer = HMASynthesizer(_metadata(), verbose=False, seed=11)
    synthesizer.update_transformers("guests", CHOSEN)
    synthesizer.fit(_data())
    return synthesizer


def _names(transformers: dict) -> dict:
    return {c: None if t is None else type(t).__name__ for c, t in transformers.items()}


def _check_sample(guests: pd.DataFrame, real: pd.DataFrame) -> None:
    # AnonymizedFaker: Faker e-mails, none of the real ones.
    assert guests["email"].str.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+").all()
    assert not guests["email"].isin(real["email"]).any()
    # PseudoAnonymizedFaker: no real name, at most one pseudonym per real name.
    assert not guests["name"].isin(real["name"]).any()
    assert 1 < guests["name"].nunique() <= real["name"].nunique()
    # RegexGenerator: the pattern, unique.
    assert guests["code"].str.fullmatch(r"Z[0-9]{5}").all() and guests["code"].is_unique
    # FloatFormatter: two decimals as learned, within the real range.
    assert np.allclose(guests["fee"], guests["fee"].round(2))
    assert guests["fee"].between(real["fee"].min(), real["fee"].max()).all()
    # UniformEncoder and LabelEncoder: the real categories only.
    assert guests["room"].isin(real["room"]).all() and guests["level"].isin(real["level"]).all()
    # UnixTimestampEncoder: the chosen format, within the real range.
    stamps = pd.to_datetime(guests["checkin"], format="%d %b %Y")
    real_stamps = pd.to_datetime(real["checkin"], format="%d %b %Y")
    assert stamps.between(real_stamps.min(), real_stamps.max()).all()


def test_each_transformer_shapes_the_sample(fitted):
    real = _data()["guests"]
    _check_sample(fitted.sample(1.0)["guests"], real)


def test_get_transformers_shows_the_chosen_and_what_hma_db_learned(fitted):
    guests = fitted.get_transformers("guests")
    assert list(guests) == list(_metadata().tables["guests"]["columns"])
    assert {c: n for c, n in _names(guests).items() if c in CHOSEN} == \
        {c: type(t).__name__ for c, t in CHOSEN.items()}
    assert guests["email"].function_name == "email" and guests["code"].regex_format == "Z[0-9]{5}"
    assert guests["fee"].learn_rounding_scheme is True
    assert guests["checkin"].datetime_format == "%d %b %Y"
    # Columns without a choice: the rdt transformer doing what hma_db learned.
    assert _names(fitted.get_transformers("hotels")) == {"hotel_id": None,
                                                        "stars": "FloatFormatter"}


@pytest.mark.parametrize("name", ["model.pkl", "model.json"])
def test_transformers_survive_save_and_load(fitted, tmp_path, name):
    path = tmp_path / name
    fitted.save(path)
    loaded = HMASynthesizer.load(path)
    before, after = fitted.get_transformers("guests"), loaded.get_transformers("guests")
    assert _names(after) == _names(before)
    assert after["name"].function_name == "name" and after["level"].__class__ is LabelEncoder
    _check_sample(loaded.sample(1.0)["guests"], _data()["guests"])
    # Kept as class name and parameters, not as objects.
    if name.endswith(".json"):
        saved = json.loads(path.read_text())["synthesizer"]["parameters"]["transformers"]["guests"]
        assert saved["code"] == {"class_name": "RegexGenerator",
                                 "parameters": saved["code"]["parameters"]}
        assert saved["code"]["parameters"]["regex_format"] == "Z[0-9]{5}"


def test_a_model_file_naming_another_class_is_refused(fitted, tmp_path):
    path = tmp_path / "model.json"
    fitted.save(path)
    state = json.loads(path.read_text())
    state["synthesizer"]["parameters"]["transformers"]["guests"]["fee"] = {
        "class_name": "os.system", "parameters": {"command": "echo hacked"}}
    path.write_text(json.dumps(state))
    with pytest.raises(ModelFileError, match="not one of AnonymizedFaker"):
        HMASynthesizer.load(path)


def test_get_transformers_needs_fit_or_auto_assign():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesizer = HMASynthesizer(_metadata(), verbose=False, seed=1)
    with pytest.raises(ValueError, match=re.escape("Use 'auto_assign_transformers' or 'fit'")):
        synthesizer.get_transformers("guests")
    synthesizer.auto_assign_transformers(_data())
    assert _names(synthesizer.get_transformers("guests"))["email"] == "AnonymizedFaker"
    synthesizer.update_transformers("guests", {"room": LabelEncoder()})
    synthesizer.auto_assign_transformers(_data())
    assert _names(synthesizer.get_transformers("guests"))["room"] == "LabelEncoder"


def test_refusals_name_the_column():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesizer = HMASynthesizer(_metadata(), verbose=False)
    with pytest.raises(SynthesizerInputError, match="'guest_id' is a key"):
        synthesizer.update_transformers("guests", {"guest_id": FloatFormatter()})
    with pytest.raises(SynthesizerInputError, match="'guests.nope' is not in the metadata"):
        synthesizer.update_transformers("guests", {"nope": FloatFormatter()})
    with pytest.raises(SynthesizerInputError, match="not present in the metadata"):
        synthesizer.update_transformers("rooms", {"fee": FloatFormatter()})
    with pytest.raises(SynthesizerInputError, match="function_kwargs=.... is not supported"):
        synthesizer.update_transformers("guests", {"email": AnonymizedFaker(
            provider_name="python", function_name="pystr", function_kwargs={"max_chars": 5})})
    with pytest.raises(SynthesizerInputError, match="transformer dict is not supported"):
        synthesizer.update_transformers("guests", {"fee": {"class": "FloatFormatter"}})


def test_set_address_columns_joins_the_columns():
    metadata = Metadata.load_from_dict({"tables": {"people": {"columns": {
        "street": {"sdtype": "street_address"}, "city": {"sdtype": "city"},
        "state": {"sdtype": "state"}}}}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesizer = HMASynthesizer(metadata, verbose=False)
    with pytest.warns(FutureWarning, match="add_column_relationship"):
        synthesizer.set_address_columns("people", ("street", "city", "state"))
    assert synthesizer.metadata.tables["people"]["column_relationships"] == [
        {"type": "address", "column_names": ["street", "city", "state"]}]
    with pytest.warns(FutureWarning), pytest.raises(SynthesizerInputError, match="'full'"):
        synthesizer.set_address_columns("people", ("city", "state"), "street_address")


def test_sdv_dictionary_constraints_with_a_custom_class():
    cag = pytest.importorskip("sdv.cag")

    class Squared(cag.ProgrammableConstraint):  # SDV's multi-table programmable constraint
        def __init__(self, column_names, table_name):
            self.column_names, self.table_name = column_names, table_name

        def fit(self, data, metadata):
            return None

        def transform(self, data):
            data[self.table_name][self.column_names] = data[self.table_name][self.column_names] ** 2
            return data

        def reverse_transform(self, data):
            table = data[self.table_name]
            table[self.column_names] = np.sqrt(table[self.column_names].clip(lower=0))
            return data

        def get_updated_metadata(self, metadata):
            return metadata

        def is_valid(self, data):
            return {t: pd.Series(True, index=f.index) for t, f in data.items()}

    data = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesizer = HMASynthesizer(_metadata(), verbose=False, seed=2)
    synthesizer.add_custom_constraint_class(Squared, "Squared")
    synthesizer.add_constraints([{"table_name": "guests", "constraint_class": "Squared",
                                  "constraint_parameters": {"column_names": ["fee"]}}])
    fee = data["guests"]["fee"].copy()
    processed = synthesizer.preprocess(data)
    np.testing.assert_allclose(processed["guests"]["fee"], fee ** 2)
    pd.testing.assert_series_equal(data["guests"]["fee"], fee)  # the caller's data is left as is
    synthesizer.fit_processed_data(processed)
    fee = synthesizer.sample(1.0)["guests"]["fee"]
    assert fee.between(0.9 * data["guests"]["fee"].min(), 1.1 * data["guests"]["fee"].max()).all()


def test_an_alternate_key_takes_unique_faker_values():
    metadata = Metadata.load_from_dict({"tables": {"users": {
        "primary_key": "user_id", "alternate_keys": ["login"], "columns": {
            "user_id": {"sdtype": "id"}, "login": {"sdtype": "id"},
            "age": {"sdtype": "numerical"}}}}})
    real = pd.DataFrame({"user_id": range(300), "login": [f"L{i:05d}" for i in range(300)],
                         "age": np.random.default_rng(0).integers(18, 80, 300)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesizer = HMASynthesizer(metadata, verbose=False, seed=3)
    with pytest.raises(SynthesizerInputError, match="'login' is an alternate key"):
        synthesizer.update_transformers("users", {"login": PseudoAnonymizedFaker(
            provider_name="internet", function_name="user_name")})
    synthesizer.update_transformers("users", {"login": AnonymizedFaker(
        provider_name="internet", function_name="email")})
    synthesizer.fit({"users": real})
    logins = synthesizer.sample(2.0)["users"]["login"]
    assert logins.is_unique and logins.str.contains("@").all()
