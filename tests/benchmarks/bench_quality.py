"""Whole-database quality of `hma_db.clone` on the sample databases, as a person scoring it would.

Usage::

    python tests/benchmarks/bench_quality.py                      # Chinook and Northwind, seeds 0-2
    python tests/benchmarks/bench_quality.py --databases chinook --seeds 0

Each database is cloned (SQLite -> a fresh SQLite file, scale 1, default options) once per seed,
and SDMetrics' multi-table QualityReport scores the whole synthetic database against the whole
real one, with the metadata ``reflect`` gives (reduced to the options SDMetrics accepts),
datetimes parsed and decimals as floats. The figures the issues quote are the mean over the
seeds: the overall score and its four properties (Column Shapes, Column Pair Trends,
Cardinality, Intertable Trends), with the clone's wall time. ``--json`` keeps every figure.

Run it before and after a change that touches modeling or sampling, on a quiet machine: the
scores do not depend on load, the times do.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _datasets  # noqa: E402
import _metrics  # noqa: E402

DATABASES = {"chinook": _datasets.CHINOOK_SQLITE, "northwind": _datasets.NORTHWIND_SQLITE}
PROPERTIES = ("Column Shapes", "Column Pair Trends", "Cardinality", "Intertable Trends")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", nargs="+", choices=sorted(DATABASES),
                        default=sorted(DATABASES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--json", dest="json_path", help="also write every figure to this file")
    return parser.parse_args(argv)


def _one(name: str, path: Path, seed: int, metadata: dict, real: dict) -> dict:
    from hma_db import clone

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"{name}_{seed}.sqlite"
        start = time.perf_counter()
        clone(f"sqlite:///{path}", f"sqlite:///{target}", seed=seed)
        seconds = time.perf_counter() - start
        synthetic = _datasets._conform(_datasets.read_sqlite(target), metadata)
    scores = _metrics.score(real, synthetic, _datasets.sdv_metadata(metadata))
    return {"database": name, "seed": seed, "clone_seconds": seconds,
            "quality": scores["quality"], **scores["quality_properties"]}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    results = []
    for name in args.databases:
        path = DATABASES[name]
        metadata, _ = _datasets.sqlite_metadata(path)
        real = _datasets._conform(_datasets.read_sqlite(path), metadata)
        for seed in args.seeds:
            result = _one(name, path, seed, metadata, real)
            results.append(result)
            print(f"{name:10} seed {seed}: quality {result['quality']:.3f} "
                  + " ".join(f"{p} {result[p]:.3f}" for p in PROPERTIES if result.get(p) is not None)
                  + f"  clone {result['clone_seconds']:.1f} s", flush=True)
    print()
    print(f"{'database':10} {'quality':>8} " + " ".join(f"{p:>18}" for p in PROPERTIES)
          + f" {'clone s':>8}")
    for name in args.databases:
        rows = [r for r in results if r["database"] == name]
        means = {key: statistics.fmean(r[key] for r in rows if r.get(key) is not None)
                 for key in ("quality", *PROPERTIES, "clone_seconds")}
        print(f"{name:10} {means['quality']:8.3f} "
              + " ".join(f"{means[p]:18.3f}" for p in PROPERTIES)
              + f" {means['clone_seconds']:8.1f}  (mean of seeds {args.seeds})")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
