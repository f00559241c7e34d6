"""Fit times of the two shapes issue 20 names, now and at an earlier revision, in the same run.

Usage (on a quiet machine)::

    python tests/benchmarks/bench_fit.py                      # this checkout, median of 5
    python tests/benchmarks/bench_fit.py --baseline 6283426    # and that revision, side by side

The shapes:

- ``wide``: the corpus' 200-column table (``wd_wide`` of ``tests/corpus``: an id and 199
  columns cycling through integers, numbers with 2 places, 3 colours and dates) with 100 rows;
- ``parent16``: a parent of 77 rows with 16 numerical columns (skewed amounts, counts, scores
  and rates, each a beta marginal by default, as in the issue) and 4,500 children with 4 data
  columns, whose counts and values follow their parent.

Each is fitted ``--repeats`` times in a process of its own per revision (a baseline is checked
out with ``git worktree`` into a temporary folder and imported from there); the process prints
the median of ``HMASynthesizer(metadata).fit(data)`` and of the model's fit alone (the copulas
and child statistics on the already transformed tables: ``fit_processed_data``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def wide_case(rows: int = 100, columns: int = 199) -> tuple[dict, dict]:
    """The corpus' wd_wide shape (as in tests/test_beta.py)."""
    i = np.arange(1, rows + 1)
    data: dict[str, object] = {"id": i}
    meta: dict[str, dict] = {"id": {"sdtype": "id"}}
    for c in range(1, columns + 1):
        kind = c % 4
        if kind == 0:
            data[f"c{c}"], meta[f"c{c}"] = (i * c) % 97, {"sdtype": "numerical"}
        elif kind == 1:
            data[f"c{c}"], meta[f"c{c}"] = np.round(i * c / 7.0, 2), {"sdtype": "numerical"}
        elif kind == 2:
            data[f"c{c}"] = np.array(["red", "green", "blue"])[(i + c) % 3]
            meta[f"c{c}"] = {"sdtype": "categorical"}
        else:
            data[f"c{c}"] = pd.Timestamp("2020-01-01") + pd.to_timedelta((i * c) % 400, unit="D")
            meta[f"c{c}"] = {"sdtype": "datetime"}
    return ({"wd_wide": pd.DataFrame(data)},
            {"tables": {"wd_wide": {"primary_key": "id", "columns": meta}}})


def parent16_case(parents: int = 77, children: int = 4_500, seed: int = 0) -> tuple[dict, dict]:
    """A 16-column parent of 77 rows and 4,500 children that follow it."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(parents)
    parent: dict[str, object] = {"parent_id": np.arange(1, parents + 1)}
    meta: dict[str, dict] = {"parent_id": {"sdtype": "id"}}
    for j in range(16):  # skewed amounts, counts, scores and rates: beta marginals by default
        kind, name = j % 4, f"p{j:02d}"
        latent = 0.7 * z + 0.7 * rng.standard_normal(parents)
        if kind == 0:
            parent[name] = np.round(np.exp(4 + 0.5 * latent), 2)
        elif kind == 1:
            parent[name] = np.round(np.exp(2.5 + 0.4 * latent)).astype(int)
        elif kind == 2:
            parent[name] = np.round(50 + 10 * latent, 1)
        else:
            parent[name] = np.round(1 / (1 + np.exp(-latent)), 3)
        meta[name] = {"sdtype": "numerical"}
    weights = np.exp(0.5 * z)
    owner = np.sort(rng.choice(parents, size=children, p=weights / weights.sum()))
    child = pd.DataFrame({
        "child_id": np.arange(1, children + 1),
        "parent_id": owner + 1,
        "amount": np.round(np.exp(3 + 0.3 * z[owner] + 0.5 * rng.standard_normal(children)), 2),
        "quantity": rng.poisson(2 + np.exp(0.3 * z[owner])),
        "kind": np.array(["x", "y", "z"])[rng.integers(0, 3, children)],
        "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(
            rng.integers(0, 700, children), unit="D"),
    })
    child_meta = {"child_id": {"sdtype": "id"}, "parent_id": {"sdtype": "id"},
                  "amount": {"sdtype": "numerical"}, "quantity": {"sdtype": "numerical"},
                  "kind": {"sdtype": "categorical"}, "when": {"sdtype": "datetime"}}
    return ({"parent": pd.DataFrame(parent), "child": child},
            {"tables": {"parent": {"primary_key": "parent_id", "columns": meta},
                        "child": {"primary_key": "child_id", "columns": child_meta}},
             "relationships": [{"parent_table_name": "parent", "parent_primary_key": "parent_id",
                                "child_table_name": "child", "child_foreign_key": "parent_id"}]})


CASES = {"wide": wide_case, "parent16": parent16_case}


def measure(case: str, repeats: int) -> dict[str, float]:
    """In this process: the median whole fit and model fit of ``case`` (imports hma_db from
    ``sys.path``, so a baseline's checkout comes first there)."""
    import warnings

    from hma_db import HMASynthesizer, Metadata

    warnings.simplefilter("ignore")
    data, metadata = CASES[case]()
    whole, model = [], []
    for _ in range(repeats):
        synthesizer = HMASynthesizer(Metadata.from_dict(metadata))
        started = time.perf_counter()
        synthesizer.fit(data)
        whole.append(time.perf_counter() - started)
        processed = synthesizer.preprocess(data)
        started = time.perf_counter()
        synthesizer.fit_processed_data(processed)
        model.append(time.perf_counter() - started)
    return {"fit": statistics.median(whole), "model fit": statistics.median(model)}


def _run(where: Path, case: str, repeats: int) -> dict[str, float]:
    code = (f"import sys; sys.path[:0] = [{str(where)!r}, {str(Path(__file__).parent)!r}]; "
            f"import json, bench_fit; print(json.dumps(bench_fit.measure({case!r}, {repeats})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tempfile.gettempdir())
    if out.returncode:
        raise SystemExit(f"measuring {case} at {where} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a git revision to measure beside this checkout")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        revisions = {"now": ROOT}
        if args.baseline:
            checkout = Path(folder) / "baseline"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                            str(checkout), args.baseline], check=True)
            revisions = {args.baseline: checkout, "now": ROOT}
        try:
            results = {}
            for case in args.cases:
                for label, where in revisions.items():
                    results[(case, label)] = _run(where, case, args.repeats)
                    figures = results[(case, label)]
                    print(f"{case:9s} {label:10s} fit {figures['fit']:7.3f} s   model fit "
                          f"{figures['model fit']:7.3f} s", flush=True)
                if args.baseline:
                    before, after = results[(case, args.baseline)], results[(case, "now")]
                    print(f"{case:9s} speed-up   fit {before['fit'] / after['fit']:6.1f}x    "
                          f"model fit {before['model fit'] / after['model fit']:6.1f}x")
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(checkout)], check=False)
    print(f"load average {' '.join(f'{x:.2f}' for x in __import__('os').getloadavg())}")


if __name__ == "__main__":
    main()
