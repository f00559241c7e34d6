"""Fidelity of the whole database, property by property, with the items that score worst.

Usage::

    python tests/benchmarks/bench_fidelity.py                       # Chinook, Northwind, generated
    python tests/benchmarks/bench_fidelity.py --cases chinook --seeds 0 --worst 10
    python tests/benchmarks/bench_fidelity.py --json after.json --compare before.json

For each case and seed, the synthetic database is made the way users make it (Chinook and
Northwind: ``hma_db.clone`` SQLite -> SQLite at scale 1; the generated parent/child cases of
``_datasets.py``: ``HMASynthesizer`` fit and sample), and SDMetrics' multi-table QualityReport
scores it against the real one (datetimes parsed, decimals as floats, the metadata reduced to
what SDMetrics accepts). It prints the overall score and the four properties (mean of the
seeds), the ``--worst`` lowest-scoring items of each property (mean over seeds), and the
figures a reader of the rows checks on Chinook and Northwind:

* Chinook: the correlation of ``Track.UnitPrice`` with ``InvoiceLine.UnitPrice`` over the
  lines, and the share of lines whose price is their track's;
* Northwind: distinct ``ship_name`` per customer (real and synthetic), and ``discount`` values
  that the source does not have.

``--compare`` prints each figure next to the one of an earlier ``--json`` file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _datasets  # noqa: E402

PROPERTIES = ("Column Shapes", "Column Pair Trends", "Cardinality", "Intertable Trends")
DATABASES = {"chinook": _datasets.CHINOOK_SQLITE, "northwind": _datasets.NORTHWIND_SQLITE}
GENERATED = {"gen-1k-w4": (1_000, 4), "gen-1k-w16": (1_000, 16)}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=[*DATABASES, *GENERATED],
                        choices=[*DATABASES, *GENERATED])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--worst", type=int, default=5, help="items listed per property")
    parser.add_argument("--json", dest="json_path", help="write every figure to this file")
    parser.add_argument("--compare", metavar="FILE", help="an earlier --json file")
    return parser.parse_args(argv)


def _synthetic_database(name: str, seed: int, metadata: dict) -> tuple[dict, dict, float]:
    """(real, synthetic, seconds) of one case and seed."""
    from hma_db import HMASynthesizer, Metadata, clone

    if name in DATABASES:
        path = DATABASES[name]
        real = _datasets._conform(_datasets.read_sqlite(path), metadata)
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "synthetic.sqlite"
            started = time.perf_counter()
            clone(f"sqlite:///{path}", f"sqlite:///{target}", seed=seed)
            seconds = time.perf_counter() - started
            synthetic = _datasets._conform(_datasets.read_sqlite(target), metadata)
        return real, synthetic, seconds
    parents, width = GENERATED[name]
    real = _datasets.generated_tables(parents, width, seed=0)
    synthesizer = HMASynthesizer(Metadata.load_from_dict(metadata), seed=seed, verbose=False)
    started = time.perf_counter()
    synthesizer.fit(real)
    synthetic = synthesizer.sample()
    return real, synthetic, time.perf_counter() - started


def _label(row: pd.Series) -> str:
    parts = [str(row[c]) for c in ("Table", "Child Table", "Parent Table", "Column", "Column 1",
                                   "Column 2", "Metric") if c in row and pd.notna(row[c])]
    return " / ".join(parts)


def _score(real: dict, synthetic: dict, metadata: dict) -> dict:
    from sdmetrics.reports.multi_table import QualityReport

    sdv = _datasets.sdv_metadata(metadata)
    sdv["relationships"] = [r for r in sdv["relationships"]
                            if r["parent_table_name"] != r["child_table_name"]]
    report = QualityReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate(real, synthetic, sdv, verbose=False)
    out = {"quality": float(report.get_score()), "properties": {}, "items": {}}
    for _, row in report.get_properties().iterrows():
        out["properties"][row["Property"]] = float(row["Score"])
    for prop in PROPERTIES:
        details = report.get_details(prop)
        if "Score" in details:
            details = details.dropna(subset=["Score"])
            out["items"][prop] = {_label(r): float(r["Score"]) for _, r in details.iterrows()}
    return out


def _reader_checks(name: str, real: dict, synthetic: dict) -> dict:
    """The figures a reader of the rows checks (see the module docstring)."""
    if name == "chinook":
        out = {}
        for label, tables in (("real", real), ("synthetic", synthetic)):
            lines = tables["InvoiceLine"].merge(tables["Track"][["TrackId", "UnitPrice"]],
                                                on="TrackId", suffixes=("", "_track"))
            out[f"{label} line price = track price"] = float(
                np.mean(np.isclose(lines["UnitPrice"], lines["UnitPrice_track"])))
            out[f"{label} corr(track price, line price)"] = float(
                lines["UnitPrice"].corr(lines["UnitPrice_track"]))
        return out
    if name == "northwind":
        out = {}
        for label, tables in (("real", real), ("synthetic", synthetic)):
            orders = tables["orders"]
            out[f"{label} ship names per customer"] = float(
                orders.groupby("customer_id")["ship_name"].nunique().mean())
        known = set(real["order_details"]["discount"].round(6))
        made = synthetic["order_details"]["discount"].round(6)
        out["synthetic discounts not in the source"] = int((~made.isin(known)).sum())
        return out
    return {}


def _metadata(name: str) -> dict:
    if name in DATABASES:
        return _datasets.sqlite_metadata(DATABASES[name])[0]
    parents, width = GENERATED[name]
    return _datasets.generated_metadata(_datasets.generated_tables(parents, width, seed=0))


def run_case(name: str, seeds: list[int]) -> dict:
    metadata = _metadata(name)
    runs = []
    for seed in seeds:
        real, synthetic, seconds = _synthetic_database(name, seed, metadata)
        scores = _score(real, synthetic, metadata)
        scores["seconds"] = seconds
        scores["checks"] = _reader_checks(name, real, synthetic)
        runs.append(scores)
        print(f"{name} seed {seed}: quality {scores['quality']:.3f} ({seconds:.1f} s)",
              file=sys.stderr, flush=True)
    items: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for scores in runs:
        for prop, found in scores["items"].items():
            for label, value in found.items():
                items[prop][label].append(value)
    return {
        "quality": statistics.fmean(r["quality"] for r in runs),
        "properties": {p: statistics.fmean(r["properties"][p] for r in runs
                                           if r["properties"].get(p) is not None)
                       for p in PROPERTIES if any(r["properties"].get(p) is not None
                                                  for r in runs)},
        "items": {p: {k: statistics.fmean(v) for k, v in found.items()}
                  for p, found in items.items()},
        "checks": {k: statistics.fmean(r["checks"][k] for r in runs)
                   for k in runs[0]["checks"]},
        "seconds": statistics.fmean(r["seconds"] for r in runs),
    }


def _was(before: dict | None, *path: str) -> str:
    for key in path:
        if not isinstance(before, dict) or key not in before:
            return ""
        before = before[key]
    return f" (was {before:.3f})" if isinstance(before, float | int) else ""


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    before = json.loads(Path(args.compare).read_text()) if args.compare else {}
    results = {name: run_case(name, args.seeds) for name in args.cases}
    for name, result in results.items():
        print(f"\n{name}: quality {result['quality']:.3f}{_was(before, name, 'quality')}, "
              f"mean of seeds {args.seeds}, {result['seconds']:.1f} s a run")
        for prop, value in result["properties"].items():
            print(f"  {prop:20} {value:.3f}{_was(before, name, 'properties', prop)}")
            worst = sorted(result["items"].get(prop, {}).items(), key=lambda kv: kv[1])
            for label, score in worst[:args.worst]:
                print(f"      {score:.3f}  {label}")
        for label, value in result["checks"].items():
            print(f"  {label}: {value:.3f}{_was(before, name, 'checks', label)}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
