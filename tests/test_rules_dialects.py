"""Rules found in the data of each dialect's own types (PostgreSQL ``timestamptz`` and
``numeric``, MariaDB ``DATETIME`` and ``DECIMAL``, SQLite text dates): reflect proposes them,
the fit keeps them, and they hold in a clone into another dialect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from hma_db import HMASynthesizer, Metadata, clone, load_synthesizer, read_tables, reflect
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


ORDERS_DDL = {
    "postgres": ["CREATE TABLE orders (o_id INTEGER PRIMARY KEY, o_date DATE NOT NULL)",
                 "CREATE TABLE items (l_id INTEGER PRIMARY KEY, o_id INTEGER NOT NULL "
                 "REFERENCES orders, ship TIMESTAMPTZ, qty INTEGER)"],
    "mariadb": ["CREATE TABLE orders (o_id INTEGER PRIMARY KEY, o_date DATE NOT NULL)",
                "CREATE TABLE items (l_id INTEGER PRIMARY KEY, o_id INTEGER NOT NULL, "
                "ship DATETIME NULL, qty INTEGER, FOREIGN KEY (o_id) REFERENCES orders (o_id))"],
    "sqlite": ["CREATE TABLE orders (o_id INTEGER PRIMARY KEY, o_date DATE NOT NULL)",
               "CREATE TABLE items (l_id INTEGER PRIMARY KEY, o_id INTEGER NOT NULL "
               "REFERENCES orders, ship TIMESTAMP, qty INTEGER)"],
}


def _orders_and_lines() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(4)
    n = 300
    orders = pd.DataFrame({"o_id": np.arange(1, n + 1), "o_date": (
        pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")).date})
    order_of = np.repeat(orders.o_id.to_numpy(), rng.integers(1, 6, n))
    placed = pd.to_datetime(orders.set_index("o_id").o_date.loc[order_of].to_numpy())
    ship = placed + pd.to_timedelta(rng.integers(2 * 3600, 40 * 86400, len(order_of)), unit="s")
    lines = pd.DataFrame({"l_id": np.arange(1, len(order_of) + 1), "o_id": order_of,
                          "ship": pd.Series(ship).where(rng.random(len(order_of)) > 0.1),
                          "qty": rng.integers(1, 50, len(order_of))})
    return orders, lines


@pytest.mark.parametrize(("source_kind", "target"), [("postgres", "sqlite"),
                                                    ("mariadb", "postgres"),
                                                    ("sqlite", "mariadb")])
def test_a_childs_date_never_before_its_parents_holds_in_another_dialect(
        request, tmp_path, source_kind, target):
    # 5.4% of TPC-H's synthetic lines shipped before their order was placed (real: none).
    source = _url(request, source_kind, tmp_path, "order_src")
    orders, lines = _orders_and_lines()
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        for ddl in ORDERS_DDL[source_kind]:
            conn.exec_driver_sql(ddl)
        orders.to_sql("orders", conn, if_exists="append", index=False)
        lines.to_sql("items", conn, if_exists="append", index=False)
    engine.dispose()
    metadata = reflect(source)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=6)
    synthesizer.fit(read_tables(source, metadata))
    assert "items: items.ship > orders.o_date" in {
        f"{c.table_name}: {c.describe()}" for c in synthesizer.get_constraints() if c.found}
    synthesizer.save(tmp_path / "model.json")
    loaded = load_synthesizer(tmp_path / "model.json", trust_pickle=False)
    for chunk_rows in (None, 200):
        if chunk_rows is None:
            out = loaded.sample(scale=2.0)
        else:
            chunks = list(loaded.sample_chunks(scale=2.0, chunk_rows=chunk_rows))
            out = {t: pd.concat([c[t] for c in chunks], ignore_index=True) for t in chunks[0]}
        loaded.validate_constraints(out)
        placed = out["orders"].set_index("o_id")["o_date"].reindex(out["items"]["o_id"])
        gap = pd.to_datetime(out["items"]["ship"].to_numpy(), utc=True) - pd.to_datetime(
            placed.to_numpy(), utc=True)
        assert gap.max() <= pd.Timedelta(days=41)  # never further than the real gaps go
    url = _url(request, target, tmp_path, "order_dst")
    clone(source, url, seed=6, scale=2.0, chunk_rows=250)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        early = conn.exec_driver_sql(
            "SELECT count(*) FROM items JOIN orders ON orders.o_id = items.o_id "
            "WHERE items.ship <= orders.o_date").scalar()
        shipped = conn.exec_driver_sql("SELECT count(ship) FROM items").scalar()
    engine.dispose()
    assert early == 0 and shipped > 0


def test_a_date_that_follows_another_is_not_pulled_back_alone():
    """TPC-H's lines: shipped 1-121 days after the order, received 1-30 days after shipping.
    The ship date is bounded by the real gaps (a late one is redrawn, its receipt moving with
    it); the receipt follows the ship date, so it is never pulled back alone, before it."""
    rng = np.random.default_rng(8)
    n = 400
    orders = pd.DataFrame({"o_id": np.arange(1, n + 1), "o_date": pd.Timestamp("2020-01-01")
                           + pd.to_timedelta(rng.integers(0, 900, n), unit="D")})
    order_of = np.repeat(orders.o_id.to_numpy(), rng.integers(1, 6, n))
    placed = orders.set_index("o_id").o_date.loc[order_of].to_numpy()
    ship = placed + pd.to_timedelta(rng.integers(1, 122, len(order_of)), unit="D")
    lines = pd.DataFrame({"l_id": np.arange(1, len(order_of) + 1), "o_id": order_of,
                          "ship": ship, "receipt": ship + pd.to_timedelta(
                              rng.integers(1, 31, len(order_of)), unit="D"),
                          "commit": placed + pd.to_timedelta(
                              rng.integers(30, 91, len(order_of)), unit="D")})
    metadata = Metadata.from_dict({"tables": {
        "orders": {"primary_key": "o_id", "columns": {
            "o_id": {"sdtype": "id"}, "o_date": {"sdtype": "datetime"}}},
        "lines": {"primary_key": "l_id", "columns": {
            "l_id": {"sdtype": "id"}, "o_id": {"sdtype": "id"},
            "ship": {"sdtype": "datetime"}, "receipt": {"sdtype": "datetime"},
            "commit": {"sdtype": "datetime"}}}},
        "relationships": [{"parent_table_name": "orders", "parent_primary_key": "o_id",
                           "child_table_name": "lines", "child_foreign_key": "o_id"}]})
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=3)
    synthesizer.fit({"orders": orders, "lines": lines})
    bounded = {c.column_name: c.bounded for c in synthesizer.get_constraints()
               if type(c).__name__ == "ParentOrder"}
    assert bounded == {"ship": True, "receipt": False, "commit": True}
    out = synthesizer.sample(scale=3)
    synthesizer.validate_constraints(out)  # receipt after ship, both after the order
    placed = out["orders"].set_index("o_id")["o_date"].reindex(out["lines"]["o_id"]).to_numpy()
    assert (out["lines"]["ship"].to_numpy() - placed).max() <= pd.Timedelta(days=122)
    assert out["lines"]["ship"].max() <= lines["ship"].max()
    # The receipt's own rule runs after the ship date's (which moves the receipt with it):
    # the other way round, receipts came up to 1,449 days after shipping in TPC-H.
    transit = out["lines"]["receipt"] - out["lines"]["ship"]
    assert pd.Timedelta(days=1) <= transit.min() and transit.max() <= pd.Timedelta(days=30)
    # A commitment is never closer to its order than a real one (30 days; it came out at 1).
    committed = out["lines"]["commit"].to_numpy() - placed
    assert pd.Timedelta(days=29) <= committed.min() and committed.max() <= pd.Timedelta(days=91)


def test_a_redrawn_date_never_goes_past_the_columns_last_real_date():
    """An HR database read in September 2026 has no leave after it; a leave taken before its
    employee's hire date was redrawn up to 16 years after the hire: leaves in 2036. The redraw
    stays at or before the last real date, and after the parent's."""
    from hma_db.schema import ParentOrder

    day = 86_400.0
    rule = ParentOrder("start", "emp_id", "employees", "emp_id", "hired", True,
                       list(np.linspace(day, 5_000 * day, 101)), latest=20_000 * day,
                       table_name="leaves")
    hired = pd.to_datetime(np.array([10_000, 19_990, 15_000]) * day, unit="s")
    start = pd.to_datetime(np.array([9_000, 19_000, 16_000]) * day, unit="s")  # two before
    data = {"employees": pd.DataFrame({"emp_id": [1, 2, 3], "hired": hired}),
            "leaves": pd.DataFrame({"leave_id": [1, 2, 3], "emp_id": [1, 2, 3], "start": start})}
    out = rule.reverse_transform(data)["leaves"]["start"]
    assert (out > hired).all() and (out <= pd.Timestamp(20_000 * day, unit="s")).all()
    assert out.iloc[2] == start[2]  # a row that keeps the rule is left as it is
    assert rule.to_dict()["constraint_parameters"]["latest"] == 20_000 * day


def test_a_chunked_childs_date_follows_its_resident_parents():
    """TPC-H at scale factor 0.05: 75,000 orders fit one chunk and stay resident, 300,000
    lines are chunked. The later chunks hold lines and no orders: the rule that dates a line
    after its order failed there ("index 0 is out of bounds", the clone rolled back). Each
    chunk's lines now see their resident orders, as chunk 0 wrote them."""
    orders, lines = _orders_and_lines()
    metadata = Metadata.from_dict({"tables": {
        "orders": {"primary_key": "o_id", "columns": {
            "o_id": {"sdtype": "id"}, "o_date": {"sdtype": "datetime"}}},
        "items": {"primary_key": "l_id", "columns": {
            "l_id": {"sdtype": "id"}, "o_id": {"sdtype": "id"},
            "ship": {"sdtype": "datetime"}, "qty": {"sdtype": "numerical"}}}},
        "relationships": [{"parent_table_name": "orders", "parent_primary_key": "o_id",
                           "child_table_name": "items", "child_foreign_key": "o_id"}]})
    orders = orders.assign(o_date=pd.to_datetime(orders["o_date"]))
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=2)
    synthesizer.fit({"orders": orders, "items": lines})
    assert any(type(c).__name__ == "ParentOrder" for c in synthesizer.get_constraints())
    chunks = list(synthesizer.sample_chunks(scale=1.0, chunk_rows=len(orders) + 100))
    assert len(chunks) > 1 and all(len(c["orders"]) == 0 for c in chunks[1:])
    assert all(len(c["items"]) for c in chunks[1:])
    out = {t: pd.concat([c[t] for c in chunks], ignore_index=True) for t in chunks[0]}
    synthesizer.validate_constraints(out)
    placed = out["orders"].set_index("o_id")["o_date"].reindex(out["items"]["o_id"]).to_numpy()
    gap = pd.Series(out["items"]["ship"].to_numpy() - placed)
    assert gap.notna().sum() > 0.8 * len(gap)
    assert gap.min() > pd.Timedelta(0) and gap.max() <= pd.Timedelta(days=41)
