"""Benchmark: hma_db.write() against a raw psycopg COPY and DataFrame.to_sql(method="multi").

About a million synthetic rows over three tables (customers <- orders <- order_items) go into
three fresh PostgreSQL databases, one per method, in the same run; the script prints rows/s
and the ratios. The raw COPY is the usual psycopg idiom: ``copy.write_row`` per row of the
DataFrame (values made plain Python first). Every method loads the same DataFrames into the
same table definitions with their foreign keys; write() adds the foreign keys between tables it
creates after the COPY (one validating join each), so a fourth line times the raw COPY done the
same way, to separate encoding speed from the server's per-row foreign key triggers.

    python tests/benchmarks/bench_write.py [--rows 1000000] [--url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import sqlalchemy as sa

from hma_db import Metadata
from hma_db.ddl import target_metadata
from hma_db.write import write

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def schema() -> tuple[Metadata, sa.MetaData]:
    md = sa.MetaData()
    sa.Table("customers", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("name", sa.String(80), nullable=False), sa.Column("email", sa.Text),
             sa.Column("signup", sa.DateTime(timezone=True)), sa.Column("score", sa.Double),
             sa.Column("active", sa.Boolean))
    sa.Table("orders", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
             sa.Column("placed_at", sa.DateTime), sa.Column("amount", sa.Numeric(12, 2)),
             sa.Column("status", sa.String(10)), sa.Column("note", sa.Text))
    sa.Table("order_items", md, sa.Column("id", sa.BigInteger, primary_key=True),
             sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False),
             sa.Column("sku", sa.String(12)), sa.Column("qty", sa.SmallInteger),
             sa.Column("price", sa.Double))
    metadata = Metadata.from_dict({"tables": {
        t.name: {"primary_key": "id",
                 "columns": {c.name: {"sdtype": "id" if c.name.endswith("id") else "numerical",
                                      "nullable": c.nullable} for c in t.columns}}
        for t in md.tables.values()}, "relationships": [
        {"parent_table_name": "customers", "parent_primary_key": "id",
         "child_table_name": "orders", "child_foreign_key": "customer_id"},
        {"parent_table_name": "orders", "parent_primary_key": "id",
         "child_table_name": "order_items", "child_foreign_key": "order_id"}]})
    metadata.sql_metadata = md
    return metadata, md


def frames(rows: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n_c, n_o = rows // 10, rows * 4 // 10
    n_i = rows - n_c - n_o
    words = np.array(["alpha", "beta", "gamma", "delta", "tab\there", "back\\slash", "line\nbreak"])
    customers = pd.DataFrame({
        "id": np.arange(1, n_c + 1),
        "name": pd.Series(rng.choice(words, n_c)) + " " + pd.Series(np.arange(n_c)).astype(str),
        "email": pd.Series(np.arange(n_c)).astype(str) + "@example.com",
        "signup": pd.Timestamp("2020-01-01", tz="UTC")
        + pd.to_timedelta(rng.integers(0, 10**8, n_c), unit="s"),
        "score": np.where(rng.random(n_c) < 0.1, np.nan, rng.normal(50, 10, n_c)),
        "active": rng.random(n_c) < 0.7})
    orders = pd.DataFrame({
        "id": np.arange(1, n_o + 1), "customer_id": rng.integers(1, n_c + 1, n_o),
        "placed_at": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 10**8, n_o),
                                                                  unit="s"),
        "amount": np.round(rng.gamma(2, 30, n_o), 2),
        "status": rng.choice(["new", "paid", "shipped", "returned"], n_o),
        "note": np.where(rng.random(n_o) < 0.5, None, rng.choice(words, n_o))})
    items = pd.DataFrame({
        "id": np.arange(1, n_i + 1), "order_id": rng.integers(1, n_o + 1, n_i),
        "sku": pd.Series(rng.integers(0, 10**6, n_i)).astype(str).radd("SKU-"),
        "qty": rng.integers(1, 10, n_i), "price": np.round(rng.random(n_i) * 100, 2)})
    return {"customers": customers, "orders": orders, "order_items": items}


def fresh(admin: sa.Engine, name: str) -> str:
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    return admin.url.set(database=name).render_as_string(hide_password=False)


def create(url: str, metadata: Metadata, *, foreign_keys: bool = True) -> sa.Engine:
    engine = sa.create_engine(url)
    order = metadata.topological_order()
    md = target_metadata(metadata, order, "postgresql", None)
    with engine.begin() as conn:
        for table in md.sorted_tables:
            keep = list(table.foreign_key_constraints) if foreign_keys else []
            conn.execute(sa.schema.CreateTable(table, include_foreign_key_constraints=keep))
    return engine


def add_foreign_keys(engine: sa.Engine, metadata: Metadata) -> None:
    md = target_metadata(metadata, metadata.topological_order(), "postgresql", None)
    with engine.begin() as conn:
        for table in md.sorted_tables:
            for fk in table.foreign_key_constraints:
                conn.execute(sa.schema.AddConstraint(fk))


def raw_copy(engine: sa.Engine, data: dict[str, pd.DataFrame], order: list[str]) -> None:
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        for name in order:
            frame = data[name]
            plain = frame.astype(object).where(frame.notna(), None)
            columns = ", ".join(frame.columns)
            with raw.cursor() as cur, cur.copy(f"COPY {name} ({columns}) FROM STDIN") as copy:
                for row in plain.itertuples(index=False, name=None):
                    copy.write_row(row)


def to_sql(engine: sa.Engine, data: dict[str, pd.DataFrame], order: list[str]) -> None:
    with engine.begin() as conn:
        for name in order:
            frame = data[name]
            frame.to_sql(name, conn, if_exists="append", index=False, method="multi",
                         chunksize=60_000 // len(frame.columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default=ADMIN, help="administrative PostgreSQL URL")
    parser.add_argument("--to-sql-fraction", type=float, default=1.0,
                        help="load only this leading fraction of each table with to_sql (it is "
                             "~20x slower); its rows/s are reported on the rows it loaded")
    args = parser.parse_args()
    metadata, _ = schema()
    data = frames(args.rows)
    order = metadata.topological_order()
    total = sum(len(f) for f in data.values())
    admin = sa.create_engine(args.url, isolation_level="AUTOCOMMIT")
    timings = {}
    url = fresh(admin, "hma_bench_write")
    start = time.perf_counter()
    write(data, metadata, url)
    timings["hma_db.write"] = time.perf_counter() - start
    engine = create(fresh(admin, "hma_bench_copy"), metadata)
    start = time.perf_counter()
    raw_copy(engine, data, order)
    timings["raw psycopg COPY (write_row)"] = time.perf_counter() - start
    engine.dispose()
    # The same COPY with the foreign keys added afterwards, as write() does on new tables:
    # separates the encoding speed from the server's per-row foreign key triggers.
    engine = create(fresh(admin, "hma_bench_copy_fk_after"), metadata, foreign_keys=False)
    start = time.perf_counter()
    raw_copy(engine, data, order)
    add_foreign_keys(engine, metadata)
    timings["raw COPY, foreign keys added after"] = time.perf_counter() - start
    engine.dispose()
    if args.to_sql_fraction > 0:
        engine = create(fresh(admin, "hma_bench_to_sql"), metadata)
        part = frames(int(args.rows * args.to_sql_fraction))
        start = time.perf_counter()
        to_sql(engine, part, order)
        seconds = time.perf_counter() - start
        # scaled to the full row count, so rows/s and ratios compare like with like
        timings["DataFrame.to_sql(method='multi')"] = seconds * total / sum(map(len, part.values()))
        engine.dispose()
    with admin.connect() as conn:
        for name in ("hma_bench_write", "hma_bench_copy", "hma_bench_copy_fk_after",
                     "hma_bench_to_sql"):
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    reference = timings["raw psycopg COPY (write_row)"]
    print(f"{total:,} rows over {len(data)} tables (PostgreSQL, foreign keys on); to_sql on "
          f"{args.to_sql_fraction:.0%} of them")
    for method, seconds in timings.items():
        print(f"  {method:36s} {seconds:7.2f} s  {total / seconds:12,.0f} rows/s  "
              f"{reference / seconds:5.2f} x raw COPY")


if __name__ == "__main__":
    main()
