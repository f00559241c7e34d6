"""HMASynthesizer end to end on Chinook and Northwind, its argument checks, seeds and model files."""

from __future__ import annotations

import datetime as dt
import decimal
import importlib
import json
import os
import pickle
import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pandas as pd
import pytest
from conftest import CHINOOK_SQLITE, NORTHWIND_SQLITE, ROOT

from hma_db import (
    DataError,
    HmaDbError,
    Metadata,
    ModelFileError,
    NotFittedError,
    SynthesizerInputError,
)
from hma_db.schema.metadata import key_columns
from hma_db.schema.simplify import simplify_schema
from hma_db.source.read import read_tables
from hma_db.source.reflect import reflect
from hma_db.synthesizer import files as model_io
from hma_db.synthesizer.hma import HMASynthesizer, load_synthesizer
from hma_db.synthesizer.links import assign_keys, link_positions

SMALL = ("Employee", "Customer", "Invoice")  # a closed subset: self-reference, nullable FK


def load_sqlite(path) -> tuple[Metadata, dict[str, pd.DataFrame]]:
    url = f"sqlite:///{path}"
    metadata = reflect(url)
    return metadata, read_tables(url, metadata)


def subset(metadata: Metadata, data: dict, tables) -> tuple[Metadata, dict]:
    small = metadata.copy()
    for table in [t for t in metadata.tables if t not in tables]:
        small.remove_table(table)
    return small, {t: data[t].copy() for t in tables}


@pytest.fixture(scope="module")
def chinook():
    return load_sqlite(CHINOOK_SQLITE)


@pytest.fixture(scope="module")
def northwind():
    return load_sqlite(NORTHWIND_SQLITE)


@pytest.fixture(scope="module")
def small(chinook):
    return subset(*chinook, SMALL)


@pytest.fixture(scope="module")
def fitted_chinook(chinook):
    synthesizer = HMASynthesizer(chinook[0], verbose=False, seed=3)
    synthesizer.fit(chinook[1])
    return synthesizer


@pytest.fixture(scope="module")
def fitted_northwind(northwind):
    synthesizer = HMASynthesizer(northwind[0], verbose=False, seed=4)
    synthesizer.fit(northwind[1])
    return synthesizer


@pytest.fixture(scope="module")
def fitted_small(small):
    synthesizer = HMASynthesizer(small[0], verbose=False, seed=5)
    synthesizer.fit(small[1])
    return synthesizer


# ------------------------------------------------------------------------ integrity checks
def _index(frame: pd.DataFrame, columns: list[str]) -> pd.Index:
    if len(columns) == 1:
        return pd.Index(frame[columns[0]])
    return pd.MultiIndex.from_frame(frame[columns])


def _check_keys(metadata: Metadata, synthetic: dict) -> None:
    for table in metadata.tables:
        frame = synthetic[table]
        for key in [metadata.primary_key(table)] + metadata.alternate_keys(table):
            if key:
                assert not frame[key].duplicated().any(), f"{table} {key} repeats"
        pk = metadata.primary_key(table)
        if pk:
            assert frame[pk].notna().all().all(), f"{table} has NULL primary keys"
    for rel in metadata.relationships:
        parent, child = rel["parent_table_name"], rel["child_table_name"]
        pk, fk = key_columns(rel["parent_primary_key"]), key_columns(rel["child_foreign_key"])
        refs = synthetic[child][fk].dropna()
        known = _index(synthetic[parent], pk)
        found = _index(refs.set_axis(pk, axis=1), pk).isin(known)
        assert found.all(), f"{child}.{fk} has {int((~found).sum())} dangling references"


def _check_self_references(metadata: Metadata, synthetic: dict) -> None:
    for rel in metadata.self_references():
        frame = synthetic[rel["child_table_name"]]
        pk, fk = key_columns(rel["parent_primary_key"]), key_columns(rel["child_foreign_key"])
        parent_of = link_positions(frame, frame, pk, fk)
        position = np.arange(len(frame))
        for _ in range(len(frame) + 1):  # a chain longer than the table is a cycle
            position = np.where(position >= 0, parent_of[np.maximum(position, 0)], -1)
        assert (position == -1).all(), f"{rel} forms a cycle"


def _check_null_shares(metadata: Metadata, real: dict, synthetic: dict) -> None:
    for rel in metadata.relationships:
        child, fk = rel["child_table_name"], key_columns(rel["child_foreign_key"])
        if len(real[child]) == 0 or len(synthetic[child]) == 0:
            continue
        real_share = real[child][fk].isna().any(axis=1).mean()
        synthetic_share = synthetic[child][fk].isna().any(axis=1).mean()
        # Within 5 points, or one row where a table is too small for 5 points (4 employees).
        tolerance = max(0.05, 1.0 / len(synthetic[child]))
        assert abs(real_share - synthetic_share) <= tolerance, (rel, real_share, synthetic_share)


def check_synthetic(metadata: Metadata, real: dict, synthetic: dict, scale: float) -> None:
    assert set(synthetic) == set(real)
    for table, frame in real.items():
        out = synthetic[table]
        assert list(out.columns) == list(frame.columns), table
        assert out.dtypes.astype(str).to_dict() == frame.dtypes.astype(str).to_dict(), table
        if metadata.tables[table].get("policy") == "keep":  # a reference table, copied
            assert len(out) == len(frame), table
            continue
        target = len(frame) * scale  # rounded either way at .5, at least one row
        assert abs(len(out) - max(1.0, target)) <= 0.5 if len(frame) else len(out) == 0, \
            (table, len(frame), scale, len(out))
    _check_keys(metadata, synthetic)
    _check_self_references(metadata, synthetic)
    _check_null_shares(metadata, real, synthetic)


# ------------------------------------------------------------------------ whole databases
@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_chinook_all_tables(chinook, fitted_chinook, scale):
    assert len(chinook[0].tables) == 11
    check_synthetic(chinook[0], chinook[1], fitted_chinook.sample(scale=scale), scale)


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_northwind_all_tables(northwind, fitted_northwind, scale):
    assert len(northwind[0].tables) == 14
    check_synthetic(northwind[0], northwind[1], fitted_northwind.sample(scale=scale), scale)


@pytest.mark.parametrize("chunk_rows", [None, 1000])
def test_fit_database_and_sample_to_database(tmp_path, chunk_rows):
    # chunk_rows=1000 writes PlaylistTrack's 4,358 rows in five chunks, keys valid across them.
    source = f"sqlite:///{CHINOOK_SQLITE}"
    synthesizer = HMASynthesizer(reflect(source), verbose=False, seed=10)
    assert synthesizer.fit_database(source) is synthesizer
    target = f"sqlite:///{tmp_path / 'copy.sqlite'}"
    written = synthesizer.sample_to_database(target, scale=0.5, chunk_rows=chunk_rows)
    assert written["Invoice"] == 206 and len(written) == 11
    copy_metadata = reflect(target)
    for table, spec in synthesizer.get_metadata().tables.items():  # the copied ones
        copy_metadata.tables[table].update({"policy": spec["policy"]} if "policy" in spec else {})
    check_synthetic(copy_metadata, read_tables(source, copy_metadata),
                    read_tables(target, copy_metadata), 0.5)


@pytest.mark.postgres
def test_chinook_from_postgresql(chinook_postgres, tmp_path):
    metadata = reflect(chinook_postgres)
    data = read_tables(chinook_postgres, metadata)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=6)
    synthesizer.fit(data)
    check_synthetic(metadata, data, synthesizer.sample(scale=1.0), 1.0)
    synthesizer.save(tmp_path / "model.json", format="json")
    expected = synthesizer.sample(scale=0.5)
    loaded = load_synthesizer(tmp_path / "model.json").sample(scale=0.5)
    for table, frame in expected.items():
        pd.testing.assert_frame_equal(loaded[table], frame)


def test_row_order_and_index_do_not_matter(small):
    shuffled = {t: f.iloc[::-1].set_axis([f"r{i}" for i in range(len(f))]) for t, f in small[1].items()}
    synthesizer = HMASynthesizer(small[0], verbose=False, seed=8)
    synthesizer.fit(shuffled)
    check_synthetic(small[0], small[1], synthesizer.sample(), 1.0)


def test_learned_distributions_for_every_table(chinook, fitted_chinook):
    for table in chinook[0].tables:
        learned = fitted_chinook.get_learned_distributions(table)
        assert isinstance(learned, dict)
        for column, spec in learned.items():
            assert spec["distribution"] and isinstance(spec["learned_parameters"], dict), column
    assert "Total" in fitted_chinook.get_learned_distributions("Invoice")


# ---------------------------------------------------------------------- argument checks
@pytest.mark.parametrize("table, parameters, named", [
    ("Nope", {}, "Nope"),
    ("Invoice", {"numerical_distributions": {"Nope": "beta"}}, "Invoice.Nope"),
    ("Invoice", {"numerical_distributions": {"Total": "weibull"}}, "weibull"),
    ("Invoice", {"default_distribution": "lognorm"}, "lognorm"),
    ("Invoice", {"default_distribution": "gaussian_kde"}, "gaussian_kde"),
    ("Invoice", {"numerical_distributions": {"Total": "gaussian_kde"}}, "gaussian_kde"),
    ("Invoice", {"epochs": 10}, "epochs"),
    ("Invoice", {"numerical_distributions": {"CustomerId": "beta"}}, "Invoice.CustomerId"),
    ("Invoice", {"enforce_rounding": "yes"}, "enforce_rounding"),
])
def test_set_table_parameters_refuses(small, table, parameters, named):
    synthesizer = HMASynthesizer(small[0], verbose=False)
    with pytest.raises(SynthesizerInputError, match=named.replace(".", r"\.")) as info:
        synthesizer.set_table_parameters(table, parameters)
    assert isinstance(info.value, HmaDbError)


def test_parameters_are_copies(small):
    synthesizer = HMASynthesizer(small[0], locales=["en_US", "fr_CA"], verbose=False, seed=1)
    parameters = synthesizer.get_parameters()
    assert parameters == {"locales": ["en_US", "fr_CA"], "verbose": False, "seed": 1}
    parameters["locales"].append("de_DE")
    assert synthesizer.get_parameters()["locales"] == ["en_US", "fr_CA"]
    metadata = synthesizer.get_metadata()
    metadata.remove_table("Invoice")
    assert "Invoice" in synthesizer.get_metadata().tables
    synthesizer.set_table_parameters("Invoice", {"default_distribution": "truncnorm",
                                                 "numerical_distributions": {"Total": "gamma"}})
    table = synthesizer.get_table_parameters("Invoice")
    assert table["synthesizer_name"] == "GaussianCopulaSynthesizer"
    assert table["synthesizer_parameters"]["default_distribution"] == "truncnorm"
    assert table["synthesizer_parameters"]["numerical_distributions"] == {"Total": "gamma"}
    assert table["synthesizer_parameters"]["locales"] == ["en_US", "fr_CA"]
    table["synthesizer_parameters"]["numerical_distributions"]["Total"] = "norm"
    assert synthesizer.get_table_parameters("Invoice")["synthesizer_parameters"][
        "numerical_distributions"] == {"Total": "gamma"}
    synthesizer.set_table_parameters("Invoice", {"enforce_rounding": False})
    merged = synthesizer.get_table_parameters("Invoice")["synthesizer_parameters"]
    assert merged["enforce_rounding"] is False and merged["default_distribution"] == "truncnorm"
    other = synthesizer.get_table_parameters("Customer")["synthesizer_parameters"]
    assert other["default_distribution"] == "beta" and other["enforce_min_max_values"] is True


@pytest.mark.parametrize("kwargs", [{"seed": -1}, {"seed": 1.5}, {"locales": ["xx_YY"]},
                                    {"locales": []}])
def test_constructor_refuses(small, kwargs):
    with pytest.raises(SynthesizerInputError):
        HMASynthesizer(small[0], verbose=False, **kwargs)


def test_numerical_distributions_are_used(small):
    synthesizer = HMASynthesizer(small[0], verbose=False, seed=1)
    synthesizer.set_table_parameters("Invoice", {"numerical_distributions": {
        "InvoiceDate": "uniform", "Total": "uniform"}})
    synthesizer.fit(small[1])
    learned = synthesizer.get_learned_distributions("Invoice")
    assert learned["InvoiceDate"]["distribution"] == "uniform"
    # Invoice totals are far from uniform: the fallback that was used is reported.
    total = learned["Total"]
    assert total["distribution"] == "uniform" or total.get("fallback_from") == "uniform"
    with pytest.raises(SynthesizerInputError, match="Nope"):
        synthesizer.get_learned_distributions("Nope")


def test_not_fitted(small):
    synthesizer = HMASynthesizer(small[0], verbose=False)
    with pytest.raises(NotFittedError, match="fit"):
        synthesizer.sample()
    with pytest.raises(NotFittedError):
        synthesizer.get_learned_distributions("Invoice")


def test_sdvs_fitted_flag_reads_and_forgets_but_never_fakes_a_fit(small, tmp_path):
    """Code written for SDV reads and sets ``_fitted``: setting it used to replace the fit
    itself, and ``save`` then failed."""
    synthesizer = HMASynthesizer(small[0], verbose=False)
    assert synthesizer._fitted is False
    with pytest.raises(NotFittedError, match="setting _fitted cannot fit it"):
        synthesizer._fitted = True
    synthesizer.fit(small[1])
    assert synthesizer._fitted is True
    synthesizer._fitted = True
    synthesizer.save(tmp_path / "model.pkl")
    assert HMASynthesizer.load(tmp_path / "model.pkl")._fitted is True
    synthesizer._fitted = False
    with pytest.raises(NotFittedError, match="fit"):
        synthesizer.sample()


@pytest.mark.parametrize("scale", [0, -1, float("nan"), float("inf"), "1", None, True])
def test_scale_must_be_positive(fitted_small, scale):
    with pytest.raises(SynthesizerInputError, match="scale"):
        fitted_small.sample(scale=scale)


def _broken(data: dict, change) -> dict:
    copy = {t: f.copy() for t, f in data.items()}
    change(copy)
    return copy


def _null_primary_key(data: dict) -> None:
    ids = data["Customer"]["CustomerId"].astype("float64")
    data["Customer"] = data["Customer"].assign(CustomerId=ids.where(ids.index > 0))


@pytest.mark.parametrize("change, named", [
    (lambda d: d.pop("Invoice"), "'Invoice'"),
    (lambda d: d.__setitem__("Invoice", d["Invoice"].drop(columns="Total")), "Invoice.Total"),
    (_null_primary_key, "Customer.CustomerId"),
    (lambda d: d.__setitem__("Invoice", d["Invoice"].assign(InvoiceId=1)), "Invoice.InvoiceId"),
    (lambda d: d.__setitem__("Invoice", d["Invoice"].assign(CustomerId=lambda f: f.CustomerId + 1000)),
     "Invoice.CustomerId -> Customer"),
])
def test_fit_refuses_bad_data(small, change, named):
    synthesizer = HMASynthesizer(small[0], verbose=False)
    synthesizer.validate(small[1])
    with pytest.raises(DataError, match=named.replace(".", r"\.")):
        synthesizer.validate(_broken(small[1], change))
    with pytest.raises(DataError, match=named.replace(".", r"\.")):
        synthesizer.fit(_broken(small[1], change))
    assert synthesizer.get_info()["is_fit"] is False


def test_a_failed_refit_keeps_the_fitted_model(small, fitted_small):
    with pytest.raises(DataError):
        fitted_small.fit(_broken(small[1], lambda d: d.pop("Customer")))
    check_synthetic(small[0], small[1], fitted_small.sample(), 1.0)


# --------------------------------------------------------------------------- randomness
SCRIPT = textwrap.dedent("""
    import sys
    import pandas as pd
    from hma_db.source.read import read_tables
    from hma_db.source.reflect import reflect
    from hma_db.synthesizer.hma import HMASynthesizer
    url = "sqlite:///" + sys.argv[1]
    metadata = reflect(url)
    keep = {"Employee", "Customer", "Invoice"}
    for table in [t for t in metadata.tables if t not in keep]:
        metadata.remove_table(table)
    data = read_tables(url, metadata)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=int(sys.argv[2]))
    synthesizer.fit(data)
    for table, frame in sorted(synthesizer.sample(scale=1.0).items()):
        print(table, pd.util.hash_pandas_object(frame.astype(str), index=True).sum())
""")


def _run(seed: int, hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(CHINOOK_SQLITE), str(seed)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_same_seed_same_output_in_two_processes():
    first, second = _run(11, "1"), _run(11, "2")
    assert first == second and len(first.splitlines()) == 3
    assert _run(12, "1") != first


def test_preprocess_then_fit_processed_data_equals_fit(small, fitted_small):
    synthesizer = HMASynthesizer(small[0], verbose=False, seed=5)
    with pytest.raises(NotFittedError, match="preprocess"):
        synthesizer.fit_processed_data({})
    processed = synthesizer.preprocess(small[1])
    assert set(processed) == set(SMALL)
    invoice = processed["Invoice"]
    assert {"InvoiceId", "CustomerId", "Total"} <= set(invoice.columns)
    assert len(invoice) == len(small[1]["Invoice"])
    synthesizer.fit_processed_data(processed)
    fitted_small.reset_sampling()
    expected = fitted_small.sample()
    for table, frame in synthesizer.sample().items():
        pd.testing.assert_frame_equal(frame, expected[table])


def test_seed_none_differs_and_reset_sampling_repeats(small):
    outputs = []
    for _ in range(2):
        synthesizer = HMASynthesizer(small[0], verbose=False)
        synthesizer.fit(small[1])
        outputs.append(synthesizer.sample()["Invoice"])
    assert not outputs[0].equals(outputs[1])
    synthesizer = HMASynthesizer(small[0], verbose=False, seed=9)
    synthesizer.fit(small[1])
    first, second = synthesizer.sample(), synthesizer.sample()
    assert not first["Invoice"].equals(second["Invoice"])
    synthesizer.reset_sampling()
    pd.testing.assert_frame_equal(synthesizer.sample()["Invoice"], first["Invoice"])


def test_reset_sampling_with_a_seed(small, fitted_small):
    synthesizer = HMASynthesizer(small[0], verbose=False)  # fitted without a seed
    synthesizer.fit(small[1])
    synthesizer.reset_sampling(seed=9)
    seeded = synthesizer.sample()["Invoice"]
    synthesizer.reset_sampling(seed=10)
    assert not synthesizer.sample()["Invoice"].equals(seeded)
    synthesizer.reset_sampling(9)
    pd.testing.assert_frame_equal(synthesizer.sample()["Invoice"], seeded)
    synthesizer.reset_sampling()  # back to the synthesizer's own stream
    assert not synthesizer.sample()["Invoice"].equals(seeded)
    # A model fitted with seed=5 samples from the stream of seed 5.
    fitted_small.reset_sampling()
    own = fitted_small.sample()["Invoice"]
    fitted_small.reset_sampling(5)
    pd.testing.assert_frame_equal(fitted_small.sample()["Invoice"], own)
    for bad in (-1, 1.5, "7", True):
        with pytest.raises(SynthesizerInputError, match="seed"):
            synthesizer.reset_sampling(bad)


# --------------------------------------------------------------------------- model files
def test_pickle_and_json_models_sample_identically(fitted_chinook, tmp_path):
    fitted_chinook.save(tmp_path / "model.pkl")
    fitted_chinook.save(tmp_path / "model.json", format="json")
    document = json.loads((tmp_path / "model.json").read_text())
    assert document["format"] == "hma_db-model"
    expected = fitted_chinook.sample(scale=1.0)
    for loaded in (load_synthesizer(tmp_path / "model.pkl"),
                   HMASynthesizer.load(tmp_path / "model.json"),
                   load_synthesizer(str(tmp_path / "model.json"))):
        assert isinstance(loaded, HMASynthesizer)
        assert loaded.get_parameters() == fitted_chinook.get_parameters()
        sampled = loaded.sample(scale=1.0)
        for table, frame in expected.items():
            pd.testing.assert_frame_equal(sampled[table], frame)


def test_json_model_loads_without_unpickling(fitted_small, tmp_path, monkeypatch):
    fitted_small.save(tmp_path / "model.json", format="json")
    expected = fitted_small.sample()

    def refuse(*args, **kwargs):
        raise AssertionError("a JSON model must not unpickle anything")

    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    loaded = load_synthesizer(tmp_path / "model.json")
    pd.testing.assert_frame_equal(loaded.sample()["Invoice"], expected["Invoice"])
    with pytest.raises(SynthesizerInputError, match="xml"):
        fitted_small.save(tmp_path / "model.xml", format="xml")


def test_a_tampered_model_pickle_is_refused(small, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    synthesizer = HMASynthesizer(small[0], verbose=False)
    synthesizer.payload = _Exploit()  # the first class is HMASynthesizer, a later one is not
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(synthesizer, protocol=5))
    with pytest.raises(ModelFileError, match="HMASynthesizer; an hma_db model names no class"):
        load_synthesizer(tmp_path / "model.pkl")
    assert not (tmp_path / "exploited").exists()


def test_json_values_round_trip_exactly():
    value = {"floats": [0.1, float("nan"), None], (1, "a"): "tuple key", 3: np.float32(1.5),
             "grid": np.arange(6.0).reshape(2, 3) / 7, "mixed": np.array(["a", None], dtype=object),
             "when": pd.Timestamp("2020-01-01 10:00:00.123456789"), "day": dt.date(2020, 1, 2),
             "span": pd.Timedelta("1 days 00:00:01.5"), "money": decimal.Decimal("1.10"),
             "id": uuid.UUID(int=5), "raw": b"\x00\x01", "na": pd.NA, "pair": (1, "a"),
             "stamps": np.array(["2020-01-01"], dtype="datetime64[ns]"), "n": np.int64(7)}
    back = model_io.decode(json.loads(json.dumps(model_io.encode(value))))
    assert back.keys() == value.keys()
    for key, original in value.items():
        if isinstance(original, np.ndarray):
            assert back[key].dtype == original.dtype and back[key].tolist() == original.tolist()
        elif key == "floats":
            assert back[key][0] == 0.1 and np.isnan(back[key][1]) and back[key][2] is None
        else:
            assert type(back[key]) is type(original) and str(back[key]) == str(original), key
    with pytest.raises(ModelFileError, match="model.x"):
        model_io.encode({"x": object()})


class _Exploit:  # unpickling this runs a shell command
    def __reduce__(self):
        return (os.system, ("touch exploited",))


@pytest.mark.parametrize("content", [
    b"", b"hello, not a model\n", b'{"tables": {}}', b"\x89PNG\r\n\x1a\n....",
    pickle.dumps({"a": 1}, protocol=4), pickle.dumps(_Exploit(), protocol=2),
    b"\x80\x05 truncated",
    b'{"format": "hma_db-model", "version": 1, "synthesizer": {"parameters": {}}}',
    b'{"format": "hma_db-model", "version": 99, "synthesizer": {}}',
    b'[1, 2, 3]',
])
def test_loading_a_non_model_fails_cleanly(tmp_path, content, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="model.pkl"):
        load_synthesizer(path)
    with pytest.raises(ModelFileError):
        HMASynthesizer.load(path)
    assert not (tmp_path / "exploited").exists()


def test_loading_a_missing_file_fails_cleanly(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_synthesizer(tmp_path / "absent.pkl")


# ------------------------------------------------------------------------------ output
def test_verbose_false_prints_nothing(small, capfd):
    synthesizer = HMASynthesizer(small[0], verbose=False, seed=2)
    synthesizer.fit(small[1])
    synthesizer.sample()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_verbose_shows_the_stages(small, capfd):
    synthesizer = HMASynthesizer(small[0], seed=2)
    synthesizer.fit(small[1])
    synthesizer.sample()
    err = capfd.readouterr().err
    for stage in ("Preprocess tables", "Learning relationships", "Modeling tables",
                  "Sampling tables"):
        assert stage in err


# ------------------------------------------------------------------------- links, keys
@pytest.mark.parametrize("refs", [
    pd.Series([3, 1, None, 3], dtype="Int64"), pd.Series([3.0, 1.0, np.nan, 3.0]),
    pd.Series([3, 1, None, 3], dtype=object)])
def test_one_column_links_with_nulls(refs):
    parent = pd.DataFrame({"id": [1, 2, 3], "code": ["a", None, "c"]})
    child = pd.DataFrame({"ref": refs, "code": ["c", None, "a", "b"]})
    assert link_positions(parent, child, ["id"], ["ref"]).tolist() == [2, 0, -1, 2]
    # a unique key NULL in a parent row: that row is referenced by no child
    assert link_positions(parent, child, ["code"], ["code"]).tolist() == [2, -1, 0, -1]
    assert link_positions(parent, pd.DataFrame({"ref": [2, 2]}), ["id"], ["ref"]).tolist() \
        == [1, 1]


def test_links_and_keys_round_trip_composite_and_null():
    parent = pd.DataFrame({"a": [1, 1, 2], "b": ["x", "y", "x"]})
    child = pd.DataFrame({"fa": [2.0, np.nan, 1.0, 1.0], "fb": ["x", "x", "y", None]})
    assert link_positions(parent, child, ["a", "b"], ["fa", "fb"]).tolist() == [2, -1, 1, -1]
    metadata = Metadata.from_dict({"tables": {
        "p": {"primary_key": ["a", "b"], "columns": {"a": {"sdtype": "id"}, "b": {"sdtype": "id"}}},
        "c": {"columns": {"fa": {"sdtype": "id", "nullable": True},
                          "fb": {"sdtype": "id", "nullable": True}}}},
        "relationships": [{"parent_table_name": "p", "child_table_name": "c",
                           "parent_primary_key": ["a", "b"], "child_foreign_key": ["fa", "fb"]}]})
    keys = assign_keys(metadata, {"p": parent, "c": pd.DataFrame(index=range(3))},
                       {"c.(fa, fb) -> p": np.array([0, -1, 2])},
                       {"c": {"fa": "float64", "fb": "object"}})
    assert keys["c"]["fa"].tolist()[0::2] == [1.0, 2.0] and pd.isna(keys["c"]["fa"][1])
    assert keys["c"]["fb"].tolist()[0::2] == ["x", "x"] and pd.isna(keys["c"]["fb"][1])


# ------------------------------------------------------------------------ simplify_schema
def test_simplify_schema_keeps_the_connected_tables(northwind, chinook, capsys):
    data, metadata = simplify_schema(northwind[1], northwind[0], verbose=False)
    assert capsys.readouterr().out == ""
    assert set(metadata.tables) == set(northwind[0].tables) - {"us_states"} == set(data)
    assert "us_states" in northwind[0].tables
    assert len(metadata.relationships) == len(northwind[0].relationships)
    data, metadata = simplify_schema(chinook[1], chinook[0])
    assert set(metadata.tables) == set(chinook[0].tables)
    assert "Kept 11 of 11 tables" in capsys.readouterr().out
    with pytest.raises(DataError):
        simplify_schema({t: f for t, f in chinook[1].items() if t != "Album"}, chinook[0])


# ------------------------------------------------------- section 3 behaviours, end to end
@pytest.mark.parametrize("parameters, named", [
    ({"numerical_distributions": {"Total": "weibull"}}, ["weibull", "Invoice.Total"]),
    ({"numerical_distributions": {"Total": "gaussian_kde"}}, ["gaussian_kde", "Invoice.Total"]),
    ({"default_distribution": "gaussian_kde"}, ["gaussian_kde", "'Invoice'"]),
    ({"default_distribution": "lognorm"}, ["lognorm", "'Invoice'"]),
    ({"numerical_distributions": {"Nope": "beta"}}, ["Invoice.Nope"]),
    ({"epochs": 10}, ["epochs", "'Invoice'"]),
])
def test_parameter_errors_name_the_table_and_column(small, parameters, named):
    synthesizer = HMASynthesizer(small[0], verbose=False)
    with pytest.raises(SynthesizerInputError) as info:
        synthesizer.set_table_parameters(table_name="Invoice", table_parameters=parameters)
    assert isinstance(info.value, HmaDbError)
    for name in named:
        assert name in str(info.value), (name, str(info.value))
    # The refused call changed nothing.
    assert synthesizer.get_table_parameters("Invoice")["synthesizer_parameters"] == \
        HMASynthesizer(small[0], verbose=False).get_table_parameters("Invoice")[
            "synthesizer_parameters"]


def test_default_locales_and_every_table_uses_the_locales(small):
    default = HMASynthesizer(small[0], verbose=False)
    assert default.get_parameters()["locales"] == ["en_US"]
    for table in SMALL:
        assert default.get_table_parameters(table)["synthesizer_parameters"]["locales"] == ["en_US"]
    from faker.providers.person.fr_FR import Provider as FrenchNames

    french = set(FrenchNames.first_names)
    synthesizer = HMASynthesizer(small[0], locales=["fr_FR"], verbose=False, seed=1)
    synthesizer.fit(small[1])
    synthetic = synthesizer.sample(scale=2.0)
    for table in ("Customer", "Employee"):  # both tables' personal data speak French
        names = synthetic[table]["FirstName"]
        assert names.isin(french).all(), (table, names.tolist()[:5])
    english = HMASynthesizer(small[0], verbose=False, seed=1)
    english.fit(small[1])
    assert english.sample(scale=2.0)["Customer"]["FirstName"].isin(french).mean() < 0.5


def test_categorical_columns_and_missing_values_are_modeled(chinook, fitted_chinook):
    real = chinook[1]["Invoice"]
    fitted_chinook.reset_sampling()
    synthetic = fitted_chinook.sample(scale=3.0)["Invoice"]
    counts = real["BillingCountry"].value_counts()
    # Only categories seen at least min_category_count (5) times, in about their shares.
    assert set(synthetic["BillingCountry"]) <= set(counts[counts >= 5].index)
    shares = synthetic["BillingCountry"].value_counts(normalize=True)
    assert abs(shares.get("USA", 0) - counts["USA"] / counts.sum()) < 0.06
    # A column with nulls keeps its null share (within 5 points): BillingState, the customers'
    # states (personal data found from its values), like the customer's State it copies.
    assert real["BillingState"].isna().any()
    assert abs(synthetic["BillingState"].isna().mean() - real["BillingState"].isna().mean()) < 0.05
    tracks, real_tracks = fitted_chinook.sample(scale=1.0)["Track"], chinook[1]["Track"]
    assert abs(tracks["Composer"].isna().mean() - real_tracks["Composer"].isna().mean()) < 0.05


def test_min_max_rounding_and_unique_personal_data_through_the_synthesizer(chinook,
                                                                            fitted_chinook):
    metadata, real = chinook
    synthetic = fitted_chinook.sample(scale=3.0)
    tracks = synthetic["Track"]
    for column in ("Milliseconds", "Bytes"):
        assert tracks[column].min() >= real["Track"][column].min()
        assert tracks[column].max() <= real["Track"][column].max()
    assert tracks["Milliseconds"].dtype == "int64"
    totals = synthetic["Invoice"]["Total"]
    assert all(isinstance(t, decimal.Decimal) and t.as_tuple().exponent == -2 for t in totals)
    assert real["Invoice"]["Total"].min() <= totals.min() and \
        totals.max() <= real["Invoice"]["Total"].max()
    # Personal data that is unique in the source stays unique at three times its size, within
    # the declared length; nothing is copied from the source.
    for table, column in (("Customer", "Email"), ("Employee", "Email"), ("Customer", "Phone")):
        values, source = synthetic[table][column].dropna(), real[table][column].dropna()
        assert source.is_unique and values.is_unique, (table, column)
        assert values.str.len().max() <= metadata.tables[table]["columns"][column]["max_length"]
        assert not values.isin(source).any(), (table, column)


EDGE_METADATA = {
    "tables": {
        "solo": {"primary_key": "id", "columns": {
            "id": {"sdtype": "id"}, "v": {"sdtype": "numerical"},
            "kind": {"sdtype": "categorical"}}},
        "empty": {"primary_key": "id", "columns": {
            "id": {"sdtype": "id"}, "v": {"sdtype": "numerical", "nullable": True}}},
        "orphan": {"primary_key": "id", "columns": {  # child of the empty table: all NULL
            "id": {"sdtype": "id"}, "empty_id": {"sdtype": "id", "nullable": True},
            "w": {"sdtype": "numerical"}}},
        "tag": {"primary_key": "id", "columns": {"id": {"sdtype": "id"}}},  # keys only
        "solo_tag": {"primary_key": ["solo_id", "tag_id"], "columns": {  # junction
            "solo_id": {"sdtype": "id"}, "tag_id": {"sdtype": "id"}}},
        "edge": {"primary_key": "id", "columns": {  # two foreign keys to the same table
            "id": {"sdtype": "id"}, "from_tag": {"sdtype": "id"},
            "to_tag": {"sdtype": "id", "nullable": True}, "weight": {"sdtype": "numerical"}}},
        "dept": {"primary_key": "id", "columns": {  # a cycle through a nullable foreign key
            "id": {"sdtype": "id"}, "head_id": {"sdtype": "id", "nullable": True},
            "budget": {"sdtype": "numerical"}}},
        "person": {"primary_key": "id", "columns": {
            "id": {"sdtype": "id"}, "dept_id": {"sdtype": "id"},
            "age": {"sdtype": "numerical"}}},
    },
    "relationships": [
        {"parent_table_name": p, "child_table_name": c, "parent_primary_key": pk,
         "child_foreign_key": fk}
        for p, c, pk, fk in [("empty", "orphan", "id", "empty_id"),
                             ("solo", "solo_tag", "id", "solo_id"),
                             ("tag", "solo_tag", "id", "tag_id"),
                             ("tag", "edge", "id", "from_tag"), ("tag", "edge", "id", "to_tag"),
                             ("person", "dept", "id", "head_id"),
                             ("dept", "person", "id", "dept_id")]],
}


def _edge_data() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    return {
        "solo": pd.DataFrame({"id": [1], "v": [2.5], "kind": ["only"]}),
        "empty": pd.DataFrame({"id": pd.Series([], dtype="int64"),
                               "v": pd.Series([], dtype="float64")}),
        "orphan": pd.DataFrame({"id": [1, 2, 3, 4, 5], "empty_id": [np.nan] * 5,
                                "w": [1.0, 2.0, 3.0, 4.0, 5.0]}),
        "tag": pd.DataFrame({"id": [1, 2, 3, 4]}),
        "solo_tag": pd.DataFrame({"solo_id": [1, 1, 1], "tag_id": [1, 2, 4]}),
        "edge": pd.DataFrame({"id": range(1, 21), "from_tag": rng.integers(1, 5, 20),
                              "to_tag": np.where(rng.random(20) < 0.3, np.nan,
                                                 rng.integers(1, 5, 20)),
                              "weight": rng.gamma(2.0, 1.0, 20).round(2)}),
        "dept": pd.DataFrame({"id": [1, 2, 3, 4], "head_id": [1.0, 5.0, np.nan, 9.0],
                              "budget": [10.0, 20.0, 15.0, 30.0]}),
        "person": pd.DataFrame({"id": range(1, 11), "dept_id": [1, 1, 2, 2, 2, 3, 4, 4, 4, 4],
                                "age": [30.0, 41, 25, 52, 38, 29, 60, 33, 47, 36]}),
    }


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_empty_one_row_key_only_junction_and_cycle_tables(scale):
    metadata, data = Metadata.from_dict(EDGE_METADATA), _edge_data()
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=2)
    synthesizer.fit(data)
    synthetic = synthesizer.sample(scale=scale)
    check_synthetic(metadata, data, synthetic, scale)
    assert len(synthetic["empty"]) == 0 and synthetic["orphan"]["empty_id"].isna().all()
    # A category seen once is rare (under min_category_count): never copied.
    assert len(synthetic["solo"]) == round(scale) and not (synthetic["solo"]["kind"] == "only").any()
    assert synthetic["tag"]["id"].is_unique and list(synthetic["tag"].columns) == ["id"]
    assert not synthetic["solo_tag"].duplicated().any()
    for table in metadata.tables:
        assert isinstance(synthesizer.get_learned_distributions(table), dict)


WHOLE_DATABASE_SCRIPT = textwrap.dedent("""
    import sys
    import pandas as pd
    from hma_db.source.read import read_tables
    from hma_db.source.reflect import reflect
    from hma_db.synthesizer.hma import HMASynthesizer
    url = "sqlite:///" + sys.argv[1]
    metadata = reflect(url)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=int(sys.argv[2]))
    synthesizer.fit(read_tables(url, metadata))
    for table, frame in sorted(synthesizer.sample(scale=0.7).items()):
        print(table, len(frame), pd.util.hash_pandas_object(frame.astype(str), index=True).sum())
""")


def test_same_seed_same_whole_northwind_in_two_processes():
    def run(seed: int, hash_seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", WHOLE_DATABASE_SCRIPT, str(NORTHWIND_SQLITE), str(seed)],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = run(21, "0")
    assert len(first.splitlines()) == 14
    assert run(21, "3") == first
    other = run(22, "0").splitlines()
    # Another seed changes every table that has rows (two Northwind tables are empty), except
    # the reference tables, which are copied as they are.
    copied = {"categories", "region", "territories", "us_states"}
    for mine, theirs in zip(first.splitlines(), other, strict=True):
        changes = mine.split()[1] != "0" and mine.split()[0] not in copied
        assert (mine != theirs) == changes, (mine, theirs)


@pytest.mark.parametrize("table_name", [["Invoice"], {"Invoice": 1}, None, 3])
def test_a_table_name_that_is_not_a_name_is_refused(fitted_small, table_name):
    # An unhashable name once escaped as a TypeError instead of naming the problem.
    for call in (lambda: fitted_small.set_table_parameters(table_name, {}),
                 lambda: fitted_small.get_table_parameters(table_name),
                 lambda: fitted_small.get_learned_distributions(table_name)):
        with pytest.raises(SynthesizerInputError, match="Unknown table") as info:
            call()
        assert repr(table_name) in str(info.value)


def _stores_and_sales() -> tuple[Metadata, dict[str, pd.DataFrame]]:
    metadata = Metadata.from_dict({"tables": {
        "store": {"primary_key": ["region", "num"], "columns": {
            "region": {"sdtype": "id"}, "num": {"sdtype": "id"}, "size": {"sdtype": "numerical"}}},
        "sale": {"primary_key": "id", "columns": {
            "id": {"sdtype": "id"}, "s_region": {"sdtype": "id", "nullable": True},
            "s_num": {"sdtype": "id", "nullable": True}, "amount": {"sdtype": "numerical"}}}},
        "relationships": [{"parent_table_name": "store", "child_table_name": "sale",
                           "parent_primary_key": ["region", "num"],
                           "child_foreign_key": ["s_region", "s_num"]}]})
    rng = np.random.default_rng(0)
    # 40 stores keyed by a one-letter region and a number: the letter alone repeats.
    stores = pd.DataFrame({"region": list("NSEW") * 10, "num": np.repeat(np.arange(10), 4),
                           "size": rng.gamma(2, 10, 40)})
    k, null = rng.integers(0, 40, 400), rng.random(400) < 0.2
    sales = pd.DataFrame({"id": range(400),
                          "s_region": np.where(null, None, stores["region"].to_numpy()[k]),
                          "s_num": np.where(null, np.nan, stores["num"].to_numpy()[k]),
                          "amount": rng.gamma(2, 5, 400)})
    return metadata, {"store": stores, "sale": sales}


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_composite_key_with_a_narrow_column_and_a_composite_foreign_key(scale):
    # A one-letter region allows 26 values; 120 stores once failed with "allows only 26
    # distinct values" because every key column was made unique on its own.
    metadata, data = _stores_and_sales()
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=3)
    synthesizer.fit(data)
    synthetic = synthesizer.sample(scale=scale)
    check_synthetic(metadata, data, synthetic, scale)
    stores = synthetic["store"]
    assert stores["region"].str.fullmatch("[A-Z]").all()
    assert not stores[["region", "num"]].duplicated().any()
    chunks = list(synthesizer.sample_chunks(scale=scale, chunk_rows=25))
    assert len(chunks) > 1
    whole = {t: pd.concat([c[t] for c in chunks if t in c], ignore_index=True) for t in data}
    check_synthetic(metadata, data, whole, scale)


def test_a_failed_sample_into_a_new_sqlite_file_leaves_no_file(tmp_path, monkeypatch):
    """sample_to_database opened the file to check the target before sampling, which created
    it: a run that then failed left an empty file behind (issue 15)."""
    write_module = importlib.import_module("hma_db.target.write")  # the package exports write()

    source = f"sqlite:///{CHINOOK_SQLITE}"
    synthesizer = HMASynthesizer(reflect(source), verbose=False, seed=2)
    synthesizer.fit_database(source)
    original = write_module._Run._load_table

    def fail_on_track(self, conn, plan):
        if plan.name == "Track":
            raise KeyboardInterrupt
        return original(self, conn, plan)

    monkeypatch.setattr(write_module._Run, "_load_table", fail_on_track)
    with pytest.raises(KeyboardInterrupt):
        synthesizer.sample_to_database(str(tmp_path / "new.sqlite"))
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(write_module._Run, "_load_table", original)
    assert synthesizer.sample_to_database(str(tmp_path / "new.sqlite"))["Track"] == 3503
