"""A child number that is its parent's number times a constant (a payslip's gross pay is a
twelfth of its employee's salary) is found, kept in the synthetic rows, saved with the model,
checked when loaded, and kept through a clone from PostgreSQL, whose NUMERIC values are
Decimals; a number that only resembles its parent's gets no factor."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from hma_db import HMASynthesizer, Metadata, clone, load_synthesizer
from hma_db.errors import ModelFileError
from hma_db.transform import scaled


def _payroll(n: int = 120, seed: int = 0, twelfth: float = 1.0):
    rng = np.random.default_rng(seed)
    staff = pd.DataFrame({"staff_id": np.arange(1, n + 1),
                          "salary": np.round(rng.lognormal(11, 0.3, n), -2),
                          "age": rng.integers(20, 65, n)})
    months = rng.integers(3, 13, n)
    slips = pd.DataFrame({"slip_id": np.arange(1, months.sum() + 1),
                          "staff_id": np.repeat(staff.staff_id, months).to_numpy()})
    salary = staff.set_index("staff_id").salary.loc[slips.staff_id].to_numpy()
    odd = rng.random(len(slips)) > twelfth
    slips["gross"] = np.round(np.where(odd, salary * rng.uniform(0.05, 0.1, len(slips)),
                                       salary / 12), 2)
    slips["hours"] = rng.integers(120, 180, len(slips))
    metadata = Metadata.load_from_dict({
        "tables": {
            "staff": {"primary_key": "staff_id", "columns": {
                "staff_id": {"sdtype": "id"}, "salary": {"sdtype": "numerical"},
                "age": {"sdtype": "numerical"}}},
            "slip": {"primary_key": "slip_id", "columns": {
                "slip_id": {"sdtype": "id"}, "staff_id": {"sdtype": "id"},
                "gross": {"sdtype": "numerical"}, "hours": {"sdtype": "numerical"}}}},
        "relationships": [{"parent_table_name": "staff", "parent_primary_key": "staff_id",
                           "child_table_name": "slip", "child_foreign_key": "staff_id"}]})
    return metadata, {"staff": staff, "slip": slips}


def _twelfths(out: dict[str, pd.DataFrame]) -> float:
    salary = out["staff"].set_index("staff_id").salary.astype(float)
    expected = np.round(salary.loc[out["slip"].staff_id].to_numpy() / 12, 2)
    return float(np.mean(np.abs(out["slip"].gross.astype(float).to_numpy() - expected) < 0.006))


def test_a_twelfth_of_the_salary_stays_a_twelfth():
    metadata, data = _payroll(twelfth=0.9)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1)
    synthesizer.fit(data)
    copies = synthesizer.table_transformers["slip"].parent_copies
    assert [(c["column"], c["parent_column"], c["digits"]) for c in copies] == [
        ("gross", "salary", 2)]
    assert copies[0]["factor"] == pytest.approx(1 / 12, rel=1e-6)
    assert 0.85 < copies[0]["share"] < 0.95
    out = synthesizer.sample(scale=2.0)
    assert abs(_twelfths(out) - _twelfths(data)) < 0.05  # real 0.92; 0.008 before
    assert not any(c["column"] == "hours" for c in copies)  # no factor by chance


def test_no_factor_where_the_ratio_varies():
    rng = np.random.default_rng(5)
    parent = rng.lognormal(11, 0.3, 400)
    child = np.round(parent * rng.uniform(0.05, 0.12, 400), 2)
    assert scaled.find(child, {"salary": parent}, 2) is None
    assert scaled.find(np.round(parent, 2), {"salary": parent}, 2) is None  # a plain copy


def test_the_factor_is_saved_and_checked_when_loaded(tmp_path):
    metadata, data = _payroll()
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1)
    synthesizer.fit(data)
    synthesizer.save(tmp_path / "payroll.json")
    loaded = load_synthesizer(tmp_path / "payroll.json")
    pd.testing.assert_frame_equal(loaded.sample(scale=1.0)["slip"],
                                  synthesizer.sample(scale=1.0)["slip"])
    state = synthesizer.table_transformers["slip"].to_dict()
    for bad in (float("inf"), 0, "1/12", True):
        state["parent_copies"] = json.loads(json.dumps(state["parent_copies"]))
        state["parent_copies"][0]["factor"] = bad
        with pytest.raises(ModelFileError, match="'slip' has a parent copy"):
            type(synthesizer.table_transformers["slip"]).from_dict(state, metadata)


def test_a_clone_from_postgres_keeps_the_twelfths_of_its_decimals(postgres_databases,
                                                                   tmp_path):
    source = postgres_databases.new("payroll")
    _, data = _payroll()
    engine = sa.create_engine(source)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE staff (staff_id integer PRIMARY KEY, "
                                 "salary numeric(10, 2) NOT NULL, age integer)"))
            conn.execute(sa.text("CREATE TABLE slip (slip_id integer PRIMARY KEY, staff_id "
                                 "integer NOT NULL REFERENCES staff, gross numeric(10, 2), "
                                 "hours integer)"))
        data["staff"].to_sql("staff", engine, if_exists="append", index=False)
        data["slip"].to_sql("slip", engine, if_exists="append", index=False)
    finally:
        engine.dispose()
    target = f"sqlite:///{tmp_path}/payroll.sqlite"
    clone(source, target, scale=1.5, seed=2, if_exists="replace")
    out = {t: pd.read_sql(f"SELECT * FROM {t}", sa.create_engine(target))
           for t in ("staff", "slip")}
    assert _twelfths(out) > 0.95
