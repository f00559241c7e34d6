"""Generate TPC-H with ``tpchgen-cli`` and load it into PostgreSQL with ``COPY``, keys included.

Usage: ``python tests/benchmarks/tpch_load.py --scale-factor 1 --url postgresql://postgres@127.0.0.1/tpch``
(the database is created when missing; an existing one is reused when it has every table).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import psycopg

TABLES = ["region", "nation", "part", "supplier", "partsupp", "customer", "orders", "lineitem"]

DDL = """
CREATE TABLE region (r_regionkey integer PRIMARY KEY, r_name char(25) NOT NULL,
    r_comment varchar(152));
CREATE TABLE nation (n_nationkey integer PRIMARY KEY, n_name char(25) NOT NULL,
    n_regionkey integer NOT NULL, n_comment varchar(152));
CREATE TABLE part (p_partkey integer PRIMARY KEY, p_name varchar(55) NOT NULL,
    p_mfgr char(25) NOT NULL, p_brand char(10) NOT NULL, p_type varchar(25) NOT NULL,
    p_size integer NOT NULL, p_container char(10) NOT NULL, p_retailprice numeric(15,2) NOT NULL,
    p_comment varchar(23) NOT NULL);
CREATE TABLE supplier (s_suppkey integer PRIMARY KEY, s_name char(25) NOT NULL,
    s_address varchar(40) NOT NULL, s_nationkey integer NOT NULL, s_phone char(15) NOT NULL,
    s_acctbal numeric(15,2) NOT NULL, s_comment varchar(101) NOT NULL);
CREATE TABLE partsupp (ps_partkey integer NOT NULL, ps_suppkey integer NOT NULL,
    ps_availqty integer NOT NULL, ps_supplycost numeric(15,2) NOT NULL,
    ps_comment varchar(199) NOT NULL, PRIMARY KEY (ps_partkey, ps_suppkey));
CREATE TABLE customer (c_custkey integer PRIMARY KEY, c_name varchar(25) NOT NULL,
    c_address varchar(40) NOT NULL, c_nationkey integer NOT NULL, c_phone char(15) NOT NULL,
    c_acctbal numeric(15,2) NOT NULL, c_mktsegment char(10) NOT NULL,
    c_comment varchar(117) NOT NULL);
CREATE TABLE orders (o_orderkey integer PRIMARY KEY, o_custkey integer NOT NULL,
    o_orderstatus char(1) NOT NULL, o_totalprice numeric(15,2) NOT NULL, o_orderdate date NOT NULL,
    o_orderpriority char(15) NOT NULL, o_clerk char(15) NOT NULL, o_shippriority integer NOT NULL,
    o_comment varchar(79) NOT NULL);
CREATE TABLE lineitem (l_orderkey integer NOT NULL, l_partkey integer NOT NULL,
    l_suppkey integer NOT NULL, l_linenumber integer NOT NULL, l_quantity numeric(15,2) NOT NULL,
    l_extendedprice numeric(15,2) NOT NULL, l_discount numeric(15,2) NOT NULL,
    l_tax numeric(15,2) NOT NULL, l_returnflag char(1) NOT NULL, l_linestatus char(1) NOT NULL,
    l_shipdate date NOT NULL, l_commitdate date NOT NULL, l_receiptdate date NOT NULL,
    l_shipinstruct char(25) NOT NULL, l_shipmode char(10) NOT NULL, l_comment varchar(44) NOT NULL,
    PRIMARY KEY (l_orderkey, l_linenumber));
"""

FOREIGN_KEYS = """
ALTER TABLE nation ADD FOREIGN KEY (n_regionkey) REFERENCES region;
ALTER TABLE supplier ADD FOREIGN KEY (s_nationkey) REFERENCES nation;
ALTER TABLE customer ADD FOREIGN KEY (c_nationkey) REFERENCES nation;
ALTER TABLE partsupp ADD FOREIGN KEY (ps_partkey) REFERENCES part;
ALTER TABLE partsupp ADD FOREIGN KEY (ps_suppkey) REFERENCES supplier;
ALTER TABLE orders ADD FOREIGN KEY (o_custkey) REFERENCES customer;
ALTER TABLE lineitem ADD FOREIGN KEY (l_orderkey) REFERENCES orders;
ALTER TABLE lineitem ADD FOREIGN KEY (l_partkey, l_suppkey) REFERENCES partsupp;
"""


def generate(scale_factor: float, folder: Path) -> None:
    if all((folder / f"{t}.csv").exists() for t in TABLES):
        return
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tpchgen-cli", "csv", "-s", str(scale_factor), f"--output-dir={folder}"],
                   check=True)


def load(url: str, folder: Path) -> dict[str, float]:
    """Create the tables, COPY every CSV file in, add the foreign keys; seconds per table."""
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            with psycopg.connect(url) as conn:
                found = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                                     "AND tablename = ANY(%s)", [TABLES]).fetchone()[0]
            if found == len(TABLES):
                return {}
            admin.execute(f'DROP DATABASE "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    seconds = {}
    with psycopg.connect(url) as conn:
        conn.execute(DDL)
        for table in TABLES:
            started = time.perf_counter()
            with conn.cursor().copy(f"COPY {table} FROM STDIN (FORMAT csv, HEADER true)") as copy, \
                    open(folder / f"{table}.csv", "rb") as handle:
                while block := handle.read(1 << 20):
                    copy.write(block)
            seconds[table] = time.perf_counter() - started
        conn.execute(FOREIGN_KEYS)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale-factor", type=float, default=1.0)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/tpch1"))
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/hma_bench_tpch")
    args = parser.parse_args()
    generate(args.scale_factor, args.folder)
    print(load(args.url, args.folder))


if __name__ == "__main__":
    main()
