"""A status set by whether another column of its row is set ('terminated' exactly when the
employee has an end date) is found in the data and kept in every sampled row, whole, in
chunks, from a saved model and through a clone of each dialect; a status that is not so set
gets no rule, and the rule can be skipped by its name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from hma_db import HMASynthesizer, Metadata, clone, load_synthesizer
from hma_db.schema import PresenceRule, find_presence


def _staff(n: int = 600, seed: int = 0) -> tuple[Metadata, dict[str, pd.DataFrame]]:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 3000, n), unit="D")
    left = rng.random(n) < 0.3
    end = pd.Series(start + pd.to_timedelta(rng.integers(30, 900, n), unit="D"))
    end[~left] = pd.NaT
    status = np.where(left, rng.choice(["terminated", "retired"], n, p=[0.8, 0.2]),
                      rng.choice(["active", "on_leave"], n, p=[0.9, 0.1]))
    salary = np.round(rng.lognormal(10.8, 0.3, n) + np.where(left, -3000, 0), 2)
    frame = pd.DataFrame({"id": np.arange(1, n + 1), "status": status, "start_date": start,
                          "end_date": end, "salary": salary})
    metadata = Metadata.load_from_dict({"tables": {"staff": {"primary_key": "id", "columns": {
        "id": {"sdtype": "id"}, "status": {"sdtype": "categorical"},
        "start_date": {"sdtype": "datetime"}, "end_date": {"sdtype": "datetime"},
        "salary": {"sdtype": "numerical"}}}}})
    return metadata, {"staff": frame}


def _contradictions(frame: pd.DataFrame) -> float:
    gone = frame.status.isin(["terminated", "retired"])
    return float((gone != frame.end_date.notna()).mean())


def test_a_status_set_by_an_end_date_is_found_and_kept_whole_and_in_chunks():
    metadata, data = _staff()
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=2)
    synthesizer.fit(data)
    rules = [c for c in synthesizer.get_constraints() if isinstance(c, PresenceRule)]
    assert [r.describe() for r in rules] == ["status set by whether end_date is set"]
    whole = synthesizer.sample(scale=3.0)["staff"]
    chunks = list(synthesizer.sample_chunks(scale=3.0, chunk_rows=400))
    assert len(chunks) > 3
    for frame in (whole, pd.concat([c["staff"] for c in chunks], ignore_index=True)):
        assert _contradictions(frame) == 0
        left = frame.end_date.notna().mean()
        assert abs(left - 0.3) < 0.06  # the dates' NULLs are the model's; the status follows
        shares = frame.loc[frame.end_date.notna(), "status"].value_counts(normalize=True)
        assert abs(shares["terminated"] - 0.8) < 0.08
    skipped = HMASynthesizer(metadata, verbose=False, seed=2,
                             skip_rules=["staff: status set by whether end_date is set"])
    skipped.fit(data)
    assert _contradictions(skipped.sample(scale=3.0)["staff"]) > 0.02  # what the rule mends


def test_no_rule_where_a_status_is_seen_on_both_sides():
    metadata, data = _staff()
    frame = data["staff"].copy()
    frame.loc[frame.index[:40], "status"] = "active"  # 40 active employees who left
    assert find_presence(metadata, {"staff": frame}, {"staff"}) == []
    few = data["staff"].iloc[:50]  # under 30 rows on a side
    assert find_presence(metadata, {"staff": few}, {"staff"}) == []


def test_the_rule_is_saved_with_the_model(tmp_path):
    metadata, data = _staff()
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=2)
    synthesizer.fit(data)
    for name in ("model.pkl", "model.json"):
        synthesizer.save(tmp_path / name)
        loaded = load_synthesizer(tmp_path / name)
        out = loaded.sample(scale=2.0)["staff"]
        assert _contradictions(out) == 0
        pd.testing.assert_frame_equal(out, synthesizer.sample(scale=2.0)["staff"])
    with pytest.raises(ValueError, match="presence rule"):
        PresenceRule("status", "end_date", ["active"], [1.0], [False], table_name="staff")


_DDL = ("CREATE TABLE staff (id INTEGER PRIMARY KEY, status VARCHAR(20) NOT NULL, "
        "start_date DATE NOT NULL, end_date DATE, salary NUMERIC(10, 2))")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mariadb"])
def test_a_clone_keeps_the_status_with_its_end_date_in_every_dialect(dialect, tmp_path,
                                                                       request):
    if dialect == "sqlite":
        source = f"sqlite:///{tmp_path}/staff_source.db"
    else:
        fixture = "postgres_databases" if dialect == "postgresql" else "mysql_databases"
        source = request.getfixturevalue(fixture).new("staff")
    _, data = _staff(n=300)
    frame = data["staff"].assign(start_date=data["staff"].start_date.dt.date,
                                 end_date=data["staff"].end_date.dt.date)
    engine = sa.create_engine(source)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(_DDL))
        frame.to_sql("staff", engine, if_exists="append", index=False)
    finally:
        engine.dispose()
    target = f"sqlite:///{tmp_path}/staff_target.db"
    clone(source, target, scale=2.0, seed=4, if_exists="replace")
    out = pd.read_sql("SELECT status, end_date FROM staff", sa.create_engine(target))
    assert len(out) == 600 and _contradictions(out) == 0
