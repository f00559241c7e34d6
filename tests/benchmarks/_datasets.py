"""The benchmark's cases: generated parent-child data, Chinook pairs, whole Chinook and Northwind.

Each case is real data (a dict of DataFrames) plus metadata in SDV's multi-table JSON layout, once
as hma_db reads it and once reduced to the column options SDV 2.0 and SDMetrics accept.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
CHINOOK_SQLITE = ROOT / "examples" / "chinook.sqlite"
NORTHWIND_SQLITE = ROOT / "tests" / "data" / "northwind" / "northwind.sqlite"

# Column options SDV 2.0 accepts, per sdtype; every other sdtype is personal data ("pii").
_SDV_OPTIONS = {"numerical": {"computer_representation"}, "datetime": {"datetime_format"},
                "categorical": {"order", "order_by"}, "boolean": set(), "id": {"regex_format"}}
_SDV_MAX_TABLES = 5


@dataclass
class Case:
    """One benchmark case: real tables, metadata for hma_db, and SDV's view of it."""

    name: str
    tables: dict[str, pd.DataFrame]
    metadata: dict  # SDV layout, with hma_db's extra column options
    root: str  # a table without parents: SDV 2.0 samples "num_rows of the main table"
    parents: int  # rows of the root table, what SDV's cost grows with
    description: str
    sdv_metadata: dict = field(default_factory=dict)
    sdv_refusal: str | None = None  # why SDV's HMASynthesizer cannot take this schema

    def __post_init__(self) -> None:
        self.sdv_metadata = sdv_metadata(self.metadata)
        if len(self.tables) > _SDV_MAX_TABLES:
            self.sdv_refusal = (f"{len(self.tables)} tables; SDV's HMASynthesizer refuses more "
                                f"than {_SDV_MAX_TABLES} tables or relationship depth > 2")


def sdv_metadata(metadata: dict) -> dict:
    """The metadata with only the options SDV 2.0 (and SDMetrics) accept for each sdtype."""
    tables = {}
    for name, table in metadata["tables"].items():
        columns = {}
        for column, spec in table["columns"].items():
            allowed = _SDV_OPTIONS.get(spec["sdtype"], {"pii"})
            columns[column] = {"sdtype": spec["sdtype"],
                               **{k: v for k, v in spec.items() if k in allowed}}
        tables[name] = {"columns": columns,
                        **{k: table[k] for k in ("primary_key", "alternate_keys") if table.get(k)}}
    return {"METADATA_SPEC_VERSION": "V1", "tables": tables,
            "relationships": [dict(r) for r in metadata.get("relationships", [])]}


# ------------------------------------------------------------------------------ generated data
_REGIONS = np.array(["north", "south", "east", "west", "centre"])
_CATEGORY_CUTS = np.array([-1.0, -0.2, 0.5, 1.2])
_CATEGORIES = np.array(["A", "B", "C", "D", "E"])
_KINDS = ("amount", "category", "count", "measure")


def _correlated_noise(rng: np.random.Generator, rows: int, width: int, rho: float):
    """Standard normal columns with corr(j, k) = rho ** |j - k| (an AR(1) across columns)."""
    noise = np.empty((rows, width))
    noise[:, 0] = rng.standard_normal(rows)
    for j in range(1, width):  # a loop over at most 16 columns, each step vectorized over rows
        noise[:, j] = rho * noise[:, j - 1] + np.sqrt(1 - rho**2) * rng.standard_normal(rows)
    return noise


def _child_column(kind: str, latent: np.ndarray, region_shift: np.ndarray):
    if kind == "amount":
        return np.round(np.exp(3.0 + 0.6 * latent), 2)
    if kind == "category":
        return _CATEGORIES[np.digitize(latent + region_shift, _CATEGORY_CUTS)]
    if kind == "count":
        return np.round(np.exp(1.2 + 0.4 * latent)).astype(np.int64)
    return np.round(50.0 + 10.0 * latent, 1)


def generated_tables(parents: int, width: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """A parent table (id + 3 columns) and ~10 children per parent with ``width`` data columns.

    The number of children is Poisson with a mean that grows with the parent's income; each child
    column mixes a parent effect (income), a per-parent random effect (children of one parent
    resemble each other) and noise correlated across columns. Columns cycle through a rounded
    amount, a 5-level categorical (shifted by the parent's region), an integer count and a measure.
    """
    rng = np.random.default_rng(seed)
    z_income = rng.standard_normal(parents)
    region_codes = rng.choice(len(_REGIONS), size=parents, p=[0.35, 0.25, 0.2, 0.12, 0.08])
    age = 45 + 12 * (0.6 * z_income + 0.8 * rng.standard_normal(parents))
    parent = pd.DataFrame({
        "parent_id": np.arange(1, parents + 1, dtype=np.int64),
        "age": np.clip(np.round(age), 18, 90).astype(np.int64),
        "income": np.round(np.exp(10.5 + 0.5 * z_income), 2),
        "region": _REGIONS[region_codes],
    })
    counts = rng.poisson(10.0 * np.exp(0.3 * z_income - 0.045))  # E[exp(0.3 z)] = exp(0.045)
    owner = rng.permutation(np.repeat(np.arange(parents), counts))
    rows = len(owner)
    # Loadings chosen so that many pairs pass SDMetrics' thresholds (|correlation| > 0.5,
    # association > 0.3), without which Column Pair Trends and Intertable Trends score nothing:
    # child-child correlation 0.45 + 0.55 * 0.7 ** distance, parent income-child 0.6.
    latent = (0.6 * z_income[owner, None] + 0.3 * rng.standard_normal((parents, width))[owner]
              + np.sqrt(0.55) * _correlated_noise(rng, rows, width, rho=0.7))
    region_shift = (region_codes[owner] - 2) * 0.25
    child = {"child_id": np.arange(1, rows + 1, dtype=np.int64),
             "parent_id": parent["parent_id"].to_numpy()[owner]}
    for j in range(width):
        kind = _KINDS[j % len(_KINDS)]
        child[f"{kind}_{j:02d}"] = _child_column(kind, latent[:, j], region_shift)
    return {"parent": parent, "child": pd.DataFrame(child)}


def generated_metadata(tables: dict[str, pd.DataFrame]) -> dict:
    """SDV-layout metadata for :func:`generated_tables`."""
    def spec(column: str, series: pd.Series) -> dict:
        if column.endswith("_id"):
            return {"sdtype": "id"}
        if series.dtype == object:
            return {"sdtype": "categorical"}
        kind = "Int64" if pd.api.types.is_integer_dtype(series) else "Float"
        return {"sdtype": "numerical", "computer_representation": kind}

    return {"METADATA_SPEC_VERSION": "V1",
            "tables": {name: {"primary_key": f"{name}_id",
                              "columns": {c: spec(c, s) for c, s in frame.items()}}
                       for name, frame in tables.items()},
            "relationships": [{"parent_table_name": "parent", "parent_primary_key": "parent_id",
                               "child_table_name": "child", "child_foreign_key": "parent_id"}]}


def generated_case(parents: int, width: int, seed: int) -> Case:
    tables = generated_tables(parents, width, seed)
    return Case(name=f"gen-{_short(parents)}-w{width}", tables=tables,
                metadata=generated_metadata(tables), root="parent", parents=parents,
                description=f"generated: {parents} parents, {len(tables['child'])} children "
                            f"with {width} data columns")


def _short(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


# ------------------------------------------------------------------------------ SQLite databases
def read_sqlite(path: Path) -> dict[str, pd.DataFrame]:
    """Every table of a SQLite file, with dates parsed and decimals as floats."""
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {name: pd.read_sql_table(name, conn, coerce_float=True) for name in names}
    finally:
        engine.dispose()


def sqlite_metadata(path: Path) -> tuple[dict, str]:
    """(SDV-layout metadata of a SQLite file, how it was made).

    ``hma_db.reflect`` when it exists (the path users take); until then a guess from the data
    (``Metadata.detect_from_dataframes``) with keys and foreign keys from the SQLite schema.
    """
    try:
        from hma_db.source.reflect import reflect
    except ImportError:
        return _guessed_metadata(path), "guessed from the data (hma_db.reflect not available)"
    return reflect(f"sqlite:///{path}").to_dict(), "hma_db.reflect"


def _guessed_metadata(path: Path) -> dict:
    from hma_db import Metadata

    metadata = Metadata.detect_from_dataframes(read_sqlite(path))
    metadata.relationships = []
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        inspector = sa.inspect(engine)
        for table in metadata.tables:
            metadata.tables[table].pop("primary_key", None)
            for column in inspector.get_columns(table):
                if isinstance(column["type"], sa.LargeBinary):
                    metadata.update_column(table, column["name"], sdtype="unknown",
                                           generator="bytes")
            pk = inspector.get_pk_constraint(table)["constrained_columns"]
            for column in pk:
                metadata.update_column(table, column, sdtype="id")
            if pk:
                metadata.set_primary_key(table, pk[0] if len(pk) == 1 else pk)
        for table in metadata.tables:
            for fk in inspector.get_foreign_keys(table):
                for column in fk["constrained_columns"]:
                    metadata.update_column(table, column, sdtype="id")
                key = fk["constrained_columns"]
                metadata.add_relationship(fk["referred_table"], table,
                                          _key(fk["referred_columns"]), _key(key))
    finally:
        engine.dispose()
    return metadata.to_dict()


def _key(columns: list[str]):
    return columns[0] if len(columns) == 1 else list(columns)


def _conform(tables: dict[str, pd.DataFrame], metadata: dict) -> dict[str, pd.DataFrame]:
    """Datetime columns as datetime64 and numerical ones as numbers, as the metadata says."""
    for name, frame in tables.items():
        for column, spec in metadata["tables"][name]["columns"].items():
            if spec["sdtype"] == "datetime" and not pd.api.types.is_datetime64_any_dtype(
                    frame[column]):
                frame[column] = pd.to_datetime(frame[column])
            elif spec["sdtype"] == "numerical" and frame[column].dtype == object:
                frame[column] = pd.to_numeric(frame[column])
    return tables


def _subset(metadata: dict, tables: dict[str, pd.DataFrame], keep: list[str]):
    """The tables in ``keep`` with their relationships; foreign-key columns that point outside
    the subset are dropped (they would reference tables that are not generated)."""
    rels = [r for r in metadata["relationships"]
            if r["parent_table_name"] in keep and r["child_table_name"] in keep]
    kept_fk = {(r["child_table_name"], c) for r in rels for c in _columns(r["child_foreign_key"])}
    out_tables, out_frames = {}, {}
    for name in keep:
        table = dict(metadata["tables"][name])
        outside = [c for r in metadata["relationships"] if r["child_table_name"] == name
                   for c in _columns(r["child_foreign_key"]) if (name, c) not in kept_fk]
        table["columns"] = {c: s for c, s in table["columns"].items() if c not in outside}
        out_tables[name] = table
        out_frames[name] = tables[name].drop(columns=outside)
    return {**metadata, "tables": out_tables, "relationships": rels}, out_frames


def _columns(key) -> list[str]:
    return [key] if isinstance(key, str) else list(key)


def sqlite_case(name: str, path: Path, keep: list[str] | None, root: str) -> Case:
    metadata, how = sqlite_metadata(path)
    tables = read_sqlite(path)
    if keep:
        metadata, tables = _subset(metadata, tables, keep)
    tables = _conform(tables, metadata)
    rows = sum(len(f) for f in tables.values())
    return Case(name=name, tables=tables, metadata=metadata, root=root, parents=len(tables[root]),
                description=f"{path.name}: {len(tables)} tables, {rows} rows; metadata {how}")


# ------------------------------------------------------------------------------ the registry
GENERATED = [(p, w) for p in (1_000, 10_000, 100_000) for w in (4, 16)]
SQLITE = {
    "chinook-customer-invoice": (CHINOOK_SQLITE, ["Customer", "Invoice"], "Customer"),
    "chinook-invoice-invoiceline": (CHINOOK_SQLITE, ["Invoice", "InvoiceLine"], "Invoice"),
    "chinook-all": (CHINOOK_SQLITE, None, "Artist"),
    "northwind-all": (NORTHWIND_SQLITE, None, "customers"),
}


def case_names() -> list[str]:
    """Every case, the quick ones first."""
    return list(SQLITE) + [f"gen-{_short(p)}-w{w}" for p, w in GENERATED]


def select(patterns: list[str] | None) -> list[str]:
    """Case names matching any of the shell-style patterns (all cases when none are given)."""
    names = case_names()
    if not patterns:
        return names
    chosen = [n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)]
    unknown = [p for p in patterns if not any(fnmatch.fnmatch(n, p) for n in names)]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; the cases are: {', '.join(names)}")
    return chosen


def build(name: str, seed: int) -> Case:
    """Build one case by name."""
    for parents, width in GENERATED:
        if name == f"gen-{_short(parents)}-w{width}":
            return generated_case(parents, width, seed)
    path, keep, root = SQLITE[name]
    return sqlite_case(name, path, keep, root)
