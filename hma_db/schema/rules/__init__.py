"""Rules on single columns and the database's CHECK text turned into rules.

Part of the schema stage (a sub-folder because ``schema/`` is full): the constraint classes
that bound one column (:class:`ScalarInequality`, :class:`ScalarRange`, :class:`AllowedValues`)
and :func:`rules_from_check`, which reads a CHECK's SQL into those and SDV's ``Inequality``;
the rules found across tables (:class:`PathAgreement`, :class:`ParentSum` and
:func:`find_sums`) and within a row (:class:`RowFormula`, :func:`find_formulas`).
"""

from hma_db.schema.rules.across import PathAgreement, find_paths
from hma_db.schema.rules.check_text import CheckRules, rules_from_check
from hma_db.schema.rules.scalar import AllowedValues, ScalarInequality, ScalarRange
from hma_db.schema.rules.sums import ParentSum, RowFormula, find_formulas, find_sums

__all__ = ["AllowedValues", "CheckRules", "ParentSum", "PathAgreement", "RowFormula",
           "ScalarInequality", "ScalarRange", "find_formulas", "find_paths", "find_sums",
           "rules_from_check"]
