"""TPC-H clone (PostgreSQL -> PostgreSQL) in one process and on 1, 2... local Dask workers,
stage by stage, in the same run.

Usage::

    python tests/benchmarks/bench_distributed.py                 # SF1; no cluster, 1 and 2 workers
    python tests/benchmarks/bench_distributed.py --workers 0 2 --scale-factor 0.1

Needs PostgreSQL at ``--postgres`` and ``tpchgen-cli`` (TPC-H is generated and loaded on the
first run by ``tpch_load.py``, then reused) and ``hma_db[dask]``. Each configuration runs in a
process of its own, into a fresh target database: ``clone(..., max_rows=200000,
chunk_rows=100000, cluster=N)`` (``0``: no cluster). It prints each stage's seconds, fit +
sample against the run without a cluster, the whole clone, and the peak resident memory of the
process that writes and of each worker. The writer consumes chunks in order while the workers
sample the next ones, so with workers the ``sample`` stage is the time the writer waited for a
chunk, not the workers' busy time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from bench_scale import _fresh_database, _tpch_source  # noqa: E402


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args) -> dict:
    """One clone in this process (with its own LocalCluster when ``--child-workers`` > 0)."""
    sys.path.insert(0, str(ROOT))
    from hma_db.pipeline import clone

    client = local = None
    if args.child_workers:
        import distributed

        local = distributed.LocalCluster(n_workers=args.child_workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None)
        client = distributed.Client(local)
    started = time.perf_counter()
    result = clone(args.source, args.target, scale=1.0, seed=7, max_rows=args.max_rows,
                   chunk_rows=args.chunk_rows, if_exists="replace", cluster=client)
    total = time.perf_counter() - started
    workers_rss = []
    if client is not None:
        peaks = client.run(_peak_rss_mib)
        workers_rss = [round(v, 1) for v in peaks.values()]
        client.close()
        local.close()
    return {"seconds": {k: round(v, 2) for k, v in result.seconds.items()},
            "total_seconds": round(total, 2), "rows_written": sum(result.rows.values()),
            "peak_rss_mib": round(_peak_rss_mib(), 1), "workers_peak_rss_mib": workers_rss}


def _in_child(args, workers: int, source: str) -> dict:
    target = _fresh_database(args.postgres, f"hma_bench_tpch_dask_{workers}")
    target = target.replace("postgresql://", "postgresql+psycopg://")
    command = [sys.executable, __file__, "--child", "--child-workers", str(workers),
               "--source", source, "--target", target, "--max-rows", str(args.max_rows),
               "--chunk-rows", str(args.chunk_rows)]
    log = Path(f"/tmp/bench_distributed_{workers}.log")
    with log.open("w") as err:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=err, text=True)
    if done.returncode != 0:
        return {"error": log.read_text().strip().splitlines()[-5:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--child-workers", type=int, default=0)
    parser.add_argument("--source")
    parser.add_argument("--target")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--scale-factor", type=float, default=1.0)
    parser.add_argument("--max-rows", type=int, default=200_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    source = _tpch_source(args)
    runs = {}
    for workers in args.workers:
        runs[workers] = _in_child(args, workers, source)
        print(f"workers {workers}: {json.dumps(runs[workers])}", file=sys.stderr, flush=True)
    base = runs.get(0, {})
    print(f"{'workers':>8} {'read':>7} {'fit':>7} {'sample':>7} {'write':>7} {'fit+sample':>10} "
          f"{'x':>6} {'total':>7} {'x':>6} {'writer MiB':>10}  workers MiB")
    for workers, run in runs.items():
        if "error" in run:
            print(f"{workers:>8} failed: {run['error']}")
            continue
        s = run["seconds"]
        fit_sample = s.get("fit", 0) + s.get("sample", 0)
        base_fs = base.get("seconds", {}).get("fit", 0) + base.get("seconds", {}).get("sample", 0)
        speedup = base_fs / fit_sample if base and fit_sample else float("nan")
        total_x = base["total_seconds"] / run["total_seconds"] if base else float("nan")
        print(f"{workers:>8} {s.get('read', 0):7.1f} {s.get('fit', 0):7.1f} "
              f"{s.get('sample', 0):7.1f} {s.get('write', 0):7.1f} {fit_sample:10.1f} "
              f"{speedup:6.2f} {run['total_seconds']:7.1f} {total_x:6.2f} "
              f"{run['peak_rss_mib']:10.0f}  {run['workers_peak_rss_mib']}")
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
