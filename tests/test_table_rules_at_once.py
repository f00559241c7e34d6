"""The steps of a table's rules (hma_db.synthesizer.constraints): the table at once, sharing its
column conversions, gives what each step gives applied one after the other."""

from __future__ import annotations

import decimal

import numpy as np
import pandas as pd
import pytest

from hma_db import FixedIncrements, Inequality, Metadata
from hma_db.synthesizer.constraints import Gap, Numbers, TableRules


def _one_by_one(rules: TableRules, frame: pd.DataFrame) -> pd.DataFrame:
    """The obvious transform: each step on the frame the previous one gave."""
    for step in rules.steps:
        frame = step.transform(frame)
    return frame.drop(columns=[s.high for s in rules.steps if isinstance(s, Gap) and s.replaced])


def _awkward(rows: int = 60) -> tuple[pd.DataFrame, Metadata]:
    rng = np.random.default_rng(4)
    a = np.round(rng.uniform(1, 50, rows), 2)
    b = a + np.round(rng.uniform(0, 5, rows), 2)
    b[[3, 7]] = np.nan  # a high NULL where its low is set
    c = np.fmax(a, b) + rng.integers(0, 3, rows)  # ties with b in some rows
    a[[5, 9]] = np.nan  # a low NULL: the other low decides
    day = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 90, rows), unit="D")
    frame = pd.DataFrame({
        "id": np.arange(rows), "a": a, "b": b, "c": c,
        "price": [decimal.Decimal(f"{v:.2f}") for v in a + 1],
        "cost": [decimal.Decimal(f"{v:.2f}") for v in np.nan_to_num(a, nan=1.0)],
        "opened": day, "closed": day + pd.to_timedelta(rng.integers(0, 30, rows), unit="D"),
        "steps": rng.integers(0, 10, rows) * 5,
    }, index=np.arange(rows)[::-1] * 2)  # an index that is not 0..n-1
    frame.loc[frame.index[11], "cost"] = None
    # columns no rule binds, of pandas' own dtypes: kept as they are
    frame["kind"] = pd.Categorical(rng.choice(["x", "y"], rows))
    frame["n"] = pd.array(np.where(rng.random(rows) < 0.2, None, rng.integers(0, 9, rows)),
                          dtype="Int64")
    frame["at"] = day.tz_localize("Europe/Paris")
    frame["flag"] = rng.random(rows) < 0.5
    columns = {"id": {"sdtype": "id"}, "opened": {"sdtype": "datetime"},
               "closed": {"sdtype": "datetime"}, "kind": {"sdtype": "categorical"},
               "n": {"sdtype": "numerical"}, "at": {"sdtype": "datetime"},
               "flag": {"sdtype": "boolean"}}
    columns.update({c: {"sdtype": "numerical"} for c in ("a", "b", "c", "price", "cost", "steps")})
    metadata = Metadata.from_dict({"tables": {"t": {"primary_key": "id", "columns": columns}}})
    return frame, metadata


RULES = [Inequality("a", "b", table_name="t"), Inequality("b", "c", table_name="t"),
         Inequality("a", "c", table_name="t"), Inequality("cost", "price", table_name="t"),
         Inequality("opened", "closed", table_name="t"),
         FixedIncrements("steps", 5, table_name="t")]


@pytest.mark.parametrize("rows", [60, 0])
def test_the_table_at_once_gives_what_the_steps_give_one_by_one(rows):
    frame, metadata = _awkward(60)
    frame = frame.iloc[:rows]
    before = frame.copy()
    rules = TableRules.build("t", RULES, list(frame.columns))
    if rows:
        out = rules.fit_transform(frame, metadata)
        pd.testing.assert_frame_equal(out, _one_by_one(rules, frame), check_exact=True)
        pd.testing.assert_frame_equal(rules.transform(frame), out, check_exact=True)
        assert sorted(c for c in out.columns if c.endswith(".gap")) == [
            "b.gap", "c.gap", "closed.gap", "price.gap"]
    else:  # no rows: nothing to learn, and the gaps come out empty
        rules.fit(_awkward(60)[0], metadata)
        pd.testing.assert_frame_equal(rules.transform(frame), _one_by_one(rules, frame))
    pd.testing.assert_frame_equal(frame, before)  # the input is left alone


def test_a_step_after_a_gap_sees_the_gap_as_one_by_one():
    frame, metadata = _awkward()
    built = TableRules.build("t", RULES, list(frame.columns))
    built.fit(frame, metadata)
    saved = built.to_dict()
    saved["steps"] = saved["steps"][1:] + saved["steps"][:1]  # a model file's order: gaps first
    rules = TableRules.from_dict(saved)
    assert isinstance(rules.steps[0], Gap) and not isinstance(rules.steps[-1], Gap)
    out = rules.transform(frame)
    pd.testing.assert_frame_equal(out, _one_by_one(rules, frame), check_exact=True)
    assert (out["steps"].to_numpy() == frame["steps"].to_numpy() / 5).all()


def test_the_largest_low_is_the_largest_set_value_of_its_row():
    frame = pd.DataFrame({"x": [1.0, np.nan, 3.0, np.nan, -2.0], "y": [2.0, 5.0, np.nan, np.nan,
                                                                       -7.0]})
    numbers = Numbers(frame)
    got = numbers.largest(["x", "y"], "number")
    np.testing.assert_array_equal(got, frame.max(axis=1).to_numpy())  # NaN where both are
    assert numbers.largest(["x", "y"], "number") is got  # converted once
    np.testing.assert_array_equal(numbers.largest(["y"], "number"), frame["y"].to_numpy())


@pytest.mark.parametrize("bounded", [True, False])
def test_each_gap_fitted_with_the_table_is_the_gap_fitted_alone(bounded):
    frame, metadata = _awkward()
    rules = TableRules.build("t", RULES, list(frame.columns))
    rules.fit(frame, metadata, bounded=bounded)
    gaps = [s for s in rules.steps if isinstance(s, Gap)]
    assert len({len(s.quantiles) for s in gaps}) == 1  # real gaps of 3 lengths: 201 each
    for step in gaps:
        alone = Gap(step.high, step.lows, step.strict, step.column)
        alone.fit(frame, None)
        if not bounded:
            alone.unbound()
        assert step.to_dict() == alone.to_dict()
        assert bool(step.quantiles) == bounded
