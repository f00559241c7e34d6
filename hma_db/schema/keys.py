"""Key columns: a primary, alternate or foreign key is one column name or a list of them."""

from __future__ import annotations

Key = str | list[str]


def key_columns(key: Key | None) -> list[str]:
    """A key as a list of column names (``None`` -> ``[]``, ``"id"`` -> ``["id"]``)."""
    if key is None:
        return []
    return [key] if isinstance(key, str) else list(key)


def key_value(columns: list[str]) -> Key:
    """Columns as a key value: one name alone, several as a list (SDV's layout)."""
    return columns[0] if len(columns) == 1 else list(columns)
