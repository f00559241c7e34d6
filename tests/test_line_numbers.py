"""A composite key's line number (``PRIMARY KEY (order_id, line_no)``, TPC-H's
``l_linenumber``) counts 1..n within each synthetic order, as in the source: whole, in chunks,
under a composite parent key, from a saved model, and through a clone of each dialect; a
column the source does not number so keeps the run-wide sequence, and a model file's line
number is checked when loaded."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from hma_db import HMASynthesizer, Metadata, clone, load_synthesizer
from hma_db.errors import ModelFileError
from hma_db.transform.keys import numbering


def _orders(n_orders: int = 300, start: int = 1, numbered: bool = True, seed: int = 0):
    rng = np.random.default_rng(seed)
    orders = pd.DataFrame({"order_id": np.arange(1, n_orders + 1),
                           "amount": rng.gamma(2.0, 50.0, n_orders).round(2)})
    counts = rng.integers(1, 8, n_orders)
    order_id = np.repeat(orders.order_id.to_numpy(), counts)
    place = pd.Series(order_id).groupby(order_id).cumcount().to_numpy()
    line_no = place + start if numbered else rng.permutation(len(order_id)) + 1
    lines = pd.DataFrame({"order_id": order_id, "line_no": line_no,
                          "quantity": rng.integers(1, 20, len(order_id))})
    metadata = Metadata.load_from_dict({
        "tables": {
            "orders": {"primary_key": "order_id", "columns": {
                "order_id": {"sdtype": "id"}, "amount": {"sdtype": "numerical"}}},
            "lines": {"primary_key": ["order_id", "line_no"], "columns": {
                "order_id": {"sdtype": "id"}, "line_no": {"sdtype": "id"},
                "quantity": {"sdtype": "numerical"}}}},
        "relationships": [{"parent_table_name": "orders", "parent_primary_key": "order_id",
                           "child_table_name": "lines", "child_foreign_key": "order_id"}]})
    return metadata, {"orders": orders, "lines": lines}


def _numbered_from(lines: pd.DataFrame, start: int) -> bool:
    ordered = lines.sort_values(["order_id", "line_no"])
    return bool((ordered.line_no.to_numpy()
                 == ordered.groupby("order_id").cumcount().to_numpy() + start).all())


@pytest.mark.parametrize("start", [1, 0])
def test_lines_are_numbered_within_their_order_whole_and_in_chunks(start):
    metadata, data = _orders(start=start)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=3)
    synthesizer.fit(data)
    assert synthesizer.table_transformers["lines"].numbered == {
        "column": "line_no", "by": ["order_id"], "start": start}
    whole = synthesizer.sample(scale=2.0)
    chunks = list(synthesizer.sample_chunks(scale=2.0, chunk_rows=100))
    assert len(chunks) > 3
    chunked = pd.concat([c["lines"] for c in chunks], ignore_index=True)
    for lines in (whole["lines"], chunked):
        assert _numbered_from(lines, start)  # was one sequence over the table: 181, 182...
        assert not lines.duplicated(["order_id", "line_no"]).any()
        assert lines.line_no.dtype == data["lines"].line_no.dtype
        assert lines.line_no.max() <= data["lines"].line_no.max() + 3


def test_a_column_the_source_does_not_number_keeps_the_run_wide_sequence():
    metadata, data = _orders(numbered=False)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=3)
    synthesizer.fit(data)
    assert synthesizer.table_transformers["lines"].numbered is None
    lines = synthesizer.sample(scale=1.0)["lines"]
    assert lines.line_no.is_unique


def test_a_family_cut_here_and_there_still_counts_but_a_mostly_unnumbered_one_does_not():
    _, data = _orders()
    lines = data["lines"]
    specs = {"line_no": {"kind": "int"}}
    cut = lines.drop(index=lines.index[lines.line_no == 1][:5])  # a few first lines deleted
    assert numbering.learn(cut, ["order_id", "line_no"], {"order_id"}, specs)["start"] == 1
    shuffled = lines.assign(line_no=lines.line_no.sample(frac=1, random_state=0).to_numpy())
    assert numbering.learn(shuffled, ["order_id", "line_no"], {"order_id"}, specs) is None
    ranged = {"line_no": {"kind": "int", "ranges": [[1, 100]]}}  # a range partition's key
    assert numbering.learn(lines, ["order_id", "line_no"], {"order_id"}, ranged) is None


def test_lines_under_a_composite_order_key_are_numbered_within_it():
    rng = np.random.default_rng(1)
    orders = pd.DataFrame({"region": np.repeat(["EU", "US"], 100),
                           "order_no": np.tile(np.arange(1, 101), 2),
                           "amount": rng.gamma(2.0, 50.0, 200)})
    counts = rng.integers(1, 6, 200)
    lines = orders.loc[orders.index.repeat(counts), ["region", "order_no"]].reset_index(drop=True)
    lines["line_no"] = lines.groupby(["region", "order_no"]).cumcount() + 1
    lines["sku"] = rng.integers(1, 50, len(lines))
    metadata = Metadata.load_from_dict({
        "tables": {
            "orders": {"primary_key": ["region", "order_no"], "columns": {
                "region": {"sdtype": "id"}, "order_no": {"sdtype": "id"},
                "amount": {"sdtype": "numerical"}}},
            "lines": {"primary_key": ["region", "order_no", "line_no"], "columns": {
                "region": {"sdtype": "id"}, "order_no": {"sdtype": "id"},
                "line_no": {"sdtype": "id"}, "sku": {"sdtype": "numerical"}}}},
        "relationships": [{"parent_table_name": "orders",
                           "parent_primary_key": ["region", "order_no"],
                           "child_table_name": "lines",
                           "child_foreign_key": ["region", "order_no"]}]})
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=2)
    synthesizer.fit({"orders": orders, "lines": lines})
    out = synthesizer.sample(scale=1.5)["lines"]
    ordered = out.sort_values(["region", "order_no", "line_no"])
    assert (ordered.line_no.to_numpy()
            == ordered.groupby(["region", "order_no"]).cumcount().to_numpy() + 1).all()
    assert not out.duplicated(["region", "order_no", "line_no"]).any()


def test_the_numbering_is_saved_with_the_model_and_checked_when_loaded(tmp_path):
    metadata, data = _orders()
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=3)
    synthesizer.fit(data)
    path = tmp_path / "model.hma"
    synthesizer.save(path)
    loaded = load_synthesizer(path)
    assert loaded.table_transformers["lines"].numbered == {
        "column": "line_no", "by": ["order_id"], "start": 1}
    pd.testing.assert_frame_equal(loaded.sample(scale=1.0)["lines"],
                                  synthesizer.sample(scale=1.0)["lines"])
    state = synthesizer.table_transformers["lines"].to_dict()
    for bad in ({"column": "quantity", "by": ["order_id"], "start": 1},
                {"column": "line_no", "by": ["order_id"], "start": 7},
                {"column": "line_no", "by": "order_id", "start": 1}):
        state["numbered"] = json.loads(json.dumps(bad))
        with pytest.raises(ModelFileError, match="'lines' has a line-number column"):
            type(synthesizer.table_transformers["lines"]).from_dict(state, metadata)


_DDL = {
    "orders": "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, amount NUMERIC(10, 2))",
    "order_lines": "CREATE TABLE order_lines (order_id INTEGER NOT NULL, line_no SMALLINT NOT "
                   "NULL, quantity INTEGER, PRIMARY KEY (order_id, line_no), "
                   "FOREIGN KEY (order_id) REFERENCES orders (order_id))",
}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mariadb"])
def test_a_clone_numbers_each_orders_lines_in_every_dialect(dialect, tmp_path, request):
    if dialect == "sqlite":
        source = f"sqlite:///{tmp_path}/lines_source.db"
    else:
        fixture = "postgres_databases" if dialect == "postgresql" else "mysql_databases"
        source = request.getfixturevalue(fixture).new("lines")
    engine = sa.create_engine(source)
    _, data = _orders(n_orders=120)
    try:
        with engine.begin() as conn:
            for table in ("orders", "order_lines"):  # LINES is a keyword in MariaDB
                conn.execute(sa.text(_DDL[table]))
        data["orders"].to_sql("orders", engine, if_exists="append", index=False)
        data["lines"].to_sql("order_lines", engine, if_exists="append", index=False)
    finally:
        engine.dispose()
    target = f"sqlite:///{tmp_path}/lines_target.db"
    clone(source, target, scale=2.0, seed=4, chunk_rows=60, if_exists="replace")
    lines = pd.read_sql("SELECT order_id, line_no FROM order_lines", sa.create_engine(target))
    assert len(lines) > 300
    assert _numbered_from(lines, 1)


def test_lines_of_orders_sampled_once_are_numbered_across_the_chunks():
    """600 orders fit one chunk and are sampled once; their lines are spread over the chunks
    (TPC-H at scale factor 0.05): each chunk numbers a line after its order's lines in the
    chunks before it."""
    metadata, data = _orders()
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=3)
    synthesizer.fit(data)
    chunks = list(synthesizer.sample_chunks(scale=2.0, chunk_rows=700))
    assert len(chunks) > 2 and len(chunks[1]["orders"]) == 0  # the orders are resident
    lines = pd.concat([c["lines"] for c in chunks], ignore_index=True)
    assert not lines.duplicated(["order_id", "line_no"]).any()
    assert _numbered_from(lines, 1)
