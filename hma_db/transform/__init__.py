"""The transform stage: per table, columns to numbers and back.

Takes in a table's DataFrame and its metadata; gives out a :class:`TableTransformer` that turns
the modeled columns into floats for the copula and, in reverse, numbers into the source's columns:
categories, datetimes, numbers with their rounding and bounds, text of the right shape, personal
data from Faker, and generated keys (unique across chunks of one run); across tables, the
child columns that repeat a parent's value (``find_parent_copies`` at fit, ``parent_values``
after sampling) and columns that keep one value within a parent (``find_constant_within``,
``constant_values``).
"""

from hma_db.transform.columns import plan_roles, unique_columns
from hma_db.transform.inherit import constant_values, parent_values
from hma_db.transform.inherit import find as find_parent_copies
from hma_db.transform.inherit import find_held as find_constant_within
from hma_db.transform.keys import Span, number_within, parse_pattern
from hma_db.transform.personal import faker_for, provider_for, resolve_provider, unique_room
from hma_db.transform.table import TableTransformer

__all__ = [
    "Span",
    "TableTransformer",
    "constant_values",
    "faker_for",
    "find_constant_within",
    "find_parent_copies",
    "number_within",
    "parent_values",
    "parse_pattern",
    "plan_roles",
    "provider_for",
    "resolve_provider",
    "unique_columns",
    "unique_room",
]
