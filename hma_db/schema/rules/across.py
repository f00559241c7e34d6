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
from hma_db.schema.keys import key_columns

MIN_ROWS = 30  # rows where both paths are set, as for the other rules found in the data


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


def find_paths(metadata, data: dict[str, pd.DataFrame]) -> list[PathAgreement]:
    """The path agreements that hold in every row of ``data``, from the key values (the model
    finds the same from its links, :mod:`hma_db.model.agree`; this is for reports)."""
    single = [r for r in metadata.relationships if len(key_columns(r["child_foreign_key"])) == 1
              and r["parent_table_name"] != r["child_table_name"]]
    found = []
    for d in single:
        child, ancestor = d["child_table_name"], d["parent_table_name"]
        for v in single:
            middle = v["parent_table_name"]
            if v is d or v["child_table_name"] != child or middle in (ancestor, child):
                continue
            for u in single:
                if u["child_table_name"] != middle or u["parent_table_name"] != ancestor:
                    continue
                rule = PathAgreement(
                    key_columns(d["child_foreign_key"])[0], key_columns(v["child_foreign_key"])[0],
                    middle, key_columns(v["parent_primary_key"])[0],
                    key_columns(u["child_foreign_key"])[0], table_name=child)
                if {child, middle} <= set(data) and _holds(rule, data):
                    rule.origin = "data"
                    found.append(rule)
                    break
    return found


def _holds(rule: PathAgreement, data: dict[str, pd.DataFrame]) -> bool:
    child, middle = data[rule.table_name], data[rule.via_table_name]
    through = child[rule.via_column_name].map(
        middle.drop_duplicates(rule.via_key_name).set_index(rule.via_key_name)[
            rule.via_parent_column_name])
    both = child[rule.column_name].notna() & through.notna()
    direct = child.loc[both, rule.column_name]
    return int(both.sum()) >= MIN_ROWS and direct.nunique() > 1 \
        and bool((direct == through[both]).all())
