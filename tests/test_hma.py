"""The hierarchical model on small built schemas: counts, links, dependence, determinism."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from hma_db.errors import ModelFileError, SamplingError, SynthesizerInputError
from hma_db.model.assign import allocate, assign_self, deduplicate
from hma_db.model.hierarchy import HMAModel, fit_hma
from hma_db.schema.metadata import Metadata


def _table(md: Metadata, name: str, pk, ids=(), nullable=()) -> None:
    md.add_table(name)
    for col in ([pk] if isinstance(pk, str) else list(pk)) + list(ids):
        if col not in md.tables[name]["columns"]:
            md.add_column(col, name, sdtype="id", nullable=col in nullable)
    md.set_primary_key(pk, name)


def _rel(md: Metadata, parent: str, child: str, fk) -> str:
    md.add_relationship(parent, child, md.tables[parent]["primary_key"], fk)
    fk_text = fk if isinstance(fk, str) else "(" + ", ".join(fk) + ")"
    return f"{child}.{fk_text} -> {parent}"


def _children(rng, weights: np.ndarray, mean: float) -> np.ndarray:
    """A shuffled link with Poisson counts whose log-mean follows ``weights``."""
    counts = rng.poisson(np.exp(np.log(mean) + weights - weights.var() / 2))
    link = np.repeat(np.arange(len(weights)), counts)
    return link[rng.permutation(len(link))].astype(np.int64)


def _check_links(model: HMAModel, frames, links) -> None:
    """Every link points at a sampled parent row or is -1."""
    for name, rel in model.relationships.items():
        link = links[name]
        assert link.dtype == np.int64
        assert len(link) == len(frames[rel["child"]]), name
        assert link.min(initial=0) >= -1
        assert link.max(initial=-1) < len(frames[rel["parent"]]), name


def _null_share(link: np.ndarray) -> float:
    return float(np.mean(link == -1))


@pytest.fixture(scope="module")
def parent_child():
    """Customers whose value drives their number of orders and the orders' amounts."""
    rng = np.random.default_rng(0)
    md = Metadata()
    _table(md, "customer", "id")
    _table(md, "orders", "id", ["customer_id"])
    rel = _rel(md, "customer", "orders", "customer_id")
    x = rng.normal(size=2_000)
    link = _children(rng, 0.6 * x, 6)
    numeric = {"customer": pd.DataFrame({"x": 50 + 10 * x}),
               "orders": pd.DataFrame({"amount": np.exp(0.6 * x[link] + rng.normal(size=len(link))),
                                       "qty": rng.integers(1, 5, len(link)).astype(float)})}
    model = fit_hma(md, numeric, {rel: link}, {}, np.random.default_rng(1))
    return md, numeric, {rel: link}, rel, model


def test_parent_child_totals_links_and_dependence(parent_child):
    md, numeric, links, rel, model = parent_child
    assert model.row_counts == {"customer": 2_000, "orders": len(numeric["orders"])}
    frames, out = model.sample(1.0, np.random.default_rng(2))
    _check_links(model, frames, out)
    assert len(frames["customer"]) == 2_000
    assert len(frames["orders"]) == len(numeric["orders"])
    assert list(frames["orders"].columns) == ["amount", "qty"]

    def dependence(x, link, amount):
        counts = np.bincount(link, minlength=len(x))
        means = pd.Series(np.log(amount)).groupby(link).mean().reindex(range(len(x)))
        return np.corrcoef(x, counts)[0, 1], pd.Series(x).corr(means)

    src = dependence(numeric["customer"]["x"].to_numpy(), links[rel], numeric["orders"]["amount"])
    syn = dependence(frames["customer"]["x"].to_numpy(), out[rel], frames["orders"]["amount"])
    assert src[0] > 0.4 and src[1] > 0.4
    assert abs(syn[0] - src[0]) < 0.15, (src, syn)
    assert abs(syn[1] - src[1]) < 0.15, (src, syn)
    assert frames["orders"]["qty"].between(0.5, 4.5).mean() > 0.95


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.5, 0.0001])
def test_exact_totals_follow_scale(parent_child, scale):
    _, numeric, _, rel, model = parent_child
    frames, out = model.sample(scale, np.random.default_rng(3))
    for table, frame in numeric.items():
        assert len(frames[table]) == max(1, int(np.floor(len(frame) * scale + 0.5)))
    assert (out[rel] >= 0).all()  # the foreign key is never NULL in the source


def test_determinism_and_json_round_trip(parent_child):
    md, numeric, links, rel, model = parent_child
    first = model.sample(1.0, np.random.default_rng(7))
    second = model.sample(1.0, np.random.default_rng(7))
    other = model.sample(1.0, np.random.default_rng(8))
    for table in first[0]:
        pd.testing.assert_frame_equal(first[0][table], second[0][table])
    np.testing.assert_array_equal(first[1][rel], second[1][rel])
    assert not first[0]["orders"].equals(other[0]["orders"])
    again = HMAModel.from_dict(json.loads(json.dumps(model.to_dict())))
    third = again.sample(1.0, np.random.default_rng(7))
    for table in first[0]:
        pd.testing.assert_frame_equal(first[0][table], third[0][table])
    refit = fit_hma(md, numeric, links, {}, np.random.default_rng(1))
    assert refit.to_dict() == model.to_dict()
    with pytest.raises(ModelFileError):
        HMAModel.from_dict({"format": "something else"})


def test_learned_distributions_and_parameters(parent_child):
    md, numeric, links, _, model = parent_child
    learned = model.learned_distributions("orders")
    assert set(learned) == {"amount", "qty"}
    assert all("learned_parameters" in v for v in learned.values())
    params = {"orders": {"default_distribution": "truncnorm", "default_named": True,
                         "numerical_distributions": {"amount": "norm"}}}
    tuned = fit_hma(md, numeric, links, params, np.random.default_rng(1))
    assert tuned.learned_distributions("orders")["amount"]["distribution"] == "norm"
    assert tuned.learned_distributions("orders")["qty"]["distribution"] == "truncnorm"
    with pytest.raises(SynthesizerInputError, match="amount"):
        fit_hma(md, numeric, links, {"orders": {"numerical_distributions": {"amount": "gaussian_kde"}}},
                np.random.default_rng(1))
    with pytest.raises(SynthesizerInputError, match="nope"):
        model.learned_distributions("nope")
    for bad in (0, -1.0, float("nan"), "2"):
        with pytest.raises(SynthesizerInputError):
            model.sample(bad, np.random.default_rng(0))


def test_bad_links_are_refused(parent_child):
    md, numeric, links, rel, _ = parent_child
    with pytest.raises(SynthesizerInputError, match="orders"):
        fit_hma(md, numeric, {}, {}, np.random.default_rng(0))
    with pytest.raises(SynthesizerInputError, match="customer"):
        fit_hma(md, numeric, {rel: links[rel] + 5_000}, {}, np.random.default_rng(0))


def test_three_levels_no_modeled_columns_and_null_shares():
    rng = np.random.default_rng(10)
    md = Metadata()
    _table(md, "region", "id")
    _table(md, "store", "id", ["region_id"], nullable=["region_id"])
    _table(md, "sale", "id", ["store_id"])
    r1 = _rel(md, "region", "store", "region_id")
    r2 = _rel(md, "store", "sale", "store_id")
    size = rng.normal(size=300)
    store_link = _children(rng, np.zeros(40), 8)[:300]
    store_link[rng.random(len(store_link)) < 0.3] = -1  # 30% of stores have no region
    n_store = len(store_link)
    sale_link = _children(rng, 0.8 * size[:n_store], 5)
    numeric = {"region": pd.DataFrame(index=range(40)),  # nothing to model but keys
               "store": pd.DataFrame({"size": size[:n_store]}),
               "sale": pd.DataFrame({"price": rng.gamma(2, size=len(sale_link)) + size[sale_link]})}
    model = fit_hma(md, numeric, {r1: store_link, r2: sale_link}, {}, np.random.default_rng(0))
    frames, links = model.sample(1.0, np.random.default_rng(1))
    _check_links(model, frames, links)
    assert frames["region"].shape == (40, 0)
    assert [len(frames[t]) for t in ("region", "store", "sale")] == [40, n_store, len(sale_link)]
    assert abs(_null_share(links[r1]) - _null_share(store_link)) < 0.05
    counts = np.bincount(links[r2], minlength=n_store)
    assert np.corrcoef(frames["store"]["size"], counts)[0, 1] > 0.3
    frames2, links2 = model.sample(0.5, np.random.default_rng(1))
    assert len(frames2["sale"]) == int(np.floor(len(sale_link) * 0.5 + 0.5))
    assert abs(_null_share(links2[r1]) - _null_share(store_link)) < 0.05


def test_several_parents_capacity_and_resemblance():
    """Orders under shops (nullable, strong signal) and customers (weaker signal)."""
    rng = np.random.default_rng(20)
    md = Metadata()
    _table(md, "customer", "id")
    _table(md, "shop", "id")
    _table(md, "orders", "id", ["customer_id", "shop_id"], nullable=["shop_id"])
    rc = _rel(md, "customer", "orders", "customer_id")
    rs = _rel(md, "shop", "orders", "shop_id")
    n_orders = 6_000
    age = rng.normal(size=1_000)
    customer_link = _children(rng, 0.8 * age, 6)[:n_orders]
    n_orders = len(customer_link)
    tier = rng.normal(size=200)
    shop_link = _children(rng, 0.7 * tier, 30)[:n_orders]
    shop_link = np.r_[shop_link, rng.integers(0, 200, n_orders - len(shop_link))]
    shop_link[rng.random(n_orders) < 0.2] = -1
    price = np.where(shop_link >= 0, 3 * tier[shop_link], 0) + rng.normal(size=n_orders)
    spend = age[customer_link] + rng.normal(size=n_orders)
    numeric = {"customer": pd.DataFrame({"age": 40 + 9 * age}),
               "shop": pd.DataFrame({"tier": tier}),
               "orders": pd.DataFrame({"price": price, "spend": spend})}
    model = fit_hma(md, numeric, {rc: customer_link, rs: shop_link}, {}, np.random.default_rng(0))
    assert model.tables["orders"].primary == rs  # the shop explains more of the orders
    frames, links = model.sample(1.0, np.random.default_rng(1))
    _check_links(model, frames, links)
    assert abs(_null_share(links[rs]) - _null_share(shop_link)) < 0.05
    assert (links[rc] >= 0).all()
    for rel, parent, column, child_column, src_link, src_value in (
            (rs, "shop", "tier", "price", shop_link, tier),
            (rc, "customer", "age", "spend", customer_link, age)):
        linked = links[rel] >= 0
        syn_value = frames[parent][column].to_numpy()[links[rel][linked]]
        syn = np.corrcoef(syn_value, frames["orders"][child_column].to_numpy()[linked])[0, 1]
        ok = src_link >= 0
        src = np.corrcoef(src_value[src_link[ok]], numeric["orders"][child_column][ok])[0, 1]
        assert syn > 0.6 * src, (rel, syn, src)
        counts = np.bincount(links[rel][linked], minlength=len(frames[parent]))
        assert np.corrcoef(frames[parent][column], counts)[0, 1] > 0.3, rel


def test_two_foreign_keys_to_the_same_table():
    rng = np.random.default_rng(30)
    md = Metadata()
    _table(md, "airport", "id")
    _table(md, "flight", "id", ["origin", "destination"])
    ro = _rel(md, "airport", "flight", "origin")
    rd = _rel(md, "airport", "flight", "destination")
    n = 3_000
    hub = rng.normal(size=50)
    origin = _children(rng, hub, 60)[:n]
    n = len(origin)
    destination = _children(rng, -hub, 80)[:n]
    numeric = {"airport": pd.DataFrame({"hub": hub}),
               "flight": pd.DataFrame({"minutes": rng.gamma(3, 40, n)})}
    model = fit_hma(md, numeric, {ro: origin, rd: destination}, {}, np.random.default_rng(0))
    frames, links = model.sample(1.0, np.random.default_rng(1))
    _check_links(model, frames, links)
    assert (links[ro] >= 0).all() and (links[rd] >= 0).all()
    hub_s = frames["airport"]["hub"].to_numpy()
    assert np.corrcoef(hub_s, np.bincount(links[ro], minlength=50))[0, 1] > 0.3
    assert np.corrcoef(hub_s, np.bincount(links[rd], minlength=50))[0, 1] < -0.3


def test_self_reference_is_acyclic_with_null_share_and_degree_shape():
    rng = np.random.default_rng(40)
    md = Metadata()
    _table(md, "employee", "id", ["manager_id"], nullable=["manager_id"])
    rel = _rel(md, "employee", "employee", "manager_id")
    n = 1_000
    link = np.full(n, -1, dtype=np.int64)
    link[100:] = rng.integers(0, 100, n - 100)  # 100 managers, 10% NULL
    numeric = {"employee": pd.DataFrame({"salary": rng.gamma(4, 10_000, n)})}
    model = fit_hma(md, numeric, {rel: link}, {}, np.random.default_rng(0))
    frames, links = model.sample(1.0, np.random.default_rng(1))
    out = links[rel]
    _check_links(model, frames, links)
    assert out[0] == -1
    linked = np.flatnonzero(out >= 0)
    assert (out[linked] < linked).all()  # earlier rows only: no cycle, a valid insert order
    assert abs(_null_share(out) - 0.1) < 0.05
    degree = np.bincount(out[linked], minlength=n)
    assert abs((degree > 0).sum() - 100) < 30
    assert abs(degree.max() - np.bincount(link[100:]).max()) < 12


def test_two_table_cycle_through_a_nullable_foreign_key():
    rng = np.random.default_rng(50)
    md = Metadata()
    _table(md, "department", "id", ["head_id"], nullable=["head_id"])
    _table(md, "person", "id", ["department_id"])
    r_head = _rel(md, "person", "department", "head_id")
    r_dept = _rel(md, "department", "person", "department_id")
    assert md.deferred_relationships()[0]["child_foreign_key"] == "head_id"
    dept_of = rng.integers(0, 30, 600)
    head = rng.choice(600, 30, replace=False)
    head[:6] = -1
    numeric = {"department": pd.DataFrame({"budget": rng.gamma(2, 1e5, 30)}),
               "person": pd.DataFrame({"age": rng.normal(40, 10, 600)})}
    model = fit_hma(md, numeric, {r_head: head, r_dept: dept_of}, {}, np.random.default_rng(0))
    frames, links = model.sample(1.0, np.random.default_rng(1))
    _check_links(model, frames, links)
    assert (links[r_dept] >= 0).all()
    assert abs(_null_share(links[r_head]) - 0.2) < 0.05


def test_junction_table_never_repeats_a_pair():
    rng = np.random.default_rng(60)
    md = Metadata()
    _table(md, "playlist", "id")
    _table(md, "track", "id")
    _table(md, "playlist_track", ["playlist_id", "track_id"])
    rp = _rel(md, "playlist", "playlist_track", "playlist_id")
    rt = _rel(md, "track", "playlist_track", "track_id")
    # 20 playlists over 60 tracks, some holding most of the tracks: pairs collide easily.
    sizes = np.r_[55, 50, 48, rng.integers(1, 20, 17)]
    p_link = np.repeat(np.arange(20), sizes)
    t_link = np.concatenate([rng.choice(60, s, replace=False) for s in sizes])
    numeric = {"playlist": pd.DataFrame({"x": rng.normal(size=20)}),
               "track": pd.DataFrame({"ms": rng.gamma(3, 6e4, 60)}),
               "playlist_track": pd.DataFrame(index=range(len(p_link)))}
    model = fit_hma(md, numeric, {rp: p_link, rt: t_link}, {}, np.random.default_rng(0))
    assert model.junctions == {"playlist_track": [[rp, rt]]}
    for seed in range(3):
        frames, links = model.sample(1.0, np.random.default_rng(seed))
        _check_links(model, frames, links)
        pairs = pd.DataFrame({"p": links[rp], "t": links[rt]})
        assert not pairs.duplicated().any()
        assert len(pairs) == len(p_link)


def test_one_to_one_key_gives_each_parent_at_most_one_child():
    rng = np.random.default_rng(70)
    md = Metadata()
    _table(md, "user", "id")
    _table(md, "profile", "user_id")
    rel = _rel(md, "user", "profile", "user_id")
    link = rng.permutation(500)[:350].astype(np.int64)
    numeric = {"user": pd.DataFrame({"x": rng.normal(size=500)}),
               "profile": pd.DataFrame({"y": rng.normal(size=350)})}
    model = fit_hma(md, numeric, {rel: link}, {}, np.random.default_rng(0))
    assert model.relationships[rel]["unique"]
    frames, links = model.sample(1.3, np.random.default_rng(1))
    assert len(np.unique(links[rel])) == len(links[rel]) == 455


def test_empty_and_one_row_tables():
    md = Metadata()
    _table(md, "solo", "id")
    _table(md, "empty", "id")
    _table(md, "empty_child", "id", ["solo_id"])
    _table(md, "kid", "id", ["empty_id", "solo_id"], nullable=["empty_id"])
    r1 = _rel(md, "solo", "empty_child", "solo_id")
    r2 = _rel(md, "empty", "kid", "empty_id")
    r3 = _rel(md, "solo", "kid", "solo_id")
    numeric = {"solo": pd.DataFrame({"v": [3.0]}),
               "empty": pd.DataFrame({"v": np.zeros(0)}),
               "empty_child": pd.DataFrame({"w": np.zeros(0)}),
               "kid": pd.DataFrame({"w": [1.0, 2.0, 4.0]})}
    links = {r1: np.zeros(0, dtype=np.int64), r2: np.full(3, -1, dtype=np.int64),
             r3: np.zeros(3, dtype=np.int64)}
    model = fit_hma(md, numeric, links, {}, np.random.default_rng(0))
    assert model.learned_distributions("empty") == {
        "v": {"distribution": "beta", "learned_parameters": {}}}
    frames, out = model.sample(2.0, np.random.default_rng(1))
    _check_links(model, frames, out)
    assert {t: len(f) for t, f in frames.items()} == {"solo": 2, "empty": 0, "empty_child": 0,
                                                       "kid": 6}
    assert (out[r2] == -1).all() and (out[r3] >= 0).all()
    assert (frames["solo"]["v"] == 3.0).all()
    assert HMAModel.from_dict(json.loads(json.dumps(model.to_dict()))).row_counts == model.row_counts


def test_allocation_self_reference_and_deduplication_helpers():
    counts = allocate(np.array([0.2, 3.7, 1.1, 0.0]), 10)
    assert counts.sum() == 10 and counts[1] == counts.max()
    assert allocate(np.zeros(3), 4).tolist() == [2, 1, 1]
    capped = allocate(np.array([100.0, 1.0, 1.0, 1.0]), 6, cap=2)
    assert capped.tolist() == [2, 2, 1, 1] or sorted(capped.tolist()) == [1, 1, 2, 2]
    assert capped.max() <= 2 and capped.sum() == 6
    rng = np.random.default_rng(0)
    link = assign_self(10_000, 0.05, [0.0] * 90 + [5.0, 10.0, 50.0] * 3 + [200.0, 400.0], rng)
    linked = np.flatnonzero(link >= 0)
    assert (link[linked] < linked).all()
    group = rng.integers(0, 10, 5_000)
    last = rng.integers(0, 600, 5_000)
    fixed = deduplicate([group], [10], last, 600, rng, "t")
    assert not pd.DataFrame({"g": group, "l": fixed}).duplicated().any()
    full = np.repeat(np.arange(50), 20)  # every group needs all 20 targets: only the fallback works
    fixed = deduplicate([full], [50], np.zeros(1_000, dtype=np.int64), 20, rng, "t")
    assert not pd.DataFrame({"g": full, "l": fixed}).duplicated().any()
    with pytest.raises(SamplingError, match="21 rows"):
        deduplicate([np.zeros(21, dtype=np.int64)], [1], np.zeros(21, dtype=np.int64), 20, rng, "t")


def test_timing_10k_parents_10_children():
    """Not an assertion on time: prints fit and sample seconds for the record."""
    rng = np.random.default_rng(80)
    md = Metadata()
    _table(md, "parent", "id")
    _table(md, "child", "id", ["parent_id"])
    rel = _rel(md, "parent", "child", "parent_id")
    x = rng.normal(size=10_000)
    link = _children(rng, 0.5 * x, 10)
    numeric = {"parent": pd.DataFrame({"x": x, "y": rng.gamma(2, size=10_000)}),
               "child": pd.DataFrame(rng.normal(size=(len(link), 4)) + x[link][:, None],
                                     columns=[f"c{j}" for j in range(4)])}
    start = time.perf_counter()
    model = fit_hma(md, numeric, {rel: link}, {}, np.random.default_rng(0))
    fitted = time.perf_counter()
    frames, _ = model.sample(1.0, np.random.default_rng(1))
    done = time.perf_counter()
    print(f"\n10k parents x {len(link) / 1e4:.1f} children: fit {fitted - start:.2f} s, "
          f"sample {done - fitted:.2f} s")
    assert len(frames["child"]) == len(link)


def test_junction_at_a_small_scale_drops_rows_rather_than_keys():
    md = Metadata()
    _table(md, "a", "id")
    _table(md, "b", "id")
    _table(md, "ab", ["a_id", "b_id"])
    ra, rb = _rel(md, "a", "ab", "a_id"), _rel(md, "b", "ab", "b_id")
    a_link = np.repeat(np.arange(4), 10)  # every pair of 4 x 10: the junction is full
    b_link = np.tile(np.arange(10), 4)
    numeric = {"a": pd.DataFrame(index=range(4)), "b": pd.DataFrame(index=range(10)),
               "ab": pd.DataFrame(index=range(40))}
    model = fit_hma(md, numeric, {ra: a_link, rb: b_link}, {}, np.random.default_rng(0))
    frames, links = model.sample(0.25, np.random.default_rng(1))  # 1 a x 3 b, 10 rows asked
    assert (len(frames["a"]), len(frames["b"]), len(frames["ab"])) == (1, 3, 3)
    assert (links[ra] >= 0).all() and (links[rb] >= 0).all()
    assert not pd.DataFrame({"a": links[ra], "b": links[rb]}).duplicated().any()


def test_self_reference_without_nulls_points_roots_at_themselves():
    md = Metadata()
    _table(md, "node", "id", ["parent_id"])
    rel = _rel(md, "node", "node", "parent_id")
    link = np.r_[0, np.zeros(20, dtype=np.int64), np.arange(1, 21)]  # row 0 is its own parent
    numeric = {"node": pd.DataFrame({"w": np.arange(41.0)})}
    model = fit_hma(md, numeric, {rel: link}, {}, np.random.default_rng(0))
    out = model.sample(1.0, np.random.default_rng(1))[1][rel]
    assert (out >= 0).all()
    assert (out <= np.arange(len(out))).all()
    assert out[0] == 0


def test_whole_chinook_schema_at_several_scales():
    """The model on all 11 Chinook tables (numerical columns only; keys become links)."""
    import sqlalchemy as sa
    from conftest import CHINOOK_SQLITE

    from hma_db.source.reflect import reflect
    from hma_db.synthesizer.links import build_links

    md = reflect(f"sqlite:///{CHINOOK_SQLITE}")
    engine = sa.create_engine(f"sqlite:///{CHINOOK_SQLITE}")
    data = {t: pd.read_sql_table(t, engine) for t in md.tables}
    engine.dispose()
    keys = {t: set(md.primary_key(t)) | set(md.foreign_key_columns(t)) for t in md.tables}
    numeric = {t: f[[c for c in f.columns if c not in keys[t]]].select_dtypes("number")
               .fillna(0.0).astype(float) for t, f in data.items()}
    links = build_links(md, data)
    model = fit_hma(md, numeric, links, {}, np.random.default_rng(0))
    playlist = "PlaylistTrack.PlaylistId -> Playlist"
    track = "PlaylistTrack.TrackId -> Track"
    boss = "Employee.ReportsTo -> Employee"
    for scale in (0.1, 1.0, 2.0):
        frames, out = model.sample(scale, np.random.default_rng(3))
        _check_links(model, frames, out)
        for name in model.relationships:
            if name != boss:
                assert (out[name] >= 0).all(), name  # no NULL where the source has none
        assert not pd.DataFrame({"p": out[playlist], "t": out[track]}).duplicated().any()
        linked = np.flatnonzero(out[boss] >= 0)
        assert (out[boss][linked] < linked).all()
        for table in md.tables:
            expected = max(1, int(np.floor(len(data[table]) * scale + 0.5)))
            if table == "PlaylistTrack":  # may be cut where the playlists are full
                assert len(frames[table]) <= expected
            else:
                assert len(frames[table]) == expected, table


def test_allocation_is_exact_capped_and_floored_on_random_cases():
    rng = np.random.default_rng(90)
    for _ in range(500):
        n = int(rng.integers(1, 30))
        weights = rng.pareto(1.5, n) * rng.integers(0, 2, n)
        cap, floor = int(rng.integers(1, 6)), int(rng.integers(0, 3))
        total = int(rng.integers(0, cap * n + 3))
        free = allocate(weights, total)
        assert free.sum() == total and free.min() >= 0
        counts = allocate(weights, total, cap, floor=floor)
        assert counts.sum() == min(total, cap * n)
        assert counts.max() <= cap
        if total >= floor * n and cap >= floor:
            assert counts.min() >= floor


def _random_schema(seed: int):
    """Up to 5 tables of 0-300 rows with random, partly nullable, self and backward links."""
    rng = np.random.default_rng(seed)
    md = Metadata()
    names = [f"t{i}" for i in range(int(rng.integers(2, 6)))]
    sizes = {t: int(rng.choice([0, 1, 2, 5, 50, 300])) for t in names}
    for t in names:
        _table(md, t, "id")
    numeric = {t: pd.DataFrame(rng.normal(size=(sizes[t], int(rng.integers(0, 3))))).add_prefix("v")
               for t in names}
    links = {}
    for i, child in enumerate(names):
        for j in range(int(rng.integers(0, 3))):
            parent = names[int(rng.integers(0, len(names) if rng.random() < 0.15 else i + 1))]
            fk = f"fk{j}_{parent}"
            nullable = bool(rng.random() < 0.5) or names.index(parent) >= i
            md.add_column(fk, child, sdtype="id", nullable=nullable)
            n_parent, n_child = sizes[parent], sizes[child]
            if parent == child:
                link = np.array([-1] + [int(rng.integers(0, k)) for k in range(1, n_child)])[:n_child]
            else:
                link = rng.integers(0, max(n_parent, 1), n_child) if n_parent else np.full(n_child, -1)
            if nullable:
                link[rng.random(n_child) < 0.3] = -1
            links[_rel(md, parent, child, fk)] = np.asarray(link, dtype=np.int64)
    return md, numeric, links


@pytest.mark.parametrize("seed", range(12))
def test_random_schemas_keep_every_invariant(seed):
    md, numeric, links = _random_schema(seed)
    params = {t: {"default_distribution": "norm"} for t in md.tables}
    model = fit_hma(md, numeric, links, params, np.random.default_rng(seed))
    nullable = {name: md.is_nullable(r) for name, r in zip(links, md.relationships, strict=True)}
    for scale in (0.3, 1.0, 1.7):
        frames, out = model.sample(scale, np.random.default_rng(seed))
        _check_links(model, frames, out)
        for name, rel in model.relationships.items():
            link = out[name]
            if rel["kind"] == "self":
                linked = np.flatnonzero(link >= 0)
                assert (link[linked] < linked).all(), name
            elif not nullable[name] and len(frames[rel["parent"]]):
                assert (link >= 0).all(), name


def test_deduplicate_keeps_every_targets_row_count_when_groups_nearly_cover_the_targets():
    # Two groups hold 95 of 100 targets each (Chinook's big playlists): random swaps cannot
    # clear their repeats, and the refill must still give every target exactly its 2 rows.
    from hma_db.model.assign import deduplicate

    rng = np.random.default_rng(3)
    sizes = [95, 95, 10]
    group = np.repeat(np.arange(3), sizes)
    last = rng.permutation(np.repeat(np.arange(100), 2))
    out = deduplicate([group], [3], last, 100, rng, "test")
    assert len(set(zip(group.tolist(), out.tolist(), strict=True))) == len(out)
    assert np.bincount(out, minlength=100).tolist() == [2] * 100


def _depths(link: np.ndarray) -> np.ndarray:
    depth = np.zeros(len(link), dtype=np.int64)
    for row in range(len(link)):  # a link points back, so a row's parent is done before it
        depth[row] = 0 if link[row] < 0 or link[row] == row else depth[link[row]] + 1
    return depth


def test_a_small_self_reference_keeps_the_sources_shape_in_every_seed():
    """Northwind's 9 employees: one head, 5 reporting to the head, 3 to one of them (out-degrees
    5, 3 and seven 0). Independent draws of 9 degrees were all 0 in some seeds, which made a
    chain 8 levels deep."""
    quantiles = [0.0] * 7 + [3.0, 5.0]
    for seed in range(20):
        link = assign_self(9, 1 / 9, quantiles, np.random.default_rng(seed))
        counts = np.bincount(link[link >= 0], minlength=9)
        assert sorted(counts.tolist()) == [0] * 7 + [3, 5], seed
        assert _depths(link).max() == 2, seed
