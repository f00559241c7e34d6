"""Fits spread over an executor: the tables of one level of the hierarchy, and the columns of a
wide table, at once; the model is the same with a thread pool, a Dask client, or none."""

from __future__ import annotations

import json
import sqlite3
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from conftest import CHINOOK_SQLITE, REQUIRE_SERVERS

from hma_db.model import copula, levels
from hma_db.model.copula import COLUMNS_PER_TASK, GaussianCopula
from hma_db.model.fit import plan
from hma_db.model.hierarchy import HMAModel, fit_hma
from hma_db.model.levels import table_levels
from hma_db.schema.metadata import Metadata

# Wide enough to fit its columns on the executor: the product's threshold (400 columns) made
# these tests 12 s slower; the mechanism is the same at 100.
PARALLEL_COLUMNS = 100


@pytest.fixture(autouse=True)
def _narrower_threshold(monkeypatch):
    monkeypatch.setattr(copula, "PARALLEL_COLUMNS", PARALLEL_COLUMNS)
    monkeypatch.setattr(levels, "PARALLEL_COLUMNS", PARALLEL_COLUMNS)


def _table(md: Metadata, name: str, ids=()) -> None:
    md.add_table(name)
    for col in ["id", *ids]:
        md.add_column(col, name, sdtype="id")
    md.set_primary_key("id", name)


def _rel(md: Metadata, parent: str, child: str, fk: str) -> str:
    md.add_relationship(parent, child, "id", fk)
    return f"{child}.{fk} -> {parent}"


def _chinook_shape() -> Metadata:
    """Chinook's tables and keys: Track and Invoice both parents of InvoiceLine, Employee
    referencing itself."""
    md = Metadata()
    for name, ids in [("Artist", []), ("Album", ["ArtistId"]), ("Track", ["AlbumId"]),
                      ("Employee", ["ReportsTo"]), ("Customer", ["SupportRepId"]),
                      ("Invoice", ["CustomerId"]), ("InvoiceLine", ["TrackId", "InvoiceId"])]:
        _table(md, name, ids)
    for parent, child, fk in [("Artist", "Album", "ArtistId"), ("Album", "Track", "AlbumId"),
                              ("Employee", "Employee", "ReportsTo"),
                              ("Employee", "Customer", "SupportRepId"),
                              ("Customer", "Invoice", "CustomerId"),
                              ("Track", "InvoiceLine", "TrackId"),
                              ("Invoice", "InvoiceLine", "InvoiceId")]:
        _rel(md, parent, child, fk)
    return md


def test_two_parents_of_one_child_are_one_level_and_a_self_reference_adds_none():
    md = _chinook_shape()
    rels, _ = plan(md)
    assert table_levels(md.topological_order(), rels) == [
        ["InvoiceLine"], ["Invoice", "Track"], ["Album", "Customer"], ["Artist", "Employee"]]


def _store(wide: int = 8, seed: int = 0):
    """A store and its two kinds of children (one with children of its own), ``wide``
    numeric columns on the sales."""
    rng = np.random.default_rng(seed)
    md = Metadata()
    _table(md, "store")
    _table(md, "staff", ["store_id"])
    _table(md, "sale", ["store_id"])
    _table(md, "line", ["sale_id"])
    rels = {"staff": _rel(md, "store", "staff", "store_id"),
            "sale": _rel(md, "store", "sale", "store_id"),
            "line": _rel(md, "sale", "line", "sale_id")}
    size = rng.gamma(2.0, 1.0, 40)
    sale_store = rng.choice(40, 300, p=size / size.sum())
    line_sale = rng.integers(0, 300, 700)
    numeric = {
        "store": pd.DataFrame({"size": size}),
        "staff": pd.DataFrame({"wage": rng.normal(30, 5, 90)}),
        "sale": pd.DataFrame({f"x{j}": rng.beta(2, 5, 300) + size[sale_store] * (j % 3)
                              for j in range(wide)}),
        "line": pd.DataFrame({"qty": rng.poisson(3, 700).astype(float)}),
    }
    links = {rels["staff"]: rng.integers(0, 40, 90).astype(np.int64),
             rels["sale"]: sale_store.astype(np.int64),
             rels["line"]: line_sale.astype(np.int64)}
    return md, numeric, links


def _plain(model: HMAModel) -> str:
    """The model's plain data with every value's type: equal only if identical."""
    def typed(value):
        if isinstance(value, dict):
            return {k: typed(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [typed(v) for v in value]
        return [type(value).__name__, repr(value)]
    return json.dumps(typed(model.to_dict()))


def _same_samples(a: HMAModel, b: HMAModel) -> None:
    frames_a, links_a = a.sample(1.0, np.random.default_rng(5))
    frames_b, links_b = b.sample(1.0, np.random.default_rng(5))
    for table, frame in frames_a.items():
        pd.testing.assert_frame_equal(frames_b[table], frame, check_exact=True)
    for name, link in links_a.items():
        np.testing.assert_array_equal(links_b[name], link)


class Counting:
    """An executor that counts its maps and their tasks."""

    def __init__(self, inner):
        self.inner, self.maps, self.tasks = inner, 0, 0

    def map(self, fn, *iterables):
        items = [list(i) for i in iterables]
        self.maps += 1
        self.tasks += len(items[0])
        return self.inner.map(fn, *items)


@pytest.fixture
def ship_any_level(monkeypatch):
    """Levels of small tables go to the executor too (they stay here by default)."""
    monkeypatch.setattr(levels, "PARALLEL_COLUMNS", 1)


def test_the_model_is_the_same_with_a_thread_pool_and_without(ship_any_level):
    md, numeric, links = _store(wide=PARALLEL_COLUMNS + 10)
    alone = fit_hma(md, numeric, links, {}, np.random.default_rng(1))
    with ThreadPoolExecutor(2) as pool:
        counting = Counting(pool)
        pooled = fit_hma(md, numeric, links, {}, np.random.default_rng(1), executor=counting)
    # Level 0 {line, staff}: one map (line here, staff there); level 1 sale alone, wide (its
    # columns and line's 3 extension columns): its column groups, the first here.
    groups = -(-(PARALLEL_COLUMNS + 10 + 3) // COLUMNS_PER_TASK)
    assert counting.maps == 2 and counting.tasks == 1 + groups - 1
    assert _plain(pooled) == _plain(alone)
    _same_samples(alone, pooled)


def test_a_level_too_small_to_ship_is_fitted_here():
    md, numeric, links = _store(wide=PARALLEL_COLUMNS + 10)
    with ThreadPoolExecutor(2) as pool:
        counting = Counting(pool)
        fit_hma(md, numeric, links, {}, np.random.default_rng(1), executor=counting)
    groups = -(-(PARALLEL_COLUMNS + 10 + 3) // COLUMNS_PER_TASK)
    assert counting.maps == 1 and counting.tasks == groups - 1  # the wide sale's columns


def test_a_tables_fit_does_not_depend_on_which_other_tables_are_fitted():
    """Each table draws from a stream of its own (the fit's seed and its name): a table added
    to the schema, fitted first, leaves the others' copulas as they were."""
    md, numeric, links = _store()
    before = fit_hma(md, numeric, links, {}, np.random.default_rng(1))
    _table(md, "aardvark")
    numeric["aardvark"] = pd.DataFrame({"w": np.random.default_rng(9).normal(size=50)})
    after = fit_hma(md, numeric, links, {}, np.random.default_rng(1))
    for table in ("store", "staff", "sale", "line"):
        assert after.tables[table].to_dict() == before.tables[table].to_dict(), table


def test_wide_columns_fit_the_same_in_any_group_and_warn_here():
    rng = np.random.default_rng(3)
    width = PARALLEL_COLUMNS + 3
    data = np.column_stack([rng.gamma(2, 1, 400) for _ in range(width - 1)]
                           + [np.r_[rng.normal(0, 1, 399), 1e300]])
    columns = [f"c{j}" for j in range(width)]
    named = {columns[-1]: "gamma"}  # fails numerically: falls back, with a warning
    with pytest.warns(UserWarning, match=f"Column '{columns[-1]}': the distribution 'gamma'"):
        alone = GaussianCopula("beta", named, set(named))
        scores = alone.fit_scores(data, columns, np.random.default_rng(4))
    with ThreadPoolExecutor(2) as pool, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pooled = GaussianCopula("beta", named, set(named))
        pooled_scores = pooled.fit_scores(data, columns, np.random.default_rng(4), executor=pool)
    said = [str(w.message) for w in caught if "asked for" in str(w.message)]
    assert len(said) == 1 and said[0].startswith(
        f"Column '{columns[-1]}': the distribution 'gamma' asked for could not be fitted")
    assert json.dumps(pooled.to_dict()) == json.dumps(alone.to_dict())
    np.testing.assert_array_equal(pooled_scores, scores)
    z = alone.sample_scores(50, np.random.default_rng(2))
    np.testing.assert_array_equal(pooled.from_scores(z), alone.from_scores(z))


def test_chinook_fits_the_same_with_an_executor():
    from hma_db import HMASynthesizer, reflect

    metadata = reflect(f"sqlite:///{CHINOOK_SQLITE}")
    with sqlite3.connect(CHINOOK_SQLITE) as conn:
        data = {t: pd.read_sql_query(f'SELECT * FROM "{t}"', conn) for t in metadata.tables}
    alone = HMASynthesizer(metadata, seed=4, verbose=False)
    alone.fit(data)
    pooled = HMASynthesizer(metadata, seed=4, verbose=False)
    with ThreadPoolExecutor(2) as pool:
        pooled.fit(data, executor=pool)
    assert _plain(pooled._state.model) == _plain(alone._state.model)
    first, second = alone.sample(1.0), pooled.sample(1.0)
    for table, frame in first.items():
        pd.testing.assert_frame_equal(second[table], frame, obj=table)


@pytest.mark.parametrize("processes", [False, True])
def test_the_model_is_the_same_through_a_dask_client(processes, ship_any_level):
    try:
        import distributed
    except ImportError:  # pragma: no cover - CI installs the extra (.ci/run)
        if REQUIRE_SERVERS:
            raise
        pytest.skip('dask.distributed is not installed (pip install "hma_db[dask]")')
    from hma_db.cluster import ClientExecutor

    md, numeric, links = _store(wide=PARALLEL_COLUMNS + 10)
    alone = fit_hma(md, numeric, links, {}, np.random.default_rng(1))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes,
                                  dashboard_address=None) as local, \
            distributed.Client(local) as client:
        # Every argument scattered first (scatter_bytes=0), as a large table's would be.
        executor = ClientExecutor(client, scatter_bytes=0)
        remote = fit_hma(md, numeric, links, {}, np.random.default_rng(1), executor=executor)
    assert _plain(remote) == _plain(alone)
    _same_samples(alone, remote)
