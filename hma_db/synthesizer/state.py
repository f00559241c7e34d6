"""The synthesizer as plain data and back: the content of a JSON model file.

:mod:`hma_db.synthesizer.files` turns this data into JSON (and checks it when reading); this module knows
which of the synthesizer's parts make a model, so that a JSON model samples exactly what the
pickled synthesizer would, and creates the same target tables.
"""

from __future__ import annotations

import copy
from typing import Any

from hma_db.model import HMAModel
from hma_db.schema import Metadata, schema_from_dict, schema_to_dict
from hma_db.transform import TableTransformer


def to_state(synth) -> dict[str, Any]:
    """Everything a fitted (or unfitted) synthesizer holds, as plain data."""
    return {
        "parameters": synth.get_parameters(),
        "metadata": synth.metadata.to_dict(),
        "table_parameters": copy.deepcopy(synth._table_parameters),
        "columns": synth._columns, "dtypes": synth._dtypes,
        "transformers": {t: tt.to_dict() for t, tt in synth._transformers.items()},
        "model": None if synth._model is None else synth._model.to_dict(),
        # The physical schema, so the JSON model creates the same target tables as a pickle.
        "sql_schema": (None if synth.metadata.sql_metadata is None
                       else schema_to_dict(synth.metadata.sql_metadata)),
        "source": {"schema": synth.metadata.schema, "row_counts": synth.metadata.row_counts},
        "entropy": synth._entropy,
        "sample_rng": synth._sample_rng.bit_generator.state,
        "dates": [synth._creation_date, synth._fit_date],
    }


def from_state(cls: type, state: dict[str, Any]):
    """A synthesizer of class ``cls`` from :func:`to_state`'s data."""
    params = state["parameters"]
    metadata = Metadata.from_dict(state["metadata"])
    if state.get("sql_schema") is not None:  # absent from models of earlier versions
        metadata.sql_metadata = schema_from_dict(state["sql_schema"])
    source = state.get("source") or {}
    metadata.schema, metadata.row_counts = source.get("schema"), source.get("row_counts") or {}
    synth = cls(metadata, locales=params["locales"], verbose=params["verbose"],
                seed=params["seed"])
    synth._table_parameters = state["table_parameters"]
    synth._columns, synth._dtypes = state["columns"], state["dtypes"]
    synth._transformers = {t: TableTransformer.from_dict(d, synth.metadata)
                           for t, d in state["transformers"].items()}
    synth._model = None if state["model"] is None else HMAModel.from_dict(state["model"])
    synth._entropy = state["entropy"]
    synth._sample_rng.bit_generator.state = state["sample_rng"]
    synth._creation_date, synth._fit_date = state["dates"]
    return synth


