"""Check data against metadata, and guess metadata from data.

``validate_data`` collects every problem (missing tables or columns, null or repeated keys,
foreign keys that reference nothing) into one :class:`DataError`, showing a few of the bad
values. ``detect`` guesses sdtypes, primary keys and relationships from DataFrames alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hma_db.errors import DataError
from hma_db.schema import graph, pii
from hma_db.schema.keys import key_columns

_SHOWN = 5  # bad values shown per problem


def _show(values) -> str:
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:_SHOWN])
    return shown + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


def _set_and_unique(values: pd.Series) -> bool:
    """A one-column key without NULLs or repeats, told without building frames: integers in
    increasing order (what keys mostly are) in one comparison, others by a hash of the values.
    False: look closer (:func:`_key_problems`). parent16's two keys: 2.3 ms -> 0.2 ms."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":
        numbers = values.to_numpy()
        if bool((numbers[1:] > numbers[:-1]).all()):
            return True
    elif values.isna().any():
        return False
    return values.is_unique


def _key_problems(table: str, frame: pd.DataFrame, key: list[str], kind: str) -> list[str]:
    if len(key) == 1 and _set_and_unique(frame[key[0]]):
        return []
    label = f"'{table}.{key[0]}'" if len(key) == 1 else f"'{table}' ({', '.join(key)})"
    nulls = frame[key].isna().any(axis=1)
    problems = []
    if kind == "primary key" and nulls.any():
        problems.append(f"{kind} {label} has {int(nulls.sum())} null value(s); expected none")
    present = frame.loc[~nulls, key]
    repeated = present[present.duplicated(keep=False)]
    if len(repeated):
        values = repeated.drop_duplicates()
        shown = values[key[0]] if len(key) == 1 else values.itertuples(index=False, name=None)
        problems.append(f"{kind} {label} has repeated values: {_show(shown)}")
    return problems


def _orphans(rel: dict, data: dict[str, pd.DataFrame]) -> list[str]:
    fk, pk = key_columns(rel["child_foreign_key"]), key_columns(rel["parent_primary_key"])
    child, parent = data[rel["child_table_name"]], data[rel["parent_table_name"]]
    if any(c not in child for c in fk) or any(c not in parent for c in pk):
        return []
    if len(fk) == 1:  # every reference found (or NULL), without building frames
        refs = child[fk[0]]
        found = refs.isin(parent[pk[0]]).to_numpy()
        if found.all() or (found | refs.isna().to_numpy()).all():
            return []
    refs = child[fk].dropna()
    if len(fk) == 1:
        bad = refs.loc[~refs[fk[0]].isin(parent[pk[0]]), fk[0]]
        values = bad.drop_duplicates()
    else:
        known = pd.MultiIndex.from_frame(parent[pk].set_axis(fk, axis=1))
        bad = refs.loc[~pd.MultiIndex.from_frame(refs).isin(known)]
        values = list(bad.drop_duplicates().itertuples(index=False, name=None))
    if len(bad) == 0:
        return []
    return [f"foreign key {graph.relationship_name(rel)}: {len(bad)} row(s) reference no parent "
            f"row, e.g. {_show(values)}"]


def validate_data(metadata, data: dict[str, pd.DataFrame]) -> None:
    """Raise one :class:`DataError` listing every way ``data`` does not fit ``metadata``."""
    problems = [f"table '{t}' is in the metadata but not in the data"
                for t in metadata.tables if t not in data]
    problems += [f"table '{t}' is in the data but not in the metadata"
                 for t in data if t not in metadata.tables]
    for table, frame in data.items():
        if table not in metadata.tables:
            continue
        if not isinstance(frame, pd.DataFrame):
            problems.append(f"table '{table}': expected a pandas DataFrame, found "
                            f"{type(frame).__name__}")
            continue
        expected = metadata.tables[table]["columns"]
        problems += [f"column '{table}.{c}' is in the metadata but not in the data"
                     for c in expected if c not in frame.columns]
        problems += [f"column '{table}.{c}' is in the data but not in the metadata"
                     for c in frame.columns if c not in expected]
        pk = metadata.primary_key(table)
        if pk and all(c in frame for c in pk):
            problems += _key_problems(table, frame, pk, "primary key")
        for key in metadata.alternate_keys(table):
            if all(c in frame for c in key):
                problems += _key_problems(table, frame, key, "alternate key")
    for rel in metadata.relationships:
        frames = [data.get(rel["child_table_name"]), data.get(rel["parent_table_name"])]
        if all(isinstance(f, pd.DataFrame) for f in frames):
            problems += _orphans(rel, data)
    if problems:
        raise DataError("The data does not match the metadata:", problems)


def _sdtype(name: str, series: pd.Series) -> dict:
    if pd.api.types.is_bool_dtype(series):
        return {"sdtype": "boolean"}
    if pd.api.types.is_datetime64_any_dtype(series):
        return {"sdtype": "datetime"}
    if pd.api.types.is_numeric_dtype(series):
        return {"sdtype": "numerical"}
    values = series.dropna()
    provider = pii.guess_from_name(name) or pii.guess_from_values(values.head(200))
    if provider and provider not in pii.DATE_PII:
        return {"sdtype": provider, "pii": True}
    if values.nunique() <= max(10, len(values) // 20):
        return {"sdtype": "categorical"}
    return {"sdtype": "unknown", "generator": "text"}


def _guess_primary_key(table: str, frame: pd.DataFrame) -> str | None:
    names = {str(c).lower(): c for c in frame.columns}
    for candidate in ("id", f"{table.lower()}_id", f"{table.lower()}id"):
        column = names.get(candidate)
        if column is not None and frame[column].notna().all() and frame[column].is_unique:
            return column
    return None


def detect_table(metadata, table: str, frame: pd.DataFrame, infer_sdtypes: bool = True,
                 infer_primary_key: bool = True) -> None:
    """Add ``table`` to ``metadata`` with columns guessed from ``frame`` (names as strings, as
    SDV's metadata holds them): sdtypes from dtypes and values (``unknown`` without
    ``infer_sdtypes``), and a primary key named ``id`` / ``<table>_id`` / ``<table>Id``."""
    metadata.add_table(table)
    for label in frame.columns:
        options = _sdtype(str(label), frame[label]) if infer_sdtypes else {"sdtype": "unknown"}
        metadata.add_column(str(label), table, **options,
                            nullable=bool(frame[label].isna().any()))
    pk = _guess_primary_key(table, frame) if infer_primary_key else None
    if pk is not None:
        metadata.update_column(str(pk), table, sdtype="id")
        metadata.set_primary_key(str(pk), table)


def detect_relationships(metadata, data: dict[str, pd.DataFrame]) -> None:
    """Add a relationship where a child column has the parent key's name and all its values are
    parent keys."""
    for parent, parent_frame in data.items():
        pk = metadata.tables[parent].get("primary_key")
        if not isinstance(pk, str):
            continue
        parent_keys = parent_frame[_label(parent_frame, pk)]
        for child, frame in data.items():
            label = _label(frame, pk)
            if child == parent or label is None:
                continue
            if frame[label].dropna().isin(parent_keys).all():
                metadata.update_column(pk, child, sdtype="id",
                                       nullable=bool(frame[label].isna().any()))
                metadata.add_relationship(parent, child, pk, pk)


def _label(frame: pd.DataFrame, name: str):
    """The column label of ``frame`` whose string form is ``name`` (None: no such column)."""
    return next((c for c in frame.columns if str(c) == name), None)


def detect(data: dict[str, pd.DataFrame], metadata_class: type):
    """Guess metadata from DataFrames: sdtypes from dtypes and values, primary keys named
    ``id`` / ``<table>_id`` / ``<table>Id``, and relationships where a child column has the
    parent key's name and all its values are parent keys. Builds a ``metadata_class`` (the
    :class:`~hma_db.schema.Metadata` that calls this, which this module does not import)."""
    metadata = metadata_class()
    for table, frame in data.items():
        detect_table(metadata, table, frame)
    detect_relationships(metadata, data)
    return metadata
