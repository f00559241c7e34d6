"""The report stage: how good and how safe a synthetic copy is.

Takes in the real and synthetic tables (DataFrames or two databases) and the metadata; gives out
a :class:`Report`: fidelity scores (column shapes, pair trends, cardinality, intertable trends),
validity of keys and constraints, privacy findings, as JSON or a self-contained HTML page.
"""

from hma_db.report.evaluate import Report, evaluate, evaluate_databases

__all__ = [
    "Report",
    "evaluate",
    "evaluate_databases",
]
