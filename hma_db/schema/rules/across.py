"""Rules that span two tables, found in the data: a child that reaches one ancestor along two
foreign-key paths naming the same ancestor row along both.

``payment.customer_id = payment.rental_id -> rental.customer_id``: the direct foreign key and
the path through another parent agree. The model keeps it by linking each sampled child along
both paths at once (:mod:`hma_db.model.agree`); this class states it, checks it on tables and
stores it with the model. Rows where either path is NULL pass.
"""

from __future__ import annotations

import pandas as pd

from hma_db.schema.constraints import Constraint


class PathAgreement(Constraint):
    """``table.column_name`` equals ``via_table_name.via_parent_column_name`` of the row that
    ``table.via_column_name`` references (by ``via_table_name.via_key_name``).

    Example:
        >>> PathAgreement("customer_id", "rental_id", "rental", "rental_id", "customer_id",
        ...               table_name="payment")
    """

    PARAMETERS = ("column_name", "via_column_name", "via_table_name", "via_key_name",
                  "via_parent_column_name")
    across_tables = True  # is_valid_tables reads every table

    def __init__(self, column_name: str, via_column_name: str, via_table_name: str,
                 via_key_name: str, via_parent_column_name: str, table_name: str | None = None):
        super().__init__(table_name)
        self.column_name, self.via_column_name = column_name, via_column_name
        self.via_table_name, self.via_key_name = via_table_name, via_key_name
        self.via_parent_column_name = via_parent_column_name

    def columns(self) -> list[str]:
        return [self.column_name, self.via_column_name]

    def tables_read(self) -> list[str]:
        return [self.table_name, self.via_table_name]

    def describe(self) -> str:
        return (f"{self.table_name}.{self.column_name} = {self.table_name}.{self.via_column_name}"
                f" -> {self.via_table_name}.{self.via_parent_column_name}")

    def is_valid(self, data: pd.DataFrame) -> pd.Series:
        """One table alone cannot break it (see :meth:`is_valid_tables`)."""
        return pd.Series(True, index=data.index)

    def is_valid_tables(self, data: dict[str, pd.DataFrame]) -> pd.Series:
        """Per row of the child table: do both paths name the same ancestor?"""
        child, middle = data[self.table_name], data[self.via_table_name]
        ancestor = middle.drop_duplicates(self.via_key_name).set_index(self.via_key_name)[
            self.via_parent_column_name]
        through = child[self.via_column_name].map(ancestor)
        direct = child[self.column_name]
        holds = (direct == through) | direct.isna() | through.isna()
        return pd.Series(holds.to_numpy(dtype=bool), index=child.index)
