"""SDMetrics quality and diagnostic scores, computed the same way for every synthesizer's output.

Always run in hma_db's environment (sdmetrics 0.32), on the same real data and the same metadata
(SDV's reduced layout), so the scores of hma_db and SDV differ only by their synthetic data.
"""

from __future__ import annotations

import time
import warnings

import pandas as pd


def _properties(report) -> dict[str, float | None]:
    frame = report.get_properties()
    return {row["Property"]: (None if pd.isna(row["Score"]) else float(row["Score"]))
            for _, row in frame.iterrows()}


def without_self_references(metadata: dict) -> dict:
    """The metadata without relationships from a table to itself.

    SDMetrics 0.32 cannot denormalize a self-reference (Intertable Trends fails with a KeyError
    on ``'Employee.HireDate'`` in Chinook), so those relationships are left out of the scoring;
    hma_db's own tests check that self-references are valid and acyclic.
    """
    relationships = [r for r in metadata["relationships"]
                     if r["parent_table_name"] != r["child_table_name"]]
    return {**metadata, "relationships": relationships}


def score(real: dict[str, pd.DataFrame], synthetic: dict[str, pd.DataFrame],
          metadata: dict) -> dict:
    """Quality and diagnostic scores (overall and per property) and the seconds they took."""
    from sdmetrics.reports import DiagnosticReport, QualityReport

    metadata = without_self_references(metadata)
    start = time.perf_counter()
    out: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SDMetrics warns per column about skipped sdtypes
        for key, report_class in (("quality", QualityReport), ("diagnostic", DiagnosticReport)):
            report = report_class()
            report.generate(real, synthetic, metadata, verbose=False)
            out[key] = float(report.get_score())
            out[f"{key}_properties"] = _properties(report)
    out["metrics_seconds"] = time.perf_counter() - start
    return out
