"""A category set by ranges of a date or number of its row (:mod:`hma_db.schema.rules.steps`):
TPC-H's line status is 'O' exactly when the line ships after 1995-06-17. Found in the data,
kept in every sampled row (also in chunks, after a saved model is loaded, and in a clone into
another dialect); never found where the values' ranges overlap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from hma_db import HMASynthesizer, Metadata, clone, load_synthesizer
from hma_db.schema import StepRule, find_steps

CUT = pd.Timestamp("1995-06-17")


def _lines(n: int = 1_500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ship = pd.Timestamp("1992-01-02") + pd.to_timedelta(rng.integers(0, 2_400, n), unit="D")
    amount = np.round(rng.gamma(2, 400, n), 2)
    return pd.DataFrame({
        "l_id": np.arange(1, n + 1), "ship": ship,
        "status": np.where(ship > CUT, "O", "F"),
        "flag": np.where(ship > CUT, "N", rng.choice(["R", "A"], n)),  # two values, one range
        "band": np.select([amount < 300, amount < 1_200], ["low", "mid"], "high"),
        "mode": rng.choice(["AIR", "RAIL", "SHIP"], n),  # no range of anything
        "amount": amount})


def _metadata() -> Metadata:
    return Metadata.from_dict({"tables": {"lines": {"primary_key": "l_id", "columns": {
        "l_id": {"sdtype": "id"}, "ship": {"sdtype": "datetime"},
        "status": {"sdtype": "categorical"}, "band": {"sdtype": "categorical"},
        "flag": {"sdtype": "categorical"},
        "mode": {"sdtype": "categorical"}, "amount": {"sdtype": "numerical"}}}}})


def test_categories_set_by_ranges_are_found_and_nothing_else():
    lines = _lines()
    found = {(r.column_name, r.source_column_name): r
             for r in find_steps(_metadata(), {"lines": lines}, {"lines"})}
    assert set(found) == {("status", "ship"), ("band", "amount"), ("flag", "ship")}
    flag = found[("flag", "ship")]
    assert dict(zip(flag.values, flag.steps, strict=True)) == {"R": 0, "A": 0, "N": 1}
    assert sum(share for share, step in zip(flag.shares, flag.steps, strict=True)
               if step == 0) == pytest.approx(1.0)
    status = found[("status", "ship")]
    assert (status.values, status.steps) == (["F", "O"], [0, 1]) and status.origin == "data"
    edge = pd.Timestamp(status.edges[0], unit="s")  # halfway from the last F to the first O
    last, first = lines.ship[lines.status == "F"].max(), lines.ship[lines.status == "O"].min()
    assert edge == last + (first - last) / 2 and last <= CUT < first
    assert found[("band", "amount")].values == ["low", "mid", "high"]
    assert status.is_valid(lines).all() and found[("band", "amount")].is_valid(lines).all()
    # One row against the cut breaks it: no rule.
    broken = lines.copy()
    broken.loc[broken.ship.idxmax(), "status"] = "F"
    assert not {r.column_name for r in find_steps(_metadata(), {"lines": broken},
                                                   {"lines"})} & {"status"}
    # Statuses at random over the same dates, or too few rows of a value: no rule either.
    rng = np.random.default_rng(1)
    noise = lines.assign(status=rng.choice(["F", "O"], len(lines)),
                         flag=rng.choice(["R", "A", "N"], len(lines)),
                         band=np.where(lines.amount > lines.amount.nlargest(10).min(), "top",
                                       "rest"))
    assert find_steps(_metadata(), {"lines": noise}, {"lines"}) == []


def test_the_sampled_rows_keep_the_steps_in_chunks_and_after_loading(tmp_path):
    synthesizer = HMASynthesizer(_metadata(), verbose=False, seed=4)
    synthesizer.fit({"lines": _lines()})
    rules = {c.column_name: c for c in synthesizer.get_constraints() if isinstance(c, StepRule)}
    assert set(rules) == {"status", "band", "flag"}
    edge = pd.Timestamp(rules["status"].edges[0], unit="s")
    synthesizer.save(tmp_path / "model.json")
    loaded = load_synthesizer(tmp_path / "model.json", trust_pickle=False)
    for source in (synthesizer, loaded):
        whole = source.sample(scale=2.0)["lines"]
        chunks = pd.concat([c["lines"] for c in source.sample_chunks(scale=2.0, chunk_rows=700)])
        for out in (whole, chunks):
            source.validate_constraints({"lines": out})
            assert ((out.ship > edge) == (out.status == "O")).all()
            assert ((out.ship > edge) == (out.flag == "N")).all()
            early = out.flag[out.ship <= edge]
            assert set(early) == {"R", "A"} and abs((early == "R").mean() - 0.5) < 0.1
            assert set(out.band) == {"low", "mid", "high"}
            assert (out.status == "O").mean() == pytest.approx(0.47, abs=0.08)


def test_a_clone_into_another_dialect_keeps_the_steps(tmp_path, postgres_databases):
    source = f"sqlite:///{tmp_path / 'lines.sqlite'}"
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE lines (l_id INTEGER PRIMARY KEY, ship DATE NOT NULL, "
                             "status CHAR(1) NOT NULL, flag CHAR(1) NOT NULL, band VARCHAR(4) NOT NULL, "
                             "mode VARCHAR(4) NOT NULL, amount NUMERIC(10, 2) NOT NULL)")
        _lines(800).assign(ship=lambda f: f.ship.dt.date).to_sql(
            "lines", conn, if_exists="append", index=False)
    engine.dispose()
    target = postgres_databases.new("steps")
    clone(source, target, seed=3, scale=3.0, chunk_rows=1_000)
    engine = sa.create_engine(target)
    with engine.connect() as conn:
        wrong = conn.exec_driver_sql(
            "SELECT count(*) FROM lines WHERE ship <= DATE '1995-06-18' AND status = 'O' "
            "OR ship >= DATE '1995-06-19' AND status = 'F' "
            "OR ship <= DATE '1995-06-18' AND flag = 'N' OR ship >= DATE '1995-06-19' AND flag <> 'N'"
        ).scalar()
        total = conn.exec_driver_sql("SELECT count(*) FROM lines").scalar()
    engine.dispose()
    assert total == 2_400 and wrong == 0  # the real cut: last F 06-17, first O 06-19
