"""TPC-H clone (PostgreSQL -> PostgreSQL) in one process and on 1, 2... local Dask workers,
stage by stage, in the same run.

Usage (on a quiet machine; TPC-H SF1 is generated and loaded into ``hma_bench_tpch`` by
``tpch_load.py`` on the first run, then reused)::

    python tests/benchmarks/bench_distributed.py                    # SF1; 0, 1 and 2 workers
    python tests/benchmarks/bench_distributed.py --workers 0 2 --scale-factor 0.05 \\
        --max-rows 20000 --chunk-rows 10000                         # a quick check

Needs PostgreSQL at ``--postgres``, ``tpchgen-cli`` and ``hma_db[dask]``. A scale factor other
than 1 is loaded into a database of its own (``hma_bench_tpch_sf0_05``), so a small check never
replaces the SF1 source. Per worker count (``0``: no cluster), two processes of their own, one
after the other:

- ``sample``: reflect, read (``max_rows``), fit, then every chunk sampled (chunk 0 in the
  process, the others on the workers) and dropped, nothing written
  (:func:`hma_db.cluster.sample_only`): the fit and sample stages alone, which the workers
  should speed up;
- ``clone``: the whole ``clone(..., max_rows, chunk_rows, cluster=N)`` into a fresh target
  database. With workers, each worker loads its chunks into staging tables and one transaction
  moves each chunk as soon as it is staged (``stage``: from the end of chunk 0's write until
  the workers staged the last chunk, the moves of the others running meanwhile; ``move``: the
  rest, the last chunk's move, the keys proven and the commit).

It prints, per worker count, read / fit / sample / write (and stage / move) seconds of the
clone, fit + sample of the ``sample`` run and its speed-up over no cluster, the whole clone
and its speed-up, and the peak resident memory (MiB) of the clone's process and of each worker
process in both runs; then one JSON document with every figure.
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

from bench_scale import _fresh_database  # noqa: E402


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _client(workers: int):
    if not workers:
        return None, None
    import distributed

    from hma_db.cluster import local_cluster

    local = local_cluster(workers)  # as `--workers N` starts them
    return local, distributed.Client(local)


def _close(local, client) -> list[float]:
    if client is None:
        return []
    peaks = [round(v, 1) for v in client.run(_peak_rss_mib).values()]
    client.close()
    local.close()
    return peaks


def child_clone(args) -> dict:
    """The whole clone in this process (with its own LocalCluster when workers > 0)."""
    from hma_db.pipeline import clone

    local, client = _client(args.child_workers)
    started = time.perf_counter()
    result = clone(args.source, args.target, scale=1.0, seed=7, max_rows=args.max_rows,
                   chunk_rows=args.chunk_rows, if_exists="replace", cluster=client)
    total = time.perf_counter() - started
    workers_rss = _close(local, client)
    return {"seconds": {k: round(v, 2) for k, v in result.seconds.items()},
            "total_seconds": round(total, 2), "rows_written": sum(result.rows.values()),
            "peak_rss_mib": round(_peak_rss_mib(), 1), "workers_peak_rss_mib": workers_rss}


def child_sample(args) -> dict:
    """Reflect, read, fit and sample every chunk without writing (workers > 0: on them)."""
    from hma_db import reflect
    from hma_db.cluster import sample_only
    from hma_db.pipeline import configure_synthesizer
    from hma_db.synthesizer import read_source

    local, client = _client(args.child_workers)
    seconds = {}
    started = time.perf_counter()
    metadata = reflect(args.source)
    seconds["reflect"] = time.perf_counter() - started
    at = time.perf_counter()
    data = read_source(args.source, metadata, max_rows=args.max_rows, seed=7)
    seconds["read"] = time.perf_counter() - at
    at = time.perf_counter()
    synthesizer = configure_synthesizer(metadata, seed=7)
    synthesizer.fit(data, row_counts=metadata.row_counts)
    seconds["fit"] = time.perf_counter() - at
    del data
    at = time.perf_counter()
    rows = sample_only(synthesizer, 1.0, args.chunk_rows, client)
    seconds["sample"] = time.perf_counter() - at
    workers_rss = _close(local, client)
    return {"seconds": {k: round(v, 2) for k, v in seconds.items()},
            "rows_sampled": sum(rows.values()), "peak_rss_mib": round(_peak_rss_mib(), 1),
            "workers_peak_rss_mib": workers_rss}


def _tpch_source(args) -> str:
    """TPC-H at ``--scale-factor`` loaded (once) into a database named after it."""
    name = "hma_bench_tpch" if args.scale_factor == 1 else \
        f"hma_bench_tpch_sf{args.scale_factor:g}".replace(".", "_")
    folder = f"/tmp/tpch_sf{args.scale_factor:g}"  # the CSVs of this scale factor only
    subprocess.run([sys.executable, str(HERE / "tpch_load.py"), "--scale-factor",
                    str(args.scale_factor), "--url", f"{args.postgres}/{name}",
                    "--folder", folder],
                   check=True, capture_output=True)
    return f"{args.postgres.replace('postgresql://', 'postgresql+psycopg://')}/{name}"


def _in_child(args, mode: str, workers: int, source: str) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--child-workers", str(workers),
               "--source", source, "--max-rows", str(args.max_rows),
               "--chunk-rows", str(args.chunk_rows)]
    if mode == "clone":
        target = _fresh_database(args.postgres, f"hma_bench_tpch_dask_{workers}")
        command += ["--target", target.replace("postgresql://", "postgresql+psycopg://")]
    log = Path(f"/tmp/bench_distributed_{mode}_{workers}.log")
    with log.open("w") as err:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
    if done.returncode != 0:
        return {"error": log.read_text().strip().splitlines()[-5:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ratio(base: float, value: float) -> float:
    return base / value if base and value else float("nan")


def report(runs: dict) -> None:
    base = runs.get(0, {})
    base_fs = sum(base.get("sample", {}).get("seconds", {}).get(k, 0) for k in ("fit", "sample"))
    base_total = base.get("clone", {}).get("total_seconds", 0)
    print(f"{'workers':>7} {'read':>6} {'fit':>6} {'sample':>6} {'write':>6} {'stage':>6} "
          f"{'move':>6} | {'fit+sample':>10} {'x':>5} | {'clone':>6} {'x':>5} | "
          f"{'MiB clone':>9}  workers (clone; sample)")
    for workers, run in runs.items():
        clone, sample = run.get("clone", {}), run.get("sample", {})
        if "error" in clone or "error" in sample:
            print(f"{workers:>7} failed: {clone.get('error') or sample.get('error')}")
            continue
        s = clone["seconds"]
        fs = sample["seconds"]["fit"] + sample["seconds"]["sample"]
        print(f"{workers:>7} {s.get('read', 0):6.1f} {s.get('fit', 0):6.1f} "
              f"{s.get('sample', 0):6.1f} {s.get('write', 0):6.1f} {s.get('stage', 0):6.1f} "
              f"{s.get('move', 0):6.1f} | {fs:10.1f} {_ratio(base_fs, fs):5.2f} | "
              f"{clone['total_seconds']:6.1f} {_ratio(base_total, clone['total_seconds']):5.2f} | "
              f"{clone['peak_rss_mib']:9.0f}  {clone['workers_peak_rss_mib']}; "
              f"{sample['peak_rss_mib']:.0f} here, {sample['workers_peak_rss_mib']}")
    print(json.dumps(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=["clone", "sample"])
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
        print(json.dumps(child_clone(args) if args.child == "clone" else child_sample(args)))
        return
    source = _tpch_source(args)
    runs: dict[int, dict] = {}
    for workers in args.workers:
        runs[workers] = {mode: _in_child(args, mode, workers, source)
                         for mode in ("sample", "clone")}
        print(f"workers {workers}: {json.dumps(runs[workers])}", file=sys.stderr, flush=True)
    report(runs)


if __name__ == "__main__":
    main()
