"""Key columns: unique values generated as sequences, and line numbers within a parent.

Part of the transform stage (a sub-folder because ``transform/`` is full): :mod:`keygen`
makes a key column's values as a function of each row's place in the run (integers, strings of
a pattern, uuids; composite keys), :mod:`keytime` the keys and partition columns that are
dates, times or listed values, and :mod:`numbering` the last column of a composite key that
counts 1..n within each parent (an order's lines).
"""

from hma_db.transform.keys import keygen, keytime, numbering
from hma_db.transform.keys.keygen import Span, parse_pattern
from hma_db.transform.keys.numbering import number_within

__all__ = ["Span", "keygen", "keytime", "number_within", "numbering", "parse_pattern"]
