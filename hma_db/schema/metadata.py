"""Multi-table metadata in SDV's JSON layout.

A :class:`Metadata` holds, per table, its columns with their sdtypes and options, its primary key
(one column or a list), its alternate keys, and the relationships between tables (single- or
multi-column foreign keys). A file written by SDV's ``Metadata.save_to_json`` loads here, and
``to_dict`` writes the same layout::

    {"METADATA_SPEC_VERSION": "V1",
     "tables": {"Invoice": {"primary_key": "InvoiceId",
                            "columns": {"InvoiceId": {"sdtype": "id"},
                                        "Total": {"sdtype": "numerical"}}}},
     "relationships": [{"parent_table_name": "Customer", "parent_primary_key": "CustomerId",
                        "child_table_name": "Invoice", "child_foreign_key": "CustomerId"}]}

hma_db adds a few optional column options that SDV does not have and ignores when absent:
``nullable``, ``max_length``, ``allowed_values``, ``precision``, ``scale``, ``generator``
(how a column that is neither modeled nor personal data is generated: ``text``, ``json``,
``array``, ``bytes``, ``uuid``, ``interval``, ``ip``) and ``pii``.

When the metadata comes from :func:`hma_db.source.reflect`, ``sql_metadata`` holds the SQLAlchemy
``MetaData`` with the source's ``Table`` objects (the physical schema, used to recreate it in a
target) and ``row_counts`` the source's row count per table. Neither is written to JSON.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hma_db.errors import MetadataError
from hma_db.schema import graph
from hma_db.schema.checks import validate_data
from hma_db.schema.keys import Key, key_columns
from hma_db.schema.pii import is_faker_provider
from hma_db.schema.policies import column_policy_problems, table_policy_problems
from hma_db.schema.sdv_api import SdvMetadataApi, Tables

METADATA_SPEC_VERSION = "V1"
BASIC_SDTYPES = ("numerical", "categorical", "boolean", "datetime", "id", "unknown")
GENERATORS = ("text", "json", "array", "bytes", "uuid", "interval", "ip", "xml", "tsvector",
              "mac", "range", "bits", "point", "tsquery", "set")
_TABLE_KEYS = {"columns", "primary_key", "alternate_keys", "column_relationships",
               "sequence_key", "sequence_index", "policy", "where"}

class Metadata(SdvMetadataApi):
    """Tables, columns, keys and relationships of a database, in SDV's multi-table layout.

    Example:
        >>> metadata = Metadata.load_from_json("chinook.json")
        >>> metadata.update_column("Company", "Customer", sdtype="company", pii=True)
        >>> metadata.topological_order()[:3]
        ['Artist', 'Employee', 'Genre']
    """

    def __init__(self) -> None:
        self.tables = Tables()
        self.relationships: list[dict[str, Any]] = []
        self.sql_metadata = None  # sqlalchemy.MetaData when reflected from a database
        self.row_counts: dict[str, int] = {}
        # Rules found in reflect's sample of the data (hma_db.schema.rules.found): proposals
        # listed by reflect and plan; the fit keeps those every row it reads holds.
        self.proposed_rules: list = []
        self.schema: str | None = None
        # Tables read from another schema than ``schema`` (a foreign key led there): their schema.
        self.table_schemas: dict[str, str] = {}

    # ----------------------------------------------------------------------------- JSON layout
    @classmethod
    def from_dict(cls, metadata_dict: dict[str, Any]) -> Metadata:
        """Build metadata from a dict in SDV's multi-table layout.

        A single-table SDV dict (``columns`` at the top level) is not accepted: wrap it in
        ``{"tables": {"name": ...}}``.
        """
        if not isinstance(metadata_dict, dict) or "tables" not in metadata_dict:
            raise MetadataError(
                "Expected a multi-table metadata dict with a 'tables' key; found "
                + (f"the keys {sorted(metadata_dict)}" if isinstance(metadata_dict, dict)
                   else type(metadata_dict).__name__)
            )
        metadata = cls()
        for name, table in metadata_dict["tables"].items():
            metadata.tables[name] = _named_by_strings(copy.deepcopy(dict(table)))
        metadata.relationships = [
            {k: _key_names(v) if k in ("parent_primary_key", "child_foreign_key") else v
             for k, v in copy.deepcopy(dict(r)).items()}
            for r in metadata_dict.get("relationships", [])]
        return metadata

    def to_dict(self) -> dict[str, Any]:
        """The metadata as a dict in SDV's multi-table layout (a deep copy)."""
        tables = {}
        for name, table in self.tables.items():
            out = {k: copy.deepcopy(v) for k, v in table.items() if v not in (None, [])}
            out["columns"] = copy.deepcopy(table["columns"])
            tables[name] = out
        return {
            "METADATA_SPEC_VERSION": METADATA_SPEC_VERSION,
            "tables": tables,
            "relationships": copy.deepcopy(self.relationships),
        }

    def save_to_json(self, filepath: str | Path, mode: str = "write") -> None:
        """Write the metadata to a JSON file. ``mode="write"`` refuses an existing file, like
        SDV; ``mode="overwrite"`` replaces it."""
        if mode not in ("write", "overwrite"):
            raise MetadataError(f"mode must be 'write' or 'overwrite'; found {mode!r}.")
        path = Path(filepath)
        if path.exists() and mode == "write":
            raise MetadataError(f"'{path}' already exists; choose another file name, remove it "
                                "or pass mode='overwrite'.")
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        self.take_updated()  # saved: replicable, so the synthesizer need not warn

    @classmethod
    def load_from_json(cls, filepath: str | Path, single_table_name: str | None = None
                       ) -> Metadata:
        """Read metadata from a JSON file written by hma_db or by SDV (a single-table file
        becomes the table ``single_table_name``, default ``'table'``)."""
        path = Path(filepath)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise MetadataError(f"Metadata file '{path}' does not exist.") from exc
        except json.JSONDecodeError as exc:
            raise MetadataError(f"'{path}' is not valid JSON: {exc}") from exc
        return cls.load_from_dict(data, single_table_name)

    def copy(self) -> Metadata:
        """A deep copy (the SQLAlchemy schema is shared, it is never modified)."""
        other = Metadata.from_dict(self.to_dict())
        other.sql_metadata, other.schema = self.sql_metadata, self.schema
        other.table_schemas = dict(self.table_schemas)
        other.row_counts = dict(self.row_counts)
        other.proposed_rules = list(self.proposed_rules)
        return other

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Metadata) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Metadata({len(self.tables)} tables, {len(self.relationships)} relationships)"

    # ------------------------------------------------------------------------------ editing
    def _table(self, table_name: str) -> dict[str, Any]:
        if table_name not in self.tables:
            raise MetadataError(
                f"Unknown table '{table_name}'; the metadata has: {', '.join(sorted(self.tables))}"
            )
        return self.tables[table_name]

    def _check_columns(self, table_name: str, columns: list[str]) -> None:
        known = self._table(table_name)["columns"]
        missing = [c for c in columns if c not in known]
        if missing:
            raise MetadataError(
                f"Table '{table_name}' has no column {', '.join(repr(c) for c in missing)}; "
                f"its columns are: {', '.join(known)}"
            )

    def add_relationship(self, parent_table_name: str, child_table_name: str,
                         parent_primary_key: Key, child_foreign_key: Key) -> None:
        """Declare that ``child_foreign_key`` of the child references the parent's primary key."""
        self._check_columns(parent_table_name, key_columns(parent_primary_key))
        self._check_columns(child_table_name, key_columns(child_foreign_key))
        rel = {"parent_table_name": parent_table_name, "child_table_name": child_table_name,
               "parent_primary_key": parent_primary_key, "child_foreign_key": child_foreign_key}
        if rel in self.relationships:
            raise MetadataError(f"The relationship {graph.relationship_name(rel)} already exists.")
        self.relationships.append(rel)
        self._multi_table_updated = True

    def remove_relationship(self, parent_table_name: str, child_table_name: str) -> None:
        """Remove every relationship between the parent and the child."""
        before = len(self.relationships)
        self.relationships = [
            r for r in self.relationships
            if (r["parent_table_name"], r["child_table_name"])
            != (parent_table_name, child_table_name)
        ]
        if len(self.relationships) == before:
            raise MetadataError(
                f"There is no relationship from '{parent_table_name}' to '{child_table_name}'."
            )
        self._multi_table_updated = True

    # ----------------------------------------------------------------------------- accessors
    def source_schema(self, table_name: str) -> str | None:
        """The schema a table is read from in the source database (None: the default one)."""
        return self.table_schemas.get(table_name, self.schema)

    def primary_key(self, table_name: str) -> list[str]:
        """The primary key columns of a table ([] when it has none)."""
        return key_columns(self._table(table_name).get("primary_key"))

    def alternate_keys(self, table_name: str) -> list[list[str]]:
        """Each alternate key of a table as a list of columns."""
        return [key_columns(k) for k in self._table(table_name).get("alternate_keys", [])]

    def foreign_key_columns(self, table_name: str) -> list[str]:
        """Every column of a table that is part of a foreign key, in column order."""
        fk = {c for r in self.relationships if r["child_table_name"] == table_name
              for c in key_columns(r["child_foreign_key"])}
        return [c for c in self._table(table_name)["columns"] if c in fk]

    def is_nullable(self, relationship: dict[str, Any]) -> bool:
        """True when every column of the relationship's foreign key may be NULL."""
        columns = self.tables[relationship["child_table_name"]]["columns"]
        return all(columns.get(c, {}).get("nullable", False)
                   for c in key_columns(relationship["child_foreign_key"]))

    # ---------------------------------------------------------------------------- the graph
    def parents(self, table_name: str) -> list[str]:
        """Tables this table references (self excluded), sorted."""
        return sorted({r["parent_table_name"] for r in self.relationships
                       if r["child_table_name"] == table_name} - {table_name})

    def children(self, table_name: str) -> list[str]:
        """Tables that reference this table (self excluded), sorted."""
        return sorted({r["child_table_name"] for r in self.relationships
                       if r["parent_table_name"] == table_name} - {table_name})

    def self_references(self) -> list[dict[str, Any]]:
        """Relationships from a table to itself."""
        return [r for r in self.relationships if r["parent_table_name"] == r["child_table_name"]]

    def cycles(self) -> list[list[str]]:
        """Each cycle between two or more tables, e.g. ``['a', 'b', 'a']``."""
        return graph.cycles(self.tables, self.relationships)

    def deferred_relationships(self) -> list[dict[str, Any]]:
        """Relationships cut to break every cycle (nullable ones first; see
        :func:`hma_db.schema.graph.deferred_relationships`)."""
        return graph.deferred_relationships(self.tables, self.relationships, self.is_nullable)

    def topological_order(self) -> list[str]:
        """Tables with parents before children (cycles cut, see ``deferred_relationships``)."""
        deferred = self.deferred_relationships()
        return graph.topological_order(
            self.tables, [r for r in self.relationships if r not in deferred])

    def depth(self) -> int:
        """Foreign-key steps on the longest parent-to-child chain (cycles cut, self-refs ignored)."""
        deferred = self.deferred_relationships()
        return graph.depth(self.tables, [r for r in self.relationships if r not in deferred])

    # ---------------------------------------------------------------------------- validation
    def validate(self) -> None:
        """Check the metadata; raise one :class:`MetadataError` listing every problem."""
        problems: list[str] = []
        for name, table in self.tables.items():
            problems += _table_problems(name, table)
        for rel in self.relationships:
            problems += self._relationship_problems(rel)
        problems += table_policy_problems(self.tables, self.relationships)
        if problems:
            raise MetadataError("The metadata is not valid:", problems)

    def _relationship_problems(self, rel: dict[str, Any]) -> list[str]:
        missing = [k for k in ("parent_table_name", "child_table_name", "parent_primary_key",
                               "child_foreign_key") if k not in rel]
        if missing:
            return [f"relationship {rel} lacks {', '.join(missing)}"]
        name = graph.relationship_name(rel)
        parent, child = rel["parent_table_name"], rel["child_table_name"]
        unknown = [t for t in (parent, child) if t not in self.tables]
        if unknown:
            return [f"relationship {name}: unknown table {', '.join(repr(t) for t in unknown)}"]
        pk, fk = key_columns(rel["parent_primary_key"]), key_columns(rel["child_foreign_key"])
        parent_pk = self.primary_key(parent)
        problems = []
        if not parent_pk:
            problems.append(f"relationship {name}: parent table '{parent}' has no primary key")
        elif pk != parent_pk and sorted(pk) not in [sorted(k) for k in self.alternate_keys(parent)]:
            problems.append(f"relationship {name}: expected the parent's primary key {parent_pk}, "
                            f"found {pk}, which is not one of its alternate keys either")
        if len(pk) != len(fk):
            problems.append(f"relationship {name}: the foreign key has {len(fk)} column(s) but "
                            f"the primary key has {len(pk)}")
        cols = self.tables[child]["columns"]
        problems += [f"relationship {name}: child column '{child}.{c}' does not exist"
                     for c in fk if c not in cols]
        pcols = self.tables[parent]["columns"]
        for p, f in zip(pk, fk, strict=False):
            if p in pcols and f in cols and pcols[p].get("sdtype") != cols[f].get("sdtype"):
                problems.append(
                    f"relationship {name}: '{child}.{f}' has sdtype '{cols[f].get('sdtype')}' "
                    f"but '{parent}.{p}' has '{pcols[p].get('sdtype')}'; they must match")
        return problems

    def validate_data(self, data: dict) -> None:
        """Check a dict of DataFrames against the metadata; see ``checks.validate_data``."""
        validate_data(self, data)


def _key_names(key: Any) -> Any:
    """A key as SDV's metadata names columns: strings (a dict built in Python may use ints)."""
    if key is None:
        return None
    return [str(k) for k in key] if isinstance(key, (list, tuple)) else str(key)


def _named_by_strings(table: dict[str, Any]) -> dict[str, Any]:
    table["columns"] = {str(c): spec for c, spec in table.get("columns", {}).items()}
    for option in ("primary_key", "sequence_key", "sequence_index"):
        if option in table:
            table[option] = _key_names(table[option])
    if "alternate_keys" in table:
        table["alternate_keys"] = [_key_names(k) for k in table["alternate_keys"]]
    return table


def _table_problems(name: str, table: dict[str, Any]) -> list[str]:
    problems = [f"table '{name}': unknown key '{k}'" for k in table if k not in _TABLE_KEYS]
    columns = table.get("columns", {})
    for col, spec in columns.items():
        sdtype = spec.get("sdtype") if isinstance(spec, dict) else None
        if sdtype is None:
            problems.append(f"column '{name}.{col}': no sdtype")
        elif sdtype not in BASIC_SDTYPES and not is_faker_provider(sdtype):
            problems.append(
                f"column '{name}.{col}': unknown sdtype '{sdtype}'; expected one of "
                f"{', '.join(BASIC_SDTYPES)} or a Faker provider name such as 'email'")
        generator = spec.get("generator") if isinstance(spec, dict) else None
        if generator is not None and generator not in GENERATORS:
            problems.append(f"column '{name}.{col}': unknown generator '{generator}'; expected "
                            f"one of {', '.join(GENERATORS)}")
    keys = [("primary key", table.get("primary_key"))]
    keys += [("alternate key", k) for k in table.get("alternate_keys", [])]
    for kind, key in keys:
        problems += [f"table '{name}': {kind} column '{c}' does not exist"
                     for c in key_columns(key) if c not in columns]
    key_names = {c for _, key in keys for c in key_columns(key)}
    return problems + [p for col, spec in columns.items() if isinstance(spec, dict)
                       for p in column_policy_problems(name, col, spec, col in key_names)]
