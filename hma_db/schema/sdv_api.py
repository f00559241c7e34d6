"""SDV's ``Metadata`` editing API, mixed into :class:`~hma_db.schema.Metadata`.

SDV 1.x names the column first and the table second, with the table optional when the metadata
has one table::

    metadata.update_column("Company", "Customer", sdtype="company", pii=True)
    metadata.update_column(column_name="Company", table_name="Customer", sdtype="company")

hma_db 0.x took ``(table_name, column_name)``. A positional call in that order still works when
it cannot mean anything else (its first argument names a table and its second a column of that
table, or for ``add_column`` a name that is not a table), with a :class:`DeprecationWarning`.

Every edit marks the metadata as changed, as SDV does; :meth:`take_updated` tells the
synthesizer, which warns that the metadata was not saved (``save_to_json`` and the loaders clear
the mark).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pandas as pd

from hma_db.errors import MetadataError
from hma_db.schema import checks
from hma_db.schema.keys import Key, key_columns, key_value

# Table options SDV code reads and writes as attributes (``metadata.tables["t"].primary_key``).
_TABLE_ATTRIBUTES = {"columns": dict, "primary_key": None, "alternate_keys": list,
                     "sequence_key": None, "sequence_index": None, "column_relationships": list}
RELATIONSHIP_TYPES = ("address", "gps")


class TableMetadata(dict):
    """One table's metadata: a dict in SDV's JSON layout that also reads and writes its options as
    attributes, like SDV's ``SingleTableMetadata`` (``table.columns``, ``table.primary_key``)."""

    _updated = False  # set by an edit, cleared when the synthesizer reports it

    def __getattr__(self, name: str) -> Any:
        if name not in _TABLE_ATTRIBUTES:
            raise AttributeError(f"table metadata has no attribute {name!r}")
        default = _TABLE_ATTRIBUTES[name]
        if default is None:
            return self.get(name)
        return self.setdefault(name, default())

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _TABLE_ATTRIBUTES:
            self[name] = value
        else:
            super().__setattr__(name, value)

    def to_dict(self) -> dict[str, Any]:
        """The table as a plain dict (a deep copy)."""
        return copy.deepcopy(dict(self))


class Tables(dict):
    """``{table name: TableMetadata}``; a plain dict stored here is copied into a
    ``TableMetadata`` (edit it through ``metadata.tables[name]`` afterwards)."""

    def __init__(self, tables: dict | None = None) -> None:
        super().__init__()
        self.update(tables or {})

    def __setitem__(self, name: str, table: dict) -> None:
        super().__setitem__(name, table if isinstance(table, TableMetadata)
                            else TableMetadata(table))

    def update(self, *args: Any, **kwargs: Any) -> None:
        for name, table in dict(*args, **kwargs).items():
            self[name] = table

    def setdefault(self, name: str, table: dict | None = None) -> TableMetadata:
        if name not in self:
            self[name] = table if table is not None else {"columns": {}}
        return self[name]


def _is_table(tables: dict, name: Any) -> bool:
    return isinstance(name, str) and name in tables


def _names_columns(tables: dict, table: Any, columns: Any) -> bool:
    if not _is_table(tables, table):
        return False
    known = tables[table].get("columns", {})
    try:
        return bool(key_columns(columns)) and all(c in known for c in key_columns(columns))
    except TypeError:
        return False


class _DetectFromDataframes:
    """``Metadata.detect_from_dataframes(data)`` builds new metadata (SDV's ``Metadata``);
    ``metadata.detect_from_dataframes(data)`` fills this one (SDV's ``MultiTableMetadata``)."""

    def __get__(self, instance, owner):
        def detect_from_dataframes(data: dict[str, pd.DataFrame], infer_sdtypes: bool = True,
                                   infer_keys: str | None = "primary_and_foreign",
                                   foreign_key_inference_algorithm: str = "column_name_match",
                                   verbose: bool = False):
            if foreign_key_inference_algorithm != "column_name_match":
                raise MetadataError("foreign_key_inference_algorithm: hma_db matches column "
                                    "names only ('column_name_match'); found "
                                    f"{foreign_key_inference_algorithm!r}.")
            metadata = owner() if instance is None else instance
            if not isinstance(data, dict):
                raise MetadataError("detect_from_dataframes needs a dict {table name: "
                                    f"DataFrame}}; found {type(data).__name__}.")
            for name, frame in data.items():
                metadata.detect_table_from_dataframe(
                    name, frame, infer_sdtypes, None if infer_keys is None else "primary_only")
            if infer_keys == "primary_and_foreign":
                checks.detect_relationships(metadata, data)
            return metadata
        detect_from_dataframes.__doc__ = checks.detect.__doc__
        return detect_from_dataframes


class SdvMetadataApi:
    """The editing and inspection methods of SDV's multi-table ``Metadata``."""

    relationships: list[dict[str, Any]]
    _multi_table_updated = False
    detect_from_dataframes = _DetectFromDataframes()

    @property
    def tables(self) -> Tables:
        """``{table name: TableMetadata}`` (dicts in SDV's layout that also read as attributes)."""
        return self._tables

    @tables.setter
    def tables(self, tables: dict) -> None:
        self._tables = tables if isinstance(tables, Tables) else Tables(tables)

    # --------------------------------------------------------------------- argument order
    def _resolve(self, method: str, column: Any, table: Any, new_column: bool = False):
        """``(table, column)`` from SDV's ``(column_name, table_name)``, accepting hma_db 0.x's
        order with a warning when it can only mean that."""
        tables = self.tables
        if table is None:
            if len(tables) != 1:
                raise MetadataError(
                    f"{method}: the metadata has {len(tables)} tables, so name the table with "
                    f"table_name=...; the tables are: {', '.join(sorted(tables)) or 'none'}.")
            return next(iter(tables)), column
        sdv_order = _is_table(tables, table) and (new_column or _names_columns(tables, table,
                                                                              column))
        old_order = _is_table(tables, column) and (
            not _is_table(tables, table) if new_column else _names_columns(tables, column, table))
        if old_order and not sdv_order:
            _warn_old_order(method, column, table)
            return column, table
        return table, column

    def _edit(self, table_name: str) -> TableMetadata:
        if not _is_table(self.tables, table_name):
            raise MetadataError(f"Unknown table {table_name!r}; the metadata has: "
                                f"{', '.join(sorted(self.tables))}")
        table = self.tables[table_name]
        table._updated = True
        self._multi_table_updated = True
        return table

    def _known(self, table_name: str, columns: list) -> dict[str, Any]:
        known = self._edit(table_name)["columns"]
        missing = [c for c in columns if c not in known]
        if missing:
            raise MetadataError(
                f"Table '{table_name}' has no column {', '.join(repr(c) for c in missing)}; "
                f"its columns are: {', '.join(map(str, known))}")
        return known

    def take_updated(self) -> bool:
        """True when the metadata was edited or detected since it was loaded or saved; clears
        the mark (what ``HMASynthesizer`` calls to warn once, like SDV)."""
        updated = self._multi_table_updated or any(t._updated for t in self.tables.values())
        self._multi_table_updated = False
        for table in self.tables.values():
            table._updated = False
        return updated

    # --------------------------------------------------------------------------- tables
    def add_table(self, table_name: str) -> None:
        """Add an empty table."""
        if not isinstance(table_name, str) or not table_name:
            raise MetadataError(f"Invalid table name {table_name!r}: expected a non-empty string.")
        if table_name in self.tables:
            raise MetadataError(f"Table '{table_name}' already exists.")
        self.tables[table_name] = {"columns": {}}
        self._edit(table_name)

    def remove_table(self, table_name: str) -> None:
        """Remove a table and every relationship that involves it."""
        self._edit(table_name)
        del self.tables[table_name]
        self.relationships = [r for r in self.relationships
                              if table_name not in (r["parent_table_name"], r["child_table_name"])]
        getattr(self, "row_counts", {}).pop(table_name, None)

    def get_table_metadata(self, table_name: str | None = None) -> TableMetadata:
        """A copy of one table's metadata (reads as a dict and through attributes)."""
        table_name, _ = self._resolve("get_table_metadata", [], table_name, True)
        if not _is_table(self.tables, table_name):
            raise MetadataError(f"Unknown table {table_name!r}; the metadata has: "
                                f"{', '.join(sorted(self.tables))}")
        return TableMetadata(copy.deepcopy(dict(self.tables[table_name])))

    def get_column_names(self, table_name: str | None = None, **options: Any) -> list[str]:
        """Column names of a table, in order, whose options match ``options`` (e.g. sdtype='id')."""
        columns = self.get_table_metadata(table_name)["columns"]
        return [name for name, col in columns.items()
                if all(col.get(k) == v for k, v in options.items())]

    # -------------------------------------------------------------------------- columns
    def add_column(self, column_name: str, table_name: str | None = None, **kwargs: Any) -> None:
        """Add a column; ``kwargs`` are its options (``sdtype`` is required)."""
        table_name, column_name = self._resolve("add_column", column_name, table_name, True)
        column_name = str(column_name)  # SDV's metadata names columns by strings
        columns = self._edit(table_name)["columns"]
        if column_name in columns:
            raise MetadataError(f"Column '{table_name}.{column_name}' already exists.")
        if "sdtype" not in kwargs:
            raise MetadataError(f"Column '{table_name}.{column_name}' needs an sdtype.")
        columns[column_name] = dict(kwargs)

    def update_column(self, column_name: str, table_name: str | None = None,
                      **kwargs: Any) -> None:
        """Change a column's options. A new ``sdtype`` drops the options of the old one."""
        table_name, column_name = self._resolve("update_column", column_name, table_name)
        columns = self._known(table_name, [column_name])
        column = columns[column_name]
        if "sdtype" in kwargs and kwargs["sdtype"] != column.get("sdtype"):
            kept = {"nullable", "max_length", "precision", "scale", "policy"}
            column = {k: v for k, v in column.items() if k in kept}
        column.update(kwargs)
        columns[column_name] = column

    def update_columns(self, column_names: list[str], table_name: str | None = None,
                       **kwargs: Any) -> None:
        """Give several columns of a table the same options."""
        table_name, _ = self._resolve("update_columns", column_names, table_name)
        self._known(table_name, list(column_names))
        for column in column_names:
            self.update_column(column, table_name, **kwargs)

    def update_columns_metadata(self, column_metadata: dict[str, dict],
                                table_name: str | None = None) -> None:
        """Change several columns at once: ``{column: {option: value}}``."""
        table_name, _ = self._resolve("update_columns_metadata", list(column_metadata),
                                      table_name)
        self._known(table_name, list(column_metadata))
        for column, options in column_metadata.items():
            self.update_column(column, table_name, **options)

    def remove_column(self, column_name: str, table_name: str | None = None) -> None:
        """Remove a column; refused while a key or relationship uses it."""
        table_name, column_name = self._resolve("remove_column", column_name, table_name)
        table = self._edit(table_name)
        self._known(table_name, [column_name])
        keys = [table.get("primary_key"), table.get("sequence_key"), table.get("sequence_index"),
                *table.get("alternate_keys", [])]
        used = any(column_name in key_columns(k) for k in keys if k is not None)
        used = used or any(
            (r["child_table_name"] == table_name and column_name in
             key_columns(r["child_foreign_key"])) or
            (r["parent_table_name"] == table_name and column_name in
             key_columns(r["parent_primary_key"])) for r in self.relationships)
        if used:
            raise MetadataError(
                f"Column '{table_name}.{column_name}' is part of a key or relationship; remove "
                "the key or relationship first.")
        del table["columns"][column_name]
        table["column_relationships"] = [
            r for r in table.get("column_relationships", [])
            if column_name not in r.get("column_names", [])]

    def add_column_relationship(self, relationship_type: str, column_names: list[str],
                                table_name: str | None = None) -> None:
        """Say that columns belong together (``address`` or ``gps``), as SDV's metadata does."""
        table_name, _ = self._resolve("add_column_relationship", column_names, table_name)
        if relationship_type not in RELATIONSHIP_TYPES:
            raise MetadataError(f"Unknown column relationship type {relationship_type!r}; "
                                f"expected one of {', '.join(RELATIONSHIP_TYPES)}.")
        self._known(table_name, list(column_names))
        self.tables[table_name].setdefault("column_relationships", []).append(
            {"type": relationship_type, "column_names": list(column_names)})

    # ----------------------------------------------------------------------------- keys
    def set_primary_key(self, column_name: Key, table_name: str | None = None) -> None:
        """Set a table's primary key: one column name or a list of names."""
        table_name, column_name = self._resolve("set_primary_key", column_name, table_name)
        columns = key_columns(column_name)
        self._known(table_name, columns)
        self.tables[table_name]["primary_key"] = key_value(columns)

    def remove_primary_key(self, table_name: str | None = None) -> None:
        """Drop a table's primary key and the relationships that reference it."""
        table_name, _ = self._resolve("remove_primary_key", [], table_name, True)
        self._edit(table_name).pop("primary_key", None)
        self.relationships = [r for r in self.relationships
                              if r["parent_table_name"] != table_name]

    def add_alternate_keys(self, column_names: list[Key], table_name: str | None = None) -> None:
        """Add unique keys to a table: each item is a column name or a list of names."""
        if _is_table(self.tables, column_names) and not _is_table(self.tables, table_name):
            _warn_old_order("add_alternate_keys", column_names, table_name, stacklevel=3)
            column_names, table_name = table_name, column_names
        table_name, _ = self._resolve("add_alternate_keys", column_names, table_name, True)
        keys = self._edit(table_name).setdefault("alternate_keys", [])
        for key in column_names:
            self._known(table_name, key_columns(key))
            if key not in keys:
                keys.append(key)

    def set_sequence_key(self, column_name: Key, table_name: str | None = None) -> None:
        """Record a table's sequence key (kept in the metadata; HMA does not model sequences)."""
        table_name, column_name = self._resolve("set_sequence_key", column_name, table_name)
        self._known(table_name, key_columns(column_name))
        self.tables[table_name]["sequence_key"] = column_name

    def set_sequence_index(self, column_name: str, table_name: str | None = None) -> None:
        """Record a table's sequence index (kept in the metadata; HMA does not model sequences)."""
        table_name, column_name = self._resolve("set_sequence_index", column_name, table_name)
        self._known(table_name, [column_name])
        self.tables[table_name]["sequence_index"] = column_name

    # ----------------------------------------------------------------------- detection
    def detect_table_from_dataframe(self, table_name: str, data: pd.DataFrame,
                                    infer_sdtypes: bool = True,
                                    infer_keys: str | None = "primary_only") -> None:
        """Add a table detected from a DataFrame (sdtypes from dtypes and values; with
        ``infer_keys`` a primary key named ``id``, ``<table>_id`` or ``<table>Id``)."""
        if not isinstance(data, pd.DataFrame):
            raise MetadataError(f"detect_table_from_dataframe('{table_name}') needs a pandas "
                                f"DataFrame; found {type(data).__name__}.")
        checks.detect_table(self, table_name, data, infer_sdtypes, infer_keys is not None)

    @classmethod
    def detect_from_dataframe(cls, data: pd.DataFrame, table_name: str = "table",
                              infer_sdtypes: bool = True, infer_keys: str | None = "primary_only",
                              verbose: bool = False):
        """New metadata with one table detected from a DataFrame (SDV's single-table form)."""
        metadata = cls()
        metadata.detect_table_from_dataframe(table_name, data, infer_sdtypes, infer_keys)
        return metadata

    @classmethod
    def load_from_dict(cls, metadata_dict: dict[str, Any], single_table_name: str | None = None):
        """SDV's name for :meth:`from_dict`; a single-table dict (``columns`` at the top level)
        becomes the table ``single_table_name`` (default ``'table'``)."""
        if isinstance(metadata_dict, dict) and "tables" not in metadata_dict \
                and "columns" in metadata_dict:
            metadata_dict = {"tables": {single_table_name or "table": metadata_dict}}
        return cls.from_dict(metadata_dict)

    def validate_table(self, data: pd.DataFrame, table_name: str | None = None) -> None:
        """Check one table's DataFrame against its metadata (columns, keys), as ``fit`` does."""
        table_name, _ = self._resolve("validate_table", [], table_name, True)
        if not _is_table(self.tables, table_name):
            raise MetadataError(f"Unknown table {table_name!r}; the metadata has: "
                                f"{', '.join(sorted(self.tables))}")
        single = type(self).from_dict({"tables": {table_name: self.tables[table_name]}})
        single.validate()
        checks.validate_data(single, {table_name: data})

    def visualize(self, show_table_details: str | None = "full",
                  show_relationship_labels: bool = True, output_filepath: str | None = None):
        """Draw the tables and relationships with graphviz (an optional dependency); returns the
        ``graphviz.Digraph``, also written to ``output_filepath`` when given."""
        try:
            import graphviz
        except ImportError as exc:
            raise MetadataError("visualize needs the optional 'graphviz' package (pip install "
                                "graphviz, plus the Graphviz programs to write files).") from exc
        digraph = graphviz.Digraph("Metadata", node_attr={"shape": "Mrecord"})
        for name, table in self.tables.items():
            rows = [f"{c} : {spec.get('sdtype')}" for c, spec in table["columns"].items()] \
                if show_table_details == "full" else []
            digraph.node(name, label="{" + "|".join([name, "\\l".join(rows)]) + "}")
        for rel in self.relationships:
            label = (f"{rel['child_foreign_key']} → {rel['parent_primary_key']}"
                     if show_relationship_labels else "")
            digraph.edge(rel["parent_table_name"], rel["child_table_name"], label=label)
        if output_filepath:
            path, _, fmt = str(output_filepath).rpartition(".")
            digraph.render(filename=path, format=fmt, cleanup=True)
        return digraph

    def anonymize(self):
        """A copy with tables named ``table1``, ``table2``... and columns ``col1``, ``col2``...
        (keys, relationships and options follow), to share a schema without its names."""
        tables = {t: f"table{i}" for i, t in enumerate(self.tables, 1)}
        columns = {t: {c: f"col{j}" for j, c in enumerate(spec["columns"], 1)}
                   for t, spec in self.tables.items()}
        out: dict[str, Any] = {"tables": {}, "relationships": []}
        for name, spec in self.tables.items():
            names = columns[name]
            table = {k: _rename(v, names) for k, v in spec.items() if k != "columns"}
            table["columns"] = {names[c]: copy.deepcopy(v) for c, v in spec["columns"].items()}
            out["tables"][tables[name]] = table
        for rel in self.relationships:
            parent, child = rel["parent_table_name"], rel["child_table_name"]
            out["relationships"].append({
                "parent_table_name": tables[parent], "child_table_name": tables[child],
                "parent_primary_key": _rename(rel["parent_primary_key"], columns[parent]),
                "child_foreign_key": _rename(rel["child_foreign_key"], columns[child])})
        return type(self).load_from_dict(out)


def _warn_old_order(method: str, table: Any, column: Any, stacklevel: int = 4) -> None:
    """Warn at the caller of ``method`` (``stacklevel`` counts this function, the methods
    between, and the caller)."""
    warnings.warn(
        f"{method}({table!r}, {column!r}) passes the table first, hma_db 0.x's order; SDV's "
        f"order, used from now on, is {method}(column_name, table_name): write "
        f"{method}({column!r}, {table!r}) or use keywords.", DeprecationWarning,
        stacklevel=stacklevel)


def _rename(value: Any, names: dict[str, str]) -> Any:
    """``value`` (a column name, a list of them, a column relationship) with columns renamed."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [_rename(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _rename(v, names) if k == "column_names" else v for k, v in value.items()}
    return value
