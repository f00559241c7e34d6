"""Rules on single columns and the database's CHECK text turned into rules.

Part of the schema stage (a sub-folder because ``schema/`` is full): the constraint classes
that bound one column (:class:`ScalarInequality`, :class:`ScalarRange`, :class:`AllowedValues`)
and :func:`rules_from_check`, which reads a CHECK's SQL into those and SDV's ``Inequality``;
the inequalities and row formulas found in the data, at fit and as ``reflect``'s proposals
(:func:`find_inequalities`, :func:`propose_rules`); the rules found across tables
(:class:`PathAgreement`, :class:`ParentSum` and :func:`find_sums`) and within a row
(:class:`RowFormula`, :func:`find_formulas`), and categories set by ranges of a date or number
of their row (:class:`StepRule`, :func:`find_steps`) or by whether another column of their row
is set (:class:`PresenceRule`, :func:`find_presence`).
"""

from hma_db.schema.rules.across import ParentOrder, PathAgreement, find_orders, find_paths
from hma_db.schema.rules.check_text import CheckRules, rules_from_check
from hma_db.schema.rules.found import find_inequalities, propose_rules
from hma_db.schema.rules.presence import PresenceRule, find_presence
from hma_db.schema.rules.scalar import AllowedValues, ScalarInequality, ScalarRange
from hma_db.schema.rules.steps import StepRule, find_steps
from hma_db.schema.rules.sums import ParentSum, RowFormula, decimals, find_formulas, find_sums

__all__ = ["AllowedValues", "CheckRules", "ParentOrder", "ParentSum", "PathAgreement",
           "PresenceRule", "find_presence",
           "RowFormula", "ScalarInequality", "ScalarRange", "StepRule", "decimals",
           "find_formulas", "find_inequalities", "find_orders", "find_paths", "find_steps",
           "find_sums", "propose_rules", "rules_from_check"]
