"""Large databases: TPC-H clone with a fitting subset, read throughput against raw COPY, and
Chinook at scale 10 and 100, each measured in a process of its own (clean peak RSS).

Usage::

    python tests/benchmarks/bench_scale.py [--scale-factor 1] [--max-rows 200000] [--out FILE]
    python tests/benchmarks/bench_scale.py --only chinook
    python tests/benchmarks/bench_scale.py --only read [--read-tables orders lineitem]

Needs PostgreSQL at ``--postgres`` (default the loopback server) and ``tpchgen-cli``
(``pip install tpchgen-cli``); TPC-H is generated and loaded with COPY on the first run
(``tpch_load.py``) and reused afterwards. Prints one JSON document with every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TPCH_TABLES = ["region", "nation", "part", "supplier", "partsupp", "customer", "orders", "lineitem"]


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fresh_database(admin: str, name: str) -> str:
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin}/{name}"


# ----------------------------------------------------------------------- child processes
def child_clone(args) -> dict:
    """One clone in this process; stage seconds, rows, rows/s and peak RSS."""
    sys.path.insert(0, str(ROOT))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from hma_db.pipeline import clone

    started = time.perf_counter()
    result = clone(args.source, args.target, scale=args.scale, seed=7, max_rows=args.max_rows,
                   chunk_rows=args.chunk_rows, if_exists="replace")
    rows_read, rows_written = sum(result.rows_read.values()), sum(result.rows.values())
    per_stage_rows = {"read": rows_read, "fit": rows_read, "sample": rows_written,
                      "write": rows_written}
    return {"seconds": {k: round(v, 2) for k, v in result.seconds.items()},
            "total_seconds": round(time.perf_counter() - started, 2),
            "rows_read": rows_read, "rows_written": rows_written,
            "rows_per_second": {stage: round(per_stage_rows[stage] / result.seconds[stage])
                                for stage in per_stage_rows if result.seconds.get(stage)},
            "peak_rss_mib": round(_peak_rss_mib(), 1)}


def child_read(args) -> dict:
    """Streamed hma_db reads of whole tables (chunks dropped), through COPY (the default on
    PostgreSQL) and through SQLAlchemy (``use_copy=False``, the reader before COPY), beside raw
    ``COPY ... TO STDOUT`` of the same tables (bytes only, no parsing)."""
    sys.path.insert(0, str(ROOT))
    import sqlalchemy as sa

    from hma_db import reflect
    from hma_db.source.read import begin_read_only, read_table_chunks

    metadata = reflect(args.source, include=args.tables)
    engine = sa.create_engine(args.source)

    def timed_read(table: str, use_copy: bool) -> tuple[int, float]:
        started = time.perf_counter()
        rows = 0
        with engine.connect() as conn:
            begin_read_only(conn)
            for chunk in read_table_chunks(conn, metadata, table, use_copy=use_copy):
                rows += len(chunk)
            conn.rollback()
        return rows, time.perf_counter() - started

    figures, seconds = {}, {}
    for table in args.tables:
        rows, hma = timed_read(table, use_copy=True)
        slow = timed_read(table, use_copy=False)[1] if not args.skip_sqlalchemy else None
        raw = {}
        for kind in ("text", "binary"):
            started = time.perf_counter()
            size = 0
            dsn = args.source.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(dsn) as conn, conn.cursor() as cur, \
                    cur.copy(f"COPY {table} TO STDOUT (FORMAT {kind})") as copy:
                for block in copy:
                    size += len(block)
            raw[kind] = time.perf_counter() - started
        seconds[table] = {"rows": rows, "hma_db_seconds": hma, "copy_text_seconds": raw["text"],
                          "copy_binary_seconds": raw["binary"]}
        figures[table] = {"rows": rows, "hma_db_seconds": round(hma, 2),
                          "hma_db_rows_per_second": round(rows / hma),
                          "copy_text_seconds": round(raw["text"], 2),
                          "copy_binary_seconds": round(raw["binary"], 2),
                          "ratio_hma_db_to_copy_text": round(raw["text"] / hma, 3)}
        if slow is not None:
            seconds[table]["sqlalchemy_seconds"] = slow
            figures[table].update({"sqlalchemy_seconds": round(slow, 2),
                                   "ratio_sqlalchemy_to_copy_text": round(raw["text"] / slow, 3)})
    engine.dispose()
    sums = {k: sum(f[k] for f in seconds.values()) for k in next(iter(seconds.values()))}
    total = {k: round(v, 2) if k != "rows" else v for k, v in sums.items()}
    total["throughput_ratio_vs_copy_text"] = round(sums["copy_text_seconds"]
                                                   / sums["hma_db_seconds"], 3)
    if slow is not None:
        total["sqlalchemy_throughput_ratio_vs_copy_text"] = round(
            sums["copy_text_seconds"] / sums["sqlalchemy_seconds"], 3)
    return {"tables": figures, "total": total, "peak_rss_mib": round(_peak_rss_mib(), 1)}


def _in_child(kind: str, **options) -> dict:
    command = [sys.executable, __file__, "--child", kind]
    for key, value in options.items():
        if value is True:
            command.append(f"--{key.replace('_', '-')}")
        elif isinstance(value, list):
            command += [f"--{key.replace('_', '-')}", *map(str, value)]
        elif value is not None:
            command += [f"--{key.replace('_', '-')}", str(value)]
    log = Path(f"/tmp/bench_scale_{kind}.log")
    with log.open("w") as err:  # the child's log, to follow a long run
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=err, text=True)
    if done.returncode != 0:
        return {"error": log.read_text().strip().splitlines()[-5:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- the runs
def _tpch_source(args) -> str:
    subprocess.run([sys.executable, str(HERE / "tpch_load.py"), "--scale-factor",
                    str(args.scale_factor), "--url", f"{args.postgres}/hma_bench_tpch"],
                   check=True, capture_output=True)
    return f"{args.postgres.replace('postgresql://', 'postgresql+psycopg://')}/hma_bench_tpch"


def run_read(args) -> dict:
    """Only the read comparison (TPC-H loaded first when missing)."""
    return _in_child("read", source=_tpch_source(args), tables=args.read_tables,
                     skip_sqlalchemy=args.skip_sqlalchemy or None)


def run_tpch(args) -> dict:
    source = _tpch_source(args)
    target = _fresh_database(args.postgres, "hma_bench_tpch_clone")
    target = target.replace("postgresql://", "postgresql+psycopg://")
    out = {"clone": _in_child("clone", source=source, target=target, scale=1.0,
                              max_rows=args.max_rows, chunk_rows=args.chunk_rows)}
    out["read_vs_copy"] = _in_child("read", source=source, tables=args.read_tables,
                                    skip_sqlalchemy=args.skip_sqlalchemy or None)
    return out


def run_chinook(args) -> dict:
    out = {}
    source = f"sqlite:///{ROOT / 'examples' / 'chinook.sqlite'}"
    for scale in (10, 100):
        target = _fresh_database(args.postgres, f"hma_bench_chinook_{scale}")
        out[f"scale_{scale}"] = _in_child(
            "clone", source=source, target=target.replace("postgresql://", "postgresql+psycopg://"),
            scale=scale, chunk_rows=args.chunk_rows)
    rss = [out[k].get("peak_rss_mib") for k in ("scale_10", "scale_100")]
    if all(rss):
        out["rss_ratio_100_to_10"] = round(rss[1] / rss[0], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", choices=["clone", "read"])
    parser.add_argument("--only", choices=["tpch", "chinook", "read"],
                        help="read: only the TPC-H read comparison (hma_db against raw COPY).")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--scale-factor", type=float, default=1.0)
    parser.add_argument("--max-rows", type=int, default=200_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--source")
    parser.add_argument("--target")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--tables", nargs="*")
    parser.add_argument("--read-tables", nargs="*", default=TPCH_TABLES,
                        help="TPC-H tables whose streamed read is timed beside raw COPY.")
    parser.add_argument("--skip-sqlalchemy", action="store_true",
                        help="Do not time the SQLAlchemy reader beside the COPY one.")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        print(json.dumps((child_clone if args.child == "clone" else child_read)(args)))
        return
    results = {}
    if args.only == "read":
        results["tpch"] = {"read_vs_copy": run_read(args)}
    if args.only in (None, "chinook"):
        results["chinook"] = run_chinook(args)
    if args.only in (None, "tpch"):
        results["tpch"] = run_tpch(args)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
