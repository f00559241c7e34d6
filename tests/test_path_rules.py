"""Rules across tables found in the data: a child that reaches one ancestor along two
foreign-key paths (payment -> customer and payment -> rental -> customer) names the same
ancestor along both in every synthetic row, as in every real one; whole, in chunks, at scale 1
and 3, whichever parent the child is sampled under."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hma_db import HMASynthesizer, Metadata, evaluate
from hma_db.model import fit_hma

DIRECT, VIA, UP = ("payment.customer_id -> customer", "payment.rental_id -> rental",
                   "rental.customer_id -> customer")


def _ids(*names: str) -> dict:
    return {n: {"sdtype": "id"} for n in names}


def dvd_rental(seed: int = 0) -> tuple[Metadata, dict[str, pd.DataFrame]]:
    """A DVD-rental-like schema: customers, their rentals, a payment for most rentals."""
    rng = np.random.default_rng(seed)
    n_customers = 80
    customer = pd.DataFrame({"customer_id": np.arange(1, n_customers + 1),
                             "store": rng.integers(1, 3, n_customers)})
    owner = np.repeat(customer["customer_id"].to_numpy(), rng.integers(3, 25, n_customers))
    rented = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 7200, len(owner)), "h")
    rental = pd.DataFrame({"rental_id": np.arange(1, len(owner) + 1), "customer_id": owner,
                           "rental_date": rented})
    paid = rng.random(len(owner)) < 0.9
    payment = pd.DataFrame({"payment_id": np.arange(1, paid.sum() + 1),
                            "customer_id": owner[paid],
                            "rental_id": rental["rental_id"].to_numpy()[paid],
                            "amount": rng.choice([0.99, 2.99, 4.99], paid.sum())})
    metadata = Metadata.from_dict({"tables": {
        "customer": {"primary_key": "customer_id",
                     "columns": {**_ids("customer_id"), "store": {"sdtype": "categorical"}}},
        "rental": {"primary_key": "rental_id",
                   "columns": {**_ids("rental_id", "customer_id"),
                               "rental_date": {"sdtype": "datetime"}}},
        "payment": {"primary_key": "payment_id",
                    "columns": {**_ids("payment_id", "customer_id", "rental_id"),
                                "amount": {"sdtype": "numerical"}}}},
        "relationships": [
            {"parent_table_name": p, "parent_primary_key": f"{p}_id", "child_table_name": c,
             "child_foreign_key": f"{p}_id"}
            for c, p in [("rental", "customer"), ("payment", "customer"), ("payment", "rental")]]})
    return metadata, {"customer": customer, "rental": rental, "payment": payment}


def disagreeing(data: dict[str, pd.DataFrame]) -> int:
    """Payments whose customer is not their rental's customer."""
    both = data["payment"].merge(data["rental"][["rental_id", "customer_id"]], on="rental_id",
                                 suffixes=("", "_of_rental"))
    assert len(both) == data["payment"]["rental_id"].notna().sum()
    return int((both["customer_id"] != both["customer_id_of_rental"]).sum())


@pytest.fixture(scope="module")
def fitted():
    metadata, data = dvd_rental()
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1)
    synthesizer.fit(data)
    return synthesizer, data


def _whole_and_chunks(synthesizer, scale: float):
    yield synthesizer.sample(scale=scale)
    chunks = list(synthesizer.sample_chunks(scale=scale, chunk_rows=400))
    assert len(chunks) > 1
    yield {t: pd.concat([c[t] for c in chunks], ignore_index=True) for t in chunks[0]}


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_two_paths_to_the_customer_agree_in_every_sampled_row(fitted, scale):
    synthesizer, data = fitted
    assert disagreeing(data) == 0
    rule = next(c for c in synthesizer.get_constraints() if c.describe().startswith("payment"))
    assert rule.describe() == "payment.customer_id = payment.rental_id -> rental.customer_id"
    for out in _whole_and_chunks(synthesizer, scale):
        assert len(out["payment"]) == round(len(data["payment"]) * scale)
        assert disagreeing(out) == 0


def test_without_the_rule_the_paths_disagree():
    metadata, data = dvd_rental()
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1, find_rules=False)
    synthesizer.fit(data)
    assert disagreeing(synthesizer.sample()) > len(data["payment"]) // 2


@pytest.mark.parametrize("first", [DIRECT, VIA])
def test_the_model_links_along_both_paths_whichever_parent_comes_first(first):
    metadata, data = dvd_rental(seed=2)
    positions = {t: pd.Series(np.arange(len(f)), index=f[f"{t}_id"]) for t, f in data.items()}
    links = {DIRECT: positions["customer"][data["payment"]["customer_id"]].to_numpy(),
             VIA: positions["rental"][data["payment"]["rental_id"]].to_numpy(),
             UP: positions["customer"][data["rental"]["customer_id"]].to_numpy()}
    numeric = {"customer": data["customer"][["store"]].astype(float),
               "rental": pd.DataFrame(index=data["rental"].index),
               "payment": data["payment"][["amount"]]}
    model = fit_hma(metadata, numeric, links, {}, np.random.default_rng(0))
    assert model.relationships[DIRECT]["agrees"] == {"via": VIA, "up": UP}
    model.tables["payment"].primary = first  # the parent the payments are sampled under
    frames, out = model.sample(2.0, np.random.default_rng(1))
    assert (out[DIRECT] == out[UP][out[VIA]]).all()
    per_rental = np.bincount(out[VIA], minlength=len(frames["rental"]))
    assert per_rental.max() <= 3  # a customer's payments are spread over its rentals


def test_the_path_rule_is_switched_off_by_its_label():
    metadata, data = dvd_rental()
    label = "payment: payment.customer_id = payment.rental_id -> rental.customer_id"
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1, skip_rules=[label])
    synthesizer.fit(data)
    assert label not in {f"{c.table_name}: {c.describe()}" for c in synthesizer.get_constraints()}
    assert disagreeing(synthesizer.sample()) > len(data["payment"]) // 2


def test_the_report_counts_the_rules_across_tables(fitted):
    synthesizer, data = fitted
    metadata = synthesizer.get_metadata()
    off = HMASynthesizer(metadata, verbose=False, seed=1, find_rules=False)
    off.fit(data)
    name = ("rule payment.customer_id = payment.rental_id -> rental.customer_id "
            "(found in the data)")
    for model, broken in ((synthesizer, False), (off, True)):
        report = evaluate(data, model.sample(), metadata)  # the rules found in the real data
        finding = next(f for f in report.validity if f["check"] == name)
        assert finding["real_violations"] == 0
        assert (finding["violations"] > 100) if broken else (finding["violations"] == 0)
