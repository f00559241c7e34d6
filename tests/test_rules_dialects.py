"""Rules found in the data of each dialect's own types (PostgreSQL ``timestamptz`` and
``numeric``, MariaDB ``DATETIME`` and ``DECIMAL``, SQLite text dates): reflect proposes them,
the fit keeps them, and they hold in a clone into another dialect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from hma_db import HMASynthesizer, Metadata, clone, read_tables, reflect
from hma_db.schema import find_inequalities

N = 240
SERVERS = {"postgres": "postgres_databases", "mariadb": "mysql_databases"}
DDL = {
    "postgres": "CREATE TABLE quotes (quote_id INTEGER PRIMARY KEY, "
                "opened_at TIMESTAMPTZ NOT NULL, closed_at TIMESTAMPTZ, "
                "low NUMERIC(10,2) NOT NULL, high NUMERIC(10,2) NOT NULL, qty INTEGER NOT NULL, "
                "amount NUMERIC(12,2) NOT NULL)",
    "mariadb": "CREATE TABLE quotes (quote_id INTEGER PRIMARY KEY, "
               "opened_at DATETIME NOT NULL, closed_at DATETIME NULL, "
               "low DECIMAL(10,2) NOT NULL, high DECIMAL(10,2) NOT NULL, qty INTEGER NOT NULL, "
               "amount DECIMAL(12,2) NOT NULL)",
    "sqlite": "CREATE TABLE quotes (quote_id INTEGER PRIMARY KEY, opened_at TIMESTAMP NOT NULL, "
              "closed_at TIMESTAMP, low NUMERIC NOT NULL, high NUMERIC NOT NULL, "
              "qty INTEGER NOT NULL, amount NUMERIC NOT NULL)",
}
RULES = {"quotes: closed_at > opened_at", "quotes: high > low", "quotes: amount = high * qty"}
BROKEN = "SELECT count(*) FROM quotes WHERE closed_at <= opened_at OR high <= low " \
         "OR abs(amount - high * qty) > 0.005"


def _quotes() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    opened = pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.integers(0, 90 * 24, N), unit="h")
    closed = opened + pd.to_timedelta(rng.integers(1, 400, N), unit="h")
    low = np.round(rng.uniform(5, 60, N), 2)
    high = np.round(low + rng.uniform(0.5, 20, N), 2)
    qty = rng.integers(1, 40, N)
    return pd.DataFrame({"quote_id": np.arange(1, N + 1), "opened_at": opened,
                         "closed_at": pd.Series(closed).where(rng.random(N) > 0.15),
                         "low": low, "high": high, "qty": qty,
                         "amount": np.round(high * qty, 2)})


def _url(request, kind: str, tmp_path, hint: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / (hint + '.sqlite')}"
    return request.getfixturevalue(SERVERS[kind]).new(hint)


@pytest.mark.parametrize(("source_kind", "target"), [("postgres", "mariadb"),
                                                    ("mariadb", "sqlite"),
                                                    ("sqlite", "postgres")])
def test_rules_found_in_each_dialects_types_hold_in_another(request, tmp_path, source_kind,
                                                            target):
    source = _url(request, source_kind, tmp_path, "rules_src")
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql(DDL[source_kind])
        _quotes().to_sql("quotes", conn, if_exists="append", index=False)
    engine.dispose()
    metadata = reflect(source)
    # (and what follows from them in these rows: amount >= high, amount > low, amount > qty)
    assert {f"{r.table_name}: {r.describe()}" for r in metadata.proposed_rules} >= RULES
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=3)
    synthesizer.fit(read_tables(source, metadata))
    assert {f"{c.table_name}: {c.describe()}" for c in synthesizer.get_constraints()
                     if c.found} >= RULES
    url = _url(request, target, tmp_path, "rules_dst")
    clone(source, url, seed=3, scale=2.0, chunk_rows=150)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql(BROKEN).scalar() == 0
        assert conn.exec_driver_sql("SELECT count(*) FROM quotes").scalar() == 2 * N
        assert conn.exec_driver_sql("SELECT count(*) FROM quotes WHERE closed_at IS NULL"
                                    ).scalar() > 0  # nulls where the source has them
    engine.dispose()


def test_an_order_implied_by_two_others_is_not_kept_again():
    # Prices of ten sizes, each a fixed multiple of the first: 45 ordered pairs, a chain of 9.
    # A column with NULLs in the middle does not imply the pair around it.
    rng = np.random.default_rng(1)
    base = rng.uniform(1, 10, 80).round(2)
    frame = pd.DataFrame({"id": range(80), **{f"p{k}": (base * k).round(2) for k in range(1, 11)}})
    frame["mid"] = (frame.p1 + frame.p2) / 2
    frame.loc[::3, "mid"] = np.nan
    columns = {"id": {"sdtype": "id"}, **{c: {"sdtype": "numerical"} for c in frame.columns[1:]}}
    metadata = Metadata.from_dict({"tables": {"t": {"primary_key": "id", "columns": columns}}})
    found = {r.describe() for r in find_inequalities(metadata, "t", frame)}
    chain = {f"p{k + 1} > p{k}" for k in range(1, 10)}
    assert found == chain | {"mid > p1", "p2 > mid"}
