"""Chunked sampling and writing: exact totals, keys unique across chunks, valid references,
and an all-or-nothing load across chunks."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import CHINOOK_SQLITE

from hma_db import HMASynthesizer, reflect
from hma_db.errors import WriteError
from hma_db.hma_sample import target_rows
from hma_db.metadata import key_columns
from hma_db.read import read_tables
from hma_db.sample_chunks import chunk_plan
from hma_db.write import write_chunks


@pytest.fixture(scope="module")
def fitted():
    url = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(url)
    synthesizer = HMASynthesizer(metadata, seed=3, verbose=False)
    synthesizer.fit(read_tables(url, metadata))
    return metadata, synthesizer


def _concat(chunks: list[dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    return {t: pd.concat([c[t] for c in chunks], ignore_index=True) for t in chunks[0]}


def test_chunks_have_exact_totals_unique_keys_and_valid_references(fitted):
    metadata, synthesizer = fitted
    chunks = list(synthesizer.sample_chunks(scale=2.0, chunk_rows=1500))
    assert len(chunks) > 3
    data = _concat(chunks)
    for table, frame in data.items():
        assert len(frame) == target_rows(metadata.row_counts[table], 2.0), table
        pk = metadata.primary_key(table)
        assert not frame.duplicated(pk).any(), table
    for rel in metadata.relationships:
        fk, pk = key_columns(rel["child_foreign_key"]), key_columns(rel["parent_primary_key"])
        child, parent = data[rel["child_table_name"]], data[rel["parent_table_name"]]
        found = pd.MultiIndex.from_frame(child[fk].dropna()).isin(
            pd.MultiIndex.from_frame(parent[pk]))
        assert found.all(), rel
    # Each chunk references only rows of itself or of earlier chunks.
    seen: dict[str, set] = {t: set() for t in metadata.tables}
    for chunk in chunks:
        for table, frame in chunk.items():
            seen[table] |= set(frame[metadata.primary_key(table)[0]])
        for rel in metadata.relationships:
            values = set(chunk[rel["child_table_name"]][rel["child_foreign_key"]].dropna())
            assert values <= seen[rel["parent_table_name"]], rel


def test_chunk_plan_keeps_small_tables_resident_and_splits_the_rest(fitted):
    metadata, _ = fitted
    totals = {t: metadata.row_counts[t] * 10 for t in metadata.tables}
    resident, chunks = chunk_plan(metadata, totals, 1000)
    assert {"Genre", "MediaType", "Employee"} <= resident and "Track" not in resident
    for table in metadata.tables:
        assert sum(c[table] for c in chunks) == totals[table]
    assert max(c["PlaylistTrack"] for c in chunks) <= 1000 + 1


def test_memory_bound_chunks_match_one_shot_sizes(fitted):
    metadata, synthesizer = fitted
    one_shot = synthesizer.sample(scale=0.5)
    chunked = _concat(list(synthesizer.sample_chunks(scale=0.5, chunk_rows=400)))
    assert {t: len(f) for t, f in one_shot.items()} == {t: len(f) for t, f in chunked.items()}
    for table in metadata.tables:
        assert list(chunked[table].columns) == list(one_shot[table].columns)
        assert dict(chunked[table].dtypes) == dict(one_shot[table].dtypes), table


def test_chunked_write_loads_every_chunk(fitted, tmp_path):
    metadata, synthesizer = fitted
    target = f"sqlite:///{tmp_path / 'out.sqlite'}"
    rows = write_chunks(synthesizer.sample_chunks(scale=1.5, chunk_rows=2000), metadata, target)
    assert rows == {t: target_rows(metadata.row_counts[t], 1.5) for t in rows}
    back = read_tables(target, reflect(target))
    assert {t: len(f) for t, f in back.items()} == rows


def _interrupted(chunks, after: int):
    for number, chunk in enumerate(chunks):
        if number == after:
            raise KeyboardInterrupt
        yield chunk


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_interrupted_chunked_load_leaves_the_target_as_it_was(fitted, tmp_path, kind, request):
    metadata, synthesizer = fitted
    if kind == "sqlite":
        target = f"sqlite:///{tmp_path / 'out.sqlite'}"
    else:
        target = request.getfixturevalue("postgres_databases").new("chunks")
    first = write_chunks(synthesizer.sample_chunks(scale=0.3, chunk_rows=5000), metadata, target)
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool)

    def counts():
        with engine.connect() as conn:
            return {t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar()
                    for t in metadata.tables}

    before = counts()
    assert before == first
    with pytest.raises(KeyboardInterrupt):
        write_chunks(_interrupted(synthesizer.sample_chunks(scale=2.0, chunk_rows=1000), 3),
                     metadata, target, if_exists="replace")
    assert counts() == before
    # A chunk the target refuses (a duplicate key in a later chunk) also rolls everything back.
    chunks = list(synthesizer.sample_chunks(scale=1.0, chunk_rows=1000))
    chunks[2]["Track"] = pd.concat([chunks[2]["Track"], chunks[1]["Track"].iloc[:1]])
    with pytest.raises(WriteError):
        write_chunks(chunks, metadata, target, if_exists="truncate")
    assert counts() == before
    engine.dispose()


def test_write_progress_counts_every_row_of_every_chunk(fitted, tmp_path):
    from hma_db.progress import RowBar

    metadata, synthesizer = fitted
    target = f"sqlite:///{tmp_path / 'out.sqlite'}"
    bar = RowBar("write", None, enabled=False)
    rows = write_chunks(synthesizer.sample_chunks(scale=1.0, chunk_rows=1000), metadata, target,
                        progress=bar.batch, batch_size=300)
    assert bar.rows == sum(rows.values())
