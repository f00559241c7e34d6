"""Masking policies (issue 16): per column keep, hash, mask, null, constant, fake and model; per
table keep and empty; reference tables kept by default. Through the Python API here on Chinook
(SQLite); the database clones and the command line are in tests/test_policies_clone.py.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import CHINOOK_SQLITE

from hma_db import HMASynthesizer, Metadata, MetadataError, reflect
from hma_db.schema import parse_policy, reference_tables
from hma_db.transform.masking import hash_values, mask_values

SOURCE = f"sqlite:///{CHINOOK_SQLITE}"


@pytest.fixture(scope="module")
def chinook() -> tuple[Metadata, dict[str, pd.DataFrame]]:
    metadata = reflect(SOURCE)
    data = {t: pd.read_sql_table(t, SOURCE) for t in metadata.tables}
    return metadata, data


def _fit(metadata: Metadata, data, seed: int = 3) -> HMASynthesizer:
    synthesizer = HMASynthesizer(metadata, seed=seed)
    synthesizer.fit(data)
    return synthesizer


# ------------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(("text", "expected"), [
    ("keep", ("keep", None, None, 0, False, None)),
    ("fake:company", ("fake", "company", None, 0, False, None)),
    ("fake:city:fr_FR", ("fake", "city", "fr_FR", 0, False, None)),
    ("mask:last=4", ("mask", None, None, 4, False, None)),
    ("mask:domain", ("mask", None, None, 0, True, None)),
    ("constant:a:b", ("constant", None, None, 0, False, "a:b")),
])
def test_policies_parse(text, expected):
    p = parse_policy(text, "x")
    assert (p.name, p.provider, p.locale, p.keep_last, p.keep_domain, p.value) == expected


@pytest.mark.parametrize("text", ["shred", "mask:first=2", "keep:x", "fake:city:Paris", ""])
def test_unknown_policies_are_refused_with_the_forms(text):
    with pytest.raises(MetadataError, match=r"column 'a.b': unknown policy|locale"):
        parse_policy(text, "column 'a.b'")


def test_policy_problems_are_listed_by_validate(chinook):
    metadata = chinook[0].copy()
    metadata.update_column("CustomerId", "Customer", policy="keep")
    metadata.update_column("FirstName", "Customer", policy="null")
    metadata.update_column("Total", "Invoice", policy="fake")
    metadata.tables["Album"]["policy"] = "keep"
    metadata.tables["Genre"]["policy"] = "empty"
    with pytest.raises(MetadataError) as info:
        metadata.validate()
    text = str(info.value)
    assert "column 'Customer.CustomerId': a key column has no policy" in text
    assert "column 'Customer.FirstName': policy 'null' on a NOT NULL column" in text
    assert "column 'Invoice.Total': policy 'fake' on a numerical column needs a Faker" in text
    assert "table 'Album' is kept as it is, but its parent 'Artist' is modeled" in text
    assert "table 'Genre' is empty, but 'Track' references it" in text


# ------------------------------------------------------------------------------- columns
def test_hash_is_keyed_consistent_and_fits_the_width(monkeypatch):
    emails = pd.Series(["ann@example.com", "bob.smith@mail.org", "ann@example.com", "x@y.z"])
    monkeypatch.setenv("HMA_DB_HASH_KEY", "first key")
    once, again = hash_values(emails, "str", "t.c"), hash_values(emails.iloc[::-1], "str", "t.c")
    assert once[0] == once[2] == again[2] and once[0] != emails[0]
    assert (once.str.len() == emails.str.len()).all()
    assert once.str.fullmatch(r"[a-z.]+@[a-z]+\.[a-z]+").all()  # classes kept, '@' and '.' too
    monkeypatch.setenv("HMA_DB_HASH_KEY", "another key")
    assert hash_values(emails, "str", "t.c")[0] != once[0]
    monkeypatch.delenv("HMA_DB_HASH_KEY")
    with pytest.raises(Exception, match="HMA_DB_HASH_KEY"):
        hash_values(emails, "str", "t.c")


def test_mask_keeps_classes_and_the_chosen_part():
    values = pd.Series(["AB-1234", "jane.doe@corp.com", "Zoë"])
    assert mask_values(values, parse_policy("mask", "x"), "str", "x").tolist() == [
        "XX-9999", "xxxx.xxx@xxxx.xxx", "Xxx"]
    assert mask_values(values, parse_policy("mask:last=3", "x"), "str", "x")[0] == "XX-9234"
    assert mask_values(values, parse_policy("mask:domain", "x"), "str", "x")[1] == \
        "xxxx.xxx@corp.com"


def test_column_policies_through_the_synthesizer(chinook, monkeypatch):
    monkeypatch.setenv("HMA_DB_HASH_KEY", "k")
    metadata, data = chinook
    metadata = metadata.copy()
    for column, policy in [("Email", "hash"), ("Company", "fake:company"), ("City", "keep"),
                           ("Phone", "mask:last=4"), ("Fax", "null"), ("State", "constant:ZZ"),
                           ("Country", "model")]:
        metadata.update_column(column, "Customer", policy=policy)
    metadata.update_column("Email", "Employee", policy="hash")
    out = _fit(metadata, data).sample()["Customer"]
    real = data["Customer"]
    assert set(out["City"]) <= set(real["City"])  # keep: source values only
    hashed = set(hash_values(real["Email"], "str", "x"))
    assert set(out["Email"]) <= hashed and not set(out["Email"]) & set(real["Email"])
    assert out["Phone"].dropna().str[-4:].isin(real["Phone"].dropna().str[-4:]).all()
    assert not out["Phone"].dropna().isin(real["Phone"]).any()
    assert out["Fax"].isna().all() and (out["State"] == "ZZ").all()
    companies = out["Company"].dropna()
    assert len(companies) and not companies.isin(real["Company"]).any()
    assert set(out["Country"]) <= set(real["Country"])


def test_policies_are_saved_with_the_model(chinook, tmp_path, monkeypatch):
    monkeypatch.setenv("HMA_DB_HASH_KEY", "k")
    metadata, data = chinook
    metadata = metadata.copy()
    metadata.update_column("Email", "Customer", policy="hash")
    metadata.tables["Genre"]["policy"] = "keep"
    synthesizer = _fit(metadata, data)
    for name in ("model.json", "model.pkl"):
        synthesizer.save(tmp_path / name)
        loaded = HMASynthesizer.load(tmp_path / name)
        assert loaded.get_metadata().tables["Genre"]["policy"] == "keep"
        sample = loaded.sample()
        pd.testing.assert_frame_equal(sample["Genre"], data["Genre"], check_dtype=False)
        assert not sample["Customer"]["Email"].isin(data["Customer"]["Email"]).any()


# -------------------------------------------------------------------------------- tables
def test_a_kept_table_is_copied_and_its_children_follow_its_real_rows(chinook):
    metadata, data = chinook
    metadata = metadata.copy()
    for table in ("Genre", "MediaType"):
        metadata.tables[table]["policy"] = "keep"
    synthesizer = _fit(metadata, data)
    for scale, chunk_rows in ((1.0, None), (1.0, 500), (0.5, None)):
        synthesizer.reset_sampling()
        chunks = list(synthesizer.sample_chunks(scale=scale, chunk_rows=chunk_rows)) \
            if chunk_rows else [synthesizer.sample(scale=scale)]
        out = {t: pd.concat([c[t] for c in chunks], ignore_index=True) for t in metadata.tables}
        for table in ("Genre", "MediaType"):
            pd.testing.assert_frame_equal(out[table], data[table], check_dtype=False)
        for parent in ("MediaTypeId", "GenreId"):  # the real tracks per media type and genre
            counts = out["Track"][parent].value_counts()
            real = data["Track"][parent].value_counts()
            if scale == 1.0:  # in one chunk or in seven
                assert counts.to_dict() == real.to_dict()
            else:
                assert (counts - real * scale).abs().max() <= 1
        assert set(out["Track"]["GenreId"]) <= set(data["Genre"]["GenreId"])


def test_an_empty_table_has_no_rows(chinook):
    metadata, data = chinook
    metadata = metadata.copy()
    for table in ("Playlist", "PlaylistTrack"):
        metadata.tables[table]["policy"] = "empty"
    out = _fit(metadata, data).sample()
    assert len(out["Playlist"]) == len(out["PlaylistTrack"]) == 0
    assert list(out["Playlist"].columns) == list(data["Playlist"].columns)
    assert len(out["Track"]) == len(data["Track"])


def test_reference_tables_of_chinook():
    metadata = reflect(SOURCE, reference_tables=False)
    found = reference_tables(metadata.tables, metadata.relationships, metadata.row_counts,
                             metadata.topological_order())
    # Artist has 275 rows of names, Employee personal data: neither is a lookup table.
    assert found == ["Genre", "MediaType", "Playlist"]
    assert all("policy" not in metadata.tables[t] for t in found)
    by_default = reflect(SOURCE)
    assert [t for t in by_default.tables if by_default.tables[t].get("policy") == "keep"] == \
        ["Genre", "MediaType", "Playlist"]


# -------------------------------------------------------------------------------- where
def test_where_keeps_the_chosen_rows_and_what_depends_on_them(chinook):
    from hma_db.source import read_tables

    metadata = chinook[0].copy()
    metadata.tables["Invoice"]["where"] = "InvoiceDate >= '2024-01-01'"
    metadata.tables["Genre"]["where"] = "GenreId <= 10"
    data = read_tables(SOURCE, metadata)
    real = chinook[1]
    recent = real["Invoice"]["InvoiceDate"] >= pd.Timestamp("2024-01-01")
    assert len(data["Invoice"]) == int(recent.sum()) < len(real["Invoice"])
    assert data["InvoiceLine"]["InvoiceId"].isin(data["Invoice"]["InvoiceId"]).all()
    assert len(data["Genre"]) == 10 and data["Track"]["GenreId"].isin(range(1, 11)).all()
    # the lines of the tracks of other genres go too, and so do their playlist entries
    assert data["InvoiceLine"]["TrackId"].isin(data["Track"]["TrackId"]).all()
    assert data["PlaylistTrack"]["TrackId"].isin(data["Track"]["TrackId"]).all()
    out = _fit(metadata, data).sample()
    assert len(out["Invoice"]) == len(data["Invoice"]) and len(out["Genre"]) == 10


@pytest.mark.parametrize("text", ["1 = 1; DROP TABLE Genre", "x = 1 -- and more",
                                  "x = 'open", "(x = 1", "x /* y */ = 1"])
def test_a_where_that_could_end_or_hide_its_query_is_refused(chinook, text):
    metadata = chinook[0].copy()
    metadata.tables["Genre"]["where"] = text
    with pytest.raises(MetadataError, match="table 'Genre': where"):
        metadata.validate()


def test_hash_gives_one_pseudonym_in_two_tables_and_two_runs(chinook, tmp_path, monkeypatch):
    """An e-mail held by a customer and by an employee: both columns hashed with one key hold the
    same pseudonym in the model (and so in the target), in two separate fits."""
    monkeypatch.setenv("HMA_DB_HASH_KEY", "shared key")
    metadata, data = chinook
    metadata = metadata.copy()
    shared = data["Employee"]["Email"].iloc[0]
    data = {**data, "Customer": data["Customer"].assign(
        Email=[shared, *data["Customer"]["Email"].iloc[1:]])}
    for table in ("Customer", "Employee"):
        metadata.update_column("Email", table, policy="hash")
    pseudonym = hash_values(pd.Series([shared]), "str", "x")[0]
    assert len(pseudonym) == len(shared) and pseudonym != shared
    for run in ("first", "second"):
        _fit(metadata, data, seed=len(run)).save(tmp_path / f"{run}.json")
        text = (tmp_path / f"{run}.json").read_text()
        assert text.count(f'"{pseudonym}"') >= 2 and shared not in text  # both tables' values
    monkeypatch.setenv("HMA_DB_HASH_KEY", "another key")
    assert hash_values(pd.Series([shared]), "str", "x")[0] != pseudonym
