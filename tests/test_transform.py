"""TableTransformer on Chinook tables and on small built frames."""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import json
import re
import uuid

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import CHINOOK_SQLITE
from faker.providers.person.fr_FR import Provider as FrenchNames

from hma_db import DataError, Metadata, MetadataError, SamplingError
from hma_db.schema.values import from_json
from hma_db.transform.keys import keygen
from hma_db.transform.table import TableTransformer

CHINOOK_TABLES = ["Customer", "Employee", "Invoice", "InvoiceLine", "Track"]


@pytest.fixture(scope="module")
def chinook():
    engine = sa.create_engine(f"sqlite:///{CHINOOK_SQLITE}")
    try:
        frames = {t: pd.read_sql_table(t, engine) for t in CHINOOK_TABLES}
    finally:
        engine.dispose()
    return frames


@pytest.fixture(scope="module")
def chinook_metadata(chinook):
    metadata = Metadata.detect_from_dataframes(chinook)
    metadata.update_column("Country", "Customer", sdtype="categorical", nullable=False)
    metadata.update_column("Customer", "Email", sdtype="email", pii=True, max_length=60)
    metadata.add_alternate_keys("Customer", ["Email"])
    metadata.update_column("Customer", "SupportRepId", sdtype="id", nullable=False)
    metadata.add_relationship("Employee", "Customer", "EmployeeId", "SupportRepId")
    metadata.update_column("Employee", "ReportsTo", sdtype="id", nullable=True)
    metadata.add_relationship("Employee", "Employee", "EmployeeId", "ReportsTo")
    metadata.update_column("Invoice", "BillingCountry", sdtype="categorical")
    for column in ("AlbumId", "MediaTypeId", "GenreId"):
        metadata.update_column("Track", column, sdtype="categorical")
    return metadata


def _fitted(table, metadata, frame, **kwargs) -> TableTransformer:
    tt = TableTransformer(table, metadata, **kwargs)
    tt.fit(frame)
    return tt


def _uniform(tt: TableTransformer, n: int, seed: int) -> pd.DataFrame:
    """Independent uniform numbers for every modeled column (a stand-in for the copula)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: rng.random(n) for c in tt.modeled_columns})


# ------------------------------------------------------------------------------ Chinook
@pytest.mark.parametrize("table", CHINOOK_TABLES)
def test_chinook_round_trip_shapes_and_dtypes(chinook, chinook_metadata, table):
    frame = chinook[table]
    tt = _fitted(table, chinook_metadata, frame)
    numeric = tt.transform(frame)
    assert list(numeric.columns) == tt.modeled_columns
    assert (numeric.dtypes == "float64").all() and not numeric.isna().any().any()
    assert len(numeric) == len(frame)
    out = tt.reverse_transform(numeric, np.random.default_rng(1))
    skipped = set(chinook_metadata.primary_key(table)) | set(
        chinook_metadata.foreign_key_columns(table))
    expected = [c for c in frame.columns if c not in skipped]
    assert list(out.columns) == expected
    assert len(out) == len(frame)
    for column in expected:
        assert str(out[column].dtype) == tt.source_dtypes[column] == str(frame[column].dtype)
    keys = tt.generate_keys(len(frame), np.random.default_rng(2))
    fks = chinook_metadata.foreign_key_columns(table)
    pk = [c for c in chinook_metadata.primary_key(table) if c not in fks]
    assert list(keys.columns) == pk
    assert keys[pk[0]].tolist() == list(range(1, len(frame) + 1))
    assert keys[pk[0]].dtype == frame[pk[0]].dtype


def test_keys_and_personal_data_are_never_modeled(chinook, chinook_metadata):
    tt = _fitted("Customer", chinook_metadata, chinook["Customer"])
    assert tt.modeled_columns == ["Country"]  # FirstName... are Faker, ids are keys
    tt = _fitted("Invoice", chinook_metadata, chinook["Invoice"])
    assert set(tt.modeled_columns) == {"InvoiceDate", "BillingCountry", "Total"}


def test_round_trip_of_modeled_values_is_exact(chinook, chinook_metadata):
    frame = chinook["Invoice"]
    tt = _fitted("Invoice", chinook_metadata, frame)
    out = tt.reverse_transform(tt.transform(frame), np.random.default_rng(0))
    # Total is discrete (7 totals seen 5 times or more cover 94% of invoices): those come back
    # exactly, a rare total is folded into them.
    totals = frame["Total"].value_counts()
    common = frame["Total"].isin(totals[totals >= 5].index)
    pd.testing.assert_series_equal(out.loc[common, "Total"], frame.loc[common, "Total"])
    assert out.loc[~common, "Total"].isin(totals[totals >= 5].index).all()
    pd.testing.assert_series_equal(out["InvoiceDate"], frame["InvoiceDate"])
    frequent = frame["BillingCountry"].value_counts()
    frequent = set(frequent[frequent >= 5].index)
    kept = frame["BillingCountry"].isin(frequent)
    assert (out.loc[kept, "BillingCountry"] == frame.loc[kept, "BillingCountry"]).all()


def test_rounding_and_min_max_are_enforced(chinook, chinook_metadata):
    frame = chinook["Track"]
    tt = _fitted("Track", chinook_metadata, frame)
    rng = np.random.default_rng(3)
    wide = pd.DataFrame({c: rng.normal(0, 1, 5000) * 1e7 for c in tt.modeled_columns})
    out = tt.reverse_transform(wide, np.random.default_rng(4))
    for column in ("Milliseconds", "Bytes"):
        assert out[column].min() >= frame[column].min()
        assert out[column].max() <= frame[column].max()
    assert out["Milliseconds"].dtype == "int64"

    # Totals made continuous (Chinook's own are discrete: a few sums of 0.99 and 1.99).
    invoices = chinook["Invoice"].assign(
        Total=(chinook["Invoice"]["Total"] + np.arange(len(chinook["Invoice"])) % 97 / 100
               ).round(2))
    tt = _fitted("Invoice", chinook_metadata, invoices)
    jitter = tt.transform(invoices) * 1.37 + 0.0013
    out = tt.reverse_transform(jitter, np.random.default_rng(4))
    assert (out["Total"].round(2) == out["Total"]).all()
    assert out["Total"].max() <= invoices["Total"].max()
    loose = _fitted("Invoice", chinook_metadata, invoices, enforce_min_max_values=False,
                    enforce_rounding=False)
    out = loose.reverse_transform(jitter, np.random.default_rng(4))
    assert out["Total"].max() > invoices["Total"].max()
    assert (out["Total"].round(2) != out["Total"]).mean() > 0.9


def test_few_valued_numbers_keep_their_values_and_order(chinook, chinook_metadata):
    frame = chinook["Track"]
    tt = _fitted("Track", chinook_metadata, frame)
    spec = tt._specs["UnitPrice"]
    assert spec["kind"] == "categorical" and spec["ordered"]
    assert spec["categories"] == [0.99, 1.99]
    out = tt.reverse_transform(_uniform(tt, 5000, 2), np.random.default_rng(3))
    assert set(out["UnitPrice"]) == {0.99, 1.99} and out["UnitPrice"].dtype == "float64"
    share = (frame["UnitPrice"] == 1.99).mean()
    assert abs((out["UnitPrice"] == 1.99).mean() - share) < 0.02
    # Ordered slices: a higher encoded number never gives a lower price.
    numbers = tt.transform(frame)["UnitPrice"]
    assert numbers[frame["UnitPrice"] == 1.99].min() > numbers[frame["UnitPrice"] == 0.99].max()


def test_rare_categories_are_never_emitted(chinook, chinook_metadata):
    # Customer countries under another name: a country itself keeps every value (public)
    frame = pd.DataFrame({"id": range(len(chinook["Customer"])),
                          "zone": chinook["Customer"]["Country"]})
    counts = frame["zone"].value_counts()
    frequent, rare = set(counts[counts >= 5].index), set(counts[counts < 5].index)
    assert frequent and rare
    tt = _fitted("t", _single_table({"id": {"sdtype": "id"}, "zone": {"sdtype": "categorical"}}),
                 frame)
    out = tt.reverse_transform(_uniform(tt, 20_000, 5), np.random.default_rng(6))
    assert set(out["zone"]) == frequent
    # Rows that encoded a rare zone decode to frequent ones in proportion to their counts.
    shares = out["zone"].value_counts(normalize=True)
    expected = counts[list(frequent)] / counts[list(frequent)].sum()
    assert np.allclose(shares[expected.index], expected, atol=0.02)
    countries = _fitted("Customer", chinook_metadata, chinook["Customer"])
    out = countries.reverse_transform(_uniform(countries, 20_000, 5), np.random.default_rng(6))
    assert set(out["Country"]) == set(counts.index)


def test_allowed_values_bound_categories():
    frame = pd.DataFrame({"id": range(300),
                          "status": ["open"] * 150 + ["closed"] * 140 + ["weird"] * 10})
    metadata = _single_table({"id": {"sdtype": "id"},
                              "status": {"sdtype": "categorical",
                                         "allowed_values": ["open", "closed", "archived"]}})
    tt = _fitted("t", metadata, frame)
    out = tt.reverse_transform(_uniform(tt, 5000, 7), np.random.default_rng(8))
    assert set(out["status"]) == {"open", "closed"}


def test_all_rare_categorical_with_allowed_values_draws_from_them():
    frame = pd.DataFrame({"id": range(6), "grade": list("ABCDEF")})
    metadata = _single_table({"id": {"sdtype": "id"},
                              "grade": {"sdtype": "categorical", "allowed_values": list("ABCDEFG")}})
    tt = _fitted("t", metadata, frame)
    assert tt.modeled_columns == []
    out = tt.reverse_transform(pd.DataFrame(index=range(700)), np.random.default_rng(0))
    assert set(out["grade"]) == set("ABCDEFG")


# ------------------------------------------------------------------------ personal data
def test_personal_data_uses_the_locales(chinook, chinook_metadata):
    french = set(FrenchNames.first_names)
    tt = _fitted("Customer", chinook_metadata, chinook["Customer"], locales=["fr_FR"])
    out = tt.reverse_transform(_uniform(tt, 500, 0), np.random.default_rng(9))
    assert out["FirstName"].isin(french).all()
    assert not out["FirstName"].isin(chinook["Customer"]["FirstName"]).all()
    english = _fitted("Customer", chinook_metadata, chinook["Customer"], locales=["en_US"])
    out = english.reverse_transform(_uniform(english, 500, 0), np.random.default_rng(9))
    assert out["FirstName"].isin(french).mean() < 0.5
    both = _fitted("Customer", chinook_metadata, chinook["Customer"], locales=["en_US", "fr_FR"])
    out = both.reverse_transform(_uniform(both, 2000, 0), np.random.default_rng(9))
    assert 0.3 < out["FirstName"].isin(french).mean() < 0.9


def test_unique_personal_data_stays_unique_and_short(chinook, chinook_metadata):
    tt = _fitted("Customer", chinook_metadata, chinook["Customer"])
    out = tt.reverse_transform(_uniform(tt, 30_000, 1), np.random.default_rng(10))
    emails = out["Email"]
    assert emails.is_unique and emails.notna().all()
    assert emails.str.len().max() <= 60
    assert emails.str.match(r"^[^@\s]+@[^@\s]+\.\w+$").all()


def test_personal_data_null_share_and_max_length():
    rng = np.random.default_rng(0)
    n = 4000
    phones = np.where(rng.random(n) < 0.3, None, "555-0100")
    frame = pd.DataFrame({"id": range(n), "phone": phones,
                          "street": ["1 Main Street"] * n})
    metadata = _single_table({"id": {"sdtype": "id"},
                              "phone": {"sdtype": "phone_number", "pii": True, "nullable": True},
                              "street": {"sdtype": "street_address", "pii": True,
                                         "max_length": 12}})
    tt = _fitted("t", metadata, frame)
    out = tt.reverse_transform(pd.DataFrame(index=range(10_000)), np.random.default_rng(1))
    source_share = frame["phone"].isna().mean()
    assert abs(out["phone"].isna().mean() - source_share) < 0.01
    assert out["street"].str.len().max() <= 12 and out["street"].notna().all()
    assert "555-0100" not in set(out["phone"])


# --------------------------------------------------------------------------------- nulls
def test_numeric_and_datetime_null_share_is_kept():
    rng = np.random.default_rng(2)
    n = 5000
    amount = np.round(rng.gamma(2.0, 10.0, n), 2)
    amount[rng.random(n) < 0.25] = np.nan
    shipped = pd.Series(pd.date_range("2020-01-01", periods=n, freq="h"))
    shipped[rng.random(n) < 0.1] = pd.NaT
    kind = np.where(rng.random(n) < 0.2, None, np.where(rng.random(n) < 0.5, "a", "b"))
    frame = pd.DataFrame({"id": range(n), "amount": amount, "shipped": shipped, "kind": kind})
    metadata = _single_table({"id": {"sdtype": "id"}, "amount": {"sdtype": "numerical"},
                              "shipped": {"sdtype": "datetime"},
                              "kind": {"sdtype": "categorical"}})
    tt = _fitted("t", metadata, frame)
    assert "amount.is_null" in tt.modeled_columns and "shipped.is_null" in tt.modeled_columns
    numeric = tt.transform(frame)
    assert not numeric.isna().any().any()
    exact = tt.reverse_transform(numeric, np.random.default_rng(0))
    for column in ("amount", "shipped", "kind"):
        assert (exact[column].isna() == frame[column].isna()).all()
    out = tt.reverse_transform(_uniform(tt, 20_000, 3), np.random.default_rng(4))
    for column in ("amount", "shipped", "kind"):
        assert abs(out[column].isna().mean() - frame[column].isna().mean()) < 0.015


# ------------------------------------------------------------------------ dtypes, kinds
def _single_table(columns: dict, primary_key: str = "id", name: str = "t") -> Metadata:
    return Metadata.from_dict({"tables": {name: {"primary_key": primary_key,
                                                 "columns": columns}}})


def _rich_frame(n: int = 400) -> tuple[pd.DataFrame, Metadata]:
    rng = np.random.default_rng(11)
    paris = pd.Series(pd.date_range("2021-03-01", periods=n, freq="7h", tz="Europe/Paris"))
    frame = pd.DataFrame({
        "code": [f"{a}{b}" for a, b in zip(rng.choice(list("ABCDEFGH"), n),
                                           rng.integers(10_000, 99_999, n), strict=True)],
        "price": [decimal.Decimal(f"{v:.2f}") for v in rng.uniform(1, 100, n)],
        "stock": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 50, n)),
                          dtype="Int64"),
        "active": rng.random(n) < 0.7,
        "seen_at": paris,
        "born": [dt.date(1980, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 9000, n)],
        "note": [" ".join(["word"] * int(k)) for k in rng.integers(1, 8, n)],
        "attrs": [json.dumps({"color": "red", "size": int(s)}) for s in rng.integers(1, 5, n)],
        "tags": [list(range(int(k))) for k in rng.integers(0, 4, n)],
        "blob": [bytes(int(k)) + b"x" for k in rng.integers(1, 30, n)],
        "token": [str(uuid.UUID(int=int(v))) for v in rng.integers(0, 2**62, n)],
        "addr": [f"10.0.0.{int(v)}" for v in rng.integers(1, 250, n)],
        "wait": pd.to_timedelta(rng.integers(60, 7200, n), unit="s"),
        "sku": [f"SKU{i:06d}" for i in range(n)],
    })
    metadata = _single_table({
        "code": {"sdtype": "id", "regex_format": "[A-H][0-9]{5}"},
        "price": {"sdtype": "numerical", "scale": 2},
        "stock": {"sdtype": "numerical", "nullable": True},
        "active": {"sdtype": "boolean"},
        "seen_at": {"sdtype": "datetime"},
        "born": {"sdtype": "datetime"},
        "note": {"sdtype": "unknown", "generator": "text", "max_length": 20},
        "attrs": {"sdtype": "unknown", "generator": "json"},
        "tags": {"sdtype": "unknown", "generator": "array"},
        "blob": {"sdtype": "unknown", "generator": "bytes"},
        "token": {"sdtype": "unknown", "generator": "uuid"},
        "addr": {"sdtype": "unknown", "generator": "ip"},
        "wait": {"sdtype": "unknown", "generator": "interval"},
        "sku": {"sdtype": "categorical"},
    }, primary_key="code")
    metadata.add_alternate_keys("t", ["sku"])
    return frame, metadata


def test_source_dtypes_and_value_kinds_are_restored():
    frame, metadata = _rich_frame()
    tt = _fitted("t", metadata, frame)
    out = tt.reverse_transform(_uniform(tt, 600, 12), np.random.default_rng(13))
    assert list(out.columns) == [c for c in frame.columns if c != "code"]
    for column in out.columns:
        assert str(out[column].dtype) == str(frame[column].dtype), column
    assert str(out["seen_at"].dt.tz) == "Europe/Paris"
    assert all(isinstance(v, decimal.Decimal) for v in out["price"])
    assert all(v.as_tuple().exponent == -2 for v in out["price"])
    assert all(type(v) is dt.date for v in out["born"])
    assert out["stock"].isna().any() and out["stock"].dropna().between(0, 49).all()
    assert out["active"].dtype == bool and 0.55 < out["active"].mean() < 0.85


def test_generated_by_type_columns_are_shaped_like_the_source():
    frame, metadata = _rich_frame()
    tt = _fitted("t", metadata, frame)
    out = tt.reverse_transform(_uniform(tt, 600, 12), np.random.default_rng(13))
    assert out["note"].str.len().max() <= 20 and out["note"].str.len().min() >= 1
    objects = out["attrs"].map(json.loads)
    assert objects.map(lambda o: set(o) <= {"color", "size"}).all()
    assert objects.map(len).mean() > 1.5
    assert out["tags"].map(len).between(0, 3).all() and out["tags"].map(len).nunique() > 1
    lengths = out["blob"].map(len)
    assert lengths.between(2, 30).all() and not out["blob"].isin(frame["blob"]).any()
    assert out["token"].map(lambda v: uuid.UUID(v).version == 4).all()
    assert out["addr"].map(lambda v: ipaddress.ip_address(v).version == 4).all()
    assert out["wait"].between(pd.Timedelta(60, "s"), pd.Timedelta(7200, "s")).all()
    assert out["sku"].is_unique and not out["sku"].isin(frame["sku"]).all()


def test_generated_keys_are_unique():
    frame, metadata = _rich_frame()
    tt = _fitted("t", metadata, frame)
    keys = tt.generate_keys(20_000, np.random.default_rng(0))
    assert keys["code"].is_unique
    assert keys["code"].str.fullmatch(r"[A-H][0-9]{5}").all()
    with pytest.raises(Exception, match="allows only 800000"):
        tt.generate_keys(900_000, np.random.default_rng(0))

    learned = pd.DataFrame({"cid": ["ALFKI", "ANATR", "ANTON", "AROUT", "BERGS", "BLAUS"],
                            "uid": [uuid.uuid4() for _ in range(6)], "n": range(6)})
    metadata = Metadata.from_dict({"tables": {
        "c": {"primary_key": "cid", "columns": {"cid": {"sdtype": "id"},
                                               "uid": {"sdtype": "id", "generator": "uuid"},
                                               "n": {"sdtype": "numerical"}},
              "alternate_keys": ["uid"]},
        "o": {"primary_key": "oid", "columns": {"oid": {"sdtype": "id"}}}}})
    tt = _fitted("c", metadata, learned)
    keys = tt.generate_keys(5000, np.random.default_rng(1))
    assert keys["cid"].is_unique and keys["cid"].str.fullmatch(r"[A-Z]{5}").all()
    body = tt.reverse_transform(_uniform(tt, 5000, 0), np.random.default_rng(2))
    assert body["uid"].map(lambda v: isinstance(v, uuid.UUID)).all() and body["uid"].is_unique
    ints = _fitted("o", metadata, pd.DataFrame({"oid": [3, 9]}))
    assert ints.generate_keys(3, np.random.default_rng(0), start=101)["oid"].tolist() == [
        101, 102, 103]


# -------------------------------------------------------------------- saving, seeding
def test_to_dict_from_dict_samples_identically():
    frame, metadata = _rich_frame()
    tt = _fitted("t", metadata, frame, locales=["en_US", "fr_FR"])
    state = json.loads(json.dumps(tt.to_dict()))
    loaded = TableTransformer.from_dict(state, metadata)
    numeric = _uniform(tt, 800, 14)
    a = tt.reverse_transform(numeric, np.random.default_rng(15))
    b = loaded.reverse_transform(numeric, np.random.default_rng(15))
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(tt.generate_keys(50, np.random.default_rng(3)),
                                  loaded.generate_keys(50, np.random.default_rng(3)))
    assert loaded.modeled_columns == tt.modeled_columns
    assert loaded.source_dtypes == tt.source_dtypes
    # The encoding is plain data too: a loaded transformer encodes as the fitted one.
    pd.testing.assert_frame_equal(loaded.transform(frame), tt.transform(frame))


def test_same_seed_same_rows_other_seed_other_rows(chinook, chinook_metadata):
    frame = chinook["Customer"]
    tt = _fitted("Customer", chinook_metadata, frame)
    numeric = tt.transform(frame)
    pd.testing.assert_frame_equal(numeric, _fitted("Customer", chinook_metadata,
                                                   frame).transform(frame))
    a = tt.reverse_transform(numeric, np.random.default_rng(20))
    b = tt.reverse_transform(numeric, np.random.default_rng(20))
    c = tt.reverse_transform(numeric, np.random.default_rng(21))
    pd.testing.assert_frame_equal(a, b)
    assert not a["Email"].equals(c["Email"])


def test_transform_keeps_row_order_and_index(chinook, chinook_metadata):
    frame = chinook["Invoice"]
    tt = _fitted("Invoice", chinook_metadata, frame)
    shuffled = frame.sample(frac=1.0, random_state=0)
    numeric = tt.transform(shuffled)
    assert numeric.index.equals(shuffled.index)
    back = tt.reverse_transform(numeric.reset_index(drop=True), np.random.default_rng(0))
    assert back["InvoiceDate"].tolist() == shuffled["InvoiceDate"].tolist()


# ------------------------------------------------------------------------------- errors
def test_text_in_a_numerical_column_is_a_data_error():
    frame = pd.DataFrame({"id": [1, 2, 3], "amount": ["1.5", "abc", "2"]})
    metadata = _single_table({"id": {"sdtype": "id"}, "amount": {"sdtype": "numerical"}})
    with pytest.raises(DataError, match=r"'t\.amount'.*expected numbers.*'abc'"):
        TableTransformer("t", metadata).fit(frame)


def test_missing_column_and_bad_regex_are_named():
    metadata = _single_table({"id": {"sdtype": "id"}, "x": {"sdtype": "numerical"}})
    with pytest.raises(DataError, match=r"Table 't'.*'x'"):
        TableTransformer("t", metadata).fit(pd.DataFrame({"id": [1]}))
    metadata = _single_table({"id": {"sdtype": "id", "regex_format": "(a|b)[0-9]"}})
    tt = _fitted("t", metadata, pd.DataFrame({"id": ["a1", "b2"]}))
    with pytest.raises(MetadataError, match=r"'t\.id'.*groups"):
        tt.generate_keys(2, np.random.default_rng(0))


def test_empty_table_and_key_only_table():
    metadata = _single_table({"id": {"sdtype": "id"}, "x": {"sdtype": "numerical",
                                                            "nullable": True}})
    tt = _fitted("t", metadata, pd.DataFrame({"id": pd.Series([], dtype="int64"),
                                              "x": pd.Series([], dtype="float64")}))
    assert tt.modeled_columns == []
    out = tt.reverse_transform(pd.DataFrame(index=range(3)), np.random.default_rng(0))
    assert out["x"].isna().all() and len(out) == 3
    assert tt.generate_keys(3, np.random.default_rng(0))["id"].tolist() == [1, 2, 3]


def test_names_look_like_their_provider(chinook, chinook_metadata):
    tt = _fitted("Customer", chinook_metadata, chinook["Customer"])
    out = tt.reverse_transform(_uniform(tt, 200, 0), np.random.default_rng(0))
    assert out["FirstName"].map(lambda v: bool(re.fullmatch(r"[A-Z][\w'-]+", v))).mean() > 0.95
    assert not set(out["Email"]) & set(chinook["Customer"]["Email"])


# ----------------------------------------------------------------- encoders, generators
def _rdt_fitted(tt: TableTransformer, frame: pd.DataFrame):
    """rdt's HyperTransformer fitted on the table's prepared columns, as hma_db configured
    it before it encoded without rdt: the oracle for the numbers and their decoding."""
    from rdt import HyperTransformer
    from rdt.transformers import FloatFormatter, UnixTimestampEncoder

    from hma_db.transform.encoders import FrequencyIntervalEncoder

    prepared, sdtypes = tt._prepare(frame)
    chosen = {}
    for column, sdtype in sdtypes.items():
        if sdtype == "numerical":
            chosen[column] = FloatFormatter(learn_rounding_scheme=True,
                                            enforce_min_max_values=True,
                                            missing_value_generation=None)
        elif sdtype == "datetime":
            chosen[column] = UnixTimestampEncoder(enforce_min_max_values=True,
                                                  missing_value_generation=None)
        else:
            chosen[column] = FrequencyIntervalEncoder(
                ordered=bool(tt._specs.get(column, {}).get("ordered")))
    hyper = HyperTransformer()
    hyper.set_config({"sdtypes": sdtypes, "transformers": chosen})
    hyper.fit(prepared)
    return hyper, prepared, sdtypes


def test_the_encoding_gives_the_numbers_rdt_gives():
    """Numbers and timestamps are what rdt's FloatFormatter and UnixTimestampEncoder give
    (timestamps in seconds), and categories (and null flags) fall in the slices rdt's
    transformer gives them, as wide as their shares."""
    from benchmarks.bench_fit import wide_case

    frames, meta = wide_case(rows=60, columns=12)
    frame, metadata = frames["wd_wide"], Metadata.from_dict(meta)
    frame.loc[::7, "c1"] = np.nan
    tt = _fitted("wd_wide", metadata, frame)
    ours = tt.transform(frame)
    assert "c1.is_null" in ours.columns
    hyper, prepared, sdtypes = _rdt_fitted(tt, frame)
    theirs = hyper.transform(prepared)
    encoders = hyper.get_config()["transformers"]
    checked = set()
    for column in tt.modeled_columns:
        if sdtypes[column] == "numerical":
            assert np.array_equal(ours[column].to_numpy(), theirs[column].to_numpy(float))
        elif sdtypes[column] == "datetime":
            assert np.array_equal(ours[column].to_numpy(), theirs[column].to_numpy() / 1e9)
        else:
            codes = prepared[column].to_numpy()
            intervals = {code: (lo, hi) for code, lo, hi in tt._intervals(column)}
            assert intervals == {c: tuple(v) for c, v in encoders[column].intervals.items()}
            low = np.array([intervals[c][0] for c in codes])
            high = np.array([intervals[c][1] for c in codes])
            values = ours[column].to_numpy()
            assert ((values >= low) & (values < high)).all()
            shares = pd.Series(codes).value_counts(normalize=True)
            assert all(np.isclose(hi - lo, shares[c]) for c, (lo, hi) in intervals.items())
        checked.add(sdtypes[column])
    assert checked == {"numerical", "datetime", "categorical"}
    pd.testing.assert_frame_equal(tt.transform(frame), ours)  # repeatable


def test_frequency_interval_encoder_is_an_rdt_transformer():
    from rdt import HyperTransformer

    from hma_db.transform.encoders import FrequencyIntervalEncoder

    codes = pd.DataFrame({"c": np.repeat([0, 1, 2], [600, 300, 100])})
    hyper = HyperTransformer()
    hyper.set_config({"sdtypes": {"c": "categorical"},
                      "transformers": {"c": FrequencyIntervalEncoder()}})
    hyper.fit(codes)
    encoder = hyper.get_config()["transformers"]["c"]
    assert list(encoder.intervals) == [0, 1, 2]
    assert np.allclose(list(encoder.intervals.values()), [[0.0, 0.6], [0.6, 0.9], [0.9, 1.0]])
    encoded = hyper.transform(codes)["c"].to_numpy()
    for code, (low, high) in encoder.intervals.items():
        inside = encoded[codes["c"].to_numpy() == code]
        assert ((inside >= low) & (inside < high)).all()
    assert np.array_equal(hyper.transform(codes)["c"].to_numpy(), encoded)  # repeatable
    assert (hyper.reverse_transform(pd.DataFrame({"c": encoded}))["c"] == codes["c"]).all()


def test_decoding_agrees_with_rdts_own_reverse_transform(chinook, chinook_metadata):
    frame = chinook["Track"]
    tt = _fitted("Track", chinook_metadata, frame)
    rng = np.random.default_rng(0)
    numeric = tt.transform(frame)
    sampled = numeric.sample(n=2000, replace=True, random_state=1).reset_index(drop=True)
    sampled["Milliseconds"] *= rng.uniform(0.5, 1.5, len(sampled))
    sampled["UnitPrice"] += rng.normal(0, 0.1, len(sampled))
    ours = tt.reverse_transform(sampled, np.random.default_rng(0))
    theirs = _rdt_fitted(tt, frame)[0].reverse_transform(sampled[tt.modeled_columns])
    for column in ("Milliseconds", "Bytes"):
        assert np.allclose(ours[column].astype(float), theirs[column].astype(float))
    for column in ("AlbumId", "GenreId", "UnitPrice"):
        categories = [from_json(v) for v in tt._specs[column]["categories"]]
        decoded = theirs[column].to_numpy()
        known = decoded < len(categories)
        assert (ours[column][known].to_numpy() == np.array(categories)[decoded[known]]).all()


def test_generated_text_is_whole_words_of_source_like_length():
    rng = np.random.default_rng(5)
    n = 3000
    notes = [" ".join(["lorem"] * int(k)) for k in rng.integers(1, 12, n)]
    frame = pd.DataFrame({"id": range(n), "note": notes})
    metadata = _single_table({"id": {"sdtype": "id"},
                              "note": {"sdtype": "unknown", "generator": "text",
                                       "max_length": 70}})
    tt = _fitted("t", metadata, frame)
    out = tt.reverse_transform(pd.DataFrame(index=range(n)), np.random.default_rng(6))
    source, made = frame["note"].str.len(), out["note"].str.len()
    assert made.max() <= 70 and abs(made.mean() - source.mean()) < 0.1 * source.mean()
    assert abs(made.quantile(0.9) - source.quantile(0.9)) < 8
    words = set(" ".join(out["note"]).split())
    assert "lorem" not in words and len(words) > 100


def test_zero_rows_and_garbage_dates():
    frame, metadata = _rich_frame()
    tt = _fitted("t", metadata, frame)
    empty = tt.reverse_transform(pd.DataFrame({c: [] for c in tt.modeled_columns}),
                                 np.random.default_rng(0))
    assert len(empty) == 0 and list(empty.columns) == [c for c in frame.columns if c != "code"]
    assert len(tt.generate_keys(0, np.random.default_rng(0))) == 0
    bad = pd.DataFrame({"id": [1, 2], "when": ["2020-01-01", "not a date"]})
    metadata = _single_table({"id": {"sdtype": "id"}, "when": {"sdtype": "datetime"}})
    with pytest.raises(DataError, match=r"'t\.when'.*expected dates"):
        TableTransformer("t", metadata).fit(bad)


def test_large_table_encoding_uses_every_row():
    rng = np.random.default_rng(8)
    n = 30_000
    kinds = rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]).astype(object)
    kinds[rng.choice(n, 6, replace=False)] = "seldom"  # frequent enough (>= 5), but rare
    frame = pd.DataFrame({"id": range(n), "kind": kinds,
                          "amount": np.round(rng.lognormal(3, 1, n), 2),
                          "at": [dt.time(int(h), int(m)) for h, m in
                                 zip(rng.integers(0, 24, n), rng.integers(0, 60, n), strict=True)]})
    metadata = _single_table({"id": {"sdtype": "id"}, "kind": {"sdtype": "categorical"},
                              "amount": {"sdtype": "numerical"}, "at": {"sdtype": "datetime"}})
    tt = _fitted("t", metadata, frame)
    spec = tt._specs["kind"]
    widths = {tuple(spec["categories"])[code]: hi - lo for code, lo, hi in spec["intervals"]}
    assert widths["seldom"] == pytest.approx(6 / n)
    assert widths["a"] == pytest.approx((frame["kind"] == "a").mean())
    out = tt.reverse_transform(tt.transform(frame), np.random.default_rng(0))
    assert (out["kind"] == frame["kind"]).all() and (out["amount"] == frame["amount"]).all()
    assert (out["at"] == frame["at"]).all()
    theirs = _rdt_fitted(tt, frame)[0].reverse_transform(tt.transform(frame))
    assert theirs["amount"].min() == frame["amount"].min()
    assert theirs["amount"].max() == frame["amount"].max()


def test_each_row_keeps_one_locale_across_its_personal_data(chinook, chinook_metadata):
    from faker.providers.person.en_US import Provider as EnglishNames

    french, english = set(FrenchNames.first_names), set(EnglishNames.first_names)
    metadata = chinook_metadata.copy()  # no country column to choose the locale of addresses
    metadata.update_column("Country", "Customer", sdtype="country", pii=True)
    tt = _fitted("Customer", metadata, chinook["Customer"], locales=["en_US", "fr_FR"])
    assert tt.modeled_columns == []  # every column personal data: 3000 rows of no numbers
    out = tt.reverse_transform(pd.DataFrame(index=range(3000)), np.random.default_rng(1))
    french_style = out["Address"].str.match(r"^(\d+, )?(rue|avenue|boulevard|chemin|place|"
                                            r"impasse|all[ée]e|quai|route)\b", case=False)
    only_french = out["FirstName"].isin(french - english)
    only_english = out["FirstName"].isin(english - french)
    assert only_french.sum() > 300 and only_english.sum() > 300
    assert french_style[only_french].mean() > 0.95
    assert french_style[only_english].mean() < 0.05
    assert out["Email"].is_unique


_PROCESS_SCRIPT = """
import hashlib, sys
import numpy as np, pandas as pd
sys.path.insert(0, {tests!r})
from test_transform import _rich_frame, _uniform
from hma_db.transform.table import TableTransformer
frame, metadata = _rich_frame()
tt = TableTransformer("t", metadata, locales=["en_US", "de_DE"])
tt.fit(frame)
numbers = tt.transform(frame)
rows = tt.reverse_transform(_uniform(tt, 300, 1), np.random.default_rng(2))
keys = tt.generate_keys(300, np.random.default_rng(3))
text = numbers.round(12).to_csv() + rows.to_csv() + keys.to_csv()
print(hashlib.sha256(text.encode()).hexdigest())
"""


def test_same_seed_gives_the_same_rows_in_separate_processes():
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = _PROCESS_SCRIPT.format(tests=str(Path(__file__).parent))
    digests = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=env, check=True, timeout=300)
        digests.append(done.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1] and len(digests[0]) == 64


def test_prefixed_keys_stay_within_max_length():
    metadata = _single_table({"code": {"sdtype": "id", "max_length": 5}}, primary_key="code")
    tt = _fitted("t", metadata, pd.DataFrame({"code": ["C1", "C22", "C333"]}))
    assert tt.generate_keys(3, np.random.default_rng(0))["code"].tolist() == ["C1", "C2", "C3"]
    keys = tt.generate_keys(20_000, np.random.default_rng(0))["code"]
    assert keys.is_unique and keys.str.len().max() <= 5 and keys.str.startswith("C").all()


def test_decimals_keep_their_places_and_nulls_on_both_paths():
    from hma_db.schema.values import decimals

    values = np.array([0.125, 1.005, -3.999, np.nan, 12.0, 1e20 / 3])
    small = decimals(values[:5], 2)
    assert [str(v) for v in small] == ["0.12", "1.00", "-4.00", "None", "12.00"]
    # A value too large to scale exactly in float64 goes through text, with the same places.
    large = decimals(values, 2)
    assert large[3] is None and str(large[5]) == f"{1e20 / 3:.2f}"
    assert [str(v) for v in large[:3]] == [f"{v:.2f}" for v in values[:3]]
    assert all(isinstance(v, decimal.Decimal) for v in large if v is not None)
    assert decimals(np.array([np.nan]), 3).tolist() == [None]


def test_composite_key_columns_are_unique_together_not_alone():
    metadata = Metadata.from_dict({"tables": {"t": {
        "primary_key": ["letter", "digit"],
        "columns": {"letter": {"sdtype": "id", "regex_format": "[A-Z]"},
                    "digit": {"sdtype": "id", "regex_format": "[0-9]"}}}}})
    frame = pd.DataFrame({"letter": list("AABB"), "digit": list("0101")})
    tt = _fitted("t", metadata, frame)
    # No column alone has room for 200 rows: the combinations (260 of them) do.
    keys = tt.generate_keys(200, np.random.default_rng(0))
    assert not keys.duplicated().any()
    assert keys["letter"].str.fullmatch("[A-Z]").all() and keys["digit"].str.fullmatch("[0-9]").all()
    # Generated in two spans of one run, as chunked sampling does: still no repeated pair.
    first = tt.generate_keys(120, np.random.default_rng(1), span=keygen.Span(7, 0, 260))
    second = tt.generate_keys(140, np.random.default_rng(2), span=keygen.Span(7, 120, 260))
    assert not pd.concat([first, second]).duplicated().any()
    with pytest.raises(SamplingError, match=r"'t\.letter'.*'t\.digit'.*260"):
        tt.generate_keys(261, np.random.default_rng(0))
