"""Benchmark: the cost of proving every foreign key at commit, on TPC-H.

The rows of TPC-H (``tpch_load.py`` generates and loads it into PostgreSQL once) are read into
DataFrames, then written twice by :func:`hma_db.target.write` into fresh PostgreSQL databases,
in one run: once as write() does it (rows first, then each foreign key added and so proven in
one join before COMMIT), once into tables that have their primary keys and no foreign keys at
all. The ratio of rows/s is what proving the keys costs.

    python tests/benchmarks/bench_fk_commit.py [--scale-factor 1] [--repeat 1]

Measured figures are in the closing notes of issue 14 and in docs/architecture.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from hma_db import reflect  # noqa: E402 - after the path is set
from hma_db.source import read_tables  # noqa: E402
from hma_db.target import write  # noqa: E402

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432"


def fresh(name: str) -> str:
    engine = sa.create_engine(f"{ADMIN}/postgres", isolation_level="AUTOCOMMIT",
                              poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return f"{ADMIN}/{name}"


def without_foreign_keys(metadata):
    """A copy of ``metadata`` whose tables keep their primary keys and lose every foreign key."""
    bare = metadata.copy()
    bare.relationships = []
    md = sa.MetaData()
    for table in metadata.sql_metadata.tables.values():
        copy = table.to_metadata(md)
        for fkc in list(copy.foreign_key_constraints):
            copy.constraints.discard(fkc)
            for fk in fkc.elements:
                fk.parent.foreign_keys.discard(fk)
                copy.foreign_keys.discard(fk)
    bare.sql_metadata = md
    return bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale-factor", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    name = f"hma_bench_tpch{'' if args.scale_factor == 1 else str(args.scale_factor).replace('.', '_')}"
    subprocess.run([sys.executable, str(HERE / "tpch_load.py"), "--scale-factor",
                    str(args.scale_factor), "--folder", f"/tmp/tpch{args.scale_factor}",
                    "--url", f"postgresql://postgres@127.0.0.1:5432/{name}"], check=True)
    source = f"{ADMIN}/{name}"
    metadata = reflect(source)
    for variant in (metadata, without_foreign_keys(metadata)):
        if hasattr(variant, "schema_dump"):
            variant.schema_dump = None  # both through the same translated DDL
    started = time.perf_counter()
    data = read_tables(source, metadata)
    rows = sum(len(f) for f in data.values())
    print(f"read {rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
    results: dict[str, list[float]] = {"foreign keys proven at commit": [],
                                       "primary keys only": []}
    for _ in range(args.repeat):
        for label, variant in (("primary keys only", without_foreign_keys(metadata)),
                               ("foreign keys proven at commit", metadata)):
            if hasattr(variant, "schema_dump"):
                variant.schema_dump = None
            target = fresh("hma_bench_fk_target")
            started = time.perf_counter()
            write(data, variant, target)
            seconds = time.perf_counter() - started
            results[label].append(seconds)
            print(f"{label:32s} {seconds:7.1f} s  {rows / seconds:12,.0f} rows/s", flush=True)
    best = {label: min(times) for label, times in results.items()}
    print(f"rows/s ratio (proven at commit / primary keys only): "
          f"{best['primary keys only'] / best['foreign keys proven at commit']:.3f}")


if __name__ == "__main__":
    main()
