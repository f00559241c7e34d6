"""Exchange of tables between the benchmark and its runner processes.

A folder holds one file per table plus ``dtypes.json`` (the pandas dtype of every column). Parquet
is used when every process involved has pyarrow; otherwise CSV, read back with the recorded dtypes
so that both synthesizers see identical frames. Only pandas is needed here: this module is imported
by the runner in SDV's environment as well as in hma_db's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

FORMATS = ("parquet", "csv")


def has_pyarrow() -> bool:
    """True when this interpreter can read and write parquet."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def write_tables(tables: dict[str, pd.DataFrame], folder: Path, fmt: str) -> None:
    """Write every table into ``folder`` (created) as ``<table>.<fmt>`` plus ``dtypes.json``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format '{fmt}'; expected one of {FORMATS}")
    folder.mkdir(parents=True, exist_ok=True)
    dtypes = {name: {col: str(dtype) for col, dtype in frame.dtypes.items()}
              for name, frame in tables.items()}
    for name, frame in tables.items():
        path = folder / f"{name}.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
    (folder / "dtypes.json").write_text(json.dumps({"format": fmt, "dtypes": dtypes}, indent=1))


def _read_csv(path: Path, dtypes: dict[str, str]) -> pd.DataFrame:
    dates = [c for c, d in dtypes.items() if d.startswith("datetime64")]
    # Strings stay strings (leading zeros, "NA"); everything else gets its recorded dtype back.
    plain = {c: (object if d in ("object", "string", "str") else d)
             for c, d in dtypes.items() if c not in dates}
    frame = pd.read_csv(path, dtype=plain, keep_default_na=False, na_values=[""])
    for column in dates:
        frame[column] = pd.to_datetime(frame[column], format="ISO8601").astype(dtypes[column])
    return frame[list(dtypes)]


def read_tables(folder: Path) -> dict[str, pd.DataFrame]:
    """Read the tables written by :func:`write_tables`, with their recorded dtypes."""
    info = json.loads((folder / "dtypes.json").read_text())
    fmt, tables = info["format"], {}
    for name, dtypes in info["dtypes"].items():
        path = folder / f"{name}.{fmt}"
        tables[name] = pd.read_parquet(path) if fmt == "parquet" else _read_csv(path, dtypes)
    return tables
