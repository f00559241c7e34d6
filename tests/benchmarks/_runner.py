"""Fit and sample one synthesizer in a process of its own, and report time and memory as JSON.

Run by ``bench_hma.py``, never imported by it: ``python _runner.py --engine hma_db|sdv --data DIR
--metadata FILE --out DIR --result FILE``. The ``sdv`` engine runs in SDV's virtual environment, so
hma_db and SDV are never imported into the same interpreter. Both engines go through the same code:
read the tables, build the synthesizer from SDV-layout metadata JSON, ``fit``, ``sample`` the same
number of rows as the real data, write the synthetic tables next to the real ones.

Peak memory is the process's peak resident set size (``VmHWM``), reset before ``fit`` and again
before ``sample`` (``/proc/self/clear_refs``), so each figure belongs to its stage; the data already
loaded is part of both.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path

import _frames


def _rss_mib(field: str) -> float | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_mib() -> float:
    """Peak RSS since the last reset; falls back to the lifetime peak (ru_maxrss) off Linux."""
    peak = _rss_mib("VmHWM")
    if peak is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _save(result: dict, path: str) -> None:
    Path(path).write_text(json.dumps(result, indent=1, default=str))


def _measure(stage: str, result: dict, func, path: str):
    """Run ``func`` and record its wall and CPU seconds and its peak memory under ``stage``.

    The result file is rewritten when the stage starts and ends, so a run stopped by the
    benchmark's timeout still reports the stages it finished and the one it was in.
    """
    result[f"{stage}_peak_reset"] = _reset_peak()
    result["stage"] = stage
    _save(result, path)
    wall, cpu = time.perf_counter(), _cpu()
    value = func()
    result[f"{stage}_seconds"] = time.perf_counter() - wall
    result[f"{stage}_cpu_seconds"] = _cpu() - cpu
    result[f"{stage}_peak_mib"] = _peak_mib()
    _save(result, path)
    return value


def _engine(name: str):
    """(Metadata loader, HMASynthesizer class, version, package folder) of the chosen engine."""
    if name == "sdv":
        import sdv
        from sdv.metadata import Metadata
        from sdv.multi_table import HMASynthesizer

        return Metadata.load_from_dict, HMASynthesizer, sdv.__version__, sdv.__file__
    import hma_db
    from hma_db import HMASynthesizer, Metadata

    return Metadata.from_dict, HMASynthesizer, hma_db.__version__, hma_db.__file__


def _sample(synthesizer, data: dict, root: str):
    """Sample at scale 1: hma_db (and SDV < 2) take ``scale``; SDV 2 takes rows of a main table."""
    import inspect

    if "scale" in inspect.signature(synthesizer.sample).parameters:
        return synthesizer.sample(scale=1.0)
    return synthesizer.sample(num_rows=len(data[root]), main_table_name=root)


def run(args: argparse.Namespace, result: dict) -> None:
    load_metadata, synthesizer_class, result["version"], result["package"] = _engine(args.engine)
    metadata_dict = json.loads(Path(args.metadata).read_text())
    data = _frames.read_tables(Path(args.data))
    metadata = load_metadata(metadata_dict)
    kwargs = {"verbose": False}
    if args.engine == "hma_db" and args.seed is not None:
        kwargs["seed"] = args.seed
    synthesizer = synthesizer_class(metadata, **kwargs)
    result["loaded_rss_mib"] = _rss_mib("VmRSS")
    _measure("fit", result, lambda: synthesizer.fit(data), args.result)
    synthetic = _measure("sample", result, lambda: _sample(synthesizer, data, args.root),
                         args.result)
    result["rows"] = {name: len(frame) for name, frame in synthetic.items()}
    result["stage"] = "done"
    _frames.write_tables(synthetic, Path(args.out), args.format)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", choices=("hma_db", "sdv"), required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--metadata", required=True)
    parser.add_argument("--root", required=True, help="a table without parents (SDV's main table)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--format", choices=_frames.FORMATS, default="csv")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.engine == "sdv" and args.seed is not None:
        import numpy as np

        np.random.seed(args.seed)  # SDV has no seed argument; this makes its runs repeatable
    result: dict = {"engine": args.engine, "python": sys.executable, "ok": False}
    try:
        run(args, result)
        result["ok"] = True
    except Exception as exc:  # noqa: BLE001 - any failure is reported to the benchmark
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
    _save(result, args.result)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
