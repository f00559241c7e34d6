"""The synthesizer's state: what fitting learned (:class:`FittedState`), and the whole
synthesizer as plain data and back (:class:`SavedSynthesizer`, the content of a model file).

The synthesizer owns one ``FittedState`` and hands it to the chunked sampler
(:mod:`hma_db.synthesizer.chunks`); nobody else reaches into the synthesizer. A model file holds
:func:`to_state`'s plain data (dicts, lists, numbers, strings, numpy arrays), never live objects
of rdt, Faker or SQLAlchemy, so that loading one builds values, not objects the file chooses.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hma_db.errors import SynthesizerInputError
from hma_db.model import HMAModel, target_rows
from hma_db.schema import (
    Constraint,
    Metadata,
    constraint_from_dict,
    from_json,
    schema_from_dict,
    schema_to_dict,
    to_json,
)
from hma_db.synthesizer.constraints import TableRules
from hma_db.synthesizer.rules import TableConstraints
from hma_db.transform import TableTransformer


@dataclass
class FittedState:
    """Everything ``fit`` learned: the model, the per-table transformers, the source columns
    and dtypes of every table, the sampling random stream and when it was fitted."""

    model: HMAModel
    transformers: dict[str, TableTransformer]
    columns: dict[str, list[str]]  # each table's source columns, in their source order
    dtypes: dict[str, dict[str, str]]  # each column's source dtype, to cast samples back
    sample_rng: np.random.Generator
    fit_date: str | None = None
    # The releases stamped on the fit: {"hma_db": ..., "sdv": ...} (see sdv.compat).
    versions: dict[str, str | None] = field(default_factory=dict)
    # Table policies other than 'model' (see hma_db.schema.policies), and the rows of the kept
    # tables, copied verbatim into every sample.
    table_policies: dict[str, str] = field(default_factory=dict)
    kept: dict[str, pd.DataFrame] = field(default_factory=dict)
    # Per table with constraints: the steps that rewrite its columns before the transformer
    # and turn the decoded columns back (hma_db.synthesizer.rules.TableConstraints).
    constraints: dict[str, TableConstraints] = field(default_factory=dict)
    multi_table: list = field(default_factory=list)  # programmable, on each sampled chunk

    @property
    def row_counts(self) -> dict[str, int]:
        """The rows each table had in the source (its full count when fitted on a subset)."""
        return self.model.row_counts

    def sample_sizes(self, scale: float) -> dict[str, int]:
        """The rows each table gets at ``scale`` (a kept table its own rows, an empty one none)."""
        sizes = {t: target_rows(rows, scale) for t, rows in self.row_counts.items()}
        sizes.update({t: 0 for t, p in self.table_policies.items() if p == "empty"})
        return sizes | {t: len(frame) for t, frame in self.kept.items()}


@dataclass
class SavedSynthesizer:
    """A synthesizer as a model file keeps it: its arguments, metadata and parameters, its
    random stream's entropy, and what it learned (``fitted``, None before ``fit``)."""

    parameters: dict[str, Any]  # locales, verbose, seed
    metadata: Metadata
    table_parameters: dict[str, dict[str, Any]]
    entropy: int
    creation_date: str
    fitted: FittedState | None
    sample_rng_state: dict[str, Any] | None = None  # of an unfitted synthesizer's stream
    constraints: list = field(default_factory=list)  # declared, then found in the data


def _constraints_state(saved: SavedSynthesizer) -> dict[str, Any]:
    """The constraints as plain data; a programmable one is code and is refused."""
    code = [c for c in saved.constraints if not isinstance(c, Constraint)]
    if code:
        names = ", ".join(sorted({type(c).__name__ for c in code}))
        raise SynthesizerInputError(
            f"This synthesizer has programmable constraint(s) ({names}): they are code, and a "
            "model file holds data only, so it cannot be saved. Save a synthesizer without "
            "them, or keep the fitted synthesizer in memory.")
    fitted = saved.fitted.constraints if saved.fitted else {}
    return {"rules": [c.to_dict() for c in saved.constraints],
            "tables": {t: tc.rules.to_dict() for t, tc in fitted.items() if tc.rules is not None}}


def to_state(saved: SavedSynthesizer) -> dict[str, Any]:
    """A synthesizer as plain data (the layout of JSON models since hma_db 0.1)."""
    fitted, metadata = saved.fitted, saved.metadata
    rng_state = fitted.sample_rng.bit_generator.state if fitted else saved.sample_rng_state
    return {
        "parameters": dict(saved.parameters),
        "metadata": metadata.to_dict(),
        "table_parameters": copy.deepcopy(saved.table_parameters),
        "columns": fitted.columns if fitted else {},
        "dtypes": fitted.dtypes if fitted else {},
        "transformers": {t: tt.to_dict() for t, tt in fitted.transformers.items()} if fitted else {},
        "model": fitted.model.to_dict() if fitted else None,
        # The physical schema, so that a model file creates the same target tables.
        "sql_schema": (None if metadata.sql_metadata is None
                       else schema_to_dict(metadata.sql_metadata)),
        "source": {"schema": metadata.schema, "row_counts": metadata.row_counts,
                   "table_schemas": metadata.table_schemas},
        "entropy": saved.entropy,
        "sample_rng": rng_state,
        "table_policies": dict(fitted.table_policies) if fitted else {},
        "kept": {t: {c: [to_json(v) for v in frame[c]] for c in frame.columns}
                 for t, frame in fitted.kept.items()} if fitted else {},
        "dates": [saved.creation_date, fitted.fit_date if fitted else None],
        "versions": {k: v for k, v in fitted.versions.items() if v} if fitted else {},
        "constraints": _constraints_state(saved),
    }


def from_state(state: dict[str, Any]) -> SavedSynthesizer:
    """The inverse of :func:`to_state`."""
    metadata = Metadata.from_dict(state["metadata"])
    if state.get("sql_schema") is not None:
        metadata.sql_metadata = schema_from_dict(state["sql_schema"])
    source = state.get("source") or {}
    metadata.schema, metadata.row_counts = source.get("schema"), source.get("row_counts") or {}
    metadata.table_schemas = {str(t): str(s) for t, s in (source.get("table_schemas") or {}).items()
                              if t in metadata.tables}
    creation_date, fit_date = state["dates"]
    rules = state.get("constraints") or {}
    # Only the predefined classes are rebuilt: a model file names a class, it never builds one.
    constraints = [constraint_from_dict(d) for d in rules.get("rules", [])]
    tables = {str(t): TableConstraints(TableRules.from_dict(d), [])
              for t, d in (rules.get("tables") or {}).items() if t in metadata.tables}
    fitted = None
    if state["model"] is not None:
        rng = np.random.default_rng()
        rng.bit_generator.state = state["sample_rng"]
        fitted = FittedState(
            model=HMAModel.from_dict(state["model"]),
            transformers={t: TableTransformer.from_dict(
                d, tables[t].metadata(metadata) if t in tables else metadata)
                for t, d in state["transformers"].items()},
            columns=state["columns"], dtypes=state["dtypes"], sample_rng=rng, fit_date=fit_date,
            versions={str(k): str(v) for k, v in (state.get("versions") or {}).items()
                      if k in ("hma_db", "sdv") and v is not None},
            table_policies={str(t): str(p) for t, p in (state.get("table_policies") or {}).items()
                            if t in metadata.tables},
            kept={t: pd.DataFrame({c: pd.Series([from_json(v) for v in values], dtype=object)
                                   for c, values in columns.items()})
                  for t, columns in (state.get("kept") or {}).items() if t in metadata.tables},
            constraints=tables)
    return SavedSynthesizer(parameters=state["parameters"], metadata=metadata,
                            table_parameters=state["table_parameters"], entropy=state["entropy"],
                            creation_date=creation_date, fitted=fitted,
                            sample_rng_state=state["sample_rng"], constraints=constraints)
