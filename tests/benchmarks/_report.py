"""The benchmark's printed output: one table of measurements, then the figures issue 3 asks for."""

from __future__ import annotations

import re

SPEEDUP_TARGET = 20.0
QUALITY_TOLERANCE = 0.01
LARGE_LIMIT_SECONDS = 120.0


def _num(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cell(result: dict | None, key: str, digits: int) -> str:
    """A measured value; stages finished before a timeout are shown too."""
    if not result or not (result.get("ok") or result.get("timed_out")):
        return "-"
    return _num(result.get(key), digits)


def _note(result: dict | None) -> str:
    if result is None:
        return ""
    if result.get("skipped"):
        return f"skipped: {result['skipped']}"
    if result.get("timed_out"):
        return result["error"]
    if not result.get("ok"):
        return f"FAILED: {result.get('error', '?')}".splitlines()[0][:160]
    if result.get("metrics_error"):
        return f"metrics failed: {result['metrics_error']}"[:160]
    return ""


def table(results: list[dict]) -> str:
    """The measurement table: one line per case and engine."""
    header = ("case", "engine", "fit s", "(cpu)", "sample s", "(cpu)", "fit MiB", "sample MiB",
              "quality", "diagnostic", "note")
    rows = [header]
    for case in results:
        for engine in ("hma_db", "sdv"):
            r = case["engines"].get(engine)
            if r is None:
                continue
            rows.append((case["name"], engine, _cell(r, "fit_seconds", 2),
                         _cell(r, "fit_cpu_seconds", 2), _cell(r, "sample_seconds", 2),
                         _cell(r, "sample_cpu_seconds", 2), _cell(r, "fit_peak_mib", 0),
                         _cell(r, "sample_peak_mib", 0), _cell(r, "quality", 3),
                         _cell(r, "diagnostic", 3), _note(r)))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for k, row in enumerate(rows):
        cells = [str(c).ljust(w) if i < 2 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(row[:-1], widths, strict=True))]
        lines.append("  ".join(cells + [row[-1]]).rstrip())
        if k == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def _ok(result: dict | None) -> bool:
    return bool(result and result.get("ok"))


def _ratio(sdv: dict, hma: dict, key: str) -> float | None:
    """SDV / hma_db for one stage; a stage SDV finished before a timeout counts."""
    if not _ok(hma) or not hma.get(key) or not sdv or sdv.get(key) is None:
        return None
    return sdv[key] / hma[key]


def _verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else ("PASS" if passed else "FAIL")


def speedups(results: list[dict]) -> list[str]:
    lines = [f"Speedup SDV / hma_db, wall time (CPU time), target >= {SPEEDUP_TARGET:.0f}x on "
             "the 10k cases:"]
    for case in results:
        hma, sdv = case["engines"].get("hma_db"), case["engines"].get("sdv")
        if not (_ok(hma) and (_ok(sdv) or (sdv or {}).get("timed_out"))):
            continue
        parts = []
        for stage in ("fit", "sample"):
            wall = _ratio(sdv, hma, f"{stage}_seconds")
            cpu = _ratio(sdv, hma, f"{stage}_cpu_seconds")
            if wall is None:
                parts.append(f"{stage} not measured (SDV {sdv.get('error', 'failed')})")
                continue
            target = _verdict(wall >= SPEEDUP_TARGET) if "-10k-" in case["name"] else ""
            parts.append(f"{stage} {_num(wall, 1)}x ({_num(cpu, 1)}x) {target}".rstrip())
        lines.append(f"  {case['name']}: " + ", ".join(parts))
    return lines if len(lines) > 1 else lines + ["  no case with both engines measured"]


def quality(results: list[dict]) -> list[str]:
    lines = [f"Quality hma_db - SDV (target >= -{QUALITY_TOLERANCE}), and hma_db's diagnostic "
             "(target 1.0):"]
    for case in results:
        hma, sdv = case["engines"].get("hma_db"), case["engines"].get("sdv")
        if not _ok(hma) or hma.get("quality") is None:
            lines.append(f"  {case['name']}: hma_db not scored ({_note(hma) or 'no result'})")
            continue
        diag = hma.get("diagnostic")
        text = f"  {case['name']}: hma_db quality {_num(hma['quality'], 3)}"
        if _ok(sdv) and sdv.get("quality") is not None:
            diff = hma["quality"] - sdv["quality"]
            text += (f", SDV {_num(sdv['quality'], 3)}, difference {diff:+.3f} "
                     f"{_verdict(diff >= -QUALITY_TOLERANCE)}")
        text += f"; diagnostic {_num(diag, 3)} {_verdict(diag is not None and diag >= 0.9995)}"
        lines.append(text)
    return lines


def large(results: list[dict]) -> list[str]:
    lines = [f"100k-parent cases (target: fit and sample each < {LARGE_LIMIT_SECONDS:.0f} s):"]
    for case in results:
        hma = case["engines"].get("hma_db")
        if "-100k-" not in case["name"]:
            continue
        if not _ok(hma):
            lines.append(f"  {case['name']}: {_note(hma) or 'no result'}")
            continue
        fit, sample = hma["fit_seconds"], hma["sample_seconds"]
        lines.append(f"  {case['name']}: fit {fit:.1f} s (cpu {hma['fit_cpu_seconds']:.1f} s) "
                     f"{_verdict(fit < LARGE_LIMIT_SECONDS)}, sample {sample:.1f} s (cpu "
                     f"{hma['sample_cpu_seconds']:.1f} s) {_verdict(sample < LARGE_LIMIT_SECONDS)}")
    return lines if len(lines) > 1 else []


def growth(results: list[dict]) -> list[str]:
    """hma_db seconds per 1,000 parents at 1k, 10k and 100k parents, and the ratio to the
    previous size (1.0 = linear, below 1 = cheaper per row as the data grows)."""
    by_width: dict[str, dict[int, dict]] = {}
    for case in results:
        match = re.fullmatch(r"gen-(\d+)k-(w\d+)", case["name"])
        if match and _ok(case["engines"].get("hma_db")):
            by_width.setdefault(match.group(2), {})[int(match.group(1))] = case["engines"]["hma_db"]
    lines = ["hma_db cost growth: seconds per 1,000 parents (x ratio to the previous size; "
             "<= 1 means no faster than linear):"]
    for width, sizes in sorted(by_width.items(), key=lambda kv: int(kv[0][1:])):
        for stage in ("fit", "sample"):
            for clock in ("seconds", "cpu_seconds"):
                parts, previous = [], None
                for size in sorted(sizes):
                    per = sizes[size][f"{stage}_{clock}"] / size
                    ratio = f" (x{per / previous:.2f})" if previous else ""
                    parts.append(f"{size}k {per:.3f}{ratio}")
                    previous = per
                label = "wall" if clock == "seconds" else "cpu"
                lines.append(f"  {width} {stage} {label}: " + " | ".join(parts))
    return lines if len(lines) > 1 else []


def whole_databases(results: list[dict]) -> list[str]:
    lines = ["Whole databases, hma_db alone:"]
    for case in results:
        if not case["name"].endswith("-all"):
            continue
        hma = case["engines"].get("hma_db")
        if not _ok(hma):
            lines.append(f"  {case['name']}: {_note(hma) or 'no result'}")
            continue
        lines.append(f"  {case['name']}: quality {_cell(hma, 'quality', 3)}, diagnostic "
                     f"{_cell(hma, 'diagnostic', 3)}, fit {hma['fit_seconds']:.2f} s, sample "
                     f"{hma['sample_seconds']:.2f} s ({case['description']})")
    return lines if len(lines) > 1 else []


def figures(results: list[dict]) -> str:
    blocks = [speedups(results), quality(results), large(results), growth(results),
              whole_databases(results)]
    return "\n\n".join("\n".join(b) for b in blocks if b)


def properties(results: list[dict]) -> str:
    """Per-property SDMetrics scores, to see where a quality difference comes from."""
    lines = ["SDMetrics properties (quality | diagnostic):"]
    for case in results:
        for engine, r in case["engines"].items():
            if not _ok(r) or "quality_properties" not in r:
                continue
            q = ", ".join(f"{k} {_num(v, 3)}" for k, v in r["quality_properties"].items())
            d = ", ".join(f"{k} {_num(v, 3)}" for k, v in r["diagnostic_properties"].items())
            lines.append(f"  {case['name']} {engine}: {q} | {d}")
    return "\n".join(lines)
