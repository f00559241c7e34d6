"""Columns that keep one value within each parent (every track of an album has one price, one
genre and one media type) keep it in the synthetic parents, whole and in chunks; chance and
keys are not taken for such a column; the choice is saved with the model and checked when
loaded."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import CHINOOK_SQLITE

from hma_db import HMASynthesizer, Metadata, load_synthesizer, read_tables, reflect
from hma_db.errors import ModelFileError


@pytest.fixture(scope="module")
def chinook():
    """Chinook with its lookup tables modeled (Genre and MediaType are kept as they are by
    default, and a kept table's children follow its real rows: never held)."""
    url = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(url, reference_tables=False)
    data = read_tables(url, metadata)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=5)
    synthesizer.fit(data)
    return synthesizer, data


def _albums(tracks: pd.DataFrame) -> pd.DataFrame:
    return tracks.groupby("AlbumId")[["UnitPrice", "GenreId", "MediaTypeId"]].nunique()


def test_an_albums_tracks_keep_one_price_genre_and_media_type(chinook):
    synthesizer, data = chinook
    held = {(w["foreign_key"], w["column"]) for w in
            synthesizer.table_transformers["Track"].within_parent}
    assert held == {("AlbumId", "UnitPrice"), ("AlbumId", "GenreId"), ("AlbumId", "MediaTypeId")}
    real = _albums(data["Track"])
    assert (real.UnitPrice == 1).all() and real.GenreId.mean() < 1.1
    for scale, chunk_rows in ((1.0, None), (3.0, 2_000)):
        if chunk_rows is None:
            out = synthesizer.sample(scale=scale)
        else:
            chunks = list(synthesizer.sample_chunks(scale=scale, chunk_rows=chunk_rows))
            assert len(chunks) > 2
            out = {t: pd.concat([c[t] for c in chunks], ignore_index=True) for t in chunks[0]}
        albums = _albums(out["Track"])
        assert (albums.UnitPrice == 1).all()  # 56 of 347 albums mixed prices before
        assert albums.MediaTypeId.mean() < 1.05 and albums.GenreId.mean() < 1.35  # 4.5 before
        # the prices keep their frequencies and a line still sells at its track's price
        videos = (out["Track"].UnitPrice.astype(float) > 1).mean()
        assert abs(videos - (data["Track"].UnitPrice.astype(float) > 1).mean()) < 0.06
        lines = out["InvoiceLine"].merge(out["Track"][["TrackId", "UnitPrice"]], on="TrackId",
                                         suffixes=("", "_track"))
        assert (lines.UnitPrice == lines.UnitPrice_track).all()
        synthesizer.validate_constraints(out)  # Invoice.Total is still its lines' sum


def test_a_kept_lookup_tables_children_keep_their_real_counts_and_one_value_per_album():
    url = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(url)  # Genre and MediaType kept as they are
    data = read_tables(url, metadata)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=5)
    synthesizer.fit(data)
    tracks = synthesizer.sample()["Track"]
    albums = _albums(tracks)
    assert (albums.UnitPrice == 1).all()
    for column in ("GenreId", "MediaTypeId"):
        assert tracks[column].value_counts().to_dict() == \
            data["Track"][column].value_counts().to_dict()
    # 80% of albums had two genres or more and 59% two media types (real 3% and 0.3%); the
    # albums not held (the source's share) and one where each genre's tracks end are left
    assert (albums.GenreId > 1).mean() < 0.15 and (albums.MediaTypeId > 1).mean() < 0.03


def _family(seed: int, parents: int = 120) -> tuple[Metadata, dict[str, pd.DataFrame]]:
    """Orders of customers: 'channel' is one per customer, 'flag' is 'Y' in 94% of rows at
    random, 'note' varies."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 9, parents)
    customer = np.repeat(np.arange(parents), sizes)
    channel = rng.choice(["web", "phone", "store"], parents)[customer]
    orders = pd.DataFrame({"order_id": np.arange(len(customer)), "customer_id": customer,
                           "channel": channel,
                           "flag": np.where(rng.random(len(customer)) < 0.94, "Y", "N"),
                           "amount": rng.gamma(2, 30, len(customer)).round(2)})
    customers = pd.DataFrame({"customer_id": np.arange(parents),
                              "age": rng.integers(18, 80, parents)})
    metadata = Metadata.from_dict({"tables": {
        "customers": {"primary_key": "customer_id", "columns": {
            "customer_id": {"sdtype": "id"}, "age": {"sdtype": "numerical"}}},
        "orders": {"primary_key": "order_id", "columns": {
            "order_id": {"sdtype": "id"}, "customer_id": {"sdtype": "id"},
            "channel": {"sdtype": "categorical"}, "flag": {"sdtype": "categorical"},
            "amount": {"sdtype": "numerical"}}}},
        "relationships": [{"parent_table_name": "customers", "parent_primary_key": "customer_id",
                           "child_table_name": "orders", "child_foreign_key": "customer_id"}]})
    return metadata, {"customers": customers, "orders": orders}


def test_chance_and_varying_columns_are_not_held(tmp_path):
    metadata, data = _family(0)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1)
    synthesizer.fit(data)
    held = synthesizer.table_transformers["orders"].within_parent
    assert [(w["column"], round(w["share"], 2)) for w in held] == [("channel", 1.0)]
    out = synthesizer.sample(scale=2)["orders"]
    assert (out.groupby("customer_id").channel.nunique() == 1).all()
    assert out.groupby("customer_id").flag.nunique().mean() > 1.1  # left as drawn


def test_the_held_columns_are_saved_and_a_bad_entry_is_refused(tmp_path):
    metadata, data = _family(1)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=2)
    synthesizer.fit(data)
    path = tmp_path / "model.json"
    synthesizer.save(path)
    loaded = load_synthesizer(path, trust_pickle=False)
    assert loaded.table_transformers["orders"].within_parent == \
        synthesizer.table_transformers["orders"].within_parent
    assert (loaded.sample()["orders"].groupby("customer_id").channel.nunique() == 1).all()
    text = path.read_text()
    for bad in ('{"foreign_key": "customer_id", "column": "nosuch", "share": 1.0}',
                '{"foreign_key": "customer_id", "column": "channel", "share": 7}',
                '{"foreign_key": "customer_id", "column": "channel", "share": 1.0, "x": 1}',
                '{"foreign_key": "amount", "column": "channel", "share": 1.0}'):
        state = json.loads(text)
        transformers = _find_key(state, "within_parent")
        transformers[:] = [json.loads(bad)]
        path.write_text(json.dumps(state))
        with pytest.raises(ModelFileError, match="held within its parent"):
            load_synthesizer(path, trust_pickle=False)


def _find_key(node, key):
    """The list under ``key`` in a nested JSON state (the orders transformer's)."""
    if isinstance(node, dict):
        if key in node and node[key]:
            return node[key]
        for value in node.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    elif isinstance(node, list):
        for value in node:
            found = _find_key(value, key)
            if found is not None:
                return found
    return None


def test_keys_self_references_and_composite_key_parts_are_never_held():
    rng = np.random.default_rng(3)
    n_parents = 60
    sizes = rng.integers(2, 6, n_parents)
    parent = np.repeat(np.arange(n_parents), sizes)
    rows = len(parent)
    region = rng.integers(0, 4, n_parents)[parent]  # one per parent, a composite key's part
    child = pd.DataFrame({"child_id": np.arange(rows), "parent_id": parent,
                          "region_id": region, "code": rng.integers(0, 3, n_parents)[parent],
                          "boss_id": np.where(np.arange(rows) > 0, 0, np.nan)})
    parents = pd.DataFrame({"parent_id": np.arange(n_parents)})
    regions = pd.DataFrame({"region_id": np.repeat(np.arange(4), 3),
                            "code": np.tile(np.arange(3), 4)})
    metadata = Metadata.from_dict({"tables": {
        "parents": {"primary_key": "parent_id", "columns": {"parent_id": {"sdtype": "id"}}},
        "regions": {"primary_key": ["region_id", "code"], "columns": {
            "region_id": {"sdtype": "id"}, "code": {"sdtype": "id"}}},
        "children": {"primary_key": "child_id", "columns": {
            "child_id": {"sdtype": "id"}, "parent_id": {"sdtype": "id"},
            "region_id": {"sdtype": "id"}, "code": {"sdtype": "id"},
            "boss_id": {"sdtype": "id"}}}},
        "relationships": [
            {"parent_table_name": "parents", "parent_primary_key": "parent_id",
             "child_table_name": "children", "child_foreign_key": "parent_id"},
            {"parent_table_name": "regions", "parent_primary_key": ["region_id", "code"],
             "child_table_name": "children", "child_foreign_key": ["region_id", "code"]},
            {"parent_table_name": "children", "parent_primary_key": "child_id",
             "child_table_name": "children", "child_foreign_key": "boss_id"}]})
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=4)
    synthesizer.fit({"parents": parents, "regions": regions, "children": child})
    assert synthesizer.table_transformers["children"].within_parent == []
