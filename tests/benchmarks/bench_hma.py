"""Benchmark hma_db's HMASynthesizer against SDV 2.0's, in the same run, on the same data.

Usage::

    python tests/benchmarks/bench_hma.py                       # every case
    python tests/benchmarks/bench_hma.py --cases 'gen-1k-*' chinook-customer-invoice
    python tests/benchmarks/bench_hma.py --list

For each case, each synthesizer runs in a process of its own (``_runner.py``): it reads the real
tables, fits, samples as many rows as the real data, and reports wall and CPU seconds and the peak
resident memory of each stage. SDV runs with the interpreter of its own virtual environment
(``--sdv-python``, ``HMA_DB_SDV_PYTHON``, default ``/work/sdv-venv/bin/python``), so it is never
imported next to hma_db. Data goes through parquet files (CSV when an environment lacks pyarrow),
metadata through SDV-layout JSON. SDMetrics' multi-table QualityReport and DiagnosticReport then
score both outputs here, with the same real data and metadata.

SDV is skipped (never extrapolated) on schemas it refuses (more than 5 tables) and on cases with
more parents than ``--sdv-max-parents`` (default 10,000: SDV needs about 9 ms per parent row to fit
and 37-115 ms per parent row to sample, so the 100k cases would take hours).

Runner processes get ``--threads`` BLAS/OpenMP threads (default 1) so that both synthesizers see
the same, predictable CPU; the machine's load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _datasets  # noqa: E402
import _frames  # noqa: E402
import _report  # noqa: E402

RUNNER = HERE / "_runner.py"
DEFAULT_SDV_PYTHON = "/work/sdv-venv/bin/python"
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", metavar="PATTERN",
                        help="case names or shell patterns (default: all); see --list")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--sdv-python", default=os.environ.get("HMA_DB_SDV_PYTHON"),
                        help=f"python of SDV's environment (default $HMA_DB_SDV_PYTHON, else "
                             f"{DEFAULT_SDV_PYTHON} if it exists)")
    parser.add_argument("--no-sdv", action="store_true", help="measure hma_db only")
    parser.add_argument("--sdv-max-parents", type=int, default=10_000,
                        help="skip SDV on cases with more parent rows (default 10000)")
    parser.add_argument("--no-metrics", action="store_true", help="skip the SDMetrics reports")
    parser.add_argument("--seed", type=int, default=0, help="data generation and synthesizer seed")
    parser.add_argument("--synthesizer-seed", type=int, default=None,
                        help="seed of the synthesizers only (default --seed), to see how much "
                             "the scores move between runs on the same data")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads per runner process (default 1)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds allowed per runner process (default 3600)")
    parser.add_argument("--hma-db-rev", default="HEAD",
                        help="git revision of hma_db to measure, copied out of the repository so "
                             "that edits in the working tree cannot change it mid-run (default "
                             "HEAD); 'worktree' measures the working tree as it is")
    parser.add_argument("--workdir", help="keep the data and synthetic tables in this folder")
    parser.add_argument("--json", dest="json_path", help="also write every result to this file "
                        "(rewritten after each case)")
    parser.add_argument("--from-json", metavar="FILE", nargs="+",
                        help="print the table and figures of results saved with --json (several "
                             "files are joined, in order); no run")
    return parser.parse_args(argv)


def _sdv_python(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(SDV's python, None) or (None, why SDV's columns are n/a)."""
    if args.no_sdv:
        return None, "--no-sdv"
    python = args.sdv_python or (DEFAULT_SDV_PYTHON if Path(DEFAULT_SDV_PYTHON).exists() else None)
    if python is None:
        return None, (f"no SDV environment: set --sdv-python or HMA_DB_SDV_PYTHON "
                      f"({DEFAULT_SDV_PYTHON} does not exist)")
    check = subprocess.run([python, "-c", "import sdv, sys; print(sdv.__version__)"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        return None, f"{python} cannot import sdv: {check.stderr.strip().splitlines()[-1:]}"
    return python, None


def _has_pyarrow(python: str) -> bool:
    return subprocess.run([python, "-c", "import pyarrow"], capture_output=True).returncode == 0


def _hma_db_source(rev: str, workdir: Path) -> tuple[Path, str]:
    """(folder holding the hma_db package to measure, its description)."""
    git = ["git", "-C", str(_datasets.ROOT)]
    if rev == "worktree":
        state = subprocess.run(git + ["describe", "--always", "--dirty"], capture_output=True,
                               text=True).stdout.strip()
        return _datasets.ROOT, f"working tree ({state or 'not a git checkout'})"
    commit = subprocess.run(git + ["rev-parse", "--short", rev], capture_output=True, text=True,
                            check=True).stdout.strip()
    target = workdir / f"hma_db-{commit}"
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(git + ["archive", commit, "hma_db"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target, f"commit {commit} ({rev})"


def _runner_env(args: argparse.Namespace, engine: str) -> dict[str, str]:
    env = dict(os.environ, **{name: str(args.threads) for name in _THREAD_VARS})
    env.pop("PYTHONPATH", None)
    if engine == "hma_db":  # ahead of any installed hma_db (an editable install comes after)
        env["PYTHONPATH"] = str(args.hma_db_path)
    return env


def _synthesizer_seed(args: argparse.Namespace) -> int:
    return args.seed if args.synthesizer_seed is None else args.synthesizer_seed


def run_engine(engine: str, python: str, case_dir: Path, case, fmt: str,
               args: argparse.Namespace) -> dict:
    """Fit and sample one engine in its own process; its result dict (``ok`` False on failure)."""
    result_path = case_dir / f"result_{engine}.json"
    metadata = case_dir / ("metadata_hma_db.json" if engine == "hma_db" else "metadata_sdv.json")
    command = [python, str(RUNNER), "--engine", engine, "--data", str(case_dir / "real"),
               "--metadata", str(metadata), "--root", case.root,
               "--out", str(case_dir / f"synthetic_{engine}"), "--result", str(result_path),
               "--format", fmt, "--seed", str(_synthesizer_seed(args))]
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, env=_runner_env(args, engine), capture_output=True,
                              text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return _timed_out(result_path, args.timeout)
    (case_dir / f"{engine}.log").write_text(proc.stdout + proc.stderr)
    if not result_path.exists():
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ok": False, "error": f"runner exited with {proc.returncode}: {tail}"}
    result = json.loads(result_path.read_text())
    result["process_seconds"] = time.perf_counter() - start
    return result


def _timed_out(result_path: Path, timeout: float) -> dict:
    """The stages a runner finished before it was stopped, and the one it was stopped in."""
    partial = json.loads(result_path.read_text()) if result_path.exists() else {}
    stage = partial.get("stage", "start-up")
    partial.update(ok=False, timed_out=True,
                   error=f"timeout: {stage} unfinished when stopped after {timeout:.0f} s")
    return partial


def _score(result: dict, case, case_dir: Path, engine: str) -> None:
    if not result.get("ok"):
        return
    import _metrics

    try:
        synthetic = _frames.read_tables(case_dir / f"synthetic_{engine}")
        result.update(_metrics.score(case.tables, synthetic, case.sdv_metadata))
    except Exception as exc:  # noqa: BLE001 - a scoring failure is reported, not fatal
        result["metrics_error"] = f"{type(exc).__name__}: {exc}"


def _sdv_skip(case, sdv_python: str | None, why_no_sdv: str | None,
              args: argparse.Namespace) -> str | None:
    if sdv_python is None:
        return f"n/a: {why_no_sdv}"
    if case.sdv_refusal:
        return case.sdv_refusal
    if case.parents > args.sdv_max_parents:
        return (f"{case.parents} parents > --sdv-max-parents {args.sdv_max_parents} "
                "(SDV would take hours; not extrapolated)")
    return None


def run_case(name: str, args: argparse.Namespace, workdir: Path, sdv: tuple) -> dict:
    sdv_python, why_no_sdv = sdv
    start = time.perf_counter()
    case = _datasets.build(name, args.seed)
    case_dir = workdir / name
    engines = {"hma_db": sys.executable}
    skip = _sdv_skip(case, sdv_python, why_no_sdv, args)
    if skip is None:
        engines["sdv"] = sdv_python
    fmt = "parquet" if all(_has_pyarrow(p) for p in engines.values()) else "csv"
    _frames.write_tables(case.tables, case_dir / "real", fmt)
    (case_dir / "metadata_hma_db.json").write_text(json.dumps(case.metadata, indent=1))
    (case_dir / "metadata_sdv.json").write_text(json.dumps(case.sdv_metadata, indent=1))
    _log(f"{name}: {case.description}; data ready in {time.perf_counter() - start:.1f} s "
         f"({fmt})")
    record = {"name": name, "description": case.description, "parents": case.parents,
              "format": fmt, "engines": {}}
    for engine, python in engines.items():
        result = run_engine(engine, python, case_dir, case, fmt, args)
        _log(f"{name} {engine}: " + (f"fit {result['fit_seconds']:.2f} s, sample "
                                     f"{result['sample_seconds']:.2f} s" if result.get("ok")
                                     else result.get("error", "failed")))
        if not args.no_metrics:
            _score(result, case, case_dir, engine)
            if result.get("ok"):
                _log(f"{name} {engine}: quality {result.get('quality')}, diagnostic "
                     f"{result.get('diagnostic')} {result.get('metrics_error', '')}")
        record["engines"][engine] = result
    if skip is not None:
        record["engines"]["sdv"] = {"ok": False, "skipped": skip}
    return record


def _machine() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}"


def _header(args: argparse.Namespace, sdv: tuple, names: list[str]) -> str:
    sdv_text = sdv[0] if sdv[0] else f"n/a ({sdv[1]})"
    return (f"hma_db benchmark, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, hma_db "
            f"{args.hma_db_description}\n"
            f"machine: {_machine()}; runner threads {args.threads}; data seed {args.seed}, "
            f"synthesizer seed {_synthesizer_seed(args)}\n"
            f"hma_db python: {sys.executable}; SDV python: {sdv_text}\n"
            f"cases: {', '.join(names)}")


def _print_results(results: list[dict]) -> None:
    print(_report.table(results))
    print("\nTimes are wall seconds of fit() and sample() alone; MiB is the peak resident memory "
          "of the stage\n(data already loaded included). SDV 2.0 samples num_rows of the root "
          "table; hma_db samples scale=1.0.\nSDMetrics 0.32 scores Column Pair Trends and "
          "Intertable Trends only on pairs whose real\ncorrelation exceeds 0.5 (association 0.3); "
          "self-references are left out of the scoring.\n")
    print(_report.figures(results))
    print("\n" + _report.properties(results))


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.list:
        print("\n".join(_datasets.case_names()))
        return
    if args.from_json:
        _print_results([case for path in args.from_json
                        for case in json.loads(Path(path).read_text())])
        return
    names = _datasets.select(args.cases)
    sdv = _sdv_python(args)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="hma_db_bench_"))
    args.hma_db_path, args.hma_db_description = _hma_db_source(args.hma_db_rev, workdir)
    sys.path.insert(0, str(args.hma_db_path))  # hma_db.reflect of the same revision
    print(_header(args, sdv, names), flush=True)
    results = []
    try:
        for name in names:
            results.append(run_case(name, args, workdir, sdv))
            if args.json_path:
                Path(args.json_path).write_text(json.dumps(results, indent=1, default=str))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nafter the run: {_machine()}\n")
    _print_results(results)


if __name__ == "__main__":
    main()
