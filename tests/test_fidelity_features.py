"""Issue 21: small parent tables replay their rows, empirical marginals, discrete numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import NORTHWIND_SQLITE, fit_and_sample

from hma_db import HMASynthesizer, Metadata
from hma_db.errors import SynthesizerInputError
from hma_db.model.copula import GaussianCopula, fit_marginal
from hma_db.model.empirical import (
    DIP_SHARE,
    HISTOGRAM_BINS,
    MAX_KNOTS,
    MIN_PEAK_SHARE,
    MIN_SIDE_SHARE,
    Empirical,
    _quantile,
    fit_empirical,
    is_multimodal,
)

# ----------------------------------------------------------------------- small parent tables
REAL_COUNTS = [300, 5, 40, 120, 12, 2]


def _shop() -> tuple[Metadata, dict[str, pd.DataFrame]]:
    rng = np.random.default_rng(0)
    shippers = pd.DataFrame({"id": range(1, 7), "fee": [3.5, 9.0, 1.0, 4.0, 7.5, 2.0]})
    parent = np.repeat(np.arange(1, 7), REAL_COUNTS)
    orders = pd.DataFrame({"oid": range(len(parent)), "shipper": parent,
                           "weight": rng.gamma(2.0, 3.0, len(parent)).round(2)})
    metadata = Metadata.load_from_dict({
        "tables": {
            "shippers": {"primary_key": "id", "columns": {
                "id": {"sdtype": "id"}, "fee": {"sdtype": "numerical"}}},
            "orders": {"primary_key": "oid", "columns": {
                "oid": {"sdtype": "id"}, "shipper": {"sdtype": "id"},
                "weight": {"sdtype": "numerical"}}}},
        "relationships": [{"parent_table_name": "shippers", "parent_primary_key": "id",
                           "child_table_name": "orders", "child_foreign_key": "shipper"}]})
    return metadata, {"shippers": shippers, "orders": orders}


def _counts(sample: dict[str, pd.DataFrame]) -> list[int]:
    per = sample["orders"]["shipper"].value_counts()
    return sorted(int(per.get(k, 0)) for k in sample["shippers"]["id"])


def test_a_small_parent_table_keeps_its_rows_and_its_childrens_counts():
    metadata, data = _shop()
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1)
    synthesizer.fit(data)
    sample = synthesizer.sample()
    assert _counts(sample) == sorted(REAL_COUNTS)
    assert sorted(sample["shippers"]["fee"]) == sorted(data["shippers"]["fee"])
    # Each fee goes with its shipper's real number of orders.
    joined = sample["orders"].merge(sample["shippers"], left_on="shipper", right_on="id")
    fee_counts = joined.groupby("fee").size().to_dict()
    real = dict(zip(data["shippers"]["fee"], REAL_COUNTS, strict=True))
    assert fee_counts == {fee: real[fee] for fee in fee_counts}
    twice = synthesizer.sample(scale=2.0)
    assert len(twice["shippers"]) == 12
    assert _counts(twice) == sorted(REAL_COUNTS * 2)


def test_small_table_rows_zero_samples_the_parent_from_its_copula():
    metadata, data = _shop()
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1, small_table_rows=0)
    synthesizer.fit(data)
    assert _counts(synthesizer.sample()) != sorted(REAL_COUNTS)
    with pytest.raises(SynthesizerInputError, match="small_table_rows"):
        HMASynthesizer(metadata, small_table_rows=-1)


def test_replayed_rows_survive_save_and_load(tmp_path):
    metadata, data = _shop()
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=2, small_table_rows=10)
    synthesizer.fit(data)
    for name in ("m.pkl", "m.json"):
        synthesizer.save(tmp_path / name)
        loaded = HMASynthesizer.load(tmp_path / name)
        assert loaded.small_table_rows == 10
        assert _counts(loaded.sample()) == sorted(REAL_COUNTS)


# ------------------------------------------------------------------------------ empirical
def _two_peaks(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < 0.9, rng.normal(250, 40, n), rng.normal(2600, 300, n))


def test_the_knot_limit_holds_and_the_quantiles_are_the_datas():
    values = _two_peaks(50_000)
    knots = fit_empirical(values)["knots"]
    assert len(knots) == MAX_KNOTS
    assert knots[0] == values.min() and knots[-1] == values.max()
    assert len(fit_empirical(values[:7])["knots"]) == 7
    model = Empirical({"knots": knots})
    u = np.random.default_rng(1).random(20_000)
    drawn = model.ppf(u)
    assert abs(np.quantile(drawn, 0.99) - np.quantile(values, 0.99)) < 0.05 * values.std()
    assert np.allclose(model.cdf(model.ppf(np.linspace(0.01, 0.99, 9))), np.linspace(0.01, 0.99, 9))


def test_a_column_of_two_peaks_gets_the_empirical_marginal_and_a_normal_one_does_not():
    rng = np.random.default_rng(3)
    assert is_multimodal(_two_peaks(3_000))
    assert not is_multimodal(rng.normal(size=3_000))
    assert fit_marginal("beta", _two_peaks(3_000))["distribution"] == "empirical"
    assert fit_marginal("beta", rng.normal(size=3_000))["distribution"] != "empirical"
    # A family the user named is kept however poorly it fits.
    assert fit_marginal("norm", _two_peaks(3_000), named=True)["distribution"] == "norm"


def _histogram_dips(values: np.ndarray) -> bool:
    """is_multimodal as numpy's own quantile, unique and histogram compute it."""
    low, high = np.quantile(values, [0.01, 0.99])
    inside = values[(values >= low) & (values <= high)]
    bins = int(min(HISTOGRAM_BINS, len(np.unique(inside))))
    counts, _ = np.histogram(inside, bins=bins, range=(low, high))
    share = np.convolve(np.pad(counts / len(values), 1, mode="edge"), [0.25, 0.5, 0.25], "valid")
    lower = np.minimum(np.maximum.accumulate(share), np.maximum.accumulate(share[::-1])[::-1])
    left, right = np.cumsum(share) - share, share[::-1].cumsum()[::-1] - share
    n = len(values)
    return bool(np.any((share < DIP_SHARE * lower) & (lower >= MIN_PEAK_SHARE)
                       & ((lower - share) * n >= 3.0 * np.sqrt(lower * n))
                       & (left >= MIN_SIDE_SHARE) & (right >= MIN_SIDE_SHARE)))


def test_the_peaks_are_counted_from_one_sort_as_numpy_counts_them():
    rng = np.random.default_rng(8)
    columns = [rng.poisson(3, size=400).astype(float), np.round(rng.lognormal(size=900), 1),
               rng.integers(0, 4, size=120).astype(float), _two_peaks(2_000, seed=2),
               np.r_[rng.exponential(size=950), rng.uniform(3, 9, size=50)]]
    for values in columns:
        ordered = np.sort(values)
        for q in (0.01, 0.5, 0.99):
            assert _quantile(ordered, q) == np.quantile(values, q)
        assert is_multimodal(values) == _histogram_dips(values)
    assert {is_multimodal(values) for values in columns} == {True, False}


def test_the_empirical_copula_keeps_the_shape_of_its_data():
    data = np.column_stack([_two_peaks(4_000), np.random.default_rng(5).normal(size=4_000)])
    copula = GaussianCopula("beta").fit(data, ["ms", "x"])
    assert copula.learned_distributions()["ms"]["distribution"] == "empirical"
    out = copula.from_scores(copula.sample_scores(20_000, np.random.default_rng(6)))
    real_p99, fake_p99 = np.quantile(data[:, 0], 0.99), np.quantile(out[:, 0], 0.99)
    assert abs(fake_p99 - real_p99) < 0.05 * real_p99
    rebuilt = GaussianCopula.from_dict(copula.to_dict())
    scores = np.random.default_rng(7).standard_normal((50, 2))
    assert np.array_equal(rebuilt.from_scores(scores), copula.from_scores(scores))


def test_empirical_round_trips_through_set_table_parameters_save_and_load(tmp_path):
    metadata, data = _shop()
    data["orders"]["weight"] = _two_peaks(len(data["orders"]), seed=9).round(1)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=4)
    synthesizer.set_table_parameters("shippers", {"numerical_distributions": {"fee": "empirical"}})
    synthesizer.fit(data)
    learned = synthesizer.get_learned_distributions("shippers")["fee"]
    assert learned["distribution"] == "empirical"
    assert learned["learned_parameters"]["knots"] == sorted(data["shippers"]["fee"])
    auto = synthesizer.get_learned_distributions("orders")["weight"]
    assert auto["distribution"] == "empirical" and auto["fallback_from"] == "beta"
    assert len(auto["learned_parameters"]["knots"]) <= MAX_KNOTS
    first = synthesizer.sample()
    for name in ("m.pkl", "m.json"):
        synthesizer.save(tmp_path / name)
        loaded = HMASynthesizer.load(tmp_path / name)
        assert loaded.get_learned_distributions("orders") == \
            synthesizer.get_learned_distributions("orders")
        loaded.reset_sampling()
        pd.testing.assert_frame_equal(loaded.sample()["orders"], first["orders"])
        synthesizer.reset_sampling()


# ------------------------------------------------------------------------ discrete numbers
def test_a_number_of_few_frequent_values_and_rare_ones_takes_only_the_frequent_ones():
    metadata, data = _shop()
    orders = data["orders"]
    orders = orders.loc[orders.index.repeat(5)].reset_index(drop=True)
    orders["oid"] = range(len(orders))
    rare = np.array([0.01, 0.02, 0.03, 0.04, 0.06])  # once each, like Northwind's discounts
    common = np.random.default_rng(0).choice([0.0, 0.05, 0.1, 0.15, 0.2, 0.25], len(orders) - 5,
                                             p=[.6, .1, .1, .08, .07, .05])
    orders["discount"] = np.concatenate([common, rare])
    data["orders"] = orders
    metadata.add_column("discount", "orders", sdtype="numerical")
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=5)
    synthesizer.fit(data)
    out = synthesizer.sample()["orders"]["discount"]
    assert set(out.unique()) <= {0.0, 0.05, 0.1, 0.15, 0.2, 0.25}
    share = (out == 0.0).mean()
    assert abs(share - (orders["discount"] == 0.0).mean()) < 0.05


@pytest.fixture(scope="module")
def northwind():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_and_sample(NORTHWIND_SQLITE, seed=0)


def test_northwind_discounts_are_source_values_and_shippers_keep_their_order_counts(northwind):
    _, real, fake = northwind
    source = set(real["order_details"]["discount"].astype(float).round(6))
    assert set(fake["order_details"]["discount"].astype(float).round(6)) <= source
    counts = fake["orders"]["ship_via"].value_counts().sort_values().tolist()
    assert counts == real["orders"]["ship_via"].value_counts().sort_values().tolist()


# ------------------------------------------------------------------- categories' latent scores
@pytest.mark.parametrize("rows", [3_000, 60_000])  # all rows in the rounds, and beyond FIT_ROWS
def test_rows_move_inside_their_slices_to_follow_the_columns_they_go_with(rows):
    from scipy import special

    from hma_db.model.latent import FIT_ROWS, align_slices

    assert (rows > FIT_ROWS) == (rows == 60_000)
    rng = np.random.default_rng(0)
    latent = rng.standard_normal(rows)
    edges = np.array([0.0, 0.6, 0.94, 1.0])  # three categories, the last of 6% of rows
    cell = np.searchsorted(edges, special.ndtr(latent), "right") - 1
    data = np.column_stack([
        edges[cell] + rng.random(rows) * (edges[cell + 1] - edges[cell]),  # uniform in slice
        special.ndtr(latent + 0.3 * rng.standard_normal(rows)),  # a column it goes with
        rng.random(rows)])  # and one it does not
    truth = np.corrcoef(special.ndtr(latent), data[:, 1])[0, 1]
    before = np.corrcoef(data[:, 0], data[:, 1])[0, 1]
    out = align_slices(data, {0: edges}, np.random.default_rng(1))
    after = np.corrcoef(out[:, 0], out[:, 1])[0, 1]
    assert truth - after < 0.02 < truth - before
    assert np.array_equal(np.searchsorted(edges, out[:, 0], "right") - 1, cell)
    assert np.array_equal(out[:, 1:], data[:, 1:])
    assert abs(np.corrcoef(out[:, 0], out[:, 2])[0, 1]) < 0.03


def test_a_sliced_column_of_the_synthesizer_keeps_its_link_to_a_number():
    rng = np.random.default_rng(2)
    n = 3_000
    video = rng.random(n) < 0.06
    tracks = pd.DataFrame({"id": range(n), "price": np.where(video, 1.99, 0.99),
                           "ms": np.where(video, rng.normal(2.6e6, 3e5, n),
                                          rng.normal(2.5e5, 5e4, n)).round()})
    metadata = Metadata.load_from_dict({"tables": {"tracks": {"primary_key": "id", "columns": {
        "id": {"sdtype": "id"}, "price": {"sdtype": "numerical"},
        "ms": {"sdtype": "numerical"}}}}})
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=3)
    synthesizer.fit({"tracks": tracks})
    out = synthesizer.sample()["tracks"]
    real = tracks.groupby("price")["ms"].median()
    fake = out.groupby("price")["ms"].median()
    # Without the slices aligned, 1.99 tracks came out as short as 0.99 ones (median 0.3M).
    assert fake[1.99] > 0.5 * real[1.99]


def test_a_reference_table_kept_as_it_is_is_not_replayed():
    metadata, data = _shop()
    metadata.tables["shippers"]["policy"] = "keep"
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=6)
    synthesizer.fit(data)
    sample = synthesizer.sample(scale=2.0)
    # Its own rows once (a replayed table would have 12 at scale 2), the children doubled.
    assert sample["shippers"]["id"].tolist() == data["shippers"]["id"].tolist()
    assert _counts(sample) == sorted(c * 2 for c in REAL_COUNTS)
