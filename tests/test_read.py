"""Streamed reads: chunk dtypes from the SQL types, whole-table dtypes, the read-only snapshot."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import CHINOOK_SQLITE

from hma_db import reflect
from hma_db.source.read import begin_read_only, read_table_chunks, read_tables

DDL = """CREATE TABLE item (id INTEGER PRIMARY KEY, qty INTEGER, price FLOAT, ok BOOLEAN,
                            name VARCHAR(20) NOT NULL)"""


def _load(url: str, rows: list[dict]) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(DDL)
        conn.execute(sa.text("INSERT INTO item VALUES (:id, :qty, :price, :ok, :name)"), rows)
    engine.dispose()


def _rows(n: int, null_from: int) -> list[dict]:
    """``n`` rows whose nullable columns are NULL only from row ``null_from`` on."""
    return [{"id": i, "qty": None if i >= null_from else i * 2, "price": None if i >= null_from
             else i / 4, "ok": None if i >= null_from else i % 2 == 0, "name": f"n{i}"}
            for i in range(1, n + 1)]


@pytest.fixture(params=["sqlite", "postgresql"])
def item_url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'items.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_databases").new("read")
    _load(url, _rows(25, null_from=21))
    return url


def test_chunks_have_the_same_dtypes_when_nulls_come_later(item_url):
    metadata = reflect(item_url)
    engine = sa.create_engine(item_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        begin_read_only(conn)
        chunks = list(read_table_chunks(conn, metadata, "item", chunk_size=10))
        conn.rollback()
    engine.dispose()
    assert [len(c) for c in chunks] == [10, 10, 5]
    dtypes = [dict(c.dtypes.astype(str)) for c in chunks]
    assert dtypes[0] == dtypes[1] == dtypes[2]
    assert dtypes[0]["id"] == "int64" and dtypes[0]["qty"] == "Int64"
    assert dtypes[0]["ok"] == "boolean" and dtypes[0]["price"] == "float64"
    assert chunks[2]["qty"].isna().sum() == 5 and chunks[0]["qty"].notna().all()


def test_whole_table_dtypes_do_not_depend_on_the_chunk_size(item_url):
    metadata = reflect(item_url)
    small = read_tables(item_url, metadata, chunk_size=7)["item"]
    whole = read_tables(item_url, metadata, chunk_size=1000)["item"]
    pd.testing.assert_frame_equal(small, whole)
    assert str(whole["qty"].dtype) == "float64" and whole["qty"].isna().sum() == 5
    assert whole["ok"].dtype == object and whole["ok"].isna().sum() == 5
    assert whole.loc[0, "qty"] == 2 and whole["ok"].iloc[:4].tolist() == [False, True, False, True]


def test_columns_without_nulls_settle_to_plain_dtypes(tmp_path):
    url = f"sqlite:///{tmp_path / 'items.sqlite'}"
    _load(url, _rows(12, null_from=100))
    frame = read_tables(url, reflect(url), chunk_size=5)["item"]
    assert str(frame["qty"].dtype) == "int64" and frame["ok"].dtype == bool


def test_subset_of_columns_and_server_side_filter():
    url = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        chunks = list(read_table_chunks(conn, metadata, "Track", chunk_size=1000,
                                        columns=["TrackId", "AlbumId"],
                                        where=lambda t: t.c.AlbumId.in_([1, 2])))
    engine.dispose()
    frame = pd.concat(chunks)
    assert list(frame.columns) == ["TrackId", "AlbumId"]
    assert set(frame["AlbumId"]) == {1, 2} and frame["TrackId"].is_monotonic_increasing


def test_full_row_counts_are_recorded_by_reflect():
    metadata = reflect(f"sqlite:///{CHINOOK_SQLITE}")
    assert metadata.row_counts["Track"] == 3503 and metadata.row_counts["InvoiceLine"] == 2240
