"""Code written for SDV 1.x's multi-table API runs against hma_db with its imports changed.

Each test states a behaviour SDV documents for ``Metadata`` or ``HMASynthesizer`` (argument order,
detection, the "metadata changed" warning, ``get_info``, error classes...) and checks hma_db's.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.metadata
import pickle
import re
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from hma_db import (
    DataError,
    HMASynthesizer,
    InvalidDataError,
    Metadata,
    MetadataError,
    NotFittedError,
    SamplingError,
    SynthesizerInputError,
    __version__,
)


def installed_sdv_version() -> str | None:
    try:
        return importlib.metadata.version("sdv")
    except importlib.metadata.PackageNotFoundError:
        return None


SAVE_WARNING = re.escape("We strongly recommend saving the metadata using 'save_to_json'")


def _shop() -> Metadata:
    return Metadata.load_from_dict({
        "tables": {
            "users": {"primary_key": "user_id", "columns": {
                "user_id": {"sdtype": "id"}, "age": {"sdtype": "numerical"},
                "city": {"sdtype": "city"}, "country": {"sdtype": "country"}}},
            "orders": {"primary_key": "order_id", "columns": {
                "order_id": {"sdtype": "id"}, "user_id": {"sdtype": "id"},
                "total": {"sdtype": "numerical"}, "status": {"sdtype": "categorical"}}},
        },
        "relationships": [{"parent_table_name": "users", "parent_primary_key": "user_id",
                           "child_table_name": "orders", "child_foreign_key": "user_id"}],
    })


def _shop_data(rows: int = 40, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"user_id": np.arange(1, rows + 1), "age": rng.integers(18, 80, rows),
                          "city": "Lyon", "country": "France"})
    orders = pd.DataFrame({"order_id": np.arange(1, 3 * rows + 1),
                           "user_id": rng.integers(1, rows + 1, 3 * rows),
                           "total": rng.gamma(2.0, 30.0, 3 * rows).round(2),
                           "status": rng.choice(["new", "paid", "sent"], 3 * rows)})
    return {"users": users, "orders": orders}


# ------------------------------------------------------------------------------- loading
def test_load_from_dict_reads_multi_and_single_table_dicts():
    assert _shop().to_dict()["tables"]["orders"]["primary_key"] == "order_id"
    single = Metadata.load_from_dict({"columns": {"a": {"sdtype": "numerical"}}},
                                     single_table_name="things")
    assert list(single.tables) == ["things"]
    assert list(Metadata.load_from_dict({"columns": {}}).tables) == ["table"]


def test_load_from_dict_names_columns_by_strings():
    metadata = Metadata.load_from_dict({
        "tables": {"0": {"columns": {1: {"sdtype": "id"}, 2: {"sdtype": "numerical"}},
                         "primary_key": 1},
                   "1": {"columns": {3: {"sdtype": "id"}}}},
        "relationships": [{"parent_table_name": "0", "parent_primary_key": 1,
                           "child_table_name": "1", "child_foreign_key": 3}]})
    assert list(metadata.tables["0"]["columns"]) == ["1", "2"]
    assert metadata.tables["0"]["primary_key"] == "1"
    assert metadata.relationships[0]["child_foreign_key"] == "3"
    metadata.validate()


def test_tables_read_and_write_their_options_as_attributes():
    metadata = _shop()
    users = metadata.tables["users"]
    assert users.primary_key == "user_id" and users.columns["age"] == {"sdtype": "numerical"}
    assert users.alternate_keys == [] and users.sequence_key is None
    users.alternate_keys = ["city"]
    assert metadata.to_dict()["tables"]["users"]["alternate_keys"] == ["city"]
    with pytest.raises(AttributeError):
        users.no_such_option  # noqa: B018 - the access is the test


def test_metadata_pickles_and_copies_with_its_tables():
    metadata = _shop()
    for other in (pickle.loads(pickle.dumps(metadata)), copy.deepcopy(metadata)):
        assert other == metadata and other.tables["users"].primary_key == "user_id"


def test_assigned_tables_read_as_attributes_too():
    metadata = Metadata()
    metadata.tables = {"t": {"columns": {"a": {"sdtype": "id"}}, "primary_key": "a"}}
    metadata.tables.update({"u": {"columns": {}}})
    assert metadata.tables["t"].primary_key == "a" and metadata.tables["u"].columns == {}
    metadata.validate()


# ---------------------------------------------------------------------- argument order
def test_sdv_argument_order_positional_and_keywords():
    metadata = _shop()
    metadata.add_column("email", "users", sdtype="email", pii=True)
    metadata.update_column("email", "users", sdtype="email", pii=False)
    metadata.update_column(column_name="status", table_name="orders", sdtype="categorical")
    metadata.set_primary_key("email", "users")
    metadata.set_primary_key(table_name="users", column_name="user_id")
    metadata.add_alternate_keys(["email"], "users")
    assert metadata.tables["users"]["columns"]["email"] == {"sdtype": "email", "pii": False}
    assert metadata.tables["users"]["alternate_keys"] == ["email"]


def test_table_name_may_be_left_out_when_there_is_one_table():
    metadata = Metadata.load_from_dict({"columns": {"a": {"sdtype": "numerical"}}})
    metadata.add_column("b", sdtype="categorical")
    metadata.update_column("a", sdtype="categorical")
    assert list(metadata.tables["table"]["columns"]) == ["a", "b"]
    with pytest.raises(MetadataError, match="has 2 tables, so name the table"):
        _shop().update_column("age", sdtype="categorical")


def test_old_argument_order_still_works_with_a_deprecation_warning():
    metadata = _shop()
    with pytest.warns(DeprecationWarning, match=r"write update_column\('age', 'users'\)") as got:
        metadata.update_column("users", "age", sdtype="categorical")
    assert got[0].filename == __file__  # the warning points at the call
    with pytest.warns(DeprecationWarning, match="add_column"):
        metadata.add_column("orders", "note", sdtype="categorical")
    with pytest.warns(DeprecationWarning, match="add_alternate_keys") as got:
        metadata.add_alternate_keys("orders", ["note"])
    assert got[0].filename == __file__
    assert metadata.tables["users"]["columns"]["age"]["sdtype"] == "categorical"
    assert "note" in metadata.tables["orders"]["columns"]
    assert metadata.tables["orders"]["alternate_keys"] == ["note"]


def test_a_call_that_reads_both_ways_takes_sdv_order_without_warning():
    # A column named like another table: (column, table) is valid, so it is SDV's order.
    metadata = Metadata.load_from_dict({"tables": {
        "users": {"columns": {"orders": {"sdtype": "numerical"}}},
        "orders": {"columns": {"users": {"sdtype": "numerical"}}}}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metadata.update_column("orders", "users", sdtype="categorical")
    assert metadata.tables["users"]["columns"]["orders"]["sdtype"] == "categorical"
    assert metadata.tables["orders"]["columns"]["users"]["sdtype"] == "numerical"


# ------------------------------------------------------------------------- new methods
def test_column_methods():
    metadata = _shop()
    metadata.update_columns(["age", "total"][:1], "users", sdtype="categorical")
    metadata.update_columns_metadata({"total": {"computer_representation": "Float"},
                                      "status": {"sdtype": "categorical"}}, "orders")
    assert metadata.tables["users"]["columns"]["age"] == {"sdtype": "categorical"}
    assert metadata.tables["orders"]["columns"]["total"]["computer_representation"] == "Float"
    assert metadata.get_column_names("orders", sdtype="id") == ["order_id", "user_id"]
    metadata.remove_column("status", "orders")
    assert "status" not in metadata.tables["orders"]["columns"]
    with pytest.raises(MetadataError, match="part of a key or relationship"):
        metadata.remove_column("user_id", "orders")
    table = metadata.get_table_metadata("orders")
    table.columns["total"] = {"sdtype": "categorical"}  # a copy: the metadata is unchanged
    assert metadata.tables["orders"]["columns"]["total"]["sdtype"] == "numerical"


def test_column_relationships_and_sequence_keys_are_kept():
    metadata = _shop()
    metadata.add_column_relationship("address", ["city", "country"], "users")
    metadata.set_sequence_key("user_id", "orders")
    metadata.set_sequence_index("total", "orders")
    saved = metadata.to_dict()["tables"]
    assert saved["users"]["column_relationships"] == [
        {"type": "address", "column_names": ["city", "country"]}]
    assert (saved["orders"]["sequence_key"], saved["orders"]["sequence_index"]) == \
        ("user_id", "total")
    with pytest.raises(MetadataError, match="Unknown column relationship type"):
        metadata.add_column_relationship("street", ["city"], "users")
    metadata.remove_column("city", "users")
    assert metadata.tables["users"]["column_relationships"] == []


def test_remove_relationship_and_table():
    metadata = _shop()
    metadata.remove_relationship("users", "orders")
    assert metadata.relationships == []
    metadata.remove_table("orders")
    assert list(metadata.tables) == ["users"]


def test_anonymize_renames_tables_and_columns_and_keeps_the_keys():
    anonymized = _shop().anonymize()
    assert list(anonymized.tables) == ["table1", "table2"]
    assert anonymized.tables["table2"]["primary_key"] == "col1"
    assert anonymized.relationships == [{
        "parent_table_name": "table1", "child_table_name": "table2",
        "parent_primary_key": "col1", "child_foreign_key": "col2"}]
    anonymized.validate()


def test_visualize_needs_graphviz_or_says_so():
    try:
        import graphviz  # noqa: F401
    except ImportError:
        with pytest.raises(MetadataError, match="optional 'graphviz' package"):
            _shop().visualize()
    else:
        source = _shop().visualize().source
        assert "users -> orders" in source and "total : numerical" in source


def test_validate_table_checks_one_table():
    metadata = _shop()
    data = _shop_data()
    metadata.validate_table(data["users"], "users")
    with pytest.raises(InvalidDataError, match="repeated values"):
        metadata.validate_table(pd.concat([data["users"]] * 2), "users")


# ------------------------------------------------------------------------------ detection
def test_detect_from_dataframes_on_the_class_and_on_an_instance():
    data = {"users": pd.DataFrame({"id": [1, 2, 3], "score": [1.5, 2.5, 3.0]}),
            "visits": pd.DataFrame({"visit_id": [1, 2, 3, 4], "id": [1, 1, 2, 3]})}
    detected = Metadata.detect_from_dataframes(data)
    assert detected.tables["users"].primary_key == "id"
    assert detected.relationships[0]["child_table_name"] == "visits"
    other = Metadata()
    assert other.detect_from_dataframes(data) is other
    assert other.to_dict() == detected.to_dict()
    keys_only = Metadata.detect_from_dataframes(data, infer_keys=None)
    assert keys_only.relationships == [] and keys_only.tables["users"].primary_key is None


def test_detect_table_from_dataframe_names_columns_by_strings():
    metadata = Metadata()
    metadata.detect_table_from_dataframe("t", pd.DataFrame({1: [1.0, 2.0], "b": ["x", "y"]}))
    assert list(metadata.tables["t"]["columns"]) == ["1", "b"]
    metadata.detect_table_from_dataframe(table_name="u", data=pd.DataFrame({"c": [1, 2]}),
                                         infer_sdtypes=False)
    assert metadata.tables["u"]["columns"]["c"]["sdtype"] == "unknown"
    with pytest.raises(MetadataError, match="already exists"):
        metadata.detect_table_from_dataframe("t", pd.DataFrame({"a": [1]}))


def test_single_table_detection_and_key_removal(tmp_path):
    metadata = Metadata.detect_from_dataframe(pd.DataFrame({"id": [1, 2], "x": [0.5, 1.5]}))
    assert metadata.get_column_names() == ["id", "x"]
    assert metadata.get_table_metadata().primary_key == "id"
    with pytest.raises(MetadataError, match="column_name_match"):
        Metadata.detect_from_dataframes({}, foreign_key_inference_algorithm="data_match")
    shop = _shop()
    shop.remove_primary_key("users")
    assert shop.tables["users"].primary_key is None and shop.relationships == []
    path = tmp_path / "shop.json"
    shop.save_to_json(path)
    with pytest.raises(MetadataError, match="mode='overwrite'"):
        shop.save_to_json(path)
    shop.remove_table("orders")
    shop.save_to_json(path, mode="overwrite")
    assert list(Metadata.load_from_json(path).tables) == ["users"]


# ------------------------------------------------------------------- the "changed" warning
def test_edited_metadata_warns_once_when_the_synthesizer_is_built(tmp_path):
    metadata = _shop()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HMASynthesizer(metadata, verbose=False)  # loaded, not edited: no warning
    metadata.update_column("age", "users", sdtype="categorical")
    with pytest.warns(UserWarning, match=SAVE_WARNING):
        HMASynthesizer(metadata, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HMASynthesizer(metadata, verbose=False)  # warned once already
    assert all(not table._updated for table in metadata.tables.values())
    metadata.add_column("note", "users", sdtype="categorical")
    metadata.save_to_json(tmp_path / "shop.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HMASynthesizer(metadata, verbose=False)  # saved: replicable


def test_detected_metadata_warns():
    metadata = Metadata.detect_from_dataframes(_shop_data())
    with pytest.warns(UserWarning, match=SAVE_WARNING):
        HMASynthesizer(metadata, verbose=False)


# ------------------------------------------------------------------------- synthesizer
class SdvLikeMetadata:
    """What SDV's ``Metadata`` offers hma_db: its dict."""

    def to_dict(self):
        return _shop().to_dict()


def test_the_synthesizer_takes_any_metadata_with_to_dict_or_a_dict():
    for metadata in (SdvLikeMetadata(), _shop().to_dict()):
        synthesizer = HMASynthesizer(metadata, verbose=False)
        assert synthesizer.get_metadata() == _shop()
    with pytest.raises(SynthesizerInputError, match="anything with to_dict"):
        HMASynthesizer(42)


def test_get_info_has_sdv_keys_and_dates():
    synthesizer = HMASynthesizer(_shop(), verbose=False, seed=1)
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    assert synthesizer.get_info() == {"class_name": "HMASynthesizer", "creation_date": today,
                                      "is_fit": False, "last_fit_date": None,
                                      "fitted_sdv_version": None}
    synthesizer.fit(_shop_data())
    info = synthesizer.get_info()
    assert (info["is_fit"], info["last_fit_date"]) == (True, today)
    assert synthesizer.fitted_version == __version__
    assert info["fitted_sdv_version"] == (installed_sdv_version() or __version__)


def test_the_fit_is_stamped_with_the_sdv_installed_beside_it(tmp_path, monkeypatch):
    # A distribution's metadata on sys.path is what importlib.metadata reads: an installed
    # "sdv" 9.9.9 without any of its code.
    info = tmp_path / "sdv-9.9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sdv\nVersion: 9.9.9\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    synthesizer = HMASynthesizer(_shop(), verbose=False, seed=1)
    synthesizer.fit(_shop_data())
    assert synthesizer.get_info()["fitted_sdv_version"] == "9.9.9"
    synthesizer.save(tmp_path / "model.pkl")
    shutil.rmtree(info)  # the stamp comes from the model file, not from what is installed now
    assert installed_sdv_version() != "9.9.9"
    loaded = HMASynthesizer.load(tmp_path / "model.pkl")
    assert (loaded.get_info()["fitted_sdv_version"], loaded.fitted_version) == \
        ("9.9.9", __version__)


def test_get_parameters_gives_the_locales_as_given():
    assert HMASynthesizer(_shop(), locales="fr_CA", verbose=False).get_parameters() == \
        {"locales": "fr_CA", "verbose": False}
    assert HMASynthesizer(_shop(), seed=4).get_parameters() == \
        {"locales": ["en_US"], "verbose": True, "seed": 4}


def test_fit_processed_data_twice_and_sample_scale_and_reset_sampling():
    synthesizer = HMASynthesizer(_shop(), verbose=False, seed=3)
    processed = synthesizer.preprocess(_shop_data())
    synthesizer.fit_processed_data(processed)
    synthesizer.fit_processed_data(processed)
    first = synthesizer.sample_scale(0.5)
    synthesizer.reset_sampling()
    again = synthesizer.sample(scale=0.5)
    assert all(first[t].equals(again[t]) for t in first)
    assert len(first["orders"]) == 60


def test_a_scale_that_leaves_a_table_one_row_warns():
    synthesizer = HMASynthesizer(_shop(), verbose=False, seed=2)
    synthesizer.fit(_shop_data(rows=40))
    with pytest.warns(UserWarning, match=re.escape("The 'scale' parameter is too small")):
        small = synthesizer.sample(0.01)
    assert len(small["users"]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        synthesizer.sample(0.1)  # 4 users, 12 orders


def test_output_columns_follow_the_metadata_and_keep_non_string_labels():
    metadata = Metadata.load_from_dict({"tables": {"t": {"columns": {
        0: {"sdtype": "numerical"}, "b": {"sdtype": "categorical"}, 2: {"sdtype": "numerical"}}}}})
    frame = pd.DataFrame({2: np.arange(30.0), "b": ["x", "y", "z"] * 10, 0: np.arange(30.0) * 2})
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=0)
    synthesizer.validate({"t": frame})
    synthesizer.fit({"t": frame})
    assert synthesizer.sample()["t"].columns.tolist() == [0, "b", 2]


def test_regex_formats_sdv_refuses():
    complex_regex = Metadata.load_from_dict({"tables": {"t": {"columns": {
        "id": {"sdtype": "id", "regex_format": "(10|20)[0-9]{4}"}}}}})
    with pytest.raises(SynthesizerInputError, match="do not currently support complex regex"):
        HMASynthesizer(complex_regex)
    for regex, refused in (("[0-9]{3}", True), (r"\d+", True), ("0+", True), ("[1-9]{5}", False),
                           ("ID_[0-9]{3}", False), ("[^0-9]", False)):
        metadata = Metadata.load_from_dict({"tables": {"t": {"primary_key": "id", "columns": {
            "id": {"sdtype": "id", "regex_format": regex}, "x": {"sdtype": "numerical"}}}}})
        synthesizer = HMASynthesizer(metadata, verbose=False)
        data = {"t": pd.DataFrame({"id": [1, 2, 3], "x": [1.0, 2.0, 3.0]})}
        if refused:
            with pytest.raises(InvalidDataError, match='allows it to start with "0"'):
                synthesizer.fit(data)
        else:
            synthesizer.validate(data)


# ---------------------------------------------------------------------------- errors
def test_error_classes_sdv_callers_catch():
    assert InvalidDataError is DataError
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, SamplingError)
    synthesizer = HMASynthesizer(_shop(), verbose=False)
    with pytest.raises(SamplingError, match="This synthesizer has not been fitted"):
        synthesizer.sample(1)
    with pytest.raises(ValueError, match="not been fitted"):
        synthesizer.get_learned_distributions("users")
    with pytest.raises(SynthesizerInputError, match="get_loss_values is not applicable"):
        synthesizer.get_loss_values("users")
    with pytest.raises(InvalidDataError, match="repeated values"):
        synthesizer.fit({"users": pd.concat([_shop_data()["users"]] * 2),
                         "orders": _shop_data()["orders"]})


# ------------------------------------------------------------------- keys and sdtypes
def _keyed(regex: str) -> tuple[Metadata, dict[str, pd.DataFrame]]:
    metadata = Metadata.load_from_dict({
        "tables": {
            "t": {"primary_key": "id", "columns": {"id": {"sdtype": "id", "regex_format": regex},
                                                    "x": {"sdtype": "numerical"}}},
            "c": {"primary_key": "cid", "columns": {"cid": {"sdtype": "id"},
                                                     "tid": {"sdtype": "id"}}}},
        "relationships": [{"parent_table_name": "t", "parent_primary_key": "id",
                           "child_table_name": "c", "child_foreign_key": "tid"}]})
    data = {"t": pd.DataFrame({"id": range(1, 31), "x": np.arange(30.0)}),
            "c": pd.DataFrame({"cid": range(60), "tid": [1 + i % 30 for i in range(60)]})}
    return metadata, data


@pytest.mark.parametrize(("regex", "digits"), [("[1-9]{17}", 17), ("[1-9][0-9]{20}", 21)])
def test_an_integer_id_follows_its_regex_format(regex, digits, tmp_path):
    metadata, data = _keyed(regex)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=4)
    synthesizer.fit(data)
    path = tmp_path / "model.json"
    synthesizer.save(path)
    for out in (synthesizer.sample(1.0), HMASynthesizer.load(path).sample(1.0)):
        ids = out["t"]["id"]
        assert ids.map(lambda v: isinstance(v, (int, np.integer))).all() and ids.is_unique
        assert ids.astype(str).str.fullmatch(regex).all()
        assert (ids.astype(str).str.len() == digits).all()
        assert out["c"]["tid"].isin(ids).all()  # children reference the patterned keys
    assert str(out["t"]["id"].dtype) == ("int64" if digits <= 18 else "object")


def test_an_int64_key_whose_regex_overflows_it_warns_naming_the_key():
    metadata, data = _keyed("[1-9]{21}")
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=4)
    synthesizer.fit(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = synthesizer.sample(1.0)
    messages = [str(w.message) for w in caught]
    assert messages == [
        "The real data in 't' and column 'id' was stored as 'int64' but the synthetic data "
        "overflowed when casting back to this type. If this is a problem, please check your "
        "input data and metadata settings."]
    assert out["c"]["tid"].isin(out["t"]["id"]).all()
    metadata, data = _keyed("[1-9]{17}")  # fits int64: no warning
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=4)
    synthesizer.fit(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        synthesizer.sample(1.0)
    assert not caught


def test_keys_beyond_64_bits_in_the_source_stay_exact():
    # Python integers of 20 digits (pandas keeps them as objects) and a 20-digit regex.
    metadata, _ = _keyed("[1-9]{20}")
    big = 99999999999999999990
    data = {"t": pd.DataFrame({"id": [big + i for i in range(30)], "x": np.arange(30.0)}),
            "c": pd.DataFrame({"cid": range(60), "tid": [big + i % 30 for i in range(60)]})}
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=4)
    synthesizer.fit(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = synthesizer.sample(1.0)
    assert not caught
    ids = out["t"]["id"]
    assert ids.map(lambda v: type(v) is int).all() and ids.is_unique
    assert ids.astype(str).str.fullmatch("[1-9]{20}").all()
    assert out["c"]["tid"].isin(ids).all()


def test_postal_code_is_an_sdtype():
    metadata = Metadata()
    metadata.add_table("t")
    metadata.add_column("zip", "t", sdtype="postal_code")
    metadata.validate()
    real = pd.DataFrame({"zip": [f"{10000 + 7 * i}" for i in range(40)]})
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=2)
    synthesizer.fit({"t": real})
    zips = synthesizer.sample(1.0)["t"]["zip"]
    assert zips.str.fullmatch(r"\d{5}").all() and not zips.isin(real["zip"]).all()


def test_sdv_dictionary_constraints_name_hma_db_classes():
    data = {"p": pd.DataFrame({"id": range(1, 21), "v": np.linspace(1.0, 3.0, 20)}),
            "c": pd.DataFrame({"id": range(60), "pid": [1 + i % 20 for i in range(60)],
                               "low": np.arange(60.0), "high": np.arange(60.0) + 5,
                               "dept": ["HR", "IT", "Ops"] * 20,
                               "office": ["Boston", "NYC", "LA"] * 20})}
    metadata = Metadata.load_from_dict({
        "tables": {
            "p": {"primary_key": "id", "columns": {"id": {"sdtype": "id"},
                                                    "v": {"sdtype": "numerical"}}},
            "c": {"primary_key": "id", "columns": {
                "id": {"sdtype": "id"}, "pid": {"sdtype": "id"}, "low": {"sdtype": "numerical"},
                "high": {"sdtype": "numerical"}, "dept": {"sdtype": "categorical"},
                "office": {"sdtype": "categorical"}}}},
        "relationships": [{"parent_table_name": "p", "parent_primary_key": "id",
                           "child_table_name": "c", "child_foreign_key": "pid"}]})
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=5, find_rules=False)
    synthesizer.add_constraints(constraints=[
        {"constraint_class": "Inequality", "table_name": "c",
         "constraint_parameters": {"low_column_name": "low", "high_column_name": "high"}},
        {"constraint_class": "FixedCombinations", "table_name": "c",
         "constraint_parameters": {"column_names": ["dept", "office"]}}])
    assert [type(c).__name__ for c in synthesizer.get_constraints()] == [
        "Inequality", "FixedCombinations"]
    synthesizer.fit(data)
    out = synthesizer.sample(1.0)["c"]
    assert (out["low"] <= out["high"]).all()
    pairs = set(zip(data["c"]["dept"], data["c"]["office"], strict=True))
    assert set(zip(out["dept"], out["office"], strict=True)) <= pairs
    with pytest.raises(SynthesizerInputError):
        synthesizer.add_constraints([{"constraint_class": "NoSuchRule", "table_name": "c",
                                      "constraint_parameters": {}}])



def test_fixed_combinations_all_rare_sample_known_pairs():
    # Each pair is seen once: the category model never emits a rare code, so what it draws must
    # still become one of the real pairs (it used to index past the list).
    data = {"p": pd.DataFrame({"id": [1, 2, 3]}),
            "c": pd.DataFrame({"id": range(4), "pid": [1, 2, 2, 1],
                               "dept": ["HR", "IT", "HR", "Finance"],
                               "office": ["Boston", "NYC", "LA", "Chicago"]})}
    metadata = Metadata.load_from_dict({
        "tables": {
            "p": {"primary_key": "id", "columns": {"id": {"sdtype": "id"}}},
            "c": {"primary_key": "id", "columns": {
                "id": {"sdtype": "id"}, "pid": {"sdtype": "id"},
                "dept": {"sdtype": "categorical"}, "office": {"sdtype": "categorical"}}}},
        "relationships": [{"parent_table_name": "p", "parent_primary_key": "id",
                           "child_table_name": "c", "child_foreign_key": "pid"}]})
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1)
    synthesizer.add_constraints([{"constraint_class": "FixedCombinations", "table_name": "c",
                                  "constraint_parameters": {"column_names": ["dept", "office"]}}])
    synthesizer.fit(data)
    out = synthesizer.sample(5.0)["c"]
    assert len(out) > 0
    pairs = set(zip(data["c"]["dept"], data["c"]["office"], strict=True))
    assert set(zip(out["dept"], out["office"], strict=True)) <= pairs


def test_a_tiny_table_samples_its_categories_and_a_larger_one_hides_rare_ones():
    # 3 rows: no value can reach min_category_count, so the values come out as SDV gives them;
    # in 40 rows the value seen once still never comes out, nor the value of a one-row table.
    metadata = Metadata.load_from_dict({"tables": {
        "small": {"columns": {"dept": {"sdtype": "categorical"}}},
        "one": {"columns": {"dept": {"sdtype": "categorical"}}},
        "big": {"columns": {"dept": {"sdtype": "categorical"}}}}})
    data = {"small": pd.DataFrame({"dept": ["HR", "IT", "Ops"]}),
            "one": pd.DataFrame({"dept": ["Secret"]}),
            "big": pd.DataFrame({"dept": ["HR"] * 20 + ["IT"] * 19 + ["Secret"]})}
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=3)
    synthesizer.fit(data)
    out = synthesizer.sample(10.0)
    assert out["small"]["dept"].isin(["HR", "IT", "Ops"]).all()
    assert out["small"]["dept"].nunique() > 1
    assert out["big"]["dept"].isin(["HR", "IT"]).all()
    assert not out["one"]["dept"].isin(["Secret"]).any()

# ---------------------------------------------------------------------- distributions
def test_a_named_distribution_is_used_as_asked():
    rng = np.random.default_rng(0)
    metadata = Metadata.load_from_dict({"tables": {"t": {"columns": {
        "a": {"sdtype": "numerical"}, "b": {"sdtype": "numerical"}}}}})
    data = {"t": pd.DataFrame({"a": rng.normal(0, 1, 400), "b": rng.exponential(1, 400)})}
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1)
    synthesizer.set_table_parameters("t", {"default_distribution": "uniform",
                                           "numerical_distributions": {"b": "norm"}})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing fell back
        synthesizer.fit(data)
    learned = synthesizer.get_learned_distributions("t")
    assert {c: v["distribution"] for c, v in learned.items()} == {"a": "uniform", "b": "norm"}
    assert not any("fallback_from" in v for v in learned.values())


def test_only_a_numerical_failure_replaces_a_named_distribution():
    from hma_db.model.copula import fit_marginal

    values = np.random.default_rng(1).permutation(np.r_[np.random.default_rng(2).normal(
        0, 1, 50), 1e300])
    with pytest.warns(UserWarning, match="Column 'fee': the distribution 'gamma' asked for "
                                         "could not be fitted"):
        fitted = fit_marginal("gamma", values, named=True, column="fee")
    assert fitted["distribution"] != "gamma" and fitted["requested"] == "gamma"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a default falls back quietly
        assert fit_marginal("gamma", values)["distribution"] != "gamma"


def test_one_value_and_nulls_is_modeled_not_constant():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 400)
    metadata = Metadata.load_from_dict({"tables": {"t": {"columns": {
        "a": {"sdtype": "numerical"}, "b": {"sdtype": "numerical"},
        "c": {"sdtype": "categorical"}}}}})
    data = {"t": pd.DataFrame({"a": a, "b": np.where(a > 0, 5.0, np.nan),
                               "c": np.where(a > 0, "x", None)})}
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1)
    synthesizer.fit(data)
    assert set(synthesizer.get_learned_distributions("t")) == {"a", "b", "c"}
    out = synthesizer.sample(1.0)["t"]
    assert set(out["b"].dropna()) == {5.0} and set(out["c"].dropna()) == {"x"}
    assert 0.35 < out["b"].isna().mean() < 0.65
    # Where the nulls fall follows the modeled column (at random it would agree half the time).
    assert ((out["a"] > 0) == out["b"].notna()).mean() > 0.65
    assert ((out["a"] > 0) == out["c"].notna()).mean() > 0.65


def test_a_named_default_survives_save_and_load(tmp_path):
    rng = np.random.default_rng(0)
    metadata = Metadata.load_from_dict({"tables": {"t": {"columns": {
        "a": {"sdtype": "numerical"}}}}})
    # Far from uniform: hma_db's own default would be replaced here.
    data = {"t": pd.DataFrame({"a": rng.exponential(1, 400)})}
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1)
    synthesizer.set_table_parameters("t", {"default_distribution": "uniform"})
    synthesizer.save(tmp_path / "unfitted.json")
    loaded = HMASynthesizer.load(tmp_path / "unfitted.json")
    loaded.fit(data)  # fitted after loading: the family is still the one asked for
    assert loaded.get_learned_distributions("t")["a"]["distribution"] == "uniform"
