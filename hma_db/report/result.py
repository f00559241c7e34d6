"""The :class:`Report`: scores, findings and thresholds, as JSON or an HTML page.

:mod:`hma_db.report.evaluate` computes one; this module holds it and writes it out.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hma_db.report.fidelity import property_score
from hma_db.report.html import render

# What the HTML summary marks as passed. The fidelity figures are SDMetrics' scale (0..1).
DEFAULT_THRESHOLDS = {"score": 0.6, "Column Shapes": 0.7, "Column Pair Trends": 0.5,
                      "Cardinality": 0.6, "Intertable Trends": 0.5}


@dataclass
class Report:
    """The result of :func:`evaluate`: fidelity, validity and privacy findings.

    Example:
        >>> report = evaluate(real, synthetic, metadata)
        >>> round(report.score, 2), report.properties["Cardinality"]
        >>> report.save_html("report.html")
    """

    score: float
    properties: dict[str, float]
    details: dict[str, pd.DataFrame]
    validity: list[dict]
    privacy: dict
    rows: dict[str, dict[str, int]]
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    distributions: dict = field(default_factory=dict, repr=False)

    @property
    def table_scores(self) -> dict[str, dict[str, float]]:
        """``{table: {property: mean score}}``; relationship properties count for the child."""
        out: dict[str, dict[str, float]] = {}
        for name, details in self.details.items():
            if details.empty:
                continue
            key = "Table" if "Table" in details else "Child Table"
            for table, rows in details.groupby(key):
                out.setdefault(table, {})[name] = property_score(rows)
        return out

    @property
    def validity_passed(self) -> bool:
        """Whether every validity check found no violation."""
        return all(f["passed"] for f in self.validity)

    @property
    def privacy_passed(self) -> bool:
        """Whether no privacy finding is flagged."""
        return bool(self.privacy.get("passed", True))

    @property
    def passed(self) -> bool:
        """Score at or above its threshold, all validity checks passed, no privacy flag."""
        return (at_least(self.score, self.thresholds["score"]) and self.validity_passed
                and self.privacy_passed)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: ``score`` at the top level, then every finding."""
        return clean({
            "score": self.score, "passed": self.passed, "thresholds": self.thresholds,
            "properties": self.properties, "tables": self.table_scores, "rows": self.rows,
            "details": {name: d.to_dict(orient="records") for name, d in self.details.items()},
            "validity": {"passed": self.validity_passed, "checks": self.validity},
            "privacy": self.privacy})

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as JSON text (NaN written as null); also written to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def save(self, path: str | Path) -> Path:
        """Write the report as JSON when ``path`` ends in ``.json``, else as HTML (creating
        the folder); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".json":
            self.to_json(path)
            return path
        return self.save_html(path)

    def save_html(self, path: str | Path) -> Path:
        """Write the report as one self-contained HTML file with plots; returns the path."""
        path = Path(path)
        path.write_text(render(self), encoding="utf-8")
        return path


def at_least(value: float, threshold: float) -> bool:
    return value is not None and not math.isnan(value) and value >= threshold


def clean(value):
    """JSON-safe: NaN -> None, numpy scalars -> Python, tuples -> lists, keys -> text."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return str(value)
    return value
