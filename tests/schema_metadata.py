"""Build Metadata for the sample SQLite databases from the foundation alone.

The foundation tests must not depend on the reflector, so this reads the declared keys with
SQLAlchemy's inspector and guesses sdtypes with ``Metadata.detect_from_dataframes``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from hma_db import Metadata


def sqlite_frames(path: Path) -> dict[str, pd.DataFrame]:
    """Every table of a SQLite file as a DataFrame."""
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        names = sa.inspect(engine).get_table_names()
        with engine.connect() as conn:
            return {name: pd.read_sql_table(name, conn) for name in names}
    finally:
        engine.dispose()


def sqlite_metadata(path: Path) -> Metadata:
    """Metadata with the declared primary and foreign keys of a SQLite file."""
    frames = sqlite_frames(path)
    detected = Metadata.detect_from_dataframes(frames)
    metadata = Metadata()
    engine = sa.create_engine(f"sqlite:///{path}")
    inspector = sa.inspect(engine)
    foreign_keys = {t: inspector.get_foreign_keys(t) for t in frames}
    key_columns = {(t, c) for t in frames for c in inspector.get_pk_constraint(t)["constrained_columns"]}
    key_columns |= {(t, c) for t, fks in foreign_keys.items() for fk in fks
                    for c in fk["constrained_columns"]}
    for table, frame in frames.items():
        metadata.add_table(table)
        for column in inspector.get_columns(table):
            name = column["name"]
            spec = dict(detected.tables[table]["columns"][name])
            if (table, name) in key_columns:
                spec = {"sdtype": "id"}
            spec["nullable"] = bool(column["nullable"])
            metadata.add_column(name, table, **spec)
        pk = inspector.get_pk_constraint(table)["constrained_columns"]
        if pk:
            metadata.set_primary_key(pk[0] if len(pk) == 1 else pk, table)
        metadata.row_counts[table] = len(frame)
    for table, fks in foreign_keys.items():
        for fk in fks:
            cols, refs = fk["constrained_columns"], fk["referred_columns"]
            metadata.add_relationship(fk["referred_table"], table,
                                      refs[0] if len(refs) == 1 else refs,
                                      cols[0] if len(cols) == 1 else cols)
    engine.dispose()
    return metadata
